//! `check` on a real cluster, as a user would look at it:
//!
//! - every node Ready, `NetworkUnavailable=False` set by ferry
//!   (`FerryIsUp`), one ferry pod Running and Ready on each;
//! - the toolbox Deployment spread over every node; from each of its pods
//!   (`kubectl exec`): every other pod by ICMP and TCP (HTTP, answered by
//!   the pod's own name), every node by ICMP, the Service's ClusterIP
//!   (kube-proxy), and the internet host, which answers with the source
//!   address it saw (the pod's node: masqueraded);
//! - UDP between every pair of pods on different nodes, with sockets opened
//!   inside the pods' network namespaces;
//! - every node pings every pod; the NodePort from the router and from the
//!   internet host on every node; the hostPort on its node;
//! - every node's eBPF fast path forwarded some of the pod↔pod TCP.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ferry_netns::NetNs;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::error::{ClusterError, Result};
use crate::kubectl::{self, Kubectl};
use crate::util::{run, wait_until};
use crate::workload::{self, NAMESPACE};

mod udp;

pub use udp::pod_netns;
use udp::udp_probes;

/// The lab around the cluster that the checks use.
#[derive(Debug, Clone)]
pub struct Surroundings {
    pub router_netns: String,
    pub internet_netns: String,
    pub internet_ip: String,
}

/// One probe's outcome.
#[derive(Debug, Clone)]
pub struct Probe {
    pub kind: &'static str,
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub probes: Vec<Probe>,
}

impl Report {
    fn add(&mut self, kind: &'static str, what: String, ok: bool, detail: impl Into<String>) {
        self.probes.push(Probe {
            kind,
            what,
            ok,
            detail: detail.into(),
        });
    }

    pub fn failed(&self) -> Vec<&Probe> {
        self.probes.iter().filter(|p| !p.ok).collect()
    }

    /// `61 probes ok: node 3, pod→pod icmp 6, ...` (failures named).
    pub fn summary(&self) -> String {
        let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for p in &self.probes {
            let e = per.entry(p.kind).or_default();
            e.0 += 1;
            e.1 += usize::from(!p.ok);
        }
        let parts: Vec<String> = per
            .iter()
            .map(|(k, (n, bad))| {
                if *bad == 0 {
                    format!("{k} {n}")
                } else {
                    format!("{k} {bad}/{n} FAILED")
                }
            })
            .collect();
        let bad = self.failed().len();
        let head = if bad == 0 {
            format!("{} probes ok", self.probes.len())
        } else {
            format!("{bad} of {} probes FAILED", self.probes.len())
        };
        format!("{head}: {}", parts.join(", "))
    }

    pub fn into_result(self) -> Result<Report> {
        let bad: Vec<String> = self
            .failed()
            .iter()
            .map(|p| format!("{} {}: {}", p.kind, p.what, p.detail))
            .collect();
        if bad.is_empty() {
            Ok(self)
        } else {
            Err(ClusterError::Check(format!(
                "{}\n  {}",
                self.summary(),
                bad.join("\n  ")
            )))
        }
    }
}

/// A toolbox pod as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    pub node: String,
    pub ip: String,
}

/// The running, Ready pods with `label` in the lab's namespace.
pub fn pods(k: &Kubectl, label: &str) -> Result<Vec<PodView>> {
    let list = k.json(&["get", "pods", "-n", NAMESPACE, "-l", label])?;
    Ok(kubectl::items(&list)
        .iter()
        .filter(|p| {
            p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .filter(|p| kubectl::condition(p, "Ready").is_some_and(|c| c["status"] == "True"))
        .map(|p| PodView {
            name: p["metadata"]["name"].as_str().unwrap_or("").into(),
            node: p["spec"]["nodeName"].as_str().unwrap_or("").into(),
            ip: p["status"]["podIP"].as_str().unwrap_or("").into(),
        })
        .collect())
}

/// Applies the workload and waits until its pods are Ready on every node.
pub fn deploy_workload(c: &Cluster, per_node: usize) -> Result<Vec<PodView>> {
    let k = c.kubectl()?;
    let nodes = c.state.nodes.len();
    k.apply(&workload::manifest(nodes * per_node))?;
    wait_until(
        "the toolbox pods Ready on every node",
        crate::cluster::STEP,
        Duration::from_secs(1),
        |last| {
            let p = pods(&k, workload::APP_LABEL).ok()?;
            let hp = pods(&k, "app=hostport").ok()?;
            *last = format!(
                "{} of {} toolbox pods Ready, hostport {}",
                p.len(),
                nodes * per_node,
                hp.len()
            );
            (p.len() == nodes * per_node && hp.len() == 1).then_some(p)
        },
    )
}

/// A TCP listener in the internet host's netns that writes back the
/// address each connection came from.
struct Witness {
    port: u16,
}

impl Witness {
    fn start(netns: &str, ip: &str) -> Result<Witness> {
        let ns = NetNs::open(&PathBuf::from(format!("/run/netns/{netns}")))
            .map_err(|e| ClusterError::Invalid(e.to_string()))?;
        let addr = format!("{ip}:0");
        let listener = ns
            .run(move || TcpListener::bind(addr))
            .map_err(|e| ClusterError::Invalid(e.to_string()))?
            .map_err(ClusterError::io("binding in the internet host", ip))?;
        let port = listener
            .local_addr()
            .map_err(ClusterError::io("reading", "witness"))?
            .port();
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                if let Ok(peer) = s.peer_addr() {
                    let _ = writeln!(s, "{}", peer.ip());
                }
            }
        });
        Ok(Witness { port })
    }
}

