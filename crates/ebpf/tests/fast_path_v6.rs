//! The fast path on real kernel objects, IPv6 (see `common` for the test
//! bed and the shared test bodies).

mod common;

use common::cases::{self, IPV6};
use common::nft;

#[test]
fn pod_to_pod_tcp_over_ipv6_skips_both_stacks() {
    cases::pod_to_pod_skips_both_stacks(&IPV6);
}

#[test]
fn ipv6_service_dnat_replies_go_through_conntrack() {
    cases::service_replies_are_tracked(
        &IPV6,
        &[
            "add table ip6 kp",
            "add chain ip6 kp pre { type nat hook prerouting priority dstnat; }",
            "add rule ip6 kp pre ip6 daddr fd00:96::10 tcp dport 80 dnat to [fd00:10:244:1::5]:8080",
        ],
        "fd00:96::10",
    );
}

#[test]
fn a_pod_cannot_borrow_another_pods_ipv6_address() {
    // IPv6 has no rp_filter sysctl; an nft rpfilter rule does it, as on a
    // hardened node.
    cases::borrowed_source_gets_nothing_through(&IPV6, |node| {
        nft(
            node,
            &[
                "add table ip6 rpf",
                "add chain ip6 rpf pre { type filter hook prerouting priority raw; }",
                "add rule ip6 rpf pre iifname hveth fib saddr . iif oif missing drop",
            ],
        );
    });
}

#[test]
fn an_excluded_ipv6_destination_goes_through_netfilter() {
    cases::excluded_pod_goes_through_netfilter(&IPV6, IPV6.pod_b);
}

#[test]
fn an_excluded_ipv6_source_goes_through_netfilter() {
    cases::excluded_pod_goes_through_netfilter(&IPV6, IPV6.pod_a);
}
