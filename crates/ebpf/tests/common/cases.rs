//! The test bodies both families run (`fast_path.rs`, `fast_path_v6.rs`).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferry_testkit::{ip, ns_exec};

use super::*;

/// One family's addresses and tools.
pub struct Fam {
    pub v6: bool,
    pub pod_a: &'static str,
    pub pod_b: &'static str,
    /// An address in pod A's CIDR that node A routes elsewhere.
    pub borrowed: &'static str,
}

pub const IPV4: Fam = Fam {
    v6: false,
    pod_a: POD_A,
    pod_b: POD_B,
    borrowed: "10.244.0.9",
};

pub const IPV6: Fam = Fam {
    v6: true,
    pod_a: POD_A6,
    pod_b: POD_B6,
    borrowed: "fd00:10:244::9",
};

impl Fam {
    pub fn sock(&self, addr: &str, port: u16) -> String {
        if self.v6 {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        }
    }

    /// What the namespace's IP stack forwarded in this family.
    pub fn stack_forwarded(&self, ns: &str) -> u64 {
        if self.v6 {
            forwarded6(ns)
        } else {
            forwarded(ns)
        }
    }

    pub fn ping(&self, from: &str, to: &str) -> bool {
        let fam = if self.v6 { "-6" } else { "-4" };
        ns_exec(from, &["ping", fam, "-c1", "-W2", to])
    }
}

/// Pod A → pod B over TCP: not NATed, all of it through the program and
/// (almost) none through either node's IP stack (a packet may take the
/// stack while a neighbour entry is refreshed); ICMP still works, through
/// the stack.
pub fn pod_to_pod_skips_both_stacks(f: &Fam) {
    let mut t = Topo::new();
    t.attach();
    let (na, nb) = (t.ns("na"), t.ns("nb"));
    let before = (f.stack_forwarded(&na), f.stack_forwarded(&nb), t.stats());
    let target = f.sock(f.pod_b, 7000);
    let (seen, _) = echo(&t.ns("pb"), &target, &t.ns("pa"), &target, 8 << 20);
    assert_eq!(seen.ip().to_string(), f.pod_a, "pod↔pod is not NATed");
    let after = (f.stack_forwarded(&na), f.stack_forwarded(&nb), t.stats());
    let fast = after.2.forwarded - before.2.forwarded;
    assert!(
        fast > 200,
        "only {fast} packets took the fast path: {:?}",
        after.2
    );
    let slow = (after.0 - before.0) + (after.1 - before.1);
    assert!(slow < fast / 20, "stack forwarded {slow}, program {fast}");
    assert!(f.ping(&t.ns("pa"), f.pod_b));
}

/// A kube-proxy-like ClusterIP on node A (`nft` commands DNAT
/// `cluster_ip:80` to pod B:8080): the client talks to the Service address
/// throughout, so the replies were un-DNATed on node A, through its stack;
/// node B never tracked the flow, so its side still went the fast way.
pub fn service_replies_are_tracked(f: &Fam, dnat: &[&str], cluster_ip: &str) {
    let mut t = Topo::new();
    nft(&t.ns("na"), dnat);
    t.attach();
    let before = t.stats();
    let service = f.sock(cluster_ip, 80);
    let (seen, answered) = echo(
        &t.ns("pb"),
        &f.sock(f.pod_b, 8080),
        &t.ns("pa"),
        &service,
        1 << 20,
    );
    assert_eq!(answered.to_string(), service);
    assert_eq!(seen.ip().to_string(), f.pod_a);
    let after = t.stats();
    assert!(
        after.tracked > before.tracked,
        "replies not seen as tracked: {after:?}"
    );
    assert!(after.forwarded > before.forwarded, "{after:?}");
}

