//! A small libcni: runs a network configuration list (`*.conflist`) the
//! way containerd's go-cni / libcni does, so a test or the lab exercises
//! exactly what a runtime would.
//!
//! - ADD: each plugin of the list in order, its config being the plugin
//!   object plus the list's `cniVersion` and `name`, the previous plugin's
//!   result as `prevResult`, and `runtimeConfig` for each capability the
//!   plugin declares and the runtime supplies (`portMappings`, ...). The
//!   last result is cached (`<cache>/results/<network>-<id>-<ifname>`, as
//!   libcni's `cniCacheV1`). A failed ADD is followed by a DEL of the whole
//!   list, as containerd does.
//! - DEL: the plugins in reverse order, `prevResult` from the cache; the
//!   cache entry is removed afterwards.
//! - The environment is only `CNI_*` and `PATH`; `CNI_ARGS` is built from
//!   [`Attachment::args`] (containerd's `IgnoreUnknown=1;K8S_POD_...`).
//! - Plugins are looked up in [`Runtime::cni_path`], in order, and run in
//!   [`Runtime::netns`] (the node's network namespace), if set.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ferry_netns::NetNs;
use serde_json::{json, Map, Value};

/// A loaded network configuration list.
#[derive(Debug, Clone)]
pub struct ConfList {
    pub raw: Value,
}

