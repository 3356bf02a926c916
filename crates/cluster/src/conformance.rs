//! `ferry-lab conformance`: Kubernetes' own e2e tests (e2e.test v1.20.2,
//! built by `scripts/kubernetes.sh e2e`) against the lab's cluster, with
//! nothing of ours in between.
//!
//! - **Where**: e2e.test runs in the router's netns with the direct
//!   kubeconfig, beside the API server: the tests reach NodePorts and node
//!   IPs from where they run, as from a machine on the nodes' network.
//! - **Before**: the e2e images ([`crate::e2e_images`]) are imported into
//!   every node's containerd, and the router gets a route to each node's
//!   podCIDR via that node (the API server, in the router, proxies to pods
//!   and Services as a control-plane node of a real cluster can).
//! - **The internet**: e2e's `[sig-network] Networking` cases (all the
//!   Granular Checks: Services) first `GET http://google.com` from
//!   e2e.test and want a 200: this machine is offline, so the lab's
//!   internet host serves that (busybox httpd on :80) and e2e.test runs in
//!   a mount namespace of its own whose `/etc/hosts` names it google.com.
//!   Nothing else changes: pods and nodes never see that name.
//! - **Suites**: [`Suite`]; the cases that cannot pass here for a reason
//!   outside ferry are skipped by name from `conformance/skips.txt`, each
//!   with its reason, besides the tags every suite skips.
//! - **Parallel**: `--parallel N` runs the cases on N ginkgo nodes at
//!   once, skipping the `[Serial]` ones ([`crate::ginkgo`]).
//! - **After**: the JUnit reports (one per node), the full log and
//!   `results.txt` (summary, slowest cases, failures) in one directory,
//!   outside the lab's root so `down` keeps them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::e2e_env;
pub use crate::e2e_env::Internet;
use crate::e2e_images;
use crate::error::{ClusterError, Result};
use crate::ginkgo::{self, Follower};
use crate::junit::{self, Case, Status, Summary};
use crate::node::CONTAINERD_SOCK;
use crate::procs::Place;
use crate::util::{mkdir, run, write_file};

/// The skip file, one `CASE NAME | REASON` a line.
pub const SKIPS: &str = include_str!("../conformance/skips.txt");

/// Where results go by default: `<RESULTS_ROOT>/<prefix>/<suite>-<time>/`.
pub const RESULTS_ROOT: &str = "/var/tmp/ferry-conformance";

/// Tags no suite runs: cloud providers, disruptive or slow cases,
/// features this cluster does not have.
const TAG_SKIP: &str =
    r"\[Disruptive\]|\[Flaky\]|\[Slow\]|\[Provider:|\[DisabledForLargeClusters\]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// Every `[sig-network]` `[Conformance]` case, Networking (Granular
    /// Checks, kube-proxy URLs), Services, Proxy, EndpointSlice,
    /// Conntrack, KubeProxy, and the hostPort case of SchedulerPredicates
    /// that sends traffic (its twin, "there exists conflict", only checks
    /// that the scheduler keeps a pod Pending, for 5 minutes: not run).
    Network,
    /// `[sig-network] NetworkPolicy`: the NetworkPolicy cases of
    /// network_policy.go (fail until ferry enforces NetworkPolicy, issue 14).
    Netpol,
    /// The CI subset of `network`: Granular Checks and Services.
    Ci,
}

