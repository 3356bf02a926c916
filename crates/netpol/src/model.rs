//! The input: the slim, validated slice of Namespaces, Pods and
//! NetworkPolicies that policy needs. Plain data, serde-friendly; build it
//! by hand (tests) or from the API types (see [`crate::convert`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Labels of a namespace or pod.
pub type Labels = BTreeMap<String, String>;

/// A namespace: its name and labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub name: String,
    #[serde(default)]
    pub labels: Labels,
}

/// A pod as policy sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub labels: Labels,
    /// `status.podIPs`; a pod without addresses is neither enforced nor a peer.
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// `spec.nodeName`; only pods on the local node are enforced there.
    #[serde(default)]
    pub node: String,
    /// hostNetwork pods carry the node's addresses: policy neither selects
    /// them nor lists them as peers.
    #[serde(default)]
    pub host_network: bool,
    /// Named container ports (`containers[].ports[]` with a name).
    #[serde(default)]
    pub ports: Vec<NamedPort>,
}

/// A named container port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedPort {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
}

/// An L4 protocol NetworkPolicy knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    /// The nft keyword: `tcp`, `udp`, `sctp`.
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    /// Parses the API spelling (`TCP`, `UDP`, `SCTP`).
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// A label selector: all of `match_labels` and all of `match_expressions`
/// must hold; an empty selector selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: Labels,
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default)]
    pub values: Vec<String>,
}

/// A `matchExpressions` operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// A NetworkPolicy (networking.k8s.io/v1), validated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPolicy {
    pub namespace: String,
    pub name: String,
    /// `spec.podSelector`: the pods (of `namespace`) the policy applies to.
    #[serde(default)]
    pub pod_selector: LabelSelector,
    /// `spec.policyTypes` as given; `None` = not given (see
    /// [`NetworkPolicy::effective_types`]).
    #[serde(default)]
    pub policy_types: Option<PolicyTypes>,
    #[serde(default)]
    pub ingress: Vec<Rule>,
    #[serde(default)]
    pub egress: Vec<Rule>,
}

/// Which directions a policy isolates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyTypes {
    pub ingress: bool,
    pub egress: bool,
}

impl NetworkPolicy {
    /// `ns/name`, how policies are named in logs and counters.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// policyTypes after the API server's defaulting: as given, else
    /// Ingress always and Egress when there are egress rules.
    pub fn effective_types(&self) -> PolicyTypes {
        self.policy_types.unwrap_or(PolicyTypes {
            ingress: true,
            egress: !self.egress.is_empty(),
        })
    }
}

/// One ingress or egress rule. Empty `peers` = every peer (the rule had no
/// or an empty `from`/`to`); empty `ports` = every port and protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub peers: Vec<Peer>,
    #[serde(default)]
    pub ports: Vec<Port>,
}

/// A `from`/`to` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Peer {
    /// podSelector and/or namespaceSelector. `namespaces: None` = the
    /// policy's own namespace; `pods: None` = every pod of the namespaces.
    Pods {
        namespaces: Option<LabelSelector>,
        pods: Option<LabelSelector>,
    },
    /// `ipBlock`: `cidr` minus every `except`.
    IpBlock { cidr: IpNet, except: Vec<IpNet> },
}

/// A `ports` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub protocol: Protocol,
    /// `None` = every port of `protocol`.
    pub port: Option<PortRef>,
}

/// A port by number (or number range, with `endPort`) or by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortRef {
    /// `port` .. `endPort` inclusive (`start == end` without endPort).
    Range { start: u16, end: u16 },
    /// A container port name, resolved per destination pod.
    Named(String),
}

/// Everything the translation looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub namespaces: Vec<Namespace>,
    /// Pods of every node: peers can be anywhere.
    pub pods: Vec<Pod>,
    pub policies: Vec<NetworkPolicy>,
}
