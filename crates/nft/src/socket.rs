//! The NETLINK_NETFILTER socket: sending a batch and collecting its acks,
//! single requests, and dumps.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use nix::libc;
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use crate::error::{MessageError, NftError};
use crate::msg::{request, SealedBatch};
use crate::nla::{align4, Attrs};
use crate::sys::*;

/// Receive buffer. Dump datagrams are at most 32 KiB (the kernel caps its
/// dump skbs there); acks are small. Truncation is detected regardless.
const RX_BUF_LEN: usize = 64 * 1024;

/// Retries of a dump the kernel flagged NLM_F_DUMP_INTR (the ruleset
/// changed while it was dumped).
const DUMP_ATTEMPTS: usize = 4;

/// Safety net for a kernel that never answers a dump or request.
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking nfnetlink socket in the network namespace of the thread that
/// opened it.
pub(crate) struct NfSocket {
    sock: Socket,
    seq: u32,
    rx: Vec<u8>,
}

/// One received netlink message.
struct Received<'a> {
    ty: u16,
    flags: u16,
    seq: u32,
    body: &'a [u8],
}

impl NfSocket {
    pub(crate) fn open() -> Result<NfSocket, NftError> {
        let sock = Socket::new(NETLINK_NETFILTER).map_err(|source| NftError::Socket {
            op: "socket(NETLINK_NETFILTER)",
            source,
        })?;
        // Best effort: error texts, and acks without a copy of the request
        // (an element list can be 60 KiB).
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        let timeout = TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0);
        setsockopt(&sock, sockopt::ReceiveTimeout, &timeout).map_err(|e| NftError::Socket {
            op: "setsockopt(SO_RCVTIMEO)",
            source: e.into(),
        })?;
        Ok(NfSocket {
            sock,
            seq: 0,
            rx: Vec::with_capacity(RX_BUF_LEN),
        })
    }

    /// `n` consecutive fresh sequence numbers; returns the first.
    pub(crate) fn reserve_seq(&mut self, n: u32) -> u32 {
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(n);
        first
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), NftError> {
        // A batch goes in one datagram, which must fit the send buffer.
        // Raising it past wmem_max needs CAP_NET_ADMIN, which writing
        // nf_tables needs anyway; if that fails, send reports EMSGSIZE.
        if bytes.len() > 128 * 1024 {
            let want = bytes.len() + 64 * 1024;
            if setsockopt(&self.sock, sockopt::SndBufForce, &want).is_err() {
                let _ = setsockopt(&self.sock, sockopt::SndBuf, &want);
            }
        }
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.sock.send_to(bytes, &kernel, 0) {
                Ok(n) if n == bytes.len() => return Ok(()),
                Ok(n) => {
                    return Err(NftError::protocol(
                        "send",
                        "",
                        format!("short send: {n} of {} bytes", bytes.len()),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(NftError::Socket { op: "send", source }),
            }
        }
    }

    /// Reads one datagram into `self.rx`; `Ok(false)` when `nonblocking`
    /// and nothing is queued.
    fn recv(&mut self, nonblocking: bool) -> Result<bool, NftError> {
        let flags = libc::MSG_TRUNC | if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        loop {
            self.rx.clear();
            match self.sock.recv(&mut self.rx, flags) {
                Ok(n) if n > self.rx.len() => {
                    return Err(NftError::protocol(
                        "recv",
                        "",
                        format!("datagram truncated: {n} bytes, buffer {}", self.rx.len()),
                    ))
                }
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && nonblocking => return Ok(false),
                Err(source) => return Err(NftError::Socket { op: "recv", source }),
            }
        }
    }

    /// Sends a batch and checks every ack. The kernel processes a batch
    /// synchronously inside `sendmsg`, so all answers are queued by the
    /// time `send` returns; what is missing then never comes.
    pub(crate) fn send_batch(&mut self, table: &str, batch: &SealedBatch) -> Result<(), NftError> {
        // Room for every ack (best effort; a small rcvbuf shows as ENOBUFS).
        let _ = setsockopt(&self.sock, sockopt::RcvBufForce, &(1 << 20));
        if batch.end_seq.wrapping_sub(self.seq) < u32::MAX / 2 {
            self.seq = batch.end_seq; // later requests get fresh numbers
        }
        self.send(&batch.bytes)?;
        let mut pending: BTreeMap<u32, &str> = batch
            .acked
            .iter()
            .map(|(seq, what)| (*seq, what.as_str()))
            .collect();
        let mut errors = Vec::new();
        let mut batch_error = false;
        while !pending.is_empty() && !batch_error {
            if !self.recv(true)? {
                let missing: Vec<&str> = pending.values().copied().collect();
                return Err(NftError::protocol(
                    "batch",
                    table,
                    format!("no answer for {}", missing.join(", ")),
                ));
            }
            for m in messages(&self.rx) {
                let m = m.map_err(|d| NftError::protocol("batch", table, d))?;
                match m.ty {
                    NLMSG_ERROR => {
                        let (errno, message) = parse_error(m.flags, m.body).ok_or_else(|| {
                            NftError::protocol("batch", table, "short NLMSG_ERROR")
                        })?;
                        if m.seq == batch.begin_seq {
                            // Pinned on the batch: a commit or memory failure.
                            if errno != 0 {
                                errors.push(MessageError {
                                    what: "batch".into(),
                                    errno,
                                    message,
                                });
                                batch_error = true;
                            }
                        } else if let Some(what) = pending.remove(&m.seq) {
                            if errno != 0 {
                                errors.push(MessageError {
                                    what: what.to_string(),
                                    errno,
                                    message,
                                });
                            }
                        }
                    }
                    NLMSG_OVERRUN => {
                        return Err(NftError::protocol("batch", table, "NLMSG_OVERRUN"))
                    }
                    _ => {} // nothing else is addressed to us
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(NftError::Batch {
                table: table.to_string(),
                errors,
            })
        }
    }

    /// A request answered by objects and an ack (e.g. GETTABLE by name).
    /// Returns the attributes of each answer object.
    pub(crate) fn get(
        &mut self,
        op: &'static str,
        target: &str,
        msg: u16,
        attrs: impl FnOnce(&mut crate::nla::Writer<'_>),
    ) -> Result<Vec<Vec<u8>>, NftError> {
        let seq = self.reserve_seq(1);
        self.send(&request(msg, NLM_F_REQUEST | NLM_F_ACK, seq, attrs))?;
        let mut out = Vec::new();
        loop {
            self.recv(false)?;
            for m in messages(&self.rx) {
                let m = m.map_err(|d| NftError::protocol(op, target, d))?;
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    NLMSG_ERROR => {
                        let (errno, message) = parse_error(m.flags, m.body)
                            .ok_or_else(|| NftError::protocol(op, target, "short NLMSG_ERROR"))?;
                        return if errno == 0 {
                            Ok(out)
                        } else {
                            Err(kernel(op, target, errno, message))
                        };
                    }
                    NLMSG_DONE | NLMSG_OVERRUN => {
                        return Err(NftError::protocol(op, target, "unexpected control message"))
                    }
                    _ => out.push(object_attrs(m.body, op, target)?.to_vec()),
                }
            }
        }
    }

    /// A dump: the attributes of every object, retried when interrupted.
    pub(crate) fn dump(
        &mut self,
        op: &'static str,
        target: &str,
        msg: u16,
        attrs: impl Fn(&mut crate::nla::Writer<'_>),
    ) -> Result<Vec<Vec<u8>>, NftError> {
        let mut out = Vec::new();
        for attempt in 1..=DUMP_ATTEMPTS {
            out.clear();
            let seq = self.reserve_seq(1);
            self.send(&request(msg, NLM_F_REQUEST | NLM_F_DUMP, seq, &attrs))?;
            let interrupted = self.read_dump(op, target, seq, &mut out)?;
            if !interrupted {
                return Ok(out);
            }
            if attempt == DUMP_ATTEMPTS {
                break;
            }
        }
        Err(NftError::protocol(
            op,
            target,
            "dump kept being interrupted by concurrent changes",
        ))
    }

    fn read_dump(
        &mut self,
        op: &'static str,
        target: &str,
        seq: u32,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<bool, NftError> {
        let mut interrupted = false;
        loop {
            self.recv(false)?;
            for m in messages(&self.rx) {
                let m = m.map_err(|d| NftError::protocol(op, target, d))?;
                if m.seq != seq {
                    continue;
                }
                interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
                match m.ty {
                    NLMSG_DONE => {
                        let code = m
                            .body
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap()));
                        if code < 0 {
                            let message = ext_ack(m.flags, m.body.get(4..).unwrap_or(&[]));
                            return Err(kernel(op, target, -code, message));
                        }
                        return Ok(interrupted);
                    }
                    NLMSG_ERROR => {
                        let (errno, message) = parse_error(m.flags, m.body)
                            .ok_or_else(|| NftError::protocol(op, target, "short NLMSG_ERROR"))?;
                        return Err(kernel(op, target, errno, message));
                    }
                    NLMSG_OVERRUN => return Err(NftError::protocol(op, target, "NLMSG_OVERRUN")),
                    _ => out.push(object_attrs(m.body, op, target)?.to_vec()),
                }
            }
        }
    }
}

fn kernel(op: &'static str, target: &str, errno: i32, message: Option<String>) -> NftError {
    NftError::Kernel {
        op,
        target: target.to_string(),
        errno,
        message,
    }
}

/// The attributes of an nf_tables object message (after the nfgenmsg).
fn object_attrs<'a>(body: &'a [u8], op: &'static str, target: &str) -> Result<&'a [u8], NftError> {
    body.get(NFGENMSG_LEN..)
        .ok_or_else(|| NftError::protocol(op, target, "message shorter than nfgenmsg"))
}

/// Splits a datagram into messages.
fn messages(data: &[u8]) -> impl Iterator<Item = Result<Received<'_>, String>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(h) = rest.get(..NLMSG_HDR_LEN) else {
            rest = &[];
            return Some(Err("truncated netlink header".to_string()));
        };
        let len = u32::from_ne_bytes(h[0..4].try_into().unwrap()) as usize;
        if len < NLMSG_HDR_LEN || len > rest.len() {
            rest = &[];
            return Some(Err(format!("bad netlink message length {len}")));
        }
        let m = Received {
            ty: u16::from_ne_bytes(h[4..6].try_into().unwrap()),
            flags: u16::from_ne_bytes(h[6..8].try_into().unwrap()),
            seq: u32::from_ne_bytes(h[8..12].try_into().unwrap()),
            body: &rest[NLMSG_HDR_LEN..len],
        };
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(m))
    })
}

