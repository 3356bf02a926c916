//! `down`: remove everything a lab made, found by its prefix as well as
//! by its state file, so it also cleans up after a crash (or a `kill -9`
//! of `up`) and is idempotent. Nothing outside the lab's namespaces, its
//! FRR pathspaces and its state dir is touched.

use std::path::Path;
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::frr;
use crate::procs;
use crate::sh;
use crate::state::{LabConfig, State};

/// What `down` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    pub processes: usize,
    pub netns: usize,
    pub frr_pathspaces: usize,
    pub state_dir: bool,
}

impl Removed {
    pub fn nothing(&self) -> bool {
        *self == Removed::default()
    }
}

/// The lab's processes wherever they are: by argument (FRR `-N` pathspace,
/// paths under the state dir), which finds them even when their netns
/// was removed under them.
fn lab_processes(cfg: &LabConfig) -> Vec<i32> {
    let pathspaces = frr::pathspaces_with_prefix(&cfg.prefix);
    let mut exact = pathspaces.clone();
    exact.extend(sh::netns_with_prefix(&cfg.prefix));
    procs::pids_with_arg(&exact, &cfg.state_dir)
}

/// Removes the lab. Order: ferryd (so it does not react to the rest),
/// FRR, the API server, anything else still running in a lab netns or
/// naming the lab; then the namespaces (pods first), the FRR pathspaces,
/// the files ospfd/ospf6d share outside any pathspace (when no such
/// daemon is left anywhere) and the state
/// dir.
pub fn down(cfg: &LabConfig) -> Result<Removed> {
    crate::topo::check_prefix(&cfg.prefix).map_err(LabError::Invalid)?;
    let mut removed = Removed::default();
    // A real cluster's pods, daemons, cgroups and files first (found by
    // the prefix, so also without a state file).
    let kube = crate::kube::down(cfg)?;
    removed.processes += kube.processes;
    if let Ok(state) = State::load(cfg) {
        let agents: Vec<procs::Proc> = state.nodes.iter().filter_map(|n| n.ferryd).collect();
        for p in &agents {
            p.signal(nix::sys::signal::Signal::SIGTERM);
        }
        for p in &agents {
            if p.stop(Duration::from_secs(5)) {
                removed.processes += 1;
            }
        }
    }
    let pathspaces = frr::pathspaces_with_prefix(&cfg.prefix);
    for ps in &pathspaces {
        removed.processes += frr::stop(ps);
    }
    if let Ok(state) = State::load(cfg) {
        if let Some(p) = state.apiserver {
            if p.alive() && p.stop(Duration::from_secs(5)) {
                removed.processes += 1;
            }
        }
    }
    let namespaces = sh::netns_with_prefix(&cfg.prefix);
    let mut in_ns: Vec<i32> = namespaces
        .iter()
        .flat_map(|ns| procs::pids_in_netns(&sh::netns_path(ns)))
        .collect();
    in_ns.extend(lab_processes(cfg));
    in_ns.sort_unstable();
    in_ns.dedup();
    in_ns.retain(|p| *p != std::process::id() as i32);
    removed.processes += procs::stop_all(&in_ns, Duration::from_secs(5));

    // Pods before nodes, nodes before the switch: a veth goes with the
    // first of its two namespaces.
    let mut ordered = namespaces.clone();
    ordered.sort_by_key(|n| {
        let rest = &n[cfg.prefix.len()..];
        (
            !rest.starts_with("pod-"),
            rest.ends_with("switch"),
            n.clone(),
        )
    });
    let mut errors = Vec::new();
    for ns in &ordered {
        match ferry_netns::delete_named(ns) {
            Ok(true) => removed.netns += 1,
            Ok(false) => {}
            Err(e) => errors.push(format!("netns {ns}: {e}")),
        }
    }
    for ps in &pathspaces {
        match frr::remove(ps) {
            Ok(()) => removed.frr_pathspaces += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !pathspaces.is_empty() {
        remove_unused_shared_files();
    }
    // The fast path's pins go with their bpf file system (the kernel frees
    // the programs once the node netns holding their attachments are gone).
    if cfg.bpf_dir().exists() {
        match nix::mount::umount2(&cfg.bpf_dir(), nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) => {} // EINVAL: not mounted
            Err(e) => errors.push(format!("umount {}: {e}", cfg.bpf_dir().display())),
        }
    }
    if cfg.state_dir.exists() {
        match std::fs::remove_dir_all(&cfg.state_dir) {
            Ok(()) => removed.state_dir = true,
            Err(e) => errors.push(format!("{}: {e}", cfg.state_dir.display())),
        }
    }
    if errors.is_empty() {
        Ok(removed)
    } else {
        Err(LabError::Invalid(format!(
            "down left things behind:\n{}",
            errors.join("\n")
        )))
    }
}

/// Removes FRR's files shared by every instance on the host
/// ([`frr::SHARED_FILES`]) whose daemon runs nowhere.
pub fn remove_unused_shared_files() {
    for (daemon, file) in frr::SHARED_FILES {
        if !any_process_named(daemon) {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Whether any process of that command name runs (read-only look).
fn any_process_named(comm: &str) -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == comm))
        // A daemon just stopped may linger as a zombie until it is reaped
        // (here nothing may reap it for a while): it writes nothing.
        .any(|e| {
            e.file_name()
                .to_str()
                .and_then(|pid| pid.parse().ok())
                .and_then(procs::Proc::of)
                .is_some_and(|p| p.alive())
        })
}

/// Everything of the lab that still exists, one line each (empty: clean).
/// This is the CI's leftover check.
pub fn leftovers(cfg: &LabConfig) -> Vec<String> {
    let mut out: Vec<String> = sh::netns_with_prefix(&cfg.prefix)
        .into_iter()
        .map(|n| format!("netns {n}"))
        .collect();
    for ps in frr::pathspaces_with_prefix(&cfg.prefix) {
        for dir in [frr::conf_dir(&ps), frr::run_dir(&ps)] {
            if dir.exists() {
                out.push(format!("dir {}", dir.display()));
            }
        }
    }
    for pid in lab_processes(cfg) {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        out.push(format!("process {pid}: {}", cmd.trim()));
    }
    if Path::new(&cfg.state_dir).exists() {
        out.push(format!("dir {}", cfg.state_dir.display()));
    }
    out.extend(crate::kube::leftovers(cfg));
    out
}
