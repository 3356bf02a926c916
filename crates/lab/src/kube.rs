//! `ferry-lab up --kubernetes`: the seed's picture with a real Kubernetes
//! (crate `ferry-cluster`) instead of the test API server: the same
//! switch, router and internet host, the same node netns and addresses,
//! then the control plane in the router's netns, containerd + kubelet +
//! kube-proxy per node, ferry installed with `kubectl apply -f
//! deploy/ferry.yaml`, and toolbox pods spread over the nodes in place of
//! the CNI-made pods.

use std::path::{Path, PathBuf};

use ferry_cluster::checks::{self, Surroundings};
use ferry_cluster::{Cluster, ClusterPaths, ClusterSpec, NodeSpec};

use crate::error::{LabError, Result};
use crate::lab::UpOptions;
use crate::state::{LabConfig, NodeState, Pod, State};
use crate::topo::{self, Routing};
use crate::{net, sh};

/// What `up --kubernetes` needs beyond the lab's own options.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// ferry's manifest as a user applies it (default: the routing mode's
    /// file in deploy/).
    pub manifest: PathBuf,
    /// Statically linked `ferryd`, `ferry`, `ferry-ipam` for the image.
    pub image_bin_dir: PathBuf,
}

/// The repository's deploy/ directory (where this crate was built from).
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The manifest for a routing mode: deploy/ferry.yaml, ferry-ospf.yaml,
/// ferry-bgp.yaml.
pub fn default_manifest(routing: Routing) -> PathBuf {
    deploy_dir().join(match routing {
        Routing::Direct => "ferry.yaml",
        Routing::Ospf => "ferry-ospf.yaml",
        Routing::Bgp => "ferry-bgp.yaml",
    })
}

/// Where `cargo build --release --target x86_64-unknown-linux-gnu` with
/// `+crt-static` leaves the binaries, next to the lab's own bin dir
/// (`target/release` → `target/x86_64-unknown-linux-gnu/release`).
pub fn default_image_bin_dir(bin_dir: &Path) -> PathBuf {
    let target = bin_dir.parent().unwrap_or(Path::new("target"));
    target.join("x86_64-unknown-linux-gnu/release")
}

pub fn cluster_paths(cfg: &LabConfig) -> ClusterPaths {
    ClusterPaths::new(&cfg.prefix)
}

/// Refuses what `up --kubernetes` cannot do, before anything is made.
pub fn validate(opts: &UpOptions) -> Result<()> {
    if opts.dual_stack {
        return Err(LabError::Invalid(
            "--kubernetes: no --dual-stack yet".into(),
        ));
    }
    if opts.encryption.is_some() {
        return Err(LabError::Invalid(
            "--encryption is for the embedded lab (no manifest turns WireGuard on yet)".into(),
        ));
    }
    if opts.encapsulation.is_some() {
        return Err(LabError::Invalid(
            "--encapsulation is for the embedded lab; with --kubernetes the manifest's \
             FERRY_ENCAPSULATION applies (cross-subnet in deploy/ferry.yaml)"
                .into(),
        ));
    }
    if opts.subnets > 1 && opts.routing != Routing::Direct {
        return Err(LabError::Invalid(
            "--kubernetes --subnets 2 needs --routing direct (VXLAN across the subnets; \
             the router speaks no OSPF/BGP)"
                .into(),
        ));
    }
    Ok(())
}

