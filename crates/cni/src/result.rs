//! The success result of ADD (and the `prevResult` of CHECK, DEL and chained
//! plugins), held in its newest form (1.1.0) and written in any version.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::version::Version;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// 1.1.0 and later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// 1.1.0 and later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    /// 1.1.0 and later.
    #[serde(default, rename = "pciID", skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// 1.1.0 and later, as are the fields below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

impl Route {
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Route {
        Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// A result in canonical (1.1.0) form. Parsing accepts any version from
/// 0.3.0 on: the per-IP `version` field of older results is derived from the
/// address, so it is simply ignored on input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub dns: Dns,
}

/// A result that is not a CNI result we can read.
#[derive(Debug, thiserror::Error)]
#[error("invalid CNI result: {0}")]
pub struct ResultError(#[from] serde_json::Error);

impl CniResult {
    pub fn from_value(v: &Value) -> Result<CniResult, ResultError> {
        Ok(CniResult::deserialize(v)?)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<CniResult, ResultError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The result as `version` defines it: fields that version lacks are
    /// dropped, and before 1.0.0 each IP names its family as "4" or "6".
    pub fn to_value(&self, version: Version) -> Value {
        let mut r = self.clone();
        if version < Version::V1_1_0 {
            for i in &mut r.interfaces {
                i.mtu = None;
                i.socket_path = None;
                i.pci_id = None;
            }
            for rt in &mut r.routes {
                *rt = Route::new(rt.dst, rt.gw);
            }
        }
        let mut out = Map::new();
        out.insert("cniVersion".into(), Value::from(version.as_str()));
        if !r.interfaces.is_empty() {
            out.insert("interfaces".into(), to_value(&r.interfaces));
        }
        if !r.ips.is_empty() {
            let mut ips = to_value(&r.ips);
            if version.ips_carry_family() {
                if let Value::Array(items) = &mut ips {
                    for (item, ip) in items.iter_mut().zip(&r.ips) {
                        let family = if ip.address.addr().is_ipv4() {
                            "4"
                        } else {
                            "6"
                        };
                        if let Value::Object(m) = item {
                            m.insert("version".into(), Value::from(family));
                        }
                    }
                }
            }
            out.insert("ips".into(), ips);
        }
        if !r.routes.is_empty() {
            out.insert("routes".into(), to_value(&r.routes));
        }
        if !r.dns.is_empty() {
            out.insert("dns".into(), to_value(&r.dns));
        }
        Value::Object(out)
    }

    pub fn to_json(&self, version: Version) -> String {
        self.to_value(version).to_string()
    }
}

fn to_value<T: Serialize>(t: &T) -> Value {
    // Our own plain data types always serialize.
    serde_json::to_value(t).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface {
                    name: "fy1234".into(),
                    mac: Some("ee:ee:ee:ee:ee:ee".into()),
                    mtu: Some(1500),
                    ..Default::default()
                },
                Interface {
                    name: "eth0".into(),
                    mac: Some("02:00:00:00:00:01".into()),
                    mtu: Some(1500),
                    sandbox: Some("/run/netns/p".into()),
                    ..Default::default()
                },
            ],
            ips: vec![
                IpConfig {
                    interface: Some(1),
                    address: "10.244.0.5/32".parse().unwrap(),
                    gateway: Some("169.254.1.1".parse().unwrap()),
                },
                IpConfig {
                    interface: Some(1),
                    address: "fd00::5/128".parse().unwrap(),
                    gateway: None,
                },
            ],
            routes: vec![Route {
                priority: Some(10),
                ..Route::new("0.0.0.0/0".parse().unwrap(), None)
            }],
            dns: Dns::default(),
        }
    }

    #[test]
    fn v1_1_keeps_new_fields() {
        let v = sample().to_value(Version::V1_1_0);
        assert_eq!(v["cniVersion"], "1.1.0");
        assert_eq!(v["interfaces"][0]["mtu"], 1500);
        assert_eq!(v["routes"][0]["priority"], 10);
        assert!(v["ips"][0].get("version").is_none());
        assert_eq!(v["ips"][0]["address"], "10.244.0.5/32");
        assert!(v.get("dns").is_none());
    }

    #[test]
    fn v1_0_drops_1_1_fields() {
        let v = sample().to_value(Version::V1_0_0);
        assert!(v["interfaces"][0].get("mtu").is_none());
        assert!(v["routes"][0].get("priority").is_none());
        assert!(v["ips"][0].get("version").is_none());
        assert_eq!(v["interfaces"][1]["sandbox"], "/run/netns/p");
    }

    #[test]
    fn pre_1_0_names_ip_families() {
        for ver in [Version::V0_3_0, Version::V0_3_1, Version::V0_4_0] {
            let v = sample().to_value(ver);
            assert_eq!(v["cniVersion"], ver.as_str());
            assert_eq!(v["ips"][0]["version"], "4");
            assert_eq!(v["ips"][1]["version"], "6");
            assert_eq!(v["ips"][0]["interface"], 1);
            assert!(v["interfaces"][0].get("mtu").is_none());
        }
    }

    #[test]
    fn round_trips_through_every_version() {
        for ver in Version::ALL {
            let json = sample().to_json(ver);
            let back = CniResult::from_slice(json.as_bytes()).unwrap();
            let mut expected = sample();
            if ver < Version::V1_1_0 {
                expected.interfaces.iter_mut().for_each(|i| i.mtu = None);
                expected.routes[0].priority = None;
            }
            assert_eq!(back, expected, "version {ver}");
        }
    }

    #[test]
    fn parses_reference_plugin_output() {
        // As printed by host-local 1.1.1 with cniVersion 0.4.0.
        let json = r#"{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.1.2.3/24","gateway":"10.1.2.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}"#;
        let r = CniResult::from_slice(json.as_bytes()).unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.1.2.3/24");
        assert_eq!(r.ips[0].gateway.unwrap().to_string(), "10.1.2.1");
        assert_eq!(r.routes[0].dst.to_string(), "0.0.0.0/0");
        assert!(CniResult::from_slice(br#"{"ips":[{"address":"nope"}]}"#).is_err());
    }
}
