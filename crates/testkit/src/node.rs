//! [`Node`]: a node netns with pods, plugins called inside it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferry_netns::NetNs;

use crate::{finish, ip, ns_exec, plugin, start_plugin, unique, Call, Reply};

/// A node: a fresh netns with loopback, an uplink with a default route
/// (a real node has one; proxy ARP answers only for routable addresses) and
/// forwarding on. Pods are more netns. All removed on drop.
pub struct Node {
    pub name: String,
    pub path: PathBuf,
    ns: NetNs,
    pods: std::sync::Mutex<Vec<String>>,
    pub data_dir: PathBuf,
}

impl Node {
    pub fn new(tag: &str) -> Node {
        let name = unique(tag);
        let path = ferry_netns::create_named(&name).expect("create node netns");
        let ns = NetNs::open(&path).expect("open node netns");
        let data_dir = std::env::temp_dir().join(format!("{name}-ipam"));
        let node = Node {
            name: name.clone(),
            path,
            ns,
            pods: Default::default(),
            data_dir,
        };
        ip(Some(&name), &["link", "set", "lo", "up"]);
        // This kernel has no dummy driver: the uplink is a veth whose far
        // end stays in the node, up, with nobody behind it.
        ip(
            Some(&name),
            &[
                "link",
                "add",
                "uplink",
                "type",
                "veth",
                "peer",
                "name",
                "uplink-far",
            ],
        );
        ip(Some(&name), &["link", "set", "uplink-far", "up"]);
        ip(Some(&name), &["link", "set", "uplink", "up"]);
        ip(
            Some(&name),
            &["addr", "add", "172.16.97.75/24", "dev", "uplink"],
        );
        ip(
            Some(&name),
            &["-6", "addr", "add", "fd97::75/64", "dev", "uplink", "nodad"],
        );
        ip(
            Some(&name),
            &[
                "route",
                "add",
                "default",
                "via",
                "172.16.97.1",
                "dev",
                "uplink",
            ],
        );
        ip(
            Some(&name),
            &[
                "-6", "route", "add", "default", "via", "fd97::1", "dev", "uplink",
            ],
        );
        for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            assert!(ns_exec(&name, &["sysctl", "-qw", key]));
        }
        node
    }

    /// A node whose routing table has no default route (both families):
    /// the uplink and its connected prefixes only, as on a node whose
    /// default route is missing or not yet set up.
    pub fn without_default_route(tag: &str) -> Node {
        let node = Node::new(tag);
        node.drop_default_routes();
        node
    }

    /// Deletes the node's default routes (both families).
    pub fn drop_default_routes(&self) {
        ip(Some(&self.name), &["route", "del", "default"]);
        ip(Some(&self.name), &["-6", "route", "del", "default"]);
        let left = ip(Some(&self.name), &["route", "show", "default"])
            + &ip(Some(&self.name), &["-6", "route", "show", "default"]);
        assert!(left.trim().is_empty(), "default routes left: {left}");
    }

    /// A new pod netns with loopback up; its path.
    pub fn pod(&self, tag: &str) -> String {
        let name = format!("{}-{tag}", self.name);
        ferry_netns::create_named(&name).expect("create pod netns");
        ip(Some(&name), &["link", "set", "lo", "up"]);
        self.pods.lock().unwrap().push(name.clone());
        name
    }

    pub fn pod_path(pod: &str) -> String {
        format!("/run/netns/{pod}")
    }

    /// Delete a pod's netns now (as a runtime does after DEL or on crash).
    pub fn drop_pod(&self, pod: &str) {
        let _ = ferry_netns::delete_named(pod);
        self.pods.lock().unwrap().retain(|p| p != pod);
    }

    /// Run a plugin binary inside the node's netns, as the runtime on that
    /// node would, and collect its answer.
    pub fn run(&self, binary: &str, call: &Call) -> Reply {
        self.run_timed(binary, call).0
    }

    /// [`Node::run`], and how long the plugin process took from spawn to
    /// exit (the namespace switch is not counted).
    pub fn run_timed(&self, binary: &str, call: &Call) -> (Reply, std::time::Duration) {
        let (out, took) = self
            .ns
            .run(|| {
                let start = std::time::Instant::now();
                let out = start_plugin(binary, call)
                    .wait_with_output()
                    .expect("wait plugin");
                (out, start.elapsed())
            })
            .expect("enter node netns");
        (finish(out), took)
    }

    /// Start a plugin binary in the node's netns with its stdin written,
    /// without waiting for it.
    pub fn spawn(&self, binary: &str, call: &Call) -> std::process::Child {
        self.ns
            .run(|| start_plugin(binary, call))
            .expect("enter node netns")
    }

    pub fn ferry(&self, call: &Call) -> Reply {
        self.run(&plugin("ferry"), call)
    }

    /// Names of the node's links (the leak check's view).
    pub fn links(&self) -> BTreeSet<String> {
        ip(Some(&self.name), &["-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|s| s.trim().split('@').next().unwrap().to_string())
            .collect()
    }

    /// The node's routes, both families, as text lines.
    pub fn routes(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = ip(Some(&self.name), &["route", "show"])
            .lines()
            .map(str::to_string)
            .collect();
        all.extend(
            ip(Some(&self.name), &["-6", "route", "show"])
                .lines()
                .map(str::to_string),
        );
        all
    }

    /// Files under the IPAM data dir (recursively), the leak check's view.
    pub fn ipam_files(&self) -> BTreeSet<String> {
        fn walk(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.insert(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(&self.data_dir, &self.data_dir, &mut out);
        out
    }

    /// Reserved IPs in the IPAM data dir (files named like an address).
    pub fn reserved_ips(&self) -> BTreeSet<String> {
        self.ipam_files()
            .into_iter()
            .filter_map(|f| {
                let name = f.rsplit('/').next().unwrap().to_string();
                name.parse::<std::net::IpAddr>().ok().map(|_| name)
            })
            .collect()
    }

    /// A ferry config with the built-in IPAM over `ranges` (JSON list of
    /// range sets), in `version`.
    pub fn conf(&self, version: &str, ranges: &str) -> String {
        format!(
            r#"{{"cniVersion":"{version}","name":"ferrytest","type":"ferry","mtu":1500,
               "ipam":{{"type":"ferry-ipam","ranges":{ranges},"dataDir":"{}"}}}}"#,
            self.data_dir.display()
        )
    }

    pub fn conf_v4(&self, version: &str) -> String {
        self.conf(version, r#"[[{"subnet":"10.244.0.0/24"}]]"#)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for pod in self.pods.lock().unwrap().drain(..) {
            let _ = ferry_netns::delete_named(&pod);
        }
        let _ = ferry_netns::delete_named(&self.name);
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
