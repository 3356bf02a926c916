use super::*;

/// A Node as the API server returns it (kubeadm, trimmed).
pub(crate) fn node_json(name: &str, ips: &[&str], cidrs: &[&str]) -> Node {
    let addresses: Vec<serde_json::Value> = ips
        .iter()
        .map(|ip| serde_json::json!({"type": "InternalIP", "address": ip}))
        .chain(std::iter::once(
            serde_json::json!({"type": "Hostname", "address": name}),
        ))
        .collect();
    let mut spec = serde_json::json!({});
    if let Some(first) = cidrs.first() {
        spec = serde_json::json!({"podCIDR": first, "podCIDRs": cidrs});
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "resourceVersion": "1"},
        "spec": spec,
        "status": {
            "addresses": addresses,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady"}
            ]
        }
    }))
    .unwrap()
}

fn local(entries: &[(u32, &str, &str)]) -> Vec<LocalAddr> {
    entries
        .iter()
        .map(|(i, n, a)| LocalAddr {
            ifindex: *i,
            ifname: n.to_string(),
            mtu: 1500,
            net: a.parse().unwrap(),
        })
        .collect()
}

fn nodes(list: &[Node]) -> Nodes {
    list.iter()
        .map(NodeInfo::from_node)
        .map(|n| (n.name.clone(), n))
        .collect()
}

fn lab_nodes() -> Nodes {
    nodes(&[
        node_json("k8s-1", &["172.16.97.75"], &["10.244.0.0/24"]),
        node_json("k8s-2", &["172.16.97.76"], &["10.244.1.0/24"]),
        node_json("k8s-3", &["172.16.97.77"], &["10.244.2.0/24"]),
    ])
}

fn lab_local() -> Vec<LocalAddr> {
    local(&[
        (1, "lo", "127.0.0.1/8"),
        (2, "ens33", "172.16.97.76/24"),
        (3, "ferry0123456789", "169.254.1.1/32"),
    ])
}

#[test]
fn node_info_from_a_real_node() {
    let n = NodeInfo::from_node(&node_json(
        "k8s-1",
        &["172.16.97.75", "fd97::75"],
        &["10.244.0.0/24", "fd00:10:244::/64"],
    ));
    assert_eq!(n.name, "k8s-1");
    assert_eq!(n.internal_ips.len(), 2);
    assert_eq!(n.internal_ip(true), Some("172.16.97.75".parse().unwrap()));
    assert_eq!(n.internal_ip(false), Some("fd97::75".parse().unwrap()));
    assert_eq!(n.pod_cidrs.len(), 2);
    assert_eq!(n.network_unavailable, None);
    assert!(!n.marked_up());
}

#[test]
fn pod_cidr_fallbacks() {
    let mut node = node_json("a", &["10.0.0.1"], &[]);
    assert!(pod_cidrs(&node).is_empty());
    node.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
        pod_cidr: Some("10.244.3.0/24".into()),
        ..Default::default()
    });
    assert_eq!(pod_cidrs(&node), vec!["10.244.3.0/24".parse().unwrap()]);
    // podCIDRs wins; host bits are cleared, duplicates and junk dropped.
    node.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
        pod_cidr: Some("10.244.3.0/24".into()),
        pod_cidrs: Some(vec![
            "10.244.4.7/24".into(),
            "junk".into(),
            "10.244.4.0/24".into(),
            "fd00::/64".into(),
        ]),
        ..Default::default()
    });
    let got: Vec<String> = pod_cidrs(&node).iter().map(ToString::to_string).collect();
    assert_eq!(got, ["10.244.4.0/24", "fd00::/64"]);
    node.spec = None;
    assert!(pod_cidrs(&node).is_empty());
}

#[test]
fn condition_read_back() {
    let mut node = node_json("a", &["10.0.0.1"], &[]);
    fn conditions(n: &mut Node) -> &mut Vec<k8s_openapi::api::core::v1::NodeCondition> {
        n.status.as_mut().unwrap().conditions.as_mut().unwrap()
    }
    conditions(&mut node).push(
        serde_json::from_value(serde_json::json!({
            "type": "NetworkUnavailable", "status": "False", "reason": "FerryIsUp"
        }))
        .unwrap(),
    );
    assert!(NodeInfo::from_node(&node).marked_up());
    conditions(&mut node)[1].reason = Some("RouteCreated".into());
    assert!(!NodeInfo::from_node(&node).marked_up());
}

#[test]
fn own_node_by_name() {
    let all = lab_nodes();
    let own = find_own(&all, Some("k8s-3"), &[]).unwrap();
    assert_eq!(own.name, "k8s-3");
    assert_eq!(
        find_own(&all, Some("k8s-9"), &lab_local()),
        Err(DiscoveryError::NotFound("k8s-9".into()))
    );
}

#[test]
fn own_node_by_local_address() {
    let all = lab_nodes();
    assert_eq!(find_own(&all, None, &lab_local()).unwrap().name, "k8s-2");
    // Only the address counts, not the subnet.
    let other = local(&[(2, "ens33", "172.16.97.99/24")]);
    assert_eq!(
        find_own(&all, None, &other),
        Err(DiscoveryError::NoLocalNode)
    );
    let two = local(&[
        (2, "ens33", "172.16.97.76/24"),
        (4, "ens34", "172.16.97.77/24"),
    ]);
    assert_eq!(
        find_own(&all, None, &two),
        Err(DiscoveryError::Ambiguous(vec![
            "k8s-2".into(),
            "k8s-3".into()
        ]))
    );
}

#[test]
fn interface_of_the_internal_ip() {
    let all = lab_nodes();
    let own = &all["k8s-2"];
    let l = lab_local();
    let iface = node_interface(own, &l).unwrap();
    assert_eq!((iface.ifindex, iface.ifname.as_str()), (2, "ens33"));
    assert!(matches!(
        node_interface(&all["k8s-1"], &l),
        Err(DiscoveryError::NoInterface { .. })
    ));
}

#[test]
fn directly_connected_next_hops() {
    let l = local(&[
        (1, "lo", "127.0.0.1/8"),
        (2, "ens33", "172.16.97.76/24"),
        (3, "ens34", "172.16.0.1/16"),
        (5, "ferryabc", "169.254.1.1/32"),
        (6, "ens35", "fd97::76/64"),
    ]);
    let hop = |ip: &str, prefer| {
        connected_interface(ip.parse().unwrap(), &l, prefer).map(|a| a.ifname.as_str())
    };
    assert_eq!(hop("172.16.97.75", None), Some("ens33"), "longest prefix");
    assert_eq!(hop("172.16.97.75", Some(3)), Some("ens34"), "preferred");
    assert_eq!(hop("172.16.5.5", Some(2)), Some("ens34"));
    assert_eq!(hop("192.168.1.1", Some(2)), None, "not connected");
    assert_eq!(hop("127.0.0.2", None), None, "loopback never");
    assert_eq!(hop("169.254.1.1", None), None, "host address");
    assert_eq!(hop("172.16.97.76", None), None, "own address");
    assert_eq!(hop("fd97::77", None), Some("ens35"));
}
