//! Neighbour (ARP / NDP) entries: permanent entries and their dump.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::RouteType;
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{NetlinkError, Target};
use crate::{Family, Handle};

/// `NUD_PERMANENT`: a static entry, never probed, never expired.
pub const NUD_PERMANENT: u16 = 0x80;

/// One neighbour-table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// The link it is on.
    pub index: u32,
    pub ip: IpAddr,
    /// The link-layer address, when the entry has one (6 bytes on Ethernet).
    pub lladdr: Option<Vec<u8>>,
    /// `NUD_*` bits.
    pub state: u16,
}

impl Neighbour {
    /// A static entry (`nud permanent`).
    pub fn is_permanent(&self) -> bool {
        self.state & NUD_PERMANENT != 0
    }

    fn from_msg(msg: NeighbourMessage) -> Option<Neighbour> {
        Family::from_af(msg.header.family)?;
        let mut ip = None;
        let mut lladdr = None;
        for attr in msg.attributes {
            match attr {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(a.into()),
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => ip = Some(a.into()),
                NeighbourAttribute::LinkLayerAddress(l) => lladdr = Some(l),
                _ => {}
            }
        }
        Some(Neighbour {
            index: msg.header.ifindex,
            ip: ip?,
            lladdr,
            state: u16::from(msg.header.state),
        })
    }
}

fn neigh_msg(index: u32, ip: IpAddr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = Family::of(ip).to_af();
    msg.header.ifindex = index;
    msg.header.kind = RouteType::Unicast;
    msg.attributes
        .push(NeighbourAttribute::Destination(match ip {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
    msg
}

impl Handle {
    /// Installs (or replaces) a permanent entry `ip lladdr mac` on link
    /// `index`, like `ip neigh replace IP lladdr MAC dev DEV nud permanent`.
    pub fn set_permanent_neighbour(
        &mut self,
        index: u32,
        ip: IpAddr,
        mac: [u8; 6],
    ) -> Result<(), NetlinkError> {
        let mut msg = neigh_msg(index, ip);
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        self.request(
            "RTM_NEWNEIGH",
            &Target::Neigh { index, ip },
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )?;
        Ok(())
    }

    /// Removes the entry for `ip` on link `index`. `Ok(false)` if there was
    /// none.
    pub fn delete_neighbour(&mut self, index: u32, ip: IpAddr) -> Result<bool, NetlinkError> {
        match self.request(
            "RTM_DELNEIGH",
            &Target::Neigh { index, ip },
            RouteNetlinkMessage::DelNeighbour(neigh_msg(index, ip)),
            0,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The neighbour entries of `family`, of all links or only of `index`.
    pub fn neighbours(
        &mut self,
        family: Family,
        index: Option<u32>,
    ) -> Result<Vec<Neighbour>, NetlinkError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = family.to_af();
        // A strictly checked dump wants a zeroed header (ifindex, state,
        // type); the kernel filters by the NDA_IFINDEX attribute instead.
        msg.header.kind = RouteType::Unspec;
        if let Some(i) = index {
            msg.attributes.push(NeighbourAttribute::IfIndex(i));
        }
        let msgs = self.dump(
            "RTM_GETNEIGH",
            &Target::Dump("neighbours"),
            RouteNetlinkMessage::GetNeighbour(msg),
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => Neighbour::from_msg(n),
                _ => None,
            })
            .filter(|n| index.is_none_or(|i| n.index == i))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_roundtrip() {
        let mut msg = neigh_msg(7, "169.254.1.1".parse().unwrap());
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(vec![0xee; 6]));
        let n = Neighbour::from_msg(msg).unwrap();
        assert_eq!(n.index, 7);
        assert_eq!(n.ip, "169.254.1.1".parse::<IpAddr>().unwrap());
        assert_eq!(n.lladdr.as_deref(), Some(&[0xee; 6][..]));
        assert!(n.is_permanent());
        let v6 = Neighbour::from_msg(neigh_msg(2, "fe80::1".parse().unwrap())).unwrap();
        assert!(!v6.is_permanent());
        assert_eq!(v6.lladdr, None);
    }
}
