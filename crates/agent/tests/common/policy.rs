//! NetworkPolicy helpers: API objects into the lab's store, and the
//! policy table of a node netns.

use std::process::Command;

use ferry_apiserver::Store;
use serde_json::{json, Value};

use super::LabNode;

/// The table ferryd's policy controller owns.
pub const POLICY_TABLE: &str = "ferry-policy";

/// Adds (or replaces) a Namespace with `labels`.
pub fn put_namespace(store: &Store, name: &str, labels: Value) {
    store
        .put(json!({"kind": "Namespace", "apiVersion": "v1",
                    "metadata": {"name": name, "labels": labels}}))
        .unwrap();
}

/// Adds (or replaces) a running Pod on `node` with address `ip`.
pub fn put_pod(store: &Store, ns: &str, name: &str, node: &str, ip: &str, labels: Value) {
    store
        .put(json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x",
                     "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
        }))
        .unwrap();
}

/// Adds (or replaces) a NetworkPolicy with `spec`.
pub fn put_policy(store: &Store, ns: &str, name: &str, spec: Value) {
    store
        .put(
            json!({"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
                    "metadata": {"name": name, "namespace": ns}, "spec": spec}),
        )
        .unwrap();
}

/// `nft list table inet ferry-policy` in the node, `None` if absent.
pub fn policy_table(node: &LabNode) -> Option<String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &node.ns,
            "nft",
            "list",
            "table",
            "inet",
            POLICY_TABLE,
        ])
        .output()
        .expect("run nft");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Loads `text` (nft syntax) into the node, as an earlier ferryd would
/// have left it.
pub fn load_table(node: &LabNode, text: &str) {
    let file = node.dir.join("policy.nft");
    std::fs::write(&file, text).unwrap();
    let ok = ferry_testkit::ns_exec(&node.ns, &["nft", "-f", &file.display().to_string()]);
    assert!(ok, "nft -f {text}");
}

/// A metric series' value (`name{labels}` exactly as rendered).
pub fn series(node: &LabNode, series: &str) -> Option<f64> {
    node.metric(series)
}
