//! ferry under containerd 1.6, driven over CRI as kubelet drives it. Each
//! test has its own node netns and its own private containerd in it, with
//! `ferry` wrapped by the recorder so the calls containerd made can be
//! checked too.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferry_runtimes::containerd::host_cached_results;
use ferry_runtimes::image::PAUSE_IMAGE;
use ferry_runtimes::look::{
    dnat_chains, ferry_veths, in_netns, ping_from, pod_routes, reservation_owner,
    tcp_read_from_node,
};
use ferry_runtimes::procs::wait_for;
use ferry_runtimes::{pod_config, tcp_port, Containerd, Cri, Invocation};
use ferry_testkit::{ping, Node};

const NODE_IP: &str = "172.16.97.75";

/// Fields drop in order: the client, then containerd (which stops its
/// sandboxes), then the node netns.
struct Setup {
    cri: Cri,
    ctrd: Containerd,
    node: Node,
}

fn setup(tag: &str) -> Setup {
    let node = Node::new(tag);
    let ctrd = Containerd::with_ferry(&node.path, &node.data_dir, true)
        .unwrap_or_else(|e| panic!("starting containerd: {e}"));
    let cri = ctrd.cri().expect("CRI client");
    Setup { cri, ctrd, node }
}

impl Setup {
    /// ferry's recorded calls with `command`.
    fn calls(&self, command: &str) -> Vec<Invocation> {
        self.plugin_calls("ferry", command)
    }

    fn plugin_calls(&self, plugin: &str, command: &str) -> Vec<Invocation> {
        self.ctrd
            .cni
            .recorded()
            .into_iter()
            .filter(|i| i.plugin == plugin && i.command() == command)
            .collect()
    }

    /// Nothing of ferry's is left on the node.
    fn assert_clean(&self) {
        assert_eq!(self.node.reserved_ips(), BTreeSet::new(), "reservations");
        assert_eq!(ferry_veths(&self.node), BTreeSet::new(), "host veths");
        assert_eq!(pod_routes(&self.node), BTreeSet::new(), "pod routes");
        assert_eq!(self.ctrd.netns_files(), Vec::<std::path::PathBuf>::new());
    }

    fn ip_of(&self, id: &str) -> IpAddr {
        let st = self.cri.pod_status(id).expect("PodSandboxStatus");
        assert!(st.ready, "sandbox {id} not ready");
        st.ip.expect("sandbox has an IP")
    }
}

fn ok<T>(r: ferry_runtimes::Result<T>, s: &Setup) -> T {
    r.unwrap_or_else(|e| panic!("{e}\ncontainerd log:\n{}", s.ctrd.log_tail(30)))
}

#[test]
fn sandbox_gets_ferrys_address_and_removal_leaves_nothing() {
    let s = setup("cri1");
    let links_before = s.node.links();
    let routes_before = s.node.routes();
    let cfg = pod_config("web");
    let id = ok(s.cri.run_pod(&cfg), &s);
    let st = ok(s.cri.pod_status(&id), &s);
    let ip = st.ip.expect("PodSandboxStatus has an IP");

    // The IP kubelet would publish is the one ferry reserved, for this
    // sandbox, and it answers from the node.
    assert_eq!(s.node.reserved_ips(), BTreeSet::from([ip.to_string()]));
    let (owner, ifname) = reservation_owner(&s.node.data_dir, ip).expect("reservation");
    assert_eq!((owner.as_str(), ifname.as_str()), (id.as_str(), "eth0"));
    assert!(ping(&s.node.name, &ip.to_string()), "node cannot ping {ip}");
    assert_eq!(ferry_veths(&s.node).len(), 1);
    let routes = pod_routes(&s.node);
    assert!(
        routes
            .iter()
            .any(|r| r.starts_with(&format!("{ip} dev ferry"))),
        "no host route to {ip}: {routes:?}"
    );
    let netns = st.netns.expect("sandbox netns path");
    assert_eq!(s.ctrd.netns_files(), vec![netns.clone()]);
    assert!(
        ping_from(&netns, NODE_IP.parse().unwrap()),
        "pod cannot reach the node"
    );
    // libcni's cache is this containerd's own, never the host's.
    let cached = s.ctrd.cached_results();
    assert!(cached.iter().any(|n| n.contains(&id)), "{cached:?}");
    assert_eq!(host_cached_results(&id), Vec::<String>::new());

    // What containerd sent and what ferry answered.
    let adds = s.calls("ADD");
    assert_eq!(adds.len(), 1, "{adds:?}");
    let add = &adds[0];
    assert_eq!(add.exit_code, 0, "ADD failed: {}", add.stdout);
    assert_eq!(add.container_id(), id);
    assert_eq!(add.env["CNI_NETNS"], netns.display().to_string());
    assert_eq!(add.cni_arg("K8S_POD_NAME").as_deref(), Some("web"));
    assert_eq!(add.cni_arg("K8S_POD_NAMESPACE").as_deref(), Some("default"));
    assert_eq!(add.cni_arg("K8S_POD_INFRA_CONTAINER_ID"), Some(id.clone()));
    assert_eq!(add.cni_arg("IgnoreUnknown").as_deref(), Some("1"));
    let result = add.stdout_json().expect("ADD stdout");
    assert_eq!(result["cniVersion"], "1.0.0", "{result}");
    assert_eq!(result["ips"][0]["address"], format!("{ip}/32"), "{result}");
    assert_eq!(
        st.info["cniResult"]["Interfaces"]["eth0"]["IPConfigs"][0]["IP"],
        ip.to_string(),
        "containerd's view of the result: {}",
        st.info["cniResult"]
    );

    ok(s.cri.stop_pod(&id), &s);
    assert_eq!(s.node.reserved_ips(), BTreeSet::new(), "Stop released");
    ok(s.cri.remove_pod(&id), &s);
    s.assert_clean();
    assert_eq!(s.ctrd.cached_results(), Vec::<String>::new());
    assert_eq!(host_cached_results(&id), Vec::<String>::new());
    assert_eq!(s.node.links(), links_before);
    assert_eq!(s.node.routes(), routes_before);

    // Stop: DEL with the netns and prevResult; Remove: DEL again without
    // either. Both succeed silently.
    let dels = s.calls("DEL");
    assert_eq!(dels.len(), 2, "{dels:#?}");
    assert_eq!(dels[0].env["CNI_NETNS"], netns.display().to_string());
    assert!(
        dels[0].stdin.get("prevResult").is_some(),
        "{}",
        dels[0].stdin
    );
    assert_eq!(
        dels[1]
            .env
            .get("CNI_NETNS")
            .map(String::as_str)
            .unwrap_or(""),
        ""
    );
    assert!(
        dels[1].stdin.get("prevResult").is_none(),
        "{}",
        dels[1].stdin
    );
    for del in &dels {
        assert_eq!(del.exit_code, 0, "DEL failed: {}", del.stdout);
        assert_eq!(del.stdout.trim(), "", "DEL printed something");
        assert_eq!(del.container_id(), id);
    }
    assert!(s.calls("CHECK").is_empty());
}

