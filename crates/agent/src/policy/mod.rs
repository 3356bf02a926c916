//! NetworkPolicy enforcement, control-plane side: watch Namespaces, Pods
//! (of every node: peers can be anywhere) and NetworkPolicies, keep only
//! what policy needs ([`view`]: `ferry_netpol::convert`'s slim types),
//! compile the table for this node ([`ferry_netpol::compile`]) a few
//! milliseconds after a change, and apply it through a
//! [`PolicyDataplane`] ([`engine`]): one atomic transaction per change,
//! elements only when the table's shape stays (pod churn), a table
//! replace otherwise.
//!
//! # Restarts never open a window
//!
//! The table (`inet ferry-policy`) outlives ferryd. On start ferryd does
//! not touch it until the first *complete* compile: all three kinds
//! listed and this node's name known. Until then the table an earlier
//! ferryd left keeps enforcing what it enforced. The first sync asks the
//! kernel whether it already holds exactly the new ruleset
//! (`installed_matches`): then nothing is written (and its counters are
//! kept); otherwise `apply(None, new)` replaces the table in one
//! transaction, so no packet ever sees the table missing or half-built.
//! A watch that fails or relists never empties the view: a relist is
//! collected aside and swapped in whole. (On a node that never had the
//! table, pods are open until that first compile, as with no policy.)
//!
//! # What cannot be enforced
//!
//! A policy part `ferry_netpol::convert` cannot use is left out fail
//! closed (a dropped rule allows nothing); a policy unusable as a whole is
//! enforced as deny-all (both directions) for its namespace's pods. Both
//! are logged once per change and counted as
//! `ferry_network_policies{state="unenforceable"}`. SCTP ports compile to
//! plain payload matches (no sctp kernel module needed). A ruleset the
//! kernel refuses leaves the previous table in place; the error is logged
//! and counted, and the sync retried with backoff. None of it stops
//! ferryd.
//!
//! `--network-policy=false` deletes the table and watches nothing.
//!
//! # Modules
//!
//! [`view`] (slim objects from watch events) · [`engine`] (install,
//! monotonic drop counters) · [`dataplane`] (the trait, the kernel impl) ·
//! [`controller`] (watches, debounce, the loop) · [`fast_path`] (isolated
//! pods off the eBPF fast path) · [`drop_log`] (`--policy-log`: dropped
//! connections logged with pod names) · [`metrics`] · [`status`] (`ferryd
//! status`).

pub mod announce;
pub mod controller;
pub mod dataplane;
pub mod drop_log;
pub mod engine;
pub mod fast_path;
pub mod metrics;
pub mod status;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use ferry_netpol::Direction;
use tokio::sync::Notify;

pub use dataplane::{Applied, DataplaneError, KernelDataplane, PolicyDataplane};
pub use fast_path::FastPathExclusions;

/// What the policy controller shares with the rest of ferryd (metrics,
/// and the fast path that must leave isolated pods to netfilter).
#[derive(Debug, Default)]
pub struct PolicyShared {
    state: Mutex<PolicyState>,
    /// Wakes the controller: the view or the node name changed.
    pub changed: Notify,
    /// Isolated pods kept off the eBPF fast path.
    pub fast_path: FastPathExclusions,
    /// Where the plugin announces new pods ([`announce`]); `None`: only
    /// the API tells ferryd of them.
    pub announce_dir: Option<std::path::PathBuf>,
    /// `--policy-log`: drops go to NFLOG and are logged ([`drop_log`]).
    pub drop_log: Option<ferry_netpol::DropLog>,
}

/// The controller's published state.
#[derive(Debug, Default, Clone)]
pub struct PolicyState {
    /// This node's name, once known (the node loop finds it).
    pub node: Option<String>,
    /// Local pod addresses isolated, per direction, by the installed table.
    pub isolated: BTreeMap<Direction, BTreeSet<IpAddr>>,
    /// Policies by whether they are enforced as written.
    pub enforced: usize,
    pub unenforceable: usize,
    /// Counter names of the installed table (policies with local pods).
    pub local_policies: BTreeSet<String>,
    /// Drops per counter name since ferryd started (monotonic).
    pub drops: BTreeMap<String, (u64, u64)>,
    pub applies: metrics::Applies,
    /// Group chains of the installed table → the counters (policies) of
    /// their drop: what a drop log prefix stands for.
    pub groups: BTreeMap<String, Vec<String>>,
    /// The drop log's counts, while `--policy-log` is on.
    pub drop_log: Option<drop_log::DropLogCounts>,
}

impl PolicyShared {
    /// With the fast path's pin directory (`None` with it off).
    pub fn new(
        fast_path_dir: Option<std::path::PathBuf>,
        announce_dir: Option<std::path::PathBuf>,
    ) -> Self {
        PolicyShared {
            fast_path: FastPathExclusions::new(fast_path_dir),
            announce_dir,
            ..PolicyShared::default()
        }
    }

    /// With drops logged (`--policy-log`) or not.
    pub fn with_drop_log(mut self, log: Option<ferry_netpol::DropLog>) -> Self {
        self.drop_log = log;
        self
    }

    pub fn state(&self) -> MutexGuard<'_, PolicyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the controller which node it enforces for.
    pub fn set_node(&self, node: &str) {
        let mut s = self.state();
        if s.node.as_deref() != Some(node) {
            s.node = Some(node.to_string());
            drop(s);
            self.changed.notify_one();
        }
    }

    /// Local pod addresses isolated by some policy in either direction,
    /// by the installed table.
    pub fn isolated_local_addrs(&self) -> BTreeSet<IpAddr> {
        self.state().isolated.values().flatten().copied().collect()
    }
}
