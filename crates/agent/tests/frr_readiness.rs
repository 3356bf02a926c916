//! `--routing ospf`: ferryd reports ready only once its OSPF adjacencies
//! have settled, so that a DaemonSet rollout restarts the next node only
//! when this one routes again (see ferry-frr's `adjacency` module).

mod common;

use std::time::{Duration, Instant};

use common::{wait_for, Lab};
use ferry_frr::testing::FrrInstance;

const WAIT: Duration = Duration::from_secs(90);
const NOT_SETTLED_LOG: &str = "not ready until its OSPF adjacencies have settled";

fn start_frr(node: &common::LabNode) -> FrrInstance {
    FrrInstance::start(
        &node.ns,
        &node.ns,
        &["zebra", "staticd", "ospfd"],
        &format!("hostname {}\n", node.name),
    )
}

#[test]
fn ospf_node_is_ready_only_once_adjacent() {
    let mut lab = Lab::new("fj", 2, &[]);
    for n in &mut lab.nodes {
        n.flags = ["--routing", "ospf", "--frr-pathspace", &n.ns]
            .map(String::from)
            .to_vec();
    }
    let kubeconfig = lab.kubeconfig.clone();
    // Node 1 alone (node 2's Node exists, its FRR does not run yet): it is
    // configured, and not ready, for as long as it has no neighbor.
    let mut frr = vec![start_frr(&lab.nodes[0])];
    lab.nodes[0].start_ferryd(&kubeconfig);
    wait_for(
        WAIT,
        &format!("node 1 configured\n{}", lab.nodes[0].log()),
        || lab.nodes[0].conflist().exists().then_some(()),
    );
    let alone = Instant::now();
    while alone.elapsed() < Duration::from_secs(5) {
        assert!(!lab.nodes[0].ready(), "ready alone\n{}", lab.nodes[0].log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, body) = lab.nodes[0].http_get("/readyz").expect("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("OSPF adjacencies"), "{body}");
    let log = lab.nodes[0].log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(NOT_SETTLED_LOG))
        .collect();
    assert_eq!(said.len(), 1, "said once\n{log}");
    assert!(said[0].contains("no neighbor yet"), "{}", said[0]);

    // Node 2 comes up: both become ready once Full with each other.
    frr.push(start_frr(&lab.nodes[1]));
    let joined = Instant::now();
    lab.nodes[1].start_ferryd(&kubeconfig);
    lab.wait_all_ready();
    println!(
        "OSPF readiness: node 1 ready {:?} after node 2's FRR started",
        joined.elapsed()
    );
    for f in &frr {
        let neighbors = ferry_frr::ospf_neighbors(&f.vtysh("show ip ospf neighbor json")).unwrap();
        assert!(neighbors.iter().any(|n| n.state == "Full"), "{neighbors:?}");
    }
    assert!(
        lab.nodes[0].log().contains("settled_after"),
        "{}",
        lab.nodes[0].log()
    );
    for n in &mut lab.nodes {
        n.stop_ferryd();
    }
    frr.clear();
}
