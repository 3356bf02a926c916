//! The one synchronous netlink engine: a socket of protocol family `P`
//! (rtnetlink, nfnetlink, generic netlink), its sequence numbers, its
//! send and receive loops, dump retries and extended-ack parsing. The
//! protocol clients ([`crate::Handle`], `ferry-nft`) build request bytes
//! and decode reply bodies; everything between is here, with one policy:
//!
//! * every receive waits at most [`RECV_TIMEOUT`] (a kernel that never
//!   answers becomes an error, not a hang);
//! * a dump the kernel marks `NLM_F_DUMP_INTR` (its table changed while it
//!   was being dumped) is repeated, [`DUMP_ATTEMPTS`] times in all;
//! * the receive buffer is sized from what the kernel says the next
//!   datagram holds (`MSG_PEEK | MSG_TRUNC`), so nothing is ever cut;
//! * replies to other sequence numbers (an abandoned earlier request) are
//!   skipped.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use netlink_sys::{protocols, SocketAddr};

#[path = "engine_wire.rs"]
mod wire;
pub use wire::{align4, ext_ack, messages, parse_error, Messages};

/// How long one receive may wait for the kernel.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);
/// Dumps made in all when the kernel keeps flagging NLM_F_DUMP_INTR.
pub const DUMP_ATTEMPTS: usize = 4;
/// The receive buffer's starting size: dump datagrams are at most 32 KiB
/// unless one message is larger, so it rarely grows.
const RX_START: usize = 32 * 1024;

/// `sizeof(struct nlmsghdr)`.
pub const NLMSG_HDR_LEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const NLM_F_REQUEST: u16 = 0x01;
pub const NLM_F_ACK: u16 = 0x04;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
/// In an NLMSG_ERROR: the request copy was cut to its header.
pub const NLM_F_CAPPED: u16 = 0x100;
/// In an NLMSG_ERROR/DONE: extended-ack TLVs follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the extended-ack error text.
pub const NLMSGERR_ATTR_MSG: u16 = 1;

/// A netlink protocol family.
pub trait Protocol {
    /// `NETLINK_*`.
    const ID: isize;
    /// For errors: `socket(NETLINK_ROUTE)` etc.
    const SOCKET_OP: &'static str;
    /// `NETLINK_GET_STRICT_CHK` (kernel-side dump filtering) applies.
    const STRICT_CHECK: bool = false;
}

/// rtnetlink: links, addresses, routes, neighbours, tc.
#[derive(Debug)]
pub enum Route {}
impl Protocol for Route {
    const ID: isize = protocols::NETLINK_ROUTE;
    const SOCKET_OP: &'static str = "socket(NETLINK_ROUTE)";
    const STRICT_CHECK: bool = true;
}

/// nfnetlink: nf_tables.
#[derive(Debug)]
pub enum Netfilter {}
impl Protocol for Netfilter {
    const ID: isize = protocols::NETLINK_NETFILTER;
    const SOCKET_OP: &'static str = "socket(NETLINK_NETFILTER)";
}

/// Generic netlink (WireGuard and other families resolved by name).
#[derive(Debug)]
pub enum Generic {}
impl Protocol for Generic {
    const ID: isize = protocols::NETLINK_GENERIC;
    const SOCKET_OP: &'static str = "socket(NETLINK_GENERIC)";
}

/// What the engine reports; each client adds its operation and target.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Opening or configuring the socket, a send or a receive failed
    /// (a receive that timed out: `EAGAIN`).
    #[error("netlink socket {op}: {source}")]
    Socket {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel answered with an error: the positive errno and its
    /// extended-ack text.
    #[error("{}", io::Error::from_raw_os_error(*.errno))]
    Kernel { errno: i32, message: Option<String> },
    /// A reply broke the protocol (or a client could not decode it).
    #[error("bad netlink reply: {0}")]
    Protocol(String),
}

/// One received netlink message.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    /// The whole message, header included.
    pub bytes: &'a [u8],
}

impl<'a> Msg<'a> {
    /// The message after its header.
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[NLMSG_HDR_LEN..]
    }
}

/// How a dump ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dumped {
    /// NLMSG_DONE with no NLM_F_DUMP_INTR.
    Consistent,
    /// Every one of [`DUMP_ATTEMPTS`] dumps was interrupted; what the last
    /// one delivered is what the caller has.
    Interrupted,
}

/// A blocking netlink socket of family `P`, in the network namespace of
/// the thread that opened it. One request in flight (`&mut self`).
pub struct Socket<P> {
    sock: netlink_sys::Socket,
    seq: u32,
    rx: Vec<u8>,
    tx: Vec<u8>,
    _protocol: PhantomData<P>,
}

impl<P> std::fmt::Debug for Socket<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("seq", &self.seq).finish()
    }
}

