//! What the program needs to encapsulate and decapsulate VXLAN itself
//! (see [`crate::program::vxlan`]), in two maps pinned beside the others:
//!
//! * `tunnel_v1`, an array of one 24-byte entry:
//!
//!   | offset | field | byte order |
//!   |---|---|---|
//!   | 0 | the tunnel device's ifindex; 0: VXLAN left to the device | host |
//!   | 4 | the uplink's ifindex (where encapsulated packets leave) | host |
//!   | 8 | this node's underlay IPv4 | network |
//!   | 12 | VNI (3 bytes), then a zero byte: the VXLAN header's 2nd word | network |
//!   | 16 | the tunnel device's MAC (this node's VTEP) | — |
//!   | 22 | the UDP port | network |
//!
//! * `vteps_v1`, a hash of the peers: key their VTEP MAC and two zero
//!   bytes, value their underlay IPv4 (network order): the device's FDB.
//!
//! [`TunnelMaps::set`] writes the peers before turning the entry on and
//! turns it off before removing peers, so the program never sees a
//! device without the peers ferryd means it to reach.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::error::EbpfError;
use crate::map::{Map, MapShape, MAP_TYPE_ARRAY, MAP_TYPE_HASH};
use crate::program::vxlan::CONFIG_LEN;

pub(crate) const TUNNEL_PIN: &str = "tunnel_v1";
pub(crate) const VTEPS_PIN: &str = "vteps_v1";
pub(crate) const TUNNEL_SHAPE: MapShape = MapShape {
    map_type: MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: CONFIG_LEN,
};
pub(crate) const VTEPS_SHAPE: MapShape = MapShape {
    map_type: MAP_TYPE_HASH,
    key_size: 8,
    value_size: 4,
};
/// Peers the map holds at most.
const MAX_PEERS: u32 = 16384;

/// ferryd's VXLAN device as the program needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanTunnel {
    /// The device.
    pub ifindex: u32,
    /// The interface carrying this node's underlay address.
    pub uplink: u32,
    /// This node's underlay address (the device's local address).
    pub local: Ipv4Addr,
    /// The device's MAC.
    pub mac: [u8; 6],
    pub vni: u32,
    pub port: u16,
    /// Peer VTEP MAC → its underlay address (the device's FDB).
    pub peers: BTreeMap<[u8; 6], Ipv4Addr>,
}

impl VxlanTunnel {
    fn config(&self) -> [u8; CONFIG_LEN as usize] {
        let mut v = [0u8; CONFIG_LEN as usize];
        v[0..4].copy_from_slice(&self.ifindex.to_ne_bytes());
        v[4..8].copy_from_slice(&self.uplink.to_ne_bytes());
        v[8..12].copy_from_slice(&self.local.octets());
        v[12..16].copy_from_slice(&(self.vni << 8).to_be_bytes());
        v[16..22].copy_from_slice(&self.mac);
        v[22..24].copy_from_slice(&self.port.to_be_bytes());
        v
    }

    fn from_config(v: &[u8], peers: BTreeMap<[u8; 6], Ipv4Addr>) -> Option<VxlanTunnel> {
        let word = |at: usize| u32::from_ne_bytes(v[at..at + 4].try_into().expect("4 bytes"));
        let ifindex = word(0);
        (ifindex != 0).then(|| VxlanTunnel {
            ifindex,
            uplink: word(4),
            local: Ipv4Addr::new(v[8], v[9], v[10], v[11]),
            vni: u32::from_be_bytes(v[12..16].try_into().expect("4 bytes")) >> 8,
            mac: v[16..22].try_into().expect("6 bytes"),
            port: u16::from_be_bytes([v[22], v[23]]),
            peers,
        })
    }
}

fn vtep_key(mac: &[u8; 6]) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..6].copy_from_slice(mac);
    k
}

/// The two maps.
#[derive(Debug)]
pub(crate) struct TunnelMaps {
    pub(crate) config: Map,
    pub(crate) vteps: Map,
}

