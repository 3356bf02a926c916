//! How long a full compile takes at the scale.

/// Compile time at the scale (5 000 pods, 1 000 policies); run
/// with `cargo test -p ferry-netpol --release --test scale -- --ignored --nocapture`.
#[test]
#[ignore]
fn scale() {
    use ferry_netpol::{compile, Cluster, Namespace, NetworkPolicy, Options, Peer, Pod, Rule};
    let sel = |k: &str, v: String| ferry_netpol::LabelSelector {
        match_labels: [(k.to_string(), v)].into(),
        match_expressions: vec![],
    };
    let mut c = Cluster::default();
    for n in 0..50 {
        c.namespaces.push(Namespace {
            name: format!("ns{n}"),
            labels: [("team".to_string(), format!("t{}", n % 5))].into(),
        });
    }
    for i in 0..5000u32 {
        c.pods.push(Pod {
            namespace: format!("ns{}", i % 50),
            name: format!("p{i}"),
            labels: [("app".to_string(), format!("a{}", i % 100))].into(),
            ips: vec![std::net::Ipv4Addr::from(0x0af4_0000 + i).into()],
            node: format!("node{}", i % 50),
            ..Default::default()
        });
    }
    for j in 0..1000u32 {
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
    let t = std::time::Instant::now();
    let rs = compile(&c, &Options::new("node0"));
    let elapsed = t.elapsed();
    let elements: usize = rs.sets.values().map(|s| s.elements.len()).sum();
    eprintln!(
        "compile: {elapsed:?}, {} chains, {} sets, {elements} elements",
        rs.chains.len(),
        rs.sets.len()
    );
}
