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
use serde::Deserialize;
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
    /// Where ADD announces a new pod to ferryd's NetworkPolicy controller
    /// (see `crate::announce`).
    pub policy_dir: Option<PathBuf>,
    pub ipam: IpamKind,
    pub dns: Option<Dns>,
}

fn config_err(msg: impl Into<String>) -> CniError {
    CniError::new(Code::InvalidNetworkConfig, msg)
}

/// A field as typed, or whatever else was there (kept for the error, or
/// ignored where ferry has always ignored it).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Lenient<T> {
    Typed(T),
    Other(Value),
}

impl<T> Lenient<T> {
    fn typed(self) -> Option<T> {
        match self {
            Lenient::Typed(t) => Some(t),
            Lenient::Other(_) => None,
        }
    }
}

/// ferry's own fields, as they come (`null` is the same as absent).
/// [`RawConf::validate`] turns them into [`PluginConf`]'s.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConf {
    #[serde(default)]
    mtu: Option<Lenient<u64>>,
    /// Anything but a string is ignored, as it always was.
    #[serde(default)]
    log_file: Option<Lenient<String>>,
    /// Anything but a string means the default.
    #[serde(default)]
    log_level: Option<Lenient<String>>,
    /// Anything but a string is ignored.
    #[serde(default)]
    fast_path: Option<Lenient<String>>,
    /// Anything but a string is ignored.
    #[serde(default)]
    policy_dir: Option<Lenient<String>>,
    #[serde(default)]
    dns: Option<Lenient<Dns>>,
}

/// What ferry's fields mean, checked.
struct Fields {
    mtu: Option<u32>,
    log_file: Option<PathBuf>,
    log_level: Level,
    fast_path: Option<PathBuf>,
    policy_dir: Option<PathBuf>,
    dns: Option<Dns>,
}

impl RawConf {
    fn validate(self) -> Result<Fields, CniError> {
        let mtu = match self.mtu {
            None => None,
            Some(Lenient::Typed(m @ 576..=65535)) => Some(m as u32),
            Some(bad) => {
                let shown = match bad {
                    Lenient::Typed(n) => n.to_string(),
                    Lenient::Other(v) => v.to_string(),
                };
                return Err(
                    config_err("mtu must be a number from 576 to 65535").with_details(shown)
                );
            }
        };
        let log_file = match self.log_file.and_then(Lenient::typed) {
            None => None,
            Some(p) if p.is_empty() => None,
            Some(p) if p.starts_with('/') => Some(PathBuf::from(p)),
            Some(p) => return Err(config_err("logFile must be an absolute path").with_details(p)),
        };
        let fast_path = plain_dir("fastPath", self.fast_path)?;
        let policy_dir = plain_dir("policyDir", self.policy_dir)?;
        let log_level = match self.log_level.and_then(Lenient::typed) {
            None => Level::Info,
            Some(l) => l.parse().map_err(|_| {
                config_err("logLevel must be error, warn, info or debug").with_details(l)
            })?,
        };
        let dns = match self.dns {
            None => None,
            Some(Lenient::Typed(d)) => Some(d),
            Some(Lenient::Other(v)) => {
                let e = serde_json::from_value::<Dns>(v)
                    .err()
                    .map_or_else(|| "not a dns section".to_string(), |e| e.to_string());
                return Err(config_err("invalid dns section").with_details(e));
            }
        };
        Ok(Fields {
            mtu,
            log_file,
            log_level,
            fast_path,
            policy_dir,
            dns,
        })
    }
}

/// An optional directory field: absolute, no `..`; empty means none.
fn plain_dir(field: &str, value: Option<Lenient<String>>) -> Result<Option<PathBuf>, CniError> {
    match value.and_then(Lenient::typed) {
        None => Ok(None),
        Some(p) if p.is_empty() => Ok(None),
        Some(p) if is_plain_absolute(&p) => Ok(Some(PathBuf::from(p))),
        Some(p) => Err(
            config_err(format!("{field} must be an absolute path without '..'")).with_details(p),
        ),
    }
}

/// Absolute, and no `..` anywhere.
fn is_plain_absolute(p: &str) -> bool {
    p.starts_with('/')
        && !std::path::Path::new(p)
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

impl PluginConf {
    pub fn parse(bytes: &[u8]) -> Result<PluginConf, CniError> {
        let net = NetConf::parse(bytes)?;
        let fields = RawConf::deserialize(&net.raw)
            .map_err(|e| config_err("invalid ferry config").with_details(e.to_string()))?
            .validate()?;
        let ipam = match net.ipam_type.as_deref() {
            None => return Err(config_err("ferry needs an ipam section")),
            Some(BUILTIN_IPAM) => IpamKind::Builtin(Box::new(
                IpamConfig::from_value(&net.raw["ipam"], &net.name)
                    .map_err(|e| config_err("invalid ipam config").with_details(e.to_string()))?,
            )),
            Some(other) => IpamKind::Delegate(other.to_string()),
        };
        Ok(PluginConf {
            net,
            mtu: fields.mtu,
            log_file: fields.log_file,
            log_level: fields.log_level,
            fast_path: fields.fast_path,
            policy_dir: fields.policy_dir,
            ipam,
            dns: fields.dns,
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
    fn null_and_non_string_fields_mean_the_default() {
        let c =
            conf(r#","mtu":null,"logFile":7,"logLevel":null,"fastPath":false,"dns":null"#).unwrap();
        assert_eq!(c.mtu, None);
        assert_eq!(c.log_file, None);
        assert_eq!(c.log_level, Level::Info);
        assert_eq!(c.fast_path, None);
        assert!(c.dns.is_none());
        let c = conf(r#","logFile":"","dns":{"nameservers":["10.96.0.10"]}"#).unwrap();
        assert_eq!(c.log_file, None);
        assert_eq!(c.dns.unwrap().nameservers, vec!["10.96.0.10".to_string()]);
    }

    #[test]
    fn errors_name_the_field_and_value() {
        let e = conf(r#","mtu":"1500""#).unwrap_err();
        assert_eq!(e.msg, "mtu must be a number from 576 to 65535");
        assert_eq!(e.details.as_deref(), Some("\"1500\""));
        let e = conf(r#","mtu":100"#).unwrap_err();
        assert_eq!(e.details.as_deref(), Some("100"));
        let e = conf(r#","logLevel":"loud""#).unwrap_err();
        assert_eq!(e.details.as_deref(), Some("loud"));
    }

    #[test]
    fn rejects_bad_plugin_fields() {
        for extra in [
            r#","mtu":100"#,
            r#","mtu":"1500""#,
            r#","logFile":"relative.log""#,
            r#","logLevel":"loud""#,
            r#","dns":{"nameservers":"1.1.1.1"}"#,
            r#","dns":"1.1.1.1""#,
            r#","mtu":-1"#,
            r#","mtu":1500.5"#,
            r#","mtu":70000"#,
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
