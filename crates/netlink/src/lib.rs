//! A small, blocking NETLINK_ROUTE client for ferry.
//!
//! One [`Handle`] = one netlink socket, bound to the network namespace of the
//! thread that opened it. To configure a pod namespace, open the handle inside
//! `ferry_netns::NetNs::run`. Every request is acknowledged (`NLM_F_ACK`), so
//! each call is exactly one round trip (dumps: one request, streamed replies).
//!
//! The socket itself, its send/receive loop, receive timeout, dump retries
//! and extended-ack parsing are [`engine`]'s, generic over the protocol
//! family and shared with `ferry-nft` (nfnetlink).
//!
//! ```no_run
//! use ferry_netlink::{Handle, Route, Scope};
//! # fn main() -> Result<(), ferry_netlink::NetlinkError> {
//! let mut h = Handle::new()?;
//! let eth0 = h.link_by_name("eth0")?.expect("eth0");
//! let gw = "169.254.1.1".parse().unwrap();
//! h.add_route(&Route::new("169.254.1.1/32".parse().unwrap()).dev(eth0.index).scope(Scope::Link))?;
//! h.add_route(&Route::default_via(gw).dev(eth0.index))?;
//! # Ok(()) }
//! ```

mod addr;
pub mod engine;
mod error;
mod fdb;
mod handle;
mod link;
mod neigh;
mod route;
mod tc;
mod vxlan;
mod wireguard;

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::AddressFamily;

pub use addr::{
    AddrOptions, Address, IFA_F_DADFAILED, IFA_F_NODAD, IFA_F_PERMANENT, IFA_F_TENTATIVE,
};
pub use error::NetlinkError;
pub use fdb::FdbEntry;
pub use handle::Handle;
pub use link::{Link, VethSpec};
pub use neigh::{Neighbour, NUD_PERMANENT};
pub use route::{
    Route, RouteKind, RTPROT_BOOT, RTPROT_FERRY_NODE, RTPROT_FERRY_POD, RTPROT_KERNEL,
    RTPROT_STATIC, RT_TABLE_LOCAL, RT_TABLE_MAIN,
};
pub use tc::FERRY_TC_PRIO;
pub use vxlan::{Vxlan, VxlanSpec, VXLAN_PORT, VXLAN_V4_OVERHEAD};

/// Re-exported so callers need not depend on `ipnet` for the prefix type.
pub use ipnet;

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The family of a prefix.
    pub fn of_net(net: &IpNet) -> Family {
        Family::of(net.addr())
    }

    /// The default route prefix (`0.0.0.0/0` or `::/0`).
    pub fn default_net(self) -> IpNet {
        match self {
            Family::V4 => IpNet::V4(Default::default()),
            Family::V6 => IpNet::V6(Default::default()),
        }
    }

    pub(crate) fn to_af(self) -> AddressFamily {
        match self {
            Family::V4 => AddressFamily::Inet,
            Family::V6 => AddressFamily::Inet6,
        }
    }

    pub(crate) fn from_af(af: AddressFamily) -> Option<Family> {
        match af {
            AddressFamily::Inet => Some(Family::V4),
            AddressFamily::Inet6 => Some(Family::V6),
            _ => None,
        }
    }
}

/// Route / address scope (`RT_SCOPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// 0: global.
    #[default]
    Universe,
    /// 200.
    Site,
    /// 253: on-link only (e.g. the `169.254.1.1/32` gateway route).
    Link,
    /// 254: local to this host.
    Host,
    /// 255.
    Nowhere,
    Other(u8),
}

impl From<u8> for Scope {
    fn from(v: u8) -> Scope {
        match v {
            0 => Scope::Universe,
            200 => Scope::Site,
            253 => Scope::Link,
            254 => Scope::Host,
            255 => Scope::Nowhere,
            other => Scope::Other(other),
        }
    }
}

impl From<Scope> for u8 {
    fn from(s: Scope) -> u8 {
        match s {
            Scope::Universe => 0,
            Scope::Site => 200,
            Scope::Link => 253,
            Scope::Host => 254,
            Scope::Nowhere => 255,
            Scope::Other(v) => v,
        }
    }
}

/// Linux interface-name rules (`dev_valid_name`): 1..=15 bytes, no `/`,
/// `:`, whitespace or NUL, and not `.` or `..`.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
}

pub(crate) fn check_ifname(op: &'static str, name: &str) -> Result<(), NetlinkError> {
    if valid_ifname(name) {
        Ok(())
    } else {
        Err(NetlinkError::invalid(
            op,
            format!("invalid interface name {name:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifnames() {
        for ok in ["eth0", "veth1234567890a", "a", "eth0.100", "cali-x_y"] {
            assert!(valid_ifname(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "veth1234567890ab",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "a\nb",
            "a\0",
        ] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
    }

    #[test]
    fn scopes_roundtrip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Scope::from(v)), v);
        }
        assert_eq!(Scope::from(253), Scope::Link);
        assert_eq!(u8::from(Scope::Host), 254);
    }

    #[test]
    fn families() {
        assert_eq!(Family::of("::1".parse().unwrap()), Family::V6);
        assert_eq!(Family::of_net(&"10.0.0.0/8".parse().unwrap()), Family::V4);
        assert_eq!(Family::V4.default_net().to_string(), "0.0.0.0/0");
        assert_eq!(Family::V6.default_net().to_string(), "::/0");
    }
}
