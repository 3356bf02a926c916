//! WireGuard between nodes (`--encryption wireguard`): one device,
//! [`WG_IFNAME`], per node, and every other node a peer:
//!
//! * the node's private key is made on the node on first use and kept in
//!   `--wireguard-key-file` (0600, written atomically, never logged); its
//!   public key is published on the Node as [`KEY_ANNOTATION`];
//! * a peer: its published public key, endpoint `<InternalIP>:<port>` (of
//!   the family of this node's own InternalIP), allowed IPs = its
//!   podCIDRs (both families);
//! * per peer podCIDR: `podCIDR via <its network address> dev ferry.wg
//!   onlink proto 201` (made by [`crate::routes`]), as for VXLAN; the
//!   device holds this node's podCIDR network addresses (`/32`, `/128`),
//!   so the node's own packets to remote pods leave with a source the peer
//!   accepts;
//! * a node that has published no key (yet) is not routed: pod traffic to
//!   it never goes out in clear. Node↔node traffic is untouched.
//!
//! Like [`crate::vxlan`]: the pure [`plan`] from the Nodes to what is
//! wanted, and [`crate::wireguard_device::WgAgent::converge`] to apply it,
//! with the kernel's device where the kernel has one and `ferry-wg`
//! (userspace, over TUN) where it has none.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use ferry_wireguard::{DeviceConfig, PeerConfig, PrivateKey, PublicKey};
use ipnet::IpNet;

use crate::desired::Unroutable;
use crate::discovery::{LocalAddr, NodeInfo, Nodes};
use crate::routes::RouteSpec;
use crate::vxlan::{tunnel_routes, vtep_net};

/// The device's name.
pub const WG_IFNAME: &str = "ferry.wg";
/// The Node annotation holding a node's WireGuard public key (base64).
pub const KEY_ANNOTATION: &str = "ferry.dev/wireguard-public-key";

/// The device's MTU over an uplink of `uplink_mtu`, with an IPv6
/// underlay or not (60 bytes of overhead over IPv4, 80 over IPv6).
pub fn device_mtu(uplink_mtu: u32, ipv6_underlay: bool) -> u32 {
    uplink_mtu.saturating_sub(if ipv6_underlay {
        ferry_wireguard::V6_OVERHEAD
    } else {
        ferry_wireguard::V4_OVERHEAD
    })
}

/// A node reached through WireGuard.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WgPeer {
    pub node: String,
    pub public_key: PublicKey,
    pub endpoint: SocketAddr,
    pub cidrs: Vec<IpNet>,
}

/// The device and its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgPlan {
    pub port: u16,
    pub mtu: u32,
    /// This node's podCIDR network addresses, on the device.
    pub addrs: Vec<IpNet>,
    pub peers: Vec<WgPeer>,
}

impl WgPlan {
    /// The routes through the device (`ifindex`): one per peer podCIDR.
    pub fn routes(&self, ifindex: u32) -> Vec<RouteSpec> {
        tunnel_routes(
            self.peers
                .iter()
                .map(|p| (p.node.as_str(), p.cidrs.as_slice())),
            ifindex,
        )
    }

