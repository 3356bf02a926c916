//! Reading a table back: GETTABLE, then dumps of its sets, their elements,
//! its chains and its rules, decoded into [`TableState`].

use std::collections::HashMap;

use crate::cidr::{elements_to_ranges, key_from_bytes, range_to_cidrs, Elem, IpFamily};
use crate::error::NftError;
use crate::nla::Attrs;
use crate::socket::NfSocket;
use crate::state::{ChainState, Counter, RuleState, SetState, TableState};
use crate::sys::*;

const ENOENT: i32 = 2;

/// Reads table `name` (family inet); `None` if there is none.
pub(crate) fn read(sock: &mut NfSocket, name: &str) -> Result<Option<TableState>, NftError> {
    match read_inner(sock, name) {
        // The table vanished between two dumps: it is absent now.
        Err(NftError::Kernel { errno: ENOENT, .. }) => Ok(None),
        other => other,
    }
}

fn read_inner(sock: &mut NfSocket, name: &str) -> Result<Option<TableState>, NftError> {
    let target = format!("inet {name}");
    let tables = sock.get("GETTABLE", &target, NFT_MSG_GETTABLE, |w| {
        w.str(NFTA_TABLE_NAME, name)
    })?;
    if tables.is_empty() {
        return Ok(None);
    }

    let mut sets = Vec::new();
    for raw in sock.dump("GETSET", &target, NFT_MSG_GETSET, |w| {
        w.str(NFTA_SET_TABLE, name)
    })? {
        let Some(header) = parse_set(&raw) else {
            continue;
        };
        let set_target = format!("{target} set {}", header.name);
        let elems = sock.dump("GETSETELEM", &set_target, NFT_MSG_GETSETELEM, |w| {
            w.str(NFTA_SET_ELEM_LIST_TABLE, name);
            w.str(NFTA_SET_ELEM_LIST_SET, &header.name);
        })?;
        sets.push(set_state(header, &elems));
    }
    sets.sort_by(|a, b| a.name.cmp(&b.name));

    let mut chains: Vec<ChainState> = sock
        .dump("GETCHAIN", &target, NFT_MSG_GETCHAIN, |_| {})?
        .iter()
        .filter_map(|raw| parse_chain(raw, name))
        .collect();
    chains.sort_by(|a, b| a.name.cmp(&b.name));

    let rules = sock
        .dump("GETRULE", &target, NFT_MSG_GETRULE, |w| {
            w.str(NFTA_RULE_TABLE, name)
        })?
        .iter()
        .filter_map(|raw| parse_rule(raw, name))
        .collect();

    Ok(Some(TableState {
        name: name.to_string(),
        sets,
        chains,
        rules,
    }))
}

pub(crate) struct SetHeader {
    name: String,
    family: Option<IpFamily>,
    interval: bool,
}

pub(crate) fn parse_set(raw: &[u8]) -> Option<SetHeader> {
    let a = Attrs::new(raw);
    let name = a.get(NFTA_SET_NAME)?.str();
    let flags = a.get(NFTA_SET_FLAGS).and_then(|x| x.u32()).unwrap_or(0);
    let key_type = a.get(NFTA_SET_KEY_TYPE).and_then(|x| x.u32());
    let key_len = a.get(NFTA_SET_KEY_LEN).and_then(|x| x.u32());
    let family = match (key_type, key_len) {
        (Some(NFT_TYPE_IPADDR), Some(4)) => Some(IpFamily::V4),
        (Some(NFT_TYPE_IP6ADDR), Some(16)) => Some(IpFamily::V6),
        _ => None,
    };
    Some(SetHeader {
        name,
        family,
        interval: flags & NFT_SET_INTERVAL != 0,
    })
}

/// A set's state from its header and the NEWSETELEM messages of its dump.
pub(crate) fn set_state(h: SetHeader, elem_msgs: &[Vec<u8>]) -> SetState {
    let cidrs = match h.family {
        None => Vec::new(),
        Some(f) => {
            let elems: Vec<Elem> = elem_msgs.iter().flat_map(|m| parse_elems(m, f)).collect();
            let ranges = if h.interval {
                elements_to_ranges(f, &elems)
            } else {
                // A plain set: every element is one address.
                let mut r: Vec<_> = elems
                    .iter()
                    .map(|e| crate::cidr::Range {
                        start: e.key,
                        end: e.key,
                    })
                    .collect();
                crate::cidr::merge(&mut r);
                r
            };
            ranges
                .into_iter()
                .flat_map(|r| range_to_cidrs(f, r))
                .collect()
        }
    };
    SetState {
        name: h.name,
        family: h.family,
        interval: h.interval,
        cidrs,
    }
}

fn parse_elems(raw: &[u8], family: IpFamily) -> Vec<Elem> {
    let Some(list) = Attrs::new(raw).get(NFTA_SET_ELEM_LIST_ELEMENTS) else {
        return Vec::new();
    };
    // Any entry type: the kernel dumps NFTA_LIST_ELEM, libnftnl numbers them.
    list.nested()
        .filter_map(|e| {
            let a = e.nested();
            let key = a.get(NFTA_SET_ELEM_KEY)?.nested().get(NFTA_DATA_VALUE)?;
            let flags = a
                .get(NFTA_SET_ELEM_FLAGS)
                .and_then(|f| f.u32())
                .unwrap_or(0);
            Some(Elem {
                key: key_from_bytes(family, key.value)?,
                end: flags & NFT_SET_ELEM_INTERVAL_END != 0,
                open: false,
            })
        })
        .collect()
}

