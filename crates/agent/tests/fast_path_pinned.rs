//! The fast path `ferryd prepare` pins for ferryd. On a kernel with
//! `nf_conntrack` as a module, only a `CAP_SYS_ADMIN` process can load the
//! program (it needs the module's BTF fd), so the privileged `prepare`
//! loads and pins it and `ferryd run`, with just the capabilities the
//! manifests grant, uses that pin when it is this build's program. This
//! kernel has conntrack built in, so ferryd could load its own here: the
//! tests prove which program runs by its kernel id.
//!
//! One node netns, `prepare` as root (privileged, as in the manifests),
//! then `ferryd run` under `setpriv` with the manifests' capabilities
//! only, two pods through the installed conflist, TCP through the node.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::policy::{add_api_pod, expect, put_namespace, put_policy, serve};
use common::{wait_for, BpfFs, Lab, LabNode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// `ferry_deploy::pod::agent_capabilities(Routing::Direct)`: what the
/// manifests give ferryd's container.
const CAPS: &str = "-all,+net_admin,+bpf";
/// The same as a capability mask: CAP_NET_ADMIN (12), CAP_BPF (39).
const CAP_MASK: u64 = (1 << 12) | (1 << 39);

/// Starts the node's ferryd with exactly [`CAPS`] (root's others dropped
/// from the bounding set, so the exec leaves it only these) and waits
/// until it is ready; checks what it runs with.
fn start_with_manifest_caps(lab: &mut Lab) {
    let kc = lab.kubeconfig.clone();
    let n = &mut lab.nodes[0];
    n.wrapper = [
        "setpriv",
        "--bounding-set",
        CAPS,
        "--inh-caps",
        "-all",
        "--",
    ]
    .map(String::from)
    .to_vec();
    n.start_ferryd(&kc);
    n.wait_ready();
    let status = std::fs::read_to_string(format!("/proc/{}/status", n.ferryd_pid().unwrap()))
        .expect("ferryd's status");
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap());
    assert_eq!(eff, Some(CAP_MASK), "ferryd's effective capabilities");
}

fn pins(lab: &Lab) -> PathBuf {
    lab.nodes[0].bpf_dir()
}

/// The kernel id of the program pinned in `dir`.
fn pinned_id(dir: &Path) -> u32 {
    let prog = ferry_ebpf::open_prog(dir)
        .expect("open the pin")
        .expect("a program is pinned");
    ferry_ebpf::prog_id(std::os::fd::AsFd::as_fd(&prog)).unwrap()
}

fn forwarded(lab: &Lab) -> u64 {
    ferry_ebpf::pinned_stats(&pins(lab))
        .expect("read the pinned stats")
        .expect("the fast path is pinned")
        .forwarded
}

/// Runs `ferryd prepare` (as root: privileged); returns the id it pinned.
fn prepare(lab: &Lab) -> u32 {
    let n = &lab.nodes[0];
    let (ok, out, err) = n.ferryd_cmd(&lab.kubeconfig, "prepare");
    assert!(ok, "prepare failed:\n{out}\n{err}");
    let id = pinned_id(&n.bpf_dir());
    assert!(out.contains(&format!("fast_path: Some({id})")), "{out}");
    assert!(
        err.contains(&format!("loaded and pinned (id {id})")),
        "{err}"
    );
    id
}

/// Waits until eth0 runs program `id`, the one ferryd attaches.
fn expect_attached(n: &LabNode, id: u32) {
    wait_for(WAIT, &format!("eth0 runs program {id}"), || {
        n.eth0_filters()
            .contains(&format!(" id {id} "))
            .then_some(())
    });
}

/// Two pods (in the API too, for NetworkPolicy), a server in each:
/// (client netns, web netns, web's address).
fn pods(lab: &mut Lab) -> (String, String, String) {
    put_namespace(&lab.store(), "default", json!({}));
    let mut out = Vec::new();
    for name in ["web", "client"] {
        out.push(add_api_pod(lab, 0, name, json!({ "app": name })));
    }
    let [(web_ns, web_ip), (client_ns, _)] = <[_; 2]>::try_from(out).unwrap();
    (client_ns, web_ns, web_ip)
}

/// The fast path carries a client→web flow: the counter rises.
fn takes_the_fast_path(lab: &Lab, client_ns: &str, web_ip: &str, what: &str) {
    let before = forwarded(lab);
    expect(client_ns, web_ip, 8080, true, what);
    assert!(
        forwarded(lab) > before,
        "{what}: the fast path forwarded nothing\n{}",
        lab.logs()
    );
}

