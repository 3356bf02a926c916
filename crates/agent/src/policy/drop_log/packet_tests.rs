use super::*;

/// An IPv4 header (20 bytes, no options) for `proto`, then `l4`.
fn v4(proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
    let mut d = vec![0x45, 0, 0, 0, 0, 0];
    d.extend_from_slice(&frag.to_be_bytes());
    d.extend_from_slice(&[64, proto, 0, 0, 10, 244, 1, 5, 10, 244, 0, 7]);
    d.extend_from_slice(l4);
    d
}

/// An IPv6 header with next header `next`, then `rest`.
fn v6(next: u8, rest: &[u8]) -> Vec<u8> {
    let mut d = vec![0x60, 0, 0, 0, 0, 0, next, 64];
    d.extend_from_slice(&"fd00:10:244:1::5".parse::<Ipv6Addr>().unwrap().octets());
    d.extend_from_slice(&"fd00:10:244::7".parse::<Ipv6Addr>().unwrap().octets());
    d.extend_from_slice(rest);
    d
}

const TCP_34567_TO_80: [u8; 20] = [
    0x87, 0x07, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
];

fn ports(src: u16, dst: u16) -> Option<Ports> {
    Some(Ports { src, dst })
}

#[test]
fn ipv4_tcp_and_udp() {
    let p = parse(&v4(IPPROTO_TCP, 0x4000, &TCP_34567_TO_80)).unwrap();
    assert_eq!(p.src, "10.244.1.5".parse::<IpAddr>().unwrap());
    assert_eq!(p.dst, "10.244.0.7".parse::<IpAddr>().unwrap());
    assert_eq!(p.proto, Proto::Tcp(ports(34567, 80)));
    assert_eq!(p.proto.name(), "tcp");
    let p = parse(&v4(IPPROTO_UDP, 0, &[0, 53, 0x13, 0x88, 0, 8, 0, 0])).unwrap();
    assert_eq!(p.proto, Proto::Udp(ports(53, 5000)));
    let p = parse(&v4(IPPROTO_SCTP, 0, &[0, 1, 0, 2])).unwrap();
    assert_eq!(p.proto, Proto::Sctp(ports(1, 2)));
    let p = parse(&v4(IPPROTO_ICMP, 0, &[8, 0, 0, 0])).unwrap();
    assert_eq!(
        p.proto,
        Proto::Icmp {
            v6: false,
            kind: Some((8, 0))
        }
    );
}

#[test]
fn ipv4_options_and_later_fragments() {
    // IHL 6: 4 bytes of options before TCP.
    let mut d = v4(IPPROTO_TCP, 0, &[1, 1, 1, 1]);
    d[0] = 0x46;
    d.extend_from_slice(&TCP_34567_TO_80);
    assert_eq!(parse(&d).unwrap().proto, Proto::Tcp(ports(34567, 80)));
    // Fragment offset 8: the bytes there are data, not ports.
    let p = parse(&v4(IPPROTO_TCP, 1, &TCP_34567_TO_80)).unwrap();
    assert_eq!(p.proto, Proto::Tcp(None));
}

#[test]
fn ipv6_tcp_udp_and_extension_headers() {
    let p = parse(&v6(IPPROTO_TCP, &TCP_34567_TO_80)).unwrap();
    assert_eq!(p.src, "fd00:10:244:1::5".parse::<IpAddr>().unwrap());
    assert_eq!(p.proto, Proto::Tcp(ports(34567, 80)));
    let p = parse(&v6(IPPROTO_UDP, &[0x30, 0x39, 0, 53])).unwrap();
    assert_eq!(p.proto, Proto::Udp(ports(12345, 53)));
    // Hop-by-hop (8 bytes), then a first fragment, then UDP.
    let mut ext = vec![44, 0, 0, 0, 0, 0, 0, 0];
    ext.extend_from_slice(&[IPPROTO_UDP, 0, 0, 1, 0, 0, 0, 9]);
    ext.extend_from_slice(&[0x30, 0x39, 0, 53]);
    assert_eq!(
        parse(&v6(0, &ext)).unwrap().proto,
        Proto::Udp(ports(12345, 53))
    );
    // A later fragment: no ports.
    let frag = [IPPROTO_UDP, 0, 0, 8, 0, 0, 0, 9, 0x30, 0x39, 0, 53];
    assert_eq!(parse(&v6(44, &frag)).unwrap().proto, Proto::Udp(None));
    let p = parse(&v6(IPPROTO_ICMPV6, &[128, 0])).unwrap();
    assert_eq!(p.proto.name(), "icmpv6");
    // Extension headers running past the copy.
    assert_eq!(parse(&v6(0, &[6])).unwrap().proto, Proto::Other(None));
}

#[test]
fn truncated_or_garbage_input_never_panics() {
    let samples = [
        v4(IPPROTO_TCP, 0, &TCP_34567_TO_80),
        v6(
            0,
            &[44, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 1, 0, 0, 0, 9, 0, 1, 0, 2],
        ),
        v6(IPPROTO_SCTP, &[0, 1, 0, 2]),
    ];
    for s in &samples {
        for cut in 0..=s.len() {
            let got = parse(&s[..cut]);
            let need = if s[0] >> 4 == 4 { 20 } else { 40 };
            assert_eq!(got.is_some(), cut >= need, "cut at {cut}");
            if let Some(p) = got {
                // Ports only once all four bytes are there.
                if let Some(ports) = p.proto.ports() {
                    assert!(ports.src == 34567 || ports.src == 1, "{p:?}");
                }
            }
        }
    }
    // Every byte value in every position of a short buffer.
    for len in 0..48 {
        for b in 0..=255u8 {
            let mut d = vec![b; len];
            if let Some(first) = d.first_mut() {
                *first = 0x40 | (b & 0x6f);
            }
            let _ = parse(&d);
            d.iter_mut().for_each(|x| *x = x.wrapping_add(0x11));
            let _ = parse(&d);
        }
    }
    assert_eq!(parse(&[0x55; 60]), None, "version 5");
}

#[test]
fn endpoints_show_ports_when_known() {
    let a: IpAddr = "fd00::1".parse().unwrap();
    assert_eq!(Endpoint(a, Some(80)).to_string(), "[fd00::1]:80");
    let b: IpAddr = "10.0.0.1".parse().unwrap();
    assert_eq!(Endpoint(b, Some(80)).to_string(), "10.0.0.1:80");
    assert_eq!(Endpoint(b, None).to_string(), "10.0.0.1");
}
