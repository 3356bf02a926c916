//! The eBPF fast path (`ferry_ebpf`): loaded and pinned once per ferryd
//! start, attached to the node's interface and to every pod's host veth
//! (the plugin attaches it to new pods itself), and fed the cluster's pod
//! CIDRs. When the kernel cannot run it, ferryd says so once and the
//! node works as before, through the IP stack.
//!
//! NetworkPolicy is enforced in nftables at the forward hook, which the
//! fast path skips: every pod isolated by a policy (ingress or egress) on
//! this node is excluded from it ([`FastPathAgent::set_excluded`]), and
//! the program then leaves all packets from or to that pod to the stack.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ferry_ebpf::{FastPath, Pinned};
use ferry_netlink::Handle;
use ipnet::IpNet;

use crate::AgentError;

/// What the fast path should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastPathPlan {
    /// Pin directory (on a bpf file system), also written into the conflist.
    pub dir: PathBuf,
    /// The node's interface.
    pub uplink: u32,
    /// The cluster's pod CIDRs (both families).
    pub cidrs: Vec<IpNet>,
    /// The VXLAN device, when there is one: the program encapsulates to
    /// and decapsulates from its peers itself, and runs on the device too
    /// (what the device still decapsulates takes the fast path as what
    /// arrives on the uplink does, so a flow is untracked on both nodes,
    /// as without the tunnel). Set at apply time, once the device has an
    /// ifindex.
    pub tunnel: Option<ferry_ebpf::VxlanTunnel>,
}

impl FastPathPlan {
    pub fn new(dir: PathBuf, uplink: u32, cidrs: &[IpNet]) -> FastPathPlan {
        let cidrs = cidrs.iter().map(IpNet::trunc).collect();
        FastPathPlan {
            dir,
            uplink,
            cidrs,
            tunnel: None,
        }
    }
}

/// The loaded program, or why there is none.
#[derive(Debug, Default)]
pub struct FastPathAgent {
    loaded: Option<FastPath>,
    /// Why loading failed (reported once, not retried).
    unavailable: Option<String>,
    /// The plan last applied.
    applied: Option<FastPathPlan>,
    /// The addresses to exclude, once told: written when the program is
    /// loaded (until then, a restarted ferryd's pinned exclusions stay).
    excluded: Option<BTreeSet<IpAddr>>,
}

/// Host veths the plugin made: their alias starts so.
const HOST_VETH_ALIAS: &str = "ferry/";

