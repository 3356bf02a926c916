//! apply / read_table / delete_table against the real kernel, each test in
//! a fresh netns, checked with `nft` (test-side only).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{masq, objects, set_elements, squeeze, Ns};
use ferry_nft::{
    apply, apply_if_changed, delete_table, normalize, read_table, Counter, IpFamily, DEFAULT_TABLE,
};
use serde_json::json;

const CIDRS: [&str; 4] = [
    "10.244.0.0/16",
    "10.96.0.0/12",
    "10.244.3.0/24", // inside the first: merged away
    "fd00:10:244::/56",
];

#[test]
fn apply_writes_the_documented_table() {
    let ns = Ns::new("nftw");
    let t = masq(DEFAULT_TABLE, &CIDRS, "eth0");
    ns.run(|| apply(&t)).unwrap();

    let text = ns.nft(&["list", "table", "inet", "ferry"]).unwrap();
    assert_eq!(
        squeeze(&text),
        [
            "table inet ferry {",
            "set cluster4 {",
            "type ipv4_addr",
            "flags interval",
            "elements = { 10.96.0.0/12, 10.244.0.0/16 }",
            "}",
            "set cluster6 {",
            "type ipv6_addr",
            "flags interval",
            "elements = { fd00:10:244::/56 }",
            "}",
            "chain postrouting {",
            "type nat hook postrouting priority srcnat; policy accept;",
            "oifname \"eth0\" ip saddr @cluster4 ip daddr != @cluster4 counter packets 0 bytes 0 masquerade",
            "oifname \"eth0\" ip6 saddr @cluster6 ip6 daddr != @cluster6 counter packets 0 bytes 0 masquerade",
            "}",
            "}",
        ],
        "{text}"
    );

    let j = ns.nft_json("ferry").unwrap();
    assert_eq!(
        set_elements(&j, "cluster4"),
        ["10.96.0.0/12", "10.244.0.0/16"]
    );
    assert_eq!(set_elements(&j, "cluster6"), ["fd00:10:244::/56"]);
    let chains = objects(&j, "chain");
    assert_eq!(chains.len(), 1);
    let c = chains[0];
    assert_eq!(
        (&c["name"], &c["type"], &c["hook"], &c["prio"], &c["policy"]),
        (
            &json!("postrouting"),
            &json!("nat"),
            &json!("postrouting"),
            &json!(100),
            &json!("accept")
        )
    );
    let rules = objects(&j, "rule");
    assert_eq!(rules.len(), 2);
    let expr = &rules[0]["expr"];
    assert_eq!(expr[0]["match"]["left"]["meta"]["key"], "oifname");
    assert_eq!(expr[0]["match"]["right"], "eth0");
    assert_eq!(expr[1]["match"]["left"]["payload"]["field"], "saddr");
    assert_eq!(expr[1]["match"]["right"], "@cluster4");
    assert_eq!(expr[2]["match"]["op"], "!=");
    assert!(expr[3].get("counter").is_some());
    assert!(expr[4].get("masquerade").is_some());
    assert_eq!(
        rules[1]["expr"][1]["match"]["left"]["payload"]["protocol"],
        "ip6"
    );
}

#[test]
fn reapply_replaces_everything_and_is_one_batch() {
    let ns = Ns::new("nftr");
    let a = masq("ferry", &CIDRS, "eth0");
    let b = masq(
        "ferry",
        &["10.245.0.0/16", "10.245.1.0/24", "10.246.0.0/16"],
        "uplink",
    );
    ns.run(|| apply(&a)).unwrap();
    for _ in 0..2 {
        ns.run(|| apply(&b)).unwrap();
        let j = ns.nft_json("ferry").unwrap();
        // Adjacent 10.245/16 and 10.246/16 merge into one interval; nft
        // shows it as the range it is.
        assert_eq!(set_elements(&j, "cluster4"), ["10.245.0.0-10.246.255.255"]);
        assert!(set_elements(&j, "cluster6").is_empty());
        assert_eq!(objects(&j, "set").len(), 2);
        assert_eq!(objects(&j, "chain").len(), 1, "no duplicate chain");
        let rules = objects(&j, "rule");
        assert_eq!(rules.len(), 1, "only the v4 rule, once: {j}");
        assert_eq!(rules[0]["expr"][0]["match"]["right"], "uplink");
    }
    let s = ns.run(|| read_table("ferry")).unwrap().unwrap();
    assert!(s.matches(&b) && !s.matches(&a));
    // What is sent is one batch: begin, the replace, end.
    let plan = ferry_nft::plan(&b).unwrap();
    assert_eq!(plan.iter().filter(|l| *l == "BATCH_BEGIN").count(), 1);
    assert_eq!(
        &plan[..4],
        [
            "BATCH_BEGIN",
            "NEWTABLE ferry",
            "DELTABLE ferry",
            "NEWTABLE ferry"
        ]
    );
    assert_eq!(plan.last().unwrap(), "BATCH_END");
}

