//! CIDR sets as interval-set elements: merging overlapping and adjacent
//! CIDRs into ranges, ranges into the start/end elements nft sends for an
//! `interval` set, and elements read back into minimal CIDRs.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// An address family of the masquerade table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn of(net: &IpNet) -> IpFamily {
        match net {
            IpNet::V4(_) => IpFamily::V4,
            IpNet::V6(_) => IpFamily::V6,
        }
    }

    /// Address width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            IpFamily::V4 => 32,
            IpFamily::V6 => 128,
        }
    }

    /// Address length in bytes (the set key length).
    pub const fn key_len(self) -> usize {
        match self {
            IpFamily::V4 => 4,
            IpFamily::V6 => 16,
        }
    }

    /// The highest address, as a number.
    pub const fn max(self) -> u128 {
        match self {
            IpFamily::V4 => u32::MAX as u128,
            IpFamily::V6 => u128::MAX,
        }
    }
}

/// An inclusive range of addresses of one family, as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub start: u128,
    pub end: u128,
}

fn range_of(net: &IpNet) -> Range {
    match net {
        IpNet::V4(n) => Range {
            start: u32::from(n.network()).into(),
            end: u32::from(n.broadcast()).into(),
        },
        IpNet::V6(n) => Range {
            start: u128::from(n.network()),
            end: u128::from(n.broadcast()),
        },
    }
}

/// The CIDRs of `family` in `cidrs` as sorted, disjoint, non-adjacent
/// ranges (overlapping and adjacent CIDRs merged; host bits ignored).
pub(crate) fn merged_ranges(family: IpFamily, cidrs: &[IpNet]) -> Vec<Range> {
    let mut ranges: Vec<Range> = cidrs
        .iter()
        .filter(|n| IpFamily::of(n) == family)
        .map(range_of)
        .collect();
    merge(&mut ranges);
    ranges
}

/// Sorts and merges overlapping or adjacent ranges in place.
pub(crate) fn merge(ranges: &mut Vec<Range>) {
    ranges.sort_unstable();
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for r in ranges.drain(..) {
        match out.last_mut() {
            // Overlaps or touches (last.end + 1 == r.start, without overflow).
            Some(last) if r.start <= last.end || r.start - 1 == last.end => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    *ranges = out;
}

/// The fewest CIDRs that exactly cover `range`.
pub(crate) fn range_to_cidrs(family: IpFamily, range: Range) -> Vec<IpNet> {
    let width = family.bits();
    let mask = |bits: u32| -> u128 {
        if bits >= 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        }
    };
    let mut out = Vec::new();
    let mut start = range.start;
    loop {
        // The largest aligned block at `start` that does not pass the end.
        let mut host_bits = if start == 0 {
            width
        } else {
            start.trailing_zeros().min(width)
        };
        while host_bits > 0 && start | mask(host_bits) > range.end {
            host_bits -= 1;
        }
        out.push(net(family, start, (width - host_bits) as u8));
        let last = start | mask(host_bits);
        if last >= range.end {
            return out;
        }
        start = last + 1;
    }
}

fn net(family: IpFamily, addr: u128, prefix: u8) -> IpNet {
    match family {
        IpFamily::V4 => {
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr as u32), prefix).expect("prefix within 32"))
        }
        IpFamily::V6 => {
            IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr), prefix).expect("prefix within 128"))
        }
    }
}

/// `cidrs` merged into the fewest CIDRs covering the same addresses:
/// IPv4 first, then IPv6, each ascending. This is what [`crate::read_table`]
/// reports for a table that [`crate::apply`] wrote from `cidrs`.
pub fn normalize(cidrs: &[IpNet]) -> Vec<IpNet> {
    [IpFamily::V4, IpFamily::V6]
        .into_iter()
        .flat_map(|f| {
            merged_ranges(f, cidrs)
                .into_iter()
                .flat_map(move |r| range_to_cidrs(f, r))
        })
        .collect()
}

/// One element of an interval set, as nft sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elem {
    pub key: u128,
    /// NFT_SET_ELEM_INTERVAL_END: the first address after an interval.
    pub end: bool,
    /// The start of an interval that runs to the highest address (it has no
    /// end element; nft marks it in the element's userdata).
    pub open: bool,
}

/// The elements for `ranges` (merged), in the order and shape nft 1.0.6
/// uses: ascending; an end element at 0 when the first interval does not
/// start at 0 (the rbtree backend wants the gap below it closed); an end
/// element one past each interval, except an interval that reaches the
/// highest address, which stays open.
pub fn interval_elements(family: IpFamily, ranges: &[Range]) -> Vec<Elem> {
    let mut out = Vec::with_capacity(ranges.len() * 2 + 1);
    if ranges.first().is_some_and(|r| r.start != 0) {
        out.push(Elem {
            key: 0,
            end: true,
            open: false,
        });
    }
    for r in ranges {
        let open = r.end == family.max();
        out.push(Elem {
            key: r.start,
            end: false,
            open,
        });
        if !open {
            out.push(Elem {
                key: r.end + 1,
                end: true,
                open: false,
            });
        }
    }
    out
}

/// Ranges from the elements of an interval set, in any order: each start
/// element runs to the next end element above it, or to the highest
/// address when none follows. End elements with no start (the one at 0)
/// are skipped.
pub fn elements_to_ranges(family: IpFamily, elems: &[Elem]) -> Vec<Range> {
    let mut sorted = elems.to_vec();
    // At one key an end (closing the interval below) sorts before a start.
    sorted.sort_by_key(|e| (e.key, !e.end));
    let mut out = Vec::new();
    let mut open: Option<u128> = None;
    for e in sorted {
        match (e.end, open) {
            (false, None) => open = Some(e.key),
            (false, Some(_)) => {} // a start inside an interval: already covered
            (true, Some(start)) => {
                if e.key > start {
                    out.push(Range {
                        start,
                        end: e.key - 1,
                    });
                }
                open = None;
            }
            (true, None) => {}
        }
    }
    if let Some(start) = open {
        out.push(Range {
            start,
            end: family.max(),
        });
    }
    merge(&mut out);
    out
}

/// A key as the set stores it: the address in network byte order.
pub fn key_bytes(family: IpFamily, key: u128) -> Vec<u8> {
    match family {
        IpFamily::V4 => (key as u32).to_be_bytes().to_vec(),
        IpFamily::V6 => key.to_be_bytes().to_vec(),
    }
}

/// A key read back from the kernel; `None` when its length is wrong.
pub fn key_from_bytes(family: IpFamily, bytes: &[u8]) -> Option<u128> {
    match family {
        IpFamily::V4 => Some(u32::from_be_bytes(bytes.try_into().ok()?).into()),
        IpFamily::V6 => Some(u128::from_be_bytes(bytes.try_into().ok()?)),
    }
}

#[cfg(test)]
#[path = "cidr_tests.rs"]
mod tests;
