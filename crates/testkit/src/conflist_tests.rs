//! Tests of the small libcni, against the reference plugins.

use super::*;

fn list() -> ConfList {
    ConfList::from_value(json!({
        "cniVersion": "1.0.0",
        "name": "net",
        "plugins": [
            {"type": "a", "x": 1},
            {"type": "b", "capabilities": {"portMappings": true, "dns": false}},
        ],
    }))
    .unwrap()
}

#[test]
fn plugin_config_gets_version_name_prev_and_declared_capabilities() {
    let l = list();
    let att = Attachment::kubernetes_pod("c1", "/run/netns/p", "default", "p", "u");
    let mut caps = att.capability_args.clone();
    caps.insert("dns".into(), json!({"nameservers": ["10.96.0.10"]}));
    let first = l.plugin_config(0, None, &caps);
    assert_eq!(first["cniVersion"], "1.0.0");
    assert_eq!(first["name"], "net");
    assert!(first.get("prevResult").is_none());
    assert!(first.get("runtimeConfig").is_none(), "a declares nothing");
    let prev = json!({"ips": []});
    let second = l.plugin_config(1, Some(&prev), &caps);
    assert_eq!(second["prevResult"], prev);
    assert_eq!(second["runtimeConfig"], json!({"portMappings": []}));
}

#[test]
fn containerd_style_cni_args() {
    let att = Attachment::kubernetes_pod("c1", "/n", "default", "pod-1", "uid-1")
        .with_arg("IP", "10.244.0.5");
    assert_eq!(
        att.cni_args(),
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-1;\
         K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=uid-1;IP=10.244.0.5"
    );
}

#[test]
fn bad_lists_are_refused() {
    for bad in [
        json!({"name": "n", "plugins": [{"type": "a"}]}),
        json!({"cniVersion": "1.0.0", "name": "n", "plugins": []}),
        json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"x": 1}]}),
    ] {
        assert!(ConfList::from_value(bad).is_err());
    }
}

/// `first` (ptp with host-local) then `second`, from the reference
/// plugins, run in a node netns.
fn reference_chain(node: &crate::Node, second: Value) -> (Runtime, ConfList) {
    let ptp = json!({"type": "ptp", "ipMasq": false, "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.0.0/24"}]],
        "dataDir": node.data_dir,
    }});
    let list = ConfList::from_value(json!({
        "cniVersion": "1.0.0",
        "name": "chain",
        "plugins": [ptp, second],
    }))
    .unwrap();
    let rt = Runtime {
        cni_path: vec![PathBuf::from(crate::REFERENCE_DIR)],
        cache_dir: node.data_dir.join("cache"),
        netns: Some(NetNs::open(&node.path).unwrap()),
    };
    (rt, list)
}

fn veths(node: &crate::Node) -> Vec<String> {
    node.links()
        .into_iter()
        .filter(|l| l.starts_with("veth"))
        .collect()
}

#[test]
fn add_chains_prev_result_and_del_uses_the_cache() {
    let node = crate::Node::new("cl");
    let portmap = json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true});
    let (rt, list) = reference_chain(&node, portmap);
    let pod = node.pod("p");
    let att = Attachment::kubernetes_pod("c1", &crate::Node::pod_path(&pod), "default", "p", "u");
    let result = rt.add(&list, &att).unwrap();
    // portmap (last) returns its prevResult: ptp's result came through.
    assert_eq!(crate::result_ips(&result), ["10.244.0.2"]);
    assert_eq!(rt.cached_result(&list, &att), Some(result.clone()));
    assert!(node.reserved_ips().contains("10.244.0.2"));
    assert_eq!(veths(&node).len(), 1);
    rt.del(&list, &att).unwrap();
    assert_eq!(rt.cached_result(&list, &att), None);
    assert!(node.reserved_ips().is_empty(), "host-local released");
    assert!(veths(&node).is_empty());
    // DEL again (the runtime's RemovePodSandbox) is fine.
    rt.del(&list, &att).unwrap();
}

#[test]
fn failed_add_is_rolled_back_with_a_del() {
    let node = crate::Node::new("cf");
    // A second ptp for the same eth0 fails after the first succeeded;
    // the whole list is then DELeted, the first one's work included.
    let second = json!({"type": "ptp", "ipMasq": false, "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.245.0.0/24"}]],
        "dataDir": node.data_dir,
    }});
    let (rt, list) = reference_chain(&node, second);
    let pod = node.pod("p");
    let att = Attachment::kubernetes_pod("c1", &crate::Node::pod_path(&pod), "default", "p", "u");
    let e = rt.add(&list, &att).unwrap_err();
    assert_eq!(e.call, "ADD ptp", "{e}");
    assert!(
        e.to_string().contains("already exists"),
        "the second ptp failed: {e}"
    );
    assert!(e.code.is_some(), "{e}");
    assert!(
        node.reserved_ips().is_empty(),
        "rolled back: {:?}",
        node.reserved_ips()
    );
    assert!(veths(&node).is_empty(), "rolled back: {:?}", veths(&node));
    assert_eq!(rt.cached_result(&list, &att), None);
}

#[test]
fn version_of_a_reference_plugin() {
    let rt = Runtime {
        cni_path: vec![PathBuf::from(crate::REFERENCE_DIR)],
        cache_dir: std::env::temp_dir(),
        netns: None,
    };
    let v = rt.supported_versions("portmap").unwrap();
    assert!(v.iter().any(|x| x == "1.0.0"), "{v:?}");
}

#[test]
fn missing_plugin_is_named() {
    let rt = Runtime {
        cni_path: vec![PathBuf::from("/nonexistent")],
        cache_dir: std::env::temp_dir(),
        netns: None,
    };
    let e = rt.find_plugin("nope").unwrap_err().to_string();
    assert!(e.contains("\"nope\""), "{e}");
}
