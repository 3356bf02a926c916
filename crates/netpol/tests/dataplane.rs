//! The compiled table judging real packets: a node netns routing to pod
//! netns over veths (`lab`: as ferry wires pods), the table loaded with
//! `nft -f`, TCP connections tried through it. IPv4 only here (both
//! families are loaded by the kernel test; ferry-netpol-nft's dataplane
//! test does both over netlink). Needs root, `nft` and `python3`; says so
//! and passes without them. Every netns is deleted, also on failure.

mod lab;

use lab::world::{self, NODE};
use lab::{sh, usable, Lab};

use ferry_netpol::{compile, render, Options};

#[test]
fn policies_judge_real_connections() {
    if !usable() {
        return;
    }
    let text = render(&compile(&world::cluster(false), &Options::new(NODE)));

    let mut lab = Lab::new(&format!("ftnp{}-", std::process::id()));
    world::wire(&mut lab, false);

    // Without the table everything connects.
    assert!(lab.connects("other", "10.244.0.10", 9999));
    assert!(lab.connects("client", "10.244.0.12", 5432));

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();
    sh(&[
        "ip",
        "netns",
        "exec",
        &lab.node(),
        "nft",
        "-f",
        file.path().to_str().unwrap(),
    ]);
    world::judge(&lab, false);

    // The drops were counted against the policies.
    assert!(lab.counter("in/default/web-http") >= 2);
    assert!(lab.counter("in/default/db-lockdown") >= 2);
    assert!(lab.counter("eg/default/db-lockdown") >= 2);
}