impl std::str::FromStr for Suite {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "network" => Ok(Suite::Network),
            "netpol" => Ok(Suite::Netpol),
            "ci" => Ok(Suite::Ci),
            _ => Err(format!("unknown suite {s:?} (network, netpol, ci)")),
        }
    }
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Network => "network",
            Suite::Netpol => "netpol",
            Suite::Ci => "ci",
        }
    }

    /// ginkgo's focus.
    pub fn focus(self) -> &'static str {
        match self {
            Suite::Network => concat!(
                r"\[sig-network\].*\[Conformance\]",
                r"|\[sig-network\] Networking ",
                r"|\[sig-network\] Services ",
                r"|\[sig-network\] Proxy ",
                r"|\[sig-network\] EndpointSlice",
                r"|\[sig-network\] Conntrack ",
                r"|\[sig-network\] KubeProxy ",
                r"|\[sig-scheduling\] SchedulerPredicates \[Serial\] validates that there is no conflict between pods with same hostPort",
            ),
            Suite::Netpol => r"\[sig-network\] NetworkPolicy",
            Suite::Ci => r"\[sig-network\] Networking Granular Checks|\[sig-network\] Services ",
        }
    }

    /// ginkgo's skip by tag (the skip file comes on top).
    pub fn tag_skip(self) -> String {
        match self {
            // Its cases are all [Feature:NetworkPolicy]; SCTP ones too.
            Suite::Netpol => TAG_SKIP.to_string(),
            _ => format!(r"\[Feature:|{TAG_SKIP}"),
        }
    }

    /// What to say before the run.
    pub fn note(self) -> Option<&'static str> {
        (self == Suite::Netpol).then_some(
            "netpol: ferryd enforces NetworkPolicy, so every case should pass; \
             the SCTP cases are [Disruptive] and skipped (this kernel has no SCTP)",
        )
    }
}

/// One line of the skip file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub name: String,
    pub reason: String,
}

/// The skip file's entries; a line without ` | reason` is an error.
pub fn parse_skips(text: &str) -> Result<Vec<Skip>> {
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_end();
        if l.trim().is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((name, reason)) = l.rsplit_once(" | ") else {
            return Err(ClusterError::Invalid(format!(
                "skips.txt line {}: no ` | reason`: {l}",
                i + 1
            )));
        };
        if reason.trim().is_empty() || name.trim().is_empty() {
            return Err(ClusterError::Invalid(format!(
                "skips.txt line {}: empty name or reason",
                i + 1
            )));
        }
        out.push(Skip {
            name: name.to_string(),
            reason: reason.trim().to_string(),
        });
    }
    Ok(out)
}

/// `s` as a Go regexp matching it literally.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// ginkgo's skip: the suite's tags, `[Serial]` in a parallel run, every
/// skip-file case, `extra`.
pub fn skip_regex(suite: Suite, skips: &[Skip], extra: Option<&str>, parallel: bool) -> String {
    let mut parts = vec![suite.tag_skip()];
    if parallel {
        parts.push(ginkgo::SERIAL.into());
    }
    parts.extend(skips.iter().map(|s| regex_escape(&s.name)));
    parts.extend(extra.map(String::from));
    parts.join("|")
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub suite: Suite,
    /// Replaces the suite's focus.
    pub focus: Option<String>,
    /// Skipped on top of the tags and the skip file.
    pub skip: Option<String>,
    /// The results directory (default under [`RESULTS_ROOT`]).
    pub out: Option<PathBuf>,
    /// The lab's internet host, standing in for google.com.
    pub internet: Internet,
    /// ginkgo nodes running cases at once (1: e2e.test alone).
    pub parallel: u32,
}

/// What a run gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub suite: Suite,
    pub dir: PathBuf,
    pub summary: Option<Summary>,
    pub cases: Vec<Case>,
    pub wall: Duration,
    /// ginkgo nodes.
    pub parallel: u32,
    /// e2e.test exited 0 and reported no failure.
    pub ok: bool,
}

impl Outcome {
    pub fn failed(&self) -> Vec<&Case> {
        self.cases
            .iter()
            .filter(|c| c.status == Status::Failed)
            .collect()
    }

    /// `results.txt`: summary, wall time, the 10 slowest, failures.
    pub fn report(&self) -> String {
        let nodes = if self.parallel > 1 {
            format!(
                " on {} ginkgo nodes ([Serial] cases skipped)",
                self.parallel
            )
        } else {
            String::new()
        };
        let mut s = format!(
            "suite {}{nodes} in {:.0} s\n{}\n\nslowest:\n",
            self.suite.name(),
            self.wall.as_secs_f64(),
            self.summary.as_ref().map(Summary::text).unwrap_or_else(|| {
                "no ginkgo summary (e2e.test stopped early: see e2e.log)".into()
            }),
        );
        for c in junit::slowest(&self.cases, 10) {
            s += &format!("  {:7.1} s  {}\n", c.secs, c.name);
        }
        let failed = self.failed();
        if !failed.is_empty() {
            s += "\nfailed:\n";
            for c in failed {
                s += &format!("  {}\n", c.name);
            }
        }
        s
    }
}

