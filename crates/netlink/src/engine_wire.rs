//! Reading netlink datagrams: messages one by one, NLMSG_ERROR bodies
//! and their extended-ack text. Pure byte parsing, shared by every
//! protocol the engine speaks.

use super::{EngineError, Msg, NLMSGERR_ATTR_MSG, NLMSG_HDR_LEN, NLM_F_ACK_TLVS, NLM_F_CAPPED};

/// The messages of a datagram, in order; a malformed header ends it with
/// an error.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

/// Splits a datagram into messages.
pub fn messages(data: &[u8]) -> Messages<'_> {
    Messages { rest: data }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Msg<'a>, EngineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some(h) = self.rest.get(..NLMSG_HDR_LEN) else {
            self.rest = &[];
            return Some(Err(EngineError::Protocol(
                "truncated netlink header".into(),
            )));
        };
        let len = u32::from_ne_bytes(h[0..4].try_into().expect("4 bytes")) as usize;
        if len < NLMSG_HDR_LEN || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(EngineError::Protocol(format!(
                "bad netlink message length {len}"
            ))));
        }
        let m = Msg {
            ty: u16::from_ne_bytes(h[4..6].try_into().expect("2 bytes")),
            flags: u16::from_ne_bytes(h[6..8].try_into().expect("2 bytes")),
            seq: u32::from_ne_bytes(h[8..12].try_into().expect("4 bytes")),
            bytes: &self.rest[..len],
        };
        self.rest = self.rest.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(m))
    }
}

pub fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// The positive errno (0 for an ack) and extended-ack text of an
/// NLMSG_ERROR body.
pub fn parse_error(flags: u16, body: &[u8]) -> Option<(i32, Option<String>)> {
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

/// The NLMSGERR_ATTR_MSG text among extended-ack TLVs.
pub fn ext_ack(flags: u16, mut tlvs: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let v = &tlvs[4..len];
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            let text = String::from_utf8_lossy(&v[..end]).into_owned();
            return (!text.is_empty()).then_some(text);
        }
        tlvs = tlvs.get(align4(len)..).unwrap_or(&[]);
    }
    None
}
