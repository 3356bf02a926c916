//! The test API server in the router's netns (172.16.97.1:6443, a serving
//! certificate for that IP), holding real kubeadm Node objects, and the
//! lab's changes to them through `ferry-apiserver node ...`.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{LabError, Result};
use crate::procs::{self, Proc};
use crate::sh;
use crate::state::LabConfig;
use crate::topo::{self, NodePlan};

/// The Node object kubeadm + the controller manager would have made for
/// `node`: the control-plane fixture for the first node, the worker one
/// for the others, with the plan's name, InternalIP(s) and podCIDR(s).
pub fn node_object(node: &NodePlan) -> Value {
    let fixture = if node.control_plane() {
        ferry_apiserver::CONTROL_PLANE_JSON
    } else {
        ferry_apiserver::WORKER_JSON
    };
    let mut v: Value = serde_json::from_str(fixture).expect("fixture is JSON");
    let meta = &mut v["metadata"];
    meta["name"] = json!(node.name);
    meta["labels"]["kubernetes.io/hostname"] = json!(node.name);
    meta["uid"] = json!(format!(
        "6c1e0a5b-3f2d-4e8a-9b7c-{:012x}",
        0x1ab_0000 + node.index
    ));
    if let Some(m) = meta.as_object_mut() {
        m.remove("resourceVersion");
    }
    let mut addrs: Vec<Value> = node
        .ips()
        .iter()
        .map(|ip| json!({"type": "InternalIP", "address": ip}))
        .collect();
    addrs.push(json!({"type": "Hostname", "address": node.name}));
    v["status"]["addresses"] = json!(addrs);
    v["spec"]["podCIDR"] = json!(node.cidrs[0]);
    v["spec"]["podCIDRs"] = json!(node.cidrs);
    v
}

pub fn node_list(nodes: &[NodePlan]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "NodeList",
        "metadata": {},
        "items": nodes.iter().map(node_object).collect::<Vec<_>>(),
    })
}

pub fn listen_addr() -> SocketAddr {
    SocketAddr::new(
        topo::ROUTER_V4.parse().expect("router address"),
        topo::API_PORT,
    )
}

/// Starts `ferry-apiserver serve` in the router netns (seeded from
/// `nodes` when its state dir is new, else continuing the same cluster)
/// and waits until it answers.
pub fn start(cfg: &LabConfig, nodes: &[NodePlan]) -> Result<Proc> {
    let dir = cfg.apiserver_dir();
    let seed = dir.join("seed-nodes.json");
    if !seed.exists() {
        let text = serde_json::to_string_pretty(&node_list(nodes)).expect("JSON");
        sh::write_atomic(&seed, &text)?;
    }
    let router = topo::fixed(&cfg.prefix).router;
    let args: Vec<String> = [
        "--state-dir",
        &dir.display().to_string(),
        "serve",
        "--listen",
        &listen_addr().to_string(),
        "--nodes",
        &seed.display().to_string(),
        "--san",
        topo::ROUTER_V4,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let bin = cfg.binary("ferry-apiserver")?;
    let log = dir.join("apiserver.log");
    let proc = procs::spawn_in_netns(&router, &bin, &args, &[("RUST_LOG", "warn")], &log)?;
    let kubeconfig = cfg.kubeconfig();
    let ready = sh::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(20),
        "the API server to listen on 172.16.97.1:6443",
        || {
            if !proc.alive() {
                return Some(false);
            }
            (kubeconfig.exists()
                && sh::tcp_connect(&router, listen_addr(), Duration::from_millis(200)).is_ok())
            .then_some(true)
        },
    )?;
    if !ready {
        return Err(LabError::Command {
            command: format!("{} serve", bin.display()),
            output: format!(
                "exited: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        });
    }
    Ok(proc)
}

/// `ferry-apiserver node ARGS` against the running server (from the
/// router netns, where its address is).
fn client(cfg: &LabConfig, args: &[&str]) -> Result<String> {
    let router = topo::fixed(&cfg.prefix).router;
    let bin = cfg.binary("ferry-apiserver")?;
    let dir = cfg.apiserver_dir();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &router])
        .arg(bin)
        .arg("--state-dir")
        .arg(&dir)
        .arg("node")
        .args(args)
        .env("RUST_LOG", "warn");
    sh::run(&mut cmd)
}

/// Adds (or replaces) the Node object of `node`.
pub fn add_node(cfg: &LabConfig, node: &NodePlan) -> Result<()> {
    let file = cfg.apiserver_dir().join(format!("add-{}.json", node.name));
    sh::write_atomic(&file, &node_object(node).to_string())?;
    client(cfg, &["add", &file.display().to_string()]).map(drop)
}

/// Deletes a Node object.
pub fn delete_node(cfg: &LabConfig, name: &str) -> Result<()> {
    client(cfg, &["delete", name]).map(drop)
}

/// The Node names the server has.
pub fn list_names(cfg: &LabConfig) -> Result<Vec<String>> {
    let out = client(cfg, &["list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| *w != "NAME")
        .map(str::to_string)
        .collect())
}

/// A Node object as the server has it.
pub fn get_node(cfg: &LabConfig, name: &str) -> Result<Value> {
    let out = client(cfg, &["get", name])?;
    serde_json::from_str(&out).map_err(|e| LabError::Invalid(format!("node {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_objects_are_kubeadm_nodes_with_the_plan() {
        let master = node_object(&topo::node_plan("fl-", 0, false));
        assert_eq!(master["metadata"]["name"], "k8s-master");
        assert!(master["metadata"]["labels"]
            .as_object()
            .unwrap()
            .contains_key("node-role.kubernetes.io/control-plane"));
        let w = node_object(&topo::node_plan("fl-", 2, true));
        assert_eq!(w["metadata"]["name"], "k8s-worker-2");
        assert_eq!(
            w["metadata"]["labels"]["kubernetes.io/hostname"],
            "k8s-worker-2"
        );
        assert_eq!(
            w["spec"]["podCIDRs"],
            json!(["10.244.2.0/24", "fd00:10:244:2::/64"])
        );
        assert_eq!(w["status"]["addresses"][0]["address"], "172.16.97.77");
        assert_eq!(w["status"]["addresses"][1]["address"], "fd97::77");
        assert!(w["metadata"].get("resourceVersion").is_none());
        // A valid Node for the API server's parser.
        let _: Vec<_> = serde_json::from_value::<Vec<Value>>(
            node_list(&[
                topo::node_plan("fl-", 0, false),
                topo::node_plan("fl-", 1, false),
            ])["items"]
                .clone(),
        )
        .unwrap();
        assert_ne!(
            node_object(&topo::node_plan("fl-", 1, false))["metadata"]["uid"],
            w["metadata"]["uid"]
        );
    }
}
