//! ospf/bgp: the FRR config rendered from the desired state plus the
//! secrets, applied through ferry-frr (frr-reload, never a restart) only
//! when it changes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ferry_frr::{ExternalAudit, Frr, FrrSpec, LearnedRoute, Mode};

use crate::cli::Opts;
use crate::AgentError;

/// The first line of every config ferryd renders (ferry-frr's header).
const RENDERED_MARK: &str = "Rendered by ferryd";

/// Whether `frr.conf` is ferryd's: as rendered, or as FRR wrote it back
/// after a reload (the header comment gone, ferry's route-maps still there).
fn is_ours(text: &str) -> bool {
    text.lines()
        .next()
        .is_some_and(|l| l.contains(RENDERED_MARK))
        || [ferry_frr::ROUTE_MAP_V4, ferry_frr::ROUTE_MAP_V6]
            .iter()
            .any(|m| {
                text.lines()
                    .any(|l| l.trim() == format!("route-map {m} permit 10"))
            })
}

/// ferryd's handle on the node's FRR.
#[derive(Debug)]
pub struct FrrAgent {
    frr: Frr,
    ospf_key_file: Option<PathBuf>,
    bgp_password_file: Option<PathBuf>,
    /// The config last applied successfully, and its spec.
    applied: Option<String>,
    applied_spec: Option<FrrSpec>,
    /// When FRR last changed by ferryd's hand (first apply, a reload, a
    /// repair): the OSPF audit waits `audit_settle` after it.
    changed_at: Option<Instant>,
    audit_settle: Duration,
}

/// Which FRR instance the flags name: a pathspace, the system one, with
/// `--frr-conf-dir` / `--frr-run-dir` overriding either.
pub fn frr_from_opts(o: &Opts) -> Frr {
    let mut frr = match &o.frr_pathspace {
        Some(name) => Frr::for_pathspace(name),
        None => Frr::system(),
    };
    if let Some(dir) = &o.frr_conf_dir {
        frr.conf_dir = dir.clone();
    }
    if let Some(dir) = &o.frr_run_dir {
        frr.run_dir = dir.clone();
    }
    frr
}

/// Reads a secret (key/password) file: its first line, trimmed. The
/// content never appears in an error or a log.
pub fn read_secret(path: &Path) -> Result<String, AgentError> {
    let secret_err = |reason: String| AgentError::Secret {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| secret_err(e.to_string()))?;
    let first = text.lines().next().unwrap_or("").trim().to_string();
    if first.is_empty() {
        return Err(secret_err("empty".into()));
    }
    Ok(first)
}

/// The node's IPv6 forwarding now (`net.ipv6.conf.all.forwarding`);
/// None when it cannot be read (no IPv6).
pub fn ipv6_forwarding() -> Option<bool> {
    ferry_netns::sysctl::read("net.ipv6.conf.all.forwarding")
        .ok()
        .map(|v| v.trim() != "0")
}

/// The ferry-frr spec for a plan and secrets (IPv6 forwarding not known:
/// [`FrrAgent::apply`] fills it in).
/// `spec` with the secret its mode uses (only that one).
pub fn with_secrets(
    spec: &FrrSpec,
    ospf_key: Option<String>,
    bgp_password: Option<String>,
) -> FrrSpec {
    let bgp = spec.mode == Mode::Bgp;
    FrrSpec {
        ospf_auth_key: if bgp { None } else { ospf_key },
        bgp_password: if bgp { bgp_password } else { None },
        ..spec.clone()
    }
}

impl FrrAgent {
    pub fn new(o: &Opts) -> FrrAgent {
        FrrAgent {
            frr: frr_from_opts(o),
            ospf_key_file: o.ospf_auth_key_file.clone(),
            bgp_password_file: o.bgp_password_file.clone(),
            applied: None,
            applied_spec: None,
            changed_at: None,
            audit_settle: o.ospf_audit_settle,
        }
    }

    pub fn frr(&self) -> &Frr {
        &self.frr
    }

