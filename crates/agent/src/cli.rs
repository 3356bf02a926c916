//! Command line: subcommands `run` (default), `install`, `prepare`,
//! `status`, `uninstall`, `gc`, all taking the same flags, each flag also read from a
//! `FERRY_...` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

/// ferryd: ferry's node agent.
#[derive(Debug, Parser)]
#[command(name = "ferryd", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub opts: Opts,
}

impl Cli {
    /// The subcommand, `run` when none was given.
    pub fn subcommand(&self) -> Command {
        self.command.unwrap_or(Command::Run)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Keep the node's network right (the default).
    Run,
    /// Configure the node once (routes, NAT, FRR, plugin, conflist) and exit.
    Install,
    /// The privileged part, once: mount the bpf file system and turn
    /// forwarding on (the manifests' `prepare` init container).
    Prepare,
    /// Show what ferryd manages on this node.
    Status,
    /// Remove everything ferryd made on this node.
    Uninstall,
    /// Collect leaked IPAM reservations and host veths once (what `run`
    /// does every `--ipam-gc-interval`), print them and exit.
    Gc,
}

/// How pod CIDRs reach other nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Routing {
    /// Kernel routes to each node's podCIDRs via its InternalIP (host-gw).
    #[default]
    Direct,
    /// OSPF area 0 through FRR.
    Ospf,
    /// iBGP full mesh through FRR.
    Bgp,
}

/// When pod traffic to another node goes through VXLAN (direct routing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Encapsulation {
    /// Plain routes only; nodes off this node's subnets are unroutable.
    Never,
    /// VXLAN to nodes whose InternalIP is off this node's subnets, plain
    /// routes to the others (the default with `--routing direct`).
    CrossSubnet,
    /// VXLAN to every other node.
    Always,
}

impl Encapsulation {
    /// The flag's value as written on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Encapsulation::Never => "never",
            Encapsulation::CrossSubnet => "cross-subnet",
            Encapsulation::Always => "always",
        }
    }
}

/// Whether pod traffic between nodes is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Encryption {
    /// In clear (or VXLAN, per `--encapsulation`).
    #[default]
    None,
    /// Through WireGuard (`ferry.wg`): the kernel's device where the
    /// kernel has one, else the userspace `ferry-wg`.
    Wireguard,
}

/// What ospf/bgp advertise for this node's pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Advertise {
    /// The node's podCIDRs (a blackhole route redistributed as static).
    #[default]
    Aggregate,
    /// Every pod's /32 (/128), as the seed did.
    Pods,
}

