//! The compiled table judging real packets: a node netns routing to pod
//! netns over veths (as ferry wires pods: a /32, a default route via
//! 169.254.1.1, proxy ARP on the host end), the table loaded with `nft -f`,
//! TCP connections tried through it. IPv4 only here (both families are
//! loaded by the kernel test). Needs root, `nft` and `python3`; says so
//! and passes without them. Every netns is deleted, also on failure.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_netpol::model::Labels;
use ferry_netpol::{
    compile, render, Cluster, LabelSelector, NamedPort, Namespace, NetworkPolicy, Options, Peer,
    Pod, PolicyTypes, Port, PortRef, Protocol, Rule,
};

const SERVER: &str = "
import socket, select, sys
ss = []
for p in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', int(p)))
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

fn usable() -> bool {
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

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The netns of the test, deleted on drop (servers killed first).
struct Lab {
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

impl Lab {
    fn new() -> Lab {
        let prefix = format!("ftnp{}-", std::process::id());
        let mut lab = Lab {
            prefix,
            netns: Vec::new(),
            servers: Vec::new(),
        };
        let node = lab.add_ns("node");
        sh(&["ip", "-n", &node, "link", "set", "lo", "up"]);
        sh(&[
            "ip",
            "-n",
            &node,
            "addr",
            "add",
            "172.16.0.1/32",
            "dev",
            "lo",
        ]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &node,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        // Proxy ARP answers for 169.254.1.1 when the node routes it elsewhere.
        sh(&[
            "ip", "-n", &node, "link", "add", "up0", "type", "veth", "peer", "name", "up1",
        ]);
        sh(&["ip", "-n", &node, "link", "set", "up0", "up"]);
        sh(&["ip", "-n", &node, "link", "set", "up1", "up"]);
        sh(&["ip", "-n", &node, "route", "add", "default", "dev", "up0"]);
        lab
    }

    fn add_ns(&mut self, tag: &str) -> String {
        let name = format!("{}{tag}", self.prefix);
        sh(&["ip", "netns", "add", &name]);
        self.netns.push(name.clone());
        name
    }

    fn node(&self) -> String {
        format!("{}node", self.prefix)
    }

    /// A pod netns with `ip`/32, routed from the node, serving `ports`.
    fn pod(&mut self, tag: &str, ip: &str, ports: &[u16]) {
        let ns = self.add_ns(tag);
        let node = self.node();
        let host = format!("v{}{tag}", std::process::id() % 100_000);
        sh(&[
            "ip", "-n", &node, "link", "add", &host, "type", "veth", "peer", "name", "eth0",
            "netns", &ns,
        ]);
        sh(&["ip", "-n", &node, "link", "set", &host, "up"]);
        for key in [
            format!("net.ipv4.conf.{host}.proxy_arp=1"),
            format!("net.ipv4.neigh.{host}.proxy_delay=0"),
        ] {
            sh(&["ip", "netns", "exec", &node, "sysctl", "-qw", &key]);
        }
        sh(&[
            "ip",
            "-n",
            &node,
            "route",
            "add",
            &format!("{ip}/32"),
            "dev",
            &host,
        ]);
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ip}/32"),
            "dev",
            "eth0",
        ]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            "169.254.1.1",
            "dev",
            "eth0",
        ]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            "169.254.1.1",
            "dev",
            "eth0",
        ]);
        // Up when the pod reaches the node (its gateway neighbour resolved).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Command::new("ip")
            .args(["netns", "exec", &ns, "ping", "-c1", "-W1", "172.16.0.1"])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(Instant::now() < deadline, "{ns} does not reach the node");
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

    fn connects_from(&self, ns: &str, ip: &str, port: u16, timeout: f64) -> bool {
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

    fn connects(&self, from: &str, ip: &str, port: u16) -> bool {
        self.connects_from(&format!("{}{from}", self.prefix), ip, port, 1.0)
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sel(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

fn pod(ns: &str, name: &str, app: &str, ip: &str, node: &str, http: Option<u16>) -> Pod {
    Pod {
        namespace: ns.into(),
        name: name.into(),
        labels: labels(&[("app", app)]),
        ips: vec![ip.parse().unwrap()],
        node: node.into(),
        host_network: false,
        ports: http
            .map(|port| NamedPort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port,
            })
            .into_iter()
            .collect(),
    }
}

fn from(app: &str, ports: Vec<Port>) -> Rule {
    Rule {
        peers: vec![Peer::Pods {
            namespaces: None,
            pods: Some(sel(&[("app", app)])),
        }],
        ports,
    }
}

fn tcp(port: u16) -> Port {
    Port {
        protocol: Protocol::Tcp,
        port: Some(PortRef::Range {
            start: port,
            end: port,
        }),
    }
}

#[test]
fn policies_judge_real_connections() {
    if !usable() {
        return;
    }
    // web (local) serves its named port "http" = 8080 and 9999; db (local)
    // serves 5432; client (elsewhere) and other (prod, elsewhere).
    let cluster = Cluster {
        namespaces: vec![
            Namespace {
                name: "default".into(),
                labels: labels(&[]),
            },
            Namespace {
                name: "prod".into(),
                labels: labels(&[("team", "prod")]),
            },
        ],
        pods: vec![
            pod("default", "web", "web", "10.244.0.10", "n1", Some(8080)),
            pod("default", "db", "db", "10.244.0.12", "n1", None),
            pod("default", "client", "client", "10.244.1.20", "n2", None),
            pod("prod", "other", "client", "10.244.1.30", "n2", None),
        ],
        policies: vec![
            NetworkPolicy {
                namespace: "default".into(),
                name: "web-http".into(),
                pod_selector: sel(&[("app", "web")]),
                policy_types: None,
                ingress: vec![
                    from(
                        "client",
                        vec![Port {
                            protocol: Protocol::Tcp,
                            port: Some(PortRef::Named("http".into())),
                        }],
                    ),
                    from("db", vec![tcp(8080)]),
                ],
                egress: vec![],
            },
            NetworkPolicy {
                namespace: "default".into(),
                name: "db-lockdown".into(),
                pod_selector: sel(&[("app", "db")]),
                policy_types: Some(PolicyTypes {
                    ingress: true,
                    egress: true,
                }),
                ingress: vec![],
                egress: vec![Rule {
                    peers: vec![Peer::Pods {
                        namespaces: None,
                        pods: Some(sel(&[("app", "web")])),
                    }],
                    ports: vec![tcp(8080)],
                }],
            },
        ],
    };
    let text = render(&compile(&cluster, &Options::new("n1")));

    let mut lab = Lab::new();
    lab.pod("web", "10.244.0.10", &[8080, 9999]);
    lab.pod("db", "10.244.0.12", &[5432]);
    lab.pod("client", "10.244.1.20", &[8080]);
    lab.pod("other", "10.244.1.30", &[]);

    // Without the table everything connects.
    assert!(lab.connects("other", "10.244.0.10", 9999));
    assert!(lab.connects("client", "10.244.0.12", 5432));

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();
    sh(&[
        "ip",
        "netns",
        "exec",
        &lab.node(),
        "nft",
        "-f",
        file.path().to_str().unwrap(),
    ]);

    // web: client on the named port only; db on 8080; nobody else.
    assert!(lab.connects("client", "10.244.0.10", 8080));
    assert!(!lab.connects("client", "10.244.0.10", 9999));
    assert!(!lab.connects("other", "10.244.0.10", 8080));
    assert!(lab.connects("db", "10.244.0.10", 8080));
    // db: nothing in; out only to web:8080.
    assert!(!lab.connects("client", "10.244.0.12", 5432));
    assert!(!lab.connects("web", "10.244.0.12", 5432));
    assert!(!lab.connects("db", "10.244.0.10", 9999));
    assert!(!lab.connects("db", "10.244.1.20", 8080));
    // Unselected pods are untouched; the node always reaches its pods.
    assert!(lab.connects("web", "10.244.1.20", 8080));
    assert!(lab.connects_from(&lab.node(), "10.244.0.12", 5432, 1.0));

    // The drops were counted against the policies.
    let counter = |name: &str| {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.node(),
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
        let packets = text
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no packets in {text}"));
        packets
    };
    assert!(counter("in/default/web-http") >= 2);
    assert!(counter("in/default/db-lockdown") >= 2);
    assert!(counter("eg/default/db-lockdown") >= 2);
}
