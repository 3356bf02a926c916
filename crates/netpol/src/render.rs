//! [`Ruleset`] → nft's text syntax, laid out as `nft list ruleset` shows
//! it (one element list per line). `nft -f` accepts it.

use std::fmt::Write;
use std::net::IpAddr;

use crate::diff::ElementChange;
use crate::ir::{Chain, Element, Match, PortRange, Rule, Ruleset, Set, SetKey, Verdict};
use crate::ranges::{self, Family, Range};

/// The table as nft text.
pub fn render(rs: &Ruleset) -> String {
    let mut blocks: Vec<String> = Vec::new();
    for c in &rs.counters {
        blocks.push(format!("\tcounter {c} {{\n\t\tpackets 0 bytes 0\n\t}}\n"));
    }
    // The node's maps and sets first, then the policies' (named `dir/..`).
    let (policy, node): (Vec<_>, Vec<_>) = rs.sets.iter().partition(|(n, _)| n.contains('/'));
    for (name, set) in node.into_iter().chain(policy) {
        blocks.push(set_block(name, set));
    }
    for chain in &rs.chains {
        blocks.push(chain_block(chain));
    }
    format!("table inet {} {{\n{}}}\n", rs.table, blocks.join("\n"))
}

fn set_block(name: &str, set: &Set) -> String {
    let mut s = String::new();
    let f = set.key.family();
    let t = f.addr_type();
    let (kind, ty, interval) = match set.key {
        SetKey::Addrs(_) => ("set", t.to_string(), true),
        SetKey::AddrPort(_) => ("set", format!("{t} . inet_service"), false),
        SetKey::AddrPair(_) => ("set", format!("{t} . {t}"), false),
        SetKey::Verdict(_) => ("map", format!("{t} : verdict"), false),
    };
    let _ = writeln!(s, "\t{kind} {name} {{\n\t\ttype {ty}");
    if interval {
        s.push_str("\t\tflags interval\n");
    }
    if !set.elements.is_empty() {
        let elems: Vec<String> = set.elements.iter().map(element).collect();
        let _ = writeln!(s, "\t\telements = {{ {} }}", elems.join(", "));
    }
    s.push_str("\t}\n");
    s
}

/// One element in nft syntax.
pub fn element(e: &Element) -> String {
    match e {
        Element::Range { start, end } => addr_range(start, end),
        Element::AddrPort(a, p) => format!("{a} . {p}"),
        Element::AddrPair(a, b) => format!("{a} . {b}"),
        Element::Jump(a, chain) => format!("{a} : jump {chain}"),
    }
}

/// A range as nft prints it: an address, a prefix, or `a-b`.
fn addr_range(start: &IpAddr, end: &IpAddr) -> String {
    if start == end {
        return start.to_string();
    }
    let family = Family::of(start);
    let r = Range {
        start: ranges::to_int(start),
        end: ranges::to_int(end),
    };
    match ranges::prefix_len(family, r) {
        Some(len) => format!("{start}/{len}"),
        None => format!("{start}-{end}"),
    }
}

fn chain_block(c: &Chain) -> String {
    let mut s = format!("\tchain {} {{\n", c.name);
    if let Some(comment) = &c.comment {
        let _ = writeln!(s, "\t\tcomment {}", quote(comment));
    }
    if let Some(base) = c.base {
        let prio = match base.priority {
            0 => "filter".to_string(),
            p if p > 0 => format!("filter + {p}"),
            p => format!("filter - {}", -p),
        };
        let _ = writeln!(
            s,
            "\t\ttype filter hook forward priority {prio}; policy accept;"
        );
    }
    for r in &c.rules {
        let _ = writeln!(s, "\t\t{}", rule(r));
    }
    s.push_str("\t}\n");
    s
}

/// One rule in nft syntax.
pub fn rule(r: &Rule) -> String {
    let mut parts: Vec<String> = r.matches.iter().map(match_text).collect();
    for c in &r.counters {
        parts.push(format!("counter name {}", quote(c)));
    }
    parts.extend(match &r.verdict {
        Verdict::Continue => None,
        Verdict::Accept => Some("accept".to_string()),
        Verdict::Drop => Some("drop".to_string()),
        Verdict::Jump(c) => Some(format!("jump {c}")),
        Verdict::Vmap { family, field, map } => {
            Some(format!("{} {} vmap @{map}", family.nft(), field.nft()))
        }
        Verdict::Log { prefix, group } => {
            Some(format!("log prefix {} group {group}", quote(prefix)))
        }
    });
    if let Some(c) = &r.comment {
        parts.push(format!("comment {}", quote(c)));
    }
    parts.join(" ")
}

fn match_text(m: &Match) -> String {
    match m {
        Match::CtEstablished => "ct state established,related".to_string(),
        Match::FromNode => "fib saddr type local".to_string(),
        Match::AddrIn { family, field, set } => {
            format!("{} {} @{set}", family.nft(), field.nft())
        }
        Match::PairIn { family, set } => {
            let f = family.nft();
            format!("{f} saddr . {f} daddr @{set}")
        }
        Match::AddrPortIn {
            family,
            protocol,
            set,
        } => format!("{} daddr . {} dport @{set}", family.nft(), protocol.nft()),
        Match::Proto(p) => format!("meta l4proto {}", p.nft()),
        Match::Limit { rate, burst } => {
            format!("limit rate {rate}/second burst {burst} packets")
        }
        Match::Ports { protocol, ports } => {
            let list: Vec<String> = ports.iter().map(port_range).collect();
            if list.len() == 1 {
                format!("{} dport {}", protocol.nft(), list[0])
            } else {
                format!("{} dport {{ {} }}", protocol.nft(), list.join(", "))
            }
        }
    }
}

fn port_range(p: &PortRange) -> String {
    if p.start == p.end {
        p.start.to_string()
    } else {
        format!("{}-{}", p.start, p.end)
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace(['"', '\\'], "_"))
}

/// nft commands applying element changes (removals first), for logs,
/// `ferryd status` and tests; one `nft -f` runs them atomically.
pub fn element_commands(table: &str, changes: &[ElementChange]) -> String {
    let mut s = String::new();
    for c in changes.iter().filter(|c| !c.removed.is_empty()) {
        // A map element is deleted by its key.
        let keys: Vec<String> = c
            .removed
            .iter()
            .map(|e| match e {
                Element::Jump(a, _) => a.to_string(),
                e => element(e),
            })
            .collect();
        let _ = writeln!(
            s,
            "delete element inet {table} {} {{ {} }}",
            c.set,
            keys.join(", ")
        );
    }
    for c in changes.iter().filter(|c| !c.added.is_empty()) {
        let elems: Vec<String> = c.added.iter().map(element).collect();
        let _ = writeln!(
            s,
            "add element inet {table} {} {{ {} }}",
            c.set,
            elems.join(", ")
        );
    }
    s
}
