//! ferryd benchmarks, in network namespaces against the test API server
//! (root needed, as for the integration tests):
//!
//! ```sh
//! cargo build --release -p ferry-plugin   # the plugins ferryd installs
//! cargo bench -p ferryd --bench agent              # everything
//! cargo bench -p ferryd --bench agent -- direct rss # a selection
//! ```
//!
//! * `direct`, `ospf`, `bgp`: convergence after a node add — from the Node
//!   appearing in the API to its podCIDR being routed on every other node
//!   (direct: ferryd's kernel route; ospf/bgp: the route FRR learned, the
//!   new node's ferryd and FRR already running). Median of several runs.
//! * `rss`: ferryd's resident memory with 1k and 5k Nodes in the API (all
//!   directly connected, so it owns 1k/5k routes), after it is ready.
//!
//! * `policy`: NetworkPolicy at scale: 5k Pods (250 on the bench node),
//!   1k NetworkPolicies in 50 namespaces; ferryd's memory once the table
//!   is installed, the first sync, and a pod-churn sync (elements only).
//!
//! Numbers are printed, never asserted.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{node_object, wait_for, Lab};
use ferry_apiserver::{generate_nodes, GenOptions};
use ferry_frr::testing::FrrInstance;
use ferry_netlink::{Family, Handle};
use ferry_netns::NetNs;
use ipnet::IpNet;

const WAIT: Duration = Duration::from_secs(120);

fn main() {
    let want = common::bench_selection();
    if want("direct") {
        direct(15);
    }
    if want("ospf") {
        frr_mode("ospf", &["zebra", "staticd", "ospfd"], 5);
    }
    if want("bgp") {
        frr_mode("bgp", &["zebra", "staticd", "bgpd"], 5);
    }
    if want("rss") {
        for n in [1000, 5000] {
            rss(n);
        }
    }
    if want("policy") {
        policy(5000, 1000);
    }
}

