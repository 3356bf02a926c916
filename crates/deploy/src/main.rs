//! `ferry-deploy`: writes ferry's manifests (default: `deploy/` in the
//! repository). `--check` only compares and fails when a file differs.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Parser;
use ferry_deploy::{manifests, Images};

/// Render ferry's Kubernetes manifests.
#[derive(Debug, Parser)]
#[command(name = "ferry-deploy", version, about)]
struct Args {
    /// Output directory [default: deploy/ in the repository].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Repository of the minimal image (Dockerfile target `ferry`).
    #[arg(long, default_value = ferry_deploy::DEFAULT_IMAGE)]
    image: String,
    /// Repository of the image with FRR's tools (target `ferry-frr`).
    #[arg(long, default_value = ferry_deploy::DEFAULT_FRR_TOOLS_IMAGE)]
    frr_tools_image: String,
    /// Tag of both images.
    #[arg(long, default_value = ferry_deploy::VERSION)]
    tag: String,
    /// Compare instead of writing; exit 1 when a file differs.
    #[arg(long)]
    check: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let out = args.out.unwrap_or_else(ferry_deploy::default_out_dir);
    let images = Images {
        ferry: args.image,
        ferry_frr: args.frr_tools_image,
        tag: args.tag,
        ..Images::default()
    };
    let mut stale = Vec::new();
    for m in manifests(&images) {
        let path = out.join(m.file);
        let text = m.render();
        let same = fs::read_to_string(&path).is_ok_and(|old| old == text);
        if args.check {
            if !same {
                stale.push(path.display().to_string());
            }
            continue;
        }
        if !same {
            write_atomic(&path, &text)?;
        }
        println!(
            "{} {}",
            if same { "unchanged" } else { "wrote" },
            path.display()
        );
    }
    if !stale.is_empty() {
        bail!(
            "differ from the generator (run `cargo run -p ferry-deploy`): {}",
            stale.join(", ")
        );
    }
    Ok(())
}

/// Temp file next to the target, then rename.
fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().context("output path has no directory")?;
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("write {}", path.display()))
}
