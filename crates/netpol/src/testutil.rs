//! Builders for unit tests.

use crate::model::*;

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn sel(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

pub fn ns(name: &str, l: &[(&str, &str)]) -> Namespace {
    Namespace {
        name: name.into(),
        labels: labels(l),
    }
}

pub fn pod(ns: &str, name: &str, l: &[(&str, &str)], ips: &[&str], node: &str) -> Pod {
    Pod {
        namespace: ns.into(),
        name: name.into(),
        labels: labels(l),
        ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
        node: node.into(),
        host_network: false,
        ports: vec![],
    }
}

pub fn with_port(mut p: Pod, name: &str, protocol: Protocol, port: u16) -> Pod {
    p.ports.push(NamedPort {
        name: name.into(),
        protocol,
        port,
    });
    p
}

pub fn policy(ns: &str, name: &str, selector: LabelSelector) -> NetworkPolicy {
    NetworkPolicy {
        namespace: ns.into(),
        name: name.into(),
        pod_selector: selector,
        ..Default::default()
    }
}

pub fn tcp(port: u16) -> Port {
    Port {
        protocol: Protocol::Tcp,
        port: Some(PortRef::Range {
            start: port,
            end: port,
        }),
    }
}

pub fn named(protocol: Protocol, name: &str) -> Port {
    Port {
        protocol,
        port: Some(PortRef::Named(name.into())),
    }
}

pub fn pods_peer(namespaces: Option<LabelSelector>, pods: Option<LabelSelector>) -> Peer {
    Peer::Pods { namespaces, pods }
}

/// Namespaces a (team=a) and b (team=b); a/web (app=web, local), a/db
/// (app=db, local), a/cli (app=cli, remote), b/web (app=web, remote).
pub fn cluster() -> Cluster {
    Cluster {
        namespaces: vec![ns("a", &[("team", "a")]), ns("b", &[("team", "b")])],
        pods: vec![
            with_port(
                pod(
                    "a",
                    "web",
                    &[("app", "web")],
                    &["10.0.0.1", "fd00::1"],
                    "n1",
                ),
                "http",
                Protocol::Tcp,
                8080,
            ),
            pod("a", "db", &[("app", "db")], &["10.0.0.2"], "n1"),
            pod("a", "cli", &[("app", "cli")], &["10.0.1.1"], "n2"),
            with_port(
                pod("b", "web", &[("app", "web")], &["10.0.1.2"], "n2"),
                "http",
                Protocol::Tcp,
                9090,
            ),
        ],
        policies: vec![],
    }
}
