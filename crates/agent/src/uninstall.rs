//! `ferryd uninstall`: removes everything ferryd made on this node, in the
//! reverse order of making it (the conflist first, so kubelet stops using
//! ferry before anything else goes), and last, when the API can be
//! reached, what ferry put on the Node: its `NetworkUnavailable` condition
//! and its WireGuard public key annotation. Idempotent.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;

use crate::cli::Opts;
use crate::install::{remove_file, Binaries};
use crate::{
    fast_path, frr_glue, kube_client, nat, routes, status_patch, vxlan, wireguard_device,
    AgentError,
};

/// How long uninstall tries the API (it is best effort: the node is
/// cleaned either way).
const API_TIMEOUT: Duration = Duration::from_secs(15);

/// What was removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub conflist: bool,
    pub binaries: Vec<&'static str>,
    pub nft_table: bool,
    /// The NetworkPolicy table (`inet ferry-policy`).
    pub policy_table: bool,
    pub routes: usize,
    /// The VXLAN device (with its FDB, neighbours and routes).
    pub vxlan: bool,
    /// The WireGuard device (and the routes through it).
    pub wireguard: bool,
    /// The WireGuard private key file.
    pub wireguard_key: bool,
    pub frr_config: bool,
    /// Interfaces the fast path was detached from.
    pub fast_path: usize,
    /// ferry's `NetworkUnavailable` condition was removed from the Node.
    pub condition: bool,
    /// ferry's annotation (the WireGuard public key) was removed from the Node.
    pub annotation: bool,
}

impl Removed {
    pub fn nothing(&self) -> bool {
        *self == Removed::default()
    }
}

/// Removes the conflist, the plugin binaries, the nft tables, the owned
/// routes, the VXLAN and WireGuard devices and ferryd's FRR config, then
/// ferry's condition and annotation from the Node (see [`reset_node`]). Every step runs even when an earlier one
/// failed; the first error is returned after all ran (the API step never
/// fails the uninstall).
pub fn run(o: &Opts) -> Result<Removed, AgentError> {
    let mut removed = Removed::default();
    let mut first_err: Option<AgentError> = None;
    let mut keep = |r: Result<(), AgentError>| {
        if let Err(e) = r {
            tracing::warn!(error = %e, "uninstall step failed");
            first_err.get_or_insert(e);
        }
    };
    keep(remove_file(&o.conflist_path()).map(|b| removed.conflist = b));
    keep(Binaries::remove(&o.cni_bin_dir).map(|b| removed.binaries = b));
    keep(nat::delete().map(|b| removed.nft_table = b));
    keep(
        ferry_nft::delete_table(ferry_netpol::DEFAULT_TABLE)
            .map_err(|e| AgentError::Nft(format!("delete table inet ferry-policy: {e}")))
            .map(|b| removed.policy_table = b),
    );
    keep(fast_path::remove(&o.bpf_dir).map(|n| removed.fast_path = n));
    keep(
        ferry_netlink::Handle::new()
            .map_err(|e| AgentError::netlink("open", e))
            .and_then(|mut h| routes::delete_all(&mut h))
            .map(|n| removed.routes = n),
    );
    keep(
        ferry_netlink::Handle::new()
            .map_err(|e| AgentError::netlink("open", e))
            .and_then(|mut h| vxlan::remove(&mut h))
            .map(|b| removed.vxlan = b),
    );
    keep(
        ferry_netlink::Handle::new()
            .map_err(|e| AgentError::netlink("open", e))
            .and_then(|mut h| wireguard_device::remove(&mut h, &o.wireguard_run_dir))
            .map(|b| removed.wireguard = b),
    );
    keep(remove_file(&o.wireguard_key_file).map(|b| removed.wireguard_key = b));
    if o.frr_pathspace.is_some()
        || o.frr_conf_dir.is_some()
        || o.routing != crate::cli::Routing::Direct
    {
        keep(frr_glue::remove(&frr_glue::frr_from_opts(o)).map(|b| removed.frr_config = b));
    }
    (removed.condition, removed.annotation) = reset_node(o);
    match first_err {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// Removes `NetworkUnavailable` from this Node when ferry set it (so the
/// Node reads as before ferry; another plugin's condition stays) and
/// ferry's annotation ([`crate::wireguard::KEY_ANNOTATION`]), best effort:
/// without API access, a node name, or within [`API_TIMEOUT`], it says why
/// and leaves them. Returns whether it removed each.
pub fn reset_node(o: &Opts) -> (bool, bool) {
    let Some(node) = o.node_name() else {
        tracing::info!(
            "no node name (--node-name, NODE_NAME): the Node's NetworkUnavailable and annotations are left as they are"
        );
        return (false, false);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(error = %e, "tokio runtime: the Node is left as it is");
            return (false, false);
        }
    };
    let result = rt.block_on(async {
        let client = kube_client::client(o.kubeconfig.as_deref()).await?;
        let api: kube::Api<Node> = kube::Api::all(client);
        tokio::time::timeout(API_TIMEOUT, async {
            let condition = status_patch::remove_ferry_condition(&api, &node).await?;
            let annotation =
                status_patch::remove_annotation(&api, &node, crate::wireguard::KEY_ANNOTATION)
                    .await?;
            Ok::<_, AgentError>((condition, annotation))
        })
        .await
        .map_err(|_| AgentError::Kube(format!("no answer within {API_TIMEOUT:?}")))?
    });
    match result {
        Ok((condition, annotation)) => {
            if condition {
                tracing::info!(node, "NetworkUnavailable (ferry's) removed from the Node");
            }
            if annotation {
                tracing::info!(
                    node,
                    key = crate::wireguard::KEY_ANNOTATION,
                    "annotation removed from the Node"
                );
            }
            (condition, annotation)
        }
        Err(e) => {
            tracing::warn!(error = %e, node, "the Node's NetworkUnavailable and annotations are left as they are");
            (false, false)
        }
    }
}
