//! Pods isolated by a policy leave the eBPF fast path, which skips the
//! forward hook where the policy table judges packets (see
//! `ferry_ebpf::program`: an excluded address takes the stack both ways).
//!
//! The order makes sure the fast path never carries a packet the table
//! would drop: before a ruleset goes in, the exclusions *widen* to what is
//! excluded now plus every pod the new ruleset isolates; once it is in,
//! they narrow to exactly those pods (a pod no longer isolated may take
//! the fast path again only when no rule judges it any more). A failed
//! apply leaves them wide: more packets through netfilter, none less.
//!
//! The exclusions are written into the maps pinned in ferryd's bpf
//! directory, under one lock, from the policy task; the node loop, which
//! owns the program, hands the same set to each (re)load before attaching
//! it and asks for a [`FastPathExclusions::rewrite`] after. The maps are
//! pinned, and a starting ferryd begins from what it finds there, so the
//! previous exclusions stay in force until its first policy sync.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// The excluded addresses ferryd wants, and where the maps are pinned.
#[derive(Debug, Default)]
pub struct FastPathExclusions {
    /// The pin directory; `None` with `--fast-path=false`.
    dir: Option<PathBuf>,
    want: Mutex<BTreeSet<IpAddr>>,
}

impl FastPathExclusions {
    /// Starts from the exclusions pinned in `dir` (an earlier ferryd's):
    /// they stay in force until the first policy sync replaces them.
    pub fn new(dir: Option<PathBuf>) -> Self {
        let pinned = dir
            .as_deref()
            .map(ferry_ebpf::pinned_excluded)
            .and_then(|r| {
                r.map_err(|e| tracing::warn!(error = %e, "reading the pinned fast-path exclusions"))
                    .ok()
            })
            .flatten()
            .unwrap_or_default();
        FastPathExclusions {
            dir,
            want: Mutex::new(pinned),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeSet<IpAddr>> {
        self.want.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What is (to be) excluded now.
    pub fn wanted(&self) -> BTreeSet<IpAddr> {
        self.lock().clone()
    }

    /// Before installing a ruleset that isolates `next`: exclude those too.
    pub fn widen(&self, next: &BTreeSet<IpAddr>) {
        let mut want = self.lock();
        if !next.is_subset(&want) {
            want.extend(next.iter().copied());
            self.write(&want);
        }
    }

    /// After it went in: exclude exactly `next`.
    pub fn narrow(&self, next: BTreeSet<IpAddr>) {
        let mut want = self.lock();
        if *want != next {
            *want = next;
            self.write(&want);
        }
    }

    /// Writes the wanted set again (the program was just (re)loaded).
    pub fn rewrite(&self) {
        let want = self.lock();
        self.write(&want);
    }

    fn write(&self, want: &BTreeSet<IpAddr>) {
        let Some(dir) = &self.dir else { return };
        match ferry_ebpf::set_pinned_excluded(dir, want) {
            Ok(Some(true)) => tracing::debug!(count = want.len(), "fast-path exclusions set"),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                error = %e,
                "could not exclude isolated pods from the eBPF fast path (it may carry flows the policy table would judge)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(a: &[&str]) -> BTreeSet<IpAddr> {
        a.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn widen_then_narrow() {
        let x = FastPathExclusions::new(None);
        x.narrow(set(&["10.244.0.2"]));
        x.widen(&set(&["10.244.0.3"]));
        assert_eq!(x.wanted(), set(&["10.244.0.2", "10.244.0.3"]));
        x.narrow(set(&["10.244.0.3"]));
        assert_eq!(x.wanted(), set(&["10.244.0.3"]));
    }
}
