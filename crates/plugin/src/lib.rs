//! ferry, the CNI plugin: a routed veth per pod, as the seed's bash-cni does
//! it, complete to CNI spec 1.1. `ferry-ipam` is the same allocator as a
//! standalone IPAM plugin.

pub mod announce;
pub mod cmd;
pub mod conf;
pub mod delegate;
pub mod ipam;
pub mod ipam_plugin;
pub mod log;
/// The host veth names and aliases live in `ferry-hostveth`.
pub use ferry_hostveth::names;
pub mod run;
pub mod veth;
