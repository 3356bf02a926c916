//! OSPF mode: has this node's routing settled since FRR started?
//!
//! A DaemonSet rollout moves to the next node as soon as this node's pod
//! is Ready. Measured on the real cluster (FRR 8.4.4, MD5): a restarted
//! ospfd's first packets carry a cryptographic sequence number that starts
//! again from the clock, and the neighbor that kept the old one ahead of
//! the clock (bursts of DD/LSU/LSAck packets at adjacency time) refuses
//! them as "bad sequence" for as long as that lead: 18–30 s stuck in
//! ExStart with the Designated Router. Until the adjacency is Full again,
//! the restarting ospfd is still in its graceful restart, and a router in
//! graceful restart refuses to help another one (RFC 3623 3.1). So when the
//! next node restarts within that time, the routes between the two are
//! lost: 15–20 s of lost pings over the pairs of the three nodes in a run
//! of `scenario upgrade` (2026-12-06).
//!
//! FRR 8.4 does not show whether ospfd is in a graceful restart (no field
//! or line of `show ip ospf` says so). Two things do:
//! * the restart ends once its adjacencies are back (RFC 3623 2.3), so
//!   [`settled`] wants, in `show ip ospf neighbor json` (and `show ipv6
//!   ospf6 neighbor json` with an IPv6 pod CIDR), every neighbor in a
//!   stable state, Full (or 2-Way, as two DROthers stay on a broadcast
//!   network), and at least one Full when other nodes exist;
//! * a restarting ospfd runs no SPF until its restart is over (then it
//!   installs the results): `show ip ospf json` says `spfHasNotRun` the
//!   whole time ([`spf_has_run`]). This one matters: when the Designated
//!   Router changed meanwhile, ospfd's pre-restart router-LSA names a
//!   network-LSA that is gone, and its restart never sees its adjacencies
//!   "back", however Full they are; it ends only when the grace period
//!   does (seen on the real cluster: Full with both neighbors 32 s after
//!   the start, SPF first run after 111 s). ospfd now runs the node
//!   interface as point-to-multipoint (no DR, see `render`); ospf6d,
//!   broadcast in FRR 8.4, still elects one.
//!
//! ferryd reports ready only once both hold. Calico does the same with
//! BIRD (its readiness fails while BGP's graceful restart is in progress).
//!
//! The parsing and the decision are pure; [`Frr::ospf_adjacency`] only runs
//! the `show` commands.

use serde_json::Value;

use crate::spec::{FrrSpec, Mode};
use crate::{Frr, FrrError};

/// One OSPF neighbor as FRR shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbor {
    /// Its router ID.
    pub router_id: String,
    /// The neighbor state machine's state, without the role: `Full`,
    /// `2-Way`, `ExStart`, ... (ospf6d's spelling, e.g. `Twoway`, as
    /// given).
    pub state: String,
    /// Its role on the network: `DR`, `Backup` (ospf6d: `BDR`), `DROther`
    /// (empty when not shown).
    pub role: String,
}

impl Neighbor {
    fn full(&self) -> bool {
        self.state == "Full"
    }

    /// Full, or 2-Way with a DROther: where two routers stay when neither
    /// is the (Backup) Designated Router of a broadcast network. 2-Way with
    /// the DR or the Backup is a step on the way to Full. (A restarting
    /// router may see the DR as a DROther for its first seconds, before it
    /// has learned the roles; [`settled`] wants a Full neighbor too.)
    fn stable(&self) -> bool {
        self.full()
            || (matches!(self.state.as_str(), "2-Way" | "Twoway" | "TwoWay")
                && self.role == "DROther")
    }
}

/// ospfd's `show ip ospf neighbor json`: `{"neighbors": {"<router id>":
/// [{"nbrState": "Full/DR", ...}]}}` (one entry per interface the
/// neighbor is seen on).
pub fn ospf_neighbors(json: &str) -> Result<Vec<Neighbor>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let Some(map) = v.get("neighbors").and_then(Value::as_object) else {
        return Err("no \"neighbors\" object".into());
    };
    let mut out = Vec::new();
    for (id, entries) in map {
        for e in entries.as_array().into_iter().flatten() {
            let state = e
                .get("nbrState")
                .or_else(|| e.get("state"))
                .and_then(Value::as_str)
                .ok_or_else(|| format!("neighbor {id}: no state"))?;
            let (state, role) = state.split_once('/').unwrap_or((state, ""));
            out.push(Neighbor {
                router_id: id.clone(),
                state: state.into(),
                role: role.into(),
            });
        }
    }
    Ok(out)
}

