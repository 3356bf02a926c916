//! Small builders for the Kubernetes objects every manifest is made of:
//! metadata with ferry's label, environment variables, mounts, capability
//! sets and resource requirements. No ferry policy here (that is in
//! [`crate::pod`] and [`crate::frr`]), so both use these and neither
//! depends on the other.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Capabilities, EnvVar, ResourceRequirements, VolumeMount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::NAME;

/// The label every object carries and the DaemonSets select on.
pub const APP_LABEL: &str = "app.kubernetes.io/name";

pub fn labels(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(APP_LABEL.to_string(), app.to_string())])
}

pub fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    meta_for(name, namespace, NAME)
}

pub fn meta_for(name: &str, namespace: Option<&str>, app: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(String::from),
        labels: Some(labels(app)),
        ..ObjectMeta::default()
    }
}

pub fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

pub fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

pub fn capabilities(drop_all: bool, add: &[&str]) -> Capabilities {
    Capabilities {
        drop: drop_all.then(|| vec!["ALL".to_string()]),
        add: Some(add.iter().map(|c| c.to_string()).collect()),
    }
}

pub fn resources(cpu: &str, memory: (&str, &str)) -> ResourceRequirements {
    let q = |s: &str| Quantity(s.to_string());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), q(cpu)),
            ("memory".to_string(), q(memory.0)),
        ])),
        limits: Some(BTreeMap::from([("memory".to_string(), q(memory.1))])),
        ..ResourceRequirements::default()
    }
}
