//! What can go wrong building, checking or tearing down the lab. Every
//! message is whole (its cause included): the binary prints one line each.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("network namespace {name}: {err}")]
    Netns {
        name: String,
        err: ferry_netns::NetnsError,
    },
    #[error("no lab is up for prefix {prefix:?} (no {path}); run `ferry-lab up`")]
    NotUp { prefix: String, path: PathBuf },
    #[error("a lab is already up for prefix {prefix:?} ({path}); run `ferry-lab down` first")]
    AlreadyUp { prefix: String, path: PathBuf },
    #[error("{path}: {detail}")]
    State { path: PathBuf, detail: String },
    #[error(
        "{name} not found in {dir}: build the lab's binaries in the profile of this \
         executable (`cargo build [--release] -p ferry-plugin -p ferryd -p ferry-apiserver`), \
         or point --bin-dir / FERRY_LAB_BIN_DIR at them"
    )]
    MissingBinary { name: String, dir: PathBuf },
    #[error("timed out after {waited:?} waiting for {what}{}", fmt_detail(detail))]
    Timeout {
        what: String,
        waited: Duration,
        detail: String,
    },
    #[error("CNI on {node} for {pod}: {err}")]
    Cni {
        node: String,
        pod: String,
        err: Box<ferry_testkit::conflist::CniError>,
    },
    #[error("{failed} of {total} probes failed:\n{list}")]
    CheckFailed {
        failed: usize,
        total: usize,
        list: String,
    },
    #[error("scenario {scenario}: {detail}")]
    Scenario { scenario: String, detail: String },
    #[error("kubernetes: {0}")]
    Cluster(#[from] ferry_cluster::ClusterError),
    #[error("{0}")]
    Invalid(String),
}

fn fmt_detail(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!("\n{detail}")
    }
}

impl LabError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> LabError {
        LabError::Io {
            path: path.into(),
            err: source,
        }
    }

    pub fn netns(name: &str, source: ferry_netns::NetnsError) -> LabError {
        LabError::Netns {
            name: name.into(),
            err: source,
        }
    }

    pub fn scenario(scenario: &str, detail: impl Into<String>) -> LabError {
        LabError::Scenario {
            scenario: scenario.into(),
            detail: detail.into(),
        }
    }
}

pub type Result<T, E = LabError> = std::result::Result<T, E>;
