//! render() against the files in tests/golden/ (regenerate them with
//! `FERRY_GOLDEN_UPDATE=1 cargo test -p ferry-frr --test golden`), and each
//! golden config checked by FRR's own parser (`vtysh --dryrun`).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use ferry_frr::{render, Advertise, FrrSpec, Mode};

fn node_a(mode: Mode) -> FrrSpec {
    FrrSpec::new(
        mode,
        "node-a",
        Ipv4Addr::new(172, 16, 97, 75),
        "ens18",
        "172.16.97.75".parse().unwrap(),
        vec!["10.244.0.0/24".parse().unwrap()],
    )
}

fn golden(name: &str, spec: &FrrSpec) {
    spec.validate().expect("valid spec");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let got = render(spec);
    if std::env::var_os("FERRY_GOLDEN_UPDATE").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (FERRY_GOLDEN_UPDATE=1 writes it)", path.display()));
    assert_eq!(got, want, "render() differs from {}", path.display());
    // FRR's parser accepts every line.
    let out = Command::new("vtysh")
        .args(["--dryrun", "-f"])
        .arg(&path)
        .output()
        .expect("run vtysh");
    assert!(
        out.status.success(),
        "vtysh --dryrun rejects {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ospf_aggregate() {
    golden("ospf_aggregate.conf", &node_a(Mode::Ospf));
}

#[test]
fn ospf_pods_with_auth() {
    let mut spec = node_a(Mode::Ospf);
    spec.advertise = Advertise::Pods;
    spec.ospf_auth_key = Some("k8s-ospf-key".into());
    golden("ospf_pods_auth.conf", &spec);
}

#[test]
fn ospf_dual_stack_aggregate_with_auth() {
    let mut spec = node_a(Mode::Ospf);
    spec.pod_cidrs.push("fd00:10:244::/64".parse().unwrap());
    spec.ospf_auth_key = Some("k8s-ospf-key".into());
    assert_eq!(spec.daemons(), ["zebra", "staticd", "ospfd", "ospf6d"]);
    golden("ospf_dualstack_aggregate_auth.conf", &spec);
}

#[test]
fn bgp_aggregate_dual_stack_with_password() {
    let mut spec = node_a(Mode::Bgp);
    spec.pod_cidrs.push("fd00:10:244::/64".parse().unwrap());
    // Unsorted, with the node itself and a duplicate: rendered sorted, once.
    spec.peers = [
        "172.16.97.77",
        "172.16.97.75",
        "172.16.97.76",
        "172.16.97.77",
    ]
    .iter()
    .map(|p| p.parse().unwrap())
    .collect();
    spec.bgp_password = Some("bgp-md5-secret".into());
    golden("bgp_aggregate_dualstack_password.conf", &spec);
}

#[test]
fn bgp_pods_v4() {
    let mut spec = node_a(Mode::Bgp);
    spec.advertise = Advertise::Pods;
    spec.asn = 65001;
    spec.peers = vec!["172.16.97.76".parse().unwrap()];
    golden("bgp_pods_v4.conf", &spec);
}

#[test]
fn secrets_only_where_configured() {
    let spec = node_a(Mode::Ospf);
    let conf = render(&spec);
    assert!(!conf.contains("authentication"), "{conf}");
    let mut spec = node_a(Mode::Bgp);
    spec.peers = vec!["172.16.97.76".parse().unwrap()];
    assert!(!render(&spec).contains("password"));
}

#[test]
fn ipv4_only_keeps_ipv6_forwarding_as_it_is() {
    let mut spec = node_a(Mode::Bgp);
    spec.advertise = Advertise::Pods;
    spec.peers = vec!["172.16.97.76".parse().unwrap()];
    // Not known, or off: kept off.
    let off = render(&spec);
    spec.ipv6_forwarding = Some(false);
    assert_eq!(render(&spec), off);
    assert!(off.lines().any(|l| l == "no ipv6 forwarding"), "{off}");
    // On: no line, which FRR's running config has when it is on.
    spec.ipv6_forwarding = Some(true);
    golden("bgp_pods_v4_ipv6_forwarding_on.conf", &spec);
    assert!(!render(&spec).contains("ipv6 forwarding"));
}

#[test]
fn ipv6_pod_cidr_turns_ipv6_forwarding_on_whatever_it_was() {
    let mut spec = node_a(Mode::Ospf);
    spec.pod_cidrs.push("fd00:10:244::/64".parse().unwrap());
    for fwd in [None, Some(false), Some(true)] {
        spec.ipv6_forwarding = fwd;
        assert!(!render(&spec).contains("ipv6 forwarding"), "{fwd:?}");
    }
}
