//! What the WireGuard crate reports.

use std::path::PathBuf;

/// A WireGuard error. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum WgError {
    /// A key that is not 32 bytes of base64 (or hex, for the UAPI).
    #[error("bad WireGuard key: {0}")]
    BadKey(String),
    /// The key file could not be read or written.
    #[error("WireGuard key file {path}: {what}: {source}")]
    KeyFile {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The key file holds something else than a key, or is readable by
    /// others than its owner.
    #[error("WireGuard key file {path}: {why}")]
    KeyFileContent { path: PathBuf, why: String },
    /// The UAPI socket could not be reached or spoken to.
    #[error("WireGuard UAPI {path}: {what}: {source}")]
    Uapi {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The device answered with an errno (`errno=N`).
    #[error("WireGuard UAPI {path}: the device refused the request: {}", std::io::Error::from_raw_os_error(*.errno))]
    UapiErrno { path: PathBuf, errno: i32 },
    /// The device's answer does not follow the protocol.
    #[error("WireGuard {0}: bad reply: {1}")]
    Protocol(&'static str, String),
    /// Generic netlink (the kernel device) failed.
    #[error("WireGuard netlink {op}: {source}")]
    Netlink {
        op: &'static str,
        #[source]
        source: ferry_netlink::engine::EngineError,
    },
    /// The kernel has no generic netlink family "wireguard".
    #[error("the kernel has no WireGuard (no generic netlink family \"wireguard\")")]
    NoKernelSupport,
}

impl WgError {
    /// The kernel's errno, when the kernel refused a request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            WgError::Netlink {
                source: ferry_netlink::engine::EngineError::Kernel { errno, .. },
                ..
            } => Some(*errno),
            WgError::UapiErrno { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}
