//! Realistic kubeadm Node objects (as `kubectl get node -o json` prints
//! them), generated clusters of any size, and loading nodes from files.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Value};

use crate::error::ServerError;
use crate::util::uuid_from_seed;

/// A kubeadm worker (`k8s-worker-1`, 172.16.97.76, 10.244.1.0/24).
pub const WORKER_JSON: &str = include_str!("../fixtures/kubeadm-worker.json");
/// A kubeadm control-plane node (`k8s-master`, 172.16.97.75,
/// 10.244.0.0/24, control-plane taint and labels).
pub const CONTROL_PLANE_JSON: &str = include_str!("../fixtures/kubeadm-control-plane.json");

/// The kubeadm worker fixture.
pub fn fixture_node() -> Node {
    serde_json::from_str(WORKER_JSON).expect("fixture is a valid Node")
}

/// The kubeadm control-plane fixture.
pub fn fixture_control_plane() -> Node {
    serde_json::from_str(CONTROL_PLANE_JSON).expect("fixture is a valid Node")
}

/// Address families of generated nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpFamily {
    #[default]
    V4,
    V6,
    /// IPv4 first, then IPv6 (kubeadm dual-stack order).
    Dual,
}

/// How [`generate_nodes`] shapes its nodes.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub family: IpFamily,
    /// Names are `{name_prefix}{index}`; default `node-`.
    pub name_prefix: String,
    /// Index of the first node; default 0.
    pub first: usize,
    /// The `Ready` condition's status; default true.
    pub ready: bool,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            family: IpFamily::V4,
            name_prefix: "node-".into(),
            first: 0,
            ready: true,
        }
    }
}

/// InternalIP (v4) of generated node `i`: 172.16.0.10 + i.
pub fn node_ipv4(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 10)).wrapping_add(i as u32))
}

/// InternalIP (v6) of generated node `i`: fd00:172:16::a + i.
pub fn node_ipv6(i: usize) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(Ipv6Addr::new(0xfd00, 0x172, 0x16, 0, 0, 0, 0, 10)) + i as u128)
}

/// Pod CIDR (v4) of generated node `i`: the i-th /24 from 10.244.0.0
/// (10.244.0.0/24, 10.244.1.0/24, … 10.245.0.0/24 …), wrapping inside
/// 10.0.0.0/8, so unique for 65536 nodes.
pub fn pod_cidr_v4(i: usize) -> String {
    let n = (244 * 256 + i) % 65536;
    format!("10.{}.{}.0/24", n / 256, n % 256)
}

/// Pod CIDR (v6) of generated node `i`: fd00:10:244:i::/64 (canonical
/// form: node 0 is fd00:10:244::/64).
pub fn pod_cidr_v6(i: usize) -> String {
    let seg = (i % 65536) as u16;
    format!("{}/64", Ipv6Addr::new(0xfd00, 0x10, 0x244, seg, 0, 0, 0, 0))
}

/// `n` worker nodes like [`fixture_node`], named `node-0`…, each with its
/// own InternalIP(s), podCIDR(s), hostname label and machine ids.
pub fn generate_nodes(n: usize, opts: &GenOptions) -> Vec<Node> {
    let template: Value = serde_json::from_str(WORKER_JSON).expect("fixture is JSON");
    (opts.first..opts.first + n)
        .map(|i| {
            let v = shape(template.clone(), i, opts);
            serde_json::from_value(v).expect("generated node is valid")
        })
        .collect()
}

