use std::io;
use std::path::PathBuf;

use crate::btf::BtfError;

/// Errors of the fast path's loading, pinning and maps.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    /// The kernel lacks something the program needs (BTF, the conntrack
    /// kfuncs): the fast path is unavailable, the stack still works.
    #[error("eBPF fast path unsupported by this kernel: {0}")]
    Unsupported(String),

    #[error("kernel BTF: {0}")]
    Btf(#[from] BtfError),

    /// The verifier refused the program; `log` is its last lines.
    #[error("loading the fast-path program: {source}\n{log}")]
    Load { source: io::Error, log: String },

    #[error("{op} {}: {source}", .path.display())]
    Pin {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    #[error("{op}: {source}")]
    Sys { op: &'static str, source: io::Error },
}

impl EbpfError {
    pub(crate) fn sys(op: &'static str) -> impl FnOnce(io::Error) -> EbpfError {
        move |source| EbpfError::Sys { op, source }
    }

    pub(crate) fn pin(op: &'static str, path: PathBuf) -> impl FnOnce(io::Error) -> EbpfError {
        move |source| EbpfError::Pin { op, path, source }
    }
}
