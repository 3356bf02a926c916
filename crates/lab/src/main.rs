//! `ferry-lab`: the command line over the `ferry_lab` library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use ferry_lab::congestion::Congestion;
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
        /// Node segments behind the router: 1, or 2 (odd nodes on
        /// 172.16.98.0/24; the router routes node addresses only).
        #[arg(long, default_value_t = 1)]
        subnets: usize,
        /// ferryd's --encapsulation: never, cross-subnet or always
        /// (default: ferryd's own, cross-subnet with direct routing).
        #[arg(long, value_parser = ["never", "cross-subnet", "always"])]
        encapsulation: Option<String>,
        /// ferryd's --encryption: none or wireguard (here the userspace
        /// device, ferry-wg, which must be built beside ferryd).
        #[arg(long, value_parser = ["none", "wireguard"])]
        encryption: Option<String>,
        /// Run ferryd with `--fast-path=false` (pod traffic through the IP
        /// stack only).
        #[arg(long)]
        no_fast_path: bool,
        /// A real Kubernetes (v1.20.2, scripts/kubernetes.sh) instead of
        /// the test API server: control plane in the router, containerd +
        /// kubelet + kube-proxy per node, ferry installed with `kubectl
        /// apply`, toolbox pods spread over the nodes.
        #[arg(long)]
        kubernetes: bool,
        /// With --kubernetes: the manifest to apply (default: deploy/'s
        /// file for the routing mode).
        #[arg(long, requires = "kubernetes")]
        manifest: Option<PathBuf>,
        /// With --kubernetes: where the statically linked ferryd, ferry
        /// and ferry-ipam for the image are (default:
        /// target/x86_64-unknown-linux-gnu/release).
        #[arg(long, requires = "kubernetes", env = "FERRY_LAB_IMAGE_BIN_DIR")]
        image_bin_dir: Option<PathBuf>,
    },
    /// On a --kubernetes lab: pod startup (create → Ready) of PODS pods
    /// spread over the nodes, ferry against ptp + host-local under the
    /// same kubelets, rounds alternating; medians, p99 and ratios.
    PodStartup {
        #[arg(long, default_value_t = 60)]
        pods: usize,
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
    /// Print the path of the admin kubeconfig of a --kubernetes lab
    /// (`KUBECONFIG=$(ferry-lab kubeconfig) kubectl get nodes`).
    Kubeconfig,
    /// (internal) the host's forwarder to a --kubernetes lab's API server.
    #[command(hide = true)]
    KubeForward {
        netns: PathBuf,
        to: String,
        port_file: PathBuf,
    },
    /// Kubernetes' own e2e tests (e2e.test v1.20.2) against a
    /// --kubernetes lab: JUnit report and log under one directory, ginkgo's
    /// summary printed, non-zero exit on any failure.
    Conformance {
        /// network, netpol (fails until ferry enforces NetworkPolicy), ci
        /// (Granular Checks + Services) or all (network, then netpol).
        #[arg(long, default_value = "network")]
        suite: String,
        /// Only the cases matching this regex (replaces the suite's focus).
        #[arg(long)]
        focus: Option<String>,
        /// Also skip the cases matching this regex.
        #[arg(long)]
        skip: Option<String>,
        /// Results directory (default:
        /// /var/tmp/ferry-conformance/<prefix>/<suite>-<time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run the cases on N ginkgo nodes at once (`ginkgo -nodes=N`);
        /// N > 1 skips the `[Serial]` cases.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
        parallel: u32,
    },
    /// Every pod↔pod, pod↔node and pod→internet (masqueraded) probe.
    Check,
    /// Print the table again.
    Status,
    /// Run a scenario (or `all` that apply to the lab's routing mode).
    Scenario {
        /// node-join, node-leave, pod-churn, agent-restart, frr-restart,
        /// api-outage, or all; on a --kubernetes lab: upgrade,
        /// node-restart, pod-churn, all of those, wireguard-rollout (with
        /// deploy/ferry-wireguard.yaml), or uninstall (ferry's
        /// Uninstall steps; ends the lab's networking).
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
        #[command(flatten)]
        congestion: CongestionArg,
    },
    /// Pod→pod TCP throughput over node→node on the same links, same
    /// subnet (plain route) and other subnet (VXLAN), fast path on and off
    /// (builds and removes its own `--subnets 2` labs, prefix vxb-).
    BenchVxlan {
        /// iperf3 seconds per run.
        #[arg(long, default_value_t = 3)]
        seconds: u32,
        /// Back-to-back same-subnet/other-subnet run pairs.
        #[arg(long, default_value_t = 5)]
        pairs: usize,
        /// iperf3's write size (`-l`, such as 64K or 1M; its default 128K
        /// when not given).
        #[arg(long)]
        write_size: Option<String>,
        #[command(flatten)]
        congestion: CongestionArg,
    },
    /// Pod→pod TCP throughput through WireGuard (`--encryption
    /// wireguard`, the userspace ferry-wg) against node→node on the same
    /// link, fast path on and off (own labs, prefix wgb-).
    BenchWireguard {
        /// iperf3 seconds per run.
        #[arg(long, default_value_t = 3)]
        seconds: u32,
        /// Back-to-back node/pod run pairs.
        #[arg(long, default_value_t = 5)]
        pairs: usize,
        #[command(flatten)]
        congestion: CongestionArg,
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

/// The benches' `--congestion`.
#[derive(clap::Args, Debug)]
struct CongestionArg {
    /// TCP congestion control in every node and pod namespace (the
    /// kernel's default when not given; see `congestion.rs`).
    #[arg(long)]
    congestion: Option<String>,
}

impl CongestionArg {
    /// The named one, or the kernel's default.
    fn select(&self) -> Result<Congestion> {
        Ok(match &self.congestion {
            Some(n) => Congestion::select(n)?,
            None => Congestion::kernel_default()?,
        })
    }
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
            subnets,
            encapsulation,
            encryption,
            no_fast_path,
            kubernetes,
            manifest,
            image_bin_dir,
        } => {
            let kubernetes = kubernetes.then(|| ferry_lab::kube::KubeOptions {
                manifest: manifest.unwrap_or_else(|| ferry_lab::kube::default_manifest(routing)),
                image_bin_dir: image_bin_dir
                    .unwrap_or_else(|| ferry_lab::kube::default_image_bin_dir(&cfg.bin_dir)),
            });
            let opts = UpOptions {
                fast_path: !no_fast_path,
                routing,
                advertise,
                nodes,
                pods_per_node,
                dual_stack,
                kubernetes,
                subnets,
                encapsulation,
                encryption,
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
        Cmd::Check if Lab::load(cfg.clone())?.state.kubernetes => {
            let report = ferry_lab::kube::check(&cfg)?;
            for p in report
                .probes
                .iter()
                .filter(|p| p.kind.starts_with("pod→internet"))
            {
                println!("  {}: {}", p.what, p.detail);
            }
            let summary = report.summary();
            report.into_result()?;
            println!("check: {summary}");
        }
        Cmd::PodStartup { pods, rounds } => {
            if !Lab::load(cfg.clone())?.state.kubernetes {
                bail!("pod-startup needs a lab made with `up --kubernetes`");
            }
            ferry_lab::kube::pod_startup(&cfg, pods, rounds, &mut |l| println!("{l}"))?;
        }
        Cmd::Kubeconfig => {
            let lab = Lab::load(cfg.clone())?;
            if !lab.state.kubernetes {
                bail!(
                    "the lab for prefix {} runs the test API server: {}",
                    cfg.prefix,
                    cfg.kubeconfig().display()
                );
            }
            println!(
                "{}",
                ferry_lab::kube::cluster_paths(&cfg)
                    .admin_kubeconfig()
                    .display()
            );
        }
        Cmd::Conformance {
            suite,
            focus,
            skip,
            out,
            parallel,
        } => {
            let lab = Lab::load(cfg.clone())?;
            if !lab.state.kubernetes {
                bail!("conformance needs a lab made with `up --kubernetes`");
            }
            conformance(&cfg, &suite, focus, skip, out, parallel)?;
        }
        Cmd::KubeForward {
            netns,
            to,
            port_file,
        } => {
            ferry_cluster::cluster::forwarder_main(&netns, &to, &port_file)?;
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
        Cmd::Scenario { name } if Lab::load(cfg.clone())?.state.kubernetes => {
            for l in ferry_lab::kube::scenario(&cfg, &name)? {
                println!("{l}");
            }
        }
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
            congestion,
        } => {
            let cc = congestion.select()?;
            let mut opts = bench::BenchOptions {
                seconds,
                pairs,
                new_pods,
                ..Default::default()
            };
            if !modes.is_empty() {
                opts.modes = modes.iter().map(|m| parse_mode(m)).collect::<Result<_>>()?;
            }
            println!(
                "ferry-lab bench: 3 nodes, 1 pod each, per mode a fresh lab; {}",
                cc.describe()
            );
            bench::run(&cfg.bin_dir, &opts, &cc, &mut |l| println!("{l}"))?;
        }
        Cmd::BenchVxlan {
            seconds,
            pairs,
            write_size,
            congestion,
        } => {
            let load = match write_size {
                Some(w) => bench::Load::with_write_size(seconds, &w)?,
                None => bench::Load::seconds(seconds),
            };
            let cc = congestion.select()?;
            println!("ferry-lab bench-vxlan: 3 nodes on 2 subnets, 1 pod each, a fresh lab per fast-path setting; {}", cc.describe());
            ferry_lab::bench_vxlan::run(&cfg.bin_dir, &load, pairs, &cc, &mut |l| println!("{l}"))?;
        }
        Cmd::BenchWireguard {
            seconds,
            pairs,
            congestion,
        } => {
            let cc = congestion.select()?;
            println!("ferry-lab bench-wireguard: 3 nodes on 2 subnets, 1 pod each, a fresh lab per fast-path setting; {}", cc.describe());
            ferry_lab::bench_wireguard::run(&cfg.bin_dir, seconds, pairs, &cc, &mut |l| {
                println!("{l}")
            })?;
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

/// Runs the suites one after the other; fails if any case failed.
fn conformance(
    cfg: &LabConfig,
    suite: &str,
    focus: Option<String>,
    skip: Option<String>,
    out: Option<PathBuf>,
    parallel: u32,
) -> Result<()> {
    use ferry_cluster::conformance::{self as conf, Suite};
    let suites: Vec<Suite> = match suite {
        "all" => vec![Suite::Network, Suite::Netpol],
        s => vec![s.parse().map_err(anyhow::Error::msg)?],
    };
    let cluster = ferry_cluster::Cluster::load(ferry_lab::kube::cluster_paths(cfg))?;
    let mut failed = vec![];
    for s in suites {
        let opts = conf::Options {
            suite: s,
            focus: focus.clone(),
            skip: skip.clone(),
            out: out.as_ref().map(|o| {
                if suite == "all" {
                    o.join(s.name())
                } else {
                    o.clone()
                }
            }),
            internet: conf::Internet {
                netns: ferry_lab::topo::fixed(&cfg.prefix).internet,
                ip: ferry_lab::topo::INTERNET_HOST_V4.into(),
            },
            parallel,
        };
        let o = conf::run_suite(&cluster, &opts, &mut |l| println!("{l}"))?;
        println!("{}", o.report());
        println!("results: {}", o.dir.display());
        if !o.ok {
            failed.push(s.name());
        }
    }
    if !failed.is_empty() {
        bail!("conformance: failures in {}", failed.join(", "));
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
