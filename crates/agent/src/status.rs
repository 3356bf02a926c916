//! `ferryd status`: what ferryd manages on this node, read back from the
//! kernel, FRR, the files and (when reachable) the API.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ferry_ipam::{DiskStore, Owner, Store};
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::Api;

use crate::cli::{Opts, Routing};
use crate::desired::{self, Settings};
use crate::discovery::{self, NodeInfo, Nodes};
use crate::policy::status::{self as policy_status, PolicyReport};
use crate::policy::{KernelDataplane, PolicyDataplane};
use crate::{fast_path, kube_client, nat, routes, AgentError, NETWORK_NAME, NFT_TABLE};

/// A pod with an address on this node (from the IPAM store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodAddr {
    pub ip: IpAddr,
    pub container_id: String,
    pub ifname: String,
}

/// Everything `status` shows.
#[derive(Debug, Clone)]
pub struct Report {
    /// The API's view, or why there is none.
    pub nodes: Result<Nodes, String>,
    pub node: Option<NodeInfo>,
    pub interface: Option<discovery::LocalAddr>,
    pub routing: Routing,
    /// (destination, gateway, interface name).
    pub routes: Vec<(String, String, String)>,
    /// `--encapsulation` (resolved), and the VXLAN device when there is one.
    pub encapsulation: String,
    pub vxlan: Result<Option<String>, String>,
    /// The WireGuard device, as [`crate::wireguard_device::describe`] says.
    pub wireguard: Result<Option<String>, String>,
    /// ferry's nft table.
    pub nat: Result<Option<nat::NatState>, String>,
    pub learned: Option<Result<Vec<String>, String>>,
    pub conflist: Option<String>,
    pub pods: Result<Vec<PodAddr>, String>,
    pub fast_path: Result<fast_path::Observed, String>,
    /// NetworkPolicy (`None` with `--network-policy=false`).
    pub policy: Option<Result<PolicyReport, String>>,
    pub problems: Vec<String>,
}

impl Report {
    fn new(routing: Routing, nodes: Result<Nodes, String>) -> Report {
        Report {
            nodes,
            node: None,
            interface: None,
            routing,
            routes: Vec::new(),
            encapsulation: String::new(),
            vxlan: Ok(None),
            wireguard: Ok(None),
            nat: Ok(None),
            learned: None,
            conflist: None,
            pods: Ok(Vec::new()),
            fast_path: Ok(fast_path::Observed::default()),
            policy: None,
            problems: Vec::new(),
        }
    }
}

/// Gathers the report. The API is asked with a short timeout; without it
/// the local state is still shown.
pub async fn gather(o: &Opts) -> Report {
    let nodes = match tokio::time::timeout(Duration::from_secs(10), list_nodes(o)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    };
    let cluster = match o.network_policy {
        false => None,
        true => Some(
            match tokio::time::timeout(Duration::from_secs(10), list_policy_cluster(o)).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("timed out".into()),
            },
        ),
    };
    let o = o.clone();
    let routing = o.routing;
    tokio::task::spawn_blocking(move || {
        let mut r = gather_local(&o, nodes);
        if let Some(cluster) = cluster {
            r.policy = Some(cluster.and_then(|(c, problems)| {
                let node = r.node.as_ref().ok_or("this node is unknown")?.name.clone();
                let counters = KernelDataplane.counters(ferry_netpol::DEFAULT_TABLE);
                Ok(policy_status::report(&c, problems, &node, counters))
            }));
        }
        r
    })
    .await
    .unwrap_or_else(|e| {
        let mut r = Report::new(routing, Err("not asked".into()));
        r.problems.push(format!("status task: {e}"));
        r
    })
}

async fn list_policy_cluster(o: &Opts) -> Result<(ferry_netpol::Cluster, Vec<String>), AgentError> {
    let client = kube_client::client(o.kubeconfig.as_deref()).await?;
    policy_status::list_cluster(client).await
}

async fn list_nodes(o: &Opts) -> Result<Nodes, AgentError> {
    let client = kube_client::client(o.kubeconfig.as_deref()).await?;
    let api: Api<Node> = Api::all(client);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| AgentError::Kube(format!("list nodes: {e}")))?;
    Ok(list
        .items
        .iter()
        .map(NodeInfo::from_node)
        .map(|n| (n.name.clone(), n))
        .collect())
}

