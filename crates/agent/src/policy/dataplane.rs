//! Where a [`Ruleset`] goes: the kernel (ferry-netpol-nft's API, behind
//! [`PolicyDataplane`]), or an in-memory fake in unit tests.

use std::collections::BTreeMap;

use ferry_netpol::Ruleset;

/// What an apply did (ferry-netpol-nft's `Applied`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Unchanged,
    /// Set/map elements only: one transaction, the table's shape and its
    /// counters stay.
    Elements {
        added: usize,
        removed: usize,
    },
    /// The whole table, atomically (counters start again from zero).
    Replaced,
}

/// Why the dataplane failed.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("nftables: {0}")]
    Kernel(String),
}

/// Named counters: name → (packets, bytes).
pub type Counters = BTreeMap<String, (u64, u64)>;

/// The kernel side, one call per atomic netlink transaction. Everything
/// acts in the calling thread's network namespace.
pub trait PolicyDataplane: Send + 'static {
    /// Install `new` in place of whatever table of that name is there.
    fn replace(&mut self, new: &Ruleset) -> Result<(), DataplaneError>;
    /// Go from `old` (what the caller believes is installed; `None`: not
    /// known) to `new`: elements only when possible, else a replace.
    fn apply(&mut self, old: Option<&Ruleset>, new: &Ruleset) -> Result<Applied, DataplaneError>;
    /// Delete the table; `false` when there was none.
    fn delete(&mut self, table: &str) -> Result<bool, DataplaneError>;
    /// The table's named counters.
    fn counters(&mut self, table: &str) -> Result<Counters, DataplaneError>;
    /// Whether the kernel holds exactly `rs` (shape and elements).
    fn installed_matches(&mut self, rs: &Ruleset) -> Result<bool, DataplaneError>;
}

/// The real dataplane: ferry-netpol-nft (one nfnetlink batch per call,
/// in the calling thread's network namespace).
#[derive(Debug, Default)]
pub struct KernelDataplane;

fn kernel(e: ferry_netpol_nft::Error) -> DataplaneError {
    DataplaneError::Kernel(e.to_string())
}

impl PolicyDataplane for KernelDataplane {
    fn replace(&mut self, new: &Ruleset) -> Result<(), DataplaneError> {
        ferry_netpol_nft::replace(new).map_err(kernel)
    }

    fn apply(&mut self, old: Option<&Ruleset>, new: &Ruleset) -> Result<Applied, DataplaneError> {
        use ferry_netpol_nft::Applied as A;
        Ok(match ferry_netpol_nft::apply(old, new).map_err(kernel)? {
            A::Unchanged => Applied::Unchanged,
            A::Elements { added, removed } => Applied::Elements { added, removed },
            A::Replaced => Applied::Replaced,
        })
    }

    fn delete(&mut self, table: &str) -> Result<bool, DataplaneError> {
        ferry_netpol_nft::delete(table).map_err(kernel)
    }

    fn counters(&mut self, table: &str) -> Result<Counters, DataplaneError> {
        ferry_netpol_nft::counters(table).map_err(kernel)
    }

    fn installed_matches(&mut self, rs: &Ruleset) -> Result<bool, DataplaneError> {
        ferry_netpol_nft::installed_matches(rs).map_err(kernel)
    }
}

/// In-memory dataplane for unit tests: keeps the "installed" ruleset,
/// counts what was done, resets counters on replace like the kernel.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct FakeDataplane {
    pub installed: Option<Ruleset>,
    pub counters: Counters,
    pub replaces: usize,
    pub element_applies: usize,
    pub fail: bool,
}

#[cfg(test)]
impl PolicyDataplane for FakeDataplane {
    fn replace(&mut self, new: &Ruleset) -> Result<(), DataplaneError> {
        if self.fail {
            return Err(DataplaneError::Kernel("injected".into()));
        }
        self.replaces += 1;
        self.counters = new.counters.iter().map(|c| (c.clone(), (0, 0))).collect();
        self.installed = Some(new.clone());
        Ok(())
    }

    fn apply(&mut self, old: Option<&Ruleset>, new: &Ruleset) -> Result<Applied, DataplaneError> {
        use ferry_netpol::Diff;
        if self.fail {
            return Err(DataplaneError::Kernel("injected".into()));
        }
        let Some(old) = old else {
            self.replace(new)?;
            return Ok(Applied::Replaced);
        };
        assert_eq!(self.installed.as_ref(), Some(old), "apply from a stale old");
        match ferry_netpol::diff(old, new) {
            Diff::Unchanged => Ok(Applied::Unchanged),
            Diff::Elements(changes) => {
                self.element_applies += 1;
                self.installed = Some(new.clone());
                Ok(Applied::Elements {
                    added: changes.iter().map(|c| c.added.len()).sum(),
                    removed: changes.iter().map(|c| c.removed.len()).sum(),
                })
            }
            Diff::Ruleset => {
                self.replace(new)?;
                Ok(Applied::Replaced)
            }
        }
    }

    fn delete(&mut self, _table: &str) -> Result<bool, DataplaneError> {
        Ok(self.installed.take().is_some())
    }

    fn counters(&mut self, _table: &str) -> Result<Counters, DataplaneError> {
        Ok(self.counters.clone())
    }

    fn installed_matches(&mut self, rs: &Ruleset) -> Result<bool, DataplaneError> {
        Ok(self.installed.as_ref() == Some(rs))
    }
}
