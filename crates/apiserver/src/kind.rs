//! The resources the server knows: how each is named on the wire, whether
//! it lives in a namespace, which fields its field selectors can use, and
//! how a stored object is checked.

use serde_json::Value;

/// A served resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    #[default]
    Node,
    Namespace,
    Pod,
    NetworkPolicy,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Node, Kind::Namespace, Kind::Pod, Kind::NetworkPolicy];

    /// `Node`, `Pod`, ... (the object's `kind`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Node => "Node",
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::NetworkPolicy => "NetworkPolicy",
        }
    }

    /// The resource in URLs and error messages: `nodes`, `pods`, ...
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Node => "nodes",
            Kind::Namespace => "namespaces",
            Kind::Pod => "pods",
            Kind::NetworkPolicy => "networkpolicies",
        }
    }

    /// `v1` or `networking.k8s.io/v1`.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::NetworkPolicy => "networking.k8s.io/v1",
            _ => "v1",
        }
    }

    pub fn namespaced(self) -> bool {
        matches!(self, Kind::Pod | Kind::NetworkPolicy)
    }

    /// The kind of `kind` (an object's `kind` field).
    pub fn from_name(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == kind)
    }

    /// Fields a field selector may name besides `metadata.name` and
    /// `metadata.namespace` (the ones the apiserver indexes).
    pub(crate) fn selectable_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Node => &["spec.unschedulable"],
            Kind::Namespace => &["status.phase"],
            Kind::Pod => &["spec.nodeName", "status.phase", "status.podIP"],
            Kind::NetworkPolicy => &[],
        }
    }

    /// The selectable fields of `v`, with their values ("" when unset).
    pub(crate) fn field_values(self, v: &Value) -> Vec<(&'static str, String)> {
        self.selectable_fields()
            .iter()
            .map(|f| {
                let mut cur = v;
                for part in f.split('.') {
                    cur = &cur[part];
                }
                let value = match cur {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    _ => String::new(),
                };
                (*f, value)
            })
            .collect()
    }

    /// Does `v` deserialize as this kind's k8s-openapi type?
    pub(crate) fn validate(self, v: &Value) -> Result<(), String> {
        use k8s_openapi::api::core::v1 as core;
        use k8s_openapi::api::networking::v1 as net;
        fn check<T: serde::de::DeserializeOwned>(v: &Value) -> Result<(), String> {
            <T as serde::Deserialize>::deserialize(v)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        match self {
            Kind::Node => check::<core::Node>(v),
            Kind::Namespace => check::<core::Namespace>(v),
            Kind::Pod => check::<core::Pod>(v),
            Kind::NetworkPolicy => check::<net::NetworkPolicy>(v),
        }
    }
}

/// Where an object is kept: kind, namespace ("" for cluster-scoped), name.
pub(crate) type Key = (Kind, String, String);

/// The key of `kind`/`namespace`/`name`.
pub(crate) fn key(kind: Kind, namespace: &str, name: &str) -> Key {
    (kind, namespace.to_string(), name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_fields() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
        let pod = json!({"spec": {"nodeName": "node-1"}, "status": {"phase": "Running"}});
        let f = Kind::Pod.field_values(&pod);
        assert!(f.contains(&("spec.nodeName", "node-1".to_string())));
        assert!(f.contains(&("status.podIP", String::new())));
        assert!(Kind::Pod
            .validate(&json!({"metadata": {"name": "p"}, "spec": {"containers": 3}}))
            .is_err());
    }
}
