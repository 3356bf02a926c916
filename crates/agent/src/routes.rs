//! Kernel routes to other nodes' podCIDRs, owned by `proto 201`
//! ([`RTPROT_FERRY_NODE`]). ferryd converges only those: it adds what is
//! missing, replaces what changed (in place: no gap in forwarding), deletes
//! stale ones, and never touches a route of another protocol.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferry_netlink::{Family, Handle, Route, RouteKind, RTPROT_FERRY_NODE, RT_TABLE_MAIN};
use ipnet::IpNet;

use crate::AgentError;

/// A route ferryd wants: `dst via gw dev oif proto 201`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteSpec {
    pub dst: IpNet,
    pub via: IpAddr,
    pub oif: u32,
    /// `onlink`: the gateway needs no covering prefix (VXLAN peers).
    pub onlink: bool,
    /// The Node the podCIDR belongs to (for logs and status).
    pub node: String,
}

impl RouteSpec {
    pub fn to_route(&self) -> Route {
        let r = Route::new(self.dst)
            .via(self.via)
            .dev(self.oif)
            .protocol(RTPROT_FERRY_NODE);
        if self.onlink {
            r.onlink()
        } else {
            r
        }
    }
}

/// One change to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp {
    /// Add, or replace in place (same destination and metric).
    Replace(Route),
    /// Delete an owned route nobody wants any more.
    Delete(Route),
}

/// The changes that make `owned` (the node's `proto 201` routes) match
/// `desired`, plus the desired routes left out because a route of another
/// protocol already holds the destination at the same metric.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutePlan {
    pub ops: Vec<RouteOp>,
    pub conflicts: Vec<(RouteSpec, Route)>,
}

/// The kernel's metric for a route without one.
fn metric(r: &Route) -> u32 {
    r.priority.unwrap_or(match r.family() {
        Family::V4 => 0,
        Family::V6 => 1024,
    })
}

/// Pure: what to do, given the main table's routes (`current`, all
/// protocols) and the desired routes.
pub fn plan(current: &[Route], desired: &[RouteSpec]) -> RoutePlan {
    let mut out = RoutePlan::default();
    let owned: BTreeMap<IpNet, Vec<&Route>> = current
        .iter()
        .filter(|r| r.protocol == RTPROT_FERRY_NODE)
        .fold(BTreeMap::new(), |mut m, r| {
            m.entry(r.dst).or_default().push(r);
            m
        });
    let wanted: BTreeMap<IpNet, &RouteSpec> = desired.iter().map(|d| (d.dst, d)).collect();

    for (dst, spec) in &wanted {
        let want = spec.to_route();
        let blocker = current.iter().find(|r| {
            r.protocol != RTPROT_FERRY_NODE && r.dst == *dst && metric(r) == metric(&want)
        });
        if let Some(other) = blocker {
            out.conflicts.push(((*spec).clone(), other.clone()));
            continue;
        }
        let mine = owned.get(dst).map(Vec::as_slice).unwrap_or_default();
        let exact = mine.iter().any(|r| {
            r.gateway == Some(spec.via)
                && r.oif == Some(spec.oif)
                && r.onlink == spec.onlink
                && r.kind == RouteKind::Unicast
                && metric(r) == metric(&want)
        });
        if !exact {
            out.ops.push(RouteOp::Replace(want.clone()));
        }
        // Extra owned routes to the same destination at other metrics.
        for r in mine.iter().filter(|r| metric(r) != metric(&want)) {
            out.ops.push(RouteOp::Delete((*r).clone()));
        }
    }
    for (dst, routes) in &owned {
        if !wanted.contains_key(dst) {
            out.ops
                .extend(routes.iter().map(|r| RouteOp::Delete((*r).clone())));
        }
    }
    out
}

/// The main table's routes of both families, all protocols.
pub fn main_routes(h: &mut Handle) -> Result<Vec<Route>, AgentError> {
    let mut all = h
        .routes(Family::V4, Some(RT_TABLE_MAIN))
        .map_err(|e| AgentError::netlink("list IPv4 routes", e))?;
    all.extend(
        h.routes(Family::V6, Some(RT_TABLE_MAIN))
            .map_err(|e| AgentError::netlink("list IPv6 routes", e))?,
    );
    Ok(all)
}

