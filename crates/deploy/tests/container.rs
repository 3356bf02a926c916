//! The direct-mode manifests' containers, run with exactly what they get
//! (see `sandbox`) on a node network namespace against the test API server:
//! the privileges, mounts and environment the manifests grant are enough to
//! install, serve the probes, report status and uninstall, and what they
//! withhold really is withheld. The eBPF fast path runs in the containers
//! exactly when this kernel runs it at all (which the test checks itself,
//! with all of root's privileges). Forwarding off on the node: ferryd
//! says so once, on the Node too, and goes on once `prepare` (the one
//! privileged container) turned it on.

mod common;
mod lab;
mod sandbox;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::effective;
use ferry_testkit::ns_exec;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use lab::{container, Lab, LIMIT, NODE};
use sandbox::Sandbox;
use serde_json::json;

/// The container's `--bpf-dir` in the sandbox: below the stand-in for the
/// node's bpf file system.
fn pin_dir(sb: &Sandbox, spec: &PodSpec, c: &Container) -> PathBuf {
    let bpffs = ferry_deploy::BPF_FS;
    let vol = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.host_path.as_ref().is_some_and(|h| h.path == bpffs))
        .expect("a volume of the node's bpf file system");
    let dir = effective(c, "bpf-dir").unwrap();
    let rest = Path::new(&dir).strip_prefix(bpffs).expect("below it");
    sb.host_path_dir(&vol.name, bpffs).join(rest)
}

/// Whether this kernel runs the fast path: loaded (then removed) on the
/// sandbox's bpf file system by the test, as root with every capability.
fn kernel_runs_fast_path(bpffs: &Path) -> bool {
    let dir = bpffs.join("control");
    let runs = match ferry_ebpf::FastPath::load(&dir) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("the fast path does not run here: {e}");
            false
        }
    };
    ferry_ebpf::unpin(&dir).unwrap();
    runs
}

#[test]
fn direct_mode_containers_work_with_exactly_what_the_manifests_grant() {
    let lab = Lab::new("ctr", true);
    let sb = lab.sandbox();

    // The privileged init container: the bpf file system, the fast path
    // loaded and pinned for ferryd, forwarding.
    let (spec, prepare) = container("ferry.yaml", "prepare");
    let mut run = sb.start(&spec, &prepare, None);
    assert!(run.wait(LIMIT).success(), "prepare failed:\n{}", run.log());
    assert!(run.log().contains("bpf file system"), "{}", run.log());
    let prepared = pin_dir(&sb, &spec, &prepare);
    let prepared_id = ferry_ebpf::open_prog(&prepared)
        .unwrap()
        .map(|p| ferry_ebpf::prog_id(std::os::fd::AsFd::as_fd(&p)).unwrap());
    assert_eq!(
        prepared_id.is_some(),
        kernel_runs_fast_path(prepared.parent().unwrap()),
        "prepare pins the fast path whenever the kernel runs it:\n{}",
        run.log()
    );

    // The init container: configures the node, marks it, exits.
    let (spec, install) = container("ferry.yaml", "install");
    let mut run = sb.start(&spec, &install, None);
    let status = run.wait(LIMIT);
    assert!(
        status.success(),
        "install failed:\n{}\nscript:\n{}",
        run.log(),
        run.script
    );

    let conflist = sb.volume_dir("cni-conf").join(ferryd::CONFLIST_FILE);
    let conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&conflist).expect("the conflist")).unwrap();
    // dataDir is the host path the `state` hostPath volume mounts.
    assert_eq!(
        conf["plugins"][0]["ipam"]["dataDir"],
        json!("/run/ferry/ipam")
    );
    assert_eq!(
        conf["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
        json!("10.244.0.0/24")
    );
    for bin in ferryd::PLUGIN_BINARIES {
        let installed = std::fs::read(sb.volume_dir("cni-bin").join(bin)).expect(bin);
        assert_eq!(
            installed,
            std::fs::read(sb.dir.path().join("image").join(bin)).unwrap()
        );
    }
    // The fast path: the plugin (on the host) opens the pins by the path in
    // the conflist; they are there whenever the kernel runs it at all.
    assert_eq!(
        conf["plugins"][0]["fastPath"],
        json!(effective(&install, "bpf-dir").unwrap())
    );
    let pins = pin_dir(&sb, &spec, &install);
    assert_eq!(pins, prepared, "install looks where prepare pinned");
    let fast = prepared_id.is_some();
    let prog = pins.join(ferry_ebpf::PROG_PIN);
    assert_eq!(prog.exists(), fast, "fast path pinned:\n{}", run.log());
    if let Some(id) = prepared_id {
        // With the manifest's capabilities, install takes prepare's pin.
        let using = format!("using the program ferryd prepare pinned (id {id})");
        assert!(run.log().contains(&using), "{}", run.log());
    }
    assert_eq!(
        lab.uplink_filters().contains(ferry_ebpf::PROG_NAME),
        fast,
        "fast path on eth0:\n{}",
        run.log()
    );
    let routes = lab.owned_routes();
    assert!(
        routes.contains("10.244.1.0/24 via 172.16.97.76"),
        "{routes}"
    );
    assert!(lab.has_nft_table());
    assert_eq!(
        condition(&lab),
        Some(("False".into(), ferryd::CONDITION_REASON.into()))
    );

    // The agent: kubelet's probes, from the node's network namespace.
    let (spec, agent) = container("ferry.yaml", "ferryd");
    let mut ferryd = sb.start(&spec, &agent, None);
    for (probe, path) in [
        (&agent.readiness_probe, "/readyz"),
        (&agent.liveness_probe, "/healthz"),
    ] {
        let get = probe.as_ref().and_then(|p| p.http_get.as_ref()).unwrap();
        let port = match &get.port {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => *p,
            other => panic!("{other:?}"),
        };
        let url = format!("http://{}:{port}{path}", get.host.as_deref().unwrap());
        let ok = (0..300).any(|_| {
            let up = ns_exec(&lab.node_ns, &["curl", "-sf", "-o", "/dev/null", &url]);
            if !up {
                std::thread::sleep(Duration::from_millis(100));
            }
            up
        });
        assert!(ok, "probe {url} never succeeded:\n{}", ferryd.log());
    }

    // `kubectl exec ds/ferry -c ferryd -- ferryd status`: same container.
    let mut exec = agent.clone();
    exec.args = Some(vec!["status".into()]);
    let mut status_run = sb.start(&spec, &exec, None);
    assert!(status_run.wait(LIMIT).success(), "{}", status_run.log());
    let report = status_run.log();
    for needle in [
        NODE,
        "10.244.0.0/24",
        "10.244.1.0/24",
        "172.16.97.76",
        "eth0",
    ] {
        assert!(report.contains(needle), "status lacks {needle}:\n{report}");
    }
    assert!(ferryd.stop(LIMIT).success(), "{}", ferryd.log());
    assert!(
        lab.owned_routes().contains("10.244.1.0/24"),
        "a stopping ferryd leaves the node as it is"
    );
    assert_eq!(prog.exists(), fast, "{}", ferryd.log());

    // The uninstall DaemonSet's init container removes it all.
    let (spec, uninstall) = container(ferry_deploy::UNINSTALL_FILE, "uninstall");
    let mut run = sb.start(&spec, &uninstall, None);
    assert!(
        run.wait(LIMIT).success(),
        "uninstall failed:\n{}",
        run.log()
    );
    assert!(!conflist.exists());
    for bin in ferryd::PLUGIN_BINARIES {
        assert!(!sb.volume_dir("cni-bin").join(bin).exists(), "{bin} left");
    }
    assert_eq!(lab.owned_routes().trim(), "");
    assert!(!lab.has_nft_table());
    assert!(!pins.exists(), "the pins are removed");
    assert!(!lab.uplink_filters().contains(ferry_ebpf::PROG_NAME));
    // ... and ferry's condition from the Node, with the account it has.
    assert_eq!(condition(&lab), None, "{}", run.log());
}

