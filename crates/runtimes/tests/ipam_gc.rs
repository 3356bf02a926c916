//! ferryd's IPAM GC (`ferryd gc`) against a real containerd 1.6: the
//! reservations and host veths leaked for sandboxes containerd does not
//! know are released, exactly those, while pods keep being created.
//!
//! Leaks are made the way a lost DEL leaves them: ferry's ADD for a
//! sandbox ID that containerd does not have (its own netns, its
//! reservation, its host veth), plus a bare reservation record. A sandbox
//! whose ADD died and whose DEL failed is no leak under containerd 1.6: it
//! stays listed (NotReady) until its StopPodSandbox succeeds, and GC
//! leaves it alone. Everything lives in the
//! test's node netns, its IPAM dir and its containerd's dir, all named with
//! the test's unique prefix and removed on drop (panics included).

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_hostveth::host_veth_name;
use ferry_runtimes::cni::{ferry_conflist, FERRY_NETWORK};
use ferry_runtimes::look::{ferry_veths, reservation_owner};
use ferry_runtimes::plugins::{ferry_binaries, ferryd_binary};
use ferry_runtimes::procs::output_in;
use ferry_runtimes::{pod_config, Containerd, Cri};
use ferry_testkit::{Call, Node};

/// Long enough for any sandbox start on a loaded machine; the leaks and
/// the live pods' records are made older than this on purpose.
const GRACE: &str = "30s";
const OLD: Duration = Duration::from_secs(600);
/// Well inside the /24 the conflist allocates from.
const CHURN_MAX: usize = 100;

