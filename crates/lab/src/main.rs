//! `ferry-lab`: the command line over the `ferry_lab` library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use ferry_lab::{
    bench, check, down, scenario, Advertise, Lab, LabConfig, LabError, Routing, Scenario, UpOptions,
};

/// The seed's lab in network namespaces: a ferry cluster in one command.
#[derive(Parser)]
#[command(name = "ferry-lab", version, about, long_about = None)]
struct Cli {
    /// Prefix of every netns, FRR pathspace and state dir of the lab.
    #[arg(long, global = true, env = "FERRY_LAB_PREFIX", default_value = ferry_lab::topo::DEFAULT_PREFIX)]
    prefix: String,
    /// Lab state dir (default: /run/ferry-lab/<prefix>).
    #[arg(long, global = true, env = "FERRY_LAB_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Where ferryd, ferry-apiserver, ferry and ferry-ipam are (default:
    /// next to this executable).
    #[arg(long, global = true, env = "FERRY_LAB_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// No progress lines.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the lab and print its table.
    Up {
        /// How pod CIDRs reach other nodes: direct, ospf or bgp.
        #[arg(long, default_value = "ospf")]
        routing: Routing,
        /// What ospf/bgp advertise: aggregate (podCIDRs) or pods (/32s).
        #[arg(long, default_value = "aggregate")]
        advertise: Advertise,
        /// Nodes: k8s-master 172.16.97.75, k8s-worker-N 172.16.97.75+N.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Pods made on every node (pod-1, pod-2, ... round-robin).
        #[arg(long, default_value_t = 1)]
        pods_per_node: usize,
        /// IPv6 node addresses and podCIDRs too.
        #[arg(long)]
        dual_stack: bool,
        /// Run ferryd with `--fast-path=false` (pod traffic through the IP
        /// stack only).
        #[arg(long)]
        no_fast_path: bool,
    },
    /// Every pod↔pod, pod↔node and pod→internet (masqueraded) probe.
    Check,
    /// Print the table again.
    Status,
    /// Run a scenario (or `all` that apply to the lab's routing mode).
    Scenario {
        /// node-join, node-leave, pod-churn, agent-restart, frr-restart,
        /// api-outage, or all.
        name: String,
    },
    /// Throughput ratio, convergence and new-pod reachability per mode
    /// (builds and removes its own labs, prefix flb-).
    Bench {
        /// iperf3 seconds per run.
        #[arg(long, default_value_t = 3)]
        seconds: u32,
        /// Back-to-back pod/node iperf3 run pairs.
        #[arg(long, default_value_t = 9)]
        pairs: usize,
        /// New pods timed per mode.
        #[arg(long, default_value_t = 5)]
        new_pods: usize,
        /// Only these modes: direct, ospf, ospf/pods, bgp, bgp/pods.
        #[arg(long, value_delimiter = ',')]
        modes: Vec<String>,
    },
    /// Remove everything the lab made (also after a crash).
    Down,
    /// List anything of the lab still there; exit 1 if something is.
    Leftovers,
}

fn config(cli: &Cli) -> LabConfig {
    let mut cfg = LabConfig::new(&cli.prefix);
    if let Some(d) = &cli.state_dir {
        cfg.state_dir = d.clone();
    }
    if let Some(d) = &cli.bin_dir {
        cfg.bin_dir = d.clone();
    }
    cfg.quiet = cli.quiet;
    cfg
}

fn parse_mode(s: &str) -> Result<(Routing, Advertise)> {
    let (r, a) = s.split_once('/').unwrap_or((s, "aggregate"));
    let routing: Routing = r.parse().map_err(anyhow::Error::msg)?;
    let advertise: Advertise = a.parse().map_err(anyhow::Error::msg)?;
    Ok((routing, advertise))
}

fn run(cli: Cli) -> Result<()> {
    let cfg = config(&cli);
    match cli.cmd {
        Cmd::Up {
            routing,
            advertise,
            nodes,
            pods_per_node,
            dual_stack,
            no_fast_path,
        } => {
            let opts = UpOptions {
                fast_path: !no_fast_path,
                routing,
                advertise,
                nodes,
                pods_per_node,
                dual_stack,
            };
            let lab = match Lab::up(cfg, &opts) {
                Ok(lab) => lab,
                Err(e @ (LabError::AlreadyUp { .. } | LabError::Invalid(_))) => {
                    return Err(e.into())
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context("up failed; what it made stays for `ferry-lab down`"))
                }
            };
            print!("{}", lab.table());
        }
        Cmd::Check => {
            let lab = Lab::load(cfg)?;
            let report = lab.check()?;
            for p in report
                .probes
                .iter()
                .filter(|p| matches!(p.kind, check::Kind::PodToInternet | check::Kind::FastPath))
            {
                println!("  {}", p.what);
            }
            println!("check: {}", report.summary());
        }
        Cmd::Status => print!("{}", Lab::load(cfg)?.table()),
        Cmd::Scenario { name } => {
            let mut lab = Lab::load(cfg)?;
            let list: Vec<Scenario> = if name == "all" {
                Scenario::ALL.to_vec()
            } else {
                vec![name.parse().map_err(anyhow::Error::msg)?]
            };
            for s in list {
                for l in scenario::run(&mut lab, s)?.lines {
                    println!("{l}");
                }
            }
        }
        Cmd::Bench {
            seconds,
            pairs,
            new_pods,
            modes,
        } => {
            let mut opts = bench::BenchOptions {
                seconds,
                pairs,
                new_pods,
                ..Default::default()
            };
            if !modes.is_empty() {
                opts.modes = modes.iter().map(|m| parse_mode(m)).collect::<Result<_>>()?;
            }
            println!("ferry-lab bench: 3 nodes, 1 pod each, per mode a fresh lab");
            bench::run(&cfg.bin_dir, &opts, &mut |l| println!("{l}"))?;
        }
        Cmd::Down => {
            let r = down::down(&cfg)?;
            if r.nothing() {
                println!("nothing to remove for prefix {}", cfg.prefix);
            } else {
                println!(
                    "removed {} processes, {} namespaces, {} FRR pathspaces{}",
                    r.processes,
                    r.netns,
                    r.frr_pathspaces,
                    if r.state_dir { ", the state dir" } else { "" }
                );
            }
        }
        Cmd::Leftovers => {
            let left = down::leftovers(&cfg);
            if !left.is_empty() {
                for l in &left {
                    println!("{l}");
                }
                bail!("{} leftovers of lab {}", left.len(), cfg.prefix);
            }
            println!("nothing left of lab {}", cfg.prefix);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
