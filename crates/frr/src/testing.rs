//! Test support: real FRR daemons for one node netns, in their own
//! pathspace, stopped and cleaned up on drop (also when a test panics).
//!
//! Test code only: it shells out to `ip netns exec` and panics on failure.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::Frr;

/// State files ospfd and ospf6d share outside any pathspace (graceful
/// restart, OSPFv3 authentication sequence numbers); removed on drop.
pub const SHARED_STATE_FILES: [&str; 3] = [
    "/var/run/frr/ospfd-gr.json",
    "/var/run/frr/ospf6d-gr.json",
    "/var/run/frr/ospf6d-at-seq-no.dat",
];
const FRR_BIN: &str = "/usr/lib/frr";

/// Daemons started with `-d -N NAME -A 127.0.0.1` inside a netns.
pub struct FrrInstance {
    pub netns: String,
    pub name: String,
    pub frr: Frr,
}

impl FrrInstance {
    /// Create `/etc/frr/NAME` and `/var/run/frr/NAME` (owned by frr), write
    /// `daemons`, `vtysh.conf` (hostname from `initial_config`, else NAME)
    /// and `frr.conf` = `initial_config`, then start `daemons` in order
    /// (zebra first, with [`crate::ZEBRA_OPTIONS`]) inside `netns`, each logging to
    /// `/var/run/frr/NAME/DAEMON.log`. `lo` in `netns` must be up.
    pub fn start(netns: &str, name: &str, daemons: &[&str], initial_config: &str) -> FrrInstance {
        Self::start_with(
            netns,
            name,
            Frr::for_pathspace(name),
            daemons,
            initial_config,
        )
    }

    /// Like [`FrrInstance::start`] without a pathspace: config in
    /// `conf_dir`, sockets (`--vty_socket`, `-z`) and pid files (`-i`) in
    /// `run_dir`, as for ferryd's `--frr-conf-dir` / `--frr-run-dir`. Both
    /// dirs are removed on drop.
    pub fn start_in_dirs(
        netns: &str,
        conf_dir: &Path,
        run_dir: &Path,
        daemons: &[&str],
        initial_config: &str,
    ) -> FrrInstance {
        let frr = Frr {
            conf_dir: conf_dir.into(),
            run_dir: run_dir.into(),
            pathspace: None,
        };
        Self::start_with(netns, netns, frr, daemons, initial_config)
    }

    fn start_with(
        netns: &str,
        name: &str,
        frr: Frr,
        daemons: &[&str],
        initial_config: &str,
    ) -> FrrInstance {
        let inst = FrrInstance {
            netns: netns.into(),
            name: name.into(),
            frr,
        };
        for dir in [&inst.frr.conf_dir, &inst.frr.run_dir] {
            fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            chown_frr(dir);
        }
        let host = initial_config
            .lines()
            .find_map(|l| l.strip_prefix("hostname "))
            .unwrap_or(name)
            .trim();
        let daemons_file: String = daemons.iter().map(|d| format!("{d}=yes\n")).collect();
        write(&inst.frr.conf_dir.join("daemons"), &daemons_file);
        write(
            &inst.frr.vtysh_conf_file(),
            &format!("service integrated-vtysh-config\nhostname {host}\n"),
        );
        write(&inst.frr.conf_file(), initial_config);
        for d in daemons {
            inst.start_daemon(d);
        }
        inst
    }

