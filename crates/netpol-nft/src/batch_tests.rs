//! Golden tests: our messages, byte for byte, against what nft 1.0.6 sends
//! for the same table (`nft --debug=mnl -f FILE` in a scratch netns,
//! captured in testdata/): every scenario of ferry-netpol's goldens
//! (tables, chains with hooks and comments, counters, every kind of set,
//! map and element, every match, counter references, verdicts, rule
//! comments), port sets, and element updates.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferry_netpol::ir::{Chain, Element, Match, PortRange, Rule, Set, SetKey, Verdict};
use ferry_netpol::ranges::Family;
use ferry_netpol::{ElementChange, Protocol, Ruleset};
use ferry_nft::raw::{Attrs, Batch};

use super::*;

#[path = "../../netpol/tests/scenarios/mod.rs"]
mod scenarios;

const NLMSG_HDR_LEN: usize = 16;

/// The messages of a capture from BATCH_BEGIN to BATCH_END (nft's cache
/// requests before it dropped).
fn capture(text: &str) -> Vec<(u16, Vec<u8>)> {
    let all = ferry_testkit::capture::nft_messages(text);
    let begin = all.iter().position(|(t, _)| *t == 16).expect("BATCH_BEGIN");
    all[begin..].to_vec()
}

/// The same split for a batch we built.
fn split(b: Batch) -> Vec<(u16, Vec<u8>)> {
    let bytes = b.seal().bytes;
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
        out.push((ty, rest[NLMSG_HDR_LEN..len].to_vec()));
        rest = &rest[len..];
    }
    out
}

/// An attribute tree, one line each, for failure messages.
fn dump(b: &[u8], depth: usize, out: &mut String) {
    for a in Attrs::new(b) {
        let nested = a.value.len() >= 4 && {
            let l = u16::from_ne_bytes([a.value[0], a.value[1]]) as usize;
            (4..=a.value.len()).contains(&l)
        };
        out.push_str(&format!(
            "{:w$}{} {:02x?}\n",
            "",
            a.ty,
            a.value,
            w = depth * 2
        ));
        if nested && depth < 6 {
            dump(a.value, depth + 1, out);
        }
    }
}

fn show(msg: &(u16, Vec<u8>)) -> String {
    let mut s = format!(
        "type {} nfgen {:02x?}\n",
        msg.0,
        &msg.1[..4.min(msg.1.len())]
    );
    dump(msg.1.get(4..).unwrap_or(&[]), 1, &mut s);
    s
}

fn assert_same(name: &str, ours: &[(u16, Vec<u8>)], nft: &[(u16, Vec<u8>)]) {
    for (i, (o, n)) in ours.iter().zip(nft).enumerate() {
        assert!(
            o == n,
            "{name}: message {i} differs\nours:\n{}\nnft:\n{}",
            show(o),
            show(n)
        );
    }
    assert_eq!(ours.len(), nft.len(), "{name}: number of messages");
}

fn scenario(name: &str) -> Ruleset {
    let policies = scenarios::policies(name);
    ferry_netpol::compile(
        &scenarios::with_policies(&policies),
        &ferry_netpol::Options::new(scenarios::NODE),
    )
}

/// nft's batch for the rendered table is ours from the recreating
/// NEWTABLE on (ours first creates and deletes the table).
fn check_table(rs: &Ruleset, hex: &str, name: &str) {
    let nft = capture(hex);
    let ours = split(replace_batch(rs, 0));
    assert_eq!(ours[1].0, nft_type(NFT_MSG_NEWTABLE));
    assert_eq!(ours[2].0, nft_type(NFT_MSG_DELTABLE));
    let mut rest = vec![ours[0].clone()];
    rest.extend_from_slice(&ours[3..]);
    assert_same(name, &rest, &nft);
}

fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

#[test]
fn scenarios_match_nft_byte_for_byte() {
    let cases = [
        ("named_ports", include_str!("testdata/nft-named_ports.hex")),
        (
            "ip_block_except",
            include_str!("testdata/nft-ip_block_except.hex"),
        ),
        ("sctp", include_str!("testdata/nft-sctp.hex")),
        (
            "egress_dns_only",
            include_str!("testdata/nft-egress_dns_only.hex"),
        ),
        ("end_port", include_str!("testdata/nft-end_port.hex")),
    ];
    for (name, hex) in cases {
        check_table(&scenario(name), hex, name);
    }
}

