//! Fuzzing every parser of outside input in ferry-cni: the network config
//! (alone, and each plugin of a conflist as the runtime derives it),
//! `prevResult`, the environment and `CNI_ARGS`. No panic, no hang, and
//! every rejection carries the spec's code for it.
//!
//! `cargo test -p ferry-cni --test fuzz` runs a short pass;
//! `FERRY_FUZZ_CASES=1000000 cargo test --release -p ferry-cni --test fuzz`
//! runs a million cases per target (see support/fuzz.rs for the knobs).

#[path = "support/fuzz.rs"]
mod fuzz;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_cni::config::{is_plain_name, peek_version};
use ferry_cni::env::{parse_args, validate_container_id, validate_ifname};
use ferry_cni::{CniResult, Code, Command, Env, NetConf, Version};
use fuzz::{json_input, mutate_bytes, run, Rng, STRINGS};
use serde_json::{json, Value};

const SHORT: u64 = 3000;

const KEYS: &[&str] = &[
    "cniVersion",
    "name",
    "type",
    "ipam",
    "prevResult",
    "runtimeConfig",
    "cni.dev/valid-attachments",
    "cni.dev/attachments",
    "containerID",
    "ifname",
    "interfaces",
    "ips",
    "routes",
    "dns",
    "address",
    "gateway",
    "interface",
    "dst",
    "gw",
    "mtu",
    "mac",
    "sandbox",
    "socketPath",
    "pciID",
    "nameservers",
    "domain",
    "search",
    "options",
    "plugins",
    "capabilities",
    "args",
    "subnet",
    "ranges",
    "priority",
    "table",
    "scope",
    "advmss",
];