/// Builds the lab with a real cluster. `say` prints progress.
pub fn up(
    cfg: &LabConfig,
    state: &mut State,
    nodes: usize,
    per_node: usize,
    opts: &KubeOptions,
    say: &dyn Fn(&str),
) -> Result<Cluster> {
    net::build_fixed(&cfg.prefix, false, state.subnets)?;
    say(if state.subnets > 1 {
        "switch (2 segments), router 172.16.97.1 + 172.16.98.1 and internet host 203.0.113.10 cabled"
    } else {
        "switch, router 172.16.97.1 and internet host 203.0.113.10 cabled"
    });
    let mut specs = vec![];
    for i in 0..nodes {
        let plan = topo::node_plan_in(&cfg.prefix, i, false, state.subnets);
        net::add_node(&cfg.prefix, &plan)?;
        // What the README's node preparation sets (per netns here).
        sh::sysctl(&plan.netns, "net.ipv4.ip_forward", "1")?;
        specs.push(NodeSpec {
            name: plan.name.clone(),
            netns: plan.netns.clone(),
            ip: plan.ip.clone(),
        });
        state.nodes.push(NodeState { plan, ferryd: None });
        state.save(cfg)?;
    }
    say(&format!(
        "{nodes} node namespaces on the switch, ip_forward=1 (kubeadm's preflight)"
    ));
    let spec = ClusterSpec {
        router_netns: topo::fixed(&cfg.prefix).router,
        api_addr: topo::ROUTER_V4.into(),
        nodes: specs,
        ferry_bin: opts.image_bin_dir.clone(),
        manifest: opts.manifest.clone(),
        frr: state.routing.uses_frr(),
        secrets: secrets(state.routing)?,
        forwarder_exe: std::env::current_exe().map_err(|e| LabError::Invalid(e.to_string()))?,
    };
    let cluster = Cluster::up(cluster_paths(cfg), &spec, &mut |l| say(l))?;
    // The podCIDRs are the controller manager's choice, in the order the
    // nodes registered: show what it chose.
    let list = cluster.kubectl()?.json(&["get", "nodes"])?;
    for n in ferry_cluster::kubectl::items(&list) {
        let name = n["metadata"]["name"].as_str().unwrap_or("");
        let cidrs: Vec<String> = n["spec"]["podCIDRs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(node) = state.node_mut(name) {
            node.plan.cidrs = cidrs;
        }
    }
    if state.routing.uses_frr() {
        let t = crate::check::wait_converged(state, crate::lab::STEP_LIMIT)?;
        say(&format!(
            "every node routes every other node's pods over {} ({:.1} s)",
            state.routing,
            t.as_secs_f64()
        ));
    }
    let views = checks::deploy_workload(&cluster, per_node)?;
    record_pods(state, &views);
    state.save(cfg)?;
    say(&format!(
        "{} toolbox pods Running, spread over every node",
        views.len()
    ));
    Ok(cluster)
}

/// The Secret the routing mode's manifest reads, made as its install guide
/// says (`openssl rand -hex`), here from the kernel's random numbers.
fn secrets(routing: Routing) -> Result<Vec<(String, String, String)>> {
    let hex = |n: usize| -> Result<String> {
        let mut b = vec![0u8; n];
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut b))
            .map_err(|e| LabError::io("/dev/urandom", e))?;
        Ok(b.iter().map(|x| format!("{x:02x}")).collect())
    };
    Ok(match routing {
        Routing::Direct => vec![],
        Routing::Ospf => vec![("ferry-ospf".into(), "key".into(), hex(8)?)],
        Routing::Bgp => vec![("ferry-bgp".into(), "password".into(), hex(32)?)],
    })
}

/// The pods as the lab's table shows them (real pods: no netns of ours).
pub fn record_pods(state: &mut State, views: &[checks::PodView]) {
    state.pods = views
        .iter()
        .map(|v| Pod {
            // toolbox-5d9c8f7b6-x7k2p → toolbox-x7k2p: the table's columns
            // are narrow.
            name: match (v.name.split('-').next(), v.name.rsplit('-').next()) {
                (Some(a), Some(b)) if a != b => format!("{a}-{b}"),
                _ => v.name.clone(),
            },
            node: v.node.clone(),
            netns: String::new(),
            container_id: String::new(),
            uid: String::new(),
            ips: vec![v.ip.clone()],
        })
        .collect();
    state
        .pods
        .sort_by(|a, b| (&a.node, &a.name).cmp(&(&b.node, &b.name)));
}

/// `check` on a `--kubernetes` lab.
pub fn check(cfg: &LabConfig) -> Result<checks::Report> {
    let c = Cluster::load(cluster_paths(cfg))?;
    let f = topo::fixed(&cfg.prefix);
    let around = Surroundings {
        router_netns: f.router,
        internet_netns: f.internet,
        internet_ip: topo::INTERNET_HOST_V4.into(),
    };
    Ok(checks::run_checks(&c, &around)?)
}

