//! Collection by an outside judge (ferryd): the reservations with the time
//! they were written, handed to a `select` function under the store's lock,
//! and the IPs it selects released — all under that one lock, so no ADD or
//! DEL runs between what `select` saw and what is released.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::SystemTime;

use crate::error::IpamError;
use crate::store::{Owner, Store};

/// One reservation as a collector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub ip: IpAddr,
    pub owner: Owner,
    /// When its record was written; `None` when the store cannot tell
    /// (a collector should then leave it alone).
    pub written: Option<SystemTime>,
}

/// Release `ips` (whoever holds them: the caller holds the lock and has
/// just read them), then delete the index entries `prune` names. Keeps
/// going after a failure and reports the first one; else the released
/// IPs, sorted.
pub(crate) fn release_and_prune<S: Store>(
    store: &mut S,
    ips: impl IntoIterator<Item = IpAddr>,
    prune: impl Fn(&str, &str) -> bool,
) -> Result<Vec<IpAddr>, IpamError> {
    let mut first_err = None;
    let mut released = Vec::new();
    for ip in ips {
        match store.release(ip) {
            Ok(()) => released.push(ip),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    for entry in store.index_entries()? {
        if prune(&entry.container_id, &entry.ifname) {
            if let Err(e) = store.index_delete(&entry.container_id, &entry.ifname) {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => {
            released.sort();
            Ok(released)
        }
    }
}

/// Under the lock: list the reservations (with [`Store::written_at`]),
/// release those `select` picks, then drop the index entries left without
/// any reservation of their attachment. Returns the released IPs, sorted;
/// after a failed removal it keeps going and reports the first error.
pub fn collect<S: Store>(
    store: &mut S,
    select: impl FnOnce(&[Reservation]) -> HashSet<IpAddr>,
) -> Result<Vec<IpAddr>, IpamError> {
    let _guard = store.lock()?;
    let mut all = Vec::new();
    for (ip, owner) in store.reservations()? {
        let written = store.written_at(ip)?;
        all.push(Reservation { ip, owner, written });
    }
    let chosen = select(&all);
    let held: HashSet<(&str, &str)> = all
        .iter()
        .filter(|r| !chosen.contains(&r.ip))
        .filter_map(|r| r.owner.key())
        .collect();
    let ips = all.iter().map(|r| r.ip).filter(|ip| chosen.contains(ip));
    release_and_prune(store, ips.collect::<Vec<_>>(), |id, ifname| {
        !held.contains(&(id, ifname))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FakeStore;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn releases_what_select_picks_and_drops_emptied_index_entries() {
        let mut s = FakeStore::new();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        for (addr, id) in [("10.0.0.2", "dead"), ("10.0.0.3", "live")] {
            s.reserve(ip(addr), id, "eth0").unwrap();
            s.index_put(id, "eth0", &[ip(addr)]).unwrap();
            s.written.insert(ip(addr), t);
        }
        // An entry whose reservation is gone already.
        s.index_put("ghost", "eth0", &[ip("10.0.0.9")]).unwrap();
        let mut seen = Vec::new();
        let got = collect(&mut s, |all| {
            seen = all.to_vec();
            all.iter()
                .filter(|r| r.owner.key() == Some(("dead", "eth0")))
                .map(|r| r.ip)
                .collect()
        })
        .unwrap();
        assert_eq!(got, vec![ip("10.0.0.2")]);
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|r| r.written == Some(t)));
        assert_eq!(s.ips.keys().copied().collect::<Vec<_>>(), [ip("10.0.0.3")]);
        let keys: Vec<_> = s.index.keys().cloned().collect();
        assert_eq!(keys, vec![("live".to_string(), "eth0".to_string())]);
        // Nothing picked: nothing released.
        assert_eq!(
            collect(&mut s, |_| HashSet::new()).unwrap(),
            Vec::<IpAddr>::new()
        );
        assert_eq!(s.ips.len(), 1);
    }
}
