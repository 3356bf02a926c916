//! `scenario NAME`: the cluster changes a real one goes through, each run
//! on a lab that is up and each leaving it up and checked (so CI runs
//! them one after the other on one lab per routing mode).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::agent;
use crate::check;
use crate::error::{LabError, Result};
use crate::lab::{Lab, STEP_LIMIT};
use crate::routes;
use crate::sh;
use crate::state::Pod;
use crate::topo::{Advertise, NodePlan, Routing};

mod frr_restart;
use frr_restart::frr_restart;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    NodeJoin,
    NodeLeave,
    PodChurn,
    AgentRestart,
    FrrRestart,
    ApiOutage,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::NodeJoin,
        Scenario::NodeLeave,
        Scenario::PodChurn,
        Scenario::AgentRestart,
        Scenario::FrrRestart,
        Scenario::ApiOutage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::NodeJoin => "node-join",
            Scenario::NodeLeave => "node-leave",
            Scenario::PodChurn => "pod-churn",
            Scenario::AgentRestart => "agent-restart",
            Scenario::FrrRestart => "frr-restart",
            Scenario::ApiOutage => "api-outage",
        }
    }

    /// Whether it means anything in `routing` (no FRR in direct mode).
    pub fn applies(self, routing: Routing) -> bool {
        self != Scenario::FrrRestart || routing.uses_frr()
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Scenario::ALL.iter().map(|x| x.as_str()).collect();
                format!("{s:?}: expected one of {}", all.join(", "))
            })
    }
}

/// What a scenario measured, one line each.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub lines: Vec<String>,
    pub skipped: bool,
}

/// Runs one scenario on the lab, then the full check.
pub fn run(lab: &mut Lab, s: Scenario) -> Result<Outcome> {
    if !s.applies(lab.state.routing) {
        return Ok(Outcome {
            lines: vec![format!(
                "{s}: not applicable with --routing {}",
                lab.state.routing
            )],
            skipped: true,
        });
    }
    lab.say(&format!("scenario {s}"));
    let mut out = match s {
        Scenario::NodeJoin => node_join(lab),
        Scenario::NodeLeave => node_leave(lab),
        Scenario::PodChurn => pod_churn(lab),
        Scenario::AgentRestart => agent_restart(lab),
        Scenario::FrrRestart => frr_restart(lab),
        Scenario::ApiOutage => api_outage(lab),
    }
    .map_err(|e| match e {
        e @ LabError::Scenario { .. } => e,
        other => LabError::scenario(s.as_str(), other.to_string()),
    })?;
    let report = lab
        .check()
        .map_err(|e| LabError::scenario(s.as_str(), format!("check after: {e}")))?;
    out.lines
        .push(format!("check after {s}: {}", report.summary()));
    Ok(out)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// The learnt routes (`K`/`O`/`B`) of a node, as labels.
fn learnt(node: &NodePlan) -> Result<BTreeSet<String>> {
    Ok(routes::table(&node.netns)?
        .iter()
        .filter(|r| r.learnt())
        .map(|r| r.label())
        .collect())
}

/// One pod on each node other than `node` (the observers).
fn observers<'a>(lab: &'a Lab, node: &str) -> Vec<&'a Pod> {
    lab.state
        .nodes
        .iter()
        .filter(|n| n.plan.name != node)
        .filter_map(|n| lab.state.pods_on(&n.plan.name).into_iter().next())
        .collect()
}

/// Time until every observer reaches every IP of `target` (one `ping`
/// each, echoing every 10 ms); the slowest.
fn reach_time(from: &[&Pod], target: &Pod, limit: Duration) -> Result<Duration> {
    let start = Instant::now();
    let jobs: Vec<(String, String)> = from
        .iter()
        .flat_map(|o| target.ips.iter().map(|ip| (o.netns.clone(), ip.clone())))
        .collect();
    let secs = limit.as_secs().max(1) as u32;
    let r = check::parallel(&jobs, 12, |(ns, ip)| {
        sh::ping_until(ns, ip, secs).then(|| start.elapsed())
    });
    let mut worst = Duration::ZERO;
    for (t, (ns, ip)) in r.into_iter().zip(&jobs) {
        worst = worst.max(t.ok_or_else(|| LabError::Timeout {
            what: format!("{ip} ({}) to answer {ns}", target.name),
            waited: limit,
            detail: String::new(),
        })?);
    }
    Ok(worst)
}

