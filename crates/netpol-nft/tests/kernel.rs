//! Every golden scenario of ferry-netpol written with `replace()` into a
//! fresh netns must list (`nft list table`) exactly as nft lists the
//! rendered text loaded by nft itself into another fresh netns: the same
//! table, semantically. Plus element churn, counters, delete and
//! installed_matches. Needs root and `nft`; says so and passes without.

mod common;
#[path = "../../netpol/tests/scenarios/mod.rs"]
mod scenarios;

use common::{usable, Ns};
use ferry_netpol::{compile, render, Options, Ruleset};
use ferry_netpol_nft::{apply, counters, delete, installed_matches, replace, Applied};
use scenarios::normalized;

const TABLE: &str = ferry_netpol::DEFAULT_TABLE;

fn ruleset(policies: &[serde_json::Value]) -> Ruleset {
    compile(
        &scenarios::with_policies(policies),
        &Options::new(scenarios::NODE),
    )
}

/// What nft itself lists after loading the rendered text.
fn nft_listing(rs: &Ruleset) -> String {
    let ns = Ns::new();
    let text = render(rs);
    ns.nft_text(&text)
        .unwrap_or_else(|e| panic!("nft -f: {e}\n{text}"));
    ns.list(&rs.table)
}

#[test]
fn every_scenario_lists_as_nft_loads_it() {
    if !usable() {
        return;
    }
    for (name, policies) in scenarios::all() {
        let rs = ruleset(&policies);
        let ns = Ns::new();
        ns.run(|| replace(&rs))
            .unwrap_or_else(|e| panic!("{name}: replace: {e}"));
        let ours = ns.list(TABLE);
        let theirs = nft_listing(&rs);
        assert_eq!(
            normalized(&ours),
            normalized(&theirs),
            "{name}: ours\n{ours}\nnft's\n{theirs}"
        );
        // Replacing again is fine (the delete in the batch finds it).
        ns.run(|| replace(&rs)).unwrap();
        assert_eq!(normalized(&ns.list(TABLE)), normalized(&theirs), "{name}");
    }
}

#[test]
fn counters_delete_and_installed_matches() {
    if !usable() {
        return;
    }
    let rs = ruleset(&scenarios::policies("named_ports"));
    let other = ruleset(&scenarios::policies("ip_block_except"));
    let ns = Ns::new();
    ns.run(|| {
        assert!(counters(TABLE).unwrap().is_empty());
        assert!(!installed_matches(&rs).unwrap(), "no table yet");
        replace(&rs).unwrap();
        let c = counters(TABLE).unwrap();
        let names: Vec<&String> = c.keys().collect();
        assert_eq!(names, rs.counters.iter().collect::<Vec<_>>());
        assert!(c.values().all(|v| *v == (0, 0)), "{c:?}");
        assert!(installed_matches(&rs).unwrap());
        assert!(!installed_matches(&other).unwrap());
        // Same shape, one element less: not a match either.
        let mut fewer = rs.clone();
        let set = fewer.sets.get_mut("self4").unwrap();
        let first = set.elements.iter().next().unwrap().clone();
        set.elements.remove(&first);
        assert!(!installed_matches(&fewer).unwrap());
    });
    // The scratch table is gone again.
    let tables = ns.sh(&["nft", "list", "tables"]);
    assert_eq!(tables.trim(), format!("table inet {TABLE}"), "{tables}");
    ns.run(|| {
        assert_eq!(apply(Some(&rs), &rs).unwrap(), Applied::Unchanged);
        assert!(delete(TABLE).unwrap());
        assert!(!delete(TABLE).unwrap());
        assert!(counters(TABLE).unwrap().is_empty());
    });
}

