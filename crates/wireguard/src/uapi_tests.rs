use super::*;
use crate::config::{PeerConfig, DEFAULT_PORT};

fn key(n: u8) -> PrivateKey {
    PrivateKey::from_bytes([n; 32])
}

fn hex(k: &PublicKey) -> String {
    encode_hex(&k.0)
}

#[test]
fn set_renders_key_port_upserts_then_removals() {
    let p2 = key(2).public_key();
    let p3 = key(3).public_key();
    let c = Changes {
        set_private_key: true,
        listen_port: Some(DEFAULT_PORT),
        upsert: vec![PeerConfig {
            public_key: p2,
            endpoint: "[fd00::2]:51820".parse().unwrap(),
            allowed_ips: vec![
                "10.244.2.0/24".parse().unwrap(),
                "fd00:2::/64".parse().unwrap(),
            ],
        }],
        remove: vec![p3],
    };
    let want = format!(
        "set=1\nprivate_key={}\nlisten_port=51820\n\
         public_key={}\nreplace_allowed_ips=true\nendpoint=[fd00::2]:51820\n\
         allowed_ip=10.244.2.0/24\nallowed_ip=fd00:2::/64\n\
         public_key={}\nremove=true\n\n",
        "01".repeat(32),
        hex(&p2),
        hex(&p3)
    );
    assert_eq!(render_set(&key(1), &c), want);
}

#[test]
fn set_without_key_change_never_carries_the_private_key() {
    let c = Changes {
        remove: vec![key(3).public_key()],
        ..Changes::default()
    };
    let text = render_set(&key(7), &c);
    assert!(!text.contains(&"07".repeat(32)), "{text}");
    assert!(!text.contains("private_key"), "{text}");
}

#[test]
fn get_parses_boringtun_and_wg_style_answers() {
    let p2 = key(2).public_key();
    let p3 = key(3).public_key();
    let text = format!(
        "own_public_key={}\nlisten_port=51820\n\
         public_key={}\nendpoint=10.0.0.2:51820\nallowed_ip=10.244.2.0/24\n\
         allowed_ip=fd00:2::/64\nlast_handshake_time_sec=12\nlast_handshake_time_nsec=5\n\
         rx_bytes=100\ntx_bytes=200\n\
         public_key={}\nallowed_ip=10.244.3.0/24\nrx_bytes=0\ntx_bytes=0\n\
         errno=0\n\n",
        hex(&key(1).public_key()),
        hex(&p2),
        hex(&p3)
    );
    let st = parse_get(&text).unwrap();
    assert_eq!(st.public_key, Some(key(1).public_key()));
    assert_eq!(st.listen_port, 51820);
    assert_eq!(st.peers.len(), 2);
    let a = &st.peers[&p2];
    assert_eq!(a.endpoint, Some("10.0.0.2:51820".parse().unwrap()));
    assert_eq!(a.allowed_ips.len(), 2);
    assert_eq!(
        (
            a.last_handshake_sec,
            a.last_handshake_nsec,
            a.rx_bytes,
            a.tx_bytes
        ),
        (12, 5, 100, 200)
    );
    assert!(a.has_handshake());
    assert_eq!(st.peers[&p3].endpoint, None);
    // boringtun leaves the lines out before the first handshake.
    assert!(!st.peers[&p3].has_handshake());

    // wg(8)-style: the private key, from which the public key is derived.
    let text = format!(
        "private_key={}\nlisten_port=1\nerrno=0\n\n",
        "01".repeat(32)
    );
    let st = parse_get(&text).unwrap();
    assert_eq!(st.public_key, Some(key(1).public_key()));
    assert!(st.peers.is_empty());
}

#[test]
fn get_errors_are_clear() {
    assert!(parse_get("listen_port=1\n").is_err(), "no errno");
    assert!(parse_get("errno=22\n\n").is_err());
    assert!(parse_get("garbage\nerrno=0\n").is_err());
    assert!(parse_get("public_key=zz\nerrno=0\n").is_err());
    let e = parse_get(&format!(
        "public_key={}\nendpoint=nowhere\nerrno=0\n",
        "02".repeat(32)
    ))
    .unwrap_err();
    assert!(e.to_string().contains("endpoint=nowhere"), "{e}");
}

#[test]
fn the_plan_of_a_parsed_device_roundtrips() {
    use crate::config::{plan, DeviceConfig};
    let want = DeviceConfig::new(
        &key(1),
        DEFAULT_PORT,
        vec![PeerConfig {
            public_key: key(2).public_key(),
            endpoint: "10.0.0.2:51820".parse().unwrap(),
            allowed_ips: vec!["10.244.2.0/24".parse().unwrap()],
        }],
    );
    let text = format!(
        "own_public_key={}\nlisten_port=51820\npublic_key={}\nendpoint=10.0.0.2:51820\n\
         allowed_ip=10.244.2.0/24\nerrno=0\n\n",
        hex(&key(1).public_key()),
        hex(&key(2).public_key())
    );
    assert!(plan(&parse_get(&text).unwrap(), &want).is_empty());
}

#[test]
fn a_missing_socket_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = UapiDevice::new(dir.path(), "ferry.wg");
    assert!(!d.answers());
    let e = d.get().unwrap_err();
    assert!(e.to_string().contains("ferry.wg.sock"), "{e}");
}
