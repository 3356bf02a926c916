//! The checked-in manifests: equal to what the generator renders now, valid
//! Kubernetes objects, and consistent with what ferryd accepts, calls and
//! writes (all derived from ferryd's code, not restated here).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use clap::CommandFactory;
use common::*;
use ferry_deploy::{manifests, Images, Object};

#[test]
fn checked_in_files_equal_the_generator_output() {
    let mut expected = BTreeSet::new();
    for m in manifests(&Images::default()) {
        assert_eq!(
            read(m.file),
            m.render(),
            "deploy/{} differs from the generator: run `cargo run -p ferry-deploy`",
            m.file
        );
        expected.insert(m.file.to_string());
    }
    let on_disk: BTreeSet<String> = fs::read_dir(deploy_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    assert_eq!(on_disk, expected, "stale or missing manifests in deploy/");
}

#[test]
fn files_parse_into_kubernetes_types_and_back() {
    for (m, (file, parsed)) in manifests(&Images::default()).iter().zip(checked_in()) {
        assert_eq!(parsed, m.objects, "{file}: YAML round trip lost something");
        let kinds: Vec<&str> = parsed.iter().map(Object::kind).collect();
        let want: &[&str] = match file.as_str() {
            "ferry.yaml" => &[
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "DaemonSet",
            ],
            // ferry-wg in a DaemonSet of its own, which ferry's rollouts
            // leave alone.
            "ferry-wireguard.yaml" => &[
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "DaemonSet",
                "DaemonSet",
            ],
            "ferry-uninstall.yaml" => &[
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "DaemonSet",
            ],
            _ => &[
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "ConfigMap",
                "DaemonSet",
            ],
        };
        assert_eq!(kinds, want, "{file}");
    }
    // Not a manifest of ours.
    let e = ferry_deploy::parse("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n");
    assert!(e.is_err());
    let e = ferry_deploy::parse("apiVersion: v1\nkind: ConfigMap\nmetadata: 7\n");
    assert!(e.is_err(), "a malformed object is an error");
}

#[test]
fn ferry_images_are_tagged_with_ferryds_version() {
    let ferryd_version = ferryd::cli::Cli::command()
        .get_version()
        .expect("ferryd has a version")
        .to_string();
    let d = Images::default();
    let ours = [&d.ferry, &d.ferry_frr];
    let mut seen = BTreeSet::new();
    for (file, objects) in checked_in() {
        for ds in daemonsets(&objects) {
            for c in containers(pod(ds)) {
                let image = c.image.clone().expect("every container names its image");
                let (repo, tag) = image.rsplit_once(':').expect("a tag");
                if ours.iter().any(|r| *r == repo) {
                    assert_eq!(tag, ferryd_version, "{file}: {}: {image}", c.name);
                    assert!(
                        runs_ferryd(c) || c.name == "ferry-wg",
                        "{file}: {} runs our image",
                        c.name
                    );
                } else {
                    assert!(
                        [&d.frr, &d.pause].contains(&&image),
                        "{file}: {}: unexpected image {image}",
                        c.name
                    );
                }
                seen.insert(image);
            }
        }
    }
    assert_eq!(seen.len(), 4, "ferry, ferry-frr, FRR, pause: {seen:?}");
    // ferry-frr is built on the FRR container's image, so vtysh and frr-reload.py
    // match the daemons they talk to.
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("ARG FRR_IMAGE={}\n", d.frr)),
        "deploy/Dockerfile must build ferry-frr on {}",
        d.frr
    );
    for target in ["AS ferry-frr", "AS ferry\n"] {
        assert!(dockerfile.contains(target), "Dockerfile: {target:?}");
    }
}

