//! Watches, reflectors, 410 Expired recovery and API outages.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ferry_apiserver::{generate_nodes, GenOptions};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use serde_json::json;

fn gen(n: usize, first: usize) -> Vec<Node> {
    generate_nodes(
        n,
        &GenOptions {
            first,
            ..GenOptions::default()
        },
    )
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<Node>>> + Unpin),
) -> WatchEvent<Node> {
    tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("an event within 20s")
        .expect("stream still open")
        .expect("event decodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_store_changes_in_order() {
    let (_dir, server) = start(gen(2, 0), 100).await;
    let api: Api<Node> = Api::all(client(&server).await);
    let list = api.list(&ListParams::default()).await.unwrap();
    let list_rv = list.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &list_rv)
        .await
        .unwrap()
        .boxed();

    let store = server.store();
    store.add_node(gen(1, 7).remove(0)).unwrap();
    store
        .modify_node("node-0", &json!({"metadata": {"labels": {"x": "1"}}}))
        .unwrap();
    store.delete_node("node-1").unwrap();

    match next_event(&mut stream).await {
        WatchEvent::Added(n) => assert_eq!(name(&n), "node-7"),
        e => panic!("expected ADDED, got {e:?}"),
    }
    match next_event(&mut stream).await {
        WatchEvent::Modified(n) => {
            assert_eq!(name(&n), "node-0");
            assert_eq!(n.metadata.labels.unwrap()["x"], "1");
        }
        e => panic!("expected MODIFIED, got {e:?}"),
    }
    match next_event(&mut stream).await {
        WatchEvent::Deleted(n) => {
            assert_eq!(name(&n), "node-1");
            assert_eq!(rv(&n), store.resource_version());
        }
        e => panic!("expected DELETED, got {e:?}"),
    }

    // A watch starting at an old RV replays from history.
    let mut replay = api
        .watch(&WatchParams::default(), &list_rv)
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        next_event(&mut replay).await,
        WatchEvent::Added(_)
    ));

    // A watch with a field selector only sees its node.
    let wp = WatchParams::default().fields("metadata.name=node-0");
    let mut one = api
        .watch(&wp, &store.resource_version().to_string())
        .await
        .unwrap()
        .boxed();
    store
        .modify_node("node-7", &json!({"metadata": {"labels": {"y": "1"}}}))
        .unwrap();
    store
        .modify_node("node-0", &json!({"metadata": {"labels": {"y": "2"}}}))
        .unwrap();
    match next_event(&mut one).await {
        WatchEvent::Modified(n) => assert_eq!(name(&n), "node-0"),
        e => panic!("expected MODIFIED node-0, got {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_timeout_ends_stream_with_bookmark() {
    let (_dir, server) = start(gen(1, 0), 100).await;
    let api: Api<Node> = Api::all(client(&server).await);
    let wp = WatchParams::default().timeout(1).disable_bookmarks();
    let rv = server.store().resource_version().to_string();
    let events: Vec<_> = api.watch(&wp, &rv).await.unwrap().collect().await;
    assert!(events.is_empty(), "{events:?}");
    let wp = WatchParams::default().timeout(1);
    let events: Vec<_> = api
        .watch(&wp, &rv)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        matches!(events.as_slice(), [WatchEvent::Bookmark(b)] if b.metadata.resource_version == rv)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_old_resource_version_is_410_expired() {
    let (_dir, server) = start(gen(3, 0), 2).await;
    let api: Api<Node> = Api::all(client(&server).await);
    let old = server.store().resource_version();
    for i in 0..5 {
        server
            .store()
            .modify_node(
                "node-0",
                &json!({"metadata": {"labels": {"n": i.to_string()}}}),
            )
            .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default(), &old.to_string())
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
        }
        e => panic!("expected a 410 ERROR event, got {e:?}"),
    }
    assert!(stream.next().await.is_none(), "stream ends after the error");

    // The newest RVs are still watchable.
    let recent = server.store().resource_version() - 1;
    let mut ok = api
        .watch(&WatchParams::default(), &recent.to_string())
        .await
        .unwrap()
        .boxed();
    assert!(matches!(next_event(&mut ok).await, WatchEvent::Modified(_)));
}

type Seen = Arc<Mutex<Vec<String>>>;

