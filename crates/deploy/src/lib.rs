//! ferry-deploy: the Kubernetes manifests that run ferry on a cluster,
//! generated from one source so the routing modes cannot drift apart.
//!
//! Everything ferryd-specific is taken from ferryd itself: the environment
//! variable of each setting from [`ferryd::cli::flags`], the RBAC rules from
//! [`ferryd::API_CALLS`] and [`ferryd::NON_RESOURCE_URLS`], the probe
//! address from the `--metrics-addr` default, the FRR daemons from
//! [`ferry_frr::FrrSpec::daemons`]. The objects are k8s-openapi types,
//! serialized to YAML ([`Manifest::render`]) and parsed back ([`parse`]).
//!
//! The files (`deploy/` at the repository root, rewritten by
//! `cargo run -p ferry-deploy`):
//!
//! | file | what |
//! |---|---|
//! | `ferry.yaml` | `--routing direct`: kernel routes between nodes, no FRR |
//! | `ferry-ospf.yaml` | `--routing ospf` with FRR beside ferryd, MD5 key from Secret `ferry-ospf` |
//! | `ferry-bgp.yaml` | `--routing bgp` with FRR beside ferryd, TCP-MD5 password from Secret `ferry-bgp` |
//! | `ferry-wireguard.yaml` | `--routing direct` with `--encryption wireguard`: pod traffic between nodes through WireGuard |
//! | `ferry-uninstall.yaml` | a DaemonSet running `ferryd uninstall` on every node |
//!
//! Every file uses only what Kubernetes 1.20 has (no native sidecars), so
//! one shape serves 1.20 and current releases; the only privileged
//! container is the short `prepare` init container.
//!
//! Tests (`tests/`): the files equal the generator's output; they parse
//! into k8s-openapi types; no field is newer than Kubernetes 1.20
//! (`versions.rs`); images, flags, env, RBAC, mounts and probes
//! agree with ferryd; FRR's own start-up script reads the `daemons` file;
//! and the containers run, in network namespaces against ferry-apiserver,
//! with exactly the capabilities, mounts, environment and read-only
//! `/proc/sys` the manifests give them (`tests/sandbox`). Those need the
//! built `ferryd`, `ferry`, `ferry-ipam` in the target dir (`cargo build
//! -p ferryd -p ferry-plugin`, or `cargo test --workspace`) and Debian's
//! `frr` package.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use ferryd::cli::FlagInfo;

mod frr;
mod objects;
mod pod;
mod rbac;
mod uninstall;
mod wireguard;
mod yaml;

pub use ferryd::cli::Routing;
pub use frr::{daemons, daemons_file};
pub use wireguard::FILE as WIREGUARD_FILE;
pub use yaml::{parse, Object, YamlError};

/// Namespace of every object (kubeadm's `kube-system`).
pub const NAMESPACE: &str = "kube-system";
/// Name of the ServiceAccount, ClusterRole, ClusterRoleBinding, DaemonSet.
pub const NAME: &str = "ferry";
/// The name of the uninstall DaemonSet.
pub const UNINSTALL_NAME: &str = "ferry-uninstall";
/// The tag of ferry's images: the workspace version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Default repository of the minimal image (`Dockerfile` target `ferry`).
pub const DEFAULT_IMAGE: &str = "localhost/ferry";
/// Default repository of the image with FRR's tools (target `ferry-frr`).
pub const DEFAULT_FRR_TOOLS_IMAGE: &str = "localhost/ferry-frr";
/// The FRR image the FRR container runs; `deploy/Dockerfile` builds `ferry-frr`
/// on the same one, so `vtysh` and `frr-reload.py` match the daemons.
pub const FRR_IMAGE: &str = "quay.io/frrouting/frr:8.4.4";
/// The uninstall DaemonSet's idle container (kubeadm's pause image, which
/// every kubeadm node already has).
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// Where the images keep `ferryd`, `ferry` and `ferry-ipam`: on `PATH` (for
/// `kubectl exec ... ferryd status`), and together, because ferryd
/// installs the plugin from its own directory.
pub const IMAGE_BIN_DIR: &str = "/usr/local/bin";
/// The host directory holding ferry's state (the IPAM store is below it).
pub const STATE_DIR: &str = "/run/ferry";
/// The host's bpf file system (systemd mounts it on most hosts): ferryd
/// pins the fast path below it (`--bpf-dir`), where the plugin, running on
/// the host, opens it; ferryd checks that this very directory is a bpffs.
pub const BPF_FS: &str = "/sys/fs/bpf";
/// The Secret (and its key) holding the OSPF MD5 key.
pub const OSPF_SECRET: (&str, &str) = ("ferry-ospf", "key");
/// The Secret (and its key) holding the BGP TCP-MD5 password.
pub const BGP_SECRET: (&str, &str) = ("ferry-bgp", "password");

/// The images the manifests name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// Repository of the minimal image (no tag).
    pub ferry: String,
    /// Repository of the image with FRR's tools (no tag).
    pub ferry_frr: String,
    /// Tag of both.
    pub tag: String,
    /// The FRR container's image (with tag).
    pub frr: String,
    /// The uninstall DaemonSet's idle container (with tag).
    pub pause: String,
}

impl Default for Images {
    fn default() -> Images {
        Images {
            ferry: DEFAULT_IMAGE.into(),
            ferry_frr: DEFAULT_FRR_TOOLS_IMAGE.into(),
            tag: VERSION.into(),
            frr: FRR_IMAGE.into(),
            pause: PAUSE_IMAGE.into(),
        }
    }
}

