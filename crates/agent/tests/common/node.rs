//! One node of the lab: its netns, its ferryd, its pods.

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_netns::NetNs;
use ferry_testkit::conflist::{Attachment, ConfList, Runtime};
use ferry_testkit::ip;

use super::{wait_for, FERRYD};

/// One node of the lab.
pub struct LabNode {
    /// The Kubernetes Node name.
    pub name: String,
    /// The node's netns.
    pub ns: String,
    pub ip: String,
    pub cidr: String,
    /// Holds `bin/`, `net.d/`, `ipam/`, `ferryd.log`.
    pub dir: PathBuf,
    pub ferryd: Option<Child>,
    /// Extra flags for ferryd (e.g. `--routing ospf`).
    pub flags: Vec<String>,
    pub pods: Vec<String>,
    /// Where the node's pin directory lives: `/sys/fs/bpf` (which `ip
    /// netns exec` replaces with a /sys of ferryd's own, so the plugin,
    /// run from the test, sees no pins), or a bpf file system the test
    /// mounted elsewhere, shared by ferryd and the plugin.
    pub bpf_root: PathBuf,
    /// A command `ferryd run` is started under, between `ip netns exec`
    /// and ferryd (e.g. `setpriv` with the manifests' capabilities); it
    /// must exec ferryd.
    pub wrapper: Vec<String>,
}

