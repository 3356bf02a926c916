use std::collections::BTreeMap;

use ferry_netpol::{Cluster, LabelSelector, Namespace, NetworkPolicy, Options, Pod};

use super::*;
use crate::policy::dataplane::FakeDataplane;

fn pod(name: &str, node: &str, ip: &str, app: &str) -> Pod {
    Pod {
        namespace: "default".into(),
        name: name.into(),
        labels: BTreeMap::from([("app".to_string(), app.to_string())]),
        ips: vec![ip.parse().unwrap()],
        node: node.into(),
        ..Default::default()
    }
}

fn deny_web() -> NetworkPolicy {
    NetworkPolicy {
        namespace: "default".into(),
        name: "deny".into(),
        pod_selector: LabelSelector {
            match_labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn cluster(pods: Vec<Pod>, policies: Vec<NetworkPolicy>) -> Cluster {
    Cluster {
        namespaces: vec![Namespace {
            name: "default".into(),
            labels: Default::default(),
        }],
        pods,
        policies,
    }
}

fn compile(c: &Cluster) -> Ruleset {
    ferry_netpol::compile(c, &Options::new("n1"))
}

#[test]
fn pod_churn_is_elements_a_policy_change_a_replace() {
    let mut e = Engine::new(FakeDataplane::default());
    let one = cluster(vec![pod("a", "n1", "10.0.0.1", "web")], vec![deny_web()]);
    assert_eq!(
        e.sync(compile(&one)).unwrap(),
        Synced::Applied(Applied::Replaced)
    );
    assert_eq!(
        e.sync(compile(&one)).unwrap(),
        Synced::Applied(Applied::Unchanged)
    );
    // A second local web pod: its group chain exists, so elements only.
    let two = cluster(
        vec![
            pod("a", "n1", "10.0.0.1", "web"),
            pod("b", "n1", "10.0.0.2", "web"),
        ],
        vec![deny_web()],
    );
    let rs = compile(&two);
    let local: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
    assert_eq!(
        isolated(&rs)[&Direction::Ingress],
        local.into_iter().collect()
    );
    assert!(isolated(&rs)[&Direction::Egress].is_empty());
    assert!(matches!(
        e.sync(rs).unwrap(),
        Synced::Applied(Applied::Elements {
            added: 2,
            removed: 0
        })
    ));
    // Policy gone: a replace.
    let none = cluster(two.pods.clone(), vec![]);
    assert_eq!(
        e.sync(compile(&none)).unwrap(),
        Synced::Applied(Applied::Replaced)
    );
}

#[test]
fn a_restart_adopts_a_matching_table_and_replaces_a_stale_one() {
    let c = cluster(vec![pod("a", "n1", "10.0.0.1", "web")], vec![deny_web()]);
    let mut dp = FakeDataplane::default();
    dp.replace(&compile(&c)).unwrap();
    dp.counters.insert("in/default/deny".into(), (5, 300));
    let mut e = Engine::new(dp);
    assert_eq!(e.sync(compile(&c)).unwrap(), Synced::Adopted);
    e.poll_counters().unwrap();
    assert_eq!(e.drop_totals()["in/default/deny"], (5, 300));
    // Stale table (another pod set): replaced in one go, never deleted first.
    let mut e = Engine::new(FakeDataplane {
        installed: Some(compile(&cluster(vec![], vec![deny_web()]))),
        ..Default::default()
    });
    assert_eq!(
        e.sync(compile(&c)).unwrap(),
        Synced::Applied(Applied::Replaced)
    );
}

#[test]
fn drop_counters_stay_monotonic_across_replaces() {
    let c = cluster(vec![pod("a", "n1", "10.0.0.1", "web")], vec![deny_web()]);
    let mut e = Engine::new(FakeDataplane::default());
    e.sync(compile(&c)).unwrap();
    e.dp.counters.insert("in/default/deny".into(), (3, 180));
    e.poll_counters().unwrap();
    e.dp.counters.insert("in/default/deny".into(), (4, 240));
    // A policy edit replaces the table: the fake zeroes its counters, the
    // engine read them just before.
    let mut edited = deny_web();
    edited.ingress.push(Default::default());
    e.sync(compile(&cluster(c.pods.clone(), vec![edited])))
        .unwrap();
    assert_eq!(e.dp.counters["in/default/deny"], (0, 0));
    e.dp.counters.insert("in/default/deny".into(), (1, 60));
    e.poll_counters().unwrap();
    assert_eq!(e.drop_totals()["in/default/deny"], (5, 300));
}

#[test]
fn a_failed_apply_keeps_the_table_and_rechecks_next_time() {
    let c = cluster(vec![pod("a", "n1", "10.0.0.1", "web")], vec![deny_web()]);
    let mut e = Engine::new(FakeDataplane::default());
    e.sync(compile(&c)).unwrap();
    e.dp.fail = true;
    let two = cluster(
        vec![
            pod("a", "n1", "10.0.0.1", "web"),
            pod("b", "n1", "10.0.0.2", "web"),
        ],
        vec![deny_web()],
    );
    assert!(e.sync(compile(&two)).is_err());
    assert_eq!(e.dp.installed, Some(compile(&c)));
    assert!(e.installed().is_none());
    e.dp.fail = false;
    assert_eq!(
        e.sync(compile(&two)).unwrap(),
        Synced::Applied(Applied::Replaced)
    );
    assert!(e.remove("ferry-policy").unwrap());
}

#[test]
fn counter_names() {
    assert_eq!(
        counter_policy("in/default/deny"),
        Some(("ingress", "default", "deny"))
    );
    assert_eq!(counter_policy("eg/a/b"), Some(("egress", "a", "b")));
    assert_eq!(counter_policy("x/a/b"), None);
}
