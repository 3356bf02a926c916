//! kubectl, the way a user drives the cluster. The harness runs it inside
//! the router's netns with a direct kubeconfig (nothing in between);
//! [`Kubectl::host`] goes through the host's forwarder, as a user's
//! kubectl does.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::error::{ClusterError, Result};
use crate::paths::ClusterPaths;
use crate::procs::Place;
use crate::util::run_with_input;

#[derive(Debug, Clone)]
pub struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    place: Option<Place>,
}

impl Kubectl {
    /// kubectl in the router's netns `netns`, straight to the API server.
    pub fn internal(paths: &ClusterPaths, netns: &str) -> Result<Kubectl> {
        Ok(Kubectl {
            bin: paths.kube_binary("kubectl")?,
            kubeconfig: paths.admin_kubeconfig_internal(),
            place: Some(Place::netns(netns)),
        })
    }

    /// kubectl on the host, through the forwarder (`admin.conf`).
    pub fn host(paths: &ClusterPaths) -> Result<Kubectl> {
        Ok(Kubectl {
            bin: paths.kube_binary("kubectl")?,
            kubeconfig: paths.admin_kubeconfig(),
            place: None,
        })
    }

    /// The `kubectl ARGS` command, to run as the caller likes (streams).
    pub fn command_for(&self, args: &[&str]) -> Command {
        self.command(args)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut all: Vec<String> = vec![format!("--kubeconfig={}", self.kubeconfig.display())];
        all.extend(args.iter().map(|a| a.to_string()));
        match &self.place {
            Some(p) => p.command(&self.bin, &all),
            None => {
                let mut c = Command::new(&self.bin);
                c.args(&all);
                c
            }
        }
    }

    /// `kubectl ARGS`: its stdout.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        run_with_input(&mut self.command(args), None)
    }

    /// `kubectl ARGS` with `input` on stdin.
    pub fn run_input(&self, args: &[&str], input: &str) -> Result<String> {
        run_with_input(&mut self.command(args), Some(input.as_bytes()))
    }

    /// ferry's DaemonSet pods (`-n kube-system -l app.kubernetes.io/name=ferry`), as JSON.
    pub fn ferry_pods(&self) -> Result<Value> {
        self.json(&[
            "get",
            "pods",
            "-n",
            "kube-system",
            "-l",
            "app.kubernetes.io/name=ferry",
        ])
    }

    /// `kubectl ARGS -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> Result<Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.run(&a)?;
        serde_json::from_str(&out).map_err(|e| ClusterError::Unexpected {
            what: format!("kubectl {}", args.join(" ")),
            detail: e.to_string(),
        })
    }

    /// `kubectl apply -f -` with `yaml`.
    pub fn apply(&self, yaml: &str) -> Result<String> {
        self.run_input(&["apply", "-f", "-"], yaml)
    }

    /// `kubectl exec -n NS POD -- sh -c SCRIPT`: its stdout.
    pub fn exec_sh(&self, ns: &str, pod: &str, script: &str) -> Result<String> {
        self.run(&["exec", "-n", ns, pod, "--", "sh", "-c", script])
    }
}

/// The `items` of a list.
pub fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// A condition's status (`"True"`, ...) on an object with `status.conditions`.
pub fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_conditions() {
        let node = serde_json::json!({"status": {"conditions": [
            {"type": "NetworkUnavailable", "status": "False", "reason": "FerryIsUp"},
            {"type": "Ready", "status": "True"},
        ]}});
        assert_eq!(condition(&node, "Ready").unwrap()["status"], "True");
        assert_eq!(
            condition(&node, "NetworkUnavailable").unwrap()["reason"],
            "FerryIsUp"
        );
        assert!(condition(&node, "Other").is_none());
        assert!(items(&serde_json::json!({})).is_empty());
    }
}
