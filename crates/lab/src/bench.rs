//! `bench`: figures for the README, each from a fresh lab per routing
//! mode (prefix `flb-`, so a lab that is up is left alone):
//! - pod↔pod TCP throughput across nodes (iperf3) divided by node↔node
//!   throughput over the same links;
//! - convergence after `up`: ferryd started → every pod reaches every
//!   other node's pods;
//! - a new pod: CNI ADD began → reachable from a pod on every other node.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::congestion::Congestion;
use crate::error::{LabError, Result};
use crate::lab::{DownGuard, Lab, UpOptions, STEP_LIMIT};
use crate::sh;
use crate::state::{LabConfig, Pod};
use crate::topo::{Advertise, Routing};

/// The throughput ratios, with the fast path and through the IP stack,
/// IPv4 and IPv6.
#[derive(Debug, Clone)]
pub struct Throughputs {
    pub fast_path: Throughput,
    pub stack: Throughput,
    pub fast_path_v6: Throughput,
    pub stack_v6: Throughput,
}

/// One lab configuration's figures.
#[derive(Debug, Clone)]
pub struct ModeFigures {
    pub routing: Routing,
    pub advertise: Advertise,
    pub converged: Duration,
    /// The new pod's reachability (ADD began → every node reaches it), one
    /// sample per repetition.
    pub new_pod: Vec<Duration>,
    /// The ADD (the conflist's plugins) alone, per repetition.
    pub add: Vec<Duration>,
}

#[derive(Debug, Clone)]
pub struct Throughput {
    /// Medians.
    pub pod_bps: f64,
    pub node_bps: f64,
    /// The median of the ratios of runs made back to back (a busy machine
    /// slows both runs of a pair alike).
    pub ratio: f64,
    pub pairs: usize,
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub modes: Vec<(Routing, Advertise)>,
    /// iperf3 seconds per run.
    pub seconds: u32,
    /// Pod/node run pairs.
    pub pairs: usize,
    /// New pods per mode.
    pub new_pods: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            modes: vec![
                (Routing::Direct, Advertise::Aggregate),
                (Routing::Ospf, Advertise::Aggregate),
                (Routing::Ospf, Advertise::Pods),
                (Routing::Bgp, Advertise::Aggregate),
                (Routing::Bgp, Advertise::Pods),
            ],
            seconds: 3,
            pairs: 9,
            new_pods: 5,
        }
    }
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn spawn_in(netns: &str, program: &str, args: &[&str]) -> Result<Child> {
    let ns = sh::open_ns(netns)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    ns.run(move || cmd.spawn())
        .map_err(|e| LabError::netns(netns, e))?
        .map_err(|e| LabError::Command {
            command: format!("{program} in {netns}"),
            output: e.to_string(),
        })
}

/// What an iperf3 client sends: `seconds` of writes of `write_size`
/// bytes each (iperf3's `-l`, such as `64K`; its default, 128 KiB, when
/// `None`). The write size matters here: TCP cuts each write into
/// packets of whole segments and holds back a last partial one, so
/// which sizes line up with the MSS (1448 on the nodes, 1398 in pods
/// under VXLAN) changes how many small packets each side sends.
#[derive(Debug, Clone)]
pub struct Load {
    pub seconds: u32,
    pub write_size: Option<String>,
}

impl Load {
    /// iperf3's default writes.
    pub fn seconds(seconds: u32) -> Self {
        Load {
            seconds,
            write_size: None,
        }
    }

    /// `seconds` of writes of `size`: digits, then `K` or `M` (KiB, MiB)
    /// or nothing (bytes); anything else is refused.
    pub fn with_write_size(seconds: u32, size: &str) -> Result<Self> {
        let digits = size.strip_suffix(['K', 'M']).unwrap_or(size);
        let ok = digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u32>().is_ok_and(|n| n > 0);
        if !ok {
            return Err(LabError::Invalid(format!(
                "write size {size:?}: digits then K or M, such as 64K"
            )));
        }
        Ok(Load {
            seconds,
            write_size: Some(size.to_string()),
        })
    }

    /// "3 s runs" or "3 s runs of 64K writes".
    pub fn describe(&self) -> String {
        match &self.write_size {
            None => format!("{} s runs", self.seconds),
            Some(w) => format!("{} s runs of {w} writes", self.seconds),
        }
    }
}