#[test]
fn containers_pass_only_flags_and_env_ferryd_accepts() {
    let flags = ferryd::cli::flags();
    let accepted: BTreeSet<String> = flags
        .iter()
        .filter_map(|f| f.env.clone())
        .chain(ferryd::cli::EXTRA_ENV.iter().map(|e| e.to_string()))
        .collect();
    let subcommands: BTreeSet<String> = ferryd::cli::Cli::command()
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut checked = 0;
    for (file, objects) in checked_in() {
        for ds in daemonsets(&objects) {
            for c in containers(pod(ds)).into_iter().filter(|c| runs_ferryd(c)) {
                let args = c.args.clone().unwrap_or_default();
                let sub = args.first().expect("a subcommand");
                assert!(subcommands.contains(sub), "{file}: {}: {sub}", c.name);
                let argv = std::iter::once("ferryd".to_string()).chain(args.clone());
                if let Err(e) = <ferryd::cli::Cli as clap::Parser>::try_parse_from(argv) {
                    panic!("{file}: {}: ferryd rejects {args:?}: {e}", c.name);
                }
                for e in c.env.iter().flatten() {
                    assert!(
                        accepted.contains(&e.name),
                        "{file}: {}: ferryd reads no {}",
                        c.name,
                        e.name
                    );
                    let (Some(value), Some(flag)) = (
                        &e.value,
                        flags.iter().find(|f| f.env.as_deref() == Some(&e.name)),
                    ) else {
                        continue;
                    };
                    let arg = format!("--{}={value}", flag.long);
                    if let Err(err) = <ferryd::cli::Cli as clap::Parser>::try_parse_from([
                        "ferryd".to_string(),
                        arg.clone(),
                    ]) {
                        panic!("{file}: {}: ferryd rejects {arg}: {err}", c.name);
                    }
                }
                checked += 1;
            }
        }
    }
    // prepare + install + run (direct, and direct with WireGuard), prepare +
    // run (ospf, bgp), uninstall.
    assert_eq!(checked, 11);
}

/// The mount holding `path` in the container: (volume name, path inside
/// the volume, read-only).
fn mount_of(c: &k8s_openapi::api::core::v1::Container, path: &str) -> (String, String, bool) {
    c.volume_mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            let rest = Path::new(path).strip_prefix(&m.mount_path).ok()?;
            Some((m, rest))
        })
        .max_by_key(|(m, _)| m.mount_path.len())
        .map(|(m, rest)| {
            (
                m.name.clone(),
                rest.display().to_string(),
                m.read_only == Some(true),
            )
        })
        .unwrap_or_else(|| panic!("{}: nothing mounted at {path}", c.name))
}

