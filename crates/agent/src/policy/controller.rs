//! The policy loop: three watches feed the [`View`]; a change (debounced
//! by [`DEBOUNCE`]) or a resync compiles this node's ruleset and syncs it
//! through the [`Engine`] off the async runtime.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as net;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use tokio::time::{sleep, sleep_until, Instant};

use super::dataplane::PolicyDataplane;
use super::engine::{self, Engine, Synced};
use super::view::{self, Key, Table, View};
use super::PolicyShared;
use crate::watch::WatchBackoff;

/// How long a change waits for more before the compile: a burst of pod
/// events becomes one transaction.
pub const DEBOUNCE: Duration = Duration::from_millis(5);
/// Objects per list page.
const PAGE: u32 = 100;
/// How often the drop counters are read for `/metrics`.
const COUNTER_POLL: Duration = Duration::from_secs(5);

type SharedView = Arc<Mutex<View>>;

fn lock(v: &Mutex<View>) -> std::sync::MutexGuard<'_, View> {
    v.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs policy until the task is dropped: watches, and the sync loop.
pub async fn run<D: PolicyDataplane>(
    client: Client,
    dp: D,
    shared: Arc<PolicyShared>,
    resync: Duration,
) {
    let view: SharedView = Arc::default();
    let watches = [
        tokio::spawn(watch(
            Api::<core::Namespace>::all(client.clone()),
            "",
            view.clone(),
            shared.clone(),
            |v| &mut v.namespaces,
            view::slim_namespace,
        )),
        tokio::spawn(watch(
            Api::<core::Pod>::all(client.clone()),
            // Finished pods are never kept (their addresses may be reused):
            // not listing them at all saves parsing them.
            "status.phase!=Succeeded,status.phase!=Failed",
            view.clone(),
            shared.clone(),
            |v| &mut v.pods,
            view::slim_pod,
        )),
        tokio::spawn(watch(
            Api::<net::NetworkPolicy>::all(client),
            "",
            view.clone(),
            shared.clone(),
            |v| &mut v.policies,
            view::slim_policy,
        )),
    ];
    struct AbortOnDrop<const N: usize>([tokio::task::JoinHandle<()>; N]);
    impl<const N: usize> Drop for AbortOnDrop<N> {
        fn drop(&mut self) {
            self.0.iter().for_each(|t| t.abort());
        }
    }
    let _watches = AbortOnDrop(watches);
    if let Some(log) = shared.drop_log {
        super::drop_log::spawn(log, view.clone(), shared.clone());
    }
    if let Some(dir) = shared.announce_dir.clone() {
        super::announce::spawn_watcher(dir, view.clone(), shared.clone());
    }
    sync_loop(Engine::new(dp), view, shared, resync).await
}

/// Keeps one kind's [`Table`] current, waking the loop on changes.
async fn watch<K, V>(
    api: Api<K>,
    fields: &'static str,
    view: SharedView,
    shared: Arc<PolicyShared>,
    table: fn(&mut View) -> &mut Table<V>,
    slim: fn(&K) -> (Key, Option<V>),
) where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
    V: PartialEq,
{
    // Small pages: a page of real Pods (managedFields and all) is parsed
    // whole before it is slimmed; 100 keeps that peak to a few MiB.
    let mut config = watcher::Config::default().page_size(PAGE);
    if !fields.is_empty() {
        config = config.fields(fields);
    }
    let mut stream = std::pin::pin!(watcher::watcher(api, config).backoff(WatchBackoff::default()));
    let mut said: Option<String> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                said = None;
                if table(&mut lock(&view)).apply(event, slim) {
                    shared.changed.notify_one();
                }
            }
            Err(e) => {
                let msg = e.to_string();
                if said.as_ref() != Some(&msg) {
                    tracing::warn!(kind = %K::kind(&()), error = %msg, "policy watch failed; enforcing what is installed and retrying");
                    said = Some(msg);
                }
            }
        }
    }
}

/// One thread owns the [`Engine`] and does every compile and sync: the
/// big short-lived allocations of a compile then always come from the
/// same malloc arena (the blocking pool's threads would each keep theirs).
struct Worker<D: PolicyDataplane> {
    jobs: std::sync::mpsc::Sender<Job<D>>,
}

type Job<D> = Box<dyn FnOnce(&mut Engine<D>) + Send>;

impl<D: PolicyDataplane> Worker<D> {
    fn spawn(mut engine: Engine<D>) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job<D>>();
        std::thread::Builder::new()
            .name("ferry-policy".into())
            .spawn(move || {
                for job in queue {
                    job(&mut engine);
                }
            })
            .expect("spawn the policy thread");
        Worker { jobs }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine<D>) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job<D> = Box::new(move |e| {
            let _ = tx.send(f(e));
        });
        self.jobs.send(job).expect("the policy thread runs");
        rx.await.expect("the policy thread answers")
    }
}

