//! GC: release every reservation, and remove every host veth of this
//! network, whose (containerID, ifname) is not among the valid attachments.
//! A missing list means none is valid (libcni omits an empty one).

use std::collections::HashSet;

use ferry_cni::CniError;

use crate::cmd::Invocation;
use crate::ipam::Ipam;
use crate::log_at;
use crate::veth::kernel_err;

pub fn gc(inv: &Invocation<'_>) -> Result<(), CniError> {
    let valid: HashSet<(String, String)> = inv
        .conf
        .net
        .valid_attachments
        .iter()
        .flatten()
        .map(|a| (a.container_id.clone(), a.ifname.clone()))
        .collect();
    let released = Ipam {
        conf: inv.conf,
        env: inv.env,
        stdin: inv.stdin,
    }
    .gc(&valid);
    let swept = sweep_veths(&inv.conf.net.name, &valid, inv.conf.fast_path.as_deref());
    released?;
    swept
}

fn sweep_veths(
    network: &str,
    valid: &HashSet<(String, String)>,
    fast_path: Option<&std::path::Path>,
) -> Result<(), CniError> {
    let keep = |id: &str, ifname: &str| valid.contains(&(id.to_string(), ifname.to_string()));
    let removed = ferry_hostveth::sweep(network, keep, fast_path)
        .map_err(|e| kernel_err(&e.what, e.source))?;
    for v in removed {
        log_at!(
            Info,
            "GC removed {} ({}/{})",
            v.name,
            v.container_id,
            v.ifname
        );
    }
    Ok(())
}
