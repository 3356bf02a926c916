//! The `daemons` file the ospf/bgp manifests give the FRR container, read by
//! FRR's own start-up script (Debian's `frrcommon.sh`, FRR 8.4 as in the
//! FRR image): it starts exactly the daemons ferryd's config needs.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::checked_in;
use ferry_deploy::{Object, Routing};

const FRRCOMMON: &str = "/usr/lib/frr/frrcommon.sh";

/// An FRR pathspace directory `/etc/frr/NAME`, removed on drop.
struct Pathspace {
    name: String,
    dir: PathBuf,
}

impl Pathspace {
    fn new(tag: &str) -> Pathspace {
        let name = ferry_testkit::unique(tag);
        let dir = Path::new("/etc/frr").join(&name);
        fs::create_dir_all(&dir).unwrap();
        Pathspace { name, dir }
    }
}

impl Drop for Pathspace {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `daemon_list` of FRR's start-up script for a `daemons` file.
fn started(daemons: &str) -> BTreeSet<String> {
    let ps = Pathspace::new("dmn");
    fs::write(ps.dir.join("daemons"), daemons).unwrap();
    let out = Command::new("bash")
        .args([
            "-c",
            &format!(". {FRRCOMMON} && daemon_list on off && echo \"$on\""),
        ])
        .env("FRR_PATHSPACE", &ps.name)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "frrcommon.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn frr_starts_exactly_the_daemons_ferryds_config_needs() {
    assert!(
        Path::new(FRRCOMMON).exists(),
        "{FRRCOMMON} missing: install Debian's frr (scripts/deps.sh)"
    );
    let mut seen = 0;
    for (file, objects) in checked_in() {
        let Some(cm) = objects.iter().find_map(|o| match o {
            Object::ConfigMap(c) => Some(c),
            _ => None,
        }) else {
            continue;
        };
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get("daemons"))
            .expect("a daemons file");
        let routing = if file.contains("ospf") {
            Routing::Ospf
        } else {
            Routing::Bgp
        };
        let want: BTreeSet<String> = ferry_deploy::daemons(routing)
            .into_iter()
            .map(String::from)
            .collect();
        assert!(want.contains("zebra") && want.len() >= 3, "{want:?}");
        assert_eq!(started(text), want, "{file}");
        seen += 1;
    }
    assert_eq!(seen, 2, "ospf and bgp");
    // The check can fail: an empty file starts only what FRR always starts.
    assert_eq!(
        started("# nothing\n"),
        BTreeSet::from(["zebra".to_string(), "staticd".to_string()])
    );
}
