//! The one error type of the harness: what failed, with the path, command
//! or object it failed on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("Kubernetes binary {name} not found in {dir} (run ./scripts/kubernetes.sh)")]
    MissingBinary { name: String, dir: PathBuf },
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("timed out after {secs} s waiting for {what}{detail}")]
    Timeout {
        what: String,
        secs: u64,
        detail: String,
    },
    #[error("{what}: unexpected answer: {detail}")]
    Unexpected { what: String, detail: String },
    #[error("check failed: {0}")]
    Check(String),
    #[error("{0}")]
    Invalid(String),
}

impl ClusterError {
    pub fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ClusterError::Io {
            context,
            path,
            source,
        }
    }
}

pub type Result<T, E = ClusterError> = std::result::Result<T, E>;
