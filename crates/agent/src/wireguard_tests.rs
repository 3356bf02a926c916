use super::*;
use crate::cli::{Encapsulation, Encryption, Routing};
use crate::desired::{compute, Settings};

fn key(n: u8) -> PublicKey {
    PrivateKey::from_bytes([n; 32]).public_key()
}

fn node(name: &str, ips: &[&str], cidrs: &[&str], k: Option<u8>) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        internal_ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        pod_cidrs: cidrs.iter().map(|s| s.parse().unwrap()).collect(),
        network_unavailable: None,
        wireguard_key: k.map(|n| key(n).to_string()),
    }
}

fn nodes(list: Vec<NodeInfo>) -> Nodes {
    list.into_iter().map(|n| (n.name.clone(), n)).collect()
}

fn uplink() -> LocalAddr {
    LocalAddr {
        ifindex: 2,
        ifname: "eth0".into(),
        mtu: 1500,
        net: "172.16.97.75/24".parse().unwrap(),
    }
}

/// Two subnets; k8s-1 (this node) and k8s-2 on one, k8s-3 behind a router.
fn cluster() -> Nodes {
    nodes(vec![
        node(
            "k8s-1",
            &["172.16.97.75", "fd97::75"],
            &["10.244.0.0/24", "fd00:10:244::/64"],
            Some(1),
        ),
        node(
            "k8s-2",
            &["172.16.97.76", "fd97::76"],
            &["10.244.1.0/24", "fd00:10:244:1::/64"],
            Some(2),
        ),
        node(
            "k8s-3",
            &["172.16.98.77", "fd98::77"],
            &["10.244.2.0/24", "fd00:10:244:2::/64"],
            Some(3),
        ),
    ])
}

#[test]
fn every_other_node_is_a_peer_with_its_pod_cidrs() {
    let all = cluster();
    let (p, bad) = plan(&all["k8s-1"], &all, &uplink(), 51820);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(p.mtu, 1440);
    assert_eq!(
        p.addrs,
        [
            "10.244.0.0/32".parse::<IpNet>().unwrap(),
            "fd00:10:244::/128".parse().unwrap()
        ]
    );
    let got: Vec<String> = p
        .peers
        .iter()
        .map(|x| format!("{} {} {} {:?}", x.node, x.public_key, x.endpoint, x.cidrs))
        .collect();
    assert_eq!(
        got,
        [
            format!(
                "k8s-2 {} 172.16.97.76:51820 [10.244.1.0/24, fd00:10:244:1::/64]",
                key(2)
            ),
            format!(
                "k8s-3 {} 172.16.98.77:51820 [10.244.2.0/24, fd00:10:244:2::/64]",
                key(3)
            ),
        ]
    );
    let routes: Vec<String> = p
        .routes(9)
        .iter()
        .map(|r| format!("{} via {} dev {} onlink={}", r.dst, r.via, r.oif, r.onlink))
        .collect();
    assert_eq!(
        routes,
        [
            "10.244.1.0/24 via 10.244.1.0 dev 9 onlink=true",
            "fd00:10:244:1::/64 via fd00:10:244:1:: dev 9 onlink=true",
            "10.244.2.0/24 via 10.244.2.0 dev 9 onlink=true",
            "fd00:10:244:2::/64 via fd00:10:244:2:: dev 9 onlink=true",
        ]
    );
}

#[test]
fn an_ipv6_underlay_takes_ipv6_endpoints_and_80_bytes() {
    let all = cluster();
    let up = LocalAddr {
        net: "fd97::75/64".parse().unwrap(),
        ..uplink()
    };
    let (p, bad) = plan(&all["k8s-1"], &all, &up, 51820);
    assert!(bad.is_empty());
    assert_eq!(p.mtu, 1420);
    assert_eq!(p.peers[0].endpoint.to_string(), "[fd97::76]:51820");
}

#[test]
fn nodes_without_a_usable_key_are_never_routed_in_clear() {
    let mut all = cluster();
    all.get_mut("k8s-2").unwrap().wireguard_key = None;
    all.get_mut("k8s-3").unwrap().wireguard_key = Some("not-a-key".into());
    all.insert(
        "k8s-4".into(),
        node("k8s-4", &["172.16.97.78"], &["10.244.4.0/24"], Some(1)),
    );
    let (p, bad) = plan(&all["k8s-1"], &all, &uplink(), 51820);
    // k8s-4 uses this node's own key: a cloned machine.
    let reasons: Vec<String> = bad
        .iter()
        .map(|u| format!("{} {}: {}", u.node, u.cidr, u.reason))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:#?}");
    assert!(reasons[0].contains("k8s-2") && reasons[0].contains("no WireGuard public key"));
    assert!(reasons[2].contains("k8s-3") && reasons[2].contains("bad WireGuard key"));
    assert!(
        reasons[4].contains("k8s-4")
            && reasons[4].contains("same WireGuard public key as node k8s-1")
    );
    assert!(p.peers.is_empty(), "{:?}", p.peers);
}

