//! The pod's veth pair, set up the seed's way: the pod end gets a /32 (/128)
//! and a default route via the link-local gateway, whose MAC (the host
//! veth's fixed one) it knows from a permanent neighbour entry; the host end
//! also answers ARP for the gateway by proxy (the fallback should the entry
//! go) and routes the pod's address to it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;

use ferry_cni::{CniError, Code};
use ferry_netlink::{
    AddrOptions, Handle, Link, NetlinkError, Route, Scope, VethSpec, RTPROT_FERRY_POD,
};
use ferry_netns::{sysctl, NetNs};
use ipnet::IpNet;

/// The pod's IPv4 gateway: a link-local address nobody owns; the pod has a
/// permanent neighbour entry for it, and the host veth also answers ARP for
/// it by proxy.
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The pod's IPv6 gateway: the host veth's link-local address.
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
/// Every host veth has this MAC (as Calico does): the pod only ever talks
/// to the host across the pair, so it needs no uniqueness, and a result can
/// name it without asking the kernel.
pub const HOST_MAC: [u8; 6] = [0xee; 6];

pub fn kernel_err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> CniError {
    CniError::new(Code::Kernel, format!("{what}: {e}"))
}

pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// How to configure a created pair.
pub struct Plan<'a> {
    pub alias: &'a str,
    pub ifname: &'a str,
    /// The pod's addresses (one per family at most).
    pub ips: &'a [IpAddr],
    /// Destinations the pod routes via its gateway (a default per family
    /// unless IPAM configured routes).
    pub routes: &'a [IpNet],
    /// ferryd's pinned fast-path program directory, if it runs one.
    pub fast_path: Option<&'a std::path::Path>,
}

/// What ADD made.
pub struct Made {
    pub pod_mac: Option<[u8; 6]>,
}

fn host_prefix(ip: IpAddr) -> IpNet {
    IpNet::new(ip, if ip.is_ipv4() { 32 } else { 128 }).expect("full-length prefix is valid")
}

fn gateway_for(dst: &IpNet) -> IpAddr {
    match dst {
        IpNet::V4(_) => GATEWAY_V4.into(),
        IpNet::V6(_) => GATEWAY_V6.into(),
    }
}

/// Create the pair in one netlink message: `host_name` here, `ifname`
/// directly inside the pod's netns. Returns the host end. It needs no
/// address, so ADD runs it while IPAM allocates.
pub fn create(
    nl: &mut Handle,
    pod_ns: &NetNs,
    host_name: &str,
    ifname: &str,
    mtu: u32,
) -> Result<Link, CniError> {
    let spec = VethSpec::new(host_name, ifname, pod_ns.as_fd())
        .mtu(mtu)
        .mac(HOST_MAC);
    if let Err(e) = nl.create_veth(&spec) {
        if !e.is_exists() {
            return Err(kernel_err("creating the veth pair", e));
        }
        // Either a leftover host end of a killed ADD for this very
        // attachment (its name says so), or the pod already has `ifname`.
        if !nl
            .delete_link_by_name(host_name)
            .map_err(|e| kernel_err("removing a stale host veth", e))?
        {
            return Err(CniError::new(
                Code::Kernel,
                format!("interface {ifname:?} already exists in the pod's netns"),
            ));
        }
        nl.create_veth(&spec)
            .map_err(|e| kernel_err("creating the veth pair", e))?;
    }
    crate::log_at!(Debug, "veth pair {host_name} / {ifname} created");
    nl.link_by_name(host_name)
        .map_err(|e| kernel_err("finding the host veth", e))?
        .ok_or_else(|| CniError::new(Code::Kernel, "the host veth vanished after creation"))
}

/// Configure both ends of a created pair. On error the caller removes the
/// host end (which takes the pod end with it).
pub fn configure(
    nl: &mut Handle,
    pod_ns: &NetNs,
    host: &Link,
    plan: &Plan<'_>,
) -> Result<Made, CniError> {
    let has_v4 = plan.ips.iter().any(IpAddr::is_ipv4);
    let has_v6 = plan.ips.iter().any(IpAddr::is_ipv6);
    // Both ends at once: the pod's on a thread in its netns, the host's here.
    let (pod, host_done) = pod_ns.run_alongside(
        || configure_pod(plan, has_v6),
        || configure_host(nl, host, plan, has_v4, has_v6),
    );
    let pod_mac = pod.map_err(|e| kernel_err("entering the pod's netns", e))??;
    host_done?;
    crate::log_at!(Debug, "both ends configured");
    Ok(Made { pod_mac })
}

