use super::*;

fn net(s: &str) -> Range {
    of_net(&s.parse().unwrap())
}

fn addr(s: &str) -> u128 {
    to_int(&s.parse().unwrap())
}

#[test]
fn merge_overlapping_and_adjacent() {
    let got = merge(vec![
        net("10.0.1.0/24"),
        net("10.0.0.0/24"),
        net("10.0.0.128/25"),
        net("10.0.3.0/24"),
    ]);
    assert_eq!(
        got,
        vec![
            Range {
                start: addr("10.0.0.0"),
                end: addr("10.0.1.255")
            },
            net("10.0.3.0/24"),
        ]
    );
}

#[test]
fn merge_overlapping_keeps_neighbours_apart() {
    let a = of_addr(&"10.0.0.1".parse().unwrap());
    let b = of_addr(&"10.0.0.2".parse().unwrap());
    assert_eq!(merge_overlapping(vec![b, a, b]), vec![a, b]);
    assert_eq!(
        merge_overlapping(vec![a, net("10.0.0.0/30")]),
        vec![net("10.0.0.0/30")]
    );
    assert_eq!(
        merge(vec![a, b]),
        vec![Range {
            start: a.start,
            end: b.end
        }]
    );
}

#[test]
fn subtract_holes() {
    let got = subtract(
        net("10.0.0.0/16"),
        &[net("10.0.1.0/24"), net("10.0.255.0/24")],
    );
    assert_eq!(
        got,
        vec![
            Range {
                start: addr("10.0.0.0"),
                end: addr("10.0.0.255")
            },
            Range {
                start: addr("10.0.2.0"),
                end: addr("10.0.254.255")
            },
        ]
    );
    assert!(subtract(net("10.0.0.0/24"), &[net("10.0.0.0/16")]).is_empty());
    assert_eq!(
        subtract(net("10.0.0.0/24"), &[net("192.168.0.0/16")]),
        vec![net("10.0.0.0/24")]
    );
    // The top of the IPv6 space.
    let all6 = net("::/0");
    let got = subtract(all6, &[net("ffff::/16")]);
    assert_eq!(
        got,
        vec![Range {
            start: 0,
            end: addr("fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        }]
    );
}

#[test]
fn prefixes() {
    assert_eq!(prefix_len(Family::V4, net("10.0.0.0/24")), Some(24));
    assert_eq!(prefix_len(Family::V4, net("10.0.0.7/32")), Some(32));
    assert_eq!(prefix_len(Family::V4, net("0.0.0.0/0")), Some(0));
    assert_eq!(prefix_len(Family::V6, net("::/0")), Some(0));
    assert_eq!(prefix_len(Family::V6, net("fd00::/64")), Some(64));
    let odd = Range {
        start: addr("10.0.0.1"),
        end: addr("10.0.0.2"),
    };
    assert_eq!(prefix_len(Family::V4, odd), None);
}
