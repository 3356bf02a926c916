use super::*;
use crate::ir::{Chain, Element, Match, Ruleset, Verdict};
use crate::model::{Peer, PolicyTypes, Port, PortRef, Protocol, Rule as PRule};
use crate::render::rule as rule_text;
use crate::testutil::*;

fn build(policies: Vec<NetworkPolicy>) -> Ruleset {
    let mut c = cluster();
    c.policies = policies;
    compile(&c, &Options::new("n1"))
}

fn rules(rs: &Ruleset, chain: &str) -> Vec<String> {
    let c: &Chain = rs
        .chain(chain)
        .unwrap_or_else(|| panic!("no chain {chain}"));
    c.rules.iter().map(rule_text).collect()
}

fn jump_of(rs: &Ruleset, map: &str, ip: &str) -> Option<String> {
    let ip: std::net::IpAddr = ip.parse().unwrap();
    rs.sets[map].elements.iter().find_map(|e| match e {
        Element::Jump(a, c) if *a == ip => Some(c.clone()),
        _ => None,
    })
}

#[test]
fn no_policies_still_has_the_skeleton() {
    let rs = build(vec![]);
    assert_eq!(rs.table, DEFAULT_TABLE);
    let names: Vec<&str> = rs.chains.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["egress", "ingress"]);
    assert!(rs.counters.is_empty());
    assert!(rs.sets.values().all(|s| s.elements.is_empty()));
    assert_eq!(rs.sets.len(), 6);
}

#[test]
fn policy_types_default_to_ingress_and_egress_when_rules() {
    let mut p = policy("a", "p", sel(&[]));
    p.egress = vec![PRule::default()];
    let rs = build(vec![p.clone()]);
    assert!(rs.chain("in/a/p").is_some() && rs.chain("eg/a/p").is_some());
    p.egress.clear();
    let rs = build(vec![p.clone()]);
    assert!(rs.chain("in/a/p").is_some() && rs.chain("eg/a/p").is_none());
    p.policy_types = Some(PolicyTypes {
        ingress: false,
        egress: true,
    });
    let rs = build(vec![p]);
    assert!(rs.chain("in/a/p").is_none() && rs.chain("eg/a/p").is_some());
    assert_eq!(rules(&rs, "eg/a/p"), Vec::<String>::new());
}

#[test]
fn only_local_pods_are_enforced() {
    // a/cli is on n2: nothing for it on n1.
    let rs = build(vec![policy("a", "p", sel(&[("app", "cli")]))]);
    assert_eq!(rs.chains.len(), 2);
    assert!(rs.counters.is_empty());
    let rs = build(vec![policy("a", "p", sel(&[]))]);
    assert!(jump_of(&rs, "ingress4", "10.0.0.1").is_some());
    assert!(jump_of(&rs, "ingress4", "10.0.0.2").is_some());
    assert!(jump_of(&rs, "ingress4", "10.0.1.1").is_none());
    assert!(jump_of(&rs, "ingress6", "fd00::1").is_some());
}

#[test]
fn default_deny_is_an_empty_chain_then_a_counted_drop() {
    let rs = build(vec![policy("a", "deny", sel(&[]))]);
    assert_eq!(rules(&rs, "in/a/deny"), Vec::<String>::new());
    let group = jump_of(&rs, "ingress4", "10.0.0.1").unwrap();
    assert_eq!(
        rules(&rs, &group),
        ["jump in/a/deny", "counter name \"in/a/deny\" drop"]
    );
    assert!(rs.counters.contains("in/a/deny"));
}

#[test]
fn allow_all_is_a_bare_accept() {
    let mut p = policy("a", "all", sel(&[]));
    p.ingress = vec![PRule::default()];
    let rs = build(vec![p]);
    assert_eq!(rules(&rs, "in/a/all"), ["accept"]);
}

#[test]
fn union_shares_group_chains() {
    let mut web = policy("a", "web", sel(&[("app", "web")]));
    web.ingress = vec![PRule {
        peers: vec![],
        ports: vec![tcp(80)],
    }];
    let deny = policy("a", "deny", sel(&[]));
    let rs = build(vec![web, deny]);
    let g_web = jump_of(&rs, "ingress4", "10.0.0.1").unwrap();
    let g_db = jump_of(&rs, "ingress4", "10.0.0.2").unwrap();
    assert_ne!(g_web, g_db);
    assert_eq!(jump_of(&rs, "ingress6", "fd00::1").unwrap(), g_web);
    assert_eq!(
        rules(&rs, &g_web),
        [
            "jump in/a/deny",
            "jump in/a/web",
            "counter name \"in/a/deny\" counter name \"in/a/web\" drop"
        ]
    );
    assert_eq!(rules(&rs, "in/a/web"), ["tcp dport 80 accept"]);
}

