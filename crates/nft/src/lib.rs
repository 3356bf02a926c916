//! ferry's masquerade table, written to nf_tables over netlink (no `nft`
//! binary, no libnftnl).
//!
//! ferryd owns one table of family `inet` (default name [`DEFAULT_TABLE`])
//! and nothing else in the ruleset:
//!
//! ```text
//! table inet ferry {
//!     set cluster4 { type ipv4_addr; flags interval; elements = { 10.244.0.0/16 } }
//!     set cluster6 { type ipv6_addr; flags interval; elements = { fd00:10:244::/56 } }
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         oifname "eth0" ip saddr @cluster4 ip daddr != @cluster4 counter masquerade
//!         oifname "eth0" ip6 saddr @cluster6 ip6 daddr != @cluster6 counter masquerade
//!     }
//! }
//! ```
//!
//! * [`apply`] replaces the table atomically: one nfnetlink batch of
//!   NEWTABLE (so the delete cannot fail), DELTABLE, NEWTABLE, the sets and
//!   their elements, the chain and the rules. The kernel commits all of it
//!   or nothing; no reader ever sees the table missing or half-built. A
//!   family with no CIDRs gets an empty set and no rule.
//! * [`apply_if_changed`] does that only when [`read_table`] shows something
//!   else installed — a replace resets the counters.
//! * [`delete_table`] and [`read_table`] do what they say.
//!
//! Everything acts on the network namespace of the calling thread (call it
//! inside `ferry_netns::NetNs::run` for another one). Writing needs
//! CAP_NET_ADMIN in that namespace.
//!
//! Cluster CIDRs are merged (overlapping, adjacent, duplicate) before they
//! become interval-set elements, which are encoded as nft 1.0.6 encodes
//! them (unit tests compare bytes with `nft --debug=mnl` captures).
//!
//! [`raw`] exposes the pieces this table is built from (batches, the
//! attribute writer and reader, the socket, interval elements, the
//! kernel's numbers) to other ferry tables, e.g. ferry-netpol-nft's.

mod cidr;
mod error;
mod msg;
mod nla;
pub mod raw;
mod read;
mod socket;
mod state;
mod sys;

use ipnet::IpNet;

pub use cidr::{normalize, IpFamily};
pub use error::{MessageError, NftError};
pub use state::{ChainState, Counter, RuleState, SetState, TableState};

use cidr::{interval_elements, merged_ranges};
use msg::Batch;
use socket::NfSocket;

/// The table name ferryd uses unless configured otherwise.
pub const DEFAULT_TABLE: &str = "ferry";
/// The set of IPv4 cluster CIDRs.
pub const SET4: &str = "cluster4";
/// The set of IPv6 cluster CIDRs.
pub const SET6: &str = "cluster6";
/// The NAT chain hooked at postrouting.
pub const CHAIN: &str = "postrouting";

/// What ferryd wants installed: traffic from `cluster_cidrs` to anywhere
/// outside them, leaving through `out_ifname`, is masqueraded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasqueradeTable {
    /// The `inet` table's name (ferryd: [`DEFAULT_TABLE`]).
    pub name: String,
    /// Pod (and service) CIDRs of both families, in any order; overlaps
    /// and host bits are fine.
    pub cluster_cidrs: Vec<IpNet>,
    /// The node's uplink, matched exactly (`oifname "eth0"`).
    pub out_ifname: String,
}

impl MasqueradeTable {
    /// Checks the names before anything is sent.
    pub fn validate(&self) -> Result<(), NftError> {
        validate_table_name(&self.name)?;
        let ifname = &self.out_ifname;
        if ifname.is_empty() || ifname.len() >= sys::IFNAMSIZ {
            return Err(NftError::Invalid(format!(
                "interface name {ifname:?} must be 1 to {} bytes",
                sys::IFNAMSIZ - 1
            )));
        }
        if ifname.contains(['\0', '/']) || ifname.chars().any(char::is_whitespace) {
            return Err(NftError::Invalid(format!(
                "interface name {ifname:?} contains NUL, '/' or whitespace"
            )));
        }
        Ok(())
    }
}