#[test]
fn two_sandboxes_ping_each_other() {
    let s = setup("cri2");
    let a = ok(s.cri.run_pod(&pod_config("a")), &s);
    let b = ok(s.cri.run_pod(&pod_config("b")), &s);
    let (ip_a, ip_b) = (s.ip_of(&a), s.ip_of(&b));
    assert_ne!(ip_a, ip_b);
    let ns_a = ok(s.cri.pod_status(&a), &s).netns.expect("netns a");
    let ns_b = ok(s.cri.pod_status(&b), &s).netns.expect("netns b");
    assert!(ping_from(&ns_a, ip_b), "{ip_a} cannot ping {ip_b}");
    assert!(ping_from(&ns_b, ip_a), "{ip_b} cannot ping {ip_a}");
    assert_eq!(ferry_veths(&s.node).len(), 2);

    for id in [&a, &b] {
        ok(s.cri.stop_pod(id), &s);
        ok(s.cri.remove_pod(id), &s);
    }
    s.assert_clean();
}

#[test]
fn host_port_reaches_a_listener_in_the_pod() {
    let s = setup("cri3");
    let mut cfg = pod_config("svc");
    cfg.port_mappings = vec![tcp_port(30080, 8080)];
    let id = ok(s.cri.run_pod(&cfg), &s);
    let ip = s.ip_of(&id);
    // A container in the sandbox (the pause image holds busybox) serving
    // one line per connection on 8080.
    let listener = [
        "/bin/nc",
        "-ll",
        "-p",
        "8080",
        "-e",
        "/bin/echo",
        "ferry-hello",
    ];
    ok(
        s.cri
            .start_container(&id, &cfg, "listener", PAUSE_IMAGE, &listener),
        &s,
    );

    let to: SocketAddr = format!("{NODE_IP}:30080").parse().unwrap();
    let got = wait_for("the hostPort to answer", Duration::from_secs(15), || {
        tcp_read_from_node(&s.node, to).filter(|g| !g.is_empty())
    });
    assert_eq!(got.ok().as_deref(), Some("ferry-hello\n"), "via {to}");
    // The pod IP answers directly too: the DNAT went to the right pod.
    let direct: SocketAddr = SocketAddr::new(ip, 8080);
    assert_eq!(
        tcp_read_from_node(&s.node, direct).as_deref(),
        Some("ferry-hello\n")
    );

    // The mapping went to portmap (which declares the capability), not to
    // ferry, and portmap got ferry's result as its prevResult.
    let add = &s.calls("ADD")[0];
    assert!(add.stdin.get("runtimeConfig").is_none(), "{}", add.stdin);
    let pm_add = &s.plugin_calls("portmap", "ADD")[0];
    let pm = &pm_add.stdin["runtimeConfig"]["portMappings"][0];
    // containerd 1.6 (go-cni) spells the keys `HostPort`, `ContainerPort`.
    let key = |k: &str| {
        pm.as_object()
            .and_then(|o| o.iter().find(|(name, _)| name.eq_ignore_ascii_case(k)))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(key("hostPort"), Some(30080.into()), "{}", pm_add.stdin);
    assert_eq!(key("containerPort"), Some(8080.into()));
    assert_eq!(
        pm_add.stdin["prevResult"]["ips"],
        add.stdout_json().unwrap()["ips"]
    );
    assert_eq!(pm_add.exit_code, 0, "{}", pm_add.stdout);
    assert_eq!(dnat_chains(&s.node).len(), 1);

    ok(s.cri.stop_pod(&id), &s);
    ok(s.cri.remove_pod(&id), &s);
    s.assert_clean();
    assert_eq!(dnat_chains(&s.node), BTreeSet::new(), "portmap chains left");
}

#[test]
fn concurrent_sandboxes_get_distinct_addresses() {
    let s = setup("cri4");
    const N: usize = 4;
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let ctrd = &s.ctrd;
                scope.spawn(move || {
                    let cri = ctrd.cri().expect("client");
                    cri.run_pod(&pod_config(&format!("p{i}")))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| ok(h.join().expect("thread"), &s))
            .collect()
    });
    let ips: BTreeSet<String> = ids.iter().map(|id| s.ip_of(id).to_string()).collect();
    assert_eq!(ips.len(), N, "addresses not distinct: {ips:?}");
    assert_eq!(s.node.reserved_ips(), ips);
    assert_eq!(ferry_veths(&s.node).len(), N);
    for ip in &ips {
        assert!(ping(&s.node.name, ip), "node cannot ping {ip}");
    }

    std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let ctrd = &s.ctrd;
                scope.spawn(move || {
                    let cri = ctrd.cri().expect("client");
                    cri.stop_pod(id).and_then(|()| cri.remove_pod(id))
                })
            })
            .collect();
        for h in handles {
            ok(h.join().expect("thread"), &s);
        }
    });
    s.assert_clean();
    let failed: Vec<_> = s
        .ctrd
        .cni
        .recorded()
        .into_iter()
        .filter(|i| i.exit_code != 0)
        .collect();
    assert!(failed.is_empty(), "failed plugin calls: {failed:?}");
}

