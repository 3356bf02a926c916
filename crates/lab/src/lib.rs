//! `ferry-lab`: the seed's lab (three kubeadm nodes 172.16.97.75-.77
//! behind router 172.16.97.1, pod CIDRs 10.244.{0,1,2}.0/24, OSPF through
//! FRR) in network namespaces, in one command — ferry's demo and its
//! end-to-end test. See `LAB.md` for the picture.
//!
//! - [`Lab::up`]: a switch (bridge in its own netns), the router with an
//!   "internet" host (203.0.113.10) behind it, one netns per node on the
//!   switch, the test API server in the router's netns
//!   (https://172.16.97.1:6443) holding kubeadm Node objects, FRR per node
//!   for ospf/bgp (pathspace = the node's netns name), the real `ferryd`
//!   per node with its own CNI dirs, and pods made through the conflist
//!   ferryd installed, exactly as containerd calls it
//!   ([`ferry_testkit::conflist`]). Ends converged; [`Lab::table`] shows
//!   it like the picture.
//! - [`Lab::check`]: pod↔pod, pod↔node, pod→internet with masquerade
//!   witnessed by the internet host ([`check`]).
//! - [`scenario`]: node-join, node-leave, pod-churn, agent-restart,
//!   frr-restart, api-outage.
//! - [`bench`]: throughput ratio, convergence, new-pod reachability
//!   (under the congestion control [`congestion`] names).
//! - [`down::down`]: removes everything, found by prefix too (after a
//!   crash), idempotent; [`down::leftovers`] is CI's check.
//!
//! Every netns, FRR pathspace and state dir carries the lab's prefix
//! (`fl-` by default); state lives in `/run/ferry-lab/<prefix>/lab.json`
//! so separate `ferry-lab` invocations find the lab. This is a test
//! harness: it cables namespaces with `ip` and runs `ping`, `iperf3` and
//! FRR's daemons; the product binaries it drives never shell out.

pub mod agent;
pub mod api;
pub mod bench;
pub mod bench_vxlan;
pub mod bench_wireguard;
pub mod check;
pub mod congestion;
pub mod down;
pub mod error;
pub mod frr;
pub mod kube;
pub mod lab;
pub mod net;
pub mod pods;
pub mod probe;
pub mod procs;
pub mod routes;
pub mod scenario;
pub mod sh;
pub mod state;
pub mod table;
pub mod tcp_probes;
pub mod topo;

pub use error::{LabError, Result};
pub use lab::{DownGuard, Lab, UpOptions};
pub use scenario::Scenario;
pub use state::{LabConfig, State};
pub use topo::{Advertise, Routing};
