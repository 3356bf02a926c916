//! OCI image archives written without any registry or builder: one
//! uncompressed layer made from files on this machine, its config, the
//! manifest and `index.json`, all in one tar that
//! `ctr -n k8s.io images import` takes (the name comes from the index's
//! `io.containerd.image.name` annotation).
//!
//! ```text
//! oci-layout                  {"imageLayoutVersion":"1.0.0"}
//! index.json                  -> manifest, annotated with the image name
//! blobs/sha256/<manifest>     -> config + layer
//! blobs/sha256/<config>       entrypoint, env, rootfs.diff_ids = [layer]
//! blobs/sha256/<layer>        the root file system (a tar)
//! ```
//!
//! Everything is deterministic (owner root, mtime 0), so the same inputs
//! give the same digests.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::{ClusterError, Result};
use crate::util::write_file;

/// One entry of the image's root file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    /// A copy of the host file `from`.
    File {
        path: String,
        mode: u32,
        from: PathBuf,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Image {
    /// e.g. `localhost/ferry:0.1.0`.
    pub name: String,
    pub entries: Vec<Entry>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
}

/// A tar stream in memory (ustar, 512-byte blocks).
#[derive(Default)]
pub struct Tar(Vec<u8>);

impl Tar {
    fn header(&mut self, path: &str, mode: u32, size: u64, kind: u8, link: &str) -> Result<()> {
        // ustar: a name over 100 bytes is split at a '/' into a prefix
        // (up to 155) and a name (up to 100).
        let (prefix, name) = if path.len() <= 100 {
            ("", path)
        } else {
            path.char_indices()
                .filter(|(i, c)| *c == '/' && *i <= 155 && path.len() - i - 1 <= 100)
                .map(|(i, _)| (&path[..i], &path[i + 1..]))
                .next()
                .ok_or_else(|| ClusterError::Invalid(format!("tar entry name too long: {path}")))?
        };
        if link.len() > 100 {
            return Err(ClusterError::Invalid(format!(
                "tar link target too long: {link}"
            )));
        }
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
        let octal = |h: &mut [u8], at: usize, width: usize, v: u64| {
            let s = format!("{v:0w$o}\0", w = width - 1);
            h[at..at + width].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, u64::from(mode));
        octal(&mut h, 108, 8, 0); // uid
        octal(&mut h, 116, 8, 0); // gid
        octal(&mut h, 124, 12, size);
        octal(&mut h, 136, 12, 0); // mtime
        h[148..156].copy_from_slice(b"        "); // checksum, spaces while summing
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.0.extend_from_slice(&h);
        Ok(())
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let p = format!("{}/", path.trim_end_matches('/'));
        self.header(&p, mode, 0, b'5', "")
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        self.header(path, mode, data.len() as u64, b'0', "")?;
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.resize(self.0.len() + pad, 0);
        Ok(())
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.header(path, 0o777, 0, b'2', target)
    }

    /// The archive with its two closing zero blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.0.resize(self.0.len() + 1024, 0);
        self.0
    }
}

