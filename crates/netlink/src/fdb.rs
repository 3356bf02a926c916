//! Static forwarding-database entries of a VXLAN link (`bridge fdb ...
//! self`): AF_BRIDGE neighbour messages with `NTF_SELF`, a MAC
//! (`NDA_LLADDR`) and the remote tunnel endpoint (`NDA_DST`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::{NetlinkError, Target};
use crate::neigh::NUD_PERMANENT;
use crate::Handle;

/// One FDB entry of a link: frames to `mac` go to the VTEP `dst`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FdbEntry {
    pub index: u32,
    pub mac: [u8; 6],
    /// The remote VTEP (underlay address); `None` for entries without one
    /// (a bridge port's own addresses).
    pub dst: Option<IpAddr>,
    /// `NUD_*` bits.
    pub state: u16,
}

impl FdbEntry {
    pub fn is_permanent(&self) -> bool {
        self.state & NUD_PERMANENT != 0
    }

    fn from_msg(msg: NeighbourMessage) -> Option<FdbEntry> {
        if msg.header.family != AddressFamily::Bridge {
            return None;
        }
        let mut mac = None;
        let mut dst = None;
        for attr in msg.attributes {
            match attr {
                NeighbourAttribute::LinkLayerAddress(l) => mac = l.as_slice().try_into().ok(),
                NeighbourAttribute::Destination(a) => dst = ip_of(a),
                _ => {}
            }
        }
        Some(FdbEntry {
            index: msg.header.ifindex,
            mac: mac?,
            dst,
            state: u16::from(msg.header.state),
        })
    }
}

/// AF_BRIDGE messages carry NDA_DST as raw bytes; their length tells the
/// family.
fn ip_of(a: NeighbourAddress) -> Option<IpAddr> {
    match a {
        NeighbourAddress::Inet(a) => Some(a.into()),
        NeighbourAddress::Inet6(a) => Some(a.into()),
        NeighbourAddress::Other(b) => match b.len() {
            4 => Some(Ipv4Addr::from(<[u8; 4]>::try_from(b.as_slice()).ok()?).into()),
            16 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(b.as_slice()).ok()?).into()),
            _ => None,
        },
        _ => None,
    }
}

fn raw(ip: IpAddr) -> NeighbourAddress {
    NeighbourAddress::Other(match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    })
}

fn fdb_msg(index: u32, mac: [u8; 6]) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = index;
    msg.header.flags = NeighbourFlags::Own; // NTF_SELF: the device's own table
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    msg
}

fn target(index: u32, mac: [u8; 6]) -> Target {
    Target::Fdb { index, mac }
}

impl Handle {
    /// Sets the permanent entry `mac dst dst` on link `index`, replacing
    /// the remote of an existing entry for `mac`, like `bridge fdb replace
    /// MAC dev DEV dst IP self permanent`.
    pub fn set_fdb(&mut self, index: u32, mac: [u8; 6], dst: IpAddr) -> Result<(), NetlinkError> {
        let mut msg = fdb_msg(index, mac);
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::Destination(raw(dst)));
        self.request(
            "RTM_NEWNEIGH",
            &target(index, mac),
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )?;
        Ok(())
    }

    /// Removes the entry for `mac` (all its remotes) from link `index`.
    /// `Ok(false)` if there was none.
    pub fn delete_fdb(&mut self, index: u32, mac: [u8; 6]) -> Result<bool, NetlinkError> {
        match self.request(
            "RTM_DELNEIGH",
            &target(index, mac),
            RouteNetlinkMessage::DelNeighbour(fdb_msg(index, mac)),
            0,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The FDB entries of link `index` (for a VXLAN link: one per remote
    /// of each MAC).
    pub fn fdb(&mut self, index: u32) -> Result<Vec<FdbEntry>, NetlinkError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Bridge;
        // Strict checking: a zeroed header but for the port's ifindex.
        msg.header.ifindex = index;
        msg.header.kind = netlink_packet_route::route::RouteType::Unspec;
        let msgs = self.dump(
            "RTM_GETNEIGH",
            &Target::Dump("fdb"),
            RouteNetlinkMessage::GetNeighbour(msg),
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => FdbEntry::from_msg(n),
                _ => None,
            })
            .filter(|e| e.index == index)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_roundtrip() {
        let mac = [0x0e, 0xf7, 172, 16, 98, 76];
        let mut msg = fdb_msg(5, mac);
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::Destination(raw("172.16.98.76"
                .parse()
                .unwrap())));
        let e = FdbEntry::from_msg(msg).unwrap();
        assert_eq!(e.index, 5);
        assert_eq!(e.mac, mac);
        assert_eq!(e.dst, Some("172.16.98.76".parse().unwrap()));
        assert!(e.is_permanent());
        assert_eq!(
            ip_of(NeighbourAddress::Other(vec![0; 16])),
            Some("::".parse().unwrap())
        );
        assert_eq!(ip_of(NeighbourAddress::Other(vec![0; 3])), None);
        let mut inet = fdb_msg(5, mac);
        inet.header.family = AddressFamily::Inet;
        assert_eq!(FdbEntry::from_msg(inet), None);
    }
}
