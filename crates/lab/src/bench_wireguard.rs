//! `bench-wireguard`: what encryption costs. In a `--subnets 2` lab with
//! `--encryption wireguard` (prefix `wgb-`, its own; here the userspace
//! device, `ferry-wg`), pod→pod TCP (iperf3) from k8s-master's pod to
//! k8s-worker-2's (same subnet) through WireGuard, against node→node TCP
//! between the same two nodes on the same link (untouched by WireGuard),
//! back to back, once with the eBPF fast path and once through the IP
//! stack. Two cores do it all: both nodes' encryption, both iperf3 ends.

use std::path::Path;

use crate::bench::fresh_lab;
use crate::congestion::Congestion;
use crate::error::Result;
use crate::lab::{DownGuard, Lab, UpOptions};
use crate::topo::Routing;

/// The lab prefix of the bench.
pub const PREFIX: &str = "wgb-";

/// One lab's medians.
#[derive(Debug, Clone)]
pub struct WireGuardFigures {
    pub fast_path: bool,
    /// node→node on the same link (bits/s, median).
    pub node_bps: f64,
    /// pod→pod through ferry.wg (bits/s, median).
    pub wireguard_bps: f64,
    /// Median of the back-to-back ratios wireguard / node.
    pub ratio: f64,
    pub pairs: usize,
}

impl WireGuardFigures {
    pub fn line(&self, seconds: u32) -> String {
        format!(
            "{}: node→node {:.2} Gbit/s, pod→pod through WireGuard (ferry-wg) {:.3} Gbit/s (medians): ratio {:.3} (median of {} back-to-back pairs of {} s runs)",
            if self.fast_path {
                "with the eBPF fast path"
            } else {
                "through the IP stack (--fast-path=false)"
            },
            self.node_bps / 1e9,
            self.wireguard_bps / 1e9,
            self.ratio,
            self.pairs,
            seconds
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
        encryption: Some("wireguard".into()),
        ..UpOptions::default()
    };
    fresh_lab(bin_dir, PREFIX, &opts, cc)
}

/// `pairs` back-to-back pod and node runs to k8s-worker-2 (the same pairs
/// as [`crate::bench_vxlan`]'s).
pub fn measure(lab: &Lab, seconds: u32, pairs: usize) -> Result<WireGuardFigures> {
    let load = crate::bench::Load::seconds(seconds);
    let f = crate::bench_vxlan::path(lab, "k8s-worker-2", &load, pairs)?;
    Ok(WireGuardFigures {
        fast_path: lab.state.fast_path,
        node_bps: f.node_bps,
        wireguard_bps: f.pod_bps,
        ratio: f.ratio,
        pairs: pairs.max(1),
    })
}

/// Both labs, fast path first; `report` gets each line as it comes.
pub fn run(
    bin_dir: &Path,
    seconds: u32,
    pairs: usize,
    cc: &Congestion,
    report: &mut dyn FnMut(&str),
) -> Result<Vec<WireGuardFigures>> {
    crate::bench::fast_path_on_then_off(
        |fast| lab(bin_dir, fast, cc),
        |lab| measure(lab, seconds, pairs),
        |f| f.line(seconds),
        report,
    )
}
