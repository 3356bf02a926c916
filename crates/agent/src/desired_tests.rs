use super::*;
use crate::discovery::NodeInfo;

fn node(name: &str, ips: &[&str], cidrs: &[&str]) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        internal_ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        pod_cidrs: cidrs.iter().map(|s| s.parse().unwrap()).collect(),
        network_unavailable: None,
        wireguard_key: None,
    }
}

fn nodes(list: Vec<NodeInfo>) -> Nodes {
    list.into_iter().map(|n| (n.name.clone(), n)).collect()
}

fn lab() -> Nodes {
    nodes(vec![
        node("k8s-1", &["172.16.97.75"], &["10.244.0.0/24"]),
        node("k8s-2", &["172.16.97.76"], &["10.244.1.0/24"]),
        node("k8s-3", &["172.16.97.77"], &["10.244.2.0/24"]),
    ])
}

fn local_k8s1() -> Vec<LocalAddr> {
    vec![
        LocalAddr {
            ifindex: 1,
            ifname: "lo".into(),
            mtu: 65536,
            net: "127.0.0.1/8".parse().unwrap(),
        },
        LocalAddr {
            ifindex: 2,
            ifname: "ens33".into(),
            mtu: 1450,
            net: "172.16.97.75/24".parse().unwrap(),
        },
    ]
}

fn settings(routing: Routing) -> Settings {
    Settings {
        node_name: Some("k8s-1".into()),
        routing,
        encapsulation: Encapsulation::Never,
        encryption: crate::cli::Encryption::None,
        wireguard_port: 51820,
        advertise: Advertise::Aggregate,
        cluster_cidrs: vec![],
        mtu: None,
        ipam_data_dir: "/run/ferry/ipam".into(),
        bgp_asn: 64512,
        cni_version: "1.1.0".into(),
        fast_path: None,
        policy_dir: None,
    }
}

fn route_strs(d: &Desired) -> Vec<String> {
    d.routes
        .iter()
        .map(|r| format!("{} via {} dev {} ({})", r.dst, r.via, r.oif, r.node))
        .collect()
}

#[test]
fn direct_routes_to_every_other_node() {
    let d = compute(&settings(Routing::Direct), &lab(), &local_k8s1()).unwrap();
    assert_eq!(d.node, "k8s-1");
    assert_eq!(d.iface.ifname, "ens33");
    assert_eq!(
        route_strs(&d),
        [
            "10.244.1.0/24 via 172.16.97.76 dev 2 (k8s-2)",
            "10.244.2.0/24 via 172.16.97.77 dev 2 (k8s-3)"
        ]
    );
    assert!(d.unroutable.is_empty());
    assert!(d.frr.is_none());
    assert!(!d.ipv6);
    assert_eq!(d.nodes_seen, 3);
    assert!(
        d.conflist.contains("\"mtu\": 1450"),
        "node MTU: {}",
        d.conflist
    );
    assert!(d.conflist.contains("10.244.0.0/24"));
    assert!(d.conflist.contains("\"cniVersion\": \"1.1.0\""));
}

#[test]
fn not_directly_connected_is_reported_not_routed() {
    let mut all = lab();
    all.insert(
        "far".into(),
        node("far", &["192.168.50.4"], &["10.244.7.0/24"]),
    );
    all.insert(
        "v6only".into(),
        node("v6only", &["fd97::9"], &["10.244.8.0/24"]),
    );
    let d = compute(&settings(Routing::Direct), &all, &local_k8s1()).unwrap();
    assert_eq!(d.routes.len(), 2, "{:?}", route_strs(&d));
    let bad: Vec<(&str, String)> = d
        .unroutable
        .iter()
        .map(|u| (u.node.as_str(), u.cidr.to_string()))
        .collect();
    assert_eq!(
        bad,
        [
            ("far", "10.244.7.0/24".to_string()),
            ("v6only", "10.244.8.0/24".to_string())
        ]
    );
    assert!(d.unroutable[0]
        .reason
        .contains("not on a directly connected"));
    // Its podCIDR is still in the NAT set: it is cluster traffic.
    assert!(d.nat.cidrs.contains(&"10.244.7.0/24".parse().unwrap()));
}

#[test]
fn overlapping_cidrs_are_refused() {
    let mut all = lab();
    all.insert(
        "dup".into(),
        node(
            "dup",
            &["172.16.97.78"],
            &["10.244.1.0/25", "10.244.0.128/25"],
        ),
    );
    let d = compute(&settings(Routing::Direct), &all, &local_k8s1()).unwrap();
    assert_eq!(d.routes.len(), 2);
    assert_eq!(d.unroutable.len(), 2);
}

