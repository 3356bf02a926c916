//! Routes learned over OSPF or BGP, from zebra's `show ip[v6] route json`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

/// A route FRR selected from OSPF or BGP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnedRoute {
    pub prefix: IpNet,
    /// FRR's name: `ospf`, `ospf6` or `bgp`.
    pub protocol: String,
    /// In the kernel's table (zebra installed it).
    pub installed: bool,
    pub nexthops: Vec<Nexthop>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nexthop {
    pub ip: Option<IpAddr>,
    pub interface: Option<String>,
}

const LEARNED: [&str; 3] = ["ospf", "ospf6", "bgp"];

#[derive(Deserialize)]
struct Entry {
    prefix: String,
    protocol: String,
    #[serde(default)]
    selected: bool,
    #[serde(default)]
    installed: bool,
    #[serde(default)]
    nexthops: Vec<Hop>,
}

#[derive(Deserialize)]
struct Hop {
    ip: Option<String>,
    #[serde(rename = "interfaceName")]
    interface: Option<String>,
    #[serde(default)]
    active: bool,
}

/// The prefixes of the selected routes in one `show ip[v6] route [PROTOCOL]
/// json` answer, whatever their protocol.
pub(crate) fn selected(json: &str) -> Result<Vec<IpNet>, String> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let table: BTreeMap<String, Vec<Entry>> =
        serde_json::from_str(json).map_err(|e| e.to_string())?;
    table
        .into_values()
        .flatten()
        .filter(|e| e.selected)
        .map(|e| {
            e.prefix
                .parse()
                .map_err(|err| format!("prefix {:?}: {err}", e.prefix))
        })
        .collect()
}

/// Selected OSPF/BGP routes in one `show ip[v6] route json` answer.
pub(crate) fn parse(json: &str) -> Result<Vec<LearnedRoute>, String> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let table: BTreeMap<String, Vec<Entry>> =
        serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for entry in table.into_values().flatten() {
        if !entry.selected || !LEARNED.contains(&entry.protocol.as_str()) {
            continue;
        }
        // A route without a gateway is one OSPF calls directly attached,
        // not one learned from another node: on a point-to-multipoint
        // interface, the node's own address (its /32 stub).
        if !entry.nexthops.iter().any(|h| h.active && h.ip.is_some()) {
            continue;
        }
        let prefix = entry
            .prefix
            .parse()
            .map_err(|e| format!("prefix {:?}: {e}", entry.prefix))?;
        let nexthops = entry
            .nexthops
            .into_iter()
            .filter(|h| h.active)
            .map(|h| Nexthop {
                ip: h.ip.and_then(|ip| ip.parse().ok()),
                interface: h.interface,
            })
            .collect();
        out.push(LearnedRoute {
            prefix,
            protocol: entry.protocol,
            installed: entry.installed,
            nexthops,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_selected_ospf_and_bgp_routes() {
        let json = r#"{
          "10.244.1.0/24":[{"prefix":"10.244.1.0/24","protocol":"ospf","selected":true,"installed":true,
             "nexthops":[{"ip":"172.16.97.76","afi":"ipv4","interfaceName":"eth0","active":true}]}],
          "172.16.97.0/24":[
             {"prefix":"172.16.97.0/24","protocol":"ospf","nexthops":[{"directlyConnected":true,"interfaceName":"eth0","active":true}]},
             {"prefix":"172.16.97.0/24","protocol":"connected","selected":true,"installed":true,"nexthops":[]}],
          "172.16.97.75/32":[{"prefix":"172.16.97.75/32","protocol":"ospf","selected":true,"installed":true,
             "nexthops":[{"directlyConnected":true,"interfaceName":"eth0","active":true}]}],
          "10.244.0.0/24":[{"prefix":"10.244.0.0/24","protocol":"static","selected":true,"installed":true,
             "nexthops":[{"blackhole":true,"active":true}]}]
        }"#;
        let got = parse(json).unwrap();
        assert_eq!(
            got,
            [LearnedRoute {
                prefix: "10.244.1.0/24".parse().unwrap(),
                protocol: "ospf".into(),
                installed: true,
                nexthops: vec![Nexthop {
                    ip: Some("172.16.97.76".parse().unwrap()),
                    interface: Some("eth0".into()),
                }],
            }]
        );
        assert_eq!(parse("{}").unwrap(), []);
        assert!(parse("not json").is_err());
    }
}
