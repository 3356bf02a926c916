//! How long `apply` (and `read_table`) take for 1 vs many cluster CIDRs,
//! in a throw-away netns. Prints numbers; asserts nothing about time.
//!
//! ```text
//! cargo run --release -p ferry-nft --example apply_bench [ROUNDS]
//! ```

use std::time::{Duration, Instant};

use ferry_netns::NetNs;
use ferry_nft::{apply, read_table, MasqueradeTable};
use ipnet::IpNet;

struct Guard(String);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = ferry_netns::delete_named(&self.0);
    }
}

/// `n` disjoint (non-adjacent) /24s in 10.0.0.0/8.
fn v4(n: u32) -> Vec<IpNet> {
    (0..n)
        .map(|i| {
            format!("10.{}.{}.0/24", i / 128, (i % 128) * 2)
                .parse()
                .unwrap()
        })
        .collect()
}

/// `n` disjoint /64s in fd00::/48.
fn v6(n: u32) -> Vec<IpNet> {
    (0..n)
        .map(|i| format!("fd00:0:0:{:x}::/64", i * 2).parse().unwrap())
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(21, |a| a.parse().expect("ROUNDS is a number"));
    let guard = Guard(ferry_testkit::unique("nftbench"));
    let path = ferry_netns::create_named(&guard.0).expect("create netns");
    let ns = NetNs::open(&path).expect("open netns");

    let cases: [(&str, Vec<IpNet>); 4] = [
        ("1 CIDR (v4)", v4(1)),
        ("1+1 CIDRs (v4+v6)", [v4(1), v6(1)].concat()),
        ("5000 CIDRs (v4)", v4(5000)),
        ("5000+5000 CIDRs (v4+v6)", [v4(5000), v6(5000)].concat()),
    ];
    println!("{rounds} rounds each, median (min .. max)");
    for (label, cidrs) in cases {
        let t = MasqueradeTable {
            name: "ferry".into(),
            cluster_cidrs: cidrs,
            out_ifname: "eth0".into(),
        };
        let (mut applies, mut reads) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (a, r) = ns
                .run(|| {
                    let start = Instant::now();
                    apply(&t).expect("apply");
                    let a = start.elapsed();
                    let start = Instant::now();
                    let s = read_table("ferry").expect("read").expect("table");
                    let r = start.elapsed();
                    assert!(s.matches(&t));
                    (a, r)
                })
                .expect("enter netns");
            applies.push(a);
            reads.push(r);
        }
        let show = |v: &Vec<Duration>| {
            format!(
                "{:>9.3?} ({:.3?} .. {:.3?})",
                median(v.clone()),
                v.iter().min().unwrap(),
                v.iter().max().unwrap()
            )
        };
        println!(
            "{label:<26} apply {}   read_table {}",
            show(&applies),
            show(&reads)
        );
    }
}
