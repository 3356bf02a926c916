//! NFLOG (`nfnetlink_log`, subsystem ULOG of NETLINK_NETFILTER) over the
//! shared netlink engine: bind a group, configure it (packet copies of
//! [`COPY_RANGE`] bytes, sequence numbers, one message per datagram) and
//! decode what the kernel sends.
//!
//! Sizes: a message is at most [`MSG_MAX`] bytes (the copied headers, the
//! prefix, interface and hardware attributes); the kernel allocates one
//! buffer of that size per message and the socket holds [`QUEUE`] of them
//! ([`RCVBUF`]) before it loses some (the next receive says ENOBUFS, and
//! the sequence numbers show how many).

use ferry_netlink::engine::{
    self, EngineError, Netfilter, Socket, NLMSG_HDR_LEN, NLM_F_ACK, NLM_F_REQUEST,
};
use ferry_nft::raw::{Attrs, Writer};

pub const NFNL_SUBSYS_ULOG: u16 = 4;
pub const NFULNL_MSG_PACKET: u16 = 0;
pub const NFULNL_MSG_CONFIG: u16 = 1;
// enum nfulnl_attr_config
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULA_CFG_NLBUFSIZ: u16 = 3;
const NFULA_CFG_TIMEOUT: u16 = 4;
const NFULA_CFG_QTHRESH: u16 = 5;
const NFULA_CFG_FLAGS: u16 = 6;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;
const NFULNL_CFG_F_SEQ: u16 = 0x0001;
// enum nfulnl_attr_type
pub const NFULA_PACKET_HDR: u16 = 1;
pub const NFULA_PAYLOAD: u16 = 9;
pub const NFULA_PREFIX: u16 = 10;
pub const NFULA_SEQ: u16 = 12;

/// Bytes of each dropped packet copied: IPv4 with options (60) or IPv6
/// with a few extension headers, and the first bytes of TCP/UDP/SCTP/ICMP.
pub const COPY_RANGE: u32 = 128;
/// The largest message the kernel builds with that copy range.
pub const MSG_MAX: u32 = 512;
/// Messages the socket can hold before the kernel drops some.
pub const QUEUE: usize = 256;
/// The receive buffer asked for: [`QUEUE`] messages, each counted with
/// the kernel's per-buffer overhead (about as much again).
pub const RCVBUF: usize = QUEUE * 2 * MSG_MAX as usize;

/// `(NFNL_SUBSYS_ULOG << 8) | msg`.
pub fn msg_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_ULOG << 8) | msg
}

/// One NFULNL_MSG_CONFIG request for `group` (acked), its attributes
/// written by `attrs`.
pub fn config_request(
    seq: u32,
    group: u16,
    buf: &mut Vec<u8>,
    attrs: impl FnOnce(&mut Writer<'_>),
) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]); // length, below
    buf.extend_from_slice(&msg_type(NFULNL_MSG_CONFIG).to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // struct nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id = the group (BE)
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&group.to_be_bytes());
    attrs(&mut Writer::new(buf));
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

