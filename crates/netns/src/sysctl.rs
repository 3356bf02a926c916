//! Reading and writing `/proc/sys` keys.
//!
//! `net.*` keys are per network namespace, and procfs resolves them against
//! the namespace of the *calling thread*; to change a key inside a pod
//! namespace, call these functions from within [`crate::NetNs::run`].
//!
//! Keys are accepted in either form:
//! * with slashes, `net/ipv4/conf/eth0.100/proxy_arp`: used verbatim (dots
//!   are literal, so interface names with dots work);
//! * with dots only, `net.ipv4.ip_forward`: dots become slashes, like
//!   `sysctl(8)`.

use std::io::{self, Write};
use std::path::PathBuf;

/// Errors from [`read()`] and [`write()`].
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// The key is empty, absolute, or contains `.`/`..`/empty components.
    #[error("invalid sysctl key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// Opening, reading or writing the procfs file failed.
    #[error("sysctl {op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl SysctlError {
    /// The OS error number behind this error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SysctlError::Io { source, .. } => source.raw_os_error(),
            SysctlError::InvalidKey { .. } => None,
        }
    }

    /// True if the key does not exist (e.g. a per-interface key for a
    /// missing interface).
    pub fn is_not_found(&self) -> bool {
        matches!(self, SysctlError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Maps a sysctl key to its `/proc/sys` path, validating it.
pub fn key_path(key: &str) -> Result<PathBuf, SysctlError> {
    let invalid = |reason| SysctlError::InvalidKey {
        key: key.to_string(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("empty"));
    }
    if key.starts_with('/') {
        return Err(invalid("absolute path"));
    }
    if key.contains('\0') {
        return Err(invalid("contains NUL"));
    }
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    for component in rel.split('/') {
        match component {
            "" => return Err(invalid("empty path component")),
            "." | ".." => return Err(invalid("'.' or '..' component")),
            _ => {}
        }
    }
    Ok(PathBuf::from("/proc/sys").join(rel))
}

/// Writes `value` to the sysctl `key`, as seen from the calling thread's
/// network namespace. The key must already exist.
pub fn write(key: &str, value: &str) -> Result<(), SysctlError> {
    let path = key_path(key)?;
    let io_err = |op, source| SysctlError::Io {
        op,
        path: path.clone(),
        source,
    };
    // No O_CREAT/O_TRUNC: procfs entries exist or they don't.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| io_err("open", e))?;
    // One write(2): procfs sysctl handlers parse the whole value per write.
    file.write_all(value.as_bytes())
        .map_err(|e| io_err("write", e))
}

/// Reads the sysctl `key` (as seen from the calling thread's network
/// namespace), without the trailing newline.
pub fn read(key: &str) -> Result<String, SysctlError> {
    let path = key_path(key)?;
    let mut value = std::fs::read_to_string(&path).map_err(|source| SysctlError::Io {
        op: "read",
        path: path.clone(),
        source,
    })?;
    while value.ends_with('\n') {
        value.pop();
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_forms() {
        assert_eq!(
            key_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            key_path("net/ipv4/conf/eth0.100/proxy_arp").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/proxy_arp")
        );
    }

    #[test]
    fn bad_keys() {
        for key in [
            "",
            "/proc/sys/net",
            "net/../../etc/passwd",
            "net..ipv4",
            "net/./ipv4",
            "net/ipv4/",
            "net.ipv4.",
            "..",
            "a\0b",
        ] {
            assert!(
                matches!(key_path(key), Err(SysctlError::InvalidKey { .. })),
                "{key:?} accepted"
            );
        }
    }

    #[test]
    fn read_existing_key() {
        let v = read("kernel.ostype").unwrap();
        assert_eq!(v, "Linux");
        let err = read("net.ipv4.no_such_key_here").unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }
}
