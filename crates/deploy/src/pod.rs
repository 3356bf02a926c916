//! The ferry DaemonSet, on the host's network: `ferryd prepare` (the one
//! privileged step: bpf file system, forwarding) as the first init
//! container; in direct mode `ferryd install` (the seed's start-up script)
//! as the second; then `ferryd run`, with FRR beside it in ospf/bgp mode.
//! Only features of Kubernetes 1.20 are used (no native sidecars), so one
//! shape serves 1.20 and current releases alike.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, HTTPGetAction, HostPathVolumeSource, ObjectFieldSelector,
    PodSpec, PodTemplateSpec, Probe, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::objects::{capabilities, env, labels, meta_for, mount, resources};
use crate::{
    default_of, env_of, frr, metrics_addr, routing_name, uses_frr, Images, Routing, BPF_FS,
    IMAGE_BIN_DIR, NAME, NAMESPACE, STATE_DIR,
};

/// Memory for ferryd (and its init container). Measured (release build,
/// against ferry-apiserver): RSS 18.4 MiB (peak 19.8) with 1,000 Nodes,
/// 24.2 MiB (peak 27.6) with 5,000; the limit leaves room above that.
pub const AGENT_MEMORY: (&str, &str) = ("32Mi", "100Mi");
/// With ospf/bgp, ferryd's container also runs `frr-reload.py` (python3:
/// 18.8 MiB peak before reading any config) and `vtysh` on every change
/// and resync.
pub const AGENT_FRR_MEMORY: (&str, &str) = ("64Mi", "200Mi");
pub const AGENT_CPU_REQUEST: &str = "25m";
/// `ferryd prepare`: a mount, the fast path's load (vmlinux's BTF read
/// and parsed, as ferryd does), two sysctls, one GET of its Node.
pub const PREPARE_MEMORY: (&str, &str) = ("16Mi", "64Mi");

