//! Error types. Every variant carries the value, path or operation that
//! failed so a message alone is enough to debug a node.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// An invalid `ipam` configuration, network name or static IP request.
/// The plugin maps all of these to CNI error code 7 ("invalid network config").
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("invalid ipam config: {0}")]
    Json(#[from] serde_json::Error),
    #[error("ipam config: no IP ranges specified")]
    NoRanges,
    #[error("ipam config: range set {set} is empty")]
    EmptyRangeSet { set: usize },
    #[error("ipam config: invalid subnet {value:?}: {reason}")]
    InvalidSubnet { value: String, reason: String },
    #[error("ipam config: subnet {subnet} has host bits set (network address is {network})")]
    HostBitsSet { subnet: String, network: String },
    #[error("ipam config: network {subnet} too small to allocate from")]
    SubnetTooSmall { subnet: String },
    #[error("ipam config: invalid {field} {value:?}: not an IP address")]
    InvalidAddress { field: &'static str, value: String },
    #[error("ipam config: {field} {addr} not in network {subnet}")]
    NotInSubnet {
        field: &'static str,
        addr: IpAddr,
        subnet: String,
    },
    #[error("ipam config: rangeStart {start} is after rangeEnd {end}")]
    StartAfterEnd { start: IpAddr, end: IpAddr },
    #[error("ipam config: range set {set} mixes address families ({first} and {second})")]
    MixedFamilies {
        set: usize,
        first: String,
        second: String,
    },
    #[error("ipam config: range {first} overlaps with range {second}")]
    Overlap { first: String, second: String },
    #[error("ipam config: invalid route {value:?}: {reason}")]
    InvalidRoute { value: String, reason: String },
    #[error("ipam config: invalid network name {name:?}: {reason}")]
    InvalidNetworkName { name: String, reason: &'static str },
    #[error("invalid requested IP {value:?} (from {source_name}): expected an address or address/prefix")]
    InvalidRequestedIp {
        value: String,
        source_name: &'static str,
    },
}

/// Everything the allocator can fail with.
///
/// Suggested CNI code mapping: [`IpamError::Config`] and
/// [`IpamError::InvalidAttachment`] -> 7, [`IpamError::LockTimeout`] -> 11
/// ("try again later"), any error from [`crate::status`] -> 50, the rest ->
/// ferry's own codes (100+).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpamError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid attachment (container ID {container_id:?}, ifname {ifname:?}): {reason}")]
    InvalidAttachment {
        container_id: String,
        ifname: String,
        reason: &'static str,
    },
    #[error("timed out after {timeout:?} waiting for the IPAM lock {path}")]
    LockTimeout { path: PathBuf, timeout: Duration },
    #[error("no IP addresses available in range set {range}")]
    Exhausted { range: String },
    #[error("requested IP address {ip} is already allocated")]
    AddressInUse { ip: IpAddr },
    #[error("requested IP address {ip} is not in any configured range")]
    NotInRange { ip: IpAddr },
    #[error("requested IP address {ip} cannot be allocated: it is the {what}")]
    NotAllocatable { ip: IpAddr, what: &'static str },
    #[error("requested IP addresses {first} and {second} fall into the same range set {range}")]
    SameRangeSet {
        first: IpAddr,
        second: IpAddr,
        range: String,
    },
    #[error("no IP address is reserved for container {container_id:?} interface {ifname:?}")]
    NotReserved {
        container_id: String,
        ifname: String,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt IPAM state in {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl IpamError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        IpamError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A configuration or argument problem (CNI code 7).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            IpamError::Config(_) | IpamError::InvalidAttachment { .. }
        )
    }

    /// Transient: the caller should retry later (CNI code 11).
    pub fn is_try_again(&self) -> bool {
        matches!(self, IpamError::LockTimeout { .. })
    }

    /// The range (set) has no free address left.
    pub fn is_exhausted(&self) -> bool {
        matches!(self, IpamError::Exhausted { .. })
    }

    /// The errno of an underlying I/O failure, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            IpamError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
