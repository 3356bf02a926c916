//! The spec's error result: `{"cniVersion", "code", "msg", "details"}`.

use serde::Serialize;

use crate::version::Version;

/// Error codes. 1-99 are reserved by the spec; ferry's own start at 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// 1: incompatible CNI version.
    IncompatibleVersion,
    /// 2: unsupported field in network configuration.
    UnsupportedField,
    /// 3: container unknown or does not exist.
    UnknownContainer,
    /// 4: invalid necessary environment variables.
    InvalidEnvironment,
    /// 5: I/O failure.
    IoFailure,
    /// 6: failed to decode content.
    DecodingFailure,
    /// 7: invalid network config.
    InvalidNetworkConfig,
    /// 11: try again later.
    TryAgainLater,
    /// 50: the plugin is not available (STATUS).
    NotAvailable,
    /// 51: not available, and existing containers may have limited connectivity.
    NotAvailableLimitedConnectivity,
    /// 100: the address range is exhausted.
    AddressesExhausted,
    /// 101: a kernel (netlink, sysctl, namespace) operation failed.
    Kernel,
    /// 102: the IPAM store failed.
    IpamStore,
    /// 103: a delegated plugin failed, or could not be run.
    Delegate,
    /// 104: the state found does not match what CHECK expected.
    CheckFailed,
    /// 105: a requested address is already taken, or outside every range.
    AddressUnavailable,
}

impl Code {
    pub fn as_u32(self) -> u32 {
        match self {
            Code::IncompatibleVersion => 1,
            Code::UnsupportedField => 2,
            Code::UnknownContainer => 3,
            Code::InvalidEnvironment => 4,
            Code::IoFailure => 5,
            Code::DecodingFailure => 6,
            Code::InvalidNetworkConfig => 7,
            Code::TryAgainLater => 11,
            Code::NotAvailable => 50,
            Code::NotAvailableLimitedConnectivity => 51,
            Code::AddressesExhausted => 100,
            Code::Kernel => 101,
            Code::IpamStore => 102,
            Code::Delegate => 103,
            Code::CheckFailed => 104,
            Code::AddressUnavailable => 105,
        }
    }
}

/// An error as a plugin reports it on stdout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CNI error {}: {msg}{}", code.as_u32(), details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct CniError {
    pub code: Code,
    pub msg: String,
    pub details: Option<String>,
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    code: u32,
    msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a str>,
}

impl CniError {
    pub fn new(code: Code, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> CniError {
        self.details = Some(details.into());
        self
    }

    /// The error JSON in `version`'s dialect (the envelope is the same in all).
    pub fn to_json(&self, version: Version) -> String {
        let wire = Wire {
            cni_version: version.as_str(),
            code: self.code.as_u32(),
            msg: &self.msg,
            details: self.details.as_deref(),
        };
        serde_json::to_string(&wire).unwrap_or_else(|_| {
            format!(
                r#"{{"cniVersion":"{}","code":{},"msg":"error"}}"#,
                version,
                self.code.as_u32()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_spec_fields() {
        let e = CniError::new(Code::TryAgainLater, "lock busy").with_details("/run/x/lock");
        let v: serde_json::Value = serde_json::from_str(&e.to_json(Version::V1_0_0)).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["code"], 11);
        assert_eq!(v["msg"], "lock busy");
        assert_eq!(v["details"], "/run/x/lock");
        let plain = CniError::new(Code::InvalidNetworkConfig, "bad \"cidr\"");
        let v: serde_json::Value = serde_json::from_str(&plain.to_json(Version::V0_3_1)).unwrap();
        assert_eq!(v["code"], 7);
        assert!(v.get("details").is_none());
    }

    #[test]
    fn codes_are_the_specs() {
        let pairs = [
            (Code::IncompatibleVersion, 1),
            (Code::InvalidEnvironment, 4),
            (Code::DecodingFailure, 6),
            (Code::InvalidNetworkConfig, 7),
            (Code::TryAgainLater, 11),
            (Code::NotAvailable, 50),
        ];
        for (c, n) in pairs {
            assert_eq!(c.as_u32(), n);
        }
        assert!(Code::AddressesExhausted.as_u32() >= 100);
    }
}
