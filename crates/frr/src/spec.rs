//! What a node's FRR config is made from.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// The routing protocol between the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// OSPF area 0 on the node interface: OSPFv2 for IPv4 pod CIDRs,
    /// OSPFv3 for IPv6 ones.
    Ospf,
    /// iBGP full mesh between the nodes' InternalIPs (IPv4 and IPv6).
    Bgp,
}

/// What each node advertises for its pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Advertise {
    /// Each own podCIDR as one route (a static blackhole redistributed);
    /// the local pod host routes stay more specific.
    #[default]
    Aggregate,
    /// Every pod host route (/32, /128) within the own podCIDRs, as the
    /// kernel routes the plugin installed; no aggregate.
    Pods,
}

/// The default private AS of the iBGP mesh.
pub const DEFAULT_ASN: u32 = 64512;

/// Everything the rendered config depends on.
///
/// `Debug` never shows the OSPF key or the BGP password.
#[derive(Clone, PartialEq, Eq)]
pub struct FrrSpec {
    pub mode: Mode,
    pub hostname: String,
    pub router_id: Ipv4Addr,
    /// The interface carrying the node's InternalIP.
    pub node_ifname: String,
    pub node_ip: IpAddr,
    /// This node's podCIDRs (IPv4 and/or IPv6).
    pub pod_cidrs: Vec<IpNet>,
    pub advertise: Advertise,
    /// BGP: the other nodes' InternalIPs (the node's own IP is skipped).
    pub peers: Vec<IpAddr>,
    pub asn: u32,
    /// OSPF MD5 message-digest key (1..=16 printable characters).
    pub ospf_auth_key: Option<String>,
    /// BGP TCP-MD5 password (1..=80 printable characters).
    pub bgp_password: Option<String>,
    /// The node's IPv6 forwarding as it is (`net.ipv6.conf.all.forwarding`),
    /// which the config keeps when there is no IPv6 pod CIDR: ferry does
    /// not change what it does not need (and FRR in a container, with
    /// `/proc/sys` read-only, could not). None (not known): off. With an
    /// IPv6 pod CIDR, IPv6 forwarding is on whatever this says.
    pub ipv6_forwarding: Option<bool>,
}

const REDACTED: &str = "<redacted>";

impl fmt::Debug for FrrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| REDACTED);
        f.debug_struct("FrrSpec")
            .field("mode", &self.mode)
            .field("hostname", &self.hostname)
            .field("router_id", &self.router_id)
            .field("node_ifname", &self.node_ifname)
            .field("node_ip", &self.node_ip)
            .field("pod_cidrs", &self.pod_cidrs)
            .field("advertise", &self.advertise)
            .field("peers", &self.peers)
            .field("asn", &self.asn)
            .field("ospf_auth_key", &secret(&self.ospf_auth_key))
            .field("bgp_password", &secret(&self.bgp_password))
            .field("ipv6_forwarding", &self.ipv6_forwarding)
            .finish()
    }
}

/// A spec that cannot be rendered into a config FRR accepts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("hostname {0:?}: want 1..=63 letters, digits, '-', '_' or '.'")]
    Hostname(String),
    #[error("interface name {0:?}: want 1..=15 characters without whitespace or '/'")]
    IfName(String),
    #[error("{what}: want {max} printable non-space ASCII characters at most (and at least 1)")]
    Secret { what: &'static str, max: usize },
    #[error("BGP AS number 0 is reserved")]
    Asn,
    #[error("no pod CIDR to advertise")]
    NoPodCidr,
}

impl FrrSpec {
    /// A spec with the defaults: aggregate advertisement, AS 64512, no
    /// peers, no secrets, IPv6 forwarding not known.
    pub fn new(
        mode: Mode,
        hostname: &str,
        router_id: Ipv4Addr,
        node_ifname: &str,
        node_ip: IpAddr,
        pod_cidrs: Vec<IpNet>,
    ) -> FrrSpec {
        FrrSpec {
            mode,
            hostname: hostname.into(),
            router_id,
            node_ifname: node_ifname.into(),
            node_ip,
            pod_cidrs,
            advertise: Advertise::Aggregate,
            peers: Vec::new(),
            asn: DEFAULT_ASN,
            ospf_auth_key: None,
            bgp_password: None,
            ipv6_forwarding: None,
        }
    }

