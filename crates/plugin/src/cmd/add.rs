//! ADD: address, veth pair, pod side, host side, result. Any failure after
//! the address was taken removes the pair and gives the address back.

use std::net::IpAddr;

use ferry_cni::result::{Interface, IpConfig, Route};
use ferry_cni::{CniError, CniResult, Code, Env};
use ferry_netlink::{Handle, Link};
use ipnet::IpNet;

use crate::announce;
use crate::cmd::{open_pod_ns, Invocation};
use crate::ipam::Ipam;
use crate::log_at;
use crate::names::{host_veth_alias, host_veth_name};
use crate::veth::{self, kernel_err, mac_string, Plan, GATEWAY_V4, GATEWAY_V6, HOST_MAC};

pub fn add(inv: &Invocation<'_>) -> Result<CniResult, CniError> {
    let (env, conf) = (inv.env, inv.conf);
    let netns_path = env
        .netns
        .as_deref()
        .ok_or_else(|| CniError::new(Code::InvalidEnvironment, "CNI_NETNS missing"))?;
    let pod_ns = open_pod_ns(netns_path)?;
    let mut nl = Handle::new().map_err(|e| kernel_err("opening netlink", e))?;
    let mtu = match conf.mtu {
        Some(m) => m,
        None => default_mtu(&mut nl)?,
    };
    let ipam = Ipam {
        conf,
        env,
        stdin: inv.stdin,
    };
    let host_name = host_veth_name(&env.container_id, &env.ifname);
    log_at!(Debug, "config read, netns open");

    // The address and the veth pair do not depend on each other: IPAM
    // (files, or a delegate's exec) runs on its own thread while this one
    // asks the kernel for the pair.
    let (allocated, created) = std::thread::scope(|s| {
        let job = s.spawn(|| ipam.add());
        let created = veth::create(&mut nl, &pod_ns, &host_name, &env.ifname, mtu);
        let allocated = job
            .join()
            .unwrap_or_else(|_| Err(CniError::new(Code::IpamStore, "IPAM thread panicked")));
        (allocated, created)
    });
    let outcome = match (&allocated, created) {
        (Ok(alloc), Ok(host)) => {
            log_at!(Debug, "ipam gave {:?}", alloc.ips);
            plumb(&mut nl, &pod_ns, inv, &host, mtu, alloc)
        }
        (Err(e), _) => Err(e.clone()),
        (Ok(_), Err(e)) => Err(e),
    };
    if let (Ok(result), Some(dir)) = (&outcome, &conf.policy_dir) {
        announce_pod(dir, env, result);
    }
    if let Err(e) = &outcome {
        log_at!(Warn, "ADD failed, rolling back: {e}");
        if let Err(te) = veth::teardown(&mut nl, &host_name, inv.conf.fast_path.as_deref()) {
            log_at!(Error, "rollback: removing {host_name}: {te}");
        }
        if allocated.is_ok() {
            if let Err(ie) = ipam.del() {
                log_at!(Error, "rollback: releasing the address: {ie}");
            }
        }
    }
    outcome
}

fn plumb(
    nl: &mut Handle,
    pod_ns: &ferry_netns::NetNs,
    inv: &Invocation<'_>,
    host: &Link,
    mtu: u32,
    allocated: &CniResult,
) -> Result<CniResult, CniError> {
    let env: &Env = inv.env;
    let ips: Vec<IpAddr> = allocated.ips.iter().map(|c| c.address.addr()).collect();
    let mut routes: Vec<IpNet> = allocated
        .routes
        .iter()
        .map(|r| r.dst)
        .filter(|dst| ips.iter().any(|ip| ip.is_ipv4() == dst.addr().is_ipv4()))
        .collect();
    for (is_v4, default) in [(true, "0.0.0.0/0"), (false, "::/0")] {
        let family_routed = routes.iter().any(|d| d.addr().is_ipv4() == is_v4);
        if !family_routed && ips.iter().any(|ip| ip.is_ipv4() == is_v4) {
            routes.push(default.parse().expect("valid default route"));
        }
    }
    let alias = host_veth_alias(&inv.conf.net.name, &env.container_id, &env.ifname);
    let made = veth::configure(
        nl,
        pod_ns,
        host,
        &Plan {
            alias: &alias,
            ifname: &env.ifname,
            ips: &ips,
            routes: &routes,
            fast_path: inv.conf.fast_path.as_deref(),
        },
    )?;

    let mut result = inv.conf.net.prev_result.clone().unwrap_or_default();
    let base = result.interfaces.len();
    result.interfaces.push(Interface {
        name: host.name.clone(),
        mac: Some(mac_string(&HOST_MAC)),
        mtu: Some(mtu),
        ..Default::default()
    });
    result.interfaces.push(Interface {
        name: env.ifname.clone(),
        mac: made.pod_mac.as_ref().map(mac_string),
        mtu: Some(mtu),
        sandbox: env.netns.as_ref().map(|p| p.display().to_string()),
        ..Default::default()
    });
    for ip in &ips {
        result.ips.push(IpConfig {
            interface: Some(base + 1),
            address: IpNet::from(*ip),
            gateway: Some(if ip.is_ipv4() {
                GATEWAY_V4.into()
            } else {
                GATEWAY_V6.into()
            }),
        });
    }
    for dst in routes {
        let gw: IpAddr = if dst.addr().is_ipv4() {
            GATEWAY_V4.into()
        } else {
            GATEWAY_V6.into()
        };
        result.routes.push(Route::new(dst, Some(gw)));
    }
    if let Some(dns) = inv.conf.dns.clone().filter(|d| !d.is_empty()) {
        result.dns = dns;
    } else if result.dns.is_empty() {
        result.dns = allocated.dns.clone();
    }
    Ok(result)
}

/// Tells ferryd's NetworkPolicy controller the pod's addresses and waits
/// until its rules cover them (see [`announce`]): a policy selecting the
/// pod then holds from its first packet.
fn announce_pod(dir: &std::path::Path, env: &Env, result: &CniResult) {
    let (Some(namespace), Some(name)) = (env.arg("K8S_POD_NAMESPACE"), env.arg("K8S_POD_NAME"))
    else {
        return;
    };
    let ips: Vec<IpAddr> = result.ips.iter().map(|c| c.address.addr()).collect();
    let (id, ifname) = (&env.container_id, &env.ifname);
    if let Err(e) = announce::announce(dir, id, ifname, namespace, name, &ips) {
        log_at!(
            Warn,
            "announcing {namespace}/{name} to ferryd in {}: {e}",
            dir.display()
        );
        return;
    }
    match announce::wait_synced(dir, id, ifname, announce::WAIT) {
        announce::Waited::Synced => {}
        announce::Waited::NoFerryd => log_at!(
            Warn,
            "ferryd is not running in {}: {namespace}/{name} starts before its policy is known",
            dir.display()
        ),
        announce::Waited::TimedOut => log_at!(
            Warn,
            "ferryd did not confirm policy for {namespace}/{name} within {:?}; going on",
            announce::WAIT
        ),
    }
}

/// The MTU of the link that carries the node's default route (IPv4, else
/// IPv6), or 1500 on a node without one.
fn default_mtu(nl: &mut Handle) -> Result<u32, CniError> {
    for family in [ferry_netlink::Family::V4, ferry_netlink::Family::V6] {
        if let Some(link) = nl
            .default_route_link(family)
            .map_err(|e| kernel_err("finding the default route", e))?
        {
            return Ok(link.mtu);
        }
    }
    Ok(1500)
}
