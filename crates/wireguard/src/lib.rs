//! ferry's WireGuard: the node's keys ([`key`]), the device as wanted and
//! as found and the pure [`plan`] between them ([`config`]), and the two
//! drivers behind one [`Driver`] trait — the kernel device over generic
//! netlink ([`genl::KernelDevice`], distribution kernels since 5.6) and a
//! userspace device (`ferry-wg`, boringtun over TUN) over the WireGuard
//! UAPI socket ([`uapi::UapiDevice`]).

pub mod config;
mod error;
pub mod genl;
pub mod key;
pub mod uapi;

pub use config::{plan, Changes, DeviceConfig, DeviceState, PeerConfig, PeerState, DEFAULT_PORT};
pub use error::WgError;
pub use key::{PrivateKey, PublicKey};

/// What WireGuard adds to a packet over an IPv4 underlay: outer IPv4
/// (20), UDP (8), WireGuard data header (16) and tag (16).
pub const V4_OVERHEAD: u32 = 60;
/// The same over IPv6 (outer header 40).
pub const V6_OVERHEAD: u32 = 80;

/// One WireGuard device, whichever implementation runs it.
pub trait Driver: std::fmt::Debug + Send {
    /// `"kernel"` or `"userspace"`.
    fn kind(&self) -> &'static str;
    /// What the device holds.
    fn get(&mut self) -> Result<DeviceState, WgError>;
    /// Applies `changes`; `key` is sent only when `changes.set_private_key`.
    fn apply(&mut self, key: &PrivateKey, changes: &Changes) -> Result<(), WgError>;
}
