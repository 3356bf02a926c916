//! Address and route tests against the real kernel, plus an end-to-end
//! "pod wiring" test that pings across a veth pair.

mod common;

use std::net::IpAddr;

use common::TestNs;
use ferry_netlink::ipnet::IpNet;
use ferry_netlink::{
    AddrOptions, Family, Handle, Route, RouteKind, Scope, VethSpec, IFA_F_NODAD, RT_TABLE_MAIN,
};
use ferry_netns::{sysctl, NetNs};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Creates an up veth pair with both ends in the handle's namespace and
/// returns the ifindex of `name`.
fn local_veth(h: &mut Handle, name: &str, peer: &str) -> u32 {
    let me = NetNs::current().unwrap();
    h.create_veth(&VethSpec::new(name, peer, me.as_fd()).up(true))
        .unwrap();
    let peer = h.link_by_name(peer).unwrap().unwrap();
    h.set_up(peer.index).unwrap();
    h.link_by_name(name).unwrap().unwrap().index
}

#[test]
fn addresses_v4_v6_nodad() {
    let t = TestNs::new();
    t.nl(|h| {
        let idx = local_veth(h, "a0", "a1");
        let v4 = net("10.77.0.5/32");
        let v6 = net("fd00:77::5/128");
        h.add_address(idx, v4, AddrOptions::default()).unwrap();
        h.add_address(idx, v6, AddrOptions::nodad()).unwrap();
        // Without NODAD on an up link with carrier, DAD runs: tentative.
        let slow = net("fd00:77::6/128");
        h.add_address(idx, slow, AddrOptions::default()).unwrap();

        let err = h.add_address(idx, v4, AddrOptions::default()).unwrap_err();
        assert!(err.is_exists(), "{err}");
        assert!(err.to_string().contains("10.77.0.5/32"), "{err}");

        let addrs = h.addresses(Some(idx)).unwrap();
        assert!(addrs.iter().all(|a| a.index == idx));
        let a4 = addrs.iter().find(|a| a.addr == v4).expect("v4 listed");
        assert_eq!(a4.scope, Scope::Universe);
        let a6 = addrs.iter().find(|a| a.addr == v6).expect("v6 listed");
        assert!(a6.flags & IFA_F_NODAD != 0, "flags {:#x}", a6.flags);
        assert!(!a6.is_tentative(), "flags {:#x}", a6.flags);
        let s6 = addrs.iter().find(|a| a.addr == slow).expect("v6 listed");
        assert!(s6.is_tentative(), "flags {:#x}", s6.flags);

        // Link-scope address, and the unfiltered dump.
        let ll = net("169.254.9.9/16");
        h.add_address(
            idx,
            ll,
            AddrOptions {
                scope: Scope::Link,
                nodad: false,
            },
        )
        .unwrap();
        let all = h.addresses(None).unwrap();
        assert!(all.iter().any(|a| a.addr == ll && a.scope == Scope::Link));

        assert!(h.delete_address(idx, v4).unwrap());
        assert!(!h.delete_address(idx, v4).unwrap());
        assert!(!h.addresses(Some(idx)).unwrap().iter().any(|a| a.addr == v4));
    });
}

