//! The plugin on disk: the conflist and the `ferry`/`ferry-ipam` binaries,
//! all written atomically (temp file in the same directory, fsync, rename)
//! and only when their content changes.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::IpNet;
use serde::Serialize;

use crate::{AgentError, NETWORK_NAME, PLUGIN_BINARIES};

/// The conflist (CNI `cni_version`) for the node's podCIDRs: ferry with
/// ferry-ipam (one range set per podCIDR), then `portmap`. Structs, not a `json!` map, so the key
/// order is fixed whatever serde_json features the build unifies.
pub fn render_conflist(
    cni_version: &str,
    pod_cidrs: &[IpNet],
    mtu: u32,
    ipam_data_dir: &Path,
    fast_path: Option<&Path>,
    policy_dir: Option<&Path>,
) -> String {
    let conf = ConfList {
        cni_version,
        name: NETWORK_NAME,
        plugins: (
            FerryConf {
                type_: "ferry",
                mtu,
                fast_path: fast_path.map(|p| p.display().to_string()),
                policy_dir: policy_dir.map(|p| p.display().to_string()),
                ipam: IpamConf {
                    type_: "ferry-ipam",
                    ranges: pod_cidrs
                        .iter()
                        .map(|c| {
                            [Subnet {
                                subnet: c.to_string(),
                            }]
                        })
                        .collect(),
                    data_dir: ipam_data_dir.display().to_string(),
                },
            },
            PortmapConf {
                type_: "portmap",
                capabilities: Capabilities {
                    port_mappings: true,
                },
                snat: true,
            },
        ),
    };
    let mut s = serde_json::to_string_pretty(&conf).expect("conflist serializes");
    s.push('\n');
    s
}

#[derive(Serialize)]
struct ConfList<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    name: &'static str,
    plugins: (FerryConf, PortmapConf),
}

#[derive(Serialize)]
struct FerryConf {
    #[serde(rename = "type")]
    type_: &'static str,
    mtu: u32,
    #[serde(rename = "fastPath", skip_serializing_if = "Option::is_none")]
    fast_path: Option<String>,
    #[serde(rename = "policyDir", skip_serializing_if = "Option::is_none")]
    policy_dir: Option<String>,
    ipam: IpamConf,
}

#[derive(Serialize)]
struct IpamConf {
    #[serde(rename = "type")]
    type_: &'static str,
    ranges: Vec<[Subnet; 1]>,
    #[serde(rename = "dataDir")]
    data_dir: String,
}

#[derive(Serialize)]
struct Subnet {
    subnet: String,
}

#[derive(Serialize)]
struct PortmapConf {
    #[serde(rename = "type")]
    type_: &'static str,
    capabilities: Capabilities,
    snat: bool,
}

#[derive(Serialize)]
struct Capabilities {
    #[serde(rename = "portMappings")]
    port_mappings: bool,
}

/// Writes `content` to `path` atomically with `mode`, unless the file
/// already holds exactly that. Returns whether it wrote.
pub fn write_if_changed(path: &Path, content: &[u8], mode: u32) -> Result<bool, AgentError> {
    if let Ok(meta) = fs::metadata(path) {
        if meta.len() == content.len() as u64
            && meta.permissions().mode() & 0o7777 == mode
            && fs::read(path).is_ok_and(|old| old == content)
        {
            return Ok(false);
        }
    }
    write_atomic(path, content, mode)?;
    Ok(true)
}

/// Temp file in the same directory, write, fsync, chmod, rename, fsync the
/// directory. A reader sees the old file or the new one, never a part.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<(), AgentError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| AgentError::io("create directory", dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.ferryd-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| AgentError::io("create", &tmp, e))?;
        f.write_all(content)
            .map_err(|e| AgentError::io("write", &tmp, e))?;
        // The umask may have narrowed the mode.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| AgentError::io("chmod", &tmp, e))?;
        f.sync_all().map_err(|e| AgentError::io("fsync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| AgentError::io("rename into", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes `path`; `Ok(false)` if it was not there.
pub fn remove_file(path: &Path) -> Result<bool, AgentError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(AgentError::io("remove", path, e)),
    }
}

/// What a source binary looked like when it was last installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: Option<SystemTime>,
}

/// Copies the plugin binaries from `source` into `bin_dir`, remembering
/// what it copied so an unchanged source costs two `stat`s per reconcile.
#[derive(Debug)]
pub struct Binaries {
    source: PathBuf,
    bin_dir: PathBuf,
    /// Per binary: the source and the installed file as last seen equal.
    installed: BTreeMap<&'static str, (Stamp, Stamp)>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        mtime: meta.modified().ok(),
    })
}

impl Binaries {
    pub fn new(source: PathBuf, bin_dir: PathBuf) -> Binaries {
        Binaries {
            source,
            bin_dir,
            installed: BTreeMap::new(),
        }
    }

