//! `check`'s TCP probes between pods: every pod connects to the first pod
//! of every other node, whose listener answers with the address it saw
//! (the pod's own: pod↔pod is never NATed). ICMP pings never take ferry's
//! eBPF fast path (it forwards TCP and UDP only), so these connections are
//! what proves it works: with it on, each node's counter of forwarded
//! packets must grow while they run.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::error::Result;
use crate::probe::{parallel, seen_from, Kind, Probe, Witness};
use crate::state::{LabConfig, Pod, State};

/// Each node's count of packets its fast path forwarded (nodes without a
/// readable count are missing).
pub fn fast_path_counts(cfg: &LabConfig, state: &State) -> BTreeMap<String, u64> {
    state
        .nodes
        .iter()
        .filter_map(|n| {
            let stats = ferry_ebpf::pinned_stats(&cfg.node_bpf_dir(&n.plan.name)).ok()??;
            Some((n.plan.name.clone(), stats.forwarded))
        })
        .collect()
}

/// TCP from every pod to the first pod of every other node, in each
/// family both have.
pub fn pod_to_pod(state: &State) -> Result<Vec<Probe>> {
    let mut targets: Vec<(Pod, Vec<SocketAddr>)> = Vec::new();
    let mut witnesses = Vec::new();
    for n in &state.nodes {
        let Some(pod) = state.pods_on(&n.plan.name).first().map(|p| (*p).clone()) else {
            continue;
        };
        let ips: Vec<IpAddr> = pod.ips.iter().filter_map(|a| a.parse().ok()).collect();
        let w = Witness::listen(&pod.netns, &ips)?;
        targets.push((pod, w.addrs.clone()));
        witnesses.push(w);
    }
    let mut jobs = Vec::new();
    for from in &state.pods {
        for (to, addrs) in targets.iter().filter(|(t, _)| t.node != from.node) {
            for addr in addrs {
                let want = from.ips.iter().find(|a| a.contains(':') == addr.is_ipv6());
                if let Some(want) = want {
                    jobs.push((from.clone(), to.name.clone(), *addr, want.clone()));
                }
            }
        }
    }
    Ok(parallel(&jobs, 12, |(from, to, addr, want)| {
        let what = format!("{} ({}) → {addr} ({to})", from.name, from.node);
        let (ok, detail) = match seen_from(&from.netns, *addr) {
            Ok(seen) if seen == *want => (true, String::new()),
            Ok(seen) => (false, format!("{to} saw {seen}, not {want}")),
            Err(e) => (false, e.to_string()),
        };
        Probe {
            kind: Kind::PodToPodTcp,
            what,
            ok,
            detail,
        }
    }))
}

/// One probe per node: its fast path forwarded packets since `before`.
pub fn fast_path_used(
    cfg: &LabConfig,
    state: &State,
    before: &BTreeMap<String, u64>,
) -> Vec<Probe> {
    let after = fast_path_counts(cfg, state);
    state
        .nodes
        .iter()
        .filter(|n| !state.pods_on(&n.plan.name).is_empty())
        .map(|n| {
            let name = &n.plan.name;
            let (b, a) = (before.get(name), after.get(name));
            let (ok, detail) = match (b, a) {
                (Some(b), Some(a)) if a > b => (true, String::new()),
                (Some(_), Some(_)) => (
                    false,
                    "forwarded nothing: pod↔pod TCP took the IP stack".into(),
                ),
                _ => (
                    false,
                    format!(
                        "no fast path pinned in {}",
                        cfg.node_bpf_dir(name).display()
                    ),
                ),
            };
            let delta = a.zip(b).map(|(a, b)| a.saturating_sub(*b)).unwrap_or(0);
            Probe {
                kind: Kind::FastPath,
                what: format!("{name} forwarded {delta} packets of the pod↔pod TCP probes"),
                ok,
                detail,
            }
        })
        .collect()
}
