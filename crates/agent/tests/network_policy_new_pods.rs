//! Policy holds from a new pod's first packet. The kubelet writes a pod's
//! address into the API a second or so after its sandbox is up, too late
//! for a pod whose egress a policy denies: its first connections would
//! pass. So the plugin's ADD announces the pod to ferryd (`policyDir` in
//! the conflist) and returns only once a ruleset with its address is in
//! the kernel. Here the Pod object is in the API without an address (as
//! the kubelet leaves it while making the sandbox), the pod is made
//! through the installed conflist like the kubelet would, and its very
//! first connect is refused; a pod no policy selects connects at once.
//!
//! With ferryd down, ADD does not wait for an answer that cannot come
//! (the lock ferryd holds on `policyDir/ferryd.lock` is free): the pod
//! starts at once, and the policy covers it once ferryd is back.

mod common;

use std::time::{Duration, Instant};

use common::policy::{connects, put_namespace, put_pod, put_policy, serve};
use common::Lab;
use serde_json::json;

/// A Pod as the API shows it while the kubelet makes its sandbox.
fn put_pending_pod(lab: &Lab, name: &str, app: &str) {
    lab.store()
        .put(json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "spec": {"nodeName": "k8s-1", "containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Pending"}
        }))
        .unwrap();
}

#[test]
fn a_new_pod_is_isolated_from_its_first_packet() {
    let mut lab = Lab::new("npnew", 1, &[]);
    lab.nodes[0].flags.push("--fast-path=false".into());
    put_namespace(&lab.store(), "default", json!({}));
    lab.start_all();
    lab.nodes[0].wait_ready();
    let (web_ns, web_ip) = lab.nodes[0].add_pod("web");
    put_pod(
        &lab.store(),
        "default",
        "web",
        "k8s-1",
        &web_ip,
        json!({"app": "web"}),
    );
    let _http = serve(&web_ns, 8080);
    put_policy(
        &lab.store(),
        "default",
        "clients-no-egress",
        json!({"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]}),
    );
    let dir = lab.nodes[0].policy_dir();
    // The conflist tells the plugin where to announce.
    let conflist = std::fs::read_to_string(lab.nodes[0].conflist()).unwrap();
    assert!(conflist.contains(&format!("\"policyDir\": \"{}\"", dir.display())));

    put_pending_pod(&lab, "client", "client");
    put_pending_pod(&lab, "other", "other");
    // Give the watch time to bring both Pods (the scheduler binds a pod
    // before the kubelet starts it).
    std::thread::sleep(Duration::from_millis(300));

    let t = Instant::now();
    let (client_ns, _) = lab.nodes[0].add_pod("client");
    let add = t.elapsed();
    assert!(
        dir.join("ctr-client_eth0.synced").exists(),
        "ferryd answered the announcement"
    );
    assert!(
        !connects(&client_ns, &web_ip, 8080),
        "the new pod's first connect passed its egress policy"
    );
    let (other_ns, _) = lab.nodes[0].add_pod("other");
    assert!(
        connects(&other_ns, &web_ip, 8080),
        "a pod no policy selects connects at once"
    );
    eprintln!("ADD with the announcement took {add:?}");

    // ferryd down: the rules stay, ADD does not wait for it.
    lab.nodes[0].stop_ferryd();
    put_pending_pod(&lab, "late", "client");
    let t = Instant::now();
    let (late_ns, _) = lab.nodes[0].add_pod("late");
    let add_down = t.elapsed();
    eprintln!("ADD with ferryd down took {add_down:?}");
    assert!(
        add_down < Duration::from_secs(2),
        "ADD waited {add_down:?} for a ferryd that is not running"
    );
    assert!(dir.join("ctr-late_eth0.json").exists());
    assert!(!dir.join("ctr-late_eth0.synced").exists());
    assert!(
        !connects(&client_ns, &web_ip, 8080),
        "the rules stay while ferryd is down"
    );

    // Back: it answers the announcement left behind, and its policy
    // covers the pod made while it was away.
    let kc = lab.kubeconfig.clone();
    lab.nodes[0].start_ferryd(&kc);
    common::wait_for(Duration::from_secs(30), "ferryd answers ctr-late", || {
        dir.join("ctr-late_eth0.synced").exists().then_some(())
    });
    assert!(
        !connects(&late_ns, &web_ip, 8080),
        "the pod made while ferryd was down is isolated once it is back"
    );
}
