//! The opt-in log of denied connections (`ferryd --policy-log`): every
//! group chain gets, right before its counted drop, one rule
//!
//! ```text
//! limit rate 100/second burst 20 packets log prefix "in-grp-50219216" group 33779
//! ```
//!
//! sending the packet to NFLOG group [`LOG_GROUP`] with the group chain's
//! name as prefix (which says the direction and, through the chain's drop
//! rule, the policies: [`group_policies`]). The limit holds the log rule
//! only; the drop after it stays unconditional and counted. Only a
//! connection's first packets get this far (replies are accepted before),
//! so one message is about one denied connection attempt. Per-packet cost
//! stays flat: one rule per group chain, none per policy, and none at all
//! for packets that are accepted.

use std::collections::BTreeMap;

use crate::compile::Direction;
use crate::ir::{Match, Rule, Ruleset, Verdict};

/// The NFLOG group ferryd logs drops to ("ferry" on a phone keypad).
pub const LOG_GROUP: u16 = 33779;

/// How drops are logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DropLog {
    /// The NFLOG group.
    pub group: u16,
    /// Messages per second, per group chain, at most (on average).
    pub rate: u32,
    /// Messages allowed in a burst above the rate.
    pub burst: u32,
}

impl Default for DropLog {
    /// [`LOG_GROUP`], 100/second, bursts of 20.
    fn default() -> Self {
        DropLog {
            group: LOG_GROUP,
            rate: 100,
            burst: 20,
        }
    }
}

impl DropLog {
    /// The rule a group chain `chain` gets before its drop.
    pub fn rule(&self, chain: &str) -> Rule {
        Rule::new(
            vec![Match::Limit {
                rate: self.rate,
                burst: self.burst,
            }],
            Verdict::Log {
                prefix: chain.to_string(),
                group: self.group,
            },
        )
    }
}

/// The direction a log prefix (a group chain's name) stands for.
pub fn prefix_direction(prefix: &str) -> Option<Direction> {
    [Direction::Ingress, Direction::Egress]
        .into_iter()
        .find(|d| {
            prefix
                .strip_prefix(d.prefix())
                .is_some_and(|r| r.starts_with("-grp-"))
        })
}

/// Group chain → the counters (`in/<ns>/<name>`: the policies) its drop
/// counts against, for every group chain of `rs`.
pub fn group_policies(rs: &Ruleset) -> BTreeMap<String, Vec<String>> {
    rs.chains
        .iter()
        .filter(|c| c.base.is_none() && prefix_direction(&c.name).is_some())
        .filter_map(|c| {
            let drop = c.rules.iter().find(|r| r.verdict == Verdict::Drop)?;
            Some((c.name.clone(), drop.counters.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_say_the_direction() {
        assert_eq!(
            prefix_direction("in-grp-50219216"),
            Some(Direction::Ingress)
        );
        assert_eq!(prefix_direction("eg-grp-00000001"), Some(Direction::Egress));
        assert_eq!(prefix_direction("in/default/x"), None);
        assert_eq!(prefix_direction(""), None);
    }
}
