//! Byte layouts from `include/uapi/linux/wireguard.h` (and
//! `linux/netlink.h`, `linux/genetlink.h`), written out as literal
//! numbers here rather than through the module's constants, so a wrong
//! constant fails.

use super::*;
use crate::config::DeviceState;

fn key(n: u8) -> PrivateKey {
    PrivateKey::from_bytes([n; 32])
}

/// One attribute: length (header + value, unpadded), type, value, padding.
fn nla(ty: u16, v: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(v);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    b
}

fn nest(ty: u16, parts: &[Vec<u8>]) -> Vec<u8> {
    nla(ty | 0x8000, &parts.concat())
}

#[test]
fn set_device_is_byte_exact() {
    let k2 = key(2).public_key();
    let k3 = key(3).public_key();
    let peer = PeerConfig {
        public_key: k2,
        endpoint: "10.0.0.2:51820".parse().unwrap(),
        allowed_ips: vec!["10.244.2.0/24".parse().unwrap()],
    };
    let mut got = Vec::new();
    encode_set(
        &mut got,
        0x1234,
        7,
        &SetRequest {
            ifname: "wg0",
            key: Some(&key(1)),
            listen_port: Some(51820),
            replace_peers: true,
            upsert: std::slice::from_ref(&peer),
            remove: &[k3],
        },
    );
    let endpoint = [
        &2u16.to_ne_bytes()[..], // AF_INET
        &[0xca, 0x6c],           // 51820, network order
        &[10, 0, 0, 2],
        &[0; 8],
    ]
    .concat();
    let attrs = [
        nla(2, b"wg0\0"),                // WGDEVICE_A_IFNAME
        nla(3, &[1; 32]),                // WGDEVICE_A_PRIVATE_KEY
        nla(6, &51820u16.to_ne_bytes()), // WGDEVICE_A_LISTEN_PORT
        nla(5, &1u32.to_ne_bytes()),     // WGDEVICE_A_FLAGS: REPLACE_PEERS
        nest(
            8, // WGDEVICE_A_PEERS
            &[
                nest(
                    0,
                    &[
                        nla(1, &k2.0),               // WGPEER_A_PUBLIC_KEY
                        nla(3, &2u32.to_ne_bytes()), // WGPEER_A_FLAGS: REPLACE_ALLOWEDIPS
                        nla(4, &endpoint),           // WGPEER_A_ENDPOINT
                        nest(
                            9, // WGPEER_A_ALLOWEDIPS
                            &[nest(
                                0,
                                &[
                                    nla(1, &2u16.to_ne_bytes()), // FAMILY: AF_INET
                                    nla(2, &[10, 244, 2, 0]),    // IPADDR
                                    nla(3, &[24]),               // CIDR_MASK
                                ],
                            )],
                        ),
                    ],
                ),
                nest(
                    0,
                    &[
                        nla(1, &k3.0),
                        nla(3, &1u32.to_ne_bytes()), // WGPEER_F_REMOVE_ME
                    ],
                ),
            ],
        ),
    ]
    .concat();
    let mut want = Vec::new();
    want.extend_from_slice(&((16 + 4 + attrs.len()) as u32).to_ne_bytes());
    want.extend_from_slice(&0x1234u16.to_ne_bytes()); // the family id
    want.extend_from_slice(&0x0005u16.to_ne_bytes()); // NLM_F_REQUEST | NLM_F_ACK
    want.extend_from_slice(&7u32.to_ne_bytes());
    want.extend_from_slice(&0u32.to_ne_bytes());
    want.extend_from_slice(&[1, 1, 0, 0]); // WG_CMD_SET_DEVICE, version 1
    want.extend_from_slice(&attrs);
    assert_eq!(got, want);
    assert_eq!(got.len(), 232);
}

#[test]
fn ipv6_endpoint_and_allowed_ip() {
    let ep: SocketAddr = "[fd00::2]:51820".parse().unwrap();
    let b = sockaddr(&ep);
    assert_eq!(b.len(), 28); // sizeof(struct sockaddr_in6)
    assert_eq!(&b[..2], &10u16.to_ne_bytes()); // AF_INET6
    assert_eq!(&b[2..4], &[0xca, 0x6c]);
    assert_eq!(&b[4..8], &[0; 4]); // flowinfo
    assert_eq!(b[8..24], "fd00::2".parse::<Ipv6Addr>().unwrap().octets());
    assert_eq!(parse_sockaddr(&b), Some(ep));
    assert_eq!(sockaddr(&"1.2.3.4:5".parse().unwrap()).len(), 16);

    let mut got = Vec::new();
    let p = PeerConfig {
        public_key: key(2).public_key(),
        endpoint: ep,
        allowed_ips: vec!["fd00:10:244:2::/64".parse().unwrap()],
    };
    encode_set(
        &mut got,
        30,
        1,
        &SetRequest {
            ifname: "ferry.wg",
            key: None,
            listen_port: None,
            replace_peers: false,
            upsert: &[p],
            remove: &[],
        },
    );
    let ip = nest(
        0,
        &[
            nla(1, &10u16.to_ne_bytes()),
            nla(2, &"fd00:10:244:2::".parse::<Ipv6Addr>().unwrap().octets()),
            nla(3, &[64]),
        ],
    );
    assert!(got.windows(ip.len()).any(|w| w == ip), "allowed IP nest");
    // No key, port or device flags were asked for.
    let body = &got[20..];
    let types: Vec<u16> = attrs(body).map(|(t, _)| t).collect();
    assert_eq!(types, [2, 8]);
}

