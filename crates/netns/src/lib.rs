//! Network namespace handles for ferry.
//!
//! * [`NetNs`] is an open, verified handle on a network namespace. Work that
//!   must happen inside the namespace runs through [`NetNs::run`], which uses a
//!   dedicated short-lived thread: the caller's thread never changes
//!   namespace, so nothing leaks into unrelated code that happens to run on
//!   it later.
//! * [`sysctl`] reads and writes `/proc/sys` keys as seen by the calling
//!   thread (use it inside [`NetNs::run`] for per-namespace `net.*` keys).
//! * [`create_named`] / [`delete_named`] manage `ip netns`-compatible named
//!   namespaces (`/run/netns/NAME`), mainly for tests and lab setups.
//!
//! Everything is done with safe wrappers (`nix`, `std`) except one
//! `ioctl(NS_GET_NSTYPE)` in the private `nstype` module.

mod error;
mod named;
mod nstype;
pub mod sysctl;

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};
use nix::sys::statfs::{fstatfs, NSFS_MAGIC, PROC_SUPER_MAGIC};

pub use error::NetnsError;
pub use named::{create_named, delete_named, valid_name, NETNS_RUN_DIR};
pub use sysctl::SysctlError;

/// Path of the calling thread's network namespace.
pub const THREAD_SELF_NETNS: &str = "/proc/thread-self/ns/net";

/// An open handle on a network namespace (an nsfs file descriptor).
///
/// Holding the handle keeps the namespace alive even if its bind mount is
/// removed.
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
    path: PathBuf,
}

impl NetNs {
    /// Opens the network namespace at `path` (e.g. `/proc/1234/ns/net` or
    /// `/run/netns/NAME`) and verifies that it really is a network namespace.
    pub fn open(path: &Path) -> Result<NetNs, NetnsError> {
        let file = File::options()
            .read(true)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(path)
            .map_err(|source| NetnsError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let fd = OwnedFd::from(file);
        verify_netns(fd.as_fd(), path)?;
        Ok(NetNs {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens the network namespace of the calling thread.
    pub fn current() -> Result<NetNs, NetnsError> {
        NetNs::open(Path::new(THREAD_SELF_NETNS))
    }

    /// The namespace file descriptor (e.g. for `IFLA_NET_NS_FD`).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The path this handle was opened from (for messages only).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a new, dedicated thread that first joins this namespace
    /// with `setns(2)`, and returns what `f` returns.
    ///
    /// The calling thread never changes namespace. The helper thread exits
    /// when `f` returns, so its namespace cannot leak. A panic in `f` is
    /// caught and reported as [`NetnsError::Panicked`].
    pub fn run<T: Send, F: FnOnce() -> T + Send>(&self, f: F) -> Result<T, NetnsError> {
        self.run_alongside(f, || ()).0
    }

    /// Like [`NetNs::run`], while the calling thread runs `here` (in its
    /// own namespace) at the same time; both results once both are done.
    /// For work on both ends of a veth pair at once.
    pub fn run_alongside<T, U, F, G>(&self, f: F, here: G) -> (Result<T, NetnsError>, U)
    where
        T: Send,
        F: FnOnce() -> T + Send,
        G: FnOnce() -> U,
    {
        let fd = self.fd.as_fd();
        std::thread::scope(|scope| {
            let spawned = std::thread::Builder::new()
                .name("ferry-netns".into())
                .spawn_scoped(scope, move || -> Result<T, NetnsError> {
                    setns(fd, CloneFlags::CLONE_NEWNET).map_err(|errno| NetnsError::Setns {
                        path: self.path.clone(),
                        source: errno.into(),
                    })?;
                    Ok(f())
                });
            let mine = here();
            let theirs = match spawned {
                Err(source) => Err(NetnsError::Spawn { source }),
                Ok(handle) => match handle.join() {
                    Ok(result) => result,
                    Err(payload) => Err(NetnsError::Panicked {
                        path: self.path.clone(),
                        message: panic_message(payload.as_ref()),
                    }),
                },
            };
            (theirs, mine)
        })
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for NetNs {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// Checks that `fd` refers to a network namespace: it must live on nsfs (or
/// procfs on pre-3.19 kernels) and `NS_GET_NSTYPE` must say `CLONE_NEWNET`.
fn verify_netns(fd: BorrowedFd<'_>, path: &Path) -> Result<(), NetnsError> {
    let not_netns = |what: String| NetnsError::NotNetns {
        path: path.to_path_buf(),
        what,
    };
    let io_err = |op, source| NetnsError::Io {
        op,
        path: path.to_path_buf(),
        source,
    };
    let fs = fstatfs(fd).map_err(|errno| io_err("fstatfs", errno.into()))?;
    let fs_type = fs.filesystem_type();
    if fs_type != NSFS_MAGIC && fs_type != PROC_SUPER_MAGIC {
        return Err(not_netns(format!(
            "not a namespace file (filesystem magic {:#x})",
            fs_type.0
        )));
    }
    match nstype::ns_type(fd) {
        Ok(Some(t)) if t == CloneFlags::CLONE_NEWNET.bits() => Ok(()),
        Ok(Some(t)) => Err(not_netns(format!("namespace type is {}", ns_type_name(t)))),
        // nsfs on a kernel without NS_GET_NSTYPE (3.19..4.10): nsfs is the
        // best we can check. On procfs it means a regular procfs file.
        Ok(None) if fs_type == NSFS_MAGIC => Ok(()),
        Ok(None) => Err(not_netns("not a namespace file".into())),
        // e.g. a regular procfs file: the ioctl is not supported there.
        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => {
            Err(not_netns("not a namespace file".into()))
        }
        Err(e) => Err(io_err("ioctl(NS_GET_NSTYPE)", e)),
    }
}

fn ns_type_name(t: i32) -> String {
    let known = [
        (CloneFlags::CLONE_NEWNS, "mnt"),
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWUSER, "user"),
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::CLONE_NEWNET, "net"),
    ];
    known
        .iter()
        .find(|(flag, _)| flag.bits() == t)
        .map_or_else(|| format!("{t:#x}"), |(_, name)| (*name).to_string())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_type_names() {
        assert_eq!(ns_type_name(CloneFlags::CLONE_NEWNET.bits()), "net");
        assert_eq!(ns_type_name(CloneFlags::CLONE_NEWNS.bits()), "mnt");
        assert_eq!(ns_type_name(1), "0x1");
    }

    #[test]
    fn panic_messages() {
        let p: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(panic_message(p.as_ref()), "boom");
        let p: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_message(p.as_ref()), "bang");
        let p: Box<dyn std::any::Any + Send> = Box::new(7u8);
        assert_eq!(panic_message(p.as_ref()), "non-string panic payload");
    }
}
