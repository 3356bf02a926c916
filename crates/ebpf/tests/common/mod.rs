//! The fast path's test bed: two "nodes" (network namespaces joined by a
//! veth pair) with a pod each, wired as ferry wires them (dual-stack), and
//! conntrack active as ferryd's masquerade table makes it. Needs root.
#![allow(dead_code)] // each test file uses part of it

pub mod cases;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_ebpf::{FastPath, Stats};
use ferry_netns::NetNs;
use ferry_testkit::{ip, ns_exec, unique};

/// Two nodes and two pods; everything removed on drop, failed test or not.
pub struct Topo {
    tag: String,
    pub pin: PathBuf,
    fast: Option<FastPath>,
}

pub const NODE_A: &str = "10.99.0.1";
pub const NODE_B: &str = "10.99.0.2";
pub const POD_A: &str = "10.244.0.5";
pub const POD_B: &str = "10.244.1.5";
pub const NODE_A6: &str = "fd99::1";
pub const NODE_B6: &str = "fd99::2";
pub const POD_A6: &str = "fd00:10:244::5";
pub const POD_B6: &str = "fd00:10:244:1::5";

impl Topo {
    pub fn ns(&self, what: &str) -> String {
        format!("{}-{what}", self.tag)
    }

    pub fn new() -> Topo {
        let tag = unique("fp");
        let t = Topo {
            pin: Path::new("/sys/fs/bpf").join(&tag),
            tag,
            fast: None,
        };
        for n in ["na", "nb", "pa", "pb"] {
            ferry_netns::create_named(&t.ns(n)).expect("netns");
            ip(Some(&t.ns(n)), &["link", "set", "lo", "up"]);
            // No duplicate address detection on links made from now on
            // (the plugin turns it off in pods for the same reason).
            assert!(ns_exec(
                &t.ns(n),
                &["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]
            ));
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
        t.wire_v6();
        t
    }

    /// IPv6 as ferry sets it up: nodes on fd99::/64, pods with a /128 and
    /// a default route via fe80::1 (the host veth's address), /128 host
    /// routes, and each node routing the other's pod /64.
    fn wire_v6(&self) {
        let (na, nb) = (self.ns("na"), self.ns("nb"));
        for (ns, addr, other_net, other) in [
            (&na, NODE_A6, "fd00:10:244:1::/64", NODE_B6),
            (&nb, NODE_B6, "fd00:10:244::/64", NODE_A6),
        ] {
            assert!(ns_exec(
                ns,
                &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]
            ));
            ip(
                Some(ns),
                &[
                    "-6",
                    "addr",
                    "add",
                    &format!("{addr}/64"),
                    "dev",
                    "eth0",
                    "nodad",
                ],
            );
            ip(Some(ns), &["-6", "route", "add", other_net, "via", other]);
            ip(
                Some(ns),
                &["-6", "addr", "add", "fe80::1/64", "dev", "hveth", "nodad"],
            );
        }
        for (node, pod, addr) in [(&na, self.ns("pa"), POD_A6), (&nb, self.ns("pb"), POD_B6)] {
            ip(
                Some(&pod),
                &[
                    "-6",
                    "addr",
                    "add",
                    &format!("{addr}/128"),
                    "dev",
                    "eth0",
                    "nodad",
                ],
            );
            ip(
                Some(&pod),
                &[
                    "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0",
                ],
            );
            ip(
                Some(node),
                &["-6", "route", "add", &format!("{addr}/128"), "dev", "hveth"],
            );
        }
    }

    /// Loads the program and attaches it where ferry does: each node's
    /// uplink and each pod's host-side veth.
    pub fn attach(&mut self) {
        ferry_ebpf::ensure_bpffs(Path::new("/sys/fs/bpf")).expect("bpffs");
        let fp = FastPath::load(&self.pin).expect("load the fast path");
        fp.set_cidrs(&[
            "10.244.0.0/16".parse().unwrap(),
            "fd00:10:244::/56".parse().unwrap(),
        ])
        .unwrap();
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

    /// The loaded fast path (after [`Topo::attach`]).
    pub fn fast(&self) -> &FastPath {
        self.fast.as_ref().expect("attach first")
    }

    pub fn stats(&self) -> Stats {
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
pub fn nft(ns: &str, commands: &[&str]) {
    for c in commands {
        let args: Vec<&str> = c.split_whitespace().collect();
        let mut all = vec!["nft"];
        all.extend(args);
        assert!(ns_exec(ns, &all), "nft {c} in {ns}");
    }
}

pub fn open(name: &str) -> NetNs {
    NetNs::open(&Path::new("/run/netns").join(name)).expect("open netns")
}

/// `IpForwDatagrams` of a namespace: packets its IP stack forwarded.
pub fn forwarded(ns: &str) -> u64 {
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

/// `Ip6OutForwDatagrams` of a namespace: IPv6 packets its stack forwarded.
pub fn forwarded6(ns: &str) -> u64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/proc/net/snmp6"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("Ip6OutForwDatagrams"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Listens on `listen` in `server_ns`; a client in `client_ns` sends
/// `bytes` to `connect` and reads them echoed back. Returns the address the
/// server saw the client come from and the one the client saw it answer from.
pub fn echo(
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
