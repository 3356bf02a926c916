//! `ferryd run` / `ferryd install`: the reconcile loop around the watch.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use tokio::time::{sleep_until, Instant};

use crate::apply::{Applier, Outcome};
use crate::cli::Opts;
use crate::desired::{self, Desired, Settings};
use crate::discovery;
use crate::metrics::Metrics;
use crate::watch::{self, Shared, DEBOUNCE};
use crate::{http, ipam_gc, kube_client, policy, AgentError, FORWARDING_OFF_REASON};

mod node_updates;

/// How soon to look again while the node is not ready to be configured
/// (no podCIDR yet, interface not up yet, ...).
const NOT_READY_RETRY: Duration = Duration::from_secs(2);
const PATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How soon to look again while the node is configured but its routing
/// has not settled (OSPF adjacencies forming after FRR started).
const SETTLE_RETRY: Duration = Duration::from_secs(1);

/// How soon to look again while the node's admin must fix something
/// (forwarding off): quietly, and the fix is seen within this.
const BLOCKED_RETRY: Duration = Duration::from_secs(5);

/// What woke the loop up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wake {
    Change,
    Resync,
    Retry,
    Audit,
}

/// One reconcile's result.
enum Step {
    /// Applied; and while the node is not ready yet, why its routing has
    /// not settled ([`Applier::unsettled`]), if it has not.
    Applied(Box<Desired>, Outcome, Option<String>),
    /// Not ready to be configured yet (no podCIDR, FRR not up, ...).
    NotReady(String),
    /// Stopped by something only the node's admin can fix: reported on
    /// the Node (`NetworkUnavailable=True`, reason) and in the log, once.
    Blocked {
        node: String,
        reason: &'static str,
        error: AgentError,
    },
}

/// The loop's memory between reconciles.
struct Loop {
    settings: Settings,
    shared: Arc<Shared>,
    policy: Arc<policy::PolicyShared>,
    api: Api<Node>,
    applier: Option<Applier>,
    failures: u32,
    waiting: Option<String>,
    warnings: BTreeSet<String>,
    patched: bool,
    /// The problem last logged (see [`Step::Blocked`]), and whether the
    /// Node shows it.
    blocked: Option<(String, bool)>,
    /// This node's WireGuard public key, to publish on its Node.
    wg_key: Option<String>,
    /// The OSPF audit's last error (logged once until it changes).
    audit_error: Option<String>,
    /// Since when the node has been configured but not ready, its routing
    /// not settled yet (logged once).
    settling: Option<std::time::Instant>,
}

