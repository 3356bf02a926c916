//! `--routing ospf|bgp` with real FRR daemons per node netns (one
//! pathspace each): ferryd renders and reloads FRR's config; pods ping
//! across nodes; a joining node propagates; aggregate versus per-pod
//! advertisement shows in the learned route counts.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{node_object, wait_for, wait_for_eq, Lab};
use ferry_frr::testing::FrrInstance;

const WAIT: Duration = Duration::from_secs(90);

/// Kernel routes of protocol `proto` (`ospf`, `bgp`) on a node netns:
/// destination -> gateway.
fn learned(ns: &str, proto: &str) -> BTreeMap<String, String> {
    let out = ferry_testkit::ip(Some(ns), &["-4", "route", "show", "proto", proto]);
    out.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let via = w
                .iter()
                .position(|x| *x == "via")
                .and_then(|i| w.get(i + 1))?;
            let dst = w.first()?;
            let dst = if dst.contains('/') {
                dst.to_string()
            } else {
                format!("{dst}/32")
            };
            Some((dst, via.to_string()))
        })
        .collect()
}

fn start_frr(node: &common::LabNode, daemons: &[&str]) -> FrrInstance {
    FrrInstance::start(
        &node.ns,
        &node.ns,
        daemons,
        &format!("hostname {}\n", node.name),
    )
}

fn secret(lab: &Lab, name: &str, value: &str) -> String {
    let p = lab.dir.path().join(name);
    std::fs::write(&p, format!("{value}\n")).unwrap();
    p.display().to_string()
}

fn flags(
    node: &mut common::LabNode,
    routing: &str,
    advertise: &str,
    secret_flag: &str,
    secret: &str,
) {
    node.flags = vec![
        "--routing".into(),
        routing.into(),
        "--advertise".into(),
        advertise.into(),
        "--frr-pathspace".into(),
        node.ns.clone(),
        secret_flag.into(),
        secret.into(),
        "--resync-interval".into(),
        "60s".into(),
    ];
}

