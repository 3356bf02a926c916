//! Putting a rendered config into a running FRR without restarting it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cmd::{self, redact, secrets_in};
use crate::hostname::{pick_daemon_hostname, vtysh_conf_hostname, with_hostname};
use crate::routes::{self, LearnedRoute};
use crate::FrrError;

const VTYSH: &str = "vtysh";
const PYTHON: &str = "python3";
/// Debian's frr-pythontools.
pub const FRR_RELOAD: &str = "/usr/lib/frr/frr-reload.py";
const SHOW_TIMEOUT: Duration = Duration::from_secs(30);
const RELOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// One FRR instance: the system one, or one pathspace (`-N NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frr {
    /// Where `frr.conf` and `vtysh.conf` are: `/etc/frr` or `/etc/frr/NAME`.
    pub conf_dir: PathBuf,
    /// Where the daemons' sockets and pid files are: `/var/run/frr[/NAME]`.
    pub run_dir: PathBuf,
    pub pathspace: Option<String>,
}

/// What [`Frr::apply`] did. The lines are frr-reload's, secrets redacted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// False: the running config already was the wanted one; no reload.
    pub changed: bool,
    /// Lines removed from the running config (as the `no` commands run).
    pub removed: Vec<String>,
    /// Lines added to the running config.
    pub added: Vec<String>,
}

impl Default for Frr {
    fn default() -> Frr {
        Frr::system()
    }
}

impl Frr {
    /// The host's FRR: `/etc/frr`, `/var/run/frr`.
    pub fn system() -> Frr {
        Frr {
            conf_dir: "/etc/frr".into(),
            run_dir: "/var/run/frr".into(),
            pathspace: None,
        }
    }

    /// The instance started with `-N name`: `/etc/frr/NAME`,
    /// `/var/run/frr/NAME`.
    pub fn for_pathspace(name: &str) -> Frr {
        Frr {
            conf_dir: Path::new("/etc/frr").join(name),
            run_dir: Path::new("/var/run/frr").join(name),
            pathspace: Some(name.into()),
        }
    }

    pub fn conf_file(&self) -> PathBuf {
        self.conf_dir.join("frr.conf")
    }

    pub fn vtysh_conf_file(&self) -> PathBuf {
        self.conf_dir.join("vtysh.conf")
    }