    /// Renders the config for `plan` (secrets read now, so a rotated
    /// Secret is picked up) and applies it when it differs from the last
    /// one applied, or always with `force`. Returns whether FRR changed.
    /// IPv6 forwarding is read now: without an IPv6 pod CIDR the config
    /// keeps it as it is.
    ///
    /// Before the first apply, FRR must answer (`vtysh -c "show version"`):
    /// until it does, [`AgentError::NotReady`] (ferryd waits, and writes
    /// no conflist meanwhile). FRR runs beside ferryd, started at the same
    /// time, not before it.
    pub fn apply(&mut self, plan: &FrrSpec, force: bool) -> Result<bool, AgentError> {
        if self.applied.is_none() {
            if let Err(e) = self.frr.vtysh("show version") {
                return Err(AgentError::NotReady(format!("FRR is not up yet ({e})")));
            }
        }
        let bgp = plan.mode == Mode::Bgp;
        let key = match (&self.ospf_key_file, bgp) {
            (Some(p), false) => Some(read_secret(p)?),
            _ => None,
        };
        let password = match (&self.bgp_password_file, bgp) {
            (Some(p), true) => Some(read_secret(p)?),
            _ => None,
        };
        let mut spec = with_secrets(plan, key, password);
        spec.ipv6_forwarding = ipv6_forwarding();
        spec.validate()
            .map_err(|e| AgentError::Config(format!("FRR: {e}")))?;
        let config = ferry_frr::render(&spec);
        if !force && self.applied.as_deref() == Some(config.as_str()) {
            return Ok(false);
        }
        let applied = self
            .frr
            .apply(&config)
            .map_err(|e| AgentError::Frr(e.to_string()))?;
        if applied.changed || self.changed_at.is_none() {
            self.changed_at = Some(Instant::now());
        }
        if applied.changed {
            tracing::info!(
                added = applied.added.len(),
                removed = applied.removed.len(),
                peers = ?spec.mesh_peers(),
                "FRR config reloaded"
            );
        }
        self.applied = Some(config);
        self.applied_spec = Some(spec);
        Ok(applied.changed)
    }

    /// OSPF mode: checks that ospfd (ospf6d) advertises every own pod
    /// prefix that zebra has and the export route-map passes, as a
    /// self-originated AS-external-LSA. When one is missing, FRR has been
    /// left alone long enough ([`FrrAgent::audit_settle`], see
    /// [`audit_settled`]) and the prefix is in zebra, re-applies the
    /// family's redistribution (`no redistribute` / `redistribute`) and
    /// logs one warning. Returns what was missing when it repaired.
    /// Nothing before the first apply, nothing in BGP mode.
    pub fn audit_ospf(&mut self) -> Result<Option<ExternalAudit>, AgentError> {
        let Some(spec) = self.applied_spec.as_ref().filter(|s| s.mode == Mode::Ospf) else {
            return Ok(None);
        };
        let frr_err = |e: ferry_frr::FrrError| AgentError::Frr(e.to_string());
        let found = self.frr.external_audit(spec).map_err(frr_err)?;
        if found.is_empty() {
            return Ok(None);
        }
        let started: Vec<SystemTime> = ["ospfd", "ospf6d"]
            .iter()
            .filter_map(|d| self.frr.daemon_started(d))
            .collect();
        let since_change = self.changed_at.map_or(Duration::ZERO, |t| t.elapsed());
        if !audit_settled(since_change, &started, SystemTime::now(), self.audit_settle) {
            tracing::debug!(?found, "OSPF: own prefixes not advertised yet; settling");
            return Ok(None);
        }
        for (v6, m) in [(false, &found.missing_v4), (true, &found.missing_v6)] {
            if !m.is_empty() {
                self.frr.reapply_redistribution(spec, v6).map_err(frr_err)?;
            }
        }
        self.changed_at = Some(Instant::now());
        tracing::warn!(
            missing_v4 = %nets(&found.missing_v4),
            missing_v6 = %nets(&found.missing_v6),
            "OSPF: own pod prefixes in zebra had no self-originated AS-external-LSA; \
             re-applied the redistribution (no redistribute / redistribute)"
        );
        Ok(Some(found))
    }

    /// OSPF mode: `Some(why)` while ospfd's (ospf6d's) adjacencies are
    /// still forming since FRR started (see [`ferry_frr::settled`]), or
    /// while FRR does not answer. `None` in BGP mode, before the first
    /// apply, and once settled. `expect_neighbors`: other nodes exist.
    pub fn unsettled(&self, expect_neighbors: bool) -> Option<String> {
        let spec = self.applied_spec.as_ref()?;
        match self.frr.ospf_adjacency(spec, expect_neighbors) {
            Ok(why) => why,
            Err(e) => Some(format!("FRR: {e}")),
        }
    }

    /// What OSPF/BGP learned (for `status`).
    pub fn learned_routes(&self) -> Result<Vec<LearnedRoute>, AgentError> {
        self.frr
            .learned_routes()
            .map_err(|e| AgentError::Frr(e.to_string()))
    }
}

