//! Chains, named counters, sets and maps of a [`Ruleset`], and their
//! elements, encoded attribute for attribute as nft 1.0.6 encodes them
//! (`objects_tests.rs` compares bytes with `nft --debug=mnl` captures).

use std::net::IpAddr;

use ferry_netpol::ir::{Chain, Element, SetKey};
use ferry_netpol::ranges::Family;
use ferry_nft::raw::{interval_elements, udata, Batch, Elem, IpFamily, Range, Writer};

use crate::sys::*;

/// `chain NAME { [type filter hook forward priority filter + N; policy accept;] [comment ".."] }`
pub(crate) fn new_chain(b: &mut Batch, table: &str, c: &Chain) {
    b.push(
        NFT_MSG_NEWCHAIN,
        NLM_F_CREATE,
        format!("NEWCHAIN {}", c.name),
        |w| {
            w.str(NFTA_CHAIN_TABLE, table);
            w.str(NFTA_CHAIN_NAME, &c.name);
            if let Some(base) = c.base {
                w.str(NFTA_CHAIN_TYPE, "filter");
                w.u32(NFTA_CHAIN_POLICY, NF_ACCEPT);
                w.nest(NFTA_CHAIN_HOOK, |w| {
                    w.u32(NFTA_HOOK_HOOKNUM, NF_INET_FORWARD);
                    w.u32(NFTA_HOOK_PRIORITY, base.priority as u32);
                });
            }
            if let Some(comment) = &c.comment {
                w.put(NFTA_CHAIN_USERDATA, &comment_tlv(comment));
            }
        },
    );
}

/// The libnftnl comment TLV (type 0, NUL-terminated), as rules and chains
/// carry it in their userdata; nft cuts comments at 128 bytes.
pub(crate) fn comment_tlv(comment: &str) -> Vec<u8> {
    let text = &comment.as_bytes()[..comment.len().min(127)];
    let mut v = vec![NFTNL_UDATA_COMMENT, (text.len() + 1) as u8];
    v.extend_from_slice(text);
    v.push(0);
    v
}

/// `counter NAME { packets 0 bytes 0 }`
pub(crate) fn new_counter(b: &mut Batch, table: &str, name: &str) {
    b.push(
        NFT_MSG_NEWOBJ,
        NLM_F_CREATE,
        format!("NEWOBJ counter {name}"),
        |w| {
            w.str(NFTA_OBJ_TABLE, table);
            w.str(NFTA_OBJ_NAME, name);
            w.u32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
            w.nest(NFTA_OBJ_DATA, |w| {
                w.put(NFTA_COUNTER_BYTES, &0u64.to_be_bytes());
                w.put(NFTA_COUNTER_PACKETS, &0u64.to_be_bytes());
            });
        },
    );
}

fn addr_type(f: Family) -> u32 {
    match f {
        Family::V4 => NFT_TYPE_IPADDR,
        Family::V6 => NFT_TYPE_IP6ADDR,
    }
}

pub(crate) fn addr_len(f: Family) -> u32 {
    match f {
        Family::V4 => 4,
        Family::V6 => 16,
    }
}

/// A concatenation's key: each field rounded up to 4 bytes.
fn concat(types: &[u32]) -> u32 {
    types.iter().fold(0, |acc, t| (acc << NFT_TYPE_BITS) | t)
}

/// nft's set userdata for a concatenation declared by type.
const CONCAT_UDATA: [u8; 16] = [
    NFTNL_UDATA_SET_KEYBYTEORDER,
    4,
    0,
    0,
    0,
    0,
    NFTNL_UDATA_SET_KEY_TYPEOF,
    8,
    0,
    4,
    13,
    0,
    0,
    0,
    1,
    0,
];

/// The attributes every NEWSET starts with, in nft's order.
pub(crate) fn set_header(
    w: &mut Writer<'_>,
    table: &str,
    name: &str,
    flags: u32,
    key_type: u32,
    key_len: u32,
) {
    w.str(NFTA_SET_TABLE, table);
    w.str(NFTA_SET_NAME, name);
    w.u32(NFTA_SET_FLAGS, flags);
    w.u32(NFTA_SET_KEY_TYPE, key_type);
    w.u32(NFTA_SET_KEY_LEN, key_len);
}

