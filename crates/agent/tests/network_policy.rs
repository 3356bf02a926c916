//! NetworkPolicy end to end: the project's API server, one node netns
//! running `ferryd run --network-policy=true --fast-path=false`, real pods
//! made through the conflist ferryd installed, TCP connects between them
//! through the table ferryd programs (ferry-netpol-nft). IPv4 only: the
//! lab's pods get IPv4 addresses (the IPv6 dataplane is tested in
//! ferry-netpol-nft's own tests).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::policy::{
    connects, expect, load_table, policy_table, put_namespace, put_pod, put_policy, series, serve,
};
use common::{wait_for, Lab};
use ferry_apiserver::Kind;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// What an earlier ferryd could have left.
const OLD_TABLE: &str = "table inet ferry-policy {
    chain ingress {
        type filter hook forward priority filter + 10; policy accept;
        ip daddr 10.244.0.77 drop
    }
}
";

/// A pod: its netns and IPv4 address.
struct P {
    ns: String,
    ip: String,
}

/// A one-node lab with ferryd ready, plus `extra` flags (the fast path
/// off unless they say otherwise).
fn lab(tag: &str, extra: &[&str]) -> Lab {
    let mut lab = Lab::new(tag, 1, &[]);
    if !extra.iter().any(|f| f.starts_with("--fast-path")) {
        lab.nodes[0].flags.push("--fast-path=false".into());
    }
    lab.nodes[0]
        .flags
        .extend(extra.iter().map(|f| f.to_string()));
    let store = lab.store();
    put_namespace(&store, "default", json!({}));
    put_namespace(&store, "team", json!({"team": "a"}));
    lab.start_all();
    lab.nodes[0].wait_ready();
    lab
}

/// A pod made through the conflist, registered in the API as `ns/name`.
fn pod(lab: &mut Lab, ns: &str, name: &str, labels: serde_json::Value) -> P {
    let (netns, ip) = lab.nodes[0].add_pod(name);
    put_pod(&lab.store(), ns, name, "k8s-1", &ip, labels);
    P { ns: netns, ip }
}

fn metric(lab: &Lab, series_name: &str) -> f64 {
    series(&lab.nodes[0], series_name).unwrap_or(0.0)
}

/// `series_name` once it has not moved for 1.5 s (at most 15 s): a sync
/// the last policy change queued may still be on its way.
fn settled(lab: &Lab, series_name: &str) -> f64 {
    let mut v = metric(lab, series_name);
    for _ in 0..10 {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let now = metric(lab, series_name);
        if now == v {
            break;
        }
        v = now;
    }
    v
}

const REPLACED: &str = "ferry_network_policy_applies_total{result=\"replaced\"}";
const ELEMENTS: &str = "ferry_network_policy_applies_total{result=\"elements\"}";

