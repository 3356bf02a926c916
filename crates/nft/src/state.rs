//! What an installed table holds, as [`crate::read_table`] reports it, and
//! the comparison with what [`crate::apply`] would write.

use ipnet::IpNet;

use crate::cidr::{normalize, IpFamily};
use crate::sys::{NF_ACCEPT, NF_INET_POST_ROUTING, PRIORITY_SRCNAT};
use crate::{MasqueradeTable, CHAIN, SET4, SET6};

/// One `inet` table as installed in the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableState {
    pub name: String,
    /// Sets, sorted by name.
    pub sets: Vec<SetState>,
    /// Chains, sorted by name.
    pub chains: Vec<ChainState>,
    /// Rules in chain order (the kernel's), of all chains.
    pub rules: Vec<RuleState>,
}

/// A set and its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetState {
    pub name: String,
    /// The address family of an `ipv4_addr`/`ipv6_addr` set; `None` for
    /// any other key.
    pub family: Option<IpFamily>,
    /// `flags interval`.
    pub interval: bool,
    /// The addresses in the set as the fewest CIDRs (empty for sets of
    /// other keys).
    pub cidrs: Vec<IpNet>,
}

/// A chain; hook fields are `None` for a regular (non-base) chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainState {
    pub name: String,
    /// `nat`, `filter`, `route`.
    pub chain_type: Option<String>,
    /// Netfilter hook number (`postrouting` = 4).
    pub hook: Option<u32>,
    pub priority: Option<i32>,
    /// Verdict policy (`accept` = 1, `drop` = 0).
    pub policy: Option<u32>,
}

/// Packets and bytes a `counter` expression has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

impl std::ops::Add for Counter {
    type Output = Counter;

    fn add(self, o: Counter) -> Counter {
        Counter {
            packets: self.packets + o.packets,
            bytes: self.bytes + o.bytes,
        }
    }
}

/// A rule, decoded as far as ferry's own rules go: the masquerade rule
/// shape is recognised field by field; anything else still shows its
/// expression names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleState {
    pub chain: String,
    /// The kernel's rule handle.
    pub handle: u64,
    /// Expression names in order (`meta`, `cmp`, `payload`, `lookup`, ...).
    pub exprs: Vec<String>,
    /// `meta nfproto ipv4|ipv6` (what `ip saddr` implies in an inet table).
    pub family: Option<IpFamily>,
    /// `oifname "NAME"`.
    pub out_ifname: Option<String>,
    /// `ip[6] saddr @SET`.
    pub saddr_set: Option<String>,
    /// `ip[6] daddr != @SET`.
    pub daddr_not_in_set: Option<String>,
    /// Ends in `masquerade`.
    pub masquerade: bool,
    /// Its `counter`, if it has one.
    pub counter: Option<Counter>,
}

/// The expression names of a ferry masquerade rule, in order.
pub(crate) const MASQUERADE_EXPRS: [&str; 10] = [
    "meta", "cmp", "meta", "cmp", "payload", "lookup", "payload", "lookup", "counter", "masq",
];

impl TableState {
    /// Every CIDR in ferry's cluster sets (`cluster4`, then `cluster6`).
    pub fn cluster_cidrs(&self) -> Vec<IpNet> {
        [SET4, SET6]
            .iter()
            .filter_map(|name| self.set(name))
            .flat_map(|s| s.cidrs.iter().copied())
            .collect()
    }

    pub fn set(&self, name: &str) -> Option<&SetState> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// The masquerade rules (in ferry's chain).
    pub fn masquerade_rules(&self) -> impl Iterator<Item = &RuleState> {
        self.rules
            .iter()
            .filter(|r| r.chain == CHAIN && r.masquerade)
    }

    /// The interface the masquerade rules match, if any rule has one.
    pub fn out_ifname(&self) -> Option<&str> {
        self.masquerade_rules()
            .find_map(|r| r.out_ifname.as_deref())
    }

    /// The counter of the masquerade rule of `family`.
    pub fn counter(&self, family: IpFamily) -> Option<Counter> {
        self.masquerade_rules()
            .find(|r| r.family == Some(family))
            .and_then(|r| r.counter)
    }

    /// Everything masqueraded, both families.
    pub fn masqueraded(&self) -> Counter {
        self.masquerade_rules()
            .filter_map(|r| r.counter)
            .fold(Counter::default(), |a, b| a + b)
    }

    /// Whether this is exactly what [`crate::apply`] writes for `t`
    /// (handles and counter values aside). [`crate::apply_if_changed`]
    /// uses it to leave an up-to-date table, and its counters, alone.
    pub fn matches(&self, t: &MasqueradeTable) -> bool {
        let cidrs = normalize(&t.cluster_cidrs);
        let of = |f: IpFamily| -> Vec<IpNet> {
            cidrs
                .iter()
                .copied()
                .filter(|n| IpFamily::of(n) == f)
                .collect()
        };
        let expected_sets =
            [(SET4, IpFamily::V4), (SET6, IpFamily::V6)].map(|(name, f)| SetState {
                name: name.to_string(),
                family: Some(f),
                interval: true,
                cidrs: of(f),
            });
        let expected_chain = ChainState {
            name: CHAIN.to_string(),
            chain_type: Some("nat".to_string()),
            hook: Some(NF_INET_POST_ROUTING),
            priority: Some(PRIORITY_SRCNAT),
            policy: Some(NF_ACCEPT),
        };
        let expected_rules: Vec<(IpFamily, &str)> = [(IpFamily::V4, SET4), (IpFamily::V6, SET6)]
            .into_iter()
            .filter(|(f, _)| !of(*f).is_empty())
            .collect();
        self.name == t.name
            && self.sets[..] == expected_sets[..]
            && self.chains == [expected_chain]
            && self.rules.len() == expected_rules.len()
            && self.rules.iter().zip(&expected_rules).all(|(r, (f, set))| {
                r.chain == CHAIN
                    && r.exprs.iter().map(String::as_str).eq(MASQUERADE_EXPRS)
                    && r.family == Some(*f)
                    && r.out_ifname.as_deref() == Some(t.out_ifname.as_str())
                    && r.saddr_set.as_deref() == Some(*set)
                    && r.daddr_not_in_set.as_deref() == Some(*set)
                    && r.masquerade
                    && r.counter.is_some()
            })
    }
}
