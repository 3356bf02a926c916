//! `up`, `check`, `down` end to end: real ferryd, API server, FRR and
//! plugins in network namespaces.

mod common;

use ferry_lab::{api, check, down, routes, Advertise, Lab, LabError, Routing, UpOptions};

/// Every node has exactly one learnt route per other node's podCIDR, via
/// that node (aggregate), and the API shows ferryd made the node's
/// network available.
fn assert_aggregate_routes(lab: &Lab) {
    let plans = lab.plans();
    for n in &plans {
        let table = routes::table(&n.netns).unwrap();
        let learnt: Vec<&routes::Route> = table.iter().filter(|r| r.learnt()).collect();
        let want: usize = plans
            .iter()
            .filter(|o| o.name != n.name)
            .map(|o| o.cidrs.len())
            .sum();
        assert_eq!(learnt.len(), want, "{}: {learnt:?}", n.name);
        for o in plans.iter().filter(|o| o.name != n.name) {
            for cidr in &o.cidrs {
                let r = learnt
                    .iter()
                    .find(|r| &r.dst == cidr)
                    .unwrap_or_else(|| panic!("{} has no route to {cidr}: {learnt:?}", n.name));
                let gw = r.gateway.clone().unwrap_or_default();
                assert!(
                    gw == o.ip || Some(&gw) == o.ip6.as_ref() || gw.starts_with("fe80:"),
                    "{}: {cidr} via {gw}, not {}",
                    n.name,
                    o.name
                );
            }
        }
    }
}

fn assert_network_available(lab: &Lab) {
    for n in lab.plans() {
        let node = api::get_node(&lab.cfg, &n.name).unwrap();
        let cond = node["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "NetworkUnavailable")
            .cloned()
            .unwrap_or_else(|| panic!("{}: no NetworkUnavailable condition", n.name));
        assert_eq!(cond["status"], "False", "{}: {cond}", n.name);
    }
}

#[test]
fn direct_up_check_down_leaves_nothing() {
    let (guard, lab) = common::up("ldir", common::opts(Routing::Direct));
    let report = lab.check().unwrap_or_else(|e| panic!("{e}"));
    // 3 pods: 6 pod→pod, 9 pod→node, 9 node→pod, 3 pod→internet, 6 pod→pod
    // over TCP, and on each of the 3 nodes the fast path forwarded some.
    assert_eq!(report.probes.len(), 36, "{}", report.summary());
    assert_aggregate_routes(&lab);
    assert_network_available(&lab);
    let table = lab.table();
    for want in [
        "k8s-master (control plane)",
        "PodCIDR 10.244.2.0/24",
        "K 10.244.1.0/24 via 172.16.97.76",
    ] {
        assert!(table.contains(want), "{want} missing:\n{table}");
    }
    // A second `up` with the same prefix is refused, and harms nothing.
    let again = Lab::up(lab.cfg.clone(), &common::opts(Routing::Direct));
    assert!(
        matches!(again, Err(LabError::AlreadyUp { .. })),
        "{again:?}"
    );
    lab.check().unwrap();

    let cfg = lab.cfg.clone();
    let removed = down::down(&cfg).unwrap();
    // switch, router, internet, 3 nodes, 3 pods.
    assert_eq!(removed.netns, 9, "{removed:?}");
    assert!(removed.processes >= 4, "API server + 3 ferryd: {removed:?}");
    assert_eq!(down::leftovers(&cfg), Vec::<String>::new());
    assert!(down::down(&cfg).unwrap().nothing(), "idempotent");
    drop(guard);
}

#[test]
fn ospf_dual_stack_masquerades_both_families() {
    let (_guard, lab) = common::up(
        "lds",
        UpOptions {
            routing: Routing::Ospf,
            dual_stack: true,
            pods_per_node: 2,
            ..UpOptions::default()
        },
    );
    assert!(
        lab.state.pods.iter().all(|p| p.ips.len() == 2),
        "{:?}",
        lab.state.pods
    );
    let report = lab.check().unwrap_or_else(|e| panic!("{e}"));
    let internet: Vec<&check::Probe> = report
        .probes
        .iter()
        .filter(|p| p.kind == check::Kind::PodToInternet)
        .collect();
    assert_eq!(internet.len(), 12, "6 pods × 2 families");
    assert!(
        internet.iter().any(|p| p.what.contains("seen as fd97::")),
        "{internet:?}"
    );
    assert_aggregate_routes(&lab);
}

#[test]
fn bgp_per_pod_advertisement_learns_a_route_per_remote_pod() {
    let (_guard, lab) = common::up(
        "lbp",
        UpOptions {
            routing: Routing::Bgp,
            advertise: Advertise::Pods,
            ..UpOptions::default()
        },
    );
    lab.check().unwrap_or_else(|e| panic!("{e}"));
    for n in lab.plans() {
        let learnt: Vec<String> = routes::table(&n.netns)
            .unwrap()
            .iter()
            .filter(|r| r.learnt())
            .map(|r| r.label())
            .collect();
        let mut want: Vec<String> = lab
            .state
            .pods
            .iter()
            .filter(|p| p.node != n.name)
            .map(|p| {
                let owner = lab.state.node(&p.node).unwrap();
                format!("B {} via {}", p.ips[0], owner.plan.ip)
            })
            .collect();
        let mut got = learnt.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{}", n.name);
    }
}

#[test]
fn down_after_a_crash_finds_everything_by_prefix() {
    let (_guard, lab) = common::up("lcr", common::opts(Routing::Ospf));
    let cfg = lab.cfg.clone();
    // As if `up` had been killed before writing its state: only the
    // prefix is left to go by.
    std::fs::remove_file(cfg.state_file()).unwrap();
    let left = down::leftovers(&cfg);
    for want in ["netns ", "/etc/frr/", "/var/run/frr/", "process "] {
        assert!(left.iter().any(|l| l.contains(want)), "{want}: {left:?}");
    }
    let pids: Vec<i32> = lab
        .state
        .nodes
        .iter()
        .filter_map(|n| n.ferryd.map(|p| p.pid))
        .collect();
    down::down(&cfg).unwrap();
    assert_eq!(down::leftovers(&cfg), Vec::<String>::new());
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
                let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                s.contains(") Z")
            },
            "ferryd {pid} survived"
        );
    }
    assert!(matches!(Lab::load(cfg), Err(LabError::NotUp { .. })));
}

#[test]
fn without_the_fast_path_everything_takes_the_stack_and_still_works() {
    let (_guard, lab) = common::up(
        "lnf",
        UpOptions {
            routing: Routing::Direct,
            fast_path: false,
            ..UpOptions::default()
        },
    );
    let report = lab.check().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report
            .probes
            .iter()
            .all(|p| p.kind != check::Kind::FastPath),
        "{}",
        report.summary()
    );
    assert_eq!(
        report
            .probes
            .iter()
            .filter(|p| p.kind == check::Kind::PodToPodTcp)
            .count(),
        6
    );
    for n in lab.plans() {
        let filters = ferry_testkit::ingress_filters(&n.netns, "eth0");
        assert!(!filters.contains("ferry_fast"), "{}: {filters}", n.name);
        assert!(!lab.cfg.node_bpf_dir(&n.name).exists(), "{} pinned", n.name);
    }
}
