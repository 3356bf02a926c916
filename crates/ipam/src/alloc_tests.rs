use super::*;
use crate::store::FakeStore;
use serde_json::json;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cfg(v: serde_json::Value) -> IpamConfig {
    IpamConfig::from_value(&v, "net").unwrap()
}

fn v4(subnet: &str) -> IpamConfig {
    cfg(json!({"ranges": [[{"subnet": subnet}]]}))
}

fn req(id: &str) -> Request {
    Request {
        container_id: id.into(),
        ifname: "eth0".into(),
        requested: vec![],
    }
}

fn add(store: &mut FakeStore, cfg: &IpamConfig, id: &str) -> Result<IpAddr, IpamError> {
    allocate(store, cfg, &req(id)).map(|a| a.ips[0].address.addr())
}

#[test]
fn sequential_allocation_skips_gateway() {
    let c = v4("10.0.0.0/24");
    let mut s = FakeStore::new();
    let a = allocate(&mut s, &c, &req("a")).unwrap();
    assert_eq!(a.ips.len(), 1);
    assert_eq!(a.ips[0].address.to_string(), "10.0.0.2/24");
    assert_eq!(a.ips[0].gateway, Some(ip("10.0.0.1")));
    assert_eq!(add(&mut s, &c, "b").unwrap(), ip("10.0.0.3"));
    assert_eq!(add(&mut s, &c, "c").unwrap(), ip("10.0.0.4"));
    assert_eq!(s.last[&0], ip("10.0.0.4"));
    assert_eq!(s.list_ops, 0, "ADD must not list reservations");
}

#[test]
fn custom_gateway_inside_range_is_skipped() {
    let c = cfg(json!({"ranges": [[{"subnet": "10.0.0.0/24",
        "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.20", "gateway": "10.0.0.11"}]]}));
    let mut s = FakeStore::new();
    assert_eq!(add(&mut s, &c, "a").unwrap(), ip("10.0.0.10"));
    assert_eq!(add(&mut s, &c, "b").unwrap(), ip("10.0.0.12"));
}

#[test]
fn wraps_around_after_last_reserved() {
    let c = v4("10.0.0.0/29"); // .1 gw, .2-.6 usable, .7 broadcast
    let mut s = FakeStore::new();
    s.last.insert(0, ip("10.0.0.5"));
    s.ips.insert(
        ip("10.0.0.6"),
        Owner::Legacy {
            container_id: "x".into(),
        },
    );
    assert_eq!(add(&mut s, &c, "a").unwrap(), ip("10.0.0.2"));
    // A last_reserved outside the set is ignored: start at rangeStart.
    let mut s = FakeStore::new();
    s.last.insert(0, ip("192.168.0.1"));
    assert_eq!(add(&mut s, &c, "a").unwrap(), ip("10.0.0.2"));
}

#[test]
fn round_robin_does_not_reuse_a_just_released_ip() {
    let c = v4("10.0.0.0/29");
    let mut s = FakeStore::new();
    assert_eq!(add(&mut s, &c, "a").unwrap(), ip("10.0.0.2"));
    assert_eq!(release(&mut s, "a", "eth0").unwrap(), vec![ip("10.0.0.2")]);
    assert_eq!(add(&mut s, &c, "b").unwrap(), ip("10.0.0.3"));
}

#[test]
fn exhaustion_of_a_slash_29() {
    let c = v4("10.0.0.0/29");
    let mut s = FakeStore::new();
    let got: Vec<_> = (0..5)
        .map(|i| add(&mut s, &c, &format!("c{i}")).unwrap())
        .collect();
    let want: Vec<_> = (2..=6).map(|i| ip(&format!("10.0.0.{i}"))).collect();
    assert_eq!(got, want);
    let e = add(&mut s, &c, "c5").unwrap_err();
    assert!(e.is_exhausted(), "{e}");
    assert!(e.to_string().contains("10.0.0.1-10.0.0.6"), "{e}");
    assert!(
        !s.index.contains_key(&("c5".into(), "eth0".into())),
        "no intent left behind"
    );
    assert!(matches!(
        status(&mut s, &c),
        Err(IpamError::Exhausted { .. })
    ));
    release(&mut s, "c2", "eth0").unwrap();
    status(&mut s, &c).unwrap();
    assert_eq!(add(&mut s, &c, "c5").unwrap(), ip("10.0.0.4"));
    assert!(status(&mut s, &c).is_err());
}

