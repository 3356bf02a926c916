//! Which Node is this one, which interface carries it, which podCIDRs it
//! has: pure functions over `k8s_openapi` Nodes and the local addresses
//! (read over netlink by [`local_addresses`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;

use crate::AgentError;

/// The little ferryd keeps of a Node (so 5k Nodes fit in a few MiB).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    pub name: String,
    /// `status.addresses` of type InternalIP, in order.
    pub internal_ips: Vec<IpAddr>,
    /// `spec.podCIDRs`, else `spec.podCIDR`; unparsable entries dropped.
    pub pod_cidrs: Vec<IpNet>,
    /// The `NetworkUnavailable` condition as (status, reason), if present.
    pub network_unavailable: Option<(String, String)>,
    /// Its WireGuard public key (annotation
    /// [`crate::wireguard::KEY_ANNOTATION`]), as published.
    pub wireguard_key: Option<String>,
}

impl NodeInfo {
    pub fn from_node(node: &Node) -> NodeInfo {
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            internal_ips: internal_ips(node),
            pod_cidrs: pod_cidrs(node),
            network_unavailable: node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "NetworkUnavailable"))
                .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default())),
            wireguard_key: node
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::wireguard::KEY_ANNOTATION))
                .cloned(),
        }
    }

    /// The first InternalIP of `family` (true = IPv4).
    pub fn internal_ip(&self, v4: bool) -> Option<IpAddr> {
        self.internal_ips
            .iter()
            .copied()
            .find(|ip| ip.is_ipv4() == v4)
    }

    /// Whether ferryd already marked the node's network as available.
    pub fn marked_up(&self) -> bool {
        matches!(&self.network_unavailable,
            Some((status, reason)) if status == "False" && reason == crate::CONDITION_REASON)
    }
}

/// All Nodes by name.
pub type Nodes = BTreeMap<String, NodeInfo>;

/// The Node's InternalIPs, in order (unparsable ones dropped).
pub fn internal_ips(node: &Node) -> Vec<IpAddr> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .map(|addrs| {
            addrs
                .iter()
                .filter(|a| a.type_ == "InternalIP")
                .filter_map(|a| a.address.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `spec.podCIDRs` (dual-stack), else `spec.podCIDR`. Host bits are
/// cleared; unparsable entries are dropped.
pub fn pod_cidrs(node: &Node) -> Vec<IpNet> {
    let Some(spec) = node.spec.as_ref() else {
        return Vec::new();
    };
    let raw: Vec<&str> = match spec.pod_cidrs.as_deref() {
        Some(list) if !list.is_empty() => list.iter().map(String::as_str).collect(),
        _ => spec.pod_cidr.as_deref().into_iter().collect(),
    };
    let mut out: Vec<IpNet> = Vec::new();
    for net in raw.iter().filter_map(|s| s.trim().parse::<IpNet>().ok()) {
        let net = net.trunc();
        if !out.contains(&net) {
            out.push(net);
        }
    }
    out
}

/// An address on a local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddr {
    pub ifindex: u32,
    pub ifname: String,
    /// The interface's MTU.
    pub mtu: u32,
    /// The address with its prefix length (`172.16.97.75/24`).
    pub net: IpNet,
}

/// Every address of every local interface, over netlink.
pub fn local_addresses() -> Result<Vec<LocalAddr>, AgentError> {
    let mut h = ferry_netlink::Handle::new().map_err(|e| AgentError::netlink("open", e))?;
    let links: BTreeMap<u32, (String, u32)> = h
        .links()
        .map_err(|e| AgentError::netlink("list links", e))?
        .into_iter()
        .map(|l| (l.index, (l.name, l.mtu)))
        .collect();
    Ok(h.addresses(None)
        .map_err(|e| AgentError::netlink("list addresses", e))?
        .into_iter()
        .filter_map(|a| {
            let (ifname, mtu) = links.get(&a.index)?.clone();
            Some(LocalAddr {
                ifindex: a.index,
                ifname,
                mtu,
                net: a.addr,
            })
        })
        .collect())
}

/// Why the own Node could not be determined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("no Node named {0:?}")]
    NotFound(String),
    #[error("no Node has an InternalIP on a local interface (set --node-name)")]
    NoLocalNode,
    #[error("several Nodes have an InternalIP on a local interface: {0:?} (set --node-name)")]
    Ambiguous(Vec<String>),
    #[error("node {node}: none of its InternalIPs {ips:?} is on a local interface")]
    NoInterface { node: String, ips: Vec<IpAddr> },
}

/// This node: by `name` when given, else the seed's method — the one Node
/// whose InternalIP is a local address.
pub fn find_own<'a>(
    nodes: &'a Nodes,
    name: Option<&str>,
    local: &[LocalAddr],
) -> Result<&'a NodeInfo, DiscoveryError> {
    if let Some(name) = name {
        return nodes
            .get(name)
            .ok_or_else(|| DiscoveryError::NotFound(name.to_string()));
    }
    let mine: Vec<&NodeInfo> = nodes
        .values()
        .filter(|n| n.internal_ips.iter().any(|ip| is_local(*ip, local)))
        .collect();
    match mine.as_slice() {
        [one] => Ok(one),
        [] => Err(DiscoveryError::NoLocalNode),
        many => Err(DiscoveryError::Ambiguous(
            many.iter().map(|n| n.name.clone()).collect(),
        )),
    }
}

fn is_local(ip: IpAddr, local: &[LocalAddr]) -> bool {
    local.iter().any(|a| a.net.addr() == ip)
}

/// The interface carrying the node's InternalIP (the first InternalIP that
/// is a local address), with that address.
pub fn node_interface<'a>(
    node: &NodeInfo,
    local: &'a [LocalAddr],
) -> Result<&'a LocalAddr, DiscoveryError> {
    node.internal_ips
        .iter()
        .find_map(|ip| local.iter().find(|a| a.net.addr() == *ip))
        .ok_or_else(|| DiscoveryError::NoInterface {
            node: node.name.clone(),
            ips: node.internal_ips.clone(),
        })
}

/// The local interface whose connected subnet holds `ip` (a directly
/// reachable next hop), preferring `prefer` (the node interface) and then
/// the longest prefix. Host routes (/32, /128), loopback and the node's
/// own addresses never count.
pub fn connected_interface(
    ip: IpAddr,
    local: &[LocalAddr],
    prefer: Option<u32>,
) -> Option<&LocalAddr> {
    if is_local(ip, local) {
        return None;
    }
    local
        .iter()
        .filter(|a| a.net.prefix_len() < a.net.max_prefix_len())
        .filter(|a| !a.net.addr().is_loopback())
        .filter(|a| a.net.contains(&ip))
        .max_by_key(|a| (Some(a.ifindex) == prefer, a.net.prefix_len()))
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