#[test]
fn ferryd_with_the_manifests_capabilities_runs_the_program_prepare_pinned() {
    let bpffs = BpfFs::new("fpprep");
    let mut lab = Lab::new("fpprep", 1, &[]);
    lab.nodes[0].bpf_root = bpffs.0.clone();
    let id = prepare(&lab);

    start_with_manifest_caps(&mut lab);
    let using = format!("eBPF fast path: using the program ferryd prepare pinned (id {id})");
    let log = lab.nodes[0].log();
    assert!(log.contains(&using), "{log}");
    assert!(!log.contains("eBPF fast path: loaded"), "{log}");
    assert_eq!(pinned_id(&pins(&lab)), id, "the pin is left as it was");
    expect_attached(&lab.nodes[0], id);

    let (client_ns, web_ns, web_ip) = pods(&mut lab);
    let _http = serve(&web_ns, 8080);
    takes_the_fast_path(&lab, &client_ns, &web_ip, "pods across the node");
    assert_eq!(lab.nodes[0].metric("ferry_fast_path_enabled"), Some(1.0));
    let (ok, out, err) = lab.nodes[0].ferryd_cmd(&lab.kubeconfig, "status");
    assert!(
        ok && out.contains("fast path:  forwarded ") && out.contains("eth0"),
        "status:\n{out}\n{err}"
    );

    // A policy isolates web: excluded in the pinned maps. A restarted
    // ferryd (no prepare in between, as when only its container restarts)
    // takes the same program and maps: the exclusion holds throughout and
    // the counters go on.
    put_policy(
        &lab.store(),
        "default",
        "web-deny-in",
        json!({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}),
    );
    expect(&client_ns, &web_ip, 8080, false, "ingress denied");
    let web: IpAddr = web_ip.parse().unwrap();
    let dir = pins(&lab);
    let excluded = || ferry_ebpf::pinned_excluded(&dir).unwrap().unwrap();
    wait_for(WAIT, "web excluded", || {
        (excluded() == BTreeSet::from([web])).then_some(())
    });
    let counted = forwarded(&lab);
    lab.nodes[0].stop_ferryd();
    start_with_manifest_caps(&mut lab);
    assert_eq!(excluded(), BTreeSet::from([web]), "{}", lab.logs());
    let log = lab.nodes[0].log();
    assert_eq!(log.matches(&using).count(), 2, "{log}");
    assert!(!log.contains("eBPF fast path: loaded"), "{log}");
    assert!(forwarded(&lab) >= counted, "the counters were kept");
    expect(
        &client_ns,
        &web_ip,
        8080,
        false,
        "still denied after restart",
    );
    assert_eq!(excluded(), BTreeSet::from([web]));
    lab.store()
        .remove(
            ferry_apiserver::Kind::NetworkPolicy,
            "default",
            "web-deny-in",
        )
        .unwrap();
    wait_for(WAIT, "no exclusions", || {
        excluded().is_empty().then_some(())
    });
    takes_the_fast_path(&lab, &client_ns, &web_ip, "after the restart");
    assert_eq!(pinned_id(&pins(&lab)), id);
    expect_attached(&lab.nodes[0], id);
}

#[test]
fn a_pinned_program_of_another_build_is_replaced_by_ferryds_own() {
    let bpffs = BpfFs::new("fpother");
    let mut lab = Lab::new("fpother", 1, &[]);
    lab.nodes[0].bpf_root = bpffs.0.clone();
    prepare(&lab);
    // Another build's program under the same pin (an upgrade whose
    // prepare has not run yet): one that hands every packet to the stack,
    // over none of the maps.
    let other = ferry_ebpf::pin_stand_in(&pins(&lab), "ferry_000000000").unwrap();
    assert_eq!(pinned_id(&pins(&lab)), other);

    start_with_manifest_caps(&mut lab);
    let id = pinned_id(&pins(&lab));
    assert_ne!(id, other, "ferryd used another build's program");
    let log = lab.nodes[0].log();
    let loaded = format!(
        "eBPF fast path: loaded (id {id}; the pinned program (id {other}) is \"ferry_000000000\""
    );
    assert!(log.contains(&loaded), "{log}");
    assert!(!log.contains("using the program"), "{log}");
    expect_attached(&lab.nodes[0], id);

    let (client_ns, web_ns, web_ip) = pods(&mut lab);
    let _http = serve(&web_ns, 8080);
    takes_the_fast_path(&lab, &client_ns, &web_ip, "ferryd's own program");
}