    /// With a pathspace, FRR's tools want the base dir and add NAME.
    fn base_conf_dir(&self) -> PathBuf {
        match &self.pathspace {
            Some(_) => self
                .conf_dir
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| "/etc/frr".into()),
            None => self.conf_dir.clone(),
        }
    }

    /// The vtysh command line that reaches this FRR, for a shell script
    /// (such as [`crate::ospf_pre_stop`]'s).
    pub fn vtysh_command(&self) -> String {
        std::iter::once("vtysh".to_string())
            .chain(self.vtysh_args())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn vtysh_args(&self) -> Vec<String> {
        let mut args = vec![
            "--config_dir".into(),
            self.base_conf_dir().display().to_string(),
        ];
        match &self.pathspace {
            Some(name) => args.extend(["-N".into(), name.clone()]),
            None => args.extend(["--vty_socket".into(), self.run_dir.display().to_string()]),
        }
        args
    }

    fn reload_args(&self, mode: &str, file: &Path) -> Vec<String> {
        let mut args = vec![
            FRR_RELOAD.to_string(),
            mode.into(),
            "--confdir".into(),
            self.base_conf_dir().display().to_string(),
            "--rundir".into(),
            self.run_dir.display().to_string(),
        ];
        match &self.pathspace {
            Some(name) => args.extend(["--pathspace".into(), name.clone()]),
            None => args.extend(["--vty_socket".into(), self.run_dir.display().to_string()]),
        }
        if mode == "--reload" {
            // Everything to our output (no /var/log/frr/frr-reload.log).
            args.extend(["--stdout".into(), "--log-level".into(), "warning".into()]);
        } else {
            args.extend(["--log-level".into(), "error".into()]);
        }
        args.push(file.display().to_string());
        args
    }

    /// Run one vtysh command (`show ...`) and return its output.
    pub fn vtysh(&self, command: &str) -> Result<String, FrrError> {
        let mut args = self.vtysh_args();
        args.extend(["-c".into(), command.into()]);
        Ok(cmd::check(VTYSH, &args, SHOW_TIMEOUT, &[])?.stdout)
    }

    /// Run config commands in one vtysh session (`-c "configure terminal"
    /// -c ...`, each as given); an error when vtysh reports one failing.
    pub fn vtysh_config(&self, commands: &[&str]) -> Result<String, FrrError> {
        let mut args = self.vtysh_args();
        for c in commands {
            args.extend(["-c".into(), c.to_string()]);
        }
        Ok(cmd::check(VTYSH, &args, SHOW_TIMEOUT, &[])?.stdout)
    }

    /// `show running-config`. It holds the secrets: do not log it.
    pub fn running_config(&self) -> Result<String, FrrError> {
        self.vtysh("show running-config")
    }

    /// The routes FRR selected from OSPF or BGP, IPv4 and IPv6, with
    /// whether zebra installed them in the kernel.
    pub fn learned_routes(&self) -> Result<Vec<LearnedRoute>, FrrError> {
        let mut out = Vec::new();
        for command in ["show ip route json", "show ipv6 route json"] {
            let json = self.vtysh(command)?;
            out.extend(routes::parse(&json).map_err(|detail| FrrError::Parse {
                command: command.into(),
                detail,
            })?);
        }
        Ok(out)
    }

    /// What applying `config` would change (frr-reload.py `--test`).
    pub fn diff(&self, config: &str) -> Result<Applied, FrrError> {
        let config = match self.daemon_hostname()? {
            Some(host) => with_hostname(config, &host),
            None => config.to_string(),
        };
        let tmp = self.write_temp(&config)?;
        self.test(tmp.path(), &secrets_in(&config))
    }

    /// The hostname FRR's daemons run with. A daemon takes it once, at
    /// start: from the config file it is started with (`-f`), else from
    /// the system (uname). vtysh keeps `hostname` to itself (from
    /// `vtysh.conf`, else uname) and never passes it on, so no reload can
    /// change the daemons' one: a config converges only with theirs.
    ///
    /// Read from `show running-config`, which has a `hostname` line from
    /// vtysh and one from each daemon (equal ones merged): the one that is
    /// not vtysh's, or vtysh's when there is no other. None: no line.
    pub fn daemon_hostname(&self) -> Result<Option<String>, FrrError> {
        let running = self.running_config()?;
        let vtysh_own = match vtysh_conf_hostname(&self.vtysh_conf_file())? {
            Some(h) => Some(h),
            // uname's nodename, as vtysh takes it.
            None => fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string()),
        };
        Ok(pick_daemon_hostname(&running, vtysh_own.as_deref()))
    }

    /// Make `config` the running config and `frr.conf`, without restarting
    /// any daemon. When the running config already says the same, nothing
    /// is written and nothing reloaded (`changed: false`). After a reload
    /// the running config is compared again: a part FRR did not take (say,
    /// for a daemon that is not running) is [`FrrError::NotApplied`].
    ///
    /// The hostname is the one thing a reload cannot change: the config's
    /// `hostname` line is replaced by the daemons' own
    /// ([`Frr::daemon_hostname`]; the system's, unless they were started
    /// with a config naming another), and `vtysh.conf` made to carry it
    /// too, or frr-reload would see a hostname difference on every call.
    pub fn apply(&self, config: &str) -> Result<Applied, FrrError> {
        let config = &match self.daemon_hostname()? {
            Some(host) => with_hostname(config, &host),
            None => config.to_string(),
        };
        let secrets = secrets_in(config);
        if let Some(host) = config
            .lines()
            .find_map(|l| l.strip_prefix("hostname "))
            .map(str::trim)
        {
            self.ensure_vtysh_conf(host)?;
        }
        let tmp = self.write_temp(config)?;
        let diff = self.test(tmp.path(), &secrets)?;
        if !diff.changed {
            return Ok(diff);
        }
        let conf = self.conf_file();
        self.write_temp(config)?
            .persist(&conf)
            .map_err(|e| FrrError::Io {
                path: conf.clone(),
                source: e.error,
            })?;
        let args = self.reload_args("--reload", &conf);
        cmd::check(PYTHON, &args, RELOAD_TIMEOUT, &secrets)?;
        // frr-reload.py can succeed without doing everything (commands for
        // a daemon that is not running are dropped): check against our copy
        // (with a pathspace it rewrites frr.conf from the running config).
        let left = self.test(tmp.path(), &secrets)?;
        if left.changed {
            let remaining = left.removed.into_iter().chain(left.added).collect();
            return Err(FrrError::NotApplied { remaining });
        }
        Ok(diff)
    }

    fn test(&self, file: &Path, secrets: &[String]) -> Result<Applied, FrrError> {
        let args = self.reload_args("--test", file);
        let out = cmd::run(PYTHON, &args, RELOAD_TIMEOUT, secrets)?;
        if out.status != 0 {
            return Err(cmd::failed(PYTHON, &args, &out, secrets));
        }
        Ok(parse_test(&out.stdout))
    }

    /// A new file in `conf_dir` holding `config`, owned by frr, mode 0640.
    fn write_temp(&self, config: &str) -> Result<tempfile::NamedTempFile, FrrError> {
        let io = |source| FrrError::Io {
            path: self.conf_dir.clone(),
            source,
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".frr.conf.")
            .tempfile_in(&self.conf_dir)
            .map_err(io)?;
        let f = tmp.as_file_mut();
        f.write_all(config.as_bytes()).map_err(io)?;
        f.set_permissions(fs::Permissions::from_mode(0o640))
            .map_err(io)?;
        if let Some((uid, gid)) = frr_ids() {
            std::os::unix::fs::fchown(&*f, Some(uid), Some(gid)).map_err(io)?;
        }
        f.sync_all().map_err(io)?;
        Ok(tmp)
    }

    /// `vtysh.conf` with `hostname HOST` and the integrated config, the
    /// rest kept; rewritten (atomically, owner and mode kept) only if needed.
    fn ensure_vtysh_conf(&self, host: &str) -> Result<(), FrrError> {
        let path = self.vtysh_conf_file();
        let io = |source| FrrError::Io {
            path: path.clone(),
            source,
        };
        let old = match fs::read_to_string(&path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e)),
        };
        let mut lines: Vec<String> = old
            .as_deref()
            .unwrap_or("")
            .lines()
            .filter(|l| {
                let t = l.trim();
                !t.starts_with("hostname ") && t != "no service integrated-vtysh-config"
            })
            .map(str::to_string)
            .collect();
        if !lines
            .iter()
            .any(|l| l.trim() == "service integrated-vtysh-config")
        {
            lines.push("service integrated-vtysh-config".into());
        }
        lines.push(format!("hostname {host}"));
        let new = lines.join("\n") + "\n";
        if old.as_deref() == Some(new.as_str()) {
            return Ok(());
        }
        let (mode, owner) = match fs::metadata(&path) {
            Ok(m) => (m.mode() & 0o7777, Some((m.uid(), m.gid()))),
            Err(_) => (0o640, frr_ids()),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".vtysh.conf.")
            .tempfile_in(&self.conf_dir)
            .map_err(io)?;
        let f = tmp.as_file_mut();
        f.write_all(new.as_bytes()).map_err(io)?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&*f, Some(uid), Some(gid)).map_err(io)?;
        }
        f.sync_all().map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// The `frr` user and group, when they exist.
