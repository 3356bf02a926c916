//! OSPF mode: does ospfd (ospf6d) really advertise this node's pods?
//!
//! On a real cluster (FRR 8.4.4), after two rolling restarts in a row with
//! graceful restart, every node's ospfd had the static blackhole route and
//! `redistribute static route-map FERRY-EXPORT-V4` but originated no
//! AS-external-LSA: the config was right, the LSDB was not, and only
//! `no redistribute static` / `redistribute static route-map ...` brought
//! the LSAs back. [`Frr::external_audit`] compares what should be
//! advertised (zebra's routes of the redistributed protocol that the
//! export prefix-list passes) with the self-originated AS-external-LSAs;
//! [`Frr::reapply_redistribution`] does that toggle.
//!
//! The parsing and the comparison are pure ([`advertised_v4`],
//! [`advertised_v6`], [`zebra_prefixes`], [`missing`]); the `Frr` methods
//! only run the `show` commands and the toggle through vtysh.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::SystemTime;

use ipnet::{IpNet, Ipv4Net};
use serde_json::Value;

use crate::render::{ROUTE_MAP_V4, ROUTE_MAP_V6};
use crate::spec::{Advertise, FrrSpec, Mode};
use crate::{Frr, FrrError};

/// An LSA this old is being flushed (RFC 2328 MaxAge): not advertised.
const MAX_AGE: u64 = 3600;

/// One address family's view: what should be advertised and is not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExternalAudit {
    /// Prefixes in zebra, passed by the export route-map, without a live
    /// self-originated AS-external-LSA (ospfd).
    pub missing_v4: Vec<IpNet>,
    /// The same for ospf6d.
    pub missing_v6: Vec<IpNet>,
}

impl ExternalAudit {
    pub fn is_empty(&self) -> bool {
        self.missing_v4.is_empty() && self.missing_v6.is_empty()
    }
}

/// The prefixes of the live (not MaxAge) AS-external-LSAs in ospfd's
/// `show ip ospf database external self-originate json`. The link state
/// ID may have host bits set (RFC 2328 appendix E); the prefix is the ID
/// masked with `networkMask`.
pub fn advertised_v4(json: &str) -> Result<BTreeSet<IpNet>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut out = BTreeSet::new();
    let Some(lsas) = v.get("AS External Link States") else {
        return match v.get("routerId") {
            // No LSA of the type at all (no section).
            Some(_) => Ok(out),
            None => Err("neither a router ID nor AS-external-LSAs".into()),
        };
    };
    let lsas = lsas.as_object().ok_or("AS-external-LSAs: not an object")?;
    for (key, lsa) in lsas {
        if age(lsa.get("lsaAge")) >= MAX_AGE {
            continue;
        }
        let id: Ipv4Addr = lsa
            .get("linkStateId")
            .and_then(Value::as_str)
            .unwrap_or(key)
            .parse()
            .map_err(|e| format!("LSA {key}: link state ID: {e}"))?;
        let mask = lsa
            .get("networkMask")
            .and_then(Value::as_u64)
            .and_then(|m| u8::try_from(m).ok())
            .ok_or_else(|| format!("LSA {key}: no networkMask"))?;
        let net = Ipv4Net::new(id, mask).map_err(|e| format!("LSA {key}: {e}"))?;
        out.insert(IpNet::V4(net.trunc()));
    }
    Ok(out)
}

/// The prefixes of the live AS-external-LSAs (`ASE`) in ospf6d's
/// `show ipv6 ospf6 database as-external self-originated json`.
pub fn advertised_v6(json: &str) -> Result<BTreeSet<IpNet>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut out = BTreeSet::new();
    let dbs = match v.get("asScopedLinkStateDb") {
        Some(Value::Array(dbs)) => dbs.as_slice(),
        Some(_) => return Err("asScopedLinkStateDb: not an array".into()),
        None => &[],
    };
    for lsa in dbs
        .iter()
        .filter_map(|db| db.get("lsa").and_then(Value::as_array))
        .flatten()
    {
        if lsa.get("type").and_then(Value::as_str) != Some("ASE") || age(lsa.get("age")) >= MAX_AGE
        {
            continue;
        }
        let payload = lsa.get("payload").and_then(Value::as_str).unwrap_or("");
        let net: IpNet = payload
            .parse()
            .map_err(|e| format!("ASE payload {payload:?}: {e}"))?;
        out.insert(net.trunc());
    }
    Ok(out)
}

fn age(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_u64).unwrap_or(0)
}

/// The prefixes zebra selected in a `show ip[v6] route PROTOCOL json`.
pub fn zebra_prefixes(json: &str) -> Result<BTreeSet<IpNet>, String> {
    Ok(crate::routes::selected(json)?
        .into_iter()
        .map(|p| p.trunc())
        .collect())
}

