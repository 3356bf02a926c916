//! Nodes on two subnets (`up --subnets 2`): k8s-master and k8s-worker-2
//! on 172.16.97.0/24, k8s-worker-1 on 172.16.98.0/24, the router between
//! them routing node addresses only. Plain routes cannot reach the other
//! segment's pods; ferryd's `--encapsulation cross-subnet` tunnels exactly
//! those through `ferry.vxlan`.

mod common;

use std::net::SocketAddr;

use ferry_lab::check::{seen_from, Witness};
use ferry_lab::state::Pod;
use ferry_lab::{routes, sh, Lab, Routing, UpOptions};
use serde_json::Value;

const VXLAN: &str = "ferry.vxlan";

fn opts(encapsulation: &str, fast_path: bool) -> UpOptions {
    UpOptions {
        routing: Routing::Direct,
        subnets: 2,
        encapsulation: Some(encapsulation.into()),
        fast_path,
        ..UpOptions::default()
    }
}

/// `ferry.vxlan`'s transmitted packets in a node netns, `None` without
/// the device.
fn vxlan_tx(netns: &str) -> Option<u64> {
    let out = sh::ns_output(netns, "ip", &["-j", "-s", "link", "show", "dev", VXLAN]).ok()?;
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v[0]["stats64"]["tx"]["packets"].as_u64()
}

/// The router's count of packets it had no route for (`IpExt
/// InNoRoutes`): what it drops when a pod's packet reaches it raw.
fn router_no_routes(lab: &Lab) -> u64 {
    let router = ferry_lab::topo::fixed(&lab.cfg.prefix).router;
    let out = sh::ns_output(&router, "cat", &["/proc/net/netstat"]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("IpExt:")).collect();
    let (names, values) = (lines[0], lines[1]);
    let i = names
        .split_whitespace()
        .position(|n| n == "InNoRoutes")
        .expect("InNoRoutes");
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

fn pod_on<'a>(lab: &'a Lab, node: &str) -> &'a Pod {
    lab.state.pods_on(node)[0]
}

fn pings(from: &Pod, to: &Pod, n: u32) -> bool {
    let count = n.to_string();
    sh::ns_output(
        &from.netns,
        "ping",
        &[
            "-n", "-q", "-c", &count, "-i", "0.01", "-W", "1", &to.ips[0],
        ],
    )
    .map(|o| o.status.success())
    .unwrap_or(false)
}

