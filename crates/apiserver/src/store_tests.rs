use serde_json::json;

use super::*;
use crate::fixtures::{fixture_node, generate_nodes, GenOptions};
use crate::kind::key;

fn store_with(n: usize, history: usize) -> Store {
    let store = Store::in_memory(history);
    for node in generate_nodes(n, &GenOptions::default()) {
        store.add_node(node).unwrap();
    }
    store
}

#[test]
fn resource_versions_are_one_global_counter() {
    let store = store_with(3, 10);
    assert_eq!(store.resource_version(), 3);
    let n = store
        .modify_node("node-1", &json!({"metadata": {"labels": {"a": "b"}}}))
        .unwrap();
    assert_eq!(n.metadata.resource_version.as_deref(), Some("4"));
    // A change that changes nothing commits nothing.
    store
        .modify_node("node-1", &json!({"metadata": {"labels": {"a": "b"}}}))
        .unwrap();
    assert_eq!(store.resource_version(), 4);
    // Replacing keeps uid and creationTimestamp.
    let before = store.get("node-1").unwrap();
    let mut replacement = before.clone();
    replacement.metadata.uid = Some("other".into());
    replacement.spec.as_mut().unwrap().unschedulable = Some(true);
    let after = store.add_node(replacement).unwrap();
    assert_eq!(after.metadata.uid, before.metadata.uid);
    assert_eq!(
        after.metadata.creation_timestamp,
        before.metadata.creation_timestamp
    );
    assert_eq!(store.resource_version(), 5);
}

#[test]
fn history_is_bounded_and_old_versions_expire() {
    let store = store_with(5, 3);
    assert!(matches!(
        store.events_since(1),
        Err(StoreError::Expired {
            given: 1,
            oldest: 2
        })
    ));
    let events = store.events_since(2).unwrap();
    assert_eq!(events.iter().map(|e| e.rv).collect::<Vec<_>>(), [3, 4, 5]);
    assert!(store.events_since(5).unwrap().is_empty());
    // From the future: expired too (the client must relist).
    assert!(store.events_since(6).is_err());

    store.delete_node("node-0").unwrap();
    let events = store.events_since(5).unwrap();
    assert_eq!(events[0].kind, EventType::Deleted);
    assert_eq!(events[0].obj.rv, 6);
    assert_eq!(events[0].obj.name, "node-0");
}

#[test]
fn invalid_objects_are_rejected() {
    let store = Store::in_memory(10);
    let mut bad = serde_json::to_value(fixture_node()).unwrap();
    bad["metadata"]["name"] = json!("Not_A_Name");
    assert!(matches!(
        store.upsert(Kind::Node, bad, false),
        Err(StoreError::Invalid(_))
    ));
    let mut bad = serde_json::to_value(fixture_node()).unwrap();
    bad["spec"]["podCIDRs"] = json!("not a list");
    assert!(matches!(
        store.upsert(Kind::Node, bad, false),
        Err(StoreError::Invalid(_))
    ));
    assert!(store.is_empty());
    assert_eq!(store.resource_version(), 0);

    store.add_node(fixture_node()).unwrap();
    let err = store
        .modify_node("k8s-worker-1", &json!({"metadata": null}))
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));
    assert!(matches!(
        store.modify_node("ghost", &json!({})),
        Err(StoreError::NotFound(..))
    ));
}

#[test]
fn scopes_protect_status_and_spec() {
    let store = Store::in_memory(10);
    store.add_node(fixture_node()).unwrap();
    let obj = store
        .update(&key(Kind::Node, "", "k8s-worker-1"), Scope::Main, |v| {
            v["status"] = json!({});
            v["spec"]["unschedulable"] = json!(true);
            Ok(())
        })
        .unwrap();
    let v = obj.value();
    assert_eq!(v["spec"]["unschedulable"], true);
    assert_eq!(v["status"]["conditions"].as_array().unwrap().len(), 4);
    let obj = store
        .update(&key(Kind::Node, "", "k8s-worker-1"), Scope::Status, |v| {
            v["spec"] = json!({});
            v["status"]["phase"] = json!("Running");
            Ok(())
        })
        .unwrap();
    let v = obj.value();
    assert_eq!(v["spec"]["unschedulable"], true);
    assert_eq!(v["status"]["phase"], "Running");
}

#[test]
fn raw_objects_round_trip() {
    let store = store_with(2, 10);
    let obj = store.get_obj(&key(Kind::Node, "", "node-1")).unwrap();
    let raw = Obj::from_raw(&obj.json).unwrap();
    assert_eq!((raw.name.as_str(), raw.rv), ("node-1", obj.rv));
    assert_eq!(raw.labels, obj.labels);
    assert!(Obj::from_raw(br#"{"metadata":{}}"#).is_err());
}