/// ospf6d's `show ipv6 ospf6 neighbor json`: `{"neighbors":
/// [{"neighborId": "...", "state": "Full", "ifState": "DR", ...}]}`
/// (`ifState`: the neighbor's role).
pub fn ospf6_neighbors(json: &str) -> Result<Vec<Neighbor>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let Some(list) = v.get("neighbors").and_then(Value::as_array) else {
        return Err("no \"neighbors\" array".into());
    };
    list.iter()
        .map(|e| {
            let id = e.get("neighborId").and_then(Value::as_str);
            let state = e.get("state").and_then(Value::as_str);
            let role = e.get("ifState").and_then(Value::as_str).unwrap_or("");
            match (id, state) {
                (Some(id), Some(state)) => Ok(Neighbor {
                    router_id: id.into(),
                    state: state.into(),
                    role: role.into(),
                }),
                _ => Err(format!("a neighbor without neighborId or state: {e}")),
            }
        })
        .collect()
}

/// Whether ospfd has run its SPF since it started (`show ip ospf json`:
/// `spfLastExecutedMsecs`, or `spfHasNotRun`): not while in a graceful
/// restart.
pub fn spf_has_run(json: &str) -> Result<bool, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if v.get("spfLastExecutedMsecs").is_some() {
        return Ok(true);
    }
    match v.get("spfHasNotRun").and_then(Value::as_bool) {
        Some(true) => Ok(false),
        _ => Err("neither spfLastExecutedMsecs nor spfHasNotRun".into()),
    }
}

/// Whether one daemon's adjacencies have settled: `Err` says why not.
/// `expect_neighbors`: other nodes exist, so a node alone on its network
/// (no neighbor yet, e.g. right after start, before the first hellos) is
/// not settled.
pub fn settled(neighbors: &[Neighbor], expect_neighbors: bool) -> Result<(), String> {
    let unstable: Vec<String> = neighbors
        .iter()
        .filter(|n| !n.stable())
        .map(|n| format!("{} {}", n.router_id, n.state))
        .collect();
    if !unstable.is_empty() {
        return Err(format!("adjacencies forming: {}", unstable.join(", ")));
    }
    if expect_neighbors && !neighbors.iter().any(Neighbor::full) {
        return Err(match neighbors.len() {
            0 => "no neighbor yet".into(),
            n => format!("no Full adjacency among {n} neighbor(s)"),
        });
    }
    Ok(())
}

