//! The two images the ospf/bgp manifests name, made from this machine's
//! Debian FRR 8.4.4 (the same release as FRR's own image) since no
//! registry can be reached:
//!
//! - `quay.io/frrouting/frr:8.4.4`: FRR's daemons, started as FRR's image
//!   does (`/sbin/tini -- /usr/lib/frr/docker-start`: watchfrr with the
//!   daemons of `/etc/frr/daemons`);
//! - `localhost/ferry-frr:0.1.0`: the same files plus ferry's static
//!   binaries, as deploy/Dockerfile's `ferry-frr` target (ferryd drives FRR
//!   with `vtysh` and `python3 /usr/lib/frr/frr-reload.py`).
//!
//! The root file system: the files of Debian's `frr`, `frr-pythontools`,
//! `bash` and Python 3.11 packages, every shared library their executables
//! load (`ldd`), busybox-static for the few tools FRR's scripts call, the
//! `frr` user and groups, and Debian's merged-/usr links.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{ClusterError, Result};
use crate::images::{BUSYBOX, FERRY_BINARIES};
use crate::oci::{Entry, Image};
use crate::util::run;

pub const FRR_IMAGE: &str = "quay.io/frrouting/frr:8.4.4";
pub const FERRY_FRR_IMAGE: &str = "localhost/ferry-frr:0.1.0";

/// Debian packages whose files go in.
const PACKAGES: &[&str] = &[
    "frr",
    "frr-pythontools",
    "bash",
    "tini",
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
];

/// busybox applets for FRR's shell scripts (frrcommon.sh, watchfrr.sh).
const APPLETS: &[&str] = &[
    "sh", "chmod", "chown", "grep", "cat", "id", "date", "sleep", "rm", "mkdir", "ls", "ps", "cp",
    "mv", "ln", "sed", "head", "tail", "touch", "pidof", "kill", "env", "which", "dirname",
    "basename", "tr", "cut",
];

/// FRR's image entrypoint, as FRR's Dockerfile has it.
/// (FRR's Dockerfile makes /var/run/frr frr's at build time; here it is
/// made at start, which also suits an emptyDir mounted there.)
const DOCKER_START: &str = "#!/bin/bash\nset -e\nsource /usr/lib/frr/frrcommon.sh\n\
install -d -o frr -g frr -m 0755 /var/run/frr\nexec /usr/lib/frr/watchfrr $(daemon_list)\n";

/// Debian 12's merged /usr: top-level links.
const MERGED: [(&str, &str); 4] = [
    ("bin", "usr/bin"),
    ("sbin", "usr/sbin"),
    ("lib", "usr/lib"),
    ("lib64", "usr/lib64"),
];

/// `/lib/x/y` → `/usr/lib/x/y` (and bin, sbin, lib64): where merged /usr
/// really keeps a path.
fn unmerge(p: &str) -> String {
    for (top, real) in MERGED {
        if let Some(rest) = p.strip_prefix(&format!("/{top}/")) {
            return format!("/{real}/{rest}");
        }
    }
    p.to_string()
}

fn is_elf(p: &Path) -> bool {
    use std::io::Read;
    let mut b = [0u8; 4];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
        && &b == b"\x7fELF"
}

/// The shared objects `ldd` says `p` loads.
fn libraries(p: &Path) -> Vec<String> {
    let out = Command::new("ldd").arg(p).output();
    let Ok(out) = out else { return vec![] };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, r)) => r.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}

/// Every path to put in: files and links as on this machine.
fn collect() -> Result<BTreeSet<String>> {
    let mut paths = BTreeSet::new();
    for pkg in PACKAGES {
        let out = run(Command::new("dpkg").args(["-L", pkg])).map_err(|e| {
            ClusterError::Invalid(format!(
                "Debian package {pkg} (scripts/deps.sh installs it): {e}"
            ))
        })?;
        paths.extend(out.lines().filter(|l| l.starts_with('/')).map(String::from));
    }
    // PAM loads its modules at run time (ldd cannot see them).
    paths.insert("/usr/lib/x86_64-linux-gnu/security/pam_permit.so".into());
    // busybox-static has no `install` (frrcommon.sh's): coreutils' one.
    paths.insert("/usr/bin/install".into());
    let elves: Vec<String> = paths
        .iter()
        .filter(|p| Path::new(p).is_file() && is_elf(Path::new(p)))
        .cloned()
        .collect();
    for e in elves {
        paths.extend(libraries(Path::new(&e)));
    }
    Ok(paths)
}

