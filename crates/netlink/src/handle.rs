//! The rtnetlink handle: requests and dumps of `RouteNetlinkMessage`s over
//! the shared netlink engine ([`crate::engine`]), which owns the socket,
//! the receive loop, the timeout and the dump retries.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::engine::{self, EngineError, Msg};
use crate::error::{NetlinkError, Target};

/// A blocking rtnetlink handle bound to the network namespace of the thread
/// that created it (open it inside `ferry_netns::NetNs::run` to work on
/// another namespace). Requests take `&mut self`: one request in flight.
///
/// Every request carries `NLM_F_ACK` and a fresh sequence number; replies
/// with other sequence numbers are ignored.
#[derive(Debug)]
pub struct Handle {
    sock: engine::Socket<engine::Route>,
}

impl Handle {
    /// Opens a NETLINK_ROUTE socket in the calling thread's network
    /// namespace. The socket stays in that namespace for its lifetime.
    /// Extended acks, capped acks and kernel-side dump filtering (by
    /// table, ifindex) are asked for; older kernels simply lack some of
    /// them and results are filtered in user space as well.
    pub fn new() -> Result<Handle, NetlinkError> {
        let sock = engine::Socket::open()
            .map_err(|e| NetlinkError::from_engine("open", &Target::Dump("socket"), e))?;
        Ok(Handle { sock })
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
        let mut out = Vec::new();
        self.sock
            .request(
                |seq, buf| serialize(buf, msg, seq, NLM_F_REQUEST | NLM_F_ACK | flags),
                |m| {
                    if let Some(inner) = decode(m)? {
                        out.push(inner);
                    }
                    Ok(())
                },
            )
            .map_err(|e| NetlinkError::from_engine(op, target, e))?;
        Ok(out)
    }

    /// Dumps (`NLM_F_DUMP`) until NLMSG_DONE. A dump the kernel kept
    /// marking as interrupted (see [`engine::DUMP_ATTEMPTS`]) returns what
    /// its last attempt delivered.
    pub(crate) fn dump(
        &mut self,
        op: &'static str,
        target: &Target,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let mut out = Vec::new();
        self.sock
            .dump(
                |seq, buf| serialize(buf, msg.clone(), seq, NLM_F_REQUEST | NLM_F_DUMP),
                &mut out,
                decode,
            )
            .map_err(|e| NetlinkError::from_engine(op, target, e))?;
        Ok(out)
    }
}

fn serialize(buf: &mut Vec<u8>, msg: RouteNetlinkMessage, seq: u32, flags: u16) {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    buf.resize(nl.buffer_len(), 0);
    nl.serialize(buf);
}

/// An rtnetlink object of a reply (`None` for anything else).
fn decode(m: Msg<'_>) -> Result<Option<RouteNetlinkMessage>, EngineError> {
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(m.bytes)
        .map_err(|e| EngineError::Protocol(e.to_string()))?;
    Ok(match msg.payload {
        NetlinkPayload::InnerMessage(inner) => Some(inner),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::LinkMessage;

    #[test]
    fn serialized_requests_decode_back() {
        let mut msg = LinkMessage::default();
        msg.header.index = 7;
        let mut buf = Vec::new();
        serialize(
            &mut buf,
            RouteNetlinkMessage::GetLink(msg.clone()),
            42,
            NLM_F_REQUEST,
        );
        let m = engine::messages(&buf).next().unwrap().unwrap();
        assert_eq!(
            (m.seq, m.flags, m.bytes.len()),
            (42, NLM_F_REQUEST, buf.len())
        );
        assert_eq!(decode(m).unwrap(), Some(RouteNetlinkMessage::GetLink(msg)));
    }
}
