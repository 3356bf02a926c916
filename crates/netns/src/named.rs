//! Named network namespaces compatible with `ip netns` (iproute2): a named
//! namespace is the nsfs file of a namespace bind-mounted on
//! `/run/netns/NAME`.

use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::{NetnsError, THREAD_SELF_NETNS};

/// Directory holding the bind mounts of named namespaces (as iproute2).
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Maximum length of a namespace name, in bytes.
const MAX_NAME_LEN: usize = 64;

/// Checks a namespace name: 1..=64 bytes, no `/`, no NUL, not `.`/`..`.
pub fn valid_name(name: &str) -> bool {
    name_error(name).is_none()
}

fn name_error(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("longer than 64 bytes")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.contains('\0') {
        Some("contains NUL")
    } else if name == "." || name == ".." {
        Some("is '.' or '..'")
    } else {
        None
    }
}

fn checked_path(name: &str) -> Result<PathBuf, NetnsError> {
    match name_error(name) {
        Some(reason) => Err(NetnsError::InvalidName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(Path::new(NETNS_RUN_DIR).join(name)),
    }
}

/// Creates a new, empty network namespace named `name` and pins it at
/// `/run/netns/NAME`, exactly like `ip netns add NAME`. Returns the path.
///
/// The namespace is created on a throw-away thread; the caller's thread is
/// not moved. Fails with an `EEXIST` error ([`NetnsError::is_exists`]) if the
/// name is taken. Loopback is left down.
pub fn create_named(name: &str) -> Result<PathBuf, NetnsError> {
    let path = checked_path(name)?;
    prepare_run_dir()?;

    // The mount point. O_EXCL makes concurrent creations of one name safe.
    // (std insists on write access for O_CREAT; iproute2 uses O_RDONLY.)
    File::options()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(&path)
        .map_err(|source| NetnsError::Io {
            op: "create netns mount point",
            path: path.clone(),
            source,
        })?;

    let result = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("ferry-netns-add".into())
            .spawn_scoped(scope, || -> Result<(), NetnsError> {
                unshare(CloneFlags::CLONE_NEWNET).map_err(|errno| NetnsError::Unshare {
                    name: name.to_string(),
                    source: errno.into(),
                })?;
                mount(
                    Some(THREAD_SELF_NETNS),
                    &path,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|errno| NetnsError::Mount {
                    op: "bind mount netns onto",
                    path: path.clone(),
                    source: errno.into(),
                })
            })
            .map_err(|source| NetnsError::Spawn { source })?
            .join()
            .unwrap_or_else(|_| {
                Err(NetnsError::Panicked {
                    path: path.clone(),
                    message: "netns creation thread panicked".into(),
                })
            })
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Deletes the named namespace `name` like `ip netns delete NAME`: lazily
/// unmounts `/run/netns/NAME` and removes the file. The namespace itself is
/// freed by the kernel once nothing else references it.
///
/// Returns `Ok(false)` if there was no such namespace.
pub fn delete_named(name: &str) -> Result<bool, NetnsError> {
    let path = checked_path(name)?;
    let unmounted = match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) => true,
        // Not mounted (EINVAL) or not there at all (ENOENT): keep going so a
        // half-created entry is still cleaned up.
        Err(Errno::EINVAL) | Err(Errno::ENOENT) => false,
        Err(errno) => {
            return Err(NetnsError::Mount {
                op: "umount2(MNT_DETACH)",
                path,
                source: errno.into(),
            })
        }
    };
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(unmounted),
        Err(source) => Err(NetnsError::Io {
            op: "remove netns mount point",
            path,
            source,
        }),
    }
}

/// Makes sure `/run/netns` exists and is a shared mount point, as iproute2
/// does, so that namespace mounts propagate to other mount namespaces (and
/// `ip netns exec` keeps working).
fn prepare_run_dir() -> Result<(), NetnsError> {
    let dir = Path::new(NETNS_RUN_DIR);
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|source| NetnsError::Io {
            op: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
    let make_shared = || {
        mount(
            None::<&str>,
            dir,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match make_shared() {
        Ok(()) => return Ok(()),
        Err(Errno::EINVAL) => {} // not a mount point yet
        Err(errno) => return Err(mount_err("make shared", dir, errno)),
    }
    mount(
        Some(dir),
        dir,
        Some("none"),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|errno| mount_err("bind mount onto itself", dir, errno))?;
    make_shared().map_err(|errno| mount_err("make shared", dir, errno))
}

fn mount_err(op: &'static str, path: &Path, errno: Errno) -> NetnsError {
    NetnsError::Mount {
        op,
        path: path.to_path_buf(),
        source: errno.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("pod-1"));
        assert!(valid_name(&"x".repeat(64)));
        assert!(!valid_name(&"x".repeat(65)));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("."));
        assert!(!valid_name(".."));
        assert!(!valid_name("a\0b"));
        assert!(matches!(
            checked_path("a/b"),
            Err(NetnsError::InvalidName { .. })
        ));
        assert_eq!(checked_path("x").unwrap(), Path::new("/run/netns/x"));
    }
}
