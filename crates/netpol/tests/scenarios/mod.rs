//! The golden scenarios: one small cluster, policies as the API server
//! serves them (JSON → k8s-openapi → the crate's model).

#![allow(dead_code)]

use ferry_netpol::{convert, Cluster, NamedPort, Namespace, Pod, Protocol};
use serde_json::{json, Value};

pub const NODE: &str = "node-a";

fn labels(pairs: &[(&str, &str)]) -> ferry_netpol::model::Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pod(
    ns: &str,
    name: &str,
    l: &[(&str, &str)],
    ips: &[&str],
    node: &str,
    ports: &[(&str, Protocol, u16)],
) -> Pod {
    Pod {
        namespace: ns.into(),
        name: name.into(),
        labels: labels(l),
        ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        node: node.into(),
        host_network: false,
        ports: ports
            .iter()
            .map(|(n, protocol, port)| NamedPort {
                name: n.to_string(),
                protocol: *protocol,
                port: *port,
            })
            .collect(),
    }
}

/// Three namespaces of workloads and kube-system, pods on node-a (local)
/// and node-b.
pub fn cluster() -> Cluster {
    use Protocol::*;
    Cluster {
        namespaces: vec![
            Namespace {
                name: "default".into(),
                labels: labels(&[]),
            },
            Namespace {
                name: "prod".into(),
                labels: labels(&[("team", "prod")]),
            },
            Namespace {
                name: "dev".into(),
                labels: labels(&[("team", "dev")]),
            },
            Namespace {
                name: "kube-system".into(),
                labels: labels(&[]),
            },
        ],
        pods: vec![
            pod(
                "default",
                "web-1",
                &[("app", "web")],
                &["10.244.0.10", "fd00:10:244::a"],
                NODE,
                &[("http", Tcp, 8080)],
            ),
            pod(
                "default",
                "web-2",
                &[("app", "web")],
                &["10.244.0.11", "fd00:10:244::b"],
                NODE,
                &[("http", Tcp, 9090)],
            ),
            pod(
                "default",
                "db-1",
                &[("app", "db")],
                &["10.244.0.12"],
                NODE,
                &[("pg", Tcp, 5432)],
            ),
            pod(
                "default",
                "web-3",
                &[("app", "web")],
                &["10.244.1.11"],
                "node-b",
                &[("http", Tcp, 8081)],
            ),
            pod(
                "default",
                "client",
                &[("app", "client")],
                &["10.244.1.20", "fd00:10:244:1::14"],
                "node-b",
                &[],
            ),
            pod(
                "prod",
                "api",
                &[("app", "api"), ("role", "frontend")],
                &["10.244.1.30"],
                "node-b",
                &[("http", Tcp, 8443)],
            ),
            pod(
                "prod",
                "batch",
                &[("app", "batch")],
                &["10.244.1.31"],
                "node-b",
                &[],
            ),
            pod(
                "dev",
                "api",
                &[("app", "api"), ("role", "frontend")],
                &["10.244.1.40"],
                "node-b",
                &[],
            ),
            pod(
                "kube-system",
                "coredns",
                &[("k8s-app", "kube-dns")],
                &["10.244.1.53", "fd00:10:244:1::35"],
                "node-b",
                &[("dns", Udp, 53), ("dns-tcp", Tcp, 53)],
            ),
        ],
        policies: vec![],
    }
}

pub fn np(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "namespace": ns, "name": name },
        "spec": spec,
    })
}

