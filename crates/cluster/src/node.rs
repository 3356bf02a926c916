//! A node: its own mount namespace inside its netns, held by a small
//! "holder" process, in which its own containerd, kubelet and kube-proxy
//! run. The holder sets the namespace up as a kubeadm node looks:
//!
//! - `/etc`, `/opt`, `/var/lib`, `/var/log` are overlays of the host's
//!   with the node's own upper dir, so what the node writes there
//!   (`/etc/cni/net.d`, `/opt/cni/bin`, `/var/lib/cni`, pod logs) stays
//!   the node's and the host's files never change; the host's CNI
//!   configs are hidden (the node starts with no network plugin);
//! - a tmpfs on `/run` (containerd's state, the pods' netns files,
//!   `/run/ferry`); no bpf file system on `/sys/fs/bpf` (the host's is
//!   unmounted in the node: nodes sharing one would share ferry's pinned
//!   maps), as on a host without systemd: ferry's privileged `prepare`
//!   step mounts it;
//! - the reference plugins in `/opt/cni/bin` (what kubernetes-cni gives
//!   a kubeadm node: containerd needs `loopback`, ferry chains `portmap`);
//! - files bound over the three `/proc/sys` values kubelet's
//!   `--protect-kernel-defaults` checks (they are host-wide: the kubelet
//!   must read, never write, them);
//! - then every mount made shared, as systemd leaves a host's (a
//!   Bidirectional hostPath needs it), in peer groups of the node's own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::control::Pki;
use crate::error::{ClusterError, Result};
use crate::paths::{ClusterPaths, API_PORT, CLUSTER_CIDR};
use crate::pki::Subject;
use crate::procs::{spawn, Place, Proc};
use crate::util::{mkdir, run, wait_until, write_file};
use crate::{cgroups, images, kubeconfig};

/// containerd's socket inside a node.
pub const CONTAINERD_SOCK: &str = "/run/containerd/containerd.sock";

/// A node to run: its Kubernetes name, netns and InternalIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    pub netns: String,
    pub ip: String,
}

/// A running node's processes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct NodeProcs {
    pub holder: Proc,
    pub containerd: Proc,
    pub kubelet: Proc,
    pub kube_proxy: Proc,
}

/// The kernel values kubelet's `--protect-kernel-defaults` insists on.
const KERNEL_DEFAULTS: [(&str, &str); 3] = [
    ("vm/overcommit_memory", "1"),
    ("kernel/panic", "10"),
    ("kernel/panic_on_oops", "1"),
];

const HOLDER_SCRIPT: &str = r#"set -eu
N="$1"
# The node's own hostname (its UTS namespace): hostNetwork pods report it.
hostname "$(basename "$N")"
for d in etc opt var/lib var/log; do
  u="$N/overlay/$(echo "$d" | tr / _)"
  mkdir -p "$u/upper" "$u/work"
  mount -t overlay "ferry-lab-overlay" -o "lowerdir=/$d,upperdir=$u/upper,workdir=$u/work" "/$d"
done
if [ ! -e "$N/overlay/.installed" ]; then
  # First boot: a node as kubeadm finds it (the upper dirs keep what the
  # node writes from then on, across restarts, like a disk).
  rm -rf /etc/cni/net.d /opt/cni /var/lib/cni /var/log/pods /var/log/containers
  mkdir -p /etc/cni/net.d /opt/cni/bin /var/lib/cni /var/log/pods /var/log/containers
  cp -a /usr/lib/cni/. /opt/cni/bin/
  touch "$N/overlay/.installed"
