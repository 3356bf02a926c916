//! OSPF between three nodes running real FRR in network namespaces.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use common::{wait_until, Lab};
use ferry_frr::{Advertise, Mode};
use ferry_testkit::{ip, ping};

const DAEMONS: &[&str] = &["zebra", "staticd", "ospfd"];
const CONVERGE: Duration = Duration::from_secs(60);

/// Every node has every other node's pod CIDR via that node (proto ospf).
fn aggregates_converged(lab: &Lab) -> bool {
    lab.nodes.iter().all(|n| {
        let routes = n.routes("ospf", false);
        lab.nodes
            .iter()
            .filter(|o| o.index != n.index)
            .all(|o| routes.get(&o.pod_cidr()) == Some(&o.ip.to_string()))
    })
}

/// The same for the IPv6 pod CIDRs, via the nodes' link-local addresses.
fn v6_converged(lab: &Lab) -> bool {
    let ll: Vec<String> = lab.nodes.iter().map(|n| n.link_local()).collect();
    lab.nodes.iter().all(|n| {
        let routes = n.routes("ospf", true);
        lab.nodes
            .iter()
            .filter(|o| o.index != n.index)
            .all(|o| routes.get(&o.pod_cidr6()) == Some(&ll[o.index]))
    })
}

#[test]
fn ospf_aggregate_routes_pods_between_nodes() {
    let mut lab = Lab::new("oa", 3, 3);
    lab.start_frr(DAEMONS);
    let pids: Vec<_> = lab.frr.iter().map(|f| f.pids()).collect();

    let start = Instant::now();
    let specs: Vec<_> = (0..3).map(|i| lab.spec(i, Mode::Ospf)).collect();
    lab.apply_all(&specs);
    let applied_at = start.elapsed();
    let took = wait_until(CONVERGE, || aggregates_converged(&lab));
    let took = took.unwrap_or_else(|| {
        panic!(
            "no convergence; n0 has {:?}\n{}",
            lab.nodes[0].routes("ospf", false),
            lab.frr[0].logs()
        )
    });
    println!(
        "OSPF aggregate: 3 parallel applies took {applied_at:?}; all routes in all kernels {took:?} later"
    );

    // Whatever the pod count: one learned route per other node.
    for n in &lab.nodes {
        let learned = n.routes("ospf", false);
        assert_eq!(learned.len(), 2, "n{}: {learned:?}", n.index);
        println!(
            "OSPF aggregate: n{} learned {} routes for 6 remote pods",
            n.index,
            learned.len()
        );
    }
    let status = lab.frr[0].frr.learned_routes().unwrap();
    let mut prefixes: Vec<String> = status
        .iter()
        .filter(|r| r.protocol == "ospf" && r.installed)
        .map(|r| r.prefix.to_string())
        .collect();
    prefixes.sort();
    assert_eq!(prefixes, ["10.244.1.0/24", "10.244.2.0/24"], "{status:?}");
    let r1 = status
        .iter()
        .find(|r| r.prefix.to_string() == "10.244.1.0/24")
        .unwrap();
    assert_eq!(r1.nexthops[0].ip, Some(lab.nodes[1].ip.into()));

    // Pod to pod across nodes; the local /32s still win over the blackhole.
    let pod = |n: usize, k: usize| (&lab.nodes[n].pods[k].0 .0, lab.nodes[n].pods[k].1);
    for (from, to) in [
        ((0, 0), (1, 2)),
        ((1, 1), (2, 0)),
        ((2, 2), (0, 1)),
        ((0, 0), (0, 2)),
    ] {
        let (src, _) = pod(from.0, from.1);
        let (_, dst) = pod(to.0, to.1);
        assert!(
            ping(src, &dst.to_string()),
            "ping {from:?} -> {to:?} ({dst})"
        );
    }
    // An unused address in a pod CIDR is dropped by its node's blackhole.
    assert!(!ping(pod(0, 0).0, "10.244.1.99"));

    // Re-applying the same config does nothing; nothing was restarted.
    for i in 0..3 {
        let t = Instant::now();
        let again = lab.apply(i, &lab.spec(i, Mode::Ospf));
        assert!(!again.changed, "n{i}: second apply changed {again:?}");
        println!(
            "OSPF aggregate: an apply without change took {:?}",
            t.elapsed()
        );
    }
    let after: Vec<_> = lab.frr.iter().map(|f| f.pids()).collect();
    assert_eq!(pids, after, "daemons restarted");
    // frr.conf holds the config (for a restart), readable by the daemons.
    let conf = lab.frr[0].frr.conf_file();
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.contains("redistribute static route-map FERRY-EXPORT-V4"),
        "{text}"
    );
    let run_dir = std::fs::metadata(&lab.frr[0].frr.run_dir).unwrap();
    let meta = std::fs::metadata(&conf).unwrap();
    assert_eq!(meta.uid(), run_dir.uid(), "frr.conf not owned by frr");
    assert_eq!(pids[0].len(), 3);
}

