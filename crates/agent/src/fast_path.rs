//! The eBPF fast path (`ferry_ebpf`): loaded and pinned once per ferryd
//! start, attached to the node's interface and to every pod's host veth
//! (the plugin attaches it to new pods itself), and fed the cluster's pod
//! CIDRs. When the kernel cannot run it, ferryd says so once and the
//! node works as before, through the IP stack.

use std::path::{Path, PathBuf};

use ferry_ebpf::FastPath;
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
    /// The VXLAN device, when there is one: pod packets decapsulated there
    /// take the fast path as those arriving on the uplink do (so a flow is
    /// untracked on both nodes, as without the tunnel). Set at apply time,
    /// once the device has an ifindex.
    pub tunnel: Option<u32>,
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
            match load(&plan.dir) {
                Ok(fp) => {
                    tracing::info!(dir = %plan.dir.display(), id = ?fp.prog_id().ok(), "eBPF fast path loaded");
                    self.loaded = Some(fp);
                    changed = true;
                }
                Err(e) => {
                    let why = format!("eBPF fast path off: {e}");
                    tracing::warn!("{why}");
                    self.unavailable = Some(why.clone());
                    return Err(why);
                }
            }
        }
        let fp = self.loaded.as_ref().expect("loaded above");
        changed |= fp.set_cidrs(&plan.cidrs).map_err(|e| e.to_string())?;
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
        targets.extend(plan.tunnel);
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

    /// Counters, when the program is loaded.
    pub fn stats(&self) -> Option<ferry_ebpf::Stats> {
        self.loaded.as_ref().and_then(|f| f.stats().ok())
    }
}

fn load(dir: &Path) -> Result<FastPath, ferry_ebpf::EbpfError> {
    let bpffs = Path::new("/sys/fs/bpf");
    if dir.starts_with(bpffs) {
        ferry_ebpf::ensure_bpffs(bpffs)?;
    }
    FastPath::load(dir)
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
