//! Cabling: the switch (a bridge in its own netns), the router
//! 172.16.97.1 with the "internet" host behind it, and each node netns
//! plugged into the switch. Nothing is created in the host's namespace.

use crate::error::{LabError, Result};
use crate::sh::{ip_batch, sysctl};
use crate::topo::{self, NodePlan};

fn create(name: &str) -> Result<()> {
    ferry_netns::create_named(name)
        .map(drop)
        .map_err(|e| LabError::netns(name, e))
}

/// Switch, router and internet host; with `subnets` 2 a second bridge
/// `br1` in the switch netns and the router's `eth2` on it
/// (172.16.98.1/24), so the router connects the two node segments.
pub fn build_fixed(prefix: &str, dual_stack: bool, subnets: usize) -> Result<()> {
    let f = topo::fixed(prefix);
    for ns in [&f.switch, &f.router, &f.internet] {
        create(ns)?;
    }
    let r = topo::ROUTER_V4;
    let mut switch = vec![
        "link set lo up".to_string(),
        "link add br0 type bridge".into(),
        "link set br0 up".into(),
        format!(
            "link add router type veth peer name eth0 netns {}",
            f.router
        ),
        "link set router master br0".into(),
        "link set router up".into(),
    ];
    let mut router = vec![
        "link set lo up".to_string(),
        "link set eth0 up".into(),
        format!("addr add {r}/{} dev eth0", topo::NODE_SUBNET_LEN),
        format!(
            "link add eth1 type veth peer name eth0 netns {}",
            f.internet
        ),
        "link set eth1 up".into(),
        format!("addr add {}/24 dev eth1", topo::INTERNET_ROUTER_V4),
    ];
    let mut internet = vec![
        "link set lo up".to_string(),
        "link set eth0 up".into(),
        format!("addr add {}/24 dev eth0", topo::INTERNET_HOST_V4),
        format!("route add default via {}", topo::INTERNET_ROUTER_V4),
    ];
    if dual_stack {
        router.push(format!(
            "addr add {}/{} dev eth0 nodad",
            topo::ROUTER_V6,
            topo::NODE_SUBNET_V6_LEN
        ));
        router.push(format!(
            "addr add {}/64 dev eth1 nodad",
            topo::INTERNET_ROUTER_V6
        ));
        internet.push(format!(
            "addr add {}/64 dev eth0 nodad",
            topo::INTERNET_HOST_V6
        ));
        internet.push(format!(
            "route add default via {}",
            topo::INTERNET_ROUTER_V6
        ));
    }
    if subnets > 1 {
        switch.extend([
            "link add br1 type bridge".to_string(),
            "link set br1 up".into(),
            format!(
                "link add router2 type veth peer name eth2 netns {}",
                f.router
            ),
            "link set router2 master br1".into(),
            "link set router2 up".into(),
            "link set br1 type bridge mcast_snooping 0".into(),
        ]);
        router.extend([
            "link set eth2 up".to_string(),
            format!(
                "addr add {}/{} dev eth2",
                topo::ROUTER2_V4,
                topo::NODE_SUBNET_LEN
            ),
        ]);
        if dual_stack {
            router.push(format!(
                "addr add {}/{} dev eth2 nodad",
                topo::ROUTER2_V6,
                topo::NODE_SUBNET_V6_LEN
            ));
        }
    }
    // A plain switch: flood multicast (OSPF hellos), no snooping state.
    switch.push("link set br0 type bridge mcast_snooping 0".into());
    ip_batch(&f.switch, &switch)?;
    ip_batch(&f.router, &router)?;
    ip_batch(&f.internet, &internet)?;
    sysctl(&f.router, "net.ipv4.ip_forward", "1")?;
    if dual_stack {
        sysctl(&f.router, "net.ipv6.conf.all.forwarding", "1")?;
    }
    Ok(())
}

/// A node netns cabled to the switch: `eth0` with its InternalIP(s) and a
/// default route via the router, as a kubeadm node has.
pub fn add_node(prefix: &str, node: &NodePlan) -> Result<()> {
    let f = topo::fixed(prefix);
    create(&node.netns)?;
    ip_batch(
        &f.switch,
        &[
            format!(
                "link add {} type veth peer name {} netns {}",
                node.port,
                topo::NODE_IFNAME,
                node.netns
            ),
            format!("link set {} master {}", node.port, node.bridge()),
            format!("link set {} up", node.port),
        ],
    )?;
    let dev = topo::NODE_IFNAME;
    let (gw4, gw6) = node.gateways();
    let mut lines = vec![
        "link set lo up".to_string(),
        format!("link set {dev} up"),
        format!("addr add {}/{} dev {dev}", node.ip, topo::NODE_SUBNET_LEN),
        format!("route add default via {gw4} dev {dev}"),
    ];
    if let Some(ip6) = &node.ip6 {
        lines.push(format!(
            "addr add {ip6}/{} dev {dev} nodad",
            topo::NODE_SUBNET_V6_LEN
        ));
        lines.push(format!("route add default via {gw6} dev {dev}"));
    }
    ip_batch(&node.netns, &lines)
}

/// A pod netns with loopback up (what a runtime's sandbox has before CNI).
pub fn add_pod_netns(name: &str) -> Result<()> {
    create(name)?;
    ip_batch(name, &["link set lo up".to_string()])
}

/// Removes a named netns; true when it existed.
pub fn delete(name: &str) -> Result<bool> {
    ferry_netns::delete_named(name).map_err(|e| LabError::netns(name, e))
}
