//! The WireGuard device on this node ([`crate::wireguard`] says what it
//! should hold): made and configured, or removed.
//!
//! Which device: an existing `ferry.wg` of kind `wireguard` is the
//! kernel's, configured over generic netlink; any other `ferry.wg` is a
//! userspace one, configured through its UAPI socket. Without a
//! `ferry.wg`, ferryd asks the kernel for a WireGuard link; a kernel
//! without WireGuard refuses (`EOPNOTSUPP`) and ferryd turns to the
//! userspace device: one whose socket answers (e.g. left running by an
//! earlier ferryd) is used as it is, else ferryd starts `ferry-wg`
//! detached (`--wireguard-spawn`, its own process group, so it outlives
//! ferryd) or, without spawning, waits for one started otherwise. The
//! userspace device's TUN is persistent: a `ferry.wg` nobody answers for
//! (its `ferry-wg` died) keeps its routes and drops what is routed into
//! it, and the next reconcile starts a `ferry-wg` that attaches to it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_netlink::{AddrOptions, Handle};
use ferry_wireguard::genl::KernelDevice;
use ferry_wireguard::uapi::{socket_path, UapiDevice};
use ferry_wireguard::{Driver, PrivateKey, PublicKey};
use ipnet::IpNet;

use crate::cli::Opts;
use crate::wireguard::{handshakes_to_start, link_local, WgPlan, WG_IFNAME};
use crate::AgentError;

/// The userspace device's binary, beside ferryd's own.
pub const USERSPACE_BINARY: &str = "ferry-wg";
/// How long a started `ferry-wg` may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `ferry-wg` whose socket is gone takes to stop (it looks
/// once a second).
const STOP_WAIT: Duration = Duration::from_millis(1200);

/// The node's key and its device.
#[derive(Debug)]
pub struct WgAgent {
    key: PrivateKey,
    run_dir: PathBuf,
    /// `ferry-wg` to start when no device answers (`None`: wait).
    spawn: Option<PathBuf>,
    driver: Option<Box<dyn Driver>>,
    /// The `ferry-wg` this ferryd started (reaped when it exits).
    child: Option<Child>,
    /// Peers ferryd started a handshake with, and when.
    woken: BTreeMap<PublicKey, Instant>,
}

