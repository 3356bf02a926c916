//! NetworkPolicy with the eBPF fast path on: the fast path forwards
//! pod↔pod flows past netfilter, so a pod a policy isolates must leave it
//! (ferryd writes its address into the pinned maps as excluded) or the
//! policy table would never see its packets. One node netns running
//! `ferryd run --network-policy=true` with the fast path on (the pods on
//! one node: the program redirects between their veths), real pods made
//! through the installed conflist, TCP connects through the table.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::policy::{add_api_pod, connects, expect, put_namespace, put_policy, serve};
use common::{wait_for, BpfFs, Lab};
use ferry_apiserver::Kind;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn pins(lab: &Lab) -> PathBuf {
    lab.nodes[0].bpf_dir()
}

fn excluded(lab: &Lab) -> BTreeSet<IpAddr> {
    ferry_ebpf::pinned_excluded(&pins(lab))
        .expect("read the pinned maps")
        .expect("the fast path is pinned")
}

fn forwarded(lab: &Lab) -> u64 {
    ferry_ebpf::pinned_stats(&pins(lab))
        .expect("read the pinned stats")
        .expect("the fast path is pinned")
        .forwarded
}

#[test]
fn isolated_pods_leave_the_fast_path_both_ways() {
    let bpffs = BpfFs::new("npfp");
    let mut lab = Lab::new("npfp", 1, &[]);
    lab.nodes[0].bpf_root = bpffs.0.clone();
    put_namespace(&lab.store(), "default", json!({}));
    lab.start_all();
    lab.nodes[0].wait_ready();
    let mut pods = Vec::new();
    for name in ["web", "client"] {
        pods.push(add_api_pod(&mut lab, 0, name, json!({ "app": name })));
    }
    let [(web_ns, web_ip), (client_ns, client_ip)] = <[_; 2]>::try_from(pods).unwrap();
    let _http = serve(&web_ns, 8080);
    let _back = serve(&client_ns, 8080);
    let web: IpAddr = web_ip.parse().unwrap();
    let client: IpAddr = client_ip.parse().unwrap();

    // Without policy the fast path carries the flow (the proof that it
    // would bypass the table).
    let before = forwarded(&lab);
    expect(&client_ns, &web_ip, 8080, true, "no policy yet");
    assert!(forwarded(&lab) > before, "the fast path forwarded nothing");
    assert!(excluded(&lab).is_empty());

    // Ingress isolation of web: excluded, and the table's drop holds.
    put_policy(
        &lab.store(),
        "default",
        "web-deny-in",
        json!({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}),
    );
    expect(
        &client_ns,
        &web_ip,
        8080,
        false,
        "ingress denied with the fast path on",
    );
    assert_eq!(excluded(&lab), BTreeSet::from([web]));
    assert!(connects(&web_ns, &client_ip, 8080), "web's egress is open");

    // Egress isolation of client instead: excluded as a source.
    lab.store()
        .remove(Kind::NetworkPolicy, "default", "web-deny-in")
        .unwrap();
    put_policy(
        &lab.store(),
        "default",
        "client-deny-out",
        json!({"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]}),
    );
    expect(
        &client_ns,
        &web_ip,
        8080,
        false,
        "egress denied with the fast path on",
    );
    wait_for(WAIT, "only client excluded", || {
        (excluded(&lab) == BTreeSet::from([client])).then_some(())
    });

    // No policy left: nobody excluded, the fast path carries it again.
    lab.store()
        .remove(Kind::NetworkPolicy, "default", "client-deny-out")
        .unwrap();
    expect(&client_ns, &web_ip, 8080, true, "every policy deleted");
    wait_for(WAIT, "no exclusions", || {
        excluded(&lab).is_empty().then_some(())
    });
    let before = forwarded(&lab);
    expect(&client_ns, &web_ip, 8080, true, "fast again");
    assert!(
        forwarded(&lab) > before,
        "the fast path did not take the flow back"
    );
}