/// Drop order: client, containerd (stops its sandboxes), node netns.
struct Setup {
    cri: Cri,
    ctrd: Containerd,
    node: Node,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        // Built now, not while pods are being created.
        ferryd_binary().expect("ferryd built");
        let node = Node::new(tag);
        let ctrd = Containerd::with_ferry(&node.path, &node.data_dir, false)
            .unwrap_or_else(|e| panic!("starting containerd: {e}"));
        let cri = ctrd.cri().expect("CRI client");
        Setup { cri, ctrd, node }
    }

    fn record(&self, ip: &str) -> PathBuf {
        self.node.data_dir.join(FERRY_NETWORK).join(ip)
    }

    /// Make the reservation record of `ip` look `OLD`.
    fn age(&self, ip: &str) {
        let f = std::fs::File::options()
            .write(true)
            .open(self.record(ip))
            .unwrap_or_else(|e| panic!("record {ip}: {e}"));
        f.set_modified(SystemTime::now() - OLD).expect("set mtime");
    }

    /// The ferry plugin's ADD for a sandbox containerd does not know: what
    /// a lost DEL leaves behind. Its IP.
    fn leak(&self, id: &str, ifname: &str) -> String {
        let tag = format!("{}{ifname}", id.rsplit('-').next().unwrap());
        let pod = self.node.pod(&tag);
        let mut conf = ferry_conflist(&self.node.data_dir)["plugins"][0].clone();
        conf["cniVersion"] = "1.0.0".into();
        let mut call = Call::new("ADD", id, &Node::pod_path(&pod), &conf.to_string());
        call.ifname = ifname.into();
        let (ferry, _) = ferry_binaries().expect("plugin built");
        let reply = self.node.run(&ferry.display().to_string(), &call);
        assert!(reply.ok, "leak ADD: {}", reply.raw);
        let ip = ferry_testkit::result_ips(&reply.json)[0].clone();
        assert_eq!(
            reservation_owner(&self.node.data_dir, ip.parse().unwrap()),
            Some((id.to_string(), ifname.to_string()))
        );
        ip
    }

    /// A sandbox whose network broke: `ferry` does its ADD then dies
    /// before answering, and the DEL containerd sends while giving up
    /// fails too. containerd 1.6 keeps such a sandbox (NotReady) for a
    /// later StopPodSandbox to tear down: it is live, its reservation is
    /// not a leak. Its (ID, IP).
    fn broken_sandbox(&self, name: &str) -> (String, String) {
        let bin = self.ctrd.cni.bin.join("ferry");
        let tmp = bin.with_extension("tmp");
        let (ferry, _) = ferry_binaries().expect("plugin built");
        let fail = |msg: &str| {
            format!(r#"echo '{{"cniVersion":"1.0.0","code":11,"msg":"{msg}"}}'; exit 1"#)
        };
        let script = format!(
            "#!/bin/sh\ncase \"$CNI_COMMAND\" in\n\
             ADD) '{f}' >/dev/null; {add};;\n\
             DEL) {del};;\n\
             esac\nexec '{f}'\n",
            f = ferry.display(),
            add = fail("killed mid-ADD (test)"),
            del = fail("DEL lost (test)"),
        );
        std::fs::write(&tmp, script).expect("wrapper");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::rename(&tmp, &bin).expect("wrapper in place");
        let before = self.node.reserved_ips();
        let run = self.cri.run_pod(&pod_config(name));
        std::os::unix::fs::symlink(&ferry, &tmp).expect("link");
        std::fs::rename(&tmp, &bin).expect("ferry back in place");
        assert!(run.is_err(), "RunPodSandbox succeeded: {run:?}");
        let new: Vec<String> = self
            .node
            .reserved_ips()
            .difference(&before)
            .cloned()
            .collect();
        assert_eq!(new.len(), 1, "{new:?}");
        let ip = new[0].clone();
        let (id, _) = reservation_owner(&self.node.data_dir, ip.parse().unwrap()).expect("owner");
        assert!(self.cri.list_pods().expect("ListPodSandbox").contains(&id));
        assert!(!self.cri.pod_status(&id).expect("PodSandboxStatus").ready);
        (id, ip)
    }

    /// `ferryd gc` in the node netns against this containerd; its stdout.
    fn gc(&self) -> String {
        let mut cmd = Command::new(ferryd_binary().expect("ferryd built"));
        cmd.arg("gc")
            .arg("--cri-socket")
            .arg(&self.ctrd.socket)
            .arg("--ipam-data-dir")
            .arg(&self.node.data_dir)
            .args(["--ipam-gc-grace", GRACE, "--fast-path=false"])
            .env("RUST_LOG", "info");
        let out = output_in(&self.node.path, cmd).expect("running ferryd gc");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ferryd gc: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn ip_of(&self, id: &str) -> String {
        let st = self.cri.pod_status(id).expect("PodSandboxStatus");
        st.ip.expect("sandbox has an IP").to_string()
    }
}

fn count(out: &str, key: &str) -> usize {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key:?} in\n{out}"))
}

/// Pods started one after the other on another CRI connection until
/// `stop` (at least 2, at most [`CHURN_MAX`]); their IDs.
fn churn(
    socket: &Path,
    prefix: &str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    let socket = socket.to_path_buf();
    let prefix = prefix.to_string();
    std::thread::spawn(move || {
        let cri = Cri::connect(&socket).expect("second CRI client");
        let mut ids = Vec::new();
        while (!stop.load(Ordering::SeqCst) || ids.len() < 2) && ids.len() < CHURN_MAX {
            let id = cri
                .run_pod(&pod_config(&format!("{prefix}-churn{}", ids.len())))
                .expect("RunPodSandbox while GC runs");
            ids.push(id);
        }
        ids
    })
}