/// (name, policies) for every golden scenario.
pub fn all() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        (
            "default_deny_ingress",
            vec![np(
                "default",
                "deny-all",
                json!({
                    "podSelector": {}, "policyTypes": ["Ingress"]
                }),
            )],
        ),
        (
            "allow_all",
            vec![np(
                "default",
                "allow-all",
                json!({
                    "podSelector": {}, "ingress": [{}], "egress": [{}]
                }),
            )],
        ),
        (
            "allow_from_namespace",
            vec![np(
                "default",
                "web-from-prod",
                json!({
                    "podSelector": { "matchLabels": { "app": "web" } },
                    "ingress": [{ "from": [{ "namespaceSelector": { "matchLabels": { "team": "prod" } } }] }]
                }),
            )],
        ),
        (
            "pod_and_namespace",
            vec![np(
                "default",
                "web-from-prod-frontend",
                json!({
                    "podSelector": { "matchExpressions": [{ "key": "app", "operator": "In", "values": ["web", "db"] }] },
                    "ingress": [{ "from": [
                        { "namespaceSelector": { "matchExpressions": [{ "key": "team", "operator": "NotIn", "values": ["dev"] }] },
                          "podSelector": { "matchLabels": { "role": "frontend" } } },
                        { "podSelector": { "matchExpressions": [{ "key": "app", "operator": "Exists" }] } }
                    ] }]
                }),
            )],
        ),
        (
            "ip_block_except",
            vec![np(
                "default",
                "web-from-blocks",
                json!({
                    "podSelector": { "matchLabels": { "app": "web" } },
                    "ingress": [{ "from": [
                        { "ipBlock": { "cidr": "10.0.0.0/8", "except": ["10.244.0.0/16", "10.1.2.0/24"] } },
                        { "ipBlock": { "cidr": "192.168.7.0/24" } },
                        { "ipBlock": { "cidr": "fd00::/8", "except": ["fd00:10:244::/48"] } }
                    ], "ports": [{ "port": 443 }] }]
                }),
            )],
        ),
        (
            "named_ports",
            vec![np(
                "default",
                "web-http",
                json!({
                    "podSelector": { "matchLabels": { "app": "web" } },
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{ "from": [{ "podSelector": { "matchLabels": { "app": "client" } } }],
                                  "ports": [{ "port": "http" }] }],
                    "egress": [{ "to": [{ "namespaceSelector": {} , "podSelector": { "matchLabels": { "app": "api" } } }],
                                 "ports": [{ "protocol": "TCP", "port": "http" }] }]
                }),
            )],
        ),
        (
            "end_port",
            vec![np(
                "default",
                "db-range",
                json!({
                    "podSelector": { "matchLabels": { "app": "db" } },
                    "ingress": [{ "ports": [
                        { "protocol": "TCP", "port": 5432 },
                        { "protocol": "TCP", "port": 30000, "endPort": 32767 },
                        { "protocol": "UDP", "port": 5000, "endPort": 5010 }
                    ] }]
                }),
            )],
        ),
        (
            "egress_dns_only",
            vec![np(
                "default",
                "dns-only",
                json!({
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        { "ports": [{ "protocol": "UDP", "port": 53 }] },
                        { "to": [{ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } },
                                   "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } } }],
                          "ports": [{ "protocol": "TCP", "port": "dns-tcp" }] }
                    ]
                }),
            )],
        ),
        (
            "multiple_policies_union",
            vec![
                np(
                    "default",
                    "web-from-client",
                    json!({
                        "podSelector": { "matchLabels": { "app": "web" } },
                        "ingress": [{ "from": [{ "podSelector": { "matchLabels": { "app": "client" } } }],
                                      "ports": [{ "port": 80 }] }]
                    }),
                ),
                np(
                    "default",
                    "all-from-prod",
                    json!({
                        "podSelector": {},
                        "ingress": [{ "from": [{ "namespaceSelector": { "matchLabels": { "team": "prod" } } }] }]
                    }),
                ),
            ],
        ),
        (
            "no_local_pod",
            vec![
                np(
                    "prod",
                    "api-deny",
                    json!({ "podSelector": { "matchLabels": { "app": "api" } } }),
                ),
                np(
                    "default",
                    "nothing-selected",
                    json!({
                        "podSelector": { "matchLabels": { "app": "nosuch" } },
                        "policyTypes": ["Ingress", "Egress"]
                    }),
                ),
            ],
        ),
        (
            "egress_internet_only",
            vec![np(
                "default",
                "internet",
                json!({
                    "podSelector": { "matchLabels": { "app": "db" } },
                    "policyTypes": ["Egress"],
                    "egress": [{ "to": [
                        { "ipBlock": { "cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] } },
                        { "ipBlock": { "cidr": "::/0", "except": ["fc00::/7"] } }
                    ] }]
                }),
            )],
        ),
        (
            "sctp",
            vec![np(
                "default",
                "web-sctp",
                json!({
                    "podSelector": { "matchLabels": { "app": "web" } },
                    "ingress": [{ "ports": [{ "protocol": "SCTP", "port": 5000 }, { "protocol": "SCTP", "port": 7000, "endPort": 7010 }] },
                                { "from": [{ "ipBlock": { "cidr": "10.0.0.0/8" } }], "ports": [{ "protocol": "SCTP" }] }]
                }),
            )],
        ),
    ]
}

