//! Shared helpers for the real-kernel netlink tests (run as root).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use ferry_netlink::Handle;
use ferry_netns::{create_named, delete_named, NetNs};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh named namespace (`fnl-<pid>-<n>`), deleted on drop even when the
/// test panics.
pub struct TestNs {
    pub name: String,
    #[allow(dead_code)]
    pub path: PathBuf,
    pub ns: NetNs,
}

impl TestNs {
    pub fn new() -> TestNs {
        let name = format!(
            "fnl-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = create_named(&name).expect("create_named");
        let ns = match NetNs::open(&path) {
            Ok(ns) => ns,
            Err(e) => {
                let _ = delete_named(&name);
                panic!("open test netns {name}: {e}");
            }
        };
        TestNs { name, path, ns }
    }

    /// Runs `f` inside the namespace with a fresh netlink handle.
    pub fn nl<T: Send>(&self, f: impl FnOnce(&mut Handle) -> T + Send) -> T {
        self.ns
            .run(|| {
                let mut h = Handle::new().expect("Handle::new");
                f(&mut h)
            })
            .expect("run in netns")
    }

    /// Runs a command inside the namespace; true if it exited 0.
    #[allow(dead_code)]
    pub fn cmd(&self, program: &str, args: &[&str]) -> bool {
        self.ns
            .run(|| {
                let out = Command::new(program).args(args).output().expect("spawn");
                if !out.status.success() {
                    eprintln!(
                        "{program} {args:?} failed: {}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                out.status.success()
            })
            .expect("run in netns")
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        if let Err(e) = delete_named(&self.name) {
            eprintln!("cleanup of netns {} failed: {e}", self.name);
        }
    }
}
