//! A whole cluster: `up` in the order kubeadm and a user would go (control
//! plane, nodes registering themselves and staying NotReady, then ferry
//! installed with `kubectl apply` making them Ready), `load` to find it
//! again from `<root>/cluster.json`, and the waits the checks use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::control::{self, ControlPlane, Pki};
use crate::error::{ClusterError, Result};
use crate::kubectl::{self, Kubectl};
use crate::node::{self, NodeProcs, NodeSpec};
use crate::paths::{ClusterPaths, API_PORT};
use crate::procs::{spawn, Place, Proc};
use crate::util::{mkdir, wait_until, write_file};
use crate::{images, kubeconfig};

/// What to build.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// The router's netns, where the control plane runs.
    pub router_netns: String,
    /// The API server's address there (the router's, 172.16.97.1).
    pub api_addr: String,
    pub nodes: Vec<NodeSpec>,
    /// Statically linked `ferryd`, `ferry`, `ferry-ipam` for the image.
    pub ferry_bin: PathBuf,
    /// ferry's manifest, applied as it is (deploy/ferry.yaml).
    pub manifest: PathBuf,
    /// Also make and import the FRR images the ospf/bgp manifests name.
    pub frr: bool,
    /// Secrets created before the manifest is applied, as its install
    /// guide tells the user: (name, key, value) in kube-system.
    pub secrets: Vec<(String, String, String)>,
    /// The executable that serves the host's forwarder
    /// (`<exe> kube-forward NETNS ADDR PORTFILE`).
    pub forwarder_exe: PathBuf,
}

/// What runs, saved in `<root>/cluster.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterState {
    pub router_netns: String,
    pub api_addr: String,
    pub control: Option<ControlPlane>,
    pub forwarder: Option<Proc>,
    pub forward_port: Option<u16>,
    pub nodes: Vec<(NodeSpec, Option<NodeProcs>)>,
    pub manifest: Option<PathBuf>,
}

pub struct Cluster {
    pub paths: ClusterPaths,
    pub state: ClusterState,
}

/// How long one step may take.
pub const STEP: Duration = Duration::from_secs(180);