#[test]
fn a_duplicate_key_is_refused() {
    let mut all = cluster();
    all.get_mut("k8s-3").unwrap().wireguard_key = Some(key(2).to_string());
    let (p, bad) = plan(&all["k8s-1"], &all, &uplink(), 51820);
    assert_eq!(p.peers.len(), 1);
    assert!(bad
        .iter()
        .all(|u| u.node == "k8s-3" && u.reason == "same WireGuard public key as node k8s-2"));
}

#[test]
fn device_config_carries_each_peer() {
    let all = cluster();
    let (p, _) = plan(&all["k8s-1"], &all, &uplink(), 51999);
    let own = PrivateKey::from_bytes([1; 32]);
    let c = p.device_config(&own);
    assert_eq!(c.public_key, key(1));
    assert_eq!(c.listen_port, 51999);
    assert_eq!(c.peers.len(), 2);
    for peer in &p.peers {
        let got = c.peers.iter().find(|x| x.public_key == peer.public_key);
        assert_eq!(got.unwrap().allowed_ips, peer.cidrs);
        assert_eq!(got.unwrap().endpoint, peer.endpoint);
    }
}

fn settings(encryption: Encryption) -> Settings {
    Settings {
        node_name: Some("k8s-1".into()),
        routing: Routing::Direct,
        encapsulation: Encapsulation::CrossSubnet,
        encryption,
        wireguard_port: 51820,
        advertise: crate::cli::Advertise::Aggregate,
        cluster_cidrs: vec![],
        mtu: None,
        ipam_data_dir: "/run/ferry/ipam".into(),
        bgp_asn: 64512,
        cni_version: "1.0.0".into(),
        fast_path: None,
        policy_dir: None,
    }
}

#[test]
fn with_encryption_wireguard_replaces_plain_routes_and_vxlan_and_sets_the_mtu() {
    let all = cluster();
    let local = vec![
        uplink(),
        LocalAddr {
            net: "fd97::75/64".parse().unwrap(),
            ..uplink()
        },
    ];
    let plain = compute(&settings(Encryption::None), &all, &local).unwrap();
    assert!(!plain.routes.is_empty() && plain.vxlan.is_some());
    assert!(plain.wireguard.is_none());
    assert!(
        plain.conflist.contains("\"mtu\": 1450"),
        "{}",
        plain.conflist
    );

    let d = compute(&settings(Encryption::Wireguard), &all, &local).unwrap();
    assert!(d.routes.is_empty(), "{:?}", d.routes);
    assert!(d.vxlan.is_none(), "WireGuard needs no VXLAN beneath it");
    let wg = d.wireguard.as_ref().expect("a wireguard plan");
    assert_eq!(wg.peers.len(), 2);
    // The pods' MTU leaves room for WireGuard over IPv4 (1500 - 60).
    assert!(d.conflist.contains("\"mtu\": 1440"), "{}", d.conflist);
    let mut with_flag = settings(Encryption::Wireguard);
    with_flag.mtu = Some(1300);
    let d = compute(&with_flag, &all, &local).unwrap();
    assert!(d.conflist.contains("\"mtu\": 1300"), "{}", d.conflist);
}

#[test]
fn handshakes_start_with_peers_that_have_none_once_per_retry_period() {
    use ferry_wireguard::{DeviceState, PeerState};
    use std::time::{Duration, Instant};
    let (p, bad) = plan(&cluster()["k8s-1"], &cluster(), &uplink(), 51820);
    assert!(bad.is_empty(), "{bad:?}");
    let (k2, k3) = (key(2), key(3));
    let mut state = DeviceState::default();
    // k8s-2: a session; k8s-3: none yet (boringtun leaves the time out).
    state.peers.insert(
        k2,
        PeerState {
            last_handshake_sec: 0,
            last_handshake_nsec: 400,
            ..PeerState::default()
        },
    );
    state.peers.insert(k3, PeerState::default());
    let now = Instant::now();
    let mut woken = BTreeMap::new();
    let start = handshakes_to_start(&p, &state, &woken, now);
    assert_eq!(
        start,
        [("k8s-3".to_string(), k3, "10.244.2.0:9".parse().unwrap())],
        "only the peer without a handshake, at its first podCIDR's network address"
    );
    woken.insert(k3, now);
    assert!(handshakes_to_start(&p, &state, &woken, now + Duration::from_secs(30)).is_empty());
    assert_eq!(
        handshakes_to_start(&p, &state, &woken, now + HANDSHAKE_RETRY).len(),
        1,
        "woken again once WireGuard has given up"
    );
    // A peer the device does not have yet (just added) is woken too.
    state.peers.clear();
    assert_eq!(
        handshakes_to_start(&p, &state, &BTreeMap::new(), now).len(),
        2
    );
}
