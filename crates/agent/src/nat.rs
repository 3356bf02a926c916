//! Masquerade: ferry's own `inet` table, replaced atomically by ferry-nft
//! whenever the cluster CIDR set or the node interface changes, and left
//! alone (counters and all) when it already says the right thing.

use ferry_nft::MasqueradeTable;
use ipnet::IpNet;

use crate::desired::NatPlan;
use crate::{AgentError, NFT_TABLE};

/// Remembers the plan last applied, so an unchanged one costs nothing.
#[derive(Debug, Default)]
pub struct Nat {
    applied: Option<NatPlan>,
}

fn table(plan: &NatPlan) -> MasqueradeTable {
    MasqueradeTable {
        name: NFT_TABLE.to_string(),
        cluster_cidrs: plan.cidrs.clone(),
        out_ifname: plan.out_ifname.clone(),
    }
}

impl Nat {
    /// Makes ferry's table say `plan`. Without `full`, a plan equal to the
    /// last one applied is not checked again; otherwise the table is read
    /// back and only rewritten when it differs (so a ferryd restart
    /// rewrites nothing). Returns whether the table was (re)written.
    pub fn apply(&mut self, plan: &NatPlan, full: bool) -> Result<bool, AgentError> {
        if !full && self.applied.as_ref() == Some(plan) {
            return Ok(false);
        }
        let written = ferry_nft::apply_if_changed(&table(plan))
            .map_err(|e| AgentError::Nft(format!("table inet {NFT_TABLE}: {e}")))?;
        if written {
            tracing::info!(cidrs = ?plan.cidrs, out = %plan.out_ifname, "masquerade table set");
        }
        self.applied = Some(plan.clone());
        Ok(written)
    }
}

/// ferry's table as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatState {
    /// The cluster CIDRs (merged, as the sets hold them).
    pub cidrs: Vec<IpNet>,
    /// The interface the masquerade rules match.
    pub out_ifname: Option<String>,
    /// Packets masqueraded so far (both families).
    pub packets: u64,
}

/// The table as the kernel has it, or `None` when there is no ferry table.
pub fn read() -> Result<Option<NatState>, AgentError> {
    let state = ferry_nft::read_table(NFT_TABLE)
        .map_err(|e| AgentError::Nft(format!("read table inet {NFT_TABLE}: {e}")))?;
    Ok(state.map(|s| NatState {
        cidrs: s.cluster_cidrs(),
        out_ifname: s.out_ifname().map(str::to_string),
        packets: s.masqueraded().packets,
    }))
}

/// Removes ferry's table; `Ok(false)` if there was none.
pub fn delete() -> Result<bool, AgentError> {
    ferry_nft::delete_table(NFT_TABLE)
        .map_err(|e| AgentError::Nft(format!("delete table inet {NFT_TABLE}: {e}")))
}
