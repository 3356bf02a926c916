//! `ferryd`: ferry's node agent. The seed's start-up script (connect to the
//! API, find the node's podCIDR and interface, masquerade, install the
//! plugin, configure FRR), done as a long-running agent that keeps the
//! node's network right while the cluster changes.
//!
//! The pieces, each testable on its own:
//! - [`cli`]: flags (each also from a `FERRY_...` environment variable) and
//!   subcommands; [`cli::flags`] and [`API_CALLS`] describe them for the
//!   deploy manifests (RBAC and args are derived from code).
//! - [`discovery`]: pure functions over `k8s_openapi` Nodes and the local
//!   addresses: which Node is this one, its interface, its podCIDRs.
//! - [`desired`]: the desired state, a pure function of (own node, all
//!   nodes, flags): routes, NAT set, FRR spec, conflist.
//! - [`apply`], [`routes`], [`install`]: make the node match it: sysctls,
//!   nftables, kernel routes (only `proto 201` ones), FRR, plugin binaries
//!   and — last — the conflist.
//! - [`kube_client`], [`watch`]: the API client and the Node watch that
//!   drives reconciles; [`status_patch`] flips `NetworkUnavailable`.
//! - [`http`], [`metrics`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`status`], [`uninstall`]: the operator subcommands; [`prepare`]:
//!   the privileged init step (bpf file system, forwarding).
//! - [`policy`]: NetworkPolicy: watches Namespaces, Pods and
//!   NetworkPolicies, compiles this node's table (ferry-netpol) and
//!   applies it through a [`policy::PolicyDataplane`].
//! - [`ipam_gc`]: releases IPAM reservations and host veths no sandbox
//!   holds (the runtime's CRI `ListPodSandbox`), after a grace period;
//!   a pure [`ipam_gc::plan()`] apart from the I/O.
//! - [`logging`]: the log, with the kube client's repeats rate-limited.

pub mod agent;
pub mod apply;
pub mod cli;
pub mod desired;
pub mod discovery;
pub mod error;
pub mod fast_path;
pub mod frr_glue;
pub mod http;
pub mod install;
pub mod ipam_gc;
pub mod kube_client;
pub mod logging;
pub mod metrics;
pub mod nat;
pub mod policy;
pub mod prepare;
pub mod routes;
pub mod status;
pub mod status_patch;
pub mod uninstall;
pub mod vxlan;
pub mod watch;
pub mod wireguard;
pub mod wireguard_device;

pub use error::AgentError;

/// The CNI network name ferryd writes (conflist `name`, IPAM store dir).
pub const NETWORK_NAME: &str = "ferry";
/// The conflist file ferryd writes into `--cni-conf-dir`.
pub const CONFLIST_FILE: &str = "10-ferry.conflist";
/// The plugin binaries ferryd installs into `--cni-bin-dir`.
pub const PLUGIN_BINARIES: [&str; 2] = ["ferry", "ferry-ipam"];
/// ferryd's nftables table (family `inet`).
pub const NFT_TABLE: &str = "ferry";
/// The reason ferryd sets on the Node's `NetworkUnavailable` condition.
pub const CONDITION_REASON: &str = "FerryIsUp";
/// The reason of `NetworkUnavailable=True` while forwarding is off on the
/// node and ferryd cannot turn it on.
pub const FORWARDING_OFF_REASON: &str = "FerryForwardingOff";

/// One Kubernetes API call ferryd makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiCall {
    /// API group (`""` = core).
    pub group: &'static str,
    /// Resource, with `/subresource` when there is one.
    pub resource: &'static str,
    /// RBAC verbs.
    pub verbs: &'static [&'static str],
}

/// Non-resource URLs ferryd reads (RBAC `nonResourceURLs`, verb `get`;
/// kubeadm's `system:public-info-viewer` already allows it): `/version`
/// tells when the API server is back after an outage.
pub const NON_RESOURCE_URLS: &[&str] = &["/version"];

/// Every API call ferryd makes, for RBAC: a ClusterRole with exactly these
/// rules is enough for `run`, `install`, `prepare` and `status`.
pub const API_CALLS: &[ApiCall] = &[
    ApiCall {
        group: "",
        resource: "nodes",
        verbs: &["get", "list", "watch"],
    },
    ApiCall {
        group: "",
        resource: "nodes/status",
        verbs: &["patch"],
    },
    // `--encryption wireguard`: the node's WireGuard public key, an
    // annotation on its Node (metadata has no subresource of its own).
    ApiCall {
        group: "",
        resource: "nodes",
        verbs: &["patch"],
    },
    // NetworkPolicy (`--network-policy`, and `status`): watches of all
    // three kinds, pods of every node (peers can be anywhere).
    ApiCall {
        group: "",
        resource: "namespaces",
        verbs: &["get", "list", "watch"],
    },
    ApiCall {
        group: "",
        resource: "pods",
        verbs: &["get", "list", "watch"],
    },
    ApiCall {
        group: "networking.k8s.io",
        resource: "networkpolicies",
        verbs: &["get", "list", "watch"],
    },
];

/// The API calls of `ferryd uninstall`: it reads its Node and removes
/// ferry's `NetworkUnavailable` condition and annotation from it.
pub const UNINSTALL_API_CALLS: &[ApiCall] = &[
    // patch: ferry's annotation removed.
    ApiCall {
        group: "",
        resource: "nodes",
        verbs: &["get", "patch"],
    },
    ApiCall {
        group: "",
        resource: "nodes/status",
        verbs: &["patch"],
    },
];
