//! What it takes to go from one [`Ruleset`] to another: nothing, element
//! changes in named sets and maps (pod churn: the usual case), or a new
//! ruleset (one atomic replace).

use std::collections::BTreeMap;

use crate::ir::{Element, Ruleset, Set};

/// The changes to one set or map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElementChange {
    pub set: String,
    pub added: Vec<Element>,
    pub removed: Vec<Element>,
}

/// The outcome of [`diff`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Diff {
    Unchanged,
    /// Same shape; only these elements differ (removals first when applied).
    Elements(Vec<ElementChange>),
    /// Chains, rules, counters or set declarations differ.
    Ruleset,
}

/// Compares `old` with `new`.
pub fn diff(old: &Ruleset, new: &Ruleset) -> Diff {
    if shape(old) != shape(new) {
        return Diff::Ruleset;
    }
    let mut changes = Vec::new();
    for (name, new_set) in &new.sets {
        let old_set = &old.sets[name];
        let added: Vec<Element> = new_set
            .elements
            .difference(&old_set.elements)
            .cloned()
            .collect();
        let removed: Vec<Element> = old_set
            .elements
            .difference(&new_set.elements)
            .cloned()
            .collect();
        if !added.is_empty() || !removed.is_empty() {
            changes.push(ElementChange {
                set: name.clone(),
                added,
                removed,
            });
        }
    }
    if changes.is_empty() {
        Diff::Unchanged
    } else {
        Diff::Elements(changes)
    }
}

/// Everything but the elements.
fn shape(rs: &Ruleset) -> Ruleset {
    Ruleset {
        table: rs.table.clone(),
        counters: rs.counters.clone(),
        sets: rs
            .sets
            .iter()
            .map(|(n, s)| {
                (
                    n.clone(),
                    Set {
                        key: s.key,
                        elements: Default::default(),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
        chains: rs.chains.clone(),
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