#[test]
fn ingress_deny_then_allow_by_pods_namespaces_and_named_port() {
    let mut lab = lab("npin", &[]);
    let web = pod(&mut lab, "default", "web", json!({"app": "web"}));
    let c1 = pod(&mut lab, "default", "c1", json!({"app": "client"}));
    let c2 = pod(&mut lab, "team", "c2", json!({"app": "other"}));
    let _http = serve(&web.ns, 8080);
    let _other = serve(&web.ns, 9090);
    let store = lab.store();
    expect(&c1.ns, &web.ip, 8080, true, "no policy yet");

    put_policy(
        &store,
        "default",
        "deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    expect(&c1.ns, &web.ip, 8080, false, "default-deny ingress");
    assert!(!connects(&c2.ns, &web.ip, 8080));

    put_policy(
        &store,
        "default",
        "from-clients",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}),
    );
    expect(&c1.ns, &web.ip, 8080, true, "allowed by podSelector");
    assert!(!connects(&c2.ns, &web.ip, 8080), "c2 is no client");

    put_policy(
        &store,
        "default",
        "from-team",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
                            "ports": [{"port": "http"}]}]}),
    );
    expect(
        &c2.ns,
        &web.ip,
        8080,
        true,
        "allowed by namespaceSelector on the named port",
    );
    assert!(!connects(&c2.ns, &web.ip, 9090), "only the named port");
    assert!(
        connects(&c1.ns, &web.ip, 9090),
        "from-clients allows every port"
    );

    // endPort (Kubernetes 1.22+; the project's API server serves it): a
    // range, both ends inclusive.
    let (_r1, _r2) = (serve(&web.ns, 9100), serve(&web.ns, 9101));
    assert!(!connects(&c2.ns, &web.ip, 9100));
    put_policy(
        &store,
        "default",
        "range",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"namespaceSelector": {}}],
                            "ports": [{"protocol": "TCP", "port": 9090, "endPort": 9100}]}]}),
    );
    expect(&c2.ns, &web.ip, 9100, true, "the range's last port");
    assert!(connects(&c2.ns, &web.ip, 9090), "the range's first port");
    assert!(!connects(&c2.ns, &web.ip, 9101), "past endPort");

    // Pod churn: a new client is let in by elements, no table replace.
    let replaced = settled(&lab, REPLACED);
    let elements = metric(&lab, ELEMENTS);
    let c3 = pod(&mut lab, "default", "c3", json!({"app": "client"}));
    expect(
        &c3.ns,
        &web.ip,
        8080,
        true,
        "a new pod matching the selector",
    );
    assert_eq!(
        metric(&lab, REPLACED),
        replaced,
        "pod churn replaced the table"
    );
    assert!(metric(&lab, ELEMENTS) > elements);

    // Drops were counted against the policies isolating web.
    let drops = "ferry_network_policy_drops_total{namespace=\"default\",policy=\"deny\",direction=\"ingress\"}";
    wait_for(WAIT, "drops counted", || {
        (metric(&lab, drops) > 0.0).then_some(())
    });
    assert_eq!(
        metric(&lab, "ferry_network_policies{state=\"enforced\"}"),
        4.0
    );

    // `ferryd status` lists them with the kernel's counts.
    let (ok, out, err) = lab.nodes[0].ferryd_cmd(&lab.kubeconfig, "status");
    assert!(ok, "{out}{err}");
    assert!(out.contains("policy:     4 isolating local pods"), "{out}");
    let deny = out
        .lines()
        .find(|l| l.contains("default/deny ingress:"))
        .unwrap_or_default();
    let dropped: u64 = deny
        .split(", ")
        .nth(1)
        .and_then(|d| d.strip_suffix(" packets dropped"))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no drop count in {deny:?}\n{out}"));
    assert!(dropped > 0, "{out}");
    assert!(
        deny.contains(": 3 local pod addresses"),
        "web, c1 and c3: {out}"
    );

    for name in ["deny", "from-clients", "from-team", "range"] {
        store.remove(Kind::NetworkPolicy, "default", name).unwrap();
    }
    expect(&c2.ns, &web.ip, 9090, true, "every policy deleted");
    // The counter stays monotonic after its policy is gone.
    assert!(metric(&lab, drops) > 0.0);
}

