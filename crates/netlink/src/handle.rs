//! The blocking NETLINK_ROUTE socket and its request/reply engine.

use std::io;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, NLM_F_ACK,
    NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{NetlinkError, Target};

/// User-space receive buffer. The kernel sizes dump datagrams at most 32 KiB
/// (unless a single message is larger, which RTEXT_FILTER_SKIP_STATS keeps
/// link messages far from); truncation is detected and reported anyway.
const RX_BUF_LEN: usize = 64 * 1024;

/// Retries of a dump the kernel flagged as inconsistent (NLM_F_DUMP_INTR:
/// the table changed while it was being dumped).
const DUMP_ATTEMPTS: usize = 4;

/// `NLMSGERR_ATTR_MSG`: extended-ack error text.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// A blocking rtnetlink handle bound to the network namespace of the thread
/// that created it (open it inside `ferry_netns::NetNs::run` to work on
/// another namespace). Requests take `&mut self`: one request in flight.
///
/// Every request carries `NLM_F_ACK` and a fresh sequence number; replies
/// with other sequence numbers are ignored.
pub struct Handle {
    sock: Socket,
    seq: u32,
    rx: Vec<u8>,
    tx: Vec<u8>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("seq", &self.seq).finish()
    }
}

impl Handle {
    /// Opens a NETLINK_ROUTE socket in the calling thread's network
    /// namespace. The socket stays in that namespace for its lifetime.
    pub fn new() -> Result<Handle, NetlinkError> {
        let sock = Socket::new(NETLINK_ROUTE).map_err(|source| NetlinkError::Socket {
            op: "socket(NETLINK_ROUTE)",
            source,
        })?;
        // Best effort, all cheap: error strings from the kernel, acks
        // without a copy of our request, and kernel-side dump filtering
        // (by table, ifindex). Older kernels simply lack some of them;
        // results are filtered in user space as well.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_netlink_get_strict_chk(true);
        // The socket is auto-bound by the kernel on first send.
        Ok(Handle {
            sock,
            seq: 0,
            rx: Vec::with_capacity(RX_BUF_LEN),
            tx: Vec::with_capacity(1024),
        })
    }

    /// Sends a request that expects only an ACK (plus, for GET requests,
    /// the reply objects, which are returned).
    pub(crate) fn request(
        &mut self,
        op: &'static str,
        target: &Target,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.send(op, target, msg, NLM_F_REQUEST | NLM_F_ACK | flags)?;
        let mut out = Vec::new();
        self.receive(op, target, false, &mut out)?;
        Ok(out)
    }

    /// Dumps (`NLM_F_DUMP`) until NLMSG_DONE, retrying when the kernel marks
    /// the dump as interrupted.
    pub(crate) fn dump(
        &mut self,
        op: &'static str,
        target: &Target,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let mut out = Vec::new();
        for attempt in 1..=DUMP_ATTEMPTS {
            out.clear();
            self.send(op, target, msg.clone(), NLM_F_REQUEST | NLM_F_DUMP)?;
            let interrupted = self.receive(op, target, true, &mut out)?;
            if !interrupted || attempt == DUMP_ATTEMPTS {
                break;
            }
        }
        Ok(out)
    }