/// `n` TCP connections from `from` to a listener in `to`; each must see
/// `from`'s own address.
fn tcp_flows(from: &Pod, to: &Pod, n: usize) {
    let ip = to.ips[0].parse().unwrap();
    let w = Witness::listen(&to.netns, &[ip]).unwrap();
    let addr: SocketAddr = w.addrs[0];
    for _ in 0..n {
        let seen = seen_from(&from.netns, addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert_eq!(seen, from.ips[0]);
    }
}

#[test]
fn never_cannot_reach_the_other_subnet_and_shows_why() {
    let (_guard, lab) = common::up("vxn", opts("never", true));
    let (m, w1, w2) = ("k8s-master", "k8s-worker-1", "k8s-worker-2");
    let (pm, p1, p2) = (pod_on(&lab, m), pod_on(&lab, w1), pod_on(&lab, w2));
    // Same subnet: a plain route, and it works.
    assert!(pings(pm, p2, 3), "same-subnet pods");
    // Across: no route on the node (ferryd says why) ...
    let master = lab.node(m).unwrap();
    let table = routes::table(&master.netns).unwrap();
    let to_w1 = routes::lookup(&table, p1.ips[0].parse().unwrap()).unwrap();
    assert_eq!(to_w1.dst, "0.0.0.0/0", "only the default route: {to_w1:?}");
    let log = ferry_lab::agent::log_tail(&lab.cfg, m, 200);
    assert!(
        log.contains("not routing 10.244.1.0/24 of node k8s-worker-1")
            && log.contains("(--encapsulation never)"),
        "{log}"
    );
    // ... so the packets go to the router, which has no route for pods
    // and drops them.
    let dropped = router_no_routes(&lab);
    assert!(
        !pings(pm, p1, 3),
        "cross-subnet pods must not reach each other"
    );
    assert!(
        router_no_routes(&lab) >= dropped + 3,
        "the router dropped them"
    );
    assert_eq!(vxlan_tx(&master.netns), None, "no {VXLAN} with never");
}

#[test]
fn cross_subnet_tunnels_only_across_and_the_fast_path_keeps_it_encapsulated() {
    let (_guard, lab) = common::up("vxc", opts("cross-subnet", true));
    let report = lab.check().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{}", report.summary());
    let (m, w1, w2) = ("k8s-master", "k8s-worker-1", "k8s-worker-2");
    let (pm, p1, p2) = (pod_on(&lab, m), pod_on(&lab, w1), pod_on(&lab, w2));
    let ns = |n: &str| lab.node(n).unwrap().netns;

    // Routes: same subnet direct, across via the peer's VTEP on the device.
    let table = routes::table(&ns(m)).unwrap();
    let labels: Vec<String> = table
        .iter()
        .filter(|r| r.learnt())
        .map(|r| format!("{} dev {}", r.label(), r.dev.clone().unwrap_or_default()))
        .collect();
    assert!(
        labels.contains(&"K 10.244.2.0/24 via 172.16.97.77 dev eth0".to_string()),
        "{labels:?}"
    );
    assert!(
        labels.contains(&format!("K 10.244.1.0/24 via 10.244.1.0 dev {VXLAN}")),
        "{labels:?}"
    );
    let fdb = sh::ns_output(&ns(m), "bridge", &["fdb", "show", "dev", VXLAN]).unwrap();
    let fdb = String::from_utf8_lossy(&fdb.stdout).into_owned();
    assert_eq!(fdb.lines().count(), 1, "only k8s-worker-1: {fdb}");
    assert!(
        fdb.contains("0e:f7:ac:10:62:4c dst 172.16.98.76 self permanent"),
        "{fdb}"
    );
    // `ferryd status` tells it.
    let mut args = ferry_lab::agent::args(&lab.cfg, &lab.state, &lab.node(m).unwrap());
    args[0] = "status".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ferryd = lab.cfg.binary("ferryd").unwrap();
    let out = sh::ns_output(&ns(m), ferryd.to_str().unwrap(), &args).unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    for want in [
        "routing:    Direct (encapsulation cross-subnet)",
        "vxlan:      ferry.vxlan vni 1 local 172.16.97.75 port 4789 mtu 1450: 1 FDB entries, 1 neighbours",
        "10.244.1.0/24 via 10.244.1.0 dev ferry.vxlan",
    ] {
        assert!(status.contains(want), "{want:?} not in\n{status}");
    }
    // Pods got the tunnel's MTU (uplink 1500 - 50).
    let link = sh::ns_output(&pm.netns, "ip", &["-j", "link", "show", "eth0"]).unwrap();
    let link: Value = serde_json::from_slice(&link.stdout).unwrap();
    assert_eq!(link[0]["mtu"], 1450, "{link}");

    // Same-subnet pod traffic does not touch the tunnel ...
    let before = (vxlan_tx(&ns(m)).unwrap(), vxlan_tx(&ns(w2)).unwrap());
    assert!(pings(pm, p2, 50));
    tcp_flows(pm, p2, 5);
    let after = (vxlan_tx(&ns(m)).unwrap(), vxlan_tx(&ns(w2)).unwrap());
    assert_eq!(after, before, "same-subnet traffic went into {VXLAN}");
    // ... cross-subnet traffic does, in both directions.
    let w1_before = vxlan_tx(&ns(w1)).unwrap();
    assert!(pings(pm, p1, 50));
    let m_after = vxlan_tx(&ns(m)).unwrap();
    assert!(m_after >= before.0 + 50, "{} → {m_after}", before.0);
    assert!(vxlan_tx(&ns(w1)).unwrap() >= w1_before + 50);

    // TCP to the other subnet: the fast path encapsulates on one node and
    // decapsulates on the other itself, in both directions, past the
    // device (whose counters stay still). The connections succeed, so
    // the peer understood the packets, and nothing reaches the router
    // raw (it has no route for pods: it would count and drop it).
    let st = |n: &str| {
        ferry_ebpf::pinned_stats(&lab.cfg.node_bpf_dir(n))
            .unwrap()
            .unwrap()
    };
    let rx = |n: &str| {
        let out = sh::ns_output(&ns(n), "ip", &["-j", "-s", "link", "show", "dev", VXLAN]).unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["stats64"]["rx"]["packets"].as_u64().unwrap()
    };
    let (m0, w0, tx0, drops0) = (
        st(m),
        st(w1),
        vxlan_tx(&ns(m)).unwrap(),
        router_no_routes(&lab),
    );
    const FLOWS: u64 = 20;
    tcp_flows(pm, p1, FLOWS as usize);
    let (m1, w1s, tx1) = (st(m), st(w1), vxlan_tx(&ns(m)).unwrap());
    eprintln!("{m}: {m0:?} → {m1:?}\n{w1}: {w0:?} → {w1s:?}");
    // SYN, ACK, FIN at least per connection each way.
    assert!(m1.encapsulated >= m0.encapsulated + 3 * FLOWS, "{m}");
    assert!(w1s.decapsulated >= w0.decapsulated + 3 * FLOWS, "{w1}");
    assert!(w1s.encapsulated >= w0.encapsulated + 3 * FLOWS, "{w1}");
    assert!(m1.decapsulated >= m0.decapsulated + 3 * FLOWS, "{m}");
    assert!(
        tx1 < tx0 + FLOWS,
        "{VXLAN} tx {tx0} → {tx1}: the device carried the flows"
    );
    assert_eq!(
        router_no_routes(&lab),
        drops0,
        "raw pod packets reached the router"
    );
    // The program still runs on the device, for what the device itself
    // decapsulates.
    let filters = ferry_testkit::ingress_filters(&ns(w1), VXLAN);
    assert!(filters.contains("ferry_fast"), "{filters}");

    // Either end may be the kernel's device: with master's pod excluded
    // from master's fast path (as a NetworkPolicy would), master's
    // stack and device carry its packets both ways, while worker-1's
    // program still decapsulates what master's device sent and
    // encapsulates the answers master's device takes apart.
    let dir = lab.cfg.node_bpf_dir(m);
    let pm_ip: std::net::IpAddr = pm.ips[0].parse().unwrap();
    let mut attempts = 0;
    loop {
        attempts += 1;
        ferry_ebpf::set_pinned_excluded(&dir, &[pm_ip].into()).unwrap();
        let (m0, w0, tx0, rx0) = (st(m), st(w1), vxlan_tx(&ns(m)).unwrap(), rx(m));
        tcp_flows(pm, p1, FLOWS as usize);
        let (m1, w1s, tx1, rx1) = (st(m), st(w1), vxlan_tx(&ns(m)).unwrap(), rx(m));
        // ferryd writes its own exclusions at each reconcile: if one came
        // in between, the run proves nothing; again.
        let held = ferry_ebpf::pinned_excluded(&dir).unwrap().unwrap();
        if !held.contains(&pm_ip) && attempts < 3 {
            continue;
        }
        assert!(held.contains(&pm_ip), "ferryd kept resetting the exclusion");
        eprintln!("excluded on {m}: {m0:?} → {m1:?}\n{w1}: {w0:?} → {w1s:?}");
        assert_eq!(m1.encapsulated, m0.encapsulated, "{m}");
        assert_eq!(m1.decapsulated, m0.decapsulated, "{m}");
        assert!(tx1 >= tx0 + 3 * FLOWS, "{m} {VXLAN} tx {tx0} → {tx1}");
        assert!(rx1 >= rx0 + 3 * FLOWS, "{m} {VXLAN} rx {rx0} → {rx1}");
        assert!(w1s.decapsulated >= w0.decapsulated + 3 * FLOWS, "{w1}");
        assert!(w1s.encapsulated >= w0.encapsulated + 3 * FLOWS, "{w1}");
        break;
    }
    ferry_ebpf::set_pinned_excluded(&dir, &Default::default()).unwrap();
    assert_eq!(router_no_routes(&lab), drops0);

    // The program takes apart only what comes from the underlay address
    // its FDB gives the inner source MAC: the same VXLAN packet (master's
    // MAC inside), sent by the router, is left to worker-1's device (which
    // accepts any source); sent by master, the program decapsulates it.
    let v4 = |p: &Pod| p.ips[0].parse::<std::net::Ipv4Addr>().unwrap().octets();
    let (src, dst) = (v4(pm), v4(p1));
    let w1_ip = lab.node(w1).unwrap().ip;
    let router = ferry_lab::topo::fixed(&lab.cfg.prefix).router;
    for (from, port, program) in [(router.as_str(), 40001, false), (&ns(m), 40002, true)] {
        let (before, rx0) = (st(w1).decapsulated, rx(w1));
        let frame = vxlan_udp([172, 16, 97, 75], [172, 16, 98, 76], src, dst, port);
        send_udp(from, &w1_ip, &frame);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (after, rx1) = (st(w1).decapsulated, rx(w1));
        if program {
            assert_eq!((after, rx1), (before + 1, rx0), "sent by {from}");
        } else {
            assert_eq!((after, rx1), (before, rx0 + 1), "sent by {from}");
        }
    }
}

/// A VXLAN payload (VNI 1) holding a UDP datagram from pod `src` to pod
/// `dst` port 9, framed from the VTEP of the node at `from` to that of
/// the node at `to` (MACs `0e:f7:` + the node's IPv4).
fn vxlan_udp(from: [u8; 4], to: [u8; 4], src: [u8; 4], dst: [u8; 4], sport: u16) -> Vec<u8> {
    let mut f = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    f.extend([0x0e, 0xf7]);
    f.extend(to);
    f.extend([0x0e, 0xf7]);
    f.extend(from);
    f.extend([0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0];
    ip.extend(src);
    ip.extend(dst);
    let sum = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    ip[10..12].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    f.extend(ip);
    f.extend(sport.to_be_bytes());
    f.extend([0, 9, 0, 12, 0, 0]);
    f.extend(b"ferr");
    f
}

/// Sends `payload` in one UDP datagram from netns `from` to `to`:4789.
fn send_udp(from: &str, to: &str, payload: &[u8]) {
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    let code = "import socket,sys; socket.socket(2, 2).sendto(bytes.fromhex(sys.argv[1]), (sys.argv[2], 4789))";
    let out = sh::ns_output(from, "python3", &["-c", code, &hex, to]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What ferryd made on a node for the tunnel: its routes (both
/// families), the device's ifindex, FDB and neighbours.
fn tunnel_state(netns: &str) -> String {
    let run = |program: &str, args: &[&str]| {
        let o = sh::ns_output(netns, program, args).unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    [
        run("ip", &["-4", "route", "show", "proto", "201"]),
        run("ip", &["-6", "route", "show", "proto", "201"]),
        run("ip", &["-o", "link", "show", "dev", VXLAN])
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string(),
        run("bridge", &["fdb", "show", "dev", VXLAN]),
        run("ip", &["neigh", "show", "dev", VXLAN]),
    ]
    .join("\n")
}

fn conflist_mtu(lab: &Lab, node: &str) -> u64 {
    let path = ferry_lab::agent::NodeDirs::new(&lab.cfg, node).conflist();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["plugins"][0]["mtu"].as_u64().unwrap()
}

#[test]
fn dual_stack_restart_switch_to_never_and_uninstall_leave_nothing_stale() {
    let mut o = opts("cross-subnet", true);
    o.dual_stack = true;
    let (_guard, mut lab) = common::up("vxd", o);
    lab.check().unwrap_or_else(|e| panic!("{e}"));
    let (m, w2) = ("k8s-master", "k8s-worker-2");
    let ns = |lab: &Lab, n: &str| lab.node(n).unwrap().netns;
    let before = tunnel_state(&ns(&lab, m));
    assert!(
        before.contains("fd00:10:244:1::/64 via fd00:10:244:1:: dev ferry.vxlan"),
        "{before}"
    );
    assert!(
        before.contains("fd00:10:244:1:: lladdr 0e:f7:ac:10:62:4c PERMANENT"),
        "{before}"
    );
    assert_eq!(conflist_mtu(&lab, m), 1450);

    // A crash and a restart change nothing: same device, no duplicates.
    lab.stop_agent(m, true).unwrap();
    lab.start_agent(m).unwrap();
    lab.wait_converged(std::time::Duration::from_secs(30))
        .unwrap();
    assert_eq!(tunnel_state(&ns(&lab, m)), before);

    // k8s-worker-2 switches to never: no device, no route to the other
    // subnet, and its pods' MTU back to the uplink's.
    assert!(vxlan_tx(&ns(&lab, w2)).is_some());
    lab.stop_agent(w2, false).unwrap();
    lab.state.encapsulation = Some("never".into());
    lab.start_agent(w2).unwrap();
    let w2_ns = ns(&lab, w2);
    sh::wait_for(
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(50),
        "ferry.vxlan gone",
        || vxlan_tx(&w2_ns).is_none().then_some(()),
    )
    .unwrap();
    let left = tunnel_state(&w2_ns);
    assert!(
        !left.contains("10.244.1.0/24") && !left.contains("fd00:10:244:1::"),
        "{left}"
    );
    assert!(
        left.contains("10.244.0.0/24 via 172.16.97.75 dev eth0"),
        "{left}"
    );
    assert_eq!(conflist_mtu(&lab, w2), 1500);

    // `ferryd uninstall` on k8s-master removes the device with the rest.
    let mut args = ferry_lab::agent::args(&lab.cfg, &lab.state, &lab.node(m).unwrap());
    args[0] = "uninstall".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ferryd = lab.cfg.binary("ferryd").unwrap();
    lab.stop_agent(m, false).unwrap();
    let out = sh::ns_output(&ns(&lab, m), ferryd.to_str().unwrap(), &args).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("vxlan: true"),
        "{out:?}"
    );
    let left = tunnel_state(&ns(&lab, m));
    assert_eq!(left.trim(), "", "{left}");
}

#[test]
fn always_tunnels_even_on_one_subnet() {
    let mut o = opts("always", true);
    o.subnets = 1;
    let (_guard, lab) = common::up("vxa", o);
    lab.check().unwrap_or_else(|e| panic!("{e}"));
    let (m, w2) = ("k8s-master", "k8s-worker-2");
    let ns = lab.node(m).unwrap().netns;
    let table = routes::table(&ns).unwrap();
    let to_w2 = routes::lookup(&table, pod_on(&lab, w2).ips[0].parse().unwrap()).unwrap();
    assert_eq!(
        (to_w2.gateway.as_deref(), to_w2.dev.as_deref()),
        (Some("10.244.2.0"), Some(VXLAN)),
        "{to_w2:?}"
    );
    let before = vxlan_tx(&ns).unwrap();
    assert!(pings(pod_on(&lab, m), pod_on(&lab, w2), 20));
    assert!(vxlan_tx(&ns).unwrap() >= before + 20);
}
