//! ferry's eBPF fast path for pod↔pod traffic (IPv4 and IPv6): a small tc program written
//! with the crate's own assembler ([`insn`]), its maps, and the `bpf(2)`
//! calls to load, pin and fill them. Attaching it to interfaces is a
//! netlink matter (`ferry_netlink::Handle::attach_bpf_ingress`).
//!
//! Why: without it a packet between pods on two nodes crosses the IP stack
//! of both nodes (routing, netfilter hooks, conntrack); with it, the pod↔pod
//! packets the stack would forward unchanged go straight from one device
//! to the next. What it leaves to the stack, and why that keeps kube-proxy
//! Services, masquerade and everything conntrack does intact, is in
//! [`program`].
//!
//! NetworkPolicy is enforced in nftables at the forward hook, which the
//! fast path skips; so the agent excludes every pod isolated by a policy
//! on its node ([`FastPath::set_excluded`]), and the program leaves every
//! packet from or to an excluded address to the stack, in both directions.

pub mod btf;
mod cidrs;
mod error;
mod fastpath;
pub mod insn;
pub mod kfuncs;
mod map;
mod pinned;
pub mod program;
mod sys;
mod tunnel;

pub use error::EbpfError;
pub use fastpath::{
    ensure_bpffs, open_prog, pinned_excluded, pinned_stats, prog_id, set_pinned_excluded, unpin,
    FastPath, PodIfaces, Stats, PROG_NAME, PROG_PIN,
};
pub use map::MapShape;
#[cfg(feature = "testing")]
pub use pinned::pin_stand_in;
pub use pinned::{prog_name, Pinned};
pub use tunnel::VxlanTunnel;
