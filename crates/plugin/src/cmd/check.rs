//! CHECK: the interfaces, addresses and routes on both sides are what
//! `prevResult` says ADD made.

use std::net::IpAddr;

use ferry_cni::result::Interface;
use ferry_cni::{CniError, CniResult, Code};
use ferry_netlink::{Family, Handle, Route};
use ferry_netns::sysctl;
use ipnet::IpNet;

use crate::cmd::{open_pod_ns, Invocation};
use crate::ipam::Ipam;
use crate::names::host_veth_name;
use crate::veth::{gateways, kernel_err, mac_string, GATEWAY_V4, HOST_MAC};

fn failed(msg: impl Into<String>) -> CniError {
    CniError::new(Code::CheckFailed, msg)
}

pub fn check(inv: &Invocation<'_>) -> Result<(), CniError> {
    let env = inv.env;
    let prev = inv
        .conf
        .net
        .prev_result
        .as_ref()
        .ok_or_else(|| CniError::new(Code::InvalidNetworkConfig, "CHECK needs a prevResult"))?;
    Ipam {
        conf: inv.conf,
        env,
        stdin: inv.stdin,
    }
    .check()?;

    let netns = env
        .netns
        .as_deref()
        .ok_or_else(|| CniError::new(Code::InvalidEnvironment, "CNI_NETNS missing"))?;
    let sandbox = netns.display().to_string();
    let (pod_index, pod_if) = prev
        .interfaces
        .iter()
        .enumerate()
        .find(|(_, i)| i.name == env.ifname && i.sandbox.as_deref() == Some(sandbox.as_str()))
        .ok_or_else(|| {
            failed(format!(
                "prevResult has no interface {} in {sandbox}",
                env.ifname
            ))
        })?;
    let ips: Vec<IpAddr> = prev
        .ips
        .iter()
        .filter(|c| c.interface.is_none_or(|i| i == pod_index))
        .map(|c| c.address.addr())
        .collect();
    if ips.is_empty() {
        return Err(failed("prevResult has no IP for the pod interface"));
    }

    let host_name = host_veth_name(&env.container_id, &env.ifname);
    check_host(&host_name, &ips)?;
    let pod_ns = open_pod_ns(netns)?;
    pod_ns
        .run(|| check_pod(&env.ifname, pod_if, &ips, prev))
        .map_err(|e| kernel_err("entering the pod's netns", e))?
}

fn check_host(host_name: &str, ips: &[IpAddr]) -> Result<(), CniError> {
    let mut nl = Handle::new().map_err(|e| kernel_err("opening netlink", e))?;
    let host = nl
        .link_by_name(host_name)
        .map_err(|e| kernel_err("looking up the host veth", e))?
        .ok_or_else(|| failed(format!("host veth {host_name} is missing")))?;
    if host.kind.as_deref() != Some("veth") || !host.up {
        return Err(failed(format!("host veth {host_name} is not an up veth")));
    }
    if ips.iter().any(IpAddr::is_ipv4) {
        let proxy = sysctl::read(&format!("net/ipv4/conf/{host_name}/proxy_arp"))
            .map_err(|e| kernel_err("reading proxy_arp", e))?;
        if proxy.trim() != "1" {
            return Err(failed(format!("proxy ARP is off on {host_name}")));
        }
    }
    for ip in ips {
        let routes = nl
            .routes(family(ip), None)
            .map_err(|e| kernel_err("listing host routes", e))?;
        let want = IpNet::from(*ip);
        if !routes
            .iter()
            .any(|r| r.dst == want && r.oif == Some(host.index))
        {
            return Err(failed(format!(
                "host route to {ip} via {host_name} is missing"
            )));
        }
    }
    Ok(())
}

fn check_pod(
    ifname: &str,
    expected: &Interface,
    ips: &[IpAddr],
    prev: &CniResult,
) -> Result<(), CniError> {
    let mut nl = Handle::new().map_err(|e| kernel_err("netlink in the pod's netns", e))?;
    let link = nl
        .link_by_name(ifname)
        .map_err(|e| kernel_err("looking up the pod interface", e))?
        .ok_or_else(|| failed(format!("pod interface {ifname} is missing")))?;
    if !link.up {
        return Err(failed(format!("pod interface {ifname} is down")));
    }
    if let (Some(want), Some(have)) = (&expected.mac, &link.mac) {
        if !want.eq_ignore_ascii_case(&mac_string(have)) {
            return Err(failed(format!(
                "pod interface MAC is {} not {want}",
                mac_string(have)
            )));
        }
    }
    let addrs = nl
        .addresses(Some(link.index))
        .map_err(|e| kernel_err("listing pod addresses", e))?;
    for ip in ips {
        if !addrs.iter().any(|a| a.addr.addr() == *ip) {
            return Err(failed(format!("pod address {ip} is missing")));
        }
    }
    let mut routes: Vec<Route> = Vec::new();
    for fam in [Family::V4, Family::V6] {
        if ips.iter().any(|ip| family(ip) == fam) {
            routes.extend(
                nl.routes(fam, None)
                    .map_err(|e| kernel_err("listing pod routes", e))?,
            );
        }
    }
    if ips.iter().any(IpAddr::is_ipv4) {
        let gw = IpNet::from(IpAddr::from(GATEWAY_V4));
        if !routes
            .iter()
            .any(|r| r.dst == gw && r.oif == Some(link.index))
        {
            return Err(failed("pod route to the gateway 169.254.1.1 is missing"));
        }
    }
    check_gateway_neighbours(&mut nl, link.index, ips)?;
    for want in &prev.routes {
        let present = routes.iter().any(|r| {
            r.dst == want.dst
                && r.oif == Some(link.index)
                && (want.gw.is_none() || r.gateway == want.gw)
        });
        if !present {
            return Err(failed(format!("pod route to {} is missing", want.dst)));
        }
    }
    Ok(())
}

/// ADD's permanent neighbour entry for each gateway, with the host veth's
/// MAC.
fn check_gateway_neighbours(nl: &mut Handle, index: u32, ips: &[IpAddr]) -> Result<(), CniError> {
    for gw in gateways(ips) {
        let neighbours = nl
            .neighbours(family(&gw), Some(index))
            .map_err(|e| kernel_err("listing pod neighbours", e))?;
        let ok = neighbours
            .iter()
            .any(|n| n.ip == gw && n.is_permanent() && n.lladdr.as_deref() == Some(&HOST_MAC[..]));
        if !ok {
            return Err(failed(format!(
                "pod has no permanent neighbour entry {gw} lladdr {}",
                mac_string(&HOST_MAC)
            )));
        }
    }
    Ok(())
}

fn family(ip: &IpAddr) -> Family {
    if ip.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    }
}
