//! IPAM garbage collection that happens in practice: containerd 1.6/1.7
//! never send CNI GC, so a reservation leaked by a crash or a lost DEL
//! would stay forever. ferryd asks the runtime (CRI `ListPodSandbox`) which
//! sandboxes exist and releases the reservations — and removes the host
//! veths of ferry's network — that belong to none, once they are older
//! than a grace period.
//!
//! Order matters, and is what makes a sandbox being created safe:
//! 1. list the live sandboxes ([`cri::sandbox_ids`]);
//! 2. list the host veths;
//! 3. under the IPAM store's lock, read the reservations with their write
//!    time, [`plan()`] and release ([`ferry_ipam::collect`]): no ADD or DEL
//!    runs between what the plan saw and what is released;
//! 4. remove the planned veths.
//!
//! A sandbox created after step 1 has a reservation younger than the grace
//! (and RunPodSandbox lists it only once it returns: the grace must exceed
//! the slowest sandbox start, 2 min by default); a veth its ADD made after
//! step 2 is not seen at all.

pub mod cri;
pub mod plan;

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_hostveth::HostVeth;
use ferry_ipam::DiskStore;
use ferry_netlink::Handle;

use crate::cli::Opts;
use crate::metrics::Metrics;
use crate::AgentError;

pub use plan::{plan, Inputs, Plan};

/// What a collection works on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The runtime's CRI socket; `None`: no collection.
    pub socket: Option<PathBuf>,
    pub network: String,
    pub data_dir: PathBuf,
    pub grace: Duration,
    pub interval: Duration,
    /// The fast path's pin directory, whose pod map loses removed veths.
    pub fast_path: Option<PathBuf>,
}

impl Settings {
    pub fn from_opts(o: &Opts) -> Settings {
        Settings {
            socket: o
                .ipam_gc
                .then(|| cri::socket(o.cri_socket.as_deref()))
                .flatten(),
            network: crate::NETWORK_NAME.to_string(),
            data_dir: o.ipam_data_dir.clone(),
            grace: o.ipam_gc_grace,
            interval: o.ipam_gc_interval,
            fast_path: o.fast_path.then(|| o.bpf_dir.clone()),
        }
    }
}

/// What one collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// Sandboxes the runtime listed.
    pub live: usize,
    pub released: Vec<IpAddr>,
    /// The attachments `(sandbox ID, ifname)` those belonged to.
    pub attachments: BTreeSet<(String, String)>,
    pub veths: Vec<HostVeth>,
    /// Veths without a reservation, left for the next run to confirm.
    pub orphans: BTreeSet<String>,
}

/// Steps 2–4 (blocking: netlink and files), given the live sandboxes.
pub fn sweep(
    s: &Settings,
    live: &HashSet<String>,
    orphans_before: &BTreeSet<String>,
) -> Result<Collected, AgentError> {
    let mut nl = Handle::new().map_err(|e| AgentError::netlink("opening netlink", e))?;
    let veths = ferry_hostveth::list(&mut nl)?;
    let mut store = DiskStore::open(&s.data_dir, &s.network)?;
    let mut planned = Plan::default();
    let released = ferry_ipam::collect(&mut store, |reservations| {
        planned = plan(&Inputs {
            network: &s.network,
            live,
            reservations,
            veths: &veths,
            orphans_before,
            now: SystemTime::now(),
            grace: s.grace,
        });
        planned.release.iter().copied().collect()
    })?;
    for v in &planned.veths {
        ferry_hostveth::remove(&mut nl, v, s.fast_path.as_deref())?;
    }
    Ok(Collected {
        live: live.len(),
        released,
        attachments: planned.attachments,
        veths: planned.veths,
        orphans: planned.orphans,
    })
}

/// One collection (all four steps); `Ok(None)` without a socket.
pub async fn collect_once(
    s: &Settings,
    orphans_before: BTreeSet<String>,
) -> Result<Option<Collected>, AgentError> {
    let Some(socket) = &s.socket else {
        return Ok(None);
    };
    let live = cri::sandbox_ids(socket).await?;
    let s = s.clone();
    tokio::task::spawn_blocking(move || sweep(&s, &live, &orphans_before))
        .await
        .map_err(|e| AgentError::Config(format!("IPAM GC task: {e}")))?
        .map(Some)
}

/// `ferryd run`'s collector: at start, then every `interval`. Without a
/// socket it says once that collection is off, and returns.
pub async fn run(s: Settings, metrics: Arc<Metrics>) {
    let Some(socket) = s.socket.clone() else {
        tracing::info!(
            "IPAM GC is off: --ipam-gc=false, or no CRI socket (--cri-socket unset and {} missing)",
            cri::DEFAULT_SOCKET
        );
        return;
    };
    metrics.set_ipam_gc_enabled();
    tracing::info!(socket = %socket.display(), grace = ?s.grace, interval = ?s.interval, "IPAM GC on");
    let mut orphans = BTreeSet::new();
    loop {
        match collect_once(&s, std::mem::take(&mut orphans)).await {
            Ok(Some(c)) => {
                metrics.observe_ipam_gc(c.released.len(), c.veths.len(), true);
                if !c.released.is_empty() || !c.veths.is_empty() {
                    tracing::info!(
                        released = ?c.released,
                        attachments = ?c.attachments,
                        veths = ?c.veths.iter().map(|v| &v.name).collect::<Vec<_>>(),
                        "IPAM GC released what no sandbox holds"
                    );
                }
                orphans = c.orphans;
            }
            Ok(None) => return,
            Err(e) => {
                metrics.observe_ipam_gc(0, 0, false);
                tracing::warn!(error = %e, "IPAM GC failed; trying again next interval");
            }
        }
        tokio::time::sleep(s.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(socket: Option<PathBuf>, data_dir: PathBuf) -> Settings {
        Settings {
            socket,
            network: crate::NETWORK_NAME.into(),
            data_dir,
            grace: Duration::from_secs(120),
            interval: Duration::from_millis(20),
            fast_path: None,
        }
    }

    #[tokio::test]
    async fn without_a_socket_nothing_runs() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let s = settings(None, dir.path().into());
        assert_eq!(collect_once(&s, BTreeSet::new()).await.unwrap(), None);
        // Returns at once, enables nothing, and touches no store.
        tokio::time::timeout(Duration::from_secs(5), run(s, m.clone()))
            .await
            .expect("returns");
        let t = m.render();
        assert!(t.contains("ferry_ipam_gc_enabled 0"), "{t}");
        assert!(t.contains("ferry_ipam_gc_runs_total 0"), "{t}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_runtime_that_does_not_answer_counts_errors_and_releases_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let s = settings(Some(dir.path().join("absent.sock")), dir.path().into());
        let err = collect_once(&s, BTreeSet::new()).await.unwrap_err();
        assert!(matches!(err, AgentError::Cri(_)), "{err}");
        let _ = tokio::time::timeout(Duration::from_millis(300), run(s, m.clone())).await;
        let t = m.render();
        assert!(t.contains("ferry_ipam_gc_enabled 1"), "{t}");
        assert!(t.contains("ferry_ipam_gc_released_total 0"), "{t}");
        let count = |name: &str| -> u64 {
            t.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap()
        };
        let runs = count("ferry_ipam_gc_runs_total ");
        assert!(runs >= 2, "{t}");
        assert_eq!(count("ferry_ipam_gc_errors_total "), runs, "{t}");
    }
}
