//! The loop's writes to its own Node: the NetworkUnavailable condition
//! and the WireGuard key annotation.

use super::{Loop, BLOCKED_RETRY, PATCH_TIMEOUT};
use crate::{status_patch, AgentError};

impl Loop {
    /// Says once (log line and Node condition) what keeps the node from
    /// being configured; then stays quiet while it lasts. The condition is
    /// best effort: the log line says it all too.
    pub(super) async fn report_blocked(
        &mut self,
        node: &str,
        reason: &'static str,
        error: &AgentError,
    ) {
        let msg = error.to_string();
        if self.blocked.as_ref().map(|(m, _)| m) != Some(&msg) {
            tracing::error!(
                node,
                reason,
                "{msg}; ferry cannot configure this node until then (checked every {BLOCKED_RETRY:?})"
            );
            self.blocked = Some((msg.clone(), false));
        }
        if self.blocked.as_ref().is_some_and(|(_, reported)| *reported) {
            return;
        }
        let patched = tokio::time::timeout(
            PATCH_TIMEOUT,
            status_patch::mark_network_unavailable(&self.api, node, reason, &msg),
        )
        .await
        .unwrap_or_else(|_| Err(AgentError::Kube("node status patch timed out".into())));
        match patched {
            Ok(()) => {
                tracing::info!(node, "NetworkUnavailable=True ({reason})");
                self.blocked = Some((msg, true));
                // Set it back to False once the node is configured.
                self.patched = false;
            }
            Err(e) => tracing::debug!(error = %e, "could not report it on the Node; retrying"),
        }
    }

    /// Publishes this node's WireGuard public key on its Node unless the
    /// view shows it there (peers pick it up through their Node watch).
    pub(super) async fn publish_key(&mut self, node: &str) -> Result<(), AgentError> {
        let Some(key) = self.wg_key.clone() else {
            return Ok(());
        };
        let shown = self
            .shared
            .view()
            .nodes
            .get(node)
            .and_then(|n| n.wireguard_key.clone());
        if shown.as_deref() == Some(key.as_str()) {
            return Ok(());
        }
        tokio::time::timeout(
            PATCH_TIMEOUT,
            status_patch::annotate(&self.api, node, crate::wireguard::KEY_ANNOTATION, &key),
        )
        .await
        .map_err(|_| AgentError::Kube("node annotation patch timed out".into()))??;
        tracing::info!(node, public_key = %key, "WireGuard public key published");
        Ok(())
    }

    /// Sets `NetworkUnavailable=False` unless the view shows it is set.
    pub(super) async fn mark_available(&mut self, node: &str) -> Result<(), AgentError> {
        let marked = self
            .shared
            .view()
            .nodes
            .get(node)
            .is_some_and(|n| n.marked_up());
        if marked {
            self.patched = false;
            return Ok(());
        }
        if self.patched {
            return Ok(());
        }
        tokio::time::timeout(
            PATCH_TIMEOUT,
            status_patch::mark_network_available(&self.api, node),
        )
        .await
        .map_err(|_| AgentError::Kube("node status patch timed out".into()))??;
        tracing::info!(node, "NetworkUnavailable=False (FerryIsUp)");
        self.patched = true;
        Ok(())
    }
}