/// Pod A also holds `f.borrowed`, which node A routes nowhere near it, and
/// node A's stack drops what does not route back (`strict`: the sysctls or
/// nft commands that make it so). Datagrams from that address must not
/// reach pod B, and the program must forward none of them. Pod A's
/// neighbour entry for its gateway is made with its real address first (a
/// request from the borrowed one gets no answer under strict filtering).
pub fn borrowed_source_gets_nothing_through(f: &Fam, strict: impl FnOnce(&str)) {
    let mut t = Topo::new();
    strict(&t.ns("na"));
    assert!(f.ping(&t.ns("pa"), f.pod_b));
    let prefix = if f.v6 { "/128" } else { "/32" };
    let mut args = vec!["addr", "add"];
    let addr = format!("{}{prefix}", f.borrowed);
    args.extend([addr.as_str(), "dev", "eth0"]);
    if f.v6 {
        args.push("nodad");
    }
    ip(Some(&t.ns("pa")), &args);
    t.attach();
    let before = t.stats();
    assert_eq!(
        udp_probe(&t, f, f.borrowed, 7002),
        None,
        "the spoofed datagrams got through"
    );
    assert_eq!(
        t.stats().forwarded,
        before.forwarded,
        "forwarded by the program"
    );
}

/// Pod A sends a few datagrams from `src` to pod B's `port`; returns where
/// the first one pod B received came from (`None`: none within 1.5 s).
pub fn udp_probe(t: &Topo, f: &Fam, src: &str, port: u16) -> Option<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    let server_ns = open(&t.ns("pb"));
    let pod_b = f.pod_b;
    let server = std::thread::spawn(move || {
        server_ns
            .run(move || -> Option<SocketAddr> {
                let s = std::net::UdpSocket::bind((pod_b, port)).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(1500)))
                    .unwrap();
                tx.send(()).unwrap();
                let mut buf = [0u8; 64];
                s.recv_from(&mut buf).ok().map(|(_, from)| from)
            })
            .unwrap()
    });
    rx.recv().unwrap();
    open(&t.ns("pa"))
        .run(|| {
            let s = std::net::UdpSocket::bind((src, 0)).unwrap();
            for _ in 0..5 {
                s.send_to(b"probe", (f.pod_b, port)).unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .unwrap();
    server.join().unwrap()
}

/// `excluded` (pod A's or pod B's address: the flow's source or its
/// destination) leaves the fast path in both directions: a TCP echo
/// between the pods crosses both nodes' stacks and not the program; a
/// drop rule at node A's forward hook (for pod B) drops pod A's datagrams.
/// Without the exclusion the program carries them again, past that rule.
pub fn excluded_pod_goes_through_netfilter(f: &Fam, excluded: &str) {
    let mut t = Topo::new();
    t.attach();
    let (na, nb) = (t.ns("na"), t.ns("nb"));
    let set: BTreeSet<IpAddr> = [excluded.parse().unwrap()].into();
    assert!(t.fast().set_excluded(&set).unwrap());
    assert_eq!(t.fast().excluded().unwrap(), set);

    let before = (f.stack_forwarded(&na), f.stack_forwarded(&nb), t.stats());
    let target = f.sock(f.pod_b, 7000);
    let (seen, _) = echo(&t.ns("pb"), &target, &t.ns("pa"), &target, 1 << 20);
    assert_eq!(seen.ip().to_string(), f.pod_a);
    let after = (f.stack_forwarded(&na), f.stack_forwarded(&nb), t.stats());
    assert_eq!(
        after.2.forwarded, before.2.forwarded,
        "the program forwarded packets of an excluded pod"
    );
    let slow = (after.0 - before.0, after.1 - before.1);
    assert!(slow.0 > 10 && slow.1 > 10, "stacks forwarded {slow:?}");

    let ip = if f.v6 { "ip6" } else { "ip" };
    nft(
        &na,
        &[
            "add table inet fpx",
            "add chain inet fpx pol { type filter hook forward priority filter; }",
            &format!("add rule inet fpx pol {ip} daddr {} drop", f.pod_b),
        ],
    );
    let before = t.stats();
    assert_eq!(
        udp_probe(&t, f, f.pod_a, 7003),
        None,
        "the forward hook's drop rule did not see the datagrams"
    );
    assert_eq!(t.stats().forwarded, before.forwarded);

    assert!(t.fast().set_excluded(&BTreeSet::new()).unwrap());
    assert!(t.fast().excluded().unwrap().is_empty());
    let before = t.stats();
    let from = udp_probe(&t, f, f.pod_a, 7004).map(|a| a.ip().to_string());
    assert_eq!(
        from.as_deref(),
        Some(f.pod_a),
        "not carried by the fast path"
    );
    assert!(
        t.stats().forwarded > before.forwarded,
        "the fast path did not resume"
    );
}