fn node_join(lab: &mut Lab) -> Result<Outcome> {
    let t = Instant::now();
    let plan = lab.join_node()?;
    let ready = t.elapsed();
    let pod = lab.add_pod(&plan.name, None, None)?;
    let took = lab.wait_converged(STEP_LIMIT)?;
    Ok(Outcome {
        lines: vec![
            format!(
                "{} ({}, {}) joined: ferryd ready after {}, its {} ({}) reached from every node {} later",
                plan.name,
                plan.ip,
                plan.cidrs.join(" "),
                ms(ready),
                pod.name,
                pod.ips.join(" "),
                ms(took)
            ),
        ],
        skipped: false,
    })
}

fn node_leave(lab: &mut Lab) -> Result<Outcome> {
    if lab.state.nodes.len() < 2 {
        return Err(LabError::scenario("node-leave", "needs at least 2 nodes"));
    }
    let gone = lab
        .state
        .nodes
        .iter()
        .map(|n| n.plan.clone())
        .filter(|n| !n.control_plane())
        .max_by_key(|n| n.index)
        .expect("a worker");
    let t = Instant::now();
    lab.remove_node(&gone.name)?;
    let names = crate::api::list_names(&lab.cfg)?;
    if names.contains(&gone.name) {
        return Err(LabError::scenario(
            "node-leave",
            format!("{} still in the API", gone.name),
        ));
    }
    let mut ips = vec![gone.ip.clone()];
    ips.extend(gone.ip6.clone());
    let plans = lab.plans();
    let withdrawn = sh::wait_for(
        STEP_LIMIT,
        Duration::from_millis(20),
        "routes via the gone node to go",
        || {
            plans
                .iter()
                .all(|n| {
                    learnt(n).is_ok_and(|l| {
                        !l.iter()
                            .any(|r| ips.iter().any(|ip| r.ends_with(&format!(" via {ip}"))))
                    })
                })
                .then(|| t.elapsed())
        },
    )?;
    lab.wait_converged(STEP_LIMIT)?;
    Ok(Outcome {
        lines: vec![format!(
            "{} left: Node deleted, machine gone; every other node dropped its routes via {} within {}",
            gone.name,
            gone.ip,
            ms(withdrawn)
        )],
        skipped: false,
    })
}

fn pod_churn(lab: &mut Lab) -> Result<Outcome> {
    let pod = lab
        .state
        .nodes
        .iter()
        .rev()
        .find_map(|n| lab.state.pods_on(&n.plan.name).into_iter().next().cloned())
        .ok_or_else(|| LabError::scenario("pod-churn", "no pods"))?;
    let obs: Vec<Pod> = observers(lab, &pod.node).into_iter().cloned().collect();
    if obs.is_empty() {
        return Err(LabError::scenario("pod-churn", "needs pods on two nodes"));
    }
    let others: Vec<NodePlan> = lab
        .plans()
        .into_iter()
        .filter(|n| n.name != pod.node)
        .collect();
    let before: Vec<BTreeSet<String>> = others.iter().map(learnt).collect::<Result<_>>()?;
    lab.delete_pod(&pod.name)?;
    let owner = lab.node(&pod.node)?;
    let table = routes::table(&owner.netns)?;
    if table.iter().any(|r| {
        r.code() == Some('C')
            && pod
                .ips
                .iter()
                .any(|ip| r.dst.starts_with(&format!("{ip}/")))
    }) {
        return Err(LabError::scenario(
            "pod-churn",
            "the pod's host route outlived DEL",
        ));
    }
    let t = Instant::now();
    let again = lab.add_pod(&pod.node, Some(&pod.name), Some(&pod.ips))?;
    let add = t.elapsed();
    if again.ips != pod.ips || again.container_id == pod.container_id {
        return Err(LabError::scenario(
            "pod-churn",
            format!(
                "re-created with {:?} (was {:?}) or the same sandbox",
                again.ips, pod.ips
            ),
        ));
    }
    let refs: Vec<&Pod> = obs.iter().collect();
    let reach = reach_time(&refs, &again, STEP_LIMIT)?;
    let after: Vec<BTreeSet<String>> = others.iter().map(learnt).collect::<Result<_>>()?;
    let aggregate =
        lab.state.routing == Routing::Direct || lab.state.advertise == Advertise::Aggregate;
    if aggregate && before != after {
        return Err(LabError::scenario(
            "pod-churn",
            format!("other nodes' routes changed with a pod (aggregate): {before:?} -> {after:?}"),
        ));
    }
    Ok(Outcome {
        lines: vec![format!(
            "{} deleted and re-created on {} with {} (ADD {}): reached from {} other nodes {} after ADD began; other nodes' routes {}",
            pod.name,
            pod.node,
            pod.ips.join(" "),
            ms(add),
            obs.len(),
            ms(reach),
            if aggregate { "unchanged (aggregate)" } else { "updated (per-pod)" }
        )],
        skipped: false,
    })
}