#[test]
fn multi_range_set_walks_ranges_in_order() {
    let c = cfg(json!({"ranges": [[
        {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.5", "rangeEnd": "10.0.0.6"},
        {"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.5", "rangeEnd": "10.0.1.5"}
    ]]}));
    let mut s = FakeStore::new();
    let got: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|id| add(&mut s, &c, id).unwrap())
        .collect();
    assert_eq!(got, vec![ip("10.0.0.5"), ip("10.0.0.6"), ip("10.0.1.5")]);
    let a = allocate(&mut s, &c, &req("a")).unwrap();
    assert_eq!(a.ips[0].gateway, Some(ip("10.0.0.1")));
    assert!(add(&mut s, &c, "d").unwrap_err().is_exhausted());
}

#[test]
fn static_requests() {
    let c = v4("10.0.0.0/24");
    let mut s = FakeStore::new();
    let mut r = req("a");
    r.requested = vec![ip("10.0.0.50")];
    let a = allocate(&mut s, &c, &r).unwrap();
    assert_eq!(a.ips[0].address.to_string(), "10.0.0.50/24");
    assert_eq!(s.last[&0], ip("10.0.0.50"), "host-local records it too");

    let mut r = req("b");
    r.requested = vec![ip("10.0.0.50")];
    assert!(matches!(
        allocate(&mut s, &c, &r),
        Err(IpamError::AddressInUse { .. })
    ));
    r.requested = vec![ip("10.0.0.1")];
    assert!(matches!(
        allocate(&mut s, &c, &r),
        Err(IpamError::NotAllocatable {
            what: "gateway",
            ..
        })
    ));
    r.requested = vec![ip("10.9.0.1")];
    assert!(matches!(
        allocate(&mut s, &c, &r),
        Err(IpamError::NotInRange { .. })
    ));
    r.requested = vec![ip("10.0.0.60"), ip("10.0.0.61")];
    assert!(matches!(
        allocate(&mut s, &c, &r),
        Err(IpamError::SameRangeSet { .. })
    ));
    assert_eq!(s.ips.len(), 1, "failed requests reserve nothing");
    assert_eq!(s.index.len(), 1);
}

fn dual() -> IpamConfig {
    cfg(
        json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "fd00::/120"}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}]}),
    )
}

#[test]
fn dual_stack() {
    let c = dual();
    let mut s = FakeStore::new();
    let a = allocate(&mut s, &c, &req("a")).unwrap();
    let addrs: Vec<String> = a.ips.iter().map(|i| i.address.to_string()).collect();
    assert_eq!(addrs, vec!["10.0.0.2/24", "fd00::2/120"]);
    assert_eq!(a.ips[1].gateway, Some(ip("fd00::1")));
    assert_eq!(a.routes.len(), 2);
    assert_eq!(s.last[&1], ip("fd00::2"));
    assert_eq!(
        s.index[&("a".into(), "eth0".into())],
        vec![ip("10.0.0.2"), ip("fd00::2")]
    );
    let mut r = req("b");
    r.requested = vec![ip("fd00::99")];
    let b = allocate(&mut s, &c, &r).unwrap();
    assert_eq!(b.ips[0].address.to_string(), "10.0.0.3/24");
    assert_eq!(b.ips[1].address.to_string(), "fd00::99/120");
    assert_eq!(
        check(&mut s, &c, "b", "eth0").unwrap(),
        vec![ip("10.0.0.3"), ip("fd00::99")]
    );
}

