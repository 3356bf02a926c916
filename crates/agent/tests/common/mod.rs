//! A lab like the seed's: node netns on one bridge (in a "switch" netns
//! that is also the router 172.16.97.1 and hosts the test API server), one
//! `ferryd run` per node. Everything is removed on drop.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_apiserver::{fixture_node, RunningServer, ServerConfig, Store};
use ferry_netns::NetNs;
use ferry_testkit::{ip, ns_exec, unique};
use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Value};

mod node;
pub mod policy;
pub use node::LabNode;

pub const ROUTER: &str = "172.16.97.1";
pub const FERRYD: &str = env!("CARGO_BIN_EXE_ferryd");

/// A bench binary's selection: the names given on its command line (none:
/// every one). Also points `FERRY_PLUGIN_DIR` at the debug build when the
/// plugins are not found otherwise (`cargo bench` builds only the bench).
pub fn bench_selection() -> impl Fn(&str) -> bool {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if std::env::var_os("FERRY_PLUGIN_DIR").is_none()
        && !ferry_testkit::plugin_dir().join("ferry").exists()
    {
        let debug = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug");
        std::env::set_var("FERRY_PLUGIN_DIR", debug);
    }
    move |name: &str| args.is_empty() || args.iter().any(|a| a == name)
}

/// Polls `f` until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    poll(limit, || f().ok_or_else(|| what.to_string()))
}

/// Polls `get` until it returns `want`, or panics after `limit` with
/// `what` and the last value it returned.
pub fn wait_for_eq<T: PartialEq + std::fmt::Debug>(
    limit: Duration,
    what: &str,
    want: &T,
    mut get: impl FnMut() -> T,
) {
    poll(limit, || {
        let got = get();
        if got == *want {
            Ok(())
        } else {
            Err(format!("{what}: got {got:?}, want {want:?}"))
        }
    })
}

/// Polls `f` every 100 ms until it returns `Ok`, or panics with its last
/// `Err` after `limit`.
fn poll<T>(limit: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(why) => assert!(start.elapsed() < limit, "timed out after {limit:?}: {why}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Node object as kubeadm makes it, with this name, InternalIP and
/// podCIDRs (none: the controller manager has not assigned one yet).
pub fn node_object(name: &str, ips: &[&str], cidrs: &[&str]) -> Node {
    let mut v = serde_json::to_value(fixture_node()).unwrap();
    v["metadata"]["name"] = json!(name);
    v["metadata"]["labels"]["kubernetes.io/hostname"] = json!(name);
    let mut addrs: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"type": "InternalIP", "address": ip}))
        .collect();
    addrs.push(json!({"type": "Hostname", "address": name}));
    v["status"]["addresses"] = json!(addrs);
    v["spec"] = match cidrs.first() {
        Some(first) => json!({"podCIDR": first, "podCIDRs": cidrs}),
        None => json!({}),
    };
    serde_json::from_value(v).unwrap()
}

/// A bpf file system of the test's own (outside /sys, which `ip netns
/// exec` replaces), so ferryd and the plugin share the pins; unmounted
/// and removed on drop, after the lab (declare it first).
pub struct BpfFs(pub PathBuf);

