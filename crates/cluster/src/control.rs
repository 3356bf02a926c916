//! The control plane, in the router's netns (the seed's picture puts the
//! API server behind 172.16.97.1): etcd on its loopback, kube-apiserver
//! (TLS, Node,RBAC authorization, NodeRestriction admission),
//! kube-controller-manager allocating a /24 podCIDR per node out of
//! 10.244.0.0/16 (`kubeadm init --pod-network-cidr=10.244.0.0/16`), and
//! kube-scheduler. Flags are kubeadm's, less what needs files outside the
//! cluster's root.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::paths::{ClusterPaths, API_PORT, CLUSTER_CIDR, SERVICE_CIDR};
use crate::pki::{Ca, CertFiles, Subject};
use crate::procs::{spawn, Place, Proc};
use crate::{kubeconfig, kubectl, util};

/// The control plane's processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlPlane {
    pub etcd: Proc,
    pub apiserver: Proc,
    pub controller_manager: Proc,
    pub scheduler: Proc,
}

/// The certificates `up` makes before anything starts.
pub struct Pki {
    pub ca: Ca,
    pub apiserver: CertFiles,
    pub kubelet_client: CertFiles,
    pub admin: CertFiles,
    pub sa_key: std::path::PathBuf,
    pub sa_pub: std::path::PathBuf,
}

impl Pki {
    pub fn create(paths: &ClusterPaths, advertise: &str) -> Result<Pki> {
        let dir = paths.pki();
        let ca = Ca::create(&dir)?;
        let names = crate::pki::apiserver_names(advertise);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let apiserver = ca.serving("apiserver", "kube-apiserver", &refs)?;
        let masters = |cn| Subject {
            cn,
            org: Some("system:masters"),
        };
        let kubelet_client = ca.client(
            "apiserver-kubelet-client",
            masters("kube-apiserver-kubelet-client"),
        )?;
        let admin = ca.client("admin", masters("kubernetes-admin"))?;
        let (sa_key, sa_pub) = crate::pki::service_account_key(&dir)?;
        Ok(Pki {
            ca,
            apiserver,
            kubelet_client,
            admin,
            sa_key,
            sa_pub,
        })
    }

