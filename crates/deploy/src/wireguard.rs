//! `ferry-wireguard.yaml`: direct routing with pod traffic between nodes
//! encrypted (`--encryption wireguard`). The direct manifest plus:
//!
//! * the setting on `install` and `ferryd`, and `ferryd` told not to
//!   start the userspace device itself (`--wireguard-spawn=false`);
//! * a DaemonSet of its own, `ferry-wireguard`, running `ferry-wg` (the
//!   userspace device) on every node, so that the data path does not go
//!   with ferryd's pod: `kubectl rollout restart daemonset/ferry` or a new
//!   ferry image leaves the tunnel up (a `ferry-wg` inside ferry's pod
//!   would die with it, and the pod's replacement takes ~11 s on a
//!   kubelet). Where the node's kernel has WireGuard, `ferry-wg` makes the
//!   kernel's `ferry.wg` and idles; ferryd configures that one.
//!
//! Both share `/var/run/wireguard` on the host (a hostPath: `ferry-wg`'s
//! UAPI socket). Only `ferry-wg` gets the host's `/dev/net/tun` and
//! `NET_ADMIN`. The container runtime's default device rules already
//! allow the TUN device (c 10:200); only its node is missing from a
//! container's `/dev`.
//!
//! A separate file rather than a switch in `ferry.yaml`, so that a node
//! without encryption never gets a device it does not need.

use k8s_openapi::api::core::v1::{Container, HostPathVolumeSource, SecurityContext, Volume};

use crate::objects::{capabilities, env, mount, resources};
use crate::pod::{daemonset_of, node_pod};
use crate::yaml::Object;
use crate::{env_of, install, Images, Manifest, Routing, NAMESPACE};

/// The file name in `deploy/`.
pub const FILE: &str = "ferry-wireguard.yaml";
/// The TUN device node, on the host and in the container.
pub const TUN_DEVICE: &str = "/dev/net/tun";
/// The volume holding it.
pub const TUN_VOLUME: &str = "dev-net-tun";
/// Where `ferry-wg` makes its UAPI socket (ferryd's `--wireguard-run-dir`
/// default): writable, in a container whose root file system is not.
pub const RUN_DIR: &str = "/var/run/wireguard";
/// The host directory holding it, shared by both DaemonSets.
pub const RUN_VOLUME: &str = "wireguard-run";
/// The DaemonSet running `ferry-wg`.
pub const DAEMONSET: &str = "ferry-wireguard";
/// The userspace device's binary in ferry's image.
pub const BINARY: &str = "/usr/local/bin/ferry-wg";
/// ferry's WireGuard device (ferryd's `WG_IFNAME`).
pub const IFNAME: &str = ferryd::wireguard::WG_IFNAME;

fn host_path(name: &str, path: &str, type_: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: Some(type_.into()),
        }),
        ..Volume::default()
    }
}

/// The direct manifest with encryption on, and the `ferry-wireguard`
/// DaemonSet.
pub fn manifest(images: &Images) -> Manifest {
    let mut m = install(Routing::Direct, images);
    m.file = FILE;
    m.header[0] = format!(
        "ferry {}: direct routing, pod traffic between nodes through WireGuard (ferry.wg, UDP 51820).",
        images.tag
    );
    if let Some(apply) = m.header.iter_mut().find(|l| l.starts_with("kubectl apply")) {
        *apply = format!(
            "kubectl apply -f deploy/{FILE}   (in place of ferry.yaml, namespace {NAMESPACE})"
        );
    }
    for o in &mut m.objects {
        let Object::DaemonSet(ds) = o else { continue };
        let Some(spec) = ds.spec.as_mut().and_then(|s| s.template.spec.as_mut()) else {
            continue;
        };
        for c in spec
            .init_containers
            .iter_mut()
            .flatten()
            .chain(spec.containers.iter_mut())
        {
            if c.name != "install" && c.name != "ferryd" {
                continue;
            }
            let vars = c.env.get_or_insert_default();
            vars.push(env(&env_of("encryption"), "wireguard"));
            if c.name == "ferryd" {
                vars.push(env(&env_of("wireguard-spawn"), "false"));
                c.volume_mounts
                    .get_or_insert_default()
                    .push(mount(RUN_VOLUME, RUN_DIR, false));
            }
        }
        spec.volumes.get_or_insert_default().push(host_path(
            RUN_VOLUME,
            RUN_DIR,
            "DirectoryOrCreate",
        ));
    }
    m.objects
        .push(Object::DaemonSet(Box::new(daemonset(images))));
    m
}

