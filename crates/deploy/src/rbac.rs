//! ServiceAccount, ClusterRole and ClusterRoleBinding: exactly the calls
//! ferryd makes ([`ferryd::API_CALLS`], [`ferryd::NON_RESOURCE_URLS`]; for
//! the uninstall DaemonSet [`ferryd::UNINSTALL_API_CALLS`]).

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};

use crate::objects::{meta, meta_for};
use crate::{Object, NAME, NAMESPACE};

/// The RBAC rules for `calls`: one per API call, plus `get` on the
/// non-resource URLs.
pub fn rules(calls: &[ferryd::ApiCall], urls: &[&str]) -> Vec<PolicyRule> {
    let mut rules: Vec<PolicyRule> = calls
        .iter()
        .map(|c| PolicyRule {
            api_groups: Some(vec![c.group.to_string()]),
            resources: Some(vec![c.resource.to_string()]),
            verbs: c.verbs.iter().map(|v| v.to_string()).collect(),
            ..PolicyRule::default()
        })
        .collect();
    if !urls.is_empty() {
        rules.push(PolicyRule {
            non_resource_urls: Some(urls.iter().map(|u| u.to_string()).collect()),
            verbs: vec!["get".into()],
            ..PolicyRule::default()
        });
    }
    rules
}

/// ferry's account and its rights: what `ferryd run`, `install`,
/// `prepare` and `status` call.
pub fn objects() -> Vec<Object> {
    objects_for(NAME, ferryd::API_CALLS, ferryd::NON_RESOURCE_URLS)
}

/// An account `name` (labelled as app `name`) allowed exactly `calls`
/// and `urls`.
pub fn objects_for(name: &str, calls: &[ferryd::ApiCall], urls: &[&str]) -> Vec<Object> {
    let meta = |ns| {
        if name == NAME {
            meta(name, ns)
        } else {
            meta_for(name, ns, name)
        }
    };
    let service_account = ServiceAccount {
        metadata: meta(Some(NAMESPACE)),
        ..ServiceAccount::default()
    };
    let role = ClusterRole {
        metadata: meta(None),
        rules: Some(rules(calls, urls)),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata: meta(None),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: name.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(NAMESPACE.into()),
            ..Subject::default()
        }]),
    };
    vec![
        Object::ServiceAccount(service_account),
        Object::ClusterRole(role),
        Object::ClusterRoleBinding(binding),
    ]
}
