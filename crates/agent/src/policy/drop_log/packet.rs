//! The headers of a logged packet: IPv4 or IPv6, then TCP, UDP, SCTP or
//! ICMP (v4/v6). Reads only what is there: a packet cut anywhere (NFLOG
//! copies a small range) gives what could be read, never a panic.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a log line says about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
}

/// The transport, with its ports or ICMP type and code when the copied
/// range holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp(Option<Ports>),
    Udp(Option<Ports>),
    Sctp(Option<Ports>),
    Icmp {
        v6: bool,
        kind: Option<(u8, u8)>,
    },
    /// Another protocol number, or (`None`) an IPv6 extension header
    /// chain longer than the copied range.
    Other(Option<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    pub src: u16,
    pub dst: u16,
}

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_SCTP: u8 = 132;

/// IPv6 extension headers walked to find the transport (hop-by-hop,
/// routing, destination options: length in 8-byte units after the first 8).
const IPV6_EXT: [u8; 3] = [0, 43, 60];
const IPV6_FRAGMENT: u8 = 44;
/// Extension headers followed at most.
const MAX_EXT: usize = 8;

/// Parses `data`, which starts at the network header. `None` when not
/// even the addresses are there (or the version is neither 4 nor 6).
pub fn parse(data: &[u8]) -> Option<Packet> {
    match data.first()? >> 4 {
        4 => parse_v4(data),
        6 => parse_v6(data),
        _ => None,
    }
}

fn parse_v4(d: &[u8]) -> Option<Packet> {
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(d.get(12..16)?).ok()?);
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(d.get(16..20)?).ok()?);
    let ihl = usize::from(d[0] & 0x0f) * 4;
    let frag_offset = u16::from_be_bytes([d[6], d[7]]) & 0x1fff;
    // A later fragment has no transport header.
    let l4 = if ihl >= 20 && frag_offset == 0 {
        d.get(ihl..).unwrap_or(&[])
    } else {
        &[]
    };
    Some(Packet {
        src: src.into(),
        dst: dst.into(),
        proto: transport(d[9], l4, false),
    })
}

fn parse_v6(d: &[u8]) -> Option<Packet> {
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(d.get(8..24)?).ok()?);
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(d.get(24..40)?).ok()?);
    let mut next = d[6];
    let mut at = 40usize;
    let mut proto = None;
    for _ in 0..MAX_EXT {
        if IPV6_EXT.contains(&next) {
            let (Some(&n), Some(&len)) = (d.get(at), d.get(at + 1)) else {
                break;
            };
            next = n;
            at += (usize::from(len) + 1) * 8;
        } else if next == IPV6_FRAGMENT {
            let (Some(&n), Some(off)) = (d.get(at), d.get(at + 2..at + 4)) else {
                break;
            };
            next = n;
            at += 8;
            if u16::from_be_bytes([off[0], off[1]]) >> 3 != 0 {
                proto = Some(transport(next, &[], true));
                break;
            }
        } else {
            proto = Some(transport(next, d.get(at..).unwrap_or(&[]), true));
            break;
        }
    }
    Some(Packet {
        src: src.into(),
        dst: dst.into(),
        proto: proto.unwrap_or(Proto::Other(None)),
    })
}

fn transport(proto: u8, l4: &[u8], v6: bool) -> Proto {
    let ports = l4.get(..4).map(|p| Ports {
        src: u16::from_be_bytes([p[0], p[1]]),
        dst: u16::from_be_bytes([p[2], p[3]]),
    });
    match proto {
        IPPROTO_TCP => Proto::Tcp(ports),
        IPPROTO_UDP => Proto::Udp(ports),
        IPPROTO_SCTP => Proto::Sctp(ports),
        IPPROTO_ICMP if !v6 => Proto::Icmp {
            v6,
            kind: l4.get(..2).map(|k| (k[0], k[1])),
        },
        IPPROTO_ICMPV6 if v6 => Proto::Icmp {
            v6,
            kind: l4.get(..2).map(|k| (k[0], k[1])),
        },
        p => Proto::Other(Some(p)),
    }
}

impl Proto {
    /// `tcp`, `udp`, `sctp`, `icmp`, `icmpv6`, or the protocol number.
    pub fn name(&self) -> String {
        match self {
            Proto::Tcp(_) => "tcp".into(),
            Proto::Udp(_) => "udp".into(),
            Proto::Sctp(_) => "sctp".into(),
            Proto::Icmp { v6: false, .. } => "icmp".into(),
            Proto::Icmp { v6: true, .. } => "icmpv6".into(),
            Proto::Other(Some(p)) => p.to_string(),
            Proto::Other(None) => "unknown".into(),
        }
    }

    pub fn ports(&self) -> Option<Ports> {
        match self {
            Proto::Tcp(p) | Proto::Udp(p) | Proto::Sctp(p) => *p,
            _ => None,
        }
    }
}

/// An address with its port as a log line shows it: `10.0.0.1:80`,
/// `[fd00::1]:80`, or the bare address without a port.
pub struct Endpoint(pub IpAddr, pub Option<u16>);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}"),
            (a, Some(p)) => write!(f, "{a}:{p}"),
            (a, None) => write!(f, "{a}"),
        }
    }
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
