//! What a lab is made of, kept in `<state dir>/lab.json` so that `check`,
//! `scenario`, `status` and `down` (other processes) find it, plus the
//! per-lab paths.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::procs::Proc;
use crate::sh::write_atomic;
use crate::topo::{self, Advertise, NodePlan, Routing};

pub const STATE_FILE: &str = "lab.json";

/// Which lab, where its state is, where its binaries are.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The prefix of every netns, pathspace and process of this lab.
    pub prefix: String,
    pub state_dir: PathBuf,
    /// Holds `ferryd`, `ferry-apiserver`, `ferry`, `ferry-ipam`.
    pub bin_dir: PathBuf,
    /// No progress lines on stderr.
    pub quiet: bool,
}

impl LabConfig {
    /// The lab for `prefix`: state in /run/ferry-lab/PREFIX, binaries
    /// next to this executable (see [`default_bin_dir`]).
    pub fn new(prefix: &str) -> LabConfig {
        LabConfig {
            prefix: prefix.into(),
            state_dir: Path::new(topo::STATE_ROOT).join(prefix.trim_end_matches('-')),
            bin_dir: default_bin_dir(),
            quiet: false,
        }
    }

    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join(STATE_FILE)
    }

    pub fn apiserver_dir(&self) -> PathBuf {
        self.state_dir.join("apiserver")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.apiserver_dir().join(ferry_apiserver::KUBECONFIG)
    }

    /// A node's own dirs: `bin/`, `net.d/`, `ipam/`, `cni-cache/`, logs.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.state_dir.join("nodes").join(node)
    }

    /// A bpf file system of the lab's own, where the nodes' ferryd pin
    /// their eBPF fast path (each node in its own directory). Not under
    /// /sys: `ip netns exec` gives ferryd a fresh /sys, and the plugin must
    /// see the same pins as ferryd.
    pub fn bpf_dir(&self) -> PathBuf {
        self.state_dir.join("bpf")
    }

    pub fn node_bpf_dir(&self, node: &str) -> PathBuf {
        self.bpf_dir().join(node)
    }

    pub fn secret_file(&self, name: &str) -> PathBuf {
        self.state_dir.join("secrets").join(name)
    }

    pub fn binary(&self, name: &str) -> Result<PathBuf> {
        let p = self.bin_dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(LabError::MissingBinary {
                name: name.into(),
                dir: self.bin_dir.clone(),
            })
        }
    }
}

/// `$FERRY_LAB_BIN_DIR`, else the cargo profile dir of this executable
/// (`target/release` for the binary, `target/debug` for a test in
/// `target/debug/deps`).
pub fn default_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERRY_LAB_BIN_DIR") {
        return PathBuf::from(dir);
    }
    ferry_testkit::plugin_dir()
}

/// One node as running.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    #[serde(flatten)]
    pub plan: NodePlan,
    pub ferryd: Option<Proc>,
}

/// One pod: its netns and the attachment made for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    /// The Node name it runs on.
    pub node: String,
    pub netns: String,
    pub container_id: String,
    pub uid: String,
    /// Addresses from the ADD result, IPv4 first.
    pub ips: Vec<String>,
}

impl Pod {
    pub fn ip_v4(&self) -> Option<&str> {
        self.ips
            .iter()
            .map(String::as_str)
            .find(|a| !a.contains(':'))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub prefix: String,
    pub routing: Routing,
    pub advertise: Advertise,
    pub dual_stack: bool,
    pub nodes: Vec<NodeState>,
    pub pods: Vec<Pod>,
    pub apiserver: Option<Proc>,
    /// Pods are named pod-1, pod-2, ... in creation order.
    pub next_pod: usize,
    /// Seconds from starting ferryd to every pod reaching every other.
    pub converged_s: Option<f64>,
    /// ferryd's `--cni-version` (see [`crate::pods::reference_cni_version`]).
    pub cni_version: String,
    /// ferryd's `--fast-path`.
    #[serde(default = "yes")]
    pub fast_path: bool,
    /// A real Kubernetes runs the lab (`up --kubernetes`, crate ferry-cluster).
    #[serde(default)]
    pub kubernetes: bool,
    /// Node segments (`up --subnets`); 0 in older state files means 1.
    #[serde(default)]
    pub subnets: usize,
    /// ferryd's `--encapsulation`, when given (else ferryd's default).
    #[serde(default)]
    pub encapsulation: Option<String>,
    /// ferryd's `--encryption`, when given.
    #[serde(default)]
    pub encryption: Option<String>,
}

fn yes() -> bool {
    true
}

impl State {
    pub fn load(cfg: &LabConfig) -> Result<State> {
        let path = cfg.state_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LabError::NotUp {
                    prefix: cfg.prefix.clone(),
                    path,
                })
            }
            Err(e) => return Err(LabError::io(path, e)),
        };
        serde_json::from_str(&text).map_err(|e| LabError::State {
            path,
            detail: e.to_string(),
        })
    }

    pub fn save(&self, cfg: &LabConfig) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("state serializes");
        write_atomic(&cfg.state_file(), &text)
    }

    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.plan.name == name)
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.plan.name == name)
    }

    pub fn pods_on(&self, node: &str) -> Vec<&Pod> {
        self.pods.iter().filter(|p| p.node == node).collect()
    }

    pub fn pod(&self, name: &str) -> Option<&Pod> {
        self.pods.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_missing_means_not_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = LabConfig::new("fl-");
        assert_eq!(cfg.state_dir, Path::new("/run/ferry-lab/fl"));
        cfg.state_dir = dir.path().join("lab");
        assert!(matches!(State::load(&cfg), Err(LabError::NotUp { .. })));
        let s = State {
            prefix: "fl-".into(),
            routing: Routing::Ospf,
            advertise: Advertise::Aggregate,
            dual_stack: false,
            nodes: vec![NodeState {
                plan: topo::node_plan("fl-", 0, false),
                ferryd: Some(Proc { pid: 7, start: 9 }),
            }],
            pods: vec![Pod {
                name: "pod-1".into(),
                node: "k8s-master".into(),
                netns: "fl-pod-1".into(),
                container_id: "c".into(),
                uid: "u".into(),
                ips: vec!["10.244.0.2".into()],
            }],
            apiserver: None,
            next_pod: 2,
            converged_s: Some(1.5),
            cni_version: "1.0.0".into(),
            fast_path: true,
            kubernetes: false,
            subnets: 1,
            encapsulation: None,
            encryption: None,
        };
        s.save(&cfg).unwrap();
        let back = State::load(&cfg).unwrap();
        assert_eq!(back.nodes[0].plan, s.nodes[0].plan);
        assert_eq!(back.pods, s.pods);
        assert_eq!(back.routing, Routing::Ospf);
        assert_eq!(back.pods_on("k8s-master").len(), 1);
        assert_eq!(back.pod("pod-1").unwrap().ip_v4(), Some("10.244.0.2"));
    }
}
