use std::io;
use std::path::PathBuf;

use crate::btf::BtfError;
use crate::map::MapShape;

/// Errors of the fast path's loading, pinning and maps.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    /// The kernel lacks something the program needs (BTF, the conntrack
    /// kfuncs): the fast path is unavailable, the stack still works.
    #[error("eBPF fast path unsupported by this kernel: {0}")]
    Unsupported(String),

    /// The conntrack kfuncs are in a module's BTF, whose fd the kernel
    /// hands out only to `CAP_SYS_ADMIN`: this process cannot load the
    /// program, a privileged one can (and pin it for this one).
    #[error(
        "eBPF fast path unsupported by this kernel: {module} is a module on this kernel, and \
         calling its kfuncs takes the module's BTF, which the kernel hands out only to \
         CAP_SYS_ADMIN (CAP_BPF is not enough)"
    )]
    ModuleBtfDenied { module: String },

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

    /// What is pinned at `path` is not the map ferry made there (another
    /// ferry version's layout, or something else entirely): ferry refuses
    /// to read or write it, since the kernel would size every key and
    /// value by that map, not by ferry's buffers.
    #[error(
        "{} is {found}, not the {want} ferry uses: remove it or point ferry at another pin directory",
        .path.display()
    )]
    MapMismatch {
        path: PathBuf,
        want: MapShape,
        found: String,
    },
}

impl EbpfError {
    /// A pinned map of the wrong type or key or value size
    /// ([`EbpfError::MapMismatch`]): a configuration error (CNI code 7 in
    /// the plugin), not a kernel failure.
    pub fn is_map_mismatch(&self) -> bool {
        matches!(self, EbpfError::MapMismatch { .. })
    }

    /// The load needs `CAP_SYS_ADMIN` ([`EbpfError::ModuleBtfDenied`]): a
    /// privileged process can load and pin the program for this one.
    pub fn needs_cap_sys_admin(&self) -> bool {
        matches!(self, EbpfError::ModuleBtfDenied { .. })
    }

    pub(crate) fn sys(op: &'static str) -> impl FnOnce(io::Error) -> EbpfError {
        move |source| EbpfError::Sys { op, source }
    }

    pub(crate) fn pin(op: &'static str, path: PathBuf) -> impl FnOnce(io::Error) -> EbpfError {
        move |source| EbpfError::Pin { op, path, source }
    }
}
