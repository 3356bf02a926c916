//! NetworkPolicy, control-plane side, against the project's API server:
//! ferryd watches Namespaces, Pods and NetworkPolicies and reports them;
//! `--network-policy=false` deletes the table; a table found at start is
//! left alone until ferryd can install a complete ruleset.
//!
//! The enforcement scenarios (TCP connects between pods denied and
//! re-allowed, egress, named ports, ipBlock, churn, restart) need the
//! kernel dataplane (ferry-netpol-nft), which this tree does not have yet:
//! they are not here rather than passing against a fake.

mod common;

use std::time::Duration;

use common::policy::{load_table, policy_table, put_namespace, put_pod, put_policy, series};
use common::{wait_for, Lab};
use ferry_apiserver::Kind;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// What an earlier ferryd could have left.
const OLD_TABLE: &str = "table inet ferry-policy {
    chain ingress {
        type filter hook forward priority filter + 10; policy accept;
        ip daddr 10.244.0.77 drop
    }
}
";

#[test]
fn network_policy_off_deletes_the_table() {
    let mut lab = Lab::new("npoff", 1, &[]);
    let n = &mut lab.nodes[0];
    n.flags
        .extend(["--fast-path=false".into(), "--network-policy=false".into()]);
    load_table(n, OLD_TABLE);
    assert!(policy_table(n).is_some());
    lab.start_all();
    let n = &lab.nodes[0];
    n.wait_ready();
    wait_for(WAIT, "the policy table deleted", || {
        policy_table(n).is_none().then_some(())
    });
    assert!(
        n.log().contains("network policy off: table deleted"),
        "{}",
        n.log()
    );
    // Nothing watched, nothing reported.
    let (_, metrics) = n.http_get("/metrics").unwrap();
    assert!(!metrics.contains("ferry_network_policies"), "{metrics}");
}

#[test]
fn policies_are_watched_and_a_found_table_stays_until_a_sync_succeeds() {
    let mut lab = Lab::new("npwatch", 1, &[]);
    let store = lab.store();
    put_namespace(&store, "default", json!({}));
    put_namespace(&store, "team", json!({"team": "a"}));
    put_pod(
        &store,
        "default",
        "web",
        "k8s-1",
        "10.244.0.77",
        json!({"app": "web"}),
    );
    put_pod(
        &store,
        "team",
        "client",
        "k8s-2",
        "10.244.1.9",
        json!({"app": "client"}),
    );
    put_policy(
        &store,
        "default",
        "deny",
        json!({"podSelector": {"matchLabels": {"app": "web"}}}),
    );
    // One rule ferryd cannot use (ICMP is no NetworkPolicy protocol).
    put_policy(
        &store,
        "default",
        "bad-rule",
        json!({"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP"}]}]}),
    );
    let n = &mut lab.nodes[0];
    n.flags.push("--fast-path=false".into());
    load_table(n, OLD_TABLE);
    let before = policy_table(n).unwrap();
    lab.start_all();
    let n = &lab.nodes[0];
    n.wait_ready();
    let enforced = "ferry_network_policies{state=\"enforced\"}";
    let unenforceable = "ferry_network_policies{state=\"unenforceable\"}";
    wait_for(WAIT, "both policies seen", || {
        (series(n, enforced) == Some(1.0) && series(n, unenforceable) == Some(1.0)).then_some(())
    });
    assert!(
        n.log().contains("bad-rule"),
        "the problem is logged:\n{}",
        n.log()
    );
    // Live changes reach it: the bad policy goes, a new one comes.
    store
        .remove(Kind::NetworkPolicy, "default", "bad-rule")
        .unwrap();
    put_policy(
        &store,
        "team",
        "allow",
        json!({"podSelector": {}, "ingress": [{}]}),
    );
    wait_for(WAIT, "the change seen", || {
        (series(n, enforced) == Some(2.0) && series(n, unenforceable) == Some(0.0)).then_some(())
    });
    // This build has no kernel dataplane: every sync fails, is counted and
    // logged, and the table found at start is never touched.
    let errors = "ferry_network_policy_applies_total{result=\"error\"}";
    wait_for(WAIT, "failed syncs counted", || {
        series(n, errors).filter(|e| *e >= 1.0)
    });
    assert!(
        n.log().contains("network policy sync failed"),
        "{}",
        n.log()
    );
    assert_eq!(policy_table(n).as_deref(), Some(before.as_str()));
    assert_eq!(
        series(n, "ferry_network_policy_applies_total{result=\"replaced\"}"),
        Some(0.0)
    );
}
