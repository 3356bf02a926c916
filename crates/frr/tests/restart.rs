//! A node's FRR restarting (a rolling update of ferry) while pods ping
//! across nodes: with BGP graceful restart and zebra keeping its
//! routes (`ZEBRA_OPTIONS`), not one ping is lost. Without them, 13–16 %
//! of the pings were (2026-12: 82 and 81 of 500 over BGP).

mod common;

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use common::{wait_until, Lab};
use ferry_frr::{ospf_neighbors, ospf_pre_stop, FrrSpec, Mode};

const DAEMONS: &[&str] = &["zebra", "staticd", "bgpd"];
const CONVERGE: Duration = Duration::from_secs(60);
/// Ping every 50 ms for this long: through the kill, the new FRR's start,
/// ferryd's apply, the sessions' return and End-of-RIB.
const PING_FOR: Duration = Duration::from_secs(25);

fn bgp_spec(lab: &Lab, i: usize) -> FrrSpec {
    let mut spec = lab.spec(i, Mode::Bgp);
    spec.peers = lab.nodes.iter().map(|n| IpAddr::from(n.ip)).collect();
    spec
}

/// Every node has every other node's pod CIDR via that node (kernel
/// routes of protocol `proto`).
fn converged(lab: &Lab, proto: &str) -> bool {
    lab.nodes.iter().all(|n| {
        let v4 = n.routes(proto, false);
        lab.nodes
            .iter()
            .filter(|o| o.index != n.index)
            .all(|o| v4.get(&o.pod_cidr()) == Some(&o.ip.to_string()))
    })
}

fn start_ping(from: &str, to: &str) -> Child {
    let count = (PING_FOR.as_millis() / 50).to_string();
    Command::new("ip")
        .args(["netns", "exec", from, "ping", "-n", "-q", "-i", "0.05"])
        .args(["-W", "1", "-c", &count, to])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ping")
}

