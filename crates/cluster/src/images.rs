//! The images every node imports, made here from files on this machine:
//!
//! - `localhost/ferry:0.1.0`: ferry's image as deploy/Dockerfile's `ferry`
//!   target has it (`/usr/local/bin/{ferryd,ferry,ferry-ipam,ferry-wg}`, entrypoint
//!   `ferryd run`), from statically linked release binaries;
//! - `localhost/ferry-lab/toolbox:1`: busybox-static with the applets the
//!   checks use (ping, nc, wget, httpd, ...), also for anyone exploring;
//! - `localhost/ferry-lab/pause:1`: the sandbox image (busybox `sleep`).

use std::path::{Path, PathBuf};

use crate::error::{ClusterError, Result};
use crate::oci::{self, Entry, Image};

pub const FERRY_IMAGE: &str = "localhost/ferry:0.1.0";

pub const TOOLBOX_IMAGE: &str = "localhost/ferry-lab/toolbox:1";
pub const PAUSE_IMAGE: &str = "localhost/ferry-lab/pause:1";
/// The statically linked busybox (Debian's busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";
/// ferry's binaries in its image.
pub const FERRY_BINARIES: [&str; 4] = ["ferryd", "ferry", "ferry-ipam", "ferry-wg"];

/// Applets linked next to busybox in the toolbox.
const TOOLBOX_APPLETS: &[&str] = &[
    "sh",
    "ash",
    "sleep",
    "ping",
    "ping6",
    "nc",
    "wget",
    "httpd",
    "ip",
    "cat",
    "echo",
    "ls",
    "true",
    "false",
    "hostname",
    "env",
    "ps",
    "kill",
    "mkdir",
    "rm",
    "seq",
    "timeout",
    "head",
    "grep",
    "sed",
    "awk",
    "wc",
    "date",
    "ifconfig",
    "route",
    "netstat",
    "traceroute",
    "tee",
];

/// True when `path` is an ELF executable without a program interpreter
/// (statically linked): it must run in a FROM-scratch image.
pub fn is_static_elf(path: &Path) -> Result<bool> {
    let b = std::fs::read(path).map_err(ClusterError::io("reading", path))?;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return Ok(false); // not a little-endian ELF64
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap_or_default()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let Some(ty) = b.get(at..at + 4) else {
            return Ok(false);
        };
        if u32::from_le_bytes(ty.try_into().unwrap_or_default()) == 3 {
            return Ok(false); // PT_INTERP: needs ld.so
        }
    }
    Ok(true)
}

fn busybox_entries(applets: &[&str]) -> Vec<Entry> {
    let mut v = vec![];
    for d in [
        "bin", "etc", "tmp", "proc", "sys", "dev", "run", "var", "www",
    ] {
        v.push(Entry::Dir {
            path: d.into(),
            mode: if d == "tmp" { 0o1777 } else { 0o755 },
        });
    }
    v.push(Entry::File {
        path: "bin/busybox".into(),
        mode: 0o755,
        from: BUSYBOX.into(),
    });
    for a in applets {
        v.push(Entry::Symlink {
            path: format!("bin/{a}"),
            target: "busybox".into(),
        });
    }
    v
}

/// The toolbox image.
pub fn toolbox() -> Image {
    Image {
        name: TOOLBOX_IMAGE.into(),
        entries: busybox_entries(TOOLBOX_APPLETS),
        entrypoint: vec![],
        cmd: vec!["/bin/sh".into()],
        env: vec!["PATH=/bin".into()],
    }
}

/// The pause image.
pub fn pause() -> Image {
    Image {
        name: PAUSE_IMAGE.into(),
        entries: busybox_entries(&["sleep"]),
        entrypoint: vec!["/bin/sleep".into(), "2147483647".into()],
        cmd: vec![],
        env: vec!["PATH=/bin".into()],
    }
}

/// ferry's image from the static binaries in `bin_dir`.
pub fn ferry(bin_dir: &Path) -> Result<Image> {
    let mut entries = vec![];
    for d in ["usr", "usr/local", "usr/local/bin", "tmp"] {
        entries.push(Entry::Dir {
            path: d.into(),
            mode: if d == "tmp" { 0o1777 } else { 0o755 },
        });
    }
    for b in FERRY_BINARIES {
        let from = bin_dir.join(b);
        if !is_static_elf(&from)? {
            return Err(ClusterError::Invalid(format!(
                "{} is not a statically linked executable: build with \
                 RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
                 --target x86_64-unknown-linux-gnu -p ferry-plugin -p ferryd -p ferry-wireguard-userspace",
                from.display()
            )));
        }
        entries.push(Entry::File {
            path: format!("usr/local/bin/{b}"),
            mode: 0o755,
            from,
        });
    }
    Ok(Image {
        name: FERRY_IMAGE.into(),
        entries,
        entrypoint: vec!["/usr/local/bin/ferryd".into()],
        cmd: vec!["run".into()],
        env: vec!["PATH=/usr/local/bin".into()],
    })
}

/// Writes every image's archive into `dir`; their paths.
pub fn write_all(dir: &Path, ferry_bin: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for (file, img) in [
        ("ferry.tar", ferry(ferry_bin)?),
        ("toolbox.tar", toolbox()),
        ("pause.tar", pause()),
    ] {
        let p = dir.join(file);
        oci::write_archive(&img, &p)?;
        out.push(p);
    }
    Ok(out)
}

/// The archives [`write_all`] wrote for the cluster at `paths`.
pub fn archives(paths: &crate::paths::ClusterPaths) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(paths.images())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tar"))
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_static_is_static_and_ls_is_not() {
        assert!(is_static_elf(Path::new(BUSYBOX)).unwrap());
        assert!(!is_static_elf(Path::new("/bin/ls")).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let not_elf = dir.path().join("x");
        std::fs::write(&not_elf, b"#!/bin/sh\n").unwrap();
        assert!(!is_static_elf(&not_elf).unwrap());
    }

    #[test]
    fn ferry_image_refuses_dynamic_binaries() {
        let dir = tempfile::tempdir().unwrap();
        for b in FERRY_BINARIES {
            std::fs::copy("/bin/ls", dir.path().join(b)).unwrap();
        }
        let e = ferry(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a statically linked"), "{e}");
    }
}