#[test]
fn dual_stack_routes_per_family() {
    let all = nodes(vec![
        node(
            "k8s-1",
            &["172.16.97.75", "fd97::75"],
            &["10.244.0.0/24", "fd00:10:244::/64"],
        ),
        node(
            "k8s-2",
            &["172.16.97.76", "fd97::76"],
            &["10.244.1.0/24", "fd00:10:244:1::/64"],
        ),
    ]);
    let mut local = local_k8s1();
    local.push(LocalAddr {
        ifindex: 2,
        ifname: "ens33".into(),
        mtu: 1450,
        net: "fd97::75/64".parse().unwrap(),
    });
    let d = compute(&settings(Routing::Direct), &all, &local).unwrap();
    assert_eq!(
        route_strs(&d),
        [
            "10.244.1.0/24 via 172.16.97.76 dev 2 (k8s-2)",
            "fd00:10:244:1::/64 via fd97::76 dev 2 (k8s-2)"
        ]
    );
    assert!(d.ipv6);
    let v: serde_json::Value = serde_json::from_str(&d.conflist).unwrap();
    assert_eq!(
        v["plugins"][0]["ipam"]["ranges"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn nat_set_from_nodes_or_flag() {
    let d = compute(&settings(Routing::Direct), &lab(), &local_k8s1()).unwrap();
    let cidrs: Vec<String> = d.nat.cidrs.iter().map(ToString::to_string).collect();
    assert_eq!(cidrs, ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]);
    assert_eq!(d.nat.out_ifname, "ens33");

    let mut s = settings(Routing::Direct);
    s.cluster_cidrs = vec!["10.244.0.0/16".parse().unwrap()];
    let d = compute(&s, &lab(), &local_k8s1()).unwrap();
    assert_eq!(d.nat.cidrs, vec!["10.244.0.0/16".parse::<IpNet>().unwrap()]);
}

#[test]
fn waits_for_a_podcidr_and_for_its_node() {
    let mut all = lab();
    all.get_mut("k8s-1").unwrap().pod_cidrs.clear();
    assert_eq!(
        compute(&settings(Routing::Direct), &all, &local_k8s1()),
        Err(NotReady::NoPodCidr("k8s-1".into()))
    );
    let mut s = settings(Routing::Direct);
    s.node_name = Some("k8s-9".into());
    assert!(matches!(
        compute(&s, &lab(), &local_k8s1()),
        Err(NotReady::Discovery(DiscoveryError::NotFound(_)))
    ));
    // Without a name the local address decides.
    s.node_name = None;
    assert_eq!(compute(&s, &lab(), &local_k8s1()).unwrap().node, "k8s-1");
}

#[test]
fn frr_spec_for_ospf_and_bgp() {
    let mut s = settings(Routing::Ospf);
    s.mtu = Some(1400);
    let d = compute(&s, &lab(), &local_k8s1()).unwrap();
    assert!(d.routes.is_empty(), "FRR routes, ferryd does not");
    assert!(d.conflist.contains("\"mtu\": 1400"));
    let f = d.frr.unwrap();
    assert_eq!(f.mode, ferry_frr::Mode::Ospf);
    assert_eq!(f.hostname, "k8s-1");
    assert_eq!(
        f.router_id,
        "172.16.97.75".parse::<std::net::Ipv4Addr>().unwrap()
    );
    assert_eq!(f.node_ifname, "ens33");
    assert_eq!(f.node_ip, "172.16.97.75".parse::<IpAddr>().unwrap());
    assert_eq!(f.pod_cidrs, vec!["10.244.0.0/24".parse::<IpNet>().unwrap()]);
    assert_eq!(f.advertise, ferry_frr::Advertise::Aggregate);

    s.routing = Routing::Bgp;
    s.advertise = Advertise::Pods;
    s.bgp_asn = 65001;
    let f = compute(&s, &lab(), &local_k8s1()).unwrap().frr.unwrap();
    assert_eq!(f.mode, ferry_frr::Mode::Bgp);
    assert_eq!(f.asn, 65001);
    assert_eq!(f.advertise, ferry_frr::Advertise::Pods);
    let peers: Vec<String> = f.peers.iter().map(ToString::to_string).collect();
    assert_eq!(peers, ["172.16.97.76", "172.16.97.77"]);
}

#[test]
fn frr_needs_an_ipv4_router_id() {
    let all = nodes(vec![node("k8s-1", &["fd97::75"], &["fd00:10:244::/64"])]);
    let local = vec![LocalAddr {
        ifindex: 2,
        ifname: "ens33".into(),
        mtu: 1500,
        net: "fd97::75/64".parse().unwrap(),
    }];
    assert_eq!(
        compute(&settings(Routing::Ospf), &all, &local),
        Err(NotReady::NoRouterId("k8s-1".into()))
    );
    assert!(compute(&settings(Routing::Direct), &all, &local).is_ok());
}

/// k8s-1 and k8s-2 share 172.16.97.0/24; k8s-3 is behind a router, and
/// dual-stack.
fn two_subnets() -> Nodes {
    nodes(vec![
        node("k8s-1", &["172.16.97.75"], &["10.244.0.0/24"]),
        node("k8s-2", &["172.16.97.76"], &["10.244.1.0/24"]),
        node(
            "k8s-3",
            &["172.16.98.77", "fd98::77"],
            &["10.244.2.0/24", "fd00:10:244:2::/64"],
        ),
    ])
}

fn with_encap(e: Encapsulation) -> Settings {
    Settings {
        encapsulation: e,
        ..settings(Routing::Direct)
    }
}

#[test]
fn cross_subnet_tunnels_only_the_nodes_off_this_subnet() {
    let d = compute(
        &with_encap(Encapsulation::CrossSubnet),
        &two_subnets(),
        &local_k8s1(),
    )
    .unwrap();
    assert_eq!(
        route_strs(&d),
        ["10.244.1.0/24 via 172.16.97.76 dev 2 (k8s-2)"]
    );
    assert!(d.unroutable.is_empty(), "{:?}", d.unroutable);
    let v = d.vxlan.as_ref().expect("a vxlan plan");
    assert_eq!(v.local.to_string(), "172.16.97.75");
    assert_eq!((v.uplink, v.mtu), (2, 1400));
    assert_eq!(v.addrs, ["10.244.0.0/32".parse::<IpNet>().unwrap()]);
    assert_eq!(v.peers.len(), 1);
    assert_eq!(v.peers[0].node, "k8s-3");
    assert_eq!(v.peers[0].underlay.to_string(), "172.16.98.77");
    // Both families of k8s-3's pods go over the IPv4 underlay.
    assert_eq!(v.peers[0].cidrs.len(), 2);
    // The pods' MTU leaves room for the VXLAN header (uplink 1450 - 50).
    assert!(d.conflist.contains("\"mtu\": 1400"), "{}", d.conflist);
}

#[test]
fn cross_subnet_with_every_node_on_link_is_plain_routing() {
    let d = compute(
        &with_encap(Encapsulation::CrossSubnet),
        &lab(),
        &local_k8s1(),
    )
    .unwrap();
    assert_eq!(d.vxlan, None);
    assert_eq!(d.routes.len(), 2);
    assert!(d.conflist.contains("\"mtu\": 1450"), "{}", d.conflist);
}

#[test]
fn always_tunnels_every_node_and_never_tunnels_none() {
    let d = compute(
        &with_encap(Encapsulation::Always),
        &two_subnets(),
        &local_k8s1(),
    )
    .unwrap();
    assert!(d.routes.is_empty(), "{:?}", route_strs(&d));
    let v = d.vxlan.unwrap();
    let names: Vec<&str> = v.peers.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(names, ["k8s-2", "k8s-3"]);
    // Even alone, `always` makes the device and lowers the pod MTU.
    let alone = nodes(vec![node("k8s-1", &["172.16.97.75"], &["10.244.0.0/24"])]);
    let d = compute(&with_encap(Encapsulation::Always), &alone, &local_k8s1()).unwrap();
    assert!(d.vxlan.unwrap().peers.is_empty());
    assert!(d.conflist.contains("\"mtu\": 1400"), "{}", d.conflist);

    let d = compute(
        &with_encap(Encapsulation::Never),
        &two_subnets(),
        &local_k8s1(),
    )
    .unwrap();
    assert_eq!(d.vxlan, None);
    assert_eq!(d.unroutable.len(), 2, "{:?}", d.unroutable);
    assert!(
        d.unroutable[0].reason.contains("(--encapsulation never)"),
        "{:?}",
        d.unroutable
    );
}

#[test]
fn a_tunnelled_peer_without_ipv4_is_reported() {
    let mut all = lab();
    all.insert(
        "v6only".into(),
        node("v6only", &["fd99::9"], &["10.244.8.0/24"]),
    );
    let d = compute(&with_encap(Encapsulation::Always), &all, &local_k8s1()).unwrap();
    let u = d
        .unroutable
        .iter()
        .find(|u| u.node == "v6only")
        .expect("reported");
    assert!(u.reason.contains("needs an IPv4 InternalIP"), "{u:?}");
    assert_eq!(d.vxlan.unwrap().peers.len(), 2);
}