/// Group chains with the rate-limited NFLOG rule (`--policy-log`):
/// `limit` and `log` expressions as nft encodes them.
#[test]
fn drop_log_rules_match_nft_byte_for_byte() {
    let name = scenarios::DROP_LOG_SCENARIO;
    let rs = scenarios::with_drop_log(name);
    assert!(ferry_netpol::render(&rs).contains(" log prefix "));
    let hex = include_str!("testdata/nft-named_ports.drop_log.hex");
    check_table(&rs, hex, "named_ports with drop log");
}

fn ports(list: &[(u16, u16)]) -> Vec<PortRange> {
    list.iter()
        .map(|&(start, end)| PortRange { start, end })
        .collect()
}

fn accept_ports(p: Protocol, list: &[(u16, u16)]) -> Rule {
    Rule::new(
        vec![Match::Ports {
            protocol: p,
            ports: ports(list),
        }],
        Verdict::Accept,
    )
}

#[test]
fn port_sets_match_nft_byte_for_byte() {
    use Protocol::*;
    let mut drop_udp = accept_ports(Udp, &[(53, 53), (100, 200)]);
    drop_udp.verdict = Verdict::Drop;
    let rs = Ruleset {
        table: "x".into(),
        counters: BTreeSet::new(),
        sets: BTreeMap::from([(
            "a".to_string(),
            Set {
                key: SetKey::Addrs(Family::V4),
                elements: BTreeSet::new(),
            },
        )]),
        chains: vec![Chain {
            name: "c".into(),
            base: None,
            comment: None,
            rules: vec![
                accept_ports(Tcp, &[(80, 80), (443, 443)]),
                accept_ports(Udp, &[(53, 53), (5353, 5353)]),
                accept_ports(Sctp, &[(5000, 5000), (7000, 7010)]),
                drop_udp,
                accept_ports(Sctp, &[(9, 9)]),
                Rule::new(
                    vec![
                        Match::AddrIn {
                            family: Family::V4,
                            field: ferry_netpol::ir::Field::Saddr,
                            set: "a".into(),
                        },
                        Match::Ports {
                            protocol: Tcp,
                            ports: ports(&[(1000, 2000), (60000, 65535)]),
                        },
                    ],
                    Verdict::Accept,
                ),
            ],
        }],
    };
    check_table(&rs, include_str!("testdata/nft-ports.hex"), "ports");
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn range(a: &str, b: &str) -> Element {
    Element::Range {
        start: ip(a),
        end: ip(b),
    }
}

/// NEWSETELEM without NFTA_SET_ELEM_LIST_SET_ID (nft sends the id from
/// its cache for a set of an earlier transaction; the kernel finds the
/// set by name).
fn without_set_id(msg: &(u16, Vec<u8>)) -> (u16, Vec<u8>) {
    if msg.0 != nft_type(NFT_MSG_NEWSETELEM) {
        return msg.clone();
    }
    let mut body = msg.1[..4].to_vec();
    let mut w = ferry_nft::raw::Writer::new(&mut body);
    for a in Attrs::new(&msg.1[4..]) {
        match a.ty {
            NFTA_SET_ELEM_LIST_SET_ID => {}
            NFTA_SET_ELEM_LIST_ELEMENTS => w.nest(a.ty, |w| w.raw(a.value)),
            _ => w.put(a.ty, a.value),
        }
    }
    (msg.0, body)
}

#[test]
fn element_updates_match_nft_byte_for_byte() {
    let set = |key, elements: Vec<Element>| Set {
        key,
        elements: elements.into_iter().collect(),
    };
    let new = Ruleset {
        table: "x".into(),
        counters: BTreeSet::new(),
        sets: BTreeMap::from([
            (
                "m".to_string(),
                set(
                    SetKey::Verdict(Family::V4),
                    vec![Element::Jump(ip("10.0.0.1"), "j".into())],
                ),
            ),
            (
                "a".to_string(),
                set(
                    SetKey::Addrs(Family::V4),
                    vec![
                        range("10.0.0.5", "10.0.0.5"),
                        range("10.1.0.0", "10.1.255.255"),
                        range("10.2.0.0", "10.2.255.255"),
                    ],
                ),
            ),
            (
                "p".to_string(),
                set(
                    SetKey::AddrPort(Family::V4),
                    vec![Element::AddrPort(ip("10.0.0.1"), 81)],
                ),
            ),
        ]),
        chains: vec![],
    };
    let changes = vec![
        ElementChange {
            set: "a".into(),
            added: vec![
                range("10.0.0.5", "10.0.0.5"),
                range("10.1.0.0", "10.1.255.255"),
            ],
            removed: vec![range("10.0.0.1", "10.0.0.1")],
        },
        ElementChange {
            set: "m".into(),
            added: vec![Element::Jump(ip("10.0.0.1"), "j".into())],
            removed: vec![Element::Jump(ip("10.0.0.2"), "j".into())],
        },
        ElementChange {
            set: "p".into(),
            added: vec![Element::AddrPort(ip("10.0.0.1"), 81)],
            removed: vec![Element::AddrPort(ip("10.0.0.1"), 80)],
        },
    ];
    let nft: Vec<_> = capture(include_str!("testdata/nft-elements.hex"))
        .iter()
        .map(without_set_id)
        .collect();
    let ours = split(element_batch(&new, &changes, 0));
    assert_same("elements", &ours, &nft);
}

#[test]
fn long_element_lists_are_split_across_messages() {
    let mut rs = scenario("named_ports");
    let map = rs.sets.get_mut("ingress4").unwrap();
    let chain = match map.elements.iter().next().unwrap() {
        Element::Jump(_, c) => c.clone(),
        e => panic!("{e:?}"),
    };
    for i in 0..20_000u32 {
        let a = std::net::Ipv4Addr::from(0x0a80_0000 + i);
        map.elements.insert(Element::Jump(a.into(), chain.clone()));
    }
    let msgs = split(replace_batch(&rs, 0));
    let parts: Vec<usize> = msgs
        .iter()
        .filter(|(t, b)| {
            *t == nft_type(NFT_MSG_NEWSETELEM)
                && Attrs::new(&b[4..])
                    .get(NFTA_SET_ELEM_LIST_SET)
                    .is_some_and(|s| s.str() == "ingress4")
        })
        .map(|(_, b)| {
            let list = Attrs::new(&b[4..])
                .get(NFTA_SET_ELEM_LIST_ELEMENTS)
                .unwrap();
            list.nested().count()
        })
        .collect();
    assert!(parts.len() > 1, "{parts:?}");
    assert_eq!(parts.iter().sum::<usize>(), 20_002);
    assert!(msgs.iter().all(|(_, b)| b.len() < 65_536));
}

#[test]
fn bad_rulesets_are_refused_before_sending() {
    let mut rs = scenario("named_ports");
    rs.sets
        .get_mut("self4")
        .unwrap()
        .elements
        .insert(range("fd00::1", "fd00::1"));
    let e = validate(&rs).unwrap_err();
    assert!(e.to_string().contains("set self4"), "{e}");
    let mut rs = scenario("named_ports");
    rs.table = String::new();
    assert!(validate(&rs).is_err());
    let mut rs = scenario("named_ports");
    rs.sets.get_mut("in/default/web-http/0.4").unwrap().elements =
        [range("10.0.0.9", "10.0.0.1")].into();
    assert!(validate(&rs).is_err());
}

#[test]
fn base_chain_with_comment_and_negative_priority_matches_nft() {
    let rs = Ruleset {
        table: "x".into(),
        counters: BTreeSet::new(),
        sets: BTreeMap::new(),
        chains: vec![Chain {
            name: "c".into(),
            base: Some(ferry_netpol::ir::BaseChain { priority: -5 }),
            comment: Some("base".into()),
            rules: vec![],
        }],
    };
    check_table(
        &rs,
        include_str!("testdata/nft-base-chain.hex"),
        "base chain",
    );
}
