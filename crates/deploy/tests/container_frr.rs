//! ospf and bgp modes, as the manifests run them: the FRR container (Debian's
//! FRR 8.4 standing in for FRR's image, started as the image's
//! `docker-start` does, from the manifest's `daemons` ConfigMap) with its
//! capabilities, and `ferryd run` with its own, sharing only the two
//! emptyDirs and the Secret the user created. Both are ordinary containers
//! started together (no native sidecar: Kubernetes 1.20): ferryd, started
//! first here, waits for FRR without writing the conflist, then gets its
//! config into the running FRR, and only then writes the conflist.

mod common;
mod lab;
mod sandbox;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::checked_in;
use ferry_deploy::{Object, Routing};
use lab::{container, Lab, LIMIT};
use sandbox::{Running, Sandbox};

/// What FRR's image runs (`/usr/lib/frr/docker-start`): FRR's run dir
/// (a hostPath) made FRR's, then watchfrr with the daemons the `daemons`
/// file enables.
const DOCKER_START: &str = ". /usr/lib/frr/frrcommon.sh && \
    install -d -o frr -g frr -m 0755 /var/run/frr && \
    exec /usr/lib/frr/watchfrr $(daemon_list)";

/// Kills FRR's daemons by their pid files (in the frr-run volume), then
/// watchfrr: a container runtime would kill the whole container.
struct Frr {
    watchfrr: Option<Running>,
    run_dir: PathBuf,
}

impl Drop for Frr {
    fn drop(&mut self) {
        self.watchfrr.take();
        for entry in fs::read_dir(&self.run_dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pid") {
                if let Ok(pid) = fs::read_to_string(&path) {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", pid.trim()])
                        .stderr(std::process::Stdio::null())
                        .status();
                }
            }
        }
    }
}

/// Runs `argv` in a container of the pod, as `kubectl exec` would.
fn exec(sb: &Sandbox, file: &str, name: &str, argv: &[&str]) -> (bool, String) {
    let (spec, mut c) = container(file, name);
    c.command = Some(argv.iter().map(|a| a.to_string()).collect());
    c.args = None;
    let mut run = sb.start(&spec, &c, None);
    let ok = run.wait(LIMIT).success();
    (ok, run.log())
}

#[test]
fn ospf_frr_and_ferryd_work_with_exactly_what_the_manifest_grants() {
    frr_mode(
        Routing::Ospf,
        &[
            "router ospf",
            "ip ospf message-digest-key 1 md5",
            "10.244.0.0/24",
        ],
    );
}

#[test]
fn bgp_frr_and_ferryd_work_with_exactly_what_the_manifest_grants() {
    frr_mode(
        Routing::Bgp,
        &[
            "router bgp 64512",
            "neighbor 172.16.97.76",
            "password",
            "10.244.0.0/24",
        ],
    );
}

/// A machine whose hostname is not its Node's name (capitals, kubeadm
/// `--node-name`, cloud FQDNs): FRR's daemons take the machine's, which no
/// reload can change; ferryd's config must still converge. And IPv6
/// forwarding is on in an IPv4-only cluster: FRR cannot change it
/// (`/proc/sys` is read-only) and ferryd must not want it to.
#[test]
fn ospf_converges_when_the_hostname_is_not_the_node_name_and_ipv6_forwards() {
    frr_mode_on(
        Routing::Ospf,
        &["hostname K8s-1.Example.COM", "router ospf"],
        "K8s-1.Example.COM",
        true,
    );
}

/// `ferryd run` first (it waits), then FRR; FRR then runs ferryd's config,
/// holding each of `expect`, and the conflist is there.
fn frr_mode(routing: Routing, expect: &[&str]) {
    frr_mode_on(routing, expect, lab::NODE, false);
}