fn shape(mut v: Value, i: usize, opts: &GenOptions) -> Value {
    let name = format!("{}{i}", opts.name_prefix);
    let meta = &mut v["metadata"];
    meta["name"] = json!(name);
    meta["labels"]["kubernetes.io/hostname"] = json!(name);
    meta["uid"] = json!(uuid_from_seed(i as u64 * 3));
    if let Some(m) = meta.as_object_mut() {
        m.remove("resourceVersion");
    }
    let (mut cidrs, mut addrs) = (Vec::new(), Vec::new());
    if opts.family != IpFamily::V6 {
        cidrs.push(pod_cidr_v4(i));
        addrs.push(json!({"address": node_ipv4(i).to_string(), "type": "InternalIP"}));
    }
    if opts.family != IpFamily::V4 {
        cidrs.push(pod_cidr_v6(i));
        addrs.push(json!({"address": node_ipv6(i).to_string(), "type": "InternalIP"}));
    }
    addrs.push(json!({"address": name, "type": "Hostname"}));
    v["spec"]["podCIDR"] = json!(cidrs[0]);
    v["spec"]["podCIDRs"] = json!(cidrs);
    let status = &mut v["status"];
    status["addresses"] = json!(addrs);
    let info = &mut status["nodeInfo"];
    info["bootID"] = json!(uuid_from_seed(i as u64 * 3 + 1));
    info["systemUUID"] = json!(uuid_from_seed(i as u64 * 3 + 2));
    info["machineID"] = json!(uuid_from_seed(i as u64 * 3 + 1).replace('-', ""));
    if !opts.ready {
        for cond in status["conditions"].as_array_mut().into_iter().flatten() {
            if cond["type"] == "Ready" {
                cond["status"] = json!("False");
                cond["reason"] = json!("KubeletNotReady");
                cond["message"] = json!(
                    "container runtime network not ready: NetworkReady=false \
                     reason:NetworkPluginNotReady message:Network plugin returns error: \
                     cni plugin not initialized"
                );
            }
        }
    }
    v
}

/// Nodes from a file or a directory of `*.json` files. Each file holds a
/// `Node`, or a `NodeList`/`List` (as `kubectl get nodes -o json` prints).
pub fn load_nodes(path: &Path) -> Result<Vec<Node>, ServerError> {
    let io = |source| ServerError::Io {
        context: "cannot read",
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let mut files = Vec::new();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)? {
            let p = entry.map_err(io)?.path();
            if p.extension().is_some_and(|e| e == "json") {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut nodes = Vec::new();
    for file in files {
        let bad = |message: String| ServerError::State {
            path: file.clone(),
            message,
        };
        let data = std::fs::read(&file).map_err(|source| ServerError::Io {
            context: "cannot read",
            path: file.clone(),
            source,
        })?;
        let v: Value = serde_json::from_slice(&data).map_err(|e| bad(e.to_string()))?;
        let items = match v.get("items").and_then(Value::as_array) {
            Some(items) => items.clone(),
            None => vec![v],
        };
        for item in items {
            nodes.push(serde_json::from_value(item).map_err(|e| bad(e.to_string()))?);
        }
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_parse() {
        let w = fixture_node();
        assert_eq!(w.metadata.name.as_deref(), Some("k8s-worker-1"));
        let spec = w.spec.unwrap();
        assert_eq!(spec.pod_cidr.as_deref(), Some("10.244.1.0/24"));
        let status = w.status.unwrap();
        assert_eq!(status.conditions.unwrap().len(), 4);
        assert_eq!(status.node_info.unwrap().kubelet_version, "v1.33.1");
        let cp = fixture_control_plane();
        assert!(cp.spec.unwrap().taints.unwrap()[0]
            .key
            .contains("control-plane"));
    }

    #[test]
    fn generated_nodes_are_distinct() {
        let nodes = generate_nodes(300, &GenOptions::default());
        assert_eq!(nodes[7].metadata.name.as_deref(), Some("node-7"));
        let spec = nodes[257].spec.clone().unwrap();
        assert_eq!(spec.pod_cidr.as_deref(), Some("10.245.1.0/24"));
        let addr = &nodes[7]
            .status
            .as_ref()
            .unwrap()
            .addresses
            .as_ref()
            .unwrap()[0];
        assert_eq!(addr.address, "172.16.0.17");
        let mut cidrs: Vec<_> = nodes
            .iter()
            .map(|n| n.spec.clone().unwrap().pod_cidr)
            .collect();
        cidrs.sort();
        cidrs.dedup();
        assert_eq!(cidrs.len(), 300);

        let dual = generate_nodes(
            2,
            &GenOptions {
                family: IpFamily::Dual,
                first: 5,
                ready: false,
                ..GenOptions::default()
            },
        );
        let spec = dual[0].spec.clone().unwrap();
        assert_eq!(
            spec.pod_cidrs.unwrap(),
            vec![
                "10.244.5.0/24".to_string(),
                "fd00:10:244:5::/64".to_string()
            ]
        );
        let status = dual[1].status.clone().unwrap();
        assert_eq!(status.addresses.unwrap()[1].address, "fd00:172:16::10");
        assert_eq!(pod_cidr_v6(0), "fd00:10:244::/64");
        let ready = status
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready");
        assert_eq!(ready.unwrap().status, "False");
    }
}