fn configure_pod(plan: &Plan<'_>, has_v6: bool) -> Result<Option<[u8; 6]>, CniError> {
    let mut nl = Handle::new().map_err(|e| kernel_err("netlink in the pod's netns", e))?;
    let link = nl
        .link_by_name(plan.ifname)
        .map_err(|e| kernel_err("finding the pod interface", e))?
        .ok_or_else(|| CniError::new(Code::Kernel, "the pod interface vanished after creation"))?;
    if has_v6 {
        // No duplicate address detection on a point-to-point veth: it only
        // costs the pod a second of IPv6 (kubernetes#54651).
        sysctl::write(&format!("net/ipv6/conf/{}/accept_dad", plan.ifname), "0")
            .map_err(|e| kernel_err("disabling DAD in the pod", e))?;
    }
    nl.set_up(link.index)
        .map_err(|e| kernel_err("bringing the pod interface up", e))?;
    for ip in plan.ips {
        let opts = AddrOptions {
            scope: Scope::Universe,
            nodad: ip.is_ipv6(),
        };
        nl.add_address(link.index, host_prefix(*ip), opts)
            .map_err(|e| kernel_err(format!("adding {ip} to the pod"), e))?;
    }
    if plan.ips.iter().any(IpAddr::is_ipv4) {
        let gw = Route::link_scope(host_prefix(GATEWAY_V4.into()), link.index);
        nl.add_route(&gw)
            .map_err(|e| kernel_err("adding the gateway route in the pod", e))?;
    }
    for dst in plan.routes {
        let r = Route::new(*dst).via(gateway_for(dst)).dev(link.index);
        nl.add_route(&r)
            .map_err(|e| kernel_err(format!("adding the route to {dst} in the pod"), e))?;
    }
    // The gateway's MAC is known (every host veth has HOST_MAC): a static
    // entry means the pod never has to ask, so reaching the gateway does
    // not depend on the node answering by proxy ARP (which it only does
    // for addresses it can route), and the first packet waits for nothing.
    for gw in gateways(plan.ips) {
        nl.set_permanent_neighbour(link.index, gw, HOST_MAC)
            .map_err(|e| {
                kernel_err(
                    format!("adding the gateway {gw} to the pod's neighbours"),
                    e,
                )
            })?;
    }
    Ok(link.mac)
}

/// The pod's gateways for the families of `ips`.
pub fn gateways(ips: &[IpAddr]) -> impl Iterator<Item = IpAddr> + '_ {
    let v4 = ips.iter().any(IpAddr::is_ipv4).then_some(GATEWAY_V4.into());
    let v6 = ips.iter().any(IpAddr::is_ipv6).then_some(GATEWAY_V6.into());
    v4.into_iter().chain(v6)
}

fn configure_host(
    nl: &mut Handle,
    host: &Link,
    plan: &Plan<'_>,
    has_v4: bool,
    has_v6: bool,
) -> Result<(), CniError> {
    let name = host.name.as_str();
    if has_v4 {
        sysctl::write(&format!("net/ipv4/conf/{name}/proxy_arp"), "1")
            .map_err(|e| kernel_err("enabling proxy ARP", e))?;
        // Without this the first ARP reply waits up to 0.8 s.
        sysctl::write(&format!("net/ipv4/neigh/{name}/proxy_delay"), "0")
            .map_err(|e| kernel_err("setting proxy_delay", e))?;
    }
    if has_v6 {
        let ll = IpNet::new(GATEWAY_V6.into(), 64).expect("valid prefix");
        nl.add_address(
            host.index,
            ll,
            AddrOptions {
                scope: Scope::Link,
                nodad: true,
            },
        )
        .map_err(|e| kernel_err("adding the host veth's link-local gateway", e))?;
    }
    nl.set_up_with_alias(host.index, plan.alias)
        .map_err(|e| kernel_err("bringing the host veth up", e))?;
    if let Some(dir) = plan.fast_path {
        attach_fast_path(nl, host, dir)?;
    }
    for ip in plan.ips {
        let r = Route::link_scope(host_prefix(*ip), host.index).protocol(RTPROT_FERRY_POD);
        nl.add_route(&r)
            .map_err(|e| kernel_err(format!("adding the host route to {ip}"), e))?;
    }
    Ok(())
}

/// Attaches ferryd's fast path to the host veth, before the pod can send.
/// Best effort: without it the pod's traffic takes the host's IP stack,
/// which is correct, only slower; so a failure is logged, not returned —
/// except a map of another shape pinned in `fastPath`, which is invalid
/// configuration (code 7), never written to.
fn attach_fast_path(nl: &mut Handle, host: &Link, dir: &std::path::Path) -> Result<(), CniError> {
    match ferry_ebpf::open_prog(dir) {
        Ok(Some(prog)) => {
            // Listed first: traffic for the pod then goes straight into its
            // namespace from the moment the filter runs.
            let listed = ferry_ebpf::PodIfaces::open(dir)
                .and_then(|m| m.map(|m| m.insert(host.index)).transpose());
            if let Err(e) = listed {
                if e.is_map_mismatch() {
                    return Err(CniError::new(
                        Code::InvalidNetworkConfig,
                        format!("fastPath: {e}"),
                    ));
                }
                crate::log_at!(Warn, "{} not in the fast path's pod map: {e}", host.name);
            }
            match nl.attach_bpf_ingress(host.index, prog.as_fd(), ferry_ebpf::PROG_NAME) {
                Ok(()) => crate::log_at!(Debug, "fast path attached to {}", host.name),
                Err(e) => crate::log_at!(Warn, "fast path not attached to {}: {e}", host.name),
            }
        }
        Ok(None) => crate::log_at!(Debug, "no fast path pinned in {}", dir.display()),
        Err(e) => crate::log_at!(Warn, "fast path not attached to {}: {e}", host.name),
    }
    Ok(())
}

/// Remove the pair by its host end. `Ok(false)` when it was already gone.
/// With a fast path, the host end's ifindex leaves its pod map first.
pub fn teardown(
    nl: &mut Handle,
    host_name: &str,
    fast_path: Option<&std::path::Path>,
) -> Result<bool, NetlinkError> {
    if let Some(dir) = fast_path {
        if let (Ok(Some(link)), Ok(Some(pods))) =
            (nl.link_by_name(host_name), ferry_ebpf::PodIfaces::open(dir))
        {
            let _ = pods.remove(link.index);
        }
    }
    nl.delete_link_by_name(host_name)
}
