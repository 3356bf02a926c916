//! New pods announced by the plugin (its `announce` module), so that
//! policy holds from a pod's first packet: the plugin's ADD writes
//! `<dir>/<containerID>_<ifname>.json` (`{"namespace","name","ips"}`)
//! and waits for `<…>.synced`, which ferryd writes once a ruleset with
//! those addresses is in the kernel. The API tells ferryd the same
//! addresses (`status.podIPs`) only a second or so later.
//!
//! A thread watches the directory (inotify) and puts what it finds into
//! the [`View`]: an announced address stands in for a Pod's missing
//! `status.podIPs` (the Pod object itself, with its labels, is known from
//! the watch before the kubelet makes the sandbox). An announcement whose
//! Pod is not known yet waits, unanswered, for the watch to bring it.
//!
//! While it watches, ferryd holds an exclusive `flock` on
//! `<dir>/ferryd.lock` ([`LOCK`]): the plugin waits for an answer only
//! while someone holds it, so with ferryd down a pod starts at once.

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde::Deserialize;

use super::view::View;
use super::PolicyShared;

/// One announcement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Announced {
    pub namespace: String,
    pub name: String,
    pub ips: Vec<IpAddr>,
}

/// Every `*.json` in `dir`, by file stem; unreadable ones are skipped.
pub fn scan(dir: &Path) -> BTreeMap<String, Announced> {
    let Ok(entries) = fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".json")?.to_string();
            let a = serde_json::from_slice(&fs::read(e.path()).ok()?).ok()?;
            Some((stem, a))
        })
        .collect()
}

/// Answers the announcements `stems` (still there, not answered yet).
pub fn ack(dir: &Path, stems: &[String]) {
    for stem in stems {
        let done = dir.join(format!("{stem}.synced"));
        if dir.join(format!("{stem}.json")).exists() && !done.exists() {
            if let Err(e) = fs::write(&done, b"") {
                tracing::warn!(file = %done.display(), error = %e, "answering a pod announcement");
            }
        }
    }
}

/// The file ferryd keeps locked while it answers (the plugin's
/// `announce::LOCK`).
pub const LOCK: &str = "ferryd.lock";

/// Takes [`LOCK`] in `dir` for the rest of this process, on a thread of
/// its own: a ferryd still stopping holds it a moment longer.
fn hold_lock(dir: &Path) {
    let path = dir.join(LOCK);
    let hold = move || -> std::io::Result<()> {
        let f = fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        f.lock()?;
        tracing::debug!(file = %path.display(), "holding the announcement lock");
        // Held until the process ends (the kernel drops it then).
        std::mem::forget(f);
        Ok(())
    };
    std::thread::Builder::new()
        .name("ferry-announce-lock".into())
        .spawn(move || {
            if let Err(e) = hold() {
                tracing::warn!(error = %e, "taking the announcement lock: new pods will not wait for policy");
            }
        })
        .expect("spawn the announcement lock holder");
}

/// Starts the thread that keeps `view.announced` equal to `dir`'s
/// announcements, waking the controller on every change.
pub fn spawn_watcher(dir: PathBuf, view: Arc<Mutex<View>>, shared: Arc<PolicyShared>) {
    let _ = fs::create_dir_all(&dir);
    hold_lock(&dir);
    let run = move || -> nix::Result<()> {
        let ino = Inotify::init(InitFlags::IN_CLOEXEC)?;
        ino.add_watch(
            &dir,
            AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_DELETE,
        )?;
        loop {
            let now = scan(&dir);
            let changed = {
                let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
                let changed = v.announced != now;
                v.announced = now;
                changed
            };
            if changed {
                shared.changed.notify_one();
            }
            // Blocks until something happens in the directory.
            ino.read_events()?;
        }
    };
    std::thread::Builder::new()
        .name("ferry-announce".into())
        .spawn(move || {
            if let Err(e) = run() {
                tracing::error!(error = %e, "watching pod announcements stopped; new pods wait for the API");
            }
        })
        .expect("spawn the announcement watcher");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_and_ack() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        fs::write(
            dir.join("c1_eth0.json"),
            r#"{"namespace":"default","name":"web","ips":["10.244.0.7"]}"#,
        )
        .unwrap();
        fs::write(dir.join("c2_eth0.json"), "not json").unwrap();
        fs::write(dir.join("c3_eth0.tmp"), "{}").unwrap();
        let got = scan(dir);
        assert_eq!(got.len(), 1);
        assert_eq!(got["c1_eth0"].name, "web");
        ack(dir, &["c1_eth0".into(), "gone_eth0".into()]);
        assert!(dir.join("c1_eth0.synced").exists());
        assert!(!dir.join("gone_eth0.synced").exists());
    }
}
