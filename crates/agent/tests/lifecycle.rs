//! The agent's life: the conflist only after readiness, a restart that
//! changes nothing, an API outage that changes nothing (and is not logged
//! once per retry), and an uninstall that leaves nothing, ferry's Node
//! condition included.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use common::{node_object, wait_for, Lab};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn conflist_appears_only_once_the_node_is_ready() {
    // Node 2 has no podCIDR yet (the controller manager has not got to it).
    let mut lab = Lab::new("lc", 2, &[1]);
    lab.start_all();
    lab.nodes[0].wait_ready();
    let n = &lab.nodes[1];
    wait_for(WAIT, "ferryd says it waits", || {
        n.log().contains("has no podCIDR yet").then_some(())
    });
    // Checked while it waits: not ready, nothing written, not marked.
    assert_eq!(n.http_get("/readyz").map(|(c, _)| c), Some(503));
    assert!(!n.conflist().exists());
    assert_eq!(n.nft_table(), None);
    assert!(n.owned_routes().is_empty());
    assert_eq!(lab.network_condition("k8s-2"), None);

    lab.store()
        .modify_node(
            "k8s-2",
            &json!({"spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}}),
        )
        .unwrap();
    n.wait_ready();
    let conf = std::fs::read_to_string(n.conflist()).unwrap();
    assert!(conf.contains("\"subnet\": \"10.244.1.0/24\""), "{conf}");
    assert!(conf.contains(&n.ipam_dir().display().to_string()), "{conf}");
    assert!(
        conf.contains("\"cniVersion\": \"1.0.0\""),
        "--cni-version: {conf}"
    );
    // Routes and NAT were there before the conflist.
    assert!(n.nft_table().is_some());
    assert_eq!(
        n.owned_routes(),
        BTreeSet::from(["10.244.0.0/24 via 172.16.97.75 dev eth0".to_string()])
    );
    wait_for(WAIT, "marked available", || {
        (lab.network_condition("k8s-2") == Some(("False".into(), "FerryIsUp".into()))).then_some(())
    });
    let log = n.log();
    let nat_at = log.find("masquerade table set").unwrap();
    let routes_at = log.find("route set").unwrap();
    let ready_at = log.find("node configured; ready").unwrap();
    assert!(nat_at < ready_at && routes_at < ready_at, "{log}");
}

#[test]
fn restart_changes_nothing() {
    let mut lab = Lab::new("rs", 3, &[]);
    lab.start_all();
    lab.wait_all_ready();
    let kc = lab.kubeconfig.clone();
    let n = &mut lab.nodes[0];
    wait_for(WAIT, "two routes", || {
        (n.owned_routes().len() == 2).then_some(())
    });
    let routes = n.all_routes();
    let table = n.nft_table().unwrap();
    let conf_ino = std::fs::metadata(n.conflist()).unwrap().ino();
    let bin_ino = std::fs::metadata(n.bin_dir().join("ferry")).unwrap().ino();

    n.stop_ferryd();
    // Stopping leaves the node configured.
    assert_eq!(n.all_routes(), routes);
    assert!(n.conflist().exists());
    n.start_ferryd(&kc);
    n.wait_ready();
    // Let a full resync pass as well.
    std::thread::sleep(Duration::from_secs(4));

    assert_eq!(n.all_routes(), routes, "route dump identical");
    assert_eq!(
        n.nft_table().unwrap(),
        table,
        "nft table identical (handles too)"
    );
    assert_eq!(
        std::fs::metadata(n.conflist()).unwrap().ino(),
        conf_ino,
        "conflist not rewritten"
    );
    assert_eq!(
        std::fs::metadata(n.bin_dir().join("ferry")).unwrap().ino(),
        bin_ino,
        "plugin not rewritten"
    );
    let second_start = n.log().rsplit("ferryd started").next().unwrap().to_string();
    assert!(!second_start.contains("route set"), "{second_start}");
    assert!(
        !second_start.contains("masquerade table set"),
        "{second_start}"
    );
}

#[test]
fn an_api_outage_keeps_the_node_as_it_is() {
    let mut lab = Lab::new("ou", 3, &[]);
    lab.start_all();
    lab.wait_all_ready();
    wait_for(WAIT, "routes", || {
        lab.nodes
            .iter()
            .all(|n| n.owned_routes().len() == 2)
            .then_some(())
    });
    let before: Vec<String> = lab.nodes.iter().map(|n| n.all_routes()).collect();
    let tables: Vec<String> = lab.nodes.iter().map(|n| n.nft_table().unwrap()).collect();

    let logged_before: Vec<usize> = lab.nodes.iter().map(|n| n.log().len()).collect();
    lab.api_stop();
    let start = Instant::now();
    let mut saw_disconnect = false;
    while start.elapsed() < Duration::from_secs(30) {
        for (i, n) in lab.nodes.iter().enumerate() {
            assert_eq!(
                n.all_routes(),
                before[i],
                "{} changed during the outage",
                n.name
            );
            assert!(n.conflist().exists());
        }
        saw_disconnect |= lab.nodes[0].metric("ferry_api_connected") == Some(0.0);
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        saw_disconnect,
        "ferry_api_connected never dropped:\n{}",
        lab.logs()
    );
    for (i, n) in lab.nodes.iter().enumerate() {
        assert_eq!(n.nft_table().unwrap(), tables[i]);
        assert!(n.ready(), "still ready");
        // Said, and not once per retry: kube's own errors (one per
        // failed request, a dozen in 15 s) are rate-limited like ferryd's.
        let during = n.log()[logged_before[i]..].to_string();
        let errors = during.lines().filter(|l| l.contains("ERROR")).count();
        assert!(
            errors <= 1,
            "{}: {errors} ERROR lines in 30 s:\n{during}",
            n.name
        );
        let said = during.matches("Node watch failed").count();
        assert!(
            (1..=2).contains(&said),
            "{}: the outage said once:\n{during}",
            n.name
        );
    }

    lab.api_restart();
    wait_for(WAIT, "reconnected", || {
        (lab.nodes[0].metric("ferry_api_connected") == Some(1.0)).then_some(())
    });
    // A change after the outage is picked up.
    lab.store()
        .add_node(node_object("k8s-9", &["172.16.97.90"], &["10.244.8.0/24"]))
        .unwrap();
    for n in &lab.nodes {
        wait_for(
            WAIT,
            &format!("{} routes k8s-9\n{}", n.name, lab.logs()),
            || {
                n.owned_routes()
                    .contains("10.244.8.0/24 via 172.16.97.90 dev eth0")
                    .then_some(())
            },
        );
    }
}

#[test]
fn uninstall_leaves_nothing() {
    let mut lab = Lab::new("un", 2, &[]);
    lab.start_all();
    lab.wait_all_ready();
    let kc = lab.kubeconfig.clone();
    let n = &mut lab.nodes[0];
    wait_for(WAIT, "route", || {
        (n.owned_routes().len() == 1).then_some(())
    });
    let foreign_before = n
        .all_routes()
        .lines()
        .filter(|l| !l.contains("proto 201"))
        .count();
    // The fast path runs on the node's interface, and /metrics says so.
    assert!(
        n.eth0_filters().contains("ferry_fast"),
        "{}",
        n.eth0_filters()
    );
    let (_, metrics) = n.http_get("/metrics").expect("metrics");
    assert!(metrics.contains("ferry_fast_path_enabled 1"), "{metrics}");
    assert!(
        metrics.contains("ferry_fast_path_packets_total{result=\"forwarded\"}"),
        "{metrics}"
    );
    n.stop_ferryd();
    let name = n.name.clone();
    wait_for(WAIT, "marked available", || {
        (lab.network_condition(&name) == Some(("False".into(), "FerryIsUp".into()))).then_some(())
    });
    // ferry's annotation (as `--encryption wireguard` publishes it) and
    // another's.
    let annotations = serde_json::json!({"metadata": {"annotations": {
        "ferry.dev/wireguard-public-key": "bm90IGEga2V5IGJ1dCBhIHN0YW5kLWluICAgICAgICA=",
        "example.com/owner": "someone else",
    }}});
    lab.store().modify_node(&name, &annotations).unwrap();
    let n = &mut lab.nodes[0];

    let (ok, out, err) = n.ferryd_cmd(&kc, "uninstall");
    assert!(ok, "uninstall: {err}");
    assert!(out.contains("removed"), "{out}");
    assert!(out.contains("condition: true"), "{out}");
    assert!(out.contains("annotation: true"), "{out}");
    assert_eq!(
        lab.network_condition(&name),
        None,
        "ferry's condition removed"
    );
    let left = lab
        .store()
        .get(&name)
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default();
    assert!(
        !left.contains_key("ferry.dev/wireguard-public-key"),
        "{left:?}"
    );
    assert_eq!(
        left.get("example.com/owner").map(String::as_str),
        Some("someone else")
    );
    let n = &mut lab.nodes[0];
    assert!(!n.conflist().exists());
    assert!(!n.bin_dir().join("ferry").exists());
    assert!(!n.bin_dir().join("ferry-ipam").exists());
    assert_eq!(n.nft_table(), None);
    assert!(n.owned_routes().is_empty());
    assert!(
        !n.eth0_filters().contains("ferry_fast"),
        "filter left: {}",
        n.eth0_filters()
    );
    assert_eq!(
        n.all_routes().lines().count(),
        foreign_before,
        "only ferry's routes went"
    );

    // Idempotent.
    let (ok, out, err) = n.ferryd_cmd(&kc, "uninstall");
    assert!(ok, "second uninstall: {err}");
    assert!(out.contains("nothing to remove"), "{out}");
}

#[test]
fn turning_the_fast_path_off_removes_it() {
    let mut lab = Lab::new("fo", 2, &[]);
    lab.start_all();
    lab.wait_all_ready();
    let kc = lab.kubeconfig.clone();
    let n = &mut lab.nodes[0];
    assert!(
        n.eth0_filters().contains("ferry_fast"),
        "{}",
        n.eth0_filters()
    );
    n.stop_ferryd();
    n.flags.push("--fast-path=false".into());
    n.start_ferryd(&kc);
    n.wait_ready();
    assert!(
        !n.eth0_filters().contains("ferry_fast"),
        "still attached: {}",
        n.eth0_filters()
    );
    let conflist = std::fs::read_to_string(n.conflist()).unwrap();
    assert!(!conflist.contains("fastPath"), "{conflist}");
    assert!(n.log().contains("fast path turned off"), "{}", n.log());
}
