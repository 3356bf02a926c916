//! What a reload cannot or must not change: the daemons' hostname (taken
//! from the system when they start without a config, as FRR's container
//! and the system service start them) and the node's IPv6 forwarding.

mod common;

use common::Lab;
use ferry_frr::testing::FrrInstance;
use ferry_frr::Mode;
use ferry_testkit::{ns_exec, unique};

#[test]
fn apply_converges_with_the_system_hostname_and_keeps_ipv6_forwarding() {
    let mut lab = Lab::new("sys", 1, 0);
    let base = std::env::temp_dir().join(unique("frrsys"));
    let (conf, run) = (base.join("etc"), base.join("run"));
    let node = lab.nodes[0].name().to_string();
    // IPv6 forwarding on, in a node with only an IPv4 pod CIDR.
    assert!(ns_exec(
        &node,
        &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]
    ));
    // Started without a hostname: the daemons take the system's.
    lab.frr.push(FrrInstance::start_in_dirs(
        &node,
        &conf,
        &run,
        &["zebra", "staticd", "ospfd"],
        "",
    ));
    let system = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let system = system.trim();
    assert_eq!(
        lab.frr[0].frr.daemon_hostname().unwrap().as_deref(),
        Some(system)
    );

    // The Node's name differs from the system's hostname.
    let mut spec = lab.spec(0, Mode::Ospf);
    spec.hostname = "Node-0.example.com".into();
    assert_ne!(spec.hostname, system);
    spec.ipv6_forwarding = Some(true);
    assert!(
        !ferry_frr::render(&spec).contains("ipv6 forwarding"),
        "keeps it on"
    );
    let first = lab.apply(0, &spec);
    assert!(first.changed);
    // Converged: nothing left to change, the hostname the system's.
    assert!(!lab.apply(0, &spec).changed);
    let running = lab.frr[0].vtysh("show running-config");
    let hostnames: Vec<&str> = running
        .lines()
        .filter(|l| l.starts_with("hostname "))
        .collect();
    assert_eq!(hostnames, [format!("hostname {system}")], "{running}");
    assert!(running.contains("router ospf"), "{running}");
    let vtysh_conf = std::fs::read_to_string(conf.join("vtysh.conf")).unwrap();
    assert!(
        vtysh_conf.contains(&format!("hostname {system}\n")),
        "{vtysh_conf}"
    );
    // IPv6 forwarding untouched.
    let fwd = std::process::Command::new("ip")
        .args(["netns", "exec", &node, "cat"])
        .arg("/proc/sys/net/ipv6/conf/all/forwarding")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&fwd.stdout).trim(), "1");
    drop(lab);
    let _ = std::fs::remove_dir_all(&base);
}