impl LabNode {
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }
    pub fn conf_dir(&self) -> PathBuf {
        self.dir.join("net.d")
    }
    pub fn conflist(&self) -> PathBuf {
        self.conf_dir().join("10-ferry.conflist")
    }
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }
    /// The fast path's pins (one bpf file system serves every node).
    pub fn bpf_dir(&self) -> PathBuf {
        self.bpf_root.join(&self.ns)
    }
    /// Where the plugin announces new pods to this node's ferryd.
    pub fn policy_dir(&self) -> PathBuf {
        self.dir.join("policy")
    }
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("ferryd.log")).unwrap_or_default()
    }

    /// The flags every ferryd of this node gets.
    pub fn args(&self, kubeconfig: &Path) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--node-name".into(),
            self.name.clone(),
            "--cni-bin-dir".into(),
            self.bin_dir().display().to_string(),
            "--cni-conf-dir".into(),
            self.conf_dir().display().to_string(),
            "--ipam-data-dir".into(),
            self.ipam_dir().display().to_string(),
            "--plugin-source-dir".into(),
            ferry_testkit::plugin_dir().display().to_string(),
            "--bpf-dir".into(),
            self.bpf_dir().display().to_string(),
            "--policy-dir".into(),
            self.policy_dir().display().to_string(),
        ];
        // Debian 12's portmap (plugins 1.1.1) refuses cniVersion 1.1.0.
        if !self.flags.iter().any(|f| f == "--cni-version") {
            a.extend(["--cni-version".into(), "1.0.0".into()]);
        }
        if !self.flags.iter().any(|f| f == "--resync-interval") {
            a.extend(["--resync-interval".into(), "3s".into()]);
        }
        // A host's containerd knows none of the lab's pods: its socket
        // must never drive IPAM GC over the lab's reservations.
        if !self.flags.iter().any(|f| f.starts_with("--ipam-gc")) {
            a.push("--ipam-gc=false".into());
        }
        a.extend(self.flags.iter().cloned());
        a
    }

    /// `ferryd SUBCOMMAND` in the node netns, to completion.
    pub fn ferryd_cmd(&self, kubeconfig: &Path, sub: &str) -> (bool, String, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, FERRYD, sub])
            .args(self.args(kubeconfig))
            .output()
            .expect("run ferryd");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The routes ferryd owns (`proto 201`), both families, as text.
    pub fn owned_routes(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = ip(Some(&self.ns), &["route", "show", "proto", "201"])
            .lines()
            .map(|l| l.trim().to_string())
            .collect();
        out.extend(
            ip(Some(&self.ns), &["-6", "route", "show", "proto", "201"])
                .lines()
                .map(|l| l.trim().to_string()),
        );
        out
    }

    /// The whole main table (both families), as text. (The local table
    /// is left out: IPv6 link-local addresses come and go with DAD.)
    pub fn all_routes(&self) -> String {
        ip(Some(&self.ns), &["-4", "route", "show", "table", "main"])
            + &ip(Some(&self.ns), &["-6", "route", "show", "table", "main"])
    }

    /// `tc filter show dev eth0 ingress` in the node.
    pub fn eth0_filters(&self) -> String {
        ferry_testkit::ingress_filters(&self.ns, "eth0")
    }

    /// `nft -a list table inet ferry` (with handles), `None` if absent.
    pub fn nft_table(&self) -> Option<String> {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "nft", "-a", "list", "table", "inet", "ferry",
            ])
            .output()
            .expect("run nft");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// GET `path` from ferryd's metrics address inside the node netns:
    /// (status code, body).
    pub fn http_get(&self, path: &str) -> Option<(u16, String)> {
        ferry_testkit::http_get(&self.ns, "127.0.0.1:9654".parse().unwrap(), path)
    }

    /// ferryd's pid (`ip netns exec` execs it: the child is ferryd).
    pub fn ferryd_pid(&self) -> Option<u32> {
        self.ferryd.as_ref().map(Child::id)
    }

    pub fn ready(&self) -> bool {
        matches!(self.http_get("/readyz"), Some((200, _)))
    }

    /// One metric's value from /metrics.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.http_get("/metrics")?;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Starts `ferryd run` in the node netns.
    pub fn start_ferryd(&mut self, kubeconfig: &Path) {
        assert!(
            self.ferryd.is_none(),
            "ferryd already running on {}",
            self.name
        );
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("ferryd.log"))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(&self.wrapper)
            .args([FERRYD, "run"])
            .args(self.args(kubeconfig))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn ferryd");
        self.ferryd = Some(child);
    }

    /// Stops ferryd with SIGTERM (as kubelet does) and waits for it.
    pub fn stop_ferryd(&mut self) {
        if let Some(mut child) = self.ferryd.take() {
            // `ip netns exec` execs ferryd: the child's pid is ferryd's.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until ferryd says it is ready.
    pub fn wait_ready(&self) {
        wait_for(
            Duration::from_secs(60),
            &format!("{} ready\n{}", self.name, self.log()),
            || self.ready().then_some(()),
        );
    }

    /// Creates a pod netns and ADDs it through the conflist ferryd wrote
    /// (the installed `ferry`, then `portmap`), exactly as containerd
    /// would. Returns the pod netns name and its IPv4 address.
    pub fn add_pod(&mut self, tag: &str) -> (String, String) {
        let pod = format!("{}-{tag}", self.ns);
        ferry_netns::create_named(&pod).expect("create pod netns");
        self.pods.push(pod.clone());
        ip(Some(&pod), &["link", "set", "lo", "up"]);
        let list = ConfList::load(&self.conflist()).expect("the written conflist");
        let runtime = Runtime {
            cni_path: vec![self.bin_dir(), PathBuf::from(ferry_testkit::REFERENCE_DIR)],
            cache_dir: self.dir.join("cni-cache"),
            netns: Some(NetNs::open(Path::new(&format!("/run/netns/{}", self.ns))).unwrap()),
        };
        let att = Attachment::kubernetes_pod(
            &format!("ctr-{tag}"),
            &format!("/run/netns/{pod}"),
            "default",
            tag,
            &format!("uid-{tag}"),
        );
        let result = runtime
            .add(&list, &att)
            .unwrap_or_else(|e| panic!("ADD {pod}: {e}"));
        let ip = ferry_testkit::result_ips(&result)
            .into_iter()
            .find(|a| a.parse::<IpAddr>().is_ok_and(|a| a.is_ipv4()))
            .expect("an IPv4 pod address");
        (pod, ip)
    }
}

impl Drop for LabNode {
    fn drop(&mut self) {
        self.stop_ferryd();
        for pod in self.pods.drain(..) {
            let _ = ferry_netns::delete_named(&pod);
        }
        let _ = ferry_netns::delete_named(&self.ns);
        let _ = std::fs::remove_dir_all(self.bpf_dir());
    }
}
