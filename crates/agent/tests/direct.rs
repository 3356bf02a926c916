//! `--routing direct` in a 3-node lab against the test API server: routes
//! appear and follow node add / IP change / delete, stale routes go,
//! foreign routes stay, unreachable nodes are not half-routed, the Node is
//! marked available, and `status` tells it all.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{node_object, wait_for, Lab};
use ferry_testkit::ip;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn route(cidr: &str, via: &str) -> String {
    // `ip route show proto 201` leaves the filtered-on protocol out.
    format!("{cidr} via {via} dev eth0")
}

fn expect_routes(lab: &Lab, node: usize, want: &[String]) {
    let want: BTreeSet<String> = want.iter().cloned().collect();
    let n = &lab.nodes[node];
    wait_for(
        WAIT,
        &format!("routes on {}: want {want:?}\n{}", n.name, lab.logs()),
        || {
            let got = n.owned_routes();
            (got == want).then_some(())
        },
    );
}

/// `bridge fdb show dev ferry.vxlan` in `netns` (empty without the device).
fn vxlan_fdb(netns: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", netns, "bridge", "fdb", "show"])
        .args(["dev", "ferry.vxlan"])
        .output()
        .expect("run bridge");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn direct_routes_follow_the_cluster() {
    let mut lab = Lab::new("dr", 3, &[]);
    lab.start_all();
    lab.wait_all_ready();

    let r1 = route("10.244.0.0/24", "172.16.97.75");
    let r2 = route("10.244.1.0/24", "172.16.97.76");
    let r3 = route("10.244.2.0/24", "172.16.97.77");
    expect_routes(&lab, 0, &[r2.clone(), r3.clone()]);
    expect_routes(&lab, 1, &[r1.clone(), r3.clone()]);
    expect_routes(&lab, 2, &[r1.clone(), r2.clone()]);

    // Marked available, the other conditions untouched.
    for n in &lab.nodes {
        let cond = wait_for(WAIT, "NetworkUnavailable patched", || {
            lab.network_condition(&n.name)
        });
        assert_eq!(cond, ("False".to_string(), "FerryIsUp".to_string()));
        let node = lab.store().get(&n.name).unwrap();
        let types: Vec<String> = node
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .map(|c| c.type_)
            .collect();
        assert!(types.contains(&"Ready".to_string()), "{types:?}");
    }

    // A node joins (no netns behind it: routes are all we look at).
    lab.store()
        .add_node(node_object("k8s-4", &["172.16.97.78"], &["10.244.3.0/24"]))
        .unwrap();
    let r4 = route("10.244.3.0/24", "172.16.97.78");
    expect_routes(&lab, 0, &[r2.clone(), r3.clone(), r4.clone()]);
    expect_routes(&lab, 2, &[r1.clone(), r2.clone(), r4.clone()]);

    // Its InternalIP changes: the route is replaced.
    lab.store()
        .modify_node(
            "k8s-4",
            &json!({"status": {"addresses": [
                {"type": "InternalIP", "address": "172.16.97.79"},
                {"type": "Hostname", "address": "k8s-4"}
            ]}}),
        )
        .unwrap();
    let r4b = route("10.244.3.0/24", "172.16.97.79");
    expect_routes(&lab, 0, &[r2.clone(), r3.clone(), r4b.clone()]);
    expect_routes(&lab, 1, &[r1.clone(), r3.clone(), r4b.clone()]);

    // A node on another subnet is reached through VXLAN (the default
    // `--encapsulation cross-subnet`): a route via its VTEP (its
    // podCIDR's network address) on ferry.vxlan, a permanent neighbour
    // and an FDB entry to its InternalIP.
    lab.store()
        .add_node(node_object("far", &["192.168.50.4"], &["10.244.9.0/24"]))
        .unwrap();
    // It is in the NAT set (cluster traffic) once the change is applied.
    wait_for(WAIT, "NAT set has the far node's CIDR", || {
        lab.nodes[0]
            .nft_table()
            .filter(|t| t.contains("10.244.9.0/24"))
            .map(|_| ())
    });
    let far = "10.244.9.0/24 via 10.244.9.0 dev ferry.vxlan onlink".to_string();
    expect_routes(&lab, 0, &[r2.clone(), r3.clone(), r4b.clone(), far.clone()]);
    let ns0 = lab.nodes[0].ns.clone();
    let neigh = ip(Some(&ns0), &["neigh", "show", "dev", "ferry.vxlan"]);
    assert!(
        neigh.contains("10.244.9.0 lladdr 0e:f7:c0:a8:32:04 PERMANENT"),
        "{neigh}"
    );
    let fdb = vxlan_fdb(&ns0);
    assert_eq!(
        fdb.trim(),
        "0e:f7:c0:a8:32:04 dst 192.168.50.4 self permanent",
        "{fdb}"
    );
    // Its InternalIP changes: the FDB and neighbour follow, nothing stale.
    lab.store()
        .modify_node(
            "far",
            &json!({"status": {"addresses": [
                {"type": "InternalIP", "address": "192.168.50.5"}
            ]}}),
        )
        .unwrap();
    wait_for(WAIT, "the far node's FDB entry follows its IP", || {
        (vxlan_fdb(&ns0).trim() == "0e:f7:c0:a8:32:05 dst 192.168.50.5 self permanent")
            .then_some(())
    });
    let neigh = ip(Some(&ns0), &["neigh", "show", "dev", "ferry.vxlan"]);
    assert_eq!(
        neigh.trim(),
        "10.244.9.0 lladdr 0e:f7:c0:a8:32:05 PERMANENT",
        "{neigh}"
    );

    // Deleted: the route goes.
    lab.store().delete_node("k8s-4").unwrap();
    lab.store().delete_node("far").unwrap();
    expect_routes(&lab, 0, &[r2.clone(), r3.clone()]);
    expect_routes(&lab, 1, &[r1.clone(), r3.clone()]);
    expect_routes(&lab, 2, &[r1.clone(), r2.clone()]);
    // No peer needs the tunnel any more: the device goes with it.
    wait_for(WAIT, "ferry.vxlan removed", || {
        (!ip(Some(&ns0), &["link", "show"]).contains("ferry.vxlan")).then_some(())
    });

    // A stale ferry route (e.g. left by a crash) is removed at the next
    // resync; a route of another protocol is never touched.
    let n0 = &lab.nodes[0];
    ip(
        Some(&n0.ns),
        &[
            "route",
            "add",
            "10.244.77.0/24",
            "via",
            "172.16.97.1",
            "proto",
            "201",
        ],
    );
    ip(
        Some(&n0.ns),
        &[
            "route",
            "add",
            "10.244.88.0/24",
            "via",
            "172.16.97.1",
            "proto",
            "static",
        ],
    );
    expect_routes(&lab, 0, &[r2.clone(), r3.clone()]);
    let all = n0.all_routes();
    assert!(
        all.contains("10.244.88.0/24 via 172.16.97.1 dev eth0 proto static"),
        "{all}"
    );

    // A route deleted behind ferryd's back comes back.
    ip(
        Some(&n0.ns),
        &["route", "del", "10.244.1.0/24", "proto", "201"],
    );
    expect_routes(&lab, 0, &[r2.clone(), r3.clone()]);

    // Metrics say the same.
    assert_eq!(n0.metric("ferry_routes_owned"), Some(2.0));
    assert_eq!(n0.metric("ferry_nodes_seen"), Some(3.0));
    assert_eq!(n0.metric("ferry_api_connected"), Some(1.0));
    assert!(n0.metric("ferry_reconciles_total").unwrap() >= 1.0);
    assert_eq!(
        n0.http_get("/healthz").map(|(c, _)| c),
        Some(200),
        "healthz"
    );

    // `status` shows node, CIDRs, interface, peers, routes and NAT.
    let (ok, out, err) = n0.ferryd_cmd(&lab.kubeconfig, "status");
    assert!(ok, "status failed: {err}");
    for want in [
        "node:       k8s-1",
        "pod CIDRs:  10.244.0.0/24",
        "interface:  eth0 172.16.97.75/24",
        "k8s-2 172.16.97.76 10.244.1.0/24",
        "10.244.2.0/24 via 172.16.97.77 dev eth0",
        "table inet ferry: masquerade pods leaving eth0",
        "conflist:   written",
        "available (FerryIsUp)",
        // (`ip netns exec` gives `status` its own /sys, without the pins of
        // the running ferryd; the tc filter is the netns's.)
        "fast path:  nothing pinned; attached to 1 interfaces\n  eth0\n",
    ] {
        assert!(out.contains(want), "status lacks {want:?}:\n{out}");
    }
}

#[test]
fn own_node_found_by_its_address_without_a_name() {
    let mut lab = Lab::new("dn", 2, &[]);
    // node 2 runs without --node-name (and without NODE_NAME): the seed's
    // method finds it by its InternalIP.
    let kc = lab.kubeconfig.clone();
    lab.nodes[0].start_ferryd(&kc);
    let n1 = &mut lab.nodes[1];
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &n1.ns, common::FERRYD, "install"])
        .args(
            n1.args(&kc)
                .into_iter()
                .filter(|a| a != "--node-name" && a != "k8s-2"),
        )
        .env_remove("NODE_NAME")
        .env_remove("FERRY_NODE_NAME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `install` configured the node once and exited.
    assert_eq!(
        n1.owned_routes(),
        BTreeSet::from([route("10.244.0.0/24", "172.16.97.75")])
    );
    assert!(n1.conflist().exists());
    assert!(n1.bin_dir().join("ferry").exists());
    assert_eq!(
        lab.network_condition("k8s-2"),
        Some(("False".into(), "FerryIsUp".into()))
    );
    lab.nodes[0].wait_ready();
}
