use super::*;
use serde_json::json;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn parse(v: Value) -> Result<IpamConfig, ConfigError> {
    IpamConfig::from_value(&v, "mynet")
}

#[test]
fn defaults_v4() {
    let cfg =
        parse(json!({"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]]})).unwrap();
    let r = &cfg.ranges[0].ranges[0];
    assert_eq!(r.subnet.to_string(), "10.244.0.0/24");
    assert_eq!(r.range_start, ip("10.244.0.1"));
    assert_eq!(r.range_end, ip("10.244.0.254"));
    assert_eq!(r.gateway, ip("10.244.0.1"));
    assert_eq!(cfg.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert_eq!(cfg.state_dir(), PathBuf::from("/run/ferry/ipam/mynet"));
    assert!(cfg.routes.is_empty());
    assert_eq!(cfg.ranges[0].to_string(), "10.244.0.1-10.244.0.254");
}

#[test]
fn defaults_v6() {
    let cfg = parse(json!({"ranges": [[{"subnet": "2001:db8::/64"}]]})).unwrap();
    let r = &cfg.ranges[0].ranges[0];
    assert_eq!(r.range_start, ip("2001:db8::1"));
    assert_eq!(r.range_end, ip("2001:db8::ffff:ffff:ffff:ffff"));
    assert_eq!(r.gateway, ip("2001:db8::1"));
}

/// host-local README's main example.
#[test]
fn host_local_readme_example() {
    let cfg = parse(json!({
        "type": "host-local",
        "ranges": [
            [
                {"subnet": "10.10.0.0/16", "rangeStart": "10.10.1.20",
                 "rangeEnd": "10.10.3.50", "gateway": "10.10.0.254"},
                {"subnet": "172.16.5.0/24"}
            ],
            [{"subnet": "3ffe:ffff:0:01ff::/64",
              "rangeStart": "3ffe:ffff:0:01ff::0010", "rangeEnd": "3ffe:ffff:0:01ff::0020"}]
        ],
        "routes": [
            {"dst": "0.0.0.0/0"},
            {"dst": "192.168.0.0/16", "gw": "10.10.5.1"},
            {"dst": "3ffe:ffff:0:01ff::1/64"}
        ],
        "dataDir": "/run/my-orchestrator/container-ipam-state"
    }))
    .unwrap();
    assert_eq!(cfg.ranges.len(), 2);
    let a = &cfg.ranges[0].ranges[0];
    assert_eq!(a.range_start, ip("10.10.1.20"));
    assert_eq!(a.range_end, ip("10.10.3.50"));
    assert_eq!(a.gateway, ip("10.10.0.254"));
    assert_eq!(cfg.ranges[0].ranges[1].gateway, ip("172.16.5.1"));
    let v6 = &cfg.ranges[1].ranges[0];
    assert_eq!(v6.range_start, ip("3ffe:ffff:0:1ff::10"));
    assert_eq!(v6.range_end, ip("3ffe:ffff:0:1ff::20"));
    assert_eq!(
        cfg.ranges[0].to_string(),
        "10.10.1.20-10.10.3.50,172.16.5.1-172.16.5.254"
    );
    assert_eq!(cfg.routes.len(), 3);
    assert_eq!(cfg.routes[1].gw, Some(ip("10.10.5.1")));
    assert_eq!(cfg.routes[0].gw, None);
    assert_eq!(
        cfg.data_dir,
        PathBuf::from("/run/my-orchestrator/container-ipam-state")
    );
    assert_eq!(cfg.range_set_for(ip("172.16.5.9")), Some(0));
    assert_eq!(cfg.range_set_for(ip("3ffe:ffff:0:1ff::15")), Some(1));
    assert_eq!(cfg.range_set_for(ip("10.10.0.5")), None); // before rangeStart
}

#[test]
fn legacy_top_level_range_comes_first() {
    let cfg = parse(json!({
        "subnet": "10.1.2.0/24", "rangeStart": "10.1.2.9", "rangeEnd": "10.1.2.40",
        "gateway": "10.1.2.30",
        "ranges": [[{"subnet": "fd00::/120"}]]
    }))
    .unwrap();
    assert_eq!(cfg.ranges.len(), 2);
    let r = &cfg.ranges[0].ranges[0];
    assert_eq!(
        (r.range_start, r.range_end, r.gateway),
        (ip("10.1.2.9"), ip("10.1.2.40"), ip("10.1.2.30"))
    );
    assert!(cfg.ranges[1].ranges[0].subnet.addr().is_ipv6());

    let only = parse(json!({"subnet": "10.1.2.0/24"})).unwrap();
    assert_eq!(only.ranges.len(), 1);
}

#[test]
fn empty_data_dir_means_default() {
    let cfg = parse(json!({"subnet": "10.1.2.0/24", "dataDir": ""})).unwrap();
    assert_eq!(cfg.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
}

fn err(v: Value) -> ConfigError {
    parse(v).expect_err("config should be rejected")
}

#[test]
fn invalid_configs() {
    let r = |range: Value| json!({"ranges": [[range]]});
    assert!(matches!(err(json!({})), ConfigError::NoRanges));
    assert!(matches!(err(json!({"ranges": []})), ConfigError::NoRanges));
    assert!(matches!(
        err(json!({"ranges": [[]]})),
        ConfigError::EmptyRangeSet { set: 0 }
    ));
    assert!(matches!(err(json!({"ranges": "x"})), ConfigError::Json(_)));
    assert!(matches!(err(r(json!({}))), ConfigError::Json(_)));
    assert!(matches!(
        err(r(json!({"subnet": "10.0.0.0/33"}))),
        ConfigError::InvalidSubnet { .. }
    ));
    assert!(matches!(
        err(r(json!({"subnet": "banana"}))),
        ConfigError::InvalidSubnet { .. }
    ));
    assert!(matches!(
        err(r(json!({"subnet": "10.0.0.5/24"}))),
        ConfigError::HostBitsSet { .. }
    ));
    assert!(matches!(
        err(r(json!({"subnet": "10.0.0.0/31"}))),
        ConfigError::SubnetTooSmall { .. }
    ));
    assert!(matches!(
        err(r(json!({"subnet": "fd00::/127"}))),
        ConfigError::SubnetTooSmall { .. }
    ));
    assert!(matches!(
        err(r(
            json!({"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.x"})
        )),
        ConfigError::InvalidAddress {
            field: "rangeStart",
            ..
        }
    ));
    assert!(matches!(
        err(r(
            json!({"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.1"})
        )),
        ConfigError::NotInSubnet {
            field: "rangeStart",
            ..
        }
    ));
    assert!(matches!(
        err(r(json!({"subnet": "10.0.0.0/24", "rangeEnd": "10.0.1.1"}))),
        ConfigError::NotInSubnet {
            field: "rangeEnd",
            ..
        }
    ));
    assert!(matches!(
        err(r(json!({"subnet": "10.0.0.0/24", "gateway": "fd00::1"}))),
        ConfigError::NotInSubnet {
            field: "gateway",
            ..
        }
    ));
    assert!(matches!(
        err(r(
            json!({"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.8"})
        )),
        ConfigError::StartAfterEnd { .. }
    ));
    assert!(matches!(
        err(json!({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "fd00::/64"}]]})),
        ConfigError::MixedFamilies { set: 0, .. }
    ));
    assert!(matches!(
        err(json!({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "10.0.0.0/25"}]]})),
        ConfigError::Overlap { .. }
    ));
    assert!(matches!(
        err(json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.128/25"}]]})),
        ConfigError::Overlap { .. }
    ));
    assert!(matches!(
        err(json!({"subnet": "10.0.0.0/24", "routes": [{"dst": "nope"}]})),
        ConfigError::InvalidRoute { .. }
    ));
    assert!(matches!(
        err(json!({"subnet": "10.0.0.0/24", "routes": [{"dst": "0.0.0.0/0", "gw": "fd00::1"}]})),
        ConfigError::InvalidRoute { .. }
    ));
}

