//! The cluster's pod CIDRs as the program sees them: two LPM tries (IPv4
//! with 8-byte keys, IPv6 with 20-byte keys: prefix length, then the
//! network address), pinned as `cidrs_v1` and `cidrs6_v1`.

use std::path::Path;

use ipnet::IpNet;

use crate::error::EbpfError;
use crate::map::{Map, MapShape, MAP_TYPE_LPM_TRIE};

const BPF_F_NO_PREALLOC: u32 = 1;
/// CIDRs per family the maps hold at most (one per node in practice).
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
    let addr: std::net::IpAddr = match k.len() {
        8 => <[u8; 4]>::try_from(&k[4..]).ok()?.into(),
        20 => <[u8; 16]>::try_from(&k[4..]).ok()?.into(),
        _ => return None,
    };
    IpNet::new(addr, len).ok()
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

    pub(crate) fn fds(&self) -> (i32, i32) {
        (self.v4.raw_fd(), self.v6.raw_fd())
    }

    fn map(&self, net: &IpNet) -> &Map {
        match net {
            IpNet::V4(_) => &self.v4,
            IpNet::V6(_) => &self.v6,
        }
    }

    /// Makes the maps hold exactly `want`; returns whether they changed.
    pub(crate) fn set(&self, want: &[IpNet]) -> Result<bool, EbpfError> {
        let want: Vec<IpNet> = want.iter().map(IpNet::trunc).collect();
        let have = self.list()?;
        let mut changed = false;
        for net in have.iter().filter(|n| !want.contains(n)) {
            self.map(net).delete(&lpm_key(net))?;
            changed = true;
        }
        for net in want.iter().filter(|n| !have.contains(n)) {
            self.map(net).update(&lpm_key(net), &1u32.to_ne_bytes())?;
            changed = true;
        }
        Ok(changed)
    }

    /// Both maps' CIDRs, sorted.
    pub(crate) fn list(&self) -> Result<Vec<IpNet>, EbpfError> {
        let mut out = Vec::new();
        for map in [&self.v4, &self.v6] {
            out.extend(map.keys()?.iter().filter_map(|k| parse_key(k)));
        }
        out.sort();
        Ok(out)
    }
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
}
