//! ferry under podman 4.3 with its CNI backend. Each test has its own node
//! netns and private podman storage, with `ferry` wrapped by the recorder.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use ferry_runtimes::look::{
    dnat_chains, ferry_veths, pod_routes, reservation_owner, tcp_read_from_node,
};
use ferry_runtimes::procs::wait_for;
use ferry_runtimes::{Invocation, Podman};
use ferry_testkit::{ping, Node};

const SLEEP: &[&str] = &["sleep", "600"];
const NODE_IP: &str = "172.16.97.75";

/// Fields drop in order: podman (removing its containers), then the node.
struct Setup {
    podman: Podman,
    node: Node,
}

fn setup(tag: &str) -> Setup {
    let node = Node::new(tag);
    let podman = Podman::with_ferry(&node.path, &node.data_dir, true)
        .unwrap_or_else(|e| panic!("preparing podman: {e}"));
    Setup { podman, node }
}

impl Setup {
    fn calls(&self, command: &str, id: &str) -> Vec<Invocation> {
        self.podman
            .cni
            .recorded()
            .into_iter()
            .filter(|i| i.command() == command && i.container_id() == id)
            .collect()
    }

    fn assert_clean(&self) {
        assert_eq!(self.node.reserved_ips(), BTreeSet::new(), "reservations");
        assert_eq!(ferry_veths(&self.node), BTreeSet::new(), "host veths");
        assert_eq!(pod_routes(&self.node), BTreeSet::new(), "pod routes");
    }
}

