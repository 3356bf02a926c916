use std::io;
use std::path::PathBuf;

/// Errors from namespace operations. Every variant names the operation and
/// the namespace path involved; OS errors keep their errno (see
/// [`NetnsError::errno`]).
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace file could not be opened (missing path, permissions...).
    #[error("open netns {path:?}: {source}")]
    Open { path: PathBuf, source: io::Error },

    /// The path exists but is not a network namespace.
    #[error("{path:?} is not a network namespace: {what}")]
    NotNetns { path: PathBuf, what: String },

    /// `setns(2)` into the namespace failed.
    #[error("setns into netns {path:?}: {source}")]
    Setns { path: PathBuf, source: io::Error },

    /// `unshare(CLONE_NEWNET)` failed.
    #[error("unshare(CLONE_NEWNET) for netns {name:?}: {source}")]
    Unshare { name: String, source: io::Error },

    /// A mount-related operation (mount, bind mount, umount2) failed.
    #[error("{op} {path:?}: {source}")]
    Mount {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    /// Another file-system level operation failed.
    #[error("{op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    /// The namespace name is not acceptable.
    #[error("invalid netns name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// The helper thread could not be spawned.
    #[error("spawn netns helper thread: {source}")]
    Spawn { source: io::Error },

    /// The closure given to [`crate::NetNs::run`] (or the helper thread)
    /// panicked.
    #[error("closure running in netns {path:?} panicked: {message}")]
    Panicked { path: PathBuf, message: String },
}

impl NetnsError {
    /// The OS error number behind this error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetnsError::Open { source, .. }
            | NetnsError::Setns { source, .. }
            | NetnsError::Unshare { source, .. }
            | NetnsError::Mount { source, .. }
            | NetnsError::Io { source, .. }
            | NetnsError::Spawn { source } => source.raw_os_error(),
            NetnsError::NotNetns { .. }
            | NetnsError::InvalidName { .. }
            | NetnsError::Panicked { .. } => None,
        }
    }

    /// True if the namespace (path) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, NetnsError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// True if a named namespace with that name already exists.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(nix::libc::EEXIST)
    }
}
