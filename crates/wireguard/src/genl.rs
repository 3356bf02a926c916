//! The kernel device's configuration over generic netlink, family
//! "wireguard" (`include/uapi/linux/wireguard.h`), through ferry's one
//! netlink engine. [`encode_set`] and [`decode_device`] are pure (the
//! byte layouts are tested against the header); [`KernelDevice`] is the
//! kernel driver ([`crate::Driver`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use ferry_netlink::engine::{
    align4, EngineError, Generic, Socket, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use ipnet::IpNet;

use crate::config::{Changes, DeviceState, PeerConfig, PeerState};
use crate::key::{PrivateKey, PublicKey, KEY_LEN};
use crate::{Driver, WgError};

pub const WG_GENL_NAME: &str = "wireguard";
pub const WG_GENL_VERSION: u8 = 1;
pub const WG_CMD_GET_DEVICE: u8 = 0;
pub const WG_CMD_SET_DEVICE: u8 = 1;

pub const WGDEVICE_F_REPLACE_PEERS: u32 = 1 << 0;
pub const WGDEVICE_A_IFINDEX: u16 = 1;
pub const WGDEVICE_A_IFNAME: u16 = 2;
pub const WGDEVICE_A_PRIVATE_KEY: u16 = 3;
pub const WGDEVICE_A_PUBLIC_KEY: u16 = 4;
pub const WGDEVICE_A_FLAGS: u16 = 5;
pub const WGDEVICE_A_LISTEN_PORT: u16 = 6;
pub const WGDEVICE_A_FWMARK: u16 = 7;
pub const WGDEVICE_A_PEERS: u16 = 8;

pub const WGPEER_F_REMOVE_ME: u32 = 1 << 0;
pub const WGPEER_F_REPLACE_ALLOWEDIPS: u32 = 1 << 1;
pub const WGPEER_F_UPDATE_ONLY: u32 = 1 << 2;
pub const WGPEER_A_PUBLIC_KEY: u16 = 1;
pub const WGPEER_A_PRESHARED_KEY: u16 = 2;
pub const WGPEER_A_FLAGS: u16 = 3;
pub const WGPEER_A_ENDPOINT: u16 = 4;
pub const WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL: u16 = 5;
pub const WGPEER_A_LAST_HANDSHAKE_TIME: u16 = 6;
pub const WGPEER_A_RX_BYTES: u16 = 7;
pub const WGPEER_A_TX_BYTES: u16 = 8;
pub const WGPEER_A_ALLOWEDIPS: u16 = 9;
pub const WGPEER_A_PROTOCOL_VERSION: u16 = 10;

pub const WGALLOWEDIP_A_FAMILY: u16 = 1;
pub const WGALLOWEDIP_A_IPADDR: u16 = 2;
pub const WGALLOWEDIP_A_CIDR_MASK: u16 = 3;

/// `NLA_F_NESTED`.
pub const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The generic netlink controller.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

const AF_INET: u16 = libc::AF_INET as u16;
const AF_INET6: u16 = libc::AF_INET6 as u16;

/// Peers per SET_DEVICE message (the kernel takes a message of at most a
/// page or so per request buffer; `wg` splits likewise).
pub const PEERS_PER_MESSAGE: usize = 32;

/// A netlink message being built: attributes appended, nests closed.
struct Builder<'a> {
    buf: &'a mut Vec<u8>,
}

impl Builder<'_> {
    fn attr(&mut self, ty: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }
    fn pad(&mut self) {
        self.buf.resize(align4(self.buf.len()), 0);
    }
    /// Opens a nest of type `ty` (with NLA_F_NESTED); its start.
    fn nest(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }
    fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