#[test]
fn get_device_request_is_a_dump_by_name() {
    let mut got = Vec::new();
    encode_get(&mut got, 30, 9, "ferry.wg");
    let mut want = Vec::new();
    let a = nla(2, b"ferry.wg\0");
    want.extend_from_slice(&((20 + a.len()) as u32).to_ne_bytes());
    want.extend_from_slice(&30u16.to_ne_bytes());
    want.extend_from_slice(&0x0301u16.to_ne_bytes()); // REQUEST | DUMP
    want.extend_from_slice(&9u32.to_ne_bytes());
    want.extend_from_slice(&0u32.to_ne_bytes());
    want.extend_from_slice(&[0, 1, 0, 0]); // WG_CMD_GET_DEVICE
    want.extend_from_slice(&a);
    assert_eq!(got, want);
}

fn reply_body(attrs: &[Vec<u8>]) -> Vec<u8> {
    [vec![0, 1, 0, 0], attrs.concat()].concat()
}

fn allowed(fam: u16, addr: &[u8], mask: u8) -> Vec<u8> {
    nest(
        0,
        &[nla(1, &fam.to_ne_bytes()), nla(2, addr), nla(3, &[mask])],
    )
}

#[test]
fn a_device_split_over_two_messages_is_merged() {
    let own = key(1).public_key();
    let k2 = key(2).public_key();
    let ep = sockaddr(&"10.0.0.2:51820".parse().unwrap());
    let mut handshake = 1700000000u64.to_ne_bytes().to_vec();
    handshake.extend_from_slice(&5u64.to_ne_bytes());
    let first = reply_body(&[
        nla(1, &7u32.to_ne_bytes()),
        nla(2, b"ferry.wg\0"),
        nla(4, &own.0),
        nla(6, &51820u16.to_ne_bytes()),
        nest(
            8,
            &[nest(
                0,
                &[
                    nla(1, &k2.0),
                    nla(4, &ep),
                    nla(6, &handshake),
                    nla(7, &10u64.to_ne_bytes()),
                    nla(8, &20u64.to_ne_bytes()),
                    nest(9, &[allowed(2, &[10, 244, 2, 0], 24)]),
                ],
            )],
        ),
    ]);
    // The kernel continues the same peer in the next message.
    let second = reply_body(&[
        nla(1, &7u32.to_ne_bytes()),
        nest(
            8,
            &[nest(
                0,
                &[
                    nla(1, &k2.0),
                    nest(
                        9,
                        &[allowed(
                            10,
                            &"fd00:10:244:2::".parse::<Ipv6Addr>().unwrap().octets(),
                            64,
                        )],
                    ),
                ],
            )],
        ),
    ]);
    let mut st = DeviceState::default();
    decode_device(&first, &mut st).unwrap();
    decode_device(&second, &mut st).unwrap();
    assert_eq!(st.public_key, Some(own));
    assert_eq!(st.listen_port, 51820);
    let p = &st.peers[&k2];
    assert_eq!(p.endpoint, Some("10.0.0.2:51820".parse().unwrap()));
    assert_eq!(
        (
            p.rx_bytes,
            p.tx_bytes,
            p.last_handshake_sec,
            p.last_handshake_nsec
        ),
        (10, 20, 1700000000, 5)
    );
    assert!(p.has_handshake());
    assert_eq!(
        p.allowed_ips,
        [
            "10.244.2.0/24".parse::<IpNet>().unwrap(),
            "fd00:10:244:2::/64".parse().unwrap()
        ]
    );
}

#[test]
fn malformed_replies_are_errors() {
    let mut st = DeviceState::default();
    assert!(decode_device(&[0, 1], &mut st).is_err());
    let no_key = reply_body(&[nest(8, &[nest(0, &[nla(4, &[0; 16])])])]);
    assert!(decode_device(&no_key, &mut st).is_err());
    let bad_ip = reply_body(&[nest(
        8,
        &[nest(
            0,
            &[nla(1, &[2; 32]), nest(9, &[allowed(2, &[1, 2, 3], 24)])],
        )],
    )]);
    assert!(decode_device(&bad_ip, &mut st).is_err());
}

#[test]
fn family_lookup_request_and_reply() {
    let mut got = Vec::new();
    encode_get_family(&mut got, 3, "wireguard");
    // nlmsghdr type GENL_ID_CTRL (0x10), CTRL_CMD_GETFAMILY (3)
    assert_eq!(&got[4..6], &0x10u16.to_ne_bytes());
    assert_eq!(got[16], 3);
    assert_eq!(&got[20..], &nla(2, b"wireguard\0")[..]);
    let reply = reply_body(&[nla(2, b"wireguard\0"), nla(1, &0x1eu16.to_ne_bytes())]);
    assert_eq!(decode_family_id(&reply), Some(0x1e));
    assert_eq!(decode_family_id(&reply_body(&[])), None);
}

#[test]
fn this_kernel_without_wireguard_says_so() {
    // Runs against the real kernel. Where the kernel has WireGuard the
    // family resolves; where it has none (this machine), the error says so.
    match KernelDevice::open("ferry.wg") {
        Ok(d) => assert_eq!(d.kind(), "kernel"),
        Err(e) => assert!(matches!(e, WgError::NoKernelSupport), "{e}"),
    }
}