fn validate_table_name(name: &str) -> Result<(), NftError> {
    if name.is_empty() || name.len() >= sys::NFT_NAME_MAXLEN || name.contains('\0') {
        return Err(NftError::Invalid(format!(
            "table name {name:?} must be 1 to {} bytes without NUL",
            sys::NFT_NAME_MAXLEN - 1
        )));
    }
    Ok(())
}

/// The transaction [`apply`] sends for `t`, starting at sequence `seq`.
fn replace_batch(t: &MasqueradeTable, seq: u32) -> Batch {
    let name = t.name.as_str();
    let mut b = Batch::new(seq);
    msg::new_table(&mut b, name);
    msg::del_table(&mut b, name);
    msg::new_table(&mut b, name);
    let families = [(SET4, 1, IpFamily::V4), (SET6, 2, IpFamily::V6)];
    let mut masquerade = Vec::new();
    for (set, id, family) in families {
        msg::new_interval_set(&mut b, name, set, id, family);
        let ranges = merged_ranges(family, &t.cluster_cidrs);
        if !ranges.is_empty() {
            msg::new_set_elems(
                &mut b,
                name,
                set,
                id,
                family,
                &interval_elements(family, &ranges),
            );
            masquerade.push((set, id, family));
        }
    }
    msg::new_nat_postrouting_chain(&mut b, name, CHAIN);
    for (set, id, family) in masquerade {
        msg::new_masquerade_rule(&mut b, name, CHAIN, family, &t.out_ifname, set, id);
    }
    b
}

/// Replaces table `t.name` (family inet) with `t`, atomically, in one
/// batch; creates it if absent. Other tables are not touched. Counters
/// start again from zero.
pub fn apply(t: &MasqueradeTable) -> Result<(), NftError> {
    t.validate()?;
    let mut sock = NfSocket::open()?;
    let seq = sock.reserve_seq(1);
    sock.send_batch(&t.name, &replace_batch(t, seq).seal())
}

/// [`apply`], unless the installed table already [`TableState::matches`]
/// `t` (then its counters keep counting). Returns whether it applied.
pub fn apply_if_changed(t: &MasqueradeTable) -> Result<bool, NftError> {
    t.validate()?;
    let mut sock = NfSocket::open()?;
    if read::read(&mut sock, &t.name)?.is_some_and(|s| s.matches(t)) {
        return Ok(false);
    }
    let seq = sock.reserve_seq(1);
    sock.send_batch(&t.name, &replace_batch(t, seq).seal())?;
    Ok(true)
}

/// The messages of [`apply`]'s batch for `t`, one line each, from
/// `BATCH_BEGIN` to `BATCH_END` (for logs and tests; sends nothing).
pub fn plan(t: &MasqueradeTable) -> Result<Vec<String>, NftError> {
    t.validate()?;
    let sealed = replace_batch(t, 1).seal();
    let mut out = vec!["BATCH_BEGIN".to_string()];
    out.extend(sealed.acked.into_iter().map(|(_, what)| what));
    out.push("BATCH_END".to_string());
    Ok(out)
}

/// Deletes table `name` (family inet). `Ok(false)` if there was none.
pub fn delete_table(name: &str) -> Result<bool, NftError> {
    validate_table_name(name)?;
    let mut sock = NfSocket::open()?;
    let mut b = Batch::new(sock.reserve_seq(1));
    msg::del_table(&mut b, name);
    match sock.send_batch(name, &b.seal()) {
        Ok(()) => Ok(true),
        Err(NftError::Batch { errors, .. })
            if errors.len() == 1 && errors[0].errno == 2 /* ENOENT */ =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// What table `name` (family inet) holds: sets with their elements as
/// CIDRs, chains, rules with their counters. `None` if there is no such
/// table.
pub fn read_table(name: &str) -> Result<Option<TableState>, NftError> {
    validate_table_name(name)?;
    let mut sock = NfSocket::open()?;
    read::read(&mut sock, name)
}

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
