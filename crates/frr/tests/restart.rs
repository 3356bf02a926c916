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

fn converged(lab: &Lab) -> bool {
    lab.nodes.iter().all(|n| {
        let v4 = n.routes("bgp", false);
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
        wait_until(CONVERGE, || converged(&lab)).is_some(),
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
        converged(&lab)
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
