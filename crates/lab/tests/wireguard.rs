//! `ferryd --encryption wireguard` in the embedded lab with nodes on two
//! subnets (`up --subnets 2`, dual-stack): every node a WireGuard peer of
//! every other, here through the userspace device (`ferry-wg`: this
//! kernel has no WireGuard). The pod mesh passes in both families with
//! the fast path on and off; captures on a node's link and on the
//! router's link to the other subnet show WireGuard (UDP to 51820) and
//! never the pods' payload; a ferryd restart keeps the tunnel up (the
//! loss is measured); key rotation, switching encryption off and
//! `ferryd uninstall` leave nothing stale. Needs root, TUN and the
//! binaries built (`cargo build -p ferryd -p ferry-plugin -p
//! ferry-apiserver -p ferry-wireguard-userspace`).

mod common;
mod wireguard_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use ferry_lab::state::Pod;
use ferry_lab::{sh, Lab, Routing, UpOptions};
use ferry_testkit::sniff::{contains, udp_dst_port, Sniffer};
use wireguard_support::{
    background_ping, device_state, ferry_wg_pids, kill_ferry_wg, public_key, wg_peer_keys, PATTERN,
    WG,
};

const M: &str = "k8s-master";
const W1: &str = "k8s-worker-1"; // behind the router
const W2: &str = "k8s-worker-2"; // on the master's subnet
/// What the pods send; must never be seen on a wire.
const MARKER: &[u8] = b"FERRY-WG-LAB-CLEARTEXT-MARKER/";

fn opts(fast_path: bool) -> UpOptions {
    UpOptions {
        routing: Routing::Direct,
        subnets: 2,
        dual_stack: true,
        fast_path,
        encryption: Some("wireguard".into()),
        ..UpOptions::default()
    }
}

