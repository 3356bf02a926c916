//! The policy part of `ferryd status`: the policies isolating this node's
//! pods, with how many local pods each isolates and the packets it
//! dropped (the kernel's counters: since the table was last replaced).

use std::collections::BTreeMap;
use std::fmt::Write;

use ferry_netpol::ir::{Element, SetKey, Verdict};
use ferry_netpol::{Cluster, Options, Ruleset};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as net;
use kube::api::ListParams;
use kube::{Api, Client};

use super::dataplane::{Counters, DataplaneError};
use super::engine::counter_policy;
use super::view;
use crate::AgentError;

/// One policy isolating local pods in one direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyLine {
    pub direction: &'static str,
    pub namespace: String,
    pub name: String,
    pub local_pods: usize,
    /// `None`: no such counter in the kernel (table absent or stale).
    pub dropped: Option<u64>,
}

/// What status shows about policy.
#[derive(Clone, Debug, Default)]
pub struct PolicyReport {
    pub lines: Vec<PolicyLine>,
    /// Problems of policies not enforced as written.
    pub problems: Vec<String>,
    /// Why the kernel's counters could not be read.
    pub counters_error: Option<String>,
}

/// The cluster as the controller sees it, listed once, and the policies'
/// problems.
pub async fn list_cluster(client: Client) -> Result<(Cluster, Vec<String>), AgentError> {
    let lp = ListParams::default().limit(500);
    let err = |what: &str| {
        let what = what.to_string();
        move |e: kube::Error| AgentError::Kube(format!("list {what}: {e}"))
    };
    let namespaces = Api::<core::Namespace>::all(client.clone()).list(&lp).await;
    let pods = Api::<core::Pod>::all(client.clone()).list(&lp).await;
    let policies = Api::<net::NetworkPolicy>::all(client).list(&lp).await;
    let mut cluster = Cluster::default();
    let mut problems = Vec::new();
    for ns in namespaces.map_err(err("namespaces"))?.items {
        cluster.namespaces.extend(view::slim_namespace(&ns).1);
    }
    for p in pods.map_err(err("pods"))?.items {
        cluster.pods.extend(view::slim_pod(&p).1);
    }
    for np in policies.map_err(err("networkpolicies"))?.items {
        if let (_, Some(e)) = view::slim_policy(&np) {
            problems.extend(e.problems.iter().map(ToString::to_string));
            cluster.policies.push(e.policy);
        }
    }
    Ok((cluster, problems))
}

/// The report for `node`, with the kernel's `counters`.
pub fn report(
    cluster: &Cluster,
    problems: Vec<String>,
    node: &str,
    counters: Result<Counters, DataplaneError>,
) -> PolicyReport {
    let rs = ferry_netpol::compile(cluster, &Options::new(node));
    let pods = local_pods(&rs);
    let (counters, counters_error) = match counters {
        Ok(c) => (c, None),
        Err(e) => (Counters::new(), Some(e.to_string())),
    };
    let lines = rs
        .counters
        .iter()
        .filter_map(|c| {
            let (direction, ns, name) = counter_policy(c)?;
            Some(PolicyLine {
                direction,
                namespace: ns.to_string(),
                name: name.to_string(),
                local_pods: pods.get(c).copied().unwrap_or(0),
                dropped: counters.get(c).map(|(p, _)| *p),
            })
        })
        .collect();
    PolicyReport {
        lines,
        problems,
        counters_error,
    }
}

/// Local pod addresses per policy chain: verdict map → group → policies.
fn local_pods(rs: &Ruleset) -> BTreeMap<String, usize> {
    let mut per_group: BTreeMap<&str, usize> = BTreeMap::new();
    for set in rs
        .sets
        .values()
        .filter(|s| matches!(s.key, SetKey::Verdict(_)))
    {
        for e in &set.elements {
            if let Element::Jump(_, group) = e {
                *per_group.entry(group.as_str()).or_default() += 1;
            }
        }
    }
    let mut out = BTreeMap::new();
    for chain in &rs.chains {
        let Some(n) = per_group.get(chain.name.as_str()) else {
            continue;
        };
        for rule in &chain.rules {
            if let Verdict::Jump(policy) = &rule.verdict {
                *out.entry(policy.clone()).or_default() += n;
            }
        }
    }
    out
}

/// Appends the policy lines of `status`.
pub fn render(r: &Result<PolicyReport, String>, s: &mut String) {
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(s, "policy:     cannot ask ({e})");
            return;
        }
    };
    let _ = writeln!(
        s,
        "policy:     {} isolating local pods (table inet {})",
        r.lines.len(),
        ferry_netpol::DEFAULT_TABLE
    );
    for l in &r.lines {
        let dropped = l
            .dropped
            .map_or("no counter".to_string(), |d| format!("{d} packets dropped"));
        let _ = writeln!(
            s,
            "  {}/{} {}: {} local pod addresses, {dropped}",
            l.namespace, l.name, l.direction, l.local_pods
        );
    }
    if let Some(e) = &r.counters_error {
        let _ = writeln!(s, "  counters: cannot read ({e})");
    }
    for p in &r.problems {
        let _ = writeln!(s, "  not enforced as written: {p}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_per_policy_and_direction() {
        let pod = |name: &str, node: &str, ip: &str| -> core::Pod {
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
                "spec": {"nodeName": node, "containers": []},
                "status": {"podIPs": [{"ip": ip}]}
            }))
            .unwrap()
        };
        let np: net::NetworkPolicy = serde_json::from_value(json!({
            "metadata": {"name": "deny", "namespace": "default"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        }))
        .unwrap();
        let cluster = Cluster {
            namespaces: vec![],
            pods: [
                pod("a", "n1", "10.0.0.1"),
                pod("b", "n1", "10.0.0.2"),
                pod("c", "n2", "10.0.1.1"),
            ]
            .iter()
            .filter_map(|p| view::slim_pod(p).1)
            .collect(),
            policies: vec![view::slim_policy(&np).1.unwrap().policy],
        };
        let counters = Counters::from([("in/default/deny".to_string(), (9, 540))]);
        let r = report(&cluster, vec![], "n1", Ok(counters));
        assert_eq!(r.lines.len(), 2);
        let ingress = r.lines.iter().find(|l| l.direction == "ingress").unwrap();
        assert_eq!((ingress.local_pods, ingress.dropped), (2, Some(9)));
        let egress = r.lines.iter().find(|l| l.direction == "egress").unwrap();
        assert_eq!((egress.local_pods, egress.dropped), (2, None));
        let mut s = String::new();
        render(&Ok(r), &mut s);
        assert!(
            s.contains("default/deny ingress: 2 local pod addresses, 9 packets dropped"),
            "{s}"
        );
    }
}