/// Runs every probe; the report (failures included).
pub fn run_checks(c: &Cluster, around: &Surroundings) -> Result<Report> {
    let k = c.kubectl()?;
    let mut r = Report::default();
    if let Some(dead) = Some(c.dead()).filter(|d| !d.is_empty()) {
        r.add("daemons", "cluster".into(), false, dead.join("; "));
    }
    node_probes(&k, c, &mut r)?;
    let pods = pods(&k, workload::APP_LABEL)?;
    let node_ips: BTreeMap<String, String> = c
        .state
        .nodes
        .iter()
        .map(|(n, _)| (n.name.clone(), n.ip.clone()))
        .collect();
    for n in node_ips.keys() {
        let here = pods.iter().any(|p| &p.node == n);
        r.add(
            "spread",
            format!("a toolbox pod on {n}"),
            here,
            if here { "" } else { "none" },
        );
    }
    let svc = k.json(&["get", "service", "-n", NAMESPACE, workload::SERVICE])?;
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
    let witness = Witness::start(&around.internet_netns, &around.internet_ip)?;
    let before = fast_path_forwarded(c);
    for p in &pods {
        from_pod(
            &k,
            p,
            &pods,
            &node_ips,
            &cluster_ip,
            around,
            witness.port,
            &mut r,
        );
    }
    // Pod↔pod TCP between nodes is what the eBPF fast path carries: with
    // ferryd's default (--fast-path=true) every node must have forwarded some.
    let after = fast_path_forwarded(c);
    for (n, _) in &c.state.nodes {
        let b = before.get(&n.name).copied().flatten();
        let a = after.get(&n.name).copied().flatten();
        let ok = matches!((b, a), (Some(b), Some(a)) if a > b);
        r.add(
            "fast path forwarded",
            n.name.clone(),
            ok,
            format!("{b:?} → {a:?}"),
        );
    }
    udp_probes(c, &pods, &mut r);
    for (node, ip) in &node_ips {
        let netns = c
            .state
            .nodes
            .iter()
            .find(|(n, _)| &n.name == node)
            .map(|(n, _)| n.netns.clone())
            .unwrap_or_default();
        for p in &pods {
            let ok = ping_from(&netns, &p.ip);
            r.add(
                "node→pod icmp",
                format!("{node} → {} ({})", p.ip, p.name),
                ok,
                "",
            );
        }
        for ns in [&around.router_netns, &around.internet_netns] {
            let got = http_from(ns, &format!("http://{ip}:{}/", workload::NODE_PORT));
            let ok = pods.iter().any(|p| p.name == got);
            r.add(
                "nodeport",
                format!("{ns} → {ip}:{}", workload::NODE_PORT),
                ok,
                got,
            );
        }
    }
    let hp = self::pods(&k, "app=hostport")?;
    for p in &hp {
        let ip = node_ips.get(&p.node).cloned().unwrap_or_default();
        let got = http_from(
            &around.router_netns,
            &format!("http://{ip}:{}/", workload::HOST_PORT),
        );
        r.add(
            "hostport",
            format!(
                "{} → {ip}:{} ({})",
                around.router_netns,
                workload::HOST_PORT,
                p.node
            ),
            got == p.name,
            got,
        );
    }
    Ok(r)
}

