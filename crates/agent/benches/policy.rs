//! NetworkPolicy benchmarks: how fast a change takes effect and what
//! enforcement costs a packet, in network namespaces against the test API
//! server (root needed, as for the integration tests):
//!
//! ```sh
//! cargo build -p ferry-plugin                    # the plugins ferryd installs
//! cargo bench -p ferryd --bench policy            # everything
//! cargo bench -p ferryd --bench policy -- latency # a selection
//! ```
//!
//! * `latency`: one node, the eBPF fast path on, 5 000 Pods and 1 000
//!   NetworkPolicies in the API (`common::policy::populate`) and two real
//!   pods made through the installed conflist, `client` → `web:8080`. A
//!   probe in the client's netns connects every few milliseconds; the
//!   figure is the time from the API write to the first probe that meets
//!   the new rule (the probe's start: its SYN was sent then):
//!   - a policy **created** isolating `web` → the first denied SYN dropped;
//!   - a policy **created** allowing `client` → the first allowed SYN passing;
//!   - that policy **deleted** → the first SYN dropped again;
//!   - `client` **joining** the allowed peers (a label change: its address
//!     added to the peer set, set elements only) → the first SYN passing,
//!     and **leaving** → the first SYN dropped.
//! * `throughput`: two nodes, `a` (node 1) → `b` (node 2), iperf3 TCP, back
//!   to back pairs, with the fast path on and off:
//!   - no policy against 100 policies selecting both pods (each allowing
//!     the pair, both directions isolated);
//!   - per-packet cost: 10 against 1 000 such policies, fast path off
//!     (a pod a policy isolates leaves the fast path anyway).
//!
//! Numbers are printed, never asserted.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::policy::{add_api_pod, expect, populate, put_namespace, put_pod, put_policy, serve};
use common::{wait_for, Lab};
use ferry_apiserver::{Kind, Store};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(120);
/// How long a probe's SYN may take to be answered: a denied one never is.
const PROBE: Duration = Duration::from_millis(3);

fn main() {
    let want = common::bench_selection();
    if want("latency") {
        latency(5000, 1000, 100);
    }
    if want("throughput") {
        throughput(3, 4, false);
    }
    if want("cost") {
        throughput(3, 6, true);
    }
}

/// Percentile `p` (0..=100) of `v`, nearest rank.
fn pct(v: &[Duration], p: usize) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    let rank = (p * v.len()).div_ceil(100).max(1);
    v[rank - 1]
}

fn report(what: &str, v: &[Duration]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "latency: {what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        ms(pct(v, 50)),
        ms(pct(v, 99)),
        ms(pct(v, 100)),
        v.len()
    );
}

/// Probes `addr` from netns `from` until a connect succeeds (`open`) or
/// fails (`!open`); returns the start of that probe, after `t0`.
fn until(from: &str, addr: SocketAddr, open: bool, t0: Instant) -> Duration {
    let ns = ferry_netns::NetNs::open(Path::new(&format!("/run/netns/{from}"))).unwrap();
    ns.run(move || loop {
        let start = Instant::now();
        if TcpStream::connect_timeout(&addr, PROBE).is_ok() == open {
            return start.saturating_duration_since(t0);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{addr} never {}",
            if open { "opened" } else { "closed" }
        );
        if open {
            // A refused or timed-out probe: go again at once.
            continue;
        }
        std::thread::sleep(Duration::from_micros(200));
    })
    .unwrap()
}

fn remove_policy(store: &Store, ns: &str, name: &str) {
    store.remove(Kind::NetworkPolicy, ns, name).unwrap();
}

