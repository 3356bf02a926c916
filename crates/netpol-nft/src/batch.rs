//! Whole transactions: the atomic table replace and the element update.

use std::collections::BTreeMap;

use ferry_netpol::ir::{Ruleset, Set};
use ferry_netpol::ElementChange;
use ferry_nft::raw::{del_table, new_table, set_elems, Batch};

use crate::objects::{check, elements, new_chain, new_counter, new_set};
use crate::rules::{new_rule, SetIds};
use crate::sys::*;
use crate::Error;

/// The named sets in nft's (and `render()`'s) order: the node's sets and
/// maps, then the policies' (named `dir/..`).
pub(crate) fn ordered_sets(rs: &Ruleset) -> Vec<(&String, &Set)> {
    let (policy, node): (Vec<_>, Vec<_>) = rs.sets.iter().partition(|(n, _)| n.contains('/'));
    node.into_iter().chain(policy).collect()
}

/// Names nf_tables accepts and references that resolve, before anything
/// is sent (the kernel would say ENOENT or EINVAL without saying where).
pub(crate) fn validate(rs: &Ruleset) -> Result<(), Error> {
    let invalid = |detail: String| Error::Invalid {
        table: rs.table.clone(),
        detail,
    };
    let names = std::iter::once(&rs.table)
        .chain(&rs.counters)
        .chain(rs.sets.keys())
        .chain(rs.chains.iter().map(|c| &c.name));
    for n in names {
        if n.is_empty() || n.len() >= NFT_NAME_MAXLEN || n.contains('\0') {
            return Err(invalid(format!(
                "name {n:?} must be 1 to 255 bytes without NUL"
            )));
        }
    }
    for (name, set) in &rs.sets {
        for e in &set.elements {
            check(set.key, e).map_err(|d| invalid(format!("set {name}: {d}")))?;
        }
    }
    Ok(())
}

/// NEWTABLE (so that the delete cannot fail), DELTABLE, NEWTABLE, then as
/// nft orders a table block: chains, counters, each set with its elements,
/// the rules (each after the anonymous sets it uses).
pub(crate) fn replace_batch(rs: &Ruleset, seq: u32) -> Batch {
    let mut b = Batch::new(seq);
    new_table(&mut b, &rs.table);
    del_table(&mut b, &rs.table);
    new_table(&mut b, &rs.table);
    objects(&mut b, rs, &rs.table);
    b
}

/// The table's content, created in table `table` (which the batch has
/// created before): what nft sends after NEWTABLE for the rendered table.
pub(crate) fn objects(b: &mut Batch, rs: &Ruleset, table: &str) {
    for c in &rs.chains {
        new_chain(b, table, c);
    }
    for c in &rs.counters {
        new_counter(b, table, c);
    }
    let mut ids = SetIds {
        named: BTreeMap::new(),
        next: 1,
    };
    for (name, set) in ordered_sets(rs) {
        let id = ids.next;
        ids.next += 1;
        ids.named.insert(name.clone(), id);
        new_set(b, table, name, id, set.key);
        if !set.elements.is_empty() {
            let encoded = elements(set.key, &set.elements, true, false);
            set_elems(b, NFT_MSG_NEWSETELEM, table, name, Some(id), &encoded);
        }
    }
    for c in &rs.chains {
        for r in &c.rules {
            new_rule(b, table, &c.name, r, &mut ids);
        }
    }
}

/// Removals, then additions, of `changes` to the sets of `rs` (which has
/// them all): one transaction.
pub(crate) fn element_batch(rs: &Ruleset, changes: &[ElementChange], seq: u32) -> Batch {
    let mut b = Batch::new(seq);
    let table = rs.table.as_str();
    for c in changes.iter().filter(|c| !c.removed.is_empty()) {
        let key = rs.sets[&c.set].key;
        let encoded = elements(key, &c.removed, false, true);
        set_elems(&mut b, NFT_MSG_DELSETELEM, table, &c.set, None, &encoded);
    }
    for c in changes.iter().filter(|c| !c.added.is_empty()) {
        let key = rs.sets[&c.set].key;
        let encoded = elements(key, &c.added, false, false);
        set_elems(&mut b, NFT_MSG_NEWSETELEM, table, &c.set, None, &encoded);
    }
    b
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
