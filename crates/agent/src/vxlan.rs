//! VXLAN to the nodes a plain route cannot reach (`--encapsulation`): one
//! device, [`VXLAN_IFNAME`], per node, and for each peer behind it a
//! route, a permanent neighbour and a static FDB entry — no multicast, no
//! flooding, no learning. Everything is derived from the Node objects:
//!
//! * a node's VTEP addresses are the network addresses of its podCIDRs
//!   (`10.244.1.0/32`, `fd00:10:244:1::/128`), which IPAM never hands out
//!   (it reserves the network address; ranges start at network + 1);
//! * a node's VTEP MAC is `0e:f7:` + its IPv4 InternalIP (locally
//!   administered, unicast), so peers compute it with no extra API reads;
//! * per peer: `podCIDR via <peer VTEP> dev ferry.vxlan onlink proto 201`
//!   (made by [`crate::routes`]), `<peer VTEP> lladdr <peer MAC>
//!   permanent`, and FDB `<peer MAC> dst <peer InternalIP>`.
//!
//! The underlay is IPv4 (the node's IPv4 InternalIP); pod CIDRs of both
//! families go over it. Like [`crate::routes`]: a pure [`plan`] from what
//! the device holds to what is wanted, and [`converge`] to apply it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ferry_netlink::{
    AddrOptions, Family, FdbEntry, Handle, Neighbour, VxlanSpec, VXLAN_V4_OVERHEAD,
};
use ipnet::IpNet;

use crate::routes::RouteSpec;
use crate::AgentError;

/// The device's name.
pub const VXLAN_IFNAME: &str = "ferry.vxlan";
/// The VXLAN network identifier ferry uses.
pub const VNI: u32 = 1;

/// A node's VTEP MAC: `0e:f7:a.b.c.d` from its IPv4 InternalIP.
pub fn vtep_mac(node_ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = node_ip.octets();
    [0x0e, 0xf7, a, b, c, d]
}

/// A node's VTEP address for one of its podCIDRs: the network address.
pub fn vtep_addr(cidr: &IpNet) -> IpAddr {
    cidr.network()
}

/// The VTEP address as a host prefix (`/32`, `/128`).
pub fn vtep_net(cidr: &IpNet) -> IpNet {
    let a = vtep_addr(cidr);
    IpNet::new(a, if a.is_ipv4() { 32 } else { 128 }).expect("host prefix")
}

/// Routes into a tunnel device (`ifindex`): per (node, podCIDRs), each
/// podCIDR `via` its network address, `onlink` (VXLAN and WireGuard).
pub fn tunnel_routes<'a>(
    peers: impl Iterator<Item = (&'a str, &'a [IpNet])>,
    ifindex: u32,
) -> Vec<RouteSpec> {
    peers
        .flat_map(|(node, cidrs)| {
            cidrs.iter().map(move |c| RouteSpec {
                dst: *c,
                via: vtep_addr(c),
                oif: ifindex,
                onlink: true,
                node: node.to_string(),
            })
        })
        .collect()
}

/// The device's MTU over an uplink of `uplink_mtu`.
pub fn device_mtu(uplink_mtu: u32) -> u32 {
    uplink_mtu.saturating_sub(VXLAN_V4_OVERHEAD)
}

/// A node reached through the tunnel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VxlanPeer {
    pub node: String,
    /// Its IPv4 InternalIP: where its VXLAN packets go.
    pub underlay: Ipv4Addr,
    /// Its podCIDRs routed through the tunnel.
    pub cidrs: Vec<IpNet>,
}

impl VxlanPeer {
    pub fn mac(&self) -> [u8; 6] {
        vtep_mac(self.underlay)
    }
}

/// The device and its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanPlan {
    /// This node's IPv4 InternalIP.
    pub local: Ipv4Addr,
    /// The interface carrying it.
    pub uplink: u32,
    pub mtu: u32,
    /// This node's VTEP addresses (one per own podCIDR).
    pub addrs: Vec<IpNet>,
    pub peers: Vec<VxlanPeer>,
}

impl VxlanPlan {
    pub fn new(local: Ipv4Addr, uplink: u32, uplink_mtu: u32, own_cidrs: &[IpNet]) -> Self {
        VxlanPlan {
            local,
            uplink,
            mtu: device_mtu(uplink_mtu),
            addrs: own_cidrs.iter().map(vtep_net).collect(),
            peers: Vec::new(),
        }
    }

    pub fn spec(&self) -> VxlanSpec {
        VxlanSpec::new(
            VXLAN_IFNAME,
            VNI,
            self.local,
            self.uplink,
            self.mtu,
            vtep_mac(self.local),
        )
    }

