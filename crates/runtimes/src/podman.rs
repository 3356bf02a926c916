//! podman 4.3 with its CNI backend, private storage and config, run
//! inside a node's netns. Containers use a busybox `--rootfs`, so no image
//! is ever pulled.
//!
//! As `/work/shared/notes/runtimes-offline.md` records: `containers.conf`
//! with `network_backend = "cni"`, our conf and plugin dirs, `runtime =
//! "runc"` (crun fails on these hybrid-cgroup hosts), `default_ulimits`
//! (no CAP_SYS_RESOURCE); `--root`/`--runroot`/`--tmpdir` under one temp
//! dir; cgroupfs; file events. `CONTAINERS_CONF` is also handed to conmon,
//! so the `podman container cleanup` it runs when a container exits (and
//! which sends the CNI DEL) sees the same config.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cni::{ferry_conflist, write_atomic, CniDirs, FERRY_NETWORK};
use crate::error::{HarnessError, Result};
use crate::image::busybox_rootfs;
use crate::plugins::ferry_binaries;
use crate::procs::{checked_in, describe, kill_pid, output_in, pids_with_arg, unmount_and_remove};

/// A private podman. On drop every container is removed (`rm -a -f -t 0`),
/// leftover conmon/cleanup processes of this instance are killed, mounts
/// under its dir are detached and the dir is removed.
pub struct Podman {
    pub dir: PathBuf,
    pub cni: CniDirs,
    /// The busybox rootfs every container runs from.
    pub rootfs: PathBuf,
    node_netns: PathBuf,
    conf: PathBuf,
}

impl Podman {
    /// Dirs, rootfs and `containers.conf` under `/tmp/<unique>-podman`;
    /// podman runs in `node_netns`.
    pub fn new(tag: &str, node_netns: &Path) -> Result<Podman> {
        let dir = std::env::temp_dir().join(format!("{}-podman", ferry_testkit::unique(tag)));
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io("creating", &dir, e))?;
        // From here on the guard owns the dir.
        let mut p = Podman {
            cni: CniDirs {
                bin: dir.join("cni/bin"),
                conf: dir.join("cni/conf"),
                records: dir.join("cni/records"),
            },
            rootfs: dir.join("rootfs"),
            node_netns: node_netns.to_path_buf(),
            conf: dir.join("containers.conf"),
            dir,
        };
        p.cni = CniDirs::create(&p.dir)?;
        busybox_rootfs(&p.rootfs)?;
        for sub in ["root", "runroot", "tmp"] {
            let d = p.dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| HarnessError::io("creating", &d, e))?;
        }
        write_atomic(&p.conf, &p.containers_conf())?;
        Ok(p)
    }

    /// Ready to run containers on the ferry network (IPAM state in
    /// `data_dir`); with `record`, `ferry` is wrapped by the recorder.
    pub fn with_ferry(node_netns: &Path, data_dir: &Path, record: bool) -> Result<Podman> {
        let p = Podman::new("podman", node_netns)?;
        let (ferry, ferry_ipam) = ferry_binaries()?;
        if record {
            p.cni.record("ferry", &ferry)?;
        } else {
            p.cni.link("ferry", &ferry)?;
        }
        p.cni.link("ferry-ipam", &ferry_ipam)?;
        p.cni.link_reference(&["loopback", "portmap"])?;
        p.cni.write_conflist(&ferry_conflist(data_dir))?;
        Ok(p)
    }

    fn containers_conf(&self) -> String {
        format!(
            r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[network]
network_backend = "cni"
network_config_dir = "{conf}"
cni_plugin_dirs = ["{bin}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{d}/tmp"
conmon_env_vars = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "CONTAINERS_CONF={cc}"]
"#,
            conf = self.cni.conf.display(),
            bin = self.cni.bin.display(),
            d = self.dir.display(),
            cc = self.conf.display(),
        )
    }

    /// `podman <global flags> <args>` (not started).
    pub fn command(&self, args: &[&str]) -> Command {
        let d = &self.dir;
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", &self.conf)
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--network-backend", "cni", "--network-config-dir"])
            .arg(&self.cni.conf)
            .args([
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                "--runtime",
                "runc",
                "--storage-driver",
                "vfs",
            ])
            .args(args);
        cmd
    }

    /// Run podman in the node netns; whatever it did.
    pub fn output(&self, args: &[&str]) -> Result<Output> {
        output_in(&self.node_netns, self.command(args))
    }

    /// Run podman in the node netns, failing unless it exits 0; its stdout.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        checked_in(&self.node_netns, self.command(args))
    }

    /// `podman run -d --name <name> --network ferry <extra> --rootfs
    /// <rootfs> <cmd>`; the container ID.
    pub fn run_detached(&self, name: &str, extra: &[&str], cmd: &[&str]) -> Result<String> {
        let rootfs = self.rootfs.display().to_string();
        let mut args = vec!["run", "-d", "--name", name, "--network", FERRY_NETWORK];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--rootfs", &rootfs]);
        args.extend_from_slice(cmd);
        Ok(self.run(&args)?.trim().to_string())
    }

    /// `podman exec <name> <cmd>`: its stdout, failing on a non-zero exit.
    pub fn exec(&self, name: &str, cmd: &[&str]) -> Result<String> {
        let mut args = vec!["exec", name];
        args.extend_from_slice(cmd);
        self.run(&args)
    }

    /// `podman rm -f -t 0 <name>` (busybox `sleep` as PID 1 ignores
    /// SIGTERM; no point in waiting 10 s for it).
    pub fn rm(&self, name: &str) -> Result<()> {
        self.run(&["rm", "-f", "-t", "0", name]).map(drop)
    }

    /// The IPv4 address on the container's eth0, as the container sees it.
    pub fn eth0_ipv4(&self, name: &str) -> Result<IpAddr> {
        let out = self.exec(name, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])?;
        out.split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok())
            .ok_or(HarnessError::Unexpected {
                what: "ip addr in the container",
                detail: out.clone(),
            })
    }

    /// The container's state (`running`, `exited`, ...).
    pub fn state(&self, name: &str) -> Result<String> {
        Ok(self
            .run(&["inspect", "-f", "{{.State.Status}}", name])?
            .trim()
            .to_string())
    }

    /// For failure messages.
    pub fn describe(&self, args: &[&str]) -> String {
        describe(&self.command(args))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.output(&["rm", "-a", "-f", "-t", "0"]);
        for pid in pids_with_arg(&self.dir.display().to_string()) {
            kill_pid(pid);
        }
        unmount_and_remove(&self.dir);
    }
}
