//! VXLAN links (kind `vxlan`) for a point-to-point overlay: one VNI, a
//! local underlay address, UDP port 4789, no multicast group, no default
//! remote and no learning — every remote is a static FDB entry
//! ([`crate::fdb`]) and every overlay neighbour a permanent entry.

use std::net::Ipv4Addr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{NetlinkError, Target};
use crate::link::Link;
use crate::{check_ifname, Handle};

/// The IANA VXLAN port.
pub const VXLAN_PORT: u16 = 4789;
/// What VXLAN over an IPv4 underlay adds to each packet: outer IPv4 (20),
/// UDP (8), VXLAN (8) and inner Ethernet (14) headers.
pub const VXLAN_V4_OVERHEAD: u32 = 50;

/// A VXLAN link to create (or what a dump says one is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    /// Underlay source address.
    pub local: Ipv4Addr,
    /// The underlay link (`dev` of `ip link add ... type vxlan`).
    pub uplink: u32,
    /// UDP destination port.
    pub port: u16,
    /// Outer TTL; 0 = inherit the route's default.
    pub ttl: u8,
    pub mtu: u32,
    pub mac: [u8; 6],
    /// Source-address learning (ferry wants it off).
    pub learning: bool,
}

impl VxlanSpec {
    /// `nolearning`, port 4789, TTL 64.
    pub fn new(name: &str, vni: u32, local: Ipv4Addr, uplink: u32, mtu: u32, mac: [u8; 6]) -> Self {
        VxlanSpec {
            name: name.to_string(),
            vni,
            local,
            uplink,
            port: VXLAN_PORT,
            ttl: 64,
            mtu,
            mac,
            learning: false,
        }
    }

    fn info(&self) -> Vec<InfoVxlan> {
        vec![
            InfoVxlan::Id(self.vni),
            InfoVxlan::Local(self.local),
            InfoVxlan::Link(self.uplink),
            InfoVxlan::Port(self.port),
            InfoVxlan::Ttl(self.ttl),
            InfoVxlan::Learning(self.learning),
        ]
    }
}

/// A VXLAN link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    pub link: Link,
    pub vni: Option<u32>,
    pub local: Option<Ipv4Addr>,
    pub uplink: Option<u32>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
    pub learning: Option<bool>,
    /// A multicast group or default remote (`group`/`remote`), if any.
    pub group: Option<Ipv4Addr>,
}

impl Vxlan {
    pub(crate) fn from_msg(msg: LinkMessage) -> Option<Vxlan> {
        let mut info = Vec::new();
        for attr in &msg.attributes {
            if let LinkAttribute::LinkInfo(infos) = attr {
                for i in infos {
                    if let LinkInfo::Data(InfoData::Vxlan(v)) = i {
                        info = v.clone();
                    }
                }
            }
        }
        let link = Link::from_msg(msg);
        if link.kind.as_deref() != Some("vxlan") {
            return None;
        }
        let mut out = Vxlan {
            link,
            vni: None,
            local: None,
            uplink: None,
            port: None,
            ttl: None,
            learning: None,
            group: None,
        };
        for i in info {
            match i {
                InfoVxlan::Id(v) => out.vni = Some(v),
                InfoVxlan::Local(a) => out.local = Some(a),
                InfoVxlan::Link(l) => out.uplink = Some(l),
                InfoVxlan::Port(p) => out.port = Some(p),
                InfoVxlan::Ttl(t) => out.ttl = Some(t),
                InfoVxlan::Learning(l) => out.learning = Some(l),
                InfoVxlan::Group(g) if !g.is_unspecified() => out.group = Some(g),
                _ => {}
            }
        }
        Some(out)
    }

    /// Whether the link is what `spec` asks for, apart from the MTU and
    /// the MAC (both changeable in place).
    pub fn matches(&self, spec: &VxlanSpec) -> bool {
        self.vni == Some(spec.vni)
            && self.local == Some(spec.local)
            && self.uplink == Some(spec.uplink)
            && self.port == Some(spec.port)
            && self.ttl == Some(spec.ttl)
            && self.learning == Some(spec.learning)
            && self.group.is_none()
    }
}

impl Handle {
    /// Creates the VXLAN link (`CREATE|EXCL`: `EEXIST` if the name is
    /// taken), administratively down.
    pub fn create_vxlan(&mut self, spec: &VxlanSpec) -> Result<(), NetlinkError> {
        const OP: &str = "RTM_NEWLINK";
        check_ifname(OP, &spec.name)?;
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.name.clone()));
        msg.attributes.push(LinkAttribute::Mtu(spec.mtu));
        msg.attributes
            .push(LinkAttribute::Address(spec.mac.to_vec()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(spec.info())),
        ]));
        self.request(
            OP,
            &Target::Name(spec.name.clone()),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// The VXLAN link called `name`; `Ok(None)` if there is no link of
    /// that name or it is not a VXLAN link.
    pub fn vxlan_by_name(&mut self, name: &str) -> Result<Option<Vxlan>, NetlinkError> {
        Ok(self.link_msg_by_name(name)?.and_then(Vxlan::from_msg))
    }

    /// Makes the link called `spec.name` the VXLAN link `spec`, up:
    /// created when missing, its MTU and MAC changed in place, re-created
    /// when its VXLAN parameters (VNI, local, uplink, port, TTL, learning)
    /// differ or it is another kind of link. Returns the ifindex and
    /// whether anything changed.
    pub fn ensure_vxlan(&mut self, spec: &VxlanSpec) -> Result<(u32, bool), NetlinkError> {
        let mut changed = false;
        let current = self.vxlan_by_name(&spec.name)?;
        let keep = match &current {
            Some(v) if v.matches(spec) => Some(v.link.clone()),
            Some(v) => {
                self.delete_link(v.link.index)?;
                None
            }
            None => {
                // Another kind of link of that name is in the way.
                self.delete_link_by_name(&spec.name)?;
                None
            }
        };
        let link = match keep {
            Some(l) => l,
            None => {
                self.create_vxlan(spec)?;
                changed = true;
                self.link_by_name(&spec.name)?.ok_or_else(|| {
                    NetlinkError::invalid("RTM_NEWLINK", format!("{} vanished", spec.name))
                })?
            }
        };
        if link.mtu != spec.mtu {
            self.set_mtu(link.index, spec.mtu)?;
            changed = true;
        }
        if link.mac != Some(spec.mac) {
            self.set_mac(link.index, spec.mac)?;
            changed = true;
        }
        if !link.up {
            self.set_up(link.index)?;
            changed = true;
        }
        Ok((link.index, changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_through_a_link_message() {
        let spec = VxlanSpec::new(
            "ferry.vxlan",
            4097,
            Ipv4Addr::new(10, 0, 0, 1),
            2,
            1450,
            [2; 6],
        );
        let mut msg = LinkMessage::default();
        msg.header.index = 9;
        msg.attributes = vec![
            LinkAttribute::IfName(spec.name.clone()),
            LinkAttribute::Mtu(spec.mtu),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Vxlan),
                LinkInfo::Data(InfoData::Vxlan(spec.info())),
            ]),
        ];
        let v = Vxlan::from_msg(msg.clone()).unwrap();
        assert!(v.matches(&spec), "{v:?}");
        assert_eq!(v.link.index, 9);
        let other = VxlanSpec {
            vni: 1,
            ..spec.clone()
        };
        assert!(!v.matches(&other));
        let learning = VxlanSpec {
            learning: true,
            ..spec
        };
        assert!(!v.matches(&learning));
        msg.attributes.pop();
        assert_eq!(Vxlan::from_msg(msg), None, "not a vxlan link");
    }
}
