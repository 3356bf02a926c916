//! The cluster's pod CIDRs as the program sees them: two LPM tries (IPv4
//! with 8-byte keys, IPv6 with 20-byte keys: prefix length, then the
//! network address), pinned as `cidrs_v1` and `cidrs6_v1`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use ipnet::IpNet;

use crate::error::EbpfError;
use crate::fastpath::open_or_create;
use crate::sys;

const MAP_TYPE_LPM_TRIE: u32 = 11;
const BPF_F_NO_PREALLOC: u32 = 1;
/// CIDRs per family the maps hold at most (one per node in practice).
const MAX_CIDRS: u32 = 16384;

pub(crate) const PINS: [&str; 2] = ["cidrs_v1", "cidrs6_v1"];

#[derive(Debug)]
pub(crate) struct CidrMaps {
    v4: OwnedFd,
    v6: OwnedFd,
}

fn key_len(v6: bool) -> u32 {
    if v6 {
        20
    } else {
        8
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
    /// Opens the pinned maps in `dir`, or makes and pins them.
    pub(crate) fn open_or_create(dir: &Path) -> Result<CidrMaps, EbpfError> {
        let make = |pin: &str, v6: bool, name: &str| {
            open_or_create(dir, pin, || {
                sys::map_create(
                    MAP_TYPE_LPM_TRIE,
                    key_len(v6),
                    4,
                    MAX_CIDRS,
                    BPF_F_NO_PREALLOC,
                    name,
                )
            })
        };
        Ok(CidrMaps {
            v4: make(PINS[0], false, "ferry_cidrs")?,
            v6: make(PINS[1], true, "ferry_cidrs6")?,
        })
    }

    pub(crate) fn fds(&self) -> (i32, i32) {
        (self.v4.as_raw_fd(), self.v6.as_raw_fd())
    }

    fn map(&self, net: &IpNet) -> &OwnedFd {
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
            sys::map_delete(self.map(net).as_fd(), &lpm_key(net))
                .map_err(EbpfError::sys("BPF_MAP_DELETE_ELEM"))?;
            changed = true;
        }
        for net in want.iter().filter(|n| !have.contains(n)) {
            sys::map_update(self.map(net).as_fd(), &lpm_key(net), &1u32.to_ne_bytes())
                .map_err(EbpfError::sys("BPF_MAP_UPDATE_ELEM"))?;
            changed = true;
        }
        Ok(changed)
    }

    /// Both maps' CIDRs, sorted.
    pub(crate) fn list(&self) -> Result<Vec<IpNet>, EbpfError> {
        let mut out = Vec::new();
        for (map, v6) in [(&self.v4, false), (&self.v6, true)] {
            let mut key = vec![0u8; key_len(v6) as usize];
            let mut prev: Option<Vec<u8>> = None;
            while sys::map_next_key(map.as_fd(), prev.as_deref(), &mut key)
                .map_err(EbpfError::sys("BPF_MAP_GET_NEXT_KEY"))?
            {
                out.extend(parse_key(&key));
                prev = Some(key.clone());
            }
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