/// [`frr_mode`] on a machine whose hostname is `hostname`, with IPv6
/// forwarding on or off.
fn frr_mode_on(routing: Routing, expect: &[&str], hostname: &str, ipv6_forwarding: bool) {
    let file = ferry_deploy::file_name(routing);
    let lab = Lab::new("ctrfrr", true);
    let fwd = format!("net.ipv6.conf.all.forwarding={}", u8::from(ipv6_forwarding));
    assert!(ferry_testkit::ns_exec(
        &lab.node_ns,
        &["sysctl", "-qw", &fwd]
    ));
    let mut sb = lab.sandbox();
    sb.hostname = hostname.into();
    let (_, objects) = checked_in().into_iter().find(|(f, _)| f == file).unwrap();
    for o in &objects {
        if let Object::ConfigMap(cm) = o {
            sb.add_data(
                cm.metadata.name.as_deref().unwrap(),
                cm.data.clone().unwrap_or_default(),
            );
        }
    }
    // What `kubectl create secret generic ... --from-literal=...` makes.
    let (secret, key) = match routing {
        Routing::Bgp => ferry_deploy::BGP_SECRET,
        _ => ferry_deploy::OSPF_SECRET,
    };
    sb.add_data(
        secret,
        BTreeMap::from([(key.to_string(), "0123456789abcdef".to_string())]),
    );

    // ferryd first: it must wait for FRR, and write no conflist meanwhile.
    let (spec, agent) = container(file, "ferryd");
    let mut run = sb.start(&spec, &agent, None);
    assert!(
        run.wait_for_log("FRR is not up yet", LIMIT),
        "ferryd does not wait for FRR:\n{}",
        run.log()
    );
    let conflist = sb.volume_dir("cni-conf").join(ferryd::CONFLIST_FILE);
    std::thread::sleep(Duration::from_secs(3));
    assert!(!conflist.exists(), "conflist before FRR is configured");
    let waits = run.log().matches("FRR is not up yet").count();
    assert_eq!(waits, 1, "said once:\n{}", run.log());

    // FRR, with the image's start command.
    let (spec, mut frr) = container(file, "frr");
    frr.command = Some(vec!["/bin/bash".into(), "-c".into(), DOCKER_START.into()]);
    let mut guard = Frr {
        watchfrr: None,
        run_dir: sb.volume_dir("frr-run"),
    };
    guard.watchfrr = Some(sb.start(&spec, &frr, None));

    // Its startupProbe, until it passes (its readinessProbe is the same
    // command: manifests.rs).
    let probe = container(file, "frr")
        .1
        .startup_probe
        .and_then(|p| p.exec)
        .and_then(|e| e.command)
        .expect("an exec startupProbe");
    let argv: Vec<&str> = probe.iter().map(String::as_str).collect();
    let start = Instant::now();
    loop {
        let (ok, out) = exec(&sb, file, "frr", &argv);
        if ok {
            break;
        }
        assert!(
            start.elapsed() < LIMIT,
            "FRR never came up: {out}\n{}",
            guard.watchfrr.as_ref().unwrap().log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // ferryd configures FRR, then writes the conflist.
    let start = Instant::now();
    while !conflist.exists() {
        assert!(
            start.elapsed() < LIMIT,
            "no conflist:\n{}\nFRR:\n{}",
            run.log(),
            guard.watchfrr.as_ref().unwrap().log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // bgp: ready. ospf: configured, and not ready while its only peer
    // Node runs no FRR (ready once its adjacencies have settled:
    // crates/agent/tests/frr_readiness.rs).
    let configured = match routing {
        Routing::Ospf => "node configured; not ready until its OSPF adjacencies have settled",
        _ => "node configured; ready",
    };
    assert!(run.wait_for_log(configured, LIMIT), "{}", run.log());
    let log = run.log();
    let reloaded = log.find("FRR config reloaded").expect("FRR configured");
    let ready = log.find(configured).expect("configured");
    assert!(reloaded < ready, "FRR before the conflist:\n{log}");
    if routing == Routing::Ospf {
        assert!(log.contains("why=ospfd: no neighbor yet"), "{log}");
        assert!(!log.contains("node configured; ready"), "{log}");
    }

    // FRR runs ferryd's config (with the key), and zebra put the
    // aggregate's blackhole into the node's kernel.
    let (ok, running) = exec(&sb, file, "frr", &["vtysh", "-c", "show running-config"]);
    assert!(ok, "{running}");
    for needle in expect {
        assert!(
            running.contains(needle),
            "running config lacks {needle}:\n{running}"
        );
    }
    let blackholes = ferry_testkit::ip(Some(&lab.node_ns), &["route", "show", "type", "blackhole"]);
    assert!(blackholes.contains("10.244.0.0/24"), "{blackholes}");
    // The key reached FRR, never ferryd's log.
    assert!(!run.log().contains("0123456789abcdef"));
    // IPv6 forwarding as it was.
    let (_, now) = exec(
        &sb,
        file,
        "frr",
        &["cat", "/proc/sys/net/ipv6/conf/all/forwarding"],
    );
    assert_eq!(now.trim(), if ipv6_forwarding { "1" } else { "0" });
    assert!(run.stop(LIMIT).success(), "{}", run.log());
}
