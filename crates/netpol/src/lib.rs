//! Kubernetes NetworkPolicy (networking.k8s.io/v1) translated into the
//! nftables state ferryd wants on one node: data in ([`Cluster`]: the
//! Namespaces, Pods and NetworkPolicies, slimmed by [`convert`]), data out
//! ([`Ruleset`]), no kernel and no API server. [`render()`] prints it in
//! nft's syntax, [`diff()`] says what it takes to get from one to another.
//!
//! The table is ferryd's own (`inet ferry-policy`, [`DEFAULT_TABLE`]).
//! Policy `default/web-from-prod` selecting the two local `app=web` pods,
//! allowing ingress from namespace `team=prod` (pods 10.244.1.30, .31):
//!
//! ```text
//! table inet ferry-policy {
//!     counter in/default/web-from-prod { packets 0 bytes 0 }
//!     map egress4 { type ipv4_addr : verdict }
//!     map egress6 { type ipv6_addr : verdict }
//!     map ingress4 { type ipv4_addr : verdict
//!         elements = { 10.244.0.10 : jump in-grp-50219216, 10.244.0.11 : jump in-grp-50219216 } }
//!     map ingress6 { type ipv6_addr : verdict
//!         elements = { fd00:10:244::a : jump in-grp-50219216, fd00:10:244::b : jump in-grp-50219216 } }
//!     set self4 { type ipv4_addr . ipv4_addr
//!         elements = { 10.244.0.10 . 10.244.0.10, 10.244.0.11 . 10.244.0.11 } }
//!     set self6 { type ipv6_addr . ipv6_addr
//!         elements = { fd00:10:244::a . fd00:10:244::a, fd00:10:244::b . fd00:10:244::b } }
//!     set in/default/web-from-prod/0.4 { type ipv4_addr; flags interval
//!         elements = { 10.244.1.30, 10.244.1.31 } }
//!     set in/default/web-from-prod/0.6 { type ipv6_addr; flags interval }
//!     chain egress {
//!         type filter hook forward priority filter; policy accept;
//!         ct state established,related accept
//!         ip saddr . ip daddr @self4 accept
//!         ip6 saddr . ip6 daddr @self6 accept
//!         ip saddr vmap @egress4
//!         ip6 saddr vmap @egress6
//!     }
//!     chain ingress {
//!         type filter hook forward priority filter + 10; policy accept;
//!         ct state established,related accept
//!         fib saddr type local accept comment "from this node (kubelet probes)"
//!         ip saddr . ip daddr @self4 accept
//!         ip6 saddr . ip6 daddr @self6 accept
//!         ip daddr vmap @ingress4
//!         ip6 daddr vmap @ingress6
//!     }
//!     chain in-grp-50219216 {
//!         jump in/default/web-from-prod
//!         counter name "in/default/web-from-prod" drop
//!     }
//!     chain in/default/web-from-prod {
//!         comment "NetworkPolicy default/web-from-prod ingress"
//!         ip saddr @in/default/web-from-prod/0.4 accept
//!         ip6 saddr @in/default/web-from-prod/0.6 accept
//!     }
//! }
//! ```
//!
//! (compacted here; [`render()`] lays it out like `nft list ruleset`, and
//! `tests/golden/*.nft` has one file per scenario.)
//!
//! # How a packet is judged
//!
//! * Two base chains at the forward hook, `egress` (priority filter) and
//!   `ingress` (filter + 10). An accept in one still meets the other; a
//!   drop is final. Each chain: replies (`ct state established,related`)
//!   pass; in `ingress`, packets from this node pass (kubelet probes; the
//!   node's own packets to its pods take the output hook, which this table
//!   does not filter at all, and neither is pod → node at input); a pod
//!   reaching itself passes (`self4/6`); then **one** verdict-map lookup
//!   per family, keyed by the local pod's address: a pod no policy
//!   isolates is not in the map and passes.
//! * The map jumps to the pod's **group chain**: one per distinct set of
//!   policies isolating a pod in that direction, shared by all such pods.
//!   It jumps to each policy's chain in turn (any accept there is final:
//!   the union of policies), then drops, counting the drop in each
//!   policy's named counter (`in/<ns>/<name>`, `eg/<ns>/<name>`).
//! * A **policy chain** has one rule per (rule, peer family, port match):
//!   peers are one interval set per rule and family (`<chain>/<i>.4`:
//!   selected pods' addresses and ipBlock ranges, except subtracted);
//!   numbered ports and endPort ranges are anonymous sets in the rule;
//!   named ports are `addr . inet_service` sets (`<chain>/<i>n<j>.4`) of
//!   the destination pod and its port: for ingress the selected local pods,
//!   for egress the peer pods (which then also says who the peers are; an
//!   ipBlock has no named ports). A rule without peers matches every
//!   source/destination, without ports every port.
//!
//! Per-packet cost is that of the policies isolating the packet's pod, and
//! of new connections only; it does not grow with other policies or pods.
//!
//! With [`Options::drop_log`] (`ferryd --policy-log`) each group chain has
//! one more rule before its drop, `limit rate 100/second burst 20 packets
//! log prefix "<group chain>" group 33779`: the dropped packet, rate
//! limited, to NFLOG ([`drop_log`]); the drop itself stays unconditional.
//!
//! # What changes with what
//!
//! The shape (chains, rules, counters, set declarations) follows the
//! policies and which of them select a local pod; the elements follow pod
//! addresses. A peer pod appearing, leaving or changing address, or a
//! local pod whose policy set already has a group chain, is an element
//! change ([`Diff::Elements`]); a new policy combination on this node, a
//! policy's first or last local pod, or a policy edit is a
//! [`Diff::Ruleset`], applied as one atomic table replace.
//!
//! # Scope
//!
//! Only pods of [`Options::node`] are enforced; pods anywhere are peers.
//! hostNetwork pods are neither selected nor peers. Unusable parts of a
//! policy are left out fail-closed and reported ([`PolicyProblem`]).
//! Egress named ports match pod peers only (an ipBlock has no ports by
//! name). SCTP rules are plain `sctp dport` payload matches.
//!
//! # Modules
//!
//! [`model`] (input) · [`convert`] (from k8s-openapi) · [`selector`] ·
//! [`resolve`] (selection, peers, named ports) · [`ranges`] (ipBlock
//! arithmetic) · [`compile()`] (→ [`ir`]) · [`drop_log`] · [`render()`] ·
//! [`diff()`].
//!
//! # Tests
//!
//! Unit tests per module; `tests/golden.rs` (one `.nft` per scenario,
//! `FERRY_NETPOL_UPDATE_GOLDEN=1` rewrites them); `tests/kernel.rs` (every
//! golden passes `nft -c`, loads into a fresh netns and lists back as
//! rendered; an element diff applies there); `tests/dataplane.rs` (real
//! TCP connections through a loaded table between pod netns).

pub mod compile;
pub mod convert;
pub mod diff;
pub mod drop_log;
pub mod error;
pub mod ir;
pub mod model;
mod names;
mod policy_chain;
pub mod ranges;
pub mod render;
pub mod resolve;
pub mod selector;
#[cfg(test)]
mod testutil;

pub use compile::{compile, Direction, Options, DEFAULT_TABLE};
pub use diff::{diff, Diff, ElementChange};
pub use drop_log::{DropLog, LOG_GROUP};
pub use error::{ConvertError, PolicyProblem};
pub use ir::{Ruleset, MAX_COUNTERS_PER_RULE};
pub use model::{
    Cluster, LabelSelector, NamedPort, Namespace, NetworkPolicy, Operator, Peer, Pod, PolicyTypes,
    Port, PortRef, Protocol, Requirement, Rule,
};
pub use render::render;