fn latency(pods: usize, policies: usize, samples: usize) {
    let mut lab = Lab::new("npl", 1, &[]);
    // ferryd's default resync (the test lab's is 3 s): a change that
    // comes during one waits for it (~0.1 s at this size), as it would
    // once a minute in production.
    lab.nodes[0]
        .flags
        .extend(["--resync-interval".into(), "60s".into()]);
    let store = lab.store();
    populate(&store, pods, policies);
    put_namespace(&store, "default", json!({}));
    lab.start_all();
    lab.nodes[0].wait_ready();
    let replaced = "ferry_network_policy_applies_total{result=\"replaced\"}";
    wait_for(WAIT, "the first policy sync", || {
        (lab.nodes[0].metric(replaced).unwrap_or(0.0) >= 1.0).then_some(())
    });
    let (web_ns, web_ip) = add_api_pod(&mut lab, 0, "web", json!({"app": "web"}));
    let (client_ns, client_ip) = add_api_pod(&mut lab, 0, "client", json!({"app": "client"}));
    let client = |app: &str| {
        put_pod(
            &store,
            "default",
            "client",
            "k8s-1",
            &client_ip,
            json!({ "app": app }),
        )
    };
    let _http = serve(&web_ns, 8080);
    let addr: SocketAddr = format!("{web_ip}:8080").parse().unwrap();
    expect(&client_ns, &web_ip, 8080, true, "no policy yet");

    let deny = json!({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]});
    let allow = json!({"podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                     "ports": [{"port": 8080}]}]});
    let (mut denied, mut allowed, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples {
        let t0 = Instant::now();
        put_policy(&store, "default", "web-deny", deny.clone());
        denied.push(until(&client_ns, addr, false, t0));
        let t0 = Instant::now();
        put_policy(&store, "default", "allow-client", allow.clone());
        allowed.push(until(&client_ns, addr, true, t0));
        let t0 = Instant::now();
        remove_policy(&store, "default", "allow-client");
        deleted.push(until(&client_ns, addr, false, t0));
        remove_policy(&store, "default", "web-deny");
        expect(&client_ns, &web_ip, 8080, true, "both policies gone");
    }
    put_policy(&store, "default", "web-deny", deny);
    put_policy(&store, "default", "allow-client", allow);
    expect(&client_ns, &web_ip, 8080, true, "client allowed");
    let (mut left, mut joined) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let t0 = Instant::now();
        client("stranger");
        left.push(until(&client_ns, addr, false, t0));
        let t0 = Instant::now();
        client("client");
        joined.push(until(&client_ns, addr, true, t0));
    }
    println!(
        "latency: {pods} Pods, {policies} NetworkPolicies in the API, eBPF fast path on, probe every ≤ {} ms",
        PROBE.as_millis()
    );
    report("policy created → first denied SYN dropped", &denied);
    report("policy created → first allowed SYN passing", &allowed);
    report("policy deleted → first SYN dropped again", &deleted);
    report("pod joins the allowed peers → first SYN passing", &joined);
    report("pod leaves the allowed peers → first SYN dropped", &left);
}

/// A policy selecting `app=bench` pods in both directions and allowing
/// them to each other.
fn bench_policy() -> Value {
    let peer = json!([{"podSelector": {"matchLabels": {"app": "bench"}}}]);
    json!({"podSelector": {"matchLabels": {"app": "bench"}},
           "policyTypes": ["Ingress", "Egress"],
           "ingress": [{"from": peer}], "egress": [{"to": peer}]})
}

/// Makes exactly `n` bench policies exist; waits until ferryd enforces
/// them all and `a` reaches `b` again.
fn set_policies(lab: &Lab, have: &mut usize, n: usize, b_ip: &str) {
    let store = lab.store();
    for i in n..*have {
        remove_policy(&store, "default", &format!("bench-{i}"));
    }
    for i in *have..n {
        put_policy(&store, "default", &format!("bench-{i}"), bench_policy());
    }
    *have = n;
    for node in &lab.nodes {
        wait_for(WAIT, &format!("{n} policies enforced"), || {
            let got = node.metric("ferry_network_policies{state=\"enforced\"}");
            (got == Some(n as f64)).then_some(())
        });
    }
    expect(&lab.nodes[0].pods[0], b_ip, 8080, true, "the pair allowed");
}

/// ferryd's CPU time so far (user + system), in clock ticks.
fn cpu_ticks(node: &common::LabNode) -> u64 {
    let pid = node.ferryd_pid().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Waits until both ferryds are idle (under 2 ticks in 500 ms): a burst
/// of 990 policy changes keeps them busy for seconds after the last one
/// is enforced, and the runs measure the packet path, not that.
fn settle(lab: &Lab) {
    let total = || lab.nodes.iter().map(cpu_ticks).sum::<u64>();
    let start = Instant::now();
    let mut before = total();
    while start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(500));
        let now = total();
        if now - before < 2 {
            return;
        }
        before = now;
    }
}