/// The root file system's entries (directories first, as a tar wants).
pub fn entries(ferry_bin: Option<&Path>) -> Result<Vec<Entry>> {
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    for p in collect()? {
        let host = Path::new(&p);
        let meta = match std::fs::symlink_metadata(host) {
            Ok(m) => m,
            Err(_) => continue,
        };
        let at = unmerge(&p);
        if meta.file_type().is_symlink() {
            let target =
                std::fs::read_link(host).map_err(ClusterError::io("reading link", host))?;
            files.insert(
                at.clone(),
                Entry::Symlink {
                    path: at,
                    target: target.display().to_string(),
                },
            );
            // The link's target too, wherever it really is.
            if let Ok(real) = std::fs::canonicalize(host) {
                let r = real.display().to_string();
                if real.is_file() {
                    files.entry(unmerge(&r)).or_insert(Entry::File {
                        path: unmerge(&r),
                        mode: mode(&real),
                        from: real,
                    });
                }
            }
        } else if meta.is_file() {
            files.insert(
                at.clone(),
                Entry::File {
                    path: at,
                    mode: mode(host),
                    from: host.to_path_buf(),
                },
            );
        }
    }
    // What Debian's dash and python3-minimal would link (watchfrr runs
    // `/bin/sh -c`, ferryd runs `python3 frr-reload.py`).
    for (at, target) in [("/usr/bin/sh", "bash"), ("/usr/bin/python3", "python3.11")] {
        files.entry(at.into()).or_insert(Entry::Symlink {
            path: at.into(),
            target: target.into(),
        });
    }
    // FRR's image runs /sbin/tini (/sbin is usr/sbin here).
    files.insert(
        "/usr/sbin/tini".into(),
        Entry::Symlink {
            path: "/usr/sbin/tini".into(),
            target: "../bin/tini-static".into(),
        },
    );
    files.insert(
        "/usr/local/bin/busybox".into(),
        Entry::File {
            path: "/usr/local/bin/busybox".into(),
            mode: 0o755,
            from: BUSYBOX.into(),
        },
    );
    // In /usr/bin: FRR's scripts set PATH=/bin:/usr/bin:/sbin:/usr/sbin.
    for a in APPLETS {
        let at = format!("/usr/bin/{a}");
        files.entry(at.clone()).or_insert(Entry::Symlink {
            path: at,
            target: "../local/bin/busybox".into(),
        });
    }
    if let Some(dir) = ferry_bin {
        for b in FERRY_BINARIES {
            let at = format!("/usr/local/bin/{b}");
            files.insert(
                at.clone(),
                Entry::File {
                    path: at,
                    mode: 0o755,
                    from: dir.join(b),
                },
            );
        }
    }
    let mut dirs: BTreeSet<String> = [
        "/etc/frr",
        "/var/lib/frr",
        "/var/log/frr",
        "/tmp",
        "/var/tmp",
        "/proc",
        "/sys",
        "/dev",
        "/run",
        "/root",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for path in files.keys() {
        let mut p = Path::new(path).parent();
        while let Some(d) = p.filter(|d| d != &Path::new("/")) {
            dirs.insert(d.display().to_string());
            p = d.parent();
        }
    }
    for (top, _) in MERGED {
        dirs.remove(&format!("/{top}"));
    }
    let mut out: Vec<Entry> = dirs
        .into_iter()
        .map(|d| Entry::Dir {
            mode: if d.ends_with("/tmp") { 0o1777 } else { 0o755 },
            path: d,
        })
        .collect();
    // /var/run is /run, as on Debian; FRR's scripts make /run/frr theirs
    // (`install -d -o frr`) at start.
    out.push(Entry::Symlink {
        path: "/var/run".into(),
        target: "../run".into(),
    });
    for (top, real) in MERGED {
        out.push(Entry::Symlink {
            path: format!("/{top}"),
            target: real.into(),
        });
    }
    out.extend(files.into_values());
    Ok(out)
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644)
}

/// Files written into the image (not copied from the host).
pub fn generated(dir: &Path) -> Result<Vec<Entry>> {
    let frr_uid = uid_line("passwd", "frr")?;
    let frr_group = uid_line("group", "frr")?;
    let vty_group = uid_line("group", "frrvty")?;
    let files = [
        (
            "etc/passwd",
            format!("root:x:0:0:root:/root:/bin/bash\n{frr_uid}\n"),
            0o644,
        ),
        (
            "etc/group",
            format!("root:x:0:\n{frr_group}\n{vty_group}\n"),
            0o644,
        ),
        ("usr/lib/frr/docker-start", DOCKER_START.to_string(), 0o755),
        // Debian's vtysh asks PAM; FRR's own image is built without it.
        ("etc/pam.d/frr", "auth sufficient pam_permit.so\naccount sufficient pam_permit.so\nsession optional pam_permit.so\n".to_string(), 0o644),
    ];
    let mut out = vec![];
    for (name, text, mode) in files {
        let host = dir.join(name.replace('/', "_"));
        crate::util::write_file(&host, text.as_bytes(), 0o644)?;
        out.push(Entry::File {
            path: format!("/{name}"),
            mode,
            from: host,
        });
    }
    Ok(out)
}

fn uid_line(db: &str, name: &str) -> Result<String> {
    Ok(run(Command::new("getent").args([db, name]))?
        .trim()
        .to_string())
}

/// Both images, their archives written into `dir`.
pub fn write(dir: &Path, ferry_bin: &Path) -> Result<Vec<PathBuf>> {
    let gen = generated(&dir.join("frr-files"))?;
    let mut out = vec![];
    for (name, file, bins) in [
        (FRR_IMAGE, "frr.tar", None),
        (FERRY_FRR_IMAGE, "ferry-frr.tar", Some(ferry_bin)),
    ] {
        let mut entries = entries(bins)?;
        entries.retain(|e| !matches!(e, Entry::File { path, .. } if gen.iter().any(|g| matches!(g, Entry::File { path: p, .. } if p == path))));
        entries.extend(gen.iter().cloned());
        let img = Image {
            name: name.into(),
            entries,
            entrypoint: vec!["/sbin/tini".into(), "--".into()],
            cmd: vec!["/usr/lib/frr/docker-start".into()],
            env: vec!["PATH=/usr/local/bin:/usr/lib/frr:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        };
        let p = dir.join(file);
        crate::oci::write_archive(&img, &p)?;
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmerges_top_level_paths() {
        assert_eq!(
            unmerge("/lib/x86_64-linux-gnu/libc.so.6"),
            "/usr/lib/x86_64-linux-gnu/libc.so.6"
        );
        assert_eq!(unmerge("/bin/bash"), "/usr/bin/bash");
        assert_eq!(unmerge("/usr/lib/frr/zebra"), "/usr/lib/frr/zebra");
    }
}
