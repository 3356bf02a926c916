use super::*;
use crate::model::{Peer, Protocol, Rule};
use crate::testutil::*;

fn names<'a>(pods: impl Iterator<Item = &'a Pod>) -> Vec<String> {
    let mut v: Vec<String> = pods
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    v.sort();
    v
}

#[test]
fn policy_selects_pods_of_its_namespace() {
    let c = cluster();
    let idx = Index::new(&c);
    let p = policy("a", "p", sel(&[("app", "web")]));
    assert_eq!(names(idx.selected(&p)), ["a/web"]);
    let all = policy("a", "p", sel(&[]));
    assert_eq!(names(idx.selected(&all)), ["a/cli", "a/db", "a/web"]);
}

#[test]
fn peer_selectors() {
    let c = cluster();
    let idx = Index::new(&c);
    // podSelector alone: the policy's namespace.
    let p = pods_peer(None, Some(sel(&[("app", "web")])));
    assert_eq!(names(idx.peer_pods("a", &p)), ["a/web"]);
    // namespaceSelector alone: every pod there.
    let p = pods_peer(Some(sel(&[("team", "b")])), None);
    assert_eq!(names(idx.peer_pods("a", &p)), ["b/web"]);
    // Empty namespaceSelector: every namespace.
    let p = pods_peer(Some(sel(&[])), Some(sel(&[("app", "web")])));
    assert_eq!(names(idx.peer_pods("a", &p)), ["a/web", "b/web"]);
    // Both: AND.
    let p = pods_peer(Some(sel(&[("team", "a")])), Some(sel(&[("app", "cli")])));
    assert_eq!(names(idx.peer_pods("b", &p)), ["a/cli"]);
    // The implicit kubernetes.io/metadata.name label.
    let p = pods_peer(Some(sel(&[(NAMESPACE_NAME_LABEL, "b")])), None);
    assert_eq!(names(idx.peer_pods("a", &p)), ["b/web"]);
    // An ipBlock stands for no pod.
    let p = Peer::IpBlock {
        cidr: "10.0.0.0/8".parse().unwrap(),
        except: vec![],
    };
    assert!(names(idx.peer_pods("a", &p)).is_empty());
}

#[test]
fn host_network_and_addressless_pods_are_invisible() {
    let mut c = cluster();
    c.pods[0].host_network = true;
    c.pods[1].ips.clear();
    let idx = Index::new(&c);
    assert_eq!(names(idx.pods()), ["a/cli", "b/web"]);
}

#[test]
fn peer_addresses_merge_pods_and_blocks() {
    let c = cluster();
    let idx = Index::new(&c);
    let rule = Rule {
        peers: vec![
            pods_peer(None, Some(sel(&[]))),
            Peer::IpBlock {
                cidr: "10.0.1.0/24".parse().unwrap(),
                except: vec!["10.0.1.0/30".parse().unwrap()],
            },
        ],
        ports: vec![],
    };
    let a = idx.peer_addrs("a", &rule);
    assert!(a.has_v4 && a.has_v6);
    let r = |s: &str, e: &str| Range {
        start: ranges::to_int(&s.parse().unwrap()),
        end: ranges::to_int(&e.parse().unwrap()),
    };
    // a/cli's 10.0.1.1 is in the except, and still a peer as a pod.
    assert_eq!(
        a.v4,
        vec![
            r("10.0.0.1", "10.0.0.1"),
            r("10.0.0.2", "10.0.0.2"),
            r("10.0.1.1", "10.0.1.1"),
            r("10.0.1.4", "10.0.1.255"),
        ]
    );
    assert_eq!(a.v6, vec![r("fd00::1", "fd00::1")]);

    let v4_block_only = Rule {
        peers: vec![Peer::IpBlock {
            cidr: "192.168.0.0/16".parse().unwrap(),
            except: vec![],
        }],
        ports: vec![],
    };
    let a = idx.peer_addrs("a", &v4_block_only);
    assert!(a.has_v4 && !a.has_v6);
}

#[test]
fn named_ports_resolve_per_pod_and_protocol() {
    let c = cluster();
    let web_a = &c.pods[0];
    let web_b = &c.pods[3];
    assert_eq!(named_port(web_a, "http", Protocol::Tcp), Some(8080));
    assert_eq!(named_port(web_b, "http", Protocol::Tcp), Some(9090));
    assert_eq!(named_port(web_a, "http", Protocol::Udp), None);
    assert_eq!(named_port(web_a, "https", Protocol::Tcp), None);
    let got = named_port_elements([web_a, web_b, &c.pods[1]], "http", Protocol::Tcp);
    assert_eq!(
        got,
        vec![
            ("10.0.0.1".parse().unwrap(), 8080),
            ("fd00::1".parse().unwrap(), 8080),
            ("10.0.1.2".parse().unwrap(), 9090),
        ]
    );
}

#[test]
fn rule_without_peers_stands_for_every_pod() {
    let c = cluster();
    let idx = Index::new(&c);
    assert_eq!(idx.rule_pods("a", &Rule::default()).len(), 4);
}