#[test]
fn ospf_dual_stack_with_auth_runs_ospf6_too() {
    let mut lab = Lab::new("o6", 3, 1);
    let specs: Vec<_> = (0..3)
        .map(|i| {
            let mut spec = lab.spec_dual_stack(i, Mode::Ospf);
            spec.ospf_auth_key = Some("dual-key".into());
            spec
        })
        .collect();
    lab.start_frr(&specs[0].daemons());
    let start = Instant::now();
    lab.apply_all(&specs);
    let applied_at = start.elapsed();
    let took = wait_until(CONVERGE, || {
        aggregates_converged(&lab) && v6_converged(&lab)
    });
    assert!(
        took.is_some(),
        "no convergence; n0 has {:?}\n{}",
        lab.nodes[0].routes("ospf", true),
        lab.frr[0].vtysh("show ipv6 ospf6 neighbor")
    );
    println!(
        "OSPF dual stack: 3 parallel applies took {applied_at:?}; v4 and v6 routes everywhere {:?} later",
        took.unwrap()
    );
    assert!(
        ping(&lab.nodes[0].pods[0].0 .0, &lab.nodes[2].pod_ip6(0)),
        "ping6 across nodes"
    );
    assert!(ping(
        &lab.nodes[1].pods[0].0 .0,
        &lab.nodes[0].pods[0].1.to_string()
    ));
    let status = lab.frr[1].frr.learned_routes().unwrap();
    let ospf6 = status
        .iter()
        .filter(|r| r.protocol == "ospf6" && r.installed)
        .count();
    assert_eq!(ospf6, 2, "{status:?}");
    for (i, spec) in specs.iter().enumerate() {
        assert!(
            !lab.apply(i, spec).changed,
            "n{i}: second apply changed something"
        );
    }
}

#[test]
fn ospf_pods_mode_learns_host_routes() {
    let mut lab = Lab::new("op", 3, 3);
    lab.start_frr(DAEMONS);
    for i in 0..3 {
        let mut spec = lab.spec(i, Mode::Ospf);
        spec.advertise = Advertise::Pods;
        lab.apply(i, &spec);
    }
    let host_routes_ok = |lab: &Lab| {
        lab.nodes.iter().all(|n| {
            let routes = n.routes("ospf", false);
            let want: usize = lab
                .nodes
                .iter()
                .filter(|o| o.index != n.index)
                .map(|o| o.pods.len())
                .sum();
            routes.len() == want
                && lab.nodes.iter().filter(|o| o.index != n.index).all(|o| {
                    o.pods
                        .iter()
                        .all(|(_, a)| routes.get(&format!("{a}/32")) == Some(&o.ip.to_string()))
                })
        })
    };
    let took = wait_until(CONVERGE, || host_routes_ok(&lab));
    assert!(
        took.is_some(),
        "no convergence; n0 has {:?}",
        lab.nodes[0].routes("ospf", false)
    );
    for n in &lab.nodes {
        let learned = n.routes("ospf", false);
        assert!(
            learned.keys().all(|p| p.ends_with("/32")),
            "aggregate advertised: {learned:?}"
        );
        println!(
            "OSPF pods mode: n{} learned {} routes for 6 remote pods",
            n.index,
            learned.len()
        );
    }
    let (src, dst) = (lab.nodes[2].pods[0].0 .0.clone(), lab.nodes[0].pods[1].1);
    assert!(ping(&src, &dst.to_string()));

    // A new pod on n0 reaches the other nodes without any apply.
    let (new, start) = lab.nodes[0].add_pod_timed();
    let prefix = format!("{new}/32");
    let seen = wait_until(Duration::from_secs(10), || {
        lab.nodes[1..]
            .iter()
            .all(|n| n.routes("ospf", false).contains_key(&prefix))
    });
    assert!(seen.is_some(), "{prefix} not propagated");
    println!(
        "OSPF pods mode: new pod /32 on both other nodes {:?} after its host route",
        start.elapsed()
    );
    assert!(ping(&src, &new.to_string()));

    // Its host route gone (pod deleted): withdrawn everywhere.
    ip(
        Some(lab.nodes[0].name()),
        &["route", "del", &prefix, "proto", "200"],
    );
    let gone = wait_until(Duration::from_secs(10), || {
        lab.nodes[1..]
            .iter()
            .all(|n| !n.routes("ospf", false).contains_key(&prefix))
    });
    assert!(gone.is_some(), "{prefix} not withdrawn");
    println!(
        "OSPF pods mode: deleted pod /32 withdrawn after {:?}",
        gone.unwrap()
    );
}

