//! `bench-vxlan`: what the tunnel costs. In a `--subnets 2` lab with
//! `--encapsulation cross-subnet` (prefix `vxb-`, its own), pod→pod TCP
//! (iperf3) from k8s-master's pod to k8s-worker-2's (same subnet: a plain
//! route) and to k8s-worker-1's (other subnet: VXLAN through the router),
//! back to back, once with the eBPF fast path and once through the IP
//! stack. The router forwards the tunnelled runs, so the ratio includes
//! its hop as well as the encapsulation.

use std::path::Path;

use crate::bench::{fresh_lab, iperf, median};
use crate::error::{LabError, Result};
use crate::lab::{DownGuard, Lab, UpOptions};
use crate::state::Pod;
use crate::topo::Routing;

/// The lab prefix of the bench.
pub const PREFIX: &str = "vxb-";

/// One lab's medians.
#[derive(Debug, Clone)]
pub struct TunnelFigures {
    pub fast_path: bool,
    /// Same subnet, plain route (bits/s, median).
    pub direct_bps: f64,
    /// Other subnet, through ferry.vxlan (bits/s, median).
    pub vxlan_bps: f64,
    /// Median of the back-to-back ratios vxlan / direct.
    pub ratio: f64,
    pub pairs: usize,
}

impl TunnelFigures {
    pub fn line(&self, seconds: u32) -> String {
        format!(
            "{}: pod→pod same subnet (direct) {:.2} Gbit/s, other subnet (VXLAN) {:.2} Gbit/s (medians): ratio {:.3} (median of {} back-to-back pairs of {} s runs)",
            if self.fast_path {
                "with the eBPF fast path"
            } else {
                "through the IP stack (--fast-path=false)"
            },
            self.direct_bps / 1e9,
            self.vxlan_bps / 1e9,
            self.ratio,
            self.pairs,
            seconds
        )
    }
}

fn lab(bin_dir: &Path, fast_path: bool) -> Result<(DownGuard, Lab)> {
    let opts = UpOptions {
        routing: Routing::Direct,
        nodes: 3,
        pods_per_node: 1,
        fast_path,
        subnets: 2,
        encapsulation: Some("cross-subnet".into()),
        ..UpOptions::default()
    };
    fresh_lab(bin_dir, PREFIX, &opts)
}

fn pod_on(lab: &Lab, node: &str) -> Result<Pod> {
    lab.state
        .pods_on(node)
        .first()
        .map(|p| (*p).clone())
        .ok_or_else(|| LabError::Invalid(format!("no pod on {node}")))
}

/// `pairs` back-to-back runs (which goes first alternates).
pub fn measure(lab: &Lab, seconds: u32, pairs: usize) -> Result<TunnelFigures> {
    let from = pod_on(lab, "k8s-master")?;
    let same = pod_on(lab, "k8s-worker-2")?;
    let other = pod_on(lab, "k8s-worker-1")?;
    let run = |to: &Pod| iperf(&to.netns, &from.netns, &to.ips[0], seconds);
    let (mut direct, mut tunnel, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs.max(1) {
        let (d, t) = if i % 2 == 0 {
            let d = run(&same)?;
            (d, run(&other)?)
        } else {
            let t = run(&other)?;
            (run(&same)?, t)
        };
        direct.push(d);
        tunnel.push(t);
        ratios.push(t / d);
    }
    Ok(TunnelFigures {
        fast_path: lab.state.fast_path,
        direct_bps: median(direct),
        vxlan_bps: median(tunnel),
        ratio: median(ratios),
        pairs: pairs.max(1),
    })
}

/// Both labs, fast path first; `report` gets each line as it comes.
pub fn run(
    bin_dir: &Path,
    seconds: u32,
    pairs: usize,
    report: &mut dyn FnMut(&str),
) -> Result<Vec<TunnelFigures>> {
    let mut out = Vec::new();
    for fast in [true, false] {
        let (_guard, lab) = lab(bin_dir, fast)?;
        let f = measure(&lab, seconds, pairs)?;
        report(&f.line(seconds));
        out.push(f);
    }
    Ok(out)
}
