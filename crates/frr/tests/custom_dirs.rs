//! An FRR instance without a pathspace, in dirs of its own (ferryd's
//! `--frr-conf-dir` / `--frr-run-dir`), next to a pathspace one.

mod common;

use std::time::Duration;

use common::{wait_until, Lab};
use ferry_frr::testing::FrrInstance;
use ferry_frr::{render, Mode};
use ferry_testkit::unique;

#[test]
fn apply_in_custom_dirs_without_pathspace() {
    let mut lab = Lab::new("cd", 2, 1);
    let base = std::env::temp_dir().join(unique("frrdirs"));
    let (conf, run) = (base.join("etc"), base.join("run"));
    let daemons = ["zebra", "staticd", "ospfd"];
    lab.frr.push(FrrInstance::start_in_dirs(
        lab.nodes[0].name(),
        &conf,
        &run,
        &daemons,
        "hostname n0\n",
    ));
    lab.frr.push(FrrInstance::start(
        lab.nodes[1].name(),
        lab.nodes[1].name(),
        &daemons,
        "hostname n1\n",
    ));
    assert_eq!(lab.frr[0].frr.pathspace, None);
    // vtysh.conf starts without a hostname: apply adds it.
    std::fs::write(conf.join("vtysh.conf"), "service integrated-vtysh-config\n").unwrap();

    let specs: Vec<_> = (0..2).map(|i| lab.spec(i, Mode::Ospf)).collect();
    lab.apply_all(&specs);
    let vtysh_conf = std::fs::read_to_string(conf.join("vtysh.conf")).unwrap();
    assert!(vtysh_conf.contains("hostname n0\n"), "{vtysh_conf}");
    // Without a pathspace frr-reload.py leaves frr.conf as written.
    let written = std::fs::read_to_string(conf.join("frr.conf")).unwrap();
    assert_eq!(written, render(&specs[0]));

    let (n0, n1) = (&lab.nodes[0], &lab.nodes[1]);
    let took = wait_until(Duration::from_secs(60), || {
        n0.routes("ospf", false).get(&n1.pod_cidr()) == Some(&n1.ip.to_string())
            && n1.routes("ospf", false).get(&n0.pod_cidr()) == Some(&n0.ip.to_string())
    });
    assert!(took.is_some(), "no adjacency:\n{}", lab.frr[0].logs());
    let learned = lab.frr[0].frr.learned_routes().unwrap();
    assert_eq!(learned.len(), 1, "{learned:?}");
    assert!(!lab.apply(0, &specs[0]).changed);
    drop(lab);
    assert!(!base.join("run").exists() && !conf.exists());
    let _ = std::fs::remove_dir_all(&base);
}