    /// Installs every binary that is missing or differs from its source
    /// (compared by content); returns the names it (re)wrote.
    pub fn sync(&mut self) -> Result<Vec<&'static str>, AgentError> {
        let mut written = Vec::new();
        for name in PLUGIN_BINARIES {
            let src = self.source.join(name);
            let dst = self.bin_dir.join(name);
            let src_stamp = stamp(&src).ok_or_else(|| {
                AgentError::io(
                    "stat plugin",
                    &src,
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                )
            })?;
            let seen = self.installed.get(name);
            if seen.is_some_and(|(s, d)| *s == src_stamp && Some(*d) == stamp(&dst)) {
                continue;
            }
            let content = fs::read(&src).map_err(|e| AgentError::io("read plugin", &src, e))?;
            if write_if_changed(&dst, &content, 0o755)? {
                written.push(name);
            }
            if let Some(dst_stamp) = stamp(&dst) {
                self.installed.insert(name, (src_stamp, dst_stamp));
            }
        }
        Ok(written)
    }

    /// Removes the installed binaries; returns the names removed.
    pub fn remove(bin_dir: &Path) -> Result<Vec<&'static str>, AgentError> {
        let mut removed = Vec::new();
        for name in PLUGIN_BINARIES {
            if remove_file(&bin_dir.join(name))? {
                removed.push(name);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn conflist_dual_stack_golden() {
        let got = render_conflist(
            "1.1.0",
            &[
                "10.244.1.0/24".parse().unwrap(),
                "fd00:10:244:1::/64".parse().unwrap(),
            ],
            1450,
            Path::new("/run/ferry/ipam"),
            Some(Path::new("/sys/fs/bpf/ferry")),
            Some(Path::new("/run/ferry/policy")),
        );
        assert_eq!(got, golden("10-ferry.conflist"));
    }

    #[test]
    fn conflist_v4_golden_and_parsable() {
        let got = render_conflist(
            "1.1.0",
            &["10.244.0.0/24".parse().unwrap()],
            1500,
            Path::new("/tmp/node-a/ipam"),
            None,
            None,
        );
        assert_eq!(got, golden("10-ferry-v4.conflist"));
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(
            v["plugins"][0]["ipam"]["ranges"].as_array().unwrap().len(),
            1
        );
    }

    #[test]
    fn atomic_write_only_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/conf");
        assert!(write_if_changed(&path, b"one", 0o644).unwrap());
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let first = ino(&path);
        assert!(!write_if_changed(&path, b"one", 0o644).unwrap());
        assert_eq!(ino(&path), first, "unchanged content is not rewritten");
        assert!(write_if_changed(&path, b"two", 0o644).unwrap());
        assert_ne!(ino(&path), first, "replaced by rename");
        assert_eq!(fs::read(&path).unwrap(), b"two");
        // A mode change alone rewrites too.
        assert!(write_if_changed(&path, b"two", 0o755).unwrap());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("conf")]);
        assert!(remove_file(&path).unwrap());
        assert!(!remove_file(&path).unwrap());
    }

    #[test]
    fn binaries_copied_again_when_the_source_changes() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        for name in PLUGIN_BINARIES {
            fs::write(src.path().join(name), format!("{name} v1")).unwrap();
        }
        let mut bins = Binaries::new(src.path().into(), dst.path().join("bin"));
        assert_eq!(bins.sync().unwrap(), PLUGIN_BINARIES.to_vec());
        assert!(bins.sync().unwrap().is_empty());
        let installed = dst.path().join("bin/ferry");
        assert_eq!(fs::read_to_string(&installed).unwrap(), "ferry v1");
        assert_eq!(
            fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
            0o755
        );

        fs::write(src.path().join("ferry"), "ferry v2, longer").unwrap();
        assert_eq!(bins.sync().unwrap(), vec!["ferry"]);
        assert_eq!(fs::read_to_string(&installed).unwrap(), "ferry v2, longer");

        // Removed or changed behind our back: put back.
        fs::remove_file(&installed).unwrap();
        assert_eq!(bins.sync().unwrap(), vec!["ferry"]);
        fs::write(&installed, "tampered").unwrap();
        assert_eq!(bins.sync().unwrap(), vec!["ferry"]);
        assert_eq!(fs::read_to_string(&installed).unwrap(), "ferry v2, longer");

        // A fresh agent with identical files writes nothing.
        let mut again = Binaries::new(src.path().into(), dst.path().join("bin"));
        assert!(again.sync().unwrap().is_empty());

        assert_eq!(Binaries::remove(&dst.path().join("bin")).unwrap().len(), 2);
        assert!(Binaries::remove(&dst.path().join("bin"))
            .unwrap()
            .is_empty());

        let mut missing = Binaries::new(dst.path().join("nope"), dst.path().join("bin"));
        assert!(matches!(missing.sync(), Err(AgentError::Io { .. })));
    }
}