impl FastPathAgent {
    /// Makes the node match `plan`. Returns whether anything changed, or
    /// (as a warning, not an error) why the fast path is unavailable.
    pub fn apply(&mut self, plan: &FastPathPlan, full: bool) -> Result<bool, String> {
        if let Some(why) = &self.unavailable {
            return Err(why.clone());
        }
        if !full && self.applied.as_ref() == Some(plan) {
            return Ok(false);
        }
        let mut changed = false;
        if self.loaded.is_none() {
            match acquire(&plan.dir) {
                Ok(fp) => {
                    self.loaded = Some(fp);
                    changed = true;
                }
                Err(why) => {
                    tracing::warn!("{why}");
                    self.unavailable = Some(why.clone());
                    return Err(why);
                }
            }
        }
        let fp = self.loaded.as_ref().expect("loaded above");
        changed |= fp.set_cidrs(&plan.cidrs).map_err(|e| e.to_string())?;
        changed |= fp
            .set_tunnel(plan.tunnel.as_ref())
            .map_err(|e| e.to_string())?;
        // Before the program is attached anywhere below.
        if let Some(want) = &self.excluded {
            changed |= fp.set_excluded(want).map_err(|e| e.to_string())?;
        }
        let mut h = Handle::new().map_err(|e| e.to_string())?;
        let id = fp.prog_id().map_err(|e| e.to_string())?;
        // The uplink and every pod's host veth run this very program (a
        // restarted ferryd's new program replaces the old one in place).
        let mut veths = Vec::new();
        for link in h.links().map_err(|e| e.to_string())? {
            if link
                .alias
                .as_deref()
                .is_some_and(|a| a.starts_with(HOST_VETH_ALIAS))
            {
                veths.push(link.index);
            }
        }
        // The pod map lists exactly the host veths there are (a DEL the
        // plugin did not finish can leave a stale entry behind).
        let pods = fp.pod_ifaces();
        let listed = pods.list().map_err(|e| e.to_string())?;
        for gone in listed.iter().filter(|i| !veths.contains(i)) {
            pods.remove(*gone).map_err(|e| e.to_string())?;
            changed = true;
        }
        for new in veths.iter().filter(|i| !listed.contains(i)) {
            pods.insert(*new).map_err(|e| e.to_string())?;
            changed = true;
        }
        let mut targets = vec![plan.uplink];
        targets.extend(plan.tunnel.as_ref().map(|t| t.ifindex));
        targets.extend(veths);
        for ifindex in targets {
            if h.bpf_ingress_prog_id(ifindex).map_err(|e| e.to_string())? != Some(id) {
                match h.attach_bpf_ingress(ifindex, fp.prog(), ferry_ebpf::PROG_NAME) {
                    Ok(()) => changed = true,
                    // A pod's veth gone since the listing: nothing to do.
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        if let Some(old) = self.applied.as_ref().filter(|o| o.uplink != plan.uplink) {
            let _ = h.detach_bpf_ingress(old.uplink);
        }
        self.applied = Some(plan.clone());
        Ok(changed)
    }

    /// Excludes exactly `addrs` (the node's pods isolated by a
    /// NetworkPolicy) from the fast path: packets from or to them take the
    /// stack and its netfilter hooks. Returns whether the maps changed.
    /// Without a loaded program it only remembers them (for the load to
    /// come, if any) and returns `Ok(false)`: the stack has every packet
    /// then anyway.
    pub fn set_excluded(&mut self, addrs: &BTreeSet<IpAddr>) -> Result<bool, String> {
        self.excluded = Some(addrs.clone());
        let Some(fp) = &self.loaded else {
            tracing::debug!(
                count = addrs.len(),
                why = self.unavailable.as_deref().unwrap_or("not loaded yet"),
                "eBPF fast path not running: nothing to exclude from it"
            );
            return Ok(false);
        };
        let changed = fp.set_excluded(addrs).map_err(|e| e.to_string())?;
        if changed {
            tracing::debug!(count = addrs.len(), "fast-path exclusions set");
        }
        Ok(changed)
    }

    /// Counters, when the program is loaded.
    pub fn stats(&self) -> Option<ferry_ebpf::Stats> {
        self.loaded.as_ref().and_then(|f| f.stats().ok())
    }
}

/// Loads the program and pins it (with its maps) in `dir`, mounting the
/// bpf file system first when `dir` is below `/sys/fs/bpf`: ferryd's load,
/// and `ferryd prepare`'s (which pins it for a ferryd that cannot load).
pub(crate) fn load(dir: &Path) -> Result<FastPath, ferry_ebpf::EbpfError> {
    mount_bpffs(dir)?;
    FastPath::load(dir)
}

/// Mounts the bpf file system on `/sys/fs/bpf` when `dir` is below it and
/// it is not there.
fn mount_bpffs(dir: &Path) -> Result<(), ferry_ebpf::EbpfError> {
    let bpffs = Path::new("/sys/fs/bpf");
    if dir.starts_with(bpffs) {
        ferry_ebpf::ensure_bpffs(bpffs)?;
    }
    Ok(())
}

/// ferryd's program: the one pinned in `dir` when it is this build's
/// (`ferryd prepare` pinned it, or an earlier ferryd of this build), else
/// its own, loaded and pinned there in place of whatever was (its maps
/// are kept either way). Says which in one log line; the error is the
/// `eBPF fast path off: ...` line to report.
fn acquire(dir: &Path) -> Result<FastPath, String> {
    mount_bpffs(dir).map_err(|e| format!("eBPF fast path off: {e}"))?;
    let not_used = match FastPath::open_pinned(dir) {
        Ok(Pinned::Usable(fp)) => {
            return announce(fp, dir, |id| {
                format!("eBPF fast path: using the program ferryd prepare pinned (id {id})")
            })
        }
        Ok(Pinned::Missing) => "no program pinned".to_string(),
        Ok(Pinned::Foreign(why)) => why,
        // Cannot even look (no CAP_BPF, a map of another shape): the load
        // says why, in the same words.
        Err(e) => format!("the pin directory could not be read: {e}"),
    };
    let fp = FastPath::load(dir).map_err(|e| off_message(&e, dir, &not_used))?;
    announce(fp, dir, |id| {
        format!("eBPF fast path: loaded (id {id}; {not_used})")
    })
}

/// Logs `line(program id)` for the program ferryd goes on with.
fn announce(
    fp: FastPath,
    dir: &Path,
    line: impl FnOnce(u32) -> String,
) -> Result<FastPath, String> {
    let id = fp
        .prog_id()
        .map_err(|e| format!("eBPF fast path off: {e}"))?;
    tracing::info!(dir = %dir.display(), "{}", line(id));
    Ok(fp)
}

/// The `eBPF fast path off: ...` line; when only a privileged process can
/// load the program, it names the step that does.
fn off_message(e: &ferry_ebpf::EbpfError, dir: &Path, not_used: &str) -> String {
    if !e.needs_cap_sys_admin() {
        return format!("eBPF fast path off: {e}");
    }
    format!(
        "eBPF fast path off: {e}; and {} holds no program of this build ({not_used}): `ferryd \
         prepare` (privileged: the manifests' init container) loads and pins it there for \
         ferryd, with the same --bpf-dir",
        dir.display()
    )
}

/// What `status` shows of the fast path, read back from the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Interfaces running ferry's filter.
    pub attached: Vec<String>,
    /// The pinned counters; `None` when nothing is pinned in the directory.
    pub stats: Option<ferry_ebpf::Stats>,
}

/// Reads the fast path's state: the interfaces with ferry's filter, and
/// the counters pinned in `dir`.
pub fn observe(dir: &Path) -> Result<Observed, AgentError> {
    let mut h = Handle::new().map_err(|e| AgentError::netlink("open", e))?;
    let mut attached = Vec::new();
    for link in h
        .links()
        .map_err(|e| AgentError::netlink("list links", e))?
    {
        if h.bpf_ingress_prog_id(link.index).ok().flatten().is_some() {
            attached.push(link.name);
        }
    }
    let stats = ferry_ebpf::pinned_stats(dir).map_err(|e| AgentError::Config(e.to_string()))?;
    Ok(Observed { attached, stats })
}

/// `uninstall` (and a start with `--fast-path=false`): detaches ferry's
/// filter from every interface (a link without it answers "not there") and
/// removes the pins. Returns how many interfaces it was detached from.
pub fn remove(dir: &Path) -> Result<usize, AgentError> {
    let mut h = Handle::new().map_err(|e| AgentError::netlink("open", e))?;
    let mut detached = 0;
    for link in h
        .links()
        .map_err(|e| AgentError::netlink("list links", e))?
    {
        if h.detach_bpf_ingress(link.index)
            .map_err(|e| AgentError::netlink(format!("detach from {}", link.name), e))?
        {
            detached += 1;
        }
    }
    ferry_ebpf::unpin(dir).map_err(|e| AgentError::Config(e.to_string()))?;
    Ok(detached)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(s: &[&str]) -> BTreeSet<IpAddr> {
        s.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn exclusions_without_a_loaded_program_are_kept_for_the_load() {
        let mut a = FastPathAgent::default();
        assert_eq!(
            a.set_excluded(&addrs(&["10.244.0.5", "fd00::5"])),
            Ok(false)
        );
        assert_eq!(a.set_excluded(&addrs(&["10.244.0.6"])), Ok(false));
        assert_eq!(a.excluded, Some(addrs(&["10.244.0.6"])), "the latest set");
    }

    #[test]
    fn exclusions_on_an_unavailable_fast_path_are_a_no_op() {
        let mut a = FastPathAgent {
            unavailable: Some("eBPF fast path off: no BTF".into()),
            ..FastPathAgent::default()
        };
        assert_eq!(a.set_excluded(&addrs(&["10.244.0.5"])), Ok(false));
        assert!(a.loaded.is_none());
        // The apply still reports why, as before.
        let plan = FastPathPlan::new("/sys/fs/bpf/x".into(), 1, &[]);
        assert_eq!(
            a.apply(&plan, true),
            Err("eBPF fast path off: no BTF".into())
        );
    }

    #[test]
    fn the_off_line_names_prepare_only_when_prepare_would_help() {
        let dir = Path::new("/sys/fs/bpf/ferry");
        let denied = ferry_ebpf::EbpfError::ModuleBtfDenied {
            module: "nf_conntrack".into(),
        };
        let line = off_message(&denied, dir, "no program pinned");
        assert!(line.starts_with("eBPF fast path off: "), "{line}");
        assert!(line.contains("CAP_SYS_ADMIN"), "{line}");
        assert!(
            line.contains("/sys/fs/bpf/ferry holds no program of this build (no program pinned)"),
            "{line}"
        );
        assert!(line.contains("`ferryd prepare`"), "{line}");
        let old = ferry_ebpf::EbpfError::Unsupported("Linux 5.15 is older than 6.1".into());
        let line = off_message(&old, dir, "no program pinned");
        assert_eq!(
            line,
            "eBPF fast path off: eBPF fast path unsupported by this kernel: Linux 5.15 is older than 6.1"
        );
    }

    /// Pins removed on drop.
    struct Pins(PathBuf);

    impl Drop for Pins {
        fn drop(&mut self) {
            let _ = ferry_ebpf::unpin(&self.0);
        }
    }

    #[test]
    fn exclusions_reach_the_loaded_maps() {
        // Real bpf(2) on a real bpf file system: needs root.
        let pins = Pins(Path::new("/sys/fs/bpf").join(ferry_testkit::unique("agentx")));
        let mut a = FastPathAgent {
            loaded: Some(load(&pins.0).expect("loading the fast path")),
            ..FastPathAgent::default()
        };
        let want = addrs(&["10.244.0.5", "fd00:10:244::5"]);
        assert_eq!(a.set_excluded(&want), Ok(true));
        assert_eq!(a.set_excluded(&want), Ok(false), "already so");
        let fp = a.loaded.as_ref().unwrap();
        assert_eq!(fp.excluded().unwrap(), want);
        assert_eq!(a.set_excluded(&BTreeSet::new()), Ok(true));
        assert!(a.loaded.as_ref().unwrap().excluded().unwrap().is_empty());
    }
}