#[test]
fn egress_deny_and_ip_block_except() {
    let mut lab = lab("npeg", &[]);
    let web = pod(&mut lab, "default", "web", json!({"app": "web"}));
    let web2 = pod(&mut lab, "default", "web2", json!({"app": "web"}));
    let c1 = pod(&mut lab, "default", "c1", json!({"app": "client"}));
    let (_a, _b) = (serve(&web.ns, 8080), serve(&web2.ns, 8080));
    let store = lab.store();
    expect(&c1.ns, &web.ip, 8080, true, "no policy yet");

    let client = json!({"matchLabels": {"app": "client"}});
    put_policy(
        &store,
        "default",
        "no-egress",
        json!({"podSelector": client, "policyTypes": ["Egress"]}),
    );
    expect(&c1.ns, &web.ip, 8080, false, "egress denied");
    assert!(!connects(&c1.ns, &web2.ip, 8080));
    // web → c1 is not isolated (replies to c1 would be, but c1 starts nothing).
    let _c1_srv = serve(&c1.ns, 7000);
    assert!(connects(&web.ns, &c1.ip, 7000), "c1's ingress is open");

    put_policy(
        &store,
        "default",
        "to-pods-but-web",
        json!({"podSelector": client, "policyTypes": ["Egress"],
               "egress": [{"to": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": [format!("{}/32", web.ip)]}}]}]}),
    );
    expect(&c1.ns, &web2.ip, 8080, true, "inside the ipBlock");
    assert!(!connects(&c1.ns, &web.ip, 8080), "the except");

    store
        .remove(Kind::NetworkPolicy, "default", "no-egress")
        .unwrap();
    store
        .remove(Kind::NetworkPolicy, "default", "to-pods-but-web")
        .unwrap();
    expect(&c1.ns, &web.ip, 8080, true, "policies deleted");
}

#[test]
fn restart_keeps_denying_and_off_removes_the_table() {
    let mut lab = lab("nprs", &[]);
    let web = pod(&mut lab, "default", "web", json!({"app": "web"}));
    let c1 = pod(&mut lab, "default", "c1", json!({"app": "client"}));
    let _srv = serve(&web.ns, 8080);
    let store = lab.store();
    put_policy(
        &store,
        "default",
        "deny",
        json!({"podSelector": {"matchLabels": {"app": "web"}}}),
    );
    expect(&c1.ns, &web.ip, 8080, false, "denied");

    // Probe all through the restart: no connect may get through.
    let stop = Arc::new(AtomicBool::new(false));
    let (passed, probes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let prober = {
        let (stop, passed, probes) = (stop.clone(), passed.clone(), probes.clone());
        let (from, to) = (c1.ns.clone(), web.ip.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if connects(&from, &to, 8080) {
                    passed.fetch_add(1, Ordering::Relaxed);
                }
                probes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Probes while it runs, while it is down, and after it is back.
    let more = |n: usize| {
        let from = probes.load(Ordering::Relaxed);
        wait_for(WAIT, "probes", || {
            (probes.load(Ordering::Relaxed) >= from + n).then_some(())
        });
    };
    more(1);
    lab.nodes[0].stop_ferryd();
    assert!(
        policy_table(&lab.nodes[0]).is_some(),
        "the table outlives ferryd"
    );
    more(2);
    let kc = lab.kubeconfig.clone();
    lab.nodes[0].start_ferryd(&kc);
    lab.nodes[0].wait_ready();
    wait_for(WAIT, "the restarted ferryd synced", || {
        (metric(
            &lab,
            "ferry_network_policy_applies_total{result=\"adopted\"}",
        ) == 1.0)
            .then_some(())
    });
    more(2);
    stop.store(true, Ordering::Relaxed);
    prober.join().unwrap();
    assert_eq!(
        passed.load(Ordering::Relaxed),
        0,
        "a denied connect passed during the restart"
    );
    assert_eq!(
        metric(&lab, REPLACED),
        0.0,
        "the matching table was kept, not replaced"
    );

    // --network-policy=false: the table goes, the pods are open.
    lab.nodes[0].stop_ferryd();
    lab.nodes[0].flags.push("--network-policy=false".into());
    lab.nodes[0].start_ferryd(&kc);
    wait_for(WAIT, "the policy table deleted", || {
        policy_table(&lab.nodes[0]).is_none().then_some(())
    });
    expect(&c1.ns, &web.ip, 8080, true, "policy off");
}

#[test]
fn a_stale_table_is_replaced_and_bad_policies_are_counted() {
    let mut lab = Lab::new("npst", 1, &[]);
    let store = lab.store();
    put_namespace(&store, "default", json!({}));
    put_pod(
        &store,
        "default",
        "web",
        "k8s-1",
        "10.244.0.77",
        json!({"app": "web"}),
    );
    put_policy(
        &store,
        "default",
        "deny",
        json!({"podSelector": {"matchLabels": {"app": "web"}}}),
    );
    // One rule ferryd cannot use (ICMP is no NetworkPolicy protocol).
    put_policy(
        &store,
        "default",
        "bad-rule",
        json!({"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP"}]}]}),
    );
    let n = &mut lab.nodes[0];
    n.flags.push("--fast-path=false".into());
    load_table(n, OLD_TABLE);
    lab.start_all();
    let n = &lab.nodes[0];
    n.wait_ready();
    let enforced = "ferry_network_policies{state=\"enforced\"}";
    let unenforceable = "ferry_network_policies{state=\"unenforceable\"}";
    wait_for(WAIT, "both policies seen", || {
        (series(n, enforced) == Some(1.0) && series(n, unenforceable) == Some(1.0)).then_some(())
    });
    assert!(
        n.log().contains("bad-rule"),
        "the problem is logged:\n{}",
        n.log()
    );
    wait_for(WAIT, "the stale table replaced", || {
        policy_table(n)
            .filter(|t| t.contains("in/default/deny"))
            .map(drop)
    });
    assert_eq!(series(n, REPLACED), Some(1.0));
    store
        .remove(Kind::NetworkPolicy, "default", "bad-rule")
        .unwrap();
    wait_for(WAIT, "the change seen", || {
        (series(n, unenforceable) == Some(0.0)).then_some(())
    });
}
