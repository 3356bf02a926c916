//! ferryd's library error.

use std::io;
use std::path::PathBuf;

/// Errors from ferryd's library code. Each names what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A netlink request failed.
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        source: ferry_netlink::NetlinkError,
    },
    /// A sysctl could not be set.
    #[error("sysctl {key}: {source}")]
    Sysctl {
        key: String,
        source: ferry_netns::SysctlError,
    },
    /// Forwarding is off on the node and this process cannot turn it on
    /// (`/proc/sys` read-only in an unprivileged container): only the
    /// node's admin, or the privileged `prepare` step, can.
    #[error(
        "{key} is {value} on this node and ferryd cannot set it ({source}); \
         set {key}=1 on the node (sysctl) or let the `prepare` init container do it"
    )]
    ForwardingOff {
        key: String,
        value: String,
        source: ferry_netns::SysctlError,
    },
    /// The nftables table could not be applied, read or deleted.
    #[error("nftables: {0}")]
    Nft(String),
    /// FRR could not be configured or queried.
    #[error("FRR: {0}")]
    Frr(String),
    /// A secret file (key/password) could not be used. The content is never
    /// part of the message.
    #[error("secret file {path}: {reason}")]
    Secret { path: PathBuf, reason: String },
    /// The Kubernetes API client failed.
    #[error("kubernetes API: {0}")]
    Kube(String),
    /// The container runtime (CRI) could not be asked.
    #[error("CRI {0}")]
    Cri(String),
    /// A host veth could not be listed or removed.
    #[error("host veths: {0}")]
    HostVeth(#[from] ferry_hostveth::HostVethError),
    /// The IPAM store could not be read.
    #[error("IPAM store: {0}")]
    Ipam(#[from] ferry_ipam::IpamError),
    /// WireGuard (`--encryption wireguard`): key file, device, UAPI.
    #[error("{0}")]
    WireGuard(#[from] ferry_wireguard::WgError),
    /// The node is not ready to be configured (no podCIDR, not found, ...).
    #[error("{0}")]
    NotReady(String),
    /// An invalid setting.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl AgentError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        AgentError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn netlink(what: impl Into<String>, source: ferry_netlink::NetlinkError) -> Self {
        AgentError::Netlink {
            what: what.into(),
            source,
        }
    }
}
