//! Each `ferry-lab scenario` as a test, on its own lab, in the routing
//! mode where it says the most. `scenario::run` fails on any broken
//! expectation and ends with the full check.

mod common;

use std::sync::RwLock;

use ferry_lab::{api, routes, scenario, Routing, Scenario};

/// ospfd keeps its graceful-restart state in one file for every FRR on
/// the host (`/var/run/frr/ospfd-gr.json`, outside any pathspace): while
/// frr-restart has announced a restart, an ospfd starting in another
/// test's lab would read it as its own restart and hold back its routes
/// for the grace period. So frr-restart in ospf mode runs alone among the
/// ospf tests (the others share the lock).
static OSPF_GR: RwLock<()> = RwLock::new(());

fn run(tag: &str, routing: Routing, s: Scenario) -> (ferry_lab::DownGuard, ferry_lab::Lab) {
    let (_shared, _alone) = match (routing, s) {
        (Routing::Ospf, Scenario::FrrRestart) => (
            None,
            Some(OSPF_GR.write().unwrap_or_else(|e| e.into_inner())),
        ),
        (Routing::Ospf, _) => (
            Some(OSPF_GR.read().unwrap_or_else(|e| e.into_inner())),
            None,
        ),
        _ => (None, None),
    };
    let (guard, mut lab) = common::up(tag, common::opts(routing));
    let out = scenario::run(&mut lab, s).unwrap_or_else(|e| panic!("{e}"));
    for l in &out.lines {
        eprintln!("{l}");
    }
    assert!(!out.skipped);
    assert!(
        out.lines.last().unwrap().contains("probes ok"),
        "{:?}",
        out.lines
    );
    (guard, lab)
}

#[test]
fn node_join_bgp() {
    let (_g, lab) = run("sjb", Routing::Bgp, Scenario::NodeJoin);
    assert_eq!(lab.state.nodes.len(), 4);
    let names = api::list_names(&lab.cfg).unwrap();
    assert!(names.contains(&"k8s-worker-3".to_string()), "{names:?}");
    let t = routes::table(&lab.plans()[0].netns).unwrap();
    assert!(
        t.iter()
            .any(|r| r.label() == "B 10.244.3.0/24 via 172.16.97.78"),
        "{t:?}"
    );
}

#[test]
fn node_leave_ospf() {
    let (_g, lab) = run("slo", Routing::Ospf, Scenario::NodeLeave);
    assert_eq!(lab.state.nodes.len(), 2);
    assert!(!api::list_names(&lab.cfg)
        .unwrap()
        .contains(&"k8s-worker-2".to_string()));
    for n in lab.plans() {
        let t = routes::table(&n.netns).unwrap();
        assert!(
            !t.iter().any(|r| r.dst == "10.244.2.0/24"),
            "{}: {t:?}",
            n.name
        );
    }
}

#[test]
fn pod_churn_ospf_aggregate() {
    let (_g, lab) = run("spc", Routing::Ospf, Scenario::PodChurn);
    // Same pod name and address, new sandbox.
    let p = lab.state.pod("pod-3").expect("pod-3 re-created");
    assert_eq!(p.ips, ["10.244.2.2"]);
}

#[test]
fn agent_restart_direct() {
    let (_g, lab) = run("sar", Routing::Direct, Scenario::AgentRestart);
    let n = lab.state.node("k8s-worker-1").unwrap();
    assert!(n.ferryd.is_some_and(|p| p.alive()), "ferryd running again");
}

#[test]
fn frr_restart_bgp_and_not_in_direct_mode() {
    let (_g, lab) = run("sfb", Routing::Bgp, Scenario::FrrRestart);
    assert!(!ferry_lab::frr::pids(&lab.plans()[1].netns).is_empty());
    assert!(!Scenario::FrrRestart.applies(Routing::Direct));
}

/// OSPF graceful restart: the other nodes keep the node's routes while
/// its FRR is down (the scenario fails on a withdrawn route or a ping).
#[test]
fn frr_restart_ospf() {
    let (_g, lab) = run("sfo", Routing::Ospf, Scenario::FrrRestart);
    assert!(!ferry_lab::frr::pids(&lab.plans()[1].netns).is_empty());
}

#[test]
fn api_outage_direct() {
    let (_g, lab) = run("sao", Routing::Direct, Scenario::ApiOutage);
    assert!(lab.state.apiserver.is_some_and(|p| p.alive()));
    // The pod made during the outage is there.
    assert_eq!(lab.state.pods.len(), 4);
}