type Step = Box<dyn FnOnce(&mut Writer<'_>)>;

/// The configuration [`Listener::open`] sends, one acked request each, in
/// order: bind the group; copy packets (`COPY_RANGE` bytes), number them,
/// hand each message over at once in a buffer of `MSG_MAX` bytes.
fn config_steps() -> Vec<Step> {
    vec![
        Box::new(|w| w.put(NFULA_CFG_CMD, &[NFULNL_CFG_CMD_BIND])),
        Box::new(|w| {
            let mut mode = COPY_RANGE.to_be_bytes().to_vec();
            mode.extend_from_slice(&[NFULNL_COPY_PACKET, 0]);
            w.put(NFULA_CFG_MODE, &mode);
            w.put(NFULA_CFG_FLAGS, &NFULNL_CFG_F_SEQ.to_be_bytes());
            w.u32(NFULA_CFG_QTHRESH, 1);
            w.u32(NFULA_CFG_TIMEOUT, 1);
            w.u32(NFULA_CFG_NLBUFSIZ, MSG_MAX);
        }),
    ]
}

/// The configuration requests as bytes, numbered from `seq` (tests).
pub fn configuration(seq: u32, group: u16) -> Vec<Vec<u8>> {
    config_steps()
        .into_iter()
        .enumerate()
        .map(|(i, attrs)| {
            let mut buf = Vec::new();
            config_request(seq.wrapping_add(i as u32), group, &mut buf, attrs);
            buf
        })
        .collect()
}

/// One logged packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged<'a> {
    /// NFPROTO_IPV4 (2) or NFPROTO_IPV6 (10).
    pub family: u8,
    pub group: u16,
    /// The rule's `log prefix`.
    pub prefix: String,
    /// The group's sequence number (NFULNL_CFG_F_SEQ).
    pub seq: Option<u32>,
    /// The packet from its network header, at most `COPY_RANGE` bytes.
    pub payload: &'a [u8],
}

/// An NFULNL_MSG_PACKET body (after the nlmsghdr); `None` if it is not one
/// or is cut short.
pub fn parse_packet(ty: u16, body: &[u8]) -> Option<Logged<'_>> {
    if ty != msg_type(NFULNL_MSG_PACKET) {
        return None;
    }
    let (head, attrs) = (body.get(..4)?, Attrs::new(body.get(4..)?));
    Some(Logged {
        family: head[0],
        group: u16::from_be_bytes([head[2], head[3]]),
        prefix: attrs.get(NFULA_PREFIX).map(|a| a.str()).unwrap_or_default(),
        seq: attrs.get(NFULA_SEQ).and_then(|a| a.u32()),
        payload: attrs.get(NFULA_PAYLOAD).map_or(&[], |a| a.value),
    })
}

/// What one [`Listener::recv`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Messages (handed to the callback), maybe none.
    Messages,
    /// Nothing within the receive timeout.
    Idle,
    /// The socket's buffer overflowed: the kernel dropped messages.
    Overrun,
}

/// A bound NFLOG group, in the network namespace of the opening thread.
pub struct Listener {
    sock: Socket<Netfilter>,
    rcvbuf: usize,
}

impl Listener {
    /// Binds `group` (EBUSY when another socket has it) and configures it;
    /// receives wake up at least every `wake` to let the caller look up.
    pub fn open(group: u16, wake: std::time::Duration) -> Result<Listener, EngineError> {
        let mut sock = Socket::<Netfilter>::open()?;
        let rcvbuf = sock.set_recv_buffer(RCVBUF)?;
        sock.set_recv_timeout(wake)?;
        for attrs in config_steps() {
            sock.request(
                |seq, buf| config_request(seq, group, buf, attrs),
                |_| Ok(()),
            )?;
        }
        Ok(Listener { sock, rcvbuf })
    }

    /// The socket's receive buffer, as the kernel set it.
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }

    /// Waits for the next datagram and hands each packet in it to `f`.
    pub fn recv(&mut self, mut f: impl FnMut(Logged<'_>)) -> Result<Received, EngineError> {
        let msgs = match self.sock.recv(false) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(Received::Idle),
            Err(e) if engine::is_timeout(&e) => return Ok(Received::Idle),
            Err(EngineError::Socket { source, .. })
                if source.raw_os_error() == Some(nix::errno::Errno::ENOBUFS as i32) =>
            {
                return Ok(Received::Overrun)
            }
            Err(e) => return Err(e),
        };
        for m in msgs {
            let m = m?;
            if let Some(p) = parse_packet(m.ty, &m.bytes[NLMSG_HDR_LEN..]) {
                f(p);
            }
        }
        Ok(Received::Messages)
    }
}

#[cfg(test)]
#[path = "nflog_tests.rs"]
mod tests;
