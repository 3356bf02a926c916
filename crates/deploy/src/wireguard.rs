//! `ferry-wireguard.yaml`: direct routing with pod traffic between nodes
//! encrypted (`--encryption wireguard`). The direct manifest plus two
//! things: the setting on `install` and `ferryd`, and in the `ferryd`
//! container the host's `/dev/net/tun` and a writable
//! `/var/run/wireguard` (an emptyDir) for the userspace device
//! (`ferry-wg`, which ferryd starts where the node's kernel has no
//! WireGuard). The container runtime's default device rules already allow
//! the TUN device (c 10:200); only its node is missing from a container's
//! `/dev`. Where the kernel has WireGuard the mount goes unused.
//!
//! A separate file rather than a switch in `ferry.yaml`, so that a node
//! without encryption never gets a device it does not need.

use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, HostPathVolumeSource, Volume};

use crate::objects::{env, mount};
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
/// The emptyDir holding it.
pub const RUN_VOLUME: &str = "wireguard-run";

/// The direct manifest with encryption on.
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
        let setting = env(&env_of("encryption"), "wireguard");
        for c in spec
            .init_containers
            .iter_mut()
            .flatten()
            .chain(spec.containers.iter_mut())
        {
            if c.name != "install" && c.name != "ferryd" {
                continue;
            }
            c.env.get_or_insert_default().push(setting.clone());
            if c.name == "ferryd" {
                let mounts = c.volume_mounts.get_or_insert_default();
                mounts.push(mount(TUN_VOLUME, TUN_DEVICE, false));
                mounts.push(mount(RUN_VOLUME, RUN_DIR, false));
            }
        }
        let volumes = spec.volumes.get_or_insert_default();
        volumes.push(Volume {
            name: TUN_VOLUME.into(),
            host_path: Some(HostPathVolumeSource {
                path: TUN_DEVICE.into(),
                type_: Some("CharDevice".into()),
            }),
            ..Volume::default()
        });
        volumes.push(Volume {
            name: RUN_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_plus_the_setting_and_the_tun_device() {
        let images = Images::default();
        let plain = install(Routing::Direct, &images);
        let wg = manifest(&images);
        assert_eq!(wg.file, FILE);
        let ds = |m: &Manifest| {
            m.objects
                .iter()
                .find_map(|o| match o {
                    Object::DaemonSet(d) => Some(d.spec.clone().unwrap().template.spec.unwrap()),
                    _ => None,
                })
                .unwrap()
        };
        let (p, w) = (ds(&plain), ds(&wg));
        let enc = env_of("encryption");
        let has = |c: &k8s_openapi::api::core::v1::Container| {
            c.env
                .iter()
                .flatten()
                .any(|e| e.name == enc && e.value.as_deref() == Some("wireguard"))
        };
        let inits = w.init_containers.clone().unwrap();
        assert!(has(inits.iter().find(|c| c.name == "install").unwrap()));
        assert!(!has(inits.iter().find(|c| c.name == "prepare").unwrap()));
        let ferryd = w.containers.iter().find(|c| c.name == "ferryd").unwrap();
        assert!(has(ferryd));
        assert!(ferryd
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == TUN_VOLUME && m.mount_path == TUN_DEVICE));
        let tun = w
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == TUN_VOLUME)
            .unwrap();
        assert_eq!(
            tun.host_path.as_ref().unwrap().type_.as_deref(),
            Some("CharDevice")
        );
        // Nothing else differs: same containers, same privileges.
        assert_eq!(p.containers.len(), w.containers.len());
        assert_eq!(
            p.volumes.as_ref().unwrap().len() + 2,
            w.volumes.as_ref().unwrap().len()
        );
        assert_eq!(RUN_DIR, crate::default_of("wireguard-run-dir"));
        assert_eq!(ferryd.security_context, p.containers[0].security_context);
        assert!(
            !plain.render().contains(TUN_DEVICE),
            "ferry.yaml must not mount the TUN device"
        );
    }
}
