//! What a probe is and the tools probes share: parallel runs, the
//! internet host's witness listeners and asking them what source address
//! they saw (used by `check` and `tcp_probes`).

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::sh;
use crate::topo;

/// What a probe tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    PodToPod,
    PodToNode,
    NodeToPod,
    PodToInternet,
    PodToPodTcp,
    FastPath,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::PodToPod => "pod→pod",
            Kind::PodToNode => "pod→node",
            Kind::NodeToPod => "node→pod",
            Kind::PodToInternet => "pod→internet",
            Kind::PodToPodTcp => "pod→pod tcp",
            Kind::FastPath => "fast path",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub kind: Kind,
    /// `pod-1 (k8s-master) → 10.244.1.2 (pod-2)`.
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// Runs `f` over `items` on up to `workers` threads; results in order.
pub fn parallel<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// The internet host's TCP listeners (one per family), answering each
/// connection with the peer address they saw; stopped on drop.
pub struct Witness {
    pub addrs: Vec<SocketAddr>,
    stop: std::sync::Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Witness {
    pub fn start(internet_ns: &str, dual_stack: bool) -> Result<Witness> {
        let mut binds = vec![topo::INTERNET_HOST_V4];
        if dual_stack {
            binds.push(topo::INTERNET_HOST_V6);
        }
        let ips: Vec<IpAddr> = binds.iter().map(|h| h.parse().expect("address")).collect();
        Witness::listen(internet_ns, &ips)
    }

    /// Listeners on `ips` (port chosen by the kernel) inside `netns`.
    pub fn listen(netns: &str, ips: &[IpAddr]) -> Result<Witness> {
        let ns = sh::open_ns(netns)?;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let mut w = Witness {
            addrs: Vec::new(),
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for &ip in ips {
            let listener = ns
                .run(|| TcpListener::bind(SocketAddr::new(ip, 0)))
                .map_err(|e| LabError::netns(netns, e))?
                .map_err(|e| LabError::io(format!("listen on {ip} in {netns}"), e))?;
            w.addrs.push(
                listener
                    .local_addr()
                    .map_err(|e| LabError::io("listener", e))?,
            );
            listener
                .set_nonblocking(true)
                .map_err(|e| LabError::io("listener", e))?;
            let stop = stop.clone();
            w.threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut s, peer)) => {
                            let _ = s.set_nonblocking(false);
                            let _ = writeln!(s, "{}", peer.ip());
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            }));
        }
        Ok(w)
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The address the internet host saw for a connection from `netns`.
pub fn seen_from(netns: &str, addr: SocketAddr) -> Result<String> {
    let s = sh::tcp_connect(netns, addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| LabError::io("socket", e))?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| LabError::io(format!("read from {addr}"), e))?;
    Ok(line.trim().to_string())
}
