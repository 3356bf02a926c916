//! `ferry-bench`: measure ferry against the reference plugins, side by side
//! in one run, and print medians and ratios. Run as root, release build:
//! `cargo run --release -p ferry-bench -- plugin [RUNS]`.

mod plugin;
mod stats;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("plugin") => {
            let runs = args.get(1).map(|r| r.parse()).transpose()?.unwrap_or(60);
            plugin::run(runs)
        }
        _ => bail!("usage: ferry-bench plugin [RUNS]"),
    }
}
