//! The dataplane tests' world: web and db pods on this node (n1), client
//! and other elsewhere, two policies; the same wiring and the same
//! verdicts whichever way the table is loaded.

use ferry_netpol::model::Labels;
use ferry_netpol::{
    Cluster, LabelSelector, NamedPort, Namespace, NetworkPolicy, Peer, Pod, PolicyTypes, Port,
    PortRef, Protocol, Rule,
};

use super::Lab;

/// The node whose pods the table guards.
pub const NODE: &str = "n1";

/// (tag, app, namespace, node, IPv4, IPv6, named port "http", served ports)
type PodSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<u16>,
    &'static [u16],
);

/// web (local) serves its named port "http" = 8080 and 9999; db (local)
/// serves 5432; client (elsewhere) serves 8080; other (prod, elsewhere).
pub const PODS: [PodSpec; 4] = [
    (
        "web",
        "web",
        "default",
        "n1",
        "10.244.0.10",
        "fd00:10:244::a",
        Some(8080),
        &[8080, 9999],
    ),
    (
        "db",
        "db",
        "default",
        "n1",
        "10.244.0.12",
        "fd00:10:244::c",
        None,
        &[5432],
    ),
    (
        "client",
        "client",
        "default",
        "n2",
        "10.244.1.20",
        "fd00:10:244:1::14",
        None,
        &[8080],
    ),
    (
        "other",
        "client",
        "prod",
        "n2",
        "10.244.1.30",
        "fd00:10:244:1::1e",
        None,
        &[],
    ),
];

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sel(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

/// A pod of the cluster (IPv6 too when `dual_stack`).
pub fn pod(spec: &PodSpec, dual_stack: bool) -> Pod {
    let (tag, app, ns, node, ip4, ip6, http, _) = *spec;
    let mut ips = vec![ip4.parse().unwrap()];
    if dual_stack {
        ips.push(ip6.parse().unwrap());
    }
    Pod {
        namespace: ns.into(),
        name: tag.into(),
        labels: labels(&[("app", app)]),
        ips,
        node: node.into(),
        host_network: false,
        ports: http
            .map(|port| NamedPort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port,
            })
            .into_iter()
            .collect(),
    }
}

fn from(app: &str, ports: Vec<Port>) -> Rule {
    Rule {
        peers: vec![Peer::Pods {
            namespaces: None,
            pods: Some(sel(&[("app", app)])),
        }],
        ports,
    }
}

fn tcp(port: u16) -> Port {
    Port {
        protocol: Protocol::Tcp,
        port: Some(PortRef::Range {
            start: port,
            end: port,
        }),
    }
}

/// web: ingress from client on the named port, from db on 8080; db:
/// nothing in, out only to web:8080.
pub fn cluster(dual_stack: bool) -> Cluster {
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
        ],
        pods: PODS.iter().map(|p| pod(p, dual_stack)).collect(),
        policies: vec![
            NetworkPolicy {
                namespace: "default".into(),
                name: "web-http".into(),
                pod_selector: sel(&[("app", "web")]),
                policy_types: None,
                ingress: vec![
                    from(
                        "client",
                        vec![Port {
                            protocol: Protocol::Tcp,
                            port: Some(PortRef::Named("http".into())),
                        }],
                    ),
                    from("db", vec![tcp(8080)]),
                ],
                egress: vec![],
            },
            NetworkPolicy {
                namespace: "default".into(),
                name: "db-lockdown".into(),
                pod_selector: sel(&[("app", "db")]),
                policy_types: Some(PolicyTypes {
                    ingress: true,
                    egress: true,
                }),
                ingress: vec![],
                egress: vec![Rule {
                    peers: vec![Peer::Pods {
                        namespaces: None,
                        pods: Some(sel(&[("app", "web")])),
                    }],
                    ports: vec![tcp(8080)],
                }],
            },
        ],
    }
}

/// The pods' netns, wired to the node, servers running.
pub fn wire(lab: &mut Lab, dual_stack: bool) {
    for (tag, _, _, _, ip4, ip6, _, ports) in PODS {
        lab.pod_dual(tag, ip4, dual_stack.then_some(ip6), ports);
    }
}

/// The address of pod `tag` in the family of `v6`.
pub fn addr(tag: &str, v6: bool) -> &'static str {
    let p = PODS.iter().find(|p| p.0 == tag).unwrap();
    if v6 {
        p.5
    } else {
        p.4
    }
}

/// Every connection the policies allow connects and every one they deny
/// does not, over IPv4 or IPv6.
pub fn judge(lab: &Lab, v6: bool) {
    let a = |tag| addr(tag, v6);
    let fam = if v6 { "IPv6" } else { "IPv4" };
    // web: client on the named port only; db on 8080; nobody else.
    assert!(lab.connects("client", a("web"), 8080), "{fam}");
    assert!(!lab.connects("client", a("web"), 9999), "{fam}");
    assert!(!lab.connects("other", a("web"), 8080), "{fam}");
    assert!(lab.connects("db", a("web"), 8080), "{fam}");
    // db: nothing in; out only to web:8080.
    assert!(!lab.connects("client", a("db"), 5432), "{fam}");
    assert!(!lab.connects("web", a("db"), 5432), "{fam}");
    assert!(!lab.connects("db", a("web"), 9999), "{fam}");
    assert!(!lab.connects("db", a("client"), 8080), "{fam}");
    // Unselected pods are untouched; the node always reaches its pods.
    assert!(lab.connects("web", a("client"), 8080), "{fam}");
    assert!(lab.connects_from(&lab.node(), a("db"), 5432, 1.0), "{fam}");
}
