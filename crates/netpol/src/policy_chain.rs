//! One policy's chain in one direction, and the sets its rules look up.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::compile::Direction;
use crate::ir::{Chain, Element, Match, PortRange, Rule, Ruleset, Set, SetKey, Verdict};
use crate::model::{NetworkPolicy, Peer, Pod, PortRef, Protocol, Rule as PolicyRule};
use crate::names;
use crate::ranges::{Family, Range};
use crate::resolve::{named_port_elements, Index};

/// How a rule's ports are matched, one entry per rule emitted.
enum PortMatch {
    Any,
    Proto(Protocol),
    Ports(Protocol, Vec<PortRange>),
    Named(Protocol, String),
}

fn port_matches(rule: &PolicyRule) -> Vec<PortMatch> {
    if rule.ports.is_empty() {
        return vec![PortMatch::Any];
    }
    let mut whole: BTreeSet<Protocol> = BTreeSet::new();
    let mut numbered: BTreeMap<Protocol, Vec<PortRange>> = BTreeMap::new();
    let mut named: Vec<(Protocol, String)> = Vec::new();
    for p in &rule.ports {
        match &p.port {
            None => {
                whole.insert(p.protocol);
            }
            Some(PortRef::Range { start, end }) => {
                numbered.entry(p.protocol).or_default().push(PortRange {
                    start: *start,
                    end: *end,
                });
            }
            Some(PortRef::Named(n)) => {
                if !named.contains(&(p.protocol, n.clone())) {
                    named.push((p.protocol, n.clone()));
                }
            }
        }
    }
    let mut out: Vec<PortMatch> = whole.iter().map(|p| PortMatch::Proto(*p)).collect();
    for (proto, ports) in numbered {
        if !whole.contains(&proto) {
            out.push(PortMatch::Ports(proto, merge_ports(ports)));
        }
    }
    for (proto, name) in named {
        if !whole.contains(&proto) {
            out.push(PortMatch::Named(proto, name));
        }
    }
    out
}

fn merge_ports(mut ports: Vec<PortRange>) -> Vec<PortRange> {
    ports.sort();
    let mut out: Vec<PortRange> = Vec::new();
    for p in ports {
        match out.last_mut() {
            Some(last) if p.start as u32 <= last.end as u32 + 1 => last.end = last.end.max(p.end),
            _ => out.push(p),
        }
    }
    out
}

fn range_element(family: Family, r: &Range) -> Element {
    Element::Range {
        start: family.addr(r.start),
        end: family.addr(r.end),
    }
}

fn add_set(rs: &mut Ruleset, name: &str, key: SetKey, elements: impl IntoIterator<Item = Element>) {
    rs.sets.insert(
        name.to_string(),
        Set {
            key,
            elements: elements.into_iter().collect(),
        },
    );
}

/// What building one policy chain needs.
struct Ctx<'i, 'a> {
    index: &'i Index<'a>,
    policy: &'i NetworkPolicy,
    dir: Direction,
    local: &'i [&'a Pod],
    chain: String,
}

