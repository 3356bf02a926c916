//! What a cluster goes through, on the real one:
//!
//! - **upgrade**: `kubectl rollout restart daemonset/ferry`, then a change
//!   of ferry's image, while every toolbox pod pings a pod on another node
//!   (ping in the pod's netns every 100 ms): no packet lost, no pod
//!   re-created, no address changed;
//! - **node-restart**: a worker's kubelet, containerd, kube-proxy, ferryd
//!   and pods all stopped, its `/run` gone (as a reboot does), then its
//!   daemons started again: its pods come back Running with working
//!   networks, and no address or veth is left over;
//! - **pod-churn**: 60 pods created and deleted over the nodes, twice:
//!   every address released, no veth left.
//!
//! - **wireguard-rollout** (only when named, on a WireGuard cluster):
//!   see [`crate::wireguard_rollout`].
//!
//! After each, the node leak check ([`leaks`]): on every node, ferry's
//! IPAM reservations and host veths are exactly its running pods'.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::checks::{self, PodView};
use crate::cluster::{Cluster, STEP};
use crate::error::{ClusterError, Result};
use crate::kubectl::{self, Kubectl};
use crate::node;
use crate::util::wait_until;
use crate::workload::{self, NAMESPACE};

/// The scenarios `all` runs, by name (`uninstall`, which ends the
/// cluster's networking, only runs when named).
pub const ALL: [&str; 3] = ["upgrade", "node-restart", "pod-churn"];

/// Runs one by name; its report lines.
pub fn run(c: &mut Cluster, name: &str) -> Result<Vec<String>> {
    let lines = match name {
        "upgrade" => upgrade(c)?,
        "node-restart" => node_restart(c, None)?,
        "pod-churn" => pod_churn(c, 60, 2)?,
        "wireguard-rollout" => crate::wireguard_rollout::wireguard_rollout(c)?,
        "uninstall" => return crate::uninstall::uninstall(c),
        _ => {
            return Err(ClusterError::Invalid(format!(
                "no scenario {name:?}: {}, wireguard-rollout, uninstall",
                ALL.join(", ")
            )))
        }
    };
    let left = leaks(c)?;
    if !left.is_empty() {
        return Err(ClusterError::Check(format!(
            "{name}: left behind: {}",
            left.join("; ")
        )));
    }
    Ok(lines)
}

/// Seconds between the pings of a [`Pinger`].
pub(crate) const PING_INTERVAL_S: f64 = 0.1;

/// A ping running inside a pod's netns.
pub(crate) struct Pinger {
    what: String,
    child: Child,
}

