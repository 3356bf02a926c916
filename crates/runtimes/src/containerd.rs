//! A private containerd 1.6 with the CRI plugin, run inside a node's netns
//! the way a kubeadm node runs it, everything under one temp dir.
//!
//! Set up as `/work/shared/notes/runtimes-offline.md` records: own root,
//! state, socket and `config.toml`; `restrict_oom_score_adj` (no
//! CAP_SYS_RESOURCE here); runc with cgroupfs; a locally built pause image
//! imported with `ctr`; CRI's CNI `bin_dir`/`conf_dir` pointed at
//! [`CniDirs`]. Network namespaces are mounted under the state dir, so a
//! test that dies leaves nothing the guard cannot find.
//!
//! libcni (inside containerd) keeps its cache in `/var/lib/cni`, a path
//! containerd 1.6 does not let one configure. So containerd runs in its own
//! mount namespace where [`Containerd::cni_cache`] is bind-mounted over
//! `/var/lib/cni`; the temp dir is a shared mount, so the netns files
//! containerd mounts under it are still seen from outside.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cni::{ferry_conflist, ptp_conflist, CniDirs};
use crate::cri::Cri;
use crate::error::{HarnessError, Result};
use crate::image::{pause_archive, PAUSE_IMAGE};
use crate::plugins::ferry_binaries;
use crate::procs::{
    kill_pid, pids_with_arg, run_checked, spawn_in, stop_child, unmount_and_remove, wait_for,
};

/// How long containerd may take to come up.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A containerd that is stopped, with everything it made, on drop: its
/// sandboxes are stopped and removed over CRI, containerd is sent SIGTERM,
/// leftover containers are deleted with runc, leftover shims are killed,
/// and mounts under its dir are detached before the dir is removed.
pub struct Containerd {
    /// The temp dir holding everything.
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub cni: CniDirs,
    /// libcni's cache (`results/<network>-<sandbox>-<ifname>`), seen by
    /// containerd as `/var/lib/cni`.
    pub cni_cache: PathBuf,
    child: Option<Child>,
}

/// Where libcni keeps its cache on the host.
pub const HOST_CNI_CACHE: &str = "/var/lib/cni";

impl Containerd {
    /// A temp dir (`/tmp/<unique>-containerd`) with empty CNI dirs; not
    /// started yet.
    pub fn new(tag: &str) -> Result<Containerd> {
        let dir = std::env::temp_dir().join(format!("{}-containerd", ferry_testkit::unique(tag)));
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io("creating", &dir, e))?;
        let cni = match CniDirs::create(&dir) {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        Ok(Containerd {
            socket: dir.join("c.sock"),
            cni_cache: dir.join("cni-cache"),
            dir,
            cni,
            child: None,
        })
    }

    /// Started in `node_netns` with ferry + portmap (IPAM state in
    /// `data_dir`). With `record`, `ferry` and `portmap` are wrapped by
    /// the recorder.
    pub fn with_ferry(node_netns: &Path, data_dir: &Path, record: bool) -> Result<Containerd> {
        let mut c = Containerd::new("ctrd")?;
        let (ferry, ferry_ipam) = ferry_binaries()?;
        let portmap = Path::new(ferry_testkit::REFERENCE_DIR).join("portmap");
        if record {
            c.cni.record("ferry", &ferry)?;
            c.cni.record("portmap", &portmap)?;
        } else {
            c.cni.link("ferry", &ferry)?;
            c.cni.link("portmap", &portmap)?;
        }
        c.cni.link("ferry-ipam", &ferry_ipam)?;
        c.cni.link_reference(&["loopback"])?;
        c.cni.write_conflist(&ferry_conflist(data_dir))?;
        c.start(node_netns)?;
        Ok(c)
    }

    /// Started in `node_netns` with ptp + host-local + portmap.
    pub fn with_ptp(node_netns: &Path, data_dir: &Path) -> Result<Containerd> {
        let mut c = Containerd::new("ctrd")?;
        c.cni
            .link_reference(&["loopback", "portmap", "ptp", "host-local"])?;
        c.cni.write_conflist(&ptp_conflist(data_dir))?;
        c.start(node_netns)?;
        Ok(c)
    }