/// ferryd's routes (`proto 201`) in the main table.
pub fn owned(h: &mut Handle) -> Result<Vec<Route>, AgentError> {
    Ok(main_routes(h)?
        .into_iter()
        .filter(|r| r.protocol == RTPROT_FERRY_NODE)
        .collect())
}

/// What [`converge`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteChanges {
    pub replaced: usize,
    pub deleted: usize,
    pub conflicts: Vec<(RouteSpec, Route)>,
    /// Owned routes after the change.
    pub owned: usize,
}

/// Makes the node's owned routes match `desired`.
pub fn converge(h: &mut Handle, desired: &[RouteSpec]) -> Result<RouteChanges, AgentError> {
    let current = main_routes(h)?;
    let plan = plan(&current, desired);
    let current = &current;
    let mut changes = RouteChanges {
        conflicts: plan.conflicts,
        ..Default::default()
    };
    // Deletes of routes to destinations that stay wanted come after the
    // replace, so forwarding never has a gap; stale ones go last as well.
    for op in &plan.ops {
        if let RouteOp::Replace(r) = op {
            let replaced = match h.replace_route(r) {
                // IPv6 refuses an onlink gateway that the very route being
                // replaced covers through another device ("Nexthop has
                // invalid gateway or device mismatch"), e.g. when a peer
                // moves from ferry.wg to ferry.vxlan: delete, then add.
                Err(e) if r.onlink && e.errno() == Some(nix::libc::EINVAL) => {
                    for old in current
                        .iter()
                        .filter(|c| c.protocol == RTPROT_FERRY_NODE && c.dst == r.dst)
                    {
                        h.delete_route(old).map_err(|e| {
                            AgentError::netlink(format!("route delete {}", r.dst), e)
                        })?;
                    }
                    h.replace_route(r)
                }
                other => other,
            };
            replaced.map_err(|e| AgentError::netlink(format!("route replace {}", r.dst), e))?;
            tracing::info!(dst = %r.dst, via = ?r.gateway, "route set");
            changes.replaced += 1;
        }
    }
    for op in &plan.ops {
        if let RouteOp::Delete(r) = op {
            if h.delete_route(r)
                .map_err(|e| AgentError::netlink(format!("route delete {}", r.dst), e))?
            {
                tracing::info!(dst = %r.dst, via = ?r.gateway, "stale route removed");
                changes.deleted += 1;
            }
        }
    }
    changes.owned = desired.len() - changes.conflicts.len();
    Ok(changes)
}