/// The flags every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct Opts {
    /// kubeconfig to use; in-cluster config (service account) when absent.
    #[arg(long, global = true, env = "FERRY_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// This node's name (downward API `spec.nodeName`; `NODE_NAME` is read
    /// too). Without it: the Node whose InternalIP is a local address.
    #[arg(long, global = true, env = "FERRY_NODE_NAME")]
    pub node_name: Option<String>,

    /// How pod CIDRs reach other nodes.
    #[arg(
        long,
        global = true,
        env = "FERRY_ROUTING",
        value_enum,
        default_value_t
    )]
    pub routing: Routing,

    /// Cluster pod CIDRs not to masquerade (repeatable or comma separated);
    /// default: every Node's podCIDRs.
    #[arg(long, global = true, env = "FERRY_CLUSTER_CIDR", value_delimiter = ',')]
    pub cluster_cidr: Vec<IpNet>,

    /// Where the plugin binaries go.
    #[arg(
        long,
        global = true,
        env = "FERRY_CNI_BIN_DIR",
        default_value = "/opt/cni/bin"
    )]
    pub cni_bin_dir: PathBuf,

    /// Where the conflist goes.
    #[arg(
        long,
        global = true,
        env = "FERRY_CNI_CONF_DIR",
        default_value = "/etc/cni/net.d"
    )]
    pub cni_conf_dir: PathBuf,

    /// IPAM state directory, written into the conflist.
    #[arg(long, global = true, env = "FERRY_IPAM_DATA_DIR", default_value = ferry_ipam::DEFAULT_DATA_DIR)]
    pub ipam_data_dir: PathBuf,

    /// Address of /healthz, /readyz and /metrics.
    #[arg(
        long,
        global = true,
        env = "FERRY_METRICS_ADDR",
        default_value = "127.0.0.1:9654"
    )]
    pub metrics_addr: SocketAddr,

    /// VXLAN to other nodes: never, cross-subnet (the default with
    /// `--routing direct`: only to nodes off this node's subnets) or
    /// always. With ospf/bgp only `never` is valid.
    #[arg(long, global = true, env = "FERRY_ENCAPSULATION", value_enum)]
    pub encapsulation: Option<Encapsulation>,

    /// Encrypt pod traffic between nodes: none or wireguard (needs
    /// `--routing direct`; every other node is then a WireGuard peer and
    /// `--encapsulation` no longer applies to pod traffic).
    #[arg(
        long,
        global = true,
        env = "FERRY_ENCRYPTION",
        value_enum,
        default_value_t
    )]
    pub encryption: Encryption,

    /// WireGuard's UDP port (on every node).
    #[arg(long, global = true, env = "FERRY_WIREGUARD_PORT", default_value_t = ferry_wireguard::DEFAULT_PORT)]
    pub wireguard_port: u16,

    /// The node's WireGuard private key (made on first use, mode 0600; on
    /// the host's /run/ferry in the manifests: a reboot rotates it).
    #[arg(
        long,
        global = true,
        env = "FERRY_WIREGUARD_KEY_FILE",
        default_value = "/run/ferry/wireguard.key"
    )]
    pub wireguard_key_file: PathBuf,

    /// Where the userspace device's UAPI socket is (`<dir>/ferry.wg.sock`).
    #[arg(long, global = true, env = "FERRY_WIREGUARD_RUN_DIR", default_value = ferry_wireguard::uapi::DEFAULT_RUN_DIR)]
    pub wireguard_run_dir: PathBuf,

    /// Without a kernel WireGuard: start `ferry-wg` (from ferryd's own
    /// directory) detached when its socket does not answer. false: wait
    /// for one started otherwise (the DaemonSet's `wireguard` container).
    #[arg(long, global = true, env = "FERRY_WIREGUARD_SPAWN", default_value_t = true, action = clap::ArgAction::Set)]
    pub wireguard_spawn: bool,

    /// What ospf/bgp advertise for this node's pods.
    #[arg(
        long,
        global = true,
        env = "FERRY_ADVERTISE",
        value_enum,
        default_value_t
    )]
    pub advertise: Advertise,

    /// File holding the OSPF MD5 authentication key (a mounted Secret).
    #[arg(long, global = true, env = "FERRY_OSPF_AUTH_KEY_FILE")]
    pub ospf_auth_key_file: Option<PathBuf>,

    /// File holding the BGP TCP-MD5 password (a mounted Secret).
    #[arg(long, global = true, env = "FERRY_BGP_PASSWORD_FILE")]
    pub bgp_password_file: Option<PathBuf>,

    /// BGP autonomous system number (iBGP: the same on every node).
    #[arg(long, global = true, env = "FERRY_BGP_ASN", default_value_t = 64512)]
    pub bgp_asn: u32,

    /// FRR's configuration directory (shared with an FRR container).
    #[arg(long, global = true, env = "FERRY_FRR_CONF_DIR")]
    pub frr_conf_dir: Option<PathBuf>,

    /// FRR's socket directory (shared with an FRR container).
    #[arg(long, global = true, env = "FERRY_FRR_RUN_DIR")]
    pub frr_run_dir: Option<PathBuf>,

    /// FRR pathspace (`-N NAME`): /etc/frr/NAME and /var/run/frr/NAME.
    #[arg(long, global = true, env = "FERRY_FRR_PATHSPACE")]
    pub frr_pathspace: Option<String>,

    /// Where `ferry` and `ferry-ipam` are copied from; default: the
    /// directory holding ferryd's own executable.
    #[arg(long, global = true, env = "FERRY_PLUGIN_SOURCE_DIR")]
    pub plugin_source_dir: Option<PathBuf>,

    /// Full reconcile at least this often (e.g. `60s`, `5m`, `500ms`).
    #[arg(long, global = true, env = "FERRY_RESYNC_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// ospf: how often to check that ospfd (ospf6d) advertises this
    /// node's pod prefixes as self-originated AS-external-LSAs, and re-apply
    /// the redistribution when zebra has a route that ospfd does not.
    #[arg(long, global = true, env = "FERRY_OSPF_AUDIT_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub ospf_audit_interval: Duration,

    /// ospf: how long ospfd must have run, and ferryd's FRR config stayed
    /// the same, before a missing AS-external-LSA is repaired. Longer than
    /// the OSPF grace period: a graceful restart originates no LSA until
    /// it ends.
    #[arg(long, global = true, env = "FERRY_OSPF_AUDIT_SETTLE", default_value = "130s", value_parser = parse_duration)]
    pub ospf_audit_settle: Duration,

    /// The conflist's `cniVersion`. 1.0.0 (the default) is the newest that
    /// containerd 1.6/1.7 and containernetworking-plugins before 1.5 (e.g.
    /// Debian 12's `portmap`) accept; 1.1.0 lets a newer runtime send GC
    /// and STATUS.
    #[arg(long, global = true, env = "FERRY_CNI_VERSION", default_value = "1.0.0", value_parser = ["1.0.0", "1.1.0"])]
    pub cni_version: String,

    /// The eBPF fast path for pod↔pod TCP/UDP (see ferry-ebpf); when
    /// the kernel cannot run it ferryd logs why and goes on without it.
    #[arg(long, global = true, env = "FERRY_FAST_PATH", default_value_t = true, action = clap::ArgAction::Set)]
    pub fast_path: bool,

    /// Where the fast path's program and maps are pinned (on a bpf file
    /// system; /sys/fs/bpf is mounted when it is not).
    #[arg(
        long,
        global = true,
        env = "FERRY_BPF_DIR",
        default_value = "/sys/fs/bpf/ferry"
    )]
    pub bpf_dir: PathBuf,

    /// Enforce Kubernetes NetworkPolicy on this node's pods (nftables table
    /// `inet ferry-policy`); false deletes that table and watches nothing.
    #[arg(long, global = true, env = "FERRY_NETWORK_POLICY", default_value_t = true, action = clap::ArgAction::Set)]
    pub network_policy: bool,

    /// Log each connection attempt a NetworkPolicy drops (INFO, target
    /// `ferry::policy::drop`, with pod and policy names), through NFLOG
    /// group 33779, at most 100 a second (bursts of 20) per group of
    /// policies; drops stay counted either way. A change takes effect when
    /// ferryd starts (its first sync replaces the table).
    #[arg(long, global = true, env = "FERRY_POLICY_LOG", default_value_t = false, action = clap::ArgAction::Set)]
    pub policy_log: bool,

    /// Where the plugin announces new pods to the policy controller (and
    /// waits for its answer), so that policy holds from a pod's first
    /// packet; written into the conflist as `policyDir`.
    #[arg(
        long,
        global = true,
        env = "FERRY_POLICY_DIR",
        default_value = "/run/ferry/policy"
    )]
    pub policy_dir: PathBuf,

    /// Release IPAM reservations (and host veths) that no sandbox holds,
    /// as the container runtime lists them over CRI.
    #[arg(long, global = true, env = "FERRY_IPAM_GC", default_value_t = true, action = clap::ArgAction::Set)]
    pub ipam_gc: bool,

    /// The container runtime's CRI socket, for IPAM GC (`ListPodSandbox`);
    /// default: /run/containerd/containerd.sock when it exists. Without one
    /// there is no IPAM GC.
    #[arg(long, global = true, env = "FERRY_CRI_SOCKET")]
    pub cri_socket: Option<PathBuf>,

    /// IPAM GC never releases a reservation younger than this (a sandbox
    /// is listed only once it has started).
    #[arg(long, global = true, env = "FERRY_IPAM_GC_GRACE", default_value = "2m", value_parser = parse_duration)]
    pub ipam_gc_grace: Duration,

    /// IPAM GC runs at start and then this often.
    #[arg(long, global = true, env = "FERRY_IPAM_GC_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub ipam_gc_interval: Duration,

    /// Pod MTU; default: the MTU of the node's interface.
    #[arg(long, global = true, env = "FERRY_MTU", value_parser = clap::value_parser!(u32).range(576..=65535))]
    pub mtu: Option<u32>,
}