fn ok<T>(r: ferry_runtimes::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn container_gets_ferrys_address_and_pings_another_pod() {
    let s = setup("pm1");
    let routes_before = s.node.routes();
    let id1 = ok(s.podman.run_detached("one", &[], SLEEP));
    let id2 = ok(s.podman.run_detached("two", &[], SLEEP));
    let ip1 = ok(s.podman.eth0_ipv4("one"));
    let ip2 = ok(s.podman.eth0_ipv4("two"));
    assert_ne!(ip1, ip2);

    // eth0 holds exactly what ferry reserved, for that container.
    let reserved: BTreeSet<String> = [ip1, ip2].iter().map(IpAddr::to_string).collect();
    assert_eq!(s.node.reserved_ips(), reserved);
    assert_eq!(
        reservation_owner(&s.node.data_dir, ip1),
        Some((id1.clone(), "eth0".into()))
    );
    ok(s.podman
        .exec("two", &["ping", "-c", "1", "-W", "2", &ip1.to_string()]));
    ok(s.podman
        .exec("one", &["ping", "-c", "1", "-W", "2", &ip2.to_string()]));
    assert!(ping(&s.node.name, &ip1.to_string()));

    // podman asks VERSION first, then ADD with its own CNI_ARGS.
    let all = s.podman.cni.recorded();
    let first = all.first().expect("calls were recorded");
    assert_eq!(first.command(), "VERSION", "{all:?}");
    let adds = s.calls("ADD", &id1);
    assert_eq!(adds.len(), 1);
    assert_eq!(adds[0].exit_code, 0, "{}", adds[0].stdout);
    assert_eq!(adds[0].cni_arg("K8S_POD_NAME").as_deref(), Some("one"));
    assert_eq!(adds[0].cni_arg("IgnoreUnknown").as_deref(), Some("1"));
    let result = adds[0].stdout_json().expect("ADD stdout");
    assert_eq!(result["ips"][0]["address"], format!("{ip1}/32"));

    ok(s.podman.rm("one"));
    ok(s.podman.rm("two"));
    s.assert_clean();
    assert_eq!(s.node.routes(), routes_before);
    for id in [&id1, &id2] {
        let dels = s.calls("DEL", id);
        assert!(!dels.is_empty(), "no DEL for {id}");
        assert!(dels.iter().all(|d| d.exit_code == 0), "{dels:?}");
    }
}

#[test]
fn static_ip_from_podman_is_honoured() {
    let s = setup("pm2");
    let id = ok(s
        .podman
        .run_detached("fixed", &["--ip", "10.244.0.77"], SLEEP));
    assert_eq!(ok(s.podman.eth0_ipv4("fixed")).to_string(), "10.244.0.77");
    assert_eq!(
        s.node.reserved_ips(),
        BTreeSet::from(["10.244.0.77".to_string()])
    );
    let add = &s.calls("ADD", &id)[0];
    assert_eq!(add.cni_arg("IP").as_deref(), Some("10.244.0.77"));

    // The same address again is refused while it is taken, and podman
    // leaves nothing behind for the failed container.
    let out = ok(s.podman.output(&[
        "run",
        "-d",
        "--name",
        "twin",
        "--network",
        "ferry",
        "--ip",
        "10.244.0.77",
        "--rootfs",
        &s.podman.rootfs.display().to_string(),
        "sleep",
        "600",
    ]));
    assert!(!out.status.success(), "a second 10.244.0.77 was accepted");
    assert_eq!(ferry_veths(&s.node).len(), 1);

    ok(s.podman.rm("twin"));
    ok(s.podman.rm("fixed"));
    s.assert_clean();
}

#[test]
fn exited_container_is_cleaned_up_by_podman_cleanup() {
    let s = setup("pm3");
    let id = ok(s.podman.run_detached("brief", &[], &["sleep", "1"]));
    // conmon runs `podman container cleanup` when the container exits:
    // that process sends the DEL, before anyone calls `podman rm`.
    let del = wait_for("the cleanup DEL", Duration::from_secs(30), || {
        s.calls("DEL", &id).into_iter().next()
    });
    let del = del.unwrap_or_else(|e| {
        panic!(
            "{e}; state {:?}, calls {:?}",
            s.podman.state("brief"),
            s.podman.cni.recorded()
        )
    });
    assert_eq!(del.exit_code, 0, "{}", del.stdout);
    assert!(
        del.parent.contains("container cleanup"),
        "DEL came from {:?}",
        del.parent
    );
    assert_eq!(ok(s.podman.state("brief")), "exited");
    s.assert_clean();

    ok(s.podman.rm("brief"));
    s.assert_clean();
    assert!(s.podman.cni.recorded().iter().all(|i| i.exit_code == 0));
}

#[test]
fn published_port_reaches_the_container() {
    let s = setup("pm4");
    let listener = ["nc", "-ll", "-p", "8080", "-e", "/bin/echo", "ferry-hello"];
    ok(s.podman
        .run_detached("srv", &["-p", "30081:8080"], &listener));
    let to: std::net::SocketAddr = "172.16.97.75:30081".parse().unwrap();
    let got = wait_for(
        "the published port to answer",
        Duration::from_secs(15),
        || tcp_read_from_node(&s.node, to).filter(|g| !g.is_empty()),
    );
    assert_eq!(got.ok().as_deref(), Some("ferry-hello\n"), "via {to}");
    assert_eq!(dnat_chains(&s.node).len(), 1);
    ok(s.podman.rm("srv"));
    s.assert_clean();
    assert_eq!(dnat_chains(&s.node), BTreeSet::new(), "portmap chains left");
}

/// Issue 16: on a node without a default route proxy ARP does not answer
/// for 169.254.1.1; ferry's containers do not need it to (a permanent
/// neighbour entry for the gateway) and reach each other and the node.
#[test]
fn containers_work_on_a_node_without_a_default_route() {
    let node = Node::without_default_route("pmnd");
    let podman = Podman::with_ferry(&node.path, &node.data_dir, false)
        .unwrap_or_else(|e| panic!("preparing podman: {e}"));
    let s = Setup { podman, node };
    ok(s.podman.run_detached("one", &[], SLEEP));
    ok(s.podman.run_detached("two", &[], SLEEP));
    let ip1 = ok(s.podman.eth0_ipv4("one"));
    let ip2 = ok(s.podman.eth0_ipv4("two"));
    let arp = ok(s.podman.exec("one", &["cat", "/proc/net/arp"]));
    let gw = arp
        .lines()
        .find(|l| l.starts_with("169.254.1.1 "))
        .unwrap_or_else(|| panic!("no gateway entry: {arp}"));
    // Flags 0x6: ATF_COM | ATF_PERM.
    assert!(
        gw.contains("0x6") && gw.contains("ee:ee:ee:ee:ee:ee"),
        "{gw}"
    );
    let ping = |from: &str, to: &str| {
        s.podman
            .exec(from, &["ping", "-c", "1", "-W", "2", to])
            .is_ok()
    };
    assert!(ping("one", &ip2.to_string()), "one cannot ping two");
    assert!(ping("two", &ip1.to_string()), "two cannot ping one");
    assert!(ping("one", NODE_IP), "one cannot ping the node");
    assert!(ferry_testkit::ping(&s.node.name, &ip2.to_string()));
    // Without the entry the container must ask, and nobody answers: what
    // failed before ADD installed it.
    let pid = ok(s.podman.run(&["inspect", "-f", "{{.State.Pid}}", "two"]));
    let del = Command::new("nsenter")
        .args(["-t", pid.trim(), "-n", "ip", "neigh", "del", "169.254.1.1"])
        .args(["dev", "eth0"])
        .status()
        .expect("nsenter");
    assert!(del.success());
    assert!(!ping("two", NODE_IP), "proxy ARP answered without a route");

    for name in ["one", "two"] {
        ok(s.podman.rm(name));
    }
    s.assert_clean();
}
