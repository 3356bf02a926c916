use super::*;
use crate::read::{parse_chain, parse_rule, parse_set, set_state};
use crate::sys::*;

fn table(cidrs: &[&str], ifname: &str) -> MasqueradeTable {
    MasqueradeTable {
        name: DEFAULT_TABLE.into(),
        cluster_cidrs: cidrs.iter().map(|s| s.parse().unwrap()).collect(),
        out_ifname: ifname.into(),
    }
}

/// Decodes our own batch with the dump decoders: requests and dump
/// answers share their attribute layout, so this is what `read_table`
/// would report right after `apply` (counters at zero).
fn decode_own_batch(t: &MasqueradeTable) -> TableState {
    let bytes = replace_batch(t, 1).seal().bytes;
    let mut sets = Vec::new();
    let mut elems: Vec<(String, Vec<u8>)> = Vec::new();
    let mut chains = Vec::new();
    let mut rules = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
        let attrs = rest[NLMSG_HDR_LEN + NFGENMSG_LEN..len].to_vec();
        rest = &rest[len..];
        if ty == nft_type(NFT_MSG_NEWSET) {
            sets.push(attrs);
        } else if ty == nft_type(NFT_MSG_NEWSETELEM) {
            let set = nla::Attrs::new(&attrs)
                .get(NFTA_SET_ELEM_LIST_SET)
                .unwrap()
                .str();
            elems.push((set, attrs));
        } else if ty == nft_type(NFT_MSG_NEWCHAIN) {
            chains.push(parse_chain(&attrs, &t.name).unwrap());
        } else if ty == nft_type(NFT_MSG_NEWRULE) {
            rules.push(parse_rule(&attrs, &t.name).unwrap());
        }
    }
    let sets = sets
        .iter()
        .map(|raw| {
            let h = parse_set(raw).unwrap();
            let name = nla::Attrs::new(raw).get(NFTA_SET_NAME).unwrap().str();
            let mine: Vec<Vec<u8>> = elems
                .iter()
                .filter(|(s, _)| *s == name)
                .map(|(_, e)| e.clone())
                .collect();
            set_state(h, &mine)
        })
        .collect();
    TableState {
        name: t.name.clone(),
        sets,
        chains,
        rules,
    }
}

#[test]
fn own_batch_decodes_to_what_was_asked() {
    let t = table(
        &[
            "10.244.1.0/24",
            "10.244.0.0/24",
            "10.96.0.0/12",
            "fd00:10:244::/56",
        ],
        "eth0",
    );
    let s = decode_own_batch(&t);
    assert!(s.matches(&t), "{s:#?}");
    assert_eq!(
        s.cluster_cidrs(),
        normalize(&t.cluster_cidrs),
        "merged CIDRs read back"
    );
    assert_eq!(s.out_ifname(), Some("eth0"));
    assert_eq!(s.masquerade_rules().count(), 2);
    let r4 = &s.rules[0];
    assert_eq!(r4.family, Some(IpFamily::V4));
    assert_eq!(r4.saddr_set.as_deref(), Some(SET4));
    assert_eq!(r4.daddr_not_in_set.as_deref(), Some(SET4));
    assert_eq!(r4.counter, Some(Counter::default()));
    assert_eq!(s.rules[1].saddr_set.as_deref(), Some(SET6));
    assert_eq!(s.chains[0].hook, Some(NF_INET_POST_ROUTING));
    assert_eq!(s.chains[0].priority, Some(100));
    assert_eq!(s.masqueraded(), Counter::default());
}

#[test]
fn matches_notices_every_difference() {
    let t = table(&["10.244.0.0/16", "fd00:10:244::/56"], "eth0");
    let s = decode_own_batch(&t);
    assert!(s.matches(&t));
    // The same addresses written differently still match.
    let same = table(
        &["10.244.0.0/17", "10.244.128.0/17", "fd00:10:244::/56"],
        "eth0",
    );
    assert!(s.matches(&same));

    assert!(!s.matches(&table(&["10.244.0.0/16"], "eth0")), "v6 gone");
    assert!(!s.matches(&table(&["10.245.0.0/16", "fd00:10:244::/56"], "eth0")));
    assert!(!s.matches(&table(&["10.244.0.0/16", "fd00:10:244::/56"], "eth1")));
    let mut renamed = t.clone();
    renamed.name = "other".into();
    assert!(!s.matches(&renamed));

    let mut extra_rule = s.clone();
    extra_rule.rules.push(s.rules[0].clone());
    assert!(!extra_rule.matches(&t));
    let mut no_counter = s.clone();
    no_counter.rules[1].counter = None;
    assert!(!no_counter.matches(&t));
    let mut hook = s.clone();
    hook.chains[0].priority = Some(0);
    assert!(!hook.matches(&t));
}

