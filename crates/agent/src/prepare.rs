//! `ferryd prepare`: the one privileged step, run once per pod start by a
//! small privileged init container (as Cilium's `mount-bpf-fs` and
//! `sysctlfix` are), so that ferryd's own containers need neither
//! `SYS_ADMIN` nor a writable `/proc/sys`:
//!
//! 1. the bpf file system on the host's `/sys/fs/bpf` when it is not
//!    mounted there (the manifest mounts that host path with
//!    `mountPropagation: Bidirectional`, so the mount is the host's and
//!    ferryd's containers, started after, see it); only with the fast path
//!    on and `--bpf-dir` below it. Failing is not fatal: ferryd then logs
//!    `eBPF fast path off: ...` once and works without it;
//! 2. the eBPF fast path, loaded and pinned in `--bpf-dir` with its maps
//!    (ferryd's own load, `fast_path::load`), when the fast path
//!    is on and the bpf file system is there: where `nf_conntrack` is a
//!    module (Debian's and Ubuntu's stock kernels), calling its kfuncs
//!    takes the module's BTF, which the kernel hands only to
//!    `CAP_SYS_ADMIN`; ferryd, with `NET_ADMIN` and `BPF` only, then uses
//!    this pinned program (it is this build's). `nf_conntrack` is loaded
//!    first when it is a module not loaded yet (`load_conntrack`).
//!    Failing is not fatal either: ferryd tries to load it itself;
//! 3. `net.ipv4.ip_forward=1` (what kubeadm's preflight asks of the node
//!    anyway), and `net.ipv6.conf.all.forwarding=1` only when this Node
//!    has an IPv6 podCIDR (turning it on elsewhere would stop the node
//!    accepting router advertisements). The Node is read from the API for
//!    at most [`PODCIDR_WAIT`]; without it IPv6 is left as it is (and
//!    ferryd reports it, should it be needed).
//!
//! Idempotent: what is already so is left alone, but for the program: a
//! fresh one replaces the pin on every run (over the same pinned maps, so
//! the CIDRs, the exclusions and the counters stay).

use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;

use crate::apply::{set_forwarding, IPV4_FORWARDING, IPV6_FORWARDING};
use crate::cli::Opts;
use crate::{discovery, kube_client, AgentError};

/// Where the host's bpf file system belongs.
pub const BPF_FS: &str = "/sys/fs/bpf";
/// How long `prepare` waits for its Node's podCIDRs (to tell whether IPv6
/// forwarding is needed).
pub const PODCIDR_WAIT: Duration = Duration::from_secs(30);

/// What `prepare` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The bpf file system was mounted (it was not there).
    pub bpffs_mounted: bool,
    /// Why the bpf file system is not there, when it is not.
    pub bpffs_missing: Option<String>,
    /// The id of the fast-path program loaded and pinned.
    pub fast_path: Option<u32>,
    /// Why it was not, when it was to be.
    pub fast_path_error: Option<String>,
    /// The sysctls turned on (they were off).
    pub sysctls: Vec<&'static str>,
}

