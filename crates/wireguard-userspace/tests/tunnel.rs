//! `ferry-wg` alone, on the real kernel: two fresh network namespaces
//! joined by a veth, a `ferry-wg` in each configured through ferry's UAPI
//! client, and traffic across the tunnel. A capture on the veth shows
//! WireGuard (UDP to 51820) and never the payload. Needs root and TUN.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_netns::NetNs;
use ferry_testkit::sniff::{contains, udp_dst_port, Sniffer};
use ferry_testkit::{ip, ns_exec, unique};
use ferry_wireguard::uapi::UapiDevice;
use ferry_wireguard::{plan, DeviceConfig, Driver, PeerConfig, PrivateKey, DEFAULT_PORT};

const TUN: &str = "wgt0";

/// Two namespaces, a `ferry-wg` in each; all removed on drop.
struct Pair {
    tag: String,
    run: PathBuf,
    children: Vec<Child>,
}

impl Pair {
    fn ns(&self, side: &str) -> String {
        format!("{}-{side}", self.tag)
    }

    fn run_dir(&self, side: &str) -> PathBuf {
        self.run.join(side)
    }

    fn new() -> Pair {
        let tag = unique("wgt");
        let p = Pair {
            run: std::env::temp_dir().join(format!("{tag}-run")),
            tag,
            children: Vec::new(),
        };
        for s in ["a", "b"] {
            ferry_netns::create_named(&p.ns(s)).expect("netns");
            ip(Some(&p.ns(s)), &["link", "set", "lo", "up"]);
        }
        let (a, b) = (p.ns("a"), p.ns("b"));
        ip(
            Some(&a),
            &[
                "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &b,
            ],
        );
        for (ns, addr) in [(&a, "10.98.0.1/24"), (&b, "10.98.0.2/24")] {
            ip(Some(ns), &["addr", "add", addr, "dev", "eth0"]);
            ip(Some(ns), &["link", "set", "eth0", "up"]);
        }
        p
    }

    fn start_wg(&mut self, side: &str) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(side)])
            .arg(env!("CARGO_BIN_EXE_ferry-wg"))
            .arg(TUN)
            .arg("--run-dir")
            .arg(self.run_dir(side))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ferry-wg")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for s in ["a", "b"] {
            let _ = ferry_netns::delete_named(&self.ns(s));
        }
        let _ = std::fs::remove_dir_all(&self.run);
    }
}

