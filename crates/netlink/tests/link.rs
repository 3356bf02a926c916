//! Link tests against the real kernel, in throw-away namespaces.

mod common;

use common::TestNs;
use ferry_netlink::{Handle, NetlinkError, VethSpec};

const MAC_A: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x01];
const MAC_B: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];

#[test]
fn lookups_in_empty_namespace() {
    let t = TestNs::new();
    t.nl(|h| {
        let lo = h.link_by_name("lo").unwrap().expect("lo");
        assert_eq!(lo.index, 1);
        assert_eq!(lo.mtu, 65536);
        assert!(!lo.up);
        assert_eq!(lo.kind, None);
        assert_eq!(h.link_by_index(1).unwrap().unwrap().name, "lo");
        assert_eq!(h.link_by_name("nope0").unwrap(), None);
        assert_eq!(h.link_by_index(424242).unwrap(), None);
        let links = h.links().unwrap();
        assert_eq!(links.len(), 1, "{links:?}");
        assert_eq!(links[0], lo);

        h.set_up(1).unwrap();
        assert!(h.link_by_index(1).unwrap().unwrap().up);
        h.set_down(1).unwrap();
        assert!(!h.link_by_index(1).unwrap().unwrap().up);

        assert!(!h.delete_link_by_name("nope0").unwrap());
        let err = h.delete_link(424242).unwrap_err();
        assert!(err.is_not_found(), "{err}");
        let err = h.set_up(424242).unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains("ifindex 424242"), "{err}");

        for bad in ["", "way-too-long-name0", "a/b", "a b"] {
            let err = h.link_by_name(bad).unwrap_err();
            assert!(matches!(err, NetlinkError::InvalidArgument { .. }), "{err}");
        }
    });
}

#[test]
fn veth_with_peer_in_other_namespace() {
    let host = TestNs::new();
    let pod = TestNs::new();
    let pod_fd = &pod.ns;

    host.nl(|h| {
        let spec = VethSpec::new("vh0", "eth0", pod_fd.as_fd())
            .mtu(1400)
            .mac(MAC_A)
            .peer_mac(MAC_B);
        h.create_veth(&spec).unwrap();

        let vh = h.link_by_name("vh0").unwrap().expect("vh0");
        assert_eq!(vh.kind.as_deref(), Some("veth"));
        assert_eq!(vh.mtu, 1400);
        assert_eq!(vh.mac, Some(MAC_A));
        assert!(!vh.up);
        assert!(vh.link_netnsid.is_some(), "peer lives in another netns");
        assert!(vh.peer_index.is_some());
        // The peer was created in the pod namespace, not here.
        assert_eq!(h.link_by_name("eth0").unwrap(), None);

        // Same name again: EEXIST.
        let err = h.create_veth(&spec).unwrap_err();
        assert!(err.is_exists(), "{err}");
        assert!(err.to_string().contains("vh0"), "{err}");

        h.set_up(vh.index).unwrap();
        assert!(h.link_by_index(vh.index).unwrap().unwrap().up);
        h.set_mtu(vh.index, 1300).unwrap();
        assert_eq!(h.link_by_index(vh.index).unwrap().unwrap().mtu, 1300);
    });

    let peer_index = host.nl(|h| h.link_by_name("vh0").unwrap().unwrap().peer_index);
    pod.nl(|h| {
        let eth0 = h.link_by_name("eth0").unwrap().expect("eth0 in pod");
        assert_eq!(eth0.mtu, 1400);
        assert_eq!(eth0.mac, Some(MAC_B));
        assert_eq!(eth0.kind.as_deref(), Some("veth"));
        assert_eq!(Some(eth0.index), peer_index);
        assert_eq!(h.link_by_name("vh0").unwrap(), None);
        assert_eq!(h.links().unwrap().len(), 2); // lo + eth0
    });
    // Neither end is visible in the test process's own namespace.
    let mut mine = Handle::new().unwrap();
    assert!(mine
        .links()
        .unwrap()
        .iter()
        .all(|l| l.mac != Some(MAC_A) && l.mac != Some(MAC_B)));

    // Deleting one end by name removes the pair.
    host.nl(|h| {
        assert!(h.delete_link_by_name("vh0").unwrap());
        assert!(!h.delete_link_by_name("vh0").unwrap());
    });
    pod.nl(|h| assert_eq!(h.link_by_name("eth0").unwrap(), None));
}

#[test]
fn veth_created_up_and_deleted_by_index() {
    let host = TestNs::new();
    let pod = TestNs::new();
    let pod_fd = &pod.ns;
    let index = host.nl(|h| {
        h.create_veth(&VethSpec::new("vh1", "eth0", pod_fd.as_fd()).up(true))
            .unwrap();
        let vh = h.link_by_name("vh1").unwrap().unwrap();
        assert!(vh.up);
        assert_eq!(vh.mtu, 1500);
        vh.index
    });
    // Only the local end starts up.
    pod.nl(|h| {
        let eth0 = h.link_by_name("eth0").unwrap().unwrap();
        assert!(!eth0.up);
        h.set_up(eth0.index).unwrap();
        assert!(h.link_by_index(eth0.index).unwrap().unwrap().up);
    });
    host.nl(|h| {
        h.delete_link(index).unwrap();
        assert_eq!(h.link_by_index(index).unwrap(), None);
    });
    pod.nl(|h| assert_eq!(h.link_by_name("eth0").unwrap(), None));
}

#[test]
fn veth_peer_name_taken_in_peer_namespace() {
    let host = TestNs::new();
    let pod = TestNs::new();
    let pod_fd = &pod.ns;
    host.nl(|h| {
        h.create_veth(&VethSpec::new("vh2", "eth0", pod_fd.as_fd()))
            .unwrap();
        let err = h
            .create_veth(&VethSpec::new("vh3", "eth0", pod_fd.as_fd()))
            .unwrap_err();
        assert!(err.is_exists(), "{err}");
        // Nothing half-created.
        assert_eq!(h.link_by_name("vh3").unwrap(), None);
    });
}

/// A reply bigger than the engine's starting buffer (32 KiB): a link with
/// 400 alternative names of 120 bytes (~50 KiB; the kernel caps the list
/// near 64 KiB). The engine asks the kernel how big each datagram is and
/// grows its buffer, for a request and for a dump.
#[test]
fn replies_larger_than_the_buffer_arrive_whole() {
    let t = TestNs::new();
    t.nl(|h| {
        let me = ferry_netns::NetNs::current().unwrap();
        h.create_veth(&VethSpec::new("big0", "big1", me.as_fd()))
            .unwrap();
    });
    let batch = std::env::temp_dir().join(format!("{}-altnames", t.name));
    let lines: String = (0..400)
        .map(|i| {
            format!(
                "link property add dev big0 altname a{i:04}{}\n",
                "x".repeat(115)
            )
        })
        .collect();
    std::fs::write(&batch, lines).unwrap();
    let added = t.cmd("ip", &["-batch", batch.to_str().unwrap()]);
    let _ = std::fs::remove_file(&batch);
    assert!(added, "adding altnames");
    let (one, all) = t.nl(|h| {
        let one = h.link_by_name("big0").unwrap();
        let all = h.links().unwrap();
        (one, all)
    });
    assert_eq!(one.expect("big0").name, "big0");
    assert!(all.iter().any(|l| l.name == "big0"), "dump: {all:?}");
    assert!(all.iter().any(|l| l.name == "big1"));
}
