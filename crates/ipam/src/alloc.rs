//! The allocator: ADD, DEL, CHECK, GC and STATUS over any [`Store`].
//!
//! Cost model (what keeps ADD flat as the range fills up): with the default
//! round-robin strategy the address after `last_reserved_ip.N` is normally
//! free, so an ADD does a constant number of store operations per range set:
//! `lock`, `index_get`, `last_reserved`, `owner` (the candidate), `index_put`,
//! `reserve`, `set_last_reserved`. None of them depends on how many
//! addresses are reserved. DEL is `lock`, `index_get`, then `owner` +
//! `release` per listed IP and `index_delete`: no directory scan either.
//! Only GC, STATUS (when the range is nearly full) and the one-time
//! migration of a host-local directory are O(n).

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::collect::release_and_prune;
use crate::config::{from_u128, to_u128, IpamConfig, Range, RangeSet, RouteConfig};
use crate::error::IpamError;
use crate::store::{Owner, Store};

/// One ADD request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub container_id: String,
    pub ifname: String,
    /// Statically requested IPs, at most one per range set (see
    /// [`crate::parse_requested_ips`]). Range sets without one get the next
    /// free address.
    pub requested: Vec<IpAddr>,
}

/// One allocated address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocatedIp {
    /// The IP with its subnet's prefix length.
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
}

/// The result of an ADD: one IP per range set, in range-set order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub ips: Vec<AllocatedIp>,
    pub routes: Vec<RouteConfig>,
}

/// Reject container IDs and interface names that cannot be used as (part
/// of) a file name. Container ID: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 200
/// bytes. ifname: 1 to 15 bytes, no `/`, `:`, whitespace or control
/// characters, not `.` or `..`.
pub fn validate_attachment(container_id: &str, ifname: &str) -> Result<(), IpamError> {
    let reason = container_id_problem(container_id).or_else(|| ifname_problem(ifname));
    match reason {
        None => Ok(()),
        Some(reason) => Err(IpamError::InvalidAttachment {
            container_id: container_id.to_owned(),
            ifname: ifname.to_owned(),
            reason,
        }),
    }
}

pub(crate) fn container_id_problem(id: &str) -> Option<&'static str> {
    let mut bytes = id.bytes();
    match bytes.next() {
        None => Some("empty container ID"),
        Some(c) if !c.is_ascii_alphanumeric() => {
            Some("container ID must start with a letter or digit")
        }
        Some(_) if !bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')) => {
            Some("container ID may only hold [A-Za-z0-9_.-]")
        }
        Some(_) if id.len() > 200 => Some("container ID longer than 200 bytes"),
        Some(_) => None,
    }
}

pub(crate) fn ifname_problem(ifname: &str) -> Option<&'static str> {
    if ifname.is_empty() || ifname.len() > 15 {
        Some("ifname must be 1 to 15 bytes long")
    } else if ifname == "." || ifname == ".." {
        Some("ifname may not be '.' or '..'")
    } else if ifname
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        Some("ifname may not hold '/', ':', whitespace or control characters")
    } else {
        None
    }
}

