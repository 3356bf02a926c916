//! Routes: add/replace/delete/dump and default-route lookup.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{NetlinkError, Target};
use crate::{Family, Handle, Link, Scope};

/// `RTPROT_KERNEL`: installed by the kernel (e.g. prefix routes).
pub const RTPROT_KERNEL: u8 = 2;
/// `RTPROT_BOOT`: the default for routes added by tools (`ip route add`).
pub const RTPROT_BOOT: u8 = 3;
/// `RTPROT_STATIC`: installed by an administrator.
pub const RTPROT_STATIC: u8 = 4;
/// ferry's own: the plugin's host routes to its pods (`proto 200`).
pub const RTPROT_FERRY_POD: u8 = 200;
/// ferry's own: ferryd's routes to other nodes' pod CIDRs (`proto 201`).
/// ferryd touches no route without this protocol.
pub const RTPROT_FERRY_NODE: u8 = 201;
/// The main routing table.
pub const RT_TABLE_MAIN: u32 = 254;
/// The local routing table.
pub const RT_TABLE_LOCAL: u32 = 255;

/// Route type (`RTN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RouteKind {
    #[default]
    Unicast,
    Local,
    Broadcast,
    /// Silently drop.
    Blackhole,
    Unreachable,
    Prohibit,
    Other(u8),
}

impl From<u8> for RouteKind {
    fn from(v: u8) -> RouteKind {
        match v {
            1 => RouteKind::Unicast,
            2 => RouteKind::Local,
            3 => RouteKind::Broadcast,
            6 => RouteKind::Blackhole,
            7 => RouteKind::Unreachable,
            8 => RouteKind::Prohibit,
            other => RouteKind::Other(other),
        }
    }
}

impl From<RouteKind> for u8 {
    fn from(k: RouteKind) -> u8 {
        match k {
            RouteKind::Unicast => 1,
            RouteKind::Local => 2,
            RouteKind::Broadcast => 3,
            RouteKind::Blackhole => 6,
            RouteKind::Unreachable => 7,
            RouteKind::Prohibit => 8,
            RouteKind::Other(v) => v,
        }
    }
}

/// A (single-nexthop) route. Build with [`Route::new`] and the builder
/// methods; dumps fill all fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix; host bits must be zero.
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    pub scope: Scope,
    pub kind: RouteKind,
    /// `RTPROT_*` or a private number identifying the owner.
    pub protocol: u8,
    pub table: u32,
    /// Metric; `None` = kernel default (0 for IPv4, 1024 for IPv6).
    pub priority: Option<u32>,
    /// `RTNH_F_ONLINK`: gateway is on-link even without a covering prefix.
    pub onlink: bool,
}

impl Route {
    /// A unicast route to `dst`: universe scope, `RTPROT_BOOT`, main table.
    pub fn new(dst: IpNet) -> Route {
        Route {
            dst,
            gateway: None,
            oif: None,
            scope: Scope::Universe,
            kind: RouteKind::Unicast,
            protocol: RTPROT_BOOT,
            table: RT_TABLE_MAIN,
            priority: None,
            onlink: false,
        }
    }

    /// `default via gw` for the gateway's family.
    pub fn default_via(gw: IpAddr) -> Route {
        Route::new(Family::of(gw).default_net()).via(gw)
    }

    /// A directly connected route: `dst dev oif scope link`.
    pub fn link_scope(dst: IpNet, oif: u32) -> Route {
        Route::new(dst).dev(oif).scope(Scope::Link)
    }

    /// A blackhole route to `dst`.
    pub fn blackhole(dst: IpNet) -> Route {
        Route::new(dst).kind(RouteKind::Blackhole)
    }

    pub fn via(mut self, gw: IpAddr) -> Route {
        self.gateway = Some(gw);
        self
    }

    pub fn dev(mut self, oif: u32) -> Route {
        self.oif = Some(oif);
        self
    }

    pub fn scope(mut self, scope: Scope) -> Route {
        self.scope = scope;
        self
    }

    pub fn kind(mut self, kind: RouteKind) -> Route {
        self.kind = kind;
        self
    }

    pub fn protocol(mut self, protocol: u8) -> Route {
        self.protocol = protocol;
        self
    }

    pub fn table(mut self, table: u32) -> Route {
        self.table = table;
        self
    }

    pub fn priority(mut self, metric: u32) -> Route {
        self.priority = Some(metric);
        self
    }

