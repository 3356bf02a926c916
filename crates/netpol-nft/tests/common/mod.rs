//! Test support: named network namespaces `ftnpn-<pid>-<n>`, removed on
//! drop (also when a test panics), and `nft` (tests only) to look at what
//! ferry-netpol-nft wrote.
#![allow(dead_code)] // each test binary uses a different part

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_netns::NetNs;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Root and `nft` present; says so when not (the test then passes).
pub fn usable() -> bool {
    let root = nix_root();
    let nft = Command::new("nft").arg("--version").output().is_ok();
    if !root || !nft {
        eprintln!("skipped: needs root and nft (root={root}, nft={nft})");
    }
    root && nft
}

fn nix_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A fresh named netns with loopback up; deleted on drop.
pub struct Ns {
    pub name: String,
    pub ns: NetNs,
}

impl Ns {
    pub fn new() -> Ns {
        let name = format!(
            "ftnpn-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let path = ferry_netns::create_named(&name).expect("create netns");
        let guard = Ns {
            ns: NetNs::open(&path).expect("open netns"),
            name,
        };
        guard.sh(&["ip", "link", "set", "lo", "up"]);
        guard
    }

    /// Runs `f` on a thread inside this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.ns.run(f).expect("enter netns")
    }

    /// `ARGS` in this namespace: Ok(stdout) or Err(stderr).
    pub fn exec(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("run ip netns exec");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{args:?} in {}: {}{}",
                self.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn sh(&self, args: &[&str]) -> String {
        self.exec(args).unwrap()
    }

    /// `nft -f` of `text` in this namespace.
    pub fn nft_text(&self, text: &str) -> Result<String, String> {
        let mut f = tempfile_in_tmp();
        f.1.write_all(text.as_bytes()).unwrap();
        let r = self.exec(&["nft", "-f", &f.0]);
        let _ = std::fs::remove_file(&f.0);
        r
    }

    /// `nft list table inet TABLE`.
    pub fn list(&self, table: &str) -> String {
        self.sh(&["nft", "list", "table", "inet", table])
    }
}

fn tempfile_in_tmp() -> (String, std::fs::File) {
    let path = format!(
        "/tmp/ftnpn-{}-{}.nft",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    );
    let f = std::fs::File::create(&path).unwrap();
    (path, f)
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = ferry_netns::delete_named(&self.name);
    }
}
