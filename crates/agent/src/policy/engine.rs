//! Ruleset in, kernel out: what is installed, how to get from it to the
//! next ruleset (elements only when the shape stays), and drop counters
//! that stay monotonic across table replaces. Pure apart from the
//! [`PolicyDataplane`] it owns, so unit tests run it against the fake.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferry_netpol::ir::{Element, SetKey};
use ferry_netpol::{Diff, Direction, Ruleset};

use super::dataplane::{Applied, Counters, DataplaneError, PolicyDataplane};

/// The kernel side of policy, with what it holds.
pub struct Engine<D: PolicyDataplane> {
    dp: D,
    /// What is in the kernel, as far as we know; `None` after a start or
    /// a failure: ask the kernel before trusting anything.
    installed: Option<Ruleset>,
    drops: DropTotals,
}

/// What [`Engine::sync`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synced {
    /// The kernel already held exactly this (a restart found its table).
    Adopted,
    Applied(Applied),
}

impl<D: PolicyDataplane> Engine<D> {
    pub fn new(dp: D) -> Self {
        Engine {
            dp,
            installed: None,
            drops: DropTotals::default(),
        }
    }

    pub fn installed(&self) -> Option<&Ruleset> {
        self.installed.as_ref()
    }

    /// Makes the kernel hold `new`, as one transaction. Until the first
    /// sync the kernel keeps whatever an earlier ferryd left (see the
    /// module docs); the first sync keeps the table when it already
    /// matches, else replaces it atomically.
    pub fn sync(&mut self, new: Ruleset) -> Result<Synced, DataplaneError> {
        if self.installed.is_none() && self.dp.installed_matches(&new)? {
            self.installed = Some(new);
            return Ok(Synced::Adopted);
        }
        let replaces = match &self.installed {
            None => true,
            Some(old) => ferry_netpol::diff(old, &new) == Diff::Ruleset,
        };
        if replaces && self.installed.is_some() {
            // The replace zeroes the kernel's counters: take them first.
            let _ = self.poll_counters();
        }
        match self.dp.apply(self.installed.as_ref(), &new) {
            Ok(applied) => {
                if applied == Applied::Replaced {
                    self.drops.restarted();
                }
                self.installed = Some(new);
                Ok(Synced::Applied(applied))
            }
            Err(e) => {
                self.installed = None;
                Err(e)
            }
        }
    }

    /// Forget what is installed: the next sync checks the kernel again
    /// (periodic resync: someone may have changed the table).
    pub fn forget(&mut self) {
        self.installed = None;
    }

    /// Reads the kernel's drop counters into the monotonic totals.
    pub fn poll_counters(&mut self) -> Result<(), DataplaneError> {
        let Some(rs) = &self.installed else {
            return Ok(());
        };
        let now = self.dp.counters(&rs.table)?;
        self.drops.observe(&now);
        Ok(())
    }

    /// Drops per counter name since this ferryd started.
    pub fn drop_totals(&self) -> &Counters {
        &self.drops.total
    }

    /// Deletes the table (`--network-policy=false`).
    pub fn remove(&mut self, table: &str) -> Result<bool, DataplaneError> {
        self.installed = None;
        self.dp.delete(table)
    }
}

/// Kernel counters made monotonic: a counter below what was last seen
/// (or any counter after a replace) started again from zero.
#[derive(Debug, Default)]
struct DropTotals {
    seen: Counters,
    total: Counters,
}

impl DropTotals {
    fn observe(&mut self, now: &Counters) {
        for (name, &(p, b)) in now {
            let (sp, sb) = self.seen.get(name).copied().unwrap_or((0, 0));
            let (dp, db) = if p < sp || b < sb {
                (p, b)
            } else {
                (p - sp, b - sb)
            };
            let t = self.total.entry(name.clone()).or_insert((0, 0));
            t.0 += dp;
            t.1 += db;
        }
        self.seen = now.clone();
    }

    fn restarted(&mut self) {
        self.seen.clear();
    }
}

/// Local pod addresses a ruleset isolates, per direction: the keys of
/// its verdict maps.
pub fn isolated(rs: &Ruleset) -> BTreeMap<Direction, BTreeSet<IpAddr>> {
    let mut out: BTreeMap<Direction, BTreeSet<IpAddr>> = BTreeMap::new();
    for dir in [Direction::Ingress, Direction::Egress] {
        let set = out.entry(dir).or_default();
        for (name, s) in &rs.sets {
            if !matches!(s.key, SetKey::Verdict(_)) || !name.starts_with(dir.base()) {
                continue;
            }
            set.extend(s.elements.iter().filter_map(|e| match e {
                Element::Jump(ip, _) => Some(*ip),
                _ => None,
            }));
        }
    }
    out
}

/// A policy counter's name (`in/NS/NAME`, `eg/NS/NAME`) as (direction,
/// namespace, policy).
pub fn counter_policy(name: &str) -> Option<(&'static str, &str, &str)> {
    let (dir, rest) = name.split_once('/')?;
    let (ns, policy) = rest.split_once('/')?;
    let dir = match dir {
        "in" => "ingress",
        "eg" => "egress",
        _ => return None,
    };
    Some((dir, ns, policy))
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