/// Waits until `dst` is (or is no longer) in the main table of every
/// netns in `nodes`, polling over netlink every millisecond. Returns when.
fn until_routed(nodes: &[String], dst: IpNet, present: bool) -> Instant {
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|ns| {
                s.spawn(move || {
                    let ns = NetNs::open(Path::new(&format!("/run/netns/{ns}"))).unwrap();
                    ns.run(|| {
                        let mut h = Handle::new().unwrap();
                        let start = Instant::now();
                        loop {
                            let routes = h.routes(Family::V4, None).unwrap();
                            if routes.iter().any(|r| r.dst == dst) == present {
                                return Instant::now();
                            }
                            assert!(start.elapsed() < WAIT, "{dst} never converged");
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    })
                    .unwrap()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn print(what: &str, v: &[Duration]) {
    let ms: Vec<String> = v
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
        .collect();
    println!(
        "{what}: median {:.1} ms over {} runs (ms: {})",
        median(v.to_vec()).as_secs_f64() * 1e3,
        v.len(),
        ms.join(" ")
    );
}

fn direct(runs: usize) {
    let mut lab = Lab::new("bd", 3, &[]);
    lab.start_all();
    lab.wait_all_ready();
    let nss: Vec<String> = lab.nodes.iter().map(|n| n.ns.clone()).collect();
    let (mut add, mut del) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let name = format!("bench-{i}");
        let ip = format!("172.16.97.{}", 100 + i);
        let cidr: IpNet = format!("10.244.{}.0/24", 100 + i).parse().unwrap();
        // Isolated changes (a burst would be coalesced, 100 ms apart).
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        lab.store()
            .add_node(node_object(&name, &[&ip], &[&cidr.to_string()]))
            .unwrap();
        add.push(until_routed(&nss, cidr, true) - t0);
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        lab.store().delete_node(&name).unwrap();
        del.push(until_routed(&nss, cidr, false) - t0);
    }
    print("direct: node add -> route on all 3 nodes", &add);
    print("direct: node delete -> route gone on all 3 nodes", &del);
}

fn frr_mode(routing: &str, daemons: &[&str], runs: usize) {
    let mut times = Vec::new();
    for run in 0..runs {
        let mut lab = Lab::new(&format!("b{}", &routing[..1]), 3, &[]);
        let mut frr: Vec<FrrInstance> = Vec::new();
        let flags = |node: &common::LabNode| -> Vec<String> {
            [
                "--routing",
                routing,
                "--frr-pathspace",
                &node.ns,
                "--resync-interval",
                "10m",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        };
        for n in &mut lab.nodes {
            frr.push(FrrInstance::start(
                &n.ns,
                &n.ns,
                daemons,
                &format!("hostname {}\n", n.name),
            ));
            n.flags = flags(n);
        }
        lab.start_all();
        lab.wait_all_ready();
        let nss: Vec<String> = lab.nodes.iter().map(|n| n.ns.clone()).collect();
        // Everyone has everyone's podCIDR before the join.
        for n in &lab.nodes {
            until_routed(
                &nss.iter()
                    .filter(|x| **x != n.ns)
                    .cloned()
                    .collect::<Vec<_>>(),
                n.cidr.parse().unwrap(),
                true,
            );
        }
        let mut n4 = lab.add_node_ns(3);
        frr.push(FrrInstance::start(
            &n4.ns,
            &n4.ns,
            daemons,
            &format!("hostname {}\n", n4.name),
        ));
        n4.flags = flags(&n4);
        n4.start_ferryd(&lab.kubeconfig);
        // Its ferryd waits for its Node; adding the Node is the join.
        wait_for(WAIT, "ferryd 4 up", || n4.http_get("/healthz").map(|_| ()));
        let cidr: IpNet = n4.cidr.parse().unwrap();
        let t0 = Instant::now();
        lab.store()
            .add_node(node_object(&n4.name, &[&n4.ip], &[&n4.cidr]))
            .unwrap();
        let t = until_routed(&nss, cidr, true) - t0;
        times.push(t);
        eprintln!("{routing} run {run}: {t:?}");
        lab.nodes.push(n4);
        for n in &mut lab.nodes {
            n.stop_ferryd();
        }
        drop(frr);
    }
    print(
        &format!("{routing}: node add -> its podCIDR routed on the 3 others"),
        &times,
    );
}

fn vm_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn rss(n: usize) {
    let gen = GenOptions::default();
    let extra = generate_nodes(n, &gen);
    // Generated nodes live on 172.16.0.10+i: a /16 makes all of them
    // directly connected, so ferryd routes every one.
    let mut lab = Lab::build(&format!("r{}", n / 1000), 1, &[0], extra, 16);
    // The bench node's own podCIDR, outside the generated ones.
    lab.store()
        .modify_node(
            "k8s-1",
            &serde_json::json!({"spec": {"podCIDR": "10.100.0.0/24", "podCIDRs": ["10.100.0.0/24"]}}),
        )
        .unwrap();
    let t0 = Instant::now();
    lab.start_all();
    let node = &lab.nodes[0];
    node.wait_ready();
    wait_for(WAIT, "all routes owned", || {
        (node.metric("ferry_routes_owned") == Some(n as f64)).then_some(())
    });
    let ready = t0.elapsed();
    // A node change with everything in place: one more reconcile.
    lab.store()
        .modify_node(
            "node-0",
            &serde_json::json!({"metadata": {"labels": {"bench": "x"}}}),
        )
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let pid = node.ferryd_pid().unwrap();
    println!(
        "rss: {n} Nodes: ferryd VmRSS {:.1} MiB, peak VmHWM {:.1} MiB; {n} routes owned {:.1} s after start",
        vm_kib(pid, "VmRSS:") as f64 / 1024.0,
        vm_kib(pid, "VmHWM:") as f64 / 1024.0,
        ready.as_secs_f64()
    );
}

/// `pods` Pods over 20 nodes and `policies` NetworkPolicies over 50
/// namespaces, all in the API before ferryd starts.
fn policy(pods: usize, policies: usize) {
    use common::policy::put_pod;
    use serde_json::json;
    let mut lab = Lab::new("npb", 1, &[]);
    lab.nodes[0].flags.push("--fast-path=false".into());
    let store = lab.store();
    common::policy::populate(&store, pods, policies);
    let t0 = Instant::now();
    lab.start_all();
    let node = &lab.nodes[0];
    node.wait_ready();
    let replaced = "ferry_network_policy_applies_total{result=\"replaced\"}";
    wait_for(WAIT, "the first policy sync", || {
        (node.metric(replaced).unwrap_or(0.0) >= 1.0).then_some(())
    });
    let first = t0.elapsed();
    let pid = node.ferryd_pid().unwrap();
    let before = vm_kib(pid, "VmRSS:");
    // Churn: 50 more pods, one at a time, as a scheduler would.
    let elements = "ferry_network_policy_applies_total{result=\"elements\"}";
    let e0 = node.metric(elements).unwrap_or(0.0);
    let t1 = Instant::now();
    for i in pods..pods + 50 {
        let ip = format!("10.99.{}.{}", i / 250 % 250, i % 250 + 2);
        put_pod(
            &store,
            &format!("ns{}", i % 50),
            &format!("pod-{i}"),
            "k8s-1",
            &ip,
            json!({"app": "app0", "tier": "t1"}),
        );
    }
    wait_for(WAIT, "the churn applied", || {
        (node.metric(elements).unwrap_or(0.0) > e0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let sum = node
        .metric("ferry_network_policy_apply_duration_seconds_sum")
        .unwrap_or(0.0);
    let count = node
        .metric("ferry_network_policy_apply_duration_seconds_count")
        .unwrap_or(1.0);
    println!(
        "policy: {pods} Pods, {policies} NetworkPolicies: ferryd VmRSS {:.1} MiB after the first sync, {:.1} MiB after churn, peak VmHWM {:.1} MiB; first sync {:.1} s after start; 50 pod adds applied within {:.2} s ({} replaces, {} element syncs; mean sync {:.1} ms)",
        before as f64 / 1024.0,
        vm_kib(pid, "VmRSS:") as f64 / 1024.0,
        vm_kib(pid, "VmHWM:") as f64 / 1024.0,
        first.as_secs_f64(),
        t1.elapsed().as_secs_f64(),
        node.metric(replaced).unwrap_or(0.0),
        node.metric(elements).unwrap_or(0.0),
        sum / count * 1000.0,
    );
}
