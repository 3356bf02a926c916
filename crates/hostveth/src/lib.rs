//! The host ends of ferry's pod veths, shared by the plugin (ADD, DEL,
//! CHECK, CNI GC) and ferryd's IPAM collector:
//! - [`names`]: the stateless name and the owner alias of a host veth;
//! - [`list`] / [`remove`]: the host veths of one network, read back from
//!   their aliases, and their idempotent removal (with the fast path's
//!   pod map entry); [`sweep`] removes every one not to keep.

pub mod names;

use std::path::Path;

use ferry_netlink::{Handle, NetlinkError};

pub use names::{host_veth_alias, host_veth_name, parse_alias, HOST_VETH_PREFIX};

/// A netlink request failed.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct HostVethError {
    pub what: String,
    #[source]
    pub source: NetlinkError,
}

fn err(what: impl Into<String>) -> impl FnOnce(NetlinkError) -> HostVethError {
    move |source| HostVethError {
        what: what.into(),
        source,
    }
}

/// A host veth of ferry's, with the attachment its alias names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostVeth {
    pub name: String,
    pub index: u32,
    pub network: String,
    pub container_id: String,
    pub ifname: String,
}

/// ferry's host veths in the current netns, of every network (name
/// prefix, kind veth and an alias [`parse_alias`] reads); a veth without
/// such an alias is nobody's to remove and is not listed.
pub fn list(nl: &mut Handle) -> Result<Vec<HostVeth>, HostVethError> {
    let links = nl.links().map_err(err("listing links"))?;
    Ok(links
        .into_iter()
        .filter(|l| l.name.starts_with(HOST_VETH_PREFIX) && l.kind.as_deref() == Some("veth"))
        .filter_map(|l| {
            let (net, id, ifname) = l.alias.as_deref().and_then(parse_alias)?;
            Some(HostVeth {
                network: net.to_string(),
                container_id: id.to_string(),
                ifname: ifname.to_string(),
                name: l.name.clone(),
                index: l.index,
            })
        })
        .collect())
}

/// Remove `veth` (gone already is fine) and, best effort, its entry in the
/// fast path's pod map under `fast_path` (ferryd's resync prunes it too).
pub fn remove(
    nl: &mut Handle,
    veth: &HostVeth,
    fast_path: Option<&Path>,
) -> Result<(), HostVethError> {
    let pods = fast_path.and_then(|dir| ferry_ebpf::PodIfaces::open(dir).ok().flatten());
    if let Some(pods) = &pods {
        let _ = pods.remove(veth.index);
    }
    nl.delete_link(veth.index)
        .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
        .map_err(err(format!("removing {}", veth.name)))
}

/// Remove every host veth of `network` whose attachment `keep` rejects;
/// the removed ones. Stops at the first failure.
pub fn sweep(
    network: &str,
    keep: impl Fn(&str, &str) -> bool,
    fast_path: Option<&Path>,
) -> Result<Vec<HostVeth>, HostVethError> {
    let mut nl = Handle::new().map_err(err("opening netlink"))?;
    let mut removed = Vec::new();
    for veth in list(&mut nl)? {
        if veth.network != network || keep(&veth.container_id, &veth.ifname) {
            continue;
        }
        remove(&mut nl, &veth, fast_path)?;
        removed.push(veth);
    }
    Ok(removed)
}