impl<P> AsFd for Socket<P> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl<P: Protocol> Socket<P> {
    /// Opens the socket in the calling thread's network namespace, asks
    /// for extended acks and capped acks (best effort: older kernels lack
    /// some) and sets the receive timeout. Auto-bound on first send.
    pub fn open() -> Result<Socket<P>, EngineError> {
        let sock = netlink_sys::Socket::new(P::ID).map_err(|source| EngineError::Socket {
            op: P::SOCKET_OP,
            source,
        })?;
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        if P::STRICT_CHECK {
            let _ = sock.set_netlink_get_strict_chk(true);
        }
        set_recv_timeout(&sock, RECV_TIMEOUT)?;
        Ok(Socket {
            sock,
            seq: 0,
            rx: Vec::with_capacity(RX_START),
            tx: Vec::with_capacity(1024),
            _protocol: PhantomData,
        })
    }

    /// Asks for a receive buffer of `bytes` (SO_RCVBUFFORCE, which needs
    /// CAP_NET_ADMIN; else SO_RCVBUF, capped by `net.core.rmem_max`) and
    /// returns what the kernel set (double the request: its bookkeeping).
    /// For sockets the kernel sends to unasked (NFLOG), where a full buffer
    /// loses messages (the next receive fails with ENOBUFS).
    pub fn set_recv_buffer(&self, bytes: usize) -> Result<usize, EngineError> {
        use nix::sys::socket::{getsockopt, setsockopt, sockopt};
        let err = |op| {
            move |e: nix::Error| EngineError::Socket {
                op,
                source: e.into(),
            }
        };
        if setsockopt(&self.sock, sockopt::RcvBufForce, &bytes).is_err() {
            setsockopt(&self.sock, sockopt::RcvBuf, &bytes)
                .map_err(err("setsockopt(SO_RCVBUF)"))?;
        }
        getsockopt(&self.sock, sockopt::RcvBuf).map_err(err("getsockopt(SO_RCVBUF)"))
    }

    /// How long one blocking receive waits ([`RECV_TIMEOUT`] from
    /// [`Socket::open`]); a listener for unasked messages wakes up this
    /// often (its receive fails with `WouldBlock`, see [`is_timeout`]).
    pub fn set_recv_timeout(&self, timeout: Duration) -> Result<(), EngineError> {
        set_recv_timeout(&self.sock, timeout)
    }

    /// `n` consecutive fresh sequence numbers; returns the first.
    pub fn reserve_seq(&mut self, n: u32) -> u32 {
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(n);
        first
    }

    /// Marks every number up to `last` as used (a batch whose numbers the
    /// caller picked).
    pub fn used_seq_up_to(&mut self, last: u32) {
        if last.wrapping_sub(self.seq) < u32::MAX / 2 {
            self.seq = last;
        }
    }

