//! What e2e.test needs around the cluster before it runs
//! ([`crate::conformance`]):
//!
//! - the e2e images ([`crate::e2e_images`]) in every node's containerd;
//! - a route in the router's netns to each node's podCIDR via that node,
//!   so the API server (in the router) proxies to pods and Services as a
//!   control-plane node of a real cluster can;
//! - google.com: e2e's `[sig-network] Networking` cases (all the Granular
//!   Checks: Services) first `GET http://google.com` from e2e.test and want
//!   a 200. This machine is offline, so the lab's internet host serves it
//!   (busybox httpd on :80) and e2e.test runs in a mount namespace of its
//!   own whose `/etc/hosts` names that host google.com. Pods and nodes
//!   never see that name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cluster::Cluster;
use crate::error::{ClusterError, Result};
use crate::node::CONTAINERD_SOCK;
use crate::procs::{spawn, Place};
use crate::util::{run, write_file};
use crate::{e2e_images, kubectl};

/// The lab's internet host: its netns and address (reachable from the router).
#[derive(Debug, Clone)]
pub struct Internet {
    pub netns: String,
    pub ip: String,
}

/// The `/etc/hosts` e2e.test sees: google.com is the lab's internet host.
pub fn hosts_file(internet_ip: &str) -> String {
    format!("127.0.0.1\tlocalhost\n{internet_ip}\tgoogle.com www.google.com\n")
}

/// busybox httpd on the internet host's :80 answering 200 (started once;
/// under the lab's root, so `down` stops it); the hosts file's path.
pub fn internet_stand_in(c: &Cluster, inet: &Internet) -> Result<PathBuf> {
    let dir = c.paths.root.join("conformance");
    let www = dir.join("www");
    write_file(&www.join("index.html"), b"ferry-lab internet host\n", 0o644)?;
    let hosts = dir.join("hosts");
    write_file(&hosts, hosts_file(&inet.ip).as_bytes(), 0o644)?;
    let url = format!("http://{}/", inet.ip);
    let get = |timeout: &str| {
        // curl: busybox-static's wget crashes in glibc's static NSS on a host.
        run(&mut Place::netns(&c.state.router_netns).command(
            Path::new("/usr/bin/curl"),
            &[
                "-sf".into(),
                "-m".into(),
                timeout.into(),
                "-o".into(),
                "/dev/null".into(),
                url.clone(),
            ],
        ))
    };
    if get("2").is_ok() {
        return Ok(hosts);
    }
    spawn(
        &Place::netns(&inet.netns),
        Path::new(crate::images::BUSYBOX),
        &[
            "httpd".into(),
            "-f".into(),
            "-p".into(),
            "80".into(),
            "-h".into(),
            www.display().to_string(),
        ],
        &[],
        &dir.join("httpd.log"),
    )?;
    crate::util::wait_until(
        "the internet host's httpd",
        Duration::from_secs(10),
        Duration::from_millis(200),
        |last| match get("1") {
            Ok(_) => Some(()),
            Err(e) => {
                *last = e.to_string();
                None
            }
        },
    )?;
    Ok(hosts)
}

/// Imports the e2e images into every node's containerd; the archives.
pub fn import_images(c: &Cluster) -> Result<Vec<PathBuf>> {
    let archives = e2e_images::write_all(&c.paths)?;
    for (spec, procs) in &c.state.nodes {
        let Some(p) = procs else {
            return Err(ClusterError::Invalid(format!(
                "node {} is not running",
                spec.name
            )));
        };
        let here = Place::of_holder(p.holder.pid);
        for a in &archives {
            run(&mut here.command(
                Path::new("/usr/bin/ctr"),
                &[
                    format!("--address={CONTAINERD_SOCK}"),
                    "-n".into(),
                    "k8s.io".into(),
                    "images".into(),
                    "import".into(),
                    a.display().to_string(),
                ],
            ))?;
        }
    }
    Ok(archives)
}

/// Routes in the router's netns to every node's podCIDRs via the node:
/// what a control-plane host of a real cluster has, so the API server
/// (proxy subresources) reaches pods. Idempotent.
pub fn route_pod_cidrs(c: &Cluster) -> Result<Vec<String>> {
    let nodes = c.kubectl()?.json(&["get", "nodes"])?;
    let mut out = vec![];
    for n in kubectl::items(&nodes) {
        let ip = n["status"]["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
            .and_then(|x| x["address"].as_str())
            .unwrap_or_default()
            .to_string();
        for cidr in n["spec"]["podCIDRs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let Some(cidr) = cidr.as_str().filter(|c| !c.contains(':')) else {
                continue;
            };
            let args: Vec<String> = ["route", "replace", cidr, "via", &ip]
                .iter()
                .map(|s| s.to_string())
                .collect();
            run(&mut Place::netns(&c.state.router_netns).command(Path::new("/usr/sbin/ip"), &args))?;
            out.push(format!("{cidr} via {ip}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_names_google_the_internet_host() {
        let h = hosts_file("203.0.113.10");
        assert!(
            h.lines()
                .any(|l| l == "203.0.113.10\tgoogle.com www.google.com"),
            "{h}"
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
    }
}
