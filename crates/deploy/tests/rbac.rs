//! The ClusterRole in every manifest grants exactly the API calls ferryd
//! makes (`ferryd::API_CALLS`, `ferryd::NON_RESOURCE_URLS`), no more.

mod common;

use std::collections::BTreeSet;

use common::*;
use ferry_deploy::Object;

/// `(group, resource, verb)` and `(url, verb)` as the ClusterRole grants.
type Grants = (
    BTreeSet<(String, String, String)>,
    BTreeSet<(String, String)>,
);

/// What a ClusterRole must grant for these calls and URLs.
fn grants(calls: &[ferryd::ApiCall], urls: &[&str]) -> Grants {
    let mut want: Grants = Default::default();
    for call in calls {
        for verb in call.verbs {
            want.0
                .insert((call.group.into(), call.resource.into(), verb.to_string()));
        }
    }
    for url in urls {
        want.1.insert((url.to_string(), "get".into()));
    }
    want
}

#[test]
fn cluster_role_grants_exactly_ferryds_api_calls() {
    for (file, objects) in checked_in() {
        // The uninstall DaemonSet only removes ferry's condition from its
        // Node; ferry's own DaemonSet makes every call ferryd makes.
        let want = if file == ferry_deploy::UNINSTALL_FILE {
            grants(ferryd::UNINSTALL_API_CALLS, &[])
        } else {
            grants(ferryd::API_CALLS, ferryd::NON_RESOURCE_URLS)
        };
        let roles: Vec<_> = objects
            .iter()
            .filter_map(|o| match o {
                Object::ClusterRole(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(roles.len(), 1, "{file}");
        let mut got: Grants = Default::default();
        for rule in roles[0].rules.iter().flatten() {
            for verb in &rule.verbs {
                for url in rule.non_resource_urls.iter().flatten() {
                    got.1.insert((url.clone(), verb.clone()));
                }
                for group in rule.api_groups.iter().flatten() {
                    for resource in rule.resources.iter().flatten() {
                        got.0
                            .insert((group.clone(), resource.clone(), verb.clone()));
                    }
                }
            }
            assert!(rule.resource_names.is_none(), "{file}: no resourceNames");
        }
        assert_eq!(got, want, "{file}");
        assert!(got.0.iter().all(|(_, _, v)| v != "*"), "no wildcards");

        // Bound to the account the DaemonSet runs as.
        let binding = objects
            .iter()
            .find_map(|o| match o {
                Object::ClusterRoleBinding(b) => Some(b),
                _ => None,
            })
            .expect("a binding");
        assert_eq!(
            binding.role_ref.name,
            roles[0].metadata.name.clone().unwrap()
        );
        let spec = pod(daemonsets(&objects)[0]);
        let account = spec.service_account_name.clone().expect("an account");
        let subjects = binding.subjects.clone().unwrap_or_default();
        assert_eq!(subjects.len(), 1);
        assert_eq!(
            (subjects[0].kind.as_str(), subjects[0].name.as_str()),
            ("ServiceAccount", account.as_str())
        );
        assert_eq!(
            subjects[0].namespace.as_deref(),
            Some(ferry_deploy::NAMESPACE)
        );
    }
}
