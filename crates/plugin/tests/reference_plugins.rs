//! ferry among Debian's reference plugins: first in a chain before
//! `portmap` and `bandwidth`, delegating to `host-local`, and lending
//! `ferry-ipam` to `bridge`. Also: a node switches from host-local to
//! ferry-ipam without losing a reservation.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use ferry_netns::NetNs;
use serde_json::{json, Value};
use support::{add_veth, ip, ping, result_ips, Call, Node, FERRY_IPAM, REFERENCE_DIR};

fn reference(name: &str) -> String {
    format!("{REFERENCE_DIR}/{name}")
}

/// The conflist's per-plugin config, as libcni builds it for plugin `i`.
fn chained(base: &Value, plugin: Value, prev: Option<&Value>, runtime: Value) -> String {
    let mut conf = plugin;
    conf["cniVersion"] = base["cniVersion"].clone();
    conf["name"] = base["name"].clone();
    conf["runtimeConfig"] = runtime;
    if let Some(prev) = prev {
        conf["prevResult"] = prev.clone();
    }
    conf.to_string()
}

#[test]
fn chained_before_portmap() {
    let node = Node::new("pm");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let ferry: Value = serde_json::from_str(&node.conf_v4("1.0.0")).unwrap();
    let ports =
        json!({"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]});
    let portmap = json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true});

    let add = node
        .ferry(&Call::new(
            "ADD",
            "pm1",
            &netns,
            &chained(&ferry, ferry.clone(), None, ports.clone()),
        ))
        .expect_ok();
    let pm_conf = chained(&ferry, portmap.clone(), Some(&add.json), ports.clone());
    let pm = node
        .run(
            &reference("portmap"),
            &Call::new("ADD", "pm1", &netns, &pm_conf),
        )
        .expect_ok();
    // portmap passes ferry's result through untouched.
    assert_eq!(result_ips(&pm.json), result_ips(&add.json), "{}", pm.raw);

    // A listener in the pod answers a connection to the hostPort on the node.
    let pod_ns = NetNs::open(std::path::Path::new(&netns)).unwrap();
    let node_ns = NetNs::open(&node.path).unwrap();
    let listener = pod_ns
        .run(|| TcpListener::bind("0.0.0.0:80").unwrap())
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"hello from the pod").unwrap();
    });
    let got = node_ns
        .run(|| {
            let mut s = TcpStream::connect_timeout(
                &"172.16.97.75:18080".parse().unwrap(),
                Duration::from_secs(5),
            )
            .expect("connect to the hostPort");
            let mut buf = String::new();
            s.read_to_string(&mut buf).unwrap();
            buf
        })
        .unwrap();
    server.join().unwrap();
    assert_eq!(got, "hello from the pod");

    // DEL in reverse order, with the chain's final result.
    let final_prev = pm.json.clone();
    let pm_del = chained(&ferry, portmap, Some(&final_prev), ports.clone());
    node.run(
        &reference("portmap"),
        &Call::new("DEL", "pm1", &netns, &pm_del),
    )
    .expect_ok();
    node.ferry(&Call::new(
        "DEL",
        "pm1",
        &netns,
        &chained(&ferry, ferry.clone(), Some(&final_prev), ports),
    ))
    .expect_ok();
    assert!(node.reserved_ips().is_empty());
}

