//! From the API's types (k8s-openapi) to the slim [`crate::model`].

use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as net;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::error::{ConvertError, PolicyProblem};
use crate::model::{
    LabelSelector, NamedPort, Namespace, NetworkPolicy, Operator, Peer, Pod, PolicyTypes, Port,
    PortRef, Protocol, Requirement, Rule,
};

/// A Namespace: name and labels. `None` without a name.
pub fn namespace(ns: &core::Namespace) -> Option<Namespace> {
    Some(Namespace {
        name: ns.metadata.name.clone()?,
        labels: ns.metadata.labels.clone().unwrap_or_default(),
    })
}

/// A Pod, or `None` when it has no namespace/name or has finished
/// (Succeeded/Failed: its addresses may already be someone else's).
pub fn pod(p: &core::Pod) -> Option<Pod> {
    let status = p.status.as_ref();
    if status
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|ph| ph == "Succeeded" || ph == "Failed")
    {
        return None;
    }
    let spec = p.spec.as_ref();
    let mut ips: Vec<IpAddr> = status
        .and_then(|s| s.pod_ips.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|a| a.ip.parse().ok())
        .collect();
    if ips.is_empty() {
        ips.extend(status.and_then(|s| s.pod_ip.as_deref()?.parse::<IpAddr>().ok()));
    }
    let mut ports = Vec::new();
    let containers: &[core::Container] = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    for c in containers {
        for cp in c.ports.iter().flatten() {
            let (Some(name), Ok(port)) = (&cp.name, u16::try_from(cp.container_port)) else {
                continue;
            };
            let protocol = match cp.protocol.as_deref() {
                None => Protocol::Tcp,
                Some(s) => match Protocol::parse(s) {
                    Some(p) => p,
                    None => continue,
                },
            };
            ports.push(NamedPort {
                name: name.clone(),
                protocol,
                port,
            });
        }
    }
    Some(Pod {
        namespace: p.metadata.namespace.clone()?,
        name: p.metadata.name.clone()?,
        labels: p.metadata.labels.clone().unwrap_or_default(),
        ips,
        node: spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        ports,
    })
}

/// A NetworkPolicy. `Err` when the policy as a whole is unusable (no
/// name, a bad podSelector or policyType); otherwise the policy with
/// every bad rule left out, and what was left out.
pub fn network_policy(
    np: &net::NetworkPolicy,
) -> Result<(NetworkPolicy, Vec<PolicyProblem>), PolicyProblem> {
    let namespace = np.metadata.namespace.clone().unwrap_or_default();
    let name = np.metadata.name.clone().unwrap_or_default();
    let key = format!("{namespace}/{name}");
    let problem = |place: &str, error| PolicyProblem {
        policy: key.clone(),
        place: place.to_string(),
        error,
    };
    if namespace.is_empty() {
        return Err(problem("metadata", ConvertError::MissingMeta("namespace")));
    }
    if name.is_empty() {
        return Err(problem("metadata", ConvertError::MissingMeta("name")));
    }
    let spec = np.spec.clone().unwrap_or_default();
    let pod_selector = match &spec.pod_selector {
        None => LabelSelector::everything(),
        Some(s) => selector(s).map_err(|e| problem("spec.podSelector", e))?,
    };
    let policy_types = match &spec.policy_types {
        None => None,
        Some(types) if types.is_empty() => None,
        Some(types) => {
            let mut t = PolicyTypes::default();
            for ty in types {
                match ty.as_str() {
                    "Ingress" => t.ingress = true,
                    "Egress" => t.egress = true,
                    other => {
                        let e = ConvertError::PolicyType(other.to_string());
                        return Err(problem("spec.policyTypes", e));
                    }
                }
            }
            Some(t)
        }
    };
    let mut problems = Vec::new();
    let mut ingress = Vec::new();
    for (i, r) in spec.ingress.iter().flatten().enumerate() {
        let place = format!("spec.ingress[{i}]");
        match rule(r.from.as_deref(), r.ports.as_deref(), "from") {
            Ok(rule) => ingress.push(rule),
            Err((at, e)) => problems.push(problem(&format!("{place}{at}"), e)),
        }
    }
    let mut egress = Vec::new();
    for (i, r) in spec.egress.iter().flatten().enumerate() {
        let place = format!("spec.egress[{i}]");
        match rule(r.to.as_deref(), r.ports.as_deref(), "to") {
            Ok(rule) => egress.push(rule),
            Err((at, e)) => problems.push(problem(&format!("{place}{at}"), e)),
        }
    }
    let mut policy = NetworkPolicy {
        namespace,
        name,
        pod_selector,
        policy_types,
        ingress,
        egress,
    };
    // Defaulting looks at the rules as written, not as kept.
    if policy.policy_types.is_none() {
        policy.policy_types = Some(PolicyTypes {
            ingress: true,
            egress: spec.egress.as_ref().is_some_and(|e| !e.is_empty()),
        });
    }
    Ok((policy, problems))
}

