//! Error types of the server and of its object store.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a store operation failed. Each maps to the HTTP status a real
/// kube-apiserver would answer with (see [`StoreError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Resource (`nodes`, `pods`, ...) and name.
    #[error("{0} \"{1}\" not found")]
    NotFound(&'static str, String),
    #[error("{0} \"{1}\" already exists")]
    AlreadyExists(&'static str, String),
    #[error(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; \
         please apply your changes to the latest version and try again \
         (resourceVersion {given}, current {current})"
    )]
    Conflict {
        resource: &'static str,
        name: String,
        given: String,
        current: u64,
    },
    #[error("the object is invalid: {0}")]
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
            StoreError::NotFound(..) => (404, "NotFound"),
            StoreError::AlreadyExists(..) => (409, "AlreadyExists"),
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
