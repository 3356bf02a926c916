//! A real Kubernetes in the lab's network namespaces: v1.20.2 built from
//! Debian's source package (scripts/kubernetes.sh), nothing pulled from
//! anywhere.
//!
//! - **Control plane** ([`control`]) in the router's netns: etcd,
//!   kube-apiserver (TLS, Node,RBAC, NodeRestriction), kube-controller-manager
//!   (podCIDRs), kube-scheduler; certificates made here ([`pki`]).
//! - **Nodes** ([`node`]), one per node netns: a mount namespace of its
//!   own (overlays over /etc, /opt, /var/lib, /var/log, a tmpfs /run, a
//!   bpffs), its own containerd, kubelet (cgroup root [`cgroups`]) and
//!   kube-proxy. The nodes register themselves.
//! - **Images** ([`images`], [`oci`]): ferry's from its static release
//!   binaries, a busybox toolbox and the pause image, written as OCI
//!   archives and imported into every node's containerd.
//! - **ferry** is then installed as a user does: `kubectl apply -f
//!   deploy/ferry.yaml` ([`cluster`]); nodes go Ready only through it.
//! - **Checks** ([`checks`]) drive the cluster with kubectl: pods spread
//!   over every node reaching each other (ICMP, TCP, UDP), nodes, Services
//!   (ClusterIP, NodePort), a hostPort, and the internet host masqueraded.
//! - **down** ([`teardown`]) removes every process, cgroup and file by the
//!   lab's prefix, also after a crash; the host's kubectl gets in through
//!   a loopback forwarder ([`forward`]).
//! - **Conformance** ([`conformance`]): Kubernetes' own e2e.test against
//!   the cluster, with the images it asks for made here ([`e2e_images`])
//!   and its JUnit report read back ([`junit`]).
//!
//! Test-side code: it runs `nsenter`, `unshare`, `mount`, `ctr` and the
//! Kubernetes binaries. The product (plugin, ferryd) never shells out.

pub mod bench;
pub mod cgroups;
pub mod checks;
pub mod cluster;
pub mod conformance;
pub mod control;
pub mod e2e_env;
pub mod e2e_images;
pub mod error;
pub mod forward;
pub mod frr_image;
pub mod ginkgo;
pub mod images;
pub mod junit;
pub mod kubeconfig;
pub mod kubectl;
pub mod node;
pub mod oci;
pub mod paths;
pub mod pki;
pub mod procs;
pub mod scenarios;
pub mod teardown;
pub mod uninstall;
pub mod util;
pub mod wireguard_rollout;
pub mod workload;

pub use cluster::{Cluster, ClusterSpec, ClusterState};
pub use error::{ClusterError, Result};
pub use node::NodeSpec;
pub use paths::ClusterPaths;
