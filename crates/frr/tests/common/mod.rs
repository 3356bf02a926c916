//! A lab like the seed's: nodes 172.16.97.75, .76, ... (and fd97::75, ...)
//! on one bridge in a "switch" netns, node N owning 10.244.N.0/24 (and
//! fd00:10:244:N::/64), pods as netns behind a veth with a /32 and a host
//! route of protocol 200 on the node, as the ferry plugin makes them.
//! Everything is removed on drop, FRR first.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ferry_frr::testing::FrrInstance;
use ferry_frr::{render, FrrSpec, Mode};
use ferry_testkit::{ip, ns_exec, unique};

/// A named netns, deleted on drop.
pub struct Ns(pub String);

impl Ns {
    pub fn new(name: String) -> Ns {
        ip(None, &["netns", "add", &name]);
        let ns = Ns(name);
        ip(Some(&ns.0), &["link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

pub struct LabNode {
    pub index: usize,
    pub ns: Ns,
    pub ip: Ipv4Addr,
    pub pods: Vec<(Ns, Ipv4Addr)>,
}

impl LabNode {
    pub fn name(&self) -> &str {
        &self.ns.0
    }

    pub fn ip6(&self) -> String {
        format!("fd97::{}", 75 + self.index)
    }

    /// Pod `k`'s IPv6 address.
    pub fn pod_ip6(&self, k: usize) -> String {
        format!("fd00:10:244:{}::{}", self.index, 10 + k)
    }

    /// The link-local address of the node's eth0.
    pub fn link_local(&self) -> String {
        let text = ip(
            Some(self.name()),
            &["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"],
        );
        let w: Vec<&str> = text.split_whitespace().collect();
        let i = w
            .iter()
            .position(|x| *x == "inet6")
            .expect("a link-local address");
        w[i + 1].split('/').next().unwrap().to_string()
    }

    pub fn pod_cidr(&self) -> String {
        format!("10.244.{}.0/24", self.index)
    }

    pub fn pod_cidr6(&self) -> String {
        // Canonical, as `ip` prints it (fd00:10:244::/64 for node 0).
        let net: ipnet::Ipv6Net = format!("fd00:10:244:{}::/64", self.index).parse().unwrap();
        net.to_string()
    }

    /// A pod netns with 10.244.N.(10+k)/32 behind veth `vpK`, a default
    /// route via 169.254.1.1 (proxy ARP), and the node's host route with
    /// protocol 200.
    pub fn add_pod(&mut self) -> Ipv4Addr {
        self.add_pod_timed().0
    }

    /// [`LabNode::add_pod`], also telling when its host route was added.
    pub fn add_pod_timed(&mut self) -> (Ipv4Addr, Instant) {
        let k = self.pods.len();
        let pod = Ns::new(format!("{}-p{k}", self.name()));
        let addr = Ipv4Addr::new(10, 244, self.index as u8, 10 + k as u8);
        let veth = format!("vp{k}");
        let node = self.name().to_string();
        ferry_testkit::wire_pod(&node, &pod.0, &veth, addr);
        let at = Instant::now();
        ip(
            None,
            &[
                "-n",
                &node,
                "route",
                "add",
                &format!("{addr}/32"),
                "dev",
                &veth,
                "proto",
                "200",
                "scope",
                "link",
            ],
        );
        // IPv6 too: fd00:10:244:N::(10+k)/128, default via fe80::1 (the
        // node's end of the veth), host route with protocol 200.
        let addr6 = self.pod_ip6(k);
        ip(
            Some(&node),
            &["-6", "addr", "add", "fe80::1/64", "dev", &veth, "nodad"],
        );
        ip(
            Some(&pod.0),
            &[
                "-6",
                "addr",
                "add",
                &format!("{addr6}/128"),
                "dev",
                "eth0",
                "nodad",
            ],
        );
        ip(
            Some(&pod.0),
            &[
                "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0",
            ],
        );
        ip(
            Some(&node),
            &[
                "-6",
                "route",
                "add",
                &format!("{addr6}/128"),
                "dev",
                &veth,
                "proto",
                "200",
            ],
        );
        self.pods.push((pod, addr));
        (addr, at)
    }

    /// Kernel routes of one protocol (`ospf`, `bgp`): prefix -> gateway,
    /// without the route to the node's own address that ospfd installs on
    /// a point-to-multipoint interface (its own /32 stub, "directly
    /// attached"; the kernel's local table answers for that address first).
    pub fn routes(&self, proto: &str, v6: bool) -> BTreeMap<String, String> {
        let fam = if v6 { "-6" } else { "-4" };
        // `ip -n` (not `ip netns exec`): cheap enough to poll every few ms.
        let out = std::process::Command::new("ip")
            .args(["-n", self.name(), fam, "route", "show", "proto", proto])
            .output()
            .expect("run ip");
        assert!(out.status.success(), "ip route in {}", self.name());
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let prefix = w.first()?.to_string();
                let via = w
                    .iter()
                    .position(|x| *x == "via")
                    .and_then(|i| w.get(i + 1))
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                // ip prints host routes without "/32".
                let prefix = if prefix.contains('/') {
                    prefix
                } else if v6 {
                    format!("{prefix}/128")
                } else {
                    format!("{prefix}/32")
                };
                (prefix != format!("{}/32", self.ip)).then_some((prefix, via))
            })
            .collect()
    }
}

pub struct Lab {
    /// FRR per node (index = node index); dropped first.
    pub frr: Vec<FrrInstance>,
    pub nodes: Vec<LabNode>,
    pub switch: Ns,
}

impl Lab {
    /// `n` nodes on a bridge, `pods` pods each, forwarding on.
    pub fn new(tag: &str, n: usize, pods: usize) -> Lab {
        let switch = Ns::new(unique(&format!("{tag}sw")));
        ip(
            Some(&switch.0),
            &["link", "add", "br0", "type", "bridge", "stp_state", "0"],
        );
        ip(Some(&switch.0), &["link", "set", "br0", "up"]);
        let mut lab = Lab {
            frr: Vec::new(),
            nodes: Vec::new(),
            switch,
        };
        for i in 0..n {
            let ns = Ns::new(unique(&format!("{tag}n{i}")));
            let port = format!("p{i}");
            ip(
                Some(&lab.switch.0),
                &[
                    "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns.0,
                ],
            );
            ip(
                Some(&lab.switch.0),
                &["link", "set", &port, "master", "br0", "up"],
            );
            let node = LabNode {
                index: i,
                ip: Ipv4Addr::new(172, 16, 97, 75 + i as u8),
                ns,
                pods: Vec::new(),
            };
            let name = node.name().to_string();
            ip(
                Some(&name),
                &["addr", "add", &format!("{}/24", node.ip), "dev", "eth0"],
            );
            ip(
                Some(&name),
                &[
                    "-6",
                    "addr",
                    "add",
                    &format!("{}/64", node.ip6()),
                    "dev",
                    "eth0",
                    "nodad",
                ],
            );
            ip(Some(&name), &["link", "set", "eth0", "up"]);
            // The lab's router; nobody answers, but proxy ARP needs a route
            // to 169.254.1.1 that is not via the pod's veth.
            ip(
                Some(&name),
                &["route", "add", "default", "via", "172.16.97.1"],
            );
            assert!(ns_exec(&name, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]));
            lab.nodes.push(node);
        }
        for node in &mut lab.nodes {
            for _ in 0..pods {
                node.add_pod();
            }
        }
        lab
    }

    /// Start FRR (`daemons`) on every node with only a hostname configured.
    pub fn start_frr(&mut self, daemons: &[&str]) {
        for node in &self.nodes {
            let conf = format!("hostname n{}\n", node.index);
            self.frr
                .push(FrrInstance::start(node.name(), node.name(), daemons, &conf));
        }
    }

    /// Node `i`'s spec: hostname nI, router-id = its IP, eth0, its CIDR.
    pub fn spec(&self, i: usize, mode: Mode) -> FrrSpec {
        let n = &self.nodes[i];
        FrrSpec::new(
            mode,
            &format!("n{i}"),
            n.ip,
            "eth0",
            n.ip.into(),
            vec![n.pod_cidr().parse().unwrap()],
        )
    }

    /// [`Lab::spec`] with node `i`'s IPv6 pod CIDR too.
    pub fn spec_dual_stack(&self, i: usize, mode: Mode) -> FrrSpec {
        let mut spec = self.spec(i, mode);
        spec.pod_cidrs
            .push(self.nodes[i].pod_cidr6().parse().unwrap());
        spec
    }

    /// Render and apply `spec` on node `i`; panics on error.
    pub fn apply(&self, i: usize, spec: &FrrSpec) -> ferry_frr::Applied {
        spec.validate().unwrap();
        self.frr[i]
            .frr
            .apply(&render(spec))
            .unwrap_or_else(|e| panic!("apply on n{i}: {e}\n{}", self.frr[i].logs()))
    }
}

impl Lab {
    /// Apply `specs[i]` on node `i`, all nodes at once (one thread each);
    /// every apply must change something. Returns when all are done.
    pub fn apply_all(&self, specs: &[FrrSpec]) {
        std::thread::scope(|s| {
            for (i, spec) in specs.iter().enumerate() {
                s.spawn(move || {
                    let t = Instant::now();
                    let applied = self.apply(i, spec);
                    assert!(applied.changed, "apply on n{i} changed nothing");
                    println!("n{i}: first apply took {:?}", t.elapsed());
                });
            }
        });
    }
}

/// Poll `cond` every 5 ms until it holds; how long that took, or None
/// after `timeout`.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
