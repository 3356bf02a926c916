//! Links: lookup, dump, veth creation, up/down/MTU, deletion.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{NetlinkError, Target};
use crate::{check_ifname, Handle};

/// A network interface as reported by RTM_NEWLINK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    /// Hardware address, when it is a 6-byte (Ethernet) one.
    pub mac: Option<[u8; 6]>,
    /// `IFF_UP` (administratively up).
    pub up: bool,
    /// `IFLA_INFO_KIND`: `"veth"`, `"bridge"`, ...; `None` for e.g. `lo`.
    pub kind: Option<String>,
    /// `IFLA_LINK_NETNSID`: the peer's namespace id (veth peer elsewhere).
    pub link_netnsid: Option<i32>,
    /// `IFLA_LINK`: for a veth, the peer's ifindex (in `link_netnsid`'s
    /// namespace if set).
    pub peer_index: Option<u32>,
    /// `IFLA_IFALIAS`: a free-form label (`ip link set NAME alias TEXT`).
    pub alias: Option<String>,
}

/// A veth pair to create with [`Handle::create_veth`].
#[derive(Debug, Clone, Copy)]
pub struct VethSpec<'a> {
    /// Name of the end created in the handle's namespace.
    pub name: &'a str,
    /// Name of the other end, created directly in `peer_netns`.
    pub peer_name: &'a str,
    /// Namespace for the peer (e.g. `NetNs::as_fd()` of the pod).
    pub peer_netns: BorrowedFd<'a>,
    /// MTU for both ends (kernel default 1500 if `None`).
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub peer_mac: Option<[u8; 6]>,
    /// Create the local end (`name`) administratively up, saving a
    /// `set_up` round trip. The peer always starts down: the kernel refuses
    /// (`ENOTCONN`) to open a veth end before the pair is complete, so bring
    /// it up from inside its namespace.
    pub up: bool,
}

impl<'a> VethSpec<'a> {
    /// A spec with kernel defaults: no MTU/MAC override, both ends down.
    pub fn new(name: &'a str, peer_name: &'a str, peer_netns: BorrowedFd<'a>) -> Self {
        VethSpec {
            name,
            peer_name,
            peer_netns,
            mtu: None,
            mac: None,
            peer_mac: None,
            up: false,
        }
    }

    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    pub fn mac(mut self, mac: [u8; 6]) -> Self {
        self.mac = Some(mac);
        self
    }

    pub fn peer_mac(mut self, mac: [u8; 6]) -> Self {
        self.peer_mac = Some(mac);
        self
    }

    pub fn up(mut self, up: bool) -> Self {
        self.up = up;
        self
    }
}

impl Link {
    pub(crate) fn from_msg(msg: LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mtu: 0,
            mac: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            kind: None,
            link_netnsid: None,
            peer_index: None,
            alias: None,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n,
                LinkAttribute::Mtu(m) => link.mtu = m,
                LinkAttribute::Address(a) => link.mac = a.as_slice().try_into().ok(),
                LinkAttribute::LinkNetNsId(id) => link.link_netnsid = Some(id),
                LinkAttribute::Link(i) => link.peer_index = Some(i),
                LinkAttribute::IfAlias(a) => link.alias = Some(a),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(k) = info {
                            link.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

fn skip_stats() -> LinkAttribute {
    LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats])
}

fn first_link(msgs: Vec<RouteNetlinkMessage>) -> Option<Link> {
    msgs.into_iter().find_map(|m| match m {
        RouteNetlinkMessage::NewLink(l) => Some(Link::from_msg(l)),
        _ => None,
    })
}

fn none_if_missing<T>(r: Result<T, NetlinkError>) -> Result<Option<T>, NetlinkError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Handle {
    /// Looks a link up by name; `Ok(None)` if there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        Ok(self.link_msg_by_name(name)?.map(Link::from_msg))
    }

    /// The kernel's RTM_NEWLINK for the link called `name` (statistics
    /// left out); `Ok(None)` if there is none.
    pub(crate) fn link_msg_by_name(
        &mut self,
        name: &str,
    ) -> Result<Option<LinkMessage>, NetlinkError> {
        check_ifname("RTM_GETLINK", name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(skip_stats());
        let target = Target::Name(name.to_string());
        let r = self.request("RTM_GETLINK", &target, RouteNetlinkMessage::GetLink(msg), 0);
        Ok(none_if_missing(r)?.and_then(|msgs| {
            msgs.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
        }))
    }

    /// Looks a link up by ifindex; `Ok(None)` if there is none.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(skip_stats());
        let r = self.request(
            "RTM_GETLINK",
            &Target::Index(index),
            RouteNetlinkMessage::GetLink(msg),
            0,
        );
        Ok(none_if_missing(r)?.and_then(first_link))
    }