/// The positive errno (0 for an ack) and extended-ack text of an
/// NLMSG_ERROR body.
fn parse_error(flags: u16, body: &[u8]) -> Option<(i32, Option<String>)> {
    let code = i32::from_ne_bytes(body.get(..4)?.try_into().ok()?);
    let echoed = body.get(4..)?;
    // The echoed request: just its header when capped, else all of it.
    let echoed_len = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDR_LEN
    } else {
        u32::from_ne_bytes(echoed.get(..4)?.try_into().ok()?) as usize
    };
    let tlvs = echoed.get(align4(echoed_len)..).unwrap_or(&[]);
    Some((code.saturating_neg(), ext_ack(flags, tlvs)))
}

fn ext_ack(flags: u16, tlvs: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    Attrs::new(tlvs)
        .get(NLMSGERR_ATTR_MSG)
        .map(|a| a.str())
        .filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nlmsg(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(((NLMSG_HDR_LEN + body.len()) as u32).to_ne_bytes());
        v.extend(ty.to_ne_bytes());
        v.extend(flags.to_ne_bytes());
        v.extend(seq.to_ne_bytes());
        v.extend(0u32.to_ne_bytes());
        v.extend(body);
        v.resize(align4(v.len()), 0);
        v
    }

    #[test]
    fn splits_datagrams_and_parses_errors() {
        // A capped error with an ext-ack text, then an ack.
        let mut body = (-2i32).to_ne_bytes().to_vec();
        body.extend(nlmsg(nft_type(NFT_MSG_NEWRULE), 0, 7, &[])); // echoed header
        let mut w = Vec::new();
        crate::nla::Writer::new(&mut w).str(NLMSGERR_ATTR_MSG, "no such set");
        body.extend(&w);
        let mut dgram = nlmsg(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 7, &body);
        let mut ack = 0i32.to_ne_bytes().to_vec();
        ack.extend(nlmsg(nft_type(NFT_MSG_NEWSET), 0, 8, &[]));
        dgram.extend(nlmsg(NLMSG_ERROR, NLM_F_CAPPED, 8, &ack));

        let got: Vec<_> = messages(&dgram).map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].seq, got[1].seq), (7, 8));
        assert_eq!(
            parse_error(got[0].flags, got[0].body),
            Some((2, Some("no such set".to_string())))
        );
        assert_eq!(parse_error(got[1].flags, got[1].body), Some((0, None)));
        // Uncapped: the whole request is echoed before the TLVs.
        let req = nlmsg(nft_type(NFT_MSG_NEWRULE), 0, 9, &[1, 2, 3, 4, 5]);
        let mut body = (-22i32).to_ne_bytes().to_vec();
        body.extend(&req);
        body.extend(&w);
        assert_eq!(
            parse_error(NLM_F_ACK_TLVS, &body),
            Some((22, Some("no such set".to_string())))
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let bad: Vec<_> = messages(&[1, 2, 3]).collect();
        assert!(bad[0].is_err());
        let mut long = nlmsg(NLMSG_DONE, 0, 1, &[0; 4]);
        long[0] = 200;
        assert!(messages(&long).next().unwrap().is_err());
        assert_eq!(parse_error(0, &[1, 2]), None);
        assert_eq!(ext_ack(NLM_F_ACK_TLVS, &[0xff; 3]), None);
    }
}
