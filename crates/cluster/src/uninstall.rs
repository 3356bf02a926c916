//! The `uninstall` scenario: ferry's Uninstall steps on the real cluster.
//! Not part of `scenario all`: it ends the cluster's pod networking.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::cluster::Cluster;
use crate::error::{ClusterError, Result};
use crate::kubectl;
use crate::node;

/// The install guide's Uninstall, as a user runs it: `kubectl delete -f`
/// the manifest, `kubectl apply -f deploy/ferry-uninstall.yaml`, wait for
/// its rollout, delete it. Then on every node: no conflist, no plugin
/// binaries, no `inet ferry` table, no ferry routes (`proto 201`), no
/// `ferry.wg`/`ferry.vxlan` device, and no
/// `NetworkUnavailable` condition or `ferry.dev/` annotation of ferry's
/// left on the Node.
pub fn uninstall(c: &Cluster) -> Result<Vec<String>> {
    let k = c.kubectl()?;
    let manifest = c
        .state
        .manifest
        .clone()
        .ok_or_else(|| ClusterError::Invalid("no manifest was applied".into()))?;
    let read =
        |p: &std::path::Path| std::fs::read_to_string(p).map_err(ClusterError::io("reading", p));
    let t = Instant::now();
    k.run_input(&["delete", "-f", "-", "--wait=true"], &read(&manifest)?)?;
    let uninstall = manifest.with_file_name("ferry-uninstall.yaml");
    let yaml = read(&uninstall)?;
    // Its pods idle in a pause image after the work; nothing can be pulled
    // here, so every node gets the lab's pause image under that name.
    for image in yaml
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("image: "))
        .filter(|i| i.contains("pause"))
    {
        for (_, procs) in &c.state.nodes {
            if let Some(p) = procs {
                node::tag_image(p.holder.pid, crate::images::PAUSE_IMAGE, image)?;
            }
        }
    }
    k.apply(&yaml)?;
    k.run(&[
        "-n",
        "kube-system",
        "rollout",
        "status",
        "daemonset/ferry-uninstall",
        "--timeout=300s",
    ])?;
    k.run_input(&["delete", "-f", "-", "--wait=true"], &yaml)?;
    let mut lines = vec![format!(
        "kubectl delete -f {}; kubectl apply -f {}: done on every node in {:.1} s",
        manifest.display(),
        uninstall.display(),
        t.elapsed().as_secs_f64()
    )];
    let nodes = k.json(&["get", "nodes"])?;
    let mut left = vec![];
    for (n, procs) in &c.state.nodes {
        let Some(p) = procs else { continue };
        let root = PathBuf::from(format!("/proc/{}/root", p.holder.pid));
        for f in [
            "etc/cni/net.d/10-ferry.conflist",
            "opt/cni/bin/ferry",
            "opt/cni/bin/ferry-ipam",
        ] {
            if root.join(f).exists() {
                left.push(format!("{}: /{f}", n.name));
            }
        }
        let in_ns = |args: &[&str]| {
            Command::new("ip")
                .args(["netns", "exec", &n.netns])
                .args(args)
                .output()
                .map(|o| {
                    (
                        o.status.success(),
                        String::from_utf8_lossy(&o.stdout).to_string(),
                    )
                })
                .unwrap_or((false, String::new()))
        };
        if in_ns(&["nft", "list", "table", "inet", "ferry"]).0 {
            left.push(format!("{}: nft table inet ferry", n.name));
        }
        let (_, routes) = in_ns(&["ip", "route", "show", "proto", "201"]);
        if !routes.trim().is_empty() {
            left.push(format!("{}: routes {}", n.name, routes.trim()));
        }
        // ferry's devices (the WireGuard TUN device is persistent: it
        // outlives its ferry-wg unless uninstall removes it).
        for dev in ["ferry.wg", "ferry.vxlan"] {
            if in_ns(&["ip", "link", "show", "dev", dev]).0 {
                left.push(format!("{}: device {dev}", n.name));
            }
        }
        let node = kubectl::items(&nodes)
            .into_iter()
            .find(|x| x["metadata"]["name"] == n.name.as_str());
        if let Some(cond) = node
            .as_ref()
            .and_then(|x| kubectl::condition(x, "NetworkUnavailable"))
        {
            if cond["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("Ferry"))
            {
                left.push(format!("{}: NetworkUnavailable {}", n.name, cond["reason"]));
            }
        }
        if let Some(annotations) = node
            .as_ref()
            .and_then(|x| x["metadata"]["annotations"].as_object())
        {
            for key in annotations.keys().filter(|k| k.starts_with("ferry.dev/")) {
                left.push(format!("{}: annotation {key}", n.name));
            }
        }
    }
    if !left.is_empty() {
        return Err(ClusterError::Check(format!(
            "uninstall left: {}",
            left.join("; ")
        )));
    }
    lines.push(format!(
        "{} nodes: no conflist, plugin, nft table, route, device, NetworkUnavailable condition or annotation of ferry's left",
        c.state.nodes.len()
    ));
    Ok(lines)
}
