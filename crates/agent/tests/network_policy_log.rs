//! `--policy-log`: each connection attempt a NetworkPolicy drops is one
//! INFO line naming both pods and the policies, through NFLOG. The
//! project's API server, one node netns running ferryd, real pods made
//! through the conflist ferryd installed (as in network_policy.rs). With
//! the flag off there is no log rule in the table, no NFLOG group bound
//! and no line.

mod common;

use std::time::Duration;

use common::policy::{
    add_api_pod, connects, expect, policy_table, put_namespace, put_policy, serve,
};
use common::{wait_for, Lab, LabNode};
use serde_json::json;

const LINES: &str = "ferry_policy_drop_log_lines_total";

/// A pod: its netns and IPv4 address.
struct P {
    ns: String,
    ip: String,
}

/// A one-node lab, fast path off, ferryd ready with `extra` flags.
fn lab(tag: &str, extra: &[&str]) -> Lab {
    let mut lab = Lab::new(tag, 1, &[]);
    lab.nodes[0].flags.push("--fast-path=false".into());
    lab.nodes[0]
        .flags
        .extend(extra.iter().map(|f| f.to_string()));
    put_namespace(&lab.store(), "default", json!({}));
    lab.start_all();
    lab.nodes[0].wait_ready();
    lab
}

/// A pod made through the conflist, in the API as `default/name`.
fn pod(lab: &mut Lab, name: &str, app: &str) -> P {
    let (netns, ip) = add_api_pod(lab, 0, name, json!({ "app": app }));
    P { ns: netns, ip }
}

/// ferryd's drop log lines so far.
fn drop_lines(node: &LabNode) -> Vec<String> {
    node.log()
        .lines()
        .filter_map(|l| Some(l[l.find("policy drop direction=")?..].to_string()))
        .collect()
}

/// The NFLOG groups bound in the node (`/proc/net/netfilter/nfnetlink_log`:
/// group, portid, queue length, copy mode, range, ...).
fn nflog_groups(node: &LabNode) -> Vec<u32> {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &node.ns,
            "cat",
            "/proc/net/netfilter/nfnetlink_log",
        ])
        .output()
        .expect("read nfnetlink_log");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// web (port 8080) admits only `app=client`: `other` is denied.
fn web_from_clients(lab: &mut Lab) -> (P, P, P, common::policy::Server) {
    let web = pod(lab, "web", "web");
    let client = pod(lab, "client", "client");
    let other = pod(lab, "other", "other");
    let http = serve(&web.ns, 8080);
    expect(&other.ns, &web.ip, 8080, true, "no policy yet");
    put_policy(
        &lab.store(),
        "default",
        "web-from-clients",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}),
    );
    expect(&other.ns, &web.ip, 8080, false, "web admits clients only");
    expect(&client.ns, &web.ip, 8080, true, "a client is admitted");
    (web, client, other, http)
}

#[test]
fn denied_connections_are_logged_with_pod_and_policy_names() {
    let mut lab = lab("nplog", &["--policy-log=true"]);
    let node = &lab.nodes[0];
    wait_for(
        Duration::from_secs(30),
        "ferryd binds NFLOG group 33779",
        || nflog_groups(node).contains(&33779).then_some(()),
    );
    let (web, client, other, _http) = web_from_clients(&mut lab);
    let node = &lab.nodes[0];
    let table = policy_table(node).expect("the policy table");
    assert!(
        table.contains("limit rate 100/second burst 20 packets log prefix \"in-grp-"),
        "{table}"
    );

    let before = drop_lines(node).len();
    assert!(!connects(&other.ns, &web.ip, 8080));
    let want = format!(
        "policy drop direction=ingress src=default/other ({}:",
        other.ip
    );
    let dst = format!(
        "dst=default/web ({}:8080) proto=tcp policies=[default/web-from-clients]",
        web.ip
    );
    let line = wait_for(
        Duration::from_secs(10),
        &format!("a drop line like {want}... {dst}\n{}", node.log()),
        || {
            drop_lines(node)
                .into_iter()
                .skip(before)
                .find(|l| l.starts_with(&want) && l.ends_with(&dst))
        },
    );
    eprintln!("drop log line: {line}");

    // An allowed connection is no drop: no line about the client.
    assert!(connects(&client.ns, &web.ip, 8080));
    std::thread::sleep(Duration::from_secs(1));
    let about_client: Vec<String> = drop_lines(node)
        .into_iter()
        .filter(|l| l.contains("src=default/client"))
        .collect();
    assert!(about_client.is_empty(), "{about_client:?}");
    let lines = node.metric(LINES).expect("the drop log's metric");
    assert!(lines >= 1.0, "{LINES} {lines}");
    assert_eq!(node.metric("ferry_policy_drop_log_lost_total"), Some(0.0));

    // Egress: the client may only reach port 53 now.
    put_policy(
        &lab.store(),
        "default",
        "client-dns-only",
        json!({"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
               "egress": [{"ports": [{"protocol": "UDP", "port": 53}]}]}),
    );
    expect(
        &client.ns,
        &web.ip,
        8080,
        false,
        "client egress to DNS only",
    );
    let node = &lab.nodes[0];
    let want = format!(
        "policy drop direction=egress src=default/client ({}:",
        client.ip
    );
    let dst = format!(
        "dst=default/web ({}:8080) proto=tcp policies=[default/client-dns-only]",
        web.ip
    );
    wait_for(
        Duration::from_secs(10),
        &format!("a drop line like {want}... {dst}\n{}", node.log()),
        || {
            drop_lines(node)
                .into_iter()
                .find(|l| l.starts_with(&want) && l.ends_with(&dst))
        },
    );
}

#[test]
fn with_the_flag_off_nothing_is_logged() {
    let mut lab = lab("nplogoff", &[]);
    let (web, _client, other, _http) = web_from_clients(&mut lab);
    let node = &lab.nodes[0];
    let table = policy_table(node).expect("the policy table");
    assert!(table.contains("in-grp-"), "{table}");
    assert!(
        !table.contains(" log "),
        "no log rule with the flag off\n{table}"
    );
    assert!(!table.contains("limit rate"), "{table}");
    assert!(!connects(&other.ns, &web.ip, 8080));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(drop_lines(node), Vec::<String>::new());
    assert!(
        !nflog_groups(node).contains(&33779),
        "no NFLOG socket with the flag off"
    );
    assert_eq!(node.metric(LINES), None, "no drop log series");
    let drops = "ferry_network_policy_drops_total{namespace=\"default\",policy=\"web-from-clients\",direction=\"ingress\"}";
    wait_for(
        Duration::from_secs(20),
        "drops are counted either way",
        || node.metric(drops).filter(|n| *n > 0.0),
    );
}
