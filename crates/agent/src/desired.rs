//! The desired state of the node: a pure function of the Nodes, the local
//! addresses and the flags. [`crate::apply`] then makes the node match it.

use std::net::IpAddr;
use std::path::PathBuf;

use ferry_frr::{FrrSpec, Mode};
use ipnet::IpNet;

use crate::cli::{Advertise, Encapsulation, Encryption, Opts, Routing};
use crate::discovery::{self, DiscoveryError, LocalAddr, NodeInfo, Nodes};
use crate::fast_path::FastPathPlan;
use crate::install::render_conflist;
use crate::routes::RouteSpec;
use crate::vxlan::{VxlanPeer, VxlanPlan, VXLAN_IFNAME};
use crate::wireguard::{self, WgPlan};

/// The flags the desired state depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub node_name: Option<String>,
    pub routing: Routing,
    /// Resolved for the routing mode (see [`Opts::encapsulation`]).
    pub encapsulation: Encapsulation,
    /// Resolved (see [`Opts::encryption`]).
    pub encryption: Encryption,
    pub wireguard_port: u16,
    pub advertise: Advertise,
    pub cluster_cidrs: Vec<IpNet>,
    pub mtu: Option<u32>,
    pub ipam_data_dir: PathBuf,
    pub bgp_asn: u32,
    pub cni_version: String,
    /// The fast path's pin directory, when it is on.
    pub fast_path: Option<PathBuf>,
    /// Where the plugin announces new pods, with NetworkPolicy on.
    pub policy_dir: Option<PathBuf>,
}

impl From<&Opts> for Settings {
    fn from(o: &Opts) -> Settings {
        Settings {
            node_name: o.node_name(),
            routing: o.routing,
            // An invalid combination never gets here: `run` refuses it.
            encapsulation: o.encapsulation().unwrap_or(Encapsulation::Never),
            encryption: o.encryption().unwrap_or(Encryption::None),
            wireguard_port: o.wireguard_port,
            advertise: o.advertise,
            cluster_cidrs: o.cluster_cidr.iter().map(IpNet::trunc).collect(),
            mtu: o.mtu,
            ipam_data_dir: o.ipam_data_dir.clone(),
            bgp_asn: o.bgp_asn,
            cni_version: o.cni_version.clone(),
            fast_path: o.fast_path.then(|| o.bpf_dir.clone()),
            policy_dir: o.network_policy.then(|| o.policy_dir.clone()),
        }
    }
}

/// Masquerade pod traffic to anything outside `cidrs` leaving `out_ifname`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatPlan {
    pub cidrs: Vec<IpNet>,
    pub out_ifname: String,
}

/// A podCIDR ferryd will not route, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unroutable {
    pub node: String,
    pub cidr: IpNet,
    pub reason: String,
}

/// Everything the node should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub node: String,
    /// The interface carrying the InternalIP, with that address.
    pub iface: LocalAddr,
    pub pod_cidrs: Vec<IpNet>,
    /// direct: one route per other node's podCIDR reached without
    /// encapsulation; empty for ospf/bgp.
    pub routes: Vec<RouteSpec>,
    /// The VXLAN device and the peers behind it, when encapsulation is
    /// used on this node (the routes through it are made once the device
    /// has an ifindex: [`VxlanPlan::routes`]).
    pub vxlan: Option<VxlanPlan>,
    /// With `--encryption wireguard`: the WireGuard device and every other
    /// node as its peer (then `routes` and `vxlan` are empty: WireGuard is
    /// routed UDP and needs no VXLAN beneath it).
    pub wireguard: Option<WgPlan>,
    pub unroutable: Vec<Unroutable>,
    pub nat: NatPlan,
    pub frr: Option<FrrSpec>,
    pub fast_path: Option<FastPathPlan>,
    pub conflist: String,
    /// Whether the node has an IPv6 podCIDR (IPv6 forwarding needed).
    pub ipv6: bool,
    /// How many Nodes the state was computed from.
    pub nodes_seen: usize,
}

/// Why there is no desired state yet: the agent waits and says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("node {0} has no podCIDR yet")]
    NoPodCidr(String),
    #[error("node {0} needs an IPv4 InternalIP as FRR router ID")]
    NoRouterId(String),
}

