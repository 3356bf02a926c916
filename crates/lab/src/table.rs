//! The table `up` ends with, laid out like the seed's picture: one column
//! per node (three per row) with its podCIDR, its pods and their
//! addresses, and its routing table — the pods' own host routes (`C`) and
//! the routes learnt for the other nodes' pods (`O` OSPF, `B` BGP, `K` a
//! ferryd kernel route in direct mode).

use crate::routes::{self, Route};
use crate::state::{NodeState, State};
use crate::topo;

const COLUMNS: usize = 3;
const GAP: &str = "   ";

/// Link-local next hops shown as the node they belong to.
type LinkLocals = Vec<(String, String)>;

fn label(r: &Route, ll: &LinkLocals) -> String {
    let text = r.label();
    match ll
        .iter()
        .find(|(addr, _)| r.gateway.as_deref() == Some(addr))
    {
        Some((addr, global)) => text.replace(&format!("via {addr}"), &format!("via {global}*")),
        None => text,
    }
}

/// One node's column, as lines.
fn column(state: &State, node: &NodeState, table: &[Route], ll: &LinkLocals) -> Vec<String> {
    let n = &node.plan;
    let mut lines = vec![
        format!(
            "{}{}",
            n.name,
            if n.control_plane() {
                " (control plane)"
            } else {
                ""
            }
        ),
        format!("node  {}", n.ips().join(", ")),
    ];
    for (i, c) in n.cidrs.iter().enumerate() {
        let head = if i == 0 { "PodCIDR" } else { "       " };
        lines.push(format!("{head} {c}"));
    }
    lines.push(String::new());
    let pods = state.pods_on(&n.name);
    if pods.is_empty() {
        lines.push("(no pods)".into());
    }
    for p in pods {
        lines.push(format!("{}  eth0 {}", p.name, p.ips.join(", ")));
    }
    lines.push(String::new());
    let mut own: Vec<&Route> = table.iter().filter(|r| r.code() == Some('C')).collect();
    let mut learnt: Vec<&Route> = table.iter().filter(|r| r.learnt()).collect();
    own.sort_by(|a, b| a.dst.cmp(&b.dst));
    learnt.sort_by(|a, b| (a.dst.contains(':'), &a.dst).cmp(&(b.dst.contains(':'), &b.dst)));
    for r in own.into_iter().chain(learnt) {
        lines.push(label(r, ll));
    }
    lines
}

fn render_row(cols: &[Vec<String>]) -> String {
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| c.iter().map(|l| l.chars().count()).max().unwrap_or(0))
        .collect();
    let height = cols.iter().map(Vec::len).max().unwrap_or(0);
    let border: String = widths
        .iter()
        .map(|w| format!("+{}+", "-".repeat(w + 2)))
        .collect::<Vec<_>>()
        .join(GAP);
    let mut out = format!("{border}\n");
    for i in 0..height {
        let line: Vec<String> = cols
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("| {:<w$} |", c.get(i).map_or("", String::as_str)))
            .collect();
        out += line.join(GAP).trim_end();
        out.push('\n');
    }
    out + &border + "\n"
}

/// The whole table, with the node tables read now.
pub fn render(state: &State) -> String {
    let tables: Vec<Vec<Route>> = state
        .nodes
        .iter()
        .map(|n| routes::table(&n.plan.netns).unwrap_or_default())
        .collect();
    let ll: LinkLocals = state
        .nodes
        .iter()
        .filter_map(|n| Some((n, n.plan.ip6.clone()?)))
        .flat_map(|(n, global)| {
            routes::link_locals(&n.plan.netns, topo::NODE_IFNAME)
                .into_iter()
                .map(move |a| (a, global.clone()))
        })
        .collect();
    render_with(state, &tables, &ll)
}