impl Frr {
    /// OSPF mode: `Ok(None)` when ospfd (and ospf6d with an IPv6 pod
    /// CIDR) have settled (see [`settled`]) and ospfd has run its SPF
    /// ([`spf_has_run`]), else what is still pending.
    /// Always settled in BGP mode.
    pub fn ospf_adjacency(
        &self,
        spec: &FrrSpec,
        expect_neighbors: bool,
    ) -> Result<Option<String>, FrrError> {
        if spec.mode != Mode::Ospf {
            return Ok(None);
        }
        let mut why = Vec::new();
        for v6 in [false, true] {
            if spec.cidrs(v6).is_empty() {
                continue;
            }
            let (daemon, neighbors) = if v6 {
                let n = self.parsed("show ipv6 ospf6 neighbor json", ospf6_neighbors)?;
                ("ospf6d", n)
            } else {
                (
                    "ospfd",
                    self.parsed("show ip ospf neighbor json", ospf_neighbors)?,
                )
            };
            if let Err(e) = settled(&neighbors, expect_neighbors) {
                why.push(format!("{daemon}: {e}"));
            } else if !v6 && !self.parsed("show ip ospf json", spf_has_run)? {
                why.push(format!(
                    "{daemon}: no SPF run yet (graceful restart in progress)"
                ));
            }
        }
        Ok((!why.is_empty()).then(|| why.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured on the lab's real cluster (FRR 8.4.4): a restarted node 2 s
    /// after its start (2-Way with the DR, which it sees as a DROther yet,
    /// the Backup not seen yet), and the same node settled (Full with both).
    const V4_RESTARTING: &str = include_str!("../testdata/frr-8.4/ospf-neighbor-restarting.json");
    const V4_FULL: &str = include_str!("../testdata/frr-8.4/ospf-neighbor-full.json");
    /// Another restarted node (the former DR), Exchanging databases with
    /// the Backup, its SPF not run yet; and 1 s later, settled.
    const V4_EXSTART: &str = include_str!("../testdata/frr-8.4/ospf-neighbor-exstart.json");
    const OSPF_RESTARTING: &str = include_str!("../testdata/frr-8.4/ospf-restarting.json");
    const OSPF_AFTER: &str = include_str!("../testdata/frr-8.4/ospf-after-restart.json");
    /// Captured in netns (crates/frr/tests/ospf.rs, dual stack): three
    /// nodes, ospf6d.
    const V6_FULL: &str = include_str!("../testdata/frr-8.4/ospf6-neighbor-full.json");

    fn n(id: &str, state: &str) -> Neighbor {
        nr(id, state, "DROther")
    }

    fn nr(id: &str, state: &str, role: &str) -> Neighbor {
        Neighbor {
            router_id: id.into(),
            state: state.into(),
            role: role.into(),
        }
    }

    #[test]
    fn reads_ospfd_neighbors_without_their_role() {
        assert_eq!(
            ospf_neighbors(V4_RESTARTING).unwrap(),
            vec![n("172.16.97.77", "2-Way")]
        );
        assert_eq!(
            ospf_neighbors(V4_EXSTART).unwrap(),
            vec![nr("172.16.97.76", "ExStart", "Backup")]
        );
        assert_eq!(
            ospf_neighbors(V4_FULL).unwrap(),
            vec![
                nr("172.16.97.76", "Full", "Backup"),
                nr("172.16.97.77", "Full", "DR")
            ]
        );
        assert_eq!(ospf_neighbors(r#"{"neighbors":{}}"#).unwrap(), vec![]);
        assert!(ospf_neighbors("% OSPF instance not found").is_err());
        assert!(ospf_neighbors(r#"{"neighbors":{"1.1.1.1":[{}]}}"#).is_err());
    }

    #[test]
    fn reads_ospf6d_neighbors() {
        assert_eq!(
            ospf6_neighbors(V6_FULL).unwrap(),
            vec![
                nr("172.16.97.76", "Full", "BDR"),
                nr("172.16.97.77", "Full", "DR")
            ]
        );
        assert_eq!(ospf6_neighbors(r#"{"neighbors":[]}"#).unwrap(), vec![]);
        assert!(ospf6_neighbors(r#"{"neighbors":[{"state":"Full"}]}"#).is_err());
    }

    #[test]
    fn settled_only_without_forming_adjacencies() {
        let exstart = ospf_neighbors(V4_EXSTART).unwrap();
        let e = settled(&exstart, true).unwrap_err();
        assert_eq!(e, "adjacencies forming: 172.16.97.76 ExStart");
        let restarting = ospf_neighbors(V4_RESTARTING).unwrap();
        assert_eq!(
            settled(&restarting, true),
            Err("no Full adjacency among 1 neighbor(s)".into())
        );
        assert_eq!(settled(&ospf_neighbors(V4_FULL).unwrap(), true), Ok(()));
        assert_eq!(settled(&ospf6_neighbors(V6_FULL).unwrap(), true), Ok(()));
        // Two DROthers stay 2-Way, and that is where they belong; 2-Way
        // with the DR or the Backup is on the way to Full.
        assert_eq!(settled(&[n("a", "Full"), n("b", "2-Way")], true), Ok(()));
        assert_eq!(settled(&[n("a", "Full"), n("b", "Twoway")], true), Ok(()));
        for role in ["DR", "Backup", "BDR", ""] {
            let two_way = [n("a", "Full"), nr("b", "2-Way", role)];
            assert!(settled(&two_way, true).is_err(), "{role}");
        }
        for forming in ["Down", "Attempt", "Init", "ExStart", "Exchange", "Loading"] {
            assert!(settled(&[n("a", "Full"), n("b", forming)], true).is_err());
        }
    }

    #[test]
    fn reads_whether_spf_ran() {
        assert_eq!(spf_has_run(OSPF_RESTARTING), Ok(false));
        assert_eq!(spf_has_run(OSPF_AFTER), Ok(true));
        assert!(spf_has_run("{}").is_err());
        assert!(spf_has_run("% OSPF instance not found").is_err());
    }

    #[test]
    fn a_lone_node_is_settled_only_when_it_expects_nobody() {
        assert_eq!(settled(&[], false), Ok(()));
        assert_eq!(settled(&[], true), Err("no neighbor yet".into()));
        assert!(settled(&[n("a", "2-Way")], true).is_err());
        assert_eq!(settled(&[n("a", "2-Way")], false), Ok(()));
    }
}
