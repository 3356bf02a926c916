//! ferryd's metrics and readiness, rendered as Prometheus text by hand.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::policy::PolicyShared;

/// Upper bounds (seconds) of the reconcile duration histogram.
pub const DURATION_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Shared between the reconcile loop, the watch and the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    nodes_seen: AtomicU64,
    routes_owned: AtomicU64,
    reconciles: AtomicU64,
    reconcile_errors: AtomicU64,
    api_connected: AtomicBool,
    ready: AtomicBool,
    duration: Mutex<Histogram>,
    /// The fast path's pin directory once it runs (its counters are read
    /// from the pinned map at each scrape).
    fast_path: Mutex<Option<PathBuf>>,
    /// IPAM GC: runs, failed runs, reservations released, veths removed.
    ipam_gc: [AtomicU64; 4],
    ipam_gc_enabled: AtomicBool,
    /// OSPF audit: redistributions re-applied because ospfd lacked an own
    /// AS-external-LSA.
    ospf_repairs: AtomicU64,
    /// NetworkPolicy's state, while `--network-policy` is on.
    policy: Mutex<Option<Arc<PolicyShared>>>,
}

impl Metrics {
    pub fn set_nodes_seen(&self, n: usize) {
        self.nodes_seen.store(n as u64, Ordering::Relaxed);
    }

    pub fn set_routes_owned(&self, n: usize) {
        self.routes_owned.store(n as u64, Ordering::Relaxed);
    }

    pub fn set_api_connected(&self, up: bool) {
        self.api_connected.store(up, Ordering::Relaxed);
    }

    pub fn api_connected(&self) -> bool {
        self.api_connected.load(Ordering::Relaxed)
    }

