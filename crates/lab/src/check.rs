//! `check`: every pod pings every other pod (both families when
//! dual-stack), every node and is pinged by every node; every pod opens a
//! TCP connection to the internet host, which answers with the source
//! address it saw: the pod's node's (masquerade), never the pod's own;
//! every pod opens a TCP connection to a pod on every other node, which
//! must see the pod's own address; and with the eBPF fast path on, every
//! node's fast path must have forwarded some of that (see `tcp_probes`).
//! Also the waits the other commands use: routes complete, mesh up.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
pub use crate::probe::{parallel, seen_from, Kind, Probe, Witness};
use crate::routes;
use crate::sh;
use crate::state::{LabConfig, NodeState, Pod, State};
use crate::tcp_probes;
use crate::topo;

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub probes: Vec<Probe>,
}

impl Report {
    pub fn failed(&self) -> Vec<&Probe> {
        self.probes.iter().filter(|p| !p.ok).collect()
    }

    /// `42 probes ok: pod→pod 6, pod→node 9, ...`.
    pub fn summary(&self) -> String {
        let mut kinds: Vec<Kind> = self.probes.iter().map(|p| p.kind).collect();
        kinds.sort();
        kinds.dedup();
        let parts: Vec<String> = kinds
            .iter()
            .map(|k| {
                let n = self.probes.iter().filter(|p| p.kind == *k).count();
                let bad = self.probes.iter().filter(|p| p.kind == *k && !p.ok).count();
                if bad == 0 {
                    format!("{} {n}", k.as_str())
                } else {
                    format!("{} {}/{n} FAILED", k.as_str(), bad)
                }
            })
            .collect();
        let failed = self.failed().len();
        let head = if failed == 0 {
            format!("{} probes ok", self.probes.len())
        } else {
            format!("{failed} of {} probes FAILED", self.probes.len())
        };
        format!("{head}: {}", parts.join(", "))
    }

    /// Ok when every probe passed, else [`LabError::CheckFailed`] listing
    /// the failures.
    pub fn into_result(self) -> Result<Report> {
        let failed = self.failed();
        if failed.is_empty() {
            return Ok(self);
        }
        let list = failed
            .iter()
            .map(|p| format!("  {} {}: {}", p.kind.as_str(), p.what, p.detail))
            .collect::<Vec<_>>()
            .join("\n");
        Err(LabError::CheckFailed {
            failed: failed.len(),
            total: self.probes.len(),
            list,
        })
    }
}

/// A ping to run: from a netns to an address.
#[derive(Debug, Clone)]
pub struct Ping {
    pub kind: Kind,
    pub from: String,
    pub to: String,
    pub what: String,
}

pub(crate) fn node_of<'a>(state: &'a State, pod: &Pod) -> Option<&'a NodeState> {
    state.node(&pod.node)
}

/// Every pod to every other pod, optionally only across nodes.
pub fn pod_pings(state: &State, across_only: bool) -> Vec<Ping> {
    let mut out = Vec::new();
    for a in &state.pods {
        for b in &state.pods {
            if a.name == b.name || (across_only && a.node == b.node) {
                continue;
            }
            for ip in &b.ips {
                out.push(Ping {
                    kind: Kind::PodToPod,
                    from: a.netns.clone(),
                    to: ip.clone(),
                    what: format!("{} ({}) → {ip} ({} on {})", a.name, a.node, b.name, b.node),
                });
            }
        }
    }
    out
}

fn node_pings(state: &State) -> Vec<Ping> {
    let mut out = Vec::new();
    for p in &state.pods {
        for n in &state.nodes {
            let dual = n.plan.ips().len() > 1;
            for ip in n.plan.ips() {
                if !dual && ip.contains(':') {
                    continue;
                }
                out.push(Ping {
                    kind: Kind::PodToNode,
                    from: p.netns.clone(),
                    to: ip.clone(),
                    what: format!("{} ({}) → {ip} ({})", p.name, p.node, n.plan.name),
                });
            }
            for ip in &p.ips {
                out.push(Ping {
                    kind: Kind::NodeToPod,
                    from: n.plan.netns.clone(),
                    to: ip.clone(),
                    what: format!("{} → {ip} ({} on {})", n.plan.name, p.name, p.node),
                });
            }
        }
    }
    out
}

/// Runs pings: one echo with 2 s to answer, once more on failure.
pub fn run_pings(pings: &[Ping]) -> Vec<Probe> {
    parallel(pings, 12, |p| {
        let ok = sh::ping(&p.from, &p.to, 2) || sh::ping_until(&p.from, &p.to, 2);
        Probe {
            kind: p.kind,
            what: p.what.clone(),
            ok,
            detail: if ok {
                String::new()
            } else {
                "no echo reply".into()
            },
        }
    })
}