    fn send(
        &mut self,
        op: &'static str,
        target: &Target,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        self.tx.clear();
        self.tx.resize(nl.buffer_len(), 0);
        nl.serialize(&mut self.tx);
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.sock.send_to(&self.tx, &kernel, 0) {
                Ok(n) if n == self.tx.len() => return Ok(()),
                Ok(n) => {
                    return Err(NetlinkError::protocol(
                        op,
                        target,
                        format!("short send: {n} of {} bytes", self.tx.len()),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(NetlinkError::Socket { op: "send", source }),
            }
        }
    }

    /// Reads replies to the current sequence number until the final ACK
    /// (or NLMSG_DONE for dumps). Data messages are appended to `out`.
    /// Returns whether any message carried NLM_F_DUMP_INTR.
    fn receive(
        &mut self,
        op: &'static str,
        target: &Target,
        dump: bool,
        out: &mut Vec<RouteNetlinkMessage>,
    ) -> Result<bool, NetlinkError> {
        let mut interrupted = false;
        loop {
            self.rx.clear();
            let n = match self.sock.recv(&mut self.rx, libc::MSG_TRUNC) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(NetlinkError::Socket { op: "recv", source }),
            };
            if n > self.rx.len() {
                return Err(NetlinkError::protocol(
                    op,
                    target,
                    format!("reply truncated: {n} bytes, buffer {}", self.rx.len()),
                ));
            }
            let mut data = &self.rx[..n];
            while !data.is_empty() {
                let buf = NetlinkBuffer::new_checked(data)
                    .map_err(|e| NetlinkError::protocol(op, target, e.to_string()))?;
                let len = buf.length() as usize;
                let (seq, flags) = (buf.sequence_number(), buf.flags());
                let this = &data[..len];
                data = &data[align4(len).min(data.len())..];
                if seq != self.seq {
                    continue; // stale reply to an earlier, abandoned request
                }
                interrupted |= flags & NLM_F_DUMP_INTR != 0;
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(this)
                    .map_err(|e| NetlinkError::protocol(op, target, e.to_string()))?;
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None if !dump => Ok(interrupted),
                            None => Err(NetlinkError::protocol(op, target, "ACK inside a dump")),
                            Some(code) => Err(NetlinkError::kernel(
                                op,
                                target,
                                code.get().saturating_neg(),
                                ext_ack_message(flags, &e.header, true),
                            )),
                        };
                    }
                    NetlinkPayload::Done(d) => {
                        if d.code < 0 {
                            return Err(NetlinkError::kernel(
                                op,
                                target,
                                d.code.saturating_neg(),
                                ext_ack_message(flags, &d.extended_ack, false),
                            ));
                        }
                        if dump {
                            return Ok(interrupted);
                        }
                    }
                    NetlinkPayload::Noop => {}
                    NetlinkPayload::Overrun(_) => {
                        return Err(NetlinkError::protocol(op, target, "NLMSG_OVERRUN"))
                    }
                    _ => {}
                }
            }
        }
    }
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Extracts the extended-ack error text (NLMSGERR_ATTR_MSG) from the body of
/// an NLMSG_ERROR (after the errno; `has_request_copy`) or NLMSG_DONE.
fn ext_ack_message(flags: u16, body: &[u8], has_request_copy: bool) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let tlvs = if has_request_copy {
        // The echoed request: just its header when capped, else all of it.
        let echoed = if flags & NLM_F_CAPPED != 0 {
            16
        } else {
            u32::from_ne_bytes(body.get(..4)?.try_into().ok()?) as usize
        };
        body.get(align4(echoed)..)?
    } else {
        body
    };
    NlasIterator::new(tlvs)
        .filter_map(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let v = nla.value();
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            String::from_utf8_lossy(&v[..end]).into_owned()
        })
        .filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn ext_ack_capped() {
        let mut body = vec![0u8; 16]; // echoed nlmsghdr
        body[..4].copy_from_slice(&40u32.to_ne_bytes()); // original length
        body.extend(nla(3, &7u32.to_ne_bytes())); // NLMSGERR_ATTR_OFFS
        body.extend(nla(NLMSGERR_ATTR_MSG, b"Nexthop device is not up\0"));
        let m = ext_ack_message(NLM_F_ACK_TLVS | NLM_F_CAPPED, &body, true);
        assert_eq!(m.as_deref(), Some("Nexthop device is not up"));
        // Without the TLV flag nothing is parsed.
        assert_eq!(ext_ack_message(NLM_F_CAPPED, &body, true), None);
    }

    #[test]
    fn ext_ack_uncapped_and_done() {
        let mut body = vec![0u8; 22]; // echoed request of 22 bytes
        body[..4].copy_from_slice(&22u32.to_ne_bytes());
        body.extend([0, 0]); // alignment
        body.extend(nla(NLMSGERR_ATTR_MSG, b"bad\0"));
        assert_eq!(
            ext_ack_message(NLM_F_ACK_TLVS, &body, true).as_deref(),
            Some("bad")
        );
        let done = nla(NLMSGERR_ATTR_MSG, b"dump failed\0");
        assert_eq!(
            ext_ack_message(NLM_F_ACK_TLVS, &done, false).as_deref(),
            Some("dump failed")
        );
        // Garbage must not panic.
        assert_eq!(ext_ack_message(NLM_F_ACK_TLVS, &[1, 2], true), None);
        assert_eq!(ext_ack_message(NLM_F_ACK_TLVS, &[0xff; 9], false), None);
    }

    #[test]
    fn alignment() {
        assert_eq!(align4(0), 0);
        assert_eq!(align4(1), 4);
        assert_eq!(align4(16), 16);
        assert_eq!(align4(17), 20);
    }
}