fn gather_local(o: &Opts, nodes: Result<Nodes, String>) -> Report {
    let mut r = Report::new(o.routing, Err("not asked".into()));
    let local = discovery::local_addresses().unwrap_or_else(|e| {
        r.problems.push(e.to_string());
        Vec::new()
    });
    let ifname = |index: Option<u32>| {
        index
            .and_then(|i| local.iter().find(|a| a.ifindex == i))
            .map(|a| a.ifname.clone())
            .unwrap_or_default()
    };
    if let Ok(all) = &nodes {
        match discovery::find_own(all, o.node_name().as_deref(), &local) {
            Ok(own) => {
                r.interface = discovery::node_interface(own, &local).ok().cloned();
                r.node = Some(own.clone());
                if let Ok(d) = desired::compute(&Settings::from(o), all, &local) {
                    r.problems.extend(
                        d.unroutable
                            .iter()
                            .map(|u| format!("not routed: {} of {}: {}", u.cidr, u.node, u.reason)),
                    );
                }
            }
            Err(e) => r.problems.push(e.to_string()),
        }
    }
    r.nodes = nodes;
    match ferry_netlink::Handle::new() {
        Ok(mut h) => match routes::owned(&mut h) {
            Ok(list) => {
                r.routes = list
                    .iter()
                    .map(|rt| {
                        (
                            rt.dst.to_string(),
                            rt.gateway.map(|g| g.to_string()).unwrap_or_default(),
                            ifname(rt.oif),
                        )
                    })
                    .collect()
            }
            Err(e) => r.problems.push(e.to_string()),
        },
        Err(e) => r.problems.push(e.to_string()),
    }
    r.encapsulation = o
        .encapsulation()
        .map_or_else(|e| e.to_string(), |e| e.as_str().to_string());
    r.vxlan = ferry_netlink::Handle::new()
        .map_err(|e| AgentError::netlink("open", e))
        .and_then(|mut h| crate::vxlan::describe(&mut h))
        .map_err(|e| e.to_string());
    r.wireguard = ferry_netlink::Handle::new()
        .map_err(|e| AgentError::netlink("open", e))
        .and_then(|mut h| crate::wireguard_device::describe(&mut h, &o.wireguard_run_dir))
        .map_err(|e| e.to_string());
    r.nat = nat::read().map_err(|e| e.to_string());
    r.fast_path = fast_path::observe(&o.bpf_dir).map_err(|e| e.to_string());
    if o.routing != Routing::Direct {
        let frr = crate::frr_glue::frr_from_opts(o);
        r.learned = Some(
            frr.learned_routes()
                .map(|list| {
                    list.iter()
                        .map(|l| {
                            let hops: Vec<String> = l
                                .nexthops
                                .iter()
                                .map(|h| {
                                    let ip = h.ip.map(|i| i.to_string()).unwrap_or_default();
                                    format!("{ip} {}", h.interface.clone().unwrap_or_default())
                                })
                                .collect();
                            format!("{} {} [{}]", l.prefix, l.protocol, hops.join(", ").trim())
                        })
                        .collect()
                })
                .map_err(|e| e.to_string()),
        );
    }
    r.conflist = std::fs::read_to_string(o.conflist_path()).ok();
    r.pods = pods(o).map_err(|e| e.to_string());
    r
}