fn sha256_hex(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The layer: `entries` as a tar (paths relative, no leading `/`).
pub fn layer(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut t = Tar::default();
    for e in entries {
        match e {
            Entry::Dir { path, mode } => t.dir(path.trim_start_matches('/'), *mode)?,
            Entry::File { path, mode, from } => {
                let data = std::fs::read(from).map_err(ClusterError::io("reading", from))?;
                t.file(path.trim_start_matches('/'), *mode, &data)?
            }
            Entry::Symlink { path, target } => t.symlink(path.trim_start_matches('/'), target)?,
        }
    }
    Ok(t.finish())
}

/// Writes `image` as an OCI archive at `dest`; returns the manifest digest.
pub fn write_archive(image: &Image, dest: &Path) -> Result<String> {
    let layer = layer(&image.entries)?;
    let layer_digest = sha256_hex(&layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": image.entrypoint,
            "Cmd": image.cmd,
            "Env": image.env,
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    }))
    .map_err(|e| ClusterError::Invalid(e.to_string()))?;
    let config_digest = sha256_hex(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_digest}"),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{layer_digest}"),
            "size": layer.len(),
        }],
    }))
    .map_err(|e| ClusterError::Invalid(e.to_string()))?;
    let manifest_digest = sha256_hex(&manifest);
    let tag = image
        .name
        .rsplit_once(':')
        .map(|(_, t)| t)
        .unwrap_or("latest");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": image.name,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    }))
    .map_err(|e| ClusterError::Invalid(e.to_string()))?;
    let mut t = Tar::default();
    t.file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    t.file("index.json", 0o644, &index)?;
    t.dir("blobs", 0o755)?;
    t.dir("blobs/sha256", 0o755)?;
    for (d, b) in [
        (&manifest_digest, &manifest),
        (&config_digest, &config),
        (&layer_digest, &layer),
    ] {
        t.file(&format!("blobs/sha256/{d}"), 0o644, b)?;
    }
    write_file(dest, &t.finish(), 0o644)?;
    Ok(format!("sha256:{manifest_digest}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn gnu_tar_reads_the_layer_and_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("hello");
        std::fs::write(&host, b"hi there\n").unwrap();
        let img = Image {
            name: "localhost/test:1".into(),
            entries: vec![
                Entry::Dir {
                    path: "/bin".into(),
                    mode: 0o755,
                },
                Entry::File {
                    path: "/bin/hello".into(),
                    mode: 0o755,
                    from: host,
                },
                Entry::Symlink {
                    path: "/bin/hi".into(),
                    target: "hello".into(),
                },
            ],
            entrypoint: vec!["/bin/hello".into()],
            cmd: vec![],
            env: vec!["PATH=/bin".into()],
        };
        let dest = dir.path().join("img.tar");
        let digest = write_archive(&img, &dest).unwrap();
        assert!(digest.starts_with("sha256:") && digest.len() == 71);
        let out = Command::new("tar").arg("-tf").arg(&dest).output().unwrap();
        assert!(out.status.success());
        let list = String::from_utf8_lossy(&out.stdout);
        assert!(
            list.contains("index.json") && list.contains("oci-layout"),
            "{list}"
        );
        // Extract and check the layer's files, mode and link with GNU tar.
        let x = dir.path().join("x");
        std::fs::create_dir(&x).unwrap();
        assert!(Command::new("tar")
            .arg("-xf")
            .arg(&dest)
            .arg("-C")
            .arg(&x)
            .status()
            .unwrap()
            .success());
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(x.join("index.json")).unwrap()).unwrap();
        assert_eq!(
            index["manifests"][0]["annotations"]["io.containerd.image.name"],
            "localhost/test:1"
        );
        let m = &index["manifests"][0]["digest"].as_str().unwrap()["sha256:".len()..];
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(x.join("blobs/sha256").join(m)).unwrap())
                .unwrap();
        let l = &manifest["layers"][0]["digest"].as_str().unwrap()["sha256:".len()..];
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        assert!(Command::new("tar")
            .arg("-xf")
            .arg(x.join("blobs/sha256").join(l))
            .arg("-C")
            .arg(&root)
            .status()
            .unwrap()
            .success());
        assert_eq!(std::fs::read(root.join("bin/hi")).unwrap(), b"hi there\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("bin/hello"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        // A name over 100 bytes goes through ustar's prefix field.
        let long = format!("{}/file", "d".repeat(120));
        let mut t = Tar::default();
        t.file(&long, 0o644, b"x").unwrap();
        let lt = dir.path().join("long.tar");
        std::fs::write(&lt, t.finish()).unwrap();
        let out = Command::new("tar").arg("-tf").arg(&lt).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), long);
        // Same inputs, same digest.
        assert_eq!(
            write_archive(&img, &dir.path().join("again.tar")).unwrap(),
            digest
        );
    }
}