/// The policies of scenario `name`.
pub fn policies(name: &str) -> Vec<Value> {
    all()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
        .1
}

/// The cluster with a scenario's policies in it.
pub fn with_policies(policies: &[Value]) -> Cluster {
    let mut c = cluster();
    for p in policies {
        let k: k8s_openapi::api::networking::v1::NetworkPolicy =
            serde_json::from_value(p.clone()).expect("NetworkPolicy JSON");
        let (policy, problems) = convert::network_policy(&k).expect("policy converts");
        assert!(problems.is_empty(), "{problems:?}");
        c.policies.push(policy);
    }
    c
}

/// A scenario's rendered table.
pub fn rendered(policies: &[Value]) -> String {
    let rs = ferry_netpol::compile(&with_policies(policies), &ferry_netpol::Options::new(NODE));
    ferry_netpol::render(&rs)
}

/// The scenario also rendered with drops logged (`--policy-log`): its
/// golden is `<name>.drop_log.nft`.
pub const DROP_LOG_SCENARIO: &str = "named_ports";

/// Scenario `name` compiled with drops logged ([`ferry_netpol::DropLog`]'s
/// defaults).
pub fn with_drop_log(name: &str) -> ferry_netpol::Ruleset {
    let opts = ferry_netpol::Options::new(NODE).with_drop_log(Some(Default::default()));
    ferry_netpol::compile(&with_policies(&policies(name)), &opts)
}

/// `old` after pod churn: a third local web pod (named port http 8088)
/// arrives, the peer dev/api leaves, the client changes address.
pub fn churned(old: &Cluster) -> Cluster {
    let mut c = old.clone();
    c.pods.push(Pod {
        namespace: "default".into(),
        name: "web-4".into(),
        labels: [("app".to_string(), "web".to_string())].into(),
        ips: vec![
            "10.244.0.14".parse().unwrap(),
            "fd00:10:244::e".parse().unwrap(),
        ],
        node: NODE.into(),
        host_network: false,
        ports: vec![NamedPort {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: 8088,
        }],
    });
    c.pods
        .retain(|p| !(p.namespace == "dev" && p.name == "api"));
    for p in &mut c.pods {
        if p.name == "client" {
            p.ips = vec!["10.244.1.21".parse().unwrap()];
        }
    }
    c
}

/// `text` with each element list on one line, its elements sorted.
pub fn normalized(text: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        match lines.last_mut() {
            Some(last) if last.contains("elements = {") && !last.ends_with('}') => {
                last.push(' ');
                last.push_str(t);
            }
            _ => lines.push(t.to_string()),
        }
    }
    for l in &mut lines {
        if let Some(list) = l
            .strip_prefix("elements = { ")
            .and_then(|r| r.strip_suffix(" }"))
        {
            let mut items: Vec<&str> = list.split(", ").collect();
            items.sort();
            *l = format!("elements = {{ {} }}", items.join(", "));
        }
    }
    lines.join("\n")
}
