//! The whole `frr.conf` of a node, as text.
//!
//! The text is written so that FRR's own `show running-config` of it says
//! the same thing: `frr-reload.py --test` against a running FRR that loaded
//! it finds no difference, and an unchanged spec never causes a reload.

use std::fmt::Write;

use ipnet::IpNet;

use crate::spec::{Advertise, FrrSpec, Mode};

/// Prefix-list and route-map names (also visible in `show running-config`).
pub const PREFIX_LIST_V4: &str = "FERRY-PODS-V4";
pub const PREFIX_LIST_V6: &str = "FERRY-PODS-V6";
pub const ROUTE_MAP_V4: &str = "FERRY-EXPORT-V4";
pub const ROUTE_MAP_V6: &str = "FERRY-EXPORT-V6";
/// The BGP peer-group of the node mesh.
pub const PEER_GROUP: &str = "ferry";
/// OSPF graceful restart: how long the other nodes keep a restarting
/// node's routes at most, in seconds (FRR's default, which the config
/// shows as plain `graceful-restart`; the time zebra keeps its routes at
/// start, [`crate::ZEBRA_OPTIONS`]'s `-K`).
pub const OSPF_GRACE_PERIOD: u32 = 120;

/// Render the node's whole FRR config. Call [`FrrSpec::validate`] first:
/// an invalid spec renders into a config FRR rejects.
///
/// OSPF mode: OSPFv2 for IPv4 pod CIDRs, OSPFv3 (ospf6d) for IPv6 ones;
/// see [`FrrSpec::daemons`].
///
/// Forwarding: FRR turns IPv4 forwarding on (a node routes its pods). With
/// IPv6 pod CIDRs it turns IPv6 forwarding on too. Without them the config
/// keeps IPv6 forwarding as [`FrrSpec::ipv6_forwarding`] says it is: FRR
/// shows forwarding only when off (`no ipv6 forwarding`; an explicit `ipv6
/// forwarding` never matches a running config), and a config without that
/// line makes frr-reload switch IPv6 forwarding on.
pub fn render(spec: &FrrSpec) -> String {
    let v4 = spec.cidrs(false);
    let v6 = spec.cidrs(true);
    let mut c = String::new();
    let w = &mut c;
    line(
        w,
        "! Rendered by ferryd (ferry-frr); it is rewritten on every change.",
    );
    line(w, "frr defaults traditional");
    line(w, &format!("hostname {}", spec.hostname));
    if v6.is_empty() && spec.ipv6_forwarding != Some(true) {
        line(w, "no ipv6 forwarding");
    }
    line(w, "service integrated-vtysh-config");
    line(w, "!");

    if spec.advertise == Advertise::Aggregate && !(v4.is_empty() && v6.is_empty()) {
        for net in &v4 {
            line(w, &format!("ip route {net} blackhole"));
        }
        for net in &v6 {
            line(w, &format!("ipv6 route {net} blackhole"));
        }
        line(w, "!");
    }

    prefix_list(w, spec.advertise, &v4, "ip", PREFIX_LIST_V4, 32);
    prefix_list(w, spec.advertise, &v6, "ipv6", PREFIX_LIST_V6, 128);
    route_map(w, &v4, ROUTE_MAP_V4, "ip", PREFIX_LIST_V4);
    route_map(w, &v6, ROUTE_MAP_V6, "ipv6", PREFIX_LIST_V6);

    let source = match spec.advertise {
        Advertise::Aggregate => "static",
        Advertise::Pods => "kernel",
    };
    match spec.mode {
        Mode::Ospf => ospf(w, spec, source, !v4.is_empty(), !v6.is_empty()),
        Mode::Bgp => bgp(w, spec, source, !v4.is_empty(), !v6.is_empty()),
    }
    c
}

fn line(w: &mut String, s: &str) {
    w.push_str(s);
    w.push('\n');
}