    pub fn onlink(mut self) -> Route {
        self.onlink = true;
        self
    }

    /// The address family of the destination.
    pub fn family(&self) -> Family {
        Family::of_net(&self.dst)
    }

    fn target(&self) -> Target {
        Target::Route {
            dst: self.dst,
            table: self.table,
        }
    }

    /// Builds the RTM_{NEW,DEL}ROUTE message. For deletion the scope is a
    /// wildcard (RT_SCOPE_NOWHERE), as with `ip route del`.
    fn to_msg(&self, op: &'static str, delete: bool) -> Result<RouteMessage, NetlinkError> {
        let family = self.family();
        if self.dst.trunc() != self.dst {
            return Err(NetlinkError::invalid(
                op,
                format!("route destination {} has host bits set", self.dst),
            ));
        }
        let mut msg = RouteMessage::default();
        let h = &mut msg.header;
        h.address_family = family.to_af();
        h.destination_prefix_length = self.dst.prefix_len();
        h.table = u8::try_from(self.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        h.protocol = RouteProtocol::from(self.protocol);
        h.scope = if delete {
            RouteScope::NoWhere
        } else {
            RouteScope::from(u8::from(self.scope))
        };
        h.kind = RouteType::from(u8::from(self.kind));
        if self.onlink {
            h.flags = RouteFlags::Onlink;
        }
        let attrs = &mut msg.attributes;
        if self.dst.prefix_len() > 0 {
            attrs.push(RouteAttribute::Destination(self.dst.addr().into()));
        }
        if let Some(gw) = self.gateway {
            if Family::of(gw) != family {
                return Err(NetlinkError::invalid(
                    op,
                    format!("gateway {gw} is not in the family of {}", self.dst),
                ));
            }
            attrs.push(RouteAttribute::Gateway(gw.into()));
        }
        if let Some(oif) = self.oif {
            attrs.push(RouteAttribute::Oif(oif));
        }
        if let Some(p) = self.priority {
            attrs.push(RouteAttribute::Priority(p));
        }
        attrs.push(RouteAttribute::Table(self.table));
        Ok(msg)
    }

    /// Parses a dumped route; also returns the first multipath next hop's
    /// ifindex. `None` for other families and cloned (cache) entries.
    fn from_msg(msg: RouteMessage) -> Option<(Route, Option<u32>)> {
        let h = &msg.header;
        let family = Family::from_af(h.address_family)?;
        if h.flags.contains(RouteFlags::Cloned) {
            return None;
        }
        let mut route = Route {
            dst: family.default_net(),
            gateway: None,
            oif: None,
            scope: Scope::from(u8::from(h.scope)),
            kind: RouteKind::from(u8::from(h.kind)),
            protocol: u8::from(h.protocol),
            table: u32::from(h.table),
            priority: None,
            onlink: h.flags.contains(RouteFlags::Onlink),
        };
        let prefix_len = h.destination_prefix_length;
        let mut first_hop_oif = None;
        for attr in msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => {
                    route.dst = IpNet::new(route_ip(a)?, prefix_len).ok()?;
                }
                RouteAttribute::Gateway(a) => route.gateway = route_ip(a),
                RouteAttribute::Oif(i) => route.oif = Some(i),
                RouteAttribute::Priority(p) => route.priority = Some(p),
                RouteAttribute::Table(t) => route.table = t,
                RouteAttribute::MultiPath(hops) => {
                    first_hop_oif = hops.first().map(|hop| hop.interface_index);
                }
                _ => {}
            }
        }
        Some((route, first_hop_oif))
    }
}