impl Cluster {
    /// Builds the cluster; `say` gets one line per step. What was made is
    /// in the state file before anything starts, so `down` finds it after
    /// any failure.
    pub fn up(
        paths: ClusterPaths,
        spec: &ClusterSpec,
        say: &mut dyn FnMut(&str),
    ) -> Result<Cluster> {
        for b in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet",
            "kube-proxy",
            "kubectl",
        ] {
            paths.kube_binary(b)?;
        }
        for n in &spec.nodes {
            node::validate(n)?;
        }
        mkdir(&paths.root)?;
        let mut c = Cluster {
            state: ClusterState {
                router_netns: spec.router_netns.clone(),
                api_addr: spec.api_addr.clone(),
                nodes: spec.nodes.iter().map(|n| (n.clone(), None)).collect(),
                ..Default::default()
            },
            paths,
        };
        c.save()?;
        let t0 = Instant::now();
        let pki = Pki::create(&c.paths, &spec.api_addr)?;
        let mut archives = images::write_all(&c.paths.images(), &spec.ferry_bin)?;
        let mut names = vec![
            images::FERRY_IMAGE,
            images::TOOLBOX_IMAGE,
            images::PAUSE_IMAGE,
        ];
        if spec.frr {
            archives.extend(crate::frr_image::write(&c.paths.images(), &spec.ferry_bin)?);
            names.extend([
                crate::frr_image::FRR_IMAGE,
                crate::frr_image::FERRY_FRR_IMAGE,
            ]);
        }
        say(&format!(
            "certificates and images ({}) made",
            names.join(", ")
        ));
        c.state.control = Some(control::start(
            &c.paths,
            &pki,
            &spec.router_netns,
            &spec.api_addr,
        )?);
        c.save()?;
        say(&format!(
            "control plane up in {}: etcd, kube-apiserver https://{}:{API_PORT} ready, controller-manager, scheduler",
            spec.router_netns, spec.api_addr
        ));
        c.start_forwarder(&pki, &spec.forwarder_exe)?;
        say(&format!(
            "kubectl on this host: KUBECONFIG={} (through 127.0.0.1:{})",
            c.paths.admin_kubeconfig().display(),
            c.state.forward_port.unwrap_or(0)
        ));
        for i in 0..c.state.nodes.len() {
            let spec_n = c.state.nodes[i].0.clone();
            node::prepare(&c.paths, &pki, &spec_n, &spec.api_addr)?;
            c.state.nodes[i].1 = Some(node::start(&c.paths, &spec_n, &archives)?);
            c.save()?;
        }
        say(&format!(
            "{} nodes: containerd, kubelet and kube-proxy each, images imported",
            c.state.nodes.len()
        ));
        c.wait_registered()?;
        say(&format!(
            "every node registered with a podCIDR, NotReady: no network plugin yet ({:.0} s)",
            t0.elapsed().as_secs_f64()
        ));
        for (name, key, value) in &spec.secrets {
            c.kubectl()?.run(&[
                "-n",
                "kube-system",
                "create",
                "secret",
                "generic",
                name,
                &format!("--from-literal={key}={value}"),
            ])?;
        }
        c.install_ferry(&spec.manifest)?;
        say(&format!("kubectl apply -f {}", spec.manifest.display()));
        c.wait_ready()?;
        say(&format!(
            "every node Ready through ferry, its pods Running ({:.0} s)",
            t0.elapsed().as_secs_f64()
        ));
        Ok(c)
    }

    pub fn load(paths: ClusterPaths) -> Result<Cluster> {
        let f = paths.state_file();
        let text = std::fs::read_to_string(&f).map_err(ClusterError::io("reading", &f))?;
        let state = serde_json::from_str(&text).map_err(|e| ClusterError::Unexpected {
            what: f.display().to_string(),
            detail: e.to_string(),
        })?;
        Ok(Cluster { paths, state })
    }

    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| ClusterError::Invalid(e.to_string()))?;
        write_file(&self.paths.state_file(), &text, 0o644)
    }

    /// kubectl straight to the API server (inside the router's netns).
    pub fn kubectl(&self) -> Result<Kubectl> {
        Kubectl::internal(&self.paths, &self.state.router_netns)
    }

    fn start_forwarder(&mut self, pki: &Pki, exe: &Path) -> Result<()> {
        let port_file = self.paths.root.join("forward.port");
        let _ = std::fs::remove_file(&port_file);
        let to = format!("{}:{API_PORT}", self.state.api_addr);
        let p = spawn(
            &Place(vec![]),
            exe,
            &[
                "kube-forward".into(),
                format!("/run/netns/{}", self.state.router_netns),
                to,
                port_file.display().to_string(),
            ],
            &[],
            &self.paths.control().join("forwarder.log"),
        )?;
        self.state.forwarder = Some(p);
        self.save()?;
        let port = wait_until(
            "the forwarder's port",
            Duration::from_secs(10),
            Duration::from_millis(20),
            |_| {
                std::fs::read_to_string(&port_file)
                    .ok()?
                    .trim()
                    .parse::<u16>()
                    .ok()
            },
        )?;
        self.state.forward_port = Some(port);
        kubeconfig::write(
            &self.paths.admin_kubeconfig(),
            &format!("https://127.0.0.1:{port}"),
            &pki.ca.cert_path(),
            &pki.admin,
            "kubernetes-admin",
        )?;
        self.save()
    }

    /// Every node registered and given a podCIDR by the controller manager.
    pub fn wait_registered(&self) -> Result<()> {
        let k = self.kubectl()?;
        let want: Vec<&str> = self
            .state
            .nodes
            .iter()
            .map(|(n, _)| n.name.as_str())
            .collect();
        wait_until(
            "nodes to register and get podCIDRs",
            STEP,
            Duration::from_secs(1),
            |last| {
                let list = k.json(&["get", "nodes"]).ok()?;
                let have: Vec<(String, bool)> = kubectl::items(&list)
                    .iter()
                    .map(|n| {
                        (
                            n["metadata"]["name"].as_str().unwrap_or("").to_string(),
                            n["spec"]["podCIDR"].is_string(),
                        )
                    })
                    .collect();
                *last = format!("{have:?}");
                want.iter()
                    .all(|w| have.iter().any(|(n, cidr)| n == w && *cidr))
                    .then_some(())
            },
        )
    }

    /// `kubectl apply -f manifest`, exactly the file a user applies.
    pub fn install_ferry(&mut self, manifest: &Path) -> Result<()> {
        let yaml =
            std::fs::read_to_string(manifest).map_err(ClusterError::io("reading", manifest))?;
        self.kubectl()?.apply(&yaml)?;
        self.state.manifest = Some(manifest.to_path_buf());
        self.save()
    }

    /// Every node Ready, and ferry's DaemonSet pod Ready on each.
    pub fn wait_ready(&self) -> Result<()> {
        let k = self.kubectl()?;
        let n = self.state.nodes.len();
        wait_until(
            "nodes Ready and ferry's pods Ready",
            STEP,
            Duration::from_secs(1),
            |last| {
                let nodes = k.json(&["get", "nodes"]).ok()?;
                let ready = kubectl::items(&nodes)
                    .iter()
                    .filter(|x| {
                        kubectl::condition(x, "Ready").is_some_and(|c| c["status"] == "True")
                    })
                    .count();
                let pods = k.ferry_pods().ok()?;
                let pods_ready = kubectl::items(&pods)
                    .iter()
                    .filter(|x| {
                        kubectl::condition(x, "Ready").is_some_and(|c| c["status"] == "True")
                    })
                    .count();
                *last = format!("{ready}/{n} nodes Ready, {pods_ready}/{n} ferry pods Ready");
                (ready == n && pods_ready == n).then_some(())
            },
        )
    }

    /// Daemons of the cluster that are not running.
    pub fn dead(&self) -> Vec<String> {
        let mut v = vec![];
        if let Some(c) = &self.state.control {
            for (name, p) in ["scheduler", "controller-manager", "apiserver", "etcd"]
                .iter()
                .zip(c.procs())
            {
                if !p.alive() {
                    v.push(format!("{name} not running"));
                }
            }
        }
        for (n, p) in &self.state.nodes {
            if let Some(why) = p.as_ref().and_then(node::dead) {
                v.push(format!("{}: {why}", n.name));
            }
        }
        v
    }
}

/// The forwarder process's body: binds 127.0.0.1:0, writes the port to
/// `port_file`, serves forever (see [`crate::forward`]).
pub fn forwarder_main(netns_path: &Path, to: &str, port_file: &Path) -> Result<()> {
    let to: SocketAddr = to
        .parse()
        .map_err(|_| ClusterError::Invalid(format!("bad address {to}")))?;
    let (listener, port) = crate::forward::bind()?;
    write_file(port_file, format!("{port}\n").as_bytes(), 0o644)?;
    crate::forward::serve(listener, netns_path, to)
}
