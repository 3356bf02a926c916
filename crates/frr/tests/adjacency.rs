//! `Frr::ospf_adjacency` against real FRR in network namespaces: three
//! nodes, dual stack, MD5. Settled once converged; not settled right
//! after one node's FRR restarts (as in a rollout), and settled again once
//! its adjacencies are back.

mod common;

use std::time::{Duration, Instant};

use common::{wait_until, Lab};
use ferry_frr::Mode;

const CONVERGE: Duration = Duration::from_secs(60);

#[test]
fn ospf_adjacency_settles_after_a_restart() {
    let mut lab = Lab::new("oj", 3, 1);
    let specs: Vec<_> = (0..3)
        .map(|i| {
            let mut spec = lab.spec_dual_stack(i, Mode::Ospf);
            spec.ospf_auth_key = Some("adj-key".into());
            spec
        })
        .collect();
    let daemons = specs[0].daemons();
    lab.start_frr(&daemons);
    lab.apply_all(&specs);
    let settled = |lab: &Lab, i: usize| lab.frr[i].frr.ospf_adjacency(&specs[i], true);
    let took = wait_until(CONVERGE, || {
        (0..3).all(|i| settled(&lab, i).unwrap().is_none())
    });
    assert!(
        took.is_some(),
        "never settled: {:?}\n{}\n{}",
        (0..3).map(|i| settled(&lab, i)).collect::<Vec<_>>(),
        lab.frr[0].vtysh("show ip ospf neighbor"),
        lab.frr[0].vtysh("show ipv6 ospf6 neighbor")
    );
    let v6 = lab.frr[0].vtysh("show ipv6 ospf6 neighbor json");
    println!("n0 `show ipv6 ospf6 neighbor json` once settled:\n{v6}");
    let parsed = ferry_frr::ospf6_neighbors(&v6).unwrap();
    assert_eq!(parsed.len(), 2, "{parsed:?}");
    // The other nodes, once, but they know of nobody else: a lone node
    // that expects no neighbor is settled; expecting one, it is not.
    assert_eq!(
        lab.frr[0].frr.ospf_adjacency(&specs[0], false).unwrap(),
        None
    );

    // n2's FRR stops and comes back with the same config: its neighbors
    // are gone from its view and have to form again.
    let kept = std::fs::read_to_string(lab.frr[2].frr.conf_file()).expect("frr.conf");
    lab.frr[2].kill();
    lab.frr[2].restart(&daemons, &kept);
    let restarted = Instant::now();
    let first = settled(&lab, 2).unwrap();
    let why = first.expect("n2 settled right after its restart");
    assert!(why.contains("ospfd: "), "{why}");
    let back = wait_until(CONVERGE, || settled(&lab, 2).unwrap().is_none());
    assert!(
        back.is_some(),
        "n2 never settled again: {:?}\n{}",
        settled(&lab, 2),
        lab.frr[2].vtysh("show ip ospf neighbor")
    );
    // Settled means Full with both others, in both families.
    let v4 = lab.frr[2].vtysh("show ip ospf neighbor json");
    let full = ferry_frr::ospf_neighbors(&v4)
        .unwrap()
        .iter()
        .filter(|n| n.state == "Full")
        .count();
    println!(
        "n2 restarted: not settled at first ({why}); settled {:?} after its restart",
        restarted.elapsed()
    );
    assert!(full >= 1, "{v4}");
}