fn pattern_bytes() -> Vec<u8> {
    (0..16)
        .map(|i| u8::from_str_radix(&PATTERN[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn pod_on<'a>(lab: &'a Lab, node: &str) -> &'a Pod {
    lab.state.pods_on(node)[0]
}

fn ns(lab: &Lab, node: &str) -> String {
    lab.node(node).unwrap().netns
}

fn run(netns: &str, program: &str, args: &[&str]) -> String {
    let o = sh::ns_output(netns, program, args).unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `ping` with the marker pattern; whether every one was answered.
fn pattern_ping(from: &Pod, to: &str, n: u32) -> bool {
    let n = n.to_string();
    sh::ns_output(
        &from.netns,
        "ping",
        &[
            "-n", "-q", "-c", &n, "-i", "0.05", "-W", "2", "-s", "400", "-p", PATTERN, to,
        ],
    )
    .map(|o| o.status.success())
    .unwrap_or(false)
}

/// A TCP echo of MARKER-filled data from `from` to a listener in `to` at
/// `ip`: `flows` connections of 64 KiB each.
fn tcp_marker(from: &Pod, to: &Pod, ip: &str, port: u16, flows: usize) {
    let addr = SocketAddr::new(ip.parse().unwrap(), port);
    let server_ns = sh::open_ns(&to.netns).unwrap();
    let client_ns = sh::open_ns(&from.netns).unwrap();
    let listener = server_ns
        .run(move || TcpListener::bind(addr))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..flows {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        }
    });
    let data = MARKER.repeat(64 * 1024 / MARKER.len());
    for _ in 0..flows {
        let mut c = client_ns
            .run(move || TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
            .unwrap()
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&data).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert!(back == data, "echo from {addr}");
    }
    server.join().unwrap();
}

/// The router's link to the second subnet (172.16.98.0/24).
fn router_link(lab: &Lab) -> (String, String) {
    let router = ferry_lab::topo::fixed(&lab.cfg.prefix).router;
    let addrs = run(&router, "ip", &["-br", "-4", "addr"]);
    let dev = addrs
        .lines()
        .find(|l| l.contains("172.16.98.1/"))
        .and_then(|l| l.split_whitespace().next())
        .map(|d| d.split('@').next().unwrap().to_string())
        .expect("router link to 172.16.98.0/24");
    (router, dev)
}

fn fast_path_forwarded(lab: &Lab, node: &str) -> u64 {
    ferry_ebpf::pinned_stats(&lab.cfg.node_bpf_dir(node))
        .unwrap()
        .map_or(0, |s| s.forwarded)
}

fn mesh_is_encrypted(fast_path: bool, tag: &str) {
    let (_guard, lab) = common::up(tag, opts(fast_path));
    let report = lab.check().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{}", report.summary());
    let (pm, p1, p2) = (pod_on(&lab, M), pod_on(&lab, W1), pod_on(&lab, W2));

    // Every peer's podCIDRs (both families) go through ferry.wg, across
    // the router and on the same subnet alike.
    for node in [M, W1, W2] {
        let routes = run(
            &ns(&lab, node),
            "ip",
            &["-4", "route", "show", "proto", "201"],
        ) + &run(
            &ns(&lab, node),
            "ip",
            &["-6", "route", "show", "proto", "201"],
        );
        assert_eq!(routes.lines().count(), 4, "{node}: {routes}");
        assert!(
            routes.lines().all(|l| l.contains(&format!("dev {WG}"))),
            "{node}: {routes}"
        );
        let link = run(&ns(&lab, node), "ip", &["link", "show", "dev", WG]);
        assert!(link.contains("mtu 1440"), "{node}: {link}");
    }
    // The pods' MTU leaves room for WireGuard (uplink 1500 - 60).
    let link = run(&pm.netns, "ip", &["link", "show", "eth0"]);
    assert!(link.contains("mtu 1440"), "{link}");
    // The fast path is not attached to the TUN device (no Ethernet header).
    assert!(!ferry_testkit::ingress_filters(&ns(&lab, M), WG).contains("ferry_fast"));

    let (router, rdev) = router_link(&lab);
    let on_router = Sniffer::start(&router, &rdev);
    let on_master = Sniffer::start(&ns(&lab, M), "eth0");
    let fp0 = fast_path_forwarded(&lab, M);
    for to in [p1, p2] {
        for ip in &to.ips {
            assert!(pattern_ping(pm, ip, 5), "ping {ip}");
        }
        tcp_marker(pm, to, &to.ips[0], 7101, 5);
        tcp_marker(pm, to, &to.ips[1], 7102, 5);
    }
    let fp1 = fast_path_forwarded(&lab, M);
    let (router_frames, master_frames) = (on_router.stop(), on_master.stop());
    let pattern = pattern_bytes();
    for (where_, frames) in [
        ("router", &router_frames),
        ("k8s-master eth0", &master_frames),
    ] {
        let wg = frames
            .iter()
            .filter(|f| udp_dst_port(f) == Some(51820))
            .count();
        let clear = frames
            .iter()
            .filter(|f| contains(f, MARKER) || contains(f, &pattern))
            .count();
        eprintln!(
            "{where_}: {} frames, {wg} WireGuard, {clear} with payload in clear",
            frames.len()
        );
        assert!(wg > 100, "{where_}: WireGuard frames {wg}");
        assert_eq!(clear, 0, "{where_}: pod payload in clear");
    }
    eprintln!("fast path forwarded on {M}: {fp0} → {fp1}");
    // With WireGuard the fast path keeps to this node's own pods: these
    // flows to other nodes went through the stack both ways, so conntrack
    // sees both directions (kube-proxy drops replies it did not see start:
    // the fast path forwarding into ferry.wg broke TCP on a real cluster).
    assert_eq!(fp1, fp0, "fast path forwarded {fp0} → {fp1}");
}

#[test]
fn mesh_is_encrypted_with_the_fast_path() {
    mesh_is_encrypted(true, "wgf");
}

#[test]
fn mesh_is_encrypted_without_the_fast_path() {
    mesh_is_encrypted(false, "wgn");
}

#[test]
fn restart_keeps_the_tunnel_rotation_switch_off_and_uninstall_leave_nothing() {
    let (_guard, mut lab) = common::up("wgr", opts(true));
    lab.check().unwrap_or_else(|e| panic!("{e}"));
    let (pm, p1) = (pod_on(&lab, M).clone(), pod_on(&lab, W1).clone());
    let cfg = lab.cfg.clone();
    let dirs = |n: &str| ferry_lab::agent::NodeDirs::new(&cfg, n);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dirs(M).wireguard_key())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let log = ferry_lab::agent::log_tail(&lab.cfg, M, 400);
    let secret = std::fs::read_to_string(dirs(M).wireguard_key()).unwrap();
    assert!(
        !log.contains(secret.trim()),
        "the private key is in the log"
    );

    // `ferryd status` tells which device runs.
    let mut args = ferry_lab::agent::args(&lab.cfg, &lab.state, &lab.node(M).unwrap());
    args[0] = "status".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ferryd = lab.cfg.binary("ferryd").unwrap();
    let out = sh::ns_output(&ns(&lab, M), ferryd.to_str().unwrap(), &args).unwrap();
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        status.contains("wireguard:  ferry.wg userspace mtu 1440 port 51820: 2 peers"),
        "{status}"
    );
    assert!(status.contains("via 10.244.1.0 dev ferry.wg"), "{status}");

    // A ferryd restart (killed, then started) while pods ping across the
    // router: the same ferry-wg carries on and the pings keep answering.
    let wg_before = ferry_wg_pids(&lab, M);
    assert_eq!(wg_before.len(), 1, "{wg_before:?}");
    let routes_before = run(&ns(&lab, M), "ip", &["route", "show", "proto", "201"]);
    let pinger = background_ping(&pm, &p1.ips[0], 400);
    std::thread::sleep(Duration::from_millis(500));
    lab.stop_agent(M, true).unwrap();
    lab.start_agent(M).unwrap();
    lab.wait_converged(Duration::from_secs(30)).unwrap();
    let (sent, got, line) = pinger.join().unwrap();
    eprintln!("ping across a ferryd restart: {line}");
    assert_eq!(sent, 400, "{line}");
    assert!(
        got >= sent - 8,
        "lost more than 2% across a restart (a broken tunnel for the ~1 s restart would lose ~100): {line}"
    );
    assert_eq!(ferry_wg_pids(&lab, M), wg_before, "the same ferry-wg");
    assert_eq!(
        run(&ns(&lab, M), "ip", &["route", "show", "proto", "201"]),
        routes_before,
        "no duplicates, nothing changed"
    );
    assert_eq!(
        run(&ns(&lab, M), "ip", &["-o", "link"]).matches(WG).count(),
        1
    );

    // ferryd and ferry-wg both killed (a container restart): ferry.wg is
    // persistent, so its routes stay and what is routed into it is
    // dropped, never sent in clear; the new ferryd starts a new ferry-wg
    // on it. The interruption is measured.
    let sniffer = Sniffer::start(&ns(&lab, M), "eth0");
    let pinger = background_ping(&pm, &p1.ips[0], 600);
    std::thread::sleep(Duration::from_millis(500));
    lab.stop_agent(M, true).unwrap();
    kill_ferry_wg(&lab, M);
    std::thread::sleep(Duration::from_millis(300));
    assert!(run(&ns(&lab, M), "ip", &["-o", "link"]).contains(WG));
    lab.start_agent(M).unwrap();
    // The new ferry-wg has no sessions, while k8s-worker-2 (which sent
    // nothing meanwhile) still holds its old one with k8s-master and
    // would keep sending with it, into the void, for 15 s before starting
    // a handshake itself. The restarted ferryd starts one with every peer
    // at once, so traffic towards the restarted node answers right away.
    // (No wait_converged here: its pings from k8s-master would start the
    // handshakes themselves.)
    sh::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(100),
        "k8s-master's new ferry-wg has a handshake with every peer",
        || {
            let st = device_state(&lab, M)?;
            (st.peers.len() == 2 && st.peers.values().all(|p| p.has_handshake())).then_some(())
        },
    )
    .unwrap();
    let p2 = pod_on(&lab, W2).clone();
    let (sent, got, line) = background_ping(&p2, &pm.ips[0], 100).join().unwrap();
    eprintln!("ping towards the restarted node from a peer that sent nothing meanwhile: {line}");
    assert!(sent == 100 && got >= 98, "{line}");
    lab.wait_converged(Duration::from_secs(30)).unwrap();
    let (_, _, line) = pinger.join().unwrap();
    let frames = sniffer.stop();
    eprintln!("ping across a ferryd + ferry-wg kill and restart (10 ms apart): {line}");
    let pattern = pattern_bytes();
    assert!(
        !frames.iter().any(|f| contains(f, &pattern)),
        "pod payload in clear while ferry-wg was gone"
    );
    assert_eq!(ferry_wg_pids(&lab, M).len(), 1);
    assert_eq!(
        run(&ns(&lab, M), "ip", &["route", "show", "proto", "201"]),
        routes_before
    );

    // ferry-wg alone killed, ferryd running (as a rollout of the
    // ferry-wireguard DaemonSet does on a cluster): ferryd notices within
    // a second and starts and configures a new one, without waiting for
    // its next resync (30 s here); traffic towards k8s-master resumes
    // within seconds.
    let pinger = background_ping(&p2, &pm.ips[0], 1000);
    std::thread::sleep(Duration::from_millis(500));
    let old_wg = kill_ferry_wg(&lab, M);
    let (sent, got, line) = pinger.join().unwrap();
    eprintln!("ping towards a node whose ferry-wg was killed (10 ms apart): {line}");
    assert!(
        sent == 1000 && got >= 700,
        "more than 3 s without a working tunnel: {line}"
    );
    let new_wg = ferry_wg_pids(&lab, M);
    assert!(
        new_wg.len() == 1 && new_wg != old_wg,
        "{old_wg:?} → {new_wg:?}"
    );

    // Key rotation on k8s-worker-1: a new key file, ferryd restarted; the
    // peers replace its key and the mesh passes again.
    let old = public_key(&lab, W1);
    assert!(wg_peer_keys(&lab, M).contains(&old));
    lab.stop_agent(W1, false).unwrap();
    std::fs::remove_file(dirs(W1).wireguard_key()).unwrap();
    lab.start_agent(W1).unwrap();
    sh::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(100),
        "the peers take k8s-worker-1's new key",
        || {
            let new = public_key(&lab, W1);
            let (m, w2) = (wg_peer_keys(&lab, M), wg_peer_keys(&lab, W2));
            (new != old && m.contains(&new) && !m.contains(&old) && w2.contains(&new)).then_some(())
        },
    )
    .unwrap();
    assert_eq!(wg_peer_keys(&lab, M).len(), 2);
    lab.wait_converged(Duration::from_secs(30)).unwrap();

    // A node joins: every node makes it a peer, its pod reaches every
    // other node's pods and theirs reach it; it leaves: its peer and
    // routes go everywhere.
    let joined = lab.join_node().unwrap();
    sh::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(100),
        "every node has the new node as a peer",
        || {
            [M, W1, W2]
                .iter()
                .all(|n| wg_peer_keys(&lab, n).len() == 3)
                .then_some(())
        },
    )
    .unwrap();
    lab.add_pod(&joined.name, None, None).unwrap();
    lab.wait_converged(Duration::from_secs(30)).unwrap();
    lab.check()
        .unwrap_or_else(|e| panic!("with {}: {e}", joined.name));
    lab.remove_node(&joined.name).unwrap();
    sh::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(100),
        "the left node's peer and routes gone",
        || {
            let routes = run(&ns(&lab, M), "ip", &["route", "show", "proto", "201"]);
            (wg_peer_keys(&lab, M).len() == 2 && !routes.contains(&joined.cidrs[0])).then_some(())
        },
    )
    .unwrap();

    // k8s-worker-2 switches encryption off: its device goes, its routes
    // are plain (same subnet) or VXLAN (across), its pods' MTU follows.
    lab.stop_agent(W2, false).unwrap();
    lab.state.encryption = None;
    lab.start_agent(W2).unwrap();
    let w2_ns = ns(&lab, W2);
    sh::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(100),
        "ferry.wg gone on k8s-worker-2",
        || (!run(&w2_ns, "ip", &["-o", "link"]).contains(WG)).then_some(()),
    )
    .unwrap();
    let routes = run(&w2_ns, "ip", &["route", "show", "proto", "201"]);
    assert!(!routes.contains(WG), "{routes}");
    assert!(
        routes.contains("10.244.0.0/24 via 172.16.97.75 dev eth0"),
        "{routes}"
    );
    assert!(ferry_wg_pids(&lab, W2).is_empty());

    // `ferryd uninstall` on k8s-master: no device, route, key or process.
    let mut args = ferry_lab::agent::args(&lab.cfg, &lab.state, &lab.node(M).unwrap());
    args[0] = "uninstall".into();
    // The agent args were made with encryption off (W2 above): put the
    // master's WireGuard flags back.
    args.extend([
        "--encryption".into(),
        "wireguard".into(),
        "--wireguard-key-file".into(),
        dirs(M).wireguard_key().display().to_string(),
        "--wireguard-run-dir".into(),
        dirs(M).wireguard_run().display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ferryd = lab.cfg.binary("ferryd").unwrap();
    lab.stop_agent(M, false).unwrap();
    let out = sh::ns_output(&ns(&lab, M), ferryd.to_str().unwrap(), &args).unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(
        said.contains("wireguard: true") && said.contains("wireguard_key: true"),
        "{said}"
    );
    assert!(!run(&ns(&lab, M), "ip", &["-o", "link"]).contains(WG));
    assert_eq!(
        run(&ns(&lab, M), "ip", &["route", "show", "proto", "201"]),
        ""
    );
    assert_eq!(
        run(&ns(&lab, M), "ip", &["-6", "route", "show", "proto", "201"]),
        ""
    );
    assert!(!dirs(M).wireguard_key().exists());
    assert!(ferry_wg_pids(&lab, M).is_empty());
}
