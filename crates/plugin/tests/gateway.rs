//! The pod's gateway without the node's routing table: on a node with no
//! default route, proxy ARP does not answer for 169.254.1.1 (the node has
//! no route to it), so a pod that has to ask reaches nothing. ADD installs
//! a permanent neighbour entry for the gateway (the host veth's fixed MAC)
//! so it never asks; proxy ARP stays as the fallback.

mod support;

use serde_json::{json, Value};
use support::{ip, ping, result_ips, Call, Node, REFERENCE_DIR};

const NODE_V4: &str = "172.16.97.75";
const NODE_V6: &str = "fd97::75";

fn with_prev(conf: &str, add: &Value) -> String {
    let mut c: Value = serde_json::from_str(conf).unwrap();
    c["prevResult"] = add.clone();
    c.to_string()
}

/// `ip neigh show` for the gateway `gw` in `pod`.
fn gateway_neighbour(pod: &str, gw: &str) -> String {
    ip(Some(pod), &["neigh", "show", gw, "dev", "eth0"])
}

/// The reference `ptp` gives its gateway a real address on the host veth,
/// so it works on such a node: the setup itself is not what fails.
#[test]
fn reference_ptp_works_without_a_default_route() {
    let node = Node::without_default_route("gwptp");
    let conf = json!({
        "cniVersion": "1.0.0", "name": "ptpnet", "type": "ptp",
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.245.0.0/24"}]],
                 "routes": [{"dst": "0.0.0.0/0"}],
                 "dataDir": node.data_dir.join("ptp")}
    })
    .to_string();
    let ptp = format!("{REFERENCE_DIR}/ptp");
    let (a, b) = (node.pod("a"), node.pod("b"));
    let mut ips = Vec::new();
    for (pod, cid) in [(&a, "gwptpa"), (&b, "gwptpb")] {
        let add = node
            .run(&ptp, &Call::new("ADD", cid, &Node::pod_path(pod), &conf))
            .expect_ok();
        ips.push(result_ips(&add.json).remove(0));
    }
    let pings = (
        ping(&a, &ips[1]),
        ping(&node.name, &ips[0]),
        ping(&a, NODE_V4),
    );
    for (pod, cid) in [(&a, "gwptpa"), (&b, "gwptpb")] {
        node.run(&ptp, &Call::new("DEL", cid, &Node::pod_path(pod), &conf))
            .expect_ok();
    }
    assert_eq!(
        pings,
        (true, true, true),
        "ptp: pod→pod, node→pod, pod→node"
    );
}

#[test]
fn pods_reach_each_other_and_the_node_without_a_default_route() {
    let node = Node::without_default_route("gwnd");
    let links_before = node.links();
    let conf = node.conf_v4("1.1.0");
    let (a, b) = (node.pod("a"), node.pod("b"));
    let (pa, pb) = (Node::pod_path(&a), Node::pod_path(&b));
    let ra = node
        .ferry(&Call::new("ADD", "gwnda", &pa, &conf))
        .expect_ok();
    let rb = node
        .ferry(&Call::new("ADD", "gwndb", &pb, &conf))
        .expect_ok();
    let (ia, ib) = (
        result_ips(&ra.json).remove(0),
        result_ips(&rb.json).remove(0),
    );

    for pod in [&a, &b] {
        let n = gateway_neighbour(pod, "169.254.1.1");
        assert!(n.contains("lladdr ee:ee:ee:ee:ee:ee"), "{pod}: {n}");
        assert!(n.contains("PERMANENT"), "{pod}: {n}");
    }
    assert!(ping(&a, &ib), "pod a cannot reach pod b");
    assert!(ping(&b, &ia), "pod b cannot reach pod a");
    assert!(ping(&node.name, &ia), "node cannot reach pod a");
    assert!(ping(&a, NODE_V4), "pod a cannot reach the node");
    let check_a = with_prev(&conf, &ra.json);
    node.ferry(&Call::new("CHECK", "gwnda", &pa, &check_a))
        .expect_ok();

    // Without the entry the pod has to ask, and on this node nobody
    // answers: the failure this entry fixes. CHECK notices it.
    ip(Some(&a), &["neigh", "del", "169.254.1.1", "dev", "eth0"]);
    assert!(!ping(&a, NODE_V4), "proxy ARP answered without a route");
    let broken = node.ferry(&Call::new("CHECK", "gwnda", &pa, &check_a));
    assert_eq!(broken.code(), 104, "{}", broken.raw);
    assert!(broken.raw.contains("169.254.1.1"), "{}", broken.raw);

    // Proxy ARP is still the fallback once the node can route the gateway.
    ip(
        Some(&node.name),
        &[
            "route",
            "add",
            "default",
            "via",
            "172.16.97.1",
            "dev",
            "uplink",
        ],
    );
    // The failed resolution above leaves the entry FAILED for a moment: a
    // few tries, as a pod's traffic would retry.
    assert!(
        (0..5).any(|_| ping(&a, NODE_V4)),
        "proxy ARP fallback does not answer"
    );
    let learnt = gateway_neighbour(&a, "169.254.1.1");
    assert!(learnt.contains("lladdr ee:ee:ee:ee:ee:ee"), "{learnt}");
    assert!(!learnt.contains("PERMANENT"), "{learnt}");

    for (cid, path, add) in [("gwnda", &pa, &ra), ("gwndb", &pb, &rb)] {
        let del = with_prev(&conf, &add.json);
        node.ferry(&Call::new("DEL", cid, path, &del)).expect_ok();
    }
    assert!(node.reserved_ips().is_empty(), "{:?}", node.reserved_ips());
    assert_eq!(node.links(), links_before);
}

#[test]
fn dual_stack_gateways_are_permanent_neighbours() {
    let node = Node::without_default_route("gwds");
    let conf = node.conf(
        "1.0.0",
        r#"[[{"subnet":"10.244.0.0/24"}],[{"subnet":"fd00:10:244::/64"}]]"#,
    );
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let add = node
        .ferry(&Call::new("ADD", "gwds1", &netns, &conf))
        .expect_ok();
    for gw in ["169.254.1.1", "fe80::1"] {
        let n = gateway_neighbour(&pod, gw);
        assert!(n.contains("lladdr ee:ee:ee:ee:ee:ee"), "{gw}: {n}");
        assert!(n.contains("PERMANENT"), "{gw}: {n}");
    }
    let ips = result_ips(&add.json);
    let v6 = ips.iter().find(|i| i.contains(':')).unwrap();
    let v4 = ips.iter().find(|i| !i.contains(':')).unwrap();
    assert!(ping(&node.name, v4) && ping(&pod, NODE_V4), "IPv4");
    assert!(ping(&node.name, v6) && ping(&pod, NODE_V6), "IPv6");
    let prev = with_prev(&conf, &add.json);
    node.ferry(&Call::new("CHECK", "gwds1", &netns, &prev))
        .expect_ok();
    ip(
        Some(&pod),
        &["-6", "neigh", "del", "fe80::1", "dev", "eth0"],
    );
    let broken = node.ferry(&Call::new("CHECK", "gwds1", &netns, &prev));
    assert_eq!(broken.code(), 104, "{}", broken.raw);
    assert!(broken.raw.contains("fe80::1"), "{}", broken.raw);
    node.ferry(&Call::new("DEL", "gwds1", &netns, &prev))
        .expect_ok();
    assert!(node.reserved_ips().is_empty());
}
