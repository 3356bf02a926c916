//! The cross-platform WireGuard UAPI (the text protocol `wg` speaks to
//! userspace implementations): `get=1` / `set=1` over the unix socket
//! `<run dir>/<ifname>.sock`, answered by `errno=N` and an empty line.
//! [`render_set`] and [`parse_get`] are pure; [`UapiDevice`] is the
//! userspace driver ([`crate::Driver`]) around them.
//!
//! boringtun (which `ferry-wg` runs) keeps a peer section's `remove`,
//! `endpoint` and `replace_allowed_ips` for the sections after it in the
//! same request, so [`render_set`] writes every upsert with all three and
//! the removals last.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::config::{Changes, DeviceState, PeerState};
use crate::key::{decode_hex, encode_hex, PrivateKey, PublicKey};
use crate::{Driver, WgError};

/// Where userspace WireGuard implementations put their sockets.
pub const DEFAULT_RUN_DIR: &str = "/var/run/wireguard";
/// How long one request may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The socket of device `ifname` in `run_dir`.
pub fn socket_path(run_dir: &Path, ifname: &str) -> PathBuf {
    run_dir.join(format!("{ifname}.sock"))
}

/// The `set=1` request for `changes` (ending with the empty line).
pub fn render_set(key: &PrivateKey, changes: &Changes) -> String {
    let mut s = String::from("set=1\n");
    if changes.set_private_key {
        s += &format!("private_key={}\n", encode_hex(key.bytes()));
    }
    if let Some(port) = changes.listen_port {
        s += &format!("listen_port={port}\n");
    }
    for p in &changes.upsert {
        s += &format!(
            "public_key={}\nreplace_allowed_ips=true\nendpoint={}\n",
            encode_hex(&p.public_key.0),
            p.endpoint
        );
        for ip in &p.allowed_ips {
            s += &format!("allowed_ip={ip}\n");
        }
    }
    for k in &changes.remove {
        s += &format!("public_key={}\nremove=true\n", encode_hex(&k.0));
    }
    s.push('\n');
    s
}

/// Parses a `get=1` answer (up to and with its `errno=` line). Keys it
/// does not know are skipped; a private key in it is used only to derive
/// the public key and then dropped.
pub fn parse_get(text: &str) -> Result<DeviceState, WgError> {
    let bad = |why: String| WgError::Protocol("UAPI get", why);
    let mut st = DeviceState::default();
    let mut peer: Option<(PublicKey, PeerState)> = None;
    let mut errno = None;
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| {
            bad(format!(
                "line without '=': {:?}",
                line.get(..40).unwrap_or(line)
            ))
        })?;
        let num = |v: &str| v.parse::<u64>().map_err(|_| bad(format!("{k}={v}")));
        match (k, peer.as_mut()) {
            ("errno", _) => {
                errno = Some(v.parse::<i32>().map_err(|_| bad(format!("errno={v}")))?);
                break;
            }
            ("public_key", _) => {
                if let Some((pk, ps)) = peer.take() {
                    st.peers.insert(pk, ps);
                }
                peer = Some((PublicKey(decode_hex(v)?), PeerState::default()));
            }
            ("private_key", None) => {
                st.public_key = Some(PrivateKey::from_bytes(decode_hex(v)?).public_key())
            }
            ("own_public_key", None) => st.public_key = Some(PublicKey(decode_hex(v)?)),
            ("listen_port", None) => {
                st.listen_port = v.parse().map_err(|_| bad(format!("listen_port={v}")))?
            }
            ("endpoint", Some((_, p))) => {
                p.endpoint = Some(
                    v.parse::<SocketAddr>()
                        .map_err(|_| bad(format!("endpoint={v}")))?,
                )
            }
            ("allowed_ip", Some((_, p))) => p.allowed_ips.push(
                v.parse::<IpNet>()
                    .map_err(|_| bad(format!("allowed_ip={v}")))?,
            ),
            ("last_handshake_time_sec", Some((_, p))) => p.last_handshake_sec = num(v)?,
            ("last_handshake_time_nsec", Some((_, p))) => {
                p.last_handshake_nsec = v.parse::<u32>().map_err(|_| bad(format!("{k}={v}")))?
            }
            ("rx_bytes", Some((_, p))) => p.rx_bytes = num(v)?,
            ("tx_bytes", Some((_, p))) => p.tx_bytes = num(v)?,
            _ => {}
        }
    }
    if let Some((pk, ps)) = peer.take() {
        st.peers.insert(pk, ps);
    }
    match errno {
        Some(0) => Ok(st),
        Some(n) => Err(bad(format!("errno={n}"))),
        None => Err(bad("no errno line".into())),
    }
}

/// The errno of a `set=1` answer.
fn parse_errno(text: &str) -> Option<i32> {
    text.lines()
        .find_map(|l| l.strip_prefix("errno="))
        .and_then(|v| v.trim().parse().ok())
}

/// A userspace device reached through its UAPI socket.
#[derive(Debug, Clone)]
pub struct UapiDevice {
    path: PathBuf,
}

impl UapiDevice {
    pub fn new(run_dir: &Path, ifname: &str) -> UapiDevice {
        UapiDevice {
            path: socket_path(run_dir, ifname),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `request` and reads the answer through its `errno=` line.
    fn exchange(&self, request: &str) -> Result<String, WgError> {
        let err = |what| {
            move |source| WgError::Uapi {
                path: self.path.clone(),
                what,
                source,
            }
        };
        let mut s = UnixStream::connect(&self.path).map_err(err("connect"))?;
        s.set_read_timeout(Some(TIMEOUT)).map_err(err("timeout"))?;
        s.set_write_timeout(Some(TIMEOUT)).map_err(err("timeout"))?;
        s.write_all(request.as_bytes()).map_err(err("write"))?;
        let mut answer = String::new();
        let mut r = BufReader::new(s);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).map_err(err("read"))? == 0 {
                break;
            }
            let last = line.starts_with("errno=");
            answer += &line;
            if last {
                break;
            }
        }
        Ok(answer)
    }

    /// Whether a device answers on the socket.
    pub fn answers(&self) -> bool {
        self.get().is_ok()
    }
}

impl Driver for UapiDevice {
    fn kind(&self) -> &'static str {
        "userspace"
    }

    fn get(&mut self) -> Result<DeviceState, WgError> {
        UapiDevice::get(self)
    }

    fn apply(&mut self, key: &PrivateKey, changes: &Changes) -> Result<(), WgError> {
        if changes.is_empty() {
            return Ok(());
        }
        let answer = self.exchange(&render_set(key, changes))?;
        match parse_errno(&answer) {
            Some(0) => Ok(()),
            Some(errno) => Err(WgError::UapiErrno {
                path: self.path.clone(),
                errno,
            }),
            None => Err(WgError::Protocol("UAPI set", "no errno line".into())),
        }
    }
}

impl UapiDevice {
    /// `get=1`.
    pub fn get(&self) -> Result<DeviceState, WgError> {
        parse_get(&self.exchange("get=1\n\n")?)
    }
}

#[cfg(test)]
#[path = "uapi_tests.rs"]
mod tests;