/// Computes the desired state.
pub fn compute(s: &Settings, nodes: &Nodes, local: &[LocalAddr]) -> Result<Desired, NotReady> {
    let own = discovery::find_own(nodes, s.node_name.as_deref(), local)?;
    let iface = discovery::node_interface(own, local)?.clone();
    if own.pod_cidrs.is_empty() {
        return Err(NotReady::NoPodCidr(own.name.clone()));
    }
    let mut wg = None;
    let (routes, vxlan, unroutable) = match (s.routing, s.encryption) {
        (Routing::Direct, Encryption::Wireguard) => {
            let (plan, bad) = wireguard::plan(own, nodes, &iface, s.wireguard_port);
            wg = Some(plan);
            (Vec::new(), None, bad)
        }
        (Routing::Direct, Encryption::None) => {
            direct_routes(own, nodes, local, &iface, s.encapsulation)
        }
        (Routing::Ospf | Routing::Bgp, _) => (Vec::new(), None, Vec::new()),
    };
    let frr = match s.routing {
        Routing::Direct => None,
        Routing::Ospf | Routing::Bgp => Some(frr_plan(s, own, nodes, &iface)?),
    };
    let mut nat_cidrs: Vec<IpNet> = if s.cluster_cidrs.is_empty() {
        nodes
            .values()
            .flat_map(|n| n.pod_cidrs.iter().copied())
            .collect()
    } else {
        s.cluster_cidrs.clone()
    };
    nat_cidrs.sort();
    nat_cidrs.dedup();
    // Pods' packets must fit the tunnel whenever this node may use it.
    let tunnel_mtu = vxlan.as_ref().map(|v| v.mtu).or(wg.as_ref().map(|w| w.mtu));
    let mtu = match tunnel_mtu {
        Some(t) => s.mtu.unwrap_or(iface.mtu).min(t),
        None => s.mtu.unwrap_or(iface.mtu),
    };
    Ok(Desired {
        node: own.name.clone(),
        pod_cidrs: own.pod_cidrs.clone(),
        conflist: render_conflist(
            &s.cni_version,
            &own.pod_cidrs,
            mtu,
            &s.ipam_data_dir,
            s.fast_path.as_deref(),
            s.policy_dir.as_deref(),
        ),
        // With WireGuard, flows to other nodes stay in the stack both ways:
        // the program is not on the TUN device, so a flow it sent into
        // ferry.wg would come back untracked and its replies be INVALID
        // to conntrack (kube-proxy drops those). Only this node's pods.
        fast_path: s.fast_path.as_ref().map(|dir| {
            let cidrs = if wg.is_some() {
                &own.pod_cidrs
            } else {
                &nat_cidrs
            };
            FastPathPlan::new(dir.clone(), iface.ifindex, cidrs)
        }),
        ipv6: own.pod_cidrs.iter().any(|c| matches!(c, IpNet::V6(_))),
        nat: NatPlan {
            cidrs: nat_cidrs,
            out_ifname: iface.ifname.clone(),
        },
        iface,
        routes,
        vxlan,
        wireguard: wg,
        unroutable,
        frr,
        nodes_seen: nodes.len(),
    })
}