    /// The routes through the device (`ifindex`): one per peer podCIDR.
    pub fn routes(&self, ifindex: u32) -> Vec<RouteSpec> {
        tunnel_routes(
            self.peers
                .iter()
                .map(|p| (p.node.as_str(), p.cidrs.as_slice())),
            ifindex,
        )
    }

    /// What the eBPF fast path needs to encapsulate and decapsulate for
    /// the device (`ifindex`) itself: the device's own settings
    /// ([`VxlanPlan::spec`]) and its FDB.
    pub fn fast_path_tunnel(&self, ifindex: u32) -> ferry_ebpf::VxlanTunnel {
        let spec = self.spec();
        ferry_ebpf::VxlanTunnel {
            ifindex,
            uplink: spec.uplink,
            local: spec.local,
            mac: spec.mac,
            vni: spec.vni,
            port: spec.port,
            peers: self.peers.iter().map(|p| (p.mac(), p.underlay)).collect(),
        }
    }

    fn fdb(&self) -> BTreeMap<[u8; 6], IpAddr> {
        self.peers
            .iter()
            .map(|p| (p.mac(), IpAddr::V4(p.underlay)))
            .collect()
    }

    fn neighbours(&self) -> BTreeMap<IpAddr, [u8; 6]> {
        self.peers
            .iter()
            .flat_map(|p| p.cidrs.iter().map(|c| (vtep_addr(c), p.mac())))
            .collect()
    }
}

/// What the device holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VxlanState {
    pub addrs: Vec<IpNet>,
    pub fdb: Vec<FdbEntry>,
    pub neighbours: Vec<Neighbour>,
}

/// One change on the device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum VxlanOp {
    AddAddr(IpNet),
    SetFdb([u8; 6], IpAddr),
    /// Delete every remote of the MAC, then set this one.
    ResetFdb([u8; 6], IpAddr),
    SetNeigh(IpAddr, [u8; 6]),
    DelNeigh(IpAddr),
    DelFdb([u8; 6]),
    DelAddr(IpNet),
}

impl VxlanOp {
    fn is_delete(&self) -> bool {
        matches!(
            self,
            VxlanOp::DelNeigh(_) | VxlanOp::DelFdb(_) | VxlanOp::DelAddr(_)
        )
    }
}

fn link_local(net: &IpNet) -> bool {
    match net.addr() {
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
        IpAddr::V4(a) => a.is_link_local(),
    }
}

/// Pure: the changes that make the device hold exactly `want`'s addresses,
/// FDB entries and permanent neighbours. Additions come first, removals
/// last. Link-local addresses and the kernel's own (non-permanent)
/// neighbour entries of other addresses are left alone.
pub fn plan(current: &VxlanState, want: &VxlanPlan) -> Vec<VxlanOp> {
    let mut ops = Vec::new();
    let have_addrs: BTreeSet<IpNet> = current
        .addrs
        .iter()
        .copied()
        .filter(|a| !link_local(a))
        .collect();
    let want_addrs: BTreeSet<IpNet> = want.addrs.iter().copied().collect();
    ops.extend(
        want_addrs
            .difference(&have_addrs)
            .map(|a| VxlanOp::AddAddr(*a)),
    );
    ops.extend(
        have_addrs
            .difference(&want_addrs)
            .map(|a| VxlanOp::DelAddr(*a)),
    );

    let want_fdb = want.fdb();
    let mut have_fdb: BTreeMap<[u8; 6], Vec<&FdbEntry>> = BTreeMap::new();
    for e in &current.fdb {
        have_fdb.entry(e.mac).or_default().push(e);
    }
    for (mac, dst) in &want_fdb {
        match have_fdb.get(mac).map(Vec::as_slice) {
            Some([e]) if e.dst == Some(*dst) && e.is_permanent() => {}
            // Several remotes for one MAC: start again from none.
            Some([_, _, ..]) => ops.push(VxlanOp::ResetFdb(*mac, *dst)),
            _ => ops.push(VxlanOp::SetFdb(*mac, *dst)),
        }
    }
    ops.extend(
        have_fdb
            .keys()
            .filter(|m| !want_fdb.contains_key(*m))
            .map(|m| VxlanOp::DelFdb(*m)),
    );

    let want_neigh = want.neighbours();
    for (ip, mac) in &want_neigh {
        let ok = current
            .neighbours
            .iter()
            .any(|n| n.ip == *ip && n.is_permanent() && n.lladdr.as_deref() == Some(&mac[..]));
        if !ok {
            ops.push(VxlanOp::SetNeigh(*ip, *mac));
        }
    }
    ops.extend(
        current
            .neighbours
            .iter()
            .filter(|n| n.is_permanent() && !want_neigh.contains_key(&n.ip))
            .map(|n| VxlanOp::DelNeigh(n.ip)),
    );
    // Additions first, removals last (a stable sort).
    ops.sort_by_key(VxlanOp::is_delete);
    ops
}