/// What `spec`'s export route-map passes among `in_zebra` (one family)
/// and `advertised` lacks. Aggregate: the podCIDRs themselves; pods: host
/// routes inside them (as the prefix-lists in `render` say).
pub fn missing(
    spec: &FrrSpec,
    v6: bool,
    in_zebra: &BTreeSet<IpNet>,
    advertised: &BTreeSet<IpNet>,
) -> Vec<IpNet> {
    let cidrs = spec.cidrs(v6);
    in_zebra
        .iter()
        .filter(|net| matches!(net, IpNet::V6(_)) == v6)
        .filter(|net| match spec.advertise {
            Advertise::Aggregate => cidrs.contains(net),
            Advertise::Pods => {
                net.prefix_len() == net.max_prefix_len() && cidrs.iter().any(|c| c.contains(*net))
            }
        })
        .filter(|net| !advertised.contains(net))
        .copied()
        .collect()
}

/// The protocol `spec` redistributes (`static` or `kernel`).
fn source(spec: &FrrSpec) -> &'static str {
    match spec.advertise {
        Advertise::Aggregate => "static",
        Advertise::Pods => "kernel",
    }
}

/// The vtysh commands that withdraw and restore one family's
/// redistribution, as `render` configures it.
pub fn toggle_commands(spec: &FrrSpec, v6: bool) -> Vec<String> {
    let (router, map) = if v6 {
        ("router ospf6", ROUTE_MAP_V6)
    } else {
        ("router ospf", ROUTE_MAP_V4)
    };
    let src = source(spec);
    vec![
        "configure terminal".into(),
        router.into(),
        format!("no redistribute {src}"),
        format!("redistribute {src} route-map {map}"),
    ]
}

impl Frr {
    /// What this node's ospfd/ospf6d should advertise for `spec` (OSPF
    /// mode; nothing for BGP) and does not.
    pub fn external_audit(&self, spec: &FrrSpec) -> Result<ExternalAudit, FrrError> {
        let mut out = ExternalAudit::default();
        if spec.mode != Mode::Ospf {
            return Ok(out);
        }
        let src = source(spec);
        for v6 in [false, true] {
            if spec.cidrs(v6).is_empty() {
                continue;
            }
            let (route_cmd, lsdb_cmd) = if v6 {
                (
                    format!("show ipv6 route {src} json"),
                    "show ipv6 ospf6 database as-external self-originated json",
                )
            } else {
                (
                    format!("show ip route {src} json"),
                    "show ip ospf database external self-originate json",
                )
            };
            let in_zebra = self.parsed(&route_cmd, zebra_prefixes)?;
            let parse = if v6 { advertised_v6 } else { advertised_v4 };
            let advertised = self.parsed(lsdb_cmd, parse)?;
            let m = missing(spec, v6, &in_zebra, &advertised);
            if v6 {
                out.missing_v6 = m;
            } else {
                out.missing_v4 = m;
            }
        }
        Ok(out)
    }

    /// `command` through vtysh, its output through `parse`; a parse
    /// failure as [`FrrError::Parse`] naming the command.
    pub(crate) fn parsed<T>(
        &self,
        command: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<T, FrrError> {
        let text = self.vtysh(command)?;
        parse(&text).map_err(|detail| FrrError::Parse {
            command: command.into(),
            detail,
        })
    }

    /// When `daemon` (`ospfd`) started: its pid file's modification time
    /// in the run directory. None when there is none (not running, or a
    /// layout without one there).
    pub fn daemon_started(&self, daemon: &str) -> Option<SystemTime> {
        std::fs::metadata(self.run_dir.join(format!("{daemon}.pid")))
            .and_then(|m| m.modified())
            .ok()
    }

    /// `no redistribute SRC` then `redistribute SRC route-map ...` under
    /// `router ospf` (`v6`: `router ospf6`): ospfd flushes and originates
    /// the family's AS-external-LSAs anew. The config ends as it was.
    pub fn reapply_redistribution(&self, spec: &FrrSpec, v6: bool) -> Result<(), FrrError> {
        let commands = toggle_commands(spec, v6);
        let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
        self.vtysh_config(&commands).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from FRR 8.4.4 (Debian 12), two nodes, ferry's config.
    const EXT_SELF: &str = include_str!("../testdata/frr-8.4/ospf-external-self.json");
    /// After `no redistribute static`: the LSA at MaxAge, being flushed.
    const EXT_FLUSHED: &str = include_str!("../testdata/frr-8.4/ospf-external-self-flushed.json");
    /// Right after a graceful restart of ospfd: none yet.
    const EXT_RESTARTING: &str =
        include_str!("../testdata/frr-8.4/ospf-external-self-restarting.json");
    const EXT6_SELF: &str = include_str!("../testdata/frr-8.4/ospf6-external-self.json");
    const ROUTE_STATIC: &str = include_str!("../testdata/frr-8.4/route-static.json");
    const ROUTE6_STATIC: &str = include_str!("../testdata/frr-8.4/route6-static.json");

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn set(nets: &[&str]) -> BTreeSet<IpNet> {
        nets.iter().map(|s| net(s)).collect()
    }

    fn spec(cidrs: &[&str]) -> FrrSpec {
        FrrSpec::new(
            Mode::Ospf,
            "n0",
            "172.16.97.75".parse().unwrap(),
            "eth0",
            "172.16.97.75".parse().unwrap(),
            cidrs.iter().map(|s| net(s)).collect(),
        )
    }

    #[test]
    fn parses_frr_84_self_originated_externals() {
        assert_eq!(advertised_v4(EXT_SELF).unwrap(), set(&["10.244.0.0/24"]));
        assert_eq!(advertised_v4(EXT_FLUSHED).unwrap(), set(&[]), "MaxAge");
        assert_eq!(advertised_v4(EXT_RESTARTING).unwrap(), set(&[]));
        assert_eq!(
            advertised_v6(EXT6_SELF).unwrap(),
            set(&["fd00:10:244::/64"])
        );
        assert_eq!(advertised_v6("{}").unwrap(), set(&[]));
        assert!(advertised_v4("").is_err(), "no answer is no proof");
        assert!(advertised_v4("{}").is_err());
    }

    #[test]
    fn link_state_ids_with_host_bits_are_masked() {
        let json = r#"{"routerId":"1.1.1.1","AS External Link States":{
            "10.244.0.255":{"lsaAge":5,"linkStateId":"10.244.0.255","networkMask":25}}}"#;
        assert_eq!(advertised_v4(json).unwrap(), set(&["10.244.0.128/25"]));
    }