/// The Node's `NetworkUnavailable` condition: (status, reason).
fn condition(lab: &Lab) -> Option<(String, String)> {
    lab.api()
        .store()
        .get(NODE)?
        .status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == "NetworkUnavailable")
        .map(|c| (c.status, c.reason.unwrap_or_default()))
}

/// `ip_forward=0` and a read-only `/proc/sys`: `install` cannot turn it on,
/// says so in one log line and on the Node (`NetworkUnavailable=True`,
/// `FerryForwardingOff`), writes no conflist, and goes on by itself once
/// forwarding is on (here: the manifest's `prepare` turns it on).
#[test]
fn forwarding_off_is_reported_once_and_prepare_turns_it_on() {
    let lab = Lab::new("ctrfw", false);
    let sb = lab.sandbox();
    let (spec, install) = container("ferry.yaml", "install");
    let mut run = sb.start(&spec, &install, None);
    let reported = std::time::Instant::now();
    while condition(&lab).map(|c| c.1) != Some(ferryd::FORWARDING_OFF_REASON.into()) {
        assert!(reported.elapsed() < LIMIT, "never reported:\n{}", run.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(condition(&lab).unwrap().0, "True");
    let message = lab
        .api()
        .store()
        .get(NODE)
        .unwrap()
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "NetworkUnavailable")
        .and_then(|c| c.message)
        .unwrap_or_default();
    assert!(message.contains("net.ipv4.ip_forward"), "{message}");
    // Several retries later: still one line, no conflist.
    std::thread::sleep(Duration::from_secs(12));
    let log = run.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("net.ipv4.ip_forward is 0"))
        .count();
    assert_eq!(lines, 1, "one line, not one per retry:\n{log}");
    assert!(log.contains("Read-only file system"), "{log}");
    let conflist = sb.volume_dir("cni-conf").join(ferryd::CONFLIST_FILE);
    assert!(!conflist.exists());

    // The privileged init container turns it on; install goes on.
    let (spec, prepare) = container("ferry.yaml", "prepare");
    let mut prep = sb.start(&spec, &prepare, None);
    assert!(
        prep.wait(LIMIT).success(),
        "prepare failed:\n{}",
        prep.log()
    );
    let now = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.node_ns,
            "sysctl",
            "-n",
            "net.ipv4.ip_forward",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&now.stdout).trim(),
        "1",
        "{}",
        prep.log()
    );
    assert!(run.wait(LIMIT).success(), "install:\n{}", run.log());
    assert!(conflist.exists());
    assert_eq!(
        condition(&lab),
        Some(("False".into(), ferryd::CONDITION_REASON.into()))
    );
}

