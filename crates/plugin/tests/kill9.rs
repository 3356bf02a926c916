//! `kill -9` at random moments during ADD, 50 times. The first 25 are each
//! followed by a DEL, which must leave nothing; the other 25 are abandoned
//! (their netns deleted, as after a runtime crash) and one GC must then
//! leave no IP, veth or route behind.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{Call, Node, FERRY};

/// xorshift64*: a seeded generator, so a failure names its seed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn kill_during_add_leaks_nothing() {
    let seed = std::env::var("FERRY_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill9 seed {seed} (set FERRY_KILL_SEED to repeat)");
    let mut rng = Rng(seed);
    let node = Node::new("k9");
    let (links, routes) = (node.links(), node.routes());
    let conf = node.conf(
        "1.1.0",
        r#"[[{"subnet":"10.244.0.0/24"}],[{"subnet":"fd00:10:244::/64"}]]"#,
    );

    // How long an ADD takes here bounds the random kill moment: the
    // fastest of three (a first, cold ADD can take many times longer and
    // would put most kills after the end).
    let probe_pod = node.pod("probe");
    let mut add_time = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        node.ferry(&Call::new(
            "ADD",
            "k9probe",
            &Node::pod_path(&probe_pod),
            &conf,
        ))
        .expect_ok();
        add_time = add_time.min(start.elapsed());
        node.ferry(&Call::new("DEL", "k9probe", "", &conf))
            .expect_ok();
    }
    let add_time = add_time.max(Duration::from_millis(2));

    let mut killed_mid_way = 0;
    for i in 0..50 {
        let pod = node.pod(&format!("p{i}"));
        let call = Call::new("ADD", &format!("k9n{i}"), &Node::pod_path(&pod), &conf);
        let mut child = node.spawn(FERRY, &call);
        let wait = rng.below(add_time.as_micros() as u64 * 3 / 2);
        std::thread::sleep(Duration::from_micros(wait));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if !status.success() {
            killed_mid_way += 1;
        }
        if i < 25 {
            node.ferry(&Call::new(
                "DEL",
                &format!("k9n{i}"),
                &Node::pod_path(&pod),
                &conf,
            ))
            .expect_ok();
            assert!(
                node.reserved_ips().is_empty(),
                "seed {seed} run {i}: IPs {:?}",
                node.reserved_ips()
            );
            assert_eq!(node.links(), links, "seed {seed} run {i}: links");
            assert_eq!(node.routes(), routes, "seed {seed} run {i}: routes");
        }
        node.drop_pod(&pod);
    }
    eprintln!("{killed_mid_way} of 50 ADDs were killed before they finished");
    assert!(
        killed_mid_way >= 10,
        "seed {seed}: too few kills landed mid-ADD to test anything"
    );
    let mut gc: serde_json::Value = serde_json::from_str(&conf).unwrap();
    gc["cni.dev/valid-attachments"] = serde_json::json!([]);
    node.ferry(&Call::new("GC", "", "", &gc.to_string()))
        .expect_ok();
    for _ in 0..50 {
        if node.links() == links {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        node.reserved_ips().is_empty(),
        "seed {seed}: IPs {:?}",
        node.reserved_ips()
    );
    assert_eq!(node.links(), links, "seed {seed}: links");
    assert_eq!(node.routes(), routes, "seed {seed}: routes");
    let leftovers: Vec<String> = node
        .ipam_files()
        .into_iter()
        .filter(|f| !f.ends_with("lock") && !f.contains("last_reserved_ip") && !f.ends_with("v1"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "seed {seed}: index files left {leftovers:?}"
    );
}