#[test]
fn a_family_without_cidrs_has_an_empty_set_and_no_rule() {
    let t = table(&["10.244.0.0/16"], "eth0");
    let lines = plan(&t).unwrap();
    assert_eq!(lines.iter().filter(|l| l.starts_with("NEWRULE")).count(), 1);
    assert!(lines.iter().any(|l| l == "NEWSET cluster6"));
    assert!(!lines.iter().any(|l| l.starts_with("NEWSETELEM cluster6")));
    let s = decode_own_batch(&t);
    assert!(s.matches(&t));
    assert_eq!(s.rules[0].family, Some(IpFamily::V4));
    assert!(s.set(SET6).unwrap().cidrs.is_empty());

    let none = table(&[], "eth0");
    let s = decode_own_batch(&none);
    assert!(s.rules.is_empty());
    assert!(s.matches(&none));
}

#[test]
fn plan_is_one_batch_that_replaces_the_table() {
    let lines = plan(&table(&["10.244.0.0/16", "fd00::/64"], "eth0")).unwrap();
    assert_eq!(
        lines,
        [
            "BATCH_BEGIN",
            "NEWTABLE ferry",
            "DELTABLE ferry",
            "NEWTABLE ferry",
            "NEWSET cluster4",
            "NEWSETELEM cluster4 (3 elements)",
            "NEWSET cluster6",
            "NEWSETELEM cluster6 (3 elements)",
            "NEWCHAIN postrouting",
            "NEWRULE postrouting (V4 masquerade)",
            "NEWRULE postrouting (V6 masquerade)",
            "BATCH_END",
        ]
    );
}

#[test]
fn invalid_names_are_refused_before_sending() {
    for (name, ifname) in [
        ("", "eth0"),
        ("a\0b", "eth0"),
        ("ferry", ""),
        ("ferry", "sixteen-bytes-xx"),
        ("ferry", "eth/0"),
        ("ferry", "eth 0"),
    ] {
        let mut t = table(&["10.0.0.0/8"], ifname);
        t.name = name.into();
        assert!(
            matches!(t.validate(), Err(NftError::Invalid(_))),
            "{name:?} {ifname:?}"
        );
        assert!(matches!(apply(&t), Err(NftError::Invalid(_))));
    }
    assert!(table(&[], "fifteen-bytes-x").validate().is_ok());
    assert!(matches!(delete_table(""), Err(NftError::Invalid(_))));
    assert!(matches!(
        read_table(&"x".repeat(256)),
        Err(NftError::Invalid(_))
    ));
}

/// A named netns for the one test that talks to the kernel from here.
struct TestNs(String);

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = ferry_netns::delete_named(&self.0);
    }
}

#[test]
fn kernel_errors_are_collected_per_message_and_nothing_is_applied() {
    let guard = TestNs(ferry_testkit::unique("nfterr"));
    let path = ferry_netns::create_named(&guard.0).unwrap();
    let ns = ferry_netns::NetNs::open(&path).unwrap();
    let err = ns
        .run(|| {
            let mut sock = NfSocket::open().unwrap();
            let mut b = Batch::new(sock.reserve_seq(1));
            msg::new_table(&mut b, "ferry");
            msg::new_interval_set(&mut b, "ferry", SET4, 1, IpFamily::V4);
            msg::new_nat_postrouting_chain(&mut b, "ferry", CHAIN);
            msg::new_masquerade_rule(&mut b, "ferry", "nochain", IpFamily::V4, "eth0", SET4, 1);
            msg::new_masquerade_rule(&mut b, "ferry", CHAIN, IpFamily::V4, "eth0", "noset", 9);
            sock.send_batch("ferry", &b.seal()).unwrap_err()
        })
        .unwrap();
    let NftError::Batch {
        table: name,
        errors,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(name, "ferry");
    let got: Vec<(&str, i32)> = errors.iter().map(|e| (e.what.as_str(), e.errno)).collect();
    assert_eq!(
        got,
        [
            ("NEWRULE nochain (V4 masquerade)", 2),
            ("NEWRULE postrouting (V4 masquerade)", 2)
        ],
        "{err}"
    );
    assert_eq!(err.errno(), Some(2));
    // The batch was aborted as a whole: not even the table exists.
    assert!(ns.run(|| read_table("ferry")).unwrap().unwrap().is_none());
    // And a good batch on the same kind of socket goes through.
    let t = table(&["10.0.0.0/8"], "eth0");
    ns.run(|| apply(&t)).unwrap().unwrap();
    assert!(ns
        .run(|| read_table("ferry"))
        .unwrap()
        .unwrap()
        .unwrap()
        .matches(&t));
}
