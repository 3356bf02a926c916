//! `ferry-wg <ifname> [--run-dir DIR]`: a userspace WireGuard device for
//! nodes whose kernel has none. boringtun does the work: a TUN device
//! called `<ifname>`, the WireGuard protocol, and the cross-platform
//! WireGuard UAPI (`get=1` / `set=1`) on the unix socket
//! `/var/run/wireguard/<ifname>.sock`, through which ferryd configures it
//! (`ferry_wireguard::uapi`).
//!
//! It runs in the foreground and logs to stderr. It is a process of its
//! own, not a thread of ferryd, so the data path outlives a ferryd
//! restart. It ends on SIGTERM/SIGINT, or within a second of its socket
//! file being removed (`ferryd uninstall` does that); the TUN device goes
//! with it.
//!
//! `--run-dir DIR` (for several nodes on one host, as in the lab): the
//! socket is made in `DIR` instead. boringtun only knows
//! `/var/run/wireguard`, so the process moves to a mount namespace of its
//! own where `DIR` is bind-mounted there.
//!
//! A second `ferry-wg` for a device whose socket answers refuses to start
//! (it would otherwise attach a second queue to the same TUN device).
//!
//! Kernel first: where the kernel has WireGuard, `ferry-wg` makes (or
//! finds) the kernel's `<ifname>` and idles until it is stopped, leaving
//! the device to whoever configures it over generic netlink (ferryd).
//! So one DaemonSet fits every node: a userspace device only where the
//! kernel has none.
//!
//! The TUN device is made persistent: when `ferry-wg` dies, the device
//! and the routes through it stay, and packets routed into it are dropped
//! there (never sent on in clear by a fallback route) until a new
//! `ferry-wg` attaches to it. Whoever removes the device deletes the link
//! (`ferryd` does, after removing the socket).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use boringtun::device::{DeviceConfig, DeviceHandle};

/// Where boringtun makes its socket.
const SOCK_DIR: &str = "/var/run/wireguard";

fn usage() -> ! {
    eprintln!("usage: ferry-wg <ifname> [--run-dir DIR]");
    std::process::exit(2);
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_WG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut ifname = None;
    let mut run_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--run-dir" => run_dir = Some(PathBuf::from(args.next().unwrap_or_else(|| usage()))),
            "-h" | "--help" => usage(),
            _ if ifname.is_none() && !a.starts_with('-') => ifname = Some(a),
            _ => usage(),
        }
    }
    let Some(ifname) = ifname else { usage() };
    if ifname.is_empty() || ifname.len() > 15 || ifname.contains(['/', ':', ' ']) {
        bail!("invalid interface name {ifname:?}");
    }
    if let Device::Kernel(how) = kernel_first(&ifname)? {
        tracing::info!(
            ifname,
            how,
            "the kernel has WireGuard: {ifname} is the kernel's; ferry-wg idles"
        );
        wait_for_stop()?;
        return Ok(());
    }
    let dir = run_dir.clone().unwrap_or_else(|| PathBuf::from(SOCK_DIR));
    let sock = dir.join(format!("{ifname}.sock"));
    if answers(&sock) {
        bail!(
            "a WireGuard device already answers on {}; not starting a second one",
            sock.display()
        );
    }
    if let Some(dir) = run_dir.filter(|d| d != Path::new(SOCK_DIR)) {
        private_sock_dir(&dir)?;
    } else {
        // boringtun makes only the last component (a container image
        // from scratch has no /var/run).
        std::fs::create_dir_all(SOCK_DIR).with_context(|| format!("create {SOCK_DIR}"))?;
    }
    let config = DeviceConfig {
        n_threads: 2,
        use_connected_socket: true,
        use_multi_queue: true,
        uapi_fd: -1,
    };
    let mut dev = DeviceHandle::new(&ifname, config)
        .with_context(|| format!("create the userspace WireGuard device {ifname}"))?;
    set_persistent(&ifname).with_context(|| format!("make {ifname} persistent"))?;
    tracing::info!(ifname, socket = %sock.display(), "ferry-wg running");
    dev.wait();
    dev.clean();
    tracing::info!(ifname, "ferry-wg stopped");
    Ok(())
}