#[test]
fn disjoint_ranges_in_one_subnet_are_fine() {
    let cfg = parse(json!({"ranges": [[
        {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.19"},
        {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.20", "rangeEnd": "10.0.0.29"}
    ]]}));
    assert!(cfg.is_ok(), "{cfg:?}");
}

#[test]
fn network_names() {
    for bad in ["", ".", "..", "a/b", "/abs", "x\0y"] {
        let e = IpamConfig::from_value(&json!({"subnet": "10.0.0.0/24"}), bad).unwrap_err();
        assert!(
            matches!(e, ConfigError::InvalidNetworkName { .. }),
            "{bad:?}: {e}"
        );
    }
    for good in ["k8s-pod-network", "net.1", "..."] {
        assert!(validate_network_name(good).is_ok(), "{good}");
    }
}

#[test]
fn error_messages_name_the_offending_value() {
    let e = err(json!({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.9.9.9"}]]}));
    let msg = e.to_string();
    assert!(
        msg.contains("10.9.9.9") && msg.contains("10.0.0.0/24"),
        "{msg}"
    );
}

#[test]
fn requested_ips_from_cni_args_and_runtime() {
    let got = parse_requested_ips(
        Some("IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.0.0.5, 10.0.0.6/24,fd00::7"),
        &["10.0.0.5/24", "fd00::8"],
    )
    .unwrap();
    assert_eq!(
        got,
        vec![ip("10.0.0.5"), ip("10.0.0.6"), ip("fd00::7"), ip("fd00::8")]
    );
    assert!(parse_requested_ips::<&str>(None, &[]).unwrap().is_empty());
    assert!(parse_requested_ips::<&str>(Some("IP="), &[])
        .unwrap()
        .is_empty());
    assert!(matches!(
        parse_requested_ips::<&str>(Some("IP=10.0.0.300"), &[]),
        Err(ConfigError::InvalidRequestedIp { .. })
    ));
    assert!(matches!(
        parse_requested_ips(None, &["10.0.0.1/99"]),
        Err(ConfigError::InvalidRequestedIp { .. })
    ));
}

#[test]
fn requested_ips_from_a_whole_netconf() {
    let netconf = json!({
        "name": "n", "type": "ferry",
        "runtimeConfig": {"ips": ["10.0.0.9/24"]},
        "args": {"cni": {"ips": ["fd00::9"]}}
    });
    let got = requested_ips_from_netconf(&netconf, Some("IP=10.0.0.9")).unwrap();
    assert_eq!(got, vec![ip("10.0.0.9"), ip("fd00::9")]);
    let bad = json!({"runtimeConfig": {"ips": [5]}});
    assert!(requested_ips_from_netconf(&bad, None).is_err());
}
