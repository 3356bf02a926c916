//! The prefixes the program looks source and destination up in: two LPM
//! tries (IPv4 with 8-byte keys, IPv6 with 20-byte keys: prefix length,
//! then the network address; 4-byte values), pinned as `cidrs_v1` and
//! `cidrs6_v1`.
//!
//! An entry's value is a set of bits: [`CLUSTER`] for a cluster pod CIDR,
//! [`EXCLUDED`] for the host prefix (/32, /128) of an address that must
//! leave the fast path (a pod isolated by a NetworkPolicy on this node).
//! The program forwards only when the longest match for both addresses
//! is exactly [`CLUSTER`]: an excluded host prefix inside a pod CIDR is
//! longer than the CIDR, so it wins.
//!
//! Upgrades: the maps' shape (hence their pins) is what it was; older
//! ferryds wrote 1 (= [`CLUSTER`]) into every entry, so their maps mean
//! the same here. An older program still attached until the new one
//! replaces it reads an excluded host prefix as a pod address, i.e. as if
//! nothing were excluded; an older ferryd (a downgrade) deletes the
//! exclusions, as entries it did not write.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use crate::error::EbpfError;
use crate::map::{Map, MapShape, MAP_TYPE_LPM_TRIE};

/// Value bit: the prefix is one of the cluster's pod CIDRs.
pub const CLUSTER: u32 = 1;
/// Value bit: the host prefix of an address excluded from the fast path.
pub const EXCLUDED: u32 = 2;
const KNOWN: u32 = CLUSTER | EXCLUDED;

const BPF_F_NO_PREALLOC: u32 = 1;
/// Entries (CIDRs and excluded addresses) per family the maps hold at most.
const MAX_CIDRS: u32 = 16384;

pub(crate) const PINS: [&str; 2] = ["cidrs_v1", "cidrs6_v1"];

#[derive(Debug)]
pub(crate) struct CidrMaps {
    v4: Map,
    v6: Map,
}

/// The maps' shape: an LPM trie with a 4-byte value.
pub(crate) fn shape(v6: bool) -> MapShape {
    MapShape {
        map_type: MAP_TYPE_LPM_TRIE,
        key_size: if v6 { 20 } else { 8 },
        value_size: 4,
    }
}

fn lpm_key(net: &IpNet) -> Vec<u8> {
    let mut k = u32::from(net.prefix_len()).to_ne_bytes().to_vec();
    match net.trunc() {
        IpNet::V4(n) => k.extend(n.network().octets()),
        IpNet::V6(n) => k.extend(n.network().octets()),
    }
    k
}

fn parse_key(k: &[u8]) -> Option<IpNet> {
    let len = u8::try_from(u32::from_ne_bytes(k.get(..4)?.try_into().ok()?)).ok()?;
    let addr: IpAddr = match k.len() {
        8 => <[u8; 4]>::try_from(&k[4..]).ok()?.into(),
        20 => <[u8; 16]>::try_from(&k[4..]).ok()?.into(),
        _ => return None,
    };
    IpNet::new(addr, len).ok()
}

/// The writes that make `bit` set on exactly the prefixes in `want`,
/// leaving the other known bits as they are: `(prefix, value)`, value 0
/// meaning delete. Unknown bits are dropped, and so is an entry left
/// with none.
fn plan(have: &BTreeMap<IpNet, u32>, bit: u32, want: &BTreeSet<IpNet>) -> Vec<(IpNet, u32)> {
    let all: BTreeSet<&IpNet> = have.keys().chain(want).collect();
    all.into_iter()
        .filter_map(|net| {
            let old = have.get(net).copied();
            let known = old.unwrap_or(0) & KNOWN;
            let new = if want.contains(net) {
                known | bit
            } else {
                known & !bit
            };
            let target = (new != 0).then_some(new);
            (target != old).then_some((*net, new))
        })
        .collect()
}

impl CidrMaps {
    /// Opens the pinned maps in `dir` (refusing ones of another shape), or
    /// makes and pins them.
    pub(crate) fn open_or_create(dir: &Path) -> Result<CidrMaps, EbpfError> {
        let make = |pin: &str, v6: bool, name: &str| {
            Map::open_or_create(dir, pin, shape(v6), MAX_CIDRS, BPF_F_NO_PREALLOC, name)
        };
        Ok(CidrMaps {
            v4: make(PINS[0], false, "ferry_cidrs")?,
            v6: make(PINS[1], true, "ferry_cidrs6")?,
        })
    }

    /// Opens both pinned maps in `dir`; `Ok(None)` when either is not
    /// pinned there, [`EbpfError::MapMismatch`] when it is not this map.
    pub(crate) fn open(dir: &Path) -> Result<Option<CidrMaps>, EbpfError> {
        let v4 = Map::open(&dir.join(PINS[0]), shape(false))?;
        let v6 = Map::open(&dir.join(PINS[1]), shape(true))?;
        Ok(v4.zip(v6).map(|(v4, v6)| CidrMaps { v4, v6 }))
    }

    /// Both maps' kernel ids.
    pub(crate) fn ids(&self) -> [u32; 2] {
        [self.v4.id(), self.v6.id()]
    }

    pub(crate) fn fds(&self) -> (i32, i32) {
        (self.v4.raw_fd(), self.v6.raw_fd())
    }

    fn map(&self, net: &IpNet) -> &Map {
        match net {
            IpNet::V4(_) => &self.v4,
            IpNet::V6(_) => &self.v6,
        }
    }