    /// A kubeconfig at `path` for the user `cn` (a new client certificate).
    pub fn kubeconfig_for(
        &self,
        path: &Path,
        server: &str,
        name: &str,
        who: Subject<'_>,
    ) -> Result<()> {
        let c = self.ca.client(name, who)?;
        kubeconfig::write(path, server, &self.ca.cert_path(), &c, who.cn)
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Starts etcd, the API server, the controller manager and the scheduler
/// in `netns`, the API server answering on `advertise:6443`; returns once
/// `/readyz` says ok.
pub fn start(
    paths: &ClusterPaths,
    pki: &Pki,
    netns: &str,
    advertise: &str,
) -> Result<ControlPlane> {
    let dir = paths.control();
    let place = Place::netns(netns);
    let pk = |f: &str| s(&paths.pki().join(f));
    let etcd = spawn(
        &place,
        &paths.kube_binary("etcd")?,
        &[
            "--name=ferry-lab".into(),
            format!("--data-dir={}", s(&dir.join("etcd"))),
            "--listen-client-urls=http://127.0.0.1:2379".into(),
            "--advertise-client-urls=http://127.0.0.1:2379".into(),
            "--listen-peer-urls=http://127.0.0.1:2380".into(),
            "--initial-advertise-peer-urls=http://127.0.0.1:2380".into(),
            "--initial-cluster=ferry-lab=http://127.0.0.1:2380".into(),
            "--log-level=warn".into(),
        ],
        &[],
        &dir.join("etcd.log"),
    )?;
    let apiserver = spawn(
        &place,
        &paths.kube_binary("kube-apiserver")?,
        &[
            format!("--advertise-address={advertise}"),
            "--bind-address=0.0.0.0".into(),
            format!("--secure-port={API_PORT}"),
            "--insecure-port=0".into(),
            "--etcd-servers=http://127.0.0.1:2379".into(),
            format!("--client-ca-file={}", s(&pki.ca.cert_path())),
            format!("--tls-cert-file={}", s(&pki.apiserver.cert)),
            format!("--tls-private-key-file={}", s(&pki.apiserver.key)),
            format!(
                "--kubelet-client-certificate={}",
                s(&pki.kubelet_client.cert)
            ),
            format!("--kubelet-client-key={}", s(&pki.kubelet_client.key)),
            "--kubelet-preferred-address-types=InternalIP,Hostname".into(),
            "--authorization-mode=Node,RBAC".into(),
            "--enable-admission-plugins=NodeRestriction".into(),
            "--allow-privileged=true".into(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            format!("--service-account-key-file={}", s(&pki.sa_pub)),
            format!("--service-account-signing-key-file={}", s(&pki.sa_key)),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--cert-dir={}", s(&dir.join("apiserver-certs"))),
            "--profiling=false".into(),
            "--v=1".into(),
        ],
        &[],
        &dir.join("kube-apiserver.log"),
    )?;
    let internal = format!("https://{advertise}:{API_PORT}");
    kubeconfig::write(
        &paths.admin_kubeconfig_internal(),
        &internal,
        &pki.ca.cert_path(),
        &pki.admin,
        "kubernetes-admin",
    )?;
    let cm_conf = dir.join("controller-manager.conf");
    pki.kubeconfig_for(
        &cm_conf,
        &internal,
        "controller-manager",
        Subject {
            cn: "system:kube-controller-manager",
            org: None,
        },
    )?;
    let sched_conf = dir.join("scheduler.conf");
    pki.kubeconfig_for(
        &sched_conf,
        &internal,
        "scheduler",
        Subject {
            cn: "system:kube-scheduler",
            org: None,
        },
    )?;

    let k = kubectl::Kubectl::internal(paths, netns)?;
    util::wait_until(
        "kube-apiserver /readyz",
        Duration::from_secs(90),
        Duration::from_millis(500),
        |last| match k.run(&["get", "--raw", "/readyz"]) {
            Ok(out) if out.trim() == "ok" => Some(()),
            Ok(out) => {
                *last = out;
                None
            }
            Err(e) => {
                *last = e.to_string();
                None
            }
        },
    )?;

    let controller_manager = spawn(
        &place,
        &paths.kube_binary("kube-controller-manager")?,
        &[
            format!("--kubeconfig={}", s(&cm_conf)),
            format!("--authentication-kubeconfig={}", s(&cm_conf)),
            format!("--authorization-kubeconfig={}", s(&cm_conf)),
            "--bind-address=127.0.0.1".into(),
            "--port=0".into(),
            "--leader-elect=false".into(),
            "--allocate-node-cidrs=true".into(),
            format!("--cluster-cidr={CLUSTER_CIDR}"),
            "--node-cidr-mask-size=24".into(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--use-service-account-credentials=true".into(),
            format!("--service-account-private-key-file={}", pk("sa.key")),
            format!("--root-ca-file={}", s(&pki.ca.cert_path())),
            format!("--cluster-signing-cert-file={}", pk("ca.crt")),
            format!("--cluster-signing-key-file={}", pk("ca.key")),
            format!("--flex-volume-plugin-dir={}", s(&dir.join("flexvolume"))),
            "--controllers=*,bootstrapsigner,tokencleaner".into(),
            "--v=1".into(),
        ],
        &[],
        &dir.join("kube-controller-manager.log"),
    )?;
    let scheduler = spawn(
        &place,
        &paths.kube_binary("kube-scheduler")?,
        &[
            format!("--kubeconfig={}", s(&sched_conf)),
            format!("--authentication-kubeconfig={}", s(&sched_conf)),
            format!("--authorization-kubeconfig={}", s(&sched_conf)),
            "--bind-address=127.0.0.1".into(),
            "--port=0".into(),
            "--leader-elect=false".into(),
            "--v=1".into(),
        ],
        &[],
        &dir.join("kube-scheduler.log"),
    )?;
    Ok(ControlPlane {
        etcd,
        apiserver,
        controller_manager,
        scheduler,
    })
}

impl ControlPlane {
    pub fn procs(&self) -> [Proc; 4] {
        [
            self.scheduler,
            self.controller_manager,
            self.apiserver,
            self.etcd,
        ]
    }
}
