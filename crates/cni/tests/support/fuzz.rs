//! A small fuzzer that runs on stable Rust inside `cargo test`, with no
//! dependencies beyond `serde_json`: a seeded generator that mutates valid
//! samples (structurally, as JSON trees, and as bytes) and also feeds
//! arbitrary bytes. Shared by the fuzz tests of several crates
//! (`#[path]`-included: crates/cni, crates/ipam, crates/agent).
//!
//! - `FERRY_FUZZ_CASES=N`: cases per target (default: the short pass
//!   `cargo test` runs);
//! - `FERRY_FUZZ_SEED=S`: the run's seed (default fixed, so CI is
//!   reproducible); every case is derived from (seed, case number), so a
//!   failure names both and `FERRY_FUZZ_ONLY=<case>` replays just it;
//! - a case that panics fails the test and prints its input; a case that
//!   runs longer than 10 s aborts the process, naming the case (no hang
//!   goes unnoticed).
#![allow(dead_code)] // each test file uses part of it

use std::fmt::Debug;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// splitmix64: small, fast, good enough to drive a fuzzer.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// True with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Runs `check` on `cases` inputs made by `make` (`FERRY_FUZZ_CASES`
/// overrides `default_cases`) and returns how many ran.
pub fn run<T: Debug>(
    target: &str,
    default_cases: u64,
    make: impl Fn(&mut Rng) -> T,
    check: impl Fn(&T),
) -> u64 {
    let cases = env_u64("FERRY_FUZZ_CASES").unwrap_or(default_cases);
    let seed = env_u64("FERRY_FUZZ_SEED").unwrap_or(0xfe44_7f22);
    let only = env_u64("FERRY_FUZZ_ONLY");
    let current = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (current, done, target) = (current.clone(), done.clone(), target.to_string());
        std::thread::spawn(move || {
            let (mut last, mut since) = (u64::MAX, Instant::now());
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let now = current.load(Ordering::Relaxed);
                if now != last {
                    (last, since) = (now, Instant::now());
                } else if since.elapsed() > Duration::from_secs(10) {
                    eprintln!(
                        "fuzz {target}: case {now} (FERRY_FUZZ_SEED={seed:#x} \
                         FERRY_FUZZ_ONLY={now}) hangs"
                    );
                    std::process::abort();
                }
            }
        })
    };
    let start = Instant::now();
    let mut ran = 0;
    for i in 0..cases {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        current.store(i, Ordering::Relaxed);
        let mut rng = Rng::new(seed ^ i.wrapping_mul(0xd134_2543_de82_ef95));
        let input = make(&mut rng);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&input))) {
            done.store(true, Ordering::Relaxed);
            eprintln!(
                "fuzz {target}: case {i} failed (replay: FERRY_FUZZ_SEED={seed:#x} \
                 FERRY_FUZZ_ONLY={i}); input:\n{input:?}"
            );
            resume_unwind(panic);
        }
        ran += 1;
    }
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    eprintln!(
        "fuzz {target}: {ran} cases in {:.1?}, seed {seed:#x}, no failure",
        start.elapsed()
    );
    ran
}

/// Tokens worth splicing into JSON text.
pub const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\\",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e999",
    "-0",
    "4294967296",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "1.5",
    "\"\"",
    " ",
    "\n",
    "\r\n",
    "\u{feff}",
    "\u{0}",
    "\"\u{10ffff}\"",
];

/// Strings worth trying wherever a string goes.
pub const STRINGS: &[&str] = &[
    "",
    " ",
    ".",
    "..",
    "/",
    "a/b",
    "../../bin/sh",
    "/bin/sh",
    "\0",
    "é",
    "\u{202e}",
    "0.3.0",
    "0.3.1",
    "0.4.0",
    "1.0.0",
    "1.1.0",
    "0.2.0",
    "2.0.0",
    "ferry",
    "ferry-ipam",
    "host-local",
    "eth0",
    "net1",
    "10.244.0.0/24",
    "10.244.0.0/16",
    "10.244.0.0/31",
    "10.244.0.0/32",
    "10.244.0.0/33",
    "10.244.0.5/24",
    "10.244.0.1",
    "10.244.0.255",
    "10.244.1.7",
    "0.0.0.0/0",
    "0.0.0.0",
    "255.255.255.255",
    "10.244.0.256",
    " 10.244.0.5 ",
    "::",
    "::/0",
    "::1",
    "fd00:10:244::/64",
    "fd00:10:244::/127",
    "fd00:10:244::1",
    "fe80::1%eth0",
    "::ffff:10.244.0.9",
    "::ffff:10.244.0.0/120",
    "1.2.3.4/24",
    "x",
    "10.244.0.9,10.244.0.10",
    "IP=10.244.0.9",
    "K=V;K2=V2",
    "=x",
    ";;",
    "abc123",
    "-abc",
    "a b",
    "UNKNOWN",
];

fn long_string(rng: &mut Rng) -> String {
    let unit = *rng.pick(&["x", "é", "1", "/", "a.", "\u{10000}"]);
    unit.repeat(1 + rng.below(600))
}