/// Runs one mode end to end.
fn scenario(tag: &str, routing: &str, advertise: &str, daemons: &[&str]) {
    let mut lab = Lab::new(tag, 3, &[]);
    let (secret_flag, key) = if routing == "ospf" {
        (
            "--ospf-auth-key-file",
            secret(&lab, "ospf-key", "k3yS3cr3t"),
        )
    } else {
        ("--bgp-password-file", secret(&lab, "bgp-pw", "pa55w0rd"))
    };
    // Dropped before `lab`: daemons stop before their netns go.
    let mut frr: Vec<FrrInstance> = lab.nodes.iter().map(|n| start_frr(n, daemons)).collect();
    for n in &mut lab.nodes {
        flags(n, routing, advertise, secret_flag, &key);
    }
    lab.start_all();
    lab.wait_all_ready();

    // Pods on every node, made by the installed plugin.
    let mut pods = Vec::new();
    for i in 0..3 {
        for k in 0..2 {
            pods.push(lab.nodes[i].add_pod(&format!("p{k}")));
        }
    }
    let (pod_a, _) = pods[0].clone();
    let (_, ip_b) = pods[2].clone();
    let (_, ip_c) = pods[4].clone();
    for ip in [&ip_b, &ip_c] {
        wait_for(
            WAIT,
            &format!("{routing}: pod on node 1 pings {ip}\n{}", frr[0].logs()),
            || ferry_testkit::ping(&pod_a, ip).then_some(()),
        );
    }

    // What node 1 learned: one route per other node (aggregate) or one per
    // remote pod (pods), each via the owning node.
    let want: BTreeMap<String, String> = if advertise == "aggregate" {
        [
            ("10.244.1.0/24", "172.16.97.76"),
            ("10.244.2.0/24", "172.16.97.77"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    } else {
        pods[2..]
            .iter()
            .map(|(_, ip)| {
                let via = if ip.starts_with("10.244.1.") {
                    "172.16.97.76"
                } else {
                    "172.16.97.77"
                };
                (format!("{ip}/32"), via.to_string())
            })
            .collect()
    };
    wait_for_eq(
        WAIT,
        &format!("{routing}/{advertise}: learned routes on node 1"),
        &want,
        || learned(&lab.nodes[0].ns, routing),
    );
    assert!(
        lab.nodes[0].owned_routes().is_empty(),
        "FRR routes, not ferryd"
    );
    // The secret is in FRR's config, never in ferryd's log.
    let conf = std::fs::read_to_string(frr[0].frr.conf_file()).unwrap();
    let secret_value = std::fs::read_to_string(Path::new(&key)).unwrap();
    assert!(conf.contains(secret_value.trim()), "secret not configured");
    for n in &lab.nodes {
        assert!(
            !n.log().contains(secret_value.trim()),
            "secret logged by {}",
            n.name
        );
    }

    // `status` shows what FRR learned.
    let (ok, out, err) = lab.nodes[0].ferryd_cmd(&lab.kubeconfig, "status");
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("FRR learned: {}", want.len())),
        "{out}"
    );

    // A node joins: its own FRR and ferryd come up, the Node appears; the
    // others learn its pods (bgp: after adding it as a neighbour).
    let mut n4 = lab.add_node_ns(3);
    frr.push(start_frr(&n4, daemons));
    flags(&mut n4, routing, advertise, secret_flag, &key);
    lab.store()
        .add_node(node_object(&n4.name, &[&n4.ip], &[&n4.cidr]))
        .unwrap();
    n4.start_ferryd(&lab.kubeconfig);
    lab.nodes.push(n4);
    lab.nodes[3].wait_ready();
    let (_, ip_d) = lab.nodes[3].add_pod("p0");
    wait_for(
        WAIT,
        &format!("{routing}: pod on node 1 pings the new node's pod"),
        || ferry_testkit::ping(&pod_a, &ip_d).then_some(()),
    );
    // Node 1 learns the new node's pods via the new node itself. The ping
    // may answer earlier: with point-to-multipoint each node has its own
    // adjacency with every other, and until node 1's with the new node is
    // Full, SPF's shortest path to it runs through a node whose adjacency
    // already is (CI saw 10.244.3.0/24 via 172.16.97.76 for a moment).
    let n4 = &lab.nodes[3];
    let mut want_all = want;
    if advertise == "aggregate" {
        want_all.insert(n4.cidr.clone(), n4.ip.clone());
    } else {
        want_all.insert(format!("{ip_d}/32"), n4.ip.clone());
    }
    wait_for_eq(
        WAIT,
        &format!("{routing}/{advertise}: node 1 learns the new node's pods via it"),
        &want_all,
        || learned(&lab.nodes[0].ns, routing),
    );

    for n in &mut lab.nodes {
        n.stop_ferryd();
    }
    // `uninstall` withdraws ferry's FRR config and removes the file.
    let n1 = &lab.nodes[0];
    let (ok, out, err) = n1.ferryd_cmd(&lab.kubeconfig, "uninstall");
    assert!(ok, "uninstall: {err}");
    assert!(
        !frr[0].frr.conf_file().exists(),
        "{out}\n{err}\n{}",
        std::fs::read_to_string(frr[0].frr.conf_file()).unwrap_or_default()
    );
    let running = frr[0].vtysh("show running-config");
    assert!(!running.contains(&format!("router {routing}")), "{running}");
}

#[test]
fn ospf_aggregate() {
    scenario("fo", "ospf", "aggregate", &["zebra", "staticd", "ospfd"]);
}

#[test]
fn bgp_per_pod() {
    scenario("fb", "bgp", "pods", &["zebra", "staticd", "bgpd"]);
}

/// ferryd stopped (SIGSTOP) until dropped (SIGCONT), also on a panic.
struct Paused(nix::unistd::Pid);

