//! Pods made by the installed `ferry` plugin from the conflist ferryd
//! wrote: they reach pods on other nodes unmasqueraded over ferryd's
//! routes, and an outside host sees their node's IP.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::{wait_for, Lab};
use ferry_netns::NetNs;

fn netns(name: &str) -> NetNs {
    NetNs::open(Path::new(&format!("/run/netns/{name}"))).unwrap()
}

/// A TCP listener inside `ns` on `addr`: accepts one connection and
/// returns the peer address it saw (what the seed's NAT check looked at).
fn peer_seen(ns: &str, addr: &str, client: impl FnOnce() + Send) -> SocketAddr {
    let listener = netns(ns)
        .run(|| TcpListener::bind(addr).expect("bind listener"))
        .unwrap();
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            let (mut conn, peer) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(peer.to_string().as_bytes()).unwrap();
            peer
        });
        client();
        server.join().unwrap()
    })
}

fn connect_from(pod: &str, to: &str) {
    let to: SocketAddr = to.parse().unwrap();
    netns(pod)
        .run(|| {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("connect to {to}: {e}"));
            s.write_all(b"hello").unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
        })
        .unwrap();
}

#[test]
fn pods_reach_other_nodes_directly_and_the_outside_masqueraded() {
    let mut lab = Lab::new("na", 2, &[]);
    let ext = lab.add_external();
    lab.start_all();
    lab.wait_all_ready();

    let (pod_a, ip_a) = lab.nodes[0].add_pod("a");
    let (pod_b, ip_b) = lab.nodes[1].add_pod("b");
    assert!(ip_a.starts_with("10.244.0."), "{ip_a}");
    assert!(ip_b.starts_with("10.244.1."), "{ip_b}");

    // Pod to pod across nodes: routed, not masqueraded.
    wait_for(Duration::from_secs(30), "pod a pings pod b", || {
        ferry_testkit::ping(&pod_a, &ip_b).then_some(())
    });
    let peer = peer_seen(&pod_b, &format!("{ip_b}:8080"), || {
        connect_from(&pod_a, &format!("{ip_b}:8080"))
    });
    assert_eq!(
        peer.ip().to_string(),
        ip_a,
        "cluster traffic keeps the pod IP"
    );

    // Pod to the outside: masqueraded to the node's IP on the way out.
    let peer = peer_seen(&ext, "192.0.2.10:8080", || {
        connect_from(&pod_a, "192.0.2.10:8080")
    });
    assert_eq!(peer.ip().to_string(), lab.nodes[0].ip, "masqueraded");
    let peer = peer_seen(&ext, "192.0.2.10:8081", || {
        connect_from(&pod_b, "192.0.2.10:8081")
    });
    assert_eq!(peer.ip().to_string(), lab.nodes[1].ip, "masqueraded");

    // The node's own traffic to the outside is not ferry's business.
    let n0 = lab.nodes[0].ns.clone();
    let peer = peer_seen(&ext, "192.0.2.10:8082", || {
        connect_from(&n0, "192.0.2.10:8082")
    });
    assert_eq!(peer.ip().to_string(), lab.nodes[0].ip);

    // `status` lists the pod with its IP and container ID.
    let (ok, out, err) = lab.nodes[0].ferryd_cmd(&lab.kubeconfig, "status");
    assert!(ok, "{err}");
    assert!(out.contains("pods:       1"), "{out}");
    assert!(out.contains(&format!("{ip_a} ctr-a eth0")), "{out}");
}
