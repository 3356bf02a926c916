//! The fast path on real kernel objects, IPv4 (see `common` for the test
//! bed).

mod common;

use common::cases::{self, IPV4};
use common::*;
use ferry_ebpf::FastPath;
use ferry_testkit::ns_exec;

#[test]
fn traffic_leaving_the_cluster_is_still_masqueraded() {
    let mut t = Topo::new();
    t.attach();
    let before = t.stats();
    // Pod A → node B's own address: not a pod, so the stack (and its
    // masquerade rule) handles it.
    let (seen, _) = echo(
        &t.ns("nb"),
        &format!("{NODE_B}:7001"),
        &t.ns("pa"),
        &format!("{NODE_B}:7001"),
        256 << 10,
    );
    assert_eq!(seen.ip().to_string(), NODE_A, "masqueraded to node A");
    let after = t.stats();
    assert_eq!(
        after.forwarded, before.forwarded,
        "non-pod traffic took the fast path"
    );
}

#[test]
fn attach_replaces_and_detach_removes_only_ferrys_filter() {
    let mut t = Topo::new();
    t.attach();
    let ns = open(&t.ns("na"));
    let fp = FastPath::load(&t.pin).expect("reload");
    let new_id = fp.prog_id().unwrap();
    let prog = fp.prog();
    ns.run(|| {
        let mut h = ferry_netlink::Handle::new().unwrap();
        let eth0 = h.link_by_name("eth0").unwrap().unwrap().index;
        h.attach_bpf_ingress(eth0, prog, ferry_ebpf::PROG_NAME)
            .unwrap();
        assert_eq!(
            h.bpf_ingress_prog_id(eth0).unwrap(),
            Some(new_id),
            "replaced in place"
        );
        assert!(h.detach_bpf_ingress(eth0).unwrap());
        assert!(
            !h.detach_bpf_ingress(eth0).unwrap(),
            "second detach finds nothing"
        );
        assert_eq!(h.bpf_ingress_prog_id(eth0).unwrap(), None);
        assert!(!h.detach_bpf_ingress(999_999).unwrap(), "no such link");
    })
    .unwrap();
    // The maps survived the reload: same CIDRs.
    let want: Vec<ipnet::IpNet> = vec![
        "10.244.0.0/16".parse().unwrap(),
        "fd00:10:244::/56".parse().unwrap(),
    ];
    assert_eq!(fp.cidrs().unwrap(), want);
    // The pinned program is the new one.
    let pinned = ferry_ebpf::open_prog(&t.pin).unwrap().unwrap();
    assert_eq!(
        ferry_ebpf::prog_id(std::os::fd::AsFd::as_fd(&pinned)).unwrap(),
        new_id
    );
}

#[test]
fn pod_to_pod_tcp_skips_both_stacks() {
    cases::pod_to_pod_skips_both_stacks(&IPV4);
}

#[test]
fn service_dnat_replies_go_through_conntrack() {
    cases::service_replies_are_tracked(
        &IPV4,
        &[
            "add table ip kp",
            "add chain ip kp pre { type nat hook prerouting priority dstnat; }",
            "add rule ip kp pre ip daddr 10.96.0.10 tcp dport 80 dnat to 10.244.1.5:8080",
        ],
        "10.96.0.10",
    );
}

#[test]
fn a_pod_cannot_borrow_another_pods_address() {
    cases::borrowed_source_gets_nothing_through(&IPV4, |node| {
        for key in [
            "net.ipv4.conf.all.rp_filter=1",
            "net.ipv4.conf.hveth.rp_filter=1",
        ] {
            assert!(ns_exec(node, &["sysctl", "-qw", key]));
        }
    });
}

#[test]
fn an_excluded_destination_goes_through_netfilter() {
    cases::excluded_pod_goes_through_netfilter(&IPV4, IPV4.pod_b);
}

#[test]
fn an_excluded_source_goes_through_netfilter() {
    cases::excluded_pod_goes_through_netfilter(&IPV4, IPV4.pod_a);
}
