//! Making the node match a [`Desired`] state, in an order that never lets
//! kubelet schedule onto a half-ready node: sysctls, NAT, routes (or FRR),
//! plugin binaries, and the conflist last.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::cli::Opts;
use crate::desired::Desired;
use crate::fast_path::FastPathAgent;
use crate::frr_glue::FrrAgent;
use crate::install::{write_if_changed, Binaries};
use crate::nat::Nat;
use crate::wireguard_device::{self, WgAgent};
use crate::AgentError;
use crate::{routes, vxlan, wireguard};

/// What one apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Owned routes in place afterwards.
    pub routes_owned: usize,
    /// What changed, for the log (`"nat"`, `"routes"`, `"frr"`, ...).
    pub changed: Vec<&'static str>,
    /// Problems that do not fail the apply: unroutable nodes, route
    /// conflicts (as log lines).
    pub warnings: BTreeSet<String>,
    /// Whether the eBPF fast path runs.
    pub fast_path: bool,
}

/// Holds what must survive between applies (what was applied last, so
/// unchanged parts cost nothing).
#[derive(Debug)]
pub struct Applier {
    binaries: Binaries,
    frr: FrrAgent,
    nat: Nat,
    fast: FastPathAgent,
    /// With `--fast-path=false`: the pin directory to clear once (a fast
    /// path an earlier ferryd left attached is detached and unpinned).
    fast_off: Option<PathBuf>,
    conflist_path: PathBuf,
    /// With `--encryption wireguard`: the node's key and device.
    wg: Option<WgAgent>,
    wg_run_dir: PathBuf,
    /// `install`: the WireGuard device is neither made nor changed (routes
    /// through one already there are kept); `ferryd run` owns it.
    wg_leave: bool,
}

impl Applier {
    pub fn new(o: &Opts) -> Result<Applier, AgentError> {
        let source = o.plugin_source_dir().ok_or_else(|| {
            AgentError::Config(
                "cannot tell ferryd's own directory; pass --plugin-source-dir".into(),
            )
        })?;
        Ok(Applier {
            binaries: Binaries::new(source, o.cni_bin_dir.clone()),
            frr: FrrAgent::new(o),
            nat: Nat::default(),
            fast: FastPathAgent::default(),
            fast_off: (!o.fast_path).then(|| o.bpf_dir.clone()),
            conflist_path: o.conflist_path(),
            wg: match o.encryption()? {
                crate::cli::Encryption::Wireguard => Some(WgAgent::new(o)?),
                crate::cli::Encryption::None => None,
            },
            wg_run_dir: o.wireguard_run_dir.clone(),
            wg_leave: false,
        })
    }

    /// For `install`, a short-lived init container: leave the WireGuard
    /// device to `ferryd run` (a `ferry-wg` started here would end with the
    /// container). Routes through a device already there stay; peers with
    /// none get no route until `run` makes it, so nothing goes in clear.
    pub fn leave_wireguard_device(&mut self) {
        self.wg_leave = true;
    }

