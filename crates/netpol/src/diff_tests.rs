use super::*;
use crate::compile::{compile, Options};
use crate::model::{Cluster, Rule};
use crate::testutil::*;

fn base() -> Cluster {
    let mut c = cluster();
    let mut p = policy("a", "web", sel(&[("app", "web")]));
    p.ingress = vec![Rule {
        peers: vec![pods_peer(None, Some(sel(&[("app", "cli")])))],
        ports: vec![tcp(80)],
    }];
    c.policies.push(p);
    c
}

fn rs(c: &Cluster) -> Ruleset {
    compile(c, &Options::new("n1"))
}

#[test]
fn same_state_is_unchanged() {
    assert_eq!(diff(&rs(&base()), &rs(&base())), Diff::Unchanged);
}

#[test]
fn a_peer_pod_coming_and_going_is_elements() {
    let old = base();
    let mut new = old.clone();
    new.pods
        .push(pod("a", "cli2", &[("app", "cli")], &["10.0.1.9"], "n3"));
    let Diff::Elements(changes) = diff(&rs(&old), &rs(&new)) else {
        panic!("not elements");
    };
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].set, "in/a/web/0.4");
    assert!(changes[0].removed.is_empty());
    assert_eq!(changes[0].added.len(), 1);
    // And back.
    let Diff::Elements(back) = diff(&rs(&new), &rs(&old)) else {
        panic!("not elements");
    };
    assert_eq!(back[0].removed, changes[0].added);
}

#[test]
fn a_selected_pod_of_a_known_group_is_elements() {
    let old = base();
    let mut new = old.clone();
    new.pods
        .push(pod("a", "web2", &[("app", "web")], &["10.0.0.7"], "n1"));
    let Diff::Elements(changes) = diff(&rs(&old), &rs(&new)) else {
        panic!("not elements");
    };
    let sets: Vec<&str> = changes.iter().map(|c| c.set.as_str()).collect();
    assert_eq!(sets, ["ingress4", "self4"]);
    // A pod changing its address.
    let mut moved = old.clone();
    moved.pods[0].ips = vec!["10.0.0.9".parse().unwrap(), "fd00::1".parse().unwrap()];
    assert!(matches!(diff(&rs(&old), &rs(&moved)), Diff::Elements(_)));
}

#[test]
fn policy_changes_are_ruleset_changes() {
    let old = base();
    let mut new = old.clone();
    new.policies[0].ingress[0].ports = vec![tcp(81)];
    assert_eq!(diff(&rs(&old), &rs(&new)), Diff::Ruleset);
    let mut new = old.clone();
    new.policies.push(policy("a", "deny", sel(&[])));
    assert_eq!(diff(&rs(&old), &rs(&new)), Diff::Ruleset);
    // The first local pod of a policy brings its chains.
    let mut new = old.clone();
    new.policies
        .push(policy("a", "cli", sel(&[("app", "cli")])));
    assert_eq!(diff(&rs(&old), &rs(&new)), Diff::Unchanged);
    new.pods.push(pod(
        "a",
        "cli-local",
        &[("app", "cli")],
        &["10.0.0.8"],
        "n1",
    ));
    assert_eq!(diff(&rs(&old), &rs(&new)), Diff::Ruleset);
}
