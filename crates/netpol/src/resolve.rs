//! Policy semantics over the cluster state: which pods a policy selects,
//! which addresses a peer stands for, what a named port resolves to.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::{Cluster, LabelSelector, Labels, NetworkPolicy, Peer, Pod, Protocol, Rule};
use crate::ranges::{self, Family, Range};

/// The label every namespace carries (set by the API server since 1.21;
/// added here when the source did not).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Lookups over one [`Cluster`].
pub struct Index<'a> {
    /// Visible pods (see [`Index::pods`]), in input order.
    pods: Vec<&'a Pod>,
    /// The same, by namespace.
    by_namespace: HashMap<&'a str, Vec<&'a Pod>>,
    namespaces: HashMap<&'a str, Labels>,
}

/// A rule's peer addresses, merged, per family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerAddrs {
    pub v4: Vec<Range>,
    pub v6: Vec<Range>,
    /// Whether the family can hold anything: the rule has a pod peer, or
    /// an ipBlock of that family. Depends on the policy only.
    pub has_v4: bool,
    pub has_v6: bool,
}

impl PeerAddrs {
    pub fn get(&self, family: Family) -> (bool, &[Range]) {
        match family {
            Family::V4 => (self.has_v4, &self.v4),
            Family::V6 => (self.has_v6, &self.v6),
        }
    }
}

impl<'a> Index<'a> {
    pub fn new(cluster: &'a Cluster) -> Self {
        let namespaces = cluster
            .namespaces
            .iter()
            .map(|ns| {
                let mut labels = ns.labels.clone();
                labels
                    .entry(NAMESPACE_NAME_LABEL.to_string())
                    .or_insert_with(|| ns.name.clone());
                (ns.name.as_str(), labels)
            })
            .collect();
        let pods: Vec<&Pod> = cluster
            .pods
            .iter()
            .filter(|p| !p.host_network && !p.ips.is_empty())
            .collect();
        let mut by_namespace: HashMap<&str, Vec<&Pod>> = HashMap::new();
        for p in &pods {
            by_namespace
                .entry(p.namespace.as_str())
                .or_default()
                .push(p);
        }
        Index {
            pods,
            by_namespace,
            namespaces,
        }
    }

    /// Pods policy can see: not hostNetwork, with at least one address.
    pub fn pods(&self) -> impl Iterator<Item = &'a Pod> + '_ {
        self.pods.iter().copied()
    }

    /// Visible pods of namespace `ns`.
    fn pods_in(&self, ns: &str) -> impl Iterator<Item = &'a Pod> + '_ {
        self.by_namespace.get(ns).into_iter().flatten().copied()
    }

    /// Whether namespace `name` exists and its labels match `sel`.
    pub fn namespace_matches(&self, name: &str, sel: &LabelSelector) -> bool {
        self.namespaces.get(name).is_some_and(|l| sel.matches(l))
    }

    /// Pods (of any node) that `policy` applies to.
    pub fn selected<'b>(&'b self, policy: &'b NetworkPolicy) -> impl Iterator<Item = &'a Pod> + 'b {
        self.pods_in(&policy.namespace)
            .filter(|p| policy.pod_selector.matches(&p.labels))
    }

    /// Pods a pod peer of a policy in namespace `policy_ns` stands for:
    /// podSelector alone = that namespace; namespaceSelector alone = every
    /// pod of the matching namespaces; both = AND. ipBlocks stand for no pod.
    pub fn peer_pods<'b>(
        &'b self,
        policy_ns: &'b str,
        peer: &'b Peer,
    ) -> impl Iterator<Item = &'a Pod> + 'b {
        let (candidates, pods): (Vec<&'a Pod>, _) = match peer {
            Peer::IpBlock { .. } => (Vec::new(), None),
            // podSelector alone: the policy's namespace only.
            Peer::Pods {
                namespaces: None,
                pods,
            } => (self.pods_in(policy_ns).collect(), pods.as_ref()),
            Peer::Pods {
                namespaces: Some(ns),
                pods,
            } => {
                let mut v = Vec::new();
                for (name, pods) in &self.by_namespace {
                    if self.namespace_matches(name, ns) {
                        v.extend(pods.iter().copied());
                    }
                }
                (v, pods.as_ref())
            }
        };
        candidates
            .into_iter()
            .filter(move |p| pods.is_none_or(|s| s.matches(&p.labels)))
    }

    /// Pods any peer of `rule` stands for (a pod two peers share comes
    /// twice); every pod for a rule without peers.
    pub fn rule_pods(&self, policy_ns: &str, rule: &Rule) -> Vec<&'a Pod> {
        if rule.peers.is_empty() {
            return self.pods().collect();
        }
        let mut out: Vec<&Pod> = Vec::new();
        for peer in &rule.peers {
            out.extend(self.peer_pods(policy_ns, peer));
        }
        out
    }

    /// The addresses of a rule's peers (which must not be empty: that is
    /// "every peer", with no set at all).
    pub fn peer_addrs(&self, policy_ns: &str, rule: &Rule) -> PeerAddrs {
        let mut out = PeerAddrs::default();
        for peer in &rule.peers {
            match peer {
                Peer::Pods { .. } => {
                    out.has_v4 = true;
                    out.has_v6 = true;
                    for pod in self.peer_pods(policy_ns, peer) {
                        for ip in &pod.ips {
                            push(&mut out, Family::of(ip), ranges::of_addr(ip));
                        }
                    }
                }
                Peer::IpBlock { cidr, except } => {
                    let family = Family::of_net(cidr);
                    match family {
                        Family::V4 => out.has_v4 = true,
                        Family::V6 => out.has_v6 = true,
                    }
                    let holes: Vec<Range> = except
                        .iter()
                        .filter(|e| Family::of_net(e) == family)
                        .map(ranges::of_net)
                        .collect();
                    for r in ranges::subtract(ranges::of_net(cidr), &holes) {
                        push(&mut out, family, r);
                    }
                }
            }
        }
        out.v4 = ranges::merge_overlapping(out.v4);
        out.v6 = ranges::merge_overlapping(out.v6);
        out
    }
}

fn push(out: &mut PeerAddrs, family: Family, r: Range) {
    match family {
        Family::V4 => out.v4.push(r),
        Family::V6 => out.v6.push(r),
    }
}

/// The port number `pod` exposes as `name` for `protocol`, if any.
pub fn named_port(pod: &Pod, name: &str, protocol: Protocol) -> Option<u16> {
    pod.ports
        .iter()
        .find(|p| p.name == name && p.protocol == protocol)
        .map(|p| p.port)
}

/// `(address, port)` for each address of each pod exposing `name`/`protocol`.
pub fn named_port_elements<'p>(
    pods: impl IntoIterator<Item = &'p Pod>,
    name: &str,
    protocol: Protocol,
) -> Vec<(IpAddr, u16)> {
    let mut out = Vec::new();
    for pod in pods {
        if let Some(port) = named_port(pod, name, protocol) {
            out.extend(pod.ips.iter().map(|ip| (*ip, port)));
        }
    }
    out
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
