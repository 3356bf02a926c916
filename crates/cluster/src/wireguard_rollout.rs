//! The `wireguard-rollout` scenario (clusters installed with
//! `deploy/ferry-wireguard.yaml`): `kubectl rollout restart
//! daemonset/ferry-wireguard` while every toolbox pod pings a pod on
//! another node, as in `upgrade`. The userspace WireGuard device
//! (`ferry-wg`) restarts with its pod, node by node, so pod traffic to
//! and from that node stops until the replacement pod runs and ferryd has
//! configured it: what each pair lost is reported (no pod re-created, no
//! address changed; ferry's own rollouts, in `upgrade`, lose nothing).

use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::error::{ClusterError, Result};
use crate::scenarios::{identities, ping_across_nodes, rollout, PING_INTERVAL_S};

/// The DaemonSet running `ferry-wg`.
pub const DAEMONSET: &str = "ferry-wireguard";

/// See the module docs.
pub fn wireguard_rollout(c: &Cluster) -> Result<Vec<String>> {
    let k = c.kubectl()?;
    if k.run(&["-n", "kube-system", "get", "daemonset", DAEMONSET])
        .is_err()
    {
        return Err(ClusterError::Invalid(format!(
            "no daemonset/{DAEMONSET}: install with deploy/ferry-wireguard.yaml"
        )));
    }
    let before = identities(&k)?;
    let pingers = ping_across_nodes(c, &k)?;
    std::thread::sleep(Duration::from_secs(1));
    let mut lines = vec![];
    let t = Instant::now();
    rollout(
        &k,
        &mut lines,
        DAEMONSET,
        &format!("kubectl rollout restart daemonset/{DAEMONSET}"),
        &[
            "-n",
            "kube-system",
            "rollout",
            "restart",
            &format!("daemonset/{DAEMONSET}"),
        ],
    )?;
    // Until every pair answers again (the last node's ferry-wg may be
    // configured a moment after its pod is Ready).
    std::thread::sleep(Duration::from_secs(3));
    let took = t.elapsed().as_secs_f64();
    let mut worst = 0.0f64;
    for p in pingers {
        let (what, tx, rx) = p.stop()?;
        let lost_s = tx.saturating_sub(rx) as f64 * PING_INTERVAL_S;
        worst = worst.max(lost_s);
        lines.push(format!(
            "ping {what}: {rx}/{tx} answered (≈ {lost_s:.1} s lost)"
        ));
        if rx == 0 {
            return Err(ClusterError::Check(format!("{what}: nothing answered")));
        }
    }
    let after = identities(&k)?;
    if before != after {
        return Err(ClusterError::Check(format!(
            "pods changed during the rollout: {before:?} → {after:?}"
        )));
    }
    lines.push(format!(
        "{} pods: none re-created, no address changed; at most ≈ {worst:.1} s lost per pair over {took:.1} s",
        after.len()
    ));
    Ok(lines)
}