    /// Sends one datagram to the kernel.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.sock.send_to(bytes, &kernel, 0) {
                Ok(n) if n == bytes.len() => return Ok(()),
                Ok(n) => {
                    return Err(EngineError::Protocol(format!(
                        "short send: {n} of {} bytes",
                        bytes.len()
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(EngineError::Socket { op: "send", source }),
            }
        }
    }

    /// Receives the next datagram, whole: its length is asked of the kernel
    /// first and the buffer grown to it. `Ok(None)` when `nonblocking` and
    /// nothing is queued.
    pub fn recv(&mut self, nonblocking: bool) -> Result<Option<Messages<'_>>, EngineError> {
        let wait = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        let len = loop {
            let mut none: &mut [u8] = &mut [];
            match self
                .sock
                .recv(&mut none, libc::MSG_PEEK | libc::MSG_TRUNC | wait)
            {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && nonblocking => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(EngineError::Socket {
                        op: "recv: no answer within the timeout",
                        source: e,
                    })
                }
                Err(source) => return Err(EngineError::Socket { op: "recv", source }),
            }
        };
        self.rx.clear();
        self.rx.reserve(len);
        let n = loop {
            match self.sock.recv(&mut self.rx, libc::MSG_TRUNC | wait) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(EngineError::Socket { op: "recv", source }),
            }
        };
        if n > self.rx.len() {
            return Err(EngineError::Protocol(format!(
                "datagram truncated: {n} bytes, buffer {}",
                self.rx.len()
            )));
        }
        Ok(Some(messages(&self.rx)))
    }

    /// Sends the request `build(seq, buf)` writes (with `NLM_F_REQUEST |
    /// NLM_F_ACK` and the fresh sequence number `seq`) and hands every
    /// reply object to `reply` until the kernel's ACK; an NLMSG_ERROR is
    /// the error.
    pub fn request(
        &mut self,
        build: impl FnOnce(u32, &mut Vec<u8>),
        mut reply: impl FnMut(Msg<'_>) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let seq = self.send_built(build)?;
        loop {
            let msgs = self.recv(false)?.expect("blocking recv returns a datagram");
            for m in msgs {
                let m = m?;
                if m.seq != seq {
                    continue; // a reply to an earlier, abandoned request
                }
                match m.ty {
                    NLMSG_ERROR => {
                        return match parse_error(m.flags, m.body()) {
                            Some((0, _)) => Ok(()),
                            Some((errno, message)) => Err(EngineError::Kernel { errno, message }),
                            None => Err(EngineError::Protocol("short NLMSG_ERROR".into())),
                        }
                    }
                    NLMSG_DONE => done_error(m)?,
                    NLMSG_NOOP => {}
                    NLMSG_OVERRUN => return Err(EngineError::Protocol("NLMSG_OVERRUN".into())),
                    _ => reply(m)?,
                }
            }
        }
    }

    /// A dump: sends the request `build(seq, buf)` writes (`NLM_F_REQUEST
    /// | NLM_F_DUMP`) and collects into `out` what `decode` makes of each
    /// object (`None`: skipped) until NLMSG_DONE. While the kernel flags
    /// the dump as interrupted, `out` is cleared and the dump made again,
    /// [`DUMP_ATTEMPTS`] times in all.
    pub fn dump<T>(
        &mut self,
        mut build: impl FnMut(u32, &mut Vec<u8>),
        out: &mut Vec<T>,
        mut decode: impl FnMut(Msg<'_>) -> Result<Option<T>, EngineError>,
    ) -> Result<Dumped, EngineError> {
        for _ in 0..DUMP_ATTEMPTS {
            out.clear();
            let seq = self.send_built(&mut build)?;
            let mut reply = |m: Msg<'_>| {
                if let Some(t) = decode(m)? {
                    out.push(t);
                }
                Ok(())
            };
            if !self.read_dump(seq, &mut reply)? {
                return Ok(Dumped::Consistent);
            }
        }
        Ok(Dumped::Interrupted)
    }

    /// Builds a request with a fresh sequence number into the send buffer
    /// and sends it; the number.
    fn send_built(&mut self, build: impl FnOnce(u32, &mut Vec<u8>)) -> Result<u32, EngineError> {
        let seq = self.reserve_seq(1);
        let mut tx = std::mem::take(&mut self.tx);
        tx.clear();
        build(seq, &mut tx);
        let sent = self.send(&tx);
        self.tx = tx;
        sent.map(|()| seq)
    }

    /// Reads one dump to NLMSG_DONE; whether it was interrupted.
    fn read_dump(
        &mut self,
        seq: u32,
        reply: &mut impl FnMut(Msg<'_>) -> Result<(), EngineError>,
    ) -> Result<bool, EngineError> {
        let mut interrupted = false;
        loop {
            let msgs = self.recv(false)?.expect("blocking recv returns a datagram");
            for m in msgs {
                let m = m?;
                if m.seq != seq {
                    continue;
                }
                interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
                match m.ty {
                    NLMSG_DONE => {
                        done_error(m)?;
                        return Ok(interrupted);
                    }
                    NLMSG_ERROR => {
                        return Err(match parse_error(m.flags, m.body()) {
                            Some((0, _)) => EngineError::Protocol("ACK inside a dump".into()),
                            Some((errno, message)) => EngineError::Kernel { errno, message },
                            None => EngineError::Protocol("short NLMSG_ERROR".into()),
                        })
                    }
                    NLMSG_NOOP => {}
                    NLMSG_OVERRUN => return Err(EngineError::Protocol("NLMSG_OVERRUN".into())),
                    _ => reply(m)?,
                }
            }
        }
    }
}

/// A blocking receive that found nothing within the receive timeout.
pub fn is_timeout(e: &EngineError) -> bool {
    matches!(e, EngineError::Socket { source, .. } if source.kind() == io::ErrorKind::WouldBlock)
}

fn set_recv_timeout(sock: &netlink_sys::Socket, timeout: Duration) -> Result<(), EngineError> {
    use nix::sys::socket::{setsockopt, sockopt};
    let tv = nix::sys::time::TimeVal::new(timeout.as_secs() as _, timeout.subsec_micros() as _);
    setsockopt(sock, sockopt::ReceiveTimeout, &tv).map_err(|e| EngineError::Socket {
        op: "setsockopt(SO_RCVTIMEO)",
        source: e.into(),
    })
}

/// An NLMSG_DONE with a negative code is the dump's error.
fn done_error(m: Msg<'_>) -> Result<(), EngineError> {
    let body = m.body();
    let code = body
        .get(..4)
        .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
    if code < 0 {
        let message = ext_ack(m.flags, body.get(4..).unwrap_or(&[]));
        return Err(EngineError::Kernel {
            errno: code.saturating_neg(),
            message,
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
