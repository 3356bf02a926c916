//! One stored object version: its key, what selectors look at, and its
//! JSON exactly as clients receive it.

use bytes::Bytes;
use serde_json::Value;

use crate::kind::{Key, Kind};

/// An object's labels.
pub type Labels = std::collections::BTreeMap<String, String>;

/// One stored object version.
#[derive(Debug)]
pub(crate) struct Obj {
    pub kind: Kind,
    /// "" for cluster-scoped kinds.
    pub namespace: String,
    pub name: String,
    pub rv: u64,
    pub labels: Labels,
    /// The kind's selectable fields (see [`Kind::selectable_fields`]).
    pub fields: Vec<(&'static str, String)>,
    pub json: Bytes,
}

impl Obj {
    /// From a JSON object of `kind` whose `metadata.resourceVersion` is
    /// already set.
    pub fn from_value(kind: Kind, v: &Value, rv: u64) -> Obj {
        Obj::described(
            kind,
            v,
            rv,
            Bytes::from(serde_json::to_vec(v).expect("JSON value serializes")),
        )
    }

    fn described(kind: Kind, v: &Value, rv: u64, json: Bytes) -> Obj {
        let meta = &v["metadata"];
        let labels = meta["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let text = |f: &str| meta[f].as_str().unwrap_or_default().to_string();
        Obj {
            kind,
            namespace: text("namespace"),
            name: text("name"),
            rv,
            labels,
            fields: kind.field_values(v),
            json,
        }
    }

    /// From stored JSON bytes (kept as they are); objects without a
    /// `kind` are Nodes (snapshots of older servers).
    pub fn from_raw(raw: &[u8]) -> Result<Obj, String> {
        let v: Value = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
        let kind = match v["kind"].as_str() {
            None => Kind::Node,
            Some(k) => Kind::from_name(k).ok_or_else(|| format!("unknown kind {k:?}"))?,
        };
        let rv = v["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let obj = Obj::described(kind, &v, rv, Bytes::copy_from_slice(raw));
        if obj.name.is_empty() {
            return Err("an item has no metadata.name".into());
        }
        if kind.namespaced() && obj.namespace.is_empty() {
            return Err(format!("{} {} has no namespace", kind.name(), obj.name));
        }
        Ok(obj)
    }

    pub fn key(&self) -> Key {
        (self.kind, self.namespace.clone(), self.name.clone())
    }

    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).expect("stored JSON parses")
    }

    /// The value of a selectable field (`metadata.*` included).
    pub fn field(&self, field: &str) -> &str {
        match field {
            "metadata.name" => &self.name,
            "metadata.namespace" => &self.namespace,
            _ => self
                .fields
                .iter()
                .find(|(f, _)| *f == field)
                .map_or("", |(_, v)| v.as_str()),
        }
    }

    /// As a typed object (the store validated it).
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.json).expect("stored objects are valid")
    }
}
