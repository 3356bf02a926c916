//! `ferryd run` in each node netns, with the node's own directories (CNI
//! bin/conf dirs, IPAM data dir), metrics on 127.0.0.1:9654 inside the
//! netns and, for ospf/bgp, the node's FRR pathspace.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::procs::{self, Proc};
use crate::sh;
use crate::state::{LabConfig, State};
use crate::topo::{self, NodePlan, Routing};

/// The conflist ferryd writes (ferryd's `CONFLIST_FILE`).
pub const CONFLIST_FILE: &str = "10-ferry.conflist";
/// The reference plugins (`portmap` of ferryd's conflist lives there, as
/// in /opt/cni/bin on a kubeadm node).
pub const REFERENCE_PLUGIN_DIR: &str = "/usr/lib/cni";
pub const OSPF_KEY_FILE: &str = "ospf-auth-key";
pub const BGP_PASSWORD_FILE: &str = "bgp-password";

/// A node's directories.
pub struct NodeDirs {
    pub root: PathBuf,
}

impl NodeDirs {
    pub fn new(cfg: &LabConfig, node: &str) -> NodeDirs {
        NodeDirs {
            root: cfg.node_dir(node),
        }
    }
    pub fn bin(&self) -> PathBuf {
        self.root.join("bin")
    }
    pub fn conf(&self) -> PathBuf {
        self.root.join("net.d")
    }
    pub fn conflist(&self) -> PathBuf {
        self.conf().join(CONFLIST_FILE)
    }
    pub fn ipam(&self) -> PathBuf {
        self.root.join("ipam")
    }
    /// Where the plugin announces new pods to ferryd (NetworkPolicy).
    pub fn policy(&self) -> PathBuf {
        self.root.join("policy")
    }
    pub fn cni_cache(&self) -> PathBuf {
        self.root.join("cni-cache")
    }
    /// The node's WireGuard private key (`--encryption wireguard`).
    pub fn wireguard_key(&self) -> PathBuf {
        self.root.join("wireguard.key")
    }
    /// Where the node's `ferry-wg` has its UAPI socket.
    pub fn wireguard_run(&self) -> PathBuf {
        self.root.join("wireguard")
    }
    pub fn log(&self) -> PathBuf {
        self.root.join("ferryd.log")
    }
}

pub fn metrics_addr() -> SocketAddr {
    topo::METRICS_ADDR.parse().expect("metrics address")
}

/// Writes the routing secrets once (ferryd reads them as mounted Secrets).
pub fn write_secrets(cfg: &LabConfig) -> Result<()> {
    for (name, value) in [
        (OSPF_KEY_FILE, "f3rryOSPF"),
        (BGP_PASSWORD_FILE, "f3rryBGP"),
    ] {
        let path = cfg.secret_file(name);
        if !path.exists() {
            sh::write_atomic(&path, &format!("{value}\n"))?;
        }
    }
    Ok(())
}

/// ferryd's flags for `node` in this lab. `--cni-version` is what this
/// machine's `portmap` (chained in ferryd's conflist) accepts.
pub fn args(cfg: &LabConfig, state: &State, node: &NodePlan) -> Vec<String> {
    let dirs = NodeDirs::new(cfg, &node.name);
    let p = |p: PathBuf| p.display().to_string();
    let mut a: Vec<String> = vec![
        "run".into(),
        "--kubeconfig".into(),
        p(cfg.kubeconfig()),
        "--node-name".into(),
        node.name.clone(),
        "--routing".into(),
        state.routing.to_string(),
        "--cni-bin-dir".into(),
        p(dirs.bin()),
        "--cni-conf-dir".into(),
        p(dirs.conf()),
        "--ipam-data-dir".into(),
        p(dirs.ipam()),
        "--policy-dir".into(),
        p(dirs.policy()),
        // The lab makes its pods itself, not through a CRI runtime: a
        // runtime on the host would know none of them.
        "--ipam-gc=false".into(),
        "--metrics-addr".into(),
        topo::METRICS_ADDR.into(),
        "--plugin-source-dir".into(),
        p(cfg.bin_dir.clone()),
        "--resync-interval".into(),
        "30s".into(),
        "--cni-version".into(),
        state.cni_version.clone(),
        "--bpf-dir".into(),
        p(cfg.node_bpf_dir(&node.name)),
        format!("--fast-path={}", state.fast_path),
    ];
    if let Some(e) = &state.encapsulation {
        a.extend(["--encapsulation".into(), e.clone()]);
    }
    if let Some(e) = &state.encryption {
        // The node's key and the userspace device's socket in the node's
        // own directory (the nodes share one file system).
        a.extend([
            "--encryption".into(),
            e.clone(),
            "--wireguard-key-file".into(),
            p(dirs.wireguard_key()),
            "--wireguard-run-dir".into(),
            p(dirs.wireguard_run()),
        ]);
    }
    match state.routing {
        Routing::Direct => {}
        Routing::Ospf | Routing::Bgp => {
            a.extend([
                "--advertise".into(),
                state.advertise.to_string(),
                "--frr-pathspace".into(),
                node.netns.clone(),
            ]);
            let (flag, file) = if state.routing == Routing::Ospf {
                ("--ospf-auth-key-file", OSPF_KEY_FILE)
            } else {
                ("--bgp-password-file", BGP_PASSWORD_FILE)
            };
            a.extend([flag.into(), p(cfg.secret_file(file))]);
        }
    }
    a
}

/// Starts ferryd for `node`.
pub fn start(cfg: &LabConfig, state: &State, node: &NodePlan) -> Result<Proc> {
    let bin = cfg.binary("ferryd")?;
    let dirs = NodeDirs::new(cfg, &node.name);
    procs::spawn_in_netns(
        &node.netns,
        &bin,
        &args(cfg, state, node),
        &[("RUST_LOG", "info")],
        &dirs.log(),
    )
}

/// `GET path` on ferryd's metrics address in the node netns.
pub fn get(node: &NodePlan, path: &str) -> Option<(u16, String)> {
    ferry_testkit::http_get(&node.netns, metrics_addr(), path)
}

pub fn ready(node: &NodePlan) -> bool {
    matches!(get(node, "/readyz"), Some((200, _)))
}

/// One metric's value from `/metrics`.
pub fn metric(node: &NodePlan, name: &str) -> Option<f64> {
    let (_, body) = get(node, "/metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The last lines of a node's ferryd log (for error messages).
pub fn log_tail(cfg: &LabConfig, node: &str, lines: usize) -> String {
    let text = std::fs::read_to_string(NodeDirs::new(cfg, node).log()).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until ferryd on `node` is ready and has written the conflist
/// (the node's network is up: the runtime may create pods).
pub fn wait_ready(cfg: &LabConfig, node: &NodePlan, proc: Proc, limit: Duration) -> Result<()> {
    let conflist = NodeDirs::new(cfg, &node.name).conflist();
    let mut exited = false;
    let r = sh::wait_for(limit, Duration::from_millis(25), "ferryd ready", || {
        if !proc.alive() {
            exited = true;
            return Some(());
        }
        (conflist.exists() && ready(node)).then_some(())
    });
    match r {
        Ok(()) if !exited => Ok(()),
        Ok(()) => Err(LabError::Command {
            command: format!("ferryd on {}", node.name),
            output: format!("exited; log:\n{}", log_tail(cfg, &node.name, 30)),
        }),
        Err(_) => Err(LabError::Timeout {
            what: format!("ferryd on {} to be ready with {}", node.name, CONFLIST_FILE),
            waited: limit,
            detail: log_tail(cfg, &node.name, 30),
        }),
    }
}