/// The node a restart scenario disturbs: the first worker, else the only node.
fn worker(lab: &Lab) -> NodePlan {
    let plans = lab.plans();
    plans.get(1).or(plans.first()).cloned().expect("a node")
}

fn agent_restart(lab: &mut Lab) -> Result<Outcome> {
    let node = worker(lab);
    let before = learnt(&node)?;
    lab.stop_agent(&node.name, true)?;
    // The datapath does not need the agent; neither do new pods.
    let mesh = check::run_pings(&check::pod_pings(&lab.state, true));
    if let Some(bad) = mesh.iter().find(|p| !p.ok) {
        return Err(LabError::scenario(
            "agent-restart",
            format!("with ferryd down: {}", bad.what),
        ));
    }
    let pod = lab.add_pod(&node.name, None, None)?;
    let obs: Vec<Pod> = observers(lab, &node.name).into_iter().cloned().collect();
    let refs: Vec<&Pod> = obs.iter().collect();
    let reach = reach_time(&refs, &pod, STEP_LIMIT)?;
    let t = Instant::now();
    lab.start_agent(&node.name)?;
    let ready = t.elapsed();
    let after = learnt(&node)?;
    let aggregate =
        lab.state.routing == Routing::Direct || lab.state.advertise == Advertise::Aggregate;
    if aggregate && before != after {
        return Err(LabError::scenario(
            "agent-restart",
            format!("routes changed across the restart: {before:?} -> {after:?}"),
        ));
    }
    lab.wait_converged(STEP_LIMIT)?;
    Ok(Outcome {
        lines: vec![format!(
            "ferryd on {} killed (SIGKILL): {} cross-node pings still answered, new {} reached in {}; restarted ferryd ready in {}, routes unchanged",
            node.name,
            mesh.len(),
            pod.name,
            ms(reach),
            ms(ready)
        )],
        skipped: false,
    })
}

fn api_outage(lab: &mut Lab) -> Result<Outcome> {
    let plans = lab.plans();
    lab.stop_api()?;
    let t = Instant::now();
    let noticed = sh::wait_for(
        STEP_LIMIT,
        Duration::from_millis(50),
        "ferryd to notice the outage",
        || {
            plans
                .iter()
                .all(|n| agent::metric(n, "ferry_api_connected") == Some(0.0))
                .then(|| t.elapsed())
        },
    );
    let mesh = check::run_pings(&check::pod_pings(&lab.state, true));
    if let Some(bad) = mesh.iter().find(|p| !p.ok) {
        return Err(LabError::scenario(
            "api-outage",
            format!("during the outage: {}", bad.what),
        ));
    }
    for n in &lab.state.nodes {
        if !n.ferryd.is_some_and(|p| p.alive()) {
            return Err(LabError::scenario(
                "api-outage",
                format!("ferryd on {} exited", n.plan.name),
            ));
        }
    }
    let first = plans[0].name.clone();
    let pod = lab.add_pod(&first, None, None)?;
    let obs: Vec<Pod> = observers(lab, &first).into_iter().cloned().collect();
    let refs: Vec<&Pod> = obs.iter().collect();
    let reach = reach_time(&refs, &pod, STEP_LIMIT)?;
    lab.start_api()?;
    let t = Instant::now();
    let back = sh::wait_for(
        STEP_LIMIT,
        Duration::from_millis(50),
        "every ferryd to reconnect",
        || {
            plans
                .iter()
                .all(|n| agent::metric(n, "ferry_api_connected") == Some(1.0))
                .then(|| t.elapsed())
        },
    )?;
    let names: BTreeSet<String> = crate::api::list_names(&lab.cfg)?.into_iter().collect();
    let want: BTreeSet<String> = plans.iter().map(|n| n.name.clone()).collect();
    if names != want {
        return Err(LabError::scenario(
            "api-outage",
            format!("API has {names:?} after restart, want {want:?}"),
        ));
    }
    lab.wait_converged(STEP_LIMIT)?;
    Ok(Outcome {
        lines: vec![format!(
            "API server down: ferryd noticed in {}, {} cross-node pings answered, new {} reached in {}; API back: every ferryd reconnected in {}",
            noticed.map(ms).unwrap_or_else(|_| "(never)".into()),
            mesh.len(),
            pod.name,
            ms(reach),
            ms(back)
        )],
        skipped: false,
    })
}