    /// Both maps' entries and their values.
    fn entries(&self) -> Result<BTreeMap<IpNet, u32>, EbpfError> {
        let mut out = BTreeMap::new();
        for map in [&self.v4, &self.v6] {
            for key in map.keys()? {
                let (Some(net), Some(value)) = (parse_key(&key), map.lookup(&key, 1)?) else {
                    continue; // not ferry's key, or deleted since the listing
                };
                let value = value.get(..4).and_then(|v| v.try_into().ok());
                out.insert(net, value.map_or(0, u32::from_ne_bytes));
            }
        }
        Ok(out)
    }

    /// Makes `bit` set on exactly `want`; returns whether anything changed.
    fn converge(&self, bit: u32, want: &BTreeSet<IpNet>) -> Result<bool, EbpfError> {
        let writes = plan(&self.entries()?, bit, want);
        for (net, value) in &writes {
            if *value == 0 {
                self.map(net).delete(&lpm_key(net))?;
            } else {
                self.map(net).update(&lpm_key(net), &value.to_ne_bytes())?;
            }
        }
        Ok(!writes.is_empty())
    }

    /// Makes the cluster CIDRs exactly `want` (excluded addresses stay);
    /// returns whether the maps changed.
    pub(crate) fn set(&self, want: &[IpNet]) -> Result<bool, EbpfError> {
        self.converge(CLUSTER, &want.iter().map(IpNet::trunc).collect())
    }

    /// The cluster CIDRs (both families), sorted.
    pub(crate) fn list(&self) -> Result<Vec<IpNet>, EbpfError> {
        Ok(with_bit(self.entries()?, CLUSTER).collect())
    }

    /// Makes the excluded addresses exactly `want` (the CIDRs stay);
    /// returns whether the maps changed.
    pub(crate) fn set_excluded(&self, want: &BTreeSet<IpAddr>) -> Result<bool, EbpfError> {
        self.converge(EXCLUDED, &want.iter().map(|a| IpNet::from(*a)).collect())
    }

    /// The excluded addresses.
    pub(crate) fn excluded(&self) -> Result<BTreeSet<IpAddr>, EbpfError> {
        Ok(with_bit(self.entries()?, EXCLUDED)
            .map(|n| n.addr())
            .collect())
    }
}

fn with_bit(entries: BTreeMap<IpNet, u32>, bit: u32) -> impl Iterator<Item = IpNet> {
    entries
        .into_iter()
        .filter(move |(_, v)| v & bit != 0)
        .map(|(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lpm_keys_are_prefix_then_network_bytes() {
        let k = lpm_key(&"10.244.1.7/24".parse().unwrap());
        assert_eq!(&k[..4], &24u32.to_ne_bytes());
        assert_eq!(&k[4..], &[10, 244, 1, 0]);
        let k6 = lpm_key(&"fd00:10:244:1::7/64".parse().unwrap());
        assert_eq!(k6.len(), 20);
        assert_eq!(&k6[..4], &64u32.to_ne_bytes());
        assert_eq!(&k6[4..12], &[0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 1]);
        assert!(k6[12..].iter().all(|b| *b == 0));
        for net in ["10.244.0.0/16", "fd00:10:244::/56"] {
            let n: IpNet = net.parse().unwrap();
            assert_eq!(parse_key(&lpm_key(&n)), Some(n));
        }
        assert_eq!(parse_key(&[1, 2, 3]), None);
    }

    fn nets(s: &[&str]) -> BTreeSet<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn have(s: &[(&str, u32)]) -> BTreeMap<IpNet, u32> {
        s.iter().map(|(n, v)| (n.parse().unwrap(), *v)).collect()
    }

    #[test]
    fn excluding_adds_and_removes_only_the_excluded_bit() {
        let h = have(&[
            ("10.244.0.0/16", CLUSTER),
            ("10.244.0.5/32", EXCLUDED),
            ("10.244.0.6/32", EXCLUDED),
        ]);
        let writes = plan(&h, EXCLUDED, &nets(&["10.244.0.6/32", "fd00::7/128"]));
        assert_eq!(
            writes,
            vec![
                ("10.244.0.5/32".parse().unwrap(), 0),
                ("fd00::7/128".parse().unwrap(), EXCLUDED),
            ]
        );
        // Setting the CIDRs leaves the exclusions be.
        let writes = plan(&h, CLUSTER, &nets(&["10.245.0.0/16"]));
        assert_eq!(
            writes,
            vec![
                ("10.244.0.0/16".parse().unwrap(), 0),
                ("10.245.0.0/16".parse().unwrap(), CLUSTER),
            ]
        );
        assert!(plan(&h, EXCLUDED, &nets(&["10.244.0.5/32", "10.244.0.6/32"])).is_empty());
    }

    #[test]
    fn a_prefix_both_cidr_and_excluded_keeps_the_other_bit() {
        let h = have(&[("10.244.0.5/32", CLUSTER)]);
        let both = plan(&h, EXCLUDED, &nets(&["10.244.0.5/32"]));
        assert_eq!(both, vec![("10.244.0.5/32".parse().unwrap(), 3)]);
        let h = have(&[("10.244.0.5/32", CLUSTER | EXCLUDED)]);
        let back = plan(&h, EXCLUDED, &BTreeSet::new());
        assert_eq!(back, vec![("10.244.0.5/32".parse().unwrap(), CLUSTER)]);
    }

    #[test]
    fn entries_with_no_known_bit_are_deleted_and_unknown_bits_dropped() {
        let h = have(&[("10.244.0.9/32", 0), ("10.244.0.0/16", CLUSTER | 8)]);
        let writes = plan(&h, CLUSTER, &nets(&["10.244.0.0/16"]));
        assert_eq!(
            writes,
            vec![
                ("10.244.0.0/16".parse().unwrap(), CLUSTER),
                ("10.244.0.9/32".parse().unwrap(), 0),
            ]
        );
    }
}
