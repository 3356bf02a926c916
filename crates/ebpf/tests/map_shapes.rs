//! Maps pinned in the configured directory are checked against what the
//! kernel says about them (type, key and value sizes) before ferry reads
//! or writes them: a map of another shape there is refused with
//! `EbpfError::MapMismatch`, nothing is written into it. Real bpf(2) on a
//! real bpf file system; needs root.

use std::path::{Path, PathBuf};

use ferry_ebpf::{pinned_stats, unpin, EbpfError, FastPath, PodIfaces};
use ferry_testkit::unique;

/// A pin directory, removed on drop.
struct Pins(PathBuf);

impl Pins {
    fn new() -> Pins {
        let p = Pins(Path::new("/sys/fs/bpf").join(unique("maps")));
        drop(FastPath::load(&p.0).expect("loading the fast path"));
        p
    }
    /// Pins what is pinned as `from` as `to` instead (bpffs renames).
    fn move_pin(&self, from: &str, to: &str) {
        let _ = std::fs::remove_file(self.0.join(to));
        std::fs::rename(self.0.join(from), self.0.join(to)).unwrap();
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = unpin(&self.0);
    }
}

fn mismatch(e: EbpfError, pin: &str, found: &str, want: &str) {
    let msg = e.to_string();
    assert!(e.is_map_mismatch(), "{msg}");
    assert!(msg.contains(pin), "{msg}");
    assert!(msg.contains(found), "{msg}");
    assert!(msg.contains(want), "{msg}");
}

#[test]
fn a_map_with_other_key_sizes_at_the_pin_path_is_refused() {
    let p = Pins::new();
    // The IPv4 CIDR trie (8-byte keys) where the IPv6 one (20-byte keys)
    // belongs: same type, other size.
    p.move_pin("cidrs_v1", "cidrs6_v1");
    let e = FastPath::load(&p.0).unwrap_err();
    mismatch(
        e,
        "cidrs6_v1",
        "LPM trie map with 8-byte keys and 4-byte values",
        "LPM trie map with 20-byte keys and 4-byte values",
    );
}

#[test]
fn the_plugin_and_ferryd_refuse_a_wrong_pod_or_stats_map() {
    let p = Pins::new();
    assert!(PodIfaces::open(&p.0).unwrap().is_some());
    assert!(pinned_stats(&p.0).unwrap().is_some());
    // The pods map (hash, 4-byte values) where the per-CPU counters
    // (8-byte values) belong, and a trie where the pods map belongs.
    p.move_pin("pods_v1", "stats_v2");
    p.move_pin("cidrs_v1", "pods_v1");
    mismatch(
        pinned_stats(&p.0).unwrap_err(),
        "stats_v2",
        "hash map with 4-byte keys and 4-byte values",
        "per-CPU array map with 4-byte keys and 8-byte values",
    );
    mismatch(
        PodIfaces::open(&p.0).unwrap_err(),
        "pods_v1",
        "LPM trie map with 8-byte keys",
        "hash map with 4-byte keys and 4-byte values",
    );
    // ferryd's load refuses them too, rather than reusing them.
    assert!(FastPath::load(&p.0).unwrap_err().is_map_mismatch());
}

#[test]
fn a_program_pinned_where_a_map_belongs_is_refused() {
    let p = Pins::new();
    p.move_pin("prog", "pods_v1");
    mismatch(
        PodIfaces::open(&p.0).unwrap_err(),
        "pods_v1",
        "not a map (anon_inode:bpf-prog)",
        "hash map",
    );
}

#[test]
fn maps_of_the_right_shape_are_reused() {
    let p = Pins::new();
    let pods = PodIfaces::open(&p.0).unwrap().unwrap();
    pods.insert(4242).unwrap();
    // A second load (a restarted ferryd) keeps the pinned maps.
    let fp = FastPath::load(&p.0).unwrap();
    assert_eq!(fp.pod_ifaces().list().unwrap(), vec![4242]);
    assert_eq!(fp.stats().unwrap(), pinned_stats(&p.0).unwrap().unwrap());
}

#[test]
fn exclusions_share_the_cidr_maps_and_survive_a_restart() {
    use std::collections::BTreeSet;
    use std::net::IpAddr;
    let p = Pins::new();
    let fp = FastPath::load(&p.0).unwrap();
    let cidrs: Vec<ipnet::IpNet> = vec![
        "10.244.0.0/16".parse().unwrap(),
        "fd00:10:244::/56".parse().unwrap(),
    ];
    assert!(fp.set_cidrs(&cidrs).unwrap());
    let addrs = |s: &[&str]| -> BTreeSet<IpAddr> { s.iter().map(|a| a.parse().unwrap()).collect() };
    let first = addrs(&["10.244.0.5", "10.244.0.6", "fd00:10:244::5"]);
    assert!(fp.set_excluded(&first).unwrap());
    assert!(!fp.set_excluded(&first).unwrap(), "already so");
    assert_eq!(fp.excluded().unwrap(), first);
    assert_eq!(fp.cidrs().unwrap(), cidrs, "exclusions are not CIDRs");
    // Converges: adds one, removes two.
    let second = addrs(&["10.244.0.6", "10.99.0.7"]);
    assert!(fp.set_excluded(&second).unwrap());
    assert_eq!(fp.excluded().unwrap(), second);
    // Setting the CIDRs leaves the exclusions be, and a restarted ferryd
    // finds both in the pinned maps.
    assert!(!fp.set_cidrs(&cidrs).unwrap());
    drop(fp);
    let fp = FastPath::load(&p.0).unwrap();
    assert_eq!(fp.excluded().unwrap(), second);
    assert_eq!(fp.cidrs().unwrap(), cidrs);
    assert!(fp.set_excluded(&BTreeSet::new()).unwrap());
    assert!(fp.excluded().unwrap().is_empty());
    assert_eq!(fp.cidrs().unwrap(), cidrs);
}
