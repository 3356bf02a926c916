//! Cluster state → [`Ruleset`]: the translation itself.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::drop_log::DropLog;
use crate::ir::{
    BaseChain, Chain, Element, Field, Match, Rule, Ruleset, Set, SetKey, Verdict,
    MAX_COUNTERS_PER_RULE,
};
use crate::model::{Cluster, NetworkPolicy, Pod};
use crate::names;
use crate::policy_chain::policy_chain;
use crate::ranges::Family;
use crate::resolve::Index;

/// The table ferryd's policy state lives in.
pub const DEFAULT_TABLE: &str = "ferry-policy";

/// What to compile for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The `inet` table's name.
    pub table: String,
    /// This node's name: only its pods are enforced here.
    pub node: String,
    /// Log dropped connection attempts to NFLOG (`--policy-log`); `None`:
    /// no log rule at all.
    pub drop_log: Option<DropLog>,
}

impl Options {
    /// [`DEFAULT_TABLE`] on node `node`.
    pub fn new(node: &str) -> Self {
        Options {
            table: DEFAULT_TABLE.to_string(),
            node: node.to_string(),
            drop_log: None,
        }
    }

    /// With drops logged as `log` says.
    pub fn with_drop_log(mut self, log: Option<DropLog>) -> Self {
        self.drop_log = log;
        self
    }
}

/// A policy direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    /// Prefix of the policy and group chains: `in`, `eg`.
    pub fn prefix(self) -> &'static str {
        match self {
            Direction::Ingress => "in",
            Direction::Egress => "eg",
        }
    }

    /// The base chain, also the stem of its maps (`ingress4`, `egress6`).
    pub fn base(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    /// The address that is the local (selected) pod's.
    pub(crate) fn local_field(self) -> Field {
        match self {
            Direction::Ingress => Field::Daddr,
            Direction::Egress => Field::Saddr,
        }
    }

    /// The address that is the peer's.
    pub(crate) fn peer_field(self) -> Field {
        match self {
            Direction::Ingress => Field::Saddr,
            Direction::Egress => Field::Daddr,
        }
    }

    /// The verdict map of a family: `ingress4`, `egress6`, ...
    pub fn map(self, family: Family) -> String {
        format!("{}{}", self.base(), family.digit())
    }
}

/// The set of a pod reaching itself (never blocked): `self4`, `self6`.
pub fn self_set(family: Family) -> String {
    format!("self{}", family.digit())
}

/// Translates `cluster` into the table node `opts.node` wants.
pub fn compile(cluster: &Cluster, opts: &Options) -> Ruleset {
    let index = Index::new(cluster);
    let mut rs = Ruleset {
        table: opts.table.clone(),
        ..Default::default()
    };
    let mut policies: Vec<&NetworkPolicy> = cluster.policies.iter().collect();
    policies.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));

    let mut policy_chains = Vec::new();
    // (direction, local pod address) → the policy chains isolating it. By
    // address, not pod: two pods briefly sharing one (a pod going, its
    // address reused) get the union, and the map one key.
    let mut isolated: BTreeMap<(Direction, IpAddr), BTreeSet<String>> = BTreeMap::new();
    for policy in policies {
        let types = policy.effective_types();
        for (dir, on) in [
            (Direction::Ingress, types.ingress),
            (Direction::Egress, types.egress),
        ] {
            if !on {
                continue;
            }
            let local: Vec<&Pod> = index
                .selected(policy)
                .filter(|p| p.node == opts.node)
                .collect();
            if local.is_empty() {
                continue;
            }
            let chain = policy_chain(&index, policy, dir, &local, &mut rs);
            for ip in local.iter().flat_map(|p| &p.ips) {
                isolated
                    .entry((dir, *ip))
                    .or_default()
                    .insert(chain.name.clone());
            }
            rs.counters.insert(chain.name.clone());
            policy_chains.push(chain);
        }
    }

    for family in Family::ALL {
        for dir in [Direction::Ingress, Direction::Egress] {
            rs.sets
                .insert(dir.map(family), empty(SetKey::Verdict(family)));
        }
        rs.sets
            .insert(self_set(family), empty(SetKey::AddrPair(family)));
    }
    let mut groups: BTreeMap<(Direction, Vec<String>), Chain> = BTreeMap::new();
    for ((dir, ip), chains) in isolated {
        let chains: Vec<String> = chains.into_iter().collect();
        let group = groups
            .entry((dir, chains.clone()))
            .or_insert_with(|| group_chain(dir, &chains, opts.drop_log.as_ref()));
        let family = Family::of(&ip);
        let jump = Element::Jump(ip, group.name.clone());
        insert(&mut rs, &dir.map(family), jump);
        insert(&mut rs, &self_set(family), Element::AddrPair(ip, ip));
    }

    rs.chains.push(base_chain(Direction::Egress));
    rs.chains.push(base_chain(Direction::Ingress));
    rs.chains.extend(groups.into_values());
    rs.chains.extend(policy_chains);
    rs
}

fn empty(key: SetKey) -> Set {
    Set {
        key,
        elements: BTreeSet::new(),
    }
}

fn insert(rs: &mut Ruleset, set: &str, e: Element) {
    rs.sets
        .get_mut(set)
        .expect("set declared before its elements")
        .elements
        .insert(e);
}

/// The hooked chain of a direction: replies, this node, a pod to itself,
/// then one verdict-map lookup per family.
fn base_chain(dir: Direction) -> Chain {
    let mut rules = vec![Rule::new(vec![Match::CtEstablished], Verdict::Accept)];
    if dir == Direction::Ingress {
        rules.push(
            Rule::new(vec![Match::FromNode], Verdict::Accept)
                .with_comment("from this node (kubelet probes)"),
        );
    }
    for family in Family::ALL {
        rules.push(Rule::new(
            vec![Match::PairIn {
                family,
                set: self_set(family),
            }],
            Verdict::Accept,
        ));
    }
    for family in Family::ALL {
        rules.push(Rule::new(
            vec![],
            Verdict::Vmap {
                family,
                field: dir.local_field(),
                map: dir.map(family),
            },
        ));
    }
    Chain {
        name: dir.base().to_string(),
        base: Some(BaseChain {
            priority: match dir {
                Direction::Egress => 0,
                Direction::Ingress => 10,
            },
        }),
        comment: None,
        rules,
    }
}

/// Jumps to each policy of a group, then (with `log`, rate limited) logs
/// the packet and counts the drop against each.
fn group_chain(dir: Direction, chains: &[String], log: Option<&DropLog>) -> Chain {
    let name = names::group_chain(dir.prefix(), chains);
    let mut rules: Vec<Rule> = chains
        .iter()
        .map(|c| Rule::new(vec![], Verdict::Jump(c.clone())))
        .collect();
    if let Some(log) = log {
        rules.push(log.rule(&name));
    }
    // One rule holds a limited number of counters: all but the last
    // batch only count.
    let batches: Vec<&[String]> = chains.chunks(MAX_COUNTERS_PER_RULE).collect();
    for (i, batch) in batches.iter().enumerate() {
        let last = i + 1 == batches.len();
        let mut rule = Rule::new(
            vec![],
            if last {
                Verdict::Drop
            } else {
                Verdict::Continue
            },
        );
        rule.counters = batch.to_vec();
        rules.push(rule);
    }
    Chain {
        name,
        base: None,
        comment: None,
        rules,
    }
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
