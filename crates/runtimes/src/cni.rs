//! The CNI side a runtime is pointed at: a plugin `bin` dir, a `conf` dir
//! with one conflist, and optionally a recorder that keeps each
//! invocation's environment, stdin, stdout and exit status.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{HarnessError, Result};

/// The network name of the ferry conflist (IPAM state lives in
/// `<dataDir>/ferry/`).
pub const FERRY_NETWORK: &str = "ferry";
/// The network name of the ptp + host-local conflist.
pub const PTP_NETWORK: &str = "ptp";
/// The subnet both conflists allocate from.
pub const POD_SUBNET: &str = "10.244.0.0/24";

/// ferry's config as a kubeadm node would have it, chained with `portmap`.
pub fn ferry_conflist(data_dir: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": FERRY_NETWORK,
        "plugins": [
            {
                "cniVersion": "1.0.0",
                "name": FERRY_NETWORK,
                "type": "ferry",
                "mtu": 1500,
                "ipam": {
                    "type": "ferry-ipam",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "dataDir": data_dir,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
}

/// The reference point: `ptp` + `host-local` from `/usr/lib/cni`, chained
/// with `portmap` exactly like [`ferry_conflist`].
pub fn ptp_conflist(data_dir: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": PTP_NETWORK,
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": false,
                "mtu": 1500,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": data_dir,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
}

/// A CNI bin dir and conf dir under `root`, removed by the owner's guard.
#[derive(Debug, Clone)]
pub struct CniDirs {
    pub bin: PathBuf,
    pub conf: PathBuf,
    /// Where recorded invocations go, when any plugin is recorded.
    pub records: PathBuf,
}

impl CniDirs {
    /// Make `root/cni/{bin,conf,records}`.
    pub fn create(root: &Path) -> Result<CniDirs> {
        let dirs = CniDirs {
            bin: root.join("cni/bin"),
            conf: root.join("cni/conf"),
            records: root.join("cni/records"),
        };
        for d in [&dirs.bin, &dirs.conf, &dirs.records] {
            std::fs::create_dir_all(d).map_err(|e| HarnessError::io("creating", d, e))?;
        }
        Ok(dirs)
    }

    /// Put `target` into the bin dir as `name` (a symlink: what the
    /// runtime execs is the binary itself).
    pub fn link(&self, name: &str, target: &Path) -> Result<()> {
        let link = self.bin.join(name);
        std::os::unix::fs::symlink(target, &link).map_err(|e| HarnessError::io("linking", &link, e))
    }

    /// Put a wrapper named `name` into the bin dir that records each call
    /// (see [`CniDirs::recorded`]) and then runs `target` with the same
    /// environment and stdin, passing its stdout and exit status through.
    pub fn record(&self, name: &str, target: &Path) -> Result<()> {
        let script = format!(
            "#!/bin/sh\n\
             # Records one CNI invocation, then runs the real plugin.\n\
             r='{dir}'/$(date +%s%N)-$$-{name}\n\
             env | grep '^CNI_' > \"$r.env\"\n\
             tr '\\0' ' ' < /proc/$PPID/cmdline > \"$r.parent\"\n\
             cat > \"$r.stdin\"\n\
             '{target}' < \"$r.stdin\" > \"$r.stdout\"\n\
             rc=$?\n\
             echo $rc > \"$r.rc.tmp\" && mv \"$r.rc.tmp\" \"$r.rc\"\n\
             cat \"$r.stdout\"\n\
             exit $rc\n",
            dir = self.records.display(),
            target = target.display(),
        );
        let path = self.bin.join(name);
        write_atomic(&path, &script)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| HarnessError::io("chmod", &path, e))
    }

    /// Every plugin in `names` from `/usr/lib/cni`.
    pub fn link_reference(&self, names: &[&str]) -> Result<()> {
        for n in names {
            self.link(n, &Path::new(ferry_testkit::REFERENCE_DIR).join(n))?;
        }
        Ok(())
    }

    /// Write the one conflist the runtime will load.
    pub fn write_conflist(&self, conflist: &Value) -> Result<PathBuf> {
        let name = conflist["name"].as_str().unwrap_or("net");
        let path = self.conf.join(format!("10-{name}.conflist"));
        write_atomic(&path, &conflist.to_string())?;
        Ok(path)
    }

    /// The calls recorded so far, oldest first (only finished ones: the
    /// `.rc` file is renamed into place last).
    pub fn recorded(&self) -> Vec<Invocation> {
        let mut stems: Vec<String> = std::fs::read_dir(&self.records)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.strip_suffix(".rc").map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        stems.sort_by_key(|s| {
            let nanos: u128 = s
                .split('-')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (nanos, s.clone())
        });
        stems
            .into_iter()
            .map(|stem| Invocation::read(&self.records, &stem))
            .collect()
    }
}

/// One recorded plugin call.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub plugin: String,
    /// The `CNI_*` variables.
    pub env: BTreeMap<String, String>,
    pub stdin: Value,
    pub stdout: String,
    pub exit_code: i32,
    /// The command line of the process that exec'd the plugin.
    pub parent: String,
}

impl Invocation {
    fn read(dir: &Path, stem: &str) -> Invocation {
        let file = |ext: &str| std::fs::read_to_string(dir.join(format!("{stem}.{ext}")));
        let env = file("env")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Invocation {
            plugin: stem.splitn(3, '-').nth(2).unwrap_or_default().to_string(),
            env,
            stdin: serde_json::from_str(&file("stdin").unwrap_or_default()).unwrap_or(Value::Null),
            stdout: file("stdout").unwrap_or_default(),
            exit_code: file("rc")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(-1),
            parent: file("parent").unwrap_or_default().trim().to_string(),
        }
    }

    pub fn command(&self) -> &str {
        self.env
            .get("CNI_COMMAND")
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn container_id(&self) -> &str {
        self.env
            .get("CNI_CONTAINERID")
            .map(String::as_str)
            .unwrap_or("")
    }

    /// `CNI_ARGS` as key/value pairs, in the order sent.
    pub fn cni_args(&self) -> Vec<(String, String)> {
        self.env
            .get("CNI_ARGS")
            .map(|a| {
                a.split(';')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn cni_arg(&self, key: &str) -> Option<String> {
        self.cni_args()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// stdout parsed as JSON (`Null` when empty).
    pub fn stdout_json(&self) -> Result<Value> {
        if self.stdout.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.stdout).map_err(|e| HarnessError::Unexpected {
            what: "plugin stdout",
            detail: format!("{e}: {:?}", self.stdout),
        })
    }
}

/// Write via a temp file + rename.
pub fn write_atomic(path: &Path, content: &str) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, content).map_err(|e| HarnessError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| HarnessError::io("renaming to", path, e))
}
