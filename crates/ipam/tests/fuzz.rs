//! Fuzzing the allocator's outside input: the `ipam` config (and the
//! static IP requests beside it), and the files on disk — whatever
//! host-local, an older ferry, a crash or a person left in the state
//! directory. No panic, no hang; every config rejection is a config error
//! (CNI code 7); whatever the disk holds, an ADD that succeeds is one CHECK
//! confirms and DEL undoes.
//!
//! `cargo test -p ferry-ipam --test fuzz` runs a short pass;
//! `FERRY_FUZZ_CASES=1000000 cargo test --release -p ferry-ipam --test fuzz`
//! a million cases per target (knobs: crates/cni/tests/support/fuzz.rs).

#[path = "../../cni/tests/support/fuzz.rs"]
mod fuzz;

use std::collections::HashSet;
use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_ipam::{
    allocate, check, gc, release, requested_ips_from_netconf, status, DiskStore, FakeStore,
    IpamConfig, IpamError, Request, Store,
};
use fuzz::{json_input, mutate_bytes, run, Rng};
use serde_json::{json, Value};

const KEYS: &[&str] = &[
    "type",
    "ranges",
    "subnet",
    "rangeStart",
    "rangeEnd",
    "gateway",
    "routes",
    "dst",
    "gw",
    "dataDir",
    "resolvConf",
    "runtimeConfig",
    "args",
    "cni",
    "ips",
];

const ADDRS: &[&str] = &[
    "10.244.0.0/29",
    "10.244.0.0/30",
    "10.244.0.4/30",
    "10.244.0.2",
    "10.244.0.3",
    "10.244.0.6",
    "10.244.0.7",
    "fd00::/125",
    "fd00::/126",
    "fd00::1",
    "fd00::7",
    "::ffff:10.244.0.3",
];

fn configs() -> Vec<Value> {
    vec![
        json!({"type":"ferry-ipam","ranges":[[{"subnet":"10.244.0.0/24"}],[{"subnet":"fd00:10:244::/64"}]],
            "routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0","gw":"fd00:10:244::1"}],"dataDir":"/run/ferry/ipam"}),
        json!({"type":"host-local","subnet":"10.244.0.0/29","rangeStart":"10.244.0.2",
            "rangeEnd":"10.244.0.6","gateway":"10.244.0.1","resolvConf":"/etc/resolv.conf"}),
        json!({"type":"ferry-ipam","ranges":[[{"subnet":"10.244.0.0/30"},{"subnet":"10.244.0.4/30",
            "rangeStart":"10.244.0.5","rangeEnd":"10.244.0.6","gateway":"10.244.0.6"}],
            [{"subnet":"fd00::/126"}]]}),
    ]
}

/// What a parsed config promises the allocator.
fn assert_sound(cfg: &IpamConfig) {
    assert!(!cfg.ranges.is_empty());
    let all: Vec<_> = cfg.ranges.iter().flat_map(|s| &s.ranges).collect();
    for set in &cfg.ranges {
        let v4 = set.ranges[0].range_start.is_ipv4();
        for r in &set.ranges {
            assert_eq!(r.subnet.network(), r.subnet.addr(), "{}", r.subnet);
            for ip in [r.range_start, r.range_end, r.gateway] {
                assert!(r.subnet.contains(&ip) && ip.is_ipv4() == v4, "{ip} in {r}");
            }
            assert!(r.contains(r.range_start) && r.contains(r.range_end), "{r}");
        }
    }
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert!(
                !a.contains(b.range_start) && !b.contains(a.range_start),
                "{a} {b}"
            );
        }
    }
    assert_eq!(cfg.state_dir().parent(), Some(cfg.data_dir.as_path()));
}