/// Runs the agent until SIGTERM/SIGINT (`once`: until the node is
/// configured and marked available, as `install` does).
pub async fn run(opts: Opts, once: bool) -> Result<(), AgentError> {
    let encapsulation = opts.encapsulation()?;
    let encryption = opts.encryption()?;
    let client = kube_client::client(opts.kubeconfig.as_deref()).await?;
    let api: Api<Node> = Api::all(client.clone());
    let metrics = Arc::new(Metrics::default());
    let shared = Shared::new(metrics.clone());
    let mut tasks = Vec::new();
    if !once {
        let listener = http::bind(opts.metrics_addr).await?;
        tracing::info!(addr = %opts.metrics_addr, "serving /healthz, /readyz, /metrics");
        tasks.push(tokio::spawn(http::serve(listener, metrics.clone())));
    }
    tasks.push(tokio::spawn(watch::watch_nodes(
        api.clone(),
        shared.clone(),
    )));
    tasks.push(tokio::spawn(watch::probe_api(
        client.clone(),
        shared.clone(),
        Duration::from_secs(2),
    )));
    let policy = Arc::new(
        policy::PolicyShared::new(
            (opts.fast_path && opts.network_policy).then(|| opts.bpf_dir.clone()),
            opts.network_policy.then(|| opts.policy_dir.clone()),
        )
        .with_drop_log(opts.policy_log.then(ferry_netpol::DropLog::default)),
    );
    // `install` (once) leaves policy to the agent that follows it.
    if !once && opts.network_policy {
        metrics.set_policy(policy.clone());
        tasks.push(tokio::spawn(policy::controller::run(
            client,
            policy::KernelDataplane,
            policy.clone(),
            opts.resync_interval,
        )));
    } else if !once {
        policy::controller::disable(policy::KernelDataplane, ferry_netpol::DEFAULT_TABLE).await;
    }
    if !once {
        tasks.push(tokio::spawn(ipam_gc::run(
            ipam_gc::Settings::from_opts(&opts),
            metrics.clone(),
        )));
    }
    if !once && encryption == crate::cli::Encryption::Wireguard {
        let shared = shared.clone();
        tasks.push(tokio::spawn(crate::wireguard_device::watch_userspace(
            opts.wireguard_run_dir.clone(),
            move || shared.changed.notify_one(),
        )));
    }
    tracing::info!(
        node = ?opts.node_name(),
        routing = ?opts.routing,
        encapsulation = encapsulation.as_str(),
        ?encryption,
        "ferryd started"
    );
    let mut applier = Applier::new(&opts)?;
    if once {
        // `install` is an init container: a `ferry-wg` it started would
        // end with it. The device is `run`'s; install keeps what is there.
        applier.leave_wireguard_device();
    }
    let mut l = Loop {
        wg_key: applier.wireguard_public_key().map(|k| k.to_string()),
        settings: Settings::from(&opts),
        shared,
        policy,
        api,
        applier: Some(applier),
        failures: 0,
        waiting: None,
        warnings: BTreeSet::new(),
        patched: false,
        blocked: None,
        audit_error: None,
        settling: None,
    };
    let result = tokio::select! {
        r = l.run(opts.resync_interval, opts.ospf_audit_interval, once) => r,
        _ = shutdown() => {
            tracing::info!("terminating; the node keeps its configuration");
            Ok(())
        }
    };
    for t in tasks {
        t.abort();
    }
    result
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl Loop {
    async fn run(
        &mut self,
        resync: Duration,
        audit: Duration,
        once: bool,
    ) -> Result<(), AgentError> {
        let mut next_resync = Instant::now() + resync;
        let mut next_audit = Instant::now() + audit;
        let mut retry: Option<Instant> = None;
        // Leading-edge debounce: a change after a quiet spell is handled at
        // once; a burst gets one reconcile per DEBOUNCE at most.
        let mut last_run = Instant::now()
            .checked_sub(DEBOUNCE)
            .unwrap_or_else(Instant::now);
        loop {
            let deadline = retry
                .map_or(next_resync, |r| r.min(next_resync))
                .min(next_audit);
            let wake = tokio::select! {
                _ = self.shared.changed.notified() => {
                    sleep_until(last_run + DEBOUNCE).await;
                    Wake::Change
                }
                _ = sleep_until(deadline) => {
                    if deadline >= next_resync {
                        Wake::Resync
                    } else if retry.is_some_and(|r| deadline >= r) {
                        Wake::Retry
                    } else {
                        Wake::Audit
                    }
                }
            };
            if wake == Wake::Audit {
                // The OSPF audit on its own clock, between reconciles (a
                // resync re-applies FRR's config; the audit checks what
                // ospfd makes of it).
                next_audit = Instant::now() + audit;
                if !once && self.shared.metrics.ready() {
                    self.audit_ospf().await;
                }
                continue;
            }
            let full = wake == Wake::Resync;
            if full {
                next_resync = Instant::now() + resync;
            }
            retry = None;
            if !self.shared.view().listed {
                continue;
            }
            let started = std::time::Instant::now();
            last_run = Instant::now();
            match self.reconcile(full).await {
                Ok(Step::Applied(d, outcome, unsettled)) => {
                    self.shared
                        .metrics
                        .observe_reconcile(started.elapsed(), true);
                    if self.after_apply(&d, outcome, unsettled, started.elapsed()) {
                        retry = Some(Instant::now() + SETTLE_RETRY);
                    }
                    if let Err(e) = self.publish_key(&d.node).await {
                        tracing::warn!(error = %e, "could not publish the WireGuard public key; retrying");
                        retry = Some(Instant::now() + NOT_READY_RETRY);
                    }
                    match self.mark_available(&d.node).await {
                        Ok(()) if once => return Ok(()),
                        Ok(()) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "could not mark the node's network available; retrying");
                            retry = Some(Instant::now() + NOT_READY_RETRY);
                        }
                    }
                }
                Ok(Step::Blocked {
                    node,
                    reason,
                    error,
                }) => {
                    self.shared
                        .metrics
                        .observe_reconcile(started.elapsed(), false);
                    self.report_blocked(&node, reason, &error).await;
                    retry = Some(Instant::now() + BLOCKED_RETRY);
                }
                Ok(Step::NotReady(msg)) => {
                    if self.waiting.as_deref() != Some(msg.as_str()) {
                        tracing::info!(reason = %msg, "waiting before configuring the node");
                        self.waiting = Some(msg);
                    }
                    retry = Some(Instant::now() + NOT_READY_RETRY);
                }
                Err(e) => {
                    self.shared
                        .metrics
                        .observe_reconcile(started.elapsed(), false);
                    self.failures += 1;
                    let wait = error_backoff(self.failures);
                    tracing::warn!(error = %e, retry_in = ?wait, "reconcile failed");
                    retry = Some(Instant::now() + wait);
                }
            }
        }
    }

    /// OSPF mode: [`Applier::audit_ospf`] off the async runtime; a repair
    /// is counted, an error logged once until it changes.
    async fn audit_ospf(&mut self) {
        let mut applier = self.applier.take().expect("applier is put back");
        let joined = tokio::task::spawn_blocking(move || {
            let r = applier.audit_ospf();
            (applier, r)
        })
        .await;
        let (applier, result) = match joined {
            Ok(v) => v,
            Err(e) => panic!("OSPF audit task: {e}"),
        };
        self.applier = Some(applier);
        match result {
            Ok(Some(_)) => self.shared.metrics.observe_ospf_repair(),
            Ok(None) => self.audit_error = None,
            Err(e) => {
                let msg = e.to_string();
                if self.audit_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(error = %msg, "OSPF audit failed");
                    self.audit_error = Some(msg);
                }
            }
        }
    }

    /// Computes the desired state from the view and applies it, off the
    /// async runtime (netlink, files and FRR's tools block).
    async fn reconcile(&mut self, full: bool) -> Result<Step, AgentError> {
        let mut applier = self.applier.take().expect("applier is put back");
        let shared = self.shared.clone();
        let settings = self.settings.clone();
        let policy = self.policy.clone();
        let (applier, result) = tokio::task::spawn_blocking(move || {
            // A (re)loaded fast path starts with the policy's exclusions,
            // before it is attached anywhere; they are written again after,
            // in case the policy task changed them meanwhile.
            let excluded = policy.fast_path.wanted();
            if let Err(e) = applier.set_fast_path_excluded(&excluded) {
                tracing::warn!(error = %e, "fast-path exclusions");
            }
            let result = (|| {
                let local = discovery::local_addresses()?;
                let desired = {
                    let view = shared.view();
                    desired::compute(&settings, &view.nodes, &local)
                };
                match desired {
                    Err(why) => Ok(Step::NotReady(why.to_string())),
                    Ok(d) => match applier.apply(&d, full) {
                        Ok(outcome) => {
                            // Ready only once the routing has settled: a
                            // rollout restarts the next node only then.
                            let unsettled = if shared.metrics.ready() {
                                None
                            } else {
                                applier.unsettled(&d)
                            };
                            Ok(Step::Applied(Box::new(d), outcome, unsettled))
                        }
                        Err(AgentError::NotReady(why)) => Ok(Step::NotReady(why)),
                        Err(error @ AgentError::ForwardingOff { .. }) => Ok(Step::Blocked {
                            node: d.node,
                            reason: FORWARDING_OFF_REASON,
                            error,
                        }),
                        Err(e) => Err(e),
                    },
                }
            })();
            policy.fast_path.rewrite();
            (applier, result)
        })
        .await
        .map_err(|e| AgentError::Config(format!("reconcile task: {e}")))?;
        self.applier = Some(applier);
        result
    }

    /// Returns whether the node is configured but not ready yet (its
    /// routing still settling): look again soon.
    fn after_apply(
        &mut self,
        d: &Desired,
        outcome: Outcome,
        unsettled: Option<String>,
        took: Duration,
    ) -> bool {
        self.policy.set_node(&d.node);
        let m = &self.shared.metrics;
        m.set_routes_owned(outcome.routes_owned);
        if outcome.fast_path {
            if let Some(plan) = &d.fast_path {
                m.set_fast_path(&plan.dir);
            }
        }
        let mut settling = false;
        if !m.ready() {
            match &unsettled {
                Some(why) => {
                    settling = true;
                    if self.settling.is_none() {
                        self.settling = Some(std::time::Instant::now());
                        tracing::info!(
                            node = %d.node,
                            why = %why,
                            "node configured; not ready until its OSPF adjacencies have settled"
                        );
                    }
                }
                None => {
                    m.set_ready();
                    tracing::info!(
                        node = %d.node,
                        pod_cidrs = ?d.pod_cidrs,
                        interface = %d.iface.ifname,
                        settled_after = ?self.settling.take().map(|t| t.elapsed()),
                        "node configured; ready"
                    );
                }
            }
        }
        if self.waiting.take().is_some() || self.failures > 0 {
            self.failures = 0;
        }
        if self.blocked.take().is_some() {
            tracing::info!("the node's problem is gone; configuring it");
        }
        if !outcome.changed.is_empty() {
            tracing::info!(changed = ?outcome.changed, routes = outcome.routes_owned, took = ?took, "reconciled");
        }
        for w in outcome.warnings.difference(&self.warnings) {
            tracing::warn!("{w}");
        }
        self.warnings = outcome.warnings;
        settling
    }
}

/// 1 s, 2 s, 4 s, ... up to 30 s.
pub(crate) fn error_backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_backoff_grows_to_a_cap() {
        let got: Vec<u64> = (1..=8).map(|n| error_backoff(n).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
