//! Every kind of bad input gets the spec's error code on stdout, a non-zero
//! exit, and changes nothing: no link, no route, no IPAM file.

mod support;

use support::{Call, Node};

#[test]
fn bad_input_changes_nothing() {
    let node = Node::new("bad");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let good = node.conf_v4("1.1.0");
    let base = Call::new("ADD", "bad1", &netns, &good);
    let (links, routes) = (node.links(), node.routes());
    let pod_links = support::ip(Some(&pod), &["-o", "link", "show"]);

    let with = |f: &dyn Fn(&mut Call)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    let cases: Vec<(&str, Call, u64)> = vec![
        (
            "malformed JSON",
            with(&|c| c.stdin = "{\"cniVersion\":".into()),
            6,
        ),
        ("not an object", with(&|c| c.stdin = "[1]".into()), 6),
        (
            "unknown version",
            with(&|c| c.stdin = good.replace("1.1.0", "0.2.0")),
            1,
        ),
        (
            "future version",
            with(&|c| c.stdin = good.replace("1.1.0", "2.0.0")),
            1,
        ),
        ("missing CNI_COMMAND", with(&|c| c.command.clear()), 4),
        (
            "unknown CNI_COMMAND",
            with(&|c| c.command = "ATTACH".into()),
            4,
        ),
        (
            "missing CNI_CONTAINERID",
            with(&|c| c.container_id.clear()),
            4,
        ),
        ("missing CNI_NETNS", with(&|c| c.netns.clear()), 4),
        ("missing CNI_IFNAME", with(&|c| c.ifname.clear()), 4),
        ("missing CNI_PATH", with(&|c| c.path.clear()), 4),
        (
            "netns that does not exist",
            with(&|c| c.netns = "/run/netns/ferry-no-such-ns".into()),
            4,
        ),
        (
            "netns that is a plain file",
            with(&|c| c.netns = "/etc/hostname".into()),
            4,
        ),
        (
            "the plugin's own netns",
            with(&|c| c.netns = "/proc/self/ns/net".into()),
            4,
        ),
        (
            "container ID with a path",
            with(&|c| c.container_id = "../../etc/passwd".into()),
            4,
        ),
        (
            "container ID with a leading dot",
            with(&|c| c.container_id = ".hidden".into()),
            4,
        ),
        (
            "container ID with a space",
            with(&|c| c.container_id = "a b".into()),
            4,
        ),
        (
            "ifname over 15 bytes",
            with(&|c| c.ifname = "eth0123456789012".into()),
            4,
        ),
        (
            "ifname with a slash",
            with(&|c| c.ifname = "eth/0".into()),
            4,
        ),
        (
            "ifname with a colon",
            with(&|c| c.ifname = "eth:0".into()),
            4,
        ),
        (
            "ifname with whitespace",
            with(&|c| c.ifname = "eth 0".into()),
            4,
        ),
        ("malformed CNI_ARGS", with(&|c| c.args = "IP".into()), 4),
        (
            "bad CIDR",
            with(&|c| c.stdin = good.replace("10.244.0.0/24", "10.244.0.0/33")),
            7,
        ),
        (
            "CIDR that is not an address",
            with(&|c| c.stdin = good.replace("10.244.0.0/24", "ten/24")),
            7,
        ),
        (
            "range start outside subnet",
            with(&|c| {
                c.stdin = good.replace(
                    r#""subnet":"10.244.0.0/24""#,
                    r#""subnet":"10.244.0.0/24","rangeStart":"10.9.9.9""#,
                )
            }),
            7,
        ),
        (
            "type with a path",
            with(&|c| c.stdin = good.replace(r#""type":"ferry","#, r#""type":"../ferry","#)),
            7,
        ),
        (
            "ipam type with a path",
            with(&|c| c.stdin = good.replace("\"ferry-ipam\"", "\"/usr/lib/cni/host-local\"")),
            7,
        ),
        (
            "network name with a path",
            with(&|c| c.stdin = good.replace("ferrytest", "../x")),
            7,
        ),
        (
            "missing ipam",
            with(&|c| c.stdin = r#"{"cniVersion":"1.1.0","name":"n","type":"ferry"}"#.into()),
            7,
        ),
        (
            "bad requested IP",
            with(&|c| c.args = "IP=10.244.0.999".into()),
            7,
        ),
        (
            "requested IP outside the range",
            with(&|c| c.args = "IP=10.9.9.9".into()),
            105,
        ),
        (
            "bad mtu",
            with(&|c| c.stdin = good.replace(r#""mtu":1500"#, r#""mtu":-1"#)),
            7,
        ),
        (
            "fastPath with ..",
            with(&|c| {
                c.stdin = good.replace(
                    r#""mtu":1500"#,
                    r#""mtu":1500,"fastPath":"/sys/fs/bpf/../../../etc""#,
                )
            }),
            7,
        ),
    ];
    for (what, call, code) in cases {
        let reply = node.ferry(&call);
        assert!(!reply.ok, "{what}: must fail, got {}", reply.raw);
        assert_eq!(reply.code(), code, "{what}: {}", reply.raw);
        assert!(
            reply.json["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: no msg"
        );
        assert_eq!(node.links(), links, "{what}: changed the node's links");
        assert_eq!(node.routes(), routes, "{what}: changed the node's routes");
        assert!(
            node.reserved_ips().is_empty(),
            "{what}: reserved {:?}",
            node.reserved_ips()
        );
        assert_eq!(
            support::ip(Some(&pod), &["-o", "link", "show"]),
            pod_links,
            "{what}: changed the pod"
        );
    }
}

#[test]
fn a_clash_in_the_pod_rolls_back() {
    let node = Node::new("clash");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    support::add_veth(&pod, "eth0", "eth0-peer");
    let (links, routes) = (node.links(), node.routes());
    let reply = node.ferry(&Call::new("ADD", "clash1", &netns, &node.conf_v4("1.1.0")));
    assert!(reply.code() >= 100, "{}", reply.raw);
    assert!(
        node.reserved_ips().is_empty(),
        "the address was not given back"
    );
    assert_eq!(node.links(), links);
    assert_eq!(node.routes(), routes);
}
