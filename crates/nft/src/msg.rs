//! nfnetlink message framing and the nf_tables objects ferry writes, encoded
//! attribute for attribute as nft 1.0.6 encodes them (the golden tests
//! compare bytes with `nft --debug=mnl` output).

use crate::cidr::{key_bytes, Elem, IpFamily};
use crate::nla::Writer;
use crate::sys::*;

/// Largest element list put in one NEWSETELEM message: the list is one
/// attribute, and attribute lengths are 16-bit. (It also keeps the entry
/// numbers below far below the 14-bit attribute type limit.)
const MAX_ELEMENTS_ATTR: usize = 60 * 1024;

/// Appends one netlink message (header + nfgenmsg + attributes from `f`).
fn message(
    buf: &mut Vec<u8>,
    ty: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    f: impl FnOnce(&mut Writer<'_>),
) {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    buf.extend_from_slice(&[family, NFNETLINK_V0]);
    buf.extend_from_slice(&res_id.to_be_bytes());
    f(&mut Writer::new(buf));
    let len = u32::try_from(buf.len() - start).expect("netlink message over 4 GiB");
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// A single (non-batch) request, e.g. a GET or a dump.
pub(crate) fn request(ty: u16, flags: u16, seq: u32, f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    message(&mut buf, nft_type(ty), flags, seq, NFPROTO_INET, 0, f);
    buf
}

/// An nfnetlink transaction: BATCH_BEGIN, messages that each ask for an
/// ACK, BATCH_END. The kernel applies all of it or nothing.
pub struct Batch {
    buf: Vec<u8>,
    next_seq: u32,
    begin_seq: u32,
    /// Sequence number and description of every message that is acked.
    acked: Vec<(u32, String)>,
}

/// A finished batch, ready to send in one datagram.
pub struct SealedBatch {
    pub bytes: Vec<u8>,
    pub(crate) begin_seq: u32,
    /// The sequence number of BATCH_END, the batch's last.
    pub(crate) end_seq: u32,
    pub(crate) acked: Vec<(u32, String)>,
}

impl Batch {
    pub fn new(first_seq: u32) -> Batch {
        let mut buf = Vec::with_capacity(4096);
        message(
            &mut buf,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            first_seq,
            0,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        Batch {
            buf,
            next_seq: first_seq.wrapping_add(1),
            begin_seq: first_seq,
            acked: Vec::new(),
        }
    }

    /// Adds an nf_tables message (family inet) with NLM_F_REQUEST |
    /// NLM_F_ACK | `flags`; `what` names it in errors.
    pub fn push(&mut self, msg: u16, flags: u16, what: String, f: impl FnOnce(&mut Writer<'_>)) {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        let flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        message(&mut self.buf, nft_type(msg), flags, seq, NFPROTO_INET, 0, f);
        self.acked.push((seq, what));
    }

    pub fn seal(mut self) -> SealedBatch {
        let seq = self.next_seq;
        message(
            &mut self.buf,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        SealedBatch {
            bytes: self.buf,
            begin_seq: self.begin_seq,
            end_seq: seq,
            acked: self.acked,
        }
    }
}

pub fn new_table(b: &mut Batch, table: &str) {
    b.push(
        NFT_MSG_NEWTABLE,
        NLM_F_CREATE,
        format!("NEWTABLE {table}"),
        |w| {
            w.str(NFTA_TABLE_NAME, table);
            w.u32(NFTA_TABLE_FLAGS, 0);
        },
    );
}

pub fn del_table(b: &mut Batch, table: &str) {
    b.push(NFT_MSG_DELTABLE, 0, format!("DELTABLE {table}"), |w| {
        w.str(NFTA_TABLE_NAME, table);
    });
}

/// `chain NAME { type nat hook postrouting priority srcnat; policy accept; }`
pub(crate) fn new_nat_postrouting_chain(b: &mut Batch, table: &str, chain: &str) {
    b.push(
        NFT_MSG_NEWCHAIN,
        NLM_F_CREATE,
        format!("NEWCHAIN {chain}"),
        |w| {
            w.str(NFTA_CHAIN_TABLE, table);
            w.str(NFTA_CHAIN_NAME, chain);
            w.str(NFTA_CHAIN_TYPE, "nat");
            w.u32(NFTA_CHAIN_POLICY, NF_ACCEPT);
            w.nest(NFTA_CHAIN_HOOK, |w| {
                w.u32(NFTA_HOOK_HOOKNUM, NF_INET_POST_ROUTING);
                w.u32(NFTA_HOOK_PRIORITY, PRIORITY_SRCNAT as u32);
            });
        },
    );
}

/// `set NAME { type ipv4_addr|ipv6_addr; flags interval; }`
pub(crate) fn new_interval_set(b: &mut Batch, table: &str, set: &str, id: u32, family: IpFamily) {
    let key_type = match family {
        IpFamily::V4 => NFT_TYPE_IPADDR,
        IpFamily::V6 => NFT_TYPE_IP6ADDR,
    };
    b.push(NFT_MSG_NEWSET, NLM_F_CREATE, format!("NEWSET {set}"), |w| {
        w.str(NFTA_SET_TABLE, table);
        w.str(NFTA_SET_NAME, set);
        w.u32(NFTA_SET_FLAGS, NFT_SET_INTERVAL);
        w.u32(NFTA_SET_KEY_TYPE, key_type);
        w.u32(NFTA_SET_KEY_LEN, family.key_len() as u32);
        w.u32(NFTA_SET_ID, id);
        w.put(
            NFTA_SET_USERDATA,
            &udata(NFTNL_UDATA_SET_KEYBYTEORDER, BYTEORDER_BIG_ENDIAN),
        );
    });
}

/// A libnftnl userdata TLV holding a host-order u32.
pub fn udata(ty: u8, value: u32) -> [u8; 6] {
    let v = value.to_ne_bytes();
    [ty, 4, v[0], v[1], v[2], v[3]]
}

/// One element, encoded as an NFTA_LIST_ELEM.
pub fn encode_elem(family: IpFamily, e: &Elem) -> Vec<u8> {
    let mut buf = Vec::with_capacity(48);
    Writer::new(&mut buf).nest(NFTA_LIST_ELEM, |w| {
        if e.end {
            w.u32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        }
        w.nest(NFTA_SET_ELEM_KEY, |w| {
            w.put(NFTA_DATA_VALUE, &key_bytes(family, e.key));
        });
        if e.open {
            w.put(
                NFTA_SET_ELEM_USERDATA,
                &udata(NFTNL_UDATA_SET_ELEM_FLAGS, NFTNL_SET_ELEM_F_INTERVAL_OPEN),
            );
        }
    });
    buf
}

/// NEWSETELEM messages adding `elems`, as many as the 16-bit attribute
/// length needs (all in the same batch, so still one transaction).
pub(crate) fn new_set_elems(
    b: &mut Batch,
    table: &str,
    set: &str,
    id: u32,
    family: IpFamily,
    elems: &[Elem],
) {
    let encoded: Vec<Vec<u8>> = elems.iter().map(|e| encode_elem(family, e)).collect();
    set_elems(b, NFT_MSG_NEWSETELEM, table, set, Some(id), &encoded);
}

/// NEWSETELEM (or DELSETELEM) messages carrying `encoded` (each one
/// NFTA_LIST_ELEM nest), split in as many messages as the 16-bit
/// attribute length needs (all in the same batch: still one transaction).
/// `id` is the NFTA_SET_ID of a set created in the same batch.
pub fn set_elems(
    b: &mut Batch,
    msg: u16,
    table: &str,
    set: &str,
    id: Option<u32>,
    encoded: &[Vec<u8>],
) {
    let mut chunks: Vec<&[Vec<u8>]> = Vec::new();
    let (mut from, mut size) = (0, 0);
    for (i, e) in encoded.iter().enumerate() {
        if size + e.len() > MAX_ELEMENTS_ATTR {
            chunks.push(&encoded[from..i]);
            (from, size) = (i, 0);
        }
        size += e.len();
    }
    if from < encoded.len() {
        chunks.push(&encoded[from..]);
    }
    let op = if msg == NFT_MSG_NEWSETELEM {
        "NEWSETELEM"
    } else {
        "DELSETELEM"
    };
    let flags = if msg == NFT_MSG_NEWSETELEM {
        NLM_F_CREATE
    } else {
        0
    };
    let total = chunks.len();
    for (n, chunk) in chunks.into_iter().enumerate() {
        let what = if total == 1 {
            format!("{op} {set} ({} elements)", chunk.len())
        } else {
            format!("{op} {set} (part {} of {total})", n + 1)
        };
        b.push(msg, flags, what, |w| {
            w.str(NFTA_SET_ELEM_LIST_TABLE, table);
            w.str(NFTA_SET_ELEM_LIST_SET, set);
            if let Some(id) = id {
                w.u32(NFTA_SET_ELEM_LIST_SET_ID, id);
            }
            w.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |w| {
                // libnftnl numbers the list entries 1, 2, 3, ... (the
                // kernel ignores the type); do the same.
                for (i, e) in chunk.iter().enumerate() {
                    let mut e = e.clone();
                    let ty = NLA_F_NESTED | (i as u16 + 1);
                    e[2..4].copy_from_slice(&ty.to_ne_bytes());
                    w.raw(&e);
                }
            });
        });
    }
}

/// Header fields matched by a masquerade rule, per family.
struct FamilyMatch {
    nfproto: u8,
    saddr_offset: u32,
    daddr_offset: u32,
}

fn family_match(family: IpFamily) -> FamilyMatch {
    match family {
        IpFamily::V4 => FamilyMatch {
            nfproto: NFPROTO_IPV4,
            saddr_offset: 12,
            daddr_offset: 16,
        },
        IpFamily::V6 => FamilyMatch {
            nfproto: NFPROTO_IPV6,
            saddr_offset: 8,
            daddr_offset: 24,
        },
    }
}

/// `oifname IF ip[6] saddr @SET ip[6] daddr != @SET counter masquerade`
pub(crate) fn new_masquerade_rule(
    b: &mut Batch,
    table: &str,
    chain: &str,
    family: IpFamily,
    ifname: &str,
    set: &str,
    set_id: u32,
) {
    let m = family_match(family);
    let len = family.key_len() as u32;
    let mut ifname_data = [0u8; IFNAMSIZ];
    ifname_data[..ifname.len()].copy_from_slice(ifname.as_bytes());
    let what = format!("NEWRULE {chain} ({family:?} masquerade)");
    b.push(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, what, |w| {
        w.str(NFTA_RULE_TABLE, table);
        w.str(NFTA_RULE_CHAIN, chain);
        w.nest(NFTA_RULE_EXPRESSIONS, |w| {
            meta(w, NFT_META_OIFNAME);
            cmp_eq(w, &ifname_data);
            meta(w, NFT_META_NFPROTO);
            cmp_eq(w, &[m.nfproto]);
            payload(w, m.saddr_offset, len);
            lookup(w, set, set_id, false);
            payload(w, m.daddr_offset, len);
            lookup(w, set, set_id, true);
            expr(w, "counter", |_| {});
            expr(w, "masq", |_| {});
        });
    });
}

/// One expression (`NFTA_LIST_ELEM` { name, data }) of a rule.
pub fn expr(w: &mut Writer<'_>, name: &str, data: impl FnOnce(&mut Writer<'_>)) {
    w.nest(NFTA_LIST_ELEM, |w| {
        w.str(NFTA_EXPR_NAME, name);
        w.nest(NFTA_EXPR_DATA, data);
    });
}

fn meta(w: &mut Writer<'_>, key: u32) {
    expr(w, "meta", |w| {
        w.u32(NFTA_META_KEY, key);
        w.u32(NFTA_META_DREG, NFT_REG_1);
    });
}

fn cmp_eq(w: &mut Writer<'_>, data: &[u8]) {
    expr(w, "cmp", |w| {
        w.u32(NFTA_CMP_SREG, NFT_REG_1);
        w.u32(NFTA_CMP_OP, NFT_CMP_EQ);
        w.nest(NFTA_CMP_DATA, |w| w.put(NFTA_DATA_VALUE, data));
    });
}

fn payload(w: &mut Writer<'_>, offset: u32, len: u32) {
    expr(w, "payload", |w| {
        w.u32(NFTA_PAYLOAD_DREG, NFT_REG_1);
        w.u32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
        w.u32(NFTA_PAYLOAD_OFFSET, offset);
        w.u32(NFTA_PAYLOAD_LEN, len);
    });
}

fn lookup(w: &mut Writer<'_>, set: &str, set_id: u32, invert: bool) {
    expr(w, "lookup", |w| {
        w.u32(NFTA_LOOKUP_SREG, NFT_REG_1);
        w.str(NFTA_LOOKUP_SET, set);
        w.u32(NFTA_LOOKUP_SET_ID, set_id);
        if invert {
            w.u32(NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
        }
    });
}

#[cfg(test)]
#[path = "msg_tests.rs"]
mod tests;