/// `NODE_NAME` from the downward API.
pub fn node_name_env() -> EnvVar {
    EnvVar {
        name: "NODE_NAME".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "spec.nodeName".into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The host directories ferryd writes, as (volume name, path): mounted at
/// the same path inside, because the conflist names them as the host sees
/// them (`dataDir`, `fastPath`) and the plugin runs on the host. The bpf
/// file system is mounted whole: ferryd checks that [`BPF_FS`] itself is
/// one, and pins in `--bpf-dir` below it.
pub fn host_dirs() -> Vec<(&'static str, String)> {
    vec![
        ("cni-bin", default_of("cni-bin-dir")),
        ("cni-conf", default_of("cni-conf-dir")),
        ("state", STATE_DIR.to_string()),
        ("bpf", BPF_FS.to_string()),
    ]
}

pub fn host_volumes() -> Vec<Volume> {
    host_dirs()
        .into_iter()
        .map(|(name, path)| Volume {
            name: name.into(),
            host_path: Some(HostPathVolumeSource {
                path,
                type_: Some("DirectoryOrCreate".into()),
            }),
            ..Volume::default()
        })
        .collect()
}

/// The volume with the container runtime's CRI socket, for `ferryd run`'s
/// IPAM GC: containerd's socket directory, read-only, at the same path, so
/// ferryd finds the socket by its default (`--cri-socket` unset). On a node
/// without containerd it is an empty directory and IPAM GC stays off.
pub fn cri_volume() -> (Volume, VolumeMount) {
    let dir = std::path::Path::new(ferryd::ipam_gc::cri::DEFAULT_SOCKET)
        .parent()
        .expect("the socket is in a directory")
        .display()
        .to_string();
    let volume = Volume {
        name: "cri".into(),
        host_path: Some(HostPathVolumeSource {
            path: dir.clone(),
            type_: Some("DirectoryOrCreate".into()),
        }),
        ..Volume::default()
    };
    (volume, mount("cri", &dir, true))
}

/// ferryd's mounts of the host directories. The bpf file system's with
/// `HostToContainer` propagation: one mounted on the host later (by
/// `prepare` of a restarted pod, or systemd) shows up inside.
pub fn host_mounts() -> Vec<VolumeMount> {
    host_dirs()
        .iter()
        .map(|(name, path)| {
            let mut m = mount(name, path, false);
            if path == BPF_FS {
                m.mount_propagation = Some("HostToContainer".into());
            }
            m
        })
        .collect()
}

/// The `prepare` init container: `ferryd prepare`, privileged (the only
/// container that is), with nothing but the host's `/sys/fs/bpf`, mounted
/// `Bidirectional` so that the bpf file system it mounts there is the
/// host's. It mounts it when it is missing, loads the eBPF fast path and
/// pins it in `--bpf-dir` (the same as ferryd's: [`fast_path_env`]) for
/// ferryd, which may lack the privilege to load it (`CAP_SYS_ADMIN`, where
/// `nf_conntrack` is a module), and turns forwarding on.
pub fn prepare_container(routing: Routing, images: &Images) -> Container {
    let (bpf_volume, _) = host_dirs()
        .into_iter()
        .find(|(_, path)| path == BPF_FS)
        .expect("the bpf file system is a host dir");
    Container {
        name: "prepare".into(),
        image: Some(images.agent(routing)),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(ferryd_command()),
        args: Some(vec!["prepare".into()]),
        env: Some([vec![node_name_env()], fast_path_env()].concat()),
        volume_mounts: Some(vec![VolumeMount {
            mount_propagation: Some("Bidirectional".into()),
            ..mount(bpf_volume, BPF_FS, false)
        }]),
        security_context: Some(SecurityContext {
            privileged: Some(true),
            read_only_root_filesystem: Some(true),
            ..SecurityContext::default()
        }),
        resources: Some(resources("10m", PREPARE_MEMORY)),
        ..Container::default()
    }
}

/// What the pod spec of both DaemonSets shares: the host's network, every
/// node (taints tolerated), before anything else (`system-node-critical`).
pub fn node_pod(init: Vec<Container>, containers: Vec<Container>, volumes: Vec<Volume>) -> PodSpec {
    PodSpec {
        host_network: Some(true),
        priority_class_name: Some("system-node-critical".into()),
        tolerations: Some(vec![Toleration {
            operator: Some("Exists".into()),
            ..Toleration::default()
        }]),
        node_selector: Some(BTreeMap::from([(
            "kubernetes.io/os".to_string(),
            "linux".to_string(),
        )])),
        init_containers: (!init.is_empty()).then_some(init),
        containers,
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

pub fn daemonset_of(name: &str, spec: PodSpec) -> DaemonSet {
    DaemonSet {
        metadata: meta_for(name, Some(NAMESPACE), name),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(labels(name)),
                ..LabelSelector::default()
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::Int(1)),
                    ..RollingUpdateDaemonSet::default()
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(name)),
                    ..ObjectMeta::default()
                }),
                spec: Some(spec),
            },
            ..DaemonSetSpec::default()
        }),
        ..DaemonSet::default()
    }
}

/// ferryd's privileges. Netlink (links, addresses, routes, tc filters) and
/// nftables need `NET_ADMIN`; the eBPF fast path (its maps, the program,
/// the conntrack kfuncs it calls) needs `BPF` (Linux 5.8 and later), and
/// no `SYS_ADMIN`: `prepare` mounted the bpf file system on the host, and
/// loaded and pinned the program (where `nf_conntrack` is a module only
/// `SYS_ADMIN` can load it; ferryd uses that pin when it is its build's).
/// `/proc/sys` stays read-only (ferryd only reads `ip_forward`, which
/// `prepare` turned on; should it be off, ferryd reports it on the Node). With ospf/bgp, ferryd
/// hands `frr.conf` to FRR's user (CHOWN) and `vtysh`/`frr-reload.py` use
/// FRR's frr-owned files and sockets (DAC_OVERRIDE). The tests run each
/// container with exactly these.
pub fn agent_capabilities(routing: Routing) -> Vec<&'static str> {
    let mut caps = vec!["NET_ADMIN", "BPF"];
    if uses_frr(routing) {
        caps.extend(["CHOWN", "DAC_OVERRIDE"]);
    }
    caps
}

pub fn agent_security(routing: Routing) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(capabilities(true, &agent_capabilities(routing))),
        ..SecurityContext::default()
    }
}