/// direct mode: a route to each other node's podCIDRs via its InternalIP
/// of the same family when that address is on a directly connected
/// subnet, or through VXLAN (see [`crate::vxlan`]) when `encap` says so:
/// `always`, or `cross-subnet` and the node's IPv4 InternalIP is not on a
/// connected subnet. Everything else is reported, not half-routed.
fn direct_routes(
    own: &NodeInfo,
    nodes: &Nodes,
    local: &[LocalAddr],
    iface: &LocalAddr,
    encap: Encapsulation,
) -> (Vec<RouteSpec>, Option<VxlanPlan>, Vec<Unroutable>) {
    let node_ifindex = iface.ifindex;
    let mut routes: Vec<RouteSpec> = Vec::new();
    let mut peers: Vec<VxlanPeer> = Vec::new();
    let mut bad = Vec::new();
    // The underlay: this node's IPv4 InternalIP on a local interface.
    let underlay = own.internal_ips.iter().find_map(|ip| match ip {
        std::net::IpAddr::V4(v4) => local.iter().find(|a| a.net.addr() == *ip).map(|a| (*v4, a)),
        _ => None,
    });
    for node in nodes.values().filter(|n| n.name != own.name) {
        let peer_v4 = match node.internal_ip(true) {
            Some(std::net::IpAddr::V4(a)) => Some(a),
            _ => None,
        };
        let tunnel = match encap {
            Encapsulation::Never => false,
            Encapsulation::Always => true,
            Encapsulation::CrossSubnet => peer_v4.is_some_and(|ip| {
                discovery::connected_interface(ip.into(), local, Some(node_ifindex)).is_none()
            }),
        };
        let mut tunnelled = Vec::new();
        for &cidr in &node.pod_cidrs {
            let mut skip = |reason: String| {
                bad.push(Unroutable {
                    node: node.name.clone(),
                    cidr,
                    reason,
                })
            };
            if own.pod_cidrs.iter().any(|c| overlaps(c, &cidr)) {
                skip(format!("overlaps this node's podCIDRs {:?}", own.pod_cidrs));
                continue;
            }
            let taken = routes
                .iter()
                .map(|r| (r.dst, r.node.as_str()))
                .chain(
                    peers
                        .iter()
                        .flat_map(|p| p.cidrs.iter().map(|c| (*c, p.node.as_str()))),
                )
                .chain(tunnelled.iter().map(|c| (*c, node.name.as_str())))
                .find(|(dst, _)| overlaps(dst, &cidr));
            if let Some((dst, by)) = taken {
                skip(format!("overlaps {dst} of node {by}"));
                continue;
            }
            if tunnel {
                if peer_v4.is_none() {
                    skip(format!(
                        "{VXLAN_IFNAME} needs an IPv4 InternalIP of the node"
                    ));
                } else if underlay.is_none() {
                    skip(format!(
                        "{VXLAN_IFNAME} needs an IPv4 InternalIP of this node on a local interface"
                    ));
                } else {
                    tunnelled.push(cidr);
                }
                continue;
            }
            let Some(via) = node.internal_ip(cidr.addr().is_ipv4()) else {
                skip("no InternalIP of the podCIDR's family".into());
                continue;
            };
            match discovery::connected_interface(via, local, Some(node_ifindex)) {
                Some(hop) => routes.push(RouteSpec {
                    dst: cidr,
                    via,
                    oif: hop.ifindex,
                    onlink: false,
                    node: node.name.clone(),
                }),
                None => skip(format!(
                    "InternalIP {via} is not on a directly connected subnet{}",
                    if encap == Encapsulation::Never {
                        " (--encapsulation never)"
                    } else {
                        ""
                    }
                )),
            }
        }
        if let (Some(underlay), false) = (peer_v4, tunnelled.is_empty()) {
            peers.push(VxlanPeer {
                node: node.name.clone(),
                underlay,
                cidrs: tunnelled,
            });
        }
    }
    routes.sort();
    peers.sort();
    let vxlan = match underlay {
        Some((ip, a)) if encap == Encapsulation::Always || !peers.is_empty() => {
            let mut plan = VxlanPlan::new(ip, a.ifindex, a.mtu, &own.pod_cidrs);
            plan.peers = peers;
            Some(plan)
        }
        _ => None,
    };
    (routes, vxlan, bad)
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn frr_plan(
    s: &Settings,
    own: &NodeInfo,
    nodes: &Nodes,
    iface: &LocalAddr,
) -> Result<FrrSpec, NotReady> {
    let Some(IpAddr::V4(router_id)) = own.internal_ip(true) else {
        return Err(NotReady::NoRouterId(own.name.clone()));
    };
    let node_ip = iface.net.addr();
    let peers = nodes
        .values()
        .filter(|n| n.name != own.name)
        .flat_map(|n| n.internal_ips.iter().copied())
        .filter(|ip| *ip != node_ip)
        .collect();
    // Secrets and the kernel's IPv6 forwarding state are filled in when
    // the spec is applied (frr_glue), never kept in the desired state.
    let mut spec = FrrSpec::new(
        if s.routing == Routing::Bgp {
            Mode::Bgp
        } else {
            Mode::Ospf
        },
        &own.name,
        router_id,
        &iface.ifname,
        node_ip,
        own.pod_cidrs.clone(),
    );
    spec.advertise = match s.advertise {
        Advertise::Aggregate => ferry_frr::Advertise::Aggregate,
        Advertise::Pods => ferry_frr::Advertise::Pods,
    };
    spec.peers = peers;
    spec.asn = s.bgp_asn;
    Ok(spec)
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
