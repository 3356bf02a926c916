//! The lab's long-running processes (API server, ferryd, FRR): started
//! detached inside a namespace, recorded by pid *and* start time (so a
//! reused pid is never signalled), stopped by pid only.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::error::{LabError, Result};

/// A process the lab started: the same record as the cluster's
/// (pid and start time, so a reused pid is never signalled).
pub use ferry_cluster::procs::Proc;

/// Starts `program args` detached (its own session, stdio to `log`)
/// inside `netns` via `setsid ip netns exec`, which exec each other: the
/// pid is the program's.
pub fn spawn_in_netns(
    netns: &str,
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    log: &Path,
) -> Result<Proc> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| LabError::io(dir, e))?;
    }
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| LabError::io(log, e))?;
    let err = out.try_clone().map_err(|e| LabError::io(log, e))?;
    let mut cmd = Command::new("setsid");
    cmd.args(["ip", "netns", "exec", netns])
        .arg(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let child = cmd.spawn().map_err(|e| LabError::Command {
        command: format!("setsid ip netns exec {netns} {}", program.display()),
        output: e.to_string(),
    })?;
    let pid = child.id() as i32;
    // The child stays unreaped until stopped (Proc::stop reaps it).
    drop(child);
    Proc::of(pid).ok_or_else(|| LabError::Command {
        command: format!("{} in {netns}", program.display()),
        output: format!("exited at once; see {}", log.display()),
    })
}

/// Pids whose network namespace is the one pinned at `netns_path`.
pub fn pids_in_netns(netns_path: &Path) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::metadata(netns_path) else {
        return Vec::new();
    };
    all_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.ino() == target.ino() && m.dev() == target.dev())
        })
        .collect()
}

/// Pids with an argument equal to `exact`, or starting with `path_prefix`
/// (a lab's state dir): the lab's processes even when their netns is gone.
pub fn pids_with_arg(exact: &[String], path_prefix: &Path) -> Vec<i32> {
    let mine = ancestors();
    let dir = format!("{}/", path_prefix.display());
    all_pids()
        .into_iter()
        .filter(|pid| !mine.contains(pid))
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            raw.split(|b| *b == 0)
                .filter_map(|a| std::str::from_utf8(a).ok())
                .any(|a| exact.iter().any(|e| e == a) || a.starts_with(&dir))
        })
        .collect()
}

/// This process and its ancestors (never to be signalled by a sweep).
fn ancestors() -> Vec<i32> {
    let mut out = vec![std::process::id() as i32];
    let mut pid = out[0];
    while pid > 1 {
        let Some(ppid) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|t| {
                t.rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            })
        else {
            break;
        };
        out.push(ppid);
        pid = ppid;
    }
    out
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Stops every pid in `pids` (SIGTERM, then SIGKILL); returns how many.
pub fn stop_all(pids: &[i32], grace: Duration) -> usize {
    let procs: Vec<Proc> = pids.iter().filter_map(|p| Proc::of(*p)).collect();
    for p in &procs {
        p.signal(Signal::SIGTERM);
    }
    let start = Instant::now();
    while procs.iter().any(Proc::alive) && start.elapsed() < grace {
        for p in &procs {
            p.reap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for p in procs.iter().filter(|p| p.alive()) {
        p.crash();
    }
    procs.len()
}

/// A pid file's pid.
pub fn read_pid_file(path: &PathBuf) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
