//! Real traffic through the masquerade table. Namespaces:
//!
//! ```text
//!  pod  10.244.0.5 fd00:10:244::5 ──veth── node (pod0: .1)
//!  pod2 10.244.1.5 fd00:10:244:1::5 ──veth── node (pod1: .1)
//!  node eth0 172.16.97.75 fd97::75 ──veth── ext ext0 172.16.97.200 fd97::200
//!       (ext also plays another node: its lo has the remote pod addresses
//!        10.244.2.5 and fd00:10:244:2::5, routed over the node's eth0)
//! ```
//!
//! A TCP listener reports the peer address it sees. ext routes the cluster
//! CIDRs back to the node, so unmasqueraded connections work too and the
//! peer address alone tells whether the node masqueraded.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{masq, Ns};
use ferry_nft::{apply, apply_if_changed, delete_table, read_table, IpFamily};

struct Lab {
    node: Ns,
    pod: Ns,
    pod2: Ns,
    ext: Ns,
}

fn lab() -> Lab {
    let lab = Lab {
        node: Ns::new("nfn"),
        pod: Ns::new("nfp"),
        pod2: Ns::new("nfq"),
        ext: Ns::new("nfe"),
    };
    let (node, ext) = (&lab.node, &lab.ext);
    for (pod, dev, net4, net6) in [
        (&lab.pod, "pod0", "10.244.0", "fd00:10:244:"),
        (&lab.pod2, "pod1", "10.244.1", "fd00:10:244:1:"),
    ] {
        node.ip(&[
            "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", &pod.name,
        ]);
        node.ip(&["addr", "add", &format!("{net4}.1/24"), "dev", dev]);
        node.ip(&["addr", "add", &format!("{net6}:1/64"), "dev", dev, "nodad"]);
        node.ip(&["link", "set", dev, "up"]);
        pod.ip(&["addr", "add", &format!("{net4}.5/24"), "dev", "eth0"]);
        pod.ip(&[
            "addr",
            "add",
            &format!("{net6}:5/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        pod.ip(&["link", "set", "eth0", "up"]);
        pod.ip(&["route", "add", "default", "via", &format!("{net4}.1")]);
        pod.ip(&["-6", "route", "add", "default", "via", &format!("{net6}:1")]);
    }
    node.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "ext0", "netns", &ext.name,
    ]);
    node.ip(&["addr", "add", "172.16.97.75/24", "dev", "eth0"]);
    node.ip(&["addr", "add", "fd97::75/64", "dev", "eth0", "nodad"]);
    node.ip(&["link", "set", "eth0", "up"]);
    node.ip(&["route", "add", "10.244.2.0/24", "via", "172.16.97.200"]);
    node.ip(&[
        "-6",
        "route",
        "add",
        "fd00:10:244:2::/64",
        "via",
        "fd97::200",
    ]);
    for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
        node.sh(&["sysctl", "-qw", key]);
    }
    ext.ip(&["addr", "add", "172.16.97.200/24", "dev", "ext0"]);
    ext.ip(&["addr", "add", "fd97::200/64", "dev", "ext0", "nodad"]);
    ext.ip(&["link", "set", "ext0", "up"]);
    ext.ip(&["addr", "add", "10.244.2.5/32", "dev", "lo"]);
    ext.ip(&["addr", "add", "fd00:10:244:2::5/128", "dev", "lo"]);
    ext.ip(&["route", "add", "10.244.0.0/16", "via", "172.16.97.75"]);
    ext.ip(&["-6", "route", "add", "fd00:10:244::/56", "via", "fd97::75"]);
    lab
}

/// Connects from `client` to a listener in `server` on `addr`; the server
/// writes back the peer address it accepted, which is returned.
fn peer_seen(client: &Ns, server: &Ns, addr: &str) -> IpAddr {
    let ip: IpAddr = addr.parse().unwrap();
    let listener = server
        .run(|| TcpListener::bind(SocketAddr::new(ip, 0)))
        .unwrap_or_else(|e| panic!("listen on {addr}: {e}"));
    let target = listener.local_addr().unwrap();
    std::thread::scope(|s| {
        // Bounded: when the client cannot connect, it panics with the
        // reason, and the scope (which joins this thread first) must not
        // hang on an accept that never comes.
        let server = s.spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let (mut conn, peer) = loop {
                match listener.accept() {
                    Ok(accepted) => break accepted,
                    Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("accept on {target}: {e}"),
                }
            };
            conn.set_nonblocking(false).unwrap();
            conn.write_all(peer.ip().to_string().as_bytes()).unwrap();
        });
        let mut stream = client
            .run(|| TcpStream::connect_timeout(&target, Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("connect from {} to {target}: {e}", client.name));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut report = String::new();
        stream.read_to_string(&mut report).expect("read the report");
        server.join().unwrap();
        report
            .parse()
            .unwrap_or_else(|_| panic!("bad report {report:?}"))
    })
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const CLUSTER: [&str; 2] = ["10.244.0.0/16", "fd00:10:244::/56"];

