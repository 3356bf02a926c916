//! The storage interface the allocator runs on, plus [`FakeStore`], an
//! in-memory implementation for tests.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::error::IpamError;

/// Who holds a reserved IP, as read back from its reservation record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// host-local's current format: `"<containerID>\r\n<ifname>"`.
    Attachment {
        container_id: String,
        ifname: String,
    },
    /// host-local's pre-CNI-0.7 format: the container ID only. Matches the
    /// container with any interface name.
    Legacy { container_id: String },
    /// An empty record: a writer died between creating the file and writing
    /// it. Nobody owns it; it is garbage once seen under the lock.
    Empty,
}

impl Owner {
    /// Parse a reservation file's content the way host-local compares it
    /// (surrounding whitespace trimmed).
    pub fn parse(content: &str) -> Owner {
        let content = content.trim();
        if content.is_empty() {
            Owner::Empty
        } else if let Some((id, ifname)) = content.split_once("\r\n") {
            Owner::Attachment {
                container_id: id.to_owned(),
                ifname: ifname.to_owned(),
            }
        } else {
            Owner::Legacy {
                container_id: content.to_owned(),
            }
        }
    }

    /// Whether this record belongs to index key `(container_id, ifname)`;
    /// `ifname == ""` is the key under which legacy records are indexed.
    pub fn is_key(&self, container_id: &str, ifname: &str) -> bool {
        match self {
            Owner::Attachment {
                container_id: c,
                ifname: i,
            } => c == container_id && i == ifname,
            Owner::Legacy { container_id: c } => ifname.is_empty() && c == container_id,
            Owner::Empty => false,
        }
    }

    /// The index key `(container_id, ifname)` of this record (`ifname` is
    /// empty for legacy records), or `None` for an empty record.
    pub fn key(&self) -> Option<(&str, &str)> {
        match self {
            Owner::Attachment {
                container_id,
                ifname,
            } => Some((container_id, ifname)),
            Owner::Legacy { container_id } => Some((container_id, "")),
            Owner::Empty => None,
        }
    }
}

/// One entry of the per-attachment index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub container_id: String,
    /// Empty for the entry that groups a container's legacy (ID-only) records.
    pub ifname: String,
    pub ips: Vec<IpAddr>,
}

/// Reservation storage. Callers hold the guard returned by [`Store::lock`]
/// around every sequence of calls; the other methods do not lock.
///
/// The index maps an attachment `(container_id, ifname)` to the IPs it
/// holds, so DEL/CHECK/idempotent ADD never scan all reservations. The key
/// with `ifname == ""` holds a container's legacy (ID-only) records.
pub trait Store {
    /// Releases the lock when dropped.
    type Guard;

    /// Take the store-wide exclusive lock (waiting up to the store's
    /// timeout -> [`IpamError::LockTimeout`]).
    fn lock(&mut self) -> Result<Self::Guard, IpamError>;

    /// The holder of `ip`, or `None` if it is free.
    fn owner(&mut self, ip: IpAddr) -> Result<Option<Owner>, IpamError>;

    /// Reserve `ip` for the attachment if nobody holds it. `Ok(false)`: taken.
    fn reserve(&mut self, ip: IpAddr, container_id: &str, ifname: &str) -> Result<bool, IpamError>;

    /// Drop the reservation of `ip` whoever holds it. Idempotent.
    fn release(&mut self, ip: IpAddr) -> Result<(), IpamError>;

    /// The IP last reserved in range set `set`, if recorded and parseable.
    fn last_reserved(&mut self, set: usize) -> Result<Option<IpAddr>, IpamError>;

    fn set_last_reserved(&mut self, set: usize, ip: IpAddr) -> Result<(), IpamError>;