/// The pods holding an address in the IPAM store, by IP.
pub fn pods(o: &Opts) -> Result<Vec<PodAddr>, AgentError> {
    let mut store = DiskStore::open(&o.ipam_data_dir, NETWORK_NAME)?;
    Ok(store
        .reservations()?
        .into_iter()
        .filter_map(|(ip, owner)| match owner {
            Owner::Attachment {
                container_id,
                ifname,
            } => Some(PodAddr {
                ip,
                container_id,
                ifname,
            }),
            Owner::Legacy { container_id } => Some(PodAddr {
                ip,
                container_id,
                ifname: String::new(),
            }),
            Owner::Empty => None,
        })
        .collect())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(n) => {
                writeln!(f, "node:       {}", n.name)?;
                let cidrs: Vec<String> = n.pod_cidrs.iter().map(ToString::to_string).collect();
                writeln!(f, "pod CIDRs:  {}", cidrs.join(", "))?;
                writeln!(
                    f,
                    "network:    {}",
                    if n.marked_up() {
                        "available (FerryIsUp)"
                    } else {
                        "not marked available"
                    }
                )?;
            }
            None => {
                writeln!(f, "node:       unknown")?;
            }
        }
        if let Some(i) = &self.interface {
            writeln!(f, "interface:  {} {} mtu {}", i.ifname, i.net, i.mtu)?;
        }
        writeln!(
            f,
            "routing:    {:?} (encapsulation {})",
            self.routing, self.encapsulation
        )?;
        match &self.nodes {
            Ok(all) => {
                writeln!(f, "peers:      {}", all.len().saturating_sub(1))?;
                for n in all
                    .values()
                    .filter(|n| Some(&n.name) != self.node.as_ref().map(|o| &o.name))
                {
                    let ips: Vec<String> = n.internal_ips.iter().map(ToString::to_string).collect();
                    let cidrs: Vec<String> = n.pod_cidrs.iter().map(ToString::to_string).collect();
                    writeln!(f, "  {} {} {}", n.name, ips.join(","), cidrs.join(","))?;
                }
            }
            Err(e) => {
                writeln!(f, "API:        unreachable ({e})")?;
            }
        }
        writeln!(f, "routes:     {} (proto 201)", self.routes.len())?;
        for (dst, via, dev) in &self.routes {
            writeln!(f, "  {dst} via {via} dev {dev}")?;
        }
        match &self.vxlan {
            Ok(Some(v)) => {
                writeln!(f, "vxlan:      {v}")?;
            }
            Ok(None) => {
                writeln!(f, "vxlan:      none")?;
            }
            Err(e) => {
                writeln!(f, "vxlan:      cannot read ({e})")?;
            }
        }
        match &self.wireguard {
            Ok(Some(w)) => writeln!(f, "wireguard:  {w}")?,
            Ok(None) => writeln!(f, "wireguard:  none")?,
            Err(e) => writeln!(f, "wireguard:  cannot read ({e})")?,
        }
        match &self.nat {
            Ok(Some(t)) => {
                let c: Vec<String> = t.cidrs.iter().map(ToString::to_string).collect();
                writeln!(
                    f,
                    "NAT:        table inet {NFT_TABLE}: masquerade pods leaving {} to outside {} ({} packets so far)",
                    t.out_ifname.as_deref().unwrap_or("?"),
                    c.join(", "),
                    t.packets
                )?;
            }
            Ok(None) => {
                writeln!(f, "NAT:        no table inet {NFT_TABLE}")?;
            }
            Err(e) => {
                writeln!(f, "NAT:        cannot read ({e})")?;
            }
        }
        match &self.fast_path {
            Ok(fp) => {
                let on = match &fp.stats {
                    Some(st) => format!(
                        "forwarded {} ({} put into VXLAN, {} taken out), left to the stack: {} \
                         tracked, {} without a route",
                        st.forwarded, st.encapsulated, st.decapsulated, st.tracked, st.no_fib
                    ),
                    None => "nothing pinned".into(),
                };
                writeln!(
                    f,
                    "fast path:  {on}; attached to {} interfaces",
                    fp.attached.len()
                )?;
                if !fp.attached.is_empty() {
                    writeln!(f, "  {}", fp.attached.join(" "))?;
                }
            }
            Err(e) => {
                writeln!(f, "fast path:  cannot read ({e})")?;
            }
        }
        match &self.learned {
            Some(Ok(list)) => {
                writeln!(f, "FRR learned: {}", list.len())?;
                for l in list {
                    writeln!(f, "  {l}")?;
                }
            }
            Some(Err(e)) => {
                writeln!(f, "FRR:        cannot ask ({e})")?;
            }
            None => {}
        }
        writeln!(
            f,
            "conflist:   {}",
            if self.conflist.is_some() {
                "written"
            } else {
                "absent"
            }
        )?;
        match &self.pods {
            Ok(pods) => {
                writeln!(f, "pods:       {}", pods.len())?;
                for p in pods {
                    writeln!(f, "  {} {} {}", p.ip, p.container_id, p.ifname)?;
                }
            }
            Err(e) => {
                writeln!(f, "pods:       cannot read the IPAM store ({e})")?;
            }
        }
        if let Some(p) = &self.policy {
            let mut s = String::new();
            policy_status::render(p, &mut s);
            f.write_str(&s)?;
        }
        for p in &self.problems {
            writeln!(f, "problem:    {p}")?;
        }
        Ok(())
    }
}
