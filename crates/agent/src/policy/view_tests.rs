use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as net;
use serde_json::json;

use super::*;

fn pod(name: &str, ip: &str, phase: &str) -> core::Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
        "status": {"phase": phase, "podIPs": [{"ip": ip}]}
    }))
    .unwrap()
}

#[test]
fn nothing_changes_before_a_complete_list_and_relists_swap_whole() {
    let mut t: Table<ferry_netpol::Pod> = Table::default();
    assert!(!t.apply(Event::Apply(pod("a", "10.0.0.1", "Running")), slim_pod));
    assert!(!t.apply(Event::Init, slim_pod));
    assert!(!t.apply(Event::InitApply(pod("b", "10.0.0.2", "Running")), slim_pod));
    // A finished pod is not kept.
    assert!(!t.apply(
        Event::InitApply(pod("c", "10.0.0.3", "Succeeded")),
        slim_pod
    ));
    assert!(!t.listed);
    assert!(t.apply(Event::InitDone, slim_pod));
    let keys: Vec<_> = t.items.keys().map(|k| k.1.as_str()).collect();
    assert_eq!(keys, ["b"]);
    // Same content: no change; new address: change; finishing: removal.
    assert!(!t.apply(Event::Apply(pod("b", "10.0.0.2", "Running")), slim_pod));
    assert!(t.apply(Event::Apply(pod("b", "10.0.0.9", "Running")), slim_pod));
    assert!(t.apply(Event::Apply(pod("b", "10.0.0.9", "Failed")), slim_pod));
    assert!(t.items.is_empty());
    assert!(!t.apply(Event::Delete(pod("b", "10.0.0.9", "Failed")), slim_pod));
    // A relist with the same objects is no change.
    t.apply(Event::Apply(pod("d", "10.0.0.4", "Running")), slim_pod);
    t.apply(Event::Init, slim_pod);
    t.apply(Event::InitApply(pod("d", "10.0.0.4", "Running")), slim_pod);
    assert!(!t.apply(Event::InitDone, slim_pod));
}

#[test]
fn bad_policies_fail_closed() {
    let np = |spec: serde_json::Value| -> net::NetworkPolicy {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "team"}, "spec": spec
        }))
        .unwrap()
    };
    // A bad rule: kept without it, reported.
    let (_, e) = slim_policy(&np(json!({
        "podSelector": {},
        "ingress": [{"ports": [{"protocol": "ICMP", "port": 1}]}, {}]
    })));
    let e = e.unwrap();
    assert!(!e.enforceable());
    assert_eq!(e.policy.ingress.len(), 1);
    // Unusable as a whole: deny-all in both directions for the namespace.
    let (_, e) = slim_policy(&np(json!({
        "podSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]},
        "ingress": [{}]
    })));
    let e = e.unwrap();
    assert!(!e.enforceable());
    assert_eq!(e.policy.pod_selector, LabelSelector::everything());
    let types = e.policy.effective_types();
    assert!(types.ingress && types.egress);
    assert!(e.policy.ingress.is_empty() && e.policy.egress.is_empty());
    // A good one.
    let (k, e) = slim_policy(&np(json!({"podSelector": {}})));
    assert_eq!(k, ("team".to_string(), "p".to_string()));
    assert!(e.unwrap().enforceable());
}

#[test]
fn an_unknown_pod_is_answered_only_while_no_policy_exists() {
    let mut v = View::default();
    for (stem, name) in [("c1_eth0", "known"), ("c2_eth0", "unknown")] {
        let a = Announced {
            namespace: "default".into(),
            name: name.into(),
            ips: vec!["10.0.0.7".parse().unwrap()],
        };
        v.announced.insert(stem.into(), a);
    }
    let known = pod("known", "10.0.0.1", "Running");
    v.pods.apply(Event::Init, slim_pod);
    v.pods.apply(Event::InitApply(known), slim_pod);
    v.pods.apply(Event::InitDone, slim_pod);
    // No NetworkPolicy: the ruleset depends on no pod, both are covered.
    let (_, covered) = v.cluster_on("n1");
    assert_eq!(covered, ["c1_eth0", "c2_eth0"]);
    // One policy anywhere: the unknown pod waits for its Pod object.
    let np: net::NetworkPolicy = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "other"}, "spec": {"podSelector": {}}
    }))
    .unwrap();
    v.policies.apply(Event::Init, slim_policy);
    v.policies.apply(Event::InitApply(np), slim_policy);
    v.policies.apply(Event::InitDone, slim_policy);
    let (cluster, covered) = v.cluster_on("n1");
    assert_eq!(covered, ["c1_eth0"]);
    assert_eq!(cluster.pods.len(), 1, "an unknown pod is not invented");
}