#[test]
fn routes_add_replace_delete_dump() {
    let t = TestNs::new();
    t.nl(|h| {
        let idx = local_veth(h, "r0", "r1");
        h.add_address(idx, net("10.99.0.1/24"), AddrOptions::default())
            .unwrap();
        h.add_address(idx, net("fd00:99::1/64"), AddrOptions::nodad())
            .unwrap();

        // Unicast via a gateway, custom protocol.
        let r = Route::new(net("10.50.0.0/16"))
            .via(ip("10.99.0.2"))
            .dev(idx)
            .protocol(77);
        h.add_route(&r).unwrap();
        let err = h.add_route(&r).unwrap_err();
        assert!(err.is_exists(), "{err}");
        let routes = h.routes(Family::V4, None).unwrap();
        let got = routes.iter().find(|x| x.dst == r.dst).expect("listed");
        assert_eq!(got.gateway, Some(ip("10.99.0.2")));
        assert_eq!(
            (got.oif, got.protocol, got.table),
            (Some(idx), 77, RT_TABLE_MAIN)
        );
        assert_eq!(got.kind, RouteKind::Unicast);
        // The kernel's own prefix route is there too.
        assert!(routes
            .iter()
            .any(|x| x.dst == net("10.99.0.0/24") && x.protocol == 2 && x.scope == Scope::Link));

        // Replace: new gateway, same key.
        let r2 = r.clone().via(ip("10.99.0.3"));
        h.replace_route(&r2).unwrap();
        let routes = h.routes(Family::V4, None).unwrap();
        let same_dst: Vec<_> = routes.iter().filter(|x| x.dst == r.dst).collect();
        assert_eq!(same_dst.len(), 1, "{same_dst:?}");
        assert_eq!(same_dst[0].gateway, Some(ip("10.99.0.3")));
        // Replace also creates.
        let r3 = Route::link_scope(net("10.51.0.0/16"), idx).protocol(77);
        h.replace_route(&r3).unwrap();

        // Blackhole in a custom table.
        let bh = Route::blackhole(net("10.66.0.0/16"))
            .table(1000)
            .protocol(77);
        h.add_route(&bh).unwrap();
        assert!(!h
            .routes(Family::V4, None)
            .unwrap()
            .iter()
            .any(|x| x.dst == bh.dst));
        let t1000 = h.routes(Family::V4, Some(1000)).unwrap();
        assert_eq!(t1000.len(), 1, "{t1000:?}");
        assert_eq!(t1000[0].kind, RouteKind::Blackhole);
        assert_eq!((t1000[0].table, t1000[0].protocol), (1000, 77));

        // IPv6 with a metric.
        let r6 = Route::new(net("fd00:50::/64"))
            .via(ip("fd00:99::2"))
            .dev(idx)
            .priority(300)
            .protocol(77);
        h.add_route(&r6).unwrap();
        let v6 = h.routes(Family::V6, None).unwrap();
        let got6 = v6.iter().find(|x| x.dst == r6.dst).expect("v6 listed");
        assert_eq!((got6.priority, got6.gateway), (Some(300), r6.gateway));
        assert!(v6.iter().all(|x| x.family() == Family::V6));

        // Deletes: true once, then false.
        for route in [&r2, &r3, &bh, &r6] {
            assert!(h.delete_route(route).unwrap(), "{route:?}");
            assert!(!h.delete_route(route).unwrap(), "{route:?}");
        }
        let left = h.routes(Family::V4, None).unwrap();
        assert!(!left.iter().any(|x| x.protocol == 77), "{left:?}");
        assert!(h.routes(Family::V4, Some(1000)).unwrap().is_empty());

        // A gateway nobody can reach is refused with the errno.
        let err = h
            .add_route(&Route::new(net("10.52.0.0/16")).via(ip("192.0.2.1")))
            .unwrap_err();
        assert_eq!(err.errno(), Some(101), "{err}"); // ENETUNREACH
    });
}

