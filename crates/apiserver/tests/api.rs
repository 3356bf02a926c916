//! kube-rs against the server: list, get, paging, selectors, patches,
//! auth and TLS.

mod common;

use common::*;
use ferry_apiserver::{fixture_node, generate_nodes, GenOptions};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn api_err(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_get_and_not_found() {
    let (_dir, server) = start(generate_nodes(3, &GenOptions::default()), 100).await;
    let api: Api<Node> = Api::all(client(&server).await);

    let list = api.list(&ListParams::default()).await.unwrap();
    let names: Vec<_> = list.items.iter().map(name).collect();
    assert_eq!(names, ["node-0", "node-1", "node-2"]);
    let list_rv: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    assert_eq!(list_rv, server.store().resource_version());
    for n in &list.items {
        assert!(n.metadata.uid.is_some());
        assert!(n.metadata.creation_timestamp.is_some());
        assert!(rv(n) >= 1 && rv(n) <= list_rv);
    }

    let node = api.get("node-1").await.unwrap();
    assert_eq!(
        node.spec.unwrap().pod_cidr.as_deref(),
        Some("10.244.1.0/24")
    );

    let (code, reason) = api_err(api.get("nope").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert!(api.get_opt("nope").await.unwrap().is_none());

    // Discovery-ish endpoints work through the same client.
    let version = client(&server).await.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_returns_all_nodes_in_pages() {
    let (_dir, server) = start(generate_nodes(1200, &GenOptions::default()), 100).await;
    let api: Api<Node> = Api::all(client(&server).await);
    let mut names = Vec::new();
    let mut pages = 0;
    let mut lp = ListParams::default().limit(500);
    let first_rv = loop {
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        names.extend(page.items.iter().map(name));
        let rv = page.metadata.resource_version.clone().unwrap();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => {
                assert_eq!(
                    page.metadata.remaining_item_count,
                    Some(1200 - names.len() as i64)
                );
                lp = lp.continue_token(&token);
            }
            None => break rv,
        }
    };
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 1200);
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 1200);
    assert_eq!(first_rv, server.store().resource_version().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_field_selectors() {
    let mut nodes = generate_nodes(4, &GenOptions::default());
    nodes[2]
        .metadata
        .labels
        .get_or_insert_default()
        .insert("ferry.dev/zone".into(), "b".into());
    let (_dir, server) = start(nodes, 100).await;
    let api: Api<Node> = Api::all(client(&server).await);

    let by_name = api
        .list(&ListParams::default().fields("metadata.name=node-3"))
        .await
        .unwrap();
    assert_eq!(
        by_name.items.iter().map(name).collect::<Vec<_>>(),
        ["node-3"]
    );
    let others = api
        .list(&ListParams::default().fields("metadata.name!=node-3"))
        .await
        .unwrap();
    assert_eq!(others.items.len(), 3);
    let zone = api
        .list(&ListParams::default().labels("ferry.dev/zone=b"))
        .await
        .unwrap();
    assert_eq!(zone.items.iter().map(name).collect::<Vec<_>>(), ["node-2"]);
    let not_zone = api
        .list(&ListParams::default().labels("!ferry.dev/zone"))
        .await
        .unwrap();
    assert_eq!(not_zone.items.len(), 3);
    let set = api
        .list(&ListParams::default().labels("kubernetes.io/hostname in (node-0,node-1)"))
        .await
        .unwrap();
    assert_eq!(set.items.len(), 2);

    let (code, _) = api_err(
        api.list(&ListParams::default().fields("spec.bogus=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_status_patch_keeps_other_conditions() {
    let (_dir, server) = start(vec![fixture_node()], 100).await;
    let api: Api<Node> = Api::all(client(&server).await);
    let before = server.store().resource_version();

    let patch = json!({"status": {"conditions": [{
        "type": "NetworkUnavailable", "status": "False", "reason": "FerryIsUp",
        "message": "ferry routes are in place",
        "lastTransitionTime": "2025-06-03T12:00:00Z", "lastHeartbeatTime": "2025-06-03T12:00:00Z"
    }]}});
    let node = api
        .patch_status(
            "k8s-worker-1",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .unwrap();
    let conds = node.status.clone().unwrap().conditions.unwrap();
    let types: Vec<_> = conds.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        [
            "MemoryPressure",
            "DiskPressure",
            "PIDPressure",
            "Ready",
            "NetworkUnavailable"
        ]
    );
    assert_eq!(conds[4].reason.as_deref(), Some("FerryIsUp"));
    assert_eq!(rv(&node), before + 1);

    // Same patch again: nothing changes, no new resourceVersion.
    let again = api
        .patch_status(
            "k8s-worker-1",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .unwrap();
    assert_eq!(rv(&again), before + 1);

    // Flip only the status of the condition; the rest of it stays.
    let flip =
        json!({"status": {"conditions": [{"type": "NetworkUnavailable", "status": "True"}]}});
    let node = api
        .patch_status(
            "k8s-worker-1",
            &PatchParams::default(),
            &Patch::Strategic(&flip),
        )
        .await
        .unwrap();
    let cond = node
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .last()
        .unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_deref()),
        ("True", Some("FerryIsUp"))
    );

    // Server-side apply (JSON body) merges the same way.
    let apply = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "k8s-worker-1"},
        "status": {"conditions": [{"type": "NetworkUnavailable", "status": "False", "reason": "Applied"}]}});
    let node = api
        .patch_status(
            "k8s-worker-1",
            &PatchParams::apply("ferryd").force(),
            &Patch::Apply(&apply),
        )
        .await
        .unwrap();
    let conds = node.status.unwrap().conditions.unwrap();
    assert_eq!(conds.len(), 5);
    assert_eq!(conds[4].reason.as_deref(), Some("Applied"));

    // Merge patch of the main resource: labels change, status does not.
    let merge = json!({"metadata": {"labels": {"ferry.dev/ready": "yes"}},
                       "status": {"conditions": []}});
    let node = api
        .patch(
            "k8s-worker-1",
            &PatchParams::default(),
            &Patch::Merge(&merge),
        )
        .await
        .unwrap();
    assert_eq!(node.metadata.labels.unwrap()["ferry.dev/ready"], "yes");
    assert_eq!(node.status.unwrap().conditions.unwrap().len(), 5);

    // A stale resourceVersion is a conflict.
    let stale = json!({"metadata": {"resourceVersion": "1"}, "spec": {"unschedulable": true}});
    let (code, reason) = api_err(
        api.patch(
            "k8s-worker-1",
            &PatchParams::default(),
            &Patch::Merge(&stale),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert_eq!(
        server
            .store()
            .get("k8s-worker-1")
            .unwrap()
            .spec
            .unwrap()
            .unschedulable,
        None
    );

    // Patching a missing node is a 404.
    let (code, _) = api_err(
        api.patch_status("ghost", &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_replace_delete() {
    let (_dir, server) = start(vec![], 100).await;
    let api: Api<Node> = Api::all(client(&server).await);
    let created = api
        .create(&PostParams::default(), &fixture_node())
        .await
        .unwrap();
    assert_eq!(rv(&created), 1);
    let (code, _) = api_err(
        api.create(&PostParams::default(), &fixture_node())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 409);

    let mut node = created.clone();
    node.spec.get_or_insert_default().unschedulable = Some(true);
    let replaced = api
        .replace("k8s-worker-1", &PostParams::default(), &node)
        .await
        .unwrap();
    assert_eq!(replaced.spec.unwrap().unschedulable, Some(true));
    assert_eq!(replaced.metadata.uid, created.metadata.uid);
    // Replacing with the old resourceVersion again conflicts.
    let (code, _) = api_err(
        api.replace("k8s-worker-1", &PostParams::default(), &node)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 409);

    api.delete("k8s-worker-1", &Default::default())
        .await
        .unwrap();
    assert!(server.store().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_missing_token_is_401() {
    let (dir, server) = start(vec![fixture_node()], 100).await;
    let mut kc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(server.kubeconfig_path()).unwrap()).unwrap();
    kc["users"][0]["user"]["token"] = json!("wrong");
    let wrong = dir.path().join("wrong.kubeconfig");
    std::fs::write(&wrong, kc.to_string()).unwrap();
    let api: Api<Node> = Api::all(kubeconfig_client(&wrong).await);
    let err = api.list(&ListParams::default()).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected a Status, got {err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"));
    assert_eq!(status.message, "Unauthorized");

    kc["users"][0]["user"] = json!({});
    let none = dir.path().join("none.kubeconfig");
    std::fs::write(&none, kc.to_string()).unwrap();
    let api: Api<Node> = Api::all(kubeconfig_client(&none).await);
    let (code, _) = api_err(api.get("k8s-worker-1").await.unwrap_err());
    assert_eq!(code, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_with_another_ca_fails_tls() {
    let (_dir_a, a) = start(vec![fixture_node()], 100).await;
    let (dir_b, b) = start(vec![], 100).await;
    assert_ne!(a.ca_pem(), b.ca_pem());
    // Server A's address, but trusting only server B's CA.
    let kc = b.kubeconfig_for(&a.url());
    let path = dir_b.path().join("cross.kubeconfig");
    std::fs::write(&path, kc).unwrap();
    let api: Api<Node> = Api::all(kubeconfig_client(&path).await);
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "must fail before HTTP: {err:?}"
    );
    let text = format!("{err:?}").to_lowercase();
    assert!(
        text.contains("certificate") || text.contains("tls"),
        "{text}"
    );
    // Its own CA works.
    let ok: Api<Node> = Api::all(client(&a).await);
    assert_eq!(
        ok.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
}

/// Numbers, not assertions on time: how long a 5000-node list takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_5000_nodes() {
    let t = std::time::Instant::now();
    let nodes = generate_nodes(5000, &GenOptions::default());
    let (_dir, server) = start(nodes, 1000).await;
    let started = t.elapsed();
    let api: Api<Node> = Api::all(client(&server).await);
    let t = std::time::Instant::now();
    let all = api.list(&ListParams::default()).await.unwrap();
    let full = t.elapsed();
    let t = std::time::Instant::now();
    let mut count = 0;
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = api.list(&lp).await.unwrap();
        count += page.items.len();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    let paged = t.elapsed();
    assert_eq!(all.items.len(), 5000);
    assert_eq!(count, 5000);
    let bytes = std::fs::metadata(server.state_dir().join(ferry_apiserver::SNAPSHOT))
        .unwrap()
        .len();
    println!(
        "5000 nodes: generate+start {started:?}, one list {full:?}, 10 pages {paged:?}, \
         snapshot {bytes} bytes"
    );
}
