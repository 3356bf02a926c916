//! The node store: objects kept as serialized JSON, one global
//! resourceVersion counter (as etcd's revision), and a bounded history of
//! watch events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::error::StoreError;
use crate::persist::Persist;
use crate::selector::Labels;
use crate::util;

/// One stored object version.
#[derive(Debug)]
pub(crate) struct Obj {
    pub name: String,
    pub rv: u64,
    pub labels: Labels,
    pub json: Bytes,
}

impl Obj {
    /// From a JSON object whose `metadata.resourceVersion` is already set.
    pub fn from_value(v: &Value, rv: u64) -> Obj {
        let labels = v["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Obj {
            name: v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            rv,
            labels,
            json: Bytes::from(serde_json::to_vec(v).expect("JSON value serializes")),
        }
    }

    /// From stored JSON bytes (kept as they are).
    pub fn from_raw(raw: &[u8]) -> Result<Obj, String> {
        #[derive(serde::Deserialize)]
        struct Head {
            metadata: Meta,
        }
        #[derive(serde::Deserialize)]
        struct Meta {
            name: String,
            #[serde(default, rename = "resourceVersion")]
            resource_version: String,
            #[serde(default)]
            labels: Labels,
        }
        let head: Head = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
        if head.metadata.name.is_empty() {
            return Err("an item has no metadata.name".into());
        }
        Ok(Obj {
            name: head.metadata.name,
            rv: head.metadata.resource_version.parse().unwrap_or(0),
            labels: head.metadata.labels,
            json: Bytes::copy_from_slice(raw),
        })
    }

    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).expect("stored JSON parses")
    }

    pub fn node(&self) -> Node {
        serde_json::from_slice(&self.json).expect("stored nodes are valid")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// A committed change, as watchers see it.
#[derive(Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub obj: Arc<Obj>,
    /// Labels before the change (for selector transitions).
    pub prev_labels: Option<Labels>,
}

pub(crate) struct State {
    pub rv: u64,
    pub objects: BTreeMap<String, Arc<Obj>>,
    history: VecDeque<Arc<Event>>,
    history_cap: usize,
    /// Events with a resourceVersion <= this are no longer all in history.
    compacted: u64,
    dirty: bool,
}

struct Inner {
    state: Mutex<State>,
    rv_tx: watch::Sender<u64>,
    dirty: Notify,
    persist: Option<Persist>,
}

/// Cheap, cloneable handle to the node store of a server.
///
/// Changes made here are seen by clients exactly as changes made through
/// the API: new resourceVersion, watch events, persisted to the state dir.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("resource_version", &self.resource_version())
            .field("nodes", &self.len())
            .finish()
    }
}

/// Which part of an object an update may change (like the apiserver's
/// main resource vs. `/status` subresource strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Everything (admin API and library calls).
    All,
    /// `PATCH/PUT /api/v1/nodes/NAME`: `status` changes are dropped.
    Main,
    /// `PATCH/PUT /api/v1/nodes/NAME/status`: `spec` changes are dropped.
    Status,
}

impl Store {
    /// A store that keeps nothing on disk.
    pub fn in_memory(history: usize) -> Store {
        Store::build(0, BTreeMap::new(), history, None)
    }

