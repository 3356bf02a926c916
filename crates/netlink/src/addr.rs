//! Interface addresses.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::{NetlinkError, Target};
use crate::{Family, Handle, Scope};

/// `IFA_F_NODAD`: skip IPv6 duplicate address detection.
pub const IFA_F_NODAD: u32 = 0x02;
/// `IFA_F_DADFAILED`.
pub const IFA_F_DADFAILED: u32 = 0x08;
/// `IFA_F_TENTATIVE`: IPv6 DAD still running; the address is not usable.
pub const IFA_F_TENTATIVE: u32 = 0x40;
/// `IFA_F_PERMANENT`: configured (not autoconfigured).
pub const IFA_F_PERMANENT: u32 = 0x80;

/// Options for [`Handle::add_address`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddrOptions {
    pub scope: Scope,
    /// `IFA_F_NODAD` (IPv6): usable immediately, never tentative.
    pub nodad: bool,
}

impl AddrOptions {
    /// Universe scope, with `IFA_F_NODAD` set (ignored by the kernel for
    /// IPv4). What a CNI plugin usually wants.
    pub fn nodad() -> Self {
        AddrOptions {
            scope: Scope::Universe,
            nodad: true,
        }
    }
}

/// An interface address as reported by RTM_NEWADDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Interface index.
    pub index: u32,
    /// Local address with its prefix length.
    pub addr: IpNet,
    pub scope: Scope,
    /// `IFA_F_*` flags (full 32-bit `IFA_FLAGS` when present).
    pub flags: u32,
}

impl Address {
    pub fn is_tentative(&self) -> bool {
        self.flags & IFA_F_TENTATIVE != 0
    }

    pub fn is_dad_failed(&self) -> bool {
        self.flags & IFA_F_DADFAILED != 0
    }

    fn from_msg(msg: AddressMessage) -> Option<Address> {
        Family::from_af(msg.header.family)?;
        let mut local = None;
        let mut address = None;
        let mut flags = u32::from(msg.header.flags.bits());
        for attr in msg.attributes {
            match attr {
                AddressAttribute::Local(ip) => local = Some(ip),
                AddressAttribute::Address(ip) => address = Some(ip),
                AddressAttribute::Flags(f) => flags = f.bits(),
                _ => {}
            }
        }
        // IFA_LOCAL is the local address (IFA_ADDRESS is the peer on
        // point-to-point links); IPv6 usually only has IFA_ADDRESS.
        let ip = local.or(address)?;
        Some(Address {
            index: msg.header.index,
            addr: IpNet::new(ip, msg.header.prefix_len).ok()?,
            scope: Scope::from(u8::from(msg.header.scope)),
            flags,
        })
    }
}

/// The IPv4 directed broadcast address of `net` when it has one (< /31).
fn broadcast(net: &IpNet) -> Option<Ipv4Addr> {
    match net {
        IpNet::V4(n) if n.prefix_len() < 31 => Some(n.broadcast()),
        _ => None,
    }
}

fn addr_msg(index: u32, addr: IpNet, scope: Scope, flags: u32) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = Family::of_net(&addr).to_af();
    msg.header.prefix_len = addr.prefix_len();
    msg.header.scope = AddressScope::from(u8::from(scope));
    msg.header.index = index;
    // The header only holds the low 8 flag bits; IFA_FLAGS holds them all.
    msg.header.flags = AddressHeaderFlags::from_bits_retain(flags as u8);
    msg.attributes.push(AddressAttribute::Local(addr.addr()));
    msg.attributes.push(AddressAttribute::Address(addr.addr()));
    if flags != 0 {
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::from_bits_retain(
                flags,
            )));
    }
    msg
}

impl Handle {
    /// Adds `addr` (address + prefix length) to link `index`
    /// (`CREATE|EXCL`: `EEXIST` if already there). IPv4 prefixes shorter
    /// than /31 get their broadcast address, like `ip addr add ... brd +`.
    pub fn add_address(
        &mut self,
        index: u32,
        addr: IpNet,
        opts: AddrOptions,
    ) -> Result<(), NetlinkError> {
        let flags = if opts.nodad { IFA_F_NODAD } else { 0 };
        let mut msg = addr_msg(index, addr, opts.scope, flags);
        if let Some(brd) = broadcast(&addr) {
            msg.attributes.push(AddressAttribute::Broadcast(brd));
        }
        self.request(
            "RTM_NEWADDR",
            &Target::Addr { index, addr },
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Removes `addr` from link `index`. `Ok(false)` if it was not there.
    pub fn delete_address(&mut self, index: u32, addr: IpNet) -> Result<bool, NetlinkError> {
        let msg = addr_msg(index, addr, Scope::Universe, 0);
        match self.request(
            "RTM_DELADDR",
            &Target::Addr { index, addr },
            RouteNetlinkMessage::DelAddress(msg),
            0,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Addresses of all links, or only of link `index`.
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<Address>, NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Unspec;
        // With NETLINK_GET_STRICT_CHK the kernel filters by index itself.
        msg.header.index = index.unwrap_or(0);
        let msgs = self.dump(
            "RTM_GETADDR",
            &Target::Dump("addresses"),
            RouteNetlinkMessage::GetAddress(msg),
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Address::from_msg(a),
                _ => None,
            })
            .filter(|a| index.is_none_or(|i| a.index == i))
            .collect())
    }
}

/// The host part of an address as a plain `IpAddr` (for callers that only
/// have an `Address`).
impl From<&Address> for IpAddr {
    fn from(a: &Address) -> IpAddr {
        a.addr.addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_only_for_short_v4() {
        assert_eq!(
            broadcast(&"10.1.2.3/24".parse().unwrap()),
            Some("10.1.2.255".parse().unwrap())
        );
        assert_eq!(broadcast(&"10.1.2.3/32".parse().unwrap()), None);
        assert_eq!(broadcast(&"10.1.2.3/31".parse().unwrap()), None);
        assert_eq!(broadcast(&"fd00::1/64".parse().unwrap()), None);
    }

    #[test]
    fn message_roundtrip() {
        let net: IpNet = "fd00::5/128".parse().unwrap();
        let msg = addr_msg(4, net, Scope::Link, IFA_F_NODAD | 0x200);
        assert_eq!(msg.header.flags.bits(), IFA_F_NODAD as u8);
        let a = Address::from_msg(msg).unwrap();
        assert_eq!(a.index, 4);
        assert_eq!(a.addr, net);
        assert_eq!(a.scope, Scope::Link);
        assert_eq!(a.flags, IFA_F_NODAD | 0x200);
        assert!(!a.is_tentative());
    }
}
