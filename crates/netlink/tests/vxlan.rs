//! VXLAN link, FDB and permanent-neighbour tests against the real kernel,
//! in throw-away namespaces, checked against what `ip`/`bridge` show.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestNs;
use ferry_netlink::{AddrOptions, Handle, VxlanSpec};

const MAC: [u8; 6] = [0x0e, 0xf7, 172, 16, 97, 75];
const PEER_MAC: [u8; 6] = [0x0e, 0xf7, 172, 16, 98, 76];

fn out(t: &TestNs, program: &str, args: &[&str]) -> String {
    t.ns.run(|| {
        let o = std::process::Command::new(program)
            .args(args)
            .output()
            .expect("spawn");
        assert!(o.status.success(), "{program} {args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    })
    .expect("run in netns")
}

/// A namespace with a dummy uplink `up0` holding 172.16.97.75/24.
fn with_uplink() -> (TestNs, u32) {
    let t = TestNs::new();
    assert!(t.cmd(
        "ip",
        &["link", "add", "up0", "mtu", "1500", "type", "veth", "peer", "up1"]
    ));
    assert!(t.cmd("ip", &["link", "set", "up0", "up"]));
    let idx = t.nl(|h| {
        let l = h.link_by_name("up0").unwrap().unwrap();
        h.add_address(
            l.index,
            "172.16.97.75/24".parse().unwrap(),
            AddrOptions::default(),
        )
        .unwrap();
        l.index
    });
    (t, idx)
}

fn spec(uplink: u32) -> VxlanSpec {
    VxlanSpec::new(
        "ferry.vxlan",
        1,
        Ipv4Addr::new(172, 16, 97, 75),
        uplink,
        1450,
        MAC,
    )
}

#[test]
fn vxlan_link_is_created_checked_and_updated_in_place() {
    let (t, uplink) = with_uplink();
    let s = spec(uplink);
    let (index, changed) = t.nl(|h| h.ensure_vxlan(&s).unwrap());
    assert!(changed);
    let shown = out(&t, "ip", &["-d", "link", "show", "ferry.vxlan"]);
    for want in [
        // iproute2 prints `group`/`remote` right after the id: none here.
        "vxlan id 1 local 172.16.97.75 dev up0",
        "dstport 4789",
        "nolearning",
        "ttl 64",
        "mtu 1450",
        "link/ether 0e:f7:ac:10:61:4b",
        ",UP",
    ] {
        assert!(shown.contains(want), "{want:?} not in {shown}");
    }
    assert!(!shown.contains("remote "), "{shown}");
    t.nl(|h| {
        let v = h.vxlan_by_name("ferry.vxlan").unwrap().unwrap();
        assert!(v.matches(&s), "{v:?}");
        assert_eq!(v.link.index, index);
        // Converged: nothing to do.
        assert_eq!(h.ensure_vxlan(&s).unwrap(), (index, false));
        // MTU and MAC change in place (same ifindex).
        let s2 = VxlanSpec {
            mtu: 1400,
            mac: PEER_MAC,
            ..s.clone()
        };
        assert_eq!(h.ensure_vxlan(&s2).unwrap(), (index, true));
        let l = h.link_by_index(index).unwrap().unwrap();
        assert_eq!((l.mtu, l.mac), (1400, Some(PEER_MAC)));
        // Another VNI needs a new link.
        let s3 = VxlanSpec { vni: 7, ..s2 };
        let (i3, changed) = h.ensure_vxlan(&s3).unwrap();
        assert!(changed);
        assert_eq!(
            h.vxlan_by_name("ferry.vxlan").unwrap().unwrap().vni,
            Some(7)
        );
        assert_eq!(h.link_by_index(index).unwrap(), None, "old link gone");
        // Not a vxlan link: None, and ensure replaces it.
        assert_eq!(h.vxlan_by_name("up0").unwrap(), None);
        assert_eq!(h.vxlan_by_name("nope0").unwrap(), None);
        assert!(h.delete_link_by_name("ferry.vxlan").unwrap());
        assert_eq!(h.vxlan_by_name("ferry.vxlan").unwrap(), None);
        let _ = i3;
    });
}

#[test]
fn fdb_and_neighbour_entries_match_bridge_and_ip() {
    let (t, uplink) = with_uplink();
    let s = spec(uplink);
    t.nl(|h: &mut Handle| {
        let (index, _) = h.ensure_vxlan(&s).unwrap();
        let peer: IpAddr = "172.16.98.76".parse().unwrap();
        h.set_fdb(index, PEER_MAC, peer).unwrap();
        // Idempotent, and a second MAC.
        h.set_fdb(index, PEER_MAC, peer).unwrap();
        h.set_fdb(index, MAC, "172.16.98.77".parse().unwrap())
            .unwrap();
        let vtep: IpAddr = "10.244.1.0".parse().unwrap();
        h.set_permanent_neighbour(index, vtep, PEER_MAC).unwrap();
        let vtep6: IpAddr = "fd00:10:244:1::".parse().unwrap();
        h.set_permanent_neighbour(index, vtep6, PEER_MAC).unwrap();

        let mut fdb = h.fdb(index).unwrap();
        fdb.sort();
        assert_eq!(fdb.len(), 2, "{fdb:?}");
        let e = fdb.iter().find(|e| e.mac == PEER_MAC).unwrap();
        assert_eq!(e.dst, Some(peer));
        assert!(e.is_permanent());
        // Replace moves the MAC to another remote, not adding one.
        h.set_fdb(index, PEER_MAC, "172.16.98.99".parse().unwrap())
            .unwrap();
        let fdb = h.fdb(index).unwrap();
        assert_eq!(fdb.len(), 2, "{fdb:?}");
        assert!(fdb
            .iter()
            .any(|e| e.dst == Some("172.16.98.99".parse().unwrap())));
        h.set_fdb(index, PEER_MAC, peer).unwrap();
        let n = h
            .neighbours(ferry_netlink::Family::V4, Some(index))
            .unwrap();
        assert_eq!(n.len(), 1, "{n:?}");
        assert!(n[0].is_permanent());
        assert_eq!(n[0].lladdr.as_deref(), Some(&PEER_MAC[..]));
    });
    let fdb = out(&t, "bridge", &["fdb", "show", "dev", "ferry.vxlan"]);
    assert!(
        fdb.contains("0e:f7:ac:10:62:4c dst 172.16.98.76 self permanent"),
        "{fdb}"
    );
    assert!(
        !fdb.contains("00:00:00:00:00:00"),
        "no flooding entry: {fdb}"
    );
    let neigh = out(&t, "ip", &["neigh", "show", "dev", "ferry.vxlan"]);
    assert!(
        neigh.contains("10.244.1.0 lladdr 0e:f7:ac:10:62:4c PERMANENT"),
        "{neigh}"
    );
    assert!(
        neigh.contains("fd00:10:244:1:: lladdr 0e:f7:ac:10:62:4c PERMANENT"),
        "{neigh}"
    );
    t.nl(|h| {
        let index = h.link_by_name("ferry.vxlan").unwrap().unwrap().index;
        assert!(h.delete_fdb(index, PEER_MAC).unwrap());
        assert!(!h.delete_fdb(index, PEER_MAC).unwrap());
        assert!(h
            .delete_neighbour(index, "10.244.1.0".parse().unwrap())
            .unwrap());
        let fdb = h.fdb(index).unwrap();
        assert_eq!(fdb.len(), 1, "{fdb:?}");
        assert_eq!(fdb[0].mac, MAC);
    });
    let fdb = out(&t, "bridge", &["fdb", "show", "dev", "ferry.vxlan"]);
    assert!(!fdb.contains("0e:f7:ac:10:62:4c"), "{fdb}");
}
