//! ServiceAccount, ClusterRole and ClusterRoleBinding: exactly the calls
//! ferryd makes ([`ferryd::API_CALLS`], [`ferryd::NON_RESOURCE_URLS`]).

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};

use crate::pod::meta;
use crate::{Object, NAME, NAMESPACE};

/// The RBAC rules for ferryd: one per API call, plus `get` on the
/// non-resource URLs it reads.
pub fn rules() -> Vec<PolicyRule> {
    let mut rules: Vec<PolicyRule> = ferryd::API_CALLS
        .iter()
        .map(|c| PolicyRule {
            api_groups: Some(vec![c.group.to_string()]),
            resources: Some(vec![c.resource.to_string()]),
            verbs: c.verbs.iter().map(|v| v.to_string()).collect(),
            ..PolicyRule::default()
        })
        .collect();
    if !ferryd::NON_RESOURCE_URLS.is_empty() {
        rules.push(PolicyRule {
            non_resource_urls: Some(
                ferryd::NON_RESOURCE_URLS
                    .iter()
                    .map(|u| u.to_string())
                    .collect(),
            ),
            verbs: vec!["get".into()],
            ..PolicyRule::default()
        });
    }
    rules
}

pub fn objects() -> Vec<Object> {
    let service_account = ServiceAccount {
        metadata: meta(NAME, Some(NAMESPACE)),
        ..ServiceAccount::default()
    };
    let role = ClusterRole {
        metadata: meta(NAME, None),
        rules: Some(rules()),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata: meta(NAME, None),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: NAME.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: NAME.into(),
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
