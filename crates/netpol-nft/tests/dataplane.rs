//! The table written with `replace()`/`apply()` judging real packets, IPv4
//! and IPv6: ferry-netpol's dataplane lab (a node netns routing to pod
//! netns over veths) and world (pods, policies, expected verdicts), the
//! table installed over netlink instead of `nft -f`. Then a pod change
//! that is only elements: applied as such, counters kept, new verdicts.
//! Needs root, `nft` and `python3`; says so and passes without them.
//! Every netns (`ftnpn-<pid>-<n>-*`) is deleted, also on failure.

#[path = "../../netpol/tests/lab/mod.rs"]
mod lab;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_netns::NetNs;
use ferry_netpol::{compile, Options};
use ferry_netpol_nft::{apply, counters, installed_matches, replace, Applied};
use lab::world::{self, addr, NODE};
use lab::{usable, Lab};

const TABLE: &str = ferry_netpol::DEFAULT_TABLE;
static SEQ: AtomicUsize = AtomicUsize::new(0);

fn in_node<T: Send>(lab: &Lab, f: impl FnOnce() -> T + Send) -> T {
    let path = Path::new("/run/netns").join(lab.node());
    NetNs::open(&path).unwrap().run(f).unwrap()
}

#[test]
fn tables_written_over_netlink_judge_real_connections() {
    if !usable() {
        return;
    }
    let cluster = world::cluster(true);
    let opts = Options::new(NODE);
    let rs = compile(&cluster, &opts);

    let prefix = format!(
        "ftnpn-{}-{}-",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    );
    let mut lab = Lab::new(&prefix);
    world::wire(&mut lab, true);
    // Without the table everything connects.
    for v6 in [false, true] {
        assert!(lab.connects("other", addr("web", v6), 9999));
        assert!(lab.connects("client", addr("db", v6), 5432));
    }

    in_node(&lab, || replace(&rs)).unwrap();
    world::judge(&lab, false);
    world::judge(&lab, true);
    let before = in_node(&lab, || counters(TABLE)).unwrap();
    for name in [
        "in/default/web-http",
        "in/default/db-lockdown",
        "eg/default/db-lockdown",
    ] {
        assert!(before[name].0 >= 4, "{name}: {before:?}");
    }

    // client is relabelled: no longer a peer of web. Elements only.
    let mut changed = cluster.clone();
    for p in &mut changed.pods {
        if p.name == "client" {
            p.labels.insert("app".into(), "gone".into());
        }
    }
    let new = compile(&changed, &opts);
    let applied = in_node(&lab, || apply(Some(&rs), &new)).unwrap();
    assert!(
        matches!(applied, Applied::Elements { added: 0, removed } if removed >= 2),
        "{applied:?}"
    );
    assert_eq!(
        in_node(&lab, || counters(TABLE)).unwrap(),
        before,
        "counters kept"
    );
    assert!(in_node(&lab, || installed_matches(&new)).unwrap());
    for v6 in [false, true] {
        assert!(!lab.connects("client", addr("web", v6), 8080), "v6={v6}");
        assert!(lab.connects("db", addr("web", v6), 8080), "v6={v6}");
    }
    let after = in_node(&lab, || counters(TABLE)).unwrap();
    let name = "in/default/web-http";
    assert!(after[name].0 >= before[name].0 + 2, "{before:?} {after:?}");
}
