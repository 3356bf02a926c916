//! ferry's network configuration: the spec's common fields plus ours.
//!
//! ```json
//! { "cniVersion": "1.1.0", "name": "k8s-pod-network", "type": "ferry",
//!   "mtu": 1500, "logFile": "/var/log/ferry.log", "logLevel": "info",
//!   "fastPath": "/sys/fs/bpf/ferry",
//!   "ipam": { "type": "ferry-ipam", "ranges": [[{"subnet": "10.244.0.0/24"}]] } }
//! ```

use std::net::IpAddr;
use std::path::PathBuf;

use ferry_cni::result::Dns;
use ferry_cni::{CniError, Code, Env, NetConf};
use ferry_ipam::IpamConfig;
use serde_json::Value;

use crate::log::Level;

/// The IPAM type handled in-process.
pub const BUILTIN_IPAM: &str = "ferry-ipam";

/// Where addresses come from.
#[derive(Debug, Clone)]
pub enum IpamKind {
    /// `ferry-ipam`: the allocator runs inside this process.
    Builtin(Box<IpamConfig>),
    /// Any other type: exec'd from `CNI_PATH` as the spec says.
    Delegate(String),
}

#[derive(Debug, Clone)]
pub struct PluginConf {
    pub net: NetConf,
    /// Both ends of the veth pair; `None` means the default route's MTU.
    pub mtu: Option<u32>,
    pub log_file: Option<PathBuf>,
    pub log_level: Level,
    /// ferryd's pinned eBPF fast path, attached to each new host veth.
    pub fast_path: Option<PathBuf>,
    pub ipam: IpamKind,
    pub dns: Option<Dns>,
}

fn config_err(msg: impl Into<String>) -> CniError {
    CniError::new(Code::InvalidNetworkConfig, msg)
}

impl PluginConf {
    pub fn parse(bytes: &[u8]) -> Result<PluginConf, CniError> {
        let net = NetConf::parse(bytes)?;
        let raw = &net.raw;
        let mtu = match raw.get("mtu") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(m @ 576..=65535) => Some(m as u32),
                _ => {
                    return Err(config_err("mtu must be a number from 576 to 65535")
                        .with_details(v.to_string()))
                }
            },
        };
        let log_file = match raw.get("logFile").and_then(Value::as_str) {
            None | Some("") => None,
            Some(p) if p.starts_with('/') => Some(PathBuf::from(p)),
            Some(p) => return Err(config_err("logFile must be an absolute path").with_details(p)),
        };
        let fast_path = match raw.get("fastPath").and_then(Value::as_str) {
            None | Some("") => None,
            Some(p)
                if p.starts_with('/')
                    && !std::path::Path::new(p)
                        .components()
                        .any(|c| matches!(c, std::path::Component::ParentDir)) =>
            {
                Some(PathBuf::from(p))
            }
            Some(p) => {
                return Err(
                    config_err("fastPath must be an absolute path without '..'").with_details(p)
                )
            }
        };
        let log_level = match raw.get("logLevel").and_then(Value::as_str) {
            None => Level::Info,
            Some(l) => l.parse().map_err(|_| {
                config_err("logLevel must be error, warn, info or debug").with_details(l)
            })?,
        };
        let ipam = match net.ipam_type.as_deref() {
            None => return Err(config_err("ferry needs an ipam section")),
            Some(BUILTIN_IPAM) => IpamKind::Builtin(Box::new(
                IpamConfig::from_value(&raw["ipam"], &net.name)
                    .map_err(|e| config_err("invalid ipam config").with_details(e.to_string()))?,
            )),
            Some(other) => IpamKind::Delegate(other.to_string()),
        };
        let dns = match raw.get("dns") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value(v.clone())
                    .map_err(|e| config_err("invalid dns section").with_details(e.to_string()))?,
            ),
        };
        Ok(PluginConf {
            net,
            mtu,
            log_file,
            log_level,
            fast_path,
            ipam,
            dns,
        })
    }
}

/// Addresses the runtime asks for: `IP=` in `CNI_ARGS` (podman), and the
/// `ips` capability (`runtimeConfig.ips`, or `args.cni.ips`).
pub fn requested_ips(env: &Env, net: &NetConf) -> Result<Vec<IpAddr>, CniError> {
    let args: Vec<String> = env.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    ferry_ipam::requested_ips_from_netconf(&net.raw, Some(&args.join(";")))
        .map_err(|e| config_err("invalid requested IP").with_details(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{"cniVersion":"1.1.0","name":"net","type":"ferry",
        "ipam":{"type":"ferry-ipam","ranges":[[{"subnet":"10.244.0.0/24"}]]}"#;

    fn conf(extra: &str) -> Result<PluginConf, CniError> {
        PluginConf::parse(format!("{BASE}{extra}}}").as_bytes())
    }

    #[test]
    fn fast_path_must_be_a_plain_absolute_path() {
        let c = conf(r#","fastPath":"/sys/fs/bpf/ferry""#).unwrap();
        assert_eq!(
            c.fast_path.as_deref(),
            Some(std::path::Path::new("/sys/fs/bpf/ferry"))
        );
        assert_eq!(conf("").unwrap().fast_path, None);
        for bad in ["bpf/ferry", "/sys/fs/bpf/../../etc"] {
            let e = conf(&format!(r#","fastPath":"{bad}""#)).unwrap_err();
            assert_eq!(e.code, Code::InvalidNetworkConfig, "{bad}");
        }
    }

    #[test]
    fn parses_builtin_and_delegated_ipam() {
        let c = conf(r#","mtu":1450,"logLevel":"debug""#).unwrap();
        assert_eq!(c.mtu, Some(1450));
        assert_eq!(c.log_level, Level::Debug);
        assert!(matches!(c.ipam, IpamKind::Builtin(_)));
        let d = PluginConf::parse(
            br#"{"cniVersion":"1.0.0","name":"n","type":"ferry","ipam":{"type":"host-local"}}"#,
        )
        .unwrap();
        assert!(matches!(d.ipam, IpamKind::Delegate(ref t) if t == "host-local"));
    }

    #[test]
    fn rejects_bad_plugin_fields() {
        for extra in [
            r#","mtu":100"#,
            r#","mtu":"1500""#,
            r#","logFile":"relative.log""#,
            r#","logLevel":"loud""#,
            r#","dns":{"nameservers":"1.1.1.1"}"#,
        ] {
            let e = conf(extra).expect_err(extra);
            assert_eq!(e.code, Code::InvalidNetworkConfig, "{extra}");
        }
        let no_ipam = PluginConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"ferry"}"#);
        assert_eq!(no_ipam.unwrap_err().code, Code::InvalidNetworkConfig);
        let bad_cidr = PluginConf::parse(
            br#"{"cniVersion":"1.0.0","name":"n","type":"ferry","ipam":{"type":"ferry-ipam","ranges":[[{"subnet":"10.244.0.0/33"}]]}}"#,
        );
        assert_eq!(bad_cidr.unwrap_err().code, Code::InvalidNetworkConfig);
    }
}
