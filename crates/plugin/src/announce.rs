//! A new pod, told to ferryd's NetworkPolicy controller before its
//! containers start.
//!
//! ferryd learns a pod's address from the API (`status.podIPs`), which the
//! kubelet writes a second or so after the sandbox is up — long after the
//! pod's first packets. Policy selecting a new pod must hold from its first
//! packet (an egress-isolated pod would otherwise talk freely meanwhile),
//! so ADD writes `<policyDir>/<containerID>_<ifname>.json`:
//!
//! ```json
//! {"namespace":"default","name":"web-0","ips":["10.244.1.7"]}
//! ```
//!
//! (atomically: a temp file renamed), from `K8S_POD_NAMESPACE` and
//! `K8S_POD_NAME` in `CNI_ARGS`, and waits until ferryd has written
//! `<containerID>_<ifname>.synced`: a ruleset with the pod's addresses is
//! in the kernel. Without ferryd's answer in [`WAIT`], ADD goes on (and
//! logs it): the pod starts as it would without the announcement. DEL
//! removes both files. Runtimes that give no pod name (podman) announce
//! nothing.
//!
//! ferryd holds an exclusive `flock` on `<policyDir>/ferryd.lock` while it
//! watches the directory ([`LOCK`]). ADD waits only while someone holds it:
//! with ferryd down (crashed, being upgraded, not installed) the pod
//! starts at once instead of after [`WAIT`], and its policy applies when
//! ferryd is back (it reads the announcements left in the directory).

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long ADD waits for ferryd.
pub const WAIT: Duration = Duration::from_secs(3);
/// The file ferryd keeps locked while it answers announcements.
pub const LOCK: &str = "ferryd.lock";
const POLL: Duration = Duration::from_millis(2);
const LOCK_RECHECK: Duration = Duration::from_millis(100);

#[derive(Serialize)]
struct Announcement<'a> {
    namespace: &'a str,
    name: &'a str,
    ips: &'a [IpAddr],
}

fn file(dir: &Path, container_id: &str, ifname: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{container_id}_{ifname}.{suffix}"))
}

/// Writes the announcement (replacing an earlier one of the same
/// attachment) and removes a stale answer.
pub fn announce(
    dir: &Path,
    container_id: &str,
    ifname: &str,
    namespace: &str,
    name: &str,
    ips: &[IpAddr],
) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let _ = fs::remove_file(file(dir, container_id, ifname, "synced"));
    let body = serde_json::to_vec(&Announcement {
        namespace,
        name,
        ips,
    })
    .map_err(io::Error::other)?;
    let path = file(dir, container_id, ifname, "json");
    let tmp = file(dir, container_id, ifname, "tmp");
    fs::write(&tmp, body)?;
    fs::rename(&tmp, &path)
}

/// Whether a ferryd is answering announcements in `dir`: it holds
/// [`LOCK`] (a shared lock cannot be had). No file: no ferryd ever ran.
pub fn ferryd_listening(dir: &Path) -> bool {
    let Ok(f) = fs::File::open(dir.join(LOCK)) else {
        return false;
    };
    match f.try_lock_shared() {
        Ok(()) => false,
        Err(fs::TryLockError::WouldBlock) => true,
        // Locks unsupported here: assume it listens (waiting is safe).
        Err(fs::TryLockError::Error(_)) => true,
    }
}

/// What came of waiting for ferryd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// ferryd's rules cover the pod.
    Synced,
    /// No ferryd holds the lock (at the start, or it went away meanwhile).
    NoFerryd,
    /// ferryd is there but did not answer within the limit.
    TimedOut,
}

/// Waits for ferryd's answer while a ferryd listens, at most `limit`.
pub fn wait_synced(dir: &Path, container_id: &str, ifname: &str, limit: Duration) -> Waited {
    let done = file(dir, container_id, ifname, "synced");
    let start = Instant::now();
    let mut checked = start;
    if !done.exists() && !ferryd_listening(dir) {
        return Waited::NoFerryd;
    }
    loop {
        if done.exists() {
            return Waited::Synced;
        }
        if start.elapsed() >= limit {
            return Waited::TimedOut;
        }
        // A ferryd that dies meanwhile will not answer.
        if checked.elapsed() >= LOCK_RECHECK {
            checked = Instant::now();
            if !ferryd_listening(dir) && !done.exists() {
                return Waited::NoFerryd;
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Removes the announcement and the answer (DEL; nothing there is fine).
pub fn withdraw(dir: &Path, container_id: &str, ifname: &str) {
    for suffix in ["json", "synced", "tmp"] {
        let _ = fs::remove_file(file(dir, container_id, ifname, suffix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_wait_withdraw() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("policy");
        let ips: Vec<IpAddr> = vec!["10.244.0.7".parse().unwrap()];
        announce(&dir, "c1", "eth0", "default", "web", &ips).unwrap();
        let body = fs::read_to_string(dir.join("c1_eth0.json")).unwrap();
        assert_eq!(
            body,
            r#"{"namespace":"default","name":"web","ips":["10.244.0.7"]}"#
        );
        // Nobody holds the lock: no waiting at all.
        let t = Instant::now();
        let w = wait_synced(&dir, "c1", "eth0", Duration::from_secs(5));
        assert_eq!(w, Waited::NoFerryd);
        assert!(t.elapsed() < Duration::from_secs(1));
        // A listening ferryd that does not answer: the limit.
        let lock = fs::File::create(dir.join(LOCK)).unwrap();
        lock.lock().unwrap();
        let w = wait_synced(&dir, "c1", "eth0", Duration::from_millis(20));
        assert_eq!(w, Waited::TimedOut);
        fs::write(dir.join("c1_eth0.synced"), "").unwrap();
        let w = wait_synced(&dir, "c1", "eth0", Duration::from_millis(20));
        assert_eq!(w, Waited::Synced);
        // A new announcement of the same attachment needs a new answer.
        announce(&dir, "c1", "eth0", "default", "web", &ips).unwrap();
        assert!(!dir.join("c1_eth0.synced").exists());
        withdraw(&dir, "c1", "eth0");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "only the lock");
        withdraw(&dir, "c1", "eth0");
    }

    #[test]
    fn a_ferryd_that_goes_away_ends_the_wait() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        let lock = fs::File::create(dir.join(LOCK)).unwrap();
        lock.lock().unwrap();
        assert!(ferryd_listening(&dir));
        announce(&dir, "c1", "eth0", "default", "web", &[]).unwrap();
        let t = Instant::now();
        let gone = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(lock);
        });
        let w = wait_synced(&dir, "c1", "eth0", Duration::from_secs(5));
        gone.join().unwrap();
        assert_eq!(w, Waited::NoFerryd);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(!ferryd_listening(&dir));
    }
}
