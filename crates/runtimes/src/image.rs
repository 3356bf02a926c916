//! Images made offline from Debian's busybox-static: a rootfs directory
//! (podman `--rootfs`) and a docker-archive "pause" image (containerd's
//! `sandbox_image`, also good for containers since it holds busybox).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::error::{HarnessError, Result};
use crate::procs::run_checked;

/// The statically linked busybox the images are made of.
pub const BUSYBOX: &str = "/bin/busybox";

/// The name the pause image is imported under.
pub const PAUSE_IMAGE: &str = "localhost/ferry-pause:1";

/// Applets linked into `/bin` next to busybox.
pub const APPLETS: &[&str] = &[
    "sh", "sleep", "nc", "cat", "echo", "ip", "ping", "ls", "true", "hostname",
];

/// Bumped whenever the image layout changes, so a stale cache is ignored.
const LAYOUT: u32 = 1;

/// Fill `dir` with a busybox rootfs: `/bin/busybox`, its applet links and
/// the empty mount points a runtime expects.
pub fn busybox_rootfs(dir: &Path) -> Result<()> {
    for sub in ["bin", "proc", "sys", "dev", "etc", "tmp", "run"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|e| HarnessError::io("creating", &p, e))?;
    }
    let bb = dir.join("bin/busybox");
    std::fs::copy(BUSYBOX, &bb).map_err(|e| HarnessError::io("copying busybox to", &bb, e))?;
    for applet in APPLETS {
        let link = dir.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &link)
            .map_err(|e| HarnessError::io("linking", &link, e))?;
    }
    Ok(())
}

/// The pause image as a docker-archive tarball, built once per busybox
/// binary and cached under the cargo target dir (written atomically, so
/// concurrent test processes are safe).
pub fn pause_archive() -> Result<PathBuf> {
    // One builder per process; other processes are kept apart by the
    // pid in the work dir's name and the atomic rename.
    static CACHED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut cached = CACHED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = cached.as_ref() {
        return Ok(p.clone());
    }
    let meta = std::fs::metadata(BUSYBOX).map_err(|e| HarnessError::io("reading", BUSYBOX, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io("creating", &dir, e))?;
    let path = dir.join(format!("pause-v{LAYOUT}-{}-{mtime}.tar", meta.len()));
    if !path.exists() {
        build_pause_archive(&path)?;
    }
    *cached = Some(path.clone());
    Ok(path)
}

/// `target/<profile>/ferry-runtimes` next to the running executable, or
/// the temp dir when that cannot be found.
fn cache_dir() -> PathBuf {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    match exe_dir {
        Some(mut d) => {
            if d.ends_with("deps") {
                d.pop();
            }
            d.join("ferry-runtimes")
        }
        None => std::env::temp_dir().join("ferry-runtimes"),
    }
}

fn sha256(path: &Path) -> Result<String> {
    let mut cmd = Command::new("sha256sum");
    cmd.arg(path);
    let out = run_checked(cmd)?;
    out.split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or(HarnessError::Unexpected {
            what: "sha256sum",
            detail: out.clone(),
        })
}

fn write(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).map_err(|e| HarnessError::io("writing", path, e))
}

fn build_pause_archive(dest: &Path) -> Result<()> {
    let work = dest.with_extension(format!("build{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let result = assemble(&work, dest);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// docker-archive: `manifest.json`, `<config digest>.json`,
/// `<layer digest>/layer.tar`. The layer is uncompressed, so its digest
/// is also the config's diff ID.
fn assemble(work: &Path, dest: &Path) -> Result<()> {
    let rootfs = work.join("rootfs");
    let img = work.join("img");
    busybox_rootfs(&rootfs)?;
    std::fs::create_dir_all(&img).map_err(|e| HarnessError::io("creating", &img, e))?;
    let layer = work.join("layer.tar");
    let mut tar = Command::new("tar");
    tar.args([
        "--sort=name",
        "--mtime=@0",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "-C",
    ])
    .arg(&rootfs)
    .arg("-cf")
    .arg(&layer)
    .arg(".");
    run_checked(tar)?;
    let layer_digest = sha256(&layer)?;
    let layer_dir = img.join(&layer_digest);
    std::fs::create_dir_all(&layer_dir).map_err(|e| HarnessError::io("creating", &layer_dir, e))?;
    let layer_in_img = layer_dir.join("layer.tar");
    std::fs::rename(&layer, &layer_in_img)
        .map_err(|e| HarnessError::io("moving", &layer_in_img, e))?;

    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/bin/sleep", "2147483647"],
            "Env": ["PATH=/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    });
    let config_tmp = work.join("config.json");
    write(&config_tmp, &config.to_string())?;
    let config_digest = sha256(&config_tmp)?;
    let config_name = format!("{config_digest}.json");
    let config_path = img.join(&config_name);
    std::fs::rename(&config_tmp, &config_path)
        .map_err(|e| HarnessError::io("moving", &config_path, e))?;
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [PAUSE_IMAGE],
        "Layers": [format!("{layer_digest}/layer.tar")],
    }]);
    write(&img.join("manifest.json"), &manifest.to_string())?;

    let tmp = work.join("pause.tar");
    let mut tar = Command::new("tar");
    tar.arg("-C").arg(&img).arg("-cf").arg(&tmp).arg(".");
    run_checked(tar)?;
    std::fs::rename(&tmp, dest).map_err(|e| HarnessError::io("moving", dest, e))
}