/// ADD: reserve one IP per range set for the attachment.
///
/// Under the lock: if the attachment already has a complete reservation it
/// is returned unchanged (O(1), no scan). Otherwise the IPs are chosen, the
/// index entry (the intent) is written first, then the reservation records
/// are created. A failure half-way releases what this call reserved.
pub fn allocate<S: Store>(
    store: &mut S,
    cfg: &IpamConfig,
    req: &Request,
) -> Result<Allocation, IpamError> {
    let (id, ifname) = (req.container_id.as_str(), req.ifname.as_str());
    validate_attachment(id, ifname)?;
    let wanted = assign_requested(cfg, &req.requested)?;

    let _guard = store.lock()?;
    if let Some(existing) = store.index_get(id, ifname)? {
        if let Some(alloc) = existing_allocation(store, cfg, id, ifname, &existing)? {
            return Ok(alloc);
        }
        // The intent of an interrupted ADD (or a reservation made under
        // another configuration): clear it and allocate afresh.
        release_listed(store, id, ifname, &existing)?;
        store.index_delete(id, ifname)?;
    }

    let mut chosen = Vec::with_capacity(cfg.ranges.len());
    for (idx, set) in cfg.ranges.iter().enumerate() {
        let ip = match wanted[idx] {
            Some(ip) => {
                if store.owner(ip)?.is_some() {
                    return Err(IpamError::AddressInUse { ip });
                }
                ip
            }
            None => next_free(store, idx, set)?.ok_or_else(|| IpamError::Exhausted {
                range: set.to_string(),
            })?,
        };
        chosen.push(ip);
    }

    store.index_put(id, ifname, &chosen)?;
    let mut created = Vec::with_capacity(chosen.len());
    let outcome = reserve_all(store, id, ifname, &chosen, &mut created);
    if let Err(err) = outcome {
        rollback(store, id, ifname, &created);
        return Err(err);
    }
    Ok(build_allocation(cfg, &chosen))
}

fn reserve_all<S: Store>(
    store: &mut S,
    id: &str,
    ifname: &str,
    chosen: &[IpAddr],
    created: &mut Vec<IpAddr>,
) -> Result<(), IpamError> {
    for &ip in chosen {
        if !store.reserve(ip, id, ifname)? {
            // Only a writer that ignores the lock can get here.
            return Err(IpamError::AddressInUse { ip });
        }
        created.push(ip);
    }
    for (idx, &ip) in chosen.iter().enumerate() {
        store.set_last_reserved(idx, ip)?;
    }
    Ok(())
}

/// Best effort: undo this call's reservations. The index entry goes last,
/// and only if every record is gone, so DEL can still finish the job.
fn rollback<S: Store>(store: &mut S, id: &str, ifname: &str, created: &[IpAddr]) {
    let mut clean = true;
    for &ip in created {
        clean &= store.release(ip).is_ok();
    }
    if clean {
        let _ = store.index_delete(id, ifname);
    }
}

/// The allocation recorded for the attachment, if it is complete and still
/// fits `cfg` (one owned IP in each range set).
fn existing_allocation<S: Store>(
    store: &mut S,
    cfg: &IpamConfig,
    id: &str,
    ifname: &str,
    ips: &[IpAddr],
) -> Result<Option<Allocation>, IpamError> {
    if ips.len() != cfg.ranges.len() {
        return Ok(None);
    }
    for (idx, &ip) in ips.iter().enumerate() {
        if cfg.range_set_for(ip) != Some(idx) {
            return Ok(None);
        }
        match store.owner(ip)? {
            Some(owner) if owner.is_key(id, ifname) => {}
            _ => return Ok(None),
        }
    }
    Ok(Some(build_allocation(cfg, ips)))
}

fn build_allocation(cfg: &IpamConfig, ips: &[IpAddr]) -> Allocation {
    let ips = ips
        .iter()
        .zip(&cfg.ranges)
        .map(|(&ip, set)| {
            let range = set.range_for(ip).expect("chosen IP lies in its range set");
            AllocatedIp {
                address: IpNet::new(ip, range.subnet.prefix_len())
                    .expect("prefix taken from a valid subnet"),
                gateway: Some(range.gateway),
            }
        })
        .collect();
    Allocation {
        ips,
        routes: cfg.routes.clone(),
    }
}

