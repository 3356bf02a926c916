//! The manifests work on the clusters users have: Kubernetes 1.20 (what
//! the real-cluster lab runs) and current releases. Current ones: every
//! file parses into k8s-openapi's types of a current API (`manifests.rs`).
//! 1.20: no field appears that a 1.20 API server does not know (it drops
//! unknown fields silently or, like a container's `restartPolicy`,
//! refuses the pod).

mod common;

use common::checked_in;
use ferry_deploy::{Images, Object};
use serde_json::Value;

/// Pod-spec fields (any depth) newer than Kubernetes 1.20, with the
/// release that added them.
const NEWER_THAN_1_20: &[(&str, &str)] = &[
    ("restartPolicy", "1.28: a container's (native sidecars)"),
    ("os", "1.23: PodSpec.os"),
    ("hostUsers", "1.25"),
    ("schedulingGates", "1.26"),
    ("resourceClaims", "1.26"),
    ("nodeAffinityPolicy", "1.26"),
    ("nodeTaintsPolicy", "1.26"),
    ("matchLabelKeys", "1.27"),
    ("resizePolicy", "1.27"),
    ("sleep", "1.29: lifecycle sleep action"),
    ("appArmorProfile", "1.30"),
    ("recursiveReadOnly", "1.30"),
    ("stopSignal", "1.33"),
    ("hostnameOverride", "1.34"),
];

/// Every key in `v` that is in [`NEWER_THAN_1_20`], with its path.
fn newer_fields(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let here = format!("{path}.{k}");
                // A pod's own restartPolicy is as old as pods.
                let pod_level = k == "restartPolicy" && path.ends_with(".spec.template.spec");
                if !pod_level && NEWER_THAN_1_20.iter().any(|(f, _)| f == k) {
                    out.push(here.clone());
                }
                newer_fields(child, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                newer_fields(item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn daemonset_json(objects: &[Object]) -> Vec<Value> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::DaemonSet(d) => Some(serde_json::to_value(d.as_ref()).unwrap()),
            _ => None,
        })
        .collect()
}

#[test]
fn no_field_newer_than_kubernetes_1_20() {
    let mut seen = 0;
    for (file, objects) in checked_in() {
        for ds in daemonset_json(&objects) {
            let mut found = Vec::new();
            newer_fields(&ds, "", &mut found);
            assert!(
                found.is_empty(),
                "{file}: unknown to Kubernetes 1.20: {found:?}"
            );
            seen += 1;
        }
    }
    // Every file has its DaemonSet; ferry-wireguard.yaml has two (ferry's
    // and ferry-wireguard's).
    assert_eq!(
        seen,
        ferry_deploy::manifests(&Images::default()).len() + 1,
        "every DaemonSet checked"
    );

    // The check can fail: a native sidecar, as the ospf/bgp files had.
    let mut m = ferry_deploy::install(ferry_deploy::Routing::Ospf, &Images::default());
    for o in &mut m.objects {
        if let Object::DaemonSet(d) = o {
            let spec = d.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
            let mut frr = spec.containers.pop().unwrap();
            frr.restart_policy = Some("Always".into());
            spec.init_containers
                .get_or_insert_with(Vec::new)
                .insert(0, frr);
        }
    }
    let mut found = Vec::new();
    for ds in daemonset_json(&m.objects) {
        newer_fields(&ds, "", &mut found);
    }
    assert_eq!(
        found,
        [".spec.template.spec.initContainers[0].restartPolicy"]
    );
}