/// Issue 16: on a node without a default route the node cannot route
/// 169.254.1.1, so proxy ARP does not answer a pod asking for its gateway.
/// ferry's pods do not ask (a permanent neighbour entry, made at ADD) and
/// reach each other and the node, as the reference ptp's pods do there.
#[test]
fn sandboxes_work_on_a_node_without_a_default_route() {
    // The reference, under its own containerd and node.
    let ptp_node = Node::without_default_route("crindp");
    let ptp = Containerd::with_ptp(&ptp_node.path, &ptp_node.data_dir)
        .unwrap_or_else(|e| panic!("starting containerd: {e}"));
    let ptp_cri = ptp.cri().expect("CRI client");
    let p = ptp_cri.run_pod(&pod_config("ptp")).expect("ptp sandbox");
    let st = ptp_cri.pod_status(&p).expect("status");
    let p_ns = st.netns.expect("netns");
    assert!(ping(&ptp_node.name, &st.ip.expect("ip").to_string()));
    assert!(ping_from(&p_ns, NODE_IP.parse().unwrap()), "ptp pod→node");
    drop((ptp_cri, ptp, ptp_node));

    let node = Node::without_default_route("crind");
    let ctrd = Containerd::with_ferry(&node.path, &node.data_dir, false)
        .unwrap_or_else(|e| panic!("starting containerd: {e}"));
    let s = Setup {
        cri: ctrd.cri().expect("CRI client"),
        ctrd,
        node,
    };
    let a = ok(s.cri.run_pod(&pod_config("a")), &s);
    let b = ok(s.cri.run_pod(&pod_config("b")), &s);
    let (ip_a, ip_b) = (s.ip_of(&a), s.ip_of(&b));
    let ns_a = ok(s.cri.pod_status(&a), &s).netns.expect("netns a");
    let ns_b = ok(s.cri.pod_status(&b), &s).netns.expect("netns b");
    let node_ip: IpAddr = NODE_IP.parse().unwrap();
    assert!(ping_from(&ns_a, ip_b), "{ip_a} cannot ping {ip_b}");
    assert!(ping_from(&ns_b, ip_a), "{ip_b} cannot ping {ip_a}");
    assert!(ping(&s.node.name, &ip_a.to_string()), "node → {ip_a}");
    assert!(ping_from(&ns_a, node_ip), "{ip_a} cannot ping the node");
    // Without the entry the pod must ask, nobody answers: what failed
    // before ADD installed it.
    let del = ["ip", "neigh", "del", "169.254.1.1", "dev", "eth0"];
    assert!(in_netns(&ns_b, &del));
    assert!(
        !ping_from(&ns_b, node_ip),
        "proxy ARP answered without a route"
    );

    for id in [&a, &b] {
        ok(s.cri.stop_pod(id), &s);
        ok(s.cri.remove_pod(id), &s);
    }
    s.assert_clean();
}