    #[test]
    fn parses_frr_84_static_routes() {
        assert_eq!(
            zebra_prefixes(ROUTE_STATIC).unwrap(),
            set(&["10.244.0.0/24"])
        );
        assert_eq!(
            zebra_prefixes(ROUTE6_STATIC).unwrap(),
            set(&["fd00:10:244::/64"])
        );
        assert_eq!(zebra_prefixes("").unwrap(), set(&[]));
    }

    #[test]
    fn nothing_missing_when_the_lsa_is_there() {
        let s = spec(&["10.244.0.0/24", "fd00:10:244::/64"]);
        let zebra = zebra_prefixes(ROUTE_STATIC).unwrap();
        let lsdb = advertised_v4(EXT_SELF).unwrap();
        assert_eq!(missing(&s, false, &zebra, &lsdb), []);
        let zebra6 = zebra_prefixes(ROUTE6_STATIC).unwrap();
        let lsdb6 = advertised_v6(EXT6_SELF).unwrap();
        assert_eq!(missing(&s, true, &zebra6, &lsdb6), []);
    }

    #[test]
    fn a_flushed_lsa_is_missing() {
        let s = spec(&["10.244.0.0/24"]);
        let zebra = zebra_prefixes(ROUTE_STATIC).unwrap();
        for lsdb in [EXT_FLUSHED, EXT_RESTARTING] {
            let lsdb = advertised_v4(lsdb).unwrap();
            assert_eq!(missing(&s, false, &zebra, &lsdb), [net("10.244.0.0/24")]);
        }
    }

    #[test]
    fn only_routes_in_zebra_and_passed_by_the_route_map_count() {
        let s = spec(&["10.244.0.0/24", "10.244.9.0/24"]);
        // 10.244.9.0/24 not in zebra (yet): not ospfd's fault.
        let zebra = set(&["10.244.0.0/24", "192.168.0.0/16"]);
        assert_eq!(
            missing(&s, false, &zebra, &set(&[])),
            [net("10.244.0.0/24")]
        );
        assert_eq!(missing(&s, true, &zebra, &set(&[])), []);
        // Pods: host routes inside the podCIDRs only.
        let mut p = s.clone();
        p.advertise = Advertise::Pods;
        let zebra = set(&["10.244.0.10/32", "10.244.0.0/24", "10.9.9.9/32"]);
        let lsdb = set(&["10.244.0.11/32"]);
        assert_eq!(missing(&p, false, &zebra, &lsdb), [net("10.244.0.10/32")]);
    }

    #[test]
    fn toggle_restores_the_rendered_line() {
        let mut s = spec(&["10.244.0.0/24", "fd00:10:244::/64"]);
        let rendered = crate::render(&s);
        for v6 in [false, true] {
            let c = toggle_commands(&s, v6);
            assert_eq!(c[0], "configure terminal");
            assert!(rendered.contains(&format!("{}\n", c[1])), "{c:?}");
            assert!(rendered.contains(&format!(" {}\n", c[3])), "{c:?}");
            assert_eq!(c[2], "no redistribute static");
        }
        s.advertise = Advertise::Pods;
        let c = toggle_commands(&s, false);
        assert_eq!(c[3], "redistribute kernel route-map FERRY-EXPORT-V4");
    }
}