/// An ADD that succeeded handed out addresses of its range sets, never
/// a gateway, network or broadcast address.
fn assert_allocation(cfg: &IpamConfig, ips: &[IpAddr]) {
    assert_eq!(ips.len(), cfg.ranges.len());
    for (set, ip) in cfg.ranges.iter().zip(ips) {
        let r = set.range_for(*ip).expect("in its range set");
        assert!(*ip != r.gateway && *ip != r.subnet.network(), "{ip}");
        assert!(!ip.is_ipv4() || *ip != r.subnet.broadcast(), "{ip}");
    }
}

fn request(rng: &mut Rng, requested: Vec<IpAddr>) -> Request {
    Request {
        container_id: rng.pick(&["abc", "def", "abc.1", "-x", ""]).to_string(),
        ifname: rng.pick(&["eth0", "net1", "a/b"]).to_string(),
        requested,
    }
}

#[test]
fn fuzz_ipam_config() {
    let samples = configs();
    let accepted = AtomicU64::new(0);
    let ran = run(
        "ipam config",
        3000,
        |rng| {
            let name = *rng.pick(&[
                "ferry",
                "ferry",
                "ferry",
                "k8s-pod-network",
                "..",
                "a/b",
                "",
            ]);
            let args = rng.one_in(3).then(|| {
                let s = rng.pick(&["IP=10.244.0.3", "IP=fd00::3,10.244.0.5/24", "IP=x"]);
                String::from_utf8_lossy(&mutate_bytes(rng, s.as_bytes(), &[])).into_owned()
            });
            (
                json_input(rng, &samples, KEYS, ADDRS),
                name,
                args,
                rng.next_u64(),
            )
        },
        |(bytes, name, args, seed)| {
            let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
                return;
            };
            let requested = match requested_ips_from_netconf(&v, args.as_deref()) {
                Ok(ips) => ips,
                Err(e) => return assert!(IpamError::from(e).is_config()),
            };
            let cfg = match IpamConfig::from_value(&v, name) {
                Ok(cfg) => cfg,
                Err(e) => return assert!(IpamError::from(e).is_config()),
            };
            assert_sound(&cfg);
            accepted.fetch_add(1, Ordering::Relaxed);
            // The allocator over it (in memory): fills, frees, refills.
            let mut store = FakeStore::new();
            let mut rng = Rng::new(*seed);
            for _ in 0..4 {
                let req = request(&mut rng, requested.clone());
                if let Ok(a) = allocate(&mut store, &cfg, &req) {
                    let ips: Vec<IpAddr> = a.ips.iter().map(|i| i.address.addr()).collect();
                    assert_allocation(&cfg, &ips);
                    assert_eq!(
                        check(&mut store, &cfg, &req.container_id, &req.ifname).ok(),
                        Some(ips)
                    );
                }
            }
            let _ = status(&mut store, &cfg);
            let _ = release(&mut store, "abc", "eth0");
        },
    );
    let accepted = accepted.into_inner();
    // Enough mutants get past the JSON layer to exercise the checks.
    assert!(
        ran < 100 || accepted * 50 > ran,
        "{accepted} of {ran} accepted"
    );
}

const NET: &str = "ferry";
const IPS: &[&str] = &[
    "10.244.0.2",
    "10.244.0.3",
    "10.244.0.6",
    "fd00::2",
    "fd00::3",
];

