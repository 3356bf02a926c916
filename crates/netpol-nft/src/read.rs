//! Reading the table back: named counters, and a canonical form of a
//! table (the kernel's own dumps, minus handles, table names and use
//! counts) to compare two tables.

use std::collections::{BTreeMap, BTreeSet};

use ferry_nft::raw::{Attrs, Socket, Writer};
use ferry_nft::NftError;

use crate::sys::*;

const ENOENT: i32 = 2;

/// Named counters of `table`: name → (packets, bytes).
pub(crate) fn counters(
    sock: &mut Socket,
    table: &str,
) -> Result<BTreeMap<String, (u64, u64)>, NftError> {
    let target = format!("inet {table}");
    let objs = match sock.dump("GETOBJ", &target, NFT_MSG_GETOBJ, |w| {
        w.str(NFTA_OBJ_TABLE, table);
        w.u32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
    }) {
        Err(e) if e.errno() == Some(ENOENT) => return Ok(BTreeMap::new()),
        other => other?,
    };
    let mut out = BTreeMap::new();
    for raw in objs {
        let a = Attrs::new(&raw);
        let in_table = a.get(NFTA_OBJ_TABLE).is_some_and(|t| t.str() == table);
        let counter = a.get(NFTA_OBJ_TYPE).and_then(|t| t.u32()) == Some(NFT_OBJECT_COUNTER);
        let (Some(name), Some(data)) = (a.get(NFTA_OBJ_NAME), a.get(NFTA_OBJ_DATA)) else {
            continue;
        };
        if !in_table || !counter {
            continue;
        }
        let d = data.nested();
        let get = |ty| d.get(ty).and_then(|x| x.u64()).unwrap_or(0);
        out.insert(
            name.str(),
            (get(NFTA_COUNTER_PACKETS), get(NFTA_COUNTER_BYTES)),
        );
    }
    Ok(out)
}

/// Whether table `table` exists.
pub(crate) fn exists(sock: &mut Socket, table: &str) -> Result<bool, NftError> {
    let got = sock.get(
        "GETTABLE",
        &format!("inet {table}"),
        NFT_MSG_GETTABLE,
        |w| w.str(NFTA_TABLE_NAME, table),
    );
    match got {
        Ok(t) => Ok(!t.is_empty()),
        Err(e) if e.errno() == Some(ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A table as the kernel dumps it, without what differs between two
/// tables of the same content: chains and rules in order, sets with
/// their elements (unordered), counter names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Canonical {
    chains: Vec<Vec<u8>>,
    rules: Vec<Vec<u8>>,
    sets: BTreeMap<String, (Vec<u8>, BTreeSet<Vec<u8>>)>,
    counters: BTreeSet<String>,
}

// Attributes left out: table names, handles, use counts, rule positions.
const NFTA_CHAIN_HANDLE: u16 = 2;
const NFTA_CHAIN_USE: u16 = 6;
const NFTA_RULE_POSITION: u16 = 6;
const NFTA_SET_HANDLE: u16 = 16;

/// The attributes of an object but those of type in `skip`, re-encoded.
fn without(raw: &[u8], skip: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut w = Writer::new(&mut out);
    for a in Attrs::new(raw).filter(|a| !skip.contains(&a.ty)) {
        w.put(a.ty, a.value);
    }
    out
}

pub(crate) fn canonical(sock: &mut Socket, table: &str) -> Result<Canonical, NftError> {
    let target = format!("inet {table}");
    let chains = sock
        .dump("GETCHAIN", &target, NFT_MSG_GETCHAIN, |w| {
            w.str(NFTA_CHAIN_TABLE, table)
        })?
        .iter()
        .filter(|raw| {
            Attrs::new(raw)
                .get(NFTA_CHAIN_TABLE)
                .is_some_and(|t| t.str() == table)
        })
        .map(|raw| without(raw, &[NFTA_CHAIN_TABLE, NFTA_CHAIN_HANDLE, NFTA_CHAIN_USE]))
        .collect();
    let rules = sock
        .dump("GETRULE", &target, NFT_MSG_GETRULE, |w| {
            w.str(NFTA_RULE_TABLE, table)
        })?
        .iter()
        .filter(|raw| {
            Attrs::new(raw)
                .get(NFTA_RULE_TABLE)
                .is_some_and(|t| t.str() == table)
        })
        .map(|raw| {
            without(
                raw,
                &[NFTA_RULE_TABLE, NFTA_RULE_HANDLE, NFTA_RULE_POSITION],
            )
        })
        .collect();
    let mut sets = BTreeMap::new();
    for raw in sock.dump("GETSET", &target, NFT_MSG_GETSET, |w| {
        w.str(NFTA_SET_TABLE, table)
    })? {
        let a = Attrs::new(&raw);
        if a.get(NFTA_SET_TABLE).is_none_or(|t| t.str() != table) {
            continue;
        }
        let Some(name) = a.get(NFTA_SET_NAME).map(|n| n.str()) else {
            continue;
        };
        let header = without(&raw, &[NFTA_SET_TABLE, NFTA_SET_HANDLE]);
        let set_target = format!("{target} set {name}");
        let mut elems = BTreeSet::new();
        for m in sock.dump("GETSETELEM", &set_target, NFT_MSG_GETSETELEM, |w| {
            w.str(NFTA_SET_ELEM_LIST_TABLE, table);
            w.str(NFTA_SET_ELEM_LIST_SET, &name);
        })? {
            let Some(list) = Attrs::new(&m).get(NFTA_SET_ELEM_LIST_ELEMENTS) else {
                continue;
            };
            elems.extend(
                list.nested()
                    .filter(|e| !zero_end(e.value))
                    .map(|e| e.value.to_vec()),
            );
        }
        sets.insert(name, (header, elems));
    }
    let counters = self::counters(sock, table)?.into_keys().collect();
    Ok(Canonical {
        chains,
        rules,
        sets,
        counters,
    })
}

/// The end element at address 0 nft puts in front of an interval set
/// declared with its elements (and not when adding to it): not content.
fn zero_end(elem: &[u8]) -> bool {
    let a = Attrs::new(elem);
    let end = a.get(NFTA_SET_ELEM_FLAGS).and_then(|f| f.u32()) == Some(NFT_SET_ELEM_INTERVAL_END);
    let zero_key = a
        .get(NFTA_SET_ELEM_KEY)
        .and_then(|k| k.nested().get(NFTA_DATA_VALUE))
        .is_some_and(|v| v.value.iter().all(|&b| b == 0));
    end && zero_key
}