fn route_ip(a: RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

impl Handle {
    /// Adds a route (`CREATE|EXCL`: `EEXIST` if an identical one exists).
    pub fn add_route(&mut self, r: &Route) -> Result<(), NetlinkError> {
        const OP: &str = "RTM_NEWROUTE";
        let msg = r.to_msg(OP, false)?;
        self.request(
            OP,
            &r.target(),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Adds or replaces a route (`CREATE|REPLACE`), like `ip route replace`.
    pub fn replace_route(&mut self, r: &Route) -> Result<(), NetlinkError> {
        const OP: &str = "RTM_NEWROUTE";
        let msg = r.to_msg(OP, false)?;
        self.request(
            OP,
            &r.target(),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )?;
        Ok(())
    }

    /// Deletes a route. Matches on destination, table and type, plus
    /// gateway, oif and priority when set, and protocol unless it is 0;
    /// scope is ignored. Returns `Ok(false)` if no route matched (`ESRCH`).
    pub fn delete_route(&mut self, r: &Route) -> Result<bool, NetlinkError> {
        const OP: &str = "RTM_DELROUTE";
        let msg = r.to_msg(OP, true)?;
        match self.request(OP, &r.target(), RouteNetlinkMessage::DelRoute(msg), 0) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Routes of `family` in `table` (default: main). Multipath routes are
    /// listed with `gateway`/`oif` unset; cloned cache entries are skipped.
    pub fn routes(
        &mut self,
        family: Family,
        table: Option<u32>,
    ) -> Result<Vec<Route>, NetlinkError> {
        Ok(self
            .route_dump(family, table.unwrap_or(RT_TABLE_MAIN))?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    fn route_dump(
        &mut self,
        family: Family,
        table: u32,
    ) -> Result<Vec<(Route, Option<u32>)>, NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family.to_af();
        // With NETLINK_GET_STRICT_CHK the kernel dumps only this table.
        msg.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        msg.attributes.push(RouteAttribute::Table(table));
        let msgs = self.dump(
            "RTM_GETROUTE",
            &Target::Dump("routes"),
            RouteNetlinkMessage::GetRoute(msg),
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Route::from_msg(r),
                _ => None,
            })
            .filter(|(r, _)| r.table == table && r.family() == family)
            .collect())
    }

    /// The link carrying the main table's default route for `family` (the
    /// one with the lowest metric; for multipath, its first next hop).
    /// `Ok(None)` if there is no default route with an output interface.
    pub fn default_route_link(&mut self, family: Family) -> Result<Option<Link>, NetlinkError> {
        let best = self
            .route_dump(family, RT_TABLE_MAIN)?
            .into_iter()
            .filter(|(r, _)| r.dst.prefix_len() == 0 && r.kind == RouteKind::Unicast)
            .filter_map(|(r, hop)| Some((r.priority.unwrap_or(0), r.oif.or(hop)?)))
            .min_by_key(|(metric, _)| *metric);
        match best {
            Some((_, oif)) => self.link_by_index(oif),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_roundtrip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(RouteKind::from(v)), v);
        }
    }

    #[test]
    fn builders() {
        let gw: IpAddr = "169.254.1.1".parse().unwrap();
        let r = Route::default_via(gw)
            .dev(3)
            .onlink()
            .protocol(77)
            .priority(5);
        assert_eq!(r.dst.to_string(), "0.0.0.0/0");
        assert_eq!(r.gateway, Some(gw));
        assert_eq!(
            (r.oif, r.onlink, r.protocol, r.priority),
            (Some(3), true, 77, Some(5))
        );
        let r = Route::link_scope("169.254.1.1/32".parse().unwrap(), 3);
        assert_eq!((r.scope, r.oif), (Scope::Link, Some(3)));
        assert_eq!(
            Route::blackhole("fd00::/64".parse().unwrap()).kind,
            RouteKind::Blackhole
        );
        assert_eq!(
            Route::default_via("fe80::1".parse().unwrap()).family(),
            Family::V6
        );
    }

    #[test]
    fn message_roundtrip() {
        let r = Route::new("10.20.0.0/16".parse().unwrap())
            .via("10.0.0.1".parse().unwrap())
            .dev(2)
            .table(1000)
            .priority(10)
            .protocol(99)
            .onlink();
        let msg = r.to_msg("test", false).unwrap();
        assert_eq!(msg.header.table, 0, "tables >= 256 go in RTA_TABLE only");
        let (back, hop) = Route::from_msg(msg).unwrap();
        assert_eq!(back, r);
        assert_eq!(hop, None);

        let del = r.to_msg("test", true).unwrap();
        assert_eq!(del.header.scope, RouteScope::NoWhere);

        let d = Route::new(Family::V6.default_net());
        let msg = d.to_msg("test", false).unwrap();
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_))));
        assert_eq!(Route::from_msg(msg).unwrap().0, d);
    }

    #[test]
    fn invalid_routes() {
        let r = Route::new("10.0.0.1/8".parse().unwrap());
        assert!(matches!(
            r.to_msg("x", false),
            Err(NetlinkError::InvalidArgument { .. })
        ));
        let r = Route::new("10.0.0.0/8".parse().unwrap()).via("fe80::1".parse().unwrap());
        assert!(matches!(
            r.to_msg("x", false),
            Err(NetlinkError::InvalidArgument { .. })
        ));
    }
}
