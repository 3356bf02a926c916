//! The cluster's long-running processes: started detached (own session,
//! output to a log) inside a node's or the router's namespaces through
//! `nsenter`, recorded by pid and start time so a reused pid is never
//! signalled.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{ClusterError, Result};

/// A process the cluster started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: i32,
    /// Start time in clock ticks after boot (`/proc/PID/stat` field 22).
    pub start: u64,
}

fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.first()?.chars().next()?, f.get(19)?.parse().ok()?))
}

impl Proc {
    pub fn of(pid: i32) -> Option<Proc> {
        stat(pid).map(|(_, start)| Proc { pid, start })
    }

    /// True while any of its threads runs. A leader that has exited shows
    /// 'Z' while its other threads are still tearing down, holding its
    /// files (a listening socket), so 'Z' counts as gone only once it is
    /// the last task left.
    pub fn alive(&self) -> bool {
        match stat(self.pid) {
            Some((s, start)) if start == self.start => s != 'Z' || self.tasks() > 1,
            _ => false,
        }
    }

    fn tasks(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid)).map_or(0, |d| d.count())
    }

    /// Reaps it when it is this process's child and has exited.
    pub fn reap(&self) {
        let _ = waitpid(Pid::from_raw(self.pid), Some(WaitPidFlag::WNOHANG));
    }

    /// Sends `sig` if it is still the same process.
    pub fn signal(&self, sig: Signal) -> bool {
        self.alive() && kill(Pid::from_raw(self.pid), sig).is_ok()
    }

    /// SIGKILL (a crash), reaped when it is our child.
    pub fn crash(&self) {
        self.signal(Signal::SIGKILL);
        let t = Instant::now();
        while self.alive() && t.elapsed() < Duration::from_secs(5) {
            self.reap();
            std::thread::sleep(Duration::from_millis(5));
        }
        self.reap();
    }

    /// SIGTERM, `grace` to exit, then SIGKILL; true when gone.
    pub fn stop(&self, grace: Duration) -> bool {
        if self.alive() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
        }
        let t = Instant::now();
        while self.alive() && t.elapsed() < grace {
            self.reap();
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.alive() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            let t = Instant::now();
            while self.alive() && t.elapsed() < Duration::from_secs(5) {
                self.reap();
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.reap();
        !self.alive()
    }
}

/// Where a process runs: `nsenter` options (`--net=FILE`, `--target PID
/// --mount --net`, ...).
#[derive(Debug, Clone)]
pub struct Place(pub Vec<String>);

impl Place {
    /// Inside the named netns (`/run/netns/NAME`), in the host's mounts.
    pub fn netns(name: &str) -> Place {
        Place(vec![format!("--net=/run/netns/{name}")])
    }

    /// Inside the mount, UTS and network namespaces of `holder`.
    pub fn of_holder(holder: i32) -> Place {
        Place(vec![
            format!("--target={holder}"),
            "--mount".into(),
            "--uts".into(),
            "--net".into(),
        ])
    }

    /// A command that runs `program args` here.
    pub fn command(&self, program: &Path, args: &[String]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(&self.0).arg("--").arg(program).args(args);
        cmd
    }
}

/// Starts `program args` detached in `place`, stdout and stderr appended to
/// `log`. nsenter execs the program, so the pid is the program's.
pub fn spawn(
    place: &Place,
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    log: &Path,
) -> Result<Proc> {
    if let Some(dir) = log.parent() {
        crate::util::mkdir(dir)?;
    }
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(ClusterError::io("opening", log))?;
    let err = out.try_clone().map_err(ClusterError::io("opening", log))?;
    let mut cmd = Command::new("setsid");
    if !place.0.is_empty() {
        cmd.arg("nsenter").args(&place.0).arg("--");
    }
    cmd.arg(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let child = cmd.spawn().map_err(|e| ClusterError::Command {
        command: format!("nsenter {} {}", place.0.join(" "), program.display()),
        output: e.to_string(),
    })?;
    let pid = child.id() as i32;
    drop(child); // reaped by Proc::stop, or by init once we exit
                 // setsid and nsenter exec in place: wait until the pid runs `program`.
    let name = program.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if name.starts_with(comm.trim()) && !comm.trim().is_empty() {
            break;
        }
        if stat(pid).is_none_or(|(s, _)| s == 'Z') {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Proc::of(pid)
        .filter(Proc::alive)
        .ok_or_else(|| ClusterError::Command {
            command: program.display().to_string(),
            output: format!("exited at once:\n{}", crate::util::tail(log, 15)),
        })
}

/// Pids whose network namespace is the named netns `name`.
pub fn in_netns(name: &str) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::metadata(format!("/run/netns/{name}")) else {
        return vec![];
    };
    all_pids()
        .into_iter()
        .filter(|p| *p != std::process::id() as i32)
        .filter(|p| {
            std::fs::metadata(format!("/proc/{p}/ns/net"))
                .is_ok_and(|m| m.ino() == target.ino() && m.dev() == target.dev())
        })
        .collect()
}

/// Every pid on the machine.
pub fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Pids (not this process or its ancestors) with an argument under `dir`:
/// the cluster's daemons, found even when no state file names them.
pub fn with_arg_under(dir: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut skip = vec![me];
    let mut pid = me;
    while let Some(ppid) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|t| {
            t.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse::<i32>()
                .ok()
        })
        .filter(|p| *p > 1)
    {
        skip.push(ppid);
        pid = ppid;
    }
    let needle = format!("{}/", dir.display());
    all_pids()
        .into_iter()
        .filter(|p| !skip.contains(p))
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|raw| {
                raw.split(|b| *b == 0)
                    .filter_map(|a| std::str::from_utf8(a).ok())
                    .any(|a| a.contains(&needle))
            })
        })
        .collect()
}

/// SIGKILLs every pid in `pids` and waits (up to 5 s) until they are gone.
pub fn kill_all(pids: &[i32]) -> usize {
    let procs: Vec<Proc> = pids.iter().filter_map(|p| Proc::of(*p)).collect();
    for p in &procs {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
    let t = Instant::now();
    while procs.iter().any(Proc::alive) && t.elapsed() < Duration::from_secs(5) {
        for p in &procs {
            p.reap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    procs.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leader that ended with `exit` (not `exit_group`) is a zombie
    /// while its other thread runs on: still alive, until that thread ends.
    #[test]
    fn a_zombie_leader_with_a_live_thread_is_alive() {
        let script = "import ctypes, threading, time\n\
                      threading.Thread(target=time.sleep, args=(1.5,)).start()\n\
                      ctypes.CDLL(None).syscall(60, 0)\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .spawn()
            .unwrap();
        let p = Proc::of(child.id() as i32).unwrap();
        let t = Instant::now();
        while stat(p.pid).map(|(s, _)| s) != Some('Z') {
            assert!(t.elapsed() < Duration::from_secs(5), "never a zombie");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(p.tasks() > 1);
        assert!(p.alive(), "leader is 'Z' but a thread still runs");
        while p.alive() {
            assert!(t.elapsed() < Duration::from_secs(10), "never gone");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(child.wait().unwrap().success());
        assert!(!p.alive());
    }
}