    pub(crate) fn build(
        rv: u64,
        objects: BTreeMap<String, Arc<Obj>>,
        history: usize,
        persist: Option<Persist>,
    ) -> Store {
        let state = State {
            rv,
            objects,
            history: VecDeque::new(),
            history_cap: history,
            compacted: rv,
            dirty: false,
        };
        Store {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                rv_tx: watch::Sender::new(rv),
                dirty: Notify::new(),
                persist,
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current (latest committed) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    pub fn len(&self) -> usize {
        self.lock().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, name: &str) -> Option<Node> {
        self.get_obj(name).map(|o| o.node())
    }

    /// The stored JSON of a node, exactly as clients receive it.
    pub fn get_json(&self, name: &str) -> Option<Value> {
        self.get_obj(name).map(|o| o.value())
    }

    pub fn list(&self) -> Vec<Node> {
        self.snapshot().1.iter().map(|o| o.node()).collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.lock().objects.keys().cloned().collect()
    }

    /// Add a node, or replace the one with the same name (its uid and
    /// creationTimestamp are kept). Returns the stored node.
    pub fn add_node(&self, node: Node) -> Result<Node, StoreError> {
        let v = serde_json::to_value(&node).map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok(self.upsert(v, false)?.node())
    }

    /// Apply a JSON merge patch (RFC 7386) to any part of a node.
    pub fn modify_node(&self, name: &str, merge_patch: &Value) -> Result<Node, StoreError> {
        let obj = self.update(name, Scope::All, |v| {
            crate::patch::merge_patch(v, merge_patch);
            Ok(())
        })?;
        Ok(obj.node())
    }

    /// Delete a node; returns it as it was.
    pub fn delete_node(&self, name: &str) -> Result<Node, StoreError> {
        Ok(self.delete(name)?.node())
    }

    /// Write the store to the state dir now, if anything changed.
    pub fn flush(&self) -> Result<(), StoreError> {
        match &self.inner.persist {
            Some(p) => p.flush(self),
            None => Ok(()),
        }
    }

    pub(crate) fn get_obj(&self, name: &str) -> Option<Arc<Obj>> {
        self.lock().objects.get(name).cloned()
    }

    /// Current resourceVersion and all objects (sorted by name).
    pub(crate) fn snapshot(&self) -> (u64, Vec<Arc<Obj>>) {
        let st = self.lock();
        (st.rv, st.objects.values().cloned().collect())
    }

    /// Take the dirty flag (for the persister).
    pub(crate) fn take_dirty(&self) -> Option<(u64, Vec<Arc<Obj>>)> {
        let mut st = self.lock();
        if !st.dirty {
            return None;
        }
        st.dirty = false;
        Some((st.rv, st.objects.values().cloned().collect()))
    }

    pub(crate) fn mark_dirty(&self) {
        self.lock().dirty = true;
        self.inner.dirty.notify_one();
    }

    pub(crate) async fn dirtied(&self) {
        self.inner.dirty.notified().await
    }

    /// Receiver that changes whenever the resourceVersion does.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.rv_tx.subscribe()
    }

    /// Every event after `since`, or `Expired` when history no longer
    /// reaches back that far (or `since` is from the future).
    pub(crate) fn events_since(&self, since: u64) -> Result<Vec<Arc<Event>>, StoreError> {
        let st = self.lock();
        if since < st.compacted || since > st.rv {
            return Err(StoreError::Expired {
                given: since,
                oldest: st.compacted,
            });
        }
        let start = st.history.partition_point(|e| e.rv <= since);
        Ok(st.history.range(start..).cloned().collect())
    }

    /// The oldest resourceVersion a watch can still start from.
    pub(crate) fn compacted(&self) -> u64 {
        self.lock().compacted
    }

    /// Create a node; `AlreadyExists` if the name is taken.
    pub(crate) fn create(&self, v: Value) -> Result<Arc<Obj>, StoreError> {
        self.upsert(v, true)
    }

    /// Add or replace (create-only when `create_only`).
    pub(crate) fn upsert(&self, mut v: Value, create_only: bool) -> Result<Arc<Obj>, StoreError> {
        let name = object_name(&v)?;
        let mut st = self.lock();
        let prev = st.objects.get(&name).cloned();
        if let Some(prev) = &prev {
            if create_only {
                return Err(StoreError::AlreadyExists(name));
            }
            let old = prev.value();
            v["metadata"]["uid"] = old["metadata"]["uid"].clone();
            v["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
        } else {
            v["metadata"]["uid"] = json!(util::uuid());
            v["metadata"]["creationTimestamp"] = json!(util::now_rfc3339());
        }
        self.commit(&mut st, v, prev)
    }

    /// Change a node with `f` (which sees the current JSON). A change
    /// that leaves the object as it was commits nothing.
    pub(crate) fn update(
        &self,
        name: &str,
        scope: Scope,
        f: impl FnOnce(&mut Value) -> Result<(), StoreError>,
    ) -> Result<Arc<Obj>, StoreError> {
        let mut st = self.lock();
        let prev = st
            .objects
            .get(name)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(name.to_string()))?;
        let old = prev.value();
        let mut v = old.clone();
        f(&mut v)?;
        if !v.is_object() || !v["metadata"].is_object() {
            return Err(StoreError::Invalid(
                "the object and its metadata must be JSON objects".into(),
            ));
        }
        let given_rv = v["metadata"]["resourceVersion"].clone();
        if let Some(given) = given_rv.as_str().filter(|g| !g.is_empty()) {
            if given != prev.rv.to_string() {
                return Err(StoreError::Conflict {
                    name: name.to_string(),
                    given: given.to_string(),
                    current: prev.rv,
                });
            }
        }
        for key in ["name", "uid", "creationTimestamp", "resourceVersion"] {
            v["metadata"][key] = old["metadata"][key].clone();
        }
        match scope {
            Scope::All => {}
            Scope::Main => restore(&mut v, &old, "status"),
            Scope::Status => restore(&mut v, &old, "spec"),
        }
        self.commit(&mut st, v, Some(prev))
    }

    pub(crate) fn delete(&self, name: &str) -> Result<Arc<Obj>, StoreError> {
        let mut st = self.lock();
        let prev = st
            .objects
            .remove(name)
            .ok_or_else(|| StoreError::NotFound(name.to_string()))?;
        if let Some(p) = &self.inner.persist {
            if let Err(e) = p.reserve(st.rv + 1) {
                st.objects.insert(name.to_string(), prev);
                return Err(e);
            }
        }
        let rv = st.rv + 1;
        let mut v = prev.value();
        v["metadata"]["resourceVersion"] = json!(rv.to_string());
        let obj = Arc::new(Obj::from_value(&v, rv));
        self.record(&mut st, EventType::Deleted, obj, Some(prev.labels.clone()));
        Ok(prev)
    }

    /// Validate `v`, give it the next resourceVersion and store it.
    fn commit(
        &self,
        st: &mut State,
        mut v: Value,
        prev: Option<Arc<Obj>>,
    ) -> Result<Arc<Obj>, StoreError> {
        v["kind"] = json!("Node");
        v["apiVersion"] = json!("v1");
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        if let Some(p) = &prev {
            v["metadata"]["resourceVersion"] = json!(p.rv.to_string());
            if v == p.value() {
                return Ok(p.clone());
            }
        }
        <Node as serde::Deserialize>::deserialize(&v)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        if let Some(p) = &self.inner.persist {
            p.reserve(st.rv + 1)?;
        }
        let rv = st.rv + 1;
        v["metadata"]["resourceVersion"] = json!(rv.to_string());
        let obj = Arc::new(Obj::from_value(&v, rv));
        st.objects.insert(obj.name.clone(), obj.clone());
        let (kind, prev_labels) = match prev {
            Some(p) => (EventType::Modified, Some(p.labels.clone())),
            None => (EventType::Added, None),
        };
        self.record(st, kind, obj.clone(), prev_labels);
        Ok(obj)
    }

    fn record(&self, st: &mut State, kind: EventType, obj: Arc<Obj>, prev_labels: Option<Labels>) {
        st.rv = obj.rv;
        st.history.push_back(Arc::new(Event {
            rv: obj.rv,
            kind,
            obj,
            prev_labels,
        }));
        while st.history.len() > st.history_cap {
            if let Some(e) = st.history.pop_front() {
                st.compacted = e.rv;
            }
        }
        if st.history_cap == 0 {
            st.compacted = st.rv;
        }
        st.dirty = true;
        self.inner.rv_tx.send_replace(st.rv);
        self.inner.dirty.notify_one();
    }
}

fn restore(v: &mut Value, old: &Value, key: &str) {
    match old.get(key) {
        Some(o) => v[key] = o.clone(),
        None => {
            if let Some(m) = v.as_object_mut() {
                m.remove(key);
            }
        }
    }
}

fn object_name(v: &Value) -> Result<String, StoreError> {
    let name = v["metadata"]["name"].as_str().unwrap_or_default();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(name.to_string())
    } else {
        Err(StoreError::Invalid(format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain is required"
        )))
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