#[test]
fn pod_wiring_default_route_and_ping() {
    let host = TestNs::new();
    let pod = TestNs::new();
    let pod_ip = net("10.244.0.5/32");
    let gw = ip("169.254.1.1");

    // Host side: veth created up, peer straight into the pod, gateway
    // address on the host end, /32 route to the pod.
    let pod_fd = &pod.ns;
    host.nl(|h| {
        h.create_veth(
            &VethSpec::new("fvh0", "eth0", pod_fd.as_fd())
                .mtu(1450)
                .up(true),
        )
        .unwrap();
        let vh = h.link_by_name("fvh0").unwrap().unwrap();
        h.add_address(vh.index, net("169.254.1.1/32"), AddrOptions::default())
            .unwrap();
        h.add_route(&Route::link_scope(pod_ip, vh.index)).unwrap();
        sysctl::write("net/ipv4/conf/fvh0/proxy_arp", "1").unwrap();
        assert_eq!(sysctl::read("net.ipv4.conf.fvh0.proxy_arp").unwrap(), "1");
        assert_eq!(h.default_route_link(Family::V4).unwrap(), None);
    });

    // Pod side: eth0 up, address, on-link gateway route, default route.
    pod.nl(|h| {
        let eth0 = h.link_by_name("eth0").unwrap().unwrap();
        assert_eq!(eth0.mtu, 1450);
        h.set_up(1).unwrap(); // lo
        h.set_up(eth0.index).unwrap();
        h.add_address(eth0.index, pod_ip, AddrOptions::nodad())
            .unwrap();
        h.add_route(&Route::link_scope(net("169.254.1.1/32"), eth0.index))
            .unwrap();
        h.add_route(&Route::default_via(gw).dev(eth0.index))
            .unwrap();

        let def = h.default_route_link(Family::V4).unwrap().expect("default");
        assert_eq!(def.index, eth0.index);
        assert_eq!(def.name, "eth0");
        assert_eq!(h.default_route_link(Family::V6).unwrap(), None);
        let routes = h.routes(Family::V4, None).unwrap();
        let d = routes.iter().find(|r| r.dst.prefix_len() == 0).unwrap();
        assert_eq!((d.gateway, d.oif), (Some(gw), Some(eth0.index)));
        let l = routes
            .iter()
            .find(|r| r.dst == net("169.254.1.1/32"))
            .unwrap();
        assert_eq!(l.scope, Scope::Link);
    });

    assert!(
        pod.cmd("ping", &["-c1", "-W3", "169.254.1.1"]),
        "pod -> host"
    );
    assert!(
        !pod.cmd("ping", &["-c1", "-W1", "169.254.1.2"]),
        "nobody owns 169.254.1.2: proves the ping check can fail"
    );
    assert!(
        host.cmd("ping", &["-c1", "-W3", "10.244.0.5"]),
        "host -> pod"
    );
}

#[test]
fn default_route_prefers_lowest_metric() {
    let t = TestNs::new();
    t.nl(|h| {
        let a = local_veth(h, "d0", "d1");
        let b = local_veth(h, "e0", "e1");
        h.add_address(a, net("10.1.0.1/24"), AddrOptions::default())
            .unwrap();
        h.add_address(b, net("10.2.0.1/24"), AddrOptions::default())
            .unwrap();
        h.add_route(&Route::default_via(ip("10.1.0.254")).dev(a).priority(200))
            .unwrap();
        h.add_route(&Route::default_via(ip("10.2.0.254")).dev(b).priority(100))
            .unwrap();
        let link = h.default_route_link(Family::V4).unwrap().unwrap();
        assert_eq!(link.name, "e0");
        // Onlink default route for IPv6 through a link-local-less gateway.
        h.add_route(&Route::default_via(ip("fd00:1::1")).dev(a).onlink())
            .unwrap();
        let link = h.default_route_link(Family::V6).unwrap().unwrap();
        assert_eq!(link.name, "d0");
        let v6 = h.routes(Family::V6, None).unwrap();
        assert!(v6.iter().any(|r| r.dst.prefix_len() == 0 && r.onlink));
    });
}

#[test]
fn permanent_neighbours_v4_v6() {
    let t = TestNs::new();
    t.nl(|h| {
        let idx = local_veth(h, "n0", "n1");
        let mac = [0xee; 6];
        let (gw4, gw6) = (ip("169.254.1.1"), ip("fe80::1"));
        h.set_permanent_neighbour(idx, gw4, mac).unwrap();
        h.set_permanent_neighbour(idx, gw6, mac).unwrap();
        // Replacing is idempotent.
        h.set_permanent_neighbour(idx, gw4, mac).unwrap();
        for (fam, gw) in [(Family::V4, gw4), (Family::V6, gw6)] {
            let all = h.neighbours(fam, Some(idx)).unwrap();
            let n = all.iter().find(|n| n.ip == gw).expect("entry");
            assert!(n.is_permanent(), "{n:?}");
            assert_eq!(n.lladdr.as_deref(), Some(&mac[..]));
            assert_eq!(n.index, idx);
            assert!(all.iter().all(|n| n.index == idx), "filtered by link");
        }
        assert!(h.delete_neighbour(idx, gw4).unwrap());
        assert!(!h.delete_neighbour(idx, gw4).unwrap(), "already gone");
        let v4 = h.neighbours(Family::V4, Some(idx)).unwrap();
        assert!(v4.iter().all(|n| n.ip != gw4), "{v4:?}");
    });
}