impl BpfFs {
    pub fn new(tag: &str) -> BpfFs {
        let dir = PathBuf::from(format!("/run/ferry-test-bpf-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        nix::mount::mount(
            Some("bpf"),
            &dir,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount a bpf file system");
        BpfFs(dir)
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The lab: switch/router netns, nodes, the API server.
pub struct Lab {
    pub prefix: String,
    pub switch: String,
    pub nodes: Vec<LabNode>,
    pub api: Option<RunningServer>,
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
    /// Prefix length of the nodes' subnet.
    pub plen: u8,
    extra_ns: Vec<String>,
}

impl Lab {
    /// `n` nodes `k8s-1..` at 172.16.97.75.. with 10.244.0.0/24.. (a node
    /// listed in `no_cidr` gets no podCIDR yet). No ferryd started.
    pub fn new(tag: &str, n: usize, no_cidr: &[usize]) -> Lab {
        Lab::build(tag, n, no_cidr, Vec::new(), 24)
    }

    /// [`Lab::new`] with more Node objects in the API (no netns behind
    /// them) and the nodes' subnet as 172.16.97.0/`plen`.
    pub fn build(tag: &str, n: usize, no_cidr: &[usize], extra: Vec<Node>, plen: u8) -> Lab {
        let prefix = unique(tag);
        let switch = format!("{prefix}sw");
        let dir = tempfile::Builder::new().prefix(&prefix).tempdir().unwrap();
        let mut lab = Lab {
            prefix: prefix.clone(),
            switch: switch.clone(),
            plen,
            nodes: Vec::new(),
            api: None,
            kubeconfig: PathBuf::new(),
            dir,
            extra_ns: Vec::new(),
        };
        ferry_netns::create_named(&switch).expect("switch netns");
        ip(Some(&switch), &["link", "set", "lo", "up"]);
        ip(Some(&switch), &["link", "add", "br0", "type", "bridge"]);
        ip(
            Some(&switch),
            &["addr", "add", &format!("{ROUTER}/{plen}"), "dev", "br0"],
        );
        ip(Some(&switch), &["link", "set", "br0", "up"]);
        assert!(ns_exec(
            &switch,
            &["sysctl", "-qw", "net.ipv4.ip_forward=1"]
        ));
        let mut objects = Vec::new();
        for i in 0..n {
            let node = lab.add_node_ns(i);
            let cidrs: Vec<&str> = if no_cidr.contains(&i) {
                vec![]
            } else {
                vec![node.cidr.as_str()]
            };
            objects.push(node_object(&node.name, &[&node.ip], &cidrs));
            lab.nodes.push(node);
        }
        objects.extend(extra);
        let ns = NetNs::open(Path::new(&format!("/run/netns/{switch}"))).unwrap();
        let state_dir = lab.dir.path().join("apiserver");
        // Bound inside the switch netns: the listener and the server's
        // runtime threads live there, reachable from every node.
        let api = ns
            .run(|| {
                ferry_apiserver::ApiServer::spawn_blocking(
                    ServerConfig {
                        listen: format!("{ROUTER}:0").parse().unwrap(),
                        token: String::new(),
                        state_dir,
                        sans: vec![],
                        history: 1000,
                    },
                    objects,
                )
            })
            .unwrap()
            .expect("start the API server");
        lab.kubeconfig = api.kubeconfig_path();
        lab.api = Some(api);
        lab
    }

    /// Node `i`'s netns, cabled to the bridge; not yet a Node object.
    pub fn add_node_ns(&mut self, i: usize) -> LabNode {
        let ns = format!("{}n{}", self.prefix, i + 1);
        ferry_netns::create_named(&ns).expect("node netns");
        let node_ip = format!("172.16.97.{}", 75 + i);
        let port = format!("p{}", i + 1);
        ip(Some(&ns), &["link", "set", "lo", "up"]);
        ip(
            Some(&self.switch),
            &[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        );
        ip(
            Some(&self.switch),
            &["link", "set", &port, "master", "br0", "up"],
        );
        ip(
            Some(&ns),
            &[
                "addr",
                "add",
                &format!("{node_ip}/{}", self.plen),
                "dev",
                "eth0",
            ],
        );
        ip(Some(&ns), &["link", "set", "eth0", "up"]);
        ip(Some(&ns), &["route", "add", "default", "via", ROUTER]);
        let dir = self.dir.path().join(format!("node{}", i + 1));
        fs::create_dir_all(&dir).unwrap();
        LabNode {
            name: format!("k8s-{}", i + 1),
            ns,
            ip: node_ip,
            cidr: format!("10.244.{i}.0/24"),
            dir,
            ferryd: None,
            flags: Vec::new(),
            pods: Vec::new(),
            bpf_root: "/sys/fs/bpf".into(),
            wrapper: Vec::new(),
        }
    }

    /// An "external" host 192.0.2.10 behind the router (not a node).
    pub fn add_external(&mut self) -> String {
        let ns = format!("{}ext", self.prefix);
        ferry_netns::create_named(&ns).expect("external netns");
        self.extra_ns.push(ns.clone());
        ip(Some(&ns), &["link", "set", "lo", "up"]);
        ip(
            Some(&self.switch),
            &[
                "link", "add", "ext", "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        );
        ip(
            Some(&self.switch),
            &["addr", "add", "192.0.2.1/24", "dev", "ext"],
        );
        ip(Some(&self.switch), &["link", "set", "ext", "up"]);
        ip(Some(&ns), &["addr", "add", "192.0.2.10/24", "dev", "eth0"]);
        ip(Some(&ns), &["link", "set", "eth0", "up"]);
        ip(Some(&ns), &["route", "add", "default", "via", "192.0.2.1"]);
        ns
    }

    pub fn store(&self) -> Store {
        self.api.as_ref().unwrap().store()
    }

    pub fn start_all(&mut self) {
        let kc = self.kubeconfig.clone();
        for n in &mut self.nodes {
            n.start_ferryd(&kc);
        }
    }

    pub fn wait_all_ready(&self) {
        for n in &self.nodes {
            n.wait_ready();
        }
    }

    /// Stops the API server (an outage): connections are cut.
    pub fn api_stop(&mut self) {
        self.api.as_mut().unwrap().stop();
    }

    /// Restarts it on the same address, binding inside the switch netns.
    pub fn api_restart(&mut self) {
        let ns = NetNs::open(Path::new(&format!("/run/netns/{}", self.switch))).unwrap();
        let api = self.api.as_mut().unwrap();
        ns.run(|| api.restart())
            .unwrap()
            .expect("restart the API server");
    }

    /// The Node's `NetworkUnavailable` condition (status, reason).
    pub fn network_condition(&self, node: &str) -> Option<(String, String)> {
        let n = self.store().get(node)?;
        let c = n
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "NetworkUnavailable")?;
        Some((c.status, c.reason.unwrap_or_default()))
    }

    /// All logs, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} ferryd log\n{}", n.name, n.log()))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.stop_ferryd();
        }
        self.nodes.clear();
        self.api = None;
        for ns in self.extra_ns.drain(..) {
            let _ = ferry_netns::delete_named(&ns);
        }
        let _ = ferry_netns::delete_named(&self.switch);
    }
}