fn internet_probes(state: &State, witness: &Witness) -> Vec<Probe> {
    let mut jobs = Vec::new();
    for p in &state.pods {
        let Some(node) = node_of(state, p) else {
            continue;
        };
        for addr in &witness.addrs {
            let want = if addr.is_ipv6() {
                node.plan.ip6.clone()
            } else {
                Some(node.plan.ip.clone())
            };
            if let Some(want) = want {
                jobs.push((p.clone(), *addr, want));
            }
        }
    }
    parallel(&jobs, 12, |(p, addr, want)| {
        let what = format!("{} ({}) → {addr}", p.name, p.node);
        match seen_from(&p.netns, *addr) {
            Ok(seen) if seen == *want => Probe {
                kind: Kind::PodToInternet,
                what: format!("{what}, seen as {seen}"),
                ok: true,
                detail: String::new(),
            },
            Ok(seen) => Probe {
                kind: Kind::PodToInternet,
                what,
                ok: false,
                detail: format!(
                    "the internet host saw {seen}, not the node's {want} (no masquerade?)"
                ),
            },
            Err(e) => Probe {
                kind: Kind::PodToInternet,
                what,
                ok: false,
                detail: e.to_string(),
            },
        }
    })
}

/// The whole check (see the module docs).
pub fn run(cfg: &LabConfig, state: &State) -> Result<Report> {
    let mut pings = pod_pings(state, false);
    pings.extend(node_pings(state));
    let mut probes = run_pings(&pings);
    let witness = Witness::start(&topo::fixed(&cfg.prefix).internet, state.dual_stack)?;
    probes.extend(internet_probes(state, &witness));
    let before = tcp_probes::fast_path_counts(cfg, state);
    probes.extend(tcp_probes::pod_to_pod(state)?);
    // With WireGuard the fast path leaves flows to other nodes to the
    // stack (ferryd's desired state): nothing of these probes is its.
    if state.fast_path && state.encryption.as_deref() != Some("wireguard") {
        probes.extend(tcp_probes::fast_path_used(cfg, state, &before));
    }
    Ok(Report { probes })
}

/// Nodes whose routing table does not yet send some other node's pod to
/// that node: `node: ip` lines; empty when complete.
pub fn missing_routes(state: &State) -> Vec<String> {
    let mut missing = Vec::new();
    for n in &state.nodes {
        let table = match routes::table(&n.plan.netns) {
            Ok(t) => t,
            Err(e) => {
                missing.push(format!("{}: {e}", n.plan.name));
                continue;
            }
        };
        for p in state.pods.iter().filter(|p| p.node != n.plan.name) {
            let Some(owner) = node_of(state, p) else {
                continue;
            };
            for ip in &p.ips {
                let Ok(addr) = ip.parse::<IpAddr>() else {
                    continue;
                };
                let via = if addr.is_ipv6() {
                    owner.plan.ip6.clone().unwrap_or_default()
                } else {
                    owner.plan.ip.clone()
                };
                // Through VXLAN: via the owner's VTEP, its podCIDR's
                // network address (see ferryd's vxlan module).
                let vtep = owner
                    .plan
                    .cidrs
                    .iter()
                    .find(|c| c.contains(':') == addr.is_ipv6())
                    .and_then(|c| c.split('/').next())
                    .unwrap_or_default();
                if !routes::routes_via(&table, addr, &via)
                    && !routes::routes_via(&table, addr, vtep)
                {
                    missing.push(format!("{}: no route to {ip} via {via}", n.plan.name));
                }
            }
        }
    }
    missing
}

/// Waits until every node routes every other node's pods, then until
/// every pod reaches every pod on other nodes. Returns the time taken.
pub fn wait_converged(state: &State, limit: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let missing = missing_routes(state);
        if missing.is_empty() {
            break;
        }
        if start.elapsed() >= limit {
            return Err(LabError::Timeout {
                what: "routes to every pod on every node".into(),
                waited: limit,
                detail: missing.join("\n"),
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let pings = pod_pings(state, true);
    let left = limit.saturating_sub(start.elapsed()).as_secs().max(2) as u32;
    let fails: Vec<String> = parallel(&pings, 12, |p| {
        (!sh::ping_until(&p.from, &p.to, left)).then(|| p.what.clone())
    })
    .into_iter()
    .flatten()
    .collect();
    if !fails.is_empty() {
        return Err(LabError::Timeout {
            what: "every pod to reach every pod on other nodes".into(),
            waited: limit,
            detail: fails.join("\n"),
        });
    }
    Ok(start.elapsed())
}