#[test]
fn pod_churn_is_applied_as_elements() {
    if !usable() {
        return;
    }
    let policies = scenarios::policies("named_ports");
    let opts = Options::new(scenarios::NODE);
    let old_cluster = scenarios::with_policies(&policies);
    let old = compile(&old_cluster, &opts);
    let new = compile(&scenarios::churned(&old_cluster), &opts);

    let ns = Ns::new();
    let before = ns.run(|| {
        assert_eq!(apply(None, &old).unwrap(), Applied::Replaced);
        counters(TABLE).unwrap()
    });
    let applied = ns.run(|| apply(Some(&old), &new)).unwrap();
    let Applied::Elements { added, removed } = applied else {
        panic!("expected elements, got {applied:?}");
    };
    assert!(added >= 4 && removed >= 2, "{applied:?}");
    assert_eq!(
        normalized(&ns.list(TABLE)),
        normalized(&nft_listing(&new)),
        "after churn"
    );
    ns.run(|| {
        assert!(installed_matches(&new).unwrap());
        assert!(!installed_matches(&old).unwrap());
        assert_eq!(counters(TABLE).unwrap(), before);
        // And back: removals and additions the other way round.
        assert!(matches!(
            apply(Some(&new), &old).unwrap(),
            Applied::Elements { .. }
        ));
        assert!(installed_matches(&old).unwrap());
    });
    assert_eq!(normalized(&ns.list(TABLE)), normalized(&nft_listing(&old)));

    // The kernel's table is not `old` (someone deleted it): the element
    // batch is refused and apply falls back to a replace.
    ns.run(|| {
        delete(TABLE).unwrap();
        assert_eq!(apply(Some(&old), &new).unwrap(), Applied::Replaced);
        assert!(installed_matches(&new).unwrap());
    });
}

/// `--policy-log`'s group chains (limit + log rule) list as nft lists
/// them, and the flag's change is a replace: `installed_matches` tells
/// the two tables apart.
#[test]
fn drop_log_rules_list_as_nft_loads_them() {
    if !usable() {
        return;
    }
    let name = scenarios::DROP_LOG_SCENARIO;
    let logged = scenarios::with_drop_log(name);
    let plain = ruleset(&scenarios::policies(name));
    let ns = Ns::new();
    ns.run(|| replace(&logged)).unwrap();
    let ours = ns.list(TABLE);
    assert!(ours.contains("log prefix \"in-grp-"), "{ours}");
    assert_eq!(normalized(&ours), normalized(&nft_listing(&logged)));
    ns.run(|| {
        assert!(installed_matches(&logged).unwrap());
        assert!(!installed_matches(&plain).unwrap());
        assert_eq!(apply(Some(&logged), &plain).unwrap(), Applied::Replaced);
        assert!(installed_matches(&plain).unwrap());
    });
    assert!(!ns.list(TABLE).contains(" log "));
}

/// A pod selected by 200 policies: its group chain counts the drop
/// against all 200, more counters than one rule may hold (the kernel
/// refuses a rule of over 128 expressions), so they are spread over
/// rules of at most `MAX_COUNTERS_PER_RULE`, the last of which drops;
/// every policy keeps its counter.
#[test]
fn a_pod_selected_by_200_policies_is_loaded_and_counted() {
    if !usable() {
        return;
    }
    let policies: Vec<serde_json::Value> = (0..200)
        .map(|i| {
            scenarios::np(
                "default",
                &format!("deny-{i}"),
                serde_json::json!({
                    "podSelector": { "matchLabels": { "app": "web" } },
                    "policyTypes": ["Ingress", "Egress"]
                }),
            )
        })
        .collect();
    let rs = ruleset(&policies);
    let ns = Ns::new();
    ns.run(|| replace(&rs))
        .unwrap_or_else(|e| panic!("replace: {e}"));
    let ours = ns.list(TABLE);
    assert_eq!(normalized(&ours), normalized(&nft_listing(&rs)));
    let drops = ours
        .lines()
        .filter(|l| l.trim_start().starts_with("counter name \"in/"))
        .collect::<Vec<_>>();
    assert_eq!(
        drops.len(),
        200usize.div_ceil(ferry_netpol::MAX_COUNTERS_PER_RULE),
        "{ours}"
    );
    assert!(drops.last().unwrap().trim_end().ends_with("drop"), "{ours}");
    ns.run(|| {
        assert!(installed_matches(&rs).unwrap());
        let c = counters(TABLE).unwrap();
        assert_eq!(c.len(), 400, "one counter per policy and direction");
    });
}
