//! Fuzzing ferryd's outside input: the kubeconfig (`--kubeconfig`) and the
//! Node objects the API server sends. No panic, no hang; a kubeconfig is
//! either refused with an error or gives a config that verifies TLS; any
//! Node, however malformed, yields a view and a desired state (or a reason
//! to wait) whose routes only name well-formed CIDRs.
//!
//! `cargo test -p ferryd --test fuzz_inputs` runs a short pass;
//! `FERRY_FUZZ_CASES=1000000 cargo test --release -p ferryd --test fuzz_inputs`
//! a million cases per target (knobs: crates/cni/tests/support/fuzz.rs).

#[path = "../../cni/tests/support/fuzz.rs"]
mod fuzz;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use ferryd::cli::{Advertise, Encapsulation, Routing};
use ferryd::desired::{compute, Settings};
use ferryd::discovery::{LocalAddr, NodeInfo, Nodes};
use ferryd::watch::{apply_event, View};
use fuzz::{json_input, mutate_bytes, run};
use k8s_openapi::api::core::v1::Node;
use kube::runtime::watcher::Event;
use serde_json::{json, Value};

const KUBE_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "clusters",
    "contexts",
    "users",
    "name",
    "cluster",
    "context",
    "user",
    "server",
    "certificate-authority-data",
    "certificate-authority",
    "insecure-skip-tls-verify",
    "tls-server-name",
    "proxy-url",
    "current-context",
    "namespace",
    "token",
    "client-certificate-data",
    "client-key-data",
    "username",
    "password",
    "extensions",
    "preferences",
];

const KUBE_STRINGS: &[&str] = &[
    "https://127.0.0.1:6443",
    "https://[::1]:6443/",
    "http://10.0.0.1",
    "https://",
    "unix:///x",
    "socks5://127.0.0.1:1080",
    "c",
    "u",
    "v1",
    "Config",
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==",
    "bm90IGEgY2VydA==",
    "!!!",
    "/nonexistent/ca.crt",
];

fn kubeconfig() -> Value {
    json!({"apiVersion":"v1","kind":"Config",
        "clusters":[{"name":"c","cluster":{"server":"https://127.0.0.1:6443",
            "insecure-skip-tls-verify":false,"tls-server-name":"kubernetes"}}],
        "contexts":[{"name":"c","context":{"cluster":"c","user":"u","namespace":"kube-system"}}],
        "current-context":"c",
        "users":[{"name":"u","user":{"token":"abc"}}]})
}

const YAML: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: false\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: abc}\n";