/// Which device `<ifname>` is to be.
#[derive(Debug, PartialEq, Eq)]
enum Device {
    /// The kernel's (found, or just made).
    Kernel(&'static str),
    /// A userspace one over TUN (the kernel has no WireGuard, or a TUN
    /// device of that name is there to attach to).
    Userspace,
}

/// Pure: the decision from the link of that name (its kind, if there is
/// one) and, without one, the kernel's answer to making a `wireguard`
/// link (`Ok`, or its errno).
fn decide(
    existing: Option<Option<&str>>,
    create: impl FnOnce() -> Result<(), Option<i32>>,
) -> Result<Device, String> {
    match existing {
        Some(Some("wireguard")) => Ok(Device::Kernel("found")),
        Some(Some("tun")) | Some(None) => Ok(Device::Userspace),
        Some(Some(other)) => Err(format!("a link of kind {other} has the name")),
        None => match create() {
            Ok(()) => Ok(Device::Kernel("made")),
            Err(Some(libc::EOPNOTSUPP)) => Ok(Device::Userspace),
            Err(errno) => Err(format!("making a wireguard link failed (errno {errno:?})")),
        },
    }
}

/// Looks at `ifname` and, without one, asks the kernel for a WireGuard
/// link of that name (its MTU is ferryd's to set).
fn kernel_first(ifname: &str) -> anyhow::Result<Device> {
    let mut h = ferry_netlink::Handle::new().context("open a netlink socket")?;
    let existing = h
        .link_by_name(ifname)
        .with_context(|| format!("look up {ifname}"))?
        .map(|l| l.kind);
    decide(existing.as_ref().map(|k| k.as_deref()), || {
        h.create_wireguard(ifname, 1420).map_err(|e| e.errno())
    })
    .map_err(|why| anyhow::anyhow!("{ifname}: {why}"))
}

/// Blocks until SIGTERM or SIGINT (as PID 1 in a container, a signal
/// without a handler would be ignored).
fn wait_for_stop() -> anyhow::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block().context("block SIGTERM/SIGINT")?;
    let sig = set.wait().context("wait for a signal")?;
    tracing::info!(signal = ?sig, "ferry-wg stopped");
    Ok(())
}

/// Whether a device answers `get=1` on `sock`.
fn answers(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"get=1\n\n").is_err() {
        return false;
    }
    BufReader::new(s)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("errno="))
}

/// Moves this process to a mount namespace of its own where `dir` is
/// mounted on [`SOCK_DIR`]. Called before any thread is started.
fn private_sock_dir(dir: &Path) -> anyhow::Result<()> {
    use nix::mount::{mount, MsFlags};
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::create_dir_all(SOCK_DIR).with_context(|| format!("create {SOCK_DIR}"))?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    // Nothing mounted here may leak back to the host's namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("make mounts private")?;
    mount(
        Some(dir),
        SOCK_DIR,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind {} on {SOCK_DIR}", dir.display()))?;
    Ok(())
}

/// `_IOW('T', 202, int)` and `_IOW('T', 203, int)` of `linux/if_tun.h`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;

/// Marks the TUN device `ifname` (made by boringtun, multi-queue)
/// persistent through a queue of its own that is closed again at once.
#[allow(unsafe_code)]
fn set_persistent(ifname: &str) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .context("open /dev/net/tun")?;
    // struct ifreq: the name (IFNAMSIZ = 16), then a union whose
    // ifru_flags (a short) comes first; 40 bytes on 64-bit Linux.
    let mut ifr = [0u8; 40];
    ifr[..ifname.len()].copy_from_slice(ifname.as_bytes());
    let flags = (libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE) as libc::c_short;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes one struct ifreq; `ifr` is a live,
    // writable buffer of its size (40 bytes) and `tun` an open fd.
    if unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF as _, ifr.as_mut_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error()).context("TUNSETIFF");
    }
    // SAFETY: TUNSETPERSIST takes its argument by value (no pointer).
    if unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETPERSIST as _, 1 as libc::c_ulong) } < 0 {
        return Err(std::io::Error::last_os_error()).context("TUNSETPERSIST");
    }
    // Closing `tun` detaches its queue; the flag stays on the device.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_first_then_userspace() {
        let never = || -> Result<(), Option<i32>> { panic!("nothing is made when a link exists") };
        assert_eq!(
            decide(Some(Some("wireguard")), never),
            Ok(Device::Kernel("found"))
        );
        assert_eq!(decide(Some(Some("tun")), never), Ok(Device::Userspace));
        assert!(decide(Some(Some("veth")), never).is_err());
        assert_eq!(decide(None, || Ok(())), Ok(Device::Kernel("made")));
        assert_eq!(
            decide(None, || Err(Some(libc::EOPNOTSUPP))),
            Ok(Device::Userspace)
        );
        assert!(decide(None, || Err(Some(libc::EPERM))).is_err());
    }
}
