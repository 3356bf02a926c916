use super::*;
use ferry_netpol::Pod;

fn pod(ns: &str, name: &str, ip: &str, host_network: bool) -> ((String, String), Pod) {
    (
        (ns.into(), name.into()),
        Pod {
            namespace: ns.into(),
            name: name.into(),
            labels: Default::default(),
            ips: vec![ip.parse().unwrap()],
            node: "n1".into(),
            host_network,
            ports: vec![],
        },
    )
}

fn view() -> View {
    let mut v = View::default();
    v.pods.items.extend([
        pod("default", "client", "10.244.1.5", false),
        pod("prod", "web", "10.244.0.7", false),
        pod("kube-system", "proxy", "172.16.0.1", true),
    ]);
    v
}

fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Packet {
    Packet {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        proto: Proto::Tcp(Some(packet::Ports {
            src: sport,
            dst: dport,
        })),
    }
}

#[test]
fn lines_name_pods_and_policies() {
    let v = view();
    let p = tcp("10.244.1.5", 34567, "10.244.0.7", 80);
    let groups = policy_names(&["in/prod/web-from-prod".into(), "in/prod/deny".into()]);
    assert_eq!(
        describe(&v, "in-grp-50219216", Some(&p), Some(groups)),
        "policy drop direction=ingress src=default/client (10.244.1.5:34567) \
         dst=prod/web (10.244.0.7:80) proto=tcp policies=[prod/web-from-prod,prod/deny]"
    );
}

#[test]
fn unknown_addresses_host_network_pods_and_groups_are_plain() {
    let v = view();
    let p = tcp("10.244.0.7", 40000, "172.16.0.1", 443);
    assert_eq!(
        describe(&v, "eg-grp-0000abcd", Some(&p), None),
        "policy drop direction=egress src=prod/web (10.244.0.7:40000) \
         dst=172.16.0.1:443 proto=tcp policies=[? (group eg-grp-0000abcd)]"
    );
    let icmp = Packet {
        proto: Proto::Icmp {
            v6: true,
            kind: Some((128, 0)),
        },
        src: "fd00::1".parse().unwrap(),
        dst: "fd00::2".parse().unwrap(),
    };
    assert_eq!(
        describe(&v, "in-grp-1", Some(&icmp), Some(vec![])),
        "policy drop direction=ingress src=fd00::1 dst=fd00::2 proto=icmpv6 type=128 code=0 policies=[]"
    );
    assert_eq!(
        describe(&v, "x", None, Some(vec!["a/b".into()])),
        "policy drop direction=unknown (no headers copied) policies=[a/b]"
    );
}

#[test]
fn announced_pods_are_named_too() {
    let mut v = view();
    v.announced.insert(
        "ctr_eth0".into(),
        crate::policy::announce::Announced {
            namespace: "default".into(),
            name: "new".into(),
            ips: vec!["10.244.0.9".parse().unwrap()],
        },
    );
    assert_eq!(
        pod_of(&v, "10.244.0.9".parse().unwrap()).as_deref(),
        Some("default/new")
    );
    assert_eq!(pod_of(&v, "10.244.0.10".parse().unwrap()), None);
}

#[test]
fn sequence_gaps_count_lost_messages() {
    assert_eq!(seq_gap(None, 5), 0);
    assert_eq!(seq_gap(Some(5), 6), 0);
    assert_eq!(seq_gap(Some(5), 9), 3);
    assert_eq!(seq_gap(Some(u32::MAX), 1), 1);
    // Numbering started again (a new instance): no loss claimed.
    assert_eq!(seq_gap(Some(900), 0), 0);
}