/// Map each requested IP to its range set; at most one per set.
fn assign_requested(
    cfg: &IpamConfig,
    requested: &[IpAddr],
) -> Result<Vec<Option<IpAddr>>, IpamError> {
    let mut wanted: Vec<Option<IpAddr>> = vec![None; cfg.ranges.len()];
    for ip in requested.iter().map(|ip| ip.to_canonical()) {
        let idx = cfg.range_set_for(ip).ok_or(IpamError::NotInRange { ip })?;
        let set = &cfg.ranges[idx];
        if let Some(what) = set.range_for(ip).and_then(|r| r.unallocatable(ip)) {
            return Err(IpamError::NotAllocatable { ip, what });
        }
        match wanted[idx] {
            Some(first) if first != ip => {
                return Err(IpamError::SameRangeSet {
                    first,
                    second: ip,
                    range: set.to_string(),
                })
            }
            _ => wanted[idx] = Some(ip),
        }
    }
    Ok(wanted)
}

/// Round-robin like host-local: start right after the set's last reserved
/// IP (or at the first range's start), walk every range of the set once,
/// wrapping around, skipping gateway/network/broadcast.
fn next_free<S: Store>(
    store: &mut S,
    idx: usize,
    set: &RangeSet,
) -> Result<Option<IpAddr>, IpamError> {
    // host-local ignores an unreadable last_reserved_ip too: it only costs
    // round-robin fairness once.
    let last = store
        .last_reserved(idx)
        .ok()
        .flatten()
        .filter(|ip| set.contains(*ip));
    for (range, ip) in Candidates::new(set, last) {
        if range.unallocatable(ip).is_none() && store.owner(ip)?.is_none() {
            return Ok(Some(ip));
        }
    }
    Ok(None)
}

/// Every address of a range set exactly once, starting after `last`.
struct Candidates<'a> {
    ranges: &'a [Range],
    range: usize,
    next: u128,
    remaining: u128,
}

impl<'a> Candidates<'a> {
    fn new(set: &'a RangeSet, last: Option<IpAddr>) -> Self {
        let ranges = set.ranges.as_slice();
        let remaining = ranges.iter().fold(0u128, |acc, r| {
            acc.saturating_add(to_u128(r.range_end) - to_u128(r.range_start))
                .saturating_add(1)
        });
        let mut it = Candidates {
            ranges,
            range: 0,
            next: to_u128(ranges[0].range_start),
            remaining,
        };
        if let Some(last) = last {
            if let Some(pos) = ranges.iter().position(|r| r.contains(last)) {
                it.range = pos;
                it.next = to_u128(last);
                it.advance();
            }
        }
        it
    }

    fn advance(&mut self) {
        let r = &self.ranges[self.range];
        if self.next >= to_u128(r.range_end) {
            self.range = (self.range + 1) % self.ranges.len();
            self.next = to_u128(self.ranges[self.range].range_start);
        } else {
            self.next += 1;
        }
    }
}

impl<'a> Iterator for Candidates<'a> {
    type Item = (&'a Range, IpAddr);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let range = &self.ranges[self.range];
        let ip = from_u128(self.next, range.range_start);
        self.advance();
        Some((range, ip))
    }
}

/// Find an attachment's index entry (and its key's ifname), falling back (like host-local's
/// ReleaseByID) to the container's legacy ID-only entry.
fn lookup<'a, S: Store>(
    store: &mut S,
    id: &str,
    ifname: &'a str,
) -> Result<Option<(&'a str, Vec<IpAddr>)>, IpamError> {
    if let Some(ips) = store.index_get(id, ifname)? {
        return Ok(Some((ifname, ips)));
    }
    Ok(store.index_get(id, "")?.map(|ips| ("", ips)))
}

/// Release the listed IPs that `(id, key_ifname)` still holds (and empty
/// records: a crashed writer's). Returns the released IPs.
fn release_listed<S: Store>(
    store: &mut S,
    id: &str,
    key_ifname: &str,
    ips: &[IpAddr],
) -> Result<Vec<IpAddr>, IpamError> {
    let mut released = Vec::new();
    for &ip in ips {
        match store.owner(ip)? {
            Some(owner) if owner == Owner::Empty || owner.is_key(id, key_ifname) => {
                store.release(ip)?;
                released.push(ip);
            }
            _ => {}
        }
    }
    Ok(released)
}

