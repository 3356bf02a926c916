//! GC: release every reservation, and remove every host veth of this
//! network, whose (containerID, ifname) is not among the valid attachments.
//! A missing list means none is valid (libcni omits an empty one).

use std::collections::HashSet;

use ferry_cni::CniError;
use ferry_netlink::Handle;

use crate::cmd::Invocation;
use crate::ipam::Ipam;
use crate::log_at;
use crate::names::{parse_alias, HOST_VETH_PREFIX};
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
    let mut nl = Handle::new().map_err(|e| kernel_err("opening netlink", e))?;
    // The fast path's pod map loses the veths GC removes (best effort:
    // ferryd's resync prunes it too).
    let pods = fast_path.and_then(|dir| ferry_ebpf::PodIfaces::open(dir).ok().flatten());
    let links = nl.links().map_err(|e| kernel_err("listing links", e))?;
    for link in links {
        if !link.name.starts_with(HOST_VETH_PREFIX) || link.kind.as_deref() != Some("veth") {
            continue;
        }
        let Some((net, id, ifname)) = link.alias.as_deref().and_then(parse_alias) else {
            continue;
        };
        if net != network || valid.contains(&(id.to_string(), ifname.to_string())) {
            continue;
        }
        log_at!(Info, "GC removes {} ({id}/{ifname})", link.name);
        if let Some(pods) = &pods {
            let _ = pods.remove(link.index);
        }
        nl.delete_link(link.index)
            .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
            .map_err(|e| kernel_err(format!("removing {}", link.name), e))?;
    }
    Ok(())
}