    /// The node is configured (and, with ospf, its adjacencies settled):
    /// `/readyz` says ok from now on.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Counts one reconcile attempt and its duration.
    pub fn observe_reconcile(&self, took: Duration, ok: bool) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.reconcile_errors.fetch_add(1, Ordering::Relaxed);
        }
        let secs = took.as_secs_f64();
        let mut h = self.duration.lock().unwrap_or_else(|e| e.into_inner());
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn set_fast_path(&self, dir: &Path) {
        let mut f = self.fast_path.lock().unwrap_or_else(|e| e.into_inner());
        if f.as_deref() != Some(dir) {
            *f = Some(dir.to_path_buf());
        }
    }

    pub fn set_policy(&self, p: Arc<PolicyShared>) {
        *self.policy.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
    }

    /// The collector runs (it has a CRI socket).
    pub fn set_ipam_gc_enabled(&self) {
        self.ipam_gc_enabled.store(true, Ordering::Relaxed);
    }

    /// Counts one IPAM GC run and what it collected.
    pub fn observe_ipam_gc(&self, released: usize, veths: usize, ok: bool) {
        let [runs, errors, ips, links] = &self.ipam_gc;
        runs.fetch_add(1, Ordering::Relaxed);
        errors.fetch_add(u64::from(!ok), Ordering::Relaxed);
        ips.fetch_add(released as u64, Ordering::Relaxed);
        links.fetch_add(veths as u64, Ordering::Relaxed);
    }

    /// Counts one OSPF audit repair.
    pub fn observe_ospf_repair(&self) {
        self.ospf_repairs.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reconciles(&self) -> u64 {
        self.reconciles.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        gauge(
            "ferry_nodes_seen",
            "gauge",
            "Nodes in the agent's view of the cluster.",
            self.nodes_seen.load(Ordering::Relaxed),
        );
        gauge(
            "ferry_routes_owned",
            "gauge",
            "Kernel routes to other nodes' pod CIDRs owned by ferryd (proto 201).",
            self.routes_owned.load(Ordering::Relaxed),
        );
        gauge(
            "ferry_reconciles_total",
            "counter",
            "Reconciles attempted.",
            self.reconciles.load(Ordering::Relaxed),
        );
        gauge(
            "ferry_reconcile_errors_total",
            "counter",
            "Reconciles that failed.",
            self.reconcile_errors.load(Ordering::Relaxed),
        );
        gauge(
            "ferry_api_connected",
            "gauge",
            "1 while the Node watch is connected to the API server.",
            u64::from(self.api_connected()),
        );
        gauge(
            "ferry_ready",
            "gauge",
            "1 once the first full reconcile succeeded.",
            u64::from(self.ready()),
        );
        gauge(
            "ferry_ospf_external_lsa_repairs_total",
            "counter",
            "Times ospfd lacked an AS-external-LSA for a pod prefix in zebra and ferryd re-applied the redistribution.",
            self.ospf_repairs.load(Ordering::Relaxed),
        );
        gauge(
            "ferry_ipam_gc_enabled",
            "gauge",
            "1 while the IPAM collector runs (a CRI socket is available).",
            u64::from(self.ipam_gc_enabled.load(Ordering::Relaxed)),
        );
        for (i, (name, help)) in [
            ("ferry_ipam_gc_runs_total", "IPAM GC runs."),
            ("ferry_ipam_gc_errors_total", "IPAM GC runs that failed."),
            (
                "ferry_ipam_gc_released_total",
                "IPAM reservations released because no sandbox holds them.",
            ),
            (
                "ferry_ipam_gc_veths_removed_total",
                "Host veths removed because no sandbox holds them.",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            gauge(
                name,
                "counter",
                help,
                self.ipam_gc[i].load(Ordering::Relaxed),
            );
        }
        let dir = self
            .fast_path
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let stats = dir.and_then(|d| ferry_ebpf::pinned_stats(&d).ok().flatten());
        gauge(
            "ferry_fast_path_enabled",
            "gauge",
            "1 while the eBPF fast path runs on this node.",
            u64::from(stats.is_some()),
        );
        if let Some(s) = stats {
            let name = "ferry_fast_path_packets_total";
            let _ = writeln!(
                out,
                "# HELP {name} Pod-to-pod packets the fast path forwarded, or left to the IP stack \
                 (tracked: conntrack has the flow; no_route: no FIB answer).\n# TYPE {name} counter"
            );
            for (result, v) in [
                ("forwarded", s.forwarded),
                ("tracked", s.tracked),
                ("no_route", s.no_fib),
            ] {
                let _ = writeln!(out, "{name}{{result=\"{result}\"}} {v}");
            }
            let name = "ferry_fast_path_vxlan_packets_total";
            let _ = writeln!(
                out,
                "# HELP {name} Of the forwarded packets, those the fast path put into VXLAN or \
                 took out of it itself (not through the VXLAN device).\n# TYPE {name} counter"
            );
            for (op, v) in [
                ("encapsulated", s.encapsulated),
                ("decapsulated", s.decapsulated),
            ] {
                let _ = writeln!(out, "{name}{{op=\"{op}\"}} {v}");
            }
        }
        let h = self.duration.lock().unwrap_or_else(|e| e.into_inner());
        let name = "ferry_reconcile_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time a reconcile took.\n# TYPE {name} histogram"
        );
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {}", h.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum {}", h.sum);
        let _ = writeln!(out, "{name}_count {}", h.count);
        drop(h);
        let policy = self
            .policy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(p) = policy {
            crate::policy::metrics::render(&p.state(), &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> String {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[test]
    fn exposition() {
        let m = Metrics::default();
        m.set_nodes_seen(3);
        m.set_routes_owned(2);
        m.set_api_connected(true);
        m.observe_reconcile(Duration::from_millis(20), true);
        m.observe_reconcile(Duration::from_secs(30), false);
        let t = m.render();
        assert_eq!(value(&t, "ferry_nodes_seen"), "3");
        assert_eq!(value(&t, "ferry_routes_owned"), "2");
        assert_eq!(value(&t, "ferry_reconciles_total"), "2");
        assert_eq!(value(&t, "ferry_reconcile_errors_total"), "1");
        assert_eq!(value(&t, "ferry_api_connected"), "1");
        assert_eq!(value(&t, "ferry_ready"), "0");
        let b = "ferry_reconcile_duration_seconds_bucket";
        assert_eq!(value(&t, &format!("{b}{{le=\"0.01\"}}")), "0");
        assert_eq!(value(&t, &format!("{b}{{le=\"0.025\"}}")), "1");
        assert_eq!(value(&t, &format!("{b}{{le=\"10\"}}")), "1");
        assert_eq!(value(&t, &format!("{b}{{le=\"+Inf\"}}")), "2");
        assert_eq!(value(&t, "ferry_reconcile_duration_seconds_count"), "2");
        // Every series has its HELP and TYPE.
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(t.contains(&format!("# TYPE {base} ")), "{name}");
        }
        m.set_ready();
        assert!(m.ready());
        assert_eq!(value(&t, "ferry_ipam_gc_enabled"), "0");
        assert_eq!(value(&t, "ferry_ipam_gc_runs_total"), "0");
        assert_eq!(value(&t, "ferry_ospf_external_lsa_repairs_total"), "0");
        m.observe_ospf_repair();
        let t = m.render();
        assert_eq!(value(&t, "ferry_ospf_external_lsa_repairs_total"), "1");
    }

    #[test]
    fn ipam_gc_counters() {
        let m = Metrics::default();
        m.set_ipam_gc_enabled();
        m.observe_ipam_gc(3, 1, true);
        m.observe_ipam_gc(0, 0, false);
        m.observe_ipam_gc(2, 0, true);
        let t = m.render();
        assert_eq!(value(&t, "ferry_ipam_gc_enabled"), "1");
        assert_eq!(value(&t, "ferry_ipam_gc_runs_total"), "3");
        assert_eq!(value(&t, "ferry_ipam_gc_errors_total"), "1");
        assert_eq!(value(&t, "ferry_ipam_gc_released_total"), "5");
        assert_eq!(value(&t, "ferry_ipam_gc_veths_removed_total"), "1");
    }
}
