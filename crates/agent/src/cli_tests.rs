use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("ferryd").chain(args.iter().copied()))
}

#[test]
fn defaults() {
    let cli = parse(&[]).unwrap();
    assert_eq!(cli.subcommand(), Command::Run);
    let o = &cli.opts;
    assert_eq!(o.routing, Routing::Direct);
    assert_eq!(o.advertise, Advertise::Aggregate);
    assert_eq!(o.cni_bin_dir, PathBuf::from("/opt/cni/bin"));
    assert_eq!(o.cni_conf_dir, PathBuf::from("/etc/cni/net.d"));
    assert_eq!(o.ipam_data_dir, PathBuf::from("/run/ferry/ipam"));
    assert_eq!(o.metrics_addr, "127.0.0.1:9654".parse().unwrap());
    assert_eq!(o.resync_interval, Duration::from_secs(60));
    assert_eq!(o.ospf_audit_interval, Duration::from_secs(30));
    assert!(o.ospf_audit_settle > Duration::from_secs(ferry_frr::OSPF_GRACE_PERIOD.into()));
    assert_eq!(o.bgp_asn, 64512);
    assert!(o.cluster_cidr.is_empty());
    assert_eq!(o.mtu, None);
    assert_eq!(o.cni_version, "1.0.0");
    assert!(o.ipam_gc);
    assert!(!o.policy_log, "the drop log is opt-in");
    assert_eq!(o.cri_socket, None);
    assert_eq!(o.ipam_gc_grace, Duration::from_secs(120));
    assert_eq!(o.ipam_gc_interval, Duration::from_secs(300));
    assert_eq!(
        o.conflist_path(),
        PathBuf::from("/etc/cni/net.d/10-ferry.conflist")
    );
}

#[test]
fn subcommands_take_the_same_flags_before_or_after() {
    for cmd in ["run", "install", "status", "uninstall"] {
        let cli = parse(&[cmd, "--routing", "ospf", "--cni-bin-dir", "/x"]).unwrap();
        assert_eq!(cli.opts.routing, Routing::Ospf, "{cmd}");
        assert_eq!(cli.opts.cni_bin_dir, PathBuf::from("/x"));
        let cli = parse(&["--routing", "bgp", cmd]).unwrap();
        assert_eq!(cli.opts.routing, Routing::Bgp, "{cmd}");
    }
    assert_eq!(parse(&["status"]).unwrap().subcommand(), Command::Status);
    assert_eq!(parse(&["prepare"]).unwrap().subcommand(), Command::Prepare);
    assert_eq!(
        parse(&["uninstall"]).unwrap().subcommand(),
        Command::Uninstall
    );
    assert!(parse(&["frobnicate"]).is_err());
}

#[test]
fn gc_once_with_its_socket_and_grace() {
    let cli = parse(&[
        "gc",
        "--cri-socket",
        "/run/k3s/containerd/containerd.sock",
        "--ipam-gc-grace",
        "10s",
    ])
    .unwrap();
    assert_eq!(cli.subcommand(), Command::Gc);
    let s = crate::ipam_gc::Settings::from_opts(&cli.opts);
    assert_eq!(
        s.socket,
        Some(PathBuf::from("/run/k3s/containerd/containerd.sock"))
    );
    assert_eq!(s.grace, Duration::from_secs(10));
    assert_eq!(s.network, crate::NETWORK_NAME);
    let off = parse(&["--ipam-gc=false", "--cri-socket", "/x.sock"]).unwrap();
    assert_eq!(crate::ipam_gc::Settings::from_opts(&off.opts).socket, None);
    assert!(parse(&["--ipam-gc-grace", "0s"]).is_err());
}

#[test]
fn cluster_cidrs_repeat_and_split() {
    let cli = parse(&[
        "--cluster-cidr",
        "10.244.0.0/16,fd00:10:244::/56",
        "--cluster-cidr",
        "10.96.0.0/12",
    ])
    .unwrap();
    let got: Vec<String> = cli
        .opts
        .cluster_cidr
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(got, ["10.244.0.0/16", "fd00:10:244::/56", "10.96.0.0/12"]);
    assert!(parse(&["--cluster-cidr", "10.244.0.0/33"]).is_err());
}

