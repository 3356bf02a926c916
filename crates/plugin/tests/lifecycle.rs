//! ADD → CHECK → DEL → DEL for every cniVersion, dual-stack with pings both
//! ways, and the pod/host plumbing the seed describes.

mod support;

use support::{ip, ping, result_ips, Call, Node};

#[test]
fn add_check_del_del_in_every_version() {
    let node = Node::new("life");
    let before_links = node.links();
    let before_routes = node.routes();
    for (n, version) in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        .iter()
        .enumerate()
    {
        let pod = node.pod(&format!("p{n}"));
        let netns = Node::pod_path(&pod);
        let cid = format!("life{n}");
        let conf = node.conf_v4(version);
        let add = node
            .ferry(&Call::new("ADD", &cid, &netns, &conf))
            .expect_ok();
        assert_eq!(add.json["cniVersion"], *version);
        let ips = result_ips(&add.json);
        assert_eq!(ips.len(), 1, "{}", add.raw);
        if version.starts_with("0.") {
            assert_eq!(add.json["ips"][0]["version"], "4", "{}", add.raw);
        } else {
            assert!(add.json["ips"][0].get("version").is_none(), "{}", add.raw);
        }
        assert_eq!(add.json["ips"][0]["gateway"], "169.254.1.1");
        assert_eq!(add.json["interfaces"][1]["sandbox"], netns.as_str());

        // The seed's pod side: a /32, the link-local gateway, a default route.
        let addrs = ip(Some(&pod), &["-4", "addr", "show", "dev", "eth0"]);
        assert!(addrs.contains(&format!("{}/32", ips[0])), "{addrs}");
        let routes = ip(Some(&pod), &["route", "show"]);
        assert!(
            routes.contains("default via 169.254.1.1 dev eth0"),
            "{routes}"
        );
        assert!(
            routes.contains("169.254.1.1 dev eth0 scope link"),
            "{routes}"
        );
        // The host side: a /32 route to the pod, proxy ARP on.
        let host_veth = add.json["interfaces"][0]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let host_routes = ip(
            Some(&node.name),
            &["route", "show", &format!("{}/32", ips[0])],
        );
        assert!(host_routes.contains(&host_veth), "{host_routes}");
        assert!(ping(&node.name, &ips[0]), "node cannot ping pod {}", ips[0]);
        assert!(ping(&pod, "172.16.97.75"), "pod cannot ping node");

        let mut prev_conf: serde_json::Value = serde_json::from_str(&conf).unwrap();
        prev_conf["prevResult"] = add.json.clone();
        let with_prev = prev_conf.to_string();
        let check = node.ferry(&Call::new("CHECK", &cid, &netns, &with_prev));
        if *version == "0.3.0" || *version == "0.3.1" {
            assert_eq!(check.code(), 1, "CHECK is not defined before 0.4.0");
        } else {
            check.expect_ok();
        }
        node.ferry(&Call::new("DEL", &cid, &netns, &with_prev))
            .expect_ok();
        node.ferry(&Call::new("DEL", &cid, &netns, &with_prev))
            .expect_ok();
        assert!(node.reserved_ips().is_empty(), "{:?}", node.reserved_ips());
        assert_eq!(node.links(), before_links);
        assert_eq!(node.routes(), before_routes);
    }
}

#[test]
fn check_notices_what_is_missing() {
    let node = Node::new("chk");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let conf = node.conf_v4("1.1.0");
    let add = node
        .ferry(&Call::new("ADD", "chk1", &netns, &conf))
        .expect_ok();
    let mut with_prev: serde_json::Value = serde_json::from_str(&conf).unwrap();
    with_prev["prevResult"] = add.json.clone();
    let with_prev = with_prev.to_string();
    node.ferry(&Call::new("CHECK", "chk1", &netns, &with_prev))
        .expect_ok();
    ip(Some(&pod), &["route", "del", "default"]);
    let broken = node.ferry(&Call::new("CHECK", "chk1", &netns, &with_prev));
    assert_eq!(broken.code(), 104, "{}", broken.raw);
    assert!(broken.raw.contains("0.0.0.0/0"), "{}", broken.raw);
    node.ferry(&Call::new("DEL", "chk1", &netns, &with_prev))
        .expect_ok();
}

