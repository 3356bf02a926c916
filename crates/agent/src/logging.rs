//! ferryd's log: `RUST_LOG` (default `info`) to stderr, and the Kubernetes
//! client's own warnings and errors rate-limited like ferryd's.
//!
//! During an API outage kube's HTTP layer logs `failed with error ...` at
//! ERROR for every request that fails: each watch retry and each
//! `/version` probe, a dozen lines in 15 s. ferryd reports the outage
//! itself (once, then once a minute while it lasts), so [`KubeNoise`] lets
//! through one event per kube call site per [`KUBE_LOG_INTERVAL`] and drops
//! the repeats. ferryd's own events are never touched.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// At most one warning or error per kube call site this often.
pub const KUBE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The crates whose warnings and errors are rate-limited.
const NOISY_TARGETS: [&str; 2] = ["kube_client", "kube_runtime"];

/// A filter layer: passes every event except repeats, within `interval`,
/// of a kube warning or error from the same call site.
#[derive(Debug)]
pub struct KubeNoise {
    interval: Duration,
    last: Mutex<HashMap<Identifier, Instant>>,
}

impl KubeNoise {
    pub fn new(interval: Duration) -> KubeNoise {
        KubeNoise {
            interval,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an event of this target, level and call site goes out now.
    fn pass(&self, target: &str, level: Level, callsite: Identifier, now: Instant) -> bool {
        let noisy = level <= Level::WARN
            && NOISY_TARGETS
                .iter()
                .any(|t| target == *t || target.starts_with(&format!("{t}::")));
        if !noisy {
            return true;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.get(&callsite) {
            Some(at) if now.duration_since(*at) < self.interval => false,
            _ => {
                last.insert(callsite, now);
                true
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for KubeNoise {
    fn event_enabled(&self, event: &Event<'_>, _cx: Context<'_, S>) -> bool {
        let m = event.metadata();
        self.pass(m.target(), *m.level(), m.callsite(), Instant::now())
    }
}

/// Sets up the process's log: `RUST_LOG` or `info`, to stderr, without
/// targets, colours only on a terminal, kube's repeats dropped.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::registry()
        .with(filter)
        .with(KubeNoise::new(KUBE_LOG_INTERVAL))
        .with(fmt)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts the events that reach it.
    struct Count(Arc<AtomicUsize>);

    impl<S: Subscriber> Layer<S> for Count {
        fn on_event(&self, _e: &Event<'_>, _cx: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn kube_repeats_are_dropped_ferryds_own_events_are_not() {
        let seen = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(KubeNoise::new(Duration::from_secs(3600)))
            .with(Count(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..14 {
                tracing::error!(target: "kube_client::client::builder", "failed with error x");
            }
            for _ in 0..3 {
                tracing::warn!(target: "kube_runtime::watcher", "watcher error 403");
                tracing::info!(target: "kube_client::client", "not noisy: info");
                tracing::error!("ferryd's own");
            }
        });
        // One kube error, one kube warning, 3 infos, 3 of ferryd's own.
        assert_eq!(seen.load(Ordering::SeqCst), 1 + 1 + 3 + 3);
    }

    #[test]
    fn one_per_interval() {
        let f = KubeNoise::new(Duration::from_secs(60));
        let cs = tracing::callsite::Identifier(&CALLSITE);
        let t0 = Instant::now();
        let kube = "kube_client::client::builder";
        assert!(f.pass(kube, Level::ERROR, cs.clone(), t0));
        assert!(!f.pass(kube, Level::ERROR, cs.clone(), t0 + Duration::from_secs(59)));
        assert!(f.pass(kube, Level::ERROR, cs.clone(), t0 + Duration::from_secs(61)));
        // Not kube's, or not a warning: always.
        assert!(f.pass("ferryd::watch", Level::ERROR, cs.clone(), t0));
        assert!(f.pass("kubernetes_thing", Level::ERROR, cs.clone(), t0));
        assert!(f.pass(kube, Level::INFO, cs, t0));
    }

    struct Cs;
    impl tracing::Callsite for Cs {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unimplemented!("never asked")
        }
    }
    static CALLSITE: Cs = Cs;
}