type RuleError = (String, ConvertError);

fn rule(
    peers: Option<&[net::NetworkPolicyPeer]>,
    ports: Option<&[net::NetworkPolicyPort]>,
    peers_field: &str,
) -> Result<Rule, RuleError> {
    let mut out = Rule::default();
    for (k, p) in peers.unwrap_or_default().iter().enumerate() {
        out.peers
            .push(peer(p).map_err(|e| (format!(".{peers_field}[{k}]"), e))?);
    }
    for (k, p) in ports.unwrap_or_default().iter().enumerate() {
        out.ports
            .push(port(p).map_err(|e| (format!(".ports[{k}]"), e))?);
    }
    Ok(out)
}

fn peer(p: &net::NetworkPolicyPeer) -> Result<Peer, ConvertError> {
    if let Some(b) = &p.ip_block {
        let cidr: IpNet = b
            .cidr
            .parse()
            .map_err(|_| ConvertError::Cidr(b.cidr.clone()))?;
        let mut except = Vec::new();
        for e in b.except.iter().flatten() {
            let n: IpNet = e.parse().map_err(|_| ConvertError::Cidr(e.clone()))?;
            if !cidr.trunc().contains(&n) {
                return Err(ConvertError::ExceptOutside {
                    cidr: b.cidr.clone(),
                    except: e.clone(),
                });
            }
            except.push(n);
        }
        return Ok(Peer::IpBlock { cidr, except });
    }
    if p.pod_selector.is_none() && p.namespace_selector.is_none() {
        return Err(ConvertError::EmptyPeer);
    }
    Ok(Peer::Pods {
        namespaces: p.namespace_selector.as_ref().map(selector).transpose()?,
        pods: p.pod_selector.as_ref().map(selector).transpose()?,
    })
}

fn port(p: &net::NetworkPolicyPort) -> Result<Port, ConvertError> {
    let protocol = match p.protocol.as_deref() {
        None => Protocol::Tcp,
        Some(s) => Protocol::parse(s).ok_or_else(|| ConvertError::Protocol(s.to_string()))?,
    };
    let number = |n: i64| {
        u16::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or(ConvertError::Port(n))
    };
    let port = match (&p.port, p.end_port) {
        (None, None) => None,
        (None, Some(_)) => return Err(ConvertError::EndPortAlone),
        (Some(IntOrString::String(s)), None) => match s.parse::<i64>() {
            // A number in string form is a number (the API accepts it).
            Ok(n) => Some(PortRef::Range {
                start: number(n)?,
                end: number(n)?,
            }),
            Err(_) => Some(PortRef::Named(s.clone())),
        },
        (Some(IntOrString::String(s)), Some(_)) => {
            return Err(ConvertError::EndPortNamed(s.clone()))
        }
        (Some(IntOrString::Int(n)), end) => {
            let start = number(*n as i64)?;
            let end = match end {
                None => start,
                Some(e) => {
                    let e16 = number(e as i64)?;
                    if e16 < start {
                        return Err(ConvertError::EndPortBelow {
                            start,
                            end: e as i64,
                        });
                    }
                    e16
                }
            };
            Some(PortRef::Range { start, end })
        }
    };
    Ok(Port { protocol, port })
}

/// A metav1.LabelSelector.
pub fn selector(s: &meta::LabelSelector) -> Result<LabelSelector, ConvertError> {
    let mut match_expressions = Vec::new();
    for r in s.match_expressions.iter().flatten() {
        let operator = match r.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => return Err(ConvertError::Operator(other.to_string())),
        };
        match_expressions.push(Requirement {
            key: r.key.clone(),
            operator,
            values: r.values.clone().unwrap_or_default(),
        });
    }
    Ok(LabelSelector {
        match_labels: s.match_labels.clone().unwrap_or_default(),
        match_expressions,
    })
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