    /// Applies `d`. `full` re-checks what is cached (NAT table read back,
    /// FRR re-applied), as the periodic resync does. Blocking (netlink,
    /// files, FRR's tools): run it off the async runtime.
    pub fn apply(&mut self, d: &Desired, full: bool) -> Result<Outcome, AgentError> {
        let mut out = Outcome::default();
        for u in &d.unroutable {
            out.warnings.insert(format!(
                "not routing {} of node {}: {}",
                u.cidr, u.node, u.reason
            ));
        }

        set_forwarding(IPV4_FORWARDING)?;
        if d.ipv6 {
            set_forwarding(IPV6_FORWARDING)?;
        }

        if self.nat.apply(&d.nat, full)? {
            out.changed.push("nat");
        }

        let mut h = ferry_netlink::Handle::new().map_err(|e| AgentError::netlink("open", e))?;
        // The tunnel's FDB and neighbours before the routes through it.
        let mut want_routes = d.routes.clone();
        let mut tunnel = None;
        if let Some(plan) = &d.vxlan {
            let (ifindex, changed) = vxlan::converge(&mut h, plan)?;
            if changed {
                out.changed.push("vxlan");
            }
            want_routes.extend(plan.routes(ifindex));
            tunnel = Some(plan.fast_path_tunnel(ifindex));
        }
        // The fast path is not attached to the WireGuard device (a TUN
        // device has no Ethernet header); it forwards into it (the FIB
        // says so), never past it.
        if let (Some(plan), true) = (&d.wireguard, self.wg_leave) {
            let link = h
                .link_by_name(wireguard::WG_IFNAME)
                .map_err(|e| AgentError::netlink("look up the WireGuard device", e))?;
            // Only through a device that is up: a fresh one (made by
            // ferry-wireguard's ferry-wg, not yet configured by `ferryd
            // run`) takes no routes yet.
            if let Some(link) = link.filter(|l| l.up) {
                want_routes.extend(plan.routes(link.index));
            }
        } else if let Some(plan) = &d.wireguard {
            let wg = self.wg.as_mut().ok_or_else(|| {
                AgentError::Config("a WireGuard plan without --encryption wireguard".into())
            })?;
            let (ifindex, changed) = wg.converge(&mut h, plan)?;
            if changed {
                out.changed.push("wireguard");
            }
            want_routes.extend(plan.routes(ifindex));
        }
        let changes = routes::converge(&mut h, &want_routes)?;
        if changes.replaced + changes.deleted > 0 {
            out.changed.push("routes");
        }
        // Only now do the routes lead into the device.
        if let (Some(plan), false, Some(wg)) = (&d.wireguard, self.wg_leave, self.wg.as_mut()) {
            match wg.start_handshakes(plan) {
                Ok(nodes) if nodes.is_empty() => {}
                Ok(nodes) => tracing::info!(?nodes, "WireGuard handshakes started"),
                Err(e) => {
                    out.warnings
                        .insert(format!("starting WireGuard handshakes: {e}"));
                }
            }
        }
        if d.vxlan.is_none() && vxlan::remove(&mut h)? {
            tracing::info!(
                device = vxlan::VXLAN_IFNAME,
                "no peer needs VXLAN: device removed"
            );
            out.changed.push("vxlan");
        }
        if d.wireguard.is_none() && wireguard_device::remove(&mut h, &self.wg_run_dir)? {
            tracing::info!(
                device = wireguard::WG_IFNAME,
                "encryption off: WireGuard device removed"
            );
            out.changed.push("wireguard");
        }
        for (spec, other) in &changes.conflicts {
            out.warnings.insert(format!(
                "not routing {} of node {}: a route of protocol {} holds it",
                spec.dst, spec.node, other.protocol
            ));
        }
        out.routes_owned = changes.owned;

        if let Some(plan) = &d.frr {
            if self.frr.apply(plan, full)? {
                out.changed.push("frr");
            }
        }

        if let Some(dir) = self.fast_off.take() {
            match crate::fast_path::remove(&dir) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(
                        interfaces = n,
                        "fast path turned off: detached and unpinned"
                    );
                    out.changed.push("fast-path");
                }
                Err(e) => {
                    out.warnings.insert(format!("removing the fast path: {e}"));
                }
            }
        }
        if let Some(plan) = &d.fast_path {
            let plan = crate::fast_path::FastPathPlan {
                tunnel,
                ..plan.clone()
            };
            match self.fast.apply(&plan, full) {
                Ok(true) => {
                    out.changed.push("fast-path");
                    out.fast_path = true;
                }
                Ok(false) => out.fast_path = true,
                Err(why) => {
                    out.warnings.insert(why);
                }
            }
        }

        if !self.binaries.sync()?.is_empty() {
            out.changed.push("binaries");
        }
        // Last: only now may kubelet see the network as ready.
        if write_if_changed(&self.conflist_path, d.conflist.as_bytes(), 0o644)? {
            out.changed.push("conflist");
        }
        Ok(out)
    }

    /// Excludes exactly `addrs` (the node's pods isolated by a
    /// NetworkPolicy) from the eBPF fast path: see
    /// [`FastPathAgent::set_excluded`].
    pub fn set_fast_path_excluded(
        &mut self,
        addrs: &BTreeSet<std::net::IpAddr>,
    ) -> Result<bool, String> {
        self.fast.set_excluded(addrs)
    }

    /// The fast path's counters, when it runs.
    pub fn fast_path_stats(&self) -> Option<ferry_ebpf::Stats> {
        self.fast.stats()
    }

    /// This node's WireGuard public key, with `--encryption wireguard`.
    pub fn wireguard_public_key(&self) -> Option<ferry_wireguard::PublicKey> {
        self.wg.as_ref().map(WgAgent::public_key)
    }

    pub fn frr(&self) -> &FrrAgent {
        &self.frr
    }

    /// Why the node's routing has not settled yet (OSPF adjacencies still
    /// forming since FRR started, [`FrrAgent::unsettled`]); None when it
    /// has, or when nothing needs to settle. Blocking (vtysh).
    pub fn unsettled(&self, d: &Desired) -> Option<String> {
        d.frr.as_ref()?;
        self.frr.unsettled(d.nodes_seen > 1)
    }

    /// OSPF mode: [`FrrAgent::audit_ospf`]. Blocking (vtysh).
    pub fn audit_ospf(&mut self) -> Result<Option<ferry_frr::ExternalAudit>, AgentError> {
        self.frr.audit_ospf()
    }
}

/// The node's IPv4 forwarding switch.
pub const IPV4_FORWARDING: &str = "net.ipv4.ip_forward";
/// The node's IPv6 forwarding switch (needed with an IPv6 podCIDR).
pub const IPV6_FORWARDING: &str = "net.ipv6.conf.all.forwarding";

/// Turns forwarding (`key`) on when it is off. When it cannot (a read-only
/// `/proc/sys`): [`AgentError::ForwardingOff`], which the agent reports on
/// the Node instead of retrying silently.
pub fn set_forwarding(key: &str) -> Result<bool, AgentError> {
    let err = |source| AgentError::Sysctl {
        key: key.into(),
        source,
    };
    let value = ferry_netns::sysctl::read(key).map_err(err)?;
    if value.trim() == "1" {
        return Ok(false);
    }
    ferry_netns::sysctl::write(key, "1").map_err(|source| AgentError::ForwardingOff {
        key: key.into(),
        value: value.trim().into(),
        source,
    })?;
    tracing::info!(key, value = "1", "sysctl set");
    Ok(true)
}
