use super::*;

fn u16ne(b: &[u8]) -> u16 {
    u16::from_ne_bytes([b[0], b[1]])
}

#[test]
fn configuration_binds_then_sets_copy_mode_seq_and_sizes() {
    let reqs = configuration(7, 33779);
    assert_eq!(reqs.len(), 2);
    // BIND: nlmsghdr, nfgenmsg (AF_UNSPEC, v0, group BE), NFULA_CFG_CMD.
    let bind = &reqs[0];
    assert_eq!(
        u32::from_ne_bytes(bind[..4].try_into().unwrap()) as usize,
        bind.len()
    );
    assert_eq!(
        u16ne(&bind[4..6]),
        0x0401,
        "NFNL_SUBSYS_ULOG, NFULNL_MSG_CONFIG"
    );
    assert_eq!(u16ne(&bind[6..8]), NLM_F_REQUEST | NLM_F_ACK);
    assert_eq!(u32::from_ne_bytes(bind[8..12].try_into().unwrap()), 7);
    assert_eq!(&bind[16..20], &[0, 0, 0x83, 0xf3]);
    assert_eq!(&bind[20..], &[5, 0, 1, 0, 1, 0, 0, 0]);
    // Then the mode (range 128 BE, COPY_PACKET), flags SEQ, qthresh 1, ...
    let cfg = &reqs[1];
    assert_eq!(u32::from_ne_bytes(cfg[8..12].try_into().unwrap()), 8);
    let attrs: Vec<(u16, Vec<u8>)> = Attrs::new(&cfg[20..])
        .map(|a| (a.ty, a.value.to_vec()))
        .collect();
    assert_eq!(
        attrs,
        [
            (NFULA_CFG_MODE, vec![0, 0, 0, 128, 2, 0]),
            (NFULA_CFG_FLAGS, vec![0, 1]),
            (NFULA_CFG_QTHRESH, vec![0, 0, 0, 1]),
            (NFULA_CFG_TIMEOUT, vec![0, 0, 0, 1]),
            (NFULA_CFG_NLBUFSIZ, MSG_MAX.to_be_bytes().to_vec()),
        ]
    );
    assert!(RCVBUF >= QUEUE * MSG_MAX as usize);
}

/// A packet message as nfnetlink_log builds it (attribute order of
/// `__build_packet`), after the nlmsghdr.
fn packet_body(prefix: &str, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![2, 0, 0x83, 0xf3];
    let mut w = Writer::new(&mut b);
    w.put(NFULA_PACKET_HDR, &[0x08, 0x00, 2, 0]);
    w.str(NFULA_PREFIX, prefix);
    w.u32(4, 3); // NFULA_IFINDEX_INDEV
    w.u32(5, 4); // NFULA_IFINDEX_OUTDEV
    w.put(NFULA_PAYLOAD, payload);
    w.u32(NFULA_SEQ, seq);
    b
}

#[test]
fn packets_are_decoded() {
    let payload = [
        0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    let body = packet_body("in-grp-50219216", 41, &payload);
    let p = parse_packet(msg_type(NFULNL_MSG_PACKET), &body).unwrap();
    assert_eq!(
        p,
        Logged {
            family: 2,
            group: 33779,
            prefix: "in-grp-50219216".into(),
            seq: Some(41),
            payload: &payload,
        }
    );
    assert_eq!(parse_packet(msg_type(NFULNL_MSG_CONFIG), &body), None);
}

#[test]
fn cut_messages_never_panic() {
    let body = packet_body("eg-grp-00000001", 1, &[0x60; 48]);
    for cut in 0..=body.len() {
        let got = parse_packet(msg_type(NFULNL_MSG_PACKET), &body[..cut]);
        assert_eq!(got.is_some(), cut >= 4, "cut at {cut}");
        if let Some(p) = got {
            // An attribute is there whole or not at all.
            assert!(p.payload.is_empty() || p.payload.len() == 48);
            if cut < body.len() {
                assert_eq!(p.seq, None, "cut at {cut}");
            }
        }
    }
}
