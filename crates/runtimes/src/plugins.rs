//! The binaries under test (`ferry`, `ferry-ipam`, `ferryd`), built fresh
//! when run through cargo.
//!
//! `cargo test --workspace` builds them before any test runs, but `cargo
//! test -p ferry-runtime-tests` (and `cargo run --bin runtime-bench`) would
//! not: a binary of another package is no dependency. So when `$CARGO` is
//! set (cargo runs us) and `$FERRY_PLUGIN_DIR` is not, `cargo build -p
//! <package> --bins` runs once per package and process for the profile we
//! were built in (a no-op when fresh).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::error::{HarnessError, Result};
use crate::procs::run_checked;

/// Build `package`'s binaries once per process (see the module docs),
/// then the paths of `names` in the profile dir, each checked to exist.
fn built<const N: usize>(package: &str, names: [&str; N]) -> Result<[PathBuf; N]> {
    static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.contains(package) {
        if let (Some(cargo), None) = (
            std::env::var_os("CARGO"),
            std::env::var_os("FERRY_PLUGIN_DIR"),
        ) {
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--quiet", "--locked", "-p", package, "--bins"]);
            if ferry_testkit::plugin_dir().ends_with("release") {
                cmd.arg("--release");
            }
            run_checked(cmd)?;
        }
        built.insert(package.to_string());
    }
    let mut out = Vec::with_capacity(N);
    for name in names {
        let p = ferry_testkit::plugin_dir().join(name);
        if !p.exists() {
            return Err(HarnessError::Unexpected {
                what: "plugin dir",
                detail: format!(
                    "{} is not built: run `cargo build -p {package}` (or set FERRY_PLUGIN_DIR)",
                    p.display()
                ),
            });
        }
        out.push(p);
    }
    Ok(out.try_into().expect("N paths"))
}

/// Paths of `ferry` and `ferry-ipam`, built if needed.
pub fn ferry_binaries() -> Result<(PathBuf, PathBuf)> {
    let [ferry, ipam] = built("ferry-plugin", ["ferry", "ferry-ipam"])?;
    Ok((ferry, ipam))
}

/// Path of `ferryd`, built if needed.
pub fn ferryd_binary() -> Result<PathBuf> {
    let [ferryd] = built("ferryd", ["ferryd"])?;
    Ok(ferryd)
}