/// Runs the privileged step. An error when IPv4 forwarding (or IPv6
/// forwarding that is needed) cannot be turned on.
pub async fn run(o: &Opts) -> Result<Prepared, AgentError> {
    let mut done = Prepared::default();
    if o.fast_path && o.bpf_dir.starts_with(BPF_FS) {
        match ferry_ebpf::ensure_bpffs(Path::new(BPF_FS)) {
            Ok(true) => {
                tracing::info!(path = BPF_FS, "bpf file system mounted");
                done.bpffs_mounted = true;
            }
            Ok(false) => tracing::info!(path = BPF_FS, "bpf file system already mounted"),
            Err(e) => {
                tracing::warn!(error = %e, "no bpf file system: the eBPF fast path will be off");
                done.bpffs_missing = Some(e.to_string());
            }
        }
    }
    if o.fast_path && done.bpffs_missing.is_none() {
        match load_conntrack(Path::new(CONNTRACK_SYSFS)) {
            Ok(true) => tracing::info!("nf_conntrack loaded (for the fast path's kfuncs)"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not have nf_conntrack loaded"),
        }
        match crate::fast_path::load(&o.bpf_dir).and_then(|fp| fp.prog_id()) {
            Ok(id) => {
                tracing::info!(dir = %o.bpf_dir.display(), "eBPF fast path program loaded and pinned (id {id})");
                done.fast_path = Some(id);
            }
            Err(e) => {
                tracing::warn!(error = %e, "eBPF fast path not loaded here: ferryd tries itself");
                done.fast_path_error = Some(e.to_string());
            }
        }
    }
    if set_forwarding(IPV4_FORWARDING)? {
        done.sysctls.push(IPV4_FORWARDING);
    }
    match own_pod_cidrs(o).await {
        Ok(cidrs) if cidrs.iter().any(|c| matches!(c, IpNet::V6(_))) => {
            if set_forwarding(IPV6_FORWARDING)? {
                done.sysctls.push(IPV6_FORWARDING);
            }
        }
        Ok(cidrs) if cidrs.is_empty() => tracing::info!(
            "the Node has no podCIDR yet: IPv6 forwarding left as it is (ferryd reports it if it is needed)"
        ),
        Ok(_) => {}
        Err(e) => tracing::info!(
            error = %e,
            "cannot tell the Node's podCIDRs: IPv6 forwarding left as it is (ferryd reports it if it is needed)"
        ),
    }
    Ok(done)
}

/// Where `nf_conntrack` shows once it is loaded (or built in: it has
/// parameters).
const CONNTRACK_SYSFS: &str = "/sys/module/nf_conntrack";
/// The throwaway table [`load_conntrack`] makes and deletes.
const CONNTRACK_TABLE: &str = "ferry-prepare";

/// Has the kernel load `nf_conntrack` when it is a module not loaded yet
/// (`sysfs`, its `/sys/module` directory, is missing): where it is a
/// module, the conntrack kfuncs are in its BTF only once it is loaded, and
/// `prepare` may run before anything on the node (kubelet's rules, ferryd's
/// masquerade table) loaded it. A NAT chain does it, as ferryd's
/// masquerade table would (nf_tables loads `nft_chain_nat`, which needs
/// `nf_nat` and `nf_conntrack`), in a table deleted right after. Returns
/// whether it had to.
fn load_conntrack(sysfs: &Path) -> Result<bool, ferry_nft::NftError> {
    if sysfs.exists() {
        return Ok(false);
    }
    ferry_nft::apply(&ferry_nft::MasqueradeTable {
        name: CONNTRACK_TABLE.into(),
        cluster_cidrs: Vec::new(),
        out_ifname: "lo".into(),
    })?;
    ferry_nft::delete_table(CONNTRACK_TABLE)?;
    Ok(true)
}

/// This Node's podCIDRs, waiting up to [`PODCIDR_WAIT`] for some.
async fn own_pod_cidrs(o: &Opts) -> Result<Vec<IpNet>, AgentError> {
    let name = o
        .node_name()
        .ok_or_else(|| AgentError::Config("no node name (--node-name, NODE_NAME)".into()))?;
    let client = kube_client::client(o.kubeconfig.as_deref()).await?;
    let api: kube::Api<Node> = kube::Api::all(client);
    let deadline = tokio::time::Instant::now() + PODCIDR_WAIT;
    loop {
        let last = match tokio::time::timeout_at(deadline, api.get(&name)).await {
            Err(_) => return Ok(Vec::new()),
            Ok(Ok(node)) => {
                let cidrs = discovery::pod_cidrs(&node);
                if !cidrs.is_empty() {
                    return Ok(cidrs);
                }
                None
            }
            Ok(Err(e)) => Some(e),
        };
        if tokio::time::Instant::now() + Duration::from_secs(1) >= deadline {
            return match last {
                Some(e) => Err(AgentError::Kube(format!("get node {name}: {e}"))),
                None => Ok(Vec::new()),
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_is_left_alone_when_loaded_and_the_probe_table_goes() {
        // In a netns of its own (nf_tables is per netns; the module is
        // not): the NAT chain is made and the table deleted, nothing left.
        let name = ferry_testkit::unique("prepct");
        let path = ferry_netns::create_named(&name).unwrap();
        struct Gone(String);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = ferry_netns::delete_named(&self.0);
            }
        }
        let _gone = Gone(name);
        let ns = ferry_netns::NetNs::open(&path).unwrap();
        let (here, missing, left) = ns
            .run(|| {
                (
                    load_conntrack(Path::new("/sys")),
                    load_conntrack(Path::new("/nonexistent/nf_conntrack")),
                    ferry_nft::read_table(CONNTRACK_TABLE),
                )
            })
            .unwrap();
        assert!(!here.unwrap(), "already there: nothing done");
        assert!(missing.unwrap(), "the probe table made and deleted");
        assert!(left.unwrap().is_none(), "no table left");
        assert!(Path::new(CONNTRACK_SYSFS).exists(), "loaded (or built in)");
    }
}