/// One iperf3 run: server in `server_ns` on `ip`, client in `client_ns`;
/// received bits per second.
pub fn iperf(server_ns: &str, client_ns: &str, ip: &str, load: &Load) -> Result<f64> {
    let mut server = spawn_in(server_ns, "iperf3", &["-s", "-B", ip, "-p", "5201"])?;
    let secs = load.seconds.to_string();
    let mut args = vec!["-c", ip, "-p", "5201", "-t", &secs, "-O", "1", "-J"];
    if let Some(w) = &load.write_size {
        args.extend(["-l", w.as_str()]);
    }
    let mut result = Err(LabError::Invalid("iperf3 never ran".into()));
    // The server may need a moment to listen: the client then fails at
    // once ("unable to connect"), and is run again.
    for _ in 0..50 {
        result = sh::ns_output(client_ns, "iperf3", &args).and_then(|out| {
            let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| LabError::Command {
                command: format!("iperf3 -c {ip} (in {client_ns})"),
                output: format!("{e}: {}", String::from_utf8_lossy(&out.stderr)),
            })?;
            v["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .filter(|b| *b > 0.0)
                .ok_or_else(|| LabError::Command {
                    command: format!("iperf3 -c {ip} (in {client_ns})"),
                    output: v["error"].as_str().unwrap_or("no result").to_string(),
                })
        });
        match &result {
            Err(LabError::Command { output, .. }) if output.contains("unable to connect") => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => break,
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// Pod on node 1 → pod on node 2, and node 1 → node 2, back to back
/// (which goes first alternates), `pairs` times.
pub fn throughput(lab: &Lab, seconds: u32, pairs: usize, v6: bool) -> Result<Throughput> {
    let nodes = lab.plans();
    if nodes.len() < 2 {
        return Err(LabError::Invalid("throughput needs two nodes".into()));
    }
    let pod_on = |n: &str| -> Result<Pod> {
        lab.state
            .pods_on(n)
            .first()
            .map(|p| (*p).clone())
            .ok_or_else(|| LabError::Invalid(format!("no pod on {n}")))
    };
    let (a, b) = (pod_on(&nodes[0].name)?, pod_on(&nodes[1].name)?);
    let b_ip = b
        .ips
        .iter()
        .find(|ip| ip.contains(':') == v6)
        .ok_or_else(|| LabError::Invalid(format!("{} has no address of that family", b.name)))?
        .clone();
    let host_ip = if v6 {
        nodes[1]
            .ip6
            .clone()
            .ok_or_else(|| LabError::Invalid("the lab is not dual-stack".into()))?
    } else {
        nodes[1].ip.clone()
    };
    let load = Load::seconds(seconds);
    let pod = || iperf(&b.netns, &a.netns, &b_ip, &load);
    let host = || iperf(&nodes[1].netns, &nodes[0].netns, &host_ip, &load);
    let (mut pods, mut hosts, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs.max(1) {
        let (p, h) = if i % 2 == 0 {
            let p = pod()?;
            (p, host()?)
        } else {
            let h = host()?;
            (pod()?, h)
        };
        pods.push(p);
        hosts.push(h);
        ratios.push(p / h);
    }
    Ok(Throughput {
        pod_bps: median(pods),
        node_bps: median(hosts),
        ratio: median(ratios),
        pairs: pairs.max(1),
    })
}

/// New pods on the first node, one at a time: ADD began → every other
/// node's first pod gets an echo reply.
pub fn new_pod_times(lab: &mut Lab, n: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let first = lab.plans()[0].name.clone();
    let observers: Vec<Pod> = lab
        .state
        .nodes
        .iter()
        .skip(1)
        .filter_map(|n| {
            lab.state
                .pods_on(&n.plan.name)
                .first()
                .map(|p| (*p).clone())
        })
        .collect();
    let (mut out, mut adds) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let pod = lab.add_pod(&first, None, None)?;
        adds.push(t.elapsed());
        let ip = pod.ip_v4().unwrap_or_default().to_string();
        let secs = STEP_LIMIT.as_secs() as u32;
        let ok = crate::check::parallel(&observers, 8, |o| sh::ping_until(&o.netns, &ip, secs));
        if ok.iter().any(|r| !r) {
            return Err(LabError::Timeout {
                what: format!("new pod {ip} reachable from every node"),
                waited: STEP_LIMIT,
                detail: String::new(),
            });
        }
        out.push(t.elapsed());
        lab.delete_pod(&pod.name)?;
    }
    Ok((out, adds))
}

/// `measure` in a fresh lab with the fast path on, then in one with it
/// off (`lab(fast_path)` makes each); `report` gets each line as it comes.
pub(crate) fn fast_path_on_then_off<F>(
    mut lab: impl FnMut(bool) -> Result<(DownGuard, Lab)>,
    measure: impl Fn(&Lab) -> Result<F>,
    line: impl Fn(&F) -> String,
    report: &mut dyn FnMut(&str),
) -> Result<Vec<F>> {
    let mut out = Vec::new();
    for fast in [true, false] {
        let (_guard, lab) = lab(fast)?;
        let f = measure(&lab)?;
        report(&line(&f));
        out.push(f);
    }
    Ok(out)
}

/// A fresh lab with `prefix` (an earlier one with it removed first), quiet,
/// its namespaces under congestion control `cc`, removed when the guard
/// drops.
pub(crate) fn fresh_lab(
    bin_dir: &Path,
    prefix: &str,
    opts: &UpOptions,
    cc: &Congestion,
) -> Result<(DownGuard, Lab)> {
    let mut cfg = LabConfig::new(prefix);
    cfg.bin_dir = bin_dir.to_path_buf();
    cfg.quiet = true;
    let guard = DownGuard(cfg.clone());
    crate::down::down(&cfg)?;
    let lab = Lab::up(cfg, opts)?;
    cc.apply(&lab)?;
    Ok((guard, lab))
}

fn bench_lab(
    bin_dir: &Path,
    routing: Routing,
    advertise: Advertise,
    fast_path: bool,
    dual_stack: bool,
    cc: &Congestion,
) -> Result<(DownGuard, Lab)> {
    let opts = UpOptions {
        routing,
        advertise,
        nodes: 3,
        pods_per_node: 1,
        dual_stack,
        fast_path,
        ..UpOptions::default()
    };
    fresh_lab(bin_dir, "flb-", &opts, cc)
}

fn report_throughput(t: &Throughput, how: &str, seconds: u32, report: &mut dyn FnMut(&str)) {
    report(&format!(
        "throughput {how}: pod→pod across nodes {:.2} Gbit/s, node→node {:.2} Gbit/s (medians): ratio {:.3} (median of {} back-to-back pairs of {} s runs)",
        t.pod_bps / 1e9,
        t.node_bps / 1e9,
        t.ratio,
        t.pairs,
        seconds
    ));
}

pub fn run(
    bin_dir: &Path,
    opts: &BenchOptions,
    cc: &Congestion,
    report: &mut dyn FnMut(&str),
) -> Result<(Option<Throughputs>, Vec<ModeFigures>)> {
    // Throughput in the first mode's lab, once with the fast path and once
    // through the IP stack, each lab fresh.
    // Throughput in the first mode, in a dual-stack lab with the fast path
    // and in one without (IP stack only), each fresh; IPv4 then IPv6.
    let tp = match opts.modes.first() {
        None => None,
        Some(&(routing, advertise)) => {
            let mut measure = |fast: bool| -> Result<(Throughput, Throughput)> {
                let (_guard, lab) = bench_lab(bin_dir, routing, advertise, fast, true, cc)?;
                let how = if fast {
                    "with the eBPF fast path"
                } else {
                    "through the IP stack (--fast-path=false)"
                };
                let v4 = throughput(&lab, opts.seconds, opts.pairs, false)?;
                report_throughput(&v4, &format!("IPv4 {how}"), opts.seconds, report);
                let v6 = throughput(&lab, opts.seconds, opts.pairs, true)?;
                report_throughput(&v6, &format!("IPv6 {how}"), opts.seconds, report);
                Ok((v4, v6))
            };
            let (fast_path, fast_path_v6) = measure(true)?;
            let (stack, stack_v6) = measure(false)?;
            Some(Throughputs {
                fast_path,
                stack,
                fast_path_v6,
                stack_v6,
            })
        }
    };
    let mut figures = Vec::new();
    for (routing, advertise) in &opts.modes {
        let (_guard, mut lab) = bench_lab(bin_dir, *routing, *advertise, true, false, cc)?;
        let converged = Duration::from_secs_f64(lab.state.converged_s.unwrap_or_default());
        let (new_pod, add) = new_pod_times(&mut lab, opts.new_pods)?;
        let f = ModeFigures {
            routing: *routing,
            advertise: *advertise,
            converged,
            new_pod,
            add,
        };
        report(&format_mode(&f));
        figures.push(f);
    }
    Ok((tp, figures))
}

pub fn format_mode(f: &ModeFigures) -> String {
    let ms: Vec<f64> = f.new_pod.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let add: Vec<f64> = f.add.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let max = ms.iter().copied().fold(0.0, f64::max);
    let mode = if f.routing.uses_frr() {
        format!("{}/{}", f.routing, f.advertise)
    } else {
        f.routing.to_string()
    };
    format!(
        "{mode:<14} converged {:5.2} s after ferryd start; new pod reachable from every node {:.0} ms after ADD began (median; max {:.0}; ADD itself {:.0} ms; {} pods)",
        f.converged.as_secs_f64(),
        median(ms.clone()),
        max,
        median(add),
        ms.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_sizes_are_digits_and_one_unit() {
        for ok in ["64K", "1M", "131072", "16K"] {
            let l = Load::with_write_size(3, ok).unwrap();
            assert_eq!(l.describe(), format!("3 s runs of {ok} writes"));
        }
        for bad in ["", "K", "64KK", "-1K", "0", "64G", "1.5M", "64k "] {
            assert!(Load::with_write_size(3, bad).is_err(), "{bad:?}");
        }
        assert_eq!(Load::seconds(3).describe(), "3 s runs");
    }

    #[test]
    fn the_median_is_the_middle_value() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![]), 0.0);
    }
}
