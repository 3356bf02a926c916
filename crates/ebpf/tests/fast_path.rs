//! The fast path on real kernels objects: two "nodes" (network namespaces
//! joined by a veth pair) with a pod each, wired as ferry wires them, and
//! conntrack active as ferryd's masquerade table makes it. Needs root.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_ebpf::{FastPath, Stats};
use ferry_netns::NetNs;
use ferry_testkit::{ip, ns_exec, unique};

/// Two nodes and two pods; everything removed on drop, failed test or not.
struct Topo {
    tag: String,
    pin: PathBuf,
    fast: Option<FastPath>,
}

const NODE_A: &str = "10.99.0.1";
const NODE_B: &str = "10.99.0.2";
const POD_A: &str = "10.244.0.5";
const POD_B: &str = "10.244.1.5";

impl Topo {
    fn ns(&self, what: &str) -> String {
        format!("{}-{what}", self.tag)
    }

    fn new() -> Topo {
        let tag = unique("fp");
        let t = Topo {
            pin: Path::new("/sys/fs/bpf").join(&tag),
            tag,
            fast: None,
        };
        for n in ["na", "nb", "pa", "pb"] {
            ferry_netns::create_named(&t.ns(n)).expect("netns");
            ip(Some(&t.ns(n)), &["link", "set", "lo", "up"]);
        }
        let (na, nb) = (t.ns("na"), t.ns("nb"));
        ip(
            Some(&na),
            &[
                "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &nb,
            ],
        );
        for (ns, addr, other_net, other) in [
            (&na, NODE_A, "10.244.1.0/24", NODE_B),
            (&nb, NODE_B, "10.244.0.0/24", NODE_A),
        ] {
            ip(
                Some(ns),
                &["addr", "add", &format!("{addr}/24"), "dev", "eth0"],
            );
            ip(Some(ns), &["link", "set", "eth0", "up"]);
            ip(Some(ns), &["route", "add", other_net, "via", other]);
            // Proxy ARP answers for 169.254.1.1 only when it is routable.
            ip(Some(ns), &["route", "add", "default", "via", other]);
            assert!(ns_exec(ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]));
            // ferryd's masquerade table: conntrack is on in the node.
            nft(
                ns,
                &[
                    "add table inet ferry",
                    "add chain inet ferry post { type nat hook postrouting priority srcnat; }",
                    "add rule inet ferry post oifname eth0 ip saddr 10.244.0.0/16 \
                     ip daddr != 10.244.0.0/16 masquerade",
                ],
            );
        }
        for (node, pod, addr) in [(&na, t.ns("pa"), POD_A), (&nb, t.ns("pb"), POD_B)] {
            // As the plugin does: /32 in the pod, 169.254.1.1 by proxy ARP.
            ferry_testkit::wire_pod(node, &pod, "hveth", addr.parse().unwrap());
            ip(
                Some(node),
                &["route", "add", &format!("{addr}/32"), "dev", "hveth"],
            );
        }
        t
    }

    /// Loads the program and attaches it where ferry does: each node's
    /// uplink and each pod's host-side veth.
    fn attach(&mut self) {
        ferry_ebpf::ensure_bpffs(Path::new("/sys/fs/bpf")).expect("bpffs");
        let fp = FastPath::load(&self.pin).expect("load the fast path");
        fp.set_cidrs(&["10.244.0.0/16".parse().unwrap()]).unwrap();
        let id = fp.prog_id().unwrap();
        for node in ["na", "nb"] {
            let ns = open(&self.ns(node));
            let prog = fp.prog();
            ns.run(|| {
                let mut h = ferry_netlink::Handle::new().unwrap();
                for dev in ["eth0", "hveth"] {
                    let link = h.link_by_name(dev).unwrap().unwrap();
                    h.attach_bpf_ingress(link.index, prog, ferry_ebpf::PROG_NAME)
                        .unwrap();
                    assert_eq!(h.bpf_ingress_prog_id(link.index).unwrap(), Some(id));
                }
                // As the plugin does: the pod's host veth goes into the map
                // (both nodes share one map here; their ifindexes agree).
                let hveth = h.link_by_name("hveth").unwrap().unwrap().index;
                fp.pod_ifaces().insert(hveth).unwrap();
            })
            .unwrap();
        }
        self.fast = Some(fp);
    }

    fn stats(&self) -> Stats {
        self.fast
            .as_ref()
            .map(|f| f.stats().unwrap())
            .unwrap_or_default()
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        for n in ["pa", "pb", "na", "nb"] {
            let _ = ferry_netns::delete_named(&self.ns(n));
        }
        self.fast = None;
        let _ = ferry_ebpf::unpin(&self.pin);
    }
}