impl Images {
    /// The image ferryd runs from in a routing mode: FRR's tools (`vtysh`,
    /// `frr-reload.py`, python3) are needed with ospf/bgp.
    pub fn agent(&self, routing: Routing) -> String {
        let repo = if uses_frr(routing) {
            &self.ferry_frr
        } else {
            &self.ferry
        };
        format!("{repo}:{}", self.tag)
    }

    pub fn minimal(&self) -> String {
        format!("{}:{}", self.ferry, self.tag)
    }
}

/// One file of objects.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// File name in `deploy/`.
    pub file: &'static str,
    /// Comment lines at the top (without `# `).
    pub header: Vec<String>,
    pub objects: Vec<Object>,
}

impl Manifest {
    /// The file's content: the header as comments, then one YAML document
    /// per object.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            if line.is_empty() {
                out.push_str("#\n");
            } else {
                out.push_str(&format!("# {line}\n"));
            }
        }
        for o in &self.objects {
            out.push_str("---\n");
            out.push_str(&o.to_yaml());
        }
        out
    }
}

/// The routing modes, in file order.
pub const ROUTINGS: [Routing; 3] = [Routing::Direct, Routing::Ospf, Routing::Bgp];

/// Whether a mode runs FRR.
pub fn uses_frr(routing: Routing) -> bool {
    routing != Routing::Direct
}

/// `--routing`'s value for a mode, as ferryd's parser spells it.
pub fn routing_name(routing: Routing) -> String {
    routing
        .to_possible_value()
        .expect("every routing mode has a name")
        .get_name()
        .to_string()
}

/// The file of a routing mode.
pub fn file_name(routing: Routing) -> &'static str {
    match routing {
        Routing::Direct => "ferry.yaml",
        Routing::Ospf => "ferry-ospf.yaml",
        Routing::Bgp => "ferry-bgp.yaml",
    }
}

/// The file of the uninstall DaemonSet.
pub const UNINSTALL_FILE: &str = "ferry-uninstall.yaml";

/// Every file, in order: one per routing mode, the WireGuard one, then
/// the uninstall one.
pub fn manifests(images: &Images) -> Vec<Manifest> {
    let mut out: Vec<Manifest> = ROUTINGS.iter().map(|r| install(*r, images)).collect();
    out.push(wireguard::manifest(images));
    out.push(uninstall::manifest(images));
    out
}

/// The manifest installing ferry in one routing mode.
pub fn install(routing: Routing, images: &Images) -> Manifest {
    let mut objects = rbac::objects();
    if uses_frr(routing) {
        objects.push(Object::ConfigMap(frr::daemons_config_map(routing)));
    }
    objects.push(Object::DaemonSet(Box::new(pod::daemonset(routing, images))));
    let mode = match routing {
        Routing::Direct => "direct routing: a kernel route to every other node's podCIDR via its InternalIP (nodes on one L2 segment)",
        Routing::Ospf => "OSPF area 0 through FRR beside ferryd (MD5 authentication)",
        Routing::Bgp => "an iBGP full mesh through FRR beside ferryd (TCP-MD5)",
    };
    let mut header = vec![
        format!("ferry {}: {mode}.", images.tag),
        "Generated by `cargo run -p ferry-deploy` (crates/deploy); do not edit.".into(),
        String::new(),
    ];
    let (secret, key) = match routing {
        Routing::Direct => (None, ""),
        Routing::Ospf => (Some(OSPF_SECRET), "openssl rand -hex 8"),
        Routing::Bgp => (Some(BGP_SECRET), "openssl rand -hex 32"),
    };
    if let Some((name, item)) = secret {
        header.push("First create the Secret (no key is checked in):".into());
        header.push(format!(
            "  kubectl -n {NAMESPACE} create secret generic {name} --from-literal={item}=$({key})"
        ));
    }
    header.push(format!("kubectl apply -f deploy/{}", file_name(routing)));
    header.push("See docs/install.md.".into());
    Manifest {
        file: file_name(routing),
        header,
        objects,
    }
}

/// ferryd's flag `--long` (panics when ferryd has no such flag: the
/// generator is wrong then, and its tests say so).
pub fn flag(long: &str) -> FlagInfo {
    ferryd::cli::flags()
        .into_iter()
        .find(|f| f.long == long)
        .unwrap_or_else(|| panic!("ferryd has no flag --{long}"))
}

/// The environment variable that sets ferryd's `--long`.
pub fn env_of(long: &str) -> String {
    flag(long)
        .env
        .unwrap_or_else(|| panic!("ferryd's --{long} has no environment variable"))
}

/// ferryd's default for `--long`.
pub fn default_of(long: &str) -> String {
    flag(long)
        .default
        .unwrap_or_else(|| panic!("ferryd's --{long} has no default"))
}

/// Where ferryd serves `/healthz`, `/readyz` and `/metrics` (its default
/// `--metrics-addr`: loopback; kubelet probes it with `host: 127.0.0.1`,
/// which reaches the node's loopback because the pod uses the host's
/// network namespace).
pub fn metrics_addr() -> SocketAddr {
    default_of("metrics-addr")
        .parse()
        .expect("ferryd's default --metrics-addr is an address")
}

/// The default output directory: `deploy/` at the repository root.
pub fn default_out_dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .nth(2)
        .unwrap_or(crate_dir)
        .join("deploy")
}