impl Opts {
    /// `--node-name`, else `FERRY_NODE_NAME`, else `NODE_NAME`.
    pub fn node_name(&self) -> Option<String> {
        self.node_name
            .clone()
            .or_else(|| std::env::var("NODE_NAME").ok())
            .filter(|n| !n.is_empty())
    }

    /// `--plugin-source-dir`, else the directory of this executable.
    pub fn plugin_source_dir(&self) -> Option<PathBuf> {
        self.plugin_source_dir.clone().or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(PathBuf::from))
        })
    }

    /// `--encapsulation`, defaulted for the routing mode (`cross-subnet`
    /// for direct, `never` for ospf/bgp); anything but `never` with
    /// ospf/bgp is refused.
    pub fn encapsulation(&self) -> Result<Encapsulation, crate::AgentError> {
        match (self.routing, self.encapsulation) {
            (Routing::Direct, e) => Ok(e.unwrap_or(Encapsulation::CrossSubnet)),
            (_, None | Some(Encapsulation::Never)) => Ok(Encapsulation::Never),
            (r, Some(e)) => Err(crate::AgentError::Config(format!(
                "--encapsulation {} needs --routing direct; with --routing {} \
                 FRR routes between nodes and only --encapsulation never is valid",
                e.as_str(),
                format!("{r:?}").to_lowercase()
            ))),
        }
    }

    /// `--encryption`; wireguard needs `--routing direct`.
    pub fn encryption(&self) -> Result<Encryption, crate::AgentError> {
        match (self.routing, self.encryption) {
            (Routing::Direct, e) | (_, e @ Encryption::None) => Ok(e),
            (r, Encryption::Wireguard) => Err(crate::AgentError::Config(format!(
                "--encryption wireguard needs --routing direct, not {}",
                format!("{r:?}").to_lowercase()
            ))),
        }
    }

    /// The conflist path.
    pub fn conflist_path(&self) -> PathBuf {
        self.cni_conf_dir.join(crate::CONFLIST_FILE)
    }
}

/// Parses `250ms`, `30s`, `5m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 5m or 500ms"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    if d.is_zero() {
        return Err("the interval must be greater than zero".into());
    }
    Ok(d)
}

/// One flag, as the deploy manifests need to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagInfo {
    /// `--long` name without dashes.
    pub long: String,
    /// The environment variable that sets it.
    pub env: Option<String>,
    /// The default value, when there is one.
    pub default: Option<String>,
    /// Whether the flag may be given several times / comma separated.
    pub multiple: bool,
    pub help: String,
}

/// Every flag ferryd accepts, derived from the parser itself.
pub fn flags() -> Vec<FlagInfo> {
    <Cli as CommandFactory>::command()
        .get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?.to_string();
            if long == "help" || long == "version" {
                return None;
            }
            let default = a
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned());
            Some(FlagInfo {
                long,
                env: a.get_env().map(|e| e.to_string_lossy().into_owned()),
                default,
                multiple: a.get_value_delimiter().is_some(),
                help: a.get_help().map(|h| h.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Environment variables ferryd reads besides the `FERRY_...` ones.
pub const EXTRA_ENV: &[&str] = &[
    "NODE_NAME",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "RUST_LOG",
];

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
