//! Each node's kubelet puts its pods under a cgroup root of its own,
//! `/<prefix>kube-<node>` (cgroupfs driver, cgroup v1 here), which must
//! exist in every hierarchy before the kubelet starts; `sweep` kills what
//! is left in those cgroups and removes them (runc also makes the path in
//! the `unified` hierarchy).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{ClusterError, Result};

pub const CGROUP_FS: &str = "/sys/fs/cgroup";

/// The mounted hierarchies (`cpu`, `memory`, ..., `systemd`, `unified`).
pub fn hierarchies() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(CGROUP_FS)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    v.sort();
    v
}

/// Creates `root` (e.g. `/fl-kube-k8s-master`) in every hierarchy but
/// `unified`; cpuset gets its parent's cpus and mems.
pub fn create(root: &str) -> Result<()> {
    for h in hierarchies() {
        if h.ends_with("unified") {
            continue;
        }
        let dir = h.join(root.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).map_err(ClusterError::io("creating cgroup", &dir))?;
        if h.ends_with("cpuset") {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(h.join(f))
                    .map_err(ClusterError::io("reading", h.join(f)))?;
                std::fs::write(dir.join(f), v.trim())
                    .map_err(ClusterError::io("writing", dir.join(f)))?;
            }
        }
    }
    Ok(())
}

/// Every cgroup dir under `root` in every hierarchy, deepest first.
fn tree(root: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out);
            }
        }
        out.push(dir.to_path_buf());
    }
    let mut out = vec![];
    for h in hierarchies() {
        let d = h.join(root.trim_start_matches('/'));
        if d.is_dir() {
            walk(&d, &mut out);
        }
    }
    out
}

/// The pids in any cgroup under `root`.
pub fn pids(root: &str) -> Vec<i32> {
    let mut v: Vec<i32> = tree(root)
        .iter()
        .flat_map(|d| {
            std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// SIGKILLs every process under `root` until the cgroups are empty (new
/// forks included); how many were killed.
pub fn sweep_processes(root: &str) -> usize {
    let mut killed = 0;
    let t = Instant::now();
    loop {
        let p = pids(root);
        if p.is_empty() || t.elapsed() > Duration::from_secs(15) {
            return killed;
        }
        killed += crate::procs::kill_all(&p);
    }
}

/// Kills every process under `root` and removes the cgroups.
/// Returns (processes killed, cgroups removed).
pub fn sweep(root: &str) -> (usize, usize) {
    let killed = sweep_processes(root);
    let mut removed = 0;
    for d in tree(root) {
        // rmdir fails while the kernel still tears a cgroup down: retry.
        for _ in 0..50 {
            if std::fs::remove_dir(&d).is_ok() || !d.exists() {
                removed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    (killed, removed)
}

/// Cgroup roots whose name starts with `/<prefix>kube-` in any hierarchy.
pub fn roots_with_prefix(prefix: &str) -> Vec<String> {
    let want = format!("{prefix}kube-");
    let mut v: Vec<String> = hierarchies()
        .iter()
        .flat_map(|h| std::fs::read_dir(h).into_iter().flatten().flatten())
        .filter_map(|e| {
            let n = e.file_name().to_str()?.to_string();
            (n.starts_with(&want) && e.path().is_dir()).then(|| format!("/{n}"))
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_sweep_a_cgroup_with_a_process() {
        let root = format!("/ftcg{}-kube-n", std::process::id());
        create(&root).unwrap();
        assert!(roots_with_prefix(&format!("ftcg{}-", std::process::id())).contains(&root));
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let procs = Path::new(CGROUP_FS)
            .join("pids")
            .join(root.trim_start_matches('/'))
            .join("cgroup.procs");
        std::fs::write(&procs, child.id().to_string()).unwrap();
        assert_eq!(pids(&root), vec![child.id() as i32]);
        let (killed, removed) = sweep(&root);
        let _ = child.wait();
        assert_eq!(killed, 1);
        assert!(removed >= 1);
        assert!(roots_with_prefix(&format!("ftcg{}-", std::process::id())).is_empty());
    }
}