    /// The IPs indexed for an attachment, `None` if it has no entry.
    fn index_get(
        &mut self,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<Vec<IpAddr>>, IpamError>;

    /// Create or replace an attachment's index entry.
    fn index_put(
        &mut self,
        container_id: &str,
        ifname: &str,
        ips: &[IpAddr],
    ) -> Result<(), IpamError>;

    /// Remove an attachment's index entry. Idempotent.
    fn index_delete(&mut self, container_id: &str, ifname: &str) -> Result<(), IpamError>;

    /// Every reservation (O(n); for GC, STATUS and migration only).
    fn reservations(&mut self) -> Result<Vec<(IpAddr, Owner)>, IpamError>;

    /// When the record of `ip` was last written (for collectors that
    /// spare young reservations); `None` if free or unknown.
    fn written_at(&mut self, ip: IpAddr) -> Result<Option<SystemTime>, IpamError>;

    /// Every index entry (O(n); for GC only).
    fn index_entries(&mut self) -> Result<Vec<IndexEntry>, IpamError>;

    /// Check that the store can be written to (for STATUS).
    fn probe_writable(&mut self) -> Result<(), IpamError>;
}

/// In-memory [`Store`] for tests, with call counters and fault injection.
#[derive(Debug, Default)]
pub struct FakeStore {
    pub ips: BTreeMap<IpAddr, Owner>,
    pub last: BTreeMap<usize, IpAddr>,
    pub index: BTreeMap<(String, String), Vec<IpAddr>>,
    /// What [`Store::written_at`] answers (unknown when absent).
    pub written: BTreeMap<IpAddr, SystemTime>,
    /// `reserve` of these IPs fails with an I/O error.
    pub fail_reserve: HashSet<IpAddr>,
    /// `probe_writable` fails.
    pub read_only: bool,
    /// Calls of the point (O(1)) operations.
    pub point_ops: usize,
    /// Calls of the listing (O(n)) operations.
    pub list_ops: usize,
}

impl FakeStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn injected(op: &'static str) -> IpamError {
        IpamError::io(
            op,
            PathBuf::from("<fake>"),
            std::io::Error::from_raw_os_error(5), // EIO
        )
    }
}

impl Store for FakeStore {
    type Guard = ();

    fn lock(&mut self) -> Result<(), IpamError> {
        self.point_ops += 1;
        Ok(())
    }

    fn owner(&mut self, ip: IpAddr) -> Result<Option<Owner>, IpamError> {
        self.point_ops += 1;
        Ok(self.ips.get(&ip).cloned())
    }

    fn reserve(&mut self, ip: IpAddr, container_id: &str, ifname: &str) -> Result<bool, IpamError> {
        self.point_ops += 1;
        if self.fail_reserve.contains(&ip) {
            return Err(Self::injected("reserve"));
        }
        if self.ips.contains_key(&ip) {
            return Ok(false);
        }
        let owner = Owner::Attachment {
            container_id: container_id.to_owned(),
            ifname: ifname.to_owned(),
        };
        self.ips.insert(ip, owner);
        Ok(true)
    }

    fn release(&mut self, ip: IpAddr) -> Result<(), IpamError> {
        self.point_ops += 1;
        self.ips.remove(&ip);
        Ok(())
    }

    fn last_reserved(&mut self, set: usize) -> Result<Option<IpAddr>, IpamError> {
        self.point_ops += 1;
        Ok(self.last.get(&set).copied())
    }

    fn set_last_reserved(&mut self, set: usize, ip: IpAddr) -> Result<(), IpamError> {
        self.point_ops += 1;
        self.last.insert(set, ip);
        Ok(())
    }

    fn index_get(&mut self, id: &str, ifname: &str) -> Result<Option<Vec<IpAddr>>, IpamError> {
        self.point_ops += 1;
        Ok(self.index.get(&(id.to_owned(), ifname.to_owned())).cloned())
    }

    fn index_put(&mut self, id: &str, ifname: &str, ips: &[IpAddr]) -> Result<(), IpamError> {
        self.point_ops += 1;
        self.index
            .insert((id.to_owned(), ifname.to_owned()), ips.to_vec());
        Ok(())
    }

    fn index_delete(&mut self, id: &str, ifname: &str) -> Result<(), IpamError> {
        self.point_ops += 1;
        self.index.remove(&(id.to_owned(), ifname.to_owned()));
        Ok(())
    }

    fn reservations(&mut self) -> Result<Vec<(IpAddr, Owner)>, IpamError> {
        self.list_ops += 1;
        Ok(self.ips.iter().map(|(ip, o)| (*ip, o.clone())).collect())
    }

    fn written_at(&mut self, ip: IpAddr) -> Result<Option<SystemTime>, IpamError> {
        self.point_ops += 1;
        Ok(self
            .written
            .get(&ip)
            .copied()
            .filter(|_| self.ips.contains_key(&ip)))
    }

    fn index_entries(&mut self) -> Result<Vec<IndexEntry>, IpamError> {
        self.list_ops += 1;
        Ok(self
            .index
            .iter()
            .map(|((c, i), ips)| IndexEntry {
                container_id: c.clone(),
                ifname: i.clone(),
                ips: ips.clone(),
            })
            .collect())
    }

    fn probe_writable(&mut self) -> Result<(), IpamError> {
        self.point_ops += 1;
        if self.read_only {
            return Err(Self::injected("probe"));
        }
        Ok(())
    }
}