/// Aggregate: exactly the CIDRs. Pods: host routes inside them only (`ge`,
/// so that an aggregate kernel route for the CIDR is never advertised).
fn prefix_list(
    w: &mut String,
    advertise: Advertise,
    nets: &[IpNet],
    family: &str,
    name: &str,
    host_len: u8,
) {
    if nets.is_empty() {
        return;
    }
    for (i, net) in nets.iter().enumerate() {
        let seq = 5 * (i + 1);
        let _ = match advertise {
            Advertise::Aggregate => {
                writeln!(w, "{family} prefix-list {name} seq {seq} permit {net}")
            }
            Advertise::Pods => writeln!(
                w,
                "{family} prefix-list {name} seq {seq} permit {net} ge {host_len}"
            ),
        };
    }
    line(w, "!");
}

fn route_map(w: &mut String, nets: &[IpNet], name: &str, family: &str, list: &str) {
    if nets.is_empty() {
        return;
    }
    let _ = writeln!(w, "route-map {name} permit 10");
    let _ = writeln!(w, " match {family} address prefix-list {list}");
    line(w, "exit");
    line(w, "!");
}

fn ospf(w: &mut String, spec: &FrrSpec, source: &str, v4: bool, v6: bool) {
    let _ = writeln!(w, "interface {}", spec.node_ifname);
    // The timers first: once `ip ospf area` enables the interface, its wait
    // timer runs with whatever dead interval is set by then (40 s default).
    if v4 {
        // Point-to-multipoint, not broadcast: one adjacency per neighbor and
        // no Designated Router. On a broadcast network each node's routes
        // hang on the DR's network-LSA, so any adjacency that drops makes
        // the DR/BDR election run again: every router re-originates its
        // router-LSA, and until that settles SPF finds no transit network
        // to the node (routes to and from it were gone on every node for
        // 1.1–2.4 s in 5 of 10 rolling upgrades on the real cluster,
        // 2026-12-07). FRR 8.4.4's helpers also mishandle a restarting
        // DR's first hello and re-elect. Point-to-multipoint has no
        // election, no network-LSA and no Wait state at start. (FRR 8.4's
        // ospf6d has only broadcast and point-to-point: OSPFv3 stays
        // broadcast.)
        line(w, " ip ospf network point-to-multipoint");
        // Hellos every 2 s, not sub-second: with MD5 every packet carries
        // a sequence number, `max(now in seconds, last + 1)`, which the
        // neighbors require never to go back. At four hellos a second
        // it ran ~3 ahead of the clock per second of uptime, so after a
        // graceful restart (which starts again from the clock) the
        // helpers dropped every packet of the restarted node ("bad
        // sequence") until the clock caught up or the grace period
        // ended, when its routes went. Below one packet a second it
        // stays at the clock, but each burst (a database exchange, a
        // flood) still puts it a few seconds ahead, so a restarted node's
        // first packets are refused for ~6 s.
        //
        // The dead interval is FRR's default, 40 s, not 4 hellos: a helper
        // keeps the restarting node's inactivity timer running from the
        // old ospfd's last hello (and restarts it while helping). When it
        // fired after the restart had ended (the helper had left helping)
        // but before the new ospfd's first accepted hello, the helper
        // killed the adjacency and both ends dropped their routes for
        // ~1.5 s: with 8 s, the old last hello + 8 s fell in that gap in
        // 2 of 20 upgrades (2026-12-07, `debug ospf nsm`). A restart takes
        // ~10 s, so 40 s leaves the timer far from it. A node that dies
        // without a graceful restart keeps its routes on the others for
        // up to 40 s, which costs nothing here: its pod CIDR is reached
        // only through it.
        line(w, " ip ospf hello-interval 2");
        line(w, " ip ospf dead-interval 40");
        line(w, " ip ospf retransmit-interval 1");
        if let Some(key) = &spec.ospf_auth_key {
            line(w, " ip ospf authentication message-digest");
            let _ = writeln!(w, " ip ospf message-digest-key 1 md5 {key}");
        }
        line(w, " ip ospf area 0");
        line(w, " no ip ospf passive");
    }
    if v6 {
        // OSPFv3 has no sub-second hellos.
        line(w, " ipv6 ospf6 hello-interval 1");
        line(w, " ipv6 ospf6 dead-interval 4");
        line(w, " ipv6 ospf6 retransmit-interval 1");
        if let Some(key) = &spec.ospf_auth_key {
            let _ = writeln!(
                w,
                " ipv6 ospf6 authentication key-id 1 hash-algo md5 key {key}"
            );
        }
        line(w, " ipv6 ospf6 area 0");
    }
    line(w, "exit");
    line(w, "!");
    if v4 {
        line(w, "router ospf");
        let _ = writeln!(w, " ospf router-id {}", spec.router_id);
        let _ = writeln!(w, " redistribute {source} route-map {ROUTE_MAP_V4}");
        line(w, " passive-interface default");
        // Graceful restart (RFC 3623): before FRR stops with its pod, a
        // preStop hook announces the restart in grace-LSAs (opaque LSAs,
        // hence `capability opaque`), and the other nodes, as helpers,
        // keep this node's adjacency and routes until it is back.
        line(w, " capability opaque");
        // FRR's default grace period, which it shows as no number.
        line(w, " graceful-restart");
        line(w, " graceful-restart helper enable");
        // Helpers keep helping across other changes (another node
        // joining, leaving or restarting in the same rollout): each pod
        // CIDR is reached only through its own node, so a change
        // elsewhere makes the restarting node's kept routes no less
        // right. With strict checking, a node gone 8 s earlier (its
        // dead interval) ended the helping and the restarting node's
        // routes went with it (the lab's frr-restart after node-leave).
        line(w, " no graceful-restart helper strict-lsa-checking");
        line(w, " timers throttle lsa all 0");
        line(w, " timers throttle spf 0 50 1000");
        line(w, " timers lsa min-arrival 0");
        line(w, "exit");
        line(w, "!");
    }
    if v6 {
        // Only interfaces with `ipv6 ospf6 area` take part: no passive.
        line(w, "router ospf6");
        let _ = writeln!(w, " ospf6 router-id {}", spec.router_id);
        let _ = writeln!(w, " redistribute {source} route-map {ROUTE_MAP_V6}");
        line(w, " timers throttle spf 0 50 1000");
        line(w, " timers lsa min-arrival 0");
        line(w, "exit");
        line(w, "!");
    }
}