impl Paused {
    fn new(node: &common::LabNode) -> Paused {
        let pid = nix::unistd::Pid::from_raw(node.ferryd_pid().expect("ferryd runs") as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
        Paused(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

/// The sequence number of node `frr`'s own AS-external-LSA for `prefix`
/// (`10.244.0.0`), if live: a repair would originate a new one.
fn own_external_seq(frr: &FrrInstance, prefix: &str) -> Option<String> {
    let json = frr.vtysh("show ip ospf database external self-originate json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let lsa = &v["AS External Link States"][prefix];
    (lsa["lsaAge"].as_u64()? < 3600).then(|| lsa["lsaSeqNumber"].as_str().unwrap().to_string())
}

const REPAIRS: &str = "ferry_ospf_external_lsa_repairs_total";
const REPAIR_LOG: &str = "no self-originated AS-external-LSA";

/// The OSPF audit, driven by ferryd's own loop (audit every second, a
/// resync that never comes during the test, so only the audit can repair):
/// with nothing missing it changes nothing; when node 1's ospfd loses its
/// AS-external-LSA behind ferryd's back (`no redistribute static` through
/// vtysh), node 2 loses the route, and the audit brings both back.
#[test]
fn ospf_audit_restores_a_lost_external_lsa() {
    let mut lab = Lab::new("fq", 2, &[]);
    let mut frr: Vec<FrrInstance> = lab
        .nodes
        .iter()
        .map(|n| start_frr(n, &["zebra", "staticd", "ospfd"]))
        .collect();
    for n in &mut lab.nodes {
        n.flags = [
            "--routing",
            "ospf",
            "--frr-pathspace",
            &n.ns,
            "--resync-interval",
            "1h",
            "--ospf-audit-interval",
            "1s",
            "--ospf-audit-settle",
            "3s",
        ]
        .map(String::from)
        .to_vec();
    }
    lab.start_all();
    lab.wait_all_ready();
    let (cidr, via) = ("10.244.0.0/24", "172.16.97.75");
    let n2_has_route = |lab: &Lab| learned(&lab.nodes[1].ns, "ospf").get(cidr) == Some(&via.into());
    wait_for(WAIT, "node 2 learns node 1's pod CIDR", || {
        n2_has_route(&lab).then_some(())
    });

    // Nothing missing: audits pass (settle 3 s, one a second) and change
    // nothing: the LSA keeps its sequence number, the config its lines.
    let seq = own_external_seq(&frr[0], "10.244.0.0").expect("an own external LSA");
    let running = frr[0].vtysh("show running-config");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(own_external_seq(&frr[0], "10.244.0.0"), Some(seq.clone()));
    assert_eq!(frr[0].vtysh("show running-config"), running);
    for n in &lab.nodes {
        assert_eq!(n.metric(REPAIRS), Some(0.0), "{}", n.log());
        assert!(!n.log().contains(REPAIR_LOG), "{}", n.log());
    }

    // Drift while ferryd sleeps: ospfd flushes its LSA, node 2 loses the
    // route and nothing else brings it back.
    let paused = Paused::new(&lab.nodes[0]);
    frr[0]
        .frr
        .vtysh_config(&[
            "configure terminal",
            "router ospf",
            "no redistribute static",
        ])
        .unwrap();
    wait_for(WAIT, "node 2 loses node 1's pod CIDR", || {
        (!n2_has_route(&lab)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(!n2_has_route(&lab), "came back without ferryd");
    assert_eq!(own_external_seq(&frr[0], "10.244.0.0"), None);

    // ferryd's loop runs again: its audit repairs.
    let resumed = std::time::Instant::now();
    drop(paused);
    wait_for(
        WAIT,
        &format!("node 2 learns the pod CIDR again\n{}", lab.nodes[0].log()),
        || n2_has_route(&lab).then_some(()),
    );
    println!(
        "OSPF audit: node 2 had the route again {:?} after ferryd resumed",
        resumed.elapsed()
    );
    assert!(own_external_seq(&frr[0], "10.244.0.0").is_some_and(|s| s > seq));
    let log = lab.nodes[0].log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(REPAIR_LOG)).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains(cidr), "{}", warnings[0]);
    assert_eq!(lab.nodes[0].metric(REPAIRS), Some(1.0));
    assert_eq!(lab.nodes[1].metric(REPAIRS), Some(0.0));
    // The config is as ferryd rendered it again.
    assert_eq!(frr[0].vtysh("show running-config"), running);
    for n in &mut lab.nodes {
        n.stop_ferryd();
    }
    frr.clear();
}
