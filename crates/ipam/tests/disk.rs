//! DiskStore against a real directory: host-local's byte format, migration
//! of a host-local directory, concurrency, lock timeout, crash safety.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use ferry_ipam::{
    allocate, check, gc, release, status, DiskStore, IpamConfig, IpamError, Request, Store,
};
use nix::fcntl::{Flock, FlockArg};
use serde_json::json;
use tempfile::TempDir;

const NET: &str = "k8s-pod-network";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config(data_dir: &Path, ranges: serde_json::Value) -> IpamConfig {
    let v = json!({"type": "ferry-ipam", "ranges": ranges, "dataDir": data_dir});
    IpamConfig::from_value(&v, NET).unwrap()
}

fn setup() -> (TempDir, IpamConfig, DiskStore) {
    let tmp = TempDir::new().unwrap();
    let cfg = config(tmp.path(), json!([[{"subnet": "10.244.0.0/24"}]]));
    let store = DiskStore::for_config(&cfg).unwrap();
    (tmp, cfg, store)
}

fn req(id: &str, ifname: &str) -> Request {
    Request {
        container_id: id.into(),
        ifname: ifname.into(),
        requested: vec![],
    }
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    fs::read(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

/// All regular files below `dir`, recursively (as host-local's Walk sees them).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn open_is_lazy_and_status_creates_the_directory() {
    let (_tmp, cfg, mut store) = setup();
    assert!(!store.dir().exists());
    status(&mut store, &cfg).unwrap();
    assert!(store.dir().is_dir());
    assert_eq!(store.dir(), cfg.state_dir());
}

#[test]
fn files_are_byte_for_byte_host_local() {
    let tmp = TempDir::new().unwrap();
    let cfg = config(
        tmp.path(),
        json!([[{"subnet": "10.244.0.0/24"}], [{"subnet": "fd00::/64"}]]),
    );
    let mut store = DiskStore::for_config(&cfg).unwrap();
    let a = allocate(&mut store, &cfg, &req("abc", "eth0")).unwrap();
    assert_eq!(a.ips[0].address.to_string(), "10.244.0.2/24");
    assert_eq!(a.ips[1].address.to_string(), "fd00::2/64");

    let dir = tmp.path().join(NET);
    assert_eq!(read(dir.join("10.244.0.2")), b"abc\r\neth0");
    assert_eq!(read(dir.join("fd00::2")), b"abc\r\neth0");
    assert_eq!(read(dir.join("last_reserved_ip.0")), b"10.244.0.2");
    assert_eq!(read(dir.join("last_reserved_ip.1")), b"fd00::2");
    assert!(dir.join("lock").is_file());

    // host-local's GetByID/ReleaseByID walk every file, subdirectories
    // included, and match trimmed content against "id\r\nifname" or "id":
    // only the two reservation files may match.
    let mut matching: Vec<String> = walk(&dir)
        .into_iter()
        .filter(|p| {
            let c = String::from_utf8_lossy(&read(p)).trim().to_string();
            c == "abc\r\neth0" || c == "abc"
        })
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    matching.sort();
    assert_eq!(matching, vec!["10.244.0.2", "fd00::2"]);

    assert_eq!(
        check(&mut store, &cfg, "abc", "eth0").unwrap(),
        vec![ip("10.244.0.2"), ip("fd00::2")]
    );
    assert_eq!(
        release(&mut store, "abc", "eth0").unwrap(),
        vec![ip("10.244.0.2"), ip("fd00::2")]
    );
    assert!(!dir.join("10.244.0.2").exists() && !dir.join("fd00::2").exists());
}

#[test]
fn takes_over_a_host_local_directory() {
    let (tmp, cfg, mut store) = setup();
    let dir = tmp.path().join(NET);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("lock"), b"").unwrap();
    fs::write(dir.join("10.244.0.2"), b"abc\r\neth0").unwrap();
    fs::write(dir.join("10.244.0.3"), b"def\r\neth0").unwrap();
    fs::write(dir.join("10.244.0.4"), b"legacy-id").unwrap();
    fs::write(dir.join("last_reserved_ip.0"), b"10.244.0.4").unwrap();

    // No index yet: the first locked operation builds it.
    assert_eq!(
        release(&mut store, "abc", "eth0").unwrap(),
        vec![ip("10.244.0.2")]
    );
    assert!(dir.join(".ferry/v1").is_file());
    assert!(!dir.join("10.244.0.2").exists());
    assert_eq!(
        check(&mut store, &cfg, "def", "eth0").unwrap(),
        vec![ip("10.244.0.3")]
    );
    // Legacy ID-only records are released for any ifname, like host-local.
    assert_eq!(
        release(&mut store, "legacy-id", "eth0").unwrap(),
        vec![ip("10.244.0.4")]
    );
    // Round-robin continues from host-local's last_reserved_ip.
    let a = allocate(&mut store, &cfg, &req("new", "eth0")).unwrap();
    assert_eq!(a.ips[0].address.addr(), ip("10.244.0.5"));
    assert_eq!(read(dir.join("10.244.0.3")), b"def\r\neth0");
}

