//! `ferryd uninstall`: removes everything ferryd made on this node, in the
//! reverse order of making it (the conflist first, so kubelet stops using
//! ferry before anything else goes). Idempotent.

use crate::cli::Opts;
use crate::install::{remove_file, Binaries};
use crate::{fast_path, frr_glue, nat, routes, AgentError};

/// What was removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub conflist: bool,
    pub binaries: Vec<&'static str>,
    pub nft_table: bool,
    pub routes: usize,
    pub frr_config: bool,
    /// Interfaces the fast path was detached from.
    pub fast_path: usize,
}

impl Removed {
    pub fn nothing(&self) -> bool {
        *self == Removed::default()
    }
}

/// Removes the conflist, the plugin binaries, the nft table, the owned
/// routes and ferryd's FRR config. Every step runs even when an earlier
/// one failed; the first error is returned after all ran.
pub fn run(o: &Opts) -> Result<Removed, AgentError> {
    let mut removed = Removed::default();
    let mut first_err: Option<AgentError> = None;
    let mut keep = |r: Result<(), AgentError>| {
        if let Err(e) = r {
            tracing::warn!(error = %e, "uninstall step failed");
            first_err.get_or_insert(e);
        }
    };
    keep(remove_file(&o.conflist_path()).map(|b| removed.conflist = b));
    keep(Binaries::remove(&o.cni_bin_dir).map(|b| removed.binaries = b));
    keep(nat::delete().map(|b| removed.nft_table = b));
    keep(fast_path::remove(&o.bpf_dir).map(|n| removed.fast_path = n));
    keep(
        ferry_netlink::Handle::new()
            .map_err(|e| AgentError::netlink("open", e))
            .and_then(|mut h| routes::delete_all(&mut h))
            .map(|n| removed.routes = n),
    );
    if o.frr_pathspace.is_some()
        || o.frr_conf_dir.is_some()
        || o.routing != crate::cli::Routing::Direct
    {
        keep(frr_glue::remove(&frr_glue::frr_from_opts(o)).map(|b| removed.frr_config = b));
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}
