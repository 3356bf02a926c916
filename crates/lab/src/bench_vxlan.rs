//! `bench-vxlan`: what the tunnel costs, as issue 15 asks for it: pod↔pod
//! TCP throughput over node↔node throughput **on the same links**. In a
//! `--subnets 2` lab with `--encapsulation cross-subnet` (prefix `vxb-`,
//! its own), iperf3 from k8s-master to k8s-worker-2 (same subnet: pods
//! take a plain route) and to k8s-worker-1 (other subnet: pods take
//! `ferry.vxlan`, through the router; the nodes' own traffic takes the
//! same router without a tunnel). Each pod run is paired back to back with
//! the node run between the same two nodes, the order alternating; the
//! ratio is the median of the pairs' pod / node. Once with the eBPF fast
//! path and once through the IP stack.

use std::path::Path;

use crate::bench::{fresh_lab, iperf, median, Load};
use crate::congestion::Congestion;
use crate::error::{LabError, Result};
use crate::lab::{DownGuard, Lab, UpOptions};
use crate::state::Pod;
use crate::topo::Routing;

/// The lab prefix of the bench.
pub const PREFIX: &str = "vxb-";

/// One path's medians (bits/s).
#[derive(Debug, Clone)]
pub struct PathFigures {
    /// node → node between the two pods' nodes.
    pub node_bps: f64,
    /// pod → pod.
    pub pod_bps: f64,
    /// Median of the back-to-back ratios pod / node.
    pub ratio: f64,
}

/// One lab's medians.
#[derive(Debug, Clone)]
pub struct TunnelFigures {
    pub fast_path: bool,
    /// Same subnet: pods on a plain route.
    pub direct: PathFigures,
    /// Other subnet: pods through ferry.vxlan.
    pub vxlan: PathFigures,
    pub pairs: usize,
}

impl TunnelFigures {
    pub fn line(&self, load: &Load) -> String {
        let path = |what: &str, f: &PathFigures| {
            format!(
                "{what}: pod {:.2} / node {:.2} Gbit/s, ratio {:.3}",
                f.pod_bps / 1e9,
                f.node_bps / 1e9,
                f.ratio
            )
        };
        format!(
            "{}: {}; {} (medians of {} back-to-back pairs of {})",
            if self.fast_path {
                "with the eBPF fast path"
            } else {
                "through the IP stack (--fast-path=false)"
            },
            path("same subnet (direct)", &self.direct),
            path("other subnet (VXLAN)", &self.vxlan),
            self.pairs,
            load.describe()
        )
    }
}

fn lab(bin_dir: &Path, fast_path: bool, cc: &Congestion) -> Result<(DownGuard, Lab)> {
    let opts = UpOptions {
        routing: Routing::Direct,
        nodes: 3,
        pods_per_node: 1,
        fast_path,
        subnets: 2,
        encapsulation: Some("cross-subnet".into()),
        ..UpOptions::default()
    };
    fresh_lab(bin_dir, PREFIX, &opts, cc)
}

fn pod_on(lab: &Lab, node: &str) -> Result<Pod> {
    lab.state
        .pods_on(node)
        .first()
        .map(|p| (*p).clone())
        .ok_or_else(|| LabError::Invalid(format!("no pod on {node}")))
}

/// `pairs` back-to-back pod and node runs between k8s-master and `to`
/// (which goes first alternates).
pub(crate) fn path(lab: &Lab, to: &str, load: &Load, pairs: usize) -> Result<PathFigures> {
    let (from_pod, to_pod) = (pod_on(lab, "k8s-master")?, pod_on(lab, to)?);
    let (from_node, to_node) = (lab.node("k8s-master")?, lab.node(to)?);
    let pod = || iperf(&to_pod.netns, &from_pod.netns, &to_pod.ips[0], load);
    let node = || iperf(&to_node.netns, &from_node.netns, &to_node.ip, load);
    let (mut nodes, mut pods, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs.max(1) {
        let (n, p) = if i % 2 == 0 {
            let n = node()?;
            (n, pod()?)
        } else {
            let p = pod()?;
            (node()?, p)
        };
        nodes.push(n);
        pods.push(p);
        ratios.push(p / n);
    }
    Ok(PathFigures {
        node_bps: median(nodes),
        pod_bps: median(pods),
        ratio: median(ratios),
    })
}

/// Both paths of one lab.
pub fn measure(lab: &Lab, load: &Load, pairs: usize) -> Result<TunnelFigures> {
    Ok(TunnelFigures {
        fast_path: lab.state.fast_path,
        direct: path(lab, "k8s-worker-2", load, pairs)?,
        vxlan: path(lab, "k8s-worker-1", load, pairs)?,
        pairs: pairs.max(1),
    })
}

/// Both labs, fast path first; `report` gets each line as it comes.
pub fn run(
    bin_dir: &Path,
    load: &Load,
    pairs: usize,
    cc: &Congestion,
    report: &mut dyn FnMut(&str),
) -> Result<Vec<TunnelFigures>> {
    crate::bench::fast_path_on_then_off(
        |fast| lab(bin_dir, fast, cc),
        |lab| measure(lab, load, pairs),
        |f| f.line(load),
        report,
    )
}
