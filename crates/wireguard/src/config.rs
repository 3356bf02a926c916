//! What a WireGuard device should hold ([`DeviceConfig`]), what it holds
//! ([`DeviceState`]), and the pure [`plan`] from one to the other: the
//! [`Changes`] either driver applies.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ipnet::IpNet;

use crate::key::{PrivateKey, PublicKey};

/// The UDP port ferry's WireGuard listens on (WireGuard's usual one).
pub const DEFAULT_PORT: u16 = 51820;

/// One peer as wanted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PeerConfig {
    pub public_key: PublicKey,
    pub endpoint: SocketAddr,
    /// Sorted, deduplicated by [`DeviceConfig::new`].
    pub allowed_ips: Vec<IpNet>,
}

/// The device as wanted (the private key is passed beside it, so this
/// can be logged and compared freely).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// The public key of the private key the device must have.
    pub public_key: PublicKey,
    pub listen_port: u16,
    pub peers: Vec<PeerConfig>,
}

impl DeviceConfig {
    pub fn new(key: &PrivateKey, listen_port: u16, mut peers: Vec<PeerConfig>) -> DeviceConfig {
        for p in &mut peers {
            p.allowed_ips = p.allowed_ips.iter().map(IpNet::trunc).collect();
            p.allowed_ips.sort();
            p.allowed_ips.dedup();
        }
        peers.sort();
        DeviceConfig {
            public_key: key.public_key(),
            listen_port,
            peers,
        }
    }
}

/// One peer as the device reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerState {
    pub endpoint: Option<SocketAddr>,
    pub allowed_ips: Vec<IpNet>,
    /// When the last handshake was, as the driver reports it (the
    /// kernel: seconds and nanoseconds since the epoch; boringtun: since
    /// the handshake); both 0: none yet.
    pub last_handshake_sec: u64,
    pub last_handshake_nsec: u32,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

impl PeerState {
    /// Whether a handshake with this peer has completed since the device
    /// was made (so a session exists, or did).
    pub fn has_handshake(&self) -> bool {
        self.last_handshake_sec != 0 || self.last_handshake_nsec != 0
    }
}

/// The device as it reports itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceState {
    /// The public key of its private key; `None`: it has none.
    pub public_key: Option<PublicKey>,
    /// 0: not listening yet (or a random port the driver hides).
    pub listen_port: u16,
    pub peers: BTreeMap<PublicKey, PeerState>,
}

/// What to change on a device. Peers in `upsert` get exactly their
/// endpoint and allowed IPs (`replace_allowed_ips`); `remove` lists
/// peers to delete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    pub set_private_key: bool,
    pub listen_port: Option<u16>,
    pub upsert: Vec<PeerConfig>,
    pub remove: Vec<PublicKey>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        !self.set_private_key
            && self.listen_port.is_none()
            && self.upsert.is_empty()
            && self.remove.is_empty()
    }
}

