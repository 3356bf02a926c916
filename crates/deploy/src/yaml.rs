//! The objects a manifest holds, to YAML and back (multi-document).

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Deserialize;

/// One object of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    ServiceAccount(ServiceAccount),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    ConfigMap(ConfigMap),
    DaemonSet(Box<DaemonSet>),
}

/// Why a manifest did not parse.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("document {doc}: {source}")]
    Yaml {
        doc: usize,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("document {doc}: no kind")]
    NoKind { doc: usize },
    #[error("document {doc}: kind {kind} is not one ferry's manifests use")]
    UnknownKind { doc: usize, kind: String },
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::ClusterRole(_) => "ClusterRole",
            Object::ClusterRoleBinding(_) => "ClusterRoleBinding",
            Object::ConfigMap(_) => "ConfigMap",
            Object::DaemonSet(_) => "DaemonSet",
        }
    }

    pub fn name(&self) -> Option<&str> {
        let meta = match self {
            Object::ServiceAccount(o) => &o.metadata,
            Object::ClusterRole(o) => &o.metadata,
            Object::ClusterRoleBinding(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::DaemonSet(o) => &o.metadata,
        };
        meta.name.as_deref()
    }

    /// One YAML document (without the `---` line).
    pub fn to_yaml(&self) -> String {
        let r = match self {
            Object::ServiceAccount(o) => serde_yaml::to_string(o),
            Object::ClusterRole(o) => serde_yaml::to_string(o),
            Object::ClusterRoleBinding(o) => serde_yaml::to_string(o),
            Object::ConfigMap(o) => serde_yaml::to_string(o),
            Object::DaemonSet(o) => serde_yaml::to_string(o),
        };
        r.expect("k8s-openapi objects serialize")
    }
}

/// Parses a multi-document manifest into typed objects (k8s-openapi checks
/// `apiVersion` and `kind`). Empty documents are skipped.
pub fn parse(text: &str) -> Result<Vec<Object>, YamlError> {
    let mut out = Vec::new();
    for (doc, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let yaml = |source| YamlError::Yaml { doc, source };
        let value = serde_yaml::Value::deserialize(de).map_err(yaml)?;
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or(YamlError::NoKind { doc })?
            .to_string();
        let object = match kind.as_str() {
            "ServiceAccount" => {
                Object::ServiceAccount(serde_yaml::from_value(value).map_err(yaml)?)
            }
            "ClusterRole" => Object::ClusterRole(serde_yaml::from_value(value).map_err(yaml)?),
            "ClusterRoleBinding" => {
                Object::ClusterRoleBinding(serde_yaml::from_value(value).map_err(yaml)?)
            }
            "ConfigMap" => Object::ConfigMap(serde_yaml::from_value(value).map_err(yaml)?),
            "DaemonSet" => {
                Object::DaemonSet(Box::new(serde_yaml::from_value(value).map_err(yaml)?))
            }
            _ => return Err(YamlError::UnknownKind { doc, kind }),
        };
        out.push(object);
    }
    Ok(out)
}
