//! JSON merge patch (RFC 7386) and the Kubernetes strategic merge patch
//! for the Node type (lists merged by their `patchMergeKey`).

use serde_json::{Map, Value};

/// Which patch a request body is, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply; JSON bodies only,
    /// merged like a strategic patch)
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        match ct {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Apply `patch` of `kind` to `target`.
pub fn apply(kind: PatchKind, target: &mut Value, patch: &Value) -> Result<(), String> {
    if !patch.is_object() {
        return Err("patch body must be a JSON object".into());
    }
    match kind {
        PatchKind::Merge => {
            merge_patch(target, patch);
            Ok(())
        }
        PatchKind::Strategic | PatchKind::Apply => {
            strategic_merge(target, patch, &mut Vec::new());
            Ok(())
        }
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The strategic merge key of the list at `path` in a Node, if it merges.
fn list_strategy(path: &[String]) -> Option<ListMerge> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["status", "conditions"] | ["status", "addresses"] => Some(ListMerge::ByKey("type")),
        ["metadata", "ownerReferences"] => Some(ListMerge::ByKey("uid")),
        ["metadata", "finalizers"] | ["spec", "podCIDRs"] => Some(ListMerge::Primitive),
        _ => None,
    }
}

enum ListMerge {
    ByKey(&'static str),
    Primitive,
}

fn is_directive(k: &str) -> bool {
    k.starts_with('$')
}

/// A patch value with its `$` directives and null fields removed (what a
/// new value looks like when there is nothing to merge into).
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !is_directive(k) && !v.is_null())
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        other => other.clone(),
    }
}

/// Strategic merge of `patch` into `target` at `path`.
pub fn strategic_merge(target: &mut Value, patch: &Value, path: &mut Vec<String>) {
    let Value::Object(p) = patch else {
        *target = clean(patch);
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") || !target.is_object() {
        *target = clean(patch);
        return;
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(del)) = (t.get_mut(field), v) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if is_directive(k) {
            continue; // $setElementOrder/…, $retainKeys: ordering hints only
        }
        if v.is_null() || v.get("$patch").and_then(Value::as_str) == Some("delete") {
            t.remove(k);
            continue;
        }
        path.push(k.clone());
        match (t.get_mut(k), v) {
            (Some(cur @ Value::Array(_)), Value::Array(items)) => {
                merge_list(cur, items, path);
            }
            (Some(cur), _) => strategic_merge(cur, v, path),
            (None, _) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, v, path);
                t.insert(k.clone(), fresh);
            }
        }
        path.pop();
    }
}

fn merge_list(cur: &mut Value, items: &[Value], path: &mut Vec<String>) {
    let Value::Array(list) = cur else { return };
    match list_strategy(path) {
        None => *cur = Value::Array(items.iter().map(clean).collect()),
        Some(ListMerge::Primitive) => {
            for item in items {
                if !list.contains(item) {
                    list.push(item.clone());
                }
            }
        }
        Some(ListMerge::ByKey(key)) => {
            if items
                .iter()
                .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
            {
                *cur = Value::Array(
                    items
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .map(clean)
                        .collect(),
                );
                return;
            }
            for item in items {
                let id = item.get(key);
                let pos = id.and_then(|id| list.iter().position(|e| e.get(key) == Some(id)));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        list.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => strategic_merge(&mut list[i], item, path),
                    (None, false) => list.push(clean(item)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn strategic_conditions_merge_by_type() {
        let mut node = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady"},
            {"type": "MemoryPressure", "status": "False"}
        ], "capacity": {"cpu": "2"}}});
        let patch = json!({"status": {"conditions": [
            {"type": "NetworkUnavailable", "status": "False", "reason": "FerryReady"},
            {"type": "Ready", "status": "False"}
        ]}});
        apply(PatchKind::Strategic, &mut node, &patch).unwrap();
        let conds = node["status"]["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 3);
        assert_eq!(
            conds[0],
            json!({"type": "Ready", "status": "False", "reason": "KubeletReady"})
        );
        assert_eq!(conds[2]["reason"], "FerryReady");
        assert_eq!(node["status"]["capacity"]["cpu"], "2");

        // A merge patch replaces the list instead.
        apply(PatchKind::Merge, &mut node, &patch).unwrap();
        assert_eq!(node["status"]["conditions"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn strategic_directives() {
        let mut node = json!({
            "metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}},
            "spec": {"taints": [{"key": "t1"}], "podCIDRs": ["10.244.1.0/24"]},
            "status": {"conditions": [{"type": "A"}, {"type": "B"}]}
        });
        let patch = json!({
            "$setElementOrder/conditions": [{"type": "B"}],
            "metadata": {"finalizers": ["b"], "labels": {"x": null, "z": "3"}},
            "spec": {"taints": [{"key": "t2"}], "podCIDRs": ["fd00::/64"],
                     "$deleteFromPrimitiveList/podCIDRs": ["10.244.1.0/24"]},
            "status": {"conditions": [{"type": "A", "$patch": "delete"}]}
        });
        apply(PatchKind::Strategic, &mut node, &patch).unwrap();
        assert_eq!(node["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(node["metadata"]["labels"], json!({"y": "2", "z": "3"}));
        assert_eq!(node["spec"]["taints"], json!([{"key": "t2"}]));
        assert_eq!(node["spec"]["podCIDRs"], json!(["fd00::/64"]));
        assert_eq!(node["status"]["conditions"], json!([{"type": "B"}]));
        assert!(node.get("$setElementOrder/conditions").is_none());

        let mut m = json!({"spec": {"a": 1, "b": 2}});
        apply(
            PatchKind::Strategic,
            &mut m,
            &json!({"spec": {"$patch": "replace", "c": 3}}),
        )
        .unwrap();
        assert_eq!(m, json!({"spec": {"c": 3}}));
    }
}
