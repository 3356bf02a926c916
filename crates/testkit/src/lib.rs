//! Test and bench support for ferry: network namespaces with unique names
//! that are removed on drop (also when a test panics), and CNI plugins
//! driven exactly as a container runtime drives them (environment + stdin
//! in, stdout + exit status out), run inside a node's netns.
//!
//! Test code may shell out to `ip`, `ping` and friends to set up and to
//! look; product code never does.

pub mod capture;
pub mod conflist;
mod node;

pub use node::Node;
pub mod sniff;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_netns::NetNs;
use serde_json::Value;

/// Debian's reference plugins.
pub const REFERENCE_DIR: &str = "/usr/lib/cni";

/// Where the built `ferry` and `ferry-ipam` are: `$FERRY_PLUGIN_DIR`, else
/// the cargo profile dir this executable was built into (`target/debug`
/// for a test in `target/debug/deps`, `target/release` for a bench).
pub fn plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERRY_PLUGIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of a built plugin binary (`ferry`, `ferry-ipam`), checked to exist.
pub fn plugin(name: &str) -> String {
    let path = plugin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build -p ferry-plugin` (or set FERRY_PLUGIN_DIR)",
        path.display()
    );
    path.display().to_string()
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A unique name prefix for this process and call: `ft<pid>x<n>`.
pub fn unique(tag: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    format!("ft{}x{n}{tag}", std::process::id() % 100_000)
}

/// Run `ip` (test-side only) and return stdout; panics on failure.
pub fn ip(netns: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["netns", "exec", ns, "ip"]);
    }
    let out = cmd.args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?} in {netns:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Add a veth pair `name`/`peer` inside a named netns (both ends there).
pub fn add_veth(netns: &str, name: &str, peer: &str) {
    ip(
        Some(netns),
        &["link", "add", name, "type", "veth", "peer", "name", peer],
    );
}

/// Wires a pod as ferry does, with `ip` (for tests of other pieces): the
/// veth `veth` in `node_ns` with its peer `eth0` in `pod_ns`, proxy ARP
/// (no delay) on the host end, `addr/32` in the pod, `169.254.1.1` on-link
/// and the default route via it. The host route to the pod is the
/// caller's.
pub fn wire_pod(node_ns: &str, pod_ns: &str, veth: &str, addr: std::net::Ipv4Addr) {
    ip(
        Some(node_ns),
        &[
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod_ns,
        ],
    );
    for key in [
        format!("net.ipv4.conf.{veth}.proxy_arp=1"),
        format!("net.ipv4.neigh.{veth}.proxy_delay=0"),
    ] {
        assert!(ns_exec(node_ns, &["sysctl", "-qw", &key]), "{key}");
    }
    ip(Some(node_ns), &["link", "set", veth, "up"]);
    ip(
        Some(pod_ns),
        &["addr", "add", &format!("{addr}/32"), "dev", "eth0"],
    );
    ip(Some(pod_ns), &["link", "set", "eth0", "up"]);
    ip(
        Some(pod_ns),
        &[
            "route",
            "add",
            "169.254.1.1",
            "dev",
            "eth0",
            "scope",
            "link",
        ],
    );
    ip(
        Some(pod_ns),
        &[
            "route",
            "add",
            "default",
            "via",
            "169.254.1.1",
            "dev",
            "eth0",
        ],
    );
}

/// `tc filter show dev DEV ingress` inside a named netns (test-side), as
/// text; empty when the device has no ingress filters.
pub fn ingress_filters(netns: &str, dev: &str) -> String {
    let out = Command::new("tc")
        .args(["-n", netns, "filter", "show", "dev", dev, "ingress"])
        .output()
        .expect("run tc");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command inside a named netns; true when it exits 0.
pub fn ns_exec(netns: &str, args: &[&str]) -> bool {
    Command::new("ip")
        .args(["netns", "exec", netns])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn ping(from: &str, to: &str) -> bool {
    let bin = if to.contains(':') { "ping6" } else { "ping" };
    ns_exec(from, &[bin, "-c", "1", "-W", "2", to])
}

/// `GET path` over HTTP/1.0 to `addr` from inside the named netns (e.g. a
/// node's ferryd on 127.0.0.1:9654): (status, body), `None` when nothing
/// answers.
pub fn http_get(netns: &str, addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::Read;
    use std::time::Duration;
    let ns = NetNs::open(&Path::new("/run/netns").join(netns)).ok()?;
    ns.run(|| -> Option<(u16, String)> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let code = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n")?.1.to_string();
        Some((code, body))
    })
    .ok()
    .flatten()
}

/// What the plugin answered.
#[derive(Debug)]
pub struct Reply {
    pub ok: bool,
    pub json: Value,
    pub raw: String,
}

impl Reply {
    pub fn code(&self) -> u64 {
        assert!(!self.ok, "expected an error, got success: {}", self.raw);
        self.json["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("no code in {}", self.raw))
    }

    pub fn expect_ok(self) -> Reply {
        assert!(self.ok, "plugin failed: {}", self.raw);
        self
    }
}

/// One plugin invocation, as a runtime makes it.
#[derive(Clone, Debug, Default)]
pub struct Call {
    pub command: String,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub path: String,
    pub stdin: String,
}

impl Call {
    pub fn new(command: &str, container_id: &str, netns: &str, conf: &str) -> Call {
        Call {
            command: command.into(),
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: "eth0".into(),
            args: String::new(),
            path: default_cni_path(),
            stdin: conf.into(),
        }
    }

    pub fn env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("CNI_COMMAND", self.command.as_str()),
            ("CNI_CONTAINERID", self.container_id.as_str()),
            ("CNI_NETNS", self.netns.as_str()),
            ("CNI_IFNAME", self.ifname.as_str()),
            ("CNI_ARGS", self.args.as_str()),
            ("CNI_PATH", self.path.as_str()),
        ]
    }

    /// Build the child process (not yet started).
    pub fn command(&self, binary: &str) -> Command {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(self.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

pub fn default_cni_path() -> String {
    format!("{}:{REFERENCE_DIR}", plugin_dir().display())
}

/// Spawn `binary` for `call` in the calling thread's netns, stdin written
/// and closed.
fn start_plugin(binary: &str, call: &Call) -> std::process::Child {
    let mut child = call.command(binary).spawn().expect("spawn plugin");
    let mut stdin = child.stdin.take().expect("piped stdin");
    // A plugin killed early may not read it all; that is the caller's test.
    let _ = stdin.write_all(call.stdin.as_bytes());
    child
}

pub fn finish(out: Output) -> Reply {
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = if raw.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&raw).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {raw:?}"))
    };
    Reply {
        ok: out.status.success(),
        json,
        raw,
    }
}

/// The pod address ADD reported for interface `ifname`, per family.
pub fn result_ips(json: &Value) -> Vec<String> {
    json["ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|ip| {
                    ip["address"]
                        .as_str()
                        .unwrap()
                        .split('/')
                        .next()
                        .unwrap()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}
