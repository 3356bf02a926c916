//! The store's public API: nodes by name (what the tests and the lab
//! mostly use), and any object by kind, namespace and name.

use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Value};

use super::{kind_range, Scope, Store};
use crate::error::StoreError;
use crate::kind::{key, Kind};

impl Store {
    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.count(Kind::Node)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many objects of `kind` there are.
    pub fn count(&self, kind: Kind) -> usize {
        self.lock().objects.range(kind_range(kind)).count()
    }

    pub fn get(&self, name: &str) -> Option<Node> {
        self.get_obj(&key(Kind::Node, "", name)).map(|o| o.typed())
    }

    /// The stored JSON of a node, exactly as clients receive it.
    pub fn get_json(&self, name: &str) -> Option<Value> {
        self.get_value(Kind::Node, "", name)
    }

    pub fn list(&self) -> Vec<Node> {
        self.snapshot_of(Kind::Node)
            .1
            .iter()
            .map(|o| o.typed())
            .collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.snapshot_of(Kind::Node)
            .1
            .iter()
            .map(|o| o.name.clone())
            .collect()
    }

    /// Add a node, or replace the one with the same name (its uid and
    /// creationTimestamp are kept). Returns the stored node.
    pub fn add_node(&self, node: Node) -> Result<Node, StoreError> {
        let v = serde_json::to_value(&node).map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok(self.upsert(Kind::Node, v, false)?.typed())
    }

    /// Apply a JSON merge patch (RFC 7386) to any part of a node.
    pub fn modify_node(&self, name: &str, merge_patch: &Value) -> Result<Node, StoreError> {
        let v = self.modify(Kind::Node, "", name, merge_patch)?;
        Ok(serde_json::from_value(v).expect("stored nodes are valid"))
    }

    /// Delete a node; returns it as it was.
    pub fn delete_node(&self, name: &str) -> Result<Node, StoreError> {
        Ok(self.delete(&key(Kind::Node, "", name))?.typed())
    }

    /// Add or replace any object (Namespace, Pod, NetworkPolicy, Node):
    /// its `kind` field says which. A namespaced object needs its
    /// namespace to exist. Returns the stored JSON.
    pub fn put(&self, v: Value) -> Result<Value, StoreError> {
        let kind = v["kind"]
            .as_str()
            .and_then(Kind::from_name)
            .ok_or_else(|| StoreError::Invalid(format!("unknown kind {}", v["kind"])))?;
        Ok(self.upsert(kind, v, false)?.value())
    }

    /// [`Store::put`] for a typed object.
    pub fn put_object<K: k8s_openapi::Resource + serde::Serialize>(
        &self,
        obj: &K,
    ) -> Result<Value, StoreError> {
        let mut v = serde_json::to_value(obj).map_err(|e| StoreError::Invalid(e.to_string()))?;
        v["kind"] = json!(K::KIND);
        v["apiVersion"] = json!(K::API_VERSION);
        self.put(v)
    }

    /// The stored JSON of an object ("" namespace for cluster-scoped).
    pub fn get_value(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.get_obj(&key(kind, namespace, name)).map(|o| o.value())
    }

    /// Apply a JSON merge patch (RFC 7386) to any part of an object.
    pub fn modify(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        merge_patch: &Value,
    ) -> Result<Value, StoreError> {
        let obj = self.update(&key(kind, namespace, name), Scope::All, |v| {
            crate::patch::merge_patch(v, merge_patch);
            Ok(())
        })?;
        Ok(obj.value())
    }

    /// Delete an object; returns it as it was.
    pub fn remove(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value, StoreError> {
        Ok(self.delete(&key(kind, namespace, name))?.value())
    }
}
