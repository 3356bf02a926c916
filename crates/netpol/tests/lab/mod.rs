//! A node netns routing to pod netns over veths (as ferry wires pods: a
//! /32 (and /128), a default route via 169.254.1.1 (and fe80::1), proxy
//! ARP on the host end), TCP servers in the pods and a client to try
//! connections. Shared by the dataplane tests of ferry-netpol (table
//! loaded with `nft -f`) and ferry-netpol-nft (loaded over netlink).
//! Every netns is deleted on drop, also when a test fails.
#![allow(dead_code)] // each test binary uses a different part

pub mod world;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Listens on every given port, both families.
const SERVER: &str = "
import socket, select, sys
ss = []
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(('::', int(p)))
    s.listen(64)
    ss.append(s)
while True:
    r, _, _ = select.select(ss, [], [])
    for s in r:
        c, _ = s.accept()
        c.close()
";

const CLIENT: &str = "
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
";

/// The node's own addresses (on its loopback).
pub const NODE4: &str = "172.16.0.1";
pub const NODE6: &str = "fd00:ffff::1";

/// Root, `nft` and `python3` present; says so when not.
pub fn usable() -> bool {
    let ok = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let all = root && ok("nft", "--version") && ok("python3", "--version");
    if !all {
        eprintln!("skipped: needs root, nft and python3");
    }
    all
}

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The netns of the test, deleted on drop (servers killed first).
pub struct Lab {
    prefix: String,
    netns: Vec<String>,
    servers: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip_in(ns: &str, args: &[&str]) {
    let mut all = vec!["ip", "-n", ns];
    all.extend_from_slice(args);
    sh(&all);
}

fn sysctl(ns: &str, key: &str) {
    sh(&["ip", "netns", "exec", ns, "sysctl", "-qw", key]);
}

impl Lab {
    /// Netns are named `PREFIX<tag>`; the node is `PREFIXnode`.
    pub fn new(prefix: &str) -> Lab {
        let mut lab = Lab {
            prefix: prefix.to_string(),
            netns: Vec::new(),
            servers: Vec::new(),
        };
        let node = lab.add_ns("node");
        ip_in(&node, &["link", "set", "lo", "up"]);
        ip_in(&node, &["addr", "add", &format!("{NODE4}/32"), "dev", "lo"]);
        ip_in(
            &node,
            &["addr", "add", &format!("{NODE6}/128"), "dev", "lo"],
        );
        sysctl(&node, "net.ipv4.ip_forward=1");
        sysctl(&node, "net.ipv6.conf.all.forwarding=1");
        // Proxy ARP answers for 169.254.1.1 when the node routes it elsewhere.
        ip_in(
            &node,
            &["link", "add", "up0", "type", "veth", "peer", "name", "up1"],
        );
        ip_in(&node, &["link", "set", "up0", "up"]);
        ip_in(&node, &["link", "set", "up1", "up"]);
        ip_in(&node, &["route", "add", "default", "dev", "up0"]);
        lab
    }

    fn add_ns(&mut self, tag: &str) -> String {
        let name = format!("{}{tag}", self.prefix);
        sh(&["ip", "netns", "add", &name]);
        self.netns.push(name.clone());
        name
    }

    pub fn node(&self) -> String {
        format!("{}node", self.prefix)
    }

    /// A pod netns with `ip`/32, routed from the node, serving `ports`.
    pub fn pod(&mut self, tag: &str, ip: &str, ports: &[u16]) {
        self.pod_dual(tag, ip, None, ports)
    }

    /// A pod netns with `ip4`/32 and `ip6`/128 (gateway fe80::1 on the
    /// host end), routed from the node, serving `ports` on both.
    pub fn pod_dual(&mut self, tag: &str, ip4: &str, ip6: Option<&str>, ports: &[u16]) {
        let ns = self.add_ns(tag);
        let node = self.node();
        let host = format!("v{}{tag}", std::process::id() % 100_000);
        ip_in(
            &node,
            &[
                "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        );
        sysctl(&ns, "net.ipv6.conf.all.accept_dad=0");
        sysctl(&ns, "net.ipv6.conf.default.accept_dad=0");
        ip_in(&node, &["link", "set", &host, "up"]);
        sysctl(&node, &format!("net.ipv4.conf.{host}.proxy_arp=1"));
        sysctl(&node, &format!("net.ipv4.neigh.{host}.proxy_delay=0"));
        ip_in(&node, &["route", "add", &format!("{ip4}/32"), "dev", &host]);
        ip_in(&ns, &["link", "set", "lo", "up"]);
        ip_in(&ns, &["link", "set", "eth0", "up"]);
        ip_in(&ns, &["addr", "add", &format!("{ip4}/32"), "dev", "eth0"]);
        ip_in(&ns, &["route", "add", "169.254.1.1", "dev", "eth0"]);
        ip_in(
            &ns,
            &[
                "route",
                "add",
                "default",
                "via",
                "169.254.1.1",
                "dev",
                "eth0",
            ],
        );
        if let Some(ip6) = ip6 {
            ip_in(&node, &["addr", "add", "fe80::1/64", "dev", &host, "nodad"]);
            ip_in(
                &node,
                &["route", "add", &format!("{ip6}/128"), "dev", &host],
            );
            ip_in(
                &ns,
                &["addr", "add", &format!("{ip6}/128"), "dev", "eth0", "nodad"],
            );
            ip_in(
                &ns,
                &[
                    "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0",
                ],
            );
        }
        // Up when the pod reaches the node (its gateway neighbour resolved).
        let mut targets = vec![NODE4];
        if ip6.is_some() {
            targets.push(NODE6);
        }
        for target in targets {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !Command::new("ip")
                .args(["netns", "exec", &ns, "ping", "-c1", "-W1", target])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success()
            {
                assert!(Instant::now() < deadline, "{ns} does not reach {target}");
            }
        }
        if ports.is_empty() {
            return;
        }
        let mut args = vec![
            "netns".to_string(),
            "exec".into(),
            ns.clone(),
            "python3".into(),
            "-c".into(),
            SERVER.into(),
        ];
        args.extend(ports.iter().map(|p| p.to_string()));
        let child = Command::new("ip").args(&args).spawn().unwrap();
        self.servers.push(child);
        // Ready when the pod reaches itself on loopback.
        for port in ports {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.connects_from(&ns, "127.0.0.1", *port, 0.2) {
                assert!(
                    Instant::now() < deadline,
                    "server in {ns} not listening on {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn connects_from(&self, ns: &str, ip: &str, port: u16, timeout: f64) -> bool {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "python3",
                "-c",
                CLIENT,
                ip,
                &port.to_string(),
                &timeout.to_string(),
            ])
            .output()
            .unwrap();
        if !out.status.success() && std::env::var_os("FTNP_DEBUG").is_some() {
            eprintln!(
                "{ns} -> {ip}:{port}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.status.success()
    }

    /// From pod `from` to `ip:port`, one second to connect.
    pub fn connects(&self, from: &str, ip: &str, port: u16) -> bool {
        self.connects_from(&format!("{}{from}", self.prefix), ip, port, 1.0)
    }

    /// Packets counted by named counter `name` of the policy table
    /// (read with `nft`).
    pub fn counter(&self, name: &str) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.node(),
                "nft",
                "list",
                "counter",
                "inet",
                "ferry-policy",
                name,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no packets in {text}"))
    }
}