#[test]
fn mounts_cover_every_path_ferryd_writes() {
    for (file, objects) in checked_in() {
        for ds in daemonsets(&objects) {
            let spec = pod(ds);
            for c in containers(spec).into_iter().filter(|c| runs_ferryd(c)) {
                if c.name == "prepare" {
                    // Only the host's bpf file system, Bidirectional: the
                    // bpffs it mounts there is the host's.
                    let mounts = c.volume_mounts.clone().unwrap_or_default();
                    assert_eq!(mounts.len(), 1, "{file}: prepare mounts one thing");
                    assert_eq!(mounts[0].mount_path, ferry_deploy::BPF_FS);
                    assert_eq!(
                        mounts[0].mount_propagation.as_deref(),
                        Some("Bidirectional")
                    );
                    let host = volume(spec, &mounts[0].name).host_path.as_ref().unwrap();
                    assert_eq!(host.path, ferry_deploy::BPF_FS, "{file}");
                    continue;
                }
                let routing = effective(c, "routing").unwrap();
                // IPAM GC: `run` sees the host's containerd socket where
                // ferryd looks by default, read-only; `install` does not.
                let socket = Path::new(ferryd::ipam_gc::cri::DEFAULT_SOCKET);
                let cri = c
                    .volume_mounts
                    .iter()
                    .flatten()
                    .find(|m| socket.starts_with(&m.mount_path));
                if c.name == "ferryd" {
                    let (vol, rest, ro) = mount_of(c, &socket.display().to_string());
                    assert!(ro, "{file}: the CRI socket's dir is read-only");
                    let host = volume(spec, &vol).host_path.as_ref().unwrap();
                    assert_eq!(Path::new(&host.path).join(rest), socket, "{file}");
                    assert!(effective(c, "cri-socket").is_none(), "{file}");
                } else {
                    assert!(cri.is_none(), "{file}: {} mounts {cri:?}", c.name);
                }
                // Host paths: the plugin (on the host) and kubelet use them by
                // the name ferryd writes into the conflist, so each must be the
                // same path inside and out.
                for long in ["cni-bin-dir", "cni-conf-dir", "ipam-data-dir", "bpf-dir"] {
                    let path = effective(c, long).unwrap();
                    let (vol, rest, ro) = mount_of(c, &path);
                    assert!(!ro, "{file}: {}: {path} is read-only", c.name);
                    let host = volume(spec, &vol)
                        .host_path
                        .as_ref()
                        .unwrap_or_else(|| panic!("{file}: {path} is not on the host"));
                    assert_eq!(
                        Path::new(&host.path).join(&rest),
                        Path::new(&path),
                        "{file}: {}: --{long}",
                        c.name
                    );
                }
                // The fast path's pins: on the host's bpf file system, mounted
                // whole (ferryd checks that its root is a bpffs; one mounted
                // in the container would vanish with it, and the plugin on
                // the host would find nothing).
                let bpf_dir = effective(c, "bpf-dir").unwrap();
                let (vol, rest, _) = mount_of(c, &bpf_dir);
                let host = volume(spec, &vol).host_path.as_ref().unwrap();
                assert_eq!(host.path, ferry_deploy::BPF_FS, "{file}: {}", c.name);
                assert!(!rest.is_empty(), "{file}: --bpf-dir is below the bpffs");
                let (_, m) = c
                    .volume_mounts
                    .iter()
                    .flatten()
                    .map(|m| (m.name.clone(), m))
                    .find(|(n, _)| *n == vol)
                    .unwrap();
                assert_eq!(
                    m.mount_propagation.as_deref(),
                    Some("HostToContainer"),
                    "{file}: {}: sees a bpffs the host mounts later",
                    c.name
                );
                if routing == "direct" {
                    assert!(effective(c, "frr-conf-dir").is_none());
                    continue;
                }
                // FRR's directories: shared with the FRR container, same paths.
                let frr = containers(spec)
                    .into_iter()
                    .find(|s| s.name == "frr")
                    .expect("an FRR container");
                for long in ["frr-conf-dir", "frr-run-dir"] {
                    let path = effective(c, long).expect("FRR dirs are set");
                    let (vol, rest, ro) = mount_of(c, &path);
                    assert!(!ro && rest.is_empty(), "{file}: {}: --{long}", c.name);
                    // ospf: on the node, where the next pod's FRR finds
                    // its config and graceful-restart state; bgp: emptyDirs.
                    let v = volume(spec, &vol);
                    if routing == "ospf" {
                        let host = v.host_path.as_ref().expect("a hostPath");
                        assert!(host.path.starts_with("/run/ferry/frr/"), "{file}: {vol}");
                    } else {
                        assert!(v.empty_dir.is_some(), "{file}: {vol}");
                    }
                    assert_eq!(mount_of(frr, &path), (vol, String::new(), false));
                }
                // The secret: a file from a Secret volume.
                let (long, secret) = if routing == "ospf" {
                    ("ospf-auth-key-file", ferry_deploy::OSPF_SECRET)
                } else {
                    ("bgp-password-file", ferry_deploy::BGP_SECRET)
                };
                let path = effective(c, long).expect("the secret file is set");
                let (vol, rest, _) = mount_of(c, &path);
                let source = volume(spec, &vol).secret.as_ref().expect("a Secret");
                assert_eq!(source.secret_name.as_deref(), Some(secret.0));
                assert_eq!(rest, secret.1, "{file}: the key's file");
            }
        }
    }
}

#[test]
fn probes_reach_ferryds_metrics_address() {
    for (file, objects) in checked_in() {
        for ds in daemonsets(&objects) {
            let spec = pod(ds);
            for c in &spec.containers {
                if !runs_ferryd(c) {
                    assert!(c.liveness_probe.is_none());
                    // FRR is Ready when vtysh answers, as it is Started
                    // (a readinessProbe: see crates/deploy/src/frr.rs).
                    let exec = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
                        p.as_ref()
                            .and_then(|p| p.exec.clone())
                            .and_then(|e| e.command)
                    };
                    if c.name == "frr" {
                        assert!(exec(&c.readiness_probe).is_some(), "{file}");
                        assert_eq!(exec(&c.readiness_probe), exec(&c.startup_probe), "{file}");
                    } else {
                        assert!(c.readiness_probe.is_none(), "{file}: {}", c.name);
                    }
                    continue;
                }
                let addr: std::net::SocketAddr =
                    effective(c, "metrics-addr").unwrap().parse().unwrap();
                for (probe, path) in [
                    (&c.liveness_probe, "/healthz"),
                    (&c.readiness_probe, "/readyz"),
                ] {
                    let get = probe
                        .as_ref()
                        .and_then(|p| p.http_get.as_ref())
                        .expect("HTTP probe");
                    assert_eq!(get.path.as_deref(), Some(path), "{file}");
                    let host: std::net::IpAddr =
                        get.host.as_deref().expect("a host").parse().unwrap();
                    assert_eq!(host, addr.ip(), "{file}: {path}");
                    assert_eq!(
                        get.port,
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(
                            addr.port().into()
                        )
                    );
                }
                // Kubelet reaches a loopback listener only in the host netns.
                if addr.ip().is_loopback() {
                    assert_eq!(spec.host_network, Some(true), "{file}");
                }
            }
        }
    }
}