/// The chain of one policy in one direction, declaring its sets in `rs`.
pub(crate) fn policy_chain<'a>(
    index: &Index<'a>,
    policy: &NetworkPolicy,
    dir: Direction,
    local: &[&'a Pod],
    rs: &mut Ruleset,
) -> Chain {
    let cx = Ctx {
        index,
        policy,
        dir,
        local,
        chain: names::policy_chain(dir.prefix(), &policy.namespace, &policy.name),
    };
    let rules = match dir {
        Direction::Ingress => &policy.ingress,
        Direction::Egress => &policy.egress,
    };
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let matchers = port_matches(rule);
        // Egress named ports match peer pods by themselves.
        let needs_peer_sets = dir == Direction::Ingress
            || matchers.iter().any(|m| !matches!(m, PortMatch::Named(..)));
        // None = any peer.
        let peer_sets = (!rule.peers.is_empty()).then(|| {
            if needs_peer_sets {
                cx.peer_sets(i, rule, rs)
            } else {
                Vec::new()
            }
        });
        for (j, pm) in matchers.into_iter().enumerate() {
            let l4: Vec<Match> = match pm {
                PortMatch::Any => vec![],
                PortMatch::Proto(p) => vec![Match::Proto(p)],
                PortMatch::Ports(protocol, ports) => vec![Match::Ports { protocol, ports }],
                PortMatch::Named(protocol, port) => {
                    let at = format!("{}/{i}n{j}", cx.chain);
                    cx.named_rules(
                        &at,
                        rule,
                        peer_sets.as_deref(),
                        (protocol, &port),
                        rs,
                        &mut out,
                    );
                    continue;
                }
            };
            match &peer_sets {
                None => out.push(Rule::new(l4, Verdict::Accept)),
                Some(sets) => {
                    for (family, set) in sets {
                        let mut m = vec![Match::AddrIn {
                            family: *family,
                            field: dir.peer_field(),
                            set: set.clone(),
                        }];
                        m.extend(l4.iter().cloned());
                        out.push(Rule::new(m, Verdict::Accept));
                    }
                }
            }
        }
    }
    let dir_name = match dir {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    };
    Chain {
        name: cx.chain,
        base: None,
        comment: Some(format!("NetworkPolicy {} {dir_name}", policy.key())),
        rules: out,
    }
}

impl Ctx<'_, '_> {
    /// A rule's peer sets: one per family that can hold anything.
    fn peer_sets(&self, i: usize, rule: &PolicyRule, rs: &mut Ruleset) -> Vec<(Family, String)> {
        let addrs = self.index.peer_addrs(&self.policy.namespace, rule);
        let mut sets = Vec::new();
        for family in Family::ALL {
            let (has, ranges) = addrs.get(family);
            if has {
                let set = format!("{}/{i}.{}", self.chain, family.digit());
                let elems = ranges.iter().map(|r| range_element(family, r));
                add_set(rs, &set, SetKey::Addrs(family), elems);
                sets.push((family, set));
            }
        }
        sets
    }

    /// Rules for a named port: the destination pod's `(address . port)`
    /// pairs in a set `at.4`/`at.6`. Ingress: the selected local pods'
    /// ports, peers matched apart. Egress: the peer pods' ports, which also
    /// says who the peers are (an ipBlock peer has no named ports).
    fn named_rules(
        &self,
        at: &str,
        rule: &PolicyRule,
        peer_sets: Option<&[(Family, String)]>,
        (protocol, port): (Protocol, &str),
        rs: &mut Ruleset,
        out: &mut Vec<Rule>,
    ) {
        let any_family: Vec<(Family, Option<String>)> =
            Family::ALL.iter().map(|f| (*f, None)).collect();
        let (elements, families) = match self.dir {
            Direction::Ingress => {
                let families = match peer_sets {
                    None => any_family,
                    Some(sets) => sets.iter().map(|(f, s)| (*f, Some(s.clone()))).collect(),
                };
                let local = self.local.iter().copied();
                (named_port_elements(local, port, protocol), families)
            }
            Direction::Egress => {
                let has_pod_peer = rule.peers.is_empty()
                    || rule.peers.iter().any(|p| matches!(p, Peer::Pods { .. }));
                if !has_pod_peer {
                    return;
                }
                let pods = self.index.rule_pods(&self.policy.namespace, rule);
                (named_port_elements(pods, port, protocol), any_family)
            }
        };
        for (family, peer_set) in families {
            let set = format!("{at}.{}", family.digit());
            let elems = elements
                .iter()
                .filter(|(ip, _)| Family::of(ip) == family)
                .map(|(ip, p): &(IpAddr, u16)| Element::AddrPort(*ip, *p));
            add_set(rs, &set, SetKey::AddrPort(family), elems);
            let mut m = Vec::new();
            if let Some(peer) = peer_set {
                m.push(Match::AddrIn {
                    family,
                    field: self.dir.peer_field(),
                    set: peer,
                });
            }
            m.push(Match::AddrPortIn {
                family,
                protocol,
                set,
            });
            out.push(Rule::new(m, Verdict::Accept));
        }
    }
}