#[test]
fn concurrent_allocations_never_collide() {
    let (tmp, cfg, _) = setup();
    let threads = 32;
    let per_thread = 4;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let cfg = cfg.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                // Each thread opens its own store, so its own lock file
                // description: flock then excludes the others like separate
                // processes.
                let mut store = DiskStore::for_config(&cfg).unwrap();
                barrier.wait();
                (0..per_thread)
                    .map(|i| {
                        let r = req(&format!("c{t}-{i}"), "eth0");
                        allocate(&mut store, &cfg, &r).unwrap().ips[0]
                            .address
                            .addr()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<IpAddr> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), threads * per_thread);
    assert_eq!(unique.len(), all.len(), "an IP was handed out twice");

    let dir = tmp.path().join(NET);
    let ip_files = fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_str().unwrap().parse::<IpAddr>().is_ok()
        })
        .count();
    assert_eq!(ip_files, all.len());
    let index_files = fs::read_dir(dir.join(".ferry")).unwrap().count();
    assert_eq!(index_files, all.len() + 1, "one entry each plus the marker");
}

#[test]
fn lock_times_out_while_another_fd_holds_it() {
    let (_tmp, cfg, store) = setup();
    let mut store = store.with_lock_timeout(Duration::from_millis(200));
    status(&mut store, &cfg).unwrap(); // creates the directory and lock file
    let file = OpenOptions::new()
        .read(true)
        .open(store.lock_path())
        .unwrap();
    let held = Flock::lock(file, FlockArg::LockExclusiveNonblock).unwrap();

    let err = allocate(&mut store, &cfg, &req("abc", "eth0")).unwrap_err();
    assert!(err.is_try_again(), "{err}");
    assert!(
        matches!(&err, IpamError::LockTimeout { path, .. } if *path == store.lock_path()),
        "{err:?}"
    );
    assert!(release(&mut store, "abc", "eth0")
        .unwrap_err()
        .is_try_again());

    drop(held);
    allocate(&mut store, &cfg, &req("abc", "eth0")).unwrap();
}

#[test]
fn crash_between_intent_and_reservation_is_cleaned() {
    let (tmp, cfg, mut store) = setup();
    let dir = tmp.path().join(NET);
    {
        let _g = store.lock().unwrap();
        store.index_put("c1", "eth0", &[ip("10.244.0.9")]).unwrap();
        store.index_put("c2", "eth0", &[ip("10.244.0.10")]).unwrap();
    }
    // DEL: nothing was reserved, the intent goes.
    assert_eq!(
        release(&mut store, "c1", "eth0").unwrap(),
        Vec::<IpAddr>::new()
    );
    assert!(!dir.join(".ferry/c1:eth0").exists());
    // GC: the same for an attachment the runtime no longer knows.
    assert_eq!(
        gc(&mut store, &HashSet::new()).unwrap(),
        Vec::<IpAddr>::new()
    );
    assert!(!dir.join(".ferry/c2:eth0").exists());
    // And a retried ADD of a crashed attachment just allocates.
    {
        let _g = store.lock().unwrap();
        store.index_put("c3", "eth0", &[ip("10.244.0.9")]).unwrap();
    }
    let a = allocate(&mut store, &cfg, &req("c3", "eth0")).unwrap();
    assert_eq!(a.ips[0].address.addr(), ip("10.244.0.2"));
}