#[test]
fn ports_group_by_protocol_and_merge() {
    let mut p = policy("a", "p", sel(&[]));
    let range = |protocol, start, end| Port {
        protocol,
        port: Some(PortRef::Range { start, end }),
    };
    p.ingress = vec![PRule {
        peers: vec![],
        ports: vec![
            tcp(443),
            range(Protocol::Tcp, 8000, 8100),
            tcp(8050),
            tcp(80),
            range(Protocol::Udp, 53, 53),
            Port {
                protocol: Protocol::Sctp,
                port: None,
            },
            range(Protocol::Sctp, 9, 9),
            tcp(444),
        ],
    }];
    let rs = build(vec![p]);
    assert_eq!(
        rules(&rs, "in/a/p"),
        [
            "meta l4proto sctp accept",
            "tcp dport { 80, 443-444, 8000-8100 } accept",
            "udp dport 53 accept",
        ]
    );
}

#[test]
fn ingress_named_ports_resolve_on_the_selected_pods() {
    let mut p = policy("a", "p", sel(&[]));
    p.ingress = vec![PRule {
        peers: vec![pods_peer(None, Some(sel(&[("app", "cli")])))],
        ports: vec![named(Protocol::Tcp, "http")],
    }];
    let rs = build(vec![p]);
    assert_eq!(
        rules(&rs, "in/a/p"),
        [
            "ip saddr @in/a/p/0.4 ip daddr . tcp dport @in/a/p/0n0.4 accept",
            "ip6 saddr @in/a/p/0.6 ip6 daddr . tcp dport @in/a/p/0n0.6 accept",
        ]
    );
    // Only a/web (local, selected) has "http"; b/web's 9090 is not ours.
    let set = &rs.sets["in/a/p/0n0.4"].elements;
    assert_eq!(
        set.iter().collect::<Vec<_>>(),
        [&Element::AddrPort("10.0.0.1".parse().unwrap(), 8080)]
    );
}

#[test]
fn egress_named_ports_resolve_on_the_peers() {
    let mut p = policy("a", "p", sel(&[("app", "db")]));
    p.policy_types = Some(PolicyTypes {
        ingress: false,
        egress: true,
    });
    p.egress = vec![
        PRule {
            peers: vec![pods_peer(Some(sel(&[])), Some(sel(&[("app", "web")])))],
            ports: vec![named(Protocol::Tcp, "http")],
        },
        // ipBlock peers have no named ports: no rule at all.
        PRule {
            peers: vec![Peer::IpBlock {
                cidr: "0.0.0.0/0".parse().unwrap(),
                except: vec![],
            }],
            ports: vec![named(Protocol::Tcp, "http")],
        },
    ];
    let rs = build(vec![p]);
    assert_eq!(
        rules(&rs, "eg/a/p"),
        [
            "ip daddr . tcp dport @eg/a/p/0n0.4 accept",
            "ip6 daddr . tcp dport @eg/a/p/0n0.6 accept",
        ]
    );
    let got: Vec<&Element> = rs.sets["eg/a/p/0n0.4"].elements.iter().collect();
    assert_eq!(
        got,
        [
            &Element::AddrPort("10.0.0.1".parse().unwrap(), 8080),
            &Element::AddrPort("10.0.1.2".parse().unwrap(), 9090),
        ]
    );
    // No unused peer sets.
    assert!(!rs.sets.contains_key("eg/a/p/0.4"));
}

#[test]
fn base_chains_have_one_lookup_per_direction_and_family() {
    let rs = build(vec![policy("a", "p", sel(&[]))]);
    for dir in [Direction::Ingress, Direction::Egress] {
        let c = rs.chain(dir.base()).unwrap();
        assert!(c.base.is_some());
        assert_eq!(c.rules[0].matches, [Match::CtEstablished]);
        let vmaps = c
            .rules
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Vmap { .. }))
            .count();
        assert_eq!(vmaps, 2);
        assert!(c
            .rules
            .iter()
            .all(|r| !matches!(r.verdict, Verdict::Jump(_))));
    }
    let ingress = rs.chain("ingress").unwrap();
    assert!(ingress.rules.iter().any(|r| r.matches == [Match::FromNode]));
}

#[test]
fn ip_block_sets_hold_cidr_minus_except() {
    let mut p = policy("a", "p", sel(&[]));
    p.ingress = vec![PRule {
        peers: vec![Peer::IpBlock {
            cidr: "172.16.0.0/12".parse().unwrap(),
            except: vec!["172.16.0.0/16".parse().unwrap()],
        }],
        ports: vec![],
    }];
    let rs = build(vec![p]);
    assert!(!rs.sets.contains_key("in/a/p/0.6"));
    let set = &rs.sets["in/a/p/0.4"];
    assert_eq!(
        set.elements
            .iter()
            .map(crate::render::element)
            .collect::<Vec<_>>(),
        ["172.17.0.0-172.31.255.255"]
    );
    assert_eq!(rules(&rs, "in/a/p"), ["ip saddr @in/a/p/0.4 accept"]);
}

