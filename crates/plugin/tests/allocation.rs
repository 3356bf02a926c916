//! Allocation under load and at its limits: 64 concurrent ADDs, a full /29,
//! GC, STATUS, static requests.

mod support;

use std::collections::BTreeSet;

use support::{ping, result_ips, Call, Node};

#[test]
fn sixty_four_concurrent_adds() {
    let node = Node::new("c64");
    let (links, routes) = (node.links(), node.routes());
    let conf = node.conf_v4("1.1.0");
    let pods: Vec<String> = (0..64).map(|i| node.pod(&format!("p{i}"))).collect();
    let replies: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                let (node, conf) = (&node, &conf);
                s.spawn(move || {
                    node.ferry(&Call::new(
                        "ADD",
                        &format!("c64n{i}"),
                        &Node::pod_path(pod),
                        conf,
                    ))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ips: Vec<String> = replies
        .into_iter()
        .flat_map(|r| result_ips(&r.expect_ok().json))
        .collect();
    let unique: BTreeSet<&String> = ips.iter().collect();
    assert_eq!(unique.len(), 64, "duplicate IPs handed out: {ips:?}");
    assert_eq!(node.reserved_ips().len(), 64);
    for (pod, ip) in pods.iter().zip(&ips) {
        assert!(ping(&node.name, ip), "pod {pod} at {ip} is not pingable");
    }
    std::thread::scope(|s| {
        for (i, pod) in pods.iter().enumerate() {
            let (node, conf) = (&node, &conf);
            s.spawn(move || {
                node.ferry(&Call::new(
                    "DEL",
                    &format!("c64n{i}"),
                    &Node::pod_path(pod),
                    conf,
                ))
                .expect_ok()
            });
        }
    });
    assert!(node.reserved_ips().is_empty(), "{:?}", node.reserved_ips());
    assert_eq!(node.links(), links);
    assert_eq!(node.routes(), routes);
}

#[test]
fn a_full_range_fails_cleanly_then_recovers() {
    let node = Node::new("full");
    // A /29 has .1 (gateway) .. .6 usable: 5 pod addresses.
    let conf = node.conf("1.1.0", r#"[[{"subnet":"10.244.7.0/29"}]]"#);
    let links = node.links();
    let mut added = Vec::new();
    for i in 0..5 {
        let pod = node.pod(&format!("p{i}"));
        node.ferry(&Call::new(
            "ADD",
            &format!("full{i}"),
            &Node::pod_path(&pod),
            &conf,
        ))
        .expect_ok();
        added.push(pod);
    }
    assert_eq!(node.reserved_ips().len(), 5);
    let status = node.ferry(&Call::new("STATUS", "", "", &conf));
    assert_eq!(
        status.code(),
        50,
        "STATUS on an exhausted range: {}",
        status.raw
    );

    let extra = node.pod("extra");
    let links_full = node.links();
    let reply = node.ferry(&Call::new(
        "ADD",
        "full-extra",
        &Node::pod_path(&extra),
        &conf,
    ));
    assert_eq!(reply.code(), 100, "{}", reply.raw);
    assert!(
        reply.json["msg"]
            .as_str()
            .unwrap()
            .contains("10.244.7.1-10.244.7.6"),
        "{}",
        reply.raw
    );
    assert_eq!(node.links(), links_full, "a failed ADD left a link");

    node.ferry(&Call::new(
        "DEL",
        "full2",
        &Node::pod_path(&added[2]),
        &conf,
    ))
    .expect_ok();
    node.ferry(&Call::new("STATUS", "", "", &conf)).expect_ok();
    let again = node
        .ferry(&Call::new(
            "ADD",
            "full-extra",
            &Node::pod_path(&extra),
            &conf,
        ))
        .expect_ok();
    assert!(ping(&node.name, &result_ips(&again.json)[0]));
    for (i, pod) in added.iter().enumerate() {
        node.ferry(&Call::new(
            "DEL",
            &format!("full{i}"),
            &Node::pod_path(pod),
            &conf,
        ))
        .expect_ok();
    }
    node.ferry(&Call::new("DEL", "full-extra", "", &conf))
        .expect_ok();
    assert_eq!(node.links(), links);
}

#[test]
fn status_fails_when_the_store_is_not_writable() {
    let node = Node::new("ro");
    let conf = node.conf_v4("1.1.0");
    node.ferry(&Call::new("STATUS", "", "", &conf)).expect_ok();
    // A plain file where the data dir should be: nothing can be stored.
    let _ = std::fs::remove_dir_all(&node.data_dir);
    std::fs::write(&node.data_dir, "not a directory").unwrap();
    let reply = node.ferry(&Call::new("STATUS", "", "", &conf));
    assert_eq!(reply.code(), 50, "{}", reply.raw);
    std::fs::remove_file(&node.data_dir).unwrap();
    // STATUS needs 1.1.0.
    let old = node.ferry(&Call::new("STATUS", "", "", &node.conf_v4("1.0.0")));
    assert_eq!(old.code(), 1);
}

#[test]
fn gc_keeps_one_attachment_of_three() {
    let node = Node::new("gc");
    let conf = node.conf_v4("1.1.0");
    let links = node.links();
    let pods: Vec<String> = (0..3).map(|i| node.pod(&format!("p{i}"))).collect();
    let mut ips = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        let r = node
            .ferry(&Call::new(
                "ADD",
                &format!("gc{i}"),
                &Node::pod_path(pod),
                &conf,
            ))
            .expect_ok();
        ips.push(result_ips(&r.json).remove(0));
    }
    let mut gc: serde_json::Value = serde_json::from_str(&conf).unwrap();
    gc["cni.dev/valid-attachments"] = serde_json::json!([{"containerID": "gc1", "ifname": "eth0"}]);
    node.ferry(&Call::new("GC", "", "", &gc.to_string()))
        .expect_ok();
    assert_eq!(node.reserved_ips(), BTreeSet::from([ips[1].clone()]));
    assert_eq!(
        node.links().len(),
        links.len() + 1,
        "GC must remove the other veths"
    );
    assert!(ping(&node.name, &ips[1]), "GC broke the valid pod");
    assert!(!ping(&node.name, &ips[0]));
    // The legacy key works too, and an empty list releases everything.
    gc.as_object_mut()
        .unwrap()
        .remove("cni.dev/valid-attachments");
    gc["cni.dev/attachments"] = serde_json::json!([]);
    node.ferry(&Call::new("GC", "", "", &gc.to_string()))
        .expect_ok();
    assert!(node.reserved_ips().is_empty());
    assert_eq!(node.links(), links);
}

#[test]
fn static_ip_requests() {
    let node = Node::new("stat");
    let conf = node.conf_v4("1.0.0");
    let pod = node.pod("a");
    let mut add = Call::new("ADD", "stat1", &Node::pod_path(&pod), &conf);
    add.args = "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.244.0.42".into();
    let r = node.ferry(&add).expect_ok();
    assert_eq!(result_ips(&r.json), ["10.244.0.42"]);
    assert!(ping(&node.name, "10.244.0.42"));
    // The same address again is refused, and changes nothing.
    let other = node.pod("b");
    let mut clash = Call::new("ADD", "stat2", &Node::pod_path(&other), &conf);
    clash.args = "IP=10.244.0.42".into();
    assert_eq!(node.ferry(&clash).code(), 105);
    // runtimeConfig.ips, as the `ips` capability delivers it.
    let mut rc: serde_json::Value = serde_json::from_str(&conf).unwrap();
    rc["runtimeConfig"] = serde_json::json!({"ips": ["10.244.0.43/24"]});
    let r = node
        .ferry(&Call::new(
            "ADD",
            "stat2",
            &Node::pod_path(&other),
            &rc.to_string(),
        ))
        .expect_ok();
    assert_eq!(result_ips(&r.json), ["10.244.0.43"]);
}
