use super::*;

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn strs(list: &[IpNet]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

fn v4(a: &str) -> u128 {
    u32::from(a.parse::<Ipv4Addr>().unwrap()).into()
}

#[test]
fn merges_overlapping_adjacent_and_contained() {
    let input = nets(&[
        "10.244.1.0/24",
        "10.244.0.0/24",   // adjacent to the one above
        "10.244.0.128/25", // contained
        "10.96.0.0/12",
        "10.100.0.0/16", // inside 10.96/12
        "192.168.0.0/24",
        "192.168.2.0/24", // a gap at .1: stays apart
        "fd00:10:244::/56",
        "fd00:10:244:100::/56", // adjacent
    ]);
    assert_eq!(
        strs(&normalize(&input)),
        [
            "10.96.0.0/12",
            "10.244.0.0/23",
            "192.168.0.0/24",
            "192.168.2.0/24",
            "fd00:10:244::/55"
        ]
    );
    let ranges = merged_ranges(IpFamily::V4, &input);
    assert_eq!(ranges.len(), 4);
    assert_eq!(ranges[0].start, v4("10.96.0.0"));
    assert_eq!(ranges[0].end, v4("10.111.255.255"));
}

#[test]
fn host_bits_are_ignored_and_duplicates_collapse() {
    let input = nets(&["10.244.0.5/16", "10.244.0.0/16", "10.244.7.7/16"]);
    assert_eq!(strs(&normalize(&input)), ["10.244.0.0/16"]);
}

#[test]
fn normalize_agrees_with_ipnet_aggregate() {
    // A deterministic pseudo-random mix, checked against ipnet's own.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..50 {
        let mut input = Vec::new();
        for _ in 0..40 {
            let r = next();
            let prefix = 20 + (r % 9) as u8;
            let addr = Ipv4Addr::from(0x0af4_0000 | (r >> 32) as u32 & 0xffff);
            input.push(IpNet::V4(Ipv4Net::new(addr, prefix).unwrap().trunc()));
            let addr6 = Ipv6Addr::from(0xfd00_0010_0244u128 << 80 | u128::from(r as u16) << 64);
            input.push(IpNet::V6(
                Ipv6Net::new(addr6, 56 + (r % 9) as u8).unwrap().trunc(),
            ));
        }
        let mut expect = IpNet::aggregate(&input);
        expect.sort_by_key(|n| (IpFamily::of(n), n.network(), n.prefix_len()));
        assert_eq!(normalize(&input), expect);
    }
}

#[test]
fn range_to_cidrs_edges() {
    let f = IpFamily::V4;
    let all = Range {
        start: 0,
        end: f.max(),
    };
    assert_eq!(strs(&range_to_cidrs(f, all)), ["0.0.0.0/0"]);
    let r = Range {
        start: v4("10.0.0.1"),
        end: v4("10.0.0.6"),
    };
    assert_eq!(
        strs(&range_to_cidrs(f, r)),
        ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
    );
    let top = Range {
        start: v4("255.255.255.254"),
        end: f.max(),
    };
    assert_eq!(strs(&range_to_cidrs(f, top)), ["255.255.255.254/31"]);
    let six = IpFamily::V6;
    let all6 = Range {
        start: 0,
        end: six.max(),
    };
    assert_eq!(strs(&range_to_cidrs(six, all6)), ["::/0"]);
    let last = Range {
        start: six.max(),
        end: six.max(),
    };
    assert_eq!(
        strs(&range_to_cidrs(six, last)),
        ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"]
    );
}

fn elem(key: u128, end: bool, open: bool) -> Elem {
    Elem { key, end, open }
}

#[test]
fn elements_like_nft() {
    // 10.96/12 and 10.244/16: what nft 1.0.6 sends (see testdata).
    let ranges = merged_ranges(IpFamily::V4, &nets(&["10.244.0.0/16", "10.96.0.0/12"]));
    assert_eq!(
        interval_elements(IpFamily::V4, &ranges),
        [
            elem(0, true, false),
            elem(v4("10.96.0.0"), false, false),
            elem(v4("10.112.0.0"), true, false),
            elem(v4("10.244.0.0"), false, false),
            elem(v4("10.245.0.0"), true, false),
        ]
    );
    // Starting at 0: no leading end element; reaching the top: open.
    let ranges = merged_ranges(IpFamily::V4, &nets(&["0.0.0.0/8", "255.255.255.0/24"]));
    assert_eq!(
        interval_elements(IpFamily::V4, &ranges),
        [
            elem(0, false, false),
            elem(v4("1.0.0.0"), true, false),
            elem(v4("255.255.255.0"), false, true),
        ]
    );
    let ranges = merged_ranges(IpFamily::V6, &nets(&["::/0"]));
    assert_eq!(
        interval_elements(IpFamily::V6, &ranges),
        [elem(0, false, true)]
    );
    assert!(interval_elements(IpFamily::V4, &[]).is_empty());
}

#[test]
fn elements_round_trip_in_any_order() {
    for list in [
        &["10.244.0.0/16", "10.96.0.0/12", "10.0.0.1/32"][..],
        &["0.0.0.0/0"],
        &["0.0.0.0/1", "192.0.0.0/2"],
        &["255.255.255.255/32", "0.0.0.0/32"],
        &["fd00:10:244::/56", "::/128", "ffff::/16"],
    ] {
        let input = nets(list);
        for family in [IpFamily::V4, IpFamily::V6] {
            let ranges = merged_ranges(family, &input);
            let mut elems = interval_elements(family, &ranges);
            elems.reverse(); // the rbtree dumps in descending order
            assert_eq!(elements_to_ranges(family, &elems), ranges, "{list:?}");
        }
    }
}

#[test]
fn foreign_element_shapes_read_sensibly() {
    let f = IpFamily::V4;
    // Touching intervals (an end and a start at one key) read as one range.
    let elems = [
        elem(10, false, false),
        elem(20, true, false),
        elem(20, false, false),
        elem(30, true, false),
    ];
    assert_eq!(
        elements_to_ranges(f, &elems),
        [Range { start: 10, end: 29 }]
    );
    // Lone end elements mean nothing.
    assert!(elements_to_ranges(f, &[elem(0, true, false), elem(5, true, false)]).is_empty());
}

#[test]
fn keys() {
    assert_eq!(key_bytes(IpFamily::V4, v4("10.96.0.0")), [10, 96, 0, 0]);
    let k6 = key_bytes(IpFamily::V6, 1);
    assert_eq!(k6.len(), 16);
    assert_eq!(k6[15], 1);
    assert_eq!(
        key_from_bytes(IpFamily::V4, &[10, 96, 0, 0]),
        Some(v4("10.96.0.0"))
    );
    assert_eq!(key_from_bytes(IpFamily::V6, &k6), Some(1));
    assert_eq!(key_from_bytes(IpFamily::V4, &k6), None);
}
