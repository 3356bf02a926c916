//! The Node's `NetworkUnavailable` condition: False, reason `FerryIsUp`,
//! once the node's network is configured (what kubelet's and the cloud
//! route controller's readiness logic look at); True with a reason of
//! ferry's when something only the node's admin can fix stops it (e.g.
//! [`crate::FORWARDING_OFF_REASON`]); and removed again by `uninstall`.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::{json, Value};

use crate::{AgentError, CONDITION_REASON};

/// The message of the `FerryIsUp` condition.
const UP_MESSAGE: &str = "ferry is up: routes, NAT and the CNI config are in place";

/// The strategic merge patch of `status.conditions` (merge key `type`), so
/// the other conditions stay as they are.
pub fn condition_patch(now_rfc3339: &str) -> Value {
    set_condition_patch(false, CONDITION_REASON, UP_MESSAGE, now_rfc3339)
}

/// The patch setting `NetworkUnavailable` to `unavailable` with `reason`
/// and `message`.
pub fn set_condition_patch(unavailable: bool, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "status": {
            "conditions": [{
                "type": "NetworkUnavailable",
                "status": if unavailable { "True" } else { "False" },
                "reason": reason,
                "message": message,
                "lastTransitionTime": now,
                "lastHeartbeatTime": now,
            }]
        }
    })
}

/// The patch removing the `NetworkUnavailable` condition (what a node had
/// before any network plugin set it).
pub fn remove_condition_patch() -> Value {
    json!({
        "status": {
            "conditions": [{"type": "NetworkUnavailable", "$patch": "delete"}]
        }
    })
}

/// Whether a `NetworkUnavailable` reason is one ferryd sets.
pub fn is_ferry_reason(reason: &str) -> bool {
    reason.starts_with("Ferry")
}

/// The merge patch setting annotation `key` to `value`.
pub fn annotation_patch(key: &str, value: &str) -> Value {
    json!({"metadata": {"annotations": {key: value}}})
}

/// Sets annotation `key` to `value` on `node` (a merge patch of its
/// metadata: the other annotations stay).
pub async fn annotate(
    api: &Api<Node>,
    node: &str,
    key: &str,
    value: &str,
) -> Result<(), AgentError> {
    api.patch(
        node,
        &PatchParams::default(),
        &Patch::Merge(annotation_patch(key, value)),
    )
    .await
    .map_err(|e| AgentError::Kube(format!("annotate node {node}: {e}")))?;
    Ok(())
}

async fn patch(api: &Api<Node>, node: &str, p: Value) -> Result<(), AgentError> {
    api.patch_status(node, &PatchParams::default(), &Patch::Strategic(p))
        .await
        .map_err(|e| AgentError::Kube(format!("patch node {node} status: {e}")))?;
    Ok(())
}

/// Patches the condition on `node`.
pub async fn mark_network_available(api: &Api<Node>, node: &str) -> Result<(), AgentError> {
    patch(api, node, condition_patch(&rfc3339_now())).await
}

/// Sets `NetworkUnavailable=True` with ferry's `reason` and `message`.
pub async fn mark_network_unavailable(
    api: &Api<Node>,
    node: &str,
    reason: &str,
    message: &str,
) -> Result<(), AgentError> {
    patch(
        api,
        node,
        set_condition_patch(true, reason, message, &rfc3339_now()),
    )
    .await
}

/// Removes `NetworkUnavailable` from `node` when its reason is one of
/// ferry's (another plugin's condition is left alone). Returns whether it
/// removed one.
pub async fn remove_ferry_condition(api: &Api<Node>, node: &str) -> Result<bool, AgentError> {
    let n = api
        .get(node)
        .await
        .map_err(|e| AgentError::Kube(format!("get node {node}: {e}")))?;
    let ours = n
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| {
            c.type_ == "NetworkUnavailable" && c.reason.as_deref().is_some_and(is_ferry_reason)
        });
    if ours {
        patch(api, node, remove_condition_patch()).await?;
    }
    Ok(ours)
}

/// Removes annotation `key` from `node` when it is there (a merge patch
/// setting it to null: the other annotations stay). Returns whether it
/// was there.
pub async fn remove_annotation(api: &Api<Node>, node: &str, key: &str) -> Result<bool, AgentError> {
    let n = api
        .get(node)
        .await
        .map_err(|e| AgentError::Kube(format!("get node {node}: {e}")))?;
    let there = n.metadata.annotations.is_some_and(|a| a.contains_key(key));
    if there {
        api.patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {key: null}}})),
        )
        .await
        .map_err(|e| AgentError::Kube(format!("remove annotation {key} of node {node}: {e}")))?;
    }
    Ok(there)
}

/// Now, as RFC 3339 UTC with seconds (the API's `Time` format).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn patch_is_a_valid_node_status() {
        let p = condition_patch("2024-01-01T00:00:00Z");
        let node: Node = serde_json::from_value(p).unwrap();
        let c = &node.status.unwrap().conditions.unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_deref()),
            ("NetworkUnavailable", "False", Some("FerryIsUp"))
        );
        let p = set_condition_patch(
            true,
            crate::FORWARDING_OFF_REASON,
            "m",
            "2024-01-01T00:00:00Z",
        );
        let node: Node = serde_json::from_value(p).unwrap();
        let c = &node.status.unwrap().conditions.unwrap()[0];
        assert_eq!(
            (c.status.as_str(), c.message.as_deref()),
            ("True", Some("m"))
        );
        assert!(is_ferry_reason(crate::FORWARDING_OFF_REASON));
        assert!(is_ferry_reason(crate::CONDITION_REASON));
        assert!(!is_ferry_reason("RouteCreated"));
        assert_eq!(
            remove_condition_patch()["status"]["conditions"][0]["$patch"],
            "delete"
        );
    }
}