/// `set|map NAME { type ..; [flags interval;] }`
pub(crate) fn new_set(b: &mut Batch, table: &str, name: &str, id: u32, key: SetKey) {
    let f = key.family();
    let (flags, key_type, key_len) = match key {
        SetKey::Addrs(_) => (NFT_SET_INTERVAL, addr_type(f), addr_len(f)),
        SetKey::AddrPort(_) => (
            0,
            concat(&[addr_type(f), NFT_TYPE_INET_SERVICE]),
            addr_len(f) + 4,
        ),
        SetKey::AddrPair(_) => (0, concat(&[addr_type(f), addr_type(f)]), addr_len(f) * 2),
        SetKey::Verdict(_) => (NFT_SET_MAP, addr_type(f), addr_len(f)),
    };
    b.push(
        NFT_MSG_NEWSET,
        NLM_F_CREATE,
        format!("NEWSET {name}"),
        |w| {
            set_header(w, table, name, flags, key_type, key_len);
            if let SetKey::Verdict(_) = key {
                w.u32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
                w.u32(NFTA_SET_DATA_LEN, 0);
            }
            w.u32(NFTA_SET_ID, id);
            let ud = match key {
                SetKey::Addrs(_) => {
                    udata(NFTNL_UDATA_SET_KEYBYTEORDER, BYTEORDER_BIG_ENDIAN).to_vec()
                }
                SetKey::AddrPort(_) | SetKey::AddrPair(_) => CONCAT_UDATA.to_vec(),
                SetKey::Verdict(_) => [
                    udata(NFTNL_UDATA_SET_KEYBYTEORDER, BYTEORDER_BIG_ENDIAN),
                    udata(NFTNL_UDATA_SET_DATABYTEORDER, BYTEORDER_INVALID),
                    udata(NFTNL_UDATA_SET_DATA_INTERVAL, 0),
                ]
                .concat(),
            };
            w.put(NFTA_SET_USERDATA, &ud);
        },
    );
}

/// One element (an NFTA_LIST_ELEM nest): key, flags, verdict data.
pub(crate) fn encode(key: &[u8], end: bool, open: bool, jump: Option<&str>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32 + key.len());
    Writer::new(&mut buf).nest(NFTA_LIST_ELEM, |w| {
        if end {
            w.u32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        }
        w.nest(NFTA_SET_ELEM_KEY, |w| w.put(NFTA_DATA_VALUE, key));
        if let Some(chain) = jump {
            w.nest(NFTA_SET_ELEM_DATA, |w| {
                w.nest(NFTA_DATA_VERDICT, |w| {
                    w.u32(NFTA_VERDICT_CODE, NFT_JUMP);
                    w.str(NFTA_VERDICT_CHAIN, chain);
                })
            });
        }
        if open {
            w.put(
                NFTA_SET_ELEM_USERDATA,
                &udata(NFTNL_UDATA_SET_ELEM_FLAGS, NFTNL_SET_ELEM_F_INTERVAL_OPEN),
            );
        }
    });
    buf
}

pub(crate) fn addr_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn nft_family(f: Family) -> IpFamily {
    match f {
        Family::V4 => IpFamily::V4,
        Family::V6 => IpFamily::V6,
    }
}

fn int(a: &IpAddr) -> u128 {
    ferry_netpol::ranges::to_int(a)
}

/// Why an element cannot go into a set.
pub(crate) fn check(key: SetKey, e: &Element) -> Result<(), String> {
    let fam = |a: &IpAddr| Family::of(a) == key.family();
    let ok = match (key, e) {
        (SetKey::Addrs(_), Element::Range { start, end }) => {
            fam(start) && fam(end) && int(start) <= int(end)
        }
        (SetKey::AddrPort(_), Element::AddrPort(a, _)) => fam(a),
        (SetKey::AddrPair(_), Element::AddrPair(a, b)) => fam(a) && fam(b),
        (SetKey::Verdict(_), Element::Jump(a, _)) => fam(a),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("element {e:?} does not fit a set of {key:?}"))
    }
}

/// The encoded elements for `elems` of a set keyed by `key`. `declared`:
/// the set is created in the same batch (nft then also sends the end
/// element at address 0 in front of an interval set's first range).
/// `delete`: keys only (a map element is deleted by its key).
pub(crate) fn elements<'a>(
    key: SetKey,
    elems: impl IntoIterator<Item = &'a Element>,
    declared: bool,
    delete: bool,
) -> Vec<Vec<u8>> {
    let family = key.family();
    let mut out = Vec::new();
    let mut ranges = Vec::new();
    for e in elems {
        match e {
            Element::Range { start, end } => ranges.push(Range {
                start: int(start),
                end: int(end),
            }),
            Element::AddrPort(a, p) => {
                let mut k = addr_bytes(a);
                k.extend_from_slice(&p.to_be_bytes());
                k.extend_from_slice(&[0, 0]);
                out.push(encode(&k, false, false, None));
            }
            Element::AddrPair(a, b) => {
                let k = [addr_bytes(a), addr_bytes(b)].concat();
                out.push(encode(&k, false, false, None));
            }
            Element::Jump(a, chain) => {
                let jump = (!delete).then_some(chain.as_str());
                out.push(encode(&addr_bytes(a), false, false, jump));
            }
        }
    }
    if !ranges.is_empty() {
        ranges.sort();
        let fam = nft_family(family);
        let keys = interval_elements(fam, &ranges);
        let skip_zero_end = |e: &Elem| !declared && e.end && e.key == 0;
        out.extend(
            keys.iter()
                .filter(|e| !skip_zero_end(e))
                .map(|e| encode(&ferry_nft::raw::key_bytes(fam, e.key), e.end, e.open, None)),
        );
    }
    out
}