/// Writes a generic netlink message: header, genlmsghdr, then `attrs`.
fn genl_msg(
    buf: &mut Vec<u8>,
    family: u16,
    flags: u16,
    seq: u32,
    cmd: u8,
    version: u8,
    attrs: impl FnOnce(&mut Builder<'_>),
) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]); // length, below
    buf.extend_from_slice(&family.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel's
    buf.extend_from_slice(&[cmd, version, 0, 0]);
    attrs(&mut Builder { buf });
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// `struct sockaddr_in` (16 bytes) / `struct sockaddr_in6` (28 bytes).
pub fn sockaddr(ep: &SocketAddr) -> Vec<u8> {
    let mut b = Vec::with_capacity(28);
    match ep {
        SocketAddr::V4(a) => {
            b.extend_from_slice(&AF_INET.to_ne_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&[0; 8]);
        }
        SocketAddr::V6(a) => {
            b.extend_from_slice(&AF_INET6.to_ne_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.flowinfo().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&a.scope_id().to_ne_bytes());
        }
    }
    b
}

fn parse_sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(b.get(..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    match family {
        AF_INET => {
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        AF_INET6 => {
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let scope = u32::from_ne_bytes(b.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                0,
                scope,
            )))
        }
        _ => None,
    }
}

fn peer_attrs(
    b: &mut Builder<'_>,
    key: &PublicKey,
    flags: u32,
    body: impl FnOnce(&mut Builder<'_>),
) {
    let p = b.nest(0);
    b.attr(WGPEER_A_PUBLIC_KEY, &key.0);
    b.attr(WGPEER_A_FLAGS, &flags.to_ne_bytes());
    body(b);
    b.end(p);
}

fn upsert_attrs(b: &mut Builder<'_>, p: &PeerConfig) {
    peer_attrs(b, &p.public_key, WGPEER_F_REPLACE_ALLOWEDIPS, |b| {
        b.attr(WGPEER_A_ENDPOINT, &sockaddr(&p.endpoint));
        let ips = b.nest(WGPEER_A_ALLOWEDIPS);
        for ip in &p.allowed_ips {
            let a = b.nest(0);
            match ip.addr() {
                IpAddr::V4(v4) => {
                    b.attr(WGALLOWEDIP_A_FAMILY, &AF_INET.to_ne_bytes());
                    b.attr(WGALLOWEDIP_A_IPADDR, &v4.octets());
                }
                IpAddr::V6(v6) => {
                    b.attr(WGALLOWEDIP_A_FAMILY, &AF_INET6.to_ne_bytes());
                    b.attr(WGALLOWEDIP_A_IPADDR, &v6.octets());
                }
            }
            b.attr(WGALLOWEDIP_A_CIDR_MASK, &[ip.prefix_len()]);
            b.end(a);
        }
        b.end(ips);
    });
}

/// One SET_DEVICE request; `replace_peers` sets WGDEVICE_F_REPLACE_PEERS
/// (every peer not in this request is removed).
#[derive(Debug, Clone, Copy)]
pub struct SetRequest<'a> {
    pub ifname: &'a str,
    pub key: Option<&'a PrivateKey>,
    pub listen_port: Option<u16>,
    pub replace_peers: bool,
    pub upsert: &'a [PeerConfig],
    pub remove: &'a [PublicKey],
}

/// Appends the WG_CMD_SET_DEVICE message for `r` to `buf`.
pub fn encode_set(buf: &mut Vec<u8>, family: u16, seq: u32, r: &SetRequest<'_>) {
    genl_msg(
        buf,
        family,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        WG_CMD_SET_DEVICE,
        WG_GENL_VERSION,
        |b| {
            let mut name = r.ifname.as_bytes().to_vec();
            name.push(0);
            b.attr(WGDEVICE_A_IFNAME, &name);
            if let Some(k) = r.key {
                b.attr(WGDEVICE_A_PRIVATE_KEY, k.bytes());
            }
            if let Some(port) = r.listen_port {
                b.attr(WGDEVICE_A_LISTEN_PORT, &port.to_ne_bytes());
            }
            if r.replace_peers {
                b.attr(WGDEVICE_A_FLAGS, &WGDEVICE_F_REPLACE_PEERS.to_ne_bytes());
            }
            if !r.upsert.is_empty() || !r.remove.is_empty() {
                let peers = b.nest(WGDEVICE_A_PEERS);
                for p in r.upsert {
                    upsert_attrs(b, p);
                }
                for k in r.remove {
                    peer_attrs(b, k, WGPEER_F_REMOVE_ME, |_| {});
                }
                b.end(peers);
            }
        },
    );
}

/// Appends the WG_CMD_GET_DEVICE dump request for `ifname`.
pub fn encode_get(buf: &mut Vec<u8>, family: u16, seq: u32, ifname: &str) {
    genl_msg(
        buf,
        family,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        WG_CMD_GET_DEVICE,
        WG_GENL_VERSION,
        |b| {
            let mut name = ifname.as_bytes().to_vec();
            name.push(0);
            b.attr(WGDEVICE_A_IFNAME, &name);
        },
    );
}

/// The attributes in `b`: (type without flags, value).
pub fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let v = &b[4..len];
        b = b.get(align4(len)..).unwrap_or(&[]);
        Some((ty, v))
    })
}