#[test]
fn fuzz_kubeconfig() {
    ferryd::kube_client::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::TempDir::new_in("/dev/shm").unwrap();
    let path: PathBuf = tmp.path().join("kubeconfig");
    let samples = vec![kubeconfig()];
    let yaml = vec![YAML.as_bytes().to_vec()];
    let accepted = AtomicU64::new(0);
    let ran = run(
        "kubeconfig",
        1000,
        |rng| {
            // JSON is YAML too: tree mutations, plus byte mutations of a
            // YAML text.
            let bytes = if rng.one_in(3) {
                mutate_bytes(rng, YAML.as_bytes(), &yaml)
            } else {
                json_input(rng, &samples, KUBE_KEYS, KUBE_STRINGS)
            };
            Text(bytes)
        },
        |text| {
            std::fs::write(&path, &text.0).unwrap();
            match rt.block_on(ferryd::kube_client::config(Some(&path))) {
                Ok(c) => {
                    assert!(!c.accept_invalid_certs);
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => assert!(e.to_string().contains("kubeconfig"), "{e}"),
            }
        },
    );
    // Enough mutants are still kubeconfigs to get past the YAML layer.
    let accepted = accepted.into_inner();
    assert!(
        ran < 100 || accepted * 20 > ran,
        "{accepted} of {ran} accepted"
    );
}

fn node(name: &str, ip: &str, cidrs: &[&str]) -> Value {
    json!({"apiVersion":"v1","kind":"Node",
        "metadata":{"name":name,"resourceVersion":"7","labels":{"kubernetes.io/os":"linux"}},
        "spec":{"podCIDR":cidrs.first(),"podCIDRs":cidrs},
        "status":{"addresses":[{"type":"InternalIP","address":ip},{"type":"Hostname","address":name}],
            "conditions":[{"type":"NetworkUnavailable","status":"False","reason":"FerryIsUp"},
                          {"type":"Ready","status":"True"}]}})
}

const NODE_KEYS: &[&str] = &[
    "metadata",
    "name",
    "spec",
    "status",
    "podCIDR",
    "podCIDRs",
    "addresses",
    "type",
    "address",
    "conditions",
    "reason",
    "taints",
    "unschedulable",
];

const NODE_STRINGS: &[&str] = &[
    "InternalIP",
    "ExternalIP",
    "NetworkUnavailable",
    "True",
    "False",
    "FerryIsUp",
    "k8s-master",
    "k8s-worker-1",
    "172.16.97.75",
    "172.16.97.76",
    "172.16.97.75/24",
];

#[test]
fn fuzz_node_objects() {
    let own = node(
        "k8s-master",
        "172.16.97.75",
        &["10.244.0.0/24", "fd00:10:244::/64"],
    );
    let samples = vec![
        node(
            "k8s-worker-1",
            "172.16.97.76",
            &["10.244.1.0/24", "fd00:10:244:1::/64"],
        ),
        node("k8s-master", "172.16.97.75", &["10.244.0.0/24"]),
        node("k8s-worker-2", "fd99::77", &[]),
    ];
    let local = vec![LocalAddr {
        ifindex: 2,
        ifname: "eth0".into(),
        mtu: 1500,
        net: "172.16.97.75/24".parse().unwrap(),
    }];
    let own: Node = serde_json::from_value(own).unwrap();
    let computed = AtomicU64::new(0);
    let ran = run(
        "Node objects",
        3000,
        |rng| {
            let routing = *rng.pick(&[Routing::Direct, Routing::Ospf, Routing::Bgp]);
            (
                Text(json_input(rng, &samples, NODE_KEYS, NODE_STRINGS)),
                routing,
            )
        },
        |(text, routing)| {
            let Ok(node) = serde_json::from_slice::<Node>(&text.0) else {
                return;
            };
            let info = NodeInfo::from_node(&node);
            assert!(info.pod_cidrs.iter().all(|c| c.trunc() == *c));
            // As the watch sees it: the own Node listed, then this one.
            let mut view = View::default();
            let mut buffer: Option<Nodes> = None;
            apply_event(&mut view, &mut buffer, Event::Init);
            apply_event(&mut view, &mut buffer, Event::InitApply(own.clone()));
            apply_event(&mut view, &mut buffer, Event::InitDone);
            apply_event(&mut view, &mut buffer, Event::Apply(node.clone()));
            let settings = Settings {
                node_name: Some("k8s-master".into()),
                routing: *routing,
                encapsulation: if *routing == Routing::Direct {
                    Encapsulation::CrossSubnet
                } else {
                    Encapsulation::Never
                },
                encryption: ferryd::cli::Encryption::None,
                wireguard_port: 51820,
                advertise: Advertise::Aggregate,
                cluster_cidrs: Vec::new(),
                mtu: None,
                ipam_data_dir: "/run/ferry/ipam".into(),
                bgp_asn: 64512,
                cni_version: "1.0.0".into(),
                fast_path: Some("/sys/fs/bpf/ferry".into()),
                policy_dir: Some("/run/ferry/policy".into()),
            };
            if let Ok(d) = compute(&settings, &view.nodes, &local) {
                computed.fetch_add(1, Ordering::Relaxed);
                let conflist: Value = serde_json::from_str(&d.conflist).expect("a JSON conflist");
                assert_eq!(conflist["plugins"][0]["type"], "ferry");
                assert!(d.routes.iter().all(|r| !d.pod_cidrs.contains(&r.dst)));
            }
            apply_event(&mut view, &mut buffer, Event::Delete(node));
        },
    );
    let computed = computed.into_inner();
    assert!(
        ran < 100 || computed * 20 > ran,
        "{computed} of {ran} computed"
    );
}

/// Bytes shown as text in a failure report.
struct Text(Vec<u8>);

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}
