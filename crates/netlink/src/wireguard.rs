//! The kernel's WireGuard links (kind `wireguard`, Linux ≥ 5.6). The
//! device's keys and peers are generic netlink's (`ferry-wireguard`);
//! rtnetlink only makes the link.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{NetlinkError, Target};
use crate::{check_ifname, Handle};

impl Handle {
    /// Creates a WireGuard link (`CREATE|EXCL`), administratively down. A
    /// kernel without WireGuard refuses it (`EOPNOTSUPP`, "Unknown device
    /// type"): see [`NetlinkError::errno`].
    pub fn create_wireguard(&mut self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        const OP: &str = "RTM_NEWLINK";
        check_ifname(OP, name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Wireguard,
            )]));
        self.request(
            OP,
            &Target::Name(name.to_string()),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }
}