#[test]
fn ospf_md5_key_must_match() {
    let mut lab = Lab::new("om", 3, 1);
    // Dual stack: OSPFv2 MD5 and the OSPFv3 authentication trailer.
    let spec = |lab: &Lab, i: usize, key: &str| {
        let mut spec = lab.spec(i, Mode::Ospf);
        spec.pod_cidrs
            .push(lab.nodes[i].pod_cidr6().parse().unwrap());
        spec.ospf_auth_key = Some(key.to_string());
        spec
    };
    lab.start_frr(&spec(&lab, 0, "x").daemons());
    let keys = ["ferry-key-1", "ferry-key-1", "wrong-key"];
    for (i, key) in keys.iter().enumerate() {
        let spec = spec(&lab, i, key);
        let applied = lab.apply(i, &spec);
        let shown = format!("{applied:?}");
        assert!(!shown.contains(key), "secret in Applied: {shown}");
    }
    let (n0, n1, n2) = (&lab.nodes[0], &lab.nodes[1], &lab.nodes[2]);
    let pair = wait_until(CONVERGE, || {
        n0.routes("ospf", false).contains_key(&n1.pod_cidr())
            && n1.routes("ospf", false).contains_key(&n0.pod_cidr())
            && n0.routes("ospf", true).contains_key(&n1.pod_cidr6())
            && n1.routes("ospf", true).contains_key(&n0.pod_cidr6())
    });
    assert!(
        pair.is_some(),
        "same key, no adjacency:\n{}",
        lab.frr[0].logs()
    );
    // Two hello intervals (2 s) later, n2 is still alone.
    std::thread::sleep(Duration::from_secs(4));
    // Neighbors in state Full, per `show ip ospf neighbor json`.
    let full = |i: usize| {
        let json: serde_json::Value =
            serde_json::from_str(&lab.frr[i].vtysh("show ip ospf neighbor json")).unwrap();
        let mut full: Vec<String> = Vec::new();
        for (id, entries) in json["neighbors"].as_object().unwrap() {
            for e in entries.as_array().unwrap() {
                if e["converged"] == "Full" {
                    full.push(id.clone());
                }
            }
        }
        full
    };
    assert_eq!(
        full(2),
        Vec::<String>::new(),
        "n2 formed an adjacency with a wrong key"
    );
    assert_eq!(
        full(0),
        [n1.ip.to_string()],
        "n0 should be Full with n1 only"
    );
    assert!(!n0.routes("ospf", false).contains_key(&n2.pod_cidr()));
    assert!(n2.routes("ospf", false).is_empty());
    // The OSPFv3 dead interval is 4 s: let that pass too.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!n0.routes("ospf", true).contains_key(&n2.pod_cidr6()));
    let n2v6 = n2.routes("ospf", true);
    assert!(n2v6.is_empty(), "n2 learned {n2v6:?} with a wrong key");
    let running = lab.frr[0].frr.running_config().unwrap();
    assert!(running.contains("ip ospf message-digest-key 1 md5 ferry-key-1"));

    // The right key on n2 (a reload, no restart) brings it in.
    let applied = lab.apply(2, &spec(&lab, 2, keys[0]));
    assert!(applied.changed);
    let joined = wait_until(CONVERGE, || {
        aggregates_converged(&lab) && v6_converged(&lab)
    });
    assert!(joined.is_some(), "n2 did not join with the right key");
    println!(
        "OSPF MD5: n2 joined {:?} after its key was fixed",
        joined.unwrap()
    );
}

#[test]
fn apply_errors_carry_command_and_output_without_secrets() {
    let mut lab = Lab::new("oe", 1, 0);
    lab.start_frr(DAEMONS);
    let frr = &lab.frr[0].frr;
    let bad = "hostname n0\ninterface eth0\n ip ospf message-digest-key 1 md5 Sekr1t\n bogus-command 42\nexit\n";
    let err = frr.apply(bad).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.contains("frr-reload.py"), "{msg}");
    assert!(msg.contains("bogus-command"), "{msg}");
    assert!(!msg.contains("Sekr1t"), "{msg}");
    assert!(!format!("{err:?}").contains("Sekr1t"));
    // Nothing was changed by the failed apply.
    assert!(!frr.running_config().unwrap().contains("Sekr1t"));

    // A config for a daemon that is not running (ospf6d here): vtysh may
    // drop those lines without failing; apply notices.
    let mut spec = lab.spec(0, Mode::Ospf);
    spec.pod_cidrs
        .push(lab.nodes[0].pod_cidr6().parse().unwrap());
    let err = frr.apply(&ferry_frr::render(&spec)).unwrap_err();
    println!("without ospf6d: {err}");
    assert!(err.to_string().contains("ospf6"), "{err}");
    // The IPv4 part is in.
    assert!(frr.running_config().unwrap().contains("router ospf\n"));

    // No FRR at all.
    let none = ferry_frr::Frr::for_pathspace("ferry-no-such-pathspace");
    let err = none.running_config().unwrap_err();
    println!("{err}");
    assert!(
        matches!(err, ferry_frr::FrrError::Command { .. }),
        "{err:?}"
    );
}
