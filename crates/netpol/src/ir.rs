//! The desired state: one nftables table, as data. Built by
//! [`crate::compile()`], shown by [`crate::render()`], compared by
//! [`crate::diff()`]; the dataplane step encodes it to netlink.
//!
//! Its *shape* (chains, rules, counters, set declarations) depends on the
//! policies and on which of them select local pods; set and map
//! *elements* carry everything that follows pod addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::model::Protocol;
use crate::ranges::Family;

/// One `inet` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub table: String,
    /// Named counters (per-policy drops), by name.
    pub counters: BTreeSet<String>,
    /// Named sets and verdict maps, by name.
    pub sets: BTreeMap<String, Set>,
    /// Chains in rendering order: base chains first.
    pub chains: Vec<Chain>,
}

/// A named set or (for [`SetKey::Verdict`]) verdict map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub key: SetKey,
    pub elements: BTreeSet<Element>,
}

/// What a set holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetKey {
    /// Addresses and ranges (`flags interval`): peers.
    Addrs(Family),
    /// `addr . inet_service`: named ports resolved per pod.
    AddrPort(Family),
    /// `addr . addr`: (pod, pod) pairs, a pod talking to itself.
    AddrPair(Family),
    /// `addr : verdict`: local pod → its group chain.
    Verdict(Family),
}

impl SetKey {
    pub fn family(self) -> Family {
        match self {
            SetKey::Addrs(f) | SetKey::AddrPort(f) | SetKey::AddrPair(f) | SetKey::Verdict(f) => f,
        }
    }
}

/// One set or map element.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    /// An inclusive address range (a single address when start == end).
    Range { start: IpAddr, end: IpAddr },
    /// An address and a port.
    AddrPort(IpAddr, u16),
    /// Two addresses (saddr . daddr).
    AddrPair(IpAddr, IpAddr),
    /// An address mapped to `jump <chain>`.
    Jump(IpAddr, String),
}

/// A chain; `base` set for the ones hooked into netfilter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseChain>,
    pub comment: Option<String>,
    pub rules: Vec<Rule>,
}

/// A filter chain at the forward hook, policy accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseChain {
    /// Offset from the `filter` priority (0).
    pub priority: i32,
}

/// Matches (all must hold), named counters, one verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub counters: Vec<String>,
    pub verdict: Verdict,
    pub comment: Option<String>,
}

impl Rule {
    pub fn new(matches: Vec<Match>, verdict: Verdict) -> Self {
        Rule {
            matches,
            counters: Vec::new(),
            verdict,
            comment: None,
        }
    }

    pub fn with_comment(mut self, comment: &str) -> Self {
        self.comment = Some(comment.to_string());
        self
    }
}

/// Source or destination address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Saddr,
    Daddr,
}

impl Field {
    pub fn nft(self) -> &'static str {
        match self {
            Field::Saddr => "saddr",
            Field::Daddr => "daddr",
        }
    }
}

/// A destination port or inclusive port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

/// One match expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// `ct state established,related`
    CtEstablished,
    /// `fib saddr type local`: sent by this node.
    FromNode,
    /// `ip saddr @set` (or daddr, or ip6).
    AddrIn {
        family: Family,
        field: Field,
        set: String,
    },
    /// `ip saddr . ip daddr @set`
    PairIn { family: Family, set: String },
    /// `ip daddr . tcp dport @set`
    AddrPortIn {
        family: Family,
        protocol: Protocol,
        set: String,
    },
    /// `meta l4proto tcp`
    Proto(Protocol),
    /// `limit rate N/second burst B packets`: true while under the rate.
    Limit { rate: u32, burst: u32 },
    /// `tcp dport { 80, 8000-9000 }` (ports sorted, never empty)
    Ports {
        protocol: Protocol,
        ports: Vec<PortRange>,
    },
}

/// What a rule does when it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Jump(String),
    /// `ip daddr vmap @map` (or saddr, or ip6).
    Vmap {
        family: Family,
        field: Field,
        map: String,
    },
    /// `log prefix "<prefix>" group <group>`: the packet to NFLOG. Not
    /// final: the packet goes on to the next rule.
    Log {
        prefix: String,
        group: u16,
    },
    /// No verdict: the packet goes on to the next rule (a rule that only
    /// counts, see [`MAX_COUNTERS_PER_RULE`]).
    Continue,
}

/// Named counters one rule carries at most. The kernel refuses a rule of
/// more than 128 expressions (`NFT_RULE_MAXEXPRS`) with EINVAL, and a
/// group chain's drop counts against every policy of the group: a pod
/// selected by 1 000 policies gets its drop counted by 16 rules, the last
/// of which drops.
pub const MAX_COUNTERS_PER_RULE: usize = 64;

impl Ruleset {
    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
}
