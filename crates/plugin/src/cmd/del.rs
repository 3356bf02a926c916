//! DEL: give the address back and remove the pair by its host end's name.
//! Needs neither the netns nor a prevResult, and succeeds when there is
//! nothing left to remove. Both steps run even if one fails.

use ferry_cni::{CniError, Code};
use ferry_netlink::Handle;

use crate::announce;
use crate::cmd::Invocation;
use crate::ipam::Ipam;
use crate::log_at;
use crate::names::host_veth_name;
use crate::veth::{self, kernel_err};

pub fn del(inv: &Invocation<'_>) -> Result<(), CniError> {
    let env = inv.env;
    let ipam = Ipam {
        conf: inv.conf,
        env,
        stdin: inv.stdin,
    };
    let host_name = host_veth_name(&env.container_id, &env.ifname);
    // Independent, so at once: the kernel's veth deletion waits for RCU
    // grace periods (tens of ms) while IPAM releases the address.
    let (released, removed) = std::thread::scope(|s| {
        let job = s.spawn(|| ipam.del());
        let removed = Handle::new()
            .and_then(|mut nl| veth::teardown(&mut nl, &host_name, inv.conf.fast_path.as_deref()))
            .map_err(|e| kernel_err(format!("removing {host_name}"), e));
        let released = job
            .join()
            .unwrap_or_else(|_| Err(CniError::new(Code::IpamStore, "IPAM thread panicked")));
        (released, removed)
    });
    if let Some(dir) = &inv.conf.policy_dir {
        announce::withdraw(dir, &env.container_id, &env.ifname);
    }
    if let Ok(gone) = &removed {
        log_at!(Debug, "{host_name} removed: {gone}");
    }
    released?;
    removed.map(drop)
}