fi
mount -t tmpfs -o mode=0755 ferry-lab-run /run
# No bpf file system, as on a host without systemd: not the host's, which
# every node would share (one set of pinned maps for three "kernels"):
# ferry's prepare step mounts the node's own.
umount /sys/fs/bpf 2>/dev/null || true
for f in "$N"/sysctl/*; do
  mount --bind "$f" "/proc/sys/$(basename "$f" | tr : /)"
done
# Shared, as systemd makes a host's mounts (Bidirectional hostPath mounts
# need it); the peer groups are new, so nothing reaches the host's mounts.
mount --make-rshared /
echo ready > "$N/holder.ready"
exec sleep 2147483647
"#;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Writes everything the node's daemons read: certificates and
/// kubeconfigs, containerd's and the kubelet's configs, the kernel
/// values, and creates its cgroup root.
pub fn prepare(paths: &ClusterPaths, pki: &Pki, node: &NodeSpec, api: &str) -> Result<()> {
    let dir = paths.node(&node.name);
    for sub in [
        "containerd",
        "kubelet",
        "kubelet-pki",
        "volume-plugins",
        "sysctl",
        "logs",
    ] {
        mkdir(&dir.join(sub))?;
    }
    let server = format!("https://{api}:{API_PORT}");
    let kubelet_cert = pki.ca.client(
        &format!("node-{}", node.name),
        Subject {
            cn: &format!("system:node:{}", node.name),
            org: Some("system:nodes"),
        },
    )?;
    kubeconfig::write(
        &dir.join("kubelet.conf"),
        &server,
        &pki.ca.cert_path(),
        &kubelet_cert,
        "kubelet",
    )?;
    let proxy_cert = pki.ca.client(
        &format!("kube-proxy-{}", node.name),
        Subject {
            cn: "system:kube-proxy",
            org: None,
        },
    )?;
    kubeconfig::write(
        &dir.join("kube-proxy.conf"),
        &server,
        &pki.ca.cert_path(),
        &proxy_cert,
        "kube-proxy",
    )?;
    write_file(
        &dir.join("containerd.toml"),
        containerd_config(&dir).as_bytes(),
        0o644,
    )?;
    let kcfg = kubelet_config(paths, node, &pki.ca.cert_path(), &dir);
    write_file(&dir.join("kubelet.yaml"), kcfg.as_bytes(), 0o644)?;
    write_file(
        &dir.join("resolv.conf"),
        b"# ferry-lab: no cluster DNS\n",
        0o644,
    )?;
    for (key, value) in KERNEL_DEFAULTS {
        write_file(
            &dir.join("sysctl").join(key.replace('/', ":")),
            format!("{value}\n").as_bytes(),
            0o644,
        )?;
    }
    cgroups::create(&paths.cgroup_root(&node.name))
}

fn containerd_config(dir: &Path) -> String {
    format!(
        r#"version = 2
root = "{d}/containerd/root"
state = "/run/containerd"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{CONTAINERD_SOCK}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
"#,
        d = dir.display(),
        pause = images::PAUSE_IMAGE,
    )
}

fn kubelet_config(paths: &ClusterPaths, node: &NodeSpec, ca: &Path, dir: &Path) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {ip}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {ca}
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupRoot: {cgroup}
cgroupsPerQOS: true
enforceNodeAllocatable: ["pods"]
failSwapOn: false
protectKernelDefaults: true
clusterDomain: cluster.local
resolvConf: {resolv}
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
volumePluginDir: {plugins}
runtimeRequestTimeout: 2m
"#,
        ip = node.ip,
        ca = ca.display(),
        cgroup = paths.cgroup_root(&node.name),
        resolv = dir.join("resolv.conf").display(),
        plugins = dir.join("volume-plugins").display(),
    )
}

/// Starts the holder, containerd (and imports `archives` into it), the
/// kubelet and kube-proxy.
pub fn start(paths: &ClusterPaths, node: &NodeSpec, archives: &[PathBuf]) -> Result<NodeProcs> {
    let dir = paths.node(&node.name);
    let logs = dir.join("logs");
    let _ = std::fs::remove_file(dir.join("holder.ready"));
    let holder = spawn(
        &Place::netns(&node.netns),
        Path::new("/usr/bin/unshare"),
        &[
            "--mount".into(),
            "--uts".into(),
            "--propagation=private".into(),
            "--".into(),
            "/bin/sh".into(),
            "-c".into(),
            HOLDER_SCRIPT.into(),
            "ferry-lab-node".into(),
            s(&dir),
        ],
        &[],
        &logs.join("holder.log"),
    )?;
    wait_until(
        "the node's mounts",
        Duration::from_secs(30),
        Duration::from_millis(50),
        |last| {
            if !holder.alive() {
                *last = crate::util::tail(&logs.join("holder.log"), 10);
            }
            dir.join("holder.ready").exists().then_some(())
        },
    )?;
    let here = Place::of_holder(holder.pid);
    let containerd = spawn(
        &here,
        Path::new("/usr/bin/containerd"),
        &["--config".into(), s(&dir.join("containerd.toml"))],
        &[],
        &logs.join("containerd.log"),
    )?;
    let sock = PathBuf::from(format!("/proc/{}/root{CONTAINERD_SOCK}", holder.pid));
    wait_until(
        "containerd's socket",
        Duration::from_secs(30),
        Duration::from_millis(50),
        |_| sock.exists().then_some(()),
    )?;
    for a in archives {
        let mut cmd = here.command(
            Path::new("/usr/bin/ctr"),
            &[
                format!("--address={CONTAINERD_SOCK}"),
                "-n".into(),
                "k8s.io".into(),
                "images".into(),
                "import".into(),
                s(a),
            ],
        );
        run(&mut cmd)?;
    }
    let kubelet = spawn(
        &here,
        &paths.kube_binary("kubelet")?,
        &[
            format!("--config={}", s(&dir.join("kubelet.yaml"))),
            format!("--kubeconfig={}", s(&dir.join("kubelet.conf"))),
            "--container-runtime=remote".into(),
            format!("--container-runtime-endpoint=unix://{CONTAINERD_SOCK}"),
            format!("--pod-infra-container-image={}", images::PAUSE_IMAGE),
            format!("--node-ip={}", node.ip),
            format!("--hostname-override={}", node.name),
            format!("--root-dir={}", s(&dir.join("kubelet"))),
            format!("--cert-dir={}", s(&dir.join("kubelet-pki"))),
            "--v=1".into(),
        ],
        &[],
        &logs.join("kubelet.log"),
    )?;
    let kube_proxy = spawn(
        &here,
        &paths.kube_binary("kube-proxy")?,
        &[
            format!("--kubeconfig={}", s(&dir.join("kube-proxy.conf"))),
            format!("--hostname-override={}", node.name),
            format!("--bind-address={}", node.ip),
            format!("--cluster-cidr={CLUSTER_CIDR}"),
            "--proxy-mode=iptables".into(),
            // A netns cannot set nf_conntrack_max or the global timeouts.
            "--conntrack-max-per-core=0".into(),
            "--conntrack-tcp-timeout-established=0".into(),
            "--conntrack-tcp-timeout-close-wait=0".into(),
            "--metrics-bind-address=127.0.0.1:10249".into(),
            "--healthz-bind-address=127.0.0.1:10256".into(),
            "--v=1".into(),
        ],
        &[],
        &logs.join("kube-proxy.log"),
    )?;
    Ok(NodeProcs {
        holder,
        containerd,
        kubelet,
        kube_proxy,
    })
}

impl NodeProcs {
    /// Stops the node's daemons as a shutdown would (pods' processes stay
    /// in the node's cgroups until `cgroups::sweep`).
    pub fn stop(&self) -> bool {
        [self.kube_proxy, self.kubelet, self.containerd, self.holder]
            .iter()
            .all(|p| p.stop(Duration::from_secs(10)))
    }
}

/// `ctr images tag --force FROM TO` in the node's containerd (`k8s.io`).
pub fn tag_image(holder: i32, from: &str, to: &str) -> Result<()> {
    let mut cmd = Place::of_holder(holder).command(
        Path::new("/usr/bin/ctr"),
        &[
            format!("--address={CONTAINERD_SOCK}"),
            "-n".into(),
            "k8s.io".into(),
            "images".into(),
            "tag".into(),
            "--force".into(),
            from.into(),
            to.into(),
        ],
    );
    run(&mut cmd).map(drop)
}

/// Stops the whole node as a power cut would: its pods (its cgroup root),
/// every process in its netns (holder, containerd and its shims, kubelet,
/// kube-proxy, hostNetwork pods such as ferryd). The node's mount
/// namespace goes with its last process, and with it `/run` (containerd's
/// state, the pods' netns files, ferry's IPAM state): the pods' netns,
/// veths and host routes go with them. How many processes were stopped.
pub fn power_off(paths: &ClusterPaths, node: &NodeSpec, procs: Option<&NodeProcs>) -> usize {
    let mut n = cgroups::sweep_processes(&paths.cgroup_root(&node.name));
    if let Some(p) = procs {
        n += crate::procs::kill_all(&[
            p.kube_proxy.pid,
            p.kubelet.pid,
            p.containerd.pid,
            p.holder.pid,
        ]);
    }
    n += crate::procs::kill_all(&crate::procs::in_netns(&node.netns));
    n + cgroups::sweep_processes(&paths.cgroup_root(&node.name))
}

/// The addresses ferry's IPAM holds on the node (`/run/ferry/ipam/*/`
/// in its mount namespace: one file per address).
pub fn ipam_reservations(holder: i32) -> Vec<String> {
    let root = PathBuf::from(format!("/proc/{holder}/root/run/ferry/ipam"));
    std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|net| {
            std::fs::read_dir(net.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter_map(|f| f.file_name().to_str().map(String::from))
        .filter(|name| name.parse::<std::net::IpAddr>().is_ok())
        .collect()
}

/// How many host veths of ferry's (`ferry<hex>`) the node netns has.
pub fn ferry_veths(netns: &str) -> usize {
    let out = run(std::process::Command::new("ip").args(["-n", netns, "-o", "link", "show"]))
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .filter(|name| name.starts_with("ferry") && name.contains('@'))
        .count()
}

/// Why the node's daemons are not all running, if they are not.
pub fn dead(procs: &NodeProcs) -> Option<String> {
    let named = [
        ("holder", procs.holder),
        ("containerd", procs.containerd),
        ("kubelet", procs.kubelet),
        ("kube-proxy", procs.kube_proxy),
    ];
    let dead: Vec<&str> = named
        .iter()
        .filter(|(_, p)| !p.alive())
        .map(|(n, _)| *n)
        .collect();
    (!dead.is_empty()).then(|| format!("not running: {}", dead.join(", ")))
}

/// A node's log file (`containerd`, `kubelet`, `kube-proxy`, `holder`).
pub fn log(paths: &ClusterPaths, node: &str, daemon: &str) -> PathBuf {
    paths.node(node).join("logs").join(format!("{daemon}.log"))
}

/// Refuses a NodeSpec that cannot be right.
pub fn validate(node: &NodeSpec) -> Result<()> {
    if node.name.is_empty()
        || node.netns.is_empty()
        || node.ip.parse::<std::net::Ipv4Addr>().is_err()
    {
        return Err(ClusterError::Invalid(format!("bad node {node:?}")));
    }
    Ok(())
}