fn bgp(w: &mut String, spec: &FrrSpec, source: &str, v4: bool, v6: bool) {
    // A changed route-map applies at once, not after the default 5 s.
    line(w, "bgp route-map delay-timer 0");
    line(w, "!");
    let _ = writeln!(w, "router bgp {}", spec.asn);
    let _ = writeln!(w, " bgp router-id {}", spec.router_id);
    line(w, " no bgp ebgp-requires-policy");
    // Graceful restart (RFC 4724): when this node's FRR restarts (a
    // rolling update of ferry), the other nodes keep its routes as stale
    // until it is back and has sent End-of-RIB, and it tells them that its
    // forwarding state (the kernel routes zebra keeps, see
    // [`crate::ZEBRA_OPTIONS`]) survived.
    line(w, " bgp graceful-restart");
    line(w, " bgp graceful-restart preserve-fw-state");
    line(w, " timers bgp 3 9");
    // Advertise to a new peer after 100 ms, not the default 1 s.
    line(w, " coalesce-time 100");
    let _ = writeln!(w, " neighbor {PEER_GROUP} peer-group");
    let _ = writeln!(w, " neighbor {PEER_GROUP} remote-as internal");
    if let Some(pw) = &spec.bgp_password {
        let _ = writeln!(w, " neighbor {PEER_GROUP} password {pw}");
    }
    for peer in spec.mesh_peers() {
        let _ = writeln!(w, " neighbor {peer} peer-group {PEER_GROUP}");
    }
    // `frr defaults traditional` activates every neighbor for IPv4 unicast.
    if v4 {
        line(w, " !");
        line(w, " address-family ipv4 unicast");
        let _ = writeln!(w, "  redistribute {source} route-map {ROUTE_MAP_V4}");
        line(w, " exit-address-family");
    }
    if v6 {
        line(w, " !");
        line(w, " address-family ipv6 unicast");
        let _ = writeln!(w, "  redistribute {source} route-map {ROUTE_MAP_V6}");
        let _ = writeln!(w, "  neighbor {PEER_GROUP} activate");
        line(w, " exit-address-family");
    }
    line(w, "exit");
    line(w, "!");
}
