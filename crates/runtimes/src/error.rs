//! What can go wrong while setting up or driving a runtime.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("running {cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("{cmd} failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("entering the node netns {}: {source}", path.display())]
    Netns {
        path: PathBuf,
        source: ferry_netns::NetnsError,
    },
    #[error("connecting to the CRI socket {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        source: tonic::transport::Error,
    },
    #[error("CRI {call}: {status}")]
    Cri {
        call: &'static str,
        status: Box<tonic::Status>,
    },
    #[error("timed out after {secs} s: {what}")]
    Timeout { what: String, secs: u64 },
    #[error("unexpected answer from {what}: {detail}")]
    Unexpected { what: &'static str, detail: String },
}

impl HarnessError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HarnessError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
