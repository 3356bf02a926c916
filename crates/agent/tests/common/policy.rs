//! NetworkPolicy helpers: API objects into the lab's store, and the
//! policy table of a node netns.

use std::process::Command;

use ferry_apiserver::Store;
use serde_json::{json, Value};

use super::LabNode;

/// The table ferryd's policy controller owns.
pub const POLICY_TABLE: &str = "ferry-policy";

/// Adds (or replaces) a Namespace with `labels`.
pub fn put_namespace(store: &Store, name: &str, labels: Value) {
    store
        .put(json!({"kind": "Namespace", "apiVersion": "v1",
                    "metadata": {"name": name, "labels": labels}}))
        .unwrap();
}

/// Adds (or replaces) a running Pod on `node` with address `ip`.
pub fn put_pod(store: &Store, ns: &str, name: &str, node: &str, ip: &str, labels: Value) {
    store
        .put(json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x",
                     "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
        }))
        .unwrap();
}

/// A pod made on `node` through the installed conflist (as
/// [`LabNode::add_pod`]) and put in the API as running `default/<name>`
/// with `labels`: (its netns, its IPv4 address).
pub fn add_api_pod(
    lab: &mut super::Lab,
    node: usize,
    name: &str,
    labels: Value,
) -> (String, String) {
    let (netns, ip) = lab.nodes[node].add_pod(name);
    let node_name = lab.nodes[node].name.clone();
    put_pod(&lab.store(), "default", name, &node_name, &ip, labels);
    (netns, ip)
}

/// Adds (or replaces) a NetworkPolicy with `spec`.
pub fn put_policy(store: &Store, ns: &str, name: &str, spec: Value) {
    store
        .put(
            json!({"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
                    "metadata": {"name": name, "namespace": ns}, "spec": spec}),
        )
        .unwrap();
}

/// A cluster at scale in `store`: 50 Namespaces (`team=t0..t4`), `pods`
/// running Pods over 20 nodes (every 20th on `k8s-1`, addresses in
/// 10.100.0.0/14, labels `app=app0..39`, `tier=t0..2`), and `policies`
/// NetworkPolicies over the namespaces (selecting by `app`; a quarter
/// also isolating egress; peers by namespace and pod selector, an ipBlock
/// with except, numbered and named ports).
pub fn populate(store: &Store, pods: usize, policies: usize) {
    for ns in 0..50 {
        put_namespace(
            store,
            &format!("ns{ns}"),
            json!({"team": format!("t{}", ns % 5)}),
        );
    }
    for i in 0..pods {
        let node = if i % 20 == 0 {
            "k8s-1".to_string()
        } else {
            format!("node-{}", i % 20)
        };
        let ip = format!(
            "10.{}.{}.{}",
            100 + i % 20,
            (i / 20) / 250,
            (i / 20) % 250 + 2
        );
        let labels = json!({"app": format!("app{}", i % 40), "tier": format!("t{}", i % 3)});
        put_pod(
            store,
            &format!("ns{}", i % 50),
            &format!("pod-{i}"),
            &node,
            &ip,
            labels,
        );
    }
    for i in 0..policies {
        let spec = json!({
            "podSelector": {"matchLabels": {"app": format!("app{}", i % 40)}},
            "policyTypes": if i % 4 == 0 { json!(["Ingress", "Egress"]) } else { json!(["Ingress"]) },
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": format!("t{}", i % 5)}},
                                  "podSelector": {"matchLabels": {"tier": "t1"}}},
                                 {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}}],
                         "ports": [{"port": 8080}, {"port": "http"}]}],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"tier": "t2"}}}], "ports": [{"port": 53, "protocol": "UDP"}]}]
        });
        put_policy(store, &format!("ns{}", i % 50), &format!("np-{i}"), spec);
    }
}

/// `nft list table inet ferry-policy` in the node, `None` if absent.
pub fn policy_table(node: &LabNode) -> Option<String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &node.ns,
            "nft",
            "list",
            "table",
            "inet",
            POLICY_TABLE,
        ])
        .output()
        .expect("run nft");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Loads `text` (nft syntax) into the node, as an earlier ferryd would
/// have left it.
pub fn load_table(node: &LabNode, text: &str) {
    let file = node.dir.join("policy.nft");
    std::fs::write(&file, text).unwrap();
    let ok = ferry_testkit::ns_exec(&node.ns, &["nft", "-f", &file.display().to_string()]);
    assert!(ok, "nft -f {text}");
}

/// A metric series' value (`name{labels}` exactly as rendered).
pub fn series(node: &LabNode, series: &str) -> Option<f64> {
    node.metric(series)
}

/// A TCP server in a pod netns, accepting and closing connections until
/// dropped.
pub struct Server {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn netns(name: &str) -> ferry_netns::NetNs {
    ferry_netns::NetNs::open(std::path::Path::new(&format!("/run/netns/{name}"))).unwrap()
}

/// Listens on `port` (every address) in netns `ns`.
pub fn serve(ns: &str, port: u16) -> Server {
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = netns(ns)
        .run(|| std::net::TcpListener::bind(("0.0.0.0", port)))
        .unwrap()
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => drop(s),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    });
    Server {
        stop,
        thread: Some(thread),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether a TCP connect from netns `from` to `ip:port` succeeds within
/// 500 ms.
pub fn connects(from: &str, ip: &str, port: u16) -> bool {
    let addr = std::net::SocketAddr::new(ip.parse().unwrap(), port);
    netns(from)
        .run(|| {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500))
                .is_ok()
        })
        .unwrap()
}

/// Waits until a connect from `from` to `ip:port` succeeds (`open`) or
/// fails (`!open`) twice in a row.
pub fn expect(from: &str, ip: &str, port: u16, open: bool, why: &str) {
    super::wait_for(
        std::time::Duration::from_secs(30),
        &format!(
            "{from} -> {ip}:{port} {}: {why}",
            if open { "open" } else { "blocked" }
        ),
        || (connects(from, ip, port) == open && connects(from, ip, port) == open).then_some(()),
    );
}