/// Runs nft commands (test side) in a namespace.
fn nft(ns: &str, commands: &[&str]) {
    for c in commands {
        let args: Vec<&str> = c.split_whitespace().collect();
        let mut all = vec!["nft"];
        all.extend(args);
        assert!(ns_exec(ns, &all), "nft {c} in {ns}");
    }
}

fn open(name: &str) -> NetNs {
    NetNs::open(&Path::new("/run/netns").join(name)).expect("open netns")
}

/// `IpForwDatagrams` of a namespace: packets its IP stack forwarded.
fn forwarded(ns: &str) -> u64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/proc/net/snmp"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (lines.next().unwrap(), lines.next().unwrap());
    let i = names
        .split_whitespace()
        .position(|n| n == "ForwDatagrams")
        .unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// Listens on `listen` in `server_ns`; a client in `client_ns` sends
/// `bytes` to `connect` and reads them echoed back. Returns the address the
/// server saw the client come from and the one the client saw it answer from.
fn echo(
    server_ns: &str,
    listen: &str,
    client_ns: &str,
    connect: &str,
    bytes: usize,
) -> (SocketAddr, SocketAddr) {
    let listen: SocketAddr = listen.parse().unwrap();
    let connect: SocketAddr = connect.parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let server_ns = open(server_ns);
    let server = std::thread::spawn(move || {
        server_ns
            .run(move || {
                let l = TcpListener::bind(listen).unwrap();
                tx.send(()).unwrap();
                let (mut s, peer) = l.accept().unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                let mut left = bytes;
                while left > 0 {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "client closed early");
                    s.write_all(&buf[..n]).unwrap();
                    left -= n;
                }
                peer
            })
            .unwrap()
    });
    rx.recv().unwrap();
    let from = open(client_ns)
        .run(move || {
            let mut s = TcpStream::connect_timeout(&connect, Duration::from_secs(5)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let data: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
            let reader = s.try_clone().unwrap();
            let check = std::thread::spawn(move || {
                let mut got = Vec::with_capacity(bytes);
                reader.take(bytes as u64).read_to_end(&mut got).unwrap();
                got
            });
            s.write_all(&data).unwrap();
            assert!(check.join().unwrap() == data, "echo corrupted or short");
            s.peer_addr().unwrap()
        })
        .unwrap();
    (server.join().unwrap(), from)
}

#[test]
fn pod_to_pod_tcp_skips_both_stacks() {
    let mut t = Topo::new();
    assert!(
        ns_exec(&t.ns("pa"), &["ping", "-c1", "-W2", POD_B]),
        "no path before attach"
    );
    t.attach();
    let before = (forwarded(&t.ns("na")), forwarded(&t.ns("nb")), t.stats());
    let (seen, _) = echo(
        &t.ns("pb"),
        &format!("{POD_B}:7000"),
        &t.ns("pa"),
        &format!("{POD_B}:7000"),
        8 << 20,
    );
    assert_eq!(seen.ip().to_string(), POD_A, "pod↔pod is not NATed");
    let after = (forwarded(&t.ns("na")), forwarded(&t.ns("nb")), t.stats());
    // Each direction crosses two nodes: all of it through the program, and
    // the nodes' IP stacks forward (almost) nothing. (A packet may take the
    // stack while a neighbour entry is refreshed.)
    let fast = after.2.forwarded - before.2.forwarded;
    assert!(
        fast > 200,
        "only {fast} packets took the fast path: {:?}",
        after.2
    );
    let slow = (after.0 - before.0) + (after.1 - before.1);
    assert!(slow < fast / 20, "stack forwarded {slow}, program {fast}");
    // ICMP is never taken: ping still works, through the stack.
    assert!(ns_exec(&t.ns("pa"), &["ping", "-c1", "-W2", POD_B]));
}

#[test]
fn service_dnat_replies_go_through_conntrack() {
    let mut t = Topo::new();
    // A kube-proxy-like ClusterIP on node A: 10.96.0.10:80 → pod B:8080.
    nft(
        &t.ns("na"),
        &[
            "add table ip kp",
            "add chain ip kp pre { type nat hook prerouting priority dstnat; }",
            "add rule ip kp pre ip daddr 10.96.0.10 tcp dport 80 dnat to 10.244.1.5:8080",
        ],
    );
    t.attach();
    let before = t.stats();
    let (seen, answered) = echo(
        &t.ns("pb"),
        &format!("{POD_B}:8080"),
        &t.ns("pa"),
        "10.96.0.10:80",
        1 << 20,
    );
    // The client talked to the Service address throughout: replies were
    // un-DNATed on node A, so they went through its stack.
    assert_eq!(answered.to_string(), "10.96.0.10:80");
    assert_eq!(seen.ip().to_string(), POD_A);
    let after = t.stats();
    assert!(
        after.tracked > before.tracked,
        "replies not seen as tracked: {after:?}"
    );
    // Node B never tracked the flow: its side still went the fast way.
    assert!(after.forwarded > before.forwarded, "{after:?}");
}