/// `ferry-wireguard`: `ferry-wg ferry.wg` on every node, with the TUN
/// device, the socket directory and `NET_ADMIN` (to make the TUN device
/// persistent, or the kernel's WireGuard link) and nothing else.
pub fn daemonset(images: &Images) -> k8s_openapi::api::apps::v1::DaemonSet {
    let container = Container {
        name: "ferry-wg".into(),
        image: Some(images.minimal()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec![BINARY.into(), IFNAME.into()]),
        volume_mounts: Some(vec![
            mount(TUN_VOLUME, TUN_DEVICE, false),
            mount(RUN_VOLUME, RUN_DIR, false),
        ]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(capabilities(true, &["NET_ADMIN"])),
            ..SecurityContext::default()
        }),
        resources: Some(resources("50m", ("32Mi", "128Mi"))),
        ..Container::default()
    };
    let mut spec = node_pod(
        vec![],
        vec![container],
        vec![
            host_path(TUN_VOLUME, TUN_DEVICE, "CharDevice"),
            host_path(RUN_VOLUME, RUN_DIR, "DirectoryOrCreate"),
        ],
    );
    spec.automount_service_account_token = Some(false);
    daemonset_of(DAEMONSET, spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod_specs(m: &Manifest) -> Vec<(String, PodSpec)> {
        m.objects
            .iter()
            .filter_map(|o| match o {
                Object::DaemonSet(d) => Some((
                    d.metadata.name.clone().unwrap(),
                    d.spec.clone().unwrap().template.spec.unwrap(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn direct_plus_the_setting_and_ferry_wg_in_a_daemonset_of_its_own() {
        let images = Images::default();
        let plain = install(Routing::Direct, &images);
        let wg = manifest(&images);
        assert_eq!(wg.file, FILE);
        let (p, specs) = (pod_specs(&plain).remove(0).1, pod_specs(&wg));
        let names: Vec<&str> = specs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [crate::NAME, DAEMONSET]);
        let w = &specs[0].1;
        let enc = env_of("encryption");
        let has = |c: &Container, name: &str, value: &str| {
            c.env
                .iter()
                .flatten()
                .any(|e| e.name == name && e.value.as_deref() == Some(value))
        };
        let inits = w.init_containers.clone().unwrap();
        let install = inits.iter().find(|c| c.name == "install").unwrap();
        assert!(has(install, &enc, "wireguard"));
        assert!(!has(
            inits.iter().find(|c| c.name == "prepare").unwrap(),
            &enc,
            "wireguard"
        ));
        let ferryd = w.containers.iter().find(|c| c.name == "ferryd").unwrap();
        assert!(has(ferryd, &enc, "wireguard"));
        // ferryd leaves the device to ferry-wireguard's pod, which
        // outlives ferry's.
        assert!(has(ferryd, &env_of("wireguard-spawn"), "false"));
        assert!(ferryd
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == RUN_VOLUME && m.mount_path == RUN_DIR));
        assert!(
            !ferryd
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.mount_path == TUN_DEVICE),
            "only ferry-wg gets the TUN device"
        );
        assert_eq!(RUN_DIR, crate::default_of("wireguard-run-dir"));
        // Same containers, same privileges; one more volume.
        assert_eq!(p.containers.len(), w.containers.len());
        assert_eq!(ferryd.security_context, p.containers[0].security_context);
        assert_eq!(
            p.volumes.as_ref().unwrap().len() + 1,
            w.volumes.as_ref().unwrap().len()
        );

        // ferry-wireguard: ferry-wg on ferry.wg, the TUN device and the
        // socket directory, NET_ADMIN only, no API access.
        let d = &specs[1].1;
        assert_eq!(d.host_network, Some(true));
        assert_eq!(d.automount_service_account_token, Some(false));
        assert_eq!(d.service_account_name, None);
        let [c] = d.containers.as_slice() else {
            panic!("one container: {:?}", d.containers)
        };
        assert_eq!(
            c.command.as_deref(),
            Some(&[BINARY.to_string(), "ferry.wg".to_string()][..])
        );
        assert_eq!(c.image.as_deref(), Some(images.minimal().as_str()));
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.privileged, None);
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().add.as_deref(),
            Some(&["NET_ADMIN".to_string()][..])
        );
        let vols = d.volumes.as_ref().unwrap();
        let host = |name: &str| {
            let v = vols.iter().find(|v| v.name == name).unwrap();
            let h = v.host_path.as_ref().unwrap();
            (h.path.clone(), h.type_.clone().unwrap())
        };
        assert_eq!(host(TUN_VOLUME), (TUN_DEVICE.into(), "CharDevice".into()));
        assert_eq!(
            host(RUN_VOLUME),
            (RUN_DIR.into(), "DirectoryOrCreate".into())
        );
        assert!(
            !plain.render().contains(TUN_DEVICE) && !plain.render().contains(DAEMONSET),
            "ferry.yaml must not mount the TUN device"
        );
    }
}
