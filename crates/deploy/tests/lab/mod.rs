//! The lab the container tests run in: a node network namespace behind a
//! router namespace that hosts the test API server.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use crate::common::{checked_in, containers, daemonsets, pod};
use crate::sandbox::Sandbox;
use ferry_apiserver::{fixture_node, RunningServer, ServerConfig};
use ferry_netns::NetNs;
use ferry_testkit::{ip, ns_exec, unique};
use k8s_openapi::api::core::v1::{Container, Node, PodSpec};
use serde_json::json;

pub const LIMIT: Duration = Duration::from_secs(60);
pub const NODE: &str = "k8s-1";

pub fn node(name: &str, ip: &str, cidr: &str) -> Node {
    let mut v = serde_json::to_value(fixture_node()).unwrap();
    v["metadata"]["name"] = json!(name);
    v["metadata"]["labels"]["kubernetes.io/hostname"] = json!(name);
    v["status"]["addresses"] = json!([
        {"type": "InternalIP", "address": ip},
        {"type": "Hostname", "address": name},
    ]);
    v["spec"] = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
    serde_json::from_value(v).unwrap()
}

/// A node netns (172.16.97.75 on eth0) behind a router netns that also
/// hosts the API server; Nodes k8s-1 (this one) and k8s-2. Removed on drop.
pub struct Lab {
    pub node_ns: String,
    pub router_ns: String,
    api: Option<RunningServer>,
    _state: tempfile::TempDir,
}

impl Lab {
    pub fn new(tag: &str, ip_forward: bool) -> Lab {
        let prefix = unique(tag);
        let state = tempfile::Builder::new().prefix(&prefix).tempdir().unwrap();
        let mut lab = Lab {
            node_ns: format!("{prefix}n"),
            router_ns: format!("{prefix}r"),
            api: None,
            _state: state,
        };
        ferry_netns::create_named(&lab.router_ns).unwrap();
        ferry_netns::create_named(&lab.node_ns).unwrap();
        let (n, r) = (Some(lab.node_ns.as_str()), Some(lab.router_ns.as_str()));
        ip(n, &["link", "set", "lo", "up"]);
        ip(r, &["link", "set", "lo", "up"]);
        ip(
            n,
            &[
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                "up0",
                "netns",
                &lab.router_ns,
            ],
        );
        ip(n, &["addr", "add", "172.16.97.75/24", "dev", "eth0"]);
        ip(n, &["link", "set", "eth0", "up"]);
        ip(n, &["route", "add", "default", "via", "172.16.97.1"]);
        ip(r, &["addr", "add", "172.16.97.1/24", "dev", "up0"]);
        ip(r, &["link", "set", "up0", "up"]);
        let value = if ip_forward { "1" } else { "0" };
        assert!(ns_exec(
            &lab.node_ns,
            &["sysctl", "-qw", &format!("net.ipv4.ip_forward={value}")]
        ));
        let ns = NetNs::open(Path::new(&format!("/run/netns/{}", lab.router_ns))).unwrap();
        let state_dir = lab._state.path().join("api");
        let api = ns
            .run(move || {
                ferry_apiserver::ApiServer::spawn_blocking(
                    ServerConfig {
                        listen: "172.16.97.1:0".parse().unwrap(),
                        token: String::new(),
                        state_dir,
                        sans: vec![],
                        history: 100,
                    },
                    vec![
                        node(NODE, "172.16.97.75", "10.244.0.0/24"),
                        node("k8s-2", "172.16.97.76", "10.244.1.0/24"),
                    ],
                )
            })
            .unwrap()
            .expect("start the API server");
        lab.api = Some(api);
        lab
    }

    pub fn api(&self) -> &RunningServer {
        self.api.as_ref().unwrap()
    }

    pub fn sandbox(&self) -> Sandbox {
        Sandbox::new(
            &self.node_ns,
            NODE,
            &ferry_testkit::plugin_dir(),
            self.api(),
        )
    }

    /// ferry's routes between nodes on the node.
    pub fn owned_routes(&self) -> String {
        ip(Some(&self.node_ns), &["route", "show", "proto", "201"])
    }

    /// The tc filters on the node's `eth0` ingress (where ferryd attaches
    /// the fast path).
    pub fn uplink_filters(&self) -> String {
        ferry_testkit::ingress_filters(&self.node_ns, "eth0")
    }

    pub fn has_nft_table(&self) -> bool {
        ns_exec(
            &self.node_ns,
            &["nft", "list", "table", "inet", ferryd::NFT_TABLE],
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.api.take();
        let _ = ferry_netns::delete_named(&self.node_ns);
        let _ = ferry_netns::delete_named(&self.router_ns);
    }
}

/// The DaemonSet pod of a checked-in file and its container `name`.
pub fn container(file: &str, name: &str) -> (PodSpec, Container) {
    let (_, objects) = checked_in()
        .into_iter()
        .find(|(f, _)| f == file)
        .unwrap_or_else(|| panic!("no {file}"));
    let spec = pod(daemonsets(&objects)[0]).clone();
    let c = containers(&spec)
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{file}: no container {name}"))
        .clone();
    (spec, c)
}