/// Restarts both ferryds with the fast path on or off.
fn fast_path(lab: &mut Lab, on: bool) {
    let kc = lab.kubeconfig.clone();
    for node in &mut lab.nodes {
        node.stop_ferryd();
        node.flags.retain(|f| !f.starts_with("--fast-path"));
        node.flags.push(format!("--fast-path={on}"));
        node.start_ferryd(&kc);
    }
    lab.wait_all_ready();
}

/// One iperf3 run `a` → `b` (the server on 5201 in `b`'s netns): the
/// bits per second received.
fn iperf(lab: &Lab, b_ip: &str, seconds: u32) -> f64 {
    let (a, b) = (&lab.nodes[0].pods[0], &lab.nodes[1].pods[0]);
    let mut server = Command::new("ip")
        .args([
            "netns", "exec", b, "iperf3", "-s", "-1", "-B", b_ip, "-p", "5201",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 -s");
    let secs = seconds.to_string();
    let mut bps = None;
    // The server may need a moment to listen.
    for _ in 0..100 {
        let out = Command::new("ip")
            .args(["netns", "exec", a, "iperf3", "-c", b_ip, "-p", "5201"])
            .args(["-t", &secs, "-O", "1", "-J"])
            .output()
            .expect("iperf3 -c");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        bps = v["end"]["sum_received"]["bits_per_second"].as_f64();
        if bps.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = server.kill();
    let _ = server.wait();
    bps.expect("an iperf3 result")
}

/// Median of `pairs` back-to-back ratios `with / without` (which goes
/// first alternates), and the medians of each.
fn compare(
    lab: &Lab,
    have: &mut usize,
    (without, with): (usize, usize),
    b_ip: &str,
    seconds: u32,
    pairs: usize,
) -> (f64, f64, f64) {
    let (mut xs, mut ys, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        let mut run = |n: usize| {
            set_policies(lab, have, n, b_ip);
            settle(lab);
            iperf(lab, b_ip, seconds)
        };
        let (x, y) = if i % 2 == 0 {
            let x = run(without);
            (x, run(with))
        } else {
            let y = run(with);
            (run(without), y)
        };
        xs.push(x);
        ys.push(y);
        ratios.push(y / x);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(xs), median(ys), median(ratios))
}

fn throughput(seconds: u32, pairs: usize, cost: bool) {
    let mut lab = Lab::new("npt", 2, &[]);
    for node in &mut lab.nodes {
        // The default resync (the test lab's is 3 s): no extra syncs of
        // 1 000 policies during the runs.
        node.flags.extend(["--resync-interval".into(), "5m".into()]);
    }
    let store = lab.store();
    put_namespace(&store, "default", json!({}));
    lab.start_all();
    lab.wait_all_ready();
    add_api_pod(&mut lab, 0, "a", json!({"app": "bench"}));
    let (b_ns, b_ip) = add_api_pod(&mut lab, 1, "b", json!({"app": "bench"}));
    let _http = serve(&b_ns, 8080);
    let mut have = 0;
    if cost {
        fast_path(&mut lab, false);
        let (x, y, r) = compare(&lab, &mut have, (10, 1000), &b_ip, seconds, pairs);
        println!(
            "per-packet cost, fast path off: 10 policies {:.2} Gbit/s, 1 000 policies {:.2} Gbit/s (medians): ratio {:.3} (median of {pairs} back-to-back pairs of {seconds} s iperf3 runs)",
            x / 1e9,
            y / 1e9,
            r
        );
        return;
    }
    for on in [true, false] {
        fast_path(&mut lab, on);
        let (x, y, r) = compare(&lab, &mut have, (0, 100), &b_ip, seconds, pairs);
        println!(
            "throughput, fast path {}: pod→pod across nodes, no policy {:.2} Gbit/s, 100 policies selecting both pods {:.2} Gbit/s (medians): ratio {:.3} (median of {pairs} back-to-back pairs of {seconds} s iperf3 runs)",
            if on { "on" } else { "off" },
            x / 1e9,
            y / 1e9,
            r
        );
    }
}