#[test]
fn crash_after_reservation_is_cleaned() {
    let (tmp, _cfg, mut store) = setup();
    let dir = tmp.path().join(NET);
    {
        let _g = store.lock().unwrap();
        store.index_put("c1", "eth0", &[ip("10.244.0.9")]).unwrap();
        assert!(store.reserve(ip("10.244.0.9"), "c1", "eth0").unwrap());
        store.index_put("c2", "eth0", &[ip("10.244.0.10")]).unwrap();
        assert!(store.reserve(ip("10.244.0.10"), "c2", "eth0").unwrap());
        // Killed between O_EXCL create and write: an empty record.
        store.index_put("c3", "eth0", &[ip("10.244.0.11")]).unwrap();
    }
    fs::write(dir.join("10.244.0.11"), b"").unwrap();

    assert_eq!(
        release(&mut store, "c1", "eth0").unwrap(),
        vec![ip("10.244.0.9")]
    );
    assert_eq!(
        release(&mut store, "c3", "eth0").unwrap(),
        vec![ip("10.244.0.11")]
    );
    assert_eq!(
        gc(&mut store, &HashSet::new()).unwrap(),
        vec![ip("10.244.0.10")]
    );
    let left: HashSet<String> = walk(&dir)
        .iter()
        .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        HashSet::from(["lock".to_string(), ".ferry/v1".to_string()])
    );
}

#[test]
fn gc_keeps_valid_attachments_and_bookkeeping() {
    let (tmp, cfg, mut store) = setup();
    let dir = tmp.path().join(NET);
    for id in ["keep", "drop"] {
        allocate(&mut store, &cfg, &req(id, "eth0")).unwrap();
    }
    fs::write(dir.join("10.244.0.50"), b"keep").unwrap(); // legacy record
    let valid = HashSet::from([("keep".to_string(), "eth0".to_string())]);
    assert_eq!(gc(&mut store, &valid).unwrap(), vec![ip("10.244.0.3")]);
    assert!(dir.join("10.244.0.2").exists());
    assert!(dir.join("10.244.0.50").exists());
    assert!(dir.join("lock").exists());
    assert!(dir.join("last_reserved_ip.0").exists());
    assert!(dir.join(".ferry/keep:eth0").exists());
    assert!(!dir.join(".ferry/drop:eth0").exists());
}

#[test]
fn corrupt_index_fails_check_but_not_release() {
    let (tmp, cfg, mut store) = setup();
    allocate(&mut store, &cfg, &req("abc", "eth0")).unwrap();
    let entry = tmp.path().join(NET).join(".ferry/abc:eth0");
    fs::write(&entry, b"garbage").unwrap();
    let err = check(&mut store, &cfg, "abc", "eth0").unwrap_err();
    assert!(matches!(err, IpamError::Corrupt { .. }), "{err}");
    assert_eq!(
        release(&mut store, "abc", "eth0").unwrap(),
        Vec::<IpAddr>::new()
    );
    assert!(!entry.exists());
    // The orphaned record is GC's to reclaim.
    assert_eq!(
        gc(&mut store, &HashSet::new()).unwrap(),
        vec![ip("10.244.0.2")]
    );
}

#[test]
fn status_reports_an_unwritable_state_dir() {
    let tmp = TempDir::new().unwrap();
    let not_a_dir = tmp.path().join("file");
    fs::write(&not_a_dir, b"").unwrap();
    let cfg = config(&not_a_dir, json!([[{"subnet": "10.244.0.0/24"}]]));
    let mut store = DiskStore::for_config(&cfg).unwrap();
    let err = status(&mut store, &cfg).unwrap_err();
    assert!(matches!(err, IpamError::Io { .. }), "{err}");
    assert!(err.raw_os_error().is_some(), "{err}");
}

#[test]
fn bad_network_names_are_rejected() {
    for name in ["", ".", "..", "a/b"] {
        assert!(DiskStore::open("/tmp", name).unwrap_err().is_config());
    }
}