/// DEL: release everything the attachment holds. Idempotent: an unknown
/// attachment yields `Ok(vec![])`. A corrupt index entry is dropped (its
/// records are left to GC) so that DEL always completes.
pub fn release<S: Store>(
    store: &mut S,
    container_id: &str,
    ifname: &str,
) -> Result<Vec<IpAddr>, IpamError> {
    validate_attachment(container_id, ifname)?;
    let _guard = store.lock()?;
    let found = match lookup(store, container_id, ifname) {
        Err(IpamError::Corrupt { .. }) => {
            store.index_delete(container_id, ifname)?;
            store.index_delete(container_id, "")?;
            return Ok(Vec::new());
        }
        other => other?,
    };
    let Some((key_ifname, ips)) = found else {
        return Ok(Vec::new());
    };
    let released = release_listed(store, container_id, key_ifname, &ips)?;
    store.index_delete(container_id, key_ifname)?;
    Ok(released)
}

/// CHECK: the IPs the attachment holds. [`IpamError::NotReserved`] if it
/// holds none; [`IpamError::NotInRange`] if one is outside every configured
/// subnet.
pub fn check<S: Store>(
    store: &mut S,
    cfg: &IpamConfig,
    container_id: &str,
    ifname: &str,
) -> Result<Vec<IpAddr>, IpamError> {
    validate_attachment(container_id, ifname)?;
    let _guard = store.lock()?;
    let mut owned = Vec::new();
    if let Some((key_ifname, ips)) = lookup(store, container_id, ifname)? {
        for ip in ips {
            if matches!(store.owner(ip)?, Some(o) if o.is_key(container_id, key_ifname)) {
                owned.push(ip);
            }
        }
    }
    if owned.is_empty() {
        return Err(IpamError::NotReserved {
            container_id: container_id.to_owned(),
            ifname: ifname.to_owned(),
        });
    }
    if let Some(&ip) = owned
        .iter()
        .find(|ip| cfg.ranges.iter().all(|s| s.subnet_for(**ip).is_none()))
    {
        return Err(IpamError::NotInRange { ip });
    }
    Ok(owned)
}

/// GC: release every reservation (records and index entries) whose
/// attachment is not in `valid`. Legacy ID-only records are kept if their
/// container ID appears in `valid` with any ifname; empty records (crash
/// leftovers) always go. O(n). Keeps going after a failed removal and
/// reports the first error. Returns the released IPs, sorted.
pub fn gc<S: Store>(
    store: &mut S,
    valid: &HashSet<(String, String)>,
) -> Result<Vec<IpAddr>, IpamError> {
    let valid_ids: HashSet<&str> = valid.iter().map(|(c, _)| c.as_str()).collect();
    let is_valid = |id: &str, ifname: &str| {
        if ifname.is_empty() {
            valid_ids.contains(id)
        } else {
            valid.contains(&(id.to_owned(), ifname.to_owned()))
        }
    };

    let _guard = store.lock()?;
    let invalid = store.reservations()?.into_iter().filter_map(|(ip, owner)| {
        (!owner.key().is_some_and(|(id, ifname)| is_valid(id, ifname))).then_some(ip)
    });
    release_and_prune(store, invalid.collect::<Vec<_>>(), |id, ifname| {
        !is_valid(id, ifname)
    })
}

/// STATUS: the store is writable and every range set has a free address.
pub fn status<S: Store>(store: &mut S, cfg: &IpamConfig) -> Result<(), IpamError> {
    let _guard = store.lock()?;
    store.probe_writable()?;
    for (idx, set) in cfg.ranges.iter().enumerate() {
        if next_free(store, idx, set)?.is_none() {
            return Err(IpamError::Exhausted {
                range: set.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "alloc_tests.rs"]
mod tests;