#[test]
fn same_attachment_again_is_idempotent() {
    let c = dual();
    let mut s = FakeStore::new();
    let first = allocate(&mut s, &c, &req("a")).unwrap();
    let again = allocate(&mut s, &c, &req("a")).unwrap();
    assert_eq!(first, again);
    assert_eq!(s.ips.len(), 2);
    // Another interface of the same container is another attachment.
    let mut eth1 = req("a");
    eth1.ifname = "eth1".into();
    let other = allocate(&mut s, &c, &eth1).unwrap();
    assert_ne!(other.ips[0], first.ips[0]);
}

#[test]
fn rollback_on_failure_half_way() {
    let c = dual();
    let mut s = FakeStore::new();
    s.fail_reserve.insert(ip("fd00::2"));
    let e = allocate(&mut s, &c, &req("a")).unwrap_err();
    assert!(matches!(e, IpamError::Io { .. }), "{e}");
    assert!(s.ips.is_empty(), "v4 reservation rolled back: {:?}", s.ips);
    assert!(s.index.is_empty(), "intent removed");
    s.fail_reserve.clear();
    let a = allocate(&mut s, &c, &req("a")).unwrap();
    assert_eq!(a.ips[0].address.to_string(), "10.0.0.2/24");
}

#[test]
fn release_is_idempotent_and_checks_ownership() {
    let c = v4("10.0.0.0/24");
    let mut s = FakeStore::new();
    assert_eq!(
        release(&mut s, "nobody", "eth0").unwrap(),
        Vec::<IpAddr>::new()
    );
    add(&mut s, &c, "a").unwrap();
    assert_eq!(release(&mut s, "a", "eth0").unwrap(), vec![ip("10.0.0.2")]);
    assert_eq!(release(&mut s, "a", "eth0").unwrap(), Vec::<IpAddr>::new());
    assert!(s.index.is_empty() && s.ips.is_empty());
    // An index entry naming an IP someone else now holds must not free it.
    s.index
        .insert(("old".into(), "eth0".into()), vec![ip("10.0.0.3")]);
    add(&mut s, &c, "b").unwrap();
    assert_eq!(s.ips[&ip("10.0.0.3")].key(), Some(("b", "eth0")));
    assert_eq!(
        release(&mut s, "old", "eth0").unwrap(),
        Vec::<IpAddr>::new()
    );
    assert!(s.ips.contains_key(&ip("10.0.0.3")));
    assert_eq!(s.list_ops, 0, "DEL must not list reservations");
}

#[test]
fn release_falls_back_to_legacy_records() {
    let mut s = FakeStore::new();
    s.ips.insert(ip("10.0.0.9"), Owner::parse("legacy-id"));
    s.index
        .insert(("legacy-id".into(), "".into()), vec![ip("10.0.0.9")]);
    assert_eq!(
        release(&mut s, "legacy-id", "eth0").unwrap(),
        vec![ip("10.0.0.9")]
    );
    assert!(s.ips.is_empty() && s.index.is_empty());
}

#[test]
fn check_reports_missing_reservations() {
    let c = v4("10.0.0.0/24");
    let mut s = FakeStore::new();
    assert!(matches!(
        check(&mut s, &c, "a", "eth0"),
        Err(IpamError::NotReserved { .. })
    ));
    add(&mut s, &c, "a").unwrap();
    assert_eq!(
        check(&mut s, &c, "a", "eth0").unwrap(),
        vec![ip("10.0.0.2")]
    );
    s.ips.remove(&ip("10.0.0.2"));
    assert!(matches!(
        check(&mut s, &c, "a", "eth0"),
        Err(IpamError::NotReserved { .. })
    ));
    let other = v4("10.1.0.0/24");
    add(&mut s, &c, "b").unwrap();
    assert!(matches!(
        check(&mut s, &other, "b", "eth0"),
        Err(IpamError::NotInRange { .. })
    ));
}

