//! The lab's shape, as pure data: names, addresses and pod CIDRs, the
//! seed's picture (nodes 172.16.97.75.. behind router 172.16.97.1, pod
//! CIDRs 10.244.N.0/24) plus an "internet" host behind the router.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The prefix of every netns, FRR pathspace and state dir of the lab.
pub const DEFAULT_PREFIX: &str = "fl-";
/// Where lab state lives (one dir per prefix).
pub const STATE_ROOT: &str = "/run/ferry-lab";

/// The nodes' subnet and the router on it.
pub const NODE_SUBNET_LEN: u8 = 24;
pub const ROUTER_V4: &str = "172.16.97.1";
pub const ROUTER_V6: &str = "fd97::1";
pub const NODE_SUBNET_V6_LEN: u8 = 64;
/// With `--subnets 2`: the second node segment, behind the router too
/// (which routes node addresses only, never pod CIDRs).
pub const ROUTER2_V4: &str = "172.16.98.1";
pub const ROUTER2_V6: &str = "fd98::1";
/// The most node segments `--subnets` allows.
pub const MAX_SUBNETS: usize = 2;
/// The "internet": documentation space behind the router.
pub const INTERNET_ROUTER_V4: &str = "203.0.113.1";
pub const INTERNET_HOST_V4: &str = "203.0.113.10";
pub const INTERNET_ROUTER_V6: &str = "2001:db8:113::1";
pub const INTERNET_HOST_V6: &str = "2001:db8:113::10";
/// The API server, in the router's netns.
pub const API_PORT: u16 = 6443;
/// ferryd's metrics address in every node netns.
pub const METRICS_ADDR: &str = "127.0.0.1:9654";
/// The most nodes the addressing plan allows (172.16.97.75 .. .254).
pub const MAX_NODES: usize = 100;
/// The node's interface to the switch.
pub const NODE_IFNAME: &str = "eth0";

/// How pod CIDRs reach other nodes (ferryd's `--routing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    #[default]
    Direct,
    Ospf,
    Bgp,
}

impl Routing {
    pub const ALL: [Routing; 3] = [Routing::Direct, Routing::Ospf, Routing::Bgp];

    pub fn as_str(self) -> &'static str {
        match self {
            Routing::Direct => "direct",
            Routing::Ospf => "ospf",
            Routing::Bgp => "bgp",
        }
    }

    /// Whether FRR runs on the nodes.
    pub fn uses_frr(self) -> bool {
        self != Routing::Direct
    }

    /// The kernel route protocol of the routes to other nodes' pods.
    pub fn route_proto(self) -> &'static str {
        match self {
            Routing::Direct => "201",
            Routing::Ospf => "ospf",
            Routing::Bgp => "bgp",
        }
    }
}

impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Routing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "direct" => Ok(Routing::Direct),
            "ospf" => Ok(Routing::Ospf),
            "bgp" => Ok(Routing::Bgp),
            _ => Err(format!("{s:?}: expected direct, ospf or bgp")),
        }
    }
}

/// What ospf/bgp advertise (ferryd's `--advertise`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Advertise {
    #[default]
    Aggregate,
    Pods,
}

impl Advertise {
    pub fn as_str(self) -> &'static str {
        match self {
            Advertise::Aggregate => "aggregate",
            Advertise::Pods => "pods",
        }
    }
}

impl fmt::Display for Advertise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Advertise {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aggregate" => Ok(Advertise::Aggregate),
            "pods" => Ok(Advertise::Pods),
            _ => Err(format!("{s:?}: expected aggregate or pods")),
        }
    }
}

/// One node of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlan {
    /// 0 for the control plane.
    pub index: usize,
    /// The Kubernetes Node name.
    pub name: String,
    /// The node's netns, also its FRR pathspace.
    pub netns: String,
    /// Its port on the switch.
    pub port: String,
    pub ip: String,
    pub ip6: Option<String>,
    /// podCIDRs, IPv4 first.
    pub cidrs: Vec<String>,
    /// The node segment (L2) it is on: 0 (172.16.97.0/24, bridge br0) or
    /// 1 (172.16.98.0/24, br1).
    #[serde(default)]
    pub segment: usize,
}

impl NodePlan {
    pub fn control_plane(&self) -> bool {
        self.index == 0
    }

    /// The router's addresses on the node's segment (IPv4, IPv6).
    pub fn gateways(&self) -> (&'static str, &'static str) {
        if self.segment == 1 {
            (ROUTER2_V4, ROUTER2_V6)
        } else {
            (ROUTER_V4, ROUTER_V6)
        }
    }

    /// The node's bridge in the switch netns.
    pub fn bridge(&self) -> String {
        format!("br{}", self.segment)
    }

