//! `down` and `leftovers` for a cluster, by name alone: its processes are
//! those with an argument under its root (every daemon is started with a
//! config or data path there), its cgroups those named `/<prefix>kube-*`,
//! its files the root. Works after a crash, without the state file.
//! Mounts need no sweep: every mount a node makes lives in the node's own
//! mount namespace and goes with its last process.

use crate::cgroups;
use crate::error::{ClusterError, Result};
use crate::paths::ClusterPaths;
use crate::procs;

/// What `down` removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub processes: usize,
    pub cgroups: usize,
    pub root: bool,
}

/// Removes everything of the cluster: the pods' processes (in the nodes'
/// cgroups), the daemons, the cgroups, the root directory.
pub fn down(paths: &ClusterPaths) -> Result<Removed> {
    let mut r = Removed::default();
    // Pods first, so no shim or kubelet restarts them; then the daemons.
    // Twice: a kubelet killed in between may have started a container.
    for _ in 0..2 {
        for root in cgroups::roots_with_prefix(&paths.prefix) {
            r.processes += cgroups::pids(&root).len();
            let _ = cgroups::sweep_processes(&root);
        }
        r.processes += procs::kill_all(&procs::with_arg_under(&paths.root));
    }
    for root in cgroups::roots_with_prefix(&paths.prefix) {
        r.cgroups += cgroups::sweep(&root).1;
    }
    if paths.root.exists() {
        std::fs::remove_dir_all(&paths.root).map_err(ClusterError::io("removing", &paths.root))?;
        r.root = true;
    }
    // The parent (/var/tmp/ferry-lab) goes too once no cluster uses it.
    if let Some(parent) = paths.root.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    Ok(r)
}

/// What of the cluster is still there (empty when nothing).
pub fn leftovers(paths: &ClusterPaths) -> Vec<String> {
    let mut v = vec![];
    let p = procs::with_arg_under(&paths.root);
    if !p.is_empty() {
        v.push(format!("processes {p:?}"));
    }
    for root in cgroups::roots_with_prefix(&paths.prefix) {
        v.push(format!("cgroup {root}"));
    }
    if paths.root.exists() {
        v.push(format!("directory {}", paths.root.display()));
    }
    v
}