#[test]
fn pods_sharing_an_address_get_the_union() {
    let mut c = cluster();
    // a/gone still holds a/web's address (it is being deleted).
    c.pods
        .push(pod("a", "gone", &[("app", "gone")], &["10.0.0.1"], "n1"));
    c.policies = vec![
        policy("a", "web", sel(&[("app", "web")])),
        policy("a", "gone", sel(&[("app", "gone")])),
    ];
    let rs = compile(&c, &Options::new("n1"));
    let group = jump_of(&rs, "ingress4", "10.0.0.1").unwrap();
    assert_eq!(
        rules(&rs, &group),
        [
            "jump in/a/gone",
            "jump in/a/web",
            "counter name \"in/a/gone\" counter name \"in/a/web\" drop"
        ]
    );
    assert_eq!(rs.sets["ingress4"].elements.len(), 1);
    // fd00::1 is a/web's alone.
    assert_ne!(jump_of(&rs, "ingress6", "fd00::1").unwrap(), group);
}

#[test]
fn drop_log_adds_one_limited_log_rule_per_group_before_the_drop() {
    let mut web = policy("a", "web", sel(&[("app", "web")]));
    web.ingress = vec![PRule {
        peers: vec![],
        ports: vec![tcp(80)],
    }];
    let deny = policy("a", "deny", sel(&[]));
    let mut c = cluster();
    c.policies = vec![web, deny];
    let plain = compile(&c, &Options::new("n1"));
    let opts = Options::new("n1").with_drop_log(Some(crate::DropLog::default()));
    let rs = compile(&c, &opts);
    let g_web = jump_of(&rs, "ingress4", "10.0.0.1").unwrap();
    assert_eq!(
        rules(&rs, &g_web),
        [
            "jump in/a/deny".to_string(),
            "jump in/a/web".to_string(),
            format!("limit rate 100/second burst 20 packets log prefix \"{g_web}\" group 33779"),
            "counter name \"in/a/deny\" counter name \"in/a/web\" drop".to_string(),
        ]
    );
    // One rule more per group chain, nothing else changes.
    for (a, b) in plain.chains.iter().zip(&rs.chains) {
        let extra = usize::from(crate::drop_log::prefix_direction(&a.name).is_some());
        assert_eq!(a.rules.len() + extra, b.rules.len(), "{}", a.name);
    }
    assert_eq!(plain.sets, rs.sets);
    assert!(!crate::render(&plain).contains(" log "));
    assert_eq!(crate::diff(&plain, &rs), crate::Diff::Ruleset);
    let groups = crate::drop_log::group_policies(&rs);
    assert_eq!(groups[&g_web], ["in/a/deny", "in/a/web"]);
    assert_eq!(groups, crate::drop_log::group_policies(&plain));
}

#[test]
fn a_group_of_many_policies_counts_its_drop_over_several_rules() {
    // 130 policies isolate a/web: 130 jumps, then the drop counted against
    // all 130 in rules of at most MAX_COUNTERS_PER_RULE counters (the
    // kernel refuses a rule of over 128 expressions); only the last drops.
    let policies: Vec<NetworkPolicy> = (0..130)
        .map(|i| policy("a", &format!("p{i:03}"), sel(&[("app", "web")])))
        .collect();
    let rs = build(policies);
    let group = jump_of(&rs, "ingress4", "10.0.0.1").expect("web isolated");
    let chain = rs.chain(&group).unwrap();
    let (jumps, counting): (Vec<_>, Vec<_>) = chain
        .rules
        .iter()
        .partition(|r| matches!(r.verdict, Verdict::Jump(_)));
    assert_eq!(jumps.len(), 130);
    let sizes: Vec<usize> = counting.iter().map(|r| r.counters.len()).collect();
    assert_eq!(sizes, [64, 64, 2]);
    assert!(sizes.iter().all(|n| *n <= MAX_COUNTERS_PER_RULE));
    let verdicts: Vec<&Verdict> = counting.iter().map(|r| &r.verdict).collect();
    assert_eq!(
        verdicts,
        [&Verdict::Continue, &Verdict::Continue, &Verdict::Drop]
    );
    let counted: BTreeSet<&String> = counting.iter().flat_map(|r| &r.counters).collect();
    assert_eq!(counted.len(), 130, "each policy counted once");
    assert_eq!(
        rule_text(counting[0]).matches("counter name").count(),
        64,
        "a counting rule renders without a verdict"
    );
    assert!(!rule_text(counting[0]).contains("drop"));
    // Up to MAX_COUNTERS_PER_RULE policies: one rule, as before.
    let few: Vec<NetworkPolicy> = (0..MAX_COUNTERS_PER_RULE)
        .map(|i| policy("a", &format!("p{i:03}"), sel(&[("app", "web")])))
        .collect();
    let rs = build(few);
    let group = jump_of(&rs, "ingress4", "10.0.0.1").unwrap();
    let last = rs.chain(&group).unwrap().rules.last().unwrap();
    assert_eq!(last.counters.len(), MAX_COUNTERS_PER_RULE);
    assert_eq!(last.verdict, Verdict::Drop);
}
