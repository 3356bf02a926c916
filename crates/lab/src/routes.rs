//! A node's kernel routing table as the lab looks at it: read with
//! `ip -j route`, labelled like the seed's picture (`C` a pod's host route,
//! `O`/`B` learnt by OSPF/BGP, `K` a ferryd kernel route in direct mode),
//! and the longest-prefix match that decides where a packet goes.

use std::net::IpAddr;

use serde_json::Value;

use crate::error::Result;
use crate::sh;

/// One route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `10.244.1.0/24`, `10.244.0.2/32`, `0.0.0.0/0`.
    pub dst: String,
    pub gateway: Option<String>,
    pub dev: Option<String>,
    /// `kernel`, `boot`, `static`, `ospf`, `bgp`, `200`, `201`, ...
    pub proto: String,
    /// `unicast`, `blackhole`, ...
    pub kind: String,
}

/// ferry's route protocols (ferry-netlink's `RTPROT_FERRY_*`).
pub const PROTO_POD: &str = "200";
pub const PROTO_NODE: &str = "201";

impl Route {
    fn from_json(v: &Value, v6: bool) -> Option<Route> {
        let s = |k: &str| match &v[k] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let raw = s("dst")?;
        let dst = match raw.as_str() {
            "default" if v6 => "::/0".to_string(),
            "default" => "0.0.0.0/0".to_string(),
            d if d.contains('/') => d.to_string(),
            d if v6 => format!("{d}/128"),
            d => format!("{d}/32"),
        };
        Some(Route {
            dst,
            gateway: s("gateway"),
            dev: s("dev"),
            proto: s("protocol").unwrap_or_else(|| "boot".into()),
            kind: s("type").unwrap_or_else(|| "unicast".into()),
        })
    }

    /// The picture's code for the route, if it is one the lab shows. Not
    /// the route to the node's own address that ospfd installs on its
    /// point-to-multipoint interface (the /32 stub every router
    /// advertises, "directly attached": no gateway).
    pub fn code(&self) -> Option<char> {
        match self.proto.as_str() {
            PROTO_POD => Some('C'),
            PROTO_NODE => Some('K'),
            "ospf" if self.gateway.is_none() && self.kind == "unicast" => None,
            "ospf" => Some('O'),
            "bgp" => Some('B'),
            _ => None,
        }
    }

    /// Learnt for other nodes' pods (not the node's own).
    pub fn learnt(&self) -> bool {
        matches!(self.code(), Some('K' | 'O' | 'B'))
    }

    /// `O 10.244.1.0/24 via 172.16.97.76`, `C 10.244.0.2 dev ferry0123456789`.
    pub fn label(&self) -> String {
        let code = self.code().unwrap_or('?');
        let dst = self
            .dst
            .strip_suffix("/32")
            .or_else(|| self.dst.strip_suffix("/128"))
            .unwrap_or(&self.dst);
        match (&self.gateway, &self.dev) {
            (Some(gw), _) => format!("{code} {dst} via {gw}"),
            (None, Some(dev)) => format!("{code} {dst} dev {dev}"),
            (None, None) => format!("{code} {dst}"),
        }
    }

    fn prefix(&self) -> Option<(IpAddr, u8)> {
        let (a, l) = self.dst.split_once('/')?;
        Some((a.parse().ok()?, l.parse().ok()?))
    }

    /// Whether `ip` falls in this route's destination.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let Some((net, len)) = self.prefix() else {
            return false;
        };
        match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix().map_or(0, |(_, l)| l)
    }
}

/// The node's main table, both families.
pub fn table(netns: &str) -> Result<Vec<Route>> {
    let mut out = Vec::new();
    for (fam, v6) in [("-4", false), ("-6", true)] {
        let text = sh::ip(Some(netns), &["-j", fam, "route", "show", "table", "main"])?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        out.extend(
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| Route::from_json(r, v6)),
        );
    }
    Ok(out)
}

/// The IPv6 link-local addresses of `dev` in `netns`.
pub fn link_locals(netns: &str, dev: &str) -> Vec<String> {
    let Ok(text) = sh::ip(Some(netns), &["-j", "-6", "addr", "show", "dev", dev]) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().into_iter().flatten())
        .filter(|a| a["scope"] == "link")
        .filter_map(|a| a["local"].as_str().map(str::to_string))
        .collect()
}

/// The route a packet to `ip` takes (longest prefix; unreachable and
/// similar kinds count, so a blackhole wins as in the kernel).
pub fn lookup(table: &[Route], ip: IpAddr) -> Option<&Route> {
    table
        .iter()
        .filter(|r| r.contains(ip))
        .max_by_key(|r| r.prefix_len())
}

/// Whether `table` sends `ip` to `via` (IPv6: via any link-local
/// next hop too, as OSPFv3 and BGP over IPv4 sessions install).
pub fn routes_via(table: &[Route], ip: IpAddr, via: &str) -> bool {
    lookup(table, ip).is_some_and(|r| {
        r.learnt()
            && r.gateway
                .as_deref()
                .is_some_and(|g| g == via || (ip.is_ipv6() && g.starts_with("fe80:")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value, v6: bool) -> Vec<Route> {
        v.as_array()
            .unwrap()
            .iter()
            .filter_map(|r| Route::from_json(r, v6))
            .collect()
    }

    #[test]
    fn labels_and_longest_prefix() {
        let t = parse(
            json!([
                {"dst": "default", "gateway": "172.16.97.1", "dev": "eth0", "flags": []},
                {"dst": "10.244.0.0/24", "type": "blackhole", "protocol": "static"},
                {"dst": "10.244.0.2", "dev": "ferry0123456789", "protocol": 200, "scope": "link"},
                {"dst": "10.244.1.0/24", "gateway": "172.16.97.76", "dev": "eth0", "protocol": "ospf", "metric": 20},
                {"dst": "172.16.97.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link"},
                {"dst": "172.16.97.75", "dev": "eth0", "protocol": "ospf", "scope": "link", "metric": 20}
            ]),
            false,
        );
        assert_eq!(t[5].code(), None, "ospfd's route to the node's own address");
        assert!(!t[5].learnt());
        assert_eq!(t[0].dst, "0.0.0.0/0");
        assert_eq!(t[2].label(), "C 10.244.0.2 dev ferry0123456789");
        assert_eq!(t[3].label(), "O 10.244.1.0/24 via 172.16.97.76");
        assert_eq!(t[1].code(), None);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(routes_via(&t, ip("10.244.1.9"), "172.16.97.76"));
        assert!(
            !routes_via(&t, ip("10.244.2.9"), "172.16.97.77"),
            "default route"
        );
        assert_eq!(lookup(&t, ip("10.244.0.2")).unwrap().proto, "200");
        assert_eq!(lookup(&t, ip("10.244.0.3")).unwrap().kind, "blackhole");
        assert_eq!(lookup(&t, ip("8.8.8.8")).unwrap().dst, "0.0.0.0/0");
    }

    #[test]
    fn v6_routes_via_link_local() {
        let t = parse(
            json!([
                {"dst": "fd00:10:244:1::/64", "gateway": "fe80::1", "dev": "eth0", "protocol": "ospf"},
                {"dst": "fd00:10:244::5", "dev": "ferry0123456789", "protocol": "200"}
            ]),
            true,
        );
        assert_eq!(t[1].dst, "fd00:10:244::5/128");
        assert_eq!(t[1].label(), "C fd00:10:244::5 dev ferry0123456789");
        let ip: IpAddr = "fd00:10:244:1::7".parse().unwrap();
        assert!(routes_via(&t, ip, "fd97::76"));
    }
}