#[test]
fn without_net_admin_nothing_is_configured() {
    let lab = Lab::new("ctrcap", true);
    let sb = lab.sandbox();
    let (spec, install) = container("ferry.yaml", "install");
    let mut run = sb.start(&spec, &install, Some(&[]));
    assert!(
        run.wait_for_log("Operation not permitted", LIMIT),
        "expected EPERM without NET_ADMIN:\n{}",
        run.log()
    );
    drop(run);
    assert!(!lab.has_nft_table());
    assert_eq!(lab.owned_routes().trim(), "");
}

/// `BPF` is what the fast path needs besides `NET_ADMIN`; without it the
/// fast path is off (with a warning) and the node works through the stack.
#[test]
fn without_bpf_the_fast_path_is_off_and_the_node_still_works() {
    let lab = Lab::new("ctrbpf", true);
    let sb = lab.sandbox();
    let (spec, install) = container("ferry.yaml", "install");
    let granted = install
        .security_context
        .as_ref()
        .and_then(|sc| sc.capabilities.as_ref())
        .and_then(|c| c.add.clone())
        .unwrap_or_default();
    assert!(granted.iter().any(|c| c == "BPF"), "{granted:?}");
    let caps: Vec<&str> = granted
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "BPF")
        .collect();
    let mut run = sb.start(&spec, &install, Some(&caps));
    assert!(run.wait(LIMIT).success(), "install failed:\n{}", run.log());
    let pins = pin_dir(&sb, &spec, &install);
    if kernel_runs_fast_path(pins.parent().unwrap()) {
        let log = run.log();
        let eperm = log
            .lines()
            .any(|l| l.contains("fast path") && l.contains("Operation not permitted"));
        assert!(eperm, "expected EPERM without BPF:\n{log}");
    }
    assert!(!pins.join(ferry_ebpf::PROG_PIN).exists());
    assert!(!lab.uplink_filters().contains(ferry_ebpf::PROG_NAME));
    assert!(lab.owned_routes().contains("10.244.1.0/24"));
    assert!(sb
        .volume_dir("cni-conf")
        .join(ferryd::CONFLIST_FILE)
        .exists());
}

/// `prepare`, privileged, on a node without a bpf file system, with
/// forwarding off: it mounts one (in the sandbox the mount stays in the
/// container: propagation to the node is the runtime's part), turns IPv4
/// forwarding on, and IPv6 forwarding only once its Node has an IPv6
/// podCIDR.
#[test]
fn prepare_mounts_bpffs_and_turns_forwarding_on_only_as_needed() {
    let lab = Lab::new("ctrprep", false);
    let sysctl = |key: &str| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &lab.node_ns, "sysctl", "-n", key])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert!(ns_exec(
        &lab.node_ns,
        &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"]
    ));
    let mut sb = lab.sandbox();
    sb.host_filesystems = false;
    let (spec, prepare) = container("ferry.yaml", "prepare");
    let mut run = sb.start(&spec, &prepare, None);
    assert!(run.wait(LIMIT).success(), "prepare failed:\n{}", run.log());
    assert!(
        run.log().contains("bpf file system mounted"),
        "{}",
        run.log()
    );
    assert_eq!(sysctl("net.ipv4.ip_forward"), "1");
    assert_eq!(
        sysctl("net.ipv6.conf.all.forwarding"),
        "0",
        "IPv4-only: IPv6 left alone"
    );

    lab.api()
        .store()
        .modify_node(
            NODE,
            &json!({"spec": {"podCIDRs": ["10.244.0.0/24", "fd00:10:244::/64"]}}),
        )
        .unwrap();
    let mut run = sb.start(&spec, &prepare, None);
    assert!(run.wait(LIMIT).success(), "prepare failed:\n{}", run.log());
    assert_eq!(sysctl("net.ipv6.conf.all.forwarding"), "1", "{}", run.log());
    // Without privileges it cannot: a clear error, not a silent success.
    assert!(ns_exec(
        &lab.node_ns,
        &["sysctl", "-qw", "net.ipv4.ip_forward=0"]
    ));
    let mut unprivileged = prepare.clone();
    unprivileged.security_context = install_security();
    let mut run = sb.start(&spec, &unprivileged, None);
    assert!(!run.wait(LIMIT).success(), "{}", run.log());
    assert!(
        run.log().contains("net.ipv4.ip_forward is 0"),
        "{}",
        run.log()
    );
}

/// The `install` container's security context (unprivileged).
fn install_security() -> Option<k8s_openapi::api::core::v1::SecurityContext> {
    container("ferry.yaml", "install").1.security_context
}
