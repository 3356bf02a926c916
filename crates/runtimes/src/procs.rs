//! Processes and mounts: run a command in the node's netns, stop what we
//! started by its pid, and undo mounts a runtime left under our temp dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use ferry_netns::NetNs;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{HarnessError, Result};

/// Spawn `cmd` inside the netns at `netns` (mount namespace unchanged, so
/// whatever the child mounts, e.g. a runtime's `/run/netns/cni-*`, stays
/// visible to the test).
pub fn spawn_in(netns: &Path, mut cmd: Command) -> Result<Child> {
    let ns = open(netns)?;
    let name = describe(&cmd);
    ns.run(move || cmd.spawn())
        .map_err(|source| HarnessError::Netns {
            path: netns.to_path_buf(),
            source,
        })?
        .map_err(|source| HarnessError::Spawn { cmd: name, source })
}

/// Run `cmd` to completion inside the netns at `netns`.
pub fn output_in(netns: &Path, mut cmd: Command) -> Result<Output> {
    let ns = open(netns)?;
    let name = describe(&cmd);
    ns.run(move || cmd.output())
        .map_err(|source| HarnessError::Netns {
            path: netns.to_path_buf(),
            source,
        })?
        .map_err(|source| HarnessError::Spawn { cmd: name, source })
}

/// [`output_in`], failing unless the command exits 0; its stdout.
pub fn checked_in(netns: &Path, cmd: Command) -> Result<String> {
    let name = describe(&cmd);
    checked(name, output_in(netns, cmd)?)
}

/// Run `cmd` here, failing unless it exits 0; its stdout.
pub fn run_checked(mut cmd: Command) -> Result<String> {
    let name = describe(&cmd);
    let out = cmd.output().map_err(|source| HarnessError::Spawn {
        cmd: name.clone(),
        source,
    })?;
    checked(name, out)
}

fn checked(cmd: String, out: Output) -> Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HarnessError::Command {
            cmd,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn open(netns: &Path) -> Result<NetNs> {
    NetNs::open(netns).map_err(|source| HarnessError::Netns {
        path: netns.to_path_buf(),
        source,
    })
}

pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// SIGTERM, then SIGKILL after `grace`; reaps the child.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Pids of live processes whose command line contains `needle` (a path
/// unique to one harness instance, so only processes it started match).
pub fn pids_with_arg(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// SIGKILL a process by pid (one we started, found by [`pids_with_arg`]).
pub fn kill_pid(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Mount points at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Lazily unmount everything under `dir`, then remove it.
pub fn unmount_and_remove(dir: &Path) {
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            break;
        }
        for m in mounts {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(raw: &str) -> PathBuf {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let oct: String = chars.clone().take(3).collect();
            if let Ok(v) = u8::from_str_radix(&oct, 8) {
                out.push(v as char);
                for _ in 0..3 {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c);
    }
    PathBuf::from(out)
}

/// Poll `f` every 20 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                what: what.to_string(),
                secs: limit.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(
            unescape_mount_path(r"/tmp/a\040b\134c"),
            PathBuf::from(r"/tmp/a b\c")
        );
        assert_eq!(unescape_mount_path("/run/x"), PathBuf::from("/run/x"));
    }
}