/// Deletes every owned route (uninstall); returns how many.
pub fn delete_all(h: &mut Handle) -> Result<usize, AgentError> {
    let mut n = 0;
    for r in owned(h)? {
        if h.delete_route(&r)
            .map_err(|e| AgentError::netlink(format!("route delete {}", r.dst), e))?
        {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_netlink::RTPROT_BOOT;

    fn spec(dst: &str, via: &str, oif: u32) -> RouteSpec {
        RouteSpec {
            dst: dst.parse().unwrap(),
            via: via.parse().unwrap(),
            oif,
            onlink: false,
            node: "n".into(),
        }
    }

    fn kernel(r: Route) -> Route {
        // What a dump returns: the table and (v6) the metric are filled in.
        let m = metric(&r);
        Route {
            priority: Some(m),
            ..r
        }
    }

    #[test]
    fn adds_missing_keeps_equal_replaces_changed_deletes_stale() {
        let current = vec![
            kernel(spec("10.244.1.0/24", "172.16.97.76", 2).to_route()),
            kernel(spec("10.244.2.0/24", "172.16.97.70", 2).to_route()),
            kernel(spec("10.244.9.0/24", "172.16.97.79", 2).to_route()),
            // Not ours: never touched.
            Route::new("10.9.0.0/16".parse().unwrap()).via("172.16.97.1".parse().unwrap()),
            kernel(Route::new("fd00:9::/64".parse().unwrap()).protocol(RTPROT_BOOT)),
        ];
        let desired = vec![
            spec("10.244.1.0/24", "172.16.97.76", 2),
            spec("10.244.2.0/24", "172.16.97.77", 2),
            spec("10.244.3.0/24", "172.16.97.78", 2),
            spec("fd00:10:244:3::/64", "fd97::78", 2),
        ];
        let p = plan(&current, &desired);
        assert!(p.conflicts.is_empty());
        let mut replaced: Vec<String> = Vec::new();
        let mut deleted: Vec<String> = Vec::new();
        for op in &p.ops {
            match op {
                RouteOp::Replace(r) => {
                    assert_eq!(r.protocol, RTPROT_FERRY_NODE);
                    replaced.push(format!("{} {}", r.dst, r.gateway.unwrap()));
                }
                RouteOp::Delete(r) => {
                    assert_eq!(r.protocol, RTPROT_FERRY_NODE);
                    deleted.push(r.dst.to_string());
                }
            }
        }
        replaced.sort();
        assert_eq!(
            replaced,
            [
                "10.244.2.0/24 172.16.97.77",
                "10.244.3.0/24 172.16.97.78",
                "fd00:10:244:3::/64 fd97::78"
            ]
        );
        assert_eq!(deleted, ["10.244.9.0/24"]);
    }

    #[test]
    fn converged_state_plans_nothing() {
        let desired = vec![
            spec("10.244.1.0/24", "172.16.97.76", 2),
            spec("fd00:10:244:1::/64", "fd97::76", 2),
        ];
        let current: Vec<Route> = desired.iter().map(|d| kernel(d.to_route())).collect();
        assert_eq!(plan(&current, &desired), RoutePlan::default());
    }

    #[test]
    fn onlink_change_is_a_replace() {
        let current = vec![kernel(spec("10.244.1.0/24", "10.244.1.0", 7).to_route())];
        let want = RouteSpec {
            onlink: true,
            ..spec("10.244.1.0/24", "10.244.1.0", 7)
        };
        let p = plan(&current, std::slice::from_ref(&want));
        assert!(matches!(p.ops.as_slice(), [RouteOp::Replace(r)] if r.onlink));
        let current = vec![kernel(want.to_route())];
        assert_eq!(plan(&current, &[want]), RoutePlan::default());
    }

    #[test]
    fn interface_change_is_a_replace() {
        let current = vec![kernel(spec("10.244.1.0/24", "172.16.97.76", 2).to_route())];
        let p = plan(&current, &[spec("10.244.1.0/24", "172.16.97.76", 3)]);
        assert!(matches!(p.ops.as_slice(), [RouteOp::Replace(r)] if r.oif == Some(3)));
    }

    #[test]
    fn a_foreign_route_at_the_same_metric_is_a_conflict() {
        let foreign = Route::new("10.244.1.0/24".parse().unwrap())
            .via("172.16.97.1".parse().unwrap())
            .protocol(RTPROT_BOOT);
        let p = plan(
            std::slice::from_ref(&foreign),
            &[spec("10.244.1.0/24", "172.16.97.76", 2)],
        );
        assert!(p.ops.is_empty());
        assert_eq!(p.conflicts.len(), 1);
        assert_eq!(p.conflicts[0].1, foreign);
        // At another metric it is no conflict.
        let p = plan(
            &[foreign.priority(100)],
            &[spec("10.244.1.0/24", "172.16.97.76", 2)],
        );
        assert_eq!(p.ops.len(), 1);
        assert!(p.conflicts.is_empty());
    }

    #[test]
    fn nothing_desired_removes_all_owned() {
        let current = vec![
            kernel(spec("10.244.1.0/24", "172.16.97.76", 2).to_route()),
            kernel(
                spec("10.244.1.0/24", "172.16.97.76", 2)
                    .to_route()
                    .priority(5),
            ),
        ];
        let p = plan(&current, &[]);
        assert_eq!(p.ops.len(), 2);
        assert!(p.ops.iter().all(|o| matches!(o, RouteOp::Delete(_))));
    }
}
