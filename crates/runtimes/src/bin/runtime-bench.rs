//! `runtime-bench`: pod network setup and teardown latency as kubelet sees
//! it, under containerd 1.6 over CRI, ferry against ptp + host-local.
//!
//! Two private containerds run side by side, each in its own node netns,
//! one with the ferry conflist and one with ptp + host-local (both chained
//! with portmap, both with containerd's own loopback call). Rounds
//! alternate which one goes first; each round times RunPodSandbox, then
//! StopPodSandbox and RemovePodSandbox, on both. Printed: the medians, the
//! ferry/ptp ratio of the medians and the median of the per-round
//! differences (ferry - ptp).
//!
//! `cargo run --release -p ferry-runtime-tests --bin runtime-bench -- --rounds 40`

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use ferry_runtimes::{pod_config, Containerd, Cri};
use ferry_testkit::Node;

#[derive(Parser)]
#[command(about = "RunPodSandbox / Stop+Remove latency: ferry vs ptp+host-local under containerd")]
struct Args {
    /// Measured rounds (each: one pod per plugin).
    #[arg(long, default_value_t = 40)]
    rounds: usize,
    /// Unmeasured rounds first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
}

#[derive(Default)]
struct Samples {
    run: Vec<Duration>,
    stop: Vec<Duration>,
    remove: Vec<Duration>,
    teardown: Vec<Duration>,
}

struct Runtime {
    label: &'static str,
    cri: Cri,
    samples: Samples,
    // Dropped after the client, before the node.
    _ctrd: Containerd,
}

impl Runtime {
    fn round(&mut self, n: usize, keep: bool) -> Result<()> {
        let cfg = pod_config(&format!("bench-{}-{n}", self.label));
        let t0 = Instant::now();
        let id = self.cri.run_pod(&cfg).context("RunPodSandbox")?;
        let run = t0.elapsed();
        let t1 = Instant::now();
        self.cri.stop_pod(&id).context("StopPodSandbox")?;
        let stop = t1.elapsed();
        let t2 = Instant::now();
        self.cri.remove_pod(&id).context("RemovePodSandbox")?;
        let remove = t2.elapsed();
        if keep {
            self.samples.run.push(run);
            self.samples.stop.push(stop);
            self.samples.remove.push(remove);
            self.samples.teardown.push(stop + remove);
        }
        Ok(())
    }
}

fn median_of(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    match ms.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => ms[n / 2],
        n => (ms[n / 2 - 1] + ms[n / 2]) / 2.0,
    }
}

fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &[Duration]) -> f64 {
    median_of(v.iter().map(ms).collect())
}

/// Median of the per-round differences a - b (ms): both runs of a round
/// share the machine's load of that moment, so on a busy machine this
/// drifts less than the difference of the medians.
fn median_diff(a: &[Duration], b: &[Duration]) -> f64 {
    median_of(a.iter().zip(b).map(|(x, y)| ms(x) - ms(y)).collect())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let ferry_node = Node::new("rbf");
    let ptp_node = Node::new("rbp");
    let ferry_ctrd = Containerd::with_ferry(&ferry_node.path, &ferry_node.data_dir, false)
        .context("starting containerd with ferry")?;
    let ptp_ctrd = Containerd::with_ptp(&ptp_node.path, &ptp_node.data_dir)
        .context("starting containerd with ptp")?;
    let (name, version) = ferry_ctrd.cri()?.version()?;
    let mut rts = [
        Runtime {
            label: "ferry",
            cri: ferry_ctrd.cri()?,
            samples: Samples::default(),
            _ctrd: ferry_ctrd,
        },
        Runtime {
            label: "ptp",
            cri: ptp_ctrd.cri()?,
            samples: Samples::default(),
            _ctrd: ptp_ctrd,
        },
    ];
    println!(
        "runtime-bench: {name} {version}, {} rounds (+{} warm-up), alternating ferry / ptp+host-local",
        args.rounds, args.warmup
    );
    for n in 0..args.warmup + args.rounds {
        let keep = n >= args.warmup;
        let order = if n % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            rts[i].round(n, keep).with_context(|| rts[i].label)?;
        }
    }
    let [f, p] = [&rts[0].samples, &rts[1].samples];
    println!(
        "{:<28}{:>10}{:>10}{:>11}{:>14}",
        "median (ms)", "ferry", "ptp", "ferry/ptp", "paired diff"
    );
    let rows: [(&str, &Vec<Duration>, &Vec<Duration>); 4] = [
        ("RunPodSandbox", &f.run, &p.run),
        ("StopPodSandbox+Remove", &f.teardown, &p.teardown),
        ("  StopPodSandbox", &f.stop, &p.stop),
        ("  RemovePodSandbox", &f.remove, &p.remove),
    ];
    for (label, a, b) in rows {
        let (ma, mb) = (median(a), median(b));
        let diff = median_diff(a, b);
        println!(
            "{label:<28}{ma:>10.1}{mb:>10.1}{:>11.2}{diff:>+14.1}",
            ma / mb
        );
    }
    let ratio = median(&f.run) / median(&p.run);
    println!(
        "target ferry <= 0.80x ptp for RunPodSandbox: {} ({ratio:.2}x)",
        if ratio <= 0.8 { "met" } else { "NOT met" }
    );
    Ok(())
}