fn frr_ids() -> Option<(u32, u32)> {
    let user = nix::unistd::User::from_name("frr").ok()??;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// frr-reload.py `--test` output: "Lines To Delete" / "Lines To Add"
/// sections, each under a line of `=`; nothing at all when equal.
fn parse_test(stdout: &str) -> Applied {
    let mut applied = Applied::default();
    let mut section: Option<bool> = None; // Some(true): adding
    for l in stdout.lines() {
        match l.trim() {
            "Lines To Delete" => section = Some(false),
            "Lines To Add" => section = Some(true),
            "" => {}
            t if t.chars().all(|c| c == '=') => {}
            _ => match section {
                Some(true) => applied.added.push(l.to_string()),
                Some(false) => applied.removed.push(l.to_string()),
                None => {}
            },
        }
    }
    applied.changed = !applied.added.is_empty() || !applied.removed.is_empty();
    applied
}

/// `text` without the secrets of `config` (for callers that log outputs).
pub fn redact_secrets(text: &str, config: &str) -> String {
    redact(text, &secrets_in(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frr_reload_test_output() {
        let out = "\nLines To Delete\n===============\nno hostname a\ninterface lo\n no ip ospf area 0\n\nLines To Add\n============\nip route 10.0.0.0/24 blackhole\n";
        let a = parse_test(out);
        assert!(a.changed);
        assert_eq!(
            a.removed,
            ["no hostname a", "interface lo", " no ip ospf area 0"]
        );
        assert_eq!(a.added, ["ip route 10.0.0.0/24 blackhole"]);
        assert_eq!(parse_test(""), Applied::default());
    }

    #[test]
    fn vtysh_conf_gets_the_hostname_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let frr = Frr {
            conf_dir: dir.path().into(),
            run_dir: dir.path().into(),
            pathspace: None,
        };
        let path = frr.vtysh_conf_file();
        frr.ensure_vtysh_conf("n1").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, "service integrated-vtysh-config\nhostname n1\n");

        fs::write(
            &path,
            "! mine\nno service integrated-vtysh-config\nhostname old\nusername x nopassword\n",
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        frr.ensure_vtysh_conf("n2").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "! mine\nusername x nopassword\nservice integrated-vtysh-config\nhostname n2\n"
        );
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // Unchanged: not rewritten.
        let before = fs::metadata(&path).unwrap().ino();
        frr.ensure_vtysh_conf("n2").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().ino(), before);
    }

    #[test]
    fn pathspace_paths() {
        let f = Frr::for_pathspace("n1");
        assert_eq!(f.conf_file(), Path::new("/etc/frr/n1/frr.conf"));
        assert_eq!(f.base_conf_dir(), Path::new("/etc/frr"));
        let args = f.reload_args("--test", Path::new("/x"));
        assert!(
            args.windows(2).any(|w| w == ["--pathspace", "n1"]),
            "{args:?}"
        );
        assert!(
            args.windows(2).any(|w| w == ["--confdir", "/etc/frr"]),
            "{args:?}"
        );
        assert_eq!(Frr::default().conf_file(), Path::new("/etc/frr/frr.conf"));
    }
}
