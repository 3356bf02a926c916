//! Rules: every [`Match`], named counters, verdicts (and the `log`
//! statement) and comments, encoded
//! as nft 1.0.6 encodes them (registers, the `meta nfproto` / `meta
//! l4proto` guards nft adds in an inet table, anonymous port sets).

use std::collections::BTreeMap;

use ferry_netpol::ir::{Field, Match, PortRange, Rule, Verdict};
use ferry_netpol::ranges::Family;
use ferry_netpol::Protocol;
use ferry_nft::raw::{expr, set_elems, udata, Batch, Writer};

use crate::objects::{addr_len, comment_tlv, encode, set_header};
use crate::sys::*;

/// Set IDs of the batch: named sets by name, the next free one for
/// anonymous sets (nft numbers them all in one sequence from 1).
pub(crate) struct SetIds {
    pub(crate) named: BTreeMap<String, u32>,
    pub(crate) next: u32,
}

/// What the rule has checked so far (nft adds a guard only once).
#[derive(Default)]
struct Guards {
    nfproto: Option<Family>,
    l4proto: Option<Protocol>,
}

/// `... [counter name ".."] verdict [comment ".."]`, appended to `chain`;
/// anonymous port sets it needs go into the batch first.
pub(crate) fn new_rule(b: &mut Batch, table: &str, chain: &str, r: &Rule, ids: &mut SetIds) {
    let mut anon = Vec::new();
    let mut exprs = Vec::with_capacity(256);
    {
        let mut w = Writer::new(&mut exprs);
        let mut g = Guards::default();
        for m in &r.matches {
            matches(&mut w, m, &mut g, ids, &mut anon);
        }
        for c in &r.counters {
            expr(&mut w, "objref", |w| {
                w.u32(NFTA_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
                w.put(NFTA_OBJREF_IMM_NAME, c.as_bytes());
            });
        }
        verdict(&mut w, &r.verdict, &mut g, ids);
    }
    for (id, protocol, ports) in anon {
        new_port_set(b, table, id, protocol, &ports);
    }
    let what = format!("NEWRULE {chain} ({})", ferry_netpol::render::rule(r));
    b.push(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, what, |w| {
        w.str(NFTA_RULE_TABLE, table);
        w.str(NFTA_RULE_CHAIN, chain);
        w.nest(NFTA_RULE_EXPRESSIONS, |w| w.raw(&exprs));
        if let Some(c) = &r.comment {
            w.put(NFTA_RULE_USERDATA, &comment_tlv(c));
        }
    });
}

type Anon = Vec<(u32, Protocol, Vec<PortRange>)>;

fn matches(w: &mut Writer<'_>, m: &Match, g: &mut Guards, ids: &mut SetIds, anon: &mut Anon) {
    match m {
        Match::CtEstablished => {
            expr(w, "ct", |w| {
                w.u32(NFTA_CT_KEY, NFT_CT_STATE);
                w.u32(NFTA_CT_DREG, NFT_REG_1);
            });
            expr(w, "bitwise", |w| {
                w.u32(NFTA_BITWISE_SREG, NFT_REG_1);
                w.u32(NFTA_BITWISE_DREG, NFT_REG_1);
                w.u32(NFTA_BITWISE_LEN, 4);
                let mask = CT_STATE_ESTABLISHED_RELATED.to_ne_bytes();
                w.nest(NFTA_BITWISE_MASK, |w| w.put(NFTA_DATA_VALUE, &mask));
                w.nest(NFTA_BITWISE_XOR, |w| w.put(NFTA_DATA_VALUE, &[0; 4]));
            });
            cmp(w, NFT_CMP_NEQ, &[0; 4]);
        }
        Match::FromNode => {
            expr(w, "fib", |w| {
                w.u32(NFTA_FIB_FLAGS, NFTA_FIB_F_SADDR);
                w.u32(NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
                w.u32(NFTA_FIB_DREG, NFT_REG_1);
            });
            cmp(w, NFT_CMP_EQ, &RTN_LOCAL.to_ne_bytes());
        }
        Match::AddrIn { family, field, set } => {
            nfproto(w, g, *family);
            addr(w, *family, *field, NFT_REG_1);
            lookup(w, set, ids, None);
        }
        Match::PairIn { family, set } => {
            nfproto(w, g, *family);
            addr(w, *family, Field::Saddr, NFT_REG_1);
            addr(w, *family, Field::Daddr, second_reg(*family));
            lookup(w, set, ids, None);
        }
        Match::AddrPortIn {
            family,
            protocol,
            set,
        } => {
            nfproto(w, g, *family);
            l4proto(w, g, *protocol);
            addr(w, *family, Field::Daddr, NFT_REG_1);
            dport(w, second_reg(*family));
            lookup(w, set, ids, None);
        }
        Match::Limit { rate, burst } => {
            expr(w, "limit", |w| {
                w.put(NFTA_LIMIT_RATE, &u64::from(*rate).to_be_bytes());
                // per second
                w.put(NFTA_LIMIT_UNIT, &1u64.to_be_bytes());
                w.u32(NFTA_LIMIT_BURST, *burst);
                w.u32(NFTA_LIMIT_TYPE, NFT_LIMIT_PKTS);
                w.u32(NFTA_LIMIT_FLAGS, 0);
            });
        }
        Match::Proto(p) => {
            meta(w, NFT_META_L4PROTO);
            cmp(w, NFT_CMP_EQ, &[ip_proto(*p)]);
            g.l4proto = Some(*p);
        }
        Match::Ports { protocol, ports } => {
            l4proto(w, g, *protocol);
            dport(w, NFT_REG_1);
            match ports.as_slice() {
                [p] if p.start == p.end => cmp(w, NFT_CMP_EQ, &p.start.to_be_bytes()),
                [p] => {
                    cmp(w, NFT_CMP_GTE, &p.start.to_be_bytes());
                    cmp(w, NFT_CMP_LTE, &p.end.to_be_bytes());
                }
                _ => {
                    let id = ids.next;
                    ids.next += 1;
                    expr(w, "lookup", |w| {
                        w.u32(NFTA_LOOKUP_SREG, NFT_REG_1);
                        w.str(NFTA_LOOKUP_SET, ANON_SET);
                        w.u32(NFTA_LOOKUP_SET_ID, id);
                    });
                    anon.push((id, *protocol, ports.clone()));
                }
            }
        }
    }
}

/// The name nft gives anonymous sets; the kernel numbers them.
const ANON_SET: &str = "__set%d";

fn verdict(w: &mut Writer<'_>, v: &Verdict, g: &mut Guards, ids: &mut SetIds) {
    let (code, chain) = match v {
        Verdict::Continue => return,
        Verdict::Accept => (NF_ACCEPT, None),
        Verdict::Drop => (NF_DROP, None),
        Verdict::Jump(c) => (NFT_JUMP, Some(c.as_str())),
        Verdict::Vmap { family, field, map } => {
            nfproto(w, g, *family);
            addr(w, *family, *field, NFT_REG_1);
            lookup(w, map, ids, Some(NFT_REG_VERDICT));
            return;
        }
        Verdict::Log { prefix, group } => {
            expr(w, "log", |w| {
                w.str(NFTA_LOG_PREFIX, prefix);
                w.put(NFTA_LOG_GROUP, &group.to_be_bytes());
            });
            return;
        }
    };
    expr(w, "immediate", |w| {
        w.u32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        w.nest(NFTA_IMMEDIATE_DATA, |w| {
            w.nest(NFTA_DATA_VERDICT, |w| {
                w.u32(NFTA_VERDICT_CODE, code);
                if let Some(c) = chain {
                    w.str(NFTA_VERDICT_CHAIN, c);
                }
            })
        });
    });
}

/// Where the second field of a concatenation goes: right after a 4-byte
/// address in the 32-bit registers, or the next 16-byte register.
fn second_reg(f: Family) -> u32 {
    match f {
        Family::V4 => NFT_REG32_01,
        Family::V6 => NFT_REG_2,
    }
}

fn ip_proto(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => IPPROTO_TCP,
        Protocol::Udp => IPPROTO_UDP,
        Protocol::Sctp => IPPROTO_SCTP,
    }
}

fn nfproto(w: &mut Writer<'_>, g: &mut Guards, f: Family) {
    if g.nfproto == Some(f) {
        return;
    }
    meta(w, NFT_META_NFPROTO);
    let proto = match f {
        Family::V4 => NFPROTO_IPV4,
        Family::V6 => NFPROTO_IPV6,
    };
    cmp(w, NFT_CMP_EQ, &[proto]);
    g.nfproto = Some(f);
}

fn l4proto(w: &mut Writer<'_>, g: &mut Guards, p: Protocol) {
    if g.l4proto == Some(p) {
        return;
    }
    meta(w, NFT_META_L4PROTO);
    cmp(w, NFT_CMP_EQ, &[ip_proto(p)]);
    g.l4proto = Some(p);
}

fn meta(w: &mut Writer<'_>, key: u32) {
    expr(w, "meta", |w| {
        w.u32(NFTA_META_KEY, key);
        w.u32(NFTA_META_DREG, NFT_REG_1);
    });
}

fn cmp(w: &mut Writer<'_>, op: u32, data: &[u8]) {
    expr(w, "cmp", |w| {
        w.u32(NFTA_CMP_SREG, NFT_REG_1);
        w.u32(NFTA_CMP_OP, op);
        w.nest(NFTA_CMP_DATA, |w| w.put(NFTA_DATA_VALUE, data));
    });
}

fn payload(w: &mut Writer<'_>, dreg: u32, base: u32, offset: u32, len: u32) {
    expr(w, "payload", |w| {
        w.u32(NFTA_PAYLOAD_DREG, dreg);
        w.u32(NFTA_PAYLOAD_BASE, base);
        w.u32(NFTA_PAYLOAD_OFFSET, offset);
        w.u32(NFTA_PAYLOAD_LEN, len);
    });
}

fn addr(w: &mut Writer<'_>, f: Family, field: Field, dreg: u32) {
    let offset = match (f, field) {
        (Family::V4, Field::Saddr) => 12,
        (Family::V4, Field::Daddr) => 16,
        (Family::V6, Field::Saddr) => 8,
        (Family::V6, Field::Daddr) => 24,
    };
    payload(w, dreg, NFT_PAYLOAD_NETWORK_HEADER, offset, addr_len(f));
}

/// The destination port: the same 2 bytes in TCP, UDP and SCTP headers.
fn dport(w: &mut Writer<'_>, dreg: u32) {
    payload(w, dreg, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
}

fn lookup(w: &mut Writer<'_>, set: &str, ids: &SetIds, dreg: Option<u32>) {
    let id = ids.named.get(set).copied().unwrap_or(0);
    expr(w, "lookup", |w| {
        w.u32(NFTA_LOOKUP_SREG, NFT_REG_1);
        if let Some(d) = dreg {
            w.u32(NFTA_LOOKUP_DREG, d);
        }
        w.str(NFTA_LOOKUP_SET, set);
        w.u32(NFTA_LOOKUP_SET_ID, id);
    });
}

/// `{ 80, 8000-9000 }`: a constant anonymous set of `inet_service`,
/// intervals when a range is in it, and its elements.
fn new_port_set(b: &mut Batch, table: &str, id: u32, p: Protocol, ports: &[PortRange]) {
    let interval = ports.iter().any(|r| r.start != r.end);
    let elems = port_elements(ports, interval);
    let desc = match p {
        Protocol::Tcp => PROTO_DESC_TCP,
        Protocol::Udp => PROTO_DESC_UDP,
        Protocol::Sctp => PROTO_DESC_SCTP,
    };
    let mut ud = udata(NFTNL_UDATA_SET_KEYBYTEORDER, BYTEORDER_BIG_ENDIAN).to_vec();
    if interval {
        ud.extend_from_slice(&udata(NFTNL_UDATA_SET_MERGE_ELEMENTS, 1));
    }
    // typeof: payload expression (7) { protocol description, field dport (2) }
    ud.extend_from_slice(&[NFTNL_UDATA_SET_KEY_TYPEOF, 20, 0, 4]);
    ud.extend_from_slice(&7u32.to_ne_bytes());
    ud.extend_from_slice(&[1, 12, 0, 4]);
    ud.extend_from_slice(&desc.to_ne_bytes());
    ud.extend_from_slice(&[1, 4]);
    ud.extend_from_slice(&2u32.to_ne_bytes());
    // nft's size counts an open interval's missing end element too.
    let open = usize::from(interval && ports.last().is_some_and(|p| p.end == u16::MAX));
    let mut flags = NFT_SET_ANONYMOUS | NFT_SET_CONSTANT;
    if interval {
        flags |= NFT_SET_INTERVAL;
    }
    b.push(
        NFT_MSG_NEWSET,
        NLM_F_CREATE,
        format!("NEWSET {ANON_SET} (id {id})"),
        |w| {
            set_header(w, table, ANON_SET, flags, NFT_TYPE_INET_SERVICE, 2);
            w.u32(NFTA_SET_ID, id);
            w.nest(NFTA_SET_DESC, |w| {
                w.u32(NFTA_SET_DESC_SIZE, (elems.len() + open) as u32)
            });
            w.put(NFTA_SET_USERDATA, &ud);
        },
    );
    set_elems(b, NFT_MSG_NEWSETELEM, table, ANON_SET, Some(id), &elems);
}

/// Port set elements; with intervals as nft encodes them: an end element
/// at 0 first, each range as start and end + 1 (flagged as end), a range
/// up to 65535 as an open start.
fn port_elements(ports: &[PortRange], interval: bool) -> Vec<Vec<u8>> {
    if !interval {
        return ports
            .iter()
            .map(|p| encode(&p.start.to_be_bytes(), false, false, None))
            .collect();
    }
    let mut out = Vec::new();
    if ports.first().is_some_and(|p| p.start != 0) {
        out.push(encode(&[0, 0], true, false, None));
    }
    for p in ports {
        let open = p.end == u16::MAX;
        out.push(encode(&p.start.to_be_bytes(), false, open, None));
        if !open {
            out.push(encode(&(p.end + 1).to_be_bytes(), true, false, None));
        }
    }
    out
}