#[test]
fn every_node_runs_it_in_the_host_network_first_thing() {
    for (file, objects) in checked_in() {
        for ds in daemonsets(&objects) {
            let spec = pod(ds);
            assert_eq!(spec.host_network, Some(true), "{file}");
            assert_eq!(
                spec.priority_class_name.as_deref(),
                Some("system-node-critical")
            );
            let tolerations = spec.tolerations.clone().unwrap_or_default();
            assert_eq!(tolerations.len(), 1, "{file}");
            assert_eq!(tolerations[0].operator.as_deref(), Some("Exists"));
            assert!(tolerations[0].key.is_none() && tolerations[0].effect.is_none());
            let init: Vec<&str> = spec
                .init_containers
                .iter()
                .flatten()
                .map(|c| c.name.as_str())
                .collect();
            let main: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
            let ds_name = ds.metadata.name.as_deref().unwrap_or_default();
            let want: (&[&str], &[&str]) = match file.as_str() {
                "ferry-wireguard.yaml" if ds_name == "ferry-wireguard" => (&[], &["ferry-wg"]),
                "ferry.yaml" | "ferry-wireguard.yaml" => (&["prepare", "install"], &["ferryd"]),
                "ferry-uninstall.yaml" => (&["uninstall"], &["pause"]),
                // FRR beside ferryd, no init container configures it: it
                // is not running before the containers start (1.20 has no
                // native sidecars); `ferryd run` waits for it.
                _ => (&["prepare"], &["ferryd", "frr"]),
            };
            assert_eq!((init.as_slice(), main.as_slice()), want, "{file}");
            for c in containers(spec) {
                let sub = c.args.as_ref().and_then(|a| a.first()).map(String::as_str);
                let sc = c.security_context.clone().unwrap_or_default();
                // Only `ferryd prepare`, a short init container, is
                // privileged (to mount the bpffs and set forwarding).
                assert_eq!(
                    sc.privileged == Some(true),
                    c.name == "prepare",
                    "{file}: {} privileged",
                    c.name
                );
                assert!(
                    c.restart_policy.is_none(),
                    "{file}: {}: no native sidecar",
                    c.name
                );
                assert!(c
                    .resources
                    .as_ref()
                    .and_then(|r| r.limits.as_ref())
                    .is_some());
                match c.name.as_str() {
                    "frr" | "pause" => {}
                    // The userspace WireGuard device: the TUN device and
                    // netlink, nothing else.
                    "ferry-wg" => {
                        let caps = sc.capabilities.clone().unwrap_or_default();
                        assert_eq!(caps.add, Some(vec!["NET_ADMIN".to_string()]), "{file}");
                        assert_eq!(caps.drop, Some(vec!["ALL".to_string()]), "{file}");
                    }
                    "prepare" => {
                        assert!(init.contains(&"prepare"), "{file}: an init container");
                        assert_eq!(sub, Some("prepare"));
                        assert!(runs_ferryd(c));
                        assert!(sc.capabilities.is_none(), "{file}: privileged is all");
                    }
                    name => {
                        assert_eq!(sub, Some(if name == "ferryd" { "run" } else { name }));
                        let node = c.env.iter().flatten().find(|e| e.name == "NODE_NAME");
                        let field = node
                            .and_then(|e| e.value_from.as_ref())
                            .and_then(|v| v.field_ref.as_ref())
                            .map(|f| f.field_path.as_str());
                        assert_eq!(field, Some("spec.nodeName"), "{file}: {name}");
                        // Exactly NET_ADMIN and BPF (the fast path); with
                        // FRR also what vtysh needs on FRR's files (the
                        // container tests show each is needed and enough).
                        let caps = sc.capabilities.clone().unwrap_or_default();
                        let want: &[&str] = match effective(c, "routing").as_deref() {
                            Some("direct") => &["NET_ADMIN", "BPF"],
                            _ => &["NET_ADMIN", "BPF", "CHOWN", "DAC_OVERRIDE"],
                        };
                        let want: Vec<String> = want.iter().map(|c| c.to_string()).collect();
                        assert_eq!(caps.add, Some(want), "{file}: {name}");
                        assert_eq!(caps.drop, Some(vec!["ALL".to_string()]), "{file}: {name}");
                        assert_eq!(sc.read_only_root_filesystem, Some(true));
                        assert_eq!(sc.allow_privilege_escalation, Some(false));
                    }
                }
            }
        }
    }
}