impl ConfList {
    /// Reads and checks a `.conflist` file.
    pub fn load(path: &Path) -> Result<ConfList, CniError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CniError::runner(format!("{}: {e}", path.display())))?;
        let raw: Value = serde_json::from_str(&text)
            .map_err(|e| CniError::runner(format!("{}: not JSON: {e}", path.display())))?;
        ConfList::from_value(raw)
    }

    /// Checks `name`, `cniVersion` and a non-empty `plugins` list with a
    /// `type` each.
    pub fn from_value(raw: Value) -> Result<ConfList, CniError> {
        let list = ConfList { raw };
        if list.name().is_empty() || list.version().is_empty() {
            return Err(CniError::runner("conflist without name or cniVersion"));
        }
        let plugins = list.raw["plugins"].as_array();
        if plugins.is_none_or(|p| p.is_empty()) {
            return Err(CniError::runner("conflist without plugins"));
        }
        if plugins
            .into_iter()
            .flatten()
            .any(|p| p["type"].as_str().is_none_or(str::is_empty))
        {
            return Err(CniError::runner("a plugin without type"));
        }
        Ok(list)
    }

    pub fn name(&self) -> &str {
        self.raw["name"].as_str().unwrap_or("")
    }

    pub fn version(&self) -> &str {
        self.raw["cniVersion"].as_str().unwrap_or("")
    }

    pub fn plugins(&self) -> &[Value] {
        self.raw["plugins"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The config one plugin gets on stdin (libcni's `buildOneConfig`).
    pub fn plugin_config(
        &self,
        index: usize,
        prev_result: Option<&Value>,
        capability_args: &Map<String, Value>,
    ) -> Value {
        let mut conf = self.plugins()[index].clone();
        conf["cniVersion"] = json!(self.version());
        conf["name"] = json!(self.name());
        if let Some(prev) = prev_result {
            conf["prevResult"] = prev.clone();
        }
        let mut rc = Map::new();
        if let Some(caps) = conf["capabilities"].as_object() {
            for (cap, on) in caps {
                if on.as_bool() == Some(true) {
                    if let Some(v) = capability_args.get(cap) {
                        rc.insert(cap.clone(), v.clone());
                    }
                }
            }
        }
        if !rc.is_empty() {
            conf["runtimeConfig"] = Value::Object(rc);
        }
        conf
    }
}

/// One pod's attachment to the network.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub container_id: String,
    /// Path of the pod's netns (`/run/netns/NAME`).
    pub netns: String,
    pub ifname: String,
    /// `CNI_ARGS` pairs, in order.
    pub args: Vec<(String, String)>,
    /// Capability arguments (`portMappings`, `dns`, ...).
    pub capability_args: Map<String, Value>,
}

impl Attachment {
    /// A Kubernetes pod as containerd attaches it: `eth0`, `CNI_ARGS` with
    /// `IgnoreUnknown=1;K8S_POD_NAMESPACE;K8S_POD_NAME;
    /// K8S_POD_INFRA_CONTAINER_ID;K8S_POD_UID`, no port mappings.
    pub fn kubernetes_pod(
        container_id: &str,
        netns: &str,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Attachment {
        let args = [
            ("IgnoreUnknown", "1"),
            ("K8S_POD_NAMESPACE", namespace),
            ("K8S_POD_NAME", name),
            ("K8S_POD_INFRA_CONTAINER_ID", container_id),
            ("K8S_POD_UID", uid),
        ];
        let mut capability_args = Map::new();
        capability_args.insert("portMappings".into(), json!([]));
        Attachment {
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: "eth0".into(),
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            capability_args,
        }
    }

    /// Adds a `CNI_ARGS` pair (e.g. `IP=10.244.0.5` for a static address).
    pub fn with_arg(mut self, key: &str, value: &str) -> Attachment {
        self.args.push((key.into(), value.into()));
        self
    }

    pub fn cni_args(&self) -> String {
        self.args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// Where plugins are found and run, and where results are cached.
#[derive(Debug)]
pub struct Runtime {
    pub cni_path: Vec<PathBuf>,
    pub cache_dir: PathBuf,
    /// The netns plugins run in (the node's); the caller's when `None`.
    pub netns: Option<NetNs>,
}

/// A plugin (or the runner) failed.
#[derive(Debug, Clone)]
pub struct CniError {
    /// `ADD ferry`, or empty for the runner's own errors.
    pub call: String,
    pub code: Option<u64>,
    pub msg: String,
    pub details: String,
    pub stderr: String,
}

impl CniError {
    fn runner(msg: impl Into<String>) -> CniError {
        CniError {
            call: String::new(),
            code: None,
            msg: msg.into(),
            details: String::new(),
            stderr: String::new(),
        }
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.call.is_empty() {
            write!(f, "{}: ", self.call)?;
        }
        if let Some(code) = self.code {
            write!(f, "error {code}: ")?;
        }
        write!(f, "{}", self.msg)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        let stderr = self.stderr.trim();
        if !stderr.is_empty() {
            write!(f, "; stderr: {stderr}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

impl Runtime {
    /// The binary for plugin `type_`: the first match in `cni_path`.
    pub fn find_plugin(&self, type_: &str) -> Result<PathBuf, CniError> {
        self.cni_path
            .iter()
            .map(|d| d.join(type_))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                CniError::runner(format!(
                    "failed to find plugin {type_:?} in path {:?}",
                    self.cni_path
                ))
            })
    }

    fn cache_file(&self, list: &ConfList, att: &Attachment) -> PathBuf {
        self.cache_dir.join("results").join(format!(
            "{}-{}-{}",
            list.name(),
            att.container_id,
            att.ifname
        ))
    }

    /// The cached ADD result for an attachment, if any.
    pub fn cached_result(&self, list: &ConfList, att: &Attachment) -> Option<Value> {
        let text = std::fs::read_to_string(self.cache_file(list, att)).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        Some(v["result"].clone()).filter(|r| !r.is_null())
    }

    /// ADD the attachment through every plugin of the list; the final
    /// result. On failure the list is DELeted again before returning.
    pub fn add(&self, list: &ConfList, att: &Attachment) -> Result<Value, CniError> {
        let mut prev: Option<Value> = None;
        for i in 0..list.plugins().len() {
            let conf = list.plugin_config(i, prev.as_ref(), &att.capability_args);
            match self.exec("ADD", &conf, att) {
                Ok(result) => prev = Some(result),
                Err(e) => {
                    let _ = self.del(list, att);
                    return Err(e);
                }
            }
        }
        let result = prev.unwrap_or(Value::Null);
        let cache = json!({
            "kind": "cniCacheV1",
            "containerId": att.container_id,
            "config": list.raw.to_string(),
            "ifName": att.ifname,
            "networkName": list.name(),
            "cniArgs": att.args.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "capabilityArgs": att.capability_args,
            "result": result,
        });
        write_atomic(&self.cache_file(list, att), &cache.to_string())?;
        Ok(result)
    }

    /// DEL the attachment through every plugin, in reverse order, with the
    /// cached result as `prevResult`; then forget the cached result.
    pub fn del(&self, list: &ConfList, att: &Attachment) -> Result<(), CniError> {
        let prev = self.cached_result(list, att);
        for i in (0..list.plugins().len()).rev() {
            let conf = list.plugin_config(i, prev.as_ref(), &att.capability_args);
            self.exec("DEL", &conf, att)?;
        }
        let file = self.cache_file(list, att);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(CniError::runner(format!("{}: {e}", file.display())))
            }
            _ => Ok(()),
        }
    }

    /// The spec versions plugin `type_` supports (libcni's
    /// `GetVersionInfo`: `CNI_COMMAND=VERSION`).
    pub fn supported_versions(&self, type_: &str) -> Result<Vec<String>, CniError> {
        let att = Attachment {
            container_id: String::new(),
            netns: String::new(),
            ifname: String::new(),
            args: Vec::new(),
            capability_args: Map::new(),
        };
        let conf = json!({"cniVersion": "0.4.0", "type": type_});
        let v = self.exec("VERSION", &conf, &att)?;
        Ok(v["supportedVersions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect())
    }

    /// Runs one plugin for `command` with `conf` on stdin; its result
    /// (`Null` for an empty stdout, as DEL prints).
    pub fn exec(&self, command: &str, conf: &Value, att: &Attachment) -> Result<Value, CniError> {
        let type_ = conf["type"].as_str().unwrap_or_default();
        let call = format!("{command} {type_}");
        let binary = self.find_plugin(type_)?;
        let path =
            std::env::join_paths(&self.cni_path).map_err(|e| CniError::runner(e.to_string()))?;
        let mut cmd = Command::new(&binary);
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &att.container_id)
            .env("CNI_NETNS", &att.netns)
            .env("CNI_IFNAME", &att.ifname)
            .env("CNI_ARGS", att.cni_args())
            .env("CNI_PATH", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let stdin = conf.to_string();
        let mut run = move || -> std::io::Result<std::process::Output> {
            let mut child = cmd.spawn()?;
            if let Some(mut pipe) = child.stdin.take() {
                // A plugin that exits early need not read it all.
                let _ = pipe.write_all(stdin.as_bytes());
            }
            child.wait_with_output()
        };
        let out = match &self.netns {
            Some(ns) => ns
                .run(run)
                .map_err(|e| CniError::runner(format!("{call}: {e}")))?,
            None => run(),
        }
        .map_err(|e| CniError::runner(format!("{call}: {}: {e}", binary.display())))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let parsed: Option<Value> = serde_json::from_str(&stdout).ok();
        if !out.status.success() {
            let v = parsed.unwrap_or(Value::Null);
            return Err(CniError {
                call,
                code: v["code"].as_u64(),
                msg: v["msg"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("exit status {}: {}", out.status, stdout.trim())),
                details: v["details"].as_str().unwrap_or_default().to_string(),
                stderr,
            });
        }
        if stdout.trim().is_empty() {
            return Ok(Value::Null);
        }
        parsed.ok_or_else(|| CniError {
            call,
            code: None,
            msg: format!("stdout is not JSON: {stdout:?}"),
            details: String::new(),
            stderr,
        })
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<(), CniError> {
    let err = |e: std::io::Error| CniError::runner(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
#[path = "conflist_tests.rs"]
mod tests;
