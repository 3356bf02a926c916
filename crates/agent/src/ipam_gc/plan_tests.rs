use super::*;

const NET: &str = "ferry";
const GRACE: Duration = Duration::from_secs(120);

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
}

fn res(ip: &str, id: &str, ifname: &str, age_secs: u64) -> Reservation {
    Reservation {
        ip: ip.parse().unwrap(),
        owner: Owner::Attachment {
            container_id: id.into(),
            ifname: ifname.into(),
        },
        written: Some(now() - Duration::from_secs(age_secs)),
    }
}

fn veth(name: &str, network: &str, id: &str, ifname: &str) -> HostVeth {
    HostVeth {
        name: name.into(),
        index: name.len() as u32,
        network: network.into(),
        container_id: id.into(),
        ifname: ifname.into(),
    }
}

fn live(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn run(live: &HashSet<String>, res: &[Reservation], veths: &[HostVeth]) -> Plan {
    plan(&Inputs {
        network: NET,
        live,
        reservations: res,
        veths,
        orphans_before: &BTreeSet::new(),
        now: now(),
        grace: GRACE,
    })
}

fn ips(p: &Plan) -> Vec<String> {
    p.release.iter().map(|ip| ip.to_string()).collect()
}

fn names(p: &Plan) -> Vec<&str> {
    p.veths.iter().map(|v| v.name.as_str()).collect()
}

#[test]
fn dead_and_old_goes_young_or_live_stays() {
    let r = [
        res("10.0.0.2", "dead", "eth0", 600),
        res("10.0.0.3", "young", "eth0", 5),
        res("10.0.0.4", "live", "eth0", 600),
        // Exactly the grace: old enough.
        res("10.0.0.5", "edge", "eth0", 120),
        res("10.0.0.6", "edge2", "eth0", 119),
    ];
    let p = run(&live(&["live"]), &r, &[]);
    assert_eq!(ips(&p), ["10.0.0.2", "10.0.0.5"]);
    let keys: Vec<_> = p
        .attachments
        .iter()
        .map(|(a, b)| format!("{a}/{b}"))
        .collect();
    assert_eq!(keys, ["dead/eth0", "edge/eth0"]);
}

#[test]
fn unknown_or_future_write_time_is_never_old() {
    let mut unknown = res("10.0.0.2", "dead", "eth0", 0);
    unknown.written = None;
    let mut future = res("10.0.0.3", "dead2", "eth0", 0);
    future.written = Some(now() + Duration::from_secs(3600));
    assert_eq!(run(&live(&[]), &[unknown, future], &[]), Plan::default());
}

#[test]
fn empty_records_go_when_old_legacy_records_follow_their_sandbox() {
    let empty = |ip: &str, age| Reservation {
        owner: Owner::Empty,
        ..res(ip, "x", "eth0", age)
    };
    let legacy = |ip: &str, id: &str| Reservation {
        owner: Owner::Legacy {
            container_id: id.into(),
        },
        ..res(ip, id, "", 600)
    };
    let r = [
        empty("10.0.0.2", 600),
        empty("10.0.0.3", 1),
        legacy("10.0.0.4", "live"),
        legacy("10.0.0.5", "dead"),
    ];
    let p = run(&live(&["live"]), &r, &[]);
    assert_eq!(ips(&p), ["10.0.0.2", "10.0.0.5"]);
    assert_eq!(
        p.attachments,
        BTreeSet::from([("dead".to_string(), String::new())])
    );
}

#[test]
fn every_ifname_of_a_live_sandbox_stays_ifnames_are_their_own_keys() {
    let r = [
        res("10.0.0.2", "live", "eth0", 600),
        res("10.0.0.3", "live", "net1", 600),
        res("10.0.0.4", "dead", "eth0", 600),
        res("10.0.0.5", "dead", "net1", 5),
    ];
    let v = [
        veth("ferrya", NET, "live", "net1"),
        veth("ferryb", NET, "dead", "eth0"),
        // Its reservation is young: the ADD may still be running.
        veth("ferryc", NET, "dead", "net1"),
    ];
    let p = run(&live(&["live"]), &r, &v);
    assert_eq!(ips(&p), ["10.0.0.4"]);
    assert_eq!(names(&p), ["ferryb"]);
    assert!(p.orphans.is_empty());
}

#[test]
fn veths_of_other_networks_are_never_touched() {
    let r = [res("10.0.0.2", "dead", "eth0", 600)];
    let v = [
        veth("ferrya", "other", "dead", "eth0"),
        veth("ferryb", "other", "gone", "eth0"),
        veth("ferryc", NET, "dead", "eth0"),
    ];
    let p = run(&live(&[]), &r, &v);
    assert_eq!(names(&p), ["ferryc"]);
    assert!(p.orphans.is_empty(), "{:?}", p.orphans);
}

#[test]
fn a_veth_without_reservation_goes_on_the_second_sighting() {
    let v = [
        veth("ferrya", NET, "dead", "eth0"),
        veth("ferryb", NET, "live", "eth0"),
    ];
    let l = live(&["live"]);
    let first = run(&l, &[], &v);
    assert!(first.veths.is_empty());
    assert_eq!(first.orphans, BTreeSet::from(["ferrya".to_string()]));
    let again = Inputs {
        network: NET,
        live: &l,
        reservations: &[],
        veths: &v,
        orphans_before: &first.orphans,
        now: now(),
        grace: GRACE,
    };
    assert_eq!(names(&plan(&again)), ["ferrya"]);
    // A young reservation appearing meanwhile saves it.
    let young = [res("10.0.0.9", "dead", "eth0", 1)];
    let third = plan(&Inputs {
        reservations: &young,
        ..again
    });
    assert!(third.veths.is_empty() && third.release.is_empty());
}