    /// InternalIPs, IPv4 first.
    pub fn ips(&self) -> Vec<String> {
        std::iter::once(self.ip.clone())
            .chain(self.ip6.clone())
            .collect()
    }
}

/// Node `index` of a lab with `prefix`: `k8s-master` (.75, 10.244.0.0/24)
/// then `k8s-worker-N` (.75+N, 10.244.N.0/24), IPv6 `fd97::75+N` and
/// `fd00:10:244:N::/64` when dual-stack (the API server fixtures' plan).
pub fn node_plan(prefix: &str, index: usize, dual_stack: bool) -> NodePlan {
    node_plan_in(prefix, index, dual_stack, 1)
}

/// Node `index` of a lab whose nodes are spread over `subnets` segments
/// (index modulo `subnets`): segment 1 is 172.16.98.0/24 (`fd98::/64`),
/// so with 2 segments k8s-worker-1 is 172.16.98.76.
pub fn node_plan_in(prefix: &str, index: usize, dual_stack: bool, subnets: usize) -> NodePlan {
    let segment = index % subnets.max(1);
    let name = if index == 0 {
        "k8s-master".to_string()
    } else {
        format!("k8s-worker-{index}")
    };
    let mut cidrs = vec![format!("10.244.{index}.0/24")];
    if dual_stack {
        cidrs.push(ferry_apiserver::pod_cidr_v6(index));
    }
    NodePlan {
        index,
        netns: format!("{prefix}{name}"),
        port: format!("n{}", index + 1),
        ip: format!("172.16.{}.{}", 97 + segment, 75 + index),
        ip6: dual_stack.then(|| format!("fd{}::{}", 97 + segment, 75 + index)),
        cidrs,
        name,
        segment,
    }
}

/// The netns names of the fixed parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixed {
    pub switch: String,
    pub router: String,
    pub internet: String,
}

pub fn fixed(prefix: &str) -> Fixed {
    Fixed {
        switch: format!("{prefix}switch"),
        router: format!("{prefix}router"),
        internet: format!("{prefix}internet"),
    }
}

/// A pod's netns name.
pub fn pod_netns(prefix: &str, pod: &str) -> String {
    format!("{prefix}{pod}")
}

/// Checks a lab prefix: short, `[a-z0-9-]`, ending in `-`, so names stay
/// valid and a sweep by prefix cannot hit anything else.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = (2..=24).contains(&prefix.len())
        && prefix.ends_with('-')
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "prefix {prefix:?}: 2-24 chars of [a-z0-9-], starting with a letter, ending in '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_picture() {
        let n: Vec<NodePlan> = (0..3).map(|i| node_plan("fl-", i, false)).collect();
        assert_eq!(
            n.iter().map(|n| n.ip.as_str()).collect::<Vec<_>>(),
            ["172.16.97.75", "172.16.97.76", "172.16.97.77"]
        );
        assert_eq!(n[2].cidrs, ["10.244.2.0/24"]);
        assert_eq!(n[0].name, "k8s-master");
        assert!(n[0].control_plane());
        assert_eq!(n[1].netns, "fl-k8s-worker-1");
        assert_eq!(n[1].ips(), ["172.16.97.76"]);
    }

    #[test]
    fn dual_stack_adds_v6() {
        let n = node_plan("fl-", 1, true);
        assert_eq!(n.ip6.as_deref(), Some("fd97::76"));
        assert_eq!(n.cidrs, ["10.244.1.0/24", "fd00:10:244:1::/64"]);
        assert_eq!(n.ips(), ["172.16.97.76", "fd97::76"]);
    }

    #[test]
    fn two_subnets_alternate_segments() {
        let n: Vec<NodePlan> = (0..3).map(|i| node_plan_in("fl-", i, true, 2)).collect();
        assert_eq!(
            n.iter().map(|n| n.ip.as_str()).collect::<Vec<_>>(),
            ["172.16.97.75", "172.16.98.76", "172.16.97.77"]
        );
        assert_eq!(n[1].ip6.as_deref(), Some("fd98::76"));
        assert_eq!(n[1].gateways(), (ROUTER2_V4, ROUTER2_V6));
        assert_eq!((n[0].bridge(), n[1].bridge()), ("br0".into(), "br1".into()));
        assert_eq!(node_plan_in("fl-", 1, false, 1), node_plan("fl-", 1, false));
    }

    #[test]
    fn prefixes() {
        assert!(check_prefix("fl-").is_ok());
        assert!(check_prefix("ft123x4-").is_ok());
        for bad in ["", "fl", "-", "FL-", "fl/x-", "1a-"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routing_round_trips() {
        for r in Routing::ALL {
            assert_eq!(r.as_str().parse::<Routing>().unwrap(), r);
        }
        assert!("rip".parse::<Routing>().is_err());
        assert!(Routing::Ospf.uses_frr() && !Routing::Direct.uses_frr());
    }
}
