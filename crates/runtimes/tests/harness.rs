//! The guards clean up after a test that never got to its own cleanup:
//! live sandboxes, a containerd that died, running podman containers.

use std::path::Path;

use ferry_runtimes::containerd::host_cached_results;
use ferry_runtimes::look::ferry_veths;
use ferry_runtimes::procs::{kill_pid, mounts_under, pids_with_arg};
use ferry_runtimes::{pod_config, Containerd, Podman};
use ferry_testkit::Node;

fn assert_gone(dir: &Path) {
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert_eq!(mounts_under(dir), Vec::<std::path::PathBuf>::new());
    let needle = dir.display().to_string();
    assert_eq!(pids_with_arg(&needle), Vec::<i32>::new(), "processes left");
}

#[test]
fn dropping_containerd_removes_live_sandboxes() {
    let node = Node::new("hd1");
    let ctrd = Containerd::with_ferry(&node.path, &node.data_dir, false).expect("containerd");
    let cri = ctrd.cri().expect("client");
    let id = cri.run_pod(&pod_config("left")).expect("RunPodSandbox");
    let netns = cri.pod_status(&id).expect("status").netns.expect("netns");
    assert!(netns.starts_with(&ctrd.dir), "{}", netns.display());
    assert_eq!(ferry_veths(&node).len(), 1);
    let dir = ctrd.dir.clone();
    drop(cri);
    drop(ctrd);
    assert_gone(&dir);
    // The sandbox went through CRI: ferry's DEL ran.
    assert!(ferry_veths(&node).is_empty());
    assert!(node.reserved_ips().is_empty());
}

#[test]
fn dropping_a_dead_containerd_still_removes_its_containers() {
    let node = Node::new("hd2");
    let ctrd = Containerd::with_ferry(&node.path, &node.data_dir, false).expect("containerd");
    let cri = ctrd.cri().expect("client");
    let id = cri.run_pod(&pod_config("orphan")).expect("RunPodSandbox");
    let pause = cri.pod_status(&id).expect("status").pid.expect("pause pid");
    // The orphan's cache entry is in containerd's own dir, gone with it.
    assert!(ctrd.cached_results().iter().any(|n| n.contains(&id)));
    drop(cri);
    kill_pid(ctrd.pid().expect("running") as i32);
    let dir = ctrd.dir.clone();
    drop(ctrd);
    assert_gone(&dir);
    assert_eq!(host_cached_results(&id), Vec::<String>::new());
    assert!(
        !Path::new(&format!("/proc/{pause}")).exists()
            || std::fs::read_to_string(format!("/proc/{pause}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true),
        "the pause process {pause} survived"
    );
}

#[test]
fn dropping_podman_removes_running_containers() {
    let node = Node::new("hd3");
    let podman = Podman::with_ferry(&node.path, &node.data_dir, false).expect("podman");
    podman
        .run_detached("stays", &[], &["sleep", "600"])
        .expect("podman run");
    let netns = podman
        .run(&["inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "stays"])
        .expect("inspect");
    let netns = netns.trim().to_string();
    assert!(Path::new(&netns).exists(), "{netns}");
    assert_eq!(ferry_veths(&node).len(), 1);
    let dir = podman.dir.clone();
    drop(podman);
    assert_gone(&dir);
    assert!(!Path::new(&netns).exists(), "{netns} left behind");
    assert!(ferry_veths(&node).is_empty());
    assert!(node.reserved_ips().is_empty());
}