    /// Check that [`crate::render`] makes a config FRR accepts from this
    /// spec: names and secrets are single FRR words, OSPF gets only IPv4.
    pub fn validate(&self) -> Result<(), SpecError> {
        let h = &self.hostname;
        if h.is_empty()
            || h.len() > 63
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(SpecError::Hostname(h.clone()));
        }
        let i = &self.node_ifname;
        if i.is_empty() || i.len() > 15 || i.chars().any(|c| !c.is_ascii_graphic() || c == '/') {
            return Err(SpecError::IfName(i.clone()));
        }
        check_secret("OSPF MD5 key", &self.ospf_auth_key, 16)?;
        check_secret("BGP password", &self.bgp_password, 80)?;
        if self.asn == 0 {
            return Err(SpecError::Asn);
        }
        if self.pod_cidrs.is_empty() {
            return Err(SpecError::NoPodCidr);
        }
        Ok(())
    }

    /// The FRR daemons this config needs running, zebra first: OSPF mode
    /// runs ospfd for IPv4 pod CIDRs and ospf6d for IPv6 ones.
    pub fn daemons(&self) -> Vec<&'static str> {
        let mut d = vec!["zebra", "staticd"];
        match self.mode {
            Mode::Ospf => {
                if !self.cidrs(false).is_empty() {
                    d.push("ospfd");
                }
                if !self.cidrs(true).is_empty() {
                    d.push("ospf6d");
                }
            }
            Mode::Bgp => d.push("bgpd"),
        }
        d
    }

    /// The BGP peers as rendered: sorted, deduplicated, without this node.
    pub fn mesh_peers(&self) -> Vec<IpAddr> {
        let mut peers: Vec<IpAddr> = self
            .peers
            .iter()
            .copied()
            .filter(|p| *p != self.node_ip)
            .collect();
        peers.sort();
        peers.dedup();
        peers
    }

    /// The pod CIDRs of one family, in their given order, deduplicated.
    pub(crate) fn cidrs(&self, v6: bool) -> Vec<IpNet> {
        let mut out: Vec<IpNet> = Vec::new();
        for c in &self.pod_cidrs {
            let c = c.trunc();
            if matches!(c, IpNet::V6(_)) == v6 && !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }
}

fn check_secret(what: &'static str, s: &Option<String>, max: usize) -> Result<(), SpecError> {
    match s {
        Some(s) if s.is_empty() || s.len() > max || !s.chars().all(|c| c.is_ascii_graphic()) => {
            Err(SpecError::Secret { what, max })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FrrSpec {
        FrrSpec::new(
            Mode::Ospf,
            "node-a",
            Ipv4Addr::new(172, 16, 97, 75),
            "eth0",
            "172.16.97.75".parse().unwrap(),
            vec!["10.244.0.0/24".parse().unwrap()],
        )
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut s = spec();
        s.ospf_auth_key = Some("topsecret".into());
        s.bgp_password = Some("hunter2".into());
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("topsecret") && !dbg.contains("hunter2"),
            "{dbg}"
        );
        assert!(
            dbg.contains("<redacted>") && dbg.contains("node-a"),
            "{dbg}"
        );
        assert!(format!("{s:#?}").contains("<redacted>"));
    }

    #[test]
    fn validate_rejects_what_frr_would_not_take() {
        assert_eq!(spec().validate(), Ok(()));
        let mut s = spec();
        s.ospf_auth_key = Some("two words".into());
        assert!(matches!(s.validate(), Err(SpecError::Secret { .. })));
        s.ospf_auth_key = Some("x".repeat(17));
        assert!(matches!(s.validate(), Err(SpecError::Secret { .. })));
        s.ospf_auth_key = Some("x".repeat(16));
        assert_eq!(s.validate(), Ok(()));
        s.hostname = "a b".into();
        assert!(matches!(s.validate(), Err(SpecError::Hostname(_))));
        let mut s = spec();
        s.mode = Mode::Bgp;
        s.asn = 0;
        assert_eq!(s.validate(), Err(SpecError::Asn));
    }

    #[test]
    fn daemons_follow_mode_and_families() {
        let mut s = spec();
        assert_eq!(s.daemons(), ["zebra", "staticd", "ospfd"]);
        s.pod_cidrs.push("fd00:10:244::/64".parse().unwrap());
        assert_eq!(s.daemons(), ["zebra", "staticd", "ospfd", "ospf6d"]);
        s.pod_cidrs.remove(0);
        assert_eq!(s.daemons(), ["zebra", "staticd", "ospf6d"]);
        s.mode = Mode::Bgp;
        assert_eq!(s.daemons(), ["zebra", "staticd", "bgpd"]);
    }

    #[test]
    fn mesh_peers_skip_self_and_duplicates() {
        let mut s = spec();
        s.peers = [
            "172.16.97.77",
            "172.16.97.75",
            "172.16.97.76",
            "172.16.97.77",
        ]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
        let got: Vec<String> = s.mesh_peers().iter().map(|p| p.to_string()).collect();
        assert_eq!(got, ["172.16.97.76", "172.16.97.77"]);
    }
}