fn read(h: &mut Handle, index: u32) -> Result<VxlanState, AgentError> {
    let mut neighbours = h
        .neighbours(Family::V4, Some(index))
        .map_err(|e| AgentError::netlink("list neighbours", e))?;
    neighbours.extend(
        h.neighbours(Family::V6, Some(index))
            .map_err(|e| AgentError::netlink("list neighbours", e))?,
    );
    Ok(VxlanState {
        addrs: h
            .addresses(Some(index))
            .map_err(|e| AgentError::netlink("list addresses", e))?
            .into_iter()
            .filter(|a| a.index == index)
            .map(|a| a.addr)
            .collect(),
        fdb: h
            .fdb(index)
            .map_err(|e| AgentError::netlink("list fdb", e))?,
        neighbours,
    })
}

fn apply_op(h: &mut Handle, index: u32, op: &VxlanOp) -> Result<(), AgentError> {
    let what = format!("{VXLAN_IFNAME}: {op:?}");
    let r = match op {
        VxlanOp::AddAddr(a) => h.add_address(index, *a, AddrOptions::nodad()),
        VxlanOp::DelAddr(a) => h.delete_address(index, *a).map(drop),
        VxlanOp::SetFdb(mac, dst) => h.set_fdb(index, *mac, *dst),
        VxlanOp::ResetFdb(mac, dst) => h
            .delete_fdb(index, *mac)
            .and_then(|_| h.set_fdb(index, *mac, *dst)),
        VxlanOp::DelFdb(mac) => h.delete_fdb(index, *mac).map(drop),
        VxlanOp::SetNeigh(ip, mac) => h.set_permanent_neighbour(index, *ip, *mac),
        VxlanOp::DelNeigh(ip) => h.delete_neighbour(index, *ip).map(drop),
    };
    r.map_err(|e| AgentError::netlink(what, e))
}

/// Makes the device match `want`: created or updated with its addresses,
/// FDB and neighbours; its ifindex and whether anything changed. Routes
/// through it are [`crate::routes`]'s.
pub fn converge(h: &mut Handle, want: &VxlanPlan) -> Result<(u32, bool), AgentError> {
    let (index, mut changed) = h
        .ensure_vxlan(&want.spec())
        .map_err(|e| AgentError::netlink(format!("set up {VXLAN_IFNAME}"), e))?;
    let ops = plan(&read(h, index)?, want);
    for op in &ops {
        apply_op(h, index, op)?;
        tracing::info!(device = VXLAN_IFNAME, ?op, "vxlan changed");
    }
    changed |= !ops.is_empty();
    Ok((index, changed))
}

/// For `status`: the device as the kernel has it (`None` without one),
/// e.g. `ferry.vxlan vni 1 local 172.16.97.75 port 4789 mtu 1450: 1 FDB
/// entries, 2 neighbours`.
pub fn describe(h: &mut Handle) -> Result<Option<String>, AgentError> {
    let Some(v) = h
        .vxlan_by_name(VXLAN_IFNAME)
        .map_err(|e| AgentError::netlink(format!("look up {VXLAN_IFNAME}"), e))?
    else {
        return Ok(None);
    };
    let state = read(h, v.link.index)?;
    let opt = |o: Option<String>| o.unwrap_or_else(|| "?".into());
    Ok(Some(format!(
        "{VXLAN_IFNAME} vni {} local {} port {} mtu {}: {} FDB entries, {} neighbours",
        opt(v.vni.map(|x| x.to_string())),
        opt(v.local.map(|x| x.to_string())),
        opt(v.port.map(|x| x.to_string())),
        v.link.mtu,
        state.fdb.len(),
        state.neighbours.iter().filter(|n| n.is_permanent()).count()
    )))
}

/// Deletes the device, and with it its addresses, FDB, neighbours and
/// the routes through it. Whether it existed.
pub fn remove(h: &mut Handle) -> Result<bool, AgentError> {
    h.delete_link_by_name(VXLAN_IFNAME)
        .map_err(|e| AgentError::netlink(format!("delete {VXLAN_IFNAME}"), e))
}

#[cfg(test)]
#[path = "vxlan_tests.rs"]
mod tests;
