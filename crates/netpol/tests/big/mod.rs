//! A cluster at the scale, for timing tests: `pods` pods in 50
//! namespaces spread over `nodes` nodes (`node0`, `node1`, ...), 100 apps,
//! `policies` policies each selecting an app and allowing ingress from the
//! next app and from a team of namespaces.

use ferry_netpol::{Cluster, LabelSelector, Namespace, NetworkPolicy, Peer, Pod, Rule};

fn sel(k: &str, v: String) -> LabelSelector {
    LabelSelector {
        match_labels: [(k.to_string(), v)].into(),
        match_expressions: vec![],
    }
}

/// Pod `i`'s addresses: 10.244.x.y, and fd00:10:244::x:y when `dual_stack`.
pub fn pod_ips(i: u32, dual_stack: bool) -> Vec<std::net::IpAddr> {
    let mut ips = vec![std::net::Ipv4Addr::from(0x0af4_0000 + i).into()];
    if dual_stack {
        ips.push(
            std::net::Ipv6Addr::from(0xfd00_0010_0244_0000_0000_0000_0000_0000u128 + u128::from(i))
                .into(),
        );
    }
    ips
}

pub fn cluster(pods: u32, policies: u32, nodes: u32, dual_stack: bool) -> Cluster {
    let mut c = Cluster::default();
    for n in 0..50 {
        c.namespaces.push(Namespace {
            name: format!("ns{n}"),
            labels: [("team".to_string(), format!("t{}", n % 5))].into(),
        });
    }
    for i in 0..pods {
        c.pods.push(Pod {
            namespace: format!("ns{}", i % 50),
            name: format!("p{i}"),
            labels: [("app".to_string(), format!("a{}", i % 100))].into(),
            ips: pod_ips(i, dual_stack),
            node: format!("node{}", i % nodes),
            ..Default::default()
        });
    }
    for j in 0..policies {
        c.policies.push(NetworkPolicy {
            namespace: format!("ns{}", j % 50),
            name: format!("np{j}"),
            pod_selector: sel("app", format!("a{}", j % 100)),
            ingress: vec![Rule {
                peers: vec![
                    Peer::Pods {
                        namespaces: None,
                        pods: Some(sel("app", format!("a{}", (j + 1) % 100))),
                    },
                    Peer::Pods {
                        namespaces: Some(sel("team", format!("t{}", j % 5))),
                        pods: None,
                    },
                ],
                ports: vec![],
            }],
            ..Default::default()
        });
    }
    c
}
