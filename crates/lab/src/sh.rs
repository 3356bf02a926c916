//! Running the few tools the lab drives from outside: `ip` (to cable
//! namespaces: bridges, veth peers moved between namespaces), `ping`, and
//! processes started inside a namespace. The lab is a test harness; the
//! product (plugin, ferryd) never shells out.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ferry_netns::NetNs;

use crate::error::{LabError, Result};

/// `/run/netns/NAME`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(ferry_netns::NETNS_RUN_DIR).join(name)
}

pub fn open_ns(name: &str) -> Result<NetNs> {
    NetNs::open(&netns_path(name)).map_err(|e| LabError::netns(name, e))
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to completion; its stdout, or an error with its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::Command {
            command: describe(cmd),
            output: e.to_string(),
        })?;
    checked(cmd, out)
}

fn checked(cmd: &Command, out: Output) -> Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: describe(cmd),
            output: format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        })
    }
}

/// `ip [-n NETNS] ARGS...`.
pub fn ip(netns: Option<&str>, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    run(cmd.args(args))
}

/// `ip -n NETNS -batch -` with one command per line: one process for a
/// whole namespace's setup; stops at the first failing line.
pub fn ip_batch(netns: &str, lines: &[String]) -> Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(["-n", netns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| LabError::Command {
        command: describe(&cmd),
        output: e.to_string(),
    })?;
    let text = lines.join("\n") + "\n";
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| LabError::Command {
        command: describe(&cmd),
        output: e.to_string(),
    })?;
    checked(&cmd, out).map(drop).map_err(|e| match e {
        LabError::Command { command, output } => LabError::Command {
            command: format!("{command} <<< {text:?}"),
            output,
        },
        other => other,
    })
}

/// Writes sysctl `key` (dotted) inside a namespace.
pub fn sysctl(netns: &str, key: &str, value: &str) -> Result<()> {
    let ns = open_ns(netns)?;
    ns.run(|| ferry_netns::sysctl::write(key, value))
        .map_err(|e| LabError::netns(netns, e))?
        .map_err(|e| LabError::Invalid(format!("sysctl {key}={value} in {netns}: {e}")))
}

/// Runs a program inside a namespace (spawned from a thread that joined
/// it, so no `ip netns exec`), to completion.
pub fn ns_output(netns: &str, program: &str, args: &[&str]) -> Result<Output> {
    let ns = open_ns(netns)?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    let what = format!("{} (in {netns})", describe(&cmd));
    ns.run(move || cmd.output())
        .map_err(|e| LabError::netns(netns, e))?
        .map_err(|e| LabError::Command {
            command: what,
            output: e.to_string(),
        })
}

/// One ICMP echo from inside `netns` to `dst` (either family), waiting at
/// most `wait_s` seconds for the answer.
pub fn ping(netns: &str, dst: &str, wait_s: u32) -> bool {
    let w = wait_s.max(1).to_string();
    ns_output(netns, "ping", &["-n", "-q", "-c", "1", "-W", &w, dst])
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Pings from `netns` every 10 ms until the first answer or `deadline_s`
/// (one `ping` process, so the first answer is seen within ~10 ms).
pub fn ping_until(netns: &str, dst: &str, deadline_s: u32) -> bool {
    let w = deadline_s.max(1).to_string();
    ns_output(
        netns,
        "ping",
        &["-n", "-q", "-c", "1", "-i", "0.01", "-w", &w, dst],
    )
    .map(|o| o.status.success())
    .unwrap_or(false)
}

/// A TCP connection from inside `netns`.
pub fn tcp_connect(netns: &str, addr: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    let ns = open_ns(netns)?;
    ns.run(|| TcpStream::connect_timeout(&addr, timeout))
        .map_err(|e| LabError::netns(netns, e))?
        .map_err(|e| LabError::Command {
            command: format!("connect {addr} from {netns}"),
            output: e.to_string(),
        })
}

/// Names under /run/netns starting with `prefix`, sorted.
pub fn netns_with_prefix(prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(ferry_netns::NETNS_RUN_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    out.sort();
    out
}

/// Writes a file atomically (temp file + rename).
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| LabError::io(dir, e))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| LabError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LabError::io(path, e))
}

/// Polls `f` every `every` until it returns `Some`, or times out.
pub fn wait_for<T>(
    limit: Duration,
    every: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() >= limit {
            return Err(LabError::Timeout {
                what: what.into(),
                waited: limit,
                detail: String::new(),
            });
        }
        std::thread::sleep(every);
    }
}
