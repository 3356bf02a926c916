//! The drop log's NFLOG side against the real kernel, without a cluster:
//! in a fresh netns a table logs UDP (IPv4 and IPv6, over loopback) to
//! ferryd's group, and ferryd's [`Listener`] receives and parses it: the
//! prefix, the headers, consecutive sequence numbers; a flood past the
//! socket's buffer is seen (overrun, sequence gaps); the log rule's rate
//! limit holds a flood to its burst. Needs root and `nft`.

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use ferry_netns::NetNs;
use ferryd::policy::drop_log::nflog::{Listener, Received, QUEUE};
use ferryd::policy::drop_log::packet::{self, Packet, Ports, Proto};
use ferryd::policy::drop_log::seq_gap;

const GROUP: u16 = ferry_netpol::LOG_GROUP;

/// A named netns `<unique>`, deleted on drop (also when a test fails).
struct Ns {
    name: String,
    ns: NetNs,
}

impl Ns {
    fn new(tag: &str, table: &str) -> Ns {
        let name = ferry_testkit::unique(tag);
        ferry_netns::create_named(&name).expect("create netns");
        let ns = NetNs::open(Path::new(&format!("/run/netns/{name}"))).unwrap();
        let me = Ns { name, ns };
        ferry_testkit::ip(Some(&me.name), &["link", "set", "lo", "up"]);
        let file = std::env::temp_dir().join(format!("{}.nft", me.name));
        std::fs::write(&file, table).unwrap();
        let loaded = ferry_testkit::ns_exec(&me.name, &["nft", "-f", file.to_str().unwrap()]);
        let _ = std::fs::remove_file(&file);
        assert!(loaded, "nft -f {table}");
        me
    }

    fn listener(&self) -> Listener {
        self.ns
            .run(|| Listener::open(GROUP, Duration::from_millis(200)))
            .unwrap()
            .expect("bind the NFLOG group")
    }

    /// `n` UDP datagrams from port 40000 to `to`:9999.
    fn send(&self, from: &str, to: &str, n: usize) {
        self.ns
            .run(|| {
                let s = UdpSocket::bind((from, 40000)).unwrap();
                for _ in 0..n {
                    let _ = s.send_to(b"x", (to, 9999));
                }
            })
            .unwrap();
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = ferry_netns::delete_named(&self.name);
    }
}

fn usable() -> bool {
    let ok = nix::unistd::Uid::effective().is_root()
        && std::process::Command::new("nft")
            .arg("--version")
            .output()
            .is_ok();
    if !ok {
        eprintln!("skipped: needs root and nft");
    }
    ok
}

/// One message: prefix, sequence number, parsed headers.
type Got = (String, Option<u32>, Option<Packet>);

/// Everything `l` receives until `idle` passes with nothing new:
/// (prefix, seq, parsed headers), and how many overruns it saw.
fn drain(l: &mut Listener, idle: Duration) -> (Vec<Got>, usize) {
    let (mut got, mut overruns) = (Vec::new(), 0);
    let mut last = Instant::now();
    while last.elapsed() < idle {
        match l.recv(|m| got.push((m.prefix, m.seq, packet::parse(m.payload)))) {
            Ok(Received::Messages) => last = Instant::now(),
            Ok(Received::Overrun) => overruns += 1,
            Ok(Received::Idle) => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
    (got, overruns)
}

fn table(limit: &str) -> String {
    format!(
        "table inet t {{\n chain out {{\n type filter hook output priority 0; policy accept;
            udp dport 9999 {limit} log prefix \"in-grp-0000test\" group {GROUP}\n }}\n}}\n"
    )
}

#[test]
fn packets_of_both_families_are_received_and_parsed() {
    if !usable() {
        return;
    }
    let ns = Ns::new("nflog", &table(""));
    let mut l = ns.listener();
    ns.send("127.0.0.1", "127.0.0.1", 2);
    ns.send("::1", "::1", 1);
    let (got, overruns) = drain(&mut l, Duration::from_millis(500));
    assert_eq!(overruns, 0);
    assert_eq!(got.len(), 3, "{got:?}");
    let udp = Proto::Udp(Some(Ports {
        src: 40000,
        dst: 9999,
    }));
    for (i, (prefix, seq, p)) in got.iter().enumerate() {
        assert_eq!(prefix, "in-grp-0000test");
        assert_eq!(*seq, Some(i as u32), "numbered from 0");
        let p = p.expect("headers copied");
        let want: std::net::IpAddr = if i < 2 { "127.0.0.1" } else { "::1" }.parse().unwrap();
        assert_eq!((p.src, p.dst, p.proto), (want, want, udp));
    }
}

#[test]
fn a_flood_past_the_buffer_shows_as_overrun_and_sequence_gaps() {
    if !usable() {
        return;
    }
    let ns = Ns::new("nflogflood", &table(""));
    let mut l = ns.listener();
    let sent = QUEUE * 8;
    ns.send("127.0.0.1", "127.0.0.1", sent);
    let (got, overruns) = drain(&mut l, Duration::from_millis(500));
    let seqs: Vec<u32> = got.iter().filter_map(|(_, s, _)| *s).collect();
    let mut last = None;
    let lost: u32 = seqs
        .iter()
        .map(|&s| {
            let gap = seq_gap(last, s);
            last = Some(s);
            gap
        })
        .sum();
    let tail = sent as u32 - 1 - seqs.last().copied().unwrap_or(0);
    eprintln!(
        "{} of {sent} received, {overruns} overruns, {lost} lost in gaps, {tail} after the last",
        got.len()
    );
    assert!(
        overruns >= 1,
        "{} of {sent} received, no overrun",
        got.len()
    );
    assert!(got.len() < sent, "all {sent} fit");
    // Every message is either received or a gap (those after the last
    // received one excepted).
    assert_eq!(got.len() as u32 + lost + tail, sent as u32);
    assert!(lost + tail > 0);
    // The lost ones kept their numbers: the next message shows the gap
    // (what ferry_policy_drop_log_lost_total counts).
    ns.send("127.0.0.1", "127.0.0.1", 1);
    let (next, _) = drain(&mut l, Duration::from_millis(300));
    let next = next
        .first()
        .and_then(|(_, s, _)| *s)
        .expect("one more message");
    assert_eq!(next, sent as u32);
    assert_eq!(seq_gap(seqs.last().copied(), next), tail);
}

#[test]
fn the_rate_limit_holds_a_flood_to_its_burst() {
    if !usable() {
        return;
    }
    let ns = Ns::new(
        "nfloglimit",
        &table("limit rate 100/second burst 20 packets"),
    );
    let mut l = ns.listener();
    let start = Instant::now();
    ns.send("127.0.0.1", "127.0.0.1", 2000);
    let took = start.elapsed();
    let (got, overruns) = drain(&mut l, Duration::from_millis(500));
    assert_eq!(overruns, 0);
    eprintln!("{} logged of 2000 sent in {took:?}", got.len());
    // The burst, and 100 a second for as long as the sending took.
    let most = 20 + 1 + (took.as_secs_f64() * 100.0).ceil() as usize;
    assert!(
        (20..=most).contains(&got.len()),
        "{} logged of 2000 in {took:?}",
        got.len()
    );
}
