//! `ferryd --policy-log`: one INFO line (target `ferry::policy::drop`) per
//! packet a policy drops, with pod names. The table's group chains send
//! dropped packets, rate limited, to NFLOG group
//! [`ferry_netpol::LOG_GROUP`] with the group chain as prefix (see
//! `ferry_netpol::drop_log`); a thread of its own binds that group
//! ([`nflog`]), parses the copied headers ([`packet`]) and names the pods
//! from the policy view and the policies from the installed ruleset:
//!
//! ```text
//! policy drop direction=ingress src=default/other (10.244.0.4:35244) dst=default/web (10.244.0.2:8080) proto=tcp policies=[default/web-from-clients]
//! ```
//!
//! Only first packets of connections reach a drop (replies are accepted
//! before), so a line is about one denied connection attempt (a TCP
//! client that waits retransmits its SYN, each a line; a denied UDP flow
//! never gets a reply, so each of its datagrams is). Messages the rate
//! limit holds back are not counted here (the drop counters count every
//! drop); messages lost on the way (the socket's buffer full) are, from
//! the gaps in NFLOG's sequence numbers (the lost ones keep theirs: the
//! next message received shows the gap).

pub mod nflog;
pub mod packet;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_netpol::drop_log::prefix_direction;
use ferry_netpol::{Direction, DropLog};

use super::engine::counter_policy;
use super::view::View;
use super::PolicyShared;
use nflog::{Listener, Received};
use packet::{Endpoint, Packet, Proto};

/// The `/metrics` counts of the drop log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DropLogCounts {
    /// Lines logged.
    pub lines: u64,
    /// Messages the kernel could not deliver (sequence number gaps).
    pub lost: u64,
    /// Times the socket's buffer overflowed (ENOBUFS).
    pub overruns: u64,
}

/// How often a receive wakes up with nothing to do.
const WAKE: Duration = Duration::from_secs(5);
/// Wait before binding the group again after a failure.
const RETRY: Duration = Duration::from_secs(10);

/// Starts the listener thread (for the life of the process).
pub fn spawn(log: DropLog, view: Arc<Mutex<View>>, shared: Arc<PolicyShared>) {
    shared.state().drop_log = Some(DropLogCounts::default());
    std::thread::Builder::new()
        .name("ferry-drop-log".into())
        .spawn(move || loop {
            match Listener::open(log.group, WAKE) {
                Ok(l) => {
                    tracing::info!(
                        group = log.group,
                        rcvbuf = l.rcvbuf(),
                        "policy drop log: listening to NFLOG"
                    );
                    let e = listen(l, &view, &shared);
                    tracing::warn!(error = %e, "policy drop log: NFLOG receive failed; binding again");
                }
                Err(e) => {
                    tracing::warn!(group = log.group, error = %e, retry_in = ?RETRY, "policy drop log: cannot bind the NFLOG group")
                }
            }
            std::thread::sleep(RETRY);
        })
        .expect("spawn the drop log thread");
}

/// One message, owned (the socket's buffer is reused).
struct Dropped {
    prefix: String,
    packet: Option<Packet>,
}

fn listen(
    mut l: Listener,
    view: &Mutex<View>,
    shared: &PolicyShared,
) -> ferry_netlink::engine::EngineError {
    let mut last_seq: Option<u32> = None;
    loop {
        let mut drops = Vec::new();
        let mut lost = 0u64;
        let got = l.recv(|m| {
            if let Some(seq) = m.seq {
                lost += u64::from(seq_gap(last_seq, seq));
                last_seq = Some(seq);
            }
            drops.push(Dropped {
                prefix: m.prefix,
                packet: packet::parse(m.payload),
            });
        });
        let overrun = match got {
            Ok(Received::Idle) => continue,
            Ok(Received::Messages) => false,
            Ok(Received::Overrun) => true,
            Err(e) => return e,
        };
        // One lock at a time: the state's, then the view's.
        let policies: Vec<Option<Vec<String>>> = {
            let st = shared.state();
            let of = |d: &Dropped| st.groups.get(&d.prefix).map(|g| policy_names(g));
            drops.iter().map(of).collect()
        };
        let lines: Vec<String> = {
            let v = view.lock().unwrap_or_else(|e| e.into_inner());
            drops
                .iter()
                .zip(policies)
                .map(|(d, p)| describe(&v, &d.prefix, d.packet.as_ref(), p))
                .collect()
        };
        for line in &lines {
            tracing::info!(target: "ferry::policy::drop", "{line}");
        }
        if overrun {
            tracing::warn!("policy drop log: messages lost (socket buffer full)");
        }
        let mut st = shared.state();
        let c = st.drop_log.get_or_insert_with(Default::default);
        c.lines += lines.len() as u64;
        c.lost += lost;
        c.overruns += u64::from(overrun);
    }
}

/// Messages missing between sequence numbers `last` and `seq` (0 for the
/// first, or when numbering started again).
pub fn seq_gap(last: Option<u32>, seq: u32) -> u32 {
    match last {
        Some(l) => match seq.wrapping_sub(l).wrapping_sub(1) {
            gap if gap < u32::MAX / 2 => gap,
            _ => 0,
        },
        None => 0,
    }
}

/// `ns/name` of the policies behind counters `in/ns/name`.
fn policy_names(counters: &[String]) -> Vec<String> {
    counters
        .iter()
        .map(|c| match counter_policy(c) {
            Some((_, ns, name)) => format!("{ns}/{name}"),
            None => c.clone(),
        })
        .collect()
}

/// The pod (`ns/name`) with address `ip`, of the API or announced.
pub fn pod_of(view: &View, ip: IpAddr) -> Option<String> {
    let api = view
        .pods
        .items
        .iter()
        .find(|(_, p)| !p.host_network && p.ips.contains(&ip))
        .map(|((ns, name), _)| format!("{ns}/{name}"));
    api.or_else(|| {
        view.announced
            .values()
            .find(|a| a.ips.contains(&ip))
            .map(|a| format!("{}/{}", a.namespace, a.name))
    })
}

/// The log line of one dropped packet, logged with prefix `prefix`;
/// `policies`: those of its group chain, when known.
pub fn describe(
    view: &View,
    prefix: &str,
    packet: Option<&Packet>,
    policies: Option<Vec<String>>,
) -> String {
    let dir = match prefix_direction(prefix) {
        Some(Direction::Ingress) => "ingress",
        Some(Direction::Egress) => "egress",
        None => "unknown",
    };
    let policies = match policies {
        Some(p) => p.join(","),
        None => format!("? (group {prefix})"),
    };
    let Some(p) = packet else {
        return format!("policy drop direction={dir} (no headers copied) policies=[{policies}]");
    };
    let ports = p.proto.ports();
    let end = |ip: IpAddr, port: Option<u16>| {
        let at = Endpoint(ip, port);
        match pod_of(view, ip) {
            Some(pod) => format!("{pod} ({at})"),
            None => at.to_string(),
        }
    };
    let src = end(p.src, ports.map(|x| x.src));
    let dst = end(p.dst, ports.map(|x| x.dst));
    let icmp = match p.proto {
        Proto::Icmp {
            kind: Some((t, c)), ..
        } => format!(" type={t} code={c}"),
        _ => String::new(),
    };
    format!(
        "policy drop direction={dir} src={src} dst={dst} proto={}{icmp} policies=[{policies}]",
        p.proto.name()
    )
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
