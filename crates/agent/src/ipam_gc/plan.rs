//! What the collector releases: a pure function of the runtime's live
//! sandboxes, the IPAM reservations with the time each was written, the
//! host veths, and the clock.
//!
//! Keys are the plugin's: a reservation and a host veth belong to the
//! attachment `(CNI_CONTAINERID, CNI_IFNAME)`, and `CNI_CONTAINERID` is the
//! sandbox ID. The runtime tells which sandboxes exist, not which
//! interfaces they have, so every attachment of a listed sandbox is kept
//! (any state: a sandbox that is stopped but not removed is the runtime's
//! to tear down).

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use ferry_hostveth::HostVeth;
use ferry_ipam::{Owner, Reservation};

/// Everything [`plan`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// ferry's CNI network (reservations are read from its store; veths
    /// of other networks are never touched).
    pub network: &'a str,
    /// Sandbox IDs the runtime lists, read before anything else.
    pub live: &'a HashSet<String>,
    pub reservations: &'a [Reservation],
    /// Host veths of every network, listed before the reservations.
    pub veths: &'a [HostVeth],
    /// Names of the veths the previous run found without any reservation.
    pub orphans_before: &'a BTreeSet<String>,
    pub now: SystemTime,
    /// Reservations younger than this are never released.
    pub grace: Duration,
}

/// What to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Reservations to release.
    pub release: BTreeSet<IpAddr>,
    /// Their attachments (`ifname` empty for a legacy record; empty
    /// records have none).
    pub attachments: BTreeSet<(String, String)>,
    /// Host veths to remove.
    pub veths: Vec<HostVeth>,
    /// Veths of dead sandboxes without any reservation, seen for the first
    /// time: removed by the next run if still so (an ADD creates its veth
    /// and its reservation in parallel, so one run cannot tell).
    pub orphans: BTreeSet<String>,
}

/// Whether `r` is old enough to judge: written at least `grace` before
/// `now`. An unknown or future write time is never old enough.
pub fn is_old(r: &Reservation, now: SystemTime, grace: Duration) -> bool {
    r.written
        .and_then(|w| now.duration_since(w).ok())
        .is_some_and(|age| age >= grace)
}

fn owned_by(owner: &Owner, id: &str, ifname: &str) -> bool {
    match owner.key() {
        Some((i, "")) => i == id,
        Some((i, f)) => i == id && f == ifname,
        None => false,
    }
}

/// Pure: which reservations and host veths belong to no live sandbox.
pub fn plan(i: &Inputs<'_>) -> Plan {
    let mut out = Plan::default();
    let dead = |r: &Reservation| match r.owner.key() {
        Some((id, _)) => !i.live.contains(id),
        None => true, // an empty record: a writer died before writing it
    };
    let (gone, kept): (Vec<&Reservation>, Vec<&Reservation>) = i
        .reservations
        .iter()
        .partition(|r| dead(r) && is_old(r, i.now, i.grace));
    for r in &gone {
        out.release.insert(r.ip);
        if let Some((id, ifname)) = r.owner.key() {
            out.attachments.insert((id.to_string(), ifname.to_string()));
        }
    }
    for v in i.veths {
        if v.network != i.network || i.live.contains(&v.container_id) {
            continue;
        }
        let holds = |r: &&Reservation| owned_by(&r.owner, &v.container_id, &v.ifname);
        if kept.iter().any(holds) {
            continue;
        }
        if gone.iter().any(holds) || i.orphans_before.contains(&v.name) {
            out.veths.push(v.clone());
        } else {
            out.orphans.insert(v.name.clone());
        }
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