fn prev_result() -> Value {
    json!({"cniVersion":"1.1.0",
        "interfaces":[{"name":"ferry0a1b2c3d4e","mac":"ee:ee:ee:ee:ee:ee","mtu":1500},
                      {"name":"eth0","mac":"02:00:00:00:00:01","sandbox":"/run/netns/p","mtu":1500}],
        "ips":[{"interface":1,"address":"10.244.0.5/32","gateway":"169.254.1.1"},
               {"interface":1,"address":"fd00:10:244::5/128"}],
        "routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1","mtu":1400,"table":10,"scope":0},
                  {"dst":"::/0"}],
        "dns":{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"],"options":["ndots:5"]}})
}

fn configs() -> Vec<Value> {
    vec![
        json!({"cniVersion":"1.0.0","name":"ferry","type":"ferry","mtu":1500,
            "ipam":{"type":"ferry-ipam","ranges":[[{"subnet":"10.244.0.0/24"}]]}}),
        json!({"cniVersion":"0.4.0","name":"k8s-pod-network","type":"ferry",
            "ipam":{"type":"host-local","subnet":"10.244.0.0/24"},
            "runtimeConfig":{"portMappings":[],"ips":["10.244.0.9/24"]},
            "prevResult": prev_result()}),
        json!({"cniVersion":"1.1.0","name":"ferry","type":"ferry",
            "cni.dev/valid-attachments":[{"containerID":"abc","ifname":"eth0"}]}),
        json!({"cniVersion":"0.3.1","name":"n","type":"ferry","cni.dev/attachments":[]}),
    ]
}

/// The codes parsing a config may answer with (spec: 1, 6, 7).
fn assert_config_code(code: Code, input: &[u8]) {
    assert!(
        matches!(
            code,
            Code::IncompatibleVersion | Code::DecodingFailure | Code::InvalidNetworkConfig
        ),
        "code {code:?} for {}",
        String::from_utf8_lossy(input)
    );
}

/// A parsed result reads back exactly from its own 1.1.0 form, and every
/// version's form of it parses.
fn assert_round_trips(r: &CniResult) {
    let back = CniResult::from_value(&r.to_value(Version::V1_1_0)).expect("own 1.1.0 form");
    assert_eq!(&back, r);
    for v in Version::ALL {
        let text = r.to_json(v);
        let again = CniResult::from_slice(text.as_bytes()).expect("own older form");
        assert_eq!(again.ips, r.ips, "{v}: {text}");
    }
}

fn check_netconf(input: &[u8]) {
    let _ = peek_version(input);
    match NetConf::parse(input) {
        Ok(c) => {
            assert!(is_plain_name(&c.name) && is_plain_name(&c.plugin_type));
            assert!(c.ipam_type.as_deref().is_none_or(is_plain_name));
            assert_eq!(
                c.cni_version.as_str().parse::<Version>().ok(),
                Some(c.cni_version)
            );
            if let Some(r) = &c.prev_result {
                assert_round_trips(r);
            }
        }
        Err(e) => {
            assert_config_code(e.code, input);
            let _ = e.to_json(Version::LATEST);
        }
    }
}

#[test]
fn fuzz_netconf() {
    let samples = configs();
    let accepted = AtomicU64::new(0);
    let ran = run(
        "netconf",
        SHORT,
        |rng| Bytes(json_input(rng, &samples, KEYS, &[])),
        |b| {
            check_netconf(&b.0);
            if NetConf::parse(&b.0).is_ok() {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
        },
    );
    // The mutations stay close enough to valid configs to get past the
    // JSON layer and reach the checks behind it.
    let accepted = accepted.into_inner();
    assert!(
        ran < 100 || accepted * 20 > ran,
        "{accepted} of {ran} accepted"
    );
}

#[test]
fn fuzz_prev_result() {
    let samples = vec![
        prev_result(),
        json!({"cniVersion":"0.3.0","ips":[
        {"version":"4","address":"10.244.0.5/24","gateway":"10.244.0.1","interface":0}]}),
    ];
    run(
        "prevResult",
        SHORT,
        |rng| Bytes(json_input(rng, &samples, KEYS, &[])),
        |b| {
            if let Ok(r) = CniResult::from_slice(&b.0) {
                assert_round_trips(&r);
            }
        },
    );
}

/// The runtime (libcni) gives each plugin of a conflist its own config:
/// the plugin's object with the list's `name` and `cniVersion` (and the
/// previous plugin's result as `prevResult`).
#[test]
fn fuzz_conflist_plugins() {
    let list: Value =
        serde_json::from_str(include_str!("../../agent/testdata/10-ferry.conflist")).unwrap();
    let samples = vec![list];
    let prev = prev_result();
    run(
        "conflist",
        SHORT,
        |rng| Bytes(json_input(rng, &samples, KEYS, &[])),
        |b| {
            let Ok(Value::Object(list)) = serde_json::from_slice::<Value>(&b.0) else {
                return check_netconf(&b.0);
            };
            let plugins = list.get("plugins").and_then(Value::as_array);
            for (i, p) in plugins.into_iter().flatten().enumerate() {
                let mut p = p.clone();
                if let Value::Object(m) = &mut p {
                    for k in ["name", "cniVersion"] {
                        m.insert(k.into(), list.get(k).cloned().unwrap_or(Value::Null));
                    }
                    if i > 0 {
                        m.insert("prevResult".into(), prev.clone());
                    }
                }
                check_netconf(&serde_json::to_vec(&p).unwrap());
            }
        },
    );
}

const ENV_KEYS: &[&str] = &[
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
];

const ENV_VALUES: &[&str] = &[
    "ADD",
    "DEL",
    "CHECK",
    "VERSION",
    "STATUS",
    "GC",
    "add",
    "abc123",
    "/run/netns/x",
    "/var/run/netns/cni-1234",
    "eth0",
    "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.244.0.9",
    "/opt/cni/bin:/usr/lib/cni",
    "::",
];

/// An environment: a valid one with some values replaced or dropped.
fn environment(rng: &mut Rng) -> HashMap<String, String> {
    let valid = [
        ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"][rng.below(6)],
        "abc123",
        "/run/netns/x",
        "eth0",
        "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.244.0.9",
        "/opt/cni/bin:/usr/lib/cni",
    ];
    let mut env: HashMap<String, String> = ENV_KEYS
        .iter()
        .zip(valid)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for _ in 0..rng.below(4) {
        let k = rng.pick(ENV_KEYS).to_string();
        let old = env.get(&k).cloned().unwrap_or_default();
        let new = match rng.below(5) {
            0 => {
                env.remove(&k);
                continue;
            }
            1 => rng.pick(ENV_VALUES).to_string(),
            2 => rng.pick(STRINGS).to_string(),
            _ => String::from_utf8_lossy(&mutate_bytes(rng, old.as_bytes(), &[])).into_owned(),
        };
        env.insert(k, new);
    }
    env
}

#[test]
fn fuzz_environment() {
    run(
        "environment",
        SHORT,
        environment,
        |env| match Env::from_lookup(|k| env.get(k).cloned()) {
            Ok(e) => {
                if e.command.is_attachment() {
                    assert!(validate_container_id(&e.container_id).is_ok());
                    assert!(validate_ifname(&e.ifname).is_ok());
                    assert!(e.netns.is_some() || e.command == Command::Del);
                } else {
                    assert!(e.container_id.is_empty() && e.ifname.is_empty());
                    assert_eq!(e.netns, None);
                }
                assert!(e.netns.iter().all(|p| p.is_absolute()));
                assert!(e.args.iter().all(|(k, _)| !k.is_empty()));
            }
            Err(err) => assert_eq!(err.code, Code::InvalidEnvironment, "{err}"),
        },
    );
}

#[test]
fn fuzz_cni_args() {
    let samples: Vec<Vec<u8>> = [
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc",
        "IP=10.244.0.9,fd00:10:244::9",
        "K=V=W;;X=",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    run(
        "CNI_ARGS",
        SHORT,
        |rng| {
            let s = rng.pick(&samples).clone();
            String::from_utf8_lossy(&mutate_bytes(rng, &s, &samples)).into_owned()
        },
        |s| match parse_args(s) {
            Ok(pairs) => {
                let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                // Nothing lost or invented: the pairs are the non-empty
                // segments, in order.
                let segments: Vec<&str> = s.split(';').filter(|p| !p.is_empty()).collect();
                assert_eq!(joined, segments);
                assert!(pairs.iter().all(|(k, _)| !k.is_empty() && !k.contains('=')));
            }
            Err(e) => assert_eq!(e.code, Code::InvalidEnvironment),
        },
    );
}

/// Bytes shown as text in a failure report.
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}
