//! The host end of a pod's veth is named from the attachment alone, so DEL,
//! CHECK and GC find it without any state: `ferry` + 10 hex digits of a
//! stable hash of (container ID, ifname). 15 bytes, the kernel's limit.

/// Every host-side veth ferry makes starts with this.
pub const HOST_VETH_PREFIX: &str = "ferry";

/// FNV-1a, 64 bit, over the container ID, a NUL and the ifname: tiny, and
/// stable across releases and platforms.
fn fnv1a(container_id: &str, ifname: &str) -> u64 {
    let bytes = container_id.bytes().chain([0]).chain(ifname.bytes());
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn host_veth_name(container_id: &str, ifname: &str) -> String {
    let h = fnv1a(container_id, ifname);
    format!("{HOST_VETH_PREFIX}{:010x}", h >> 24)
}

/// The alias written on the host veth, naming its owner for GC:
/// `ferry/<network>/<containerID>/<ifname>`.
pub fn host_veth_alias(network: &str, container_id: &str, ifname: &str) -> String {
    format!("{HOST_VETH_PREFIX}/{network}/{container_id}/{ifname}")
}

/// `(network, containerID, ifname)` from an alias made by [`host_veth_alias`].
pub fn parse_alias(alias: &str) -> Option<(&str, &str, &str)> {
    let rest = alias.strip_prefix(HOST_VETH_PREFIX)?.strip_prefix('/')?;
    let mut parts = rest.splitn(3, '/');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED: &str = "ferryd35ac05124";

    #[test]
    fn names_are_stable_short_and_distinct() {
        let a = host_veth_name("abc123", "eth0");
        assert_eq!(a, host_veth_name("abc123", "eth0"));
        assert_eq!(a.len(), 15);
        assert!(a.starts_with(HOST_VETH_PREFIX));
        assert_ne!(a, host_veth_name("abc123", "eth1"));
        assert_ne!(a, host_veth_name("abc12", "3eth0"));
        let long = "f".repeat(64);
        assert_eq!(host_veth_name(&long, "net1").len(), 15);
        // Pinned: a changed hash would orphan the veths of running pods.
        assert_eq!(host_veth_name("abc123", "eth0"), PINNED);
    }

    #[test]
    fn alias_round_trips() {
        let a = host_veth_alias("k8s-pod-network", "c0ffee", "eth0");
        assert_eq!(parse_alias(&a), Some(("k8s-pod-network", "c0ffee", "eth0")));
        assert_eq!(parse_alias("calico/x"), None);
    }
}
