//! ferry's NetworkPolicy table ([`ferry_netpol::Ruleset`], see that crate
//! for its layout and meaning) written to nf_tables over netlink: no `nft`
//! binary, no libnftnl. Built on `ferry_nft::raw` (batches, attributes,
//! the socket).
//!
//! * [`replace`]: one batch (NEWTABLE so that the delete cannot fail,
//!   DELTABLE, NEWTABLE, chains, counters, sets with their elements,
//!   rules); the kernel commits all of it or nothing.
//! * [`apply`]: from what this process installed last to the new ruleset;
//!   when only elements differ ([`ferry_netpol::diff()`]), one batch of
//!   element deletes and adds (named counters keep counting), else
//!   [`replace`].
//! * [`delete`], [`counters`], [`installed_matches`] (after a restart:
//!   keep the table, and its counters, when it already is what we want).
//!
//! Every construct is encoded attribute for attribute as nft 1.0.6
//! encodes it (unit tests compare bytes with `nft --debug=mnl` captures),
//! so `nft list` shows the table as `ferry_netpol::render()` prints it.
//! Everything acts in the network namespace of the calling thread and
//! needs CAP_NET_ADMIN there. Large element lists are split over several
//! messages of the same batch (5 000 pods and 1 000 policies, up to two
//! million elements when every pod is local, go in one transaction).
//!
//! # Modules
//!
//! `objects` (chains, counters, sets, elements) · `rules` (matches,
//! verdicts, anonymous port sets) · `batch` (the replace and element
//! transactions, validation) · `read` (counters, the canonical form
//! [`installed_matches`] compares).
//!
//! # Tests
//!
//! `src/batch_tests.rs`: our messages byte for byte against nft 1.0.6
//! `--debug=mnl` captures (`src/testdata/`: five golden scenarios, one
//! of them also with the drop log's `limit` and `log`, port sets, element
//! updates). Needing root and `nft` (they say so and pass
//! without): `tests/kernel.rs` (every scenario of ferry-netpol written by
//! [`replace`] lists as nft lists the rendered text loaded by nft; pod
//! churn; counters, delete, installed_matches), `tests/dataplane.rs`
//! (real TCP connections, IPv4 and IPv6, through the table),
//! `tests/scale.rs` (timings; the all-local case is `--ignored`). Every
//! netns is `ftnpn-<pid>-<n>…` and is deleted, also on failure.

mod batch;
mod error;
mod objects;
mod read;
mod rules;
mod sys;

use std::collections::BTreeMap;

use ferry_netpol::{diff, Diff, Ruleset};
use ferry_nft::raw::{Batch, SealedBatch, Socket};

pub use error::Error;

/// What [`apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// `old` and `new` are equal: nothing was sent.
    Unchanged,
    /// Only elements changed: this many went in and out, in one batch.
    Elements { added: usize, removed: usize },
    /// The table was replaced (counters start again from zero).
    Replaced,
}

fn open(op: &'static str, table: &str) -> Result<Socket, Error> {
    Socket::open().map_err(Error::nft(op, table))
}

fn send(sock: &mut Socket, op: &'static str, table: &str, b: SealedBatch) -> Result<(), Error> {
    sock.send_batch(table, &b).map_err(Error::nft(op, table))
}

/// Atomically replaces table `new.table` (family inet) with `new`, or
/// creates it. Other tables are not touched.
pub fn replace(new: &Ruleset) -> Result<(), Error> {
    batch::validate(new)?;
    let mut sock = open("replace", &new.table)?;
    let seq = sock.reserve_seq(1);
    send(
        &mut sock,
        "replace",
        &new.table,
        batch::replace_batch(new, seq).seal(),
    )
}

