//! The rendered tables against the kernel: `nft -c -f` (checks, changes
//! nothing), then a real load into a fresh network namespace, which is
//! deleted afterwards even when the test fails. Element diffs are applied
//! there too. Needs root and `nft`; says so and passes without them.

mod scenarios;

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_netpol::render::element_commands;
use ferry_netpol::{compile, diff, render, Diff, Options};
use scenarios::normalized;

fn usable() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let nft = Command::new("nft").arg("--version").output().is_ok();
    if !root || !nft {
        eprintln!("skipped: needs root and nft (root={root}, nft={nft})");
    }
    root && nft
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A named netns `ftnp<pid>-<n>`, deleted on drop.
struct Netns(String);

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    fn new() -> Netns {
        let name = format!(
            "ftnp{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        run(&["ip", "netns", "add", &name]).unwrap();
        Netns(name)
    }

    fn nft_file(&self, text: &str) -> Result<String, String> {
        let file = write_temp(text);
        let path = file.path().to_str().unwrap();
        run(&["ip", "netns", "exec", &self.0, "nft", "-f", path])
    }

    fn nft(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.0, "nft"];
        all.extend_from_slice(args);
        run(&all).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn write_temp(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .prefix("ftnp")
        .suffix(".nft")
        .tempfile()
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.flush().unwrap();
    f
}

#[test]
fn every_golden_is_accepted_and_loads() {
    if !usable() {
        return;
    }
    let drop_log = scenarios::DROP_LOG_SCENARIO;
    let with_log = ferry_netpol::render(&scenarios::with_drop_log(drop_log));
    let all = scenarios::all()
        .into_iter()
        .map(|(name, policies)| (name.to_string(), scenarios::rendered(&policies)))
        .chain([(format!("{drop_log} (drop log)"), with_log)]);
    for (name, text) in all {
        let file = write_temp(&text);
        if let Err(e) = run(&["nft", "-c", "-f", file.path().to_str().unwrap()]) {
            panic!("{name}: nft -c rejects it: {e}\n{text}");
        }
        let ns = Netns::new();
        if let Err(e) = ns.nft_file(&text) {
            panic!("{name}: load into {} fails: {e}\n{text}", ns.0);
        }
        // The kernel shows what was rendered, but for how nft wraps element
        // lists and orders hash-set elements.
        let listed = ns.nft(&["list", "table", "inet", "ferry-policy"]);
        assert_eq!(
            normalized(&listed),
            normalized(&text),
            "{name}: nft lists\n{listed}"
        );
        // A ruleset change: delete and load again in one transaction.
        let again = format!("delete table inet ferry-policy\n{text}");
        ns.nft_file(&again).unwrap();
    }
}

#[test]
fn pod_churn_is_applied_as_elements() {
    if !usable() {
        return;
    }
    let policies = scenarios::policies("named_ports");
    let old_cluster = scenarios::with_policies(&policies);
    let opts = Options::new(scenarios::NODE);
    let old = compile(&old_cluster, &opts);

    // A third local web pod arrives, a peer leaves, a client changes address.
    let new_cluster = scenarios::churned(&old_cluster);
    let new = compile(&new_cluster, &opts);
    let Diff::Elements(changes) = diff(&old, &new) else {
        panic!("expected an element diff, got {:?}", diff(&old, &new));
    };
    let commands = element_commands(&new.table, &changes);

    let ns = Netns::new();
    ns.nft_file(&render(&old)).unwrap();
    if let Err(e) = ns.nft_file(&commands) {
        panic!("element commands rejected: {e}\n{commands}");
    }
    let map = ns.nft(&["list", "map", "inet", "ferry-policy", "ingress4"]);
    assert!(map.contains("10.244.0.14 : jump in-grp-"), "{map}");
    let named = ns.nft(&[
        "list",
        "set",
        "inet",
        "ferry-policy",
        "in/default/web-http/0n0.4",
    ]);
    assert!(named.contains("10.244.0.14 . 8088"), "{named}");
    let peers = ns.nft(&[
        "list",
        "set",
        "inet",
        "ferry-policy",
        "in/default/web-http/0.4",
    ]);
    assert!(
        peers.contains("10.244.1.21") && !peers.contains("10.244.1.20"),
        "{peers}"
    );
    let peers6 = ns.nft(&[
        "list",
        "set",
        "inet",
        "ferry-policy",
        "in/default/web-http/0.6",
    ]);
    assert!(!peers6.contains("fd00:10:244:1::14"), "{peers6}");
}