    /// The device's configuration with this node's `key`.
    pub fn device_config(&self, key: &PrivateKey) -> DeviceConfig {
        DeviceConfig::new(
            key,
            self.port,
            self.peers
                .iter()
                .map(|p| PeerConfig {
                    public_key: p.public_key,
                    endpoint: p.endpoint,
                    allowed_ips: p.cidrs.clone(),
                })
                .collect(),
        )
    }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Pure: the device and peers for `own` among `nodes`; `iface` is the
/// interface carrying this node's InternalIP (the underlay). Nodes (or
/// podCIDRs) that cannot be peers are reported, never routed in clear.
pub fn plan(
    own: &NodeInfo,
    nodes: &Nodes,
    iface: &LocalAddr,
    port: u16,
) -> (WgPlan, Vec<Unroutable>) {
    let v6 = iface.net.addr().is_ipv6();
    let mut peers: Vec<WgPeer> = Vec::new();
    let mut bad = Vec::new();
    // A key seen twice (a cloned machine) is nobody's.
    let mut keys: BTreeMap<PublicKey, String> = own
        .wireguard_key
        .as_deref()
        .and_then(|k| k.parse().ok())
        .map(|k| (k, own.name.clone()))
        .into_iter()
        .collect();
    for node in nodes.values().filter(|n| n.name != own.name) {
        let mut skip_all = |reason: String| {
            bad.extend(node.pod_cidrs.iter().map(|c| Unroutable {
                node: node.name.clone(),
                cidr: *c,
                reason: reason.clone(),
            }))
        };
        let key = match node.wireguard_key.as_deref().map(str::parse::<PublicKey>) {
            None => {
                skip_all(format!(
                    "no WireGuard public key published yet (annotation {KEY_ANNOTATION})"
                ));
                continue;
            }
            Some(Err(e)) => {
                skip_all(format!("annotation {KEY_ANNOTATION}: {e}"));
                continue;
            }
            Some(Ok(k)) => k,
        };
        if let Some(other) = keys.get(&key) {
            skip_all(format!("same WireGuard public key as node {other}"));
            continue;
        }
        let Some(ip) = node.internal_ip(!v6) else {
            skip_all(format!(
                "no InternalIP of this node's family ({}) for the WireGuard endpoint",
                if v6 { "IPv6" } else { "IPv4" }
            ));
            continue;
        };
        let mut cidrs = Vec::new();
        for &cidr in &node.pod_cidrs {
            let taken = own
                .pod_cidrs
                .iter()
                .map(|c| (*c, own.name.as_str()))
                .chain(
                    peers
                        .iter()
                        .flat_map(|p| p.cidrs.iter().map(|c| (*c, p.node.as_str()))),
                )
                .find(|(c, _)| overlaps(c, &cidr));
            match taken {
                Some((c, by)) => bad.push(Unroutable {
                    node: node.name.clone(),
                    cidr,
                    reason: format!("overlaps {c} of node {by}"),
                }),
                None => cidrs.push(cidr),
            }
        }
        if cidrs.is_empty() {
            continue;
        }
        keys.insert(key, node.name.clone());
        peers.push(WgPeer {
            node: node.name.clone(),
            public_key: key,
            endpoint: SocketAddr::new(ip, port),
            cidrs,
        });
    }
    peers.sort();
    let plan = WgPlan {
        port,
        mtu: device_mtu(iface.mtu, v6),
        addrs: own.pod_cidrs.iter().map(vtep_net).collect(),
        peers,
    };
    (plan, bad)
}

/// How long ferryd leaves a handshake it started to WireGuard (which
/// retries it for 90 s, REKEY_ATTEMPT_TIME) before it starts another.
pub const HANDSHAKE_RETRY: std::time::Duration = std::time::Duration::from_secs(90);

/// Pure: the peers to start a handshake with now, each with where the
/// wake-up datagram goes: peers of `plan` with no handshake on the device
/// (`state`) that ferryd has not woken (`woken`: when) in the last
/// [`HANDSHAKE_RETRY`].
///
/// Why: a device made afresh (a new `ferry-wg` after the pod restarted,
/// or a rotated key) has no sessions, while its peers still hold the old
/// ones and keep sending with them; the new device drops those packets,
/// and a peer that only sends starts a new handshake only after 15 s
/// without an answer (KEEPALIVE + REKEY_TIMEOUT). A packet routed into
/// the device towards the peer makes the device start the handshake at
/// once. The datagram goes to the peer's first podCIDR's network address
/// (which the peer holds on its own device), discard port: the peer's
/// stack drops it, or answers "port unreachable".
pub fn handshakes_to_start(
    plan: &WgPlan,
    state: &ferry_wireguard::DeviceState,
    woken: &BTreeMap<PublicKey, std::time::Instant>,
    now: std::time::Instant,
) -> Vec<(String, PublicKey, SocketAddr)> {
    plan.peers
        .iter()
        .filter(|p| {
            !state
                .peers
                .get(&p.public_key)
                .is_some_and(ferry_wireguard::PeerState::has_handshake)
        })
        .filter(|p| {
            woken
                .get(&p.public_key)
                .is_none_or(|t| now.saturating_duration_since(*t) >= HANDSHAKE_RETRY)
        })
        .filter_map(|p| {
            let cidr = p.cidrs.first()?;
            Some((
                p.node.clone(),
                p.public_key,
                SocketAddr::new(cidr.network(), WAKE_PORT),
            ))
        })
        .collect()
}

/// The wake-up datagram's port (discard).
pub const WAKE_PORT: u16 = 9;

/// Whether `a` is link-local (left alone on the device).
pub(crate) fn link_local(a: &IpNet) -> bool {
    match a.addr() {
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
        IpAddr::V4(v4) => v4.is_link_local(),
    }
}

#[cfg(test)]
#[path = "wireguard_tests.rs"]
mod tests;