impl WgAgent {
    /// Loads the node's key, or makes and stores it.
    pub fn new(o: &Opts) -> Result<WgAgent, AgentError> {
        let (key, made) = PrivateKey::load_or_create(&o.wireguard_key_file)?;
        tracing::info!(
            public_key = %key.public_key(),
            key_file = %o.wireguard_key_file.display(),
            made,
            "WireGuard key"
        );
        let spawn = o.wireguard_spawn.then(|| {
            std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(|d| d.join(USERSPACE_BINARY)))
                .unwrap_or_else(|| PathBuf::from(USERSPACE_BINARY))
        });
        Ok(WgAgent {
            key,
            run_dir: o.wireguard_run_dir.clone(),
            spawn,
            driver: None,
            child: None,
            woken: BTreeMap::new(),
        })
    }

    /// Starts this `ferry-wg` instead of the one beside ferryd (tests).
    pub fn set_userspace_binary(&mut self, path: PathBuf) {
        self.spawn = Some(path);
    }

    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// Which device runs (`kernel`, `userspace`), once one does.
    pub fn kind(&self) -> Option<&'static str> {
        self.driver.as_ref().map(|d| d.kind())
    }

    /// Makes the device match `plan`: made (or found), MTU, up, addresses,
    /// key, port and peers. Its ifindex and whether anything changed.
    /// Routes through it are [`crate::routes`]'s.
    pub fn converge(&mut self, h: &mut Handle, plan: &WgPlan) -> Result<(u32, bool), AgentError> {
        let (index, mut changed) = self.ensure_device(h, plan.mtu)?;
        let nl = |what: &str| {
            let what = format!("{WG_IFNAME}: {what}");
            move |e| AgentError::netlink(what, e)
        };
        let link = h
            .link_by_index(index)
            .map_err(nl("look up"))?
            .ok_or_else(|| AgentError::NotReady(format!("{WG_IFNAME} vanished")))?;
        if link.mtu != plan.mtu {
            h.set_mtu(index, plan.mtu).map_err(nl("set MTU"))?;
            changed = true;
        }
        if !link.up {
            h.set_up(index).map_err(nl("set up"))?;
            changed = true;
        }
        let have: BTreeSet<IpNet> = h
            .addresses(Some(index))
            .map_err(nl("list addresses"))?
            .into_iter()
            .filter(|a| a.index == index && !link_local(&a.addr))
            .map(|a| a.addr)
            .collect();
        let want: BTreeSet<IpNet> = plan.addrs.iter().copied().collect();
        for a in want.difference(&have) {
            h.add_address(index, *a, AddrOptions::nodad())
                .map_err(nl("add address"))?;
            changed = true;
        }
        for a in have.difference(&want) {
            h.delete_address(index, *a).map_err(nl("delete address"))?;
            changed = true;
        }
        let driver = self.driver.as_mut().expect("ensure_device set it");
        let want = plan.device_config(&self.key);
        let changes = ferry_wireguard::plan(&driver.get()?, &want);
        if !changes.is_empty() {
            driver.apply(&self.key, &changes)?;
            if changes.set_private_key {
                // A device without our key is a new one: no sessions.
                self.woken.clear();
            }
            // Public keys only: the private key is never logged.
            tracing::info!(
                device = WG_IFNAME,
                driver = driver.kind(),
                own_key_set = changes.set_private_key,
                port = ?changes.listen_port,
                peers_set = ?changes.upsert.iter().map(|p| p.public_key.to_string()).collect::<Vec<_>>(),
                peers_removed = ?changes.remove.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                "wireguard changed"
            );
            changed = true;
        }
        Ok((index, changed))
    }

    /// Starts a handshake with every peer the device has none with (see
    /// [`crate::wireguard::handshakes_to_start`]): one empty datagram
    /// routed into the device towards each. Call it once the routes
    /// through the device are in place. The nodes woken.
    pub fn start_handshakes(&mut self, plan: &WgPlan) -> Result<Vec<String>, AgentError> {
        let Some(driver) = self.driver.as_mut() else {
            return Ok(Vec::new());
        };
        let state = driver.get()?;
        // Forget peers that are gone or have a handshake now: should their
        // session go (a new device), they are woken again at once.
        self.woken.retain(|k, _| {
            plan.peers.iter().any(|p| p.public_key == *k)
                && !state.peers.get(k).is_some_and(|p| p.has_handshake())
        });
        let now = Instant::now();
        let mut woken = Vec::new();
        for (node, key, to) in handshakes_to_start(plan, &state, &self.woken, now) {
            match send_wake(to) {
                Ok(()) => {
                    self.woken.insert(key, now);
                    woken.push(node);
                }
                Err(e) => {
                    tracing::warn!(%node, %to, error = %e, "could not start a WireGuard handshake")
                }
            }
        }
        Ok(woken)
    }

    /// The device's ifindex, made when there is none; sets the driver.
    fn ensure_device(&mut self, h: &mut Handle, mtu: u32) -> Result<(u32, bool), AgentError> {
        let nl =
            |what: &'static str| move |e| AgentError::netlink(format!("{WG_IFNAME}: {what}"), e);
        self.reap();
        if let Some(link) = h.link_by_name(WG_IFNAME).map_err(nl("look up"))? {
            let kernel = link.kind.as_deref() == Some("wireguard");
            let current = self.driver.as_ref().map(|d| d.kind());
            if kernel && current != Some("kernel") {
                self.driver = Some(Box::new(KernelDevice::open(WG_IFNAME)?));
            } else if !kernel && (current != Some("userspace") || !self.userspace_answers()) {
                // A userspace device: the running ferry-wg, or (its TUN
                // device is persistent) a new one attached to it.
                self.start_userspace()?;
                return Ok((link.index, current.is_some()));
            }
            return Ok((link.index, false));
        }
        self.driver = None;
        match h.create_wireguard(WG_IFNAME, mtu) {
            Ok(()) => {
                tracing::info!(device = WG_IFNAME, "kernel WireGuard device made");
                self.driver = Some(Box::new(KernelDevice::open(WG_IFNAME)?));
            }
            Err(e) if e.errno() == Some(nix::libc::EOPNOTSUPP) => {
                tracing::info!(
                    device = WG_IFNAME,
                    "the kernel has no WireGuard: using the userspace device (ferry-wg)"
                );
                self.start_userspace()?;
            }
            Err(e) => return Err(nl("create")(e)),
        }
        let link = h
            .link_by_name(WG_IFNAME)
            .map_err(nl("look up"))?
            .ok_or_else(|| AgentError::NotReady(format!("{WG_IFNAME} vanished")))?;
        Ok((link.index, true))
    }

    /// Uses the userspace device that answers, or starts `ferry-wg` and
    /// waits for it to answer.
    fn start_userspace(&mut self) -> Result<(), AgentError> {
        let dev = UapiDevice::new(&self.run_dir, WG_IFNAME);
        if !dev.answers() {
            let Some(bin) = &self.spawn else {
                return Err(AgentError::NotReady(format!(
                    "waiting for a userspace WireGuard device on {} (--wireguard-spawn=false)",
                    dev.path().display()
                )));
            };
            let child = Command::new(bin)
                .arg(WG_IFNAME)
                .arg("--run-dir")
                .arg(&self.run_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                // Its own process group: a signal to ferryd's group (^C,
                // a supervisor) leaves the data path alone.
                .process_group(0)
                .spawn()
                .map_err(|e| AgentError::io("start", bin, e))?;
            tracing::info!(pid = child.id(), binary = %bin.display(), "ferry-wg started");
            self.child = Some(child);
            let until = Instant::now() + START_TIMEOUT;
            while !dev.answers() {
                if let Some(status) = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    self.child = None;
                    return Err(AgentError::NotReady(format!(
                        "ferry-wg exited ({status}) before answering on {}",
                        dev.path().display()
                    )));
                }
                if Instant::now() > until {
                    return Err(AgentError::NotReady(format!(
                        "ferry-wg did not answer on {} within {START_TIMEOUT:?}",
                        dev.path().display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.driver = Some(Box::new(dev));
        Ok(())
    }

    fn userspace_answers(&self) -> bool {
        UapiDevice::new(&self.run_dir, WG_IFNAME).answers()
    }

    /// Reaps a `ferry-wg` this ferryd started that has exited.
    fn reap(&mut self) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            tracing::warn!(%status, "ferry-wg exited");
            self.child = None;
            self.driver = None;
        }
    }
}

/// How often [`watch_userspace`] looks at the device.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Whether the userspace device on `run_dir` needs ferryd: none answers
/// (its `ferry-wg` is gone: ferryd starts a new one, or waits for one),
/// or one answers without a key (a `ferry-wg` started since ferryd last
/// configured it, e.g. by a rollout of the `ferry-wireguard` DaemonSet).
pub fn userspace_needs_ferryd(run_dir: &Path) -> bool {
    UapiDevice::new(run_dir, WG_IFNAME)
        .get()
        .map_or(true, |st| st.public_key.is_none())
}

/// Runs beside the agent's loop with `--encryption wireguard`: a
/// `ferry-wg` that died, or one started by somebody else (ferry-wireguard's
/// pod) with no key and no peers, carries nothing until ferryd acts,
/// which would otherwise wait for the next Node event or resync. Every
/// [`WATCH_INTERVAL`], a device in need wakes the loop (`wake`), once per
/// spell of need (on a node with the kernel's device, whose socket never
/// answers, that is once).
pub async fn watch_userspace(run_dir: PathBuf, wake: impl Fn()) {
    let mut woken = false;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let dir = run_dir.clone();
        let need = tokio::task::spawn_blocking(move || userspace_needs_ferryd(&dir))
            .await
            .unwrap_or(false);
        if need && !woken {
            wake();
        }
        woken = need;
    }
}

/// Sends one empty UDP datagram to `to` from an ephemeral port.
fn send_wake(to: SocketAddr) -> std::io::Result<()> {
    let any: SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    UdpSocket::bind(any)?.send_to(&[], to).map(drop)
}

/// Removes the device (and with it the routes through it): the userspace
/// one's socket first (`ferry-wg` exits within a second), then the link
/// (the kernel's, or the persistent TUN device). Whether there was one.
pub fn remove(h: &mut Handle, run_dir: &Path) -> Result<bool, AgentError> {
    let sock = socket_path(run_dir, WG_IFNAME);
    let had_socket = std::fs::remove_file(&sock).is_ok();
    let nl = |what: &'static str| move |e| AgentError::netlink(format!("{WG_IFNAME}: {what}"), e);
    if had_socket {
        // Let ferry-wg see its socket gone and close its queues.
        std::thread::sleep(STOP_WAIT);
    }
    let deleted = h.delete_link_by_name(WG_IFNAME).map_err(nl("delete"))?;
    Ok(had_socket || deleted)
}

/// For `status`: the device (`None` without one), e.g. `ferry.wg
/// userspace mtu 1440 port 51820: 2 peers, 2 with traffic` (public
/// information only).
pub fn describe(h: &mut Handle, run_dir: &Path) -> Result<Option<String>, AgentError> {
    let nl = |e| AgentError::netlink(format!("{WG_IFNAME}: look up"), e);
    let Some(link) = h.link_by_name(WG_IFNAME).map_err(nl)? else {
        return Ok(None);
    };
    let mut driver: Box<dyn Driver> = if link.kind.as_deref() == Some("wireguard") {
        Box::new(KernelDevice::open(WG_IFNAME)?)
    } else {
        let dev = UapiDevice::new(run_dir, WG_IFNAME);
        if !dev.answers() {
            return Ok(Some(format!(
                "{WG_IFNAME} userspace mtu {}: no ferry-wg answers on {} (packets into it are dropped)",
                link.mtu,
                dev.path().display()
            )));
        }
        Box::new(dev)
    };
    let st = driver.get()?;
    let busy = st
        .peers
        .values()
        .filter(|p| p.rx_bytes > 0 && p.tx_bytes > 0)
        .count();
    Ok(Some(format!(
        "{WG_IFNAME} {} mtu {} port {}: {} peers, {busy} with traffic both ways",
        driver.kind(),
        link.mtu,
        st.listen_port,
        st.peers.len()
    )))
}
