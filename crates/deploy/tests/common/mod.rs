//! Reading the checked-in manifests back, and what ferryd says it accepts.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;

use ferry_deploy::Object;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Container, PodSpec, Volume};

/// `deploy/` at the repository root.
pub fn deploy_dir() -> PathBuf {
    ferry_deploy::default_out_dir()
}

pub fn read(file: &str) -> String {
    let path = deploy_dir().join(file);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every checked-in manifest, parsed: (file, objects).
pub fn checked_in() -> Vec<(String, Vec<Object>)> {
    ferry_deploy::manifests(&ferry_deploy::Images::default())
        .into_iter()
        .map(|m| {
            let objects =
                ferry_deploy::parse(&read(m.file)).unwrap_or_else(|e| panic!("{}: {e}", m.file));
            (m.file.to_string(), objects)
        })
        .collect()
}

pub fn daemonsets(objects: &[Object]) -> Vec<&DaemonSet> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::DaemonSet(d) => Some(d.as_ref()),
            _ => None,
        })
        .collect()
}

pub fn pod(ds: &DaemonSet) -> &PodSpec {
    ds.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod spec")
}

/// Init containers first, in order, then the containers.
pub fn containers(spec: &PodSpec) -> Vec<&Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect()
}

/// Whether the container runs ferryd.
pub fn runs_ferryd(c: &Container) -> bool {
    c.command
        .as_ref()
        .and_then(|cmd| cmd.first())
        .is_some_and(|exe| exe.rsplit('/').next() == Some("ferryd"))
}

pub fn volume<'a>(spec: &'a PodSpec, name: &str) -> &'a Volume {
    spec.volumes
        .iter()
        .flatten()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
}

/// A literal environment value of the container.
pub fn env_value<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

/// What ferryd's `--long` is in this container: its environment variable
/// when set, else the flag's default.
pub fn effective(c: &Container, long: &str) -> Option<String> {
    let flag = ferryd::cli::flags()
        .into_iter()
        .find(|f| f.long == long)
        .unwrap_or_else(|| panic!("ferryd has no --{long}"));
    flag.env
        .as_deref()
        .and_then(|env| env_value(c, env))
        .map(String::from)
        .or(flag.default)
}
