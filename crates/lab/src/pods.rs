//! Pods, made as containerd makes them: a sandbox netns with loopback up,
//! then ADD through the conflist ferryd installed (every plugin in order,
//! `prevResult` chained, containerd's `CNI_ARGS`), run inside the node's
//! netns with the node's CNI bin dir (then the reference plugins) as
//! `CNI_PATH`. Removal: DEL in reverse order, then the netns goes.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_testkit::conflist::{Attachment, ConfList, Runtime};
use serde_json::Value;

use crate::agent::{NodeDirs, REFERENCE_PLUGIN_DIR};
use crate::error::{LabError, Result};
use crate::net;
use crate::sh;
use crate::state::{LabConfig, Pod};
use crate::topo::{self, NodePlan};

/// The Kubernetes namespace of the lab's pods.
pub const POD_NAMESPACE: &str = "default";

/// The node's runtime: plugins from its CNI bin dir, run in its netns.
pub fn runtime(cfg: &LabConfig, node: &NodePlan) -> Result<(Runtime, ConfList)> {
    let dirs = NodeDirs::new(cfg, &node.name);
    let list = ConfList::load(&dirs.conflist()).map_err(|e| LabError::Cni {
        node: node.name.clone(),
        pod: String::new(),
        err: Box::new(e),
    })?;
    let rt = Runtime {
        cni_path: vec![dirs.bin(), PathBuf::from(REFERENCE_PLUGIN_DIR)],
        cache_dir: dirs.cni_cache(),
        netns: Some(sh::open_ns(&node.netns)?),
    };
    Ok((rt, list))
}

/// The conflist `cniVersion` this machine's reference plugins take (the
/// conflist chains `portmap`): 1.1.0 when `portmap` supports it, else
/// 1.0.0 (Debian 12's containernetworking-plugins 1.1.1) — what an
/// operator passes as ferryd's `--cni-version`.
pub fn reference_cni_version() -> Result<String> {
    let rt = Runtime {
        cni_path: vec![PathBuf::from(REFERENCE_PLUGIN_DIR)],
        cache_dir: std::env::temp_dir(),
        netns: None,
    };
    let versions = rt
        .supported_versions("portmap")
        .map_err(|e| LabError::Cni {
            node: "this machine".into(),
            pod: "VERSION".into(),
            err: Box::new(e),
        })?;
    Ok(if versions.iter().any(|v| v == "1.1.0") {
        "1.1.0".into()
    } else {
        "1.0.0".into()
    })
}

/// A fresh 64-hex-digit sandbox id and a pod UID, unique per call.
fn ids(pod: &str) -> (String, String) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pod.bytes().chain(nanos.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let id = format!(
        "{h:016x}{:016x}{:016x}{:016x}",
        h.rotate_left(17),
        !h,
        h.rotate_right(9)
    );
    let uid = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 4) & 0xfff,
        h.rotate_left(29) & 0xffff_ffff_ffff
    );
    (id, uid)
}

fn attachment(pod: &Pod) -> Attachment {
    Attachment::kubernetes_pod(
        &pod.container_id,
        &sh::netns_path(&pod.netns).display().to_string(),
        POD_NAMESPACE,
        &pod.name,
        &pod.uid,
    )
}

/// The addresses of an ADD result, IPv4 first.
pub fn result_ips(result: &Value) -> Vec<String> {
    let mut ips: Vec<String> = result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| ip["address"].as_str())
        .filter_map(|a| a.split('/').next())
        .map(str::to_string)
        .collect();
    ips.sort_by_key(|a| a.contains(':'));
    ips
}

/// Creates pod `name` on `node`; with `static_ips` (`CNI_ARGS IP=`) the
/// pod gets exactly those addresses.
pub fn add(
    cfg: &LabConfig,
    node: &NodePlan,
    name: &str,
    static_ips: Option<&[String]>,
) -> Result<Pod> {
    let (container_id, uid) = ids(name);
    let pod = Pod {
        name: name.into(),
        node: node.name.clone(),
        netns: topo::pod_netns(&cfg.prefix, name),
        container_id,
        uid,
        ips: Vec::new(),
    };
    net::add_pod_netns(&pod.netns)?;
    let made = (|| {
        let (rt, list) = runtime(cfg, node)?;
        let mut att = attachment(&pod);
        if let Some(ips) = static_ips {
            att = att.with_arg("IP", &ips.join(","));
        }
        rt.add(&list, &att).map_err(|e| LabError::Cni {
            node: node.name.clone(),
            pod: name.into(),
            err: Box::new(e),
        })
    })();
    match made {
        Ok(result) => Ok(Pod {
            ips: result_ips(&result),
            ..pod
        }),
        Err(e) => {
            let _ = net::delete(&pod.netns);
            Err(e)
        }
    }
}

/// DEL the pod's attachment, then remove its netns (as the runtime does
/// on StopPodSandbox / RemovePodSandbox).
pub fn delete(cfg: &LabConfig, node: &NodePlan, pod: &Pod) -> Result<()> {
    let (rt, list) = runtime(cfg, node)?;
    let r = rt.del(&list, &attachment(pod)).map_err(|e| LabError::Cni {
        node: node.name.clone(),
        pod: pod.name.clone(),
        err: Box::new(e),
    });
    net::delete(&pod.netns)?;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_look_like_containerd_and_kubernetes_ones() {
        let (a, u) = ids("pod-1");
        let (b, _) = ids("pod-1");
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b, "a new sandbox, a new id");
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
    }

    #[test]
    fn result_ips_v4_first() {
        let r = json!({"ips": [
            {"address": "fd00:10:244::2/128"},
            {"address": "10.244.0.2/32"}
        ]});
        assert_eq!(result_ips(&r), ["10.244.0.2", "fd00:10:244::2"]);
    }
}
