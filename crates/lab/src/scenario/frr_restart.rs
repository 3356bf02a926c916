//! The `frr-restart` scenario: a worker's FRR killed and started again,
//! as when ferry's pod is replaced.

use std::time::{Duration, Instant};

use super::{learnt, ms, worker, Outcome};
use crate::agent;
use crate::check;
use crate::error::{LabError, Result};
use crate::frr;
use crate::lab::{Lab, STEP_LIMIT};
use crate::sh;
use crate::topo::{NodePlan, Routing};

/// How long FRR stays down: past BGP's hold time (9 s), so a node that
/// was going to drop the routes would have done so. (OSPF's dead interval
/// is 40 s; without graceful restart the others drop the adjacency as
/// soon as they take the new ospfd's first hello.)
const GRACEFUL_DOWN: Duration = Duration::from_secs(10);

/// FRR's daemons on a worker are killed (as when its container ends) and
/// start again from ferryd's frr.conf. Graceful restart keeps its routes
/// everywhere meanwhile and every cross-node ping is answered: in bgp mode
/// the other nodes keep them as stale; in ospf mode the restart is first
/// announced (`graceful-restart prepare ip ospf`, the manifest's preStop
/// hook) and the other nodes, as helpers, keep the node's adjacency and
/// routes; its own zebra leaves them in the kernel either way.
pub(super) fn frr_restart(lab: &mut Lab) -> Result<Outcome> {
    let node = worker(lab);
    let via = format!(" via {}", node.ip);
    let others: Vec<NodePlan> = lab
        .plans()
        .into_iter()
        .filter(|n| n.name != node.name)
        .collect();
    let has_routes_via =
        |n: &NodePlan| learnt(n).is_ok_and(|l| l.iter().any(|r| r.ends_with(&via)));
    let ospf = lab.state.routing == Routing::Ospf;
    let run_dir = frr::run_dir(&node.netns).display().to_string();
    if ospf {
        // What the manifest's preStop hook runs.
        let vtysh = format!("vtysh -N {}", node.netns);
        sh_c(&ferry_frr::ospf_pre_stop(&vtysh, &run_dir))?;
    }
    let t = Instant::now();
    let stopped = lab.kill_frr(&node.name)?;
    std::thread::sleep(GRACEFUL_DOWN);
    if let Some(n) = others.iter().find(|n| !has_routes_via(n)) {
        return Err(LabError::scenario(
            "frr-restart",
            format!(
                "{} dropped the routes{via} while its FRR was down (graceful restart)",
                n.name
            ),
        ));
    }
    let mesh = check::run_pings(&check::pod_pings(&lab.state, true));
    if let Some(bad) = mesh.iter().find(|p| !p.ok) {
        return Err(LabError::scenario(
            "frr-restart",
            format!("while FRR was down: {}", bad.what),
        ));
    }
    let while_down = format!(
        "the other nodes kept its routes (graceful restart) and {} cross-node pings were answered {} later",
        mesh.len(),
        ms(t.elapsed())
    );
    let mut seq_wait = String::new();
    if ospf {
        // What the manifest's FRR container runs before FRR: the clock
        // past the MD5 sequence number the old ospfd reached.
        let t = Instant::now();
        sh_c(&ferry_frr::ospf_start_wait(&run_dir))?;
        seq_wait = format!(
            " (after waiting {} more for the old ospfd's MD5 sequence number)",
            ms(t.elapsed())
        );
    }
    let t = Instant::now();
    lab.start_frr(&node.name)?;
    lab.wait_converged(STEP_LIMIT)?;
    let total = t.elapsed();
    sh::wait_for(
        STEP_LIMIT,
        Duration::from_millis(50),
        "ferryd ready after FRR's restart",
        || agent::ready(&node).then_some(()),
    )?;
    Ok(Outcome {
        lines: vec![format!(
            "FRR on {} killed ({stopped} daemons): {while_down}; restarted from ferryd's frr.conf{seq_wait}, every pod reached again {} later",
            node.name,
            ms(total)
        )],
        skipped: false,
    })
}

/// Runs one of ferry-frr's shell scripts as FRR's container would.
fn sh_c(script: &str) -> Result<()> {
    sh::run(std::process::Command::new("sh").args(["-c", script]))?;
    Ok(())
}
