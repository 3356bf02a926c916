use super::*;

fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(value);
    v.resize(align4(v.len()), 0);
    v
}

fn nlmsg(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(((NLMSG_HDR_LEN + body.len()) as u32).to_ne_bytes());
    v.extend(ty.to_ne_bytes());
    v.extend(flags.to_ne_bytes());
    v.extend(seq.to_ne_bytes());
    v.extend(0u32.to_ne_bytes());
    v.extend(body);
    v.resize(align4(v.len()), 0);
    v
}

#[test]
fn capped_error_with_text_then_an_ack() {
    let mut body = (-2i32).to_ne_bytes().to_vec();
    body.extend(nlmsg(0x0a06, 0, 7, &[])); // the echoed header
    body.extend(nla(3, &7u32.to_ne_bytes())); // NLMSGERR_ATTR_OFFS
    body.extend(nla(NLMSGERR_ATTR_MSG, b"no such set\0"));
    let mut dgram = nlmsg(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 7, &body);
    let mut ack = 0i32.to_ne_bytes().to_vec();
    ack.extend(nlmsg(0x0a09, 0, 8, &[]));
    dgram.extend(nlmsg(NLMSG_ERROR, NLM_F_CAPPED, 8, &ack));

    let got: Vec<_> = messages(&dgram).map(Result::unwrap).collect();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].seq, got[1].seq), (7, 8));
    assert_eq!(got[0].bytes.len(), NLMSG_HDR_LEN + body.len());
    assert_eq!(
        parse_error(got[0].flags, got[0].body()),
        Some((2, Some("no such set".to_string())))
    );
    assert_eq!(parse_error(got[1].flags, got[1].body()), Some((0, None)));
    // Without the TLV flag no text is looked for.
    assert_eq!(parse_error(NLM_F_CAPPED, got[0].body()), Some((2, None)));
}

#[test]
fn uncapped_error_and_done() {
    // The whole 22-byte request is echoed, then padding, then the TLVs.
    let mut body = (-22i32).to_ne_bytes().to_vec();
    let mut echoed = vec![0u8; 22];
    echoed[..4].copy_from_slice(&22u32.to_ne_bytes());
    body.extend(&echoed);
    body.extend([0, 0]);
    body.extend(nla(NLMSGERR_ATTR_MSG, b"bad\0"));
    assert_eq!(
        parse_error(NLM_F_ACK_TLVS, &body),
        Some((22, Some("bad".to_string())))
    );
    let mut done = (-16i32).to_ne_bytes().to_vec();
    done.extend(nla(NLMSGERR_ATTR_MSG, b"dump failed\0"));
    let dgram = nlmsg(NLMSG_DONE, NLM_F_ACK_TLVS, 3, &done);
    let m = messages(&dgram).next().unwrap().unwrap();
    match done_error(m) {
        Err(EngineError::Kernel { errno, message }) => {
            assert_eq!(errno, 16);
            assert_eq!(message.as_deref(), Some("dump failed"));
        }
        other => panic!("{other:?}"),
    }
    let ok = nlmsg(NLMSG_DONE, 0, 3, &0i32.to_ne_bytes());
    assert!(done_error(messages(&ok).next().unwrap().unwrap()).is_ok());
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let bad: Vec<_> = messages(&[1, 2, 3]).collect();
    assert_eq!(bad.len(), 1);
    assert!(bad[0].is_err());
    let mut long = nlmsg(NLMSG_DONE, 0, 1, &[0; 4]);
    long[0] = 200;
    assert!(messages(&long).next().unwrap().is_err());
    assert_eq!(parse_error(0, &[1, 2]), None);
    assert_eq!(ext_ack(NLM_F_ACK_TLVS, &[0xff; 3]), None);
    assert_eq!(ext_ack(NLM_F_ACK_TLVS, &[0xff; 9]), None);
    assert_eq!(ext_ack(NLM_F_ACK_TLVS, &[1, 0, 1, 0]), None);
}

#[test]
fn alignment() {
    assert_eq!(align4(0), 0);
    assert_eq!(align4(1), 4);
    assert_eq!(align4(16), 16);
    assert_eq!(align4(17), 20);
}

#[test]
fn sequence_numbers() {
    let mut s = Socket::<Route>::open().unwrap();
    assert_eq!(s.reserve_seq(3), 1);
    assert_eq!(s.reserve_seq(1), 4);
    s.used_seq_up_to(10);
    assert_eq!(s.reserve_seq(1), 11);
    s.used_seq_up_to(5); // never backwards
    assert_eq!(s.reserve_seq(1), 12);
}

/// A real round trip and a real dump against the kernel, through the raw
/// engine: the loopback link by index, then every link.
#[test]
fn request_and_dump_against_the_kernel() {
    fn getlink(seq: u32, flags: u16, index: i32, buf: &mut Vec<u8>) {
        // struct ifinfomsg: family, pad, type, index, flags, change.
        let mut body = vec![0u8; 16];
        body[4..8].copy_from_slice(&index.to_ne_bytes());
        buf.extend(nlmsg(18 /* RTM_GETLINK */, flags, seq, &body));
    }
    let mut s = Socket::<Route>::open().unwrap();
    let mut replies = 0;
    s.request(
        |seq, buf| getlink(seq, NLM_F_REQUEST | NLM_F_ACK, 1, buf),
        |m| {
            assert_eq!(m.ty, 16 /* RTM_NEWLINK */);
            replies += 1;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(replies, 1);
    // A link that does not exist: the kernel's errno comes back.
    let e = s
        .request(
            |seq, buf| getlink(seq, NLM_F_REQUEST | NLM_F_ACK, 0x7fff_fff0, buf),
            |_| Ok(()),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            EngineError::Kernel {
                errno: libc::ENODEV,
                ..
            }
        ),
        "{e:?}"
    );
    let mut links = Vec::new();
    let end = s
        .dump(
            |seq, buf| getlink(seq, NLM_F_REQUEST | NLM_F_DUMP, 0, buf),
            &mut links,
            |m| Ok((m.ty == 16).then_some(m.bytes.len())),
        )
        .unwrap();
    assert_eq!(end, Dumped::Consistent);
    assert!(!links.is_empty(), "at least lo");
    assert!(links.iter().all(|&len| len > NLMSG_HDR_LEN));
}

/// A listener's socket: its receive buffer as asked (the kernel doubles
/// it), and a quiet socket's receive ends at the timeout, as a timeout.
#[test]
fn receive_buffer_and_timeout_of_a_listener() {
    let mut s = Socket::<Route>::open().expect("a NETLINK_ROUTE socket");
    let got = s.set_recv_buffer(256 * 1024).unwrap();
    // Doubled; without CAP_NET_ADMIN capped by net.core.rmem_max (at
    // least 208 KiB by default, doubled too).
    assert!(got >= 256 * 1024, "{got}");
    s.set_recv_timeout(Duration::from_millis(50)).unwrap();
    let started = std::time::Instant::now();
    let e = s.recv(false).map(|_| ()).unwrap_err();
    assert!(is_timeout(&e), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!is_timeout(&EngineError::Protocol("x".into())));
}