/// Pure: the changes that make a device holding `have` hold `want`. A
/// key rotation on a peer is a removal of the old key and an addition of
/// the new one; the device's own key is set when its public key differs.
pub fn plan(have: &DeviceState, want: &DeviceConfig) -> Changes {
    let mut c = Changes {
        set_private_key: have.public_key != Some(want.public_key),
        listen_port: (have.listen_port != want.listen_port).then_some(want.listen_port),
        ..Changes::default()
    };
    for p in &want.peers {
        let same = have.peers.get(&p.public_key).is_some_and(|h| {
            let mut ips: Vec<IpNet> = h.allowed_ips.clone();
            ips.sort();
            h.endpoint == Some(p.endpoint) && ips == p.allowed_ips
        });
        if !same {
            c.upsert.push(p.clone());
        }
    }
    c.remove = have
        .peers
        .keys()
        .filter(|k| !want.peers.iter().any(|p| p.public_key == **k))
        .copied()
        .collect();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PrivateKey {
        PrivateKey::from_bytes([n; 32])
    }

    fn peer(n: u8, ep: &str, ips: &[&str]) -> PeerConfig {
        PeerConfig {
            public_key: key(n).public_key(),
            endpoint: ep.parse().unwrap(),
            allowed_ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    fn state_of(cfg: &DeviceConfig) -> DeviceState {
        DeviceState {
            public_key: Some(cfg.public_key),
            listen_port: cfg.listen_port,
            peers: cfg
                .peers
                .iter()
                .map(|p| {
                    (
                        p.public_key,
                        PeerState {
                            endpoint: Some(p.endpoint),
                            allowed_ips: p.allowed_ips.iter().rev().copied().collect(),
                            ..PeerState::default()
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_fresh_device_gets_key_port_and_every_peer() {
        let want = DeviceConfig::new(
            &key(1),
            DEFAULT_PORT,
            vec![
                peer(3, "10.0.0.3:51820", &["10.244.3.0/24"]),
                peer(2, "10.0.0.2:51820", &["fd00::/64", "10.244.2.0/24"]),
            ],
        );
        let c = plan(&DeviceState::default(), &want);
        assert!(c.set_private_key);
        assert_eq!(c.listen_port, Some(51820));
        assert_eq!(c.upsert, want.peers);
        assert!(c.remove.is_empty());
        // Allowed IPs are normalised: sorted, host bits cleared.
        let p2 = want
            .peers
            .iter()
            .find(|p| p.public_key == key(2).public_key());
        assert_eq!(
            p2.unwrap().allowed_ips,
            [
                "10.244.2.0/24".parse().unwrap(),
                "fd00::/64".parse().unwrap()
            ]
        );
    }

    #[test]
    fn a_device_that_matches_needs_nothing() {
        let want = DeviceConfig::new(
            &key(1),
            DEFAULT_PORT,
            vec![peer(
                2,
                "[fd00::2]:51820",
                &["10.244.2.0/24", "fd00:1::/64"],
            )],
        );
        assert!(plan(&state_of(&want), &want).is_empty());
    }

    #[test]
    fn ip_change_rotation_and_leaving_nodes() {
        let old = DeviceConfig::new(
            &key(1),
            DEFAULT_PORT,
            vec![
                peer(2, "10.0.0.2:51820", &["10.244.2.0/24"]),
                peer(3, "10.0.0.3:51820", &["10.244.3.0/24"]),
                peer(4, "10.0.0.4:51820", &["10.244.4.0/24"]),
            ],
        );
        let want = DeviceConfig::new(
            &key(1),
            DEFAULT_PORT,
            vec![
                // node 2 moved
                peer(2, "10.0.1.2:51820", &["10.244.2.0/24"]),
                // node 3 rotated its key (now key 33)
                peer(33, "10.0.0.3:51820", &["10.244.3.0/24"]),
                // node 4 left; node 5 joined
                peer(5, "10.0.0.5:51820", &["10.244.5.0/24"]),
            ],
        );
        let c = plan(&state_of(&old), &want);
        assert!(!c.set_private_key);
        assert_eq!(c.listen_port, None);
        let mut up: Vec<_> = c.upsert.iter().map(|p| p.public_key).collect();
        up.sort();
        let mut exp = vec![
            key(2).public_key(),
            key(33).public_key(),
            key(5).public_key(),
        ];
        exp.sort();
        assert_eq!(up, exp);
        let mut rm = c.remove.clone();
        rm.sort();
        let mut exp = vec![key(3).public_key(), key(4).public_key()];
        exp.sort();
        assert_eq!(rm, exp);
    }

    #[test]
    fn own_key_rotation_and_port() {
        let want = DeviceConfig::new(&key(9), 51821, vec![]);
        let mut have = state_of(&DeviceConfig::new(&key(1), DEFAULT_PORT, vec![]));
        let c = plan(&have, &want);
        assert!(c.set_private_key);
        assert_eq!(c.listen_port, Some(51821));
        have.public_key = Some(key(9).public_key());
        have.listen_port = 51821;
        assert!(plan(&have, &want).is_empty());
    }

    #[test]
    fn changed_allowed_ips_are_replaced() {
        let old = DeviceConfig::new(
            &key(1),
            DEFAULT_PORT,
            vec![peer(2, "10.0.0.2:51820", &["10.244.2.0/24"])],
        );
        let want = DeviceConfig::new(
            &key(1),
            DEFAULT_PORT,
            vec![peer(2, "10.0.0.2:51820", &["10.244.2.0/24", "fd00:2::/64"])],
        );
        let c = plan(&state_of(&old), &want);
        assert_eq!(c.upsert, want.peers);
        assert!(c.remove.is_empty());
    }
}