#[test]
fn pod_traffic_leaving_the_cluster_is_masqueraded_and_cluster_traffic_is_not() {
    let lab = lab();
    let (node, pod, pod2, ext) = (&lab.node, &lab.pod, &lab.pod2, &lab.ext);

    // Without the table nothing is masqueraded (the check can fail).
    assert_eq!(peer_seen(pod, ext, "172.16.97.200"), ip("10.244.0.5"));
    assert_eq!(peer_seen(pod, ext, "fd97::200"), ip("fd00:10:244::5"));

    let t = masq("ferry", &CLUSTER, "eth0");
    node.run(|| apply(&t)).unwrap();

    // Out of the cluster: the node's address.
    assert_eq!(peer_seen(pod, ext, "172.16.97.200"), ip("172.16.97.75"));
    assert_eq!(peer_seen(pod, ext, "fd97::200"), ip("fd97::75"));
    // To a pod on another node, over the same uplink: untouched.
    assert_eq!(peer_seen(pod, ext, "10.244.2.5"), ip("10.244.0.5"));
    assert_eq!(
        peer_seen(pod, ext, "fd00:10:244:2::5"),
        ip("fd00:10:244::5")
    );
    // To a pod on this node: untouched.
    assert_eq!(peer_seen(pod, pod2, "10.244.1.5"), ip("10.244.0.5"));
    assert_eq!(
        peer_seen(pod, pod2, "fd00:10:244:1::5"),
        ip("fd00:10:244::5")
    );

    // One masqueraded connection per family: NAT sees its first packet.
    let s = node.run(|| read_table("ferry")).unwrap().unwrap();
    let (c4, c6) = (
        s.counter(IpFamily::V4).unwrap(),
        s.counter(IpFamily::V6).unwrap(),
    );
    assert_eq!((c4.packets, c6.packets), (1, 1), "{s:#?}");
    assert!(c4.bytes > 0 && c6.bytes > 0);
    assert_eq!(s.masqueraded().packets, 2);

    // An unchanged table is left alone, counters included; a forced
    // replace starts them again.
    assert!(!node.run(|| apply_if_changed(&t)).unwrap());
    let s = node.run(|| read_table("ferry")).unwrap().unwrap();
    assert_eq!(s.masqueraded().packets, 2);
    node.run(|| apply(&t)).unwrap();
    let s = node.run(|| read_table("ferry")).unwrap().unwrap();
    assert_eq!(s.masqueraded().packets, 0);
    assert_eq!(peer_seen(pod, ext, "172.16.97.200"), ip("172.16.97.75"));
}

#[test]
fn only_the_named_interface_and_the_cluster_sources_are_masqueraded() {
    let lab = lab();
    let (node, pod, ext) = (&lab.node, &lab.pod, &lab.ext);

    // Another uplink name: traffic out of eth0 is not masqueraded.
    node.run(|| apply(&masq("ferry", &CLUSTER, "eth1")))
        .unwrap();
    assert_eq!(peer_seen(pod, ext, "172.16.97.200"), ip("10.244.0.5"));
    assert_eq!(peer_seen(pod, ext, "fd97::200"), ip("fd00:10:244::5"));

    // Cluster CIDRs that do not hold the pod: not masqueraded. Only v4
    // CIDRs: no v6 rule at all.
    node.run(|| apply(&masq("ferry", &["10.250.0.0/16"], "eth0")))
        .unwrap();
    assert_eq!(peer_seen(pod, ext, "172.16.97.200"), ip("10.244.0.5"));
    assert_eq!(peer_seen(pod, ext, "fd97::200"), ip("fd00:10:244::5"));

    // Pod range in the set through a merge of adjacent CIDRs: masqueraded.
    let split = [
        "10.244.0.0/17",
        "10.244.128.0/17",
        "fd00:10:244::/57",
        "fd00:10:244:80::/57",
    ];
    node.run(|| apply(&masq("ferry", &split, "eth0"))).unwrap();
    assert_eq!(peer_seen(pod, ext, "172.16.97.200"), ip("172.16.97.75"));
    assert_eq!(peer_seen(pod, ext, "fd97::200"), ip("fd97::75"));
    assert_eq!(peer_seen(pod, ext, "10.244.2.5"), ip("10.244.0.5"));

    // Deleted: back to plain routing.
    assert!(node.run(|| delete_table("ferry")).unwrap());
    assert_eq!(peer_seen(pod, ext, "172.16.97.200"), ip("10.244.0.5"));
}