impl Pinger {
    fn start(c: &Cluster, from: &PodView, to: &PodView) -> Result<Pinger> {
        let netns = pod_netns(c, from)?;
        let child = Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            // -q: only the totals, at the end. A line per reply would
            // fill the unread pipe after ~1,090 replies and stall ping.
            .args([
                "ping",
                "-q",
                "-n",
                "-i",
                &PING_INTERVAL_S.to_string(),
                "-W",
                "1",
                &to.ip,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(ClusterError::io("starting", "ping"))?;
        Ok(Pinger {
            what: format!("{} → {} ({})", from.name, to.name, to.ip),
            child,
        })
    }

    /// SIGINT (ping prints its totals), then (transmitted, received).
    pub(crate) fn stop(mut self) -> Result<(String, u64, u64)> {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let out = std::mem::replace(
            &mut self.child,
            Command::new("true")
                .spawn()
                .map_err(ClusterError::io("spawning", "true"))?,
        )
        .wait_with_output()
        .map_err(ClusterError::io("waiting for", "ping"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let (tx, rx) = parse_ping_totals(&text).ok_or_else(|| ClusterError::Unexpected {
            what: "ping".into(),
            detail: text.lines().last().unwrap_or("").into(),
        })?;
        Ok((self.what, tx, rx))
    }
}

/// `12 packets transmitted, 12 received, ...` → (12, 12).
pub fn parse_ping_totals(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = line
        .split(',')
        .map(|p| p.split_whitespace().next().and_then(|n| n.parse().ok()));
    Some((nums.next()??, nums.next()??))
}

fn pod_netns(c: &Cluster, p: &PodView) -> Result<PathBuf> {
    let holder = c
        .state
        .nodes
        .iter()
        .find(|(n, _)| n.name == p.node)
        .and_then(|(_, procs)| procs.map(|x| x.holder.pid))
        .ok_or_else(|| ClusterError::Invalid(format!("no node {}", p.node)))?;
    checks::pod_netns(holder, &p.ip)
        .ok_or_else(|| ClusterError::Invalid(format!("no netns for {}", p.name)))
}

/// (name, uid, ip) of every pod in the lab's namespace.
pub(crate) fn identities(k: &Kubectl) -> Result<BTreeMap<String, (String, String)>> {
    let list = k.json(&["get", "pods", "-n", NAMESPACE])?;
    Ok(kubectl::items(&list)
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                (
                    p["metadata"]["uid"].as_str().unwrap_or("").to_string(),
                    p["status"]["podIP"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect())
}

/// Runs `args` (a change to `daemonset`) and waits for its rollout.
pub(crate) fn rollout(
    k: &Kubectl,
    lines: &mut Vec<String>,
    daemonset: &str,
    what: &str,
    args: &[&str],
) -> Result<()> {
    let t = Instant::now();
    k.run(args)?;
    k.run(&[
        "-n",
        "kube-system",
        "rollout",
        "status",
        &format!("daemonset/{daemonset}"),
        "--timeout=300s",
    ])?;
    lines.push(format!(
        "{what}: rolled out on every node in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Every toolbox pod pinging the next pod (in list order) on another
/// node.
pub(crate) fn ping_across_nodes(c: &Cluster, k: &Kubectl) -> Result<Vec<Pinger>> {
    let pods = checks::pods(k, workload::APP_LABEL)?;
    let mut pingers = vec![];
    for (i, a) in pods.iter().enumerate() {
        if let Some(b) = pods
            .iter()
            .cycle()
            .skip(i + 1)
            .take(pods.len())
            .find(|b| b.node != a.node)
        {
            pingers.push(Pinger::start(c, a, b)?);
        }
    }
    Ok(pingers)
}

/// See the module docs.
pub fn upgrade(c: &Cluster) -> Result<Vec<String>> {
    let k = c.kubectl()?;
    let before = identities(&k)?;
    let pingers = ping_across_nodes(c, &k)?;
    std::thread::sleep(Duration::from_secs(1));
    let mut lines = vec![];
    rollout(
        &k,
        &mut lines,
        "ferry",
        "kubectl rollout restart daemonset/ferry",
        &["-n", "kube-system", "rollout", "restart", "daemonset/ferry"],
    )?;
    // A new image: every container running ferry's image (ferry or
    // ferry-frr) gets it under a new tag, `<tag>-next` (or back on a second
    // run), tagged in every node's containerd as a pushed release would be
    // pulled.
    let ds = k.json(&["-n", "kube-system", "get", "daemonset", "ferry"])?;
    let spec = &ds["spec"]["template"]["spec"];
    let mut sets = vec![];
    let mut tags = std::collections::BTreeSet::new();
    for list in ["initContainers", "containers"] {
        for ct in spec[list].as_array().cloned().unwrap_or_default() {
            let Some(image) = ct["image"]
                .as_str()
                .filter(|i| i.starts_with("localhost/ferry"))
            else {
                continue;
            };
            let next = match image.strip_suffix("-next") {
                Some(back) => back.to_string(),
                None => format!("{image}-next"),
            };
            sets.push(format!("{}={next}", ct["name"].as_str().unwrap_or("")));
            tags.insert((image.to_string(), next));
        }
    }
    if sets.is_empty() {
        return Err(ClusterError::Check(
            "no container of daemonset/ferry runs ferry's image".into(),
        ));
    }
    for (from, to) in &tags {
        for (_, procs) in &c.state.nodes {
            if let Some(p) = procs {
                node::tag_image(p.holder.pid, from, to)?;
            }
        }
    }
    let mut args: Vec<&str> = vec!["-n", "kube-system", "set", "image", "daemonset/ferry"];
    args.extend(sets.iter().map(String::as_str));
    rollout(
        &k,
        &mut lines,
        "ferry",
        &format!("kubectl set image daemonset/ferry {}", sets.join(" ")),
        &args,
    )?;
    std::thread::sleep(Duration::from_secs(1));
    let mut lost = vec![];
    for p in pingers {
        let (what, tx, rx) = p.stop()?;
        lines.push(format!("ping {what}: {rx}/{tx} answered"));
        if rx != tx || tx == 0 {
            lost.push(format!("{what}: {rx}/{tx}"));
        }
    }
    let after = identities(&k)?;
    if before != after {
        return Err(ClusterError::Check(format!(
            "pods changed during the upgrade: {before:?} → {after:?}"
        )));
    }
    if !lost.is_empty() {
        return Err(ClusterError::Check(format!(
            "packets lost during the upgrade: {}",
            lost.join("; ")
        )));
    }
    lines.push(format!(
        "{} pods: none re-created, no address changed, no packet lost",
        after.len()
    ));
    Ok(lines)
}

/// See the module docs. `which`: a node name (default: the last node).
pub fn node_restart(c: &mut Cluster, which: Option<&str>) -> Result<Vec<String>> {
    let i = match which {
        Some(w) => c.state.nodes.iter().position(|(n, _)| n.name == w),
        None => c.state.nodes.len().checked_sub(1),
    }
    .ok_or_else(|| ClusterError::Invalid("no such node".into()))?;
    let spec = c.state.nodes[i].0.clone();
    let t = Instant::now();
    let gone = node::power_off(&c.paths, &spec, c.state.nodes[i].1.as_ref());
    c.state.nodes[i].1 = None;
    c.save()?;
    let mut lines = vec![format!(
        "{}: {gone} processes stopped, /run gone",
        spec.name
    )];
    let k = c.kubectl()?;
    let restarts_before = restart_counts(&k, &spec.name)?;
    let archives = crate::images::archives(&c.paths);
    c.state.nodes[i].1 = Some(node::start(&c.paths, &spec, &archives)?);
    c.save()?;
    // The API still says Running for a while: wait until the kubelet has
    // restarted every pod of the node (new sandboxes, through ferry), they
    // are Ready, and the node's reservations and veths are theirs.
    let n = spec.name.clone();
    let cl: &Cluster = c;
    wait_until(
        "the node's pods restarted and Ready",
        STEP,
        Duration::from_secs(1),
        |last| {
            let now = restart_counts(&k, &n).ok()?;
            let restarted = restarts_before.iter().all(|(pod, before)| {
                now.get(pod)
                    .is_some_and(|(after, ready)| after > &before.0 && *ready)
            });
            let left = leaks(cl).ok()?;
            *last = format!("restarts {now:?}, leaks {left:?}");
            (restarted && left.is_empty()).then_some(())
        },
    )?;
    c.wait_ready()?;
    lines.push(format!(
        "{}: Ready again, its pods Running, in {:.1} s",
        spec.name,
        t.elapsed().as_secs_f64()
    ));
    Ok(lines)
}

/// Each pod's (sum of container restarts, Ready) on `node`, all namespaces.
fn restart_counts(k: &Kubectl, node: &str) -> Result<BTreeMap<String, (u64, bool)>> {
    let list = k.json(&[
        "get",
        "pods",
        "-A",
        &format!("--field-selector=spec.nodeName={node}"),
    ])?;
    Ok(kubectl::items(&list)
        .iter()
        .map(|p| {
            let restarts = p["status"]["containerStatuses"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c["restartCount"].as_u64()).sum())
                .unwrap_or(0);
            let ready = kubectl::condition(p, "Ready").is_some_and(|c| c["status"] == "True");
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                (restarts, ready),
            )
        })
        .collect())
}

/// See the module docs.
pub fn pod_churn(c: &Cluster, pods: usize, rounds: usize) -> Result<Vec<String>> {
    let k = c.kubectl()?;
    let mut lines = vec![];
    for round in 1..=rounds {
        let t = Instant::now();
        k.apply(&workload::churn(pods))?;
        wait_until(
            "the churn pods Running",
            STEP,
            Duration::from_secs(1),
            |last| {
                let p = checks::pods(&k, workload::CHURN_LABEL).ok()?;
                *last = format!("{}/{pods}", p.len());
                (p.len() == pods).then_some(())
            },
        )?;
        let up = t.elapsed().as_secs_f64();
        k.run(&[
            "-n",
            NAMESPACE,
            "delete",
            "deployment",
            workload::CHURN,
            "--wait=false",
        ])?;
        wait_until(
            "the churn pods gone",
            STEP,
            Duration::from_secs(1),
            |last| {
                let list = k
                    .json(&["get", "pods", "-n", NAMESPACE, "-l", workload::CHURN_LABEL])
                    .ok()?;
                let n = kubectl::items(&list).len();
                *last = format!("{n} left");
                (n == 0).then_some(())
            },
        )?;
        let gone = t.elapsed().as_secs_f64() - up;
        // The API forgets a pod before the kubelet has torn its sandbox
        // down (StopPodSandbox → CNI DEL): wait for that, within limits.
        let t2 = Instant::now();
        wait_until(
            &format!("round {round}: every address and veth released"),
            STEP,
            Duration::from_secs(1),
            |last| {
                let left = leaks(c).ok()?;
                *last = left.join("; ");
                left.is_empty().then_some(())
            },
        )?;
        lines.push(format!(
            "round {round}: {pods} pods Running in {up:.1} s, gone from the API in {gone:.1} s, \
             every address and veth released {:.1} s later",
            t2.elapsed().as_secs_f64()
        ));
    }
    Ok(lines)
}

/// On every node: IPAM reservations and ferry's host veths that belong to
/// no running pod of that node, and running pods without them.
pub fn leaks(c: &Cluster) -> Result<Vec<String>> {
    let k = c.kubectl()?;
    let list = k.json(&["get", "pods", "-A", "--field-selector=status.phase=Running"])?;
    let mut out = vec![];
    for (n, procs) in &c.state.nodes {
        let Some(procs) = procs else { continue };
        let mut want: Vec<String> = kubectl::items(&list)
            .iter()
            .filter(|p| {
                p["spec"]["nodeName"] == n.name.as_str() && p["spec"]["hostNetwork"] != true
            })
            .filter_map(|p| p["status"]["podIP"].as_str().map(String::from))
            .collect();
        want.sort();
        let mut have = node::ipam_reservations(procs.holder.pid);
        have.sort();
        if have != want {
            out.push(format!(
                "{}: reservations {have:?}, running pods {want:?}",
                n.name
            ));
        }
        let veths = node::ferry_veths(&n.netns);
        if veths != want.len() {
            out.push(format!(
                "{}: {veths} ferry veths for {} pods",
                n.name,
                want.len()
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ping_totals() {
        let t =
            "PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.\n\n--- 10.0.0.1 ping statistics ---\n\
                 412 packets transmitted, 410 received, 0.485437% packet loss, time 41287ms\n";
        assert_eq!(parse_ping_totals(t), Some((412, 410)));
        assert_eq!(parse_ping_totals("nothing"), None);
    }
}