fn utc_stamp() -> String {
    run(Command::new("date").args(["-u", "+%Y%m%dT%H%M%SZ"]))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("{}", std::process::id()))
}

/// The e2e.test command line (without nsenter).
pub fn e2e_args(c: &Cluster, focus: &str, skip: &str, dir: &Path) -> Result<Vec<String>> {
    Ok(vec![
        format!(
            "--kubeconfig={}",
            c.paths.admin_kubeconfig_internal().display()
        ),
        "--provider=local".into(),
        format!("--num-nodes={}", c.state.nodes.len()),
        format!(
            "--kubectl-path={}",
            c.paths.kube_binary("kubectl")?.display()
        ),
        format!("--repo-root={}", e2e_images::kube_src(&c.paths).display()),
        format!("--report-dir={}", dir.display()),
        format!("--e2e-output-dir={}", dir.display()),
        "--disable-log-dump".into(),
        "--allowed-not-ready-nodes=0".into(),
        "--node-os-distro=debian".into(),
        "--container-runtime=remote".into(),
        format!("--container-runtime-endpoint=unix://{CONTAINERD_SOCK}"),
        "--ginkgo.noColor".into(),
        "--ginkgo.flakeAttempts=1".into(),
        format!("--ginkgo.focus={focus}"),
        format!("--ginkgo.skip={skip}"),
    ])
}

