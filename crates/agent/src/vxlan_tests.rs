use super::*;
use ferry_netlink::NUD_PERMANENT;

fn peer(node: &str, ip: &str, cidrs: &[&str]) -> VxlanPeer {
    VxlanPeer {
        node: node.into(),
        underlay: ip.parse().unwrap(),
        cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
    }
}

fn want(peers: Vec<VxlanPeer>) -> VxlanPlan {
    let own: Vec<IpNet> = vec![
        "10.244.0.0/24".parse().unwrap(),
        "fd00:10:244::/64".parse().unwrap(),
    ];
    let mut p = VxlanPlan::new("172.16.97.75".parse().unwrap(), 2, 1500, &own);
    p.peers = peers;
    p
}

/// What the kernel would hold after applying `p` to an empty device.
fn applied(p: &VxlanPlan) -> VxlanState {
    let mut s = VxlanState::default();
    for op in plan(&VxlanState::default(), p) {
        match op {
            VxlanOp::AddAddr(a) => s.addrs.push(a),
            VxlanOp::SetFdb(mac, dst) => s.fdb.push(FdbEntry {
                index: 9,
                mac,
                dst: Some(dst),
                state: NUD_PERMANENT,
            }),
            VxlanOp::SetNeigh(ip, mac) => s.neighbours.push(Neighbour {
                index: 9,
                ip,
                lladdr: Some(mac.to_vec()),
                state: NUD_PERMANENT,
            }),
            other => panic!("{other:?} on an empty device"),
        }
    }
    s
}

#[test]
fn derived_addresses() {
    assert_eq!(
        vtep_mac("172.16.98.76".parse().unwrap()),
        [0x0e, 0xf7, 172, 16, 98, 76]
    );
    // Locally administered, unicast.
    assert_eq!(vtep_mac(Ipv4Addr::BROADCAST)[0] & 0b11, 0b10);
    assert_eq!(
        vtep_net(&"10.244.3.0/24".parse().unwrap()).to_string(),
        "10.244.3.0/32"
    );
    assert_eq!(
        vtep_net(&"fd00:10:244:3::/64".parse().unwrap()).to_string(),
        "fd00:10:244:3::/128"
    );
    assert_eq!(device_mtu(1500), 1450);
    let p = want(vec![]);
    assert_eq!(p.mtu, 1450);
    let s = p.spec();
    assert_eq!(
        (s.name.as_str(), s.vni, s.port, s.learning),
        (VXLAN_IFNAME, VNI, 4789, false)
    );
    assert_eq!(s.mac, vtep_mac(p.local));
}

#[test]
fn peers_get_fdb_neighbours_and_onlink_routes() {
    let p = want(vec![peer(
        "k8s-2",
        "172.16.98.76",
        &["10.244.1.0/24", "fd00:10:244:1::/64"],
    )]);
    let ops = plan(&VxlanState::default(), &p);
    let mac = vtep_mac("172.16.98.76".parse().unwrap());
    assert_eq!(
        ops,
        [
            VxlanOp::AddAddr("10.244.0.0/32".parse().unwrap()),
            VxlanOp::AddAddr("fd00:10:244::/128".parse().unwrap()),
            VxlanOp::SetFdb(mac, "172.16.98.76".parse().unwrap()),
            VxlanOp::SetNeigh("10.244.1.0".parse().unwrap(), mac),
            VxlanOp::SetNeigh("fd00:10:244:1::".parse().unwrap(), mac),
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
            "fd00:10:244:1::/64 via fd00:10:244:1:: dev 9 onlink=true"
        ]
    );
    // Converged: nothing to do, and the link-local address is left alone.
    let mut s = applied(&p);
    s.addrs.push("fe80::cf7:acff:fe10:614b/64".parse().unwrap());
    // A neighbour the kernel made itself (not permanent) is no business
    // of ours.
    s.neighbours.push(Neighbour {
        index: 9,
        ip: "ff02::2".parse().unwrap(),
        lladdr: None,
        state: 0x40,
    });
    assert_eq!(plan(&s, &p), []);
}

#[test]
fn node_ip_change_and_deletion_leave_nothing_stale() {
    let before = want(vec![
        peer("k8s-2", "172.16.98.76", &["10.244.1.0/24"]),
        peer("k8s-3", "172.16.98.77", &["10.244.2.0/24"]),
    ]);
    let s = applied(&before);
    // k8s-2 moves to .86, k8s-3 is deleted.
    let after = want(vec![peer("k8s-2", "172.16.98.86", &["10.244.1.0/24"])]);
    let ops = plan(&s, &after);
    let new_mac = vtep_mac("172.16.98.86".parse().unwrap());
    let old2 = vtep_mac("172.16.98.76".parse().unwrap());
    let old3 = vtep_mac("172.16.98.77".parse().unwrap());
    assert_eq!(
        ops,
        [
            VxlanOp::SetFdb(new_mac, "172.16.98.86".parse().unwrap()),
            VxlanOp::SetNeigh("10.244.1.0".parse().unwrap(), new_mac),
            VxlanOp::DelFdb(old2),
            VxlanOp::DelFdb(old3),
            VxlanOp::DelNeigh("10.244.2.0".parse().unwrap()),
        ]
    );
    // Own podCIDR gone (both families): addresses removed.
    let mut none = want(vec![]);
    none.addrs.clear();
    let ops = plan(&applied(&before), &none);
    assert!(ops.iter().all(VxlanOp::is_delete), "{ops:?}");
    assert_eq!(ops.len(), 2 + 2 + 2, "{ops:?}");
}

#[test]
fn a_mac_with_several_remotes_or_a_wrong_one_is_reset() {
    let p = want(vec![peer("k8s-2", "172.16.98.76", &["10.244.1.0/24"])]);
    let mut s = applied(&p);
    let mac = s.fdb[0].mac;
    s.fdb.push(FdbEntry {
        dst: Some("172.16.98.99".parse().unwrap()),
        ..s.fdb[0].clone()
    });
    assert_eq!(
        plan(&s, &p),
        [VxlanOp::ResetFdb(mac, "172.16.98.76".parse().unwrap())]
    );
    let mut s = applied(&p);
    s.fdb[0].dst = Some("172.16.98.99".parse().unwrap());
    s.neighbours[0].lladdr = Some(vec![0; 6]);
    assert_eq!(
        plan(&s, &p),
        [
            VxlanOp::SetFdb(mac, "172.16.98.76".parse().unwrap()),
            VxlanOp::SetNeigh("10.244.1.0".parse().unwrap(), mac)
        ]
    );
}
