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

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long ADD waits for ferryd.
pub const WAIT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(2);

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

/// Waits for ferryd's answer; false after `limit`.
pub fn wait_synced(dir: &Path, container_id: &str, ifname: &str, limit: Duration) -> bool {
    let done = file(dir, container_id, ifname, "synced");
    let start = Instant::now();
    loop {
        if done.exists() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
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
        assert!(!wait_synced(&dir, "c1", "eth0", Duration::from_millis(20)));
        fs::write(dir.join("c1_eth0.synced"), "").unwrap();
        assert!(wait_synced(&dir, "c1", "eth0", Duration::from_millis(20)));
        // A new announcement of the same attachment needs a new answer.
        announce(&dir, "c1", "eth0", "default", "web", &ips).unwrap();
        assert!(!dir.join("c1_eth0.synced").exists());
        withdraw(&dir, "c1", "eth0");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        withdraw(&dir, "c1", "eth0");
    }
}
