//! The plugin binaries under test, built fresh when run through cargo.
//!
//! `cargo test --workspace` builds `ferry` and `ferry-ipam` before any test
//! runs, but `cargo test -p ferry-runtime-tests` (and `cargo run --bin
//! runtime-bench`) would not: a binary of another package is no
//! dependency. So when `$CARGO` is set (cargo runs us) and
//! `$FERRY_PLUGIN_DIR` is not, `cargo build -p ferry-plugin --bins` runs
//! once per process for the profile we were built in (a no-op when fresh).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::error::{HarnessError, Result};
use crate::procs::run_checked;

/// Paths of `ferry` and `ferry-ipam`, built if needed.
pub fn ferry_binaries() -> Result<(PathBuf, PathBuf)> {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        if let (Some(cargo), None) = (
            std::env::var_os("CARGO"),
            std::env::var_os("FERRY_PLUGIN_DIR"),
        ) {
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "--quiet",
                "--locked",
                "-p",
                "ferry-plugin",
                "--bins",
            ]);
            if ferry_testkit::plugin_dir().ends_with("release") {
                cmd.arg("--release");
            }
            run_checked(cmd)?;
        }
        *built = true;
    }
    let find = |name: &str| {
        let p = ferry_testkit::plugin_dir().join(name);
        if p.exists() {
            Ok(p)
        } else {
            Err(HarnessError::Unexpected {
                what: "plugin dir",
                detail: format!(
                    "{} is not built: run `cargo build -p ferry-plugin` (or set FERRY_PLUGIN_DIR)",
                    p.display()
                ),
            })
        }
    };
    Ok((find("ferry")?, find("ferry-ipam")?))
}