/// (sent, received) from ping's summary.
fn ping_result(child: Child) -> (u32, u32) {
    let out = child.wait_with_output().expect("wait for ping");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary: {text}"));
    let nums: Vec<u32> = line
        .split(',')
        .filter_map(|p| p.split_whitespace().next()?.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn bgp_frr_restart_loses_no_ping() {
    let mut lab = Lab::new("br", 3, 1);
    lab.start_frr(DAEMONS);
    let specs: Vec<_> = (0..3).map(|i| bgp_spec(&lab, i)).collect();
    lab.apply_all(&specs);
    assert!(
        wait_until(CONVERGE, || converged(&lab, "bgp")).is_some(),
        "no convergence: {}",
        lab.frr[0].vtysh("show bgp summary")
    );
    // Graceful restart negotiated with the node that restarts.
    let nbr = lab.frr[0].vtysh(&format!("show bgp neighbors {}", lab.nodes[1].ip));
    assert!(
        nbr.contains("Graceful Restart Capability: advertised and received"),
        "{nbr}"
    );

    let dst = lab.nodes[1].pods[0].1.to_string();
    let pings = [
        start_ping(&lab.nodes[0].pods[0].0 .0, &dst),
        start_ping(&lab.nodes[2].pods[0].0 .0, &dst),
    ];
    thread::sleep(Duration::from_secs(2));
    // The old FRR ends, a new one starts with only its hostname (a new
    // pod's emptyDir), then ferryd applies the config.
    lab.frr[1].kill();
    thread::sleep(Duration::from_secs(2));
    lab.frr[1].restart(DAEMONS, "hostname n1\n");
    let applied = lab.apply(1, &specs[1]);
    assert!(applied.changed);
    let back = wait_until(CONVERGE, || {
        converged(&lab, "bgp")
            && lab.frr[0]
                .vtysh("show bgp ipv4 unicast")
                .lines()
                .all(|l| !(l.starts_with('S') && l.contains("10.244.")))
    });
    assert!(back.is_some(), "{}", lab.frr[0].vtysh("show bgp ipv4"));
    let results: Vec<(u32, u32)> = pings.into_iter().map(ping_result).collect();
    println!("BGP restart of n1: (sent, received) n0->n1, n2->n1: {results:?}");
    for (sent, received) in &results {
        assert!(*sent > 100, "{results:?}");
        assert_eq!(
            sent,
            received,
            "pings lost across n1's FRR restart: {results:?}\n{}",
            lab.frr[0].vtysh("show bgp ipv4")
        );
    }
}

const OSPF_DAEMONS: &[&str] = &["zebra", "staticd", "ospfd"];

/// OSPF graceful restart of one node as its pod's end and a new pod do
/// it: the preStop hook's `graceful-restart prepare ip ospf`, every daemon
/// killed, a new FRR started with the frr.conf (and `ospfd-gr.json`) kept
/// on the node, then ferryd's apply (a no-op). Measured 2026-12 (500
/// pings each way, a DROther of the broadcast network then): without
/// graceful restart in the
/// config, 29 and 30 lost; with it but zebra without `-r -K` and a new FRR
/// that starts empty until ferryd's apply, 104 and 106 lost; as here, none.
fn ospf_restart(tag: &str) {
    // ospfd keeps its restart state in one file outside its pathspace.
    let _one_at_a_time = OSPF_GR.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = Lab::new(tag, 3, 1);
    lab.start_frr(OSPF_DAEMONS);
    // MD5 authentication, as the manifests have it (its sequence numbers
    // must not go back across the restart).
    let specs: Vec<_> = (0..3)
        .map(|i| {
            let mut spec = lab.spec(i, Mode::Ospf);
            spec.ospf_auth_key = Some("ferry-gr-key".into());
            spec
        })
        .collect();
    lab.apply_all(&specs);
    assert!(
        wait_until(CONVERGE, || converged(&lab, "ospf")).is_some(),
        "no convergence: {}",
        lab.frr[0].vtysh("show ip ospf neighbor")
    );
    // Some uptime: with sub-second hellos the MD5 sequence number ran
    // ~70 s ahead of the clock by now, and the restarted node's packets
    // were dropped as "bad sequence" for as long: the helpers had not
    // taken it back by the end of the pings (the helper check failed).
    thread::sleep(Duration::from_secs(UPTIME));
    // Point-to-multipoint: every node Full with every other, none a DR or
    // a DROther (on a broadcast network two DROthers stay 2-Way), so every
    // node is alike.
    for (i, f) in lab.frr.iter().enumerate() {
        let json = f.vtysh("show ip ospf neighbor json");
        let neighbors = ospf_neighbors(&json).expect("neighbor json");
        assert_eq!(neighbors.len(), 2, "n{i}: {neighbors:?}");
        assert!(
            neighbors
                .iter()
                .all(|n| n.state == "Full" && n.role == "DROther"),
            "n{i}: {neighbors:?}"
        );
    }
    let r = 1;
    let peers: Vec<usize> = (0..3).filter(|&i| i != r).collect();
    let dst = lab.nodes[r].pods[0].1.to_string();
    let pings: Vec<Child> = peers
        .iter()
        .map(|&i| start_ping(&lab.nodes[i].pods[0].0 .0, &dst))
        .collect();
    thread::sleep(Duration::from_secs(2));
    // preStop (the manifest's script), then the container's end.
    let hook = Command::new("sh")
        .args(["-c", &ospf_pre_stop(&lab.frr[r].frr.vtysh_command())])
        .status()
        .expect("run the preStop script");
    assert!(hook.success());
    let kept = std::fs::read_to_string(lab.frr[r].frr.conf_file()).expect("frr.conf");
    lab.frr[r].kill();
    thread::sleep(Duration::from_secs(2));
    lab.frr[r].restart(OSPF_DAEMONS, &kept);
    let applied = lab.apply(r, &specs[r]);
    assert!(
        !applied.changed,
        "{applied:?}\nkept:\n{kept}\nrunning:\n{}",
        lab.frr[r].vtysh("show running-config")
    );
    // FRR 8.4 prints nothing like "graceful restart in progress"; its
    // restart is over once its SPF has run and its adjacencies are back.
    let back = wait_until(CONVERGE, || {
        converged(&lab, "ospf")
            && lab.frr[r]
                .frr
                .ospf_adjacency(&specs[r], true)
                .is_ok_and(|why| why.is_none())
    });
    assert!(back.is_some(), "{}", lab.frr[r].logs());
    let results: Vec<(u32, u32)> = pings.into_iter().map(ping_result).collect();
    println!("OSPF restart of n{r}: (sent, received) from {peers:?}: {results:?}");
    // The restart was a graceful one, and the helpers saw it end well.
    let helper = lab.frr[peers[0]].vtysh("show ip ospf graceful-restart helper");
    assert!(
        helper.contains("Successful graceful restart"),
        "{results:?}\n{helper}\n{}",
        lab.frr[r].logs()
    );
    for (sent, received) in &results {
        assert!(*sent > 100, "{results:?}");
        assert_eq!(
            sent,
            received,
            "pings lost: {results:?}\n{}",
            peers
                .iter()
                .map(|&i| format!(
                    "n{i}: {}\n{}\n{:?}\n{}",
                    lab.frr[i].vtysh("show ip ospf graceful-restart helper detail"),
                    lab.frr[i].vtysh("show ip ospf neighbor"),
                    lab.nodes[i].routes("ospf", false),
                    lab.frr[i].logs()
                ))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // The helpers may refuse the restarted node's first packets (its MD5
    // sequence number starts again from the clock, which the last one
    // sent may be a little ahead of), but only a few: with sub-second
    // hellos they refused 71-77 each, about 20 s of its hellos, and the
    // longer the uptime the more, past the grace period (2026-12-06).
    for &i in &peers {
        let refused = lab.frr[i].logs().matches("bad sequence").count();
        println!("n{i} refused {refused} packets of n{r} as \"bad sequence\"");
        assert!(
            refused <= MAX_REFUSED,
            "n{i} refused {refused} of n{r}'s packets"
        );
    }
}

/// Packets a helper may refuse: the few sent within the last seconds
/// before the restart, beyond one a second.
const MAX_REFUSED: usize = 10;

/// `ospfd-gr.json` is shared by every ospfd on the host: one OSPF
/// restart at a time.
static OSPF_GR: Mutex<()> = Mutex::new(());

/// How long the nodes run before one restarts.
const UPTIME: u64 = 20;

#[test]
fn ospf_graceful_restart_loses_no_ping() {
    ospf_restart("or");
}
