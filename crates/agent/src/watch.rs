//! The agent loop: a kube-runtime watcher keeps a compact view of all
//! Nodes; every change (debounced a little) and a periodic resync trigger a
//! reconcile. During an API outage the node keeps what it has (the view
//! only changes on events), the watcher retries with backoff, and a
//! relist on return triggers a reconcile.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use tokio::sync::Notify;

use crate::discovery::{NodeInfo, Nodes};
use crate::metrics::Metrics;

/// Reconciles are at least this far apart: a change after a quiet spell
/// is handled at once, a burst of changes is coalesced.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// The agent's view of the cluster.
#[derive(Debug, Default)]
pub struct View {
    pub nodes: Nodes,
    /// A complete list has been seen (never reconcile from a partial one:
    /// that would delete routes to nodes not listed yet).
    pub listed: bool,
}

/// Shared between the watch task and the reconcile loop.
#[derive(Debug, Default)]
pub struct Shared {
    pub view: Mutex<View>,
    pub changed: Notify,
    pub metrics: Arc<Metrics>,
}

impl Shared {
    pub fn new(metrics: Arc<Metrics>) -> Arc<Shared> {
        Arc::new(Shared {
            metrics,
            ..Default::default()
        })
    }

    pub fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Exponential backoff with jitter-free doubling, 250 ms to 5 s: an API
/// server that comes back is seen within seconds.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff { next: BACKOFF_MIN }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        Some(d)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Applies one watch event to the view. Returns whether the view changed
/// in a way that matters (a reconcile is due). `buffer` collects a relist.
pub fn apply_event(view: &mut View, buffer: &mut Option<Nodes>, event: Event<Node>) -> bool {
    match event {
        Event::Init => {
            *buffer = Some(Nodes::new());
            false
        }
        Event::InitApply(node) => {
            let info = NodeInfo::from_node(&node);
            buffer
                .get_or_insert_with(Nodes::new)
                .insert(info.name.clone(), info);
            false
        }
        Event::InitDone => {
            let fresh = buffer.take().unwrap_or_default();
            let changed = !view.listed || view.nodes != fresh;
            view.nodes = fresh;
            view.listed = true;
            changed
        }
        Event::Apply(node) => {
            let info = NodeInfo::from_node(&node);
            if view.nodes.get(&info.name) == Some(&info) {
                return false;
            }
            view.nodes.insert(info.name.clone(), info);
            view.listed
        }
        Event::Delete(node) => {
            let name = node.metadata.name.unwrap_or_default();
            view.nodes.remove(&name).is_some() && view.listed
        }
    }
}

/// Watches Nodes forever, keeping `shared`'s view current and notifying
/// the reconcile loop on every relevant change.
pub async fn watch_nodes(api: Api<Node>, shared: Arc<Shared>) {
    let config = watcher::Config::default().page_size(500);
    let mut stream = std::pin::pin!(watcher::watcher(api, config).backoff(WatchBackoff::default()));
    let mut buffer: Option<Nodes> = None;
    let mut last_error: Option<(String, Instant)> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                if !shared.metrics.api_connected() {
                    shared.metrics.set_api_connected(true);
                }
                last_error = None;
                let changed = {
                    let mut view = shared.view();
                    let changed = apply_event(&mut view, &mut buffer, event);
                    shared.metrics.set_nodes_seen(view.nodes.len());
                    changed
                };
                if changed {
                    shared.changed.notify_one();
                }
            }
            Err(e) => {
                shared.metrics.set_api_connected(false);
                let msg = e.to_string();
                // Say it once, then every minute while it lasts.
                let repeat = match &last_error {
                    Some((m, at)) => *m != msg || at.elapsed() > Duration::from_secs(60),
                    None => true,
                };
                if repeat {
                    tracing::warn!(error = %msg, "Node watch failed; keeping the node as it is and retrying");
                    last_error = Some((msg, Instant::now()));
                }
            }
        }
    }
}

/// While the watch is down, asks `/version` every `every`: the watch
/// itself says nothing when it resumes without changes, so this is what
/// flips `ferry_api_connected` back (and triggers a reconcile).
pub async fn probe_api(client: kube::Client, shared: Arc<Shared>, every: Duration) {
    let mut said: Option<Instant> = None;
    loop {
        tokio::time::sleep(every).await;
        if shared.metrics.api_connected() {
            continue;
        }
        if client.apiserver_version().await.is_ok() && !shared.metrics.api_connected() {
            shared.metrics.set_api_connected(true);
            // Once a minute at most, should the watch keep failing (RBAC).
            if said.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                tracing::info!("API server reachable again");
                said = Some(Instant::now());
            }
            shared.changed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cidr: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}
        }))
        .unwrap()
    }

    #[test]
    fn nothing_is_due_before_a_complete_list() {
        let mut view = View::default();
        let mut buf = None;
        assert!(!apply_event(
            &mut view,
            &mut buf,
            Event::Apply(node("a", "10.244.0.0/24"))
        ));
        assert!(!apply_event(&mut view, &mut buf, Event::Init));
        assert!(!apply_event(
            &mut view,
            &mut buf,
            Event::InitApply(node("b", "10.244.1.0/24"))
        ));
        assert!(!view.listed);
        assert!(apply_event(&mut view, &mut buf, Event::InitDone));
        assert!(view.listed);
        // The relist replaced the view: "a" was not listed.
        assert_eq!(view.nodes.keys().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn only_relevant_changes_are_due() {
        let mut view = View::default();
        let mut buf = None;
        apply_event(&mut view, &mut buf, Event::Init);
        apply_event(
            &mut view,
            &mut buf,
            Event::InitApply(node("a", "10.244.0.0/24")),
        );
        apply_event(&mut view, &mut buf, Event::InitDone);
        // A heartbeat-only update: same info.
        let mut same = node("a", "10.244.0.0/24");
        same.metadata.resource_version = Some("99".into());
        assert!(!apply_event(&mut view, &mut buf, Event::Apply(same)));
        assert!(apply_event(
            &mut view,
            &mut buf,
            Event::Apply(node("a", "10.244.9.0/24"))
        ));
        assert!(apply_event(
            &mut view,
            &mut buf,
            Event::Apply(node("c", "10.244.2.0/24"))
        ));
        assert!(apply_event(
            &mut view,
            &mut buf,
            Event::Delete(node("c", ""))
        ));
        assert!(!apply_event(
            &mut view,
            &mut buf,
            Event::Delete(node("zz", ""))
        ));
        // A relist that finds the same nodes is not a change.
        apply_event(&mut view, &mut buf, Event::Init);
        apply_event(
            &mut view,
            &mut buf,
            Event::InitApply(node("a", "10.244.9.0/24")),
        );
        assert!(!apply_event(&mut view, &mut buf, Event::InitDone));
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = WatchBackoff::default();
        let got: Vec<u128> = b.by_ref().take(7).map(|d| d.as_millis()).collect();
        assert_eq!(got, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next(), Some(BACKOFF_MIN));
    }
}