#[test]
fn traffic_leaving_the_cluster_is_still_masqueraded() {
    let mut t = Topo::new();
    t.attach();
    let before = t.stats();
    // Pod A → node B's own address: not a pod, so the stack (and its
    // masquerade rule) handles it.
    let (seen, _) = echo(
        &t.ns("nb"),
        &format!("{NODE_B}:7001"),
        &t.ns("pa"),
        &format!("{NODE_B}:7001"),
        256 << 10,
    );
    assert_eq!(seen.ip().to_string(), NODE_A, "masqueraded to node A");
    let after = t.stats();
    assert_eq!(
        after.forwarded, before.forwarded,
        "non-pod traffic took the fast path"
    );
}

#[test]
fn attach_replaces_and_detach_removes_only_ferrys_filter() {
    let mut t = Topo::new();
    t.attach();
    let ns = open(&t.ns("na"));
    let fp = FastPath::load(&t.pin).expect("reload");
    let new_id = fp.prog_id().unwrap();
    let prog = fp.prog();
    ns.run(|| {
        let mut h = ferry_netlink::Handle::new().unwrap();
        let eth0 = h.link_by_name("eth0").unwrap().unwrap().index;
        h.attach_bpf_ingress(eth0, prog, ferry_ebpf::PROG_NAME)
            .unwrap();
        assert_eq!(
            h.bpf_ingress_prog_id(eth0).unwrap(),
            Some(new_id),
            "replaced in place"
        );
        assert!(h.detach_bpf_ingress(eth0).unwrap());
        assert!(
            !h.detach_bpf_ingress(eth0).unwrap(),
            "second detach finds nothing"
        );
        assert_eq!(h.bpf_ingress_prog_id(eth0).unwrap(), None);
        assert!(!h.detach_bpf_ingress(999_999).unwrap(), "no such link");
    })
    .unwrap();
    // The maps survived the reload: same CIDRs.
    assert_eq!(fp.cidrs().unwrap(), vec!["10.244.0.0/16".parse().unwrap()]);
    // The pinned program is the new one.
    let pinned = ferry_ebpf::open_prog(&t.pin).unwrap().unwrap();
    assert_eq!(
        ferry_ebpf::prog_id(std::os::fd::AsFd::as_fd(&pinned)).unwrap(),
        new_id
    );
}

#[test]
fn a_pod_cannot_borrow_another_pods_address() {
    let mut t = Topo::new();
    // Strict reverse-path filtering on node A: the stack drops packets
    // whose source does not route back out of the veth they came in on.
    for key in [
        "net.ipv4.conf.all.rp_filter=1",
        "net.ipv4.conf.hveth.rp_filter=1",
    ] {
        assert!(ns_exec(&t.ns("na"), &["sysctl", "-qw", key]));
    }
    // Pod A also holds 10.244.0.9, which node A routes nowhere near it;
    // pod A's ARP entry for its gateway is made with its real address (a
    // request from 10.244.0.9 would get no proxy answer under strict mode).
    assert!(ns_exec(&t.ns("pa"), &["ping", "-c1", "-W2", POD_B]));
    ip(
        Some(&t.ns("pa")),
        &["addr", "add", "10.244.0.9/32", "dev", "eth0"],
    );
    t.attach();
    let before = t.stats();
    let (tx, rx) = std::sync::mpsc::channel();
    let server_ns = open(&t.ns("pb"));
    let server = std::thread::spawn(move || {
        server_ns
            .run(move || {
                let s = std::net::UdpSocket::bind((POD_B, 7002)).unwrap();
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
            let s = std::net::UdpSocket::bind(("10.244.0.9", 0)).unwrap();
            for _ in 0..5 {
                s.send_to(b"spoofed", (POD_B, 7002)).unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .unwrap();
    assert_eq!(
        server.join().unwrap(),
        None,
        "the spoofed datagrams got through"
    );
    assert_eq!(
        t.stats().forwarded,
        before.forwarded,
        "forwarded by the program"
    );
}