fn key_of(v: &[u8]) -> Option<[u8; KEY_LEN]> {
    v.try_into().ok()
}

/// Merges one GET_DEVICE reply body (after the netlink header) into
/// `st`. A device with many peers comes in several messages; a peer may
/// continue from one into the next.
pub fn decode_device(body: &[u8], st: &mut DeviceState) -> Result<(), WgError> {
    let bad = |why: &str| WgError::Protocol("WG_CMD_GET_DEVICE", why.into());
    let attrs_at = body.get(4..).ok_or_else(|| bad("short genl header"))?;
    for (ty, v) in attrs(attrs_at) {
        match ty {
            WGDEVICE_A_PUBLIC_KEY => {
                st.public_key = Some(PublicKey(key_of(v).ok_or_else(|| bad("public key"))?))
            }
            WGDEVICE_A_LISTEN_PORT => {
                st.listen_port = u16::from_ne_bytes(v.try_into().map_err(|_| bad("listen port"))?)
            }
            WGDEVICE_A_PEERS => {
                for (_, peer) in attrs(v) {
                    decode_peer(peer, st)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn decode_peer(peer: &[u8], st: &mut DeviceState) -> Result<(), WgError> {
    let bad = |why: &str| WgError::Protocol("WG_CMD_GET_DEVICE", why.into());
    let key = attrs(peer)
        .find(|(t, _)| *t == WGPEER_A_PUBLIC_KEY)
        .and_then(|(_, v)| key_of(v))
        .ok_or_else(|| bad("peer without public key"))?;
    let p: &mut PeerState = st.peers.entry(PublicKey(key)).or_default();
    for (ty, v) in attrs(peer) {
        let u64_of = |v: &[u8]| v.try_into().map(u64::from_ne_bytes).unwrap_or(0);
        match ty {
            WGPEER_A_ENDPOINT => p.endpoint = parse_sockaddr(v),
            WGPEER_A_RX_BYTES => p.rx_bytes = u64_of(v),
            WGPEER_A_TX_BYTES => p.tx_bytes = u64_of(v),
            // struct __kernel_timespec { s64 tv_sec; s64 tv_nsec; }
            WGPEER_A_LAST_HANDSHAKE_TIME => {
                p.last_handshake_sec = u64_of(v.get(..8).unwrap_or(&[]));
                p.last_handshake_nsec = u64_of(v.get(8..16).unwrap_or(&[])) as u32;
            }
            WGPEER_A_ALLOWEDIPS => {
                for (_, a) in attrs(v) {
                    let mut fam = None;
                    let mut addr: &[u8] = &[];
                    let mut mask = None;
                    for (t, v) in attrs(a) {
                        match t {
                            WGALLOWEDIP_A_FAMILY => fam = v.try_into().ok().map(u16::from_ne_bytes),
                            WGALLOWEDIP_A_IPADDR => addr = v,
                            WGALLOWEDIP_A_CIDR_MASK => mask = v.first().copied(),
                            _ => {}
                        }
                    }
                    let ip = match (fam, addr.len()) {
                        (Some(AF_INET), 4) => IpAddr::from(<[u8; 4]>::try_from(addr).expect("4")),
                        (Some(AF_INET6), 16) => {
                            IpAddr::from(<[u8; 16]>::try_from(addr).expect("16"))
                        }
                        _ => return Err(bad("allowed IP")),
                    };
                    let net = IpNet::new(ip, mask.ok_or_else(|| bad("allowed IP mask"))?)
                        .map_err(|_| bad("allowed IP mask"))?;
                    p.allowed_ips.push(net);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Appends the CTRL_CMD_GETFAMILY request for `name`.
pub fn encode_get_family(buf: &mut Vec<u8>, seq: u32, name: &str) {
    genl_msg(
        buf,
        GENL_ID_CTRL,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        CTRL_CMD_GETFAMILY,
        1,
        |b| {
            let mut n = name.as_bytes().to_vec();
            n.push(0);
            b.attr(CTRL_ATTR_FAMILY_NAME, &n);
        },
    );
}

/// The family id in a CTRL_CMD_NEWFAMILY reply body.
pub fn decode_family_id(body: &[u8]) -> Option<u16> {
    attrs(body.get(4..)?)
        .find(|(t, _)| *t == CTRL_ATTR_FAMILY_ID)
        .and_then(|(_, v)| v.try_into().ok().map(u16::from_ne_bytes))
}

/// The kernel's WireGuard device `ifname`, configured over generic
/// netlink. Open it in the device's network namespace.
#[derive(Debug)]
pub struct KernelDevice {
    sock: Socket<Generic>,
    family: u16,
    ifname: String,
}

impl KernelDevice {
    /// Resolves the "wireguard" family: [`WgError::NoKernelSupport`]
    /// when the kernel has none (no module, not built in).
    pub fn open(ifname: &str) -> Result<KernelDevice, WgError> {
        let mut sock =
            Socket::<Generic>::open().map_err(|source| WgError::Netlink { op: "open", source })?;
        let mut family = None;
        let r = sock.request(
            |seq, buf| encode_get_family(buf, seq, WG_GENL_NAME),
            |m| {
                family = decode_family_id(m.body()).or(family);
                Ok(())
            },
        );
        match r {
            Err(EngineError::Kernel { errno, .. }) if errno == libc::ENOENT => {
                return Err(WgError::NoKernelSupport)
            }
            Err(source) => {
                return Err(WgError::Netlink {
                    op: "CTRL_CMD_GETFAMILY",
                    source,
                })
            }
            Ok(()) => {}
        }
        let family = family.ok_or(WgError::NoKernelSupport)?;
        Ok(KernelDevice {
            sock,
            family,
            ifname: ifname.to_string(),
        })
    }
}

impl Driver for KernelDevice {
    fn kind(&self) -> &'static str {
        "kernel"
    }

    fn get(&mut self) -> Result<DeviceState, WgError> {
        let mut st = DeviceState::default();
        let (family, ifname) = (self.family, self.ifname.clone());
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        self.sock
            .dump(
                |seq, buf| encode_get(buf, family, seq, &ifname),
                &mut bodies,
                |m| Ok(Some(m.body().to_vec())),
            )
            .map_err(|source| WgError::Netlink {
                op: "WG_CMD_GET_DEVICE",
                source,
            })?;
        for b in &bodies {
            decode_device(b, &mut st)?;
        }
        Ok(st)
    }

    fn apply(&mut self, key: &PrivateKey, changes: &Changes) -> Result<(), WgError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut first = true;
        let mut upsert = changes.upsert.chunks(PEERS_PER_MESSAGE);
        let mut remove = changes.remove.chunks(PEERS_PER_MESSAGE);
        loop {
            let (u, r) = (upsert.next(), remove.next());
            if !first && u.is_none() && r.is_none() {
                return Ok(());
            }
            let req = SetRequest {
                ifname: &self.ifname,
                key: (first && changes.set_private_key).then_some(key),
                listen_port: if first { changes.listen_port } else { None },
                replace_peers: false,
                upsert: u.unwrap_or(&[]),
                remove: r.unwrap_or(&[]),
            };
            let family = self.family;
            self.sock
                .request(|seq, buf| encode_set(buf, family, seq, &req), |_| Ok(()))
                .map_err(|source| WgError::Netlink {
                    op: "WG_CMD_SET_DEVICE",
                    source,
                })?;
            first = false;
        }
    }
}

#[cfg(test)]
#[path = "genl_tests.rs"]
mod tests;