#[test]
fn a_concurrent_reader_sees_the_old_or_the_new_table_never_less() {
    let ns = Ns::new("nftc");
    let a = masq("ferry", &["10.244.0.0/16", "fd00:10:244::/56"], "eth0");
    let b = masq("ferry", &["10.245.0.0/16", "fd00:10:245::/56"], "eth0");
    ns.run(|| apply(&a)).unwrap();
    let done = AtomicBool::new(false);
    let reads = AtomicUsize::new(0);
    let applies = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let j = ns
                    .nft_json("ferry")
                    .expect("table present at every instant");
                let v4 = set_elements(&j, "cluster4");
                assert!(v4 == ["10.244.0.0/16"] || v4 == ["10.245.0.0/16"], "{v4:?}");
                assert_eq!(set_elements(&j, "cluster6").len(), 1);
                assert_eq!(objects(&j, "chain").len(), 1);
                assert_eq!(objects(&j, "rule").len(), 2, "{j}");
                reads.fetch_add(1, Ordering::SeqCst);
            }
        });
        // Replace the table over and over while `nft` lists it (bounded).
        let mut applies = 0;
        while applies < 5000 && (applies < 100 || reads.load(Ordering::SeqCst) < 30) {
            let t = if applies % 2 == 0 { &b } else { &a };
            ns.run(|| apply(t)).unwrap();
            applies += 1;
        }
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap();
        applies
    });
    assert!(reads.load(Ordering::SeqCst) >= 30, "{applies} applies");
}

#[test]
fn delete_table_reports_whether_it_was_there() {
    let ns = Ns::new("nftd");
    assert!(!ns.run(|| delete_table("ferry")).unwrap());
    ns.run(|| apply(&masq("ferry", &CIDRS, "eth0"))).unwrap();
    assert!(ns.nft_json("ferry").is_some());
    assert!(ns.run(|| delete_table("ferry")).unwrap());
    assert!(ns.nft_json("ferry").is_none());
    assert!(ns.run(|| read_table("ferry")).unwrap().is_none());
    assert!(!ns.run(|| delete_table("ferry")).unwrap());
}

#[test]
fn other_tables_are_untouched() {
    let ns = Ns::new("nfto");
    let setup = [
        "add table ip other",
        "add chain ip other input { type filter hook input priority 0; policy accept; }",
        "add rule ip other input tcp dport 22 counter accept",
        "add table ip ferry", // same name, other family
        "add chain ip ferry post { type nat hook postrouting priority 50; }",
        "add table inet keep",
        "add set inet keep s { type ipv4_addr; flags interval; elements = { 10.0.0.0/8 } }",
    ];
    for cmd in setup {
        ns.nft(&cmd.split(' ').collect::<Vec<_>>())
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    }
    let others = || {
        ["ip other", "ip ferry", "inet keep"].map(|t| {
            let mut args = vec!["list", "table"];
            args.extend(t.split(' '));
            ns.nft(&args).unwrap()
        })
    };
    let before = others();
    ns.run(|| apply(&masq("ferry", &CIDRS, "eth0"))).unwrap();
    ns.run(|| apply(&masq("ferry", &["10.1.0.0/16"], "eth1")))
        .unwrap();
    assert_eq!(others(), before);
    assert!(ns.run(|| delete_table("ferry")).unwrap());
    assert_eq!(others(), before);
    // The inet table is gone; the ip one of the same name is not.
    assert!(ns.nft_json("ferry").is_none());
    assert!(ns.nft(&["list", "table", "ip", "ferry"]).is_ok());
    assert!(!ns.run(|| delete_table("ferry")).unwrap());
}

