//! Test support: named network namespaces that are removed on drop, and
//! `nft` (test-side only) to look at what ferry-nft wrote.
#![allow(dead_code)] // each test binary uses a different part

use std::process::Command;

use ferry_netns::NetNs;
use ferry_nft::MasqueradeTable;
use serde_json::Value;

/// A fresh named netns with loopback up; deleted on drop (also on panic).
pub struct Ns {
    pub name: String,
    pub ns: NetNs,
}

impl Ns {
    pub fn new(tag: &str) -> Ns {
        let name = ferry_testkit::unique(tag);
        let path = ferry_netns::create_named(&name).expect("create netns");
        let guard = Ns {
            ns: NetNs::open(&path).expect("open netns"),
            name,
        };
        guard.ip(&["link", "set", "lo", "up"]);
        guard
    }

    /// Runs `f` on a thread inside this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.ns.run(f).expect("enter netns")
    }

    pub fn ip(&self, args: &[&str]) -> String {
        ferry_testkit::ip(Some(&self.name), args)
    }

    pub fn sh(&self, args: &[&str]) {
        assert!(
            ferry_testkit::ns_exec(&self.name, args),
            "{args:?} failed in {}",
            self.name
        );
    }

    /// `nft ARGS` in this namespace: Ok(stdout) or Err(stderr).
    pub fn nft(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft"])
            .args(args)
            .output()
            .expect("run nft");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `nft -j list table inet NAME`, parsed; None when the table is absent.
    pub fn nft_json(&self, table: &str) -> Option<Value> {
        let out = self.nft(&["-j", "list", "table", "inet", table]).ok()?;
        Some(serde_json::from_str(&out).expect("nft -j output is JSON"))
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = ferry_netns::delete_named(&self.name);
    }
}

pub fn masq(name: &str, cidrs: &[&str], ifname: &str) -> MasqueradeTable {
    MasqueradeTable {
        name: name.into(),
        cluster_cidrs: cidrs.iter().map(|s| s.parse().unwrap()).collect(),
        out_ifname: ifname.into(),
    }
}

/// The objects of one kind (`set`, `chain`, `rule`) in `nft -j` output.
pub fn objects<'a>(json: &'a Value, kind: &str) -> Vec<&'a Value> {
    json["nftables"]
        .as_array()
        .expect("nftables array")
        .iter()
        .filter_map(|o| o.get(kind))
        .collect()
}

/// A set's elements from `nft -j` as strings (`10.244.0.0/16`, `1.2.3.4`).
pub fn set_elements(json: &Value, set: &str) -> Vec<String> {
    let Some(s) = objects(json, "set").into_iter().find(|s| s["name"] == set) else {
        panic!("no set {set} in {json}");
    };
    let Some(elems) = s.get("elem").and_then(Value::as_array) else {
        return Vec::new();
    };
    elems
        .iter()
        .map(|e| match e {
            Value::String(a) => a.clone(),
            e if e.get("prefix").is_some() => {
                format!(
                    "{}/{}",
                    e["prefix"]["addr"].as_str().unwrap(),
                    e["prefix"]["len"]
                )
            }
            e if e.get("range").is_some() => {
                format!(
                    "{}-{}",
                    e["range"][0].as_str().unwrap(),
                    e["range"][1].as_str().unwrap()
                )
            }
            other => panic!("unexpected element {other}"),
        })
        .collect()
}

/// `nft list table` text with handles and counter values left out and
/// whitespace squeezed, one statement per line.
pub fn squeeze(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}