    fn config(&self) -> String {
        let d = self.dir.display();
        format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d}/runc"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{bin}"
    conf_dir = "{conf}"
    max_conf_num = 1
"#,
            sock = self.socket.display(),
            bin = self.cni.bin.display(),
            conf = self.cni.conf.display(),
        )
    }

    /// Write `config.toml`, start containerd in `node_netns`, wait for
    /// CRI to answer and import the pause image into `k8s.io`.
    pub fn start(&mut self, node_netns: &Path) -> Result<()> {
        let config = self.dir.join("config.toml");
        crate::cni::write_atomic(&config, &self.config())?;
        let log_path = self.log_path();
        let log = std::fs::File::create(&log_path)
            .map_err(|e| HarnessError::io("creating", &log_path, e))?;
        let err = log
            .try_clone()
            .map_err(|e| HarnessError::io("duplicating", &log_path, e))?;
        let mut cmd = self.private_cache_command(&config)?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(err);
        self.child = Some(spawn_in(node_netns, cmd)?);

        let cri = wait_for("containerd's CRI socket", START_TIMEOUT, || {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return Some(Err(HarnessError::Unexpected {
                    what: "containerd",
                    detail: format!("exited during start:\n{}", self.log_tail(20)),
                }));
            }
            if !self.socket.exists() {
                return None;
            }
            let cri = Cri::connect(&self.socket).ok()?;
            cri.version().ok()?;
            Some(Ok(cri))
        })??;

        let archive = pause_archive()?;
        let mut ctr = Command::new("ctr");
        ctr.arg("--address")
            .arg(&self.socket)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(&archive);
        run_checked(ctr)?;
        // CRI learns about images from containerd's events: wait until it
        // has, or RunPodSandbox would try to pull it.
        wait_for("CRI to see the pause image", START_TIMEOUT, || {
            cri.image_present(PAUSE_IMAGE).ok().filter(|&p| p)
        })?;
        Ok(())
    }

    /// `containerd --config CONFIG`, started by `unshare` in a mount
    /// namespace of its own where [`Containerd::cni_cache`] is
    /// `/var/lib/cni`. The temp dir is first bind-mounted on itself and
    /// made shared, so what containerd mounts under it (the netns files)
    /// propagates out; the mount holding `/var/lib/cni` is made private
    /// in the new namespace first, so the cache's mount stays inside.
    fn private_cache_command(&self, config: &Path) -> Result<Command> {
        for d in [&self.cni_cache, Path::new(HOST_CNI_CACHE)] {
            std::fs::create_dir_all(d).map_err(|e| HarnessError::io("creating", d, e))?;
        }
        let shared = || -> nix::Result<()> {
            use nix::mount::{mount, MsFlags};
            if !crate::procs::mounts_under(&self.dir).contains(&self.dir) {
                mount(
                    Some(&self.dir),
                    &self.dir,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )?;
            }
            mount(
                None::<&str>,
                &self.dir,
                None::<&str>,
                MsFlags::MS_SHARED,
                None::<&str>,
            )
        };
        shared().map_err(|e| HarnessError::io("making a shared mount of", &self.dir, e.into()))?;
        let script = r#"set -e
holder=$(findmnt -n -o TARGET --target /var/lib/cni)
mount --make-private "$holder"
mount --bind "$0" /var/lib/cni
exec "$@""#;
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "unchanged",
            "--",
            "sh",
            "-c",
            script,
        ])
        .arg(&self.cni_cache)
        .arg("containerd")
        .arg("--config")
        .arg(config);
        Ok(cmd)
    }

    /// The names of libcni's cached results in this containerd's cache.
    pub fn cached_results(&self) -> Vec<String> {
        file_names(&self.cni_cache.join("results"))
    }

    /// A CRI client on this containerd's socket.
    pub fn cri(&self) -> Result<Cri> {
        Cri::connect(&self.socket)
    }

    /// containerd's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// The last `n` lines of containerd's log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Directories still present under the state dir's netns mount point
    /// (one per live sandbox).
    pub fn netns_files(&self) -> Vec<PathBuf> {
        let dir = self.dir.join("state/io.containerd.grpc.v1.cri/netns");
        std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    fn teardown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            if let Ok(cri) = self.cri() {
                let _ = cri.remove_all();
            }
        }
        stop_child(&mut child, Duration::from_secs(5));
        let runc_root = self.dir.join("runc");
        if let Ok(ns_dirs) = std::fs::read_dir(&runc_root) {
            for ns in ns_dirs.flatten() {
                let mut list = Command::new("runc");
                list.arg("--root").arg(ns.path()).args(["list", "-q"]);
                for id in run_checked(list).unwrap_or_default().lines() {
                    let mut del = Command::new("runc");
                    del.arg("--root")
                        .arg(ns.path())
                        .args(["delete", "--force", id]);
                    let _ = run_checked(del);
                }
            }
        }
        for pid in pids_with_arg(&self.socket.display().to_string()) {
            kill_pid(pid);
        }
    }
}

/// The names of the files in `dir` (none when it does not exist).
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// libcni's cached results on the host that name `sandbox`.
pub fn host_cached_results(sandbox: &str) -> Vec<String> {
    file_names(&Path::new(HOST_CNI_CACHE).join("results"))
        .into_iter()
        .filter(|n| n.contains(sandbox))
        .collect()
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.teardown();
        unmount_and_remove(&self.dir);
    }
}