    /// All links of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(skip_stats());
        let msgs = self.dump(
            "RTM_GETLINK",
            &Target::Dump("links"),
            RouteNetlinkMessage::GetLink(msg),
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Link::from_msg(l)),
                _ => None,
            })
            .collect())
    }

    /// Creates a veth pair in one RTM_NEWLINK (`CREATE|EXCL`): `name` here,
    /// `peer_name` directly inside `peer_netns`. Fails with `EEXIST`
    /// ([`NetlinkError::is_exists`]) if either name is taken in its
    /// namespace.
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<(), NetlinkError> {
        const OP: &str = "RTM_NEWLINK";
        check_ifname(OP, spec.name)?;
        check_ifname(OP, spec.peer_name)?;
        let up = if spec.up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };

        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer_name.to_string()));
        peer.attributes
            .push(LinkAttribute::NetNsFd(spec.peer_netns.as_raw_fd()));
        if let Some(mtu) = spec.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = spec.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }

        let mut msg = LinkMessage::default();
        msg.header.flags = up;
        msg.header.change_mask = up;
        msg.attributes
            .push(LinkAttribute::IfName(spec.name.to_string()));
        if let Some(mtu) = spec.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = spec.mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));

        let target = Target::Veth {
            name: spec.name.to_string(),
            peer: spec.peer_name.to_string(),
        };
        self.request(
            OP,
            &target,
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Sets `IFF_UP` on the link.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        self.set_flags(index, LinkFlags::Up)
    }

    /// Clears `IFF_UP` on the link.
    pub fn set_down(&mut self, index: u32) -> Result<(), NetlinkError> {
        self.set_flags(index, LinkFlags::empty())
    }

    /// Sets `IFF_UP` and the alias (`IFLA_IFALIAS`) in one request. The
    /// kernel ignores an alias given at creation, so this is how a new link
    /// gets its label without a second round trip.
    pub fn set_up_with_alias(&mut self, index: u32, alias: &str) -> Result<(), NetlinkError> {
        self.set_link(index, LinkFlags::Up, Some(alias))
    }

    fn set_flags(&mut self, index: u32, flags: LinkFlags) -> Result<(), NetlinkError> {
        self.set_link(index, flags, None)
    }

    fn set_link(
        &mut self,
        index: u32,
        flags: LinkFlags,
        alias: Option<&str>,
    ) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = flags;
        msg.header.change_mask = LinkFlags::Up;
        if let Some(alias) = alias {
            msg.attributes
                .push(LinkAttribute::IfAlias(alias.to_string()));
        }
        self.request(
            "RTM_NEWLINK",
            &Target::Index(index),
            RouteNetlinkMessage::NewLink(msg),
            0,
        )?;
        Ok(())
    }

    /// Changes the MTU of the link.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), NetlinkError> {
        self.set_attribute(index, LinkAttribute::Mtu(mtu))
    }

    /// Sets the link's hardware address.
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<(), NetlinkError> {
        self.set_attribute(index, LinkAttribute::Address(mac.to_vec()))
    }

    /// One RTM_NEWLINK changing a single attribute of the link.
    fn set_attribute(&mut self, index: u32, attr: LinkAttribute) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(attr);
        self.request(
            "RTM_NEWLINK",
            &Target::Index(index),
            RouteNetlinkMessage::NewLink(msg),
            0,
        )?;
        Ok(())
    }

    /// Deletes the link (for a veth, the peer goes with it). `ENODEV` if
    /// there is no such link.
    pub fn delete_link(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(
            "RTM_DELLINK",
            &Target::Index(index),
            RouteNetlinkMessage::DelLink(msg),
            0,
        )?;
        Ok(())
    }

    /// Deletes a link by name with a single RTM_DELLINK (no lookup first).
    /// Returns `Ok(false)` if there was no such link.
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<bool, NetlinkError> {
        check_ifname("RTM_DELLINK", name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let r = self.request(
            "RTM_DELLINK",
            &Target::Name(name.to_string()),
            RouteNetlinkMessage::DelLink(msg),
            0,
        );
        Ok(none_if_missing(r)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_from_message() {
        let mut msg = LinkMessage::default();
        msg.header.index = 7;
        msg.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        msg.attributes = vec![
            LinkAttribute::IfName("veth0".into()),
            LinkAttribute::Mtu(1450),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
            LinkAttribute::LinkNetNsId(3),
            LinkAttribute::Link(9),
            LinkAttribute::IfAlias("ferry/net/abc/eth0".into()),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        ];
        let l = Link::from_msg(msg);
        assert_eq!(
            l,
            Link {
                index: 7,
                name: "veth0".into(),
                mtu: 1450,
                mac: Some([2, 0, 0, 0, 0, 1]),
                up: true,
                kind: Some("veth".into()),
                link_netnsid: Some(3),
                peer_index: Some(9),
                alias: Some("ferry/net/abc/eth0".into()),
            }
        );
        let mut lo = LinkMessage::default();
        lo.attributes = vec![LinkAttribute::Address(vec![0; 4])];
        let l = Link::from_msg(lo);
        assert_eq!(l.mac, None);
        assert!(!l.up);
    }
}
