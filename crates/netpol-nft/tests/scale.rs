//! The scale over netlink: 5 000 dual-stack pods, 1 000 policies,
//! replaced into a fresh netns, then 500 pods change address (elements
//! only), for a node holding 1/50 of the pods and for one holding them
//! all. Prints timings (asserts none), checks the outcome. Needs root.
//!
//! `cargo test -p ferry-netpol-nft --release --test scale -- --include-ignored --nocapture`

#[path = "../../netpol/tests/big/mod.rs"]
mod big;
mod common;

use std::time::Instant;

use common::{usable, Ns};
use ferry_netpol::{compile, Options};
use ferry_netpol_nft::{apply, counters, installed_matches, replace, Applied};

fn run(nodes: u32) {
    let opts = Options::new("node0");
    let cluster = big::cluster(5000, 1000, nodes, true);
    let rs = compile(&cluster, &opts);
    let mut moved = cluster.clone();
    for (i, p) in moved.pods.iter_mut().enumerate().step_by(10) {
        p.ips = big::pod_ips(100_000 + i as u32, true);
    }
    let new = compile(&moved, &opts);
    let elements: usize = rs.sets.values().map(|s| s.elements.len()).sum();
    let rules: usize = rs.chains.iter().map(|c| c.rules.len()).sum();

    let ns = Ns::new();
    ns.run(|| {
        let t = Instant::now();
        replace(&rs).unwrap();
        let replaced = t.elapsed();
        let t = Instant::now();
        let applied = apply(Some(&rs), &new).unwrap();
        let updated = t.elapsed();
        let Applied::Elements { added, removed } = applied else {
            panic!("expected elements, got {applied:?}");
        };
        let t = Instant::now();
        assert!(installed_matches(&new).unwrap());
        let matched = t.elapsed();
        let t = Instant::now();
        assert_eq!(counters(&rs.table).unwrap().len(), rs.counters.len());
        let counted = t.elapsed();
        eprintln!(
            "1/{nodes} of the pods local: {} chains, {rules} rules, {} sets, {elements} elements, \
             {} counters: replace {replaced:?}; apply (+{added} -{removed} elements) {updated:?}; \
             installed_matches {matched:?}; counters {counted:?}",
            rs.chains.len(),
            rs.sets.len(),
            rs.counters.len(),
        );
    });
}

#[test]
fn five_thousand_pods_thousand_policies() {
    if !usable() {
        return;
    }
    run(50);
}

/// Every pod on this node: every policy selects local pods (1 100 chains,
/// 2 000 sets, 2 million elements). A minute in a debug build: `--ignored`.
#[test]
#[ignore]
fn five_thousand_local_pods_thousand_policies() {
    if !usable() {
        return;
    }
    run(1);
}
