use super::*;
use serde_json::{json, Value};

fn np(spec: Value) -> net::NetworkPolicy {
    serde_json::from_value(json!({
        "metadata": { "namespace": "default", "name": "p" },
        "spec": spec,
    }))
    .unwrap()
}

fn types(spec: Value) -> PolicyTypes {
    network_policy(&np(spec)).unwrap().0.effective_types()
}

#[test]
fn policy_types_defaulting() {
    let both = PolicyTypes {
        ingress: true,
        egress: true,
    };
    let ingress = PolicyTypes {
        ingress: true,
        egress: false,
    };
    assert_eq!(types(json!({ "podSelector": {} })), ingress);
    assert_eq!(types(json!({ "podSelector": {}, "egress": [] })), ingress);
    assert_eq!(types(json!({ "podSelector": {}, "egress": [{}] })), both);
    assert_eq!(
        types(json!({ "podSelector": {}, "policyTypes": ["Egress"] })),
        PolicyTypes {
            ingress: false,
            egress: true
        }
    );
    assert_eq!(
        types(json!({ "podSelector": {}, "policyTypes": ["Ingress", "Egress"] })),
        both
    );
    // Defaulting sees the egress rules as written, even one left out.
    let spec = json!({ "podSelector": {}, "egress": [{ "ports": [{ "protocol": "ICMP" }] }] });
    let (p, problems) = network_policy(&np(spec)).unwrap();
    assert!(p.egress.is_empty());
    assert_eq!(problems.len(), 1);
    assert_eq!(p.effective_types(), both);
}

#[test]
fn ports() {
    let spec = json!({ "podSelector": {}, "ingress": [{ "ports": [
        { "port": 80 },
        { "protocol": "UDP", "port": "53" },
        { "protocol": "TCP", "port": "http" },
        { "protocol": "SCTP", "port": 1000, "endPort": 2000 },
        { "protocol": "UDP" }
    ] }] });
    let (p, problems) = network_policy(&np(spec)).unwrap();
    assert!(problems.is_empty());
    let range = |start, end| Some(PortRef::Range { start, end });
    assert_eq!(
        p.ingress[0].ports,
        [
            Port {
                protocol: Protocol::Tcp,
                port: range(80, 80)
            },
            Port {
                protocol: Protocol::Udp,
                port: range(53, 53)
            },
            Port {
                protocol: Protocol::Tcp,
                port: Some(PortRef::Named("http".into()))
            },
            Port {
                protocol: Protocol::Sctp,
                port: range(1000, 2000)
            },
            Port {
                protocol: Protocol::Udp,
                port: None
            },
        ]
    );
}

#[test]
fn a_bad_rule_is_dropped_whole_and_reported() {
    let spec = json!({ "podSelector": {}, "ingress": [
        { "from": [{ "podSelector": {} }, { "ipBlock": { "cidr": "10.0.0.0/33" } }] },
        { "ports": [{ "port": 0 }] },
        { "ports": [{ "port": "http", "endPort": 90 }] },
        { "ports": [{ "port": 90, "endPort": 80 }] },
        { "from": [{}] },
        { "from": [{ "ipBlock": { "cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"] } }] },
        { "from": [{ "podSelector": {} }] }
    ] });
    let (p, problems) = network_policy(&np(spec)).unwrap();
    assert_eq!(p.ingress.len(), 1, "only the last rule survives");
    let errors: Vec<(String, ConvertError)> =
        problems.into_iter().map(|p| (p.place, p.error)).collect();
    assert_eq!(
        errors,
        [
            (
                "spec.ingress[0].from[1]".to_string(),
                ConvertError::Cidr("10.0.0.0/33".into())
            ),
            (
                "spec.ingress[1].ports[0]".to_string(),
                ConvertError::Port(0)
            ),
            (
                "spec.ingress[2].ports[0]".to_string(),
                ConvertError::EndPortNamed("http".into())
            ),
            (
                "spec.ingress[3].ports[0]".to_string(),
                ConvertError::EndPortBelow { start: 90, end: 80 }
            ),
            (
                "spec.ingress[4].from[0]".to_string(),
                ConvertError::EmptyPeer
            ),
            (
                "spec.ingress[5].from[0]".to_string(),
                ConvertError::ExceptOutside {
                    cidr: "10.0.0.0/16".into(),
                    except: "10.1.0.0/24".into()
                }
            ),
        ]
    );
}