/// The settings every ferryd container gets, as environment variables so
/// that `kubectl exec ... ferryd status` sees the same ones.
pub fn agent_env(routing: Routing) -> Vec<EnvVar> {
    let mut out = vec![
        node_name_env(),
        env(&env_of("routing"), &routing_name(routing)),
        // Explicit, though it is the default: the manifests say what runs.
        env(&env_of("network-policy"), "true"),
        // Off (the default), listed so that turning the drop log on is
        // one value to change: each dropped connection attempt logged
        // with pod and policy names (docs/network-policy.md).
        env(&env_of("policy-log"), "false"),
        // Explicit, so the manifest says when VXLAN may be used: only
        // where a plain route cannot reach (direct); FRR routes otherwise.
        env(
            &env_of("encapsulation"),
            if uses_frr(routing) {
                "never"
            } else {
                "cross-subnet"
            },
        ),
    ];
    out.extend(fast_path_env());
    out.extend(frr::agent_env(routing));
    out
}

/// The fast path's settings, spelled out in `prepare` and in the agent's
/// containers alike: `prepare` loads the program and pins it in
/// `--bpf-dir` for `ferryd run` (which cannot load it itself where
/// `nf_conntrack` is a module), so both must name the same directory.
pub fn fast_path_env() -> Vec<EnvVar> {
    vec![
        env(&env_of("fast-path"), "true"),
        env(&env_of("bpf-dir"), &default_of("bpf-dir")),
    ]
}

pub fn ferryd_command() -> Vec<String> {
    vec![format!("{IMAGE_BIN_DIR}/ferryd")]
}

/// A container running `ferryd SUBCOMMAND` with the agent's settings,
/// mounts and privileges.
pub fn agent_container(
    name: &str,
    subcommand: &str,
    routing: Routing,
    images: &Images,
) -> Container {
    let mut mounts = host_mounts();
    mounts.extend(frr::agent_mounts(routing));
    Container {
        name: name.into(),
        image: Some(images.agent(routing)),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(ferryd_command()),
        args: Some(vec![subcommand.into()]),
        env: Some(agent_env(routing)),
        volume_mounts: Some(mounts),
        security_context: Some(agent_security(routing)),
        resources: Some(resources(
            AGENT_CPU_REQUEST,
            if uses_frr(routing) {
                AGENT_FRR_MEMORY
            } else {
                AGENT_MEMORY
            },
        )),
        ..Container::default()
    }
}

/// An HTTP probe of ferryd's `--metrics-addr`. With `hostNetwork`, kubelet
/// reaches the pod's loopback as its own (as kubeadm's etcd probe does).
pub fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    let addr = metrics_addr();
    Probe {
        http_get: Some(HTTPGetAction {
            host: Some(addr.ip().to_string()),
            path: Some(path.into()),
            port: IntOrString::Int(addr.port().into()),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

/// The ferry DaemonSet for a routing mode.
///
/// direct: `prepare`, `install` (configures the node, conflist last),
/// then `ferryd`. ospf/bgp: `prepare`, then `ferryd` and FRR side by side
/// as ordinary containers (no native sidecar, which Kubernetes before 1.29
/// refuses): no init container configures FRR, since FRR is not running
/// before the pod's containers start; `ferryd run` waits for FRR,
/// configures it and only then writes the conflist.
pub fn daemonset(routing: Routing, images: &Images) -> DaemonSet {
    let mut init = vec![prepare_container(routing, images)];
    if !uses_frr(routing) {
        init.push(agent_container("install", "install", routing, images));
    }
    let mut agent = agent_container("ferryd", "run", routing, images);
    let (cri, cri_mount) = cri_volume();
    agent.volume_mounts.get_or_insert_default().push(cri_mount);
    agent.liveness_probe = Some(http_probe("/healthz", 10, 6));
    agent.readiness_probe = Some(http_probe("/readyz", 5, 3));
    let mut containers = vec![agent];
    if uses_frr(routing) {
        containers.push(frr::container(routing, images));
    }
    let mut volumes = host_volumes();
    volumes.push(cri);
    volumes.extend(frr::volumes(routing));
    let mut spec = node_pod(init, containers, volumes);
    spec.service_account_name = Some(NAME.into());
    daemonset_of(NAME, spec)
}
