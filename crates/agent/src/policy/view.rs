//! The slim cluster view policy needs: Namespaces, Pods and
//! NetworkPolicies as [`ferry_netpol::convert`] makes them (names,
//! labels, addresses, named ports, node; never whole API objects), kept
//! current by watch events.

use std::collections::BTreeMap;

use ferry_netpol::{
    convert, Cluster, LabelSelector, Namespace, NetworkPolicy, Pod, PolicyProblem, PolicyTypes,
};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as net;
use kube::runtime::watcher::Event;

use super::announce::Announced;

/// `(namespace, name)`; `("", name)` for Namespaces.
pub type Key = (String, String);

/// One watched kind, slimmed. A relist is collected aside and swapped in
/// whole when done (a partial list never reaches compile).
#[derive(Debug)]
pub struct Table<V> {
    pub items: BTreeMap<Key, V>,
    buffer: Option<BTreeMap<Key, V>>,
    /// A complete list has been seen.
    pub listed: bool,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table {
            items: BTreeMap::new(),
            buffer: None,
            listed: false,
        }
    }
}

impl<V: PartialEq> Table<V> {
    /// Applies one watch event; `slim` gives an object's key and what is
    /// kept of it (`None`: nothing, e.g. a finished pod). Returns whether
    /// the view changed after the first complete list.
    pub fn apply<K>(&mut self, event: Event<K>, slim: impl Fn(&K) -> (Key, Option<V>)) -> bool {
        match event {
            Event::Init => {
                self.buffer = Some(BTreeMap::new());
                false
            }
            Event::InitApply(obj) => {
                if let (key, Some(v)) = slim(&obj) {
                    self.buffer.get_or_insert_with(BTreeMap::new).insert(key, v);
                }
                false
            }
            Event::InitDone => {
                let fresh = self.buffer.take().unwrap_or_default();
                let changed = !self.listed || self.items != fresh;
                self.items = fresh;
                self.listed = true;
                changed
            }
            Event::Apply(obj) => {
                let changed = match slim(&obj) {
                    (key, Some(v)) => {
                        if self.items.get(&key) == Some(&v) {
                            false
                        } else {
                            self.items.insert(key, v);
                            true
                        }
                    }
                    (key, None) => self.items.remove(&key).is_some(),
                };
                changed && self.listed
            }
            Event::Delete(obj) => {
                let (key, _) = slim(&obj);
                self.items.remove(&key).is_some() && self.listed
            }
        }
    }
}

/// A policy as kept: what is enforced, and what of it could not be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEntry {
    /// What compile gets. For a policy unusable as a whole (no valid
    /// podSelector or policyTypes) this is deny-all, both directions, for
    /// every pod of its namespace: fail closed, never allow.
    pub policy: NetworkPolicy,
    /// Parts left out (a rule dropped allows nothing), or the reason the
    /// whole policy was replaced by deny-all.
    pub problems: Vec<PolicyProblem>,
}

impl PolicyEntry {
    pub fn enforceable(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Everything policy watches.
#[derive(Debug, Default)]
pub struct View {
    pub namespaces: Table<Namespace>,
    pub pods: Table<Pod>,
    pub policies: Table<PolicyEntry>,
    /// New local pods announced by the plugin, by file stem
    /// ([`super::announce`]).
    pub announced: BTreeMap<String, Announced>,
}

impl View {
    /// All three kinds have been listed once: compile may run.
    pub fn listed(&self) -> bool {
        self.namespaces.listed && self.pods.listed && self.policies.listed
    }

    /// The input of [`ferry_netpol::compile`].
    pub fn cluster(&self) -> Cluster {
        self.cluster_on("").0
    }

    /// The input of [`ferry_netpol::compile`] for `node`, with the
    /// plugin's announcements standing in for the addresses the API does
    /// not show yet, and the announcements it covers (to answer once
    /// applied).
    ///
    /// An announced pod whose Pod object is not known yet is covered only
    /// when no NetworkPolicy exists at all: any policy might select it by
    /// labels ferryd has not seen, so its ADD waits for the watch; with
    /// none, no rule depends on any pod and the ruleset covers it as it is
    /// (a pod made outside Kubernetes, or while the watch lags, then
    /// starts at once instead of after the plugin's wait).
    pub fn cluster_on(&self, node: &str) -> (Cluster, Vec<String>) {
        let no_policy = self.policies.items.is_empty();
        let mut pods = self.pods.items.clone();
        let mut covered = Vec::new();
        for (stem, a) in &self.announced {
            let Some(p) = pods.get_mut(&(a.namespace.clone(), a.name.clone())) else {
                if no_policy {
                    covered.push(stem.clone());
                }
                continue;
            };
            if p.ips.is_empty() {
                p.ips = a.ips.clone();
                // The plugin runs on this node: the pod is local, whatever
                // the watch has shown of its binding so far.
                if !node.is_empty() {
                    p.node = node.to_string();
                }
            }
            covered.push(stem.clone());
        }
        let cluster = Cluster {
            namespaces: self.namespaces.items.values().cloned().collect(),
            pods: pods.into_values().collect(),
            policies: self
                .policies
                .items
                .values()
                .map(|e| e.policy.clone())
                .collect(),
        };
        (cluster, covered)
    }
}

fn key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

pub fn slim_namespace(ns: &core::Namespace) -> (Key, Option<Namespace>) {
    (key(&ns.metadata), convert::namespace(ns))
}

pub fn slim_pod(p: &core::Pod) -> (Key, Option<Pod>) {
    (key(&p.metadata), convert::pod(p))
}

pub fn slim_policy(np: &net::NetworkPolicy) -> (Key, Option<PolicyEntry>) {
    let k = key(&np.metadata);
    let entry = match convert::network_policy(np) {
        Ok((policy, problems)) => PolicyEntry { policy, problems },
        Err(problem) if !k.0.is_empty() && !k.1.is_empty() => PolicyEntry {
            policy: NetworkPolicy {
                namespace: k.0.clone(),
                name: k.1.clone(),
                pod_selector: LabelSelector::everything(),
                policy_types: Some(PolicyTypes {
                    ingress: true,
                    egress: true,
                }),
                ingress: Vec::new(),
                egress: Vec::new(),
            },
            problems: vec![problem],
        },
        Err(_) => return (k, None),
    };
    (k, Some(entry))
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
