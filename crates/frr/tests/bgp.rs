//! iBGP full mesh between nodes running real FRR in network namespaces.

mod common;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{wait_until, Lab};
use ferry_frr::{Advertise, FrrSpec, Mode};
use ferry_testkit::ping;

const DAEMONS: &[&str] = &["zebra", "staticd", "bgpd"];
const CONVERGE: Duration = Duration::from_secs(60);

fn spec(lab: &Lab, i: usize, mesh: usize, password: Option<&str>, dual: bool) -> FrrSpec {
    let mut spec = lab.spec(i, Mode::Bgp);
    // All nodes of the mesh, this one included (render skips it).
    spec.peers = lab.nodes[..mesh]
        .iter()
        .map(|n| IpAddr::from(n.ip))
        .collect();
    spec.bgp_password = password.map(str::to_string);
    if dual {
        spec.pod_cidrs
            .push(lab.nodes[i].pod_cidr6().parse().unwrap());
    }
    spec
}

/// Nodes `0..mesh` each have the pod CIDRs of the others via them (IPv6:
/// via their link-local address, which bgpd prefers on a shared link).
fn converged(lab: &Lab, mesh: usize, dual: bool) -> bool {
    let nodes = &lab.nodes[..mesh];
    let ll: Vec<String> = if dual {
        nodes.iter().map(|n| n.link_local()).collect()
    } else {
        Vec::new()
    };
    nodes.iter().all(|n| {
        let v4 = n.routes("bgp", false);
        let v6 = if dual {
            n.routes("bgp", true)
        } else {
            Default::default()
        };
        nodes.iter().filter(|o| o.index != n.index).all(|o| {
            v4.get(&o.pod_cidr()) == Some(&o.ip.to_string())
                && (!dual || v6.get(&o.pod_cidr6()) == Some(&ll[o.index]))
        })
    })
}

