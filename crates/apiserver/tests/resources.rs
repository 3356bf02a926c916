//! Namespaces, Pods and NetworkPolicies through kube-rs's typed `Api`:
//! create, get, list with selectors and paging, replace, delete, watch
//! (a reflector per kind), and what a namespace means for its objects.

mod common;

use std::time::Duration;

use common::*;
use ferry_apiserver::Kind;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use serde_json::json;

fn ns(name: &str, labels: serde_json::Value) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

fn pod(name: &str, node: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Running", "podIP": "10.244.0.9"}
    }))
    .unwrap()
}

fn policy(name: &str) -> NetworkPolicy {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}
    }))
    .unwrap()
}

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    items
        .iter()
        .map(|o| o.meta().name.clone().unwrap())
        .collect()
}

fn api_code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_crud_selectors_and_paging() {
    let (_dir, server) = start(vec![], 100).await;
    let c = client(&server).await;
    let namespaces: Api<Namespace> = Api::all(c.clone());
    let pp = PostParams::default();
    // A pod needs its namespace.
    let pods_a: Api<Pod> = Api::namespaced(c.clone(), "a");
    let create_p0 = || async { pods_a.create(&pp, &pod("p0", "n1", "web")).await };
    assert_eq!(api_code(create_p0().await.unwrap_err()), 404);
    for name in ["a", "b"] {
        namespaces
            .create(&pp, &ns(name, json!({"team": name})))
            .await
            .unwrap();
    }
    let pods_b: Api<Pod> = Api::namespaced(c.clone(), "b");
    for i in 0..5 {
        let node = if i % 2 == 0 { "n1" } else { "n2" };
        pods_a
            .create(&pp, &pod(&format!("p{i}"), node, "web"))
            .await
            .unwrap();
    }
    pods_b.create(&pp, &pod("q", "n1", "db")).await.unwrap();
    assert_eq!(api_code(create_p0().await.unwrap_err()), 409);

    let got = pods_a.get("p3").await.unwrap();
    assert_eq!(got.metadata.namespace.as_deref(), Some("a"));
    assert_eq!(got.spec.unwrap().node_name.as_deref(), Some("n2"));
    assert!(pods_b.get_opt("p3").await.unwrap().is_none());

    let all: Api<Pod> = Api::all(c.clone());
    let on_n1 = all
        .list(&ListParams::default().fields("spec.nodeName=n1"))
        .await
        .unwrap();
    assert_eq!(names(&on_n1.items), ["p0", "p2", "p4", "q"]);
    let db = all
        .list(&ListParams::default().labels("app=db"))
        .await
        .unwrap();
    assert_eq!(names(&db.items), ["q"]);
    assert!(all
        .list(&ListParams::default().fields("spec.bogus=1"))
        .await
        .is_err());
    // Paging across namespaces.
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(2);
    loop {
        let page = all.list(&lp).await.unwrap();
        seen.extend(page.items.iter().map(|p| {
            p.metadata.namespace.clone().unwrap() + "/" + &p.metadata.name.clone().unwrap()
        }));
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => lp = lp.continue_token(&t),
            _ => break,
        }
    }
    assert_eq!(seen, ["a/p0", "a/p1", "a/p2", "a/p3", "a/p4", "b/q"]);

    // Replace, then a stale replace is a conflict.
    let mut p = pods_a.get("p1").await.unwrap();
    let stale = p.clone();
    p.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("app".into(), "api".into());
    let replaced = pods_a.replace("p1", &pp, &p).await.unwrap();
    assert_eq!(replaced.metadata.labels.unwrap()["app"], "api");
    assert_eq!(
        api_code(pods_a.replace("p1", &pp, &stale).await.unwrap_err()),
        409
    );

    // Policies live in networking.k8s.io/v1.
    let pols: Api<NetworkPolicy> = Api::namespaced(c.clone(), "a");
    pols.create(&pp, &policy("deny")).await.unwrap();
    let all_pols: Api<NetworkPolicy> = Api::all(c.clone());
    assert_eq!(
        names(&all_pols.list(&ListParams::default()).await.unwrap().items),
        ["deny"]
    );
    let stored = server
        .store()
        .get_value(Kind::NetworkPolicy, "a", "deny")
        .unwrap();
    assert_eq!(stored["apiVersion"], "networking.k8s.io/v1");
    // Invalid objects are refused.
    let bad = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "x", "namespace": "a"}, "spec": {"podSelector": 5}});
    assert!(server.store().put(bad).is_err());

    // Deleting a namespace takes its pods and policies along.
    namespaces
        .delete("a", &DeleteParams::default())
        .await
        .unwrap();
    assert!(all
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .all(|p| p.metadata.namespace.as_deref() == Some("b")));
    assert!(all_pols
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    pods_b.delete("q", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_code(pods_b.get("q").await.unwrap_err()), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflectors_follow_each_kind() {
    let (_dir, server) = start(vec![], 100).await;
    let store = server.store();
    store.put_object(&ns("default", json!({}))).unwrap();
    let c = client(&server).await;
    let (pods, writer) = reflector::store::<Pod>();
    let stream = reflector(
        writer,
        watcher(Api::all(c.clone()), watcher::Config::default().page_size(2)),
    )
    .default_backoff();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    let (namespaces, writer) = reflector::store::<Namespace>();
    let stream =
        reflector(writer, watcher(Api::all(c.clone()), Default::default())).default_backoff();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    let on_n2 = watcher::Config::default().fields("spec.nodeName=n2");
    let (mine, writer) = reflector::store::<Pod>();
    let stream = reflector(writer, watcher(Api::all(c.clone()), on_n2)).default_backoff();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));

    for i in 0..5 {
        let mut p = serde_json::to_value(pod(&format!("p{i}"), "n1", "web")).unwrap();
        p["metadata"]["namespace"] = json!("default");
        p["kind"] = json!("Pod");
        store.put(p).unwrap();
    }
    eventually("5 pods reflected", 20, || pods.state().len() == 5).await;
    // A pod moving to n2 appears in the n2 watch; a deleted pod goes.
    store
        .modify(
            Kind::Pod,
            "default",
            "p1",
            &json!({"spec": {"nodeName": "n2"}}),
        )
        .unwrap();
    store.remove(Kind::Pod, "default", "p4").unwrap();
    store.put_object(&ns("other", json!({"x": "y"}))).unwrap();
    eventually("the changes reflected", 20, || {
        pods.state().len() == 4
            && names(
                &mine
                    .state()
                    .iter()
                    .map(|p| (**p).clone())
                    .collect::<Vec<_>>(),
            ) == ["p1"]
            && namespaces.state().len() == 2
    })
    .await;
    // Moving back out of the selector is a delete for that watch.
    store
        .modify(
            Kind::Pod,
            "default",
            "p1",
            &json!({"spec": {"nodeName": "n1"}}),
        )
        .unwrap();
    eventually("p1 left the n2 watch", 20, || mine.state().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
}