pub(crate) fn parse_chain(raw: &[u8], table: &str) -> Option<ChainState> {
    let a = Attrs::new(raw);
    if a.get(NFTA_CHAIN_TABLE)?.str() != table {
        return None;
    }
    let hook = a.get(NFTA_CHAIN_HOOK).map(|h| h.nested());
    Some(ChainState {
        name: a.get(NFTA_CHAIN_NAME)?.str(),
        chain_type: a.get(NFTA_CHAIN_TYPE).map(|t| t.str()),
        hook: hook
            .as_ref()
            .and_then(|h| h.get(NFTA_HOOK_HOOKNUM))
            .and_then(|x| x.u32()),
        priority: hook
            .as_ref()
            .and_then(|h| h.get(NFTA_HOOK_PRIORITY))
            .and_then(|x| x.u32())
            .map(|p| p as i32),
        policy: a.get(NFTA_CHAIN_POLICY).and_then(|x| x.u32()),
    })
}

/// What a register was last loaded with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Loaded {
    Meta(u32),
    Saddr(IpFamily),
    Daddr(IpFamily),
    Other,
}

pub(crate) fn parse_rule(raw: &[u8], table: &str) -> Option<RuleState> {
    let a = Attrs::new(raw);
    if a.get(NFTA_RULE_TABLE)?.str() != table {
        return None;
    }
    let mut rule = RuleState {
        chain: a.get(NFTA_RULE_CHAIN)?.str(),
        handle: a.get(NFTA_RULE_HANDLE).and_then(|h| h.u64()).unwrap_or(0),
        exprs: Vec::new(),
        family: None,
        out_ifname: None,
        saddr_set: None,
        daddr_not_in_set: None,
        masquerade: false,
        counter: None,
    };
    let mut regs: HashMap<u32, Loaded> = HashMap::new();
    let exprs = a.get(NFTA_RULE_EXPRESSIONS).map(|e| e.nested());
    for expr in exprs
        .into_iter()
        .flatten()
        .filter(|e| e.ty == NFTA_LIST_ELEM)
    {
        let e = expr.nested();
        let Some(name) = e.get(NFTA_EXPR_NAME).map(|n| n.str()) else {
            continue;
        };
        let data = e.get(NFTA_EXPR_DATA).map(|d| d.nested());
        let get = |ty| data.as_ref().and_then(|d| d.get(ty));
        let get_u32 = |ty| get(ty).and_then(|x| x.u32());
        match name.as_str() {
            "meta" => {
                if let (Some(reg), Some(key)) = (get_u32(NFTA_META_DREG), get_u32(NFTA_META_KEY)) {
                    regs.insert(reg, Loaded::Meta(key));
                }
            }
            "payload" => {
                let field = match (
                    get_u32(NFTA_PAYLOAD_BASE),
                    get_u32(NFTA_PAYLOAD_OFFSET),
                    get_u32(NFTA_PAYLOAD_LEN),
                ) {
                    (Some(NFT_PAYLOAD_NETWORK_HEADER), Some(12), Some(4)) => {
                        Loaded::Saddr(IpFamily::V4)
                    }
                    (Some(NFT_PAYLOAD_NETWORK_HEADER), Some(16), Some(4)) => {
                        Loaded::Daddr(IpFamily::V4)
                    }
                    (Some(NFT_PAYLOAD_NETWORK_HEADER), Some(8), Some(16)) => {
                        Loaded::Saddr(IpFamily::V6)
                    }
                    (Some(NFT_PAYLOAD_NETWORK_HEADER), Some(24), Some(16)) => {
                        Loaded::Daddr(IpFamily::V6)
                    }
                    _ => Loaded::Other,
                };
                if let Some(reg) = get_u32(NFTA_PAYLOAD_DREG) {
                    regs.insert(reg, field);
                }
            }
            "cmp" => {
                let loaded = get_u32(NFTA_CMP_SREG).and_then(|r| regs.get(&r).copied());
                let value = get(NFTA_CMP_DATA).and_then(|d| d.nested().get(NFTA_DATA_VALUE));
                if get_u32(NFTA_CMP_OP) == Some(NFT_CMP_EQ) {
                    match (loaded, value) {
                        (Some(Loaded::Meta(NFT_META_OIFNAME)), Some(v)) => {
                            rule.out_ifname = Some(v.str());
                        }
                        (Some(Loaded::Meta(NFT_META_NFPROTO)), Some(v)) => {
                            rule.family = match v.value.first() {
                                Some(&NFPROTO_IPV4) => Some(IpFamily::V4),
                                Some(&NFPROTO_IPV6) => Some(IpFamily::V6),
                                _ => None,
                            };
                        }
                        _ => {}
                    }
                }
            }
            "lookup" => {
                let loaded = get_u32(NFTA_LOOKUP_SREG).and_then(|r| regs.get(&r).copied());
                let set = get(NFTA_LOOKUP_SET).map(|s| s.str());
                let inverted = get_u32(NFTA_LOOKUP_FLAGS).unwrap_or(0) & NFT_LOOKUP_F_INV != 0;
                match (loaded, inverted) {
                    (Some(Loaded::Saddr(_)), false) => rule.saddr_set = set,
                    (Some(Loaded::Daddr(_)), true) => rule.daddr_not_in_set = set,
                    _ => {}
                }
            }
            "counter" => {
                rule.counter = Some(Counter {
                    packets: get(NFTA_COUNTER_PACKETS).and_then(|x| x.u64()).unwrap_or(0),
                    bytes: get(NFTA_COUNTER_BYTES).and_then(|x| x.u64()).unwrap_or(0),
                });
            }
            "masq" => rule.masquerade = true,
            _ => {}
        }
        rule.exprs.push(name);
    }
    Some(rule)
}