#[test]
fn read_table_round_trips_apply() {
    let ns = Ns::new("nftrt");
    assert!(ns.run(|| read_table("ferry")).unwrap().is_none());
    let t = masq("ferry", &CIDRS, "eth0");
    ns.run(|| apply(&t)).unwrap();
    let s = ns.run(|| read_table("ferry")).unwrap().unwrap();
    assert!(s.matches(&t), "{s:#?}");
    assert_eq!(s.cluster_cidrs(), normalize(&t.cluster_cidrs));
    assert_eq!(
        s.cluster_cidrs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.96.0.0/12", "10.244.0.0/16", "fd00:10:244::/56"]
    );
    assert_eq!(s.out_ifname(), Some("eth0"));
    assert_eq!(s.counter(IpFamily::V4), Some(Counter::default()));
    assert_eq!(s.counter(IpFamily::V6), Some(Counter::default()));
    // Handles are the kernel's: distinct and non-zero.
    assert!(s.rules.iter().all(|r| r.handle != 0));
    assert_ne!(s.rules[0].handle, s.rules[1].handle);

    // Edge intervals: from 0, to the top, single addresses.
    let edges = masq(
        "edges",
        &["0.0.0.0/8", "255.255.255.0/24", "10.0.0.1/32", "::/0"],
        "eth0",
    );
    ns.run(|| apply(&edges)).unwrap();
    let s = ns.run(|| read_table("edges")).unwrap().unwrap();
    assert!(s.matches(&edges), "{s:#?}");
    let j = ns.nft_json("edges").unwrap();
    assert_eq!(
        set_elements(&j, "cluster4"),
        ["0.0.0.0/8", "10.0.0.1", "255.255.255.0/24"]
    );
    assert_eq!(set_elements(&j, "cluster6"), ["::/0"]);
}

#[test]
fn apply_if_changed_leaves_an_up_to_date_table_alone() {
    let ns = Ns::new("nfti");
    let t = masq("ferry", &CIDRS, "eth0");
    assert!(ns.run(|| apply_if_changed(&t)).unwrap(), "absent: applied");
    let handles = |ns: &Ns| -> Vec<u64> {
        let s = ns.run(|| read_table("ferry")).unwrap().unwrap();
        s.rules.iter().map(|r| r.handle).collect()
    };
    let before = handles(&ns);
    // Same addresses, written differently: nothing to do.
    let same = masq(
        "ferry",
        &[
            "10.244.0.0/17",
            "10.244.128.0/17",
            "10.96.0.0/12",
            "fd00:10:244::/56",
        ],
        "eth0",
    );
    assert!(!ns.run(|| apply_if_changed(&same)).unwrap());
    assert_eq!(handles(&ns), before, "rules not replaced");
    // A different interface: replaced.
    let other = masq("ferry", &CIDRS, "eth1");
    assert!(ns.run(|| apply_if_changed(&other)).unwrap());
    let s = ns.run(|| read_table("ferry")).unwrap().unwrap();
    assert_eq!(s.out_ifname(), Some("eth1"));
    // A table edited behind ferry's back is repaired.
    ns.nft(&["add", "rule", "inet", "ferry", "postrouting", "counter"])
        .unwrap();
    assert!(!ns
        .run(|| read_table("ferry"))
        .unwrap()
        .unwrap()
        .matches(&other));
    assert!(ns.run(|| apply_if_changed(&other)).unwrap());
    assert!(ns
        .run(|| read_table("ferry"))
        .unwrap()
        .unwrap()
        .matches(&other));
}

#[test]
fn many_cidrs_in_one_batch() {
    let ns = Ns::new("nftm");
    // 3000 disjoint IPv4 /24s and 3000 IPv6 /64s: several NEWSETELEM
    // messages and a batch over the default socket buffer.
    let v4: Vec<String> = (0..3000u32)
        .map(|i| format!("10.{}.{}.0/24", 100 + i / 128, (i % 128) * 2))
        .collect();
    let v6: Vec<String> = (0..3000u32)
        .map(|i| format!("fd00:0:0:{:x}::/64", i * 2))
        .collect();
    let all: Vec<&str> = v4.iter().chain(&v6).map(String::as_str).collect();
    let t = masq("ferry", &all, "eth0");
    ns.run(|| apply(&t)).unwrap();
    let s = ns.run(|| read_table("ferry")).unwrap().unwrap();
    assert_eq!(s.cluster_cidrs().len(), 6000);
    assert!(s.matches(&t));
    let j = ns.nft_json("ferry").unwrap();
    assert_eq!(set_elements(&j, "cluster4").len(), 3000);
    assert_eq!(set_elements(&j, "cluster6").len(), 3000);
}