/// [`render`] with given routing tables (one per node, in order) and
/// link-local addresses (address, that node's global IPv6).
pub fn render_with(state: &State, tables: &[Vec<Route>], ll: &LinkLocals) -> String {
    let mode = if state.routing.uses_frr() {
        format!("{} ({} advertisement)", state.routing, state.advertise)
    } else {
        format!("{} (ferryd kernel routes)", state.routing)
    };
    let mut out = format!(
        "ferry lab: routing {mode}, {} nodes, {} pods{}\n",
        state.nodes.len(),
        state.pods.len(),
        if state.dual_stack { ", dual-stack" } else { "" }
    );
    let cols: Vec<Vec<String>> = state
        .nodes
        .iter()
        .zip(tables)
        .map(|(n, t)| column(state, n, t, ll))
        .collect();
    for row in cols.chunks(COLUMNS) {
        out += &render_row(row);
    }
    let ports: Vec<String> = state
        .nodes
        .iter()
        .map(|n| format!(".{}", n.plan.ip.rsplit('.').next().unwrap_or("?")))
        .collect();
    out += &format!(
        "  {} ── switch ({}switch) ── .1 router {} (API https://{}:{}) ── internet {}\n",
        ports.join(" "),
        state.prefix,
        topo::ROUTER_V4,
        topo::ROUTER_V4,
        topo::API_PORT,
        topo::INTERNET_HOST_V4,
    );
    if state.subnets > 1 {
        out += &format!(
            "  second segment 172.16.98.0/24 (bridge br1) behind router {}; K via a podCIDR's .0: through ferry.vxlan\n",
            topo::ROUTER2_V4
        );
    }
    out += "  172.16.97.0/24    C pod route   O OSPF   B BGP   K ferryd route (direct)";
    out += if ll.is_empty() {
        "\n"
    } else {
        "   * via its link-local address\n"
    };
    if let Some(s) = state.converged_s {
        out += &format!("  converged {s:.2} s after ferryd started\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Pod;
    use crate::topo::{node_plan, Advertise, Routing};

    fn route(dst: &str, gw: Option<&str>, dev: Option<&str>, proto: &str) -> Route {
        Route {
            dst: dst.into(),
            gateway: gw.map(Into::into),
            dev: dev.map(Into::into),
            proto: proto.into(),
            kind: "unicast".into(),
        }
    }

    #[test]
    fn looks_like_the_picture() {
        let nodes: Vec<NodeState> = (0..3)
            .map(|i| NodeState {
                plan: node_plan("fl-", i, false),
                ferryd: None,
            })
            .collect();
        let pods = (0..3)
            .map(|i| Pod {
                name: format!("pod-{}", i + 1),
                node: nodes[i].plan.name.clone(),
                netns: format!("fl-pod-{}", i + 1),
                container_id: "c".into(),
                uid: "u".into(),
                ips: vec![format!("10.244.{i}.5")],
            })
            .collect();
        let state = State {
            prefix: "fl-".into(),
            routing: Routing::Ospf,
            advertise: Advertise::Pods,
            dual_stack: false,
            nodes,
            pods,
            apiserver: None,
            next_pod: 4,
            converged_s: None,
            cni_version: "1.0.0".into(),
            fast_path: true,
            kubernetes: false,
            subnets: 1,
            encapsulation: None,
            encryption: None,
        };
        let t0 = vec![
            route("10.244.0.5/32", None, Some("veth"), "200"),
            route("10.244.2.5/32", Some("172.16.97.77"), Some("eth0"), "ospf"),
            route("10.244.1.5/32", Some("172.16.97.76"), Some("eth0"), "ospf"),
            route("0.0.0.0/0", Some("172.16.97.1"), Some("eth0"), "boot"),
        ];
        let mut t1 = vec![route(
            "fd00:10:244::/64",
            Some("fe80::1"),
            Some("eth0"),
            "ospf",
        )];
        t1[0].kind = "unicast".into();
        let ll = vec![("fe80::1".to_string(), "fd97::75".to_string())];
        let text = render_with(&state, &[t0, t1, vec![]], &ll);
        assert!(text.contains("O fd00:10:244::/64 via fd97::75*"), "{text}");
        assert!(text.contains("| k8s-master (control plane)"), "{text}");
        assert!(text.contains("PodCIDR 10.244.2.0/24"), "{text}");
        assert!(text.contains("pod-2  eth0 10.244.1.5"), "{text}");
        let c = text.find("C 10.244.0.5 dev veth").expect("pod route");
        let o1 = text.find("O 10.244.1.5 via 172.16.97.76").expect("learnt");
        let o2 = text.find("O 10.244.2.5 via 172.16.97.77").expect("learnt");
        assert!(c < o1 && o1 < o2, "{text}");
        assert!(!text.contains("172.16.97.1 \n"), "default route not shown");
        // Three columns side by side: every table line has three boxes.
        let boxed = text.lines().filter(|l| l.starts_with('|')).count();
        assert!(boxed > 5);
        assert!(text
            .lines()
            .filter(|l| l.starts_with('|'))
            .all(|l| l.matches("| ").count() >= 3));
    }
}