#[test]
fn gc_keeps_valid_and_releases_the_rest() {
    let c = v4("10.0.0.0/24");
    let mut s = FakeStore::new();
    for id in ["keep", "gone"] {
        add(&mut s, &c, id).unwrap();
    }
    let mut eth1 = req("keep");
    eth1.ifname = "eth1".into();
    allocate(&mut s, &c, &eth1).unwrap(); // .4
    s.ips.insert(ip("10.0.0.100"), Owner::parse("keep")); // legacy, id valid
    s.ips.insert(ip("10.0.0.101"), Owner::parse("stale")); // legacy, id invalid
    s.ips.insert(ip("10.0.0.102"), Owner::Empty); // crash leftover
    s.index.insert(("ghost".into(), "eth0".into()), vec![]); // intent only

    let valid = HashSet::from([("keep".to_string(), "eth0".to_string())]);
    let released = gc(&mut s, &valid).unwrap();
    assert_eq!(
        released,
        vec![
            ip("10.0.0.3"),
            ip("10.0.0.4"),
            ip("10.0.0.101"),
            ip("10.0.0.102")
        ]
    );
    let left: Vec<_> = s.ips.keys().copied().collect();
    assert_eq!(left, vec![ip("10.0.0.2"), ip("10.0.0.100")]);
    let keys: Vec<_> = s.index.keys().cloned().collect();
    assert_eq!(keys, vec![("keep".to_string(), "eth0".to_string())]);
    assert!(gc(&mut s, &HashSet::new()).unwrap().len() == 2);
    assert!(s.ips.is_empty() && s.index.is_empty());
}

#[test]
fn interrupted_add_is_redone() {
    // Intent written, record never created (kill -9 in between).
    let c = v4("10.0.0.0/24");
    let mut s = FakeStore::new();
    s.index
        .insert(("a".into(), "eth0".into()), vec![ip("10.0.0.7")]);
    let got = add(&mut s, &c, "a").unwrap();
    assert_eq!(got, ip("10.0.0.2"));
    assert_eq!(s.index[&("a".into(), "eth0".into())], vec![got]);
}

#[test]
fn add_cost_does_not_grow_with_reservations() {
    // With the next IP free, ADD performs the same constant number of
    // store operations whether the range is empty or holds 1000 entries.
    let c = v4("10.0.0.0/20");
    let mut empty = FakeStore::new();
    add(&mut empty, &c, "first").unwrap();
    let before = empty.point_ops;
    add(&mut empty, &c, "second").unwrap();
    let cost_empty = empty.point_ops - before;

    let mut full = FakeStore::new();
    for i in 0..1000 {
        add(&mut full, &c, &format!("c{i}")).unwrap();
    }
    let before = full.point_ops;
    add(&mut full, &c, "new").unwrap();
    assert_eq!(full.point_ops - before, cost_empty);
    assert_eq!(full.list_ops, 0);

    let before = full.point_ops;
    release(&mut full, "c500", "eth0").unwrap();
    assert!(full.point_ops - before <= 6, "DEL is O(1)");
    assert_eq!(full.list_ops, 0);
}

#[test]
fn status_checks_writability() {
    let c = v4("10.0.0.0/24");
    let mut s = FakeStore::new();
    status(&mut s, &c).unwrap();
    s.read_only = true;
    assert!(status(&mut s, &c).is_err());
}

#[test]
fn attachment_validation() {
    for (id, ifname) in [
        ("", "eth0"),
        ("-x", "eth0"),
        ("a/b", "eth0"),
        ("a:b", "eth0"),
        ("a b", "eth0"),
        ("abc", ""),
        ("abc", "e/0"),
        ("abc", "e:0"),
        ("abc", "e 0"),
        ("abc", ".."),
        ("abc", "a-very-long-ifname"),
    ] {
        let e = validate_attachment(id, ifname).unwrap_err();
        assert!(e.is_config(), "{id:?} {ifname:?}");
    }
    validate_attachment("0123abcdef_x.y-z", "eth0").unwrap();
    let mut s = FakeStore::new();
    assert!(release(&mut s, "../x", "eth0").unwrap_err().is_config());
}