#[test]
fn gc_releases_exactly_the_leaks_while_pods_are_created() {
    let s = Setup::new("gc1");
    let prefix = s.node.name.clone();

    // Live pods, whose records are old: only liveness protects them.
    let live: Vec<String> = ["a", "b"]
        .iter()
        .map(|n| {
            s.cri
                .run_pod(&pod_config(&format!("{prefix}-{n}")))
                .expect("RunPodSandbox")
        })
        .collect();
    let live_ips: Vec<String> = live.iter().map(|id| s.ip_of(id)).collect();
    for ip in &live_ips {
        s.age(ip);
    }

    // Leaks: an old one on eth0, an old one on net1 (its own key), a young
    // one (inside the grace), and a bare old record with no veth.
    let old = format!("{prefix}-leakold");
    let old_ip = s.leak(&old, "eth0");
    s.age(&old_ip);
    let old_net1_ip = s.leak(&old, "net1");
    s.age(&old_net1_ip);
    let young = format!("{prefix}-leakyoung");
    let young_ip = s.leak(&young, "eth0");
    let bare_ip = "10.244.0.250";
    let bare = s.record(bare_ip);
    std::fs::write(&bare, format!("{prefix}-leakbare\r\neth0")).expect("bare record");
    s.age(bare_ip);

    // A sandbox containerd keeps NotReady (ADD died, DEL failed), old:
    // listed, so it stays.
    let (broken, broken_ip) = s.broken_sandbox(&format!("{prefix}-broken"));
    s.age(&broken_ip);

    let veths = ferry_veths(&s.node);
    for (id, ifname) in [(&old, "eth0"), (&old, "net1"), (&young, "eth0")] {
        assert!(veths.contains(&host_veth_name(id, ifname)), "{veths:?}");
    }
    let broken_veth = host_veth_name(&broken, "eth0");
    let broken_has_veth = veths.contains(&broken_veth);

    // Collect twice while another client keeps creating pods.
    let stop = Arc::new(AtomicBool::new(false));
    let churner = churn(&s.ctrd.socket, &prefix, stop.clone());
    let first = s.gc();
    let second = s.gc();
    stop.store(true, Ordering::SeqCst);
    let churned = churner.join().expect("churn thread");

    assert_eq!(count(&first, "released:"), 3, "{first}");
    assert_eq!(count(&first, "veths removed:"), 2, "{first}");
    for ip in [&old_ip, &old_net1_ip] {
        assert!(first.contains(&format!("  {ip}\n")), "{ip} not in\n{first}");
    }
    assert!(first.contains(&format!("attachment {old}/net1")), "{first}");
    assert!(!first.contains(&broken), "{first}");
    assert_eq!(count(&second, "released:"), 0, "{second}");
    assert_eq!(count(&second, "veths removed:"), 0, "{second}");

    // Exactly the leaks went: every live pod — the old ones and those made
    // while GC ran — keeps its reservation and host veth, and so does the
    // young leak.
    let mut want_ips: BTreeSet<String> = live_ips.iter().cloned().collect();
    let mut want_veths: BTreeSet<String> = BTreeSet::new();
    for id in live.iter().chain(&churned) {
        want_ips.insert(s.ip_of(id));
        want_veths.insert(host_veth_name(id, "eth0"));
    }
    want_ips.insert(young_ip.clone());
    want_veths.insert(host_veth_name(&young, "eth0"));
    want_ips.insert(broken_ip.clone());
    if broken_has_veth {
        want_veths.insert(broken_veth);
    }
    assert_eq!(s.node.reserved_ips(), want_ips);
    assert_eq!(ferry_veths(&s.node), want_veths);
    assert!(!bare.exists());
    for (id, ip) in live.iter().zip(&live_ips) {
        assert_eq!(
            reservation_owner(&s.node.data_dir, ip.parse().unwrap()),
            Some((id.clone(), "eth0".to_string()))
        );
    }

    // The runtime's own DEL still works on what GC left (the broken
    // sandbox's too, now that ferry is back), and GC'd IPs are handed out
    // again.
    s.cri.remove_all().expect("removing every sandbox");
    let again = s
        .cri
        .run_pod(&pod_config(&format!("{prefix}-after")))
        .expect("RunPodSandbox");
    assert!(!s.ip_of(&again).is_empty());
    s.cri.remove_all().expect("removing every sandbox");
    assert_eq!(
        s.node.reserved_ips(),
        BTreeSet::from([young_ip]),
        "only the young leak is left"
    );
}