/// What a state directory may hold: reservation files (current, legacy,
/// empty, garbage), `last_reserved_ip.N`, ferry's index and its marker,
/// and things where files belong.
fn disk_state(rng: &mut Rng) -> Vec<(String, Option<Vec<u8>>)> {
    let ip_content: [&[u8]; 5] = [
        b"abc\r\neth0",
        b"abc",
        b"",
        b"def\r\nnet1\r\n",
        b" abc\r\neth0 ",
    ];
    let index: [&[u8]; 3] = [
        b"ferry-ipam index v1\n10.244.0.2\nfd00::2\n",
        b"ferry-ipam index v1\n",
        b"ferry-ipam index v1\nnot-an-ip\n",
    ];
    let mut files = Vec::new();
    for _ in 0..rng.below(8) {
        let (name, content): (String, &[u8]) = match rng.below(5) {
            0 | 1 => (rng.pick(IPS).to_string(), *rng.pick(&ip_content)),
            2 => (
                format!("last_reserved_ip.{}", rng.below(3)),
                rng.pick(IPS).as_bytes(),
            ),
            3 => {
                let key = rng.pick(&["abc:eth0", "def:net1", "abc:", "x y:eth0", ":"]);
                (format!(".ferry/{key}"), *rng.pick(&index))
            }
            _ => (".ferry/v1".to_string(), b"ferry-ipam index v1 complete\n"),
        };
        let content = match rng.below(4) {
            0 => Some(mutate_bytes(rng, content, &[])),
            1 if rng.one_in(4) => None, // a directory where a file belongs
            _ => Some(content.to_vec()),
        };
        files.push((name, content));
    }
    files
}

fn write_state(dir: &Path, files: &[(String, Option<Vec<u8>>)]) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir.join(".ferry")).unwrap();
    for (name, content) in files {
        let path = dir.join(name);
        let _ = fs::remove_dir_all(&path);
        let _ = match content {
            Some(c) => fs::write(&path, c),
            None => fs::remove_file(&path)
                .and(fs::create_dir_all(&path))
                .or(Ok(())),
        };
    }
}

#[test]
fn fuzz_ipam_disk_state() {
    let tmp = tempfile::TempDir::new_in("/dev/shm").unwrap();
    let cfg = IpamConfig::from_value(
        &json!({"ranges":[[{"subnet":"10.244.0.0/29"}],[{"subnet":"fd00::/125"}]],
                "dataDir": tmp.path()}),
        NET,
    )
    .unwrap();
    let dir = cfg.state_dir();
    let allocated = AtomicU64::new(0);
    let ran = run(
        "ipam files on disk",
        500,
        |rng| (disk_state(rng), rng.next_u64()),
        |(files, seed)| {
            write_state(&dir, files);
            let mut rng = Rng::new(*seed);
            let mut store = DiskStore::for_config(&cfg).unwrap();
            for _ in 0..3 {
                let (id, ifname) = *rng.pick(&[("abc", "eth0"), ("def", "net1"), ("ghi", "eth0")]);
                let req = Request {
                    container_id: id.into(),
                    ifname: ifname.into(),
                    requested: Vec::new(),
                };
                match rng.below(4) {
                    0 | 1 => {
                        if let Ok(a) = allocate(&mut store, &cfg, &req) {
                            let ips: Vec<IpAddr> = a.ips.iter().map(|i| i.address.addr()).collect();
                            assert_allocation(&cfg, &ips);
                            allocated.fetch_add(1, Ordering::Relaxed);
                            assert_eq!(check(&mut store, &cfg, id, ifname).ok(), Some(ips.clone()));
                            assert!(ips.iter().all(|ip| dir.join(ip.to_string()).is_file()));
                            if rng.one_in(2) {
                                let freed = release(&mut store, id, ifname).unwrap();
                                assert!(ips.iter().all(|ip| freed.contains(ip)), "{freed:?}");
                                assert!(ips.iter().all(|ip| !dir.join(ip.to_string()).exists()));
                            }
                        }
                    }
                    2 => {
                        let valid: HashSet<(String, String)> =
                            [(id.to_string(), ifname.to_string())].into();
                        let _ = gc(&mut store, &valid);
                    }
                    _ => {
                        let _ = status(&mut store, &cfg);
                        let _ = store.reservations();
                        let _ = store.index_entries();
                    }
                }
            }
        },
    );
    // Most states still let an ADD through (and so reach the checks).
    let allocated = allocated.into_inner();
    assert!(
        ran < 100 || allocated * 2 > ran,
        "{allocated} ADDs in {ran} cases"
    );
}