/// `a,b` (for a log line).
fn nets(nets: &[ipnet::IpNet]) -> String {
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether a missing AS-external-LSA is ospfd's fault rather than a
/// moment of change: FRR's config unchanged by ferryd for `settle`, and
/// every OSPF daemon (`started`: their start times, as known) up for
/// `settle` too. A graceful restart originates no LSA until it ends, at
/// the latest when the grace period ends; FRR 8.4 does not show that it
/// is in one (`show ip ospf json` has no field for it), so `settle` must
/// exceed the grace period.
pub fn audit_settled(
    since_change: Duration,
    started: &[SystemTime],
    now: SystemTime,
    settle: Duration,
) -> bool {
    since_change >= settle
        && started
            .iter()
            .all(|t| now.duration_since(*t).is_ok_and(|up| up >= settle))
}

/// Uninstall: when `frr.conf` is one ferryd rendered, reduce the running
/// FRR to the config's preamble (hostname, defaults: no routing, no
/// blackholes) and remove the file. FRR not running is not an error: the
/// file still goes. Returns whether there was a config of ours.
pub fn remove(frr: &Frr) -> Result<bool, AgentError> {
    let path = frr.conf_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(AgentError::io("read", &path, e)),
    };
    if !is_ours(&text) {
        tracing::info!(path = %path.display(), "FRR config not written by ferryd; left alone");
        return Ok(false);
    }
    let preamble: String = text
        .lines()
        .take_while(|l| l.trim() != "!")
        .map(|l| format!("{l}\n"))
        .collect();
    if let Err(e) = frr.apply(&preamble) {
        tracing::warn!(error = %e, "could not withdraw ferry's FRR config (is FRR running?)");
    }
    crate::install::remove_file(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_first_line_trimmed_and_never_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "s3cr3t\n").unwrap();
        assert_eq!(read_secret(&p).unwrap(), "s3cr3t");
        std::fs::write(&p, "  \n").unwrap();
        let e = read_secret(&p).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = read_secret(&dir.path().join("missing")).unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"));
    }

    #[test]
    fn only_the_modes_secret_is_used() {
        let mut plan = FrrSpec::new(
            Mode::Ospf,
            "k8s-1",
            "172.16.97.75".parse().unwrap(),
            "ens33",
            "172.16.97.75".parse().unwrap(),
            vec!["10.244.0.0/24".parse().unwrap()],
        );
        plan.advertise = ferry_frr::Advertise::Pods;
        plan.peers = vec!["172.16.97.76".parse().unwrap()];
        let s = with_secrets(&plan, Some("k".into()), Some("p".into()));
        assert_eq!(s.mode, Mode::Ospf);
        assert_eq!(s.advertise, ferry_frr::Advertise::Pods);
        assert_eq!(s.ospf_auth_key.as_deref(), Some("k"));
        assert_eq!(s.bgp_password, None, "only the mode's secret");
        assert!(s.validate().is_ok());
        let text = ferry_frr::render(&s);
        assert!(text.lines().next().unwrap().contains(RENDERED_MARK));
        plan.mode = Mode::Bgp;
        let s = with_secrets(&plan, Some("k".into()), Some("p".into()));
        assert_eq!(
            (s.mode, s.ospf_auth_key, s.bgp_password.as_deref()),
            (Mode::Bgp, None, Some("p"))
        );
    }

    #[test]
    fn frr_instance_from_flags() {
        use clap::Parser;
        let cli = crate::cli::Cli::parse_from(["ferryd", "--frr-pathspace", "n1"]);
        let f = frr_from_opts(&cli.opts);
        assert_eq!(f.conf_dir, PathBuf::from("/etc/frr/n1"));
        assert_eq!(f.pathspace.as_deref(), Some("n1"));
        let cli = crate::cli::Cli::parse_from([
            "ferryd",
            "--frr-conf-dir",
            "/shared/frr",
            "--frr-run-dir",
            "/shared/run",
        ]);
        let f = frr_from_opts(&cli.opts);
        assert_eq!(f.conf_dir, PathBuf::from("/shared/frr"));
        assert_eq!(f.run_dir, PathBuf::from("/shared/run"));
        assert_eq!(f.pathspace, None);
    }

    #[test]
    fn the_audit_waits_for_quiet_and_for_old_daemons() {
        let settle = Duration::from_secs(130);
        let now = SystemTime::now();
        let ago = |s: u64| now - Duration::from_secs(s);
        assert!(audit_settled(settle, &[ago(200)], now, settle));
        assert!(audit_settled(settle, &[], now, settle), "start unknown");
        assert!(!audit_settled(
            Duration::from_secs(5),
            &[ago(200)],
            now,
            settle
        ));
        // ospfd restarted 10 s ago: maybe still in its graceful restart.
        assert!(!audit_settled(settle, &[ago(200), ago(10)], now, settle));
        // A start time in the future (clock stepped back): not settled.
        assert!(!audit_settled(
            settle,
            &[now + Duration::from_secs(5)],
            now,
            settle
        ));
    }

    #[test]
    fn remove_leaves_foreign_configs_alone() {
        let dir = tempfile::tempdir().unwrap();
        let frr = Frr {
            conf_dir: dir.path().into(),
            run_dir: dir.path().join("run"),
            pathspace: None,
        };
        assert!(!remove(&frr).unwrap(), "nothing there");
        std::fs::write(frr.conf_file(), "hostname mine\nrouter ospf\n").unwrap();
        assert!(!remove(&frr).unwrap());
        assert!(frr.conf_file().exists());
        assert!(is_ours("! Rendered by ferryd (ferry-frr)\nhostname a\n"));
        assert!(is_ours(
            "frr version 8.4.4\nhostname a\n!\nroute-map FERRY-EXPORT-V4 permit 10\n match ip address prefix-list FERRY-PODS-V4\nexit\n"
        ));
        assert!(!is_ours("hostname a\nroute-map OTHER permit 10\n"));
    }
}