/// Run a reflector over all nodes; record what the watcher yields.
fn spawn_reflector(api: Api<Node>, page: u32) -> (reflector::Store<Node>, Seen) {
    let (reader, writer) = reflector::store();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let stream = reflector(
        writer,
        watcher(api, watcher::Config::default().page_size(page)),
    )
    .default_backoff();
    tokio::spawn(stream.for_each(move |ev| {
        let entry = match ev {
            Ok(watcher::Event::Init) => "init".to_string(),
            Ok(watcher::Event::InitDone) => "init-done".to_string(),
            Ok(_) => "event".to_string(),
            Err(watcher::Error::WatchError(s)) => format!("error {}", s.code),
            Err(e) => format!("error {e}"),
        };
        log.lock().unwrap().push(entry);
        futures::future::ready(())
    }));
    (reader, seen)
}

fn converged(reader: &reflector::Store<Node>, server: &ferry_apiserver::ApiServer) -> bool {
    let mut mine: Vec<(String, u64)> = reader.state().iter().map(|n| (name(n), rv(n))).collect();
    mine.sort();
    let mut theirs: Vec<(String, u64)> = server
        .store()
        .list()
        .iter()
        .map(|n| (name(n), rv(n)))
        .collect();
    theirs.sort();
    mine == theirs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_converges_over_pages_and_changes() {
    let (_dir, server) = start(gen(1200, 0), 100).await;
    let api: Api<Node> = Api::all(client(&server).await);
    let (reader, _seen) = spawn_reflector(api, 500);
    reader.wait_until_ready().await.unwrap();
    eventually("initial sync", 60, || converged(&reader, &server)).await;

    let store = server.store();
    store.add_node(gen(1, 5000).remove(0)).unwrap();
    store.delete_node("node-3").unwrap();
    store
        .modify_node(
            "node-9",
            &json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        )
        .unwrap();
    eventually("reflector catches up", 30, || converged(&reader, &server)).await;
    assert_eq!(reader.state().len(), 1200);
    let n9 = reader.get(&reflector::ObjectRef::new("node-9")).unwrap();
    assert_eq!(
        n9.status
            .as_ref()
            .unwrap()
            .conditions
            .as_ref()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_restart_watcher_resumes_or_relists() {
    let (_dir, mut server) = start(gen(5, 0), 3).await;
    let api: Api<Node> = Api::all(client(&server).await);
    let (reader, seen) = spawn_reflector(api.clone(), 500);
    reader.wait_until_ready().await.unwrap();
    eventually("initial sync", 30, || converged(&reader, &server)).await;
    let addr = server.addr();

    // Outage 1: a couple of changes, inside the history window: the
    // watcher resumes from its resourceVersion without relisting.
    server.stop().await;
    assert!(
        api.list(&ListParams::default()).await.is_err(),
        "server is down"
    );
    server.store().add_node(gen(1, 10).remove(0)).unwrap();
    server.store().delete_node("node-0").unwrap();
    server.restart().await.unwrap();
    assert_eq!(server.addr(), addr);
    eventually("resume after outage", 60, || converged(&reader, &server)).await;
    let inits = |s: &Seen| s.lock().unwrap().iter().filter(|e| *e == "init").count();
    assert_eq!(inits(&seen), 1, "{:?}", seen.lock().unwrap());

    // Outage 2: more changes than the history keeps: 410 and a relist.
    server.stop().await;
    for i in 0..10 {
        let patch = json!({"metadata": {"labels": {"round": i.to_string()}}});
        server.store().modify_node("node-1", &patch).unwrap();
    }
    server.store().delete_node("node-2").unwrap();
    server.restart().await.unwrap();
    eventually("relist after 410", 60, || converged(&reader, &server)).await;
    let log = seen.lock().unwrap().clone();
    assert!(log.iter().any(|e| e == "error 410"), "{log:?}");
    assert_eq!(inits(&seen), 2, "{log:?}");
    let n1 = reader.get(&reflector::ObjectRef::new("node-1")).unwrap();
    assert_eq!(n1.metadata.labels.as_ref().unwrap()["round"], "9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_watcher_works() {
    let (_dir, server) = start(gen(20, 0), 100).await;
    let api: Api<Node> = Api::all(client(&server).await);
    let (reader, writer) = reflector::store();
    let cfg = watcher::Config::default().streaming_lists();
    let stream = reflector(writer, watcher(api, cfg)).default_backoff();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    reader.wait_until_ready().await.unwrap();
    eventually("streaming list sync", 30, || converged(&reader, &server)).await;
    server.store().delete_node("node-4").unwrap();
    eventually("delete seen", 30, || converged(&reader, &server)).await;
}
