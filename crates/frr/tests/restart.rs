//! A node's FRR restarting (a rolling update of ferry) while pods ping
//! across nodes: with BGP graceful restart and zebra keeping its
//! routes (`ZEBRA_OPTIONS`), not one ping is lost. Without them, 13–16 %
//! of the pings were (2026-12: 82 and 81 of 500 over BGP).

mod common;

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use common::{wait_until, Lab};
use ferry_frr::{FrrSpec, Mode};

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

/// OSPF graceful restart of n1 as its pod's end and a new pod do it: the
/// preStop hook's `graceful-restart prepare ip ospf`, every daemon killed,
/// a new FRR started with the frr.conf (and `ospfd-gr.json`) kept on the
/// node, then ferryd's apply (a no-op). Measured 2026-12 (500 pings each
/// way): without graceful restart in the config, 29 and 30 lost; with it
/// but zebra without `-r -K` and a new FRR that starts empty until
/// ferryd's apply, 104 and 106 lost; as here, none.
#[test]
fn ospf_graceful_restart_loses_no_ping() {
    let mut lab = Lab::new("or", 3, 1);
    lab.start_frr(OSPF_DAEMONS);
    let specs: Vec<_> = (0..3).map(|i| lab.spec(i, Mode::Ospf)).collect();
    lab.apply_all(&specs);
    assert!(
        wait_until(CONVERGE, || converged(&lab, "ospf")).is_some(),
        "no convergence: {}",
        lab.frr[0].vtysh("show ip ospf neighbor")
    );
    let dst = lab.nodes[1].pods[0].1.to_string();
    let pings = [
        start_ping(&lab.nodes[0].pods[0].0 .0, &dst),
        start_ping(&lab.nodes[2].pods[0].0 .0, &dst),
    ];
    thread::sleep(Duration::from_secs(2));
    // preStop, then the container's end.
    lab.frr[1].vtysh("graceful-restart prepare ip ospf");
    let kept = std::fs::read_to_string(lab.frr[1].frr.conf_file()).expect("frr.conf");
    lab.frr[1].kill();
    thread::sleep(Duration::from_secs(2));
    lab.frr[1].restart(OSPF_DAEMONS, &kept);
    let applied = lab.apply(1, &specs[1]);
    assert!(!applied.changed, "{applied:?}");
    let back = wait_until(CONVERGE, || {
        converged(&lab, "ospf")
            && !lab.frr[1]
                .vtysh("show ip ospf")
                .contains("Graceful restart in progress")
    });
    assert!(back.is_some(), "{}", lab.frr[1].logs());
    let results: Vec<(u32, u32)> = pings.into_iter().map(ping_result).collect();
    println!("OSPF restart of n1: (sent, received) n0->n1, n2->n1: {results:?}");
    // The restart was a graceful one, and the helpers saw it end well.
    let helper = lab.frr[0].vtysh("show ip ospf graceful-restart helper");
    assert!(
        helper.contains("Successful graceful restart"),
        "{results:?}\n{helper}"
    );
    for (sent, received) in &results {
        assert!(*sent > 100, "{results:?}");
        assert_eq!(
            sent,
            received,
            "pings lost: {results:?}\n{}",
            lab.frr[1].logs()
        );
    }
}