/// Three nodes mesh; then a fourth joins by a re-apply (a reload) on all,
/// while a watcher checks that n0 never loses a learned route.
fn mesh_and_grow(tag: &str, password: Option<&str>, dual: bool) {
    let mut lab = Lab::new(tag, 4, 1);
    lab.start_frr(DAEMONS);

    let start = Instant::now();
    let specs: Vec<_> = (0..3).map(|i| spec(&lab, i, 3, password, dual)).collect();
    lab.apply_all(&specs);
    let applied_at = start.elapsed();
    let took = wait_until(CONVERGE, || converged(&lab, 3, dual)).unwrap_or_else(|| {
        panic!(
            "no convergence; {:?}\n{}",
            lab.nodes[..3]
                .iter()
                .map(|n| (
                    n.link_local(),
                    n.routes("bgp", false),
                    n.routes("bgp", true)
                ))
                .collect::<Vec<_>>(),
            lab.frr[0].vtysh("show bgp summary")
        )
    });
    println!(
        "BGP ({tag}): 3 parallel applies took {applied_at:?}; all routes in all kernels {took:?} later"
    );
    assert_eq!(lab.nodes[0].routes("bgp", false).len(), 2);
    let (src, dst) = (&lab.nodes[0].pods[0].0 .0, lab.nodes[2].pods[0].1);
    assert!(ping(src, &dst.to_string()), "pod ping over BGP routes");
    if dual {
        assert!(
            ping(src, &lab.nodes[1].pod_ip6(0)),
            "pod ping6 over BGP routes"
        );
    }
    if let Some(pw) = password {
        let running = lab.frr[0].frr.running_config().unwrap();
        assert!(running.contains(&format!("neighbor ferry password {pw}")));
    }
    let status = lab.frr[1].frr.learned_routes().unwrap();
    let n = if dual { 4 } else { 2 };
    assert_eq!(
        status
            .iter()
            .filter(|r| r.protocol == "bgp" && r.installed)
            .count(),
        n,
        "{status:?}"
    );

    // Watch n0's learned routes through the reload.
    let pids: Vec<_> = lab.frr.iter().map(|f| f.pids()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let node = lab.nodes[0].name().to_string();
        let want = [lab.nodes[1].pod_cidr(), lab.nodes[2].pod_cidr()];
        thread::spawn(move || {
            let (mut samples, mut missing) = (0, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let text = ferry_testkit::ip(Some(&node), &["-4", "route", "show", "proto", "bgp"]);
                samples += 1;
                for w in &want {
                    if !text.lines().any(|l| l.starts_with(w.as_str())) {
                        missing.push(format!("{w} at sample {samples}"));
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
            (samples, missing)
        })
    };
    let grow = Instant::now();
    for i in 0..4 {
        let applied = lab.apply(i, &spec(&lab, i, 4, password, dual));
        assert!(applied.changed);
        if i < 3 {
            let want = format!(" neighbor {} peer-group ferry", lab.nodes[3].ip);
            assert!(
                applied.added.iter().any(|l| l.contains(want.trim())),
                "n{i} added {:?}",
                applied.added
            );
            assert!(
                applied.removed.is_empty(),
                "n{i} removed {:?}",
                applied.removed
            );
        }
    }
    let reapplied = grow.elapsed();
    let took = wait_until(CONVERGE, || converged(&lab, 4, dual));
    assert!(
        took.is_some(),
        "n3 did not join: {}",
        lab.frr[3].vtysh("show bgp summary")
    );
    println!(
        "BGP ({tag}): 4 re-applies (one by one) took {reapplied:?}; the 4th node's routes everywhere {:?} later",
        took.unwrap()
    );
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let (samples, missing) = watcher.join().unwrap();
    assert!(samples > 10, "watcher sampled {samples} times");
    assert!(
        missing.is_empty(),
        "routes disappeared during the reload: {missing:?}"
    );
    println!("BGP ({tag}): n0 kept both routes through the reload ({samples} samples)");
    for (i, f) in lab.frr.iter().enumerate().take(3) {
        assert_eq!(f.pids(), pids[i], "n{i} daemons restarted");
    }
    for i in 0..4 {
        let again = lab.apply(i, &spec(&lab, i, 4, password, dual));
        assert!(!again.changed, "n{i}: second apply changed {again:?}");
    }
    let (src, dst) = (&lab.nodes[3].pods[0].0 .0, lab.nodes[1].pods[0].1);
    assert!(ping(src, &dst.to_string()), "pod ping from the new node");
}

#[test]
fn bgp_full_mesh_v4() {
    mesh_and_grow("bm", None, false);
}

#[test]
fn bgp_full_mesh_dual_stack_with_password() {
    mesh_and_grow("bp", Some("bgp-Secret.1"), true);
}

#[test]
fn bgp_pods_mode_propagates_a_new_pod() {
    let mut lab = Lab::new("bq", 3, 2);
    lab.start_frr(DAEMONS);
    for i in 0..3 {
        let mut spec = spec(&lab, i, 3, None, false);
        spec.advertise = Advertise::Pods;
        lab.apply(i, &spec);
    }
    let all = wait_until(CONVERGE, || {
        lab.nodes.iter().all(|n| n.routes("bgp", false).len() == 4)
    });
    assert!(
        all.is_some(),
        "n0 has {:?}",
        lab.nodes[0].routes("bgp", false)
    );
    assert!(lab.nodes[0]
        .routes("bgp", false)
        .keys()
        .all(|p| p.ends_with("/32")));
    let (new, start) = lab.nodes[0].add_pod_timed();
    let prefix = format!("{new}/32");
    let seen = wait_until(Duration::from_secs(10), || {
        lab.nodes[1..]
            .iter()
            .all(|n| n.routes("bgp", false).get(&prefix) == Some(&lab.nodes[0].ip.to_string()))
    });
    assert!(seen.is_some(), "{prefix} not propagated");
    println!(
        "BGP pods mode: new pod /32 on both other nodes {:?} after its host route",
        start.elapsed()
    );
    assert!(ping(&lab.nodes[2].pods[1].0 .0, &new.to_string()));
}