    fn start_daemon(&self, daemon: &str) {
        let log = self.frr.run_dir.join(format!("{daemon}.log"));
        let conf = self.frr.conf_file();
        let run = |f: &str| self.frr.run_dir.join(f).display().to_string();
        let mut args: Vec<String> = vec![
            "netns".into(),
            "exec".into(),
            self.netns.clone(),
            format!("{FRR_BIN}/{daemon}"),
            "-d".into(),
        ];
        match &self.frr.pathspace {
            Some(name) => args.extend(["-N".into(), name.clone()]),
            None => args.extend([
                "--vty_socket".into(),
                run(""),
                "-z".into(),
                run("zserv.api"),
                "-i".into(),
                run(&format!("{daemon}.pid")),
            ]),
        }
        args.extend([
            "-A".into(),
            "127.0.0.1".into(),
            "-f".into(),
            conf.display().to_string(),
            "--log".into(),
            format!("file:{}", log.display()),
        ]);
        if daemon == "zebra" {
            args.extend(crate::ZEBRA_OPTIONS.iter().map(|o| o.to_string()));
        }
        let out = Command::new("ip").args(&args).output().expect("run ip");
        assert!(
            out.status.success(),
            "starting {daemon} in {}: {}",
            self.netns,
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = self.frr.run_dir.join(format!("{daemon}.pid"));
        let vty = self.frr.run_dir.join(format!("{daemon}.vty"));
        let start = Instant::now();
        while !(pid.exists() && vty.exists()) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{daemon} in {} did not come up; log: {}",
                self.netns,
                fs::read_to_string(&log).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kill every daemon with SIGKILL, as a container's end does to FRR's
    /// daemons (watchfrr, not they, gets the SIGTERM), and remove their
    /// pid and vty files; the config and kernel state stay.
    pub fn kill(&self) {
        let pids: Vec<Pid> = self.pids().values().map(|p| Pid::from_raw(*p)).collect();
        for pid in &pids {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        let start = Instant::now();
        while pids.iter().any(|p| alive(*p)) {
            assert!(start.elapsed() < Duration::from_secs(10), "daemons live on");
            thread::sleep(Duration::from_millis(10));
        }
        for d in self.pids().keys() {
            for ext in ["pid", "vty"] {
                let _ = fs::remove_file(self.frr.run_dir.join(format!("{d}.{ext}")));
            }
        }
    }

    /// Start `daemons` again (after [`FrrInstance::kill`]) with `frr.conf`
    /// = `config`, as a new FRR container starts.
    pub fn restart(&self, daemons: &[&str], config: &str) {
        write(&self.frr.conf_file(), config);
        for d in daemons {
            self.start_daemon(d);
        }
    }

    /// Running daemons and their pids, from the pid files.
    pub fn pids(&self) -> BTreeMap<String, i32> {
        let mut out = BTreeMap::new();
        let Ok(entries) = fs::read_dir(&self.frr.run_dir) else {
            return out;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(daemon) = name.strip_suffix(".pid") {
                if let Some(pid) = fs::read_to_string(e.path())
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    out.insert(daemon.to_string(), pid);
                }
            }
        }
        out
    }

    /// `vtysh -N NAME -c command`; panics on failure.
    pub fn vtysh(&self, command: &str) -> String {
        self.frr
            .vtysh(command)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    /// The daemons' log files (for a failing test's message).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for d in self.pids().keys() {
            let log = self.frr.run_dir.join(format!("{d}.log"));
            out += &format!("--- {d}\n{}", fs::read_to_string(&log).unwrap_or_default());
        }
        out
    }
}

impl Drop for FrrInstance {
    fn drop(&mut self) {
        let pids: Vec<Pid> = self.pids().values().map(|p| Pid::from_raw(*p)).collect();
        for pid in &pids {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        let start = Instant::now();
        while pids.iter().any(|p| alive(*p)) && start.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(20));
        }
        for pid in pids.iter().filter(|p| alive(**p)) {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        let _ = fs::remove_dir_all(&self.frr.conf_dir);
        let _ = fs::remove_dir_all(&self.frr.run_dir);
        for f in SHARED_STATE_FILES {
            let _ = fs::remove_file(f);
        }
    }
}

/// A live process (not a zombie): our daemons are not our children.
fn alive(pid: Pid) -> bool {
    let stat = PathBuf::from(format!("/proc/{pid}/stat"));
    match fs::read_to_string(stat) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o640)).expect("chmod");
    chown_frr(path);
}

fn chown_frr(path: &Path) {
    let user = nix::unistd::User::from_name("frr")
        .ok()
        .flatten()
        .expect("user frr (apt-get install frr)");
    std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}
