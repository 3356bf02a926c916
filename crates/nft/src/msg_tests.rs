//! Golden tests: our messages, byte for byte, against what nft 1.0.6 sends
//! for the same ruleset (`nft --debug=mnl -f FILE`, captured in testdata/).

use ipnet::IpNet;

use super::*;
use crate::cidr::{interval_elements, merged_ranges};
use crate::nla::Attrs;
use ferry_testkit::capture::nft_messages as capture;

/// The same split for bytes we built.
fn split(bytes: &[u8]) -> Vec<(u16, u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
        let flags = u16::from_ne_bytes(rest[6..8].try_into().unwrap());
        out.push((ty, flags, rest[NLMSG_HDR_LEN..len].to_vec()));
        rest = &rest[len..];
    }
    out
}

fn of_type(msgs: &[(u16, Vec<u8>)], msg: u16) -> Vec<&Vec<u8>> {
    msgs.iter()
        .filter(|(t, _)| *t == nft_type(msg))
        .map(|(_, b)| b)
        .collect()
}

fn ours_of_type(msgs: &[(u16, u16, Vec<u8>)], msg: u16) -> Vec<&Vec<u8>> {
    msgs.iter()
        .filter(|(t, _, _)| *t == nft_type(msg))
        .map(|(_, _, b)| b)
        .collect()
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn ferry_table() -> crate::MasqueradeTable {
    crate::MasqueradeTable {
        name: "ferry".into(),
        cluster_cidrs: nets(&["10.244.0.0/16", "10.96.0.0/12", "fd00:10:244::/56"]),
        out_ifname: "eth0".into(),
    }
}

#[test]
fn replace_batch_matches_nft_byte_for_byte() {
    let nft = capture(include_str!("testdata/nft-ferry.hex"));
    let ours = split(&crate::replace_batch(&ferry_table(), 100).seal().bytes);

    // Framing: BATCH_BEGIN / BATCH_END with res_id NFNL_SUBSYS_NFTABLES.
    let begin = nft
        .iter()
        .find(|(t, _)| *t == NFNL_MSG_BATCH_BEGIN)
        .unwrap();
    assert_eq!(ours[0].0, NFNL_MSG_BATCH_BEGIN);
    assert_eq!(ours[0].2, begin.1);
    let end = ours.last().unwrap();
    assert_eq!((end.0, &end.2), (NFNL_MSG_BATCH_END, &begin.1));

    // The recreated table (our third message) is nft's `add table`.
    let tables = ours_of_type(&ours, NFT_MSG_NEWTABLE);
    assert_eq!(tables.len(), 2);
    assert_eq!(tables[1], of_type(&nft, NFT_MSG_NEWTABLE)[0]);
    for msg in [
        NFT_MSG_NEWCHAIN,
        NFT_MSG_NEWSET,
        NFT_MSG_NEWSETELEM,
        NFT_MSG_NEWRULE,
    ] {
        let (a, b) = (ours_of_type(&ours, msg), of_type(&nft, msg));
        assert_eq!(a.len(), b.len(), "count of message {msg}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(hex(x), hex(y), "message {msg} #{i}");
        }
    }
}

#[test]
fn replace_batch_order_and_flags() {
    let ours = split(&crate::replace_batch(&ferry_table(), 100).seal().bytes);
    let types: Vec<u16> = ours.iter().map(|m| m.0).collect();
    let t = nft_type;
    assert_eq!(
        types,
        [
            NFNL_MSG_BATCH_BEGIN,
            t(NFT_MSG_NEWTABLE),
            t(NFT_MSG_DELTABLE),
            t(NFT_MSG_NEWTABLE),
            t(NFT_MSG_NEWSET),
            t(NFT_MSG_NEWSETELEM),
            t(NFT_MSG_NEWSET),
            t(NFT_MSG_NEWSETELEM),
            t(NFT_MSG_NEWCHAIN),
            t(NFT_MSG_NEWRULE),
            t(NFT_MSG_NEWRULE),
            NFNL_MSG_BATCH_END,
        ]
    );
    // Every message between the batch markers asks for an ACK; none
    // creates exclusively (the first NEWTABLE must accept an existing one).
    for (ty, flags, _) in &ours[1..ours.len() - 1] {
        assert_eq!(
            flags & (NLM_F_REQUEST | NLM_F_ACK),
            NLM_F_REQUEST | NLM_F_ACK,
            "{ty}"
        );
        assert_eq!(flags & NLM_F_EXCL, 0, "{ty}");
    }
    assert_eq!(ours[0].1 & NLM_F_ACK, 0);
}

#[test]
fn edge_intervals_match_nft() {
    let nft = capture(include_str!("testdata/nft-edges.hex"));
    let mut b = Batch::new(1);
    let sets = [
        (
            "a",
            1,
            IpFamily::V4,
            nets(&["0.0.0.0/8", "255.255.255.0/24"]),
        ),
        ("b", 2, IpFamily::V4, nets(&["0.0.0.0/0"])),
        ("c", 3, IpFamily::V6, nets(&["ffff::/16", "::/120"])),
    ];
    for (name, id, family, cidrs) in &sets {
        new_interval_set(&mut b, "t", name, *id, *family);
        let elems = interval_elements(*family, &merged_ranges(*family, cidrs));
        new_set_elems(&mut b, "t", name, *id, *family, &elems);
    }
    let ours = split(&b.seal().bytes);
    for msg in [NFT_MSG_NEWSET, NFT_MSG_NEWSETELEM] {
        let (a, b) = (ours_of_type(&ours, msg), of_type(&nft, msg));
        assert_eq!(a.len(), 3);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(hex(x), hex(y), "message {msg} #{i}");
        }
    }
}

#[test]
fn large_element_lists_are_split_under_64k() {
    // 5000 disjoint /64s: 10001 elements of 36 bytes do not fit one
    // attribute.
    let cidrs: Vec<IpNet> = (0..5000u128)
        .map(|i| {
            let addr = std::net::Ipv6Addr::from(0xfd00u128 << 112 | (i * 2) << 64);
            IpNet::V6(ipnet::Ipv6Net::new(addr, 64).unwrap())
        })
        .collect();
    let elems = interval_elements(IpFamily::V6, &merged_ranges(IpFamily::V6, &cidrs));
    assert_eq!(elems.len(), 10_001);
    let mut b = Batch::new(1);
    new_set_elems(&mut b, "ferry", "cluster6", 2, IpFamily::V6, &elems);
    let sealed = b.seal();
    let ours = split(&sealed.bytes);
    let parts = ours_of_type(&ours, NFT_MSG_NEWSETELEM);
    assert!(parts.len() > 1, "{} parts", parts.len());
    assert_eq!(sealed.acked.len(), parts.len());
    let mut count = 0;
    for p in parts {
        let list = Attrs::new(&p[NFGENMSG_LEN..])
            .get(NFTA_SET_ELEM_LIST_ELEMENTS)
            .expect("elements");
        assert!(list.value.len() < 65_535);
        count += list.nested().count();
    }
    assert_eq!(count, 10_001);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