impl TunnelMaps {
    pub(crate) fn open_or_create(dir: &Path) -> Result<TunnelMaps, EbpfError> {
        Ok(TunnelMaps {
            config: Map::open_or_create(dir, TUNNEL_PIN, TUNNEL_SHAPE, 1, 0, "ferry_tunnel")?,
            vteps: Map::open_or_create(dir, VTEPS_PIN, VTEPS_SHAPE, MAX_PEERS, 0, "ferry_vteps")?,
        })
    }

    /// The pinned maps; `Ok(None)` when either is missing.
    pub(crate) fn open(dir: &Path) -> Result<Option<TunnelMaps>, EbpfError> {
        let config = Map::open(&dir.join(TUNNEL_PIN), TUNNEL_SHAPE)?;
        let vteps = Map::open(&dir.join(VTEPS_PIN), VTEPS_SHAPE)?;
        Ok(config
            .zip(vteps)
            .map(|(config, vteps)| TunnelMaps { config, vteps }))
    }

    pub(crate) fn ids(&self) -> [u32; 2] {
        [self.config.id(), self.vteps.id()]
    }

    /// What the maps say: `None` when the entry is off.
    pub(crate) fn get(&self) -> Result<Option<VxlanTunnel>, EbpfError> {
        let Some(v) = self.config.lookup(&0u32.to_ne_bytes(), 1)? else {
            return Ok(None);
        };
        let mut peers = BTreeMap::new();
        for key in self.vteps.keys()? {
            if let Some(ip) = self.vteps.lookup(&key, 1)? {
                let mac: [u8; 6] = key[..6].try_into().expect("8-byte keys");
                peers.insert(mac, Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]));
            }
        }
        Ok(VxlanTunnel::from_config(&v, peers))
    }

    /// Makes the maps say `want` (`None`: the device does all VXLAN);
    /// returns whether they changed.
    pub(crate) fn set(&self, want: Option<&VxlanTunnel>) -> Result<bool, EbpfError> {
        let have = self.get()?;
        if have.as_ref() == want {
            return Ok(false);
        }
        let key = 0u32.to_ne_bytes();
        let empty = BTreeMap::new();
        let peers = want.map_or(&empty, |t| &t.peers);
        if want.is_none() {
            self.config.update(&key, &[0u8; CONFIG_LEN as usize])?;
        }
        for (mac, ip) in peers {
            self.vteps.update(&vtep_key(mac), &ip.octets())?;
        }
        for key in self.vteps.keys()? {
            let mac: [u8; 6] = key[..6].try_into().expect("8-byte keys");
            if !peers.contains_key(&mac) {
                self.vteps.delete(&key)?;
            }
        }
        if let Some(t) = want {
            self.config.update(&key, &t.config())?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_is_laid_out_as_documented() {
        let t = VxlanTunnel {
            ifindex: 7,
            uplink: 2,
            local: Ipv4Addr::new(172, 16, 97, 75),
            mac: [0x0e, 0xf7, 172, 16, 97, 75],
            vni: 0x01_0203,
            port: 4789,
            peers: BTreeMap::new(),
        };
        let v = t.config();
        assert_eq!(v[0..4], 7u32.to_ne_bytes());
        assert_eq!(v[4..8], 2u32.to_ne_bytes());
        assert_eq!(v[8..12], [172, 16, 97, 75]);
        assert_eq!(v[12..16], [1, 2, 3, 0], "as on the wire");
        assert_eq!(v[16..22], [0x0e, 0xf7, 172, 16, 97, 75]);
        assert_eq!(v[22..24], [0x12, 0xb5], "4789 in network order");
        assert_eq!(VxlanTunnel::from_config(&v, BTreeMap::new()), Some(t));
        assert_eq!(VxlanTunnel::from_config(&[0; 24], BTreeMap::new()), None);
    }
}
