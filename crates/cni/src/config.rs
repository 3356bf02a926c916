//! The network configuration every plugin receives on stdin: the fields the
//! spec defines for all plugins. Plugin-specific fields stay in `raw`.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{CniError, Code};
use crate::result::CniResult;
use crate::version::Version;

/// One `(containerID, ifname)` that GC must keep.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
pub struct ValidAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    pub cni_version: Version,
    pub name: String,
    pub plugin_type: String,
    /// `ipam.type`, when there is an `ipam` section.
    pub ipam_type: Option<String>,
    pub prev_result: Option<CniResult>,
    /// `runtimeConfig`, an empty object when absent.
    pub runtime_config: Value,
    /// GC's `cni.dev/valid-attachments` (or the legacy `cni.dev/attachments`).
    pub valid_attachments: Option<Vec<ValidAttachment>>,
    /// The whole configuration as received.
    pub raw: Value,
}

fn config_err(msg: impl Into<String>) -> CniError {
    CniError::new(Code::InvalidNetworkConfig, msg)
}

/// The version a config asks for, for answering in the right dialect even
/// when the rest of it is broken. `None` when it cannot be read.
pub fn peek_version(bytes: &[u8]) -> Option<Version> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "cniVersion")]
        cni_version: String,
    }
    serde_json::from_slice::<Peek>(bytes)
        .ok()?
        .cni_version
        .parse()
        .ok()
}

/// A plugin or network name: `[A-Za-z0-9][A-Za-z0-9_.-]*`, so never a path.
pub fn is_plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl NetConf {
    pub fn parse(bytes: &[u8]) -> Result<NetConf, CniError> {
        let raw: Value = serde_json::from_slice(bytes).map_err(|e| {
            CniError::new(Code::DecodingFailure, "network config is not valid JSON")
                .with_details(e.to_string())
        })?;
        let obj = raw.as_object().ok_or_else(|| {
            CniError::new(Code::DecodingFailure, "network config is not a JSON object")
        })?;
        let str_field = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();

        let version_text = str_field("cniVersion");
        let cni_version = version_text.parse::<Version>().map_err(|e| {
            CniError::new(Code::IncompatibleVersion, "incompatible CNI version")
                .with_details(e.to_string())
        })?;
        let name = str_field("name").to_string();
        if name.is_empty() {
            return Err(config_err("missing network name"));
        }
        if !is_plain_name(&name) {
            return Err(config_err("invalid characters in network name").with_details(name));
        }
        let plugin_type = str_field("type").to_string();
        if !is_plain_name(&plugin_type) {
            return Err(config_err("plugin type must be a plain name, not a path")
                .with_details(plugin_type));
        }
        let ipam_type = match obj.get("ipam") {
            None | Some(Value::Null) => None,
            Some(Value::Object(ipam)) => {
                let t = ipam.get("type").and_then(Value::as_str).unwrap_or_default();
                if !is_plain_name(t) {
                    return Err(config_err("ipam type must be a plain name, not a path")
                        .with_details(t.to_string()));
                }
                Some(t.to_string())
            }
            Some(_) => return Err(config_err("ipam must be an object")),
        };
        let prev_result = match obj.get("prevResult") {
            None | Some(Value::Null) => None,
            Some(v) => Some(CniResult::from_value(v).map_err(|e| {
                CniError::new(Code::DecodingFailure, "cannot decode prevResult")
                    .with_details(e.to_string())
            })?),
        };
        let runtime_config = obj
            .get("runtimeConfig")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        let attachments = obj
            .get("cni.dev/valid-attachments")
            .or_else(|| obj.get("cni.dev/attachments"));
        let valid_attachments = match attachments {
            None | Some(Value::Null) => None,
            Some(v) => Some(Vec::<ValidAttachment>::deserialize(v).map_err(|e| {
                CniError::new(
                    Code::DecodingFailure,
                    "cannot decode cni.dev/valid-attachments",
                )
                .with_details(e.to_string())
            })?),
        };
        Ok(NetConf {
            cni_version,
            name,
            plugin_type,
            ipam_type,
            prev_result,
            runtime_config,
            valid_attachments,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_chained_config() {
        let c = NetConf::parse(
            br#"{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"ferry",
                "ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.0.0/24"}]]},
                "runtimeConfig":{"portMappings":[]},
                "prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.244.0.2/32"}]}}"#,
        )
        .unwrap();
        assert_eq!(c.cni_version, Version::V1_0_0);
        assert_eq!(c.ipam_type.as_deref(), Some("host-local"));
        assert_eq!(c.prev_result.unwrap().ips.len(), 1);
        assert!(c.runtime_config["portMappings"].is_array());
    }

    #[test]
    fn reads_valid_attachments_and_the_legacy_key() {
        for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
            let json = format!(
                r#"{{"cniVersion":"1.1.0","name":"n","type":"ferry","{key}":[{{"containerID":"a","ifname":"eth0"}}]}}"#
            );
            let c = NetConf::parse(json.as_bytes()).unwrap();
            assert_eq!(c.valid_attachments.unwrap()[0].container_id, "a");
        }
    }

    #[test]
    fn bad_configs_get_the_specs_codes() {
        let cases: &[(&str, Code)] = &[
            ("{", Code::DecodingFailure),
            ("[]", Code::DecodingFailure),
            (
                r#"{"cniVersion":"0.2.0","name":"n","type":"ferry"}"#,
                Code::IncompatibleVersion,
            ),
            (r#"{"name":"n","type":"ferry"}"#, Code::IncompatibleVersion),
            (
                r#"{"cniVersion":"1.0.0","type":"ferry"}"#,
                Code::InvalidNetworkConfig,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"a/b","type":"ferry"}"#,
                Code::InvalidNetworkConfig,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"../../bin/sh"}"#,
                Code::InvalidNetworkConfig,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"ferry","ipam":{"type":"/bin/sh"}}"#,
                Code::InvalidNetworkConfig,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"ferry","ipam":{"type":"x/y"}}"#,
                Code::InvalidNetworkConfig,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"ferry","ipam":"host-local"}"#,
                Code::InvalidNetworkConfig,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"ferry","prevResult":{"ips":[{"address":"x"}]}}"#,
                Code::DecodingFailure,
            ),
        ];
        for (json, code) in cases {
            let err = NetConf::parse(json.as_bytes()).expect_err(json);
            assert_eq!(err.code, *code, "{json}");
        }
    }

    #[test]
    fn peeks_version_of_broken_configs() {
        assert_eq!(
            peek_version(br#"{"cniVersion":"0.4.0","name":""}"#),
            Some(Version::V0_4_0)
        );
        assert_eq!(peek_version(b"{"), None);
    }
}