/// A scenario (or `all`) of [`ferry_cluster::scenarios`] on a
/// `--kubernetes` lab, then `check`; their report lines. The lab's pod list
/// follows the cluster (a restarted node's pods may have new addresses).
pub fn scenario(cfg: &LabConfig, name: &str) -> Result<Vec<String>> {
    let mut c = Cluster::load(cluster_paths(cfg))?;
    let names: Vec<&str> = if name == "all" {
        ferry_cluster::scenarios::ALL.to_vec()
    } else {
        vec![name]
    };
    let mut lines = vec![];
    for n in names {
        lines.push(format!("== {n}"));
        lines.extend(ferry_cluster::scenarios::run(&mut c, n)?);
        if n == "uninstall" {
            continue; // ferry is gone: nothing left to check but what it checked
        }
        let report = check(cfg)?;
        lines.push(format!("check: {}", report.summary()));
        report.into_result()?;
    }
    let mut state = State::load(cfg)?;
    let views = checks::pods(&c.kubectl()?, ferry_cluster::workload::APP_LABEL)?;
    record_pods(&mut state, &views);
    state.save(cfg)?;
    Ok(lines)
}

/// `ferry-lab pod-startup`: [`ferry_cluster::bench::pod_startup`] and its
/// summary (medians, p99, ferry / ptp ratios).
pub fn pod_startup(
    cfg: &LabConfig,
    pods: usize,
    rounds: usize,
    out: &mut dyn FnMut(&str),
) -> Result<()> {
    use ferry_cluster::bench::{ms, pod_startup, quantile};
    let c = Cluster::load(cluster_paths(cfg))?;
    out(&format!(
        "pod startup, create → Ready: {pods} pods over {} nodes, {rounds} rounds per plugin, alternating",
        c.state.nodes.len()
    ));
    let s = pod_startup(&c, pods, rounds, out)?;
    for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
        let (f, p) = (ms(quantile(&s.ferry, q)), ms(quantile(&s.ptp, q)));
        out(&format!(
            "{name}: ferry {f:.0} ms, ptp + host-local {p:.0} ms, ratio {:.2}",
            f / p
        ));
    }
    Ok(())
}

/// Removes the cluster's processes, cgroups and files (before the lab
/// removes its namespaces).
pub fn down(cfg: &LabConfig) -> Result<ferry_cluster::teardown::Removed> {
    Ok(ferry_cluster::teardown::down(&cluster_paths(cfg))?)
}

pub fn leftovers(cfg: &LabConfig) -> Vec<String> {
    ferry_cluster::teardown::leftovers(&cluster_paths(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kube(routing: Routing, subnets: usize) -> UpOptions {
        UpOptions {
            routing,
            subnets,
            ..UpOptions::default()
        }
    }

    #[test]
    fn two_subnets_only_with_direct_routing() {
        assert!(validate(&kube(Routing::Direct, 2)).is_ok());
        assert!(validate(&kube(Routing::Direct, 1)).is_ok());
        assert!(validate(&kube(Routing::Ospf, 1)).is_ok());
        for r in [Routing::Ospf, Routing::Bgp] {
            let e = validate(&kube(r, 2)).unwrap_err().to_string();
            assert!(e.contains("needs --routing direct"), "{e}");
        }
    }

    #[test]
    fn encapsulation_and_dual_stack_refused() {
        let mut o = kube(Routing::Direct, 2);
        o.encapsulation = Some("always".into());
        assert!(validate(&o).unwrap_err().to_string().contains("manifest"));
        let mut o = kube(Routing::Direct, 1);
        o.dual_stack = true;
        assert!(validate(&o).unwrap_err().to_string().contains("dual-stack"));
        let mut o = kube(Routing::Direct, 1);
        o.encryption = Some("wireguard".into());
        assert!(validate(&o)
            .unwrap_err()
            .to_string()
            .contains("--encryption"));
    }
}
