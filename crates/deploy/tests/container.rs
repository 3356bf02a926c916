//! The direct-mode manifests' containers, run with exactly what they get
//! (see `sandbox`) on a node network namespace against the test API server:
//! the privileges, mounts and environment the manifests grant are enough to
//! install, serve the probes, report status and uninstall, and what they
//! withhold really is withheld.

mod common;
mod lab;
mod sandbox;

use std::time::Duration;

use ferry_testkit::ns_exec;
use lab::{container, Lab, LIMIT, NODE};
use serde_json::json;

#[test]
fn direct_mode_containers_work_with_exactly_what_the_manifests_grant() {
    let lab = Lab::new("ctr", true);
    let sb = lab.sandbox();

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
    let routes = lab.owned_routes();
    assert!(
        routes.contains("10.244.1.0/24 via 172.16.97.76"),
        "{routes}"
    );
    assert!(lab.has_nft_table());
    let marked = lab.api().store().get(NODE).unwrap();
    let reason = marked
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "NetworkUnavailable")
        .map(|c| (c.status, c.reason));
    assert_eq!(
        reason,
        Some(("False".into(), Some(ferryd::CONDITION_REASON.into())))
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
}

#[test]
fn proc_sys_is_read_only_so_forwarding_must_already_be_on() {
    let lab = Lab::new("ctrfw", false);
    let sb = lab.sandbox();
    let (spec, install) = container("ferry.yaml", "install");
    let mut run = sb.start(&spec, &install, None);
    assert!(
        run.wait_for_log("Read-only file system", LIMIT),
        "expected a read-only /proc/sys:\n{}",
        run.log()
    );
    assert!(run.log().contains("net.ipv4.ip_forward"), "{}", run.log());
    drop(run);
    assert!(!sb
        .volume_dir("cni-conf")
        .join(ferryd::CONFLIST_FILE)
        .exists());
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
