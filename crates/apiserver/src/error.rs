//! Error types of the server and of its node store.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a store operation failed. Each maps to the HTTP status a real
/// kube-apiserver would answer with (see [`StoreError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("nodes \"{0}\" not found")]
    NotFound(String),
    #[error("nodes \"{0}\" already exists")]
    AlreadyExists(String),
    #[error(
        "Operation cannot be fulfilled on nodes \"{name}\": the object has been modified; \
         please apply your changes to the latest version and try again \
         (resourceVersion {given}, current {current})"
    )]
    Conflict {
        name: String,
        given: String,
        current: u64,
    },
    #[error("Node is invalid: {0}")]
    Invalid(String),
    #[error("too old resource version: {given} ({oldest})")]
    Expired { given: u64, oldest: u64 },
    #[error("{context} {}: {source}", path.display())]
    Persist {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// HTTP status code and Kubernetes `reason` for this error.
    pub fn code(&self) -> (u16, &'static str) {
        match self {
            StoreError::NotFound(_) => (404, "NotFound"),
            StoreError::AlreadyExists(_) => (409, "AlreadyExists"),
            StoreError::Conflict { .. } => (409, "Conflict"),
            StoreError::Invalid(_) => (422, "Invalid"),
            StoreError::Expired { .. } => (410, "Expired"),
            StoreError::Persist { .. } => (500, "InternalError"),
        }
    }
}

/// Why the server could not start, restart or set up its state dir.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("certificates: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("bad state in {}: {message}", path.display())]
    State { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
}