#[test]
fn dual_stack_pings_both_ways() {
    let node = Node::new("ds");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let conf = node.conf(
        "1.1.0",
        r#"[[{"subnet":"10.244.0.0/24"}],[{"subnet":"fd00:10:244::/64"}]]"#,
    );
    let add = node
        .ferry(&Call::new("ADD", "ds1", &netns, &conf))
        .expect_ok();
    let ips = result_ips(&add.json);
    assert_eq!(ips.len(), 2, "{}", add.raw);
    let v6 = ips.iter().find(|i| i.contains(':')).unwrap();
    let v4 = ips.iter().find(|i| !i.contains(':')).unwrap();
    let addrs = ip(Some(&pod), &["-6", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&format!("{v6}/128")), "{addrs}");
    assert!(!addrs.contains("tentative"), "no DAD wait: {addrs}");
    let routes = ip(Some(&pod), &["-6", "route", "show"]);
    assert!(routes.contains("default via fe80::1 dev eth0"), "{routes}");
    assert!(ping(&node.name, v4) && ping(&pod, "172.16.97.75"));
    assert!(ping(&node.name, v6), "node cannot ping6 the pod");
    assert!(ping(&pod, "fd97::75"), "pod cannot ping6 the node");
    node.ferry(&Call::new("DEL", "ds1", &netns, &conf))
        .expect_ok();
    assert!(node.reserved_ips().is_empty());
}

#[test]
fn pods_on_one_node_reach_each_other() {
    let node = Node::new("pp");
    let conf = node.conf_v4("1.0.0");
    let (a, b) = (node.pod("a"), node.pod("b"));
    let ra = node
        .ferry(&Call::new("ADD", "ppa", &Node::pod_path(&a), &conf))
        .expect_ok();
    let rb = node
        .ferry(&Call::new("ADD", "ppb", &Node::pod_path(&b), &conf))
        .expect_ok();
    let (ia, ib) = (
        result_ips(&ra.json).remove(0),
        result_ips(&rb.json).remove(0),
    );
    assert_ne!(ia, ib);
    assert!(ping(&a, &ib), "pod a cannot reach pod b");
    assert!(ping(&b, &ia), "pod b cannot reach pod a");
}

#[test]
fn mtu_defaults_to_the_default_route_link() {
    let node = Node::new("mtu");
    ip(Some(&node.name), &["link", "set", "uplink", "mtu", "1400"]);
    let pod = node.pod("p");
    let conf = node.conf_v4("1.1.0").replace(r#""mtu":1500,"#, "");
    let add = node
        .ferry(&Call::new("ADD", "mtu1", &Node::pod_path(&pod), &conf))
        .expect_ok();
    assert_eq!(add.json["interfaces"][1]["mtu"], 1400, "{}", add.raw);
    let link = ip(Some(&pod), &["link", "show", "eth0"]);
    assert!(link.contains("mtu 1400"), "{link}");
}

#[test]
fn not_first_in_a_chain_keeps_the_previous_result() {
    let node = Node::new("chain");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let mut conf: serde_json::Value = serde_json::from_str(&node.conf_v4("1.0.0")).unwrap();
    let prev = serde_json::json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "net0", "sandbox": netns}],
        "ips": [{"address": "192.168.50.2/24", "interface": 0}],
        "dns": {"nameservers": ["10.96.0.10"]}
    });
    conf["prevResult"] = prev;
    let mut call = Call::new("ADD", "chain1", &netns, &conf.to_string());
    call.ifname = "net1".into();
    let add = node.ferry(&call).expect_ok();
    let j = &add.json;
    assert_eq!(j["interfaces"][0]["name"], "net0", "{}", add.raw);
    assert_eq!(j["interfaces"][2]["name"], "net1");
    assert_eq!(j["ips"][0]["address"], "192.168.50.2/24");
    assert_eq!(
        j["ips"][1]["interface"], 2,
        "our IP points at our interface"
    );
    assert_eq!(j["dns"]["nameservers"][0], "10.96.0.10");
    let mut del = call.clone();
    del.command = "DEL".into();
    node.ferry(&del).expect_ok();
    assert!(node.reserved_ips().is_empty());
}
