//! The `ferry-apiserver` binary, the admin API, persistence across
//! restarts, and the blocking wrapper.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use ferry_apiserver::{fixture_control_plane, fixture_node, ApiServer, Kind, KUBECONFIG};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ferry-apiserver");

/// A `serve` process, killed on drop.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, extra: &[&str]) -> Serve {
    let _ = std::fs::remove_file(dir.join(KUBECONFIG));
    let child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn ferry-apiserver");
    let server = Serve(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !dir.join(KUBECONFIG).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no kubeconfig written"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

fn cli(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--state-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run ferry-apiserver");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serve_and_node_commands() {
    let dir = tempdir();
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, ferry_apiserver::CONTROL_PLANE_JSON).unwrap();
    let seed_arg = seed.to_str().unwrap();
    let mut proc = serve(dir.path(), &["--nodes", seed_arg, "--generate", "2"]);

    let kubeconfig = dir.path().join(KUBECONFIG);
    let api: Api<Node> = Api::all(kubeconfig_client(&kubeconfig).await);
    let names = |l: &kube::core::ObjectList<Node>| l.items.iter().map(name).collect::<Vec<_>>();
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&list), ["k8s-master", "node-0", "node-1"]);
    let mut watch = api
        .watch(
            &WatchParams::default(),
            list.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();

    let file = dir.path().join("worker.json");
    std::fs::write(&file, ferry_apiserver::WORKER_JSON).unwrap();
    let out = tokio::task::spawn_blocking({
        let (d, f) = (dir.path().to_path_buf(), file.clone());
        move || cli(&d, &["node", "add", f.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert!(out.contains("node/k8s-worker-1 stored"), "{out}");
    let ev = tokio::time::timeout(Duration::from_secs(20), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, WatchEvent::Added(ref n) if name(n) == "k8s-worker-1"),
        "{ev:?}"
    );

    let d = dir.path().to_path_buf();
    let (patched, listed, deleted) = tokio::task::spawn_blocking(move || {
        let p = cli(
            &d,
            &[
                "node",
                "patch",
                "node-0",
                r#"{"spec":{"unschedulable":true}}"#,
            ],
        );
        let l = cli(&d, &["node", "list"]);
        let x = cli(&d, &["node", "delete", "node-1"]);
        (p, l, x)
    })
    .await
    .unwrap();
    assert!(patched.contains("node/node-0 patched"), "{patched}");
    assert!(
        listed.contains("k8s-worker-1") && listed.contains("172.16.97.76"),
        "{listed}"
    );
    assert!(deleted.contains("node/node-1 deleted"), "{deleted}");
    assert_eq!(
        api.get("node-0").await.unwrap().spec.unwrap().unschedulable,
        Some(true)
    );
    assert!(api.get_opt("node-1").await.unwrap().is_none());
    let rv_before = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version;
    let rv_before: u64 = rv_before.unwrap().parse().unwrap();

    // Kill it hard and start again on the same state dir: same cluster,
    // same CA and token, larger resourceVersions; the seed is not re-applied.
    drop(proc);
    proc = serve(dir.path(), &["--nodes", seed_arg]);
    let api: Api<Node> = Api::all(kubeconfig_client(&kubeconfig).await);
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&list), ["k8s-master", "k8s-worker-1", "node-0"]);
    let rv_after: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    assert!(rv_after > rv_before, "{rv_after} > {rv_before}");
    // A watch from before the restart is told to relist.
    let mut old = api
        .watch(&WatchParams::default(), &rv_before.to_string())
        .await
        .unwrap()
        .boxed();
    let ev = old.next().await.unwrap().unwrap();
    assert!(
        matches!(ev, WatchEvent::Error(ref s) if s.code == 410),
        "{ev:?}"
    );
    drop(proc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_http_api() {
    let (_dir, server) = start(vec![fixture_node()], 100).await;
    let client = client(&server).await;
    let call = |method: &str, path: &str, body: serde_json::Value| {
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("/ferry-admin/v1/{path}"))
            .header("content-type", "application/json")
            .body(if body.is_null() {
                vec![]
            } else {
                body.to_string().into_bytes()
            })
            .unwrap();
        let client = client.clone();
        async move { client.request_text(req).await }
    };
    let cp = serde_json::to_value(fixture_control_plane()).unwrap();
    let added: serde_json::Value =
        serde_json::from_str(&call("POST", "nodes", cp).await.unwrap()).unwrap();
    assert_eq!(added["metadata"]["name"], "k8s-master");
    assert_eq!(server.store().len(), 2);

    let patch = json!({"status": {"conditions": null}, "metadata": {"labels": {"a": "b"}}});
    call("PATCH", "nodes/k8s-master", patch).await.unwrap();
    let node = server.store().get("k8s-master").unwrap();
    assert!(node.status.unwrap().conditions.is_none());
    assert_eq!(node.metadata.labels.unwrap()["a"], "b");

    let list: serde_json::Value =
        serde_json::from_str(&call("GET", "nodes", json!(null)).await.unwrap()).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    call("DELETE", "nodes/k8s-worker-1", json!(null))
        .await
        .unwrap();
    assert!(server.store().get("k8s-worker-1").is_none());
    let err = call("DELETE", "nodes/k8s-worker-1", json!(null))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
    let state: serde_json::Value =
        serde_json::from_str(&call("GET", "state", json!(null)).await.unwrap()).unwrap();
    assert_eq!(state["nodes"], 1);
    assert_eq!(
        state["resourceVersion"],
        server.store().resource_version().to_string()
    );

    // Admin changes are on disk when the call returns.
    let snap = std::fs::read_to_string(server.state_dir().join(ferry_apiserver::SNAPSHOT)).unwrap();
    assert!(snap.contains("k8s-master") && !snap.contains("k8s-worker-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_restart_from_state_dir_continues_the_cluster() {
    provider();
    let dir = tempdir();
    let server = ApiServer::start(config(dir.path(), 100), vec![fixture_node()])
        .await
        .unwrap();
    server
        .store()
        .modify_node("k8s-worker-1", &json!({"metadata": {"labels": {"k": "v"}}}))
        .unwrap();
    // Other kinds are kept too.
    let store = server.store();
    store
        .put(json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "team"}}))
        .unwrap();
    store
        .put(json!({"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
                    "metadata": {"name": "deny", "namespace": "team"}, "spec": {"podSelector": {}}}))
        .unwrap();
    let saved_rv = server.store().resource_version();
    let ca = server.ca_pem();
    drop(server);

    let again = ApiServer::start(config(dir.path(), 100), vec![fixture_control_plane()])
        .await
        .unwrap();
    assert_eq!(again.ca_pem(), ca);
    assert_eq!(again.store().names(), ["k8s-worker-1"]);
    let policy = again.store().get_value(Kind::NetworkPolicy, "team", "deny");
    assert_eq!(policy.unwrap()["metadata"]["namespace"], "team");
    assert_eq!(again.store().count(Kind::Namespace), 1);
    assert!(again.store().resource_version() > saved_rv);
    let api: Api<Node> = Api::all(client(&again).await);
    let node = api.get("k8s-worker-1").await.unwrap();
    assert_eq!(node.metadata.labels.unwrap()["k"], "v");
    let before = again.store().resource_version();
    let next = again
        .store()
        .modify_node("k8s-worker-1", &json!({"metadata": {"labels": {"k": "w"}}}));
    assert_eq!(rv(&next.unwrap()), before + 1);
}

#[test]
fn blocking_wrapper_serves_and_restarts() {
    provider();
    let dir = tempdir();
    let mut running =
        ApiServer::spawn_blocking(config(dir.path(), 100), vec![fixture_node()]).unwrap();
    assert_eq!(running.store().len(), 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kubeconfig = running.kubeconfig_path();
    let count = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let api: Api<Node> = Api::all(kubeconfig_client(&kubeconfig).await);
            api.list(&ListParams::default())
                .await
                .map(|l| l.items.len())
        })
    };
    assert_eq!(count(&rt).unwrap(), 1);
    running.stop();
    assert!(count(&rt).is_err());
    running.store().add_node(fixture_control_plane()).unwrap();
    running.restart().unwrap();
    assert_eq!(count(&rt).unwrap(), 2);
}
