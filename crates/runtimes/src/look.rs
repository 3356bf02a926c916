//! What the tests look at on the node and in pods: ferry's host veths, its
//! pod routes, portmap's DNAT chains, reservations, reachability.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ferry_testkit::{ip, Node};

use crate::cni::FERRY_NETWORK;

/// The node's links named `ferry<10 hex>` (ferry's host ends).
pub fn ferry_veths(node: &Node) -> BTreeSet<String> {
    node.links()
        .into_iter()
        .filter(|l| l.len() == 15 && l.starts_with("ferry"))
        .collect()
}

/// The node's routes with ferry's pod protocol (`proto 200`).
pub fn pod_routes(node: &Node) -> BTreeSet<String> {
    ip(Some(&node.name), &["route", "show", "proto", "200"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// The owner written in the reservation file of `addr` on the ferry
/// network: `(containerID, ifname)`.
pub fn reservation_owner(data_dir: &Path, addr: IpAddr) -> Option<(String, String)> {
    let content =
        std::fs::read_to_string(data_dir.join(FERRY_NETWORK).join(addr.to_string())).ok()?;
    let mut lines = content.lines().map(str::trim);
    Some((
        lines.next()?.to_string(),
        lines.next().unwrap_or_default().to_string(),
    ))
}

/// portmap's per-pod DNAT chains (`CNI-DN-*`) in the node's nat table.
pub fn dnat_chains(node: &Node) -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &node.name, "iptables", "-t", "nat", "-S"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.strip_prefix("-N "))
        .filter(|c| c.starts_with("CNI-DN-"))
        .map(str::to_string)
        .collect()
}

/// Run `args` in the netns at `netns` (any path: a runtime's netns need
/// not be a named one); true when it exits 0.
pub fn in_netns(netns: &Path, args: &[&str]) -> bool {
    Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// One ping from the netns at `netns` to `to`.
pub fn ping_from(netns: &Path, to: IpAddr) -> bool {
    in_netns(netns, &["ping", "-c", "1", "-W", "2", &to.to_string()])
}

/// Connect from inside the node netns to `to` and read until the peer
/// closes (at most 2 s): what a client on the node gets back.
pub fn tcp_read_from_node(node: &Node, to: SocketAddr) -> Option<String> {
    let ns = ferry_netns::NetNs::open(&node.path).ok()?;
    ns.run(move || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut got = String::new();
        s.read_to_string(&mut got).ok()?;
        Some(got)
    })
    .ok()
    .flatten()
}