/// Goes from `old` (what this process last installed; `None` after a
/// start) to `new`: one batch of element removals and additions when only
/// elements differ, else [`replace`]. Should the element batch be refused
/// (the kernel's table is not `old` after all), the table is replaced.
/// A new table name is a replace of the new table; the old one is left
/// for the caller to [`delete`].
pub fn apply(old: Option<&Ruleset>, new: &Ruleset) -> Result<Applied, Error> {
    let Some(old) = old else {
        replace(new)?;
        return Ok(Applied::Replaced);
    };
    let changes = match diff(old, new) {
        Diff::Unchanged => return Ok(Applied::Unchanged),
        Diff::Ruleset => {
            replace(new)?;
            return Ok(Applied::Replaced);
        }
        Diff::Elements(changes) => changes,
    };
    batch::validate(new)?;
    let mut sock = open("update elements", &new.table)?;
    let seq = sock.reserve_seq(1);
    let b = batch::element_batch(new, &changes, seq).seal();
    match send(&mut sock, "update elements", &new.table, b) {
        Ok(()) => Ok(Applied::Elements {
            added: changes.iter().map(|c| c.added.len()).sum(),
            removed: changes.iter().map(|c| c.removed.len()).sum(),
        }),
        Err(Error::Nft {
            source: ferry_nft::NftError::Batch { .. },
            ..
        }) => {
            replace(new)?;
            Ok(Applied::Replaced)
        }
        Err(e) => Err(e),
    }
}

/// Deletes table `table` (family inet); `Ok(false)` when there was none.
pub fn delete(table: &str) -> Result<bool, Error> {
    ferry_nft::delete_table(table).map_err(Error::nft("delete", table))
}

/// The named counters of `table`: name → (packets, bytes). Empty when the
/// table is absent.
pub fn counters(table: &str) -> Result<BTreeMap<String, (u64, u64)>, Error> {
    let mut sock = open("counters", table)?;
    read::counters(&mut sock, table).map_err(Error::nft("counters", table))
}

/// Whether the kernel's table `rs.table` equals `rs`: chains, rules, sets
/// with their elements, counter names (not their values).
///
/// `rs` is written into a scratch table `<table>.check` flagged dormant
/// (its chains are not hooked: it sees no packet), both tables are read
/// back with the kernel's dumps, compared without handles, names and use
/// counts, and the scratch table is deleted. The kernel encodes both the
/// same way, so this compares meaning, not our encoder with itself.
pub fn installed_matches(rs: &Ruleset) -> Result<bool, Error> {
    batch::validate(rs)?;
    let table = rs.table.as_str();
    let op = "installed_matches";
    let mut sock = open(op, table)?;
    if !read::exists(&mut sock, table).map_err(Error::nft(op, table))? {
        return Ok(false);
    }
    let check = check_table(table);
    let seq = sock.reserve_seq(1);
    let mut b = Batch::new(seq);
    new_dormant_table(&mut b, &check);
    ferry_nft::raw::del_table(&mut b, &check);
    new_dormant_table(&mut b, &check);
    batch::objects(&mut b, rs, &check);
    send(&mut sock, op, &check, b.seal())?;
    let compared = (|| {
        let installed = read::canonical(&mut sock, table)?;
        let wanted = read::canonical(&mut sock, &check)?;
        Ok(installed == wanted)
    })()
    .map_err(Error::nft(op, table));
    let removed = ferry_nft::delete_table(&check).map_err(Error::nft(op, &check));
    let same = compared?;
    removed?;
    Ok(same)
}

/// The scratch table [`installed_matches`] uses.
fn check_table(table: &str) -> String {
    let mut name = table.to_string();
    name.truncate(sys::NFT_NAME_MAXLEN - 8);
    name + ".check"
}

fn new_dormant_table(b: &mut Batch, table: &str) {
    b.push(
        sys::NFT_MSG_NEWTABLE,
        sys::NLM_F_CREATE,
        format!("NEWTABLE {table} (dormant)"),
        |w| {
            w.str(sys::NFTA_TABLE_NAME, table);
            w.u32(sys::NFTA_TABLE_FLAGS, sys::NFTA_TABLE_FLAGS_DORMANT);
        },
    );
}
