//! The NETLINK_NETFILTER socket: sending a batch and collecting its acks,
//! single requests, and dumps, over the shared netlink engine
//! (`ferry_netlink::engine`: the socket, receive loop, timeout, dump
//! retries and extended-ack parsing).

use std::collections::BTreeMap;

use ferry_netlink::engine::{self, parse_error, Dumped, EngineError, NLMSG_ERROR, NLMSG_OVERRUN};
use nix::sys::socket::{setsockopt, sockopt};

use crate::error::{MessageError, NftError};
use crate::msg::{request, SealedBatch};
use crate::sys::*;

/// A blocking nfnetlink socket in the network namespace of the thread that
/// opened it.
pub struct NfSocket {
    sock: engine::Socket<engine::Netfilter>,
}

/// An engine error, with what was being done.
fn nft_err(op: &'static str, target: &str, e: EngineError) -> NftError {
    match e {
        EngineError::Socket { op, source } => NftError::Socket { op, source },
        EngineError::Kernel { errno, message } => NftError::Kernel {
            op,
            target: target.to_string(),
            errno,
            message,
        },
        EngineError::Protocol(detail) => NftError::protocol(op, target, detail),
    }
}

impl NfSocket {
    /// Opened with error texts and capped acks (an element list can be
    /// 60 KiB) asked for, and the engine's receive timeout.
    pub fn open() -> Result<NfSocket, NftError> {
        let sock = engine::Socket::open().map_err(|e| nft_err("open", "", e))?;
        Ok(NfSocket { sock })
    }

    /// `n` consecutive fresh sequence numbers; returns the first.
    pub fn reserve_seq(&mut self, n: u32) -> u32 {
        self.sock.reserve_seq(n)
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
        self.sock.send(bytes).map_err(|e| nft_err("send", "", e))
    }

    /// Sends a batch and checks every ack. The kernel processes a batch
    /// synchronously inside `sendmsg`, so all answers are queued by the
    /// time `send` returns; what is missing then never comes.
    pub fn send_batch(&mut self, table: &str, batch: &SealedBatch) -> Result<(), NftError> {
        // Room for every ack, each an skb of its own (best effort; a small
        // rcvbuf shows as ENOBUFS).
        let room = (batch.acked.len() * 2048).max(1 << 20);
        let _ = setsockopt(&self.sock, sockopt::RcvBufForce, &room);
        self.sock.used_seq_up_to(batch.end_seq); // later requests get fresh numbers
        self.send(&batch.bytes)?;
        let mut pending: BTreeMap<u32, &str> = batch
            .acked
            .iter()
            .map(|(seq, what)| (*seq, what.as_str()))
            .collect();
        let mut errors = Vec::new();
        let mut batch_error = false;
        while !pending.is_empty() && !batch_error {
            let received = self
                .sock
                .recv(true)
                .map_err(|e| nft_err("batch", table, e))?;
            let Some(msgs) = received else {
                let missing: Vec<&str> = pending.values().copied().collect();
                return Err(NftError::protocol(
                    "batch",
                    table,
                    format!("no answer for {}", missing.join(", ")),
                ));
            };
            for m in msgs {
                let m = m.map_err(|e| nft_err("batch", table, e))?;
                match m.ty {
                    NLMSG_ERROR => {
                        let (errno, message) = parse_error(m.flags, m.body()).ok_or_else(|| {
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
    pub fn get(
        &mut self,
        op: &'static str,
        target: &str,
        msg: u16,
        attrs: impl FnOnce(&mut crate::nla::Writer<'_>),
    ) -> Result<Vec<Vec<u8>>, NftError> {
        let mut out = Vec::new();
        self.sock
            .request(
                |seq, buf| *buf = request(msg, NLM_F_REQUEST | NLM_F_ACK, seq, attrs),
                |m| {
                    out.push(object_attrs(m.body())?.to_vec());
                    Ok(())
                },
            )
            .map_err(|e| nft_err(op, target, e))?;
        Ok(out)
    }

    /// A dump: the attributes of every object. One that the kernel kept
    /// marking as interrupted is an error: a ruleset read half before and
    /// half after a change is no answer.
    pub fn dump(
        &mut self,
        op: &'static str,
        target: &str,
        msg: u16,
        attrs: impl Fn(&mut crate::nla::Writer<'_>),
    ) -> Result<Vec<Vec<u8>>, NftError> {
        let mut out = Vec::new();
        let end = self
            .sock
            .dump(
                |seq, buf| *buf = request(msg, NLM_F_REQUEST | NLM_F_DUMP, seq, &attrs),
                &mut out,
                |m| Ok(Some(object_attrs(m.body())?.to_vec())),
            )
            .map_err(|e| nft_err(op, target, e))?;
        match end {
            Dumped::Consistent => Ok(out),
            Dumped::Interrupted => Err(NftError::protocol(
                op,
                target,
                "dump kept being interrupted by concurrent changes",
            )),
        }
    }
}

/// The attributes of an nf_tables object message (after the nfgenmsg).
fn object_attrs(body: &[u8]) -> Result<&[u8], EngineError> {
    body.get(NFGENMSG_LEN..)
        .ok_or_else(|| EngineError::Protocol("message shorter than nfgenmsg".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_their_context() {
        let e = nft_err(
            "GETTABLE",
            "inet ferry",
            EngineError::Kernel {
                errno: 2,
                message: Some("no such table".into()),
            },
        );
        assert_eq!(e.errno(), Some(2));
        assert!(e.to_string().starts_with("GETTABLE inet ferry: "), "{e}");
        assert!(e.to_string().ends_with("(no such table)"), "{e}");
        let p = nft_err(
            "GETSET",
            "inet ferry",
            EngineError::Protocol("short".into()),
        );
        assert!(
            matches!(p, NftError::Protocol { op: "GETSET", .. }),
            "{p:?}"
        );
        assert!(object_attrs(&[1, 2]).is_err());
        assert_eq!(object_attrs(&[1, 2, 3, 4, 5]).unwrap(), &[5]);
    }
}