/// Runs one suite; `say` gets the progress lines.
pub fn run_suite(c: &Cluster, opts: &Options, say: &mut dyn FnMut(&str)) -> Result<Outcome> {
    let suite = opts.suite;
    let dir = opts.out.clone().unwrap_or_else(|| {
        Path::new(RESULTS_ROOT)
            .join(c.paths.prefix.trim_end_matches('-'))
            .join(format!("{}-{}", suite.name(), utc_stamp()))
    });
    mkdir(&dir)?;
    if let Some(n) = suite.note() {
        say(n);
    }
    let dead = c.dead();
    if !dead.is_empty() {
        return Err(ClusterError::Check(format!(
            "the cluster is not whole: {}",
            dead.join("; ")
        )));
    }
    let t = Instant::now();
    let archives = e2e_env::import_images(c)?;
    say(&format!(
        "{} e2e images imported on {} nodes ({}, {}, {}) in {:.1} s",
        archives.len(),
        c.state.nodes.len(),
        e2e_images::AGNHOST,
        e2e_images::BUSYBOX_IMAGE,
        e2e_images::PAUSE,
        t.elapsed().as_secs_f64()
    ));
    let routes = e2e_env::route_pod_cidrs(c)?;
    say(&format!("router: {}", routes.join(", ")));
    let hosts = e2e_env::internet_stand_in(c, &opts.internet)?;
    say(&format!(
        "google.com for e2e.test: the internet host http://{}/ (its /etc/hosts: {})",
        opts.internet.ip,
        hosts.display()
    ));
    let skips = parse_skips(SKIPS)?;
    let focus = opts.focus.clone().unwrap_or_else(|| suite.focus().into());
    let nodes = opts.parallel.max(1);
    let skip = skip_regex(suite, &skips, opts.skip.as_deref(), nodes > 1);
    let args = e2e_args(c, &focus, &skip, &dir)?;
    let listed: String = skips
        .iter()
        .map(|s| format!("{} | {}\n", s.name, s.reason))
        .collect();
    write_file(&dir.join("skips.txt"), listed.as_bytes(), 0o644)?;
    write_file(&dir.join("args.txt"), args.join("\n").as_bytes(), 0o644)?;
    let log = dir.join("e2e.log");
    let out = File::create(&log).map_err(ClusterError::io("creating", &log))?;
    let err = out.try_clone().map_err(ClusterError::io("opening", &log))?;
    let e2e = c.paths.kube_binary("e2e.test")?;
    let runner = if nodes > 1 {
        c.paths.kube_binary("ginkgo")?
    } else {
        e2e.clone()
    };
    ginkgo::clear_reports(&dir)?;
    say(&format!(
        "e2e.test ({}{}) in {} — log {}",
        suite.name(),
        if nodes > 1 {
            format!(", {nodes} ginkgo nodes, [Serial] skipped")
        } else {
            String::new()
        },
        c.state.router_netns,
        log.display()
    ));
    // A private mount namespace whose /etc/hosts is `hosts`.
    let mut wrapped: Vec<String> = [
        "--mount",
        "--propagation=private",
        "--",
        "/bin/sh",
        "-c",
        r#"mount --bind "$1" /etc/hosts && shift && exec "$@""#,
        "e2e",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    wrapped.push(hosts.display().to_string());
    wrapped.extend(ginkgo::command_line(&e2e, &runner, nodes, &args));
    let mut cmd =
        Place::netns(&c.state.router_netns).command(Path::new("/usr/bin/unshare"), &wrapped);
    cmd.current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| ClusterError::Command {
        command: format!("{} {}", runner.display(), args.join(" ")),
        output: e.to_string(),
    })?;
    let mut follower = Follower::default();
    let status = loop {
        follower.poll(&log, say);
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => std::thread::sleep(Duration::from_secs(1)),
            Err(e) => return Err(ClusterError::io("waiting for", &runner)(e)),
        }
    };
    follower.poll(&log, say);
    let wall = t.elapsed();
    let text = std::fs::read_to_string(&log).map_err(ClusterError::io("reading", &log))?;
    let summary = junit::summary(&text);
    let cases = ginkgo::cases(&dir);
    let ok = status.success() && summary.as_ref().is_some_and(|s| s.failed == 0);
    let o = Outcome {
        suite,
        dir: dir.clone(),
        summary,
        cases,
        wall,
        parallel: nodes,
        ok,
    };
    write_file(&dir.join("results.txt"), o.report().as_bytes(), 0o644)?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skip_file_parses_and_every_line_has_a_reason() {
        let s = parse_skips(SKIPS).unwrap();
        assert!(s.len() >= 10, "{}", s.len());
        assert!(s
            .iter()
            .all(|x| x.name.starts_with('[') && x.reason.len() > 10));
        assert!(s
            .iter()
            .any(|x| x.name == "[sig-network] DNS should provide DNS for services  [Conformance]"));
        assert!(parse_skips("[sig-network] X without reason\n").is_err());
        assert!(parse_skips("# only a comment\n\n").unwrap().is_empty());
    }

    #[test]
    fn escapes_names_for_ginkgo() {
        assert_eq!(
            regex_escape("[sig-network] DNS (x) a.b #1 [Conformance]"),
            r"\[sig-network\] DNS \(x\) a\.b #1 \[Conformance\]"
        );
        let skip = skip_regex(
            Suite::Network,
            &[Skip {
                name: "[a] b".into(),
                reason: "r".into(),
            }],
            Some("extra"),
            false,
        );
        assert!(skip.starts_with(r"\[Feature:|\[Disruptive\]"), "{skip}");
        assert!(skip.ends_with(r"|\[a\] b|extra"), "{skip}");
        assert!(!skip.contains("Serial"), "{skip}");
        let par = skip_regex(Suite::Ci, &[], None, true);
        assert!(par.ends_with(r"|\[Serial\]"), "{par}");
        assert!(par.starts_with(r"\[Feature:|\[Disruptive\]"), "{par}");
        assert!(!Suite::Netpol.tag_skip().contains("Feature"));
    }

    #[test]
    fn suites_parse_and_netpol_says_what_it_expects() {
        assert_eq!("network".parse::<Suite>().unwrap(), Suite::Network);
        assert_eq!("ci".parse::<Suite>().unwrap().name(), "ci");
        assert!("dns".parse::<Suite>().is_err());
        assert!(Suite::Netpol
            .note()
            .unwrap()
            .contains("every case should pass"));
        assert!(Suite::Network.note().is_none());
    }
}
