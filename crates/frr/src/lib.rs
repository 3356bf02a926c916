//! ferry-frr: the FRR side of ferryd's `--routing ospf|bgp`.
//!
//! * [`render`] turns a [`FrrSpec`] (this node's pod CIDRs, its interface,
//!   its peers, secrets) into the node's **whole** `frr.conf`: OSPFv2 area 0
//!   on the node interface, or an iBGP full mesh (IPv4 and IPv6 unicast);
//!   each own podCIDR advertised as an aggregate (a static blackhole route,
//!   redistributed) or, with [`Advertise::Pods`], every pod host route (the
//!   plugin's kernel routes) inside the own podCIDRs.
//! * [`Frr::apply`] writes it atomically and hands it to `frr-reload.py`,
//!   which changes the running daemons in place (no restart; adjacencies
//!   and sessions that the change does not touch stay up). A config equal
//!   to the running one causes no reload at all.
//! * [`Frr::learned_routes`] reports what OSPF/BGP learned, for status.
//! * [`Frr::external_audit`] (OSPF) finds own pod prefixes that zebra has
//!   but ospfd/ospf6d does not advertise; [`Frr::reapply_redistribution`]
//!   makes them advertise those again.
//! * [`Frr::ospf_adjacency`] (OSPF) says whether ospfd's (ospf6d's)
//!   adjacencies have settled since it started: ferryd reports ready only
//!   then, so that a rollout restarts the next node only once this one's
//!   graceful restart is over.
//!
//! Graceful restart, so that FRR restarting with ferry's pod (a rolling
//! update) loses no route: zebra started with [`ZEBRA_OPTIONS`], and BGP
//! `graceful-restart` with `preserve-fw-state`, or OSPF (RFC 3623)
//! `graceful-restart` and `graceful-restart helper enable` (helpers that
//! keep helping across changes elsewhere: no strict LSA checking), with
//! `capability opaque` for the grace-LSAs. OSPF's restart must be
//! announced before FRR stops, and its grace-LSAs acknowledged
//! ([`ospf_pre_stop`]; `graceful-restart prepare ip ospf` also writes
//! `ospfd-gr.json` in FRR's run directory), and the new ospfd must find
//! that file and start with this config; see ferry-deploy.
//!
//! Timers are set for a LAN of nodes: OSPF hellos every 2 s (dead 8 s;
//! faster ones break graceful restart with MD5, see `render`),
//! throttles at 0 (OSPFv3: hello 1 s, dead 4 s); BGP keepalive 3 s / hold
//! 9 s, route-map changes applied at once, new peers served after 100 ms.
//! Measured here: a new pod /32 reaches the other nodes in 25–45 ms over
//! OSPF, 130–150 ms over BGP.
//!
//! One `apply` at a time per FRR instance (frr-reload.py takes vtysh's
//! config lock). An apply that changes something runs frr-reload.py three
//! times (diff, reload, check): 2–6 s on a loaded 2-core machine with three
//! applies in parallel. One that changes nothing runs it once (0.3–0.5 s);
//! callers that keep the last applied text can skip even that.
//!
//! FRR has no API other than its CLI, so this crate runs `vtysh` and
//! `frr-reload.py`. Secrets never reach a log or an error: `FrrSpec`'s
//! `Debug` redacts them and command output is scrubbed of them.
//!
//! With the `testing` feature, `testing::FrrInstance` starts real FRR
//! daemons in a test's network namespace (one pathspace per node).

mod adjacency;
mod apply;
mod audit;
mod cmd;
mod hostname;
mod prestop;
mod render;
mod routes;
mod spec;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::PathBuf;
use std::time::Duration;

/// zebra's options for ferry: a netlink receive buffer that holds a full
/// route dump (`-s`), and routes that outlive FRR's own restart (a rolling
/// update of ferry): `-r` leaves zebra's routes in the kernel when zebra
/// exits, `-K` keeps those it finds there at start (and serves them as
/// before) for that many seconds, until the routing daemons have learned
/// them again (or, if they do not, removes them then). The time is BGP's
/// default graceful-restart restart-time.
pub const ZEBRA_OPTIONS: &[&str] = &["-s", "90000000", "-r", "-K", "120"];

pub use adjacency::{ospf6_neighbors, ospf_neighbors, settled, Neighbor};
pub use apply::{redact_secrets, Applied, Frr, FRR_RELOAD};
pub use audit::{
    advertised_v4, advertised_v6, missing, toggle_commands, zebra_prefixes, ExternalAudit,
};
pub use prestop::{
    ospf_pre_stop, ospf_start_wait, OSPF_ACK_WAIT_DECISECONDS, OSPF_HELLO_WAIT_DECISECONDS,
    OSPF_SEQ_FLOOR_FILE, OSPF_START_WAIT_DECISECONDS,
};
pub use render::{
    render, OSPF_GRACE_PERIOD, PEER_GROUP, PREFIX_LIST_V4, PREFIX_LIST_V6, ROUTE_MAP_V4,
    ROUTE_MAP_V6,
};
pub use routes::{LearnedRoute, Nexthop};
pub use spec::{Advertise, FrrSpec, Mode, SpecError, DEFAULT_ASN};

/// What went wrong talking to FRR. Command lines and outputs carried here
/// have the config's secrets replaced by `<redacted>`.
#[derive(Debug, thiserror::Error)]
pub enum FrrError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` did not finish within {timeout:?}; killed")]
    Timeout { command: String, timeout: Duration },
    #[error("`{command}` failed with status {status}: {output}")]
    Command {
        command: String,
        status: i32,
        output: String,
    },
    #[error("FRR did not take all of the config; still different: {}", remaining.join(" | "))]
    NotApplied { remaining: Vec<String> },
    #[error("cannot parse the output of `{command}`: {detail}")]
    Parse { command: String, detail: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// zebra keeps its routes at start as long as the other nodes keep a
    /// restarting node's OSPF routes: the routes of neither end first.
    #[test]
    fn zebra_keeps_routes_for_the_ospf_grace_period() {
        let k = ZEBRA_OPTIONS.iter().position(|o| *o == "-K").expect("-K");
        assert_eq!(ZEBRA_OPTIONS[k + 1], OSPF_GRACE_PERIOD.to_string());
        assert!(ZEBRA_OPTIONS.contains(&"-r"));
    }
}
