//! Asking the kernel which kind of namespace an nsfs descriptor refers to.
//!
//! This is the only module with `unsafe` code: `ioctl(NS_GET_NSTYPE)` has no
//! safe wrapper in `nix`/`std`, and the cheap alternatives do not work for
//! bind-mounted namespaces (`readlink` of the fd then yields the mount path,
//! not `net:[inode]`), while a trial `setns` would need a throw-away thread.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Returns the `CLONE_NEW*` type of the namespace behind `fd`, or `Ok(None)`
/// on kernels older than 4.11 that lack `NS_GET_NSTYPE`.
pub(crate) fn ns_type(fd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the namespace
    // type of the file; `fd` is a valid open descriptor for the duration of
    // the call because it is borrowed. No memory is passed to the kernel.
    let ret = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::NS_GET_NSTYPE) };
    if ret >= 0 {
        return Ok(Some(ret));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(nix::libc::ENOTTY) {
        Ok(None)
    } else {
        Err(err)
    }
}
