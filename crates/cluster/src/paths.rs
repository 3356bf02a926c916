//! Where a cluster keeps its files, and the fixed facts of its shape.
//!
//! Everything of a cluster lives under one root,
//! `/var/tmp/ferry-lab/<prefix>` by default, so `down` removes it with one
//! `rm -rf`. Disk, not /run: containerd's image layers are there. Not under
//! /var/lib: each node sees /etc, /opt, /var/lib and /var/log through an
//! overlay whose upper dir is here, and an upper dir may not lie inside
//! its lower one.
//!
//! ```text
//! <root>/pki/                 CA, serving and client certificates
//! <root>/admin.conf           kubeconfig for the host (through the forwarder)
//! <root>/control/             etcd data, logs, kubeconfigs of the control plane
//! <root>/images/              the OCI archives imported on every node
//! <root>/nodes/<name>/        a node: containerd root, kubelet root, logs,
//!                             overlay upper dirs for /etc /opt /var/lib /var/log
//! ```

use std::path::{Path, PathBuf};

/// The Kubernetes version the harness runs (built by scripts/kubernetes.sh).
pub const KUBE_VERSION: &str = "v1.20.2";
/// Where scripts/kubernetes.sh leaves the binaries.
pub const DEFAULT_KUBE_CACHE: &str = "/var/cache/ferry/kubernetes";
/// Root of every cluster's files.
pub const ROOT: &str = "/var/tmp/ferry-lab";

/// Cluster-wide addressing: what `kubeadm init --pod-network-cidr` and
/// its defaults give.
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
pub const SERVICE_CIDR: &str = "10.96.0.0/12";
/// The `kubernetes` Service's ClusterIP (first of SERVICE_CIDR).
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";
pub const API_PORT: u16 = 6443;

/// One cluster's paths.
#[derive(Debug, Clone)]
pub struct ClusterPaths {
    /// Prefix of every netns, cgroup and process of the lab it belongs to.
    pub prefix: String,
    pub root: PathBuf,
    /// scripts/kubernetes.sh's `bin/` (kube-apiserver ... kubectl, etcd).
    pub kube_bin: PathBuf,
}

impl ClusterPaths {
    /// The cluster of the lab with `prefix`: root `/var/tmp/ferry-lab/<name>`,
    /// binaries from `$FERRY_KUBE_BIN` or the build cache.
    pub fn new(prefix: &str) -> ClusterPaths {
        ClusterPaths {
            prefix: prefix.into(),
            root: Path::new(ROOT).join(prefix.trim_end_matches('-')),
            kube_bin: default_kube_bin(),
        }
    }

    pub fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }
    pub fn control(&self) -> PathBuf {
        self.root.join("control")
    }
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }
    pub fn node(&self, name: &str) -> PathBuf {
        self.root.join("nodes").join(name)
    }
    /// The admin kubeconfig for kubectl on the host (via the forwarder).
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.root.join("admin.conf")
    }
    /// The admin kubeconfig for kubectl inside the router netns (direct).
    pub fn admin_kubeconfig_internal(&self) -> PathBuf {
        self.control().join("admin-internal.conf")
    }
    pub fn state_file(&self) -> PathBuf {
        self.root.join("cluster.json")
    }
    /// The cgroup (in every v1 hierarchy) under which a node's kubelet
    /// puts its pods: `/<prefix>kube-<node>`.
    pub fn cgroup_root(&self, node: &str) -> String {
        format!("/{}kube-{node}", self.prefix)
    }

    /// A Kubernetes binary, or an error saying how to get it.
    pub fn kube_binary(&self, name: &str) -> crate::Result<PathBuf> {
        let p = self.kube_bin.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(crate::ClusterError::MissingBinary {
                name: name.into(),
                dir: self.kube_bin.clone(),
            })
        }
    }
}

/// `$FERRY_KUBE_BIN`, else `<cache>/<KUBE_VERSION>/bin` with the cache from
/// `$FERRY_KUBE_CACHE` (as scripts/kubernetes.sh).
pub fn default_kube_bin() -> PathBuf {
    if let Some(d) = std::env::var_os("FERRY_KUBE_BIN") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("FERRY_KUBE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_KUBE_CACHE));
    cache.join(KUBE_VERSION).join("bin")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_root_per_prefix() {
        let p = ClusterPaths::new("fl-");
        assert_eq!(p.root, Path::new("/var/tmp/ferry-lab/fl"));
        assert_eq!(
            p.node("k8s-master"),
            Path::new("/var/tmp/ferry-lab/fl/nodes/k8s-master")
        );
        assert_eq!(p.cgroup_root("k8s-worker-1"), "/fl-kube-k8s-worker-1");
    }
}
