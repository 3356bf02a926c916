//! DEL is idempotent and best-effort: after an earlier DEL, after the netns
//! is gone, and in containerd's exact sequence (StopPodSandbox's DEL with
//! netns and prevResult, then RemovePodSandbox's with neither).

mod support;

use support::{Call, Node};

fn leaves_nothing(
    node: &Node,
    links: &std::collections::BTreeSet<String>,
    routes: &std::collections::BTreeSet<String>,
) {
    assert!(
        node.reserved_ips().is_empty(),
        "IPs left: {:?}",
        node.reserved_ips()
    );
    assert_eq!(&node.links(), links, "links left behind");
    assert_eq!(&node.routes(), routes, "routes left behind");
}

#[test]
fn containerd_stop_then_remove() {
    let node = Node::new("ctrd");
    let (links, routes) = (node.links(), node.routes());
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let conf = node.conf_v4("1.0.0");
    // containerd sends its CNI_ARGS in varying order, with IgnoreUnknown.
    let mut add = Call::new("ADD", "ctrd1", &netns, &conf);
    add.args = "K8S_POD_UID=u1;IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=ctrd1".into();
    let added = node.ferry(&add).expect_ok();

    let mut stop: serde_json::Value = serde_json::from_str(&conf).unwrap();
    stop["prevResult"] = added.json.clone();
    let mut del = Call::new("DEL", "ctrd1", &netns, &stop.to_string());
    del.args = add.args.clone();
    node.ferry(&del).expect_ok();
    node.drop_pod(&pod);
    // RemovePodSandbox: empty CNI_NETNS, no prevResult.
    let mut remove = Call::new("DEL", "ctrd1", "", &conf);
    remove.args = add.args;
    node.ferry(&remove).expect_ok();
    leaves_nothing(&node, &links, &routes);
}

#[test]
fn del_after_the_netns_is_gone() {
    let node = Node::new("gone");
    let (links, routes) = (node.links(), node.routes());
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let conf = node.conf_v4("1.1.0");
    node.ferry(&Call::new("ADD", "gone1", &netns, &conf))
        .expect_ok();
    node.drop_pod(&pod);
    node.ferry(&Call::new("DEL", "gone1", &netns, &conf))
        .expect_ok();
    node.ferry(&Call::new("DEL", "gone1", "", &conf))
        .expect_ok();
    // The veth dies with its netns asynchronously; wait for the kernel.
    for _ in 0..50 {
        if node.links() == links {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    leaves_nothing(&node, &links, &routes);
}

#[test]
fn del_of_something_never_added() {
    let node = Node::new("never");
    let conf = node.conf_v4("1.1.0");
    node.ferry(&Call::new("DEL", "never1", "", &conf))
        .expect_ok();
    node.ferry(&Call::new(
        "DEL",
        "never1",
        "/run/netns/does-not-exist",
        &conf,
    ))
    .expect_ok();
}

#[test]
fn del_with_a_legacy_version() {
    let node = Node::new("dl03");
    let (links, routes) = (node.links(), node.routes());
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let conf = node.conf_v4("0.3.1");
    node.ferry(&Call::new("ADD", "dl1", &netns, &conf))
        .expect_ok();
    node.ferry(&Call::new("DEL", "dl1", &netns, &conf))
        .expect_ok();
    leaves_nothing(&node, &links, &routes);
}
