//! Address ranges: ipBlock `cidr` minus `except`, unions merged into the
//! disjoint, non-adjacent intervals an nft interval set holds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// An inclusive range of one family's addresses as integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    pub start: u128,
    pub end: u128,
}

/// Address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn of_net(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }

    /// Address width in bits.
    pub fn bits(self) -> u32 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// `4` or `6`, the suffix of per-family set names.
    pub fn digit(self) -> char {
        match self {
            Family::V4 => '4',
            Family::V6 => '6',
        }
    }

    /// The nft payload keyword: `ip` or `ip6`.
    pub fn nft(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    /// The nft address type: `ipv4_addr` or `ipv6_addr`.
    pub fn addr_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }

    /// The integer `n` as an address of this family.
    pub fn addr(self, n: u128) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(n as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
        }
    }
}

/// An address as an integer.
pub fn to_int(addr: &IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u32::from(*a) as u128,
        IpAddr::V6(a) => u128::from(*a),
    }
}

/// The range a CIDR covers (host bits ignored).
pub fn of_net(net: &IpNet) -> Range {
    let net = net.trunc();
    Range {
        start: to_int(&net.network()),
        end: to_int(&net.broadcast()),
    }
}

/// The range of one address.
pub fn of_addr(addr: &IpAddr) -> Range {
    let n = to_int(addr);
    Range { start: n, end: n }
}

/// Sorts and merges overlapping and adjacent ranges.
pub fn merge(ranges: Vec<Range>) -> Vec<Range> {
    merge_with(ranges, 1)
}

/// Sorts and merges overlapping ranges only: adjacent ones stay apart, so
/// that a pod address next to another stays one element of its own (and
/// its coming and going one element change).
pub fn merge_overlapping(ranges: Vec<Range>) -> Vec<Range> {
    merge_with(ranges, 0)
}

fn merge_with(mut ranges: Vec<Range>, gap: u128) -> Vec<Range> {
    ranges.sort();
    ranges.dedup();
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(gap) => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

/// `from` minus every range of `holes`.
pub fn subtract(from: Range, holes: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    let mut cursor = Some(from.start);
    for h in merge(holes.to_vec()) {
        let Some(c) = cursor else { break };
        if h.end < c || h.start > from.end {
            continue;
        }
        if h.start > c {
            out.push(Range {
                start: c,
                end: h.start - 1,
            });
        }
        cursor = h.end.checked_add(1).filter(|n| *n <= from.end);
    }
    if let Some(c) = cursor {
        if c <= from.end {
            out.push(Range {
                start: c,
                end: from.end,
            });
        }
    }
    out
}

/// The CIDR prefix length if `r` is exactly one aligned prefix.
pub fn prefix_len(family: Family, r: Range) -> Option<u32> {
    let size = r.end.wrapping_sub(r.start).wrapping_add(1);
    if size == 0 {
        // The whole IPv6 space.
        return (family == Family::V6 && r.start == 0).then_some(0);
    }
    if !size.is_power_of_two() || !r.start.is_multiple_of(size) {
        return None;
    }
    Some(family.bits() - size.trailing_zeros())
}

#[cfg(test)]
#[path = "ranges_tests.rs"]
mod tests;