#[test]
fn bad_values_are_refused() {
    assert!(parse(&["--routing", "vxlan"]).is_err());
    assert!(parse(&["--advertise", "everything"]).is_err());
    assert!(parse(&["--mtu", "100"]).is_err());
    assert!(parse(&["--mtu", "9000"]).is_ok());
    assert!(parse(&["--metrics-addr", "localhost"]).is_err());
    assert!(parse(&["--resync-interval", "0s"]).is_err());
    assert!(parse(&["--cni-version", "0.4.0"]).is_err());
    assert_eq!(
        parse(&["--cni-version", "1.0.0"]).unwrap().opts.cni_version,
        "1.0.0"
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
    assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
    assert!(parse_duration("5d").is_err());
    assert!(parse_duration("m").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn every_flag_has_a_ferry_env_var() {
    let flags = flags();
    let names: Vec<&str> = flags.iter().map(|f| f.long.as_str()).collect();
    for required in [
        "kubeconfig",
        "node-name",
        "routing",
        "cluster-cidr",
        "cni-bin-dir",
        "cni-conf-dir",
        "ipam-data-dir",
        "metrics-addr",
        "advertise",
        "ospf-auth-key-file",
        "bgp-password-file",
        "bgp-asn",
        "frr-conf-dir",
        "frr-run-dir",
        "frr-pathspace",
        "plugin-source-dir",
        "resync-interval",
        "mtu",
    ] {
        assert!(names.contains(&required), "missing --{required}");
    }
    for f in &flags {
        let want = format!("FERRY_{}", f.long.to_uppercase().replace('-', "_"));
        assert_eq!(f.env.as_deref(), Some(want.as_str()), "--{}", f.long);
        assert!(!f.help.is_empty(), "--{} has no help", f.long);
    }
    let cidr = flags.iter().find(|f| f.long == "cluster-cidr").unwrap();
    assert!(cidr.multiple);
    let routing = flags.iter().find(|f| f.long == "routing").unwrap();
    assert_eq!(routing.default.as_deref(), Some("direct"));
}

/// Environment variables are process-wide: the parsing under a given
/// environment runs in a child process (this test binary, filtered to
/// `env_child`), so no other test sees them.
#[test]
fn flags_from_environment() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "cli::tests::env_child", "--nocapture"])
        .env("FERRY_TEST_ENV_CHILD", "1")
        .env("FERRY_ROUTING", "bgp")
        .env("FERRY_CLUSTER_CIDR", "10.244.0.0/16,10.245.0.0/16")
        .env("FERRY_CNI_CONF_DIR", "/tmp/conf")
        .env("FERRY_RESYNC_INTERVAL", "5m")
        .env("FERRY_MTU", "1400")
        .env("FERRY_POLICY_LOG", "true")
        .env("FERRY_METRICS_ADDR", "0.0.0.0:9000")
        .env_remove("FERRY_NODE_NAME")
        .env("NODE_NAME", "node-b")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    assert!(stdout.contains("1 passed"), "child did not run: {stdout}");
}

#[test]
fn env_child() {
    if std::env::var_os("FERRY_TEST_ENV_CHILD").is_none() {
        return;
    }
    let cli = parse(&[]).unwrap();
    let o = &cli.opts;
    assert_eq!(o.routing, Routing::Bgp);
    assert_eq!(o.cluster_cidr.len(), 2);
    assert_eq!(o.cni_conf_dir, PathBuf::from("/tmp/conf"));
    assert_eq!(o.resync_interval, Duration::from_secs(300));
    assert_eq!(o.mtu, Some(1400));
    assert!(o.policy_log);
    assert!(!parse(&["--policy-log=false"]).unwrap().opts.policy_log);
    assert_eq!(o.metrics_addr, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(o.node_name(), Some("node-b".to_string()));
    // A flag beats its environment variable.
    let cli = parse(&["--routing", "ospf", "--node-name", "node-c"]).unwrap();
    assert_eq!(cli.opts.routing, Routing::Ospf);
    assert_eq!(cli.opts.node_name(), Some("node-c".to_string()));
}

#[test]
fn encapsulation_defaults_per_routing_mode_and_is_refused_with_frr() {
    use crate::cli::Encapsulation;
    let enc = |args: &[&str]| parse(args).unwrap().opts.encapsulation();
    assert_eq!(enc(&[]).unwrap(), Encapsulation::CrossSubnet);
    assert_eq!(
        enc(&["--encapsulation", "always"]).unwrap(),
        Encapsulation::Always
    );
    assert_eq!(
        enc(&["--encapsulation", "never"]).unwrap(),
        Encapsulation::Never
    );
    assert_eq!(enc(&["--routing", "ospf"]).unwrap(), Encapsulation::Never);
    assert_eq!(
        enc(&["--routing", "bgp", "--encapsulation", "never"]).unwrap(),
        Encapsulation::Never
    );
    let err = enc(&["--routing", "bgp", "--encapsulation", "cross-subnet"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--encapsulation cross-subnet needs --routing direct"),
        "{err}"
    );
    assert!(err.contains("--routing bgp"), "{err}");
    assert!(parse(&["--encapsulation", "sometimes"]).is_err());
}

#[test]
fn encryption_flags_and_defaults() {
    let o = parse(&[]).unwrap().opts;
    assert_eq!(o.encryption().unwrap(), Encryption::None);
    assert_eq!(o.wireguard_port, 51820);
    assert_eq!(
        o.wireguard_key_file,
        PathBuf::from("/run/ferry/wireguard.key")
    );
    assert_eq!(o.wireguard_run_dir, PathBuf::from("/var/run/wireguard"));
    assert!(o.wireguard_spawn);
    let o = parse(&[
        "--encryption",
        "wireguard",
        "--wireguard-port",
        "51999",
        "--wireguard-spawn",
        "false",
    ])
    .unwrap()
    .opts;
    assert_eq!(o.encryption().unwrap(), Encryption::Wireguard);
    assert_eq!(o.wireguard_port, 51999);
    assert!(!o.wireguard_spawn);
    let err = parse(&["--routing", "ospf", "--encryption", "wireguard"])
        .unwrap()
        .opts
        .encryption()
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs --routing direct, not ospf"), "{err}");
    assert!(parse(&["--encryption", "ipsec"]).is_err());
}