async fn sync_loop<D: PolicyDataplane>(
    engine: Engine<D>,
    view: SharedView,
    shared: Arc<PolicyShared>,
    resync: Duration,
) {
    let worker = Worker::spawn(engine);
    let mut next_resync = Instant::now() + resync;
    let mut next_poll = Instant::now() + COUNTER_POLL;
    let mut retry: Option<Instant> = None;
    let mut failures = 0u32;
    let mut last_error: Option<String> = None;
    let mut logged: BTreeSet<String> = BTreeSet::new();
    loop {
        let due = tokio::select! {
            _ = shared.changed.notified() => { sleep(DEBOUNCE).await; Due::Sync }
            _ = sleep_until(next_resync) => { next_resync = Instant::now() + resync; Due::Resync }
            _ = sleep_until(retry.unwrap_or(next_resync)), if retry.is_some() => Due::Sync,
            _ = sleep_until(next_poll) => { next_poll = Instant::now() + COUNTER_POLL; Due::Poll }
        };
        let node = shared.state().node.clone();
        let (Some(node), true) = (node, lock(&view).listed()) else {
            continue;
        };
        if due == Due::Poll {
            let totals = worker
                .run(|eng| {
                    let _ = eng.poll_counters();
                    eng.drop_totals().clone()
                })
                .await;
            shared.state().drops = totals;
            continue;
        }
        let started = std::time::Instant::now();
        let (problems, counts) = {
            let v = lock(&view);
            let entries = v.policies.items.values();
            let problems: BTreeSet<String> = entries
                .clone()
                .flat_map(|e| e.problems.iter().map(|p| p.to_string()))
                .collect();
            let bad = entries.filter(|e| !e.enforceable()).count();
            (problems, (v.policies.items.len() - bad, bad))
        };
        for p in problems.difference(&logged) {
            tracing::warn!("{p}; enforced fail closed (see ferry_network_policies)");
        }
        logged = problems;
        let opts = ferry_netpol::Options::new(&node).with_drop_log(shared.drop_log);
        let (v, sh) = (view.clone(), shared.clone());
        let (result, rs_info) = worker
            .run(move |eng| {
                if due == Due::Resync {
                    eng.forget();
                }
                let (cluster, announced) = lock(&v).cluster_on(&opts.node);
                let rs = ferry_netpol::compile(&cluster, &opts);
                drop(cluster);
                let groups = ferry_netpol::drop_log::group_policies(&rs);
                let info = (engine::isolated(&rs), rs.counters.clone(), groups);
                // Off the fast path before the table judges them, and only
                // those once it does (see `fast_path`).
                let isolated: BTreeSet<IpAddr> = info.0.values().flatten().copied().collect();
                sh.fast_path.widen(&isolated);
                let result = eng.sync(rs);
                if result.is_ok() {
                    sh.fast_path.narrow(isolated);
                    // The plugin's ADDs waiting for these may go on.
                    if let Some(dir) = &sh.announce_dir {
                        super::announce::ack(dir, &announced);
                    }
                }
                (result, info)
            })
            .await;
        let took = started.elapsed();
        let mut st = shared.state();
        match result {
            Ok(synced) => {
                // Only what is in the kernel counts as enforced.
                (st.enforced, st.unenforceable) = counts;
                let applied = match synced {
                    Synced::Adopted => None,
                    Synced::Applied(a) => Some(a),
                };
                st.applies.observe(Ok(applied), took);
                (st.isolated, st.local_policies, st.groups) = rs_info;
                drop(st);
                if failures > 0 || synced != Synced::Applied(super::Applied::Unchanged) {
                    tracing::info!(?synced, ?took, "network policy synced");
                }
                failures = 0;
                last_error = None;
                retry = None;
            }
            Err(e) => {
                st.applies.observe(Err(()), took);
                drop(st);
                failures += 1;
                let wait = crate::agent::error_backoff(failures);
                let msg = e.to_string();
                if last_error.as_ref() != Some(&msg) {
                    tracing::error!(error = %msg, retry_in = ?wait, "network policy sync failed; the installed table stays");
                    last_error = Some(msg);
                }
                retry = Some(Instant::now() + wait);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Due {
    Sync,
    Resync,
    Poll,
}

/// `--network-policy=false`: delete the table an earlier ferryd left.
pub async fn disable<D: PolicyDataplane>(mut dp: D, table: &str) {
    let t = table.to_string();
    match tokio::task::spawn_blocking(move || dp.delete(&t)).await {
        Ok(Ok(true)) => tracing::info!(table, "network policy off: table deleted"),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => {
            tracing::warn!(table, error = %e, "network policy off: could not delete the table")
        }
        Err(e) => tracing::warn!(error = %e, "network policy off: delete task failed"),
    }
}
