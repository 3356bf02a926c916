//! A lab per test, with a unique prefix (tests run in parallel), removed
//! by a guard when the test ends, also when it fails.
#![allow(dead_code)]

use ferry_lab::{DownGuard, Lab, LabConfig, UpOptions};

/// A lab config with a unique prefix `ft<pid>x<n><tag>-`.
pub fn config(tag: &str) -> LabConfig {
    LabConfig::new(&format!("{}-", ferry_testkit::unique(tag)))
}

/// Builds a lab; the guard (declared first, dropped last) runs `down`.
pub fn up(tag: &str, opts: UpOptions) -> (DownGuard, Lab) {
    let cfg = config(tag);
    let guard = DownGuard(cfg.clone());
    let lab = Lab::up(cfg, &opts).unwrap_or_else(|e| panic!("up: {e}"));
    eprintln!("{}", lab.table());
    (guard, lab)
}

pub fn opts(routing: ferry_lab::Routing) -> UpOptions {
    UpOptions {
        routing,
        ..UpOptions::default()
    }
}