/// A random JSON value, at most `depth` levels deep, using `keys` for
/// object keys and [`STRINGS`] and `extra` for strings.
pub fn random_value(rng: &mut Rng, depth: usize, keys: &[&str], extra: &[&str]) -> Value {
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => match rng.below(4) {
            0 => Value::from(rng.next_u64()),
            1 => Value::from(rng.next_u64() as i64),
            2 => Value::from(rng.below(70000) as i64 - 10),
            _ => serde_json::Number::from_f64(f64::from_bits(rng.next_u64()))
                .map_or(Value::Null, Value::Number),
        },
        3 | 4 => Value::String(random_string(rng, extra)),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1, keys, extra))
                .collect(),
        ),
        _ => {
            let mut m = Map::new();
            for _ in 0..rng.below(5) {
                let k = random_key(rng, keys);
                m.insert(k, random_value(rng, depth - 1, keys, extra));
            }
            Value::Object(m)
        }
    }
}

fn random_string(rng: &mut Rng, extra: &[&str]) -> String {
    match rng.below(10) {
        0 => long_string(rng),
        1 => String::from_utf8_lossy(&rng.bytes(12)).into_owned(),
        2..=4 if !extra.is_empty() => rng.pick(extra).to_string(),
        _ => rng.pick(STRINGS).to_string(),
    }
}

fn random_key(rng: &mut Rng, keys: &[&str]) -> String {
    if keys.is_empty() || rng.one_in(8) {
        random_string(rng, &[])
    } else {
        rng.pick(keys).to_string()
    }
}

/// One structural change somewhere in `v`: a node replaced, a key added or
/// removed, an array element duplicated or dropped.
pub fn mutate_value(rng: &mut Rng, v: &mut Value, keys: &[&str], extra: &[&str]) {
    // A random node: its path of child indices, then the node itself.
    let mut path = Vec::new();
    let mut at: &Value = v;
    while !rng.one_in(3) {
        let children: Vec<&Value> = match at {
            Value::Object(m) => m.values().collect(),
            Value::Array(a) => a.iter().collect(),
            _ => break,
        };
        if children.is_empty() {
            break;
        }
        let i = rng.below(children.len());
        path.push(i);
        at = children[i];
    }
    let mut node = v;
    for i in path {
        node = match node {
            Value::Object(m) => m.values_mut().nth(i).expect("on the path"),
            Value::Array(a) => &mut a[i],
            _ => unreachable!("the path only goes through containers"),
        };
    }
    match (node, rng.below(4)) {
        (Value::Object(m), 0) if !m.is_empty() => {
            let k = m
                .keys()
                .nth(rng.below(m.len()))
                .cloned()
                .unwrap_or_default();
            m.remove(&k);
        }
        (Value::Object(m), 1) => {
            m.insert(random_key(rng, keys), random_value(rng, 2, keys, extra));
        }
        (Value::Array(a), 0) if !a.is_empty() => {
            a.remove(rng.below(a.len()));
        }
        (Value::Array(a), 1) if !a.is_empty() => {
            let dup = a[rng.below(a.len())].clone();
            let n = if rng.one_in(8) { 200 } else { 1 };
            a.extend(std::iter::repeat_n(dup, n));
        }
        (Value::String(s), 2) => *s = random_string(rng, extra),
        (node, _) => *node = random_value(rng, 2, keys, extra),
    }
}

/// 1 to 8 byte-level changes: bit flips, random or dictionary bytes
/// inserted, ranges deleted or repeated, pieces of `others` spliced in.
pub fn mutate_bytes(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(b.len() + 1);
        match rng.below(7) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = *rng.pick(&[0, 0x7f, 0x80, 0xff, b'"', b'\\', b'0', b'9']);
            }
            2 => b
                .splice(at..at, rng.pick(JSON_TOKENS).bytes())
                .for_each(drop),
            3 => {
                let end = (at + rng.below(16)).min(b.len());
                b.drain(at..end);
            }
            4 => {
                let end = (at + rng.below(32)).min(b.len());
                let piece = b[at..end].to_vec();
                b.splice(at..at, piece).for_each(drop);
            }
            5 if !others.is_empty() => {
                let o = rng.pick(others);
                let from = rng.below(o.len() + 1);
                let end = (from + rng.below(64)).min(o.len());
                b.splice(at..at, o[from..end].iter().copied())
                    .for_each(drop);
            }
            _ => b.splice(at..at, rng.bytes(8)).for_each(drop),
        }
    }
    b
}

/// A fuzz input from valid `samples`: arbitrary bytes (1 in 10), a sample
/// mutated as bytes (3 in 10), or a sample mutated as a JSON tree and
/// serialized (6 in 10, sometimes byte-mutated after).
pub fn json_input(rng: &mut Rng, samples: &[Value], keys: &[&str], extra: &[&str]) -> Vec<u8> {
    let texts: Vec<Vec<u8>> = samples
        .iter()
        .map(|s| serde_json::to_vec(s).expect("serializable"))
        .collect();
    match rng.below(10) {
        0 => rng.bytes(256),
        1..=3 => {
            let text = texts[rng.below(texts.len())].clone();
            mutate_bytes(rng, &text, &texts)
        }
        _ => {
            let mut v = rng.pick(samples).clone();
            for _ in 0..1 + rng.below(4) {
                mutate_value(rng, &mut v, keys, extra);
            }
            let text = serde_json::to_vec(&v).expect("serializable");
            if rng.one_in(5) {
                mutate_bytes(rng, &text, &texts)
            } else {
                text
            }
        }
    }
}