#[test]
fn whole_policy_errors() {
    let bad_op =
        json!({ "podSelector": { "matchExpressions": [{ "key": "a", "operator": "Gt" }] } });
    let e = network_policy(&np(bad_op)).unwrap_err();
    assert_eq!(e.error, ConvertError::Operator("Gt".into()));
    assert_eq!(
        e.to_string(),
        "NetworkPolicy default/p: spec.podSelector: unknown label selector operator \"Gt\""
    );
    let bad_type = json!({ "podSelector": {}, "policyTypes": ["Sideways"] });
    assert!(network_policy(&np(bad_type)).is_err());
    let nameless: net::NetworkPolicy =
        serde_json::from_value(json!({ "metadata": { "namespace": "x" } })).unwrap();
    assert!(network_policy(&nameless).is_err());
}

#[test]
fn peers_and_selectors() {
    let spec = json!({ "podSelector": { "matchLabels": { "app": "web" } }, "egress": [{ "to": [
        { "namespaceSelector": { "matchExpressions": [{ "key": "team", "operator": "In", "values": ["a", "b"] }] } },
        { "podSelector": { "matchExpressions": [{ "key": "x", "operator": "DoesNotExist" }] },
          "namespaceSelector": {} },
        { "ipBlock": { "cidr": "fd00::/8", "except": ["fd00:1::/32"] } }
    ] }] });
    let (p, problems) = network_policy(&np(spec)).unwrap();
    assert!(problems.is_empty());
    let peers = &p.egress[0].peers;
    assert!(
        matches!(&peers[0], Peer::Pods { namespaces: Some(n), pods: None }
        if n.match_expressions[0].operator == Operator::In && n.match_expressions[0].values == ["a", "b"])
    );
    assert!(
        matches!(&peers[1], Peer::Pods { namespaces: Some(n), pods: Some(s) }
        if n.is_everything() && s.match_expressions[0].operator == Operator::DoesNotExist)
    );
    assert!(matches!(&peers[2], Peer::IpBlock { except, .. } if except.len() == 1));
    assert_eq!(p.pod_selector.match_labels["app"], "web");
}

#[test]
fn pods_and_namespaces() {
    let k: core::Pod = serde_json::from_value(json!({
        "metadata": { "namespace": "default", "name": "web", "labels": { "app": "web" } },
        "spec": { "nodeName": "n1", "containers": [{ "name": "c", "ports": [
            { "name": "http", "containerPort": 8080 },
            { "name": "dns", "containerPort": 53, "protocol": "UDP" },
            { "containerPort": 9000 }
        ] }] },
        "status": { "phase": "Running", "podIP": "10.0.0.1",
                    "podIPs": [{ "ip": "10.0.0.1" }, { "ip": "fd00::1" }] }
    }))
    .unwrap();
    let p = pod(&k).unwrap();
    assert_eq!(p.node, "n1");
    assert_eq!(p.ips.len(), 2);
    assert_eq!(
        p.ports,
        [
            NamedPort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 8080
            },
            NamedPort {
                name: "dns".into(),
                protocol: Protocol::Udp,
                port: 53
            },
        ]
    );
    let mut done = k.clone();
    done.status.as_mut().unwrap().phase = Some("Succeeded".into());
    assert!(pod(&done).is_none());
    let mut hostnet = k;
    hostnet.spec.as_mut().unwrap().host_network = Some(true);
    assert!(pod(&hostnet).unwrap().host_network);

    let n: core::Namespace = serde_json::from_value(json!({
        "metadata": { "name": "prod", "labels": { "team": "prod" } }
    }))
    .unwrap();
    assert_eq!(namespace(&n).unwrap().labels["team"], "prod");
}