#[test]
fn chained_before_bandwidth() {
    let node = Node::new("bw");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let ferry: Value = serde_json::from_str(&node.conf_v4("1.0.0")).unwrap();
    let shaping = json!({"bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 80_000, "egressRate": 8_000_000, "egressBurst": 80_000}});
    let bandwidth = json!({"type": "bandwidth", "capabilities": {"bandwidth": true}});
    let links = node.links();

    let add = node
        .ferry(&Call::new("ADD", "bw1", &netns, &ferry.to_string()))
        .expect_ok();
    let host_veth = add.json["interfaces"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let bw_conf = chained(&ferry, bandwidth.clone(), Some(&add.json), shaping.clone());
    node.run(
        &reference("bandwidth"),
        &Call::new("ADD", "bw1", &netns, &bw_conf),
    )
    .expect_ok();
    let qdisc = ip(
        None,
        &[
            "netns", "exec", &node.name, "tc", "qdisc", "show", "dev", &host_veth,
        ],
    );
    assert!(
        qdisc.contains("tbf"),
        "bandwidth found no host veth to shape: {qdisc}"
    );
    assert!(ping(&node.name, &result_ips(&add.json)[0]));
    node.run(
        &reference("bandwidth"),
        &Call::new("CHECK", "bw1", &netns, &bw_conf),
    )
    .expect_ok();

    node.run(
        &reference("bandwidth"),
        &Call::new("DEL", "bw1", &netns, &bw_conf),
    )
    .expect_ok();
    node.ferry(&Call::new(
        "DEL",
        "bw1",
        &netns,
        &chained(&ferry, ferry.clone(), Some(&add.json), shaping),
    ))
    .expect_ok();
    assert_eq!(node.links(), links, "ifb or veth left behind");
}

#[test]
fn delegates_to_host_local() {
    let node = Node::new("hl");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let conf = node
        .conf_v4("1.0.0")
        .replace("\"ferry-ipam\"", "\"host-local\"");
    let add = node
        .ferry(&Call::new("ADD", "hl1", &netns, &conf))
        .expect_ok();
    let ip4 = result_ips(&add.json).remove(0);
    // host-local wrote its own files in its own format.
    let file = node.data_dir.join("ferrytest").join(&ip4);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        "hl1\r\neth0".trim()
    );
    assert!(ping(&node.name, &ip4));
    let mut with_prev: Value = serde_json::from_str(&conf).unwrap();
    with_prev["prevResult"] = add.json.clone();
    node.ferry(&Call::new("CHECK", "hl1", &netns, &with_prev.to_string()))
        .expect_ok();
    node.ferry(&Call::new("DEL", "hl1", &netns, &with_prev.to_string()))
        .expect_ok();
    assert!(!file.exists(), "host-local's DEL was not forwarded");
    // A delegate that is not in CNI_PATH is a clear error, and nothing stays.
    let mut missing = Call::new(
        "ADD",
        "hl2",
        &netns,
        &conf.replace("host-local", "no-such-ipam"),
    );
    missing.path = REFERENCE_DIR.into();
    let reply = node.ferry(&missing);
    assert_eq!(reply.code(), 103, "{}", reply.raw);
    assert!(reply.raw.contains("no-such-ipam"));
}

#[test]
fn switching_from_host_local_keeps_reservations() {
    let node = Node::new("sw");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let ferry_conf = node.conf_v4("1.0.0");
    let hl_conf = ferry_conf.replace("\"ferry-ipam\"", "\"host-local\"");
    let old = node
        .ferry(&Call::new("ADD", "sw1", &netns, &hl_conf))
        .expect_ok();
    let old_ip = result_ips(&old.json).remove(0);
    // The node now runs ferry-ipam on the same data dir: the old address
    // stays taken, and its DEL releases it.
    let pod2 = node.pod("q");
    let new = node
        .ferry(&Call::new(
            "ADD",
            "sw2",
            &Node::pod_path(&pod2),
            &ferry_conf,
        ))
        .expect_ok();
    assert_ne!(
        result_ips(&new.json)[0],
        old_ip,
        "ferry-ipam handed out host-local's address"
    );
    node.ferry(&Call::new("DEL", "sw1", &netns, &ferry_conf))
        .expect_ok();
    assert!(
        !node.reserved_ips().contains(&old_ip),
        "{:?}",
        node.reserved_ips()
    );
    node.ferry(&Call::new("DEL", "sw2", "", &ferry_conf))
        .expect_ok();
    assert!(node.reserved_ips().is_empty());
}

#[test]
fn bridge_uses_ferry_ipam() {
    let node = Node::new("br");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let conf = json!({
        "cniVersion": "1.0.0", "name": "ferrytest", "type": "bridge", "bridge": format!("{}br", &node.name[..8]),
        "isGateway": true,
        "ipam": {"type": "ferry-ipam", "ranges": [[{"subnet": "10.245.0.0/24"}]], "dataDir": node.data_dir}
    })
    .to_string();
    let add = node
        .run(
            &reference("bridge"),
            &Call::new("ADD", "br1", &netns, &conf),
        )
        .expect_ok();
    let ip4 = result_ips(&add.json).remove(0);
    assert!(ip4.starts_with("10.245.0."), "{}", add.raw);
    assert!(node.reserved_ips().contains(&ip4));
    assert!(ping(&node.name, &ip4));
    node.run(
        &reference("bridge"),
        &Call::new("DEL", "br1", &netns, &conf),
    )
    .expect_ok();
    assert!(node.reserved_ips().is_empty());
    // And standalone, as any runtime would call it.
    let direct = node
        .run(FERRY_IPAM, &Call::new("ADD", "br2", &netns, &conf))
        .expect_ok();
    assert_eq!(
        direct.json["ips"][0]["address"]
            .as_str()
            .unwrap()
            .split('/')
            .nth(1),
        Some("24")
    );
    node.run(FERRY_IPAM, &Call::new("DEL", "br2", &netns, &conf))
        .expect_ok();
    assert!(node.reserved_ips().is_empty());
}

#[test]
fn a_failed_add_gives_the_address_back_through_the_delegate() {
    let node = Node::new("hlrb");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    // The pod already has eth0, so the veth cannot be made after host-local
    // handed out an address: ferry must call host-local's DEL.
    add_veth(&pod, "eth0", "eth0-peer");
    let conf = node
        .conf_v4("1.0.0")
        .replace("\"ferry-ipam\"", "\"host-local\"");
    let reply = node.ferry(&Call::new("ADD", "hlrb1", &netns, &conf));
    assert_eq!(reply.code(), 101, "{}", reply.raw);
    assert!(
        node.reserved_ips().is_empty(),
        "host-local kept {:?}",
        node.reserved_ips()
    );
}
