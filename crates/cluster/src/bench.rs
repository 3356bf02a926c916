//! Pod startup on the real cluster, ferry against the reference plugins
//! under the same kubelets and containerds, in one run: `pods` pods
//! spread over the nodes are created at once and timed from the create to
//! each one's Ready (as `kubectl get -w` sees it), then deleted, rounds
//! alternating between ferry's conflist and a `ptp` + `host-local` +
//! `portmap` conflist that containerd picks first (`05-ptp.conflist`
//! sorts before ferry's `10-ferry.conflist`; ptp's addresses come from
//! the upper half of the node's podCIDR, ferry's pods keep theirs).

use std::io::BufReader;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Cluster, STEP};
use crate::error::{ClusterError, Result};
use crate::kubectl;
use crate::scenarios::leaks;
use crate::util::{wait_until, write_file};
use crate::workload::{self, NAMESPACE};

/// Which plugin a round runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    Ferry,
    Ptp,
}

/// Per plugin, every pod's create→Ready time.
#[derive(Debug, Default, Clone)]
pub struct Startup {
    pub ferry: Vec<Duration>,
    pub ptp: Vec<Duration>,
}

/// The `q` quantile (0..=1) of `v`, nearest rank.
pub fn quantile(v: &[Duration], q: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        return Duration::ZERO;
    }
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

const PTP_CONFLIST: &str = "05-ptp.conflist";

fn ptp_conflist(pod_cidr: &str) -> Result<String> {
    let net: std::net::Ipv4Addr = pod_cidr
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| ClusterError::Invalid(format!("podCIDR {pod_cidr}")))?;
    let o = net.octets();
    Ok(serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "ptp-bench",
        "plugins": [
            {"type": "ptp", "ipMasq": false, "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": pod_cidr,
                             "rangeStart": format!("{}.{}.{}.128", o[0], o[1], o[2]),
                             "rangeEnd": format!("{}.{}.{}.250", o[0], o[1], o[2])}]],
                "dataDir": "/run/ptp-bench/ipam"}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
    .to_string())
}

/// Where a node's CNI config dir is, seen from the host.
fn conf_dir(holder: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{holder}/root/etc/cni/net.d"))
}

fn set_plugin(c: &Cluster, plugin: Plugin) -> Result<()> {
    let k = c.kubectl()?;
    let nodes = k.json(&["get", "nodes"])?;
    for (n, procs) in &c.state.nodes {
        let Some(p) = procs else { continue };
        let path = conf_dir(p.holder.pid).join(PTP_CONFLIST);
        match plugin {
            Plugin::Ptp => {
                let cidr = kubectl::items(&nodes)
                    .into_iter()
                    .find(|x| x["metadata"]["name"] == n.name.as_str())
                    .and_then(|x| x["spec"]["podCIDR"].as_str().map(String::from))
                    .ok_or_else(|| ClusterError::Invalid(format!("{} has no podCIDR", n.name)))?;
                write_file(&path, ptp_conflist(&cidr)?.as_bytes(), 0o644)?;
            }
            Plugin::Ferry => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    // containerd reloads its CNI config on the directory's change.
    std::thread::sleep(Duration::from_secs(2));
    Ok(())
}

/// One round: create `pods` at once, time each to Ready, delete them all
/// and wait until every node has released them.
fn round(c: &Cluster, pods: usize) -> Result<Vec<Duration>> {
    let k = c.kubectl()?;
    let (tx, rx) = mpsc::channel::<(String, Instant)>();
    let mut watch = k
        .command_for(&[
            "get",
            "pods",
            "-n",
            NAMESPACE,
            "-l",
            workload::CHURN_LABEL,
            "-w",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(ClusterError::io("starting", "kubectl get -w"))?;
    let out = watch
        .stdout
        .take()
        .ok_or_else(|| ClusterError::Invalid("no stdout".into()))?;
    std::thread::spawn(move || {
        let stream =
            serde_json::Deserializer::from_reader(BufReader::new(out)).into_iter::<Value>();
        for pod in stream.flatten() {
            if kubectl::condition(&pod, "Ready").is_some_and(|c| c["status"] == "True") {
                let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
                if tx.send((name, Instant::now())).is_err() {
                    break;
                }
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    k.apply(&workload::churn(pods))?;
    let mut ready = std::collections::BTreeMap::new();
    let deadline = Instant::now() + STEP;
    while ready.len() < pods && Instant::now() < deadline {
        if let Ok((name, at)) = rx.recv_timeout(Duration::from_secs(1)) {
            ready.entry(name).or_insert(at - t0);
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    k.run(&[
        "-n",
        NAMESPACE,
        "delete",
        "deployment",
        workload::CHURN,
        "--wait=false",
    ])?;
    wait_until(
        "the bench's pods gone and released",
        STEP,
        Duration::from_secs(1),
        |last| {
            let list = k
                .json(&["get", "pods", "-n", NAMESPACE, "-l", workload::CHURN_LABEL])
                .ok()?;
            let left = leaks(c).ok()?;
            *last = format!("{} pods, {left:?}", kubectl::items(&list).len());
            (kubectl::items(&list).is_empty() && left.is_empty()).then_some(())
        },
    )?;
    if ready.len() < pods {
        return Err(ClusterError::Timeout {
            what: format!("{pods} pods Ready"),
            secs: STEP.as_secs(),
            detail: format!(" ({} were)", ready.len()),
        });
    }
    Ok(ready.into_values().collect())
}

/// `rounds` rounds per plugin, alternating (ferry first); ferry's
/// conflist is in charge again at the end.
pub fn pod_startup(
    c: &Cluster,
    pods: usize,
    rounds: usize,
    report: &mut dyn FnMut(&str),
) -> Result<Startup> {
    let mut s = Startup::default();
    let result = (|| {
        for r in 1..=rounds {
            for plugin in [Plugin::Ferry, Plugin::Ptp] {
                set_plugin(c, plugin)?;
                let t = round(c, pods)?;
                report(&format!(
                    "round {r} {plugin:?}: p50 {:.0} ms, p99 {:.0} ms",
                    ms(quantile(&t, 0.5)),
                    ms(quantile(&t, 0.99))
                ));
                match plugin {
                    Plugin::Ferry => s.ferry.extend(t),
                    Plugin::Ptp => s.ptp.extend(t),
                }
            }
        }
        Ok(())
    })();
    set_plugin(c, Plugin::Ferry)?;
    result.map(|()| s)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn ptp_takes_the_upper_half() {
        let c: Value = serde_json::from_str(&ptp_conflist("10.244.2.0/24").unwrap()).unwrap();
        let r = &c["plugins"][0]["ipam"]["ranges"][0][0];
        assert_eq!(r["rangeStart"], "10.244.2.128");
        assert_eq!(r["subnet"], "10.244.2.0/24");
    }
}