fn wait_for(dev: &UapiDevice) {
    let until = Instant::now() + Duration::from_secs(10);
    while !dev.answers() {
        assert!(
            Instant::now() < until,
            "{} never answered",
            dev.path().display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP echo of `payload` from `a` to `to` (a listener in `b`).
fn tcp_echo(a: &NetNs, b: &NetNs, to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let listener = b.run(move || TcpListener::bind(to)).unwrap().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let mut c = a
        .run(move || TcpStream::connect_timeout(&to, Duration::from_secs(5)))
        .unwrap()
        .expect("connect across the tunnel");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(payload).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    server.join().unwrap();
    back
}

/// `count` pings from `ns` to `to`, 200 ms apart, with `pattern` as
/// payload; whether all were answered.
fn pattern_ping(ns: &str, count: &str, pattern: &str, to: &str) -> bool {
    ns_exec(
        ns,
        &[
            "ping", "-c", count, "-i", "0.2", "-W", "1", "-s", "200", "-p", pattern, to,
        ],
    )
}

#[test]
fn two_ferry_wg_devices_carry_encrypted_traffic_only() {
    let mut p = Pair::new();
    let ka = PrivateKey::generate();
    let kb = PrivateKey::generate();
    for side in ["a", "b"] {
        let c = p.start_wg(side);
        p.children.push(c);
    }
    let mut da = UapiDevice::new(&p.run_dir("a"), TUN);
    let mut db = UapiDevice::new(&p.run_dir("b"), TUN);
    wait_for(&da);
    wait_for(&db);

    // A second ferry-wg for a device that answers refuses to start.
    let second = Command::new("ip")
        .args(["netns", "exec", &p.ns("a")])
        .arg(env!("CARGO_BIN_EXE_ferry-wg"))
        .args([TUN, "--run-dir"])
        .arg(p.run_dir("a"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!second.success());
    assert!(da.answers(), "the first one still runs");

    let cfg = |me: &PrivateKey, peer: &PrivateKey, ep: &str, ips: &[&str]| {
        DeviceConfig::new(
            me,
            DEFAULT_PORT,
            vec![PeerConfig {
                public_key: peer.public_key(),
                endpoint: ep.parse().unwrap(),
                allowed_ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
            }],
        )
    };
    let want_a = cfg(
        &ka,
        &kb,
        "10.98.0.2:51820",
        &["10.200.1.0/24", "fd00:200:1::/64"],
    );
    let want_b = cfg(
        &kb,
        &ka,
        "10.98.0.1:51820",
        &["10.200.0.0/24", "fd00:200::/64"],
    );
    for (d, k, want) in [(&mut da, &ka, &want_a), (&mut db, &kb, &want_b)] {
        let changes = plan(&d.get().unwrap(), want);
        assert!(changes.set_private_key && !changes.upsert.is_empty());
        d.apply(k, &changes).unwrap();
        // Read back: the device holds exactly what was wanted.
        let now = d.get().unwrap();
        assert!(plan(&now, want).is_empty(), "{now:?}");
    }
    for (side, v4, v6, peer4, peer6) in [
        (
            "a",
            "10.200.0.1/32",
            "fd00:200::1/128",
            "10.200.1.0/24",
            "fd00:200:1::/64",
        ),
        (
            "b",
            "10.200.1.1/32",
            "fd00:200:1::1/128",
            "10.200.0.0/24",
            "fd00:200::/64",
        ),
    ] {
        let ns = p.ns(side);
        ip(Some(&ns), &["link", "set", TUN, "mtu", "1420", "up"]);
        ip(Some(&ns), &["addr", "add", v4, "dev", TUN]);
        ip(Some(&ns), &["-6", "addr", "add", v6, "dev", TUN, "nodad"]);
        ip(Some(&ns), &["route", "add", peer4, "dev", TUN]);
        ip(Some(&ns), &["-6", "route", "add", peer6, "dev", TUN]);
    }

    let sniffer = Sniffer::start(&p.ns("b"), "eth0");
    // ping's pattern fills its payload: 16 bytes, repeated.
    let pattern = "f3e77a11c0ffee5a1e5f3e77a11c0ffe";
    let marker: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&pattern[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    for to in ["10.200.1.1", "fd00:200:1::1"] {
        assert!(
            pattern_ping(&p.ns("a"), "3", pattern, to),
            "ping {to} across the tunnel"
        );
    }
    let (na, nb) = (
        NetNs::open(Path::new(&format!("/run/netns/{}", p.ns("a")))).unwrap(),
        NetNs::open(Path::new(&format!("/run/netns/{}", p.ns("b")))).unwrap(),
    );
    let text = b"FERRY-WG-CLEARTEXT-MARKER ".repeat(4000);
    for to in ["10.200.1.1:7001", "[fd00:200:1::1]:7002"] {
        let back = tcp_echo(&na, &nb, to.parse().unwrap(), &text);
        assert_eq!(back.len(), text.len(), "TCP echo to {to}");
        assert!(back == text);
    }
    let frames = sniffer.stop();

    let wg = frames
        .iter()
        .filter(|f| udp_dst_port(f) == Some(DEFAULT_PORT))
        .count();
    assert!(wg > 20, "WireGuard packets to 51820 on the wire: {wg}");
    let clear = frames
        .iter()
        .filter(|f| contains(f, &marker) || contains(f, b"FERRY-WG-CLEARTEXT"))
        .count();
    assert_eq!(
        clear,
        0,
        "payload in clear on the veth ({} frames seen)",
        frames.len()
    );

    // Both ends counted the bytes (boringtun's last_handshake_time_sec
    // is the time since the handshake, 0 here, unlike wg's epoch time).
    for d in [&da, &db] {
        let st = d.get().unwrap();
        let peer = st.peers.values().next().unwrap();
        assert!(peer.rx_bytes > 100_000 && peer.tx_bytes > 100_000, "{st:?}");
    }

    // The same traffic with the tunnel's routes gone goes in clear: the
    // capture would have seen it (this checks the check).
    for (side, peer4) in [("a", "10.200.1.0/24"), ("b", "10.200.0.0/24")] {
        ip(Some(&p.ns(side)), &["route", "del", peer4, "dev", TUN]);
    }
    ip(
        Some(&p.ns("a")),
        &["route", "add", "10.200.1.0/24", "via", "10.98.0.2"],
    );
    ip(
        Some(&p.ns("b")),
        &["route", "add", "10.200.0.0/24", "via", "10.98.0.1"],
    );
    let sniffer = Sniffer::start(&p.ns("b"), "eth0");
    assert!(pattern_ping(&p.ns("a"), "1", pattern, "10.200.1.1"));
    let frames = sniffer.stop();
    assert!(
        frames.iter().any(|f| contains(f, &marker)),
        "clear ping seen"
    );

    // Removing the socket file stops ferry-wg (as `ferryd uninstall`
    // does). Its TUN device is persistent: it stays, with its routes, and
    // what is routed into it goes nowhere, in particular not in clear.
    std::fs::remove_file(da.path()).unwrap();
    let status = p.children[0].wait().unwrap();
    assert!(status.success(), "ferry-wg exits cleanly: {status}");
    ip(
        Some(&p.ns("a")),
        &["route", "replace", "10.200.1.0/24", "dev", TUN],
    );
    let sniffer = Sniffer::start(&p.ns("b"), "eth0");
    assert!(!pattern_ping(&p.ns("a"), "3", pattern, "10.200.1.1"));
    let frames = sniffer.stop();
    assert!(
        !frames.iter().any(|f| contains(f, &marker)),
        "clear while ferry-wg is gone"
    );
    let links = ip(Some(&p.ns("a")), &["-o", "link", "show"]);
    assert!(links.contains(TUN), "{TUN} persists: {links}");
    // A new ferry-wg attaches to it and answers again.
    let c = p.start_wg("a");
    p.children.push(c);
    wait_for(&da);
    assert_eq!(
        ip(Some(&p.ns("a")), &["-o", "link", "show"])
            .matches(TUN)
            .count(),
        1
    );
    ip(Some(&p.ns("a")), &["link", "del", TUN]);
    let until = Instant::now() + Duration::from_secs(10);
    while p.children[2].try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < until,
            "ferry-wg without its device still runs"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