fn node_probes(k: &Kubectl, c: &Cluster, r: &mut Report) -> Result<()> {
    let nodes = k.json(&["get", "nodes"])?;
    let items = kubectl::items(&nodes);
    let ferry = k.ferry_pods()?;
    for (n, _) in &c.state.nodes {
        let node = items
            .iter()
            .find(|x| x["metadata"]["name"] == n.name.as_str());
        let ready = node
            .and_then(|x| kubectl::condition(x, "Ready"))
            .map(|c| c["status"].clone());
        r.add(
            "node Ready",
            n.name.clone(),
            ready == Some(Value::from("True")),
            format!("{ready:?}"),
        );
        let net = node.and_then(|x| kubectl::condition(x, "NetworkUnavailable"));
        let ok = net.is_some_and(|c| c["status"] == "False" && c["reason"] == "FerryIsUp");
        r.add(
            "NetworkUnavailable=False by ferry",
            n.name.clone(),
            ok,
            format!("{net:?}"),
        );
        let pod = kubectl::items(&ferry)
            .into_iter()
            .find(|p| p["spec"]["nodeName"] == n.name.as_str());
        let ok = pod.as_ref().is_some_and(|p| {
            p["status"]["phase"] == "Running"
                && kubectl::condition(p, "Ready").is_some_and(|c| c["status"] == "True")
        });
        r.add(
            "ferry pod Running",
            n.name.clone(),
            ok,
            pod.map(|p| p["status"]["phase"].to_string())
                .unwrap_or("none".into()),
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn from_pod(
    k: &Kubectl,
    src: &PodView,
    pods: &[PodView],
    node_ips: &BTreeMap<String, String>,
    cluster_ip: &str,
    around: &Surroundings,
    witness_port: u16,
    r: &mut Report,
) {
    let targets: Vec<&PodView> = pods.iter().filter(|p| p.name != src.name).collect();
    let mut script = String::new();
    for t in &targets {
        script += &format!(
            "if ping -c 1 -W 2 {ip} >/dev/null 2>&1; then echo icmp {ip} ok; else echo icmp {ip} fail; fi; \
             echo http {ip} $(timeout 5 wget -q -O - http://{ip}:{port}/ 2>&1 | head -1); ",
            ip = t.ip,
            port = workload::HTTP_PORT
        );
    }
    for ip in node_ips.values() {
        script += &format!("if ping -c 1 -W 2 {ip} >/dev/null 2>&1; then echo node {ip} ok; else echo node {ip} fail; fi; ");
    }
    script += &format!(
        "echo svc $(timeout 5 wget -q -O - http://{cluster_ip}:{}/ 2>&1 | head -1); ",
        workload::SERVICE_PORT
    );
    script += &format!(
        "echo internet $(nc -w 3 {} {witness_port} </dev/null 2>&1 | head -1)",
        around.internet_ip
    );
    let out = match k.exec_sh(NAMESPACE, &src.name, &script) {
        Ok(o) => o,
        Err(e) => {
            r.add("kubectl exec", src.name.clone(), false, e.to_string());
            return;
        }
    };
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let find = |kind: &str, key: &str| -> Option<String> {
        lines
            .iter()
            .find(|l| l.first() == Some(&kind) && (key.is_empty() || l.get(1) == Some(&key)))
            .map(|l| l[if key.is_empty() { 1 } else { 2 }..].join(" "))
    };
    for t in &targets {
        let what = format!("{} ({}) → {} ({})", src.name, src.node, t.ip, t.name);
        let icmp = find("icmp", &t.ip).unwrap_or_default();
        r.add("pod→pod icmp", what.clone(), icmp == "ok", icmp);
        let http = find("http", &t.ip).unwrap_or_default();
        r.add("pod→pod tcp", what, http == t.name, http);
    }
    for ip in node_ips.values() {
        let got = find("node", ip).unwrap_or_default();
        r.add(
            "pod→node icmp",
            format!("{} → {ip}", src.name),
            got == "ok",
            got,
        );
    }
    let svc = find("svc", "").unwrap_or_default();
    r.add(
        "pod→clusterIP",
        format!("{} → {cluster_ip}", src.name),
        pods.iter().any(|p| p.name == svc),
        svc,
    );
    let seen = find("internet", "").unwrap_or_default();
    let node_ip = node_ips.get(&src.node).cloned().unwrap_or_default();
    r.add(
        "pod→internet masqueraded",
        format!("{} ({}) → {}", src.name, src.ip, around.internet_ip),
        seen == node_ip,
        format!("seen from {seen}, node {node_ip}"),
    );
}

/// Each node's `ferry_fast_path_packets_total{result="forwarded"}` from
/// ferryd's /metrics (None: no fast path, or no answer).
pub fn fast_path_forwarded(c: &Cluster) -> BTreeMap<String, Option<u64>> {
    c.state
        .nodes
        .iter()
        .map(|(n, _)| {
            let text = http_from(&n.netns, "http://127.0.0.1:9654/metrics");
            let v = text
                .lines()
                .find(|l| l.starts_with("ferry_fast_path_packets_total{result=\"forwarded\"}"))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok());
            (n.name.clone(), v)
        })
        .collect()
}

fn ping_from(netns: &str, ip: &str) -> bool {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .args(["ping", "-c", "1", "-W", "2", ip])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn http_from(netns: &str, url: &str) -> String {
    run(Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .args(["curl", "-s", "-m", "3", url]))
    .map(|s| s.trim().to_string())
    .unwrap_or_else(|e| e.to_string())
}
