//! The object store: objects of every [`Kind`] kept as serialized JSON,
//! one global resourceVersion counter (as etcd's revision), and a bounded
//! history of watch events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::error::StoreError;
pub(crate) use crate::kind::Key;
use crate::kind::{key, Kind};
pub(crate) use crate::obj::Obj;
use crate::persist::Persist;
use crate::util;

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
    /// The object before the change (for selector transitions: labels
    /// and fields).
    pub prev: Option<Arc<Obj>>,
}

pub(crate) struct State {
    pub rv: u64,
    pub objects: BTreeMap<Key, Arc<Obj>>,
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

/// Cheap, cloneable handle to the object store of a server.
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
    /// `PATCH/PUT …/NAME`: `status` changes are dropped.
    Main,
    /// `PATCH/PUT …/NAME/status`: `spec` changes are dropped.
    Status,
}

impl Store {
    /// A store that keeps nothing on disk.
    pub fn in_memory(history: usize) -> Store {
        Store::build(0, BTreeMap::new(), history, None)
    }

    pub(crate) fn build(
        rv: u64,
        objects: BTreeMap<Key, Arc<Obj>>,
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

    /// Write the store to the state dir now, if anything changed.
    pub fn flush(&self) -> Result<(), StoreError> {
        match &self.inner.persist {
            Some(p) => p.flush(|| self.take_dirty(), || self.mark_dirty()),
            None => Ok(()),
        }
    }

    pub(crate) fn get_obj(&self, key: &Key) -> Option<Arc<Obj>> {
        self.lock().objects.get(key).cloned()
    }

    /// Current resourceVersion and all objects of `kind` (by namespace,
    /// then name).
    pub(crate) fn snapshot_of(&self, kind: Kind) -> (u64, Vec<Arc<Obj>>) {
        let st = self.lock();
        (
            st.rv,
            st.objects
                .range(kind_range(kind))
                .map(|(_, o)| o.clone())
                .collect(),
        )
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

    /// Create an object; `AlreadyExists` if the name is taken.
    pub(crate) fn create(&self, kind: Kind, v: Value) -> Result<Arc<Obj>, StoreError> {
        self.upsert(kind, v, true)
    }

    /// Add or replace (create-only when `create_only`).
    pub(crate) fn upsert(
        &self,
        kind: Kind,
        mut v: Value,
        create_only: bool,
    ) -> Result<Arc<Obj>, StoreError> {
        let name = object_name(&v)?;
        let namespace = match kind.namespaced() {
            true => object_name(&json!({"metadata": {"name": v["metadata"]["namespace"]}}))
                .map_err(|_| StoreError::Invalid("metadata.namespace: Required value".into()))?,
            false => String::new(),
        };
        let mut st = self.lock();
        let k = key(kind, &namespace, &name);
        let prev = st.objects.get(&k).cloned();
        if let Some(prev) = &prev {
            if create_only {
                return Err(StoreError::AlreadyExists(kind.plural(), name));
            }
            let old = prev.value();
            v["metadata"]["uid"] = old["metadata"]["uid"].clone();
            v["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
        } else {
            let ns = key(Kind::Namespace, "", &namespace);
            if kind.namespaced() && !st.objects.contains_key(&ns) {
                return Err(StoreError::NotFound("namespaces", namespace));
            }
            v["metadata"]["uid"] = json!(util::uuid());
            v["metadata"]["creationTimestamp"] = json!(util::now_rfc3339());
        }
        self.commit(&mut st, kind, v, prev)
    }

    /// Change an object with `f` (which sees the current JSON). A change
    /// that leaves the object as it was commits nothing.
    pub(crate) fn update(
        &self,
        key: &Key,
        scope: Scope,
        f: impl FnOnce(&mut Value) -> Result<(), StoreError>,
    ) -> Result<Arc<Obj>, StoreError> {
        let (kind, _, name) = key;
        let mut st = self.lock();
        let prev = st
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(kind.plural(), name.clone()))?;
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
                    resource: kind.plural(),
                    name: name.to_string(),
                    given: given.to_string(),
                    current: prev.rv,
                });
            }
        }
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "resourceVersion",
        ] {
            v["metadata"][field] = old["metadata"][field].clone();
        }
        match scope {
            Scope::All => {}
            Scope::Main => restore(&mut v, &old, "status"),
            Scope::Status => restore(&mut v, &old, "spec"),
        }
        self.commit(&mut st, *kind, v, Some(prev))
    }

    /// Delete an object; a Namespace takes its pods and policies with it
    /// (at once: there is no Terminating phase here).
    pub(crate) fn delete(&self, key: &Key) -> Result<Arc<Obj>, StoreError> {
        let gone = self.delete_one(key)?;
        if key.0 == Kind::Namespace {
            let inside: Vec<Key> = {
                let st = self.lock();
                st.objects
                    .keys()
                    .filter(|(k, ns, _)| k.namespaced() && *ns == key.2)
                    .cloned()
                    .collect()
            };
            for k in inside {
                // Gone already is fine: someone else deleted it meanwhile.
                let _ = self.delete_one(&k);
            }
        }
        Ok(gone)
    }

    fn delete_one(&self, key: &Key) -> Result<Arc<Obj>, StoreError> {
        let mut st = self.lock();
        let prev = st
            .objects
            .remove(key)
            .ok_or_else(|| StoreError::NotFound(key.0.plural(), key.2.clone()))?;
        if let Some(p) = &self.inner.persist {
            if let Err(e) = p.reserve(st.rv + 1) {
                st.objects.insert(key.clone(), prev);
                return Err(e);
            }
        }
        let rv = st.rv + 1;
        let mut v = prev.value();
        v["metadata"]["resourceVersion"] = json!(rv.to_string());
        let obj = Arc::new(Obj::from_value(prev.kind, &v, rv));
        self.record(&mut st, EventType::Deleted, obj, Some(prev.clone()));
        Ok(prev)
    }

    /// Validate `v`, give it the next resourceVersion and store it.
    fn commit(
        &self,
        st: &mut State,
        kind: Kind,
        mut v: Value,
        prev: Option<Arc<Obj>>,
    ) -> Result<Arc<Obj>, StoreError> {
        v["kind"] = json!(kind.name());
        v["apiVersion"] = json!(kind.api_version());
        if !kind.namespaced() {
            if let Some(m) = v["metadata"].as_object_mut() {
                m.remove("namespace");
            }
        }
        if let Some(p) = &prev {
            v["metadata"]["resourceVersion"] = json!(p.rv.to_string());
            if v == p.value() {
                return Ok(p.clone());
            }
        }
        kind.validate(&v).map_err(StoreError::Invalid)?;
        if let Some(p) = &self.inner.persist {
            p.reserve(st.rv + 1)?;
        }
        let rv = st.rv + 1;
        v["metadata"]["resourceVersion"] = json!(rv.to_string());
        let obj = Arc::new(Obj::from_value(kind, &v, rv));
        st.objects.insert(obj.key(), obj.clone());
        let kind = match prev {
            Some(_) => EventType::Modified,
            None => EventType::Added,
        };
        self.record(st, kind, obj.clone(), prev);
        Ok(obj)
    }

    fn record(&self, st: &mut State, kind: EventType, obj: Arc<Obj>, prev: Option<Arc<Obj>>) {
        st.rv = obj.rv;
        st.history.push_back(Arc::new(Event {
            rv: obj.rv,
            kind,
            obj,
            prev,
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

/// Every key of `kind`.
pub(crate) fn kind_range(kind: Kind) -> std::ops::RangeInclusive<Key> {
    key(kind, "", "")..=key(kind, "\u{10ffff}", "")
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

#[path = "store_api.rs"]
mod api;

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
