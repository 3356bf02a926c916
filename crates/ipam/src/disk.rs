//! [`DiskStore`]: host-local's on-disk format plus ferry's O(1) index.
//!
//! Layout of `<dataDir>/<network>/` (identical to host-local's):
//! - `<ip>`: one file per reservation, content `"<containerID>\r\n<ifname>"`
//!   (legacy content, the container ID alone, is read too), created with
//!   `O_CREAT|O_EXCL`: that is what makes concurrent allocation safe;
//! - `last_reserved_ip.<N>`: the IP last reserved in range set N;
//! - `lock`: `flock(LOCK_EX)` on it serialises every writer, ferry's and
//!   host-local's alike.
//!
//! ferry adds `.ferry/`:
//! - `.ferry/<containerID>:<ifname>`: the IPs of one attachment, so DEL and
//!   CHECK never scan the directory; `.ferry/<containerID>:` groups a
//!   container's legacy records;
//! - `.ferry/v1`: marks the index as complete. When it is missing (a
//!   directory host-local wrote, or a fresh one) the index is built once,
//!   under the lock, from the reservation files.
//!
//! host-local walks subdirectories but only matches files whose trimmed
//! content equals `id\r\nifname` or `id`; every ferry file starts with a
//! header holding a space and no `\r`, so it can never match either.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::alloc::{container_id_problem, ifname_problem};
use crate::config::{validate_network_name, IpamConfig};
use crate::error::IpamError;
use crate::store::{IndexEntry, Owner, Store};

/// How long [`DiskStore::lock`] waits by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

const LOCK_FILE: &str = "lock";
const LAST_RESERVED_PREFIX: &str = "last_reserved_ip.";
const INDEX_DIR: &str = ".ferry";
const MARKER: &str = "v1";
const PROBE: &str = ".ferry-status-probe";
const INDEX_HEADER: &str = "ferry-ipam index v1";
const MARKER_CONTENT: &str = "ferry-ipam index v1 complete\n";
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// Reservations of one network in `<dataDir>/<network>/`.
#[derive(Debug, Clone)]
pub struct DiskStore {
    dir: PathBuf,
    lock_timeout: Duration,
}

/// Holds the `flock` on `<dir>/lock`; dropping it closes the file, which
/// releases the lock.
#[derive(Debug)]
pub struct DiskLock {
    _lock: Flock<File>,
}

impl DiskStore {
    /// The store of `network` below `data_dir`. Touches nothing on disk: the
    /// directory (mode 0755) is created by the first [`Store::lock`].
    pub fn open(data_dir: impl AsRef<Path>, network: &str) -> Result<Self, IpamError> {
        validate_network_name(network)?;
        Ok(DiskStore {
            dir: data_dir.as_ref().join(network),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        })
    }

    /// The store for a parsed configuration (its `dataDir` and network name).
    pub fn for_config(cfg: &IpamConfig) -> Result<Self, IpamError> {
        Self::open(&cfg.data_dir, &cfg.network_name)
    }

    /// Give up on the lock after `timeout` ([`IpamError::LockTimeout`]).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// `<dataDir>/<network>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    fn ip_path(&self, ip: IpAddr) -> PathBuf {
        self.dir.join(ip.to_string())
    }

    fn last_path(&self, set: usize) -> PathBuf {
        self.dir.join(format!("{LAST_RESERVED_PREFIX}{set}"))
    }

    fn index_dir(&self) -> PathBuf {
        self.dir.join(INDEX_DIR)
    }

    fn index_path(&self, id: &str, ifname: &str) -> Result<PathBuf, IpamError> {
        let problem = container_id_problem(id).or_else(|| match ifname {
            "" => None, // the legacy-records key
            _ => ifname_problem(ifname),
        });
        if let Some(reason) = problem {
            return Err(IpamError::InvalidAttachment {
                container_id: id.to_owned(),
                ifname: ifname.to_owned(),
                reason,
            });
        }
        Ok(self.index_dir().join(format!("{id}:{ifname}")))
    }

    fn mkdirs(&self, dir: &Path) -> Result<(), IpamError> {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|e| IpamError::io("create directory", dir, e))
    }

    /// Open `path` with `opts`, creating `parent` on ENOENT once.
    fn open_in(&self, opts: &OpenOptions, path: &Path, parent: &Path) -> io::Result<File> {
        match opts.open(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(parent)?;
                opts.open(path)
            }
            other => other,
        }
    }

    /// Write `target` in place with one `write(2)`. Every writer holds the
    /// lock, so no reader sees it half-written; a `kill -9` lands before or
    /// after the single write, and an empty file reads as absent (for
    /// `last_reserved_ip.N`) or as an interrupted entry that DEL and GC
    /// clean up (for the index). This is host-local's way too, and saves
    /// two metadata operations (temp create + rename) on every ADD.
    fn write_file(&self, target: &Path, content: &[u8]) -> Result<(), IpamError> {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true).mode(FILE_MODE);
        let parent = target.parent().unwrap_or(&self.dir);
        let mut file = self
            .open_in(&opts, target, parent)
            .map_err(|e| IpamError::io("create", target, e))?;
        file.write_all(content)
            .map_err(|e| IpamError::io("write", target, e))
    }

    fn read_opt(path: &Path) -> Result<Option<String>, IpamError> {
        match fs::read(path) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IpamError::io("read", path, e)),
        }
    }

    fn remove_opt(path: &Path) -> Result<(), IpamError> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(IpamError::io("remove", path, e)),
            _ => Ok(()),
        }
    }

    fn acquire(&self) -> Result<DiskLock, IpamError> {
        let path = self.lock_path();
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).mode(FILE_MODE);
        let mut file = self
            .open_in(&opts, &path, &self.dir)
            .map_err(|e| IpamError::io("open lock file", &path, e))?;
        let deadline = Instant::now() + self.lock_timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(DiskLock { _lock: lock }),
                Err((f, errno)) if errno == Errno::EWOULDBLOCK || errno == Errno::EINTR => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(IpamError::LockTimeout {
                            path,
                            timeout: self.lock_timeout,
                        });
                    }
                    thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(Duration::from_millis(50));
                    file = f;
                }
                Err((_, errno)) => {
                    return Err(IpamError::io("flock", &path, io::Error::from(errno)))
                }
            }
        }
    }

    /// Build the index from the reservation files (a host-local directory,
    /// or a lost `.ferry/`), merging with entries already present, then
    /// write the marker. Idempotent; a crash half-way just redoes it.
    fn migrate(&mut self) -> Result<(), IpamError> {
        let mut groups: BTreeMap<(String, String), Vec<IpAddr>> = BTreeMap::new();
        for (ip, owner) in self.reservations()? {
            let Some((id, ifname)) = owner.key() else {
                continue;
            };
            // Records DEL could never name are left to GC.
            if self.index_path(id, ifname).is_ok() {
                let key = (id.to_owned(), ifname.to_owned());
                groups.entry(key).or_default().push(ip);
            }
        }
        for ((id, ifname), mut ips) in groups {
            if let Ok(Some(existing)) = self.index_get(&id, &ifname) {
                for ip in existing {
                    if !ips.contains(&ip) {
                        ips.push(ip);
                    }
                }
            }
            self.index_put(&id, &ifname, &ips)?;
        }
        let marker = self.index_dir().join(MARKER);
        self.write_file(&marker, MARKER_CONTENT.as_bytes())
    }
}

fn parse_index(path: &Path, content: &str) -> Result<Vec<IpAddr>, IpamError> {
    let corrupt = |reason: String| IpamError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let mut lines = content.lines();
    if lines.next() != Some(INDEX_HEADER) {
        return Err(corrupt(format!("missing header {INDEX_HEADER:?}")));
    }
    lines
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse::<IpAddr>()
                .map_err(|_| corrupt(format!("{l:?} is not an IP address")))
        })
        .collect()
}

impl Store for DiskStore {
    type Guard = DiskLock;

    /// Take the lock, then build the index if `.ferry/v1` is missing.
    fn lock(&mut self) -> Result<DiskLock, IpamError> {
        let guard = self.acquire()?;
        let marker = self.index_dir().join(MARKER);
        match fs::symlink_metadata(&marker) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => self.migrate()?,
            Err(e) => return Err(IpamError::io("stat", marker, e)),
        }
        Ok(guard)
    }

    fn owner(&mut self, ip: IpAddr) -> Result<Option<Owner>, IpamError> {
        Ok(Self::read_opt(&self.ip_path(ip))?.map(|c| Owner::parse(&c)))
    }

    fn reserve(&mut self, ip: IpAddr, id: &str, ifname: &str) -> Result<bool, IpamError> {
        let path = self.ip_path(ip);
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true).mode(FILE_MODE);
        let mut file = match self.open_in(&opts, &path, &self.dir) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(IpamError::io("create", &path, e)),
        };
        if let Err(e) = file.write_all(format!("{id}\r\n{ifname}").as_bytes()) {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(IpamError::io("write", &path, e));
        }
        Ok(true)
    }

    fn release(&mut self, ip: IpAddr) -> Result<(), IpamError> {
        Self::remove_opt(&self.ip_path(ip))
    }

    fn last_reserved(&mut self, set: usize) -> Result<Option<IpAddr>, IpamError> {
        let content = Self::read_opt(&self.last_path(set))?;
        Ok(content.and_then(|c| c.trim().parse().ok()))
    }

    fn set_last_reserved(&mut self, set: usize, ip: IpAddr) -> Result<(), IpamError> {
        self.write_file(&self.last_path(set), ip.to_string().as_bytes())
    }

    fn index_get(&mut self, id: &str, ifname: &str) -> Result<Option<Vec<IpAddr>>, IpamError> {
        let path = self.index_path(id, ifname)?;
        match Self::read_opt(&path)? {
            None => Ok(None),
            Some(content) => parse_index(&path, &content).map(Some),
        }
    }

    fn index_put(&mut self, id: &str, ifname: &str, ips: &[IpAddr]) -> Result<(), IpamError> {
        let path = self.index_path(id, ifname)?;
        let mut content = format!("{INDEX_HEADER}\n");
        for ip in ips {
            content.push_str(&format!("{ip}\n"));
        }
        self.write_file(&path, content.as_bytes())
    }

    fn index_delete(&mut self, id: &str, ifname: &str) -> Result<(), IpamError> {
        Self::remove_opt(&self.index_path(id, ifname)?)
    }

    fn reservations(&mut self) -> Result<Vec<(IpAddr, Owner)>, IpamError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(IpamError::io("read directory", &self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| IpamError::io("read directory", &self.dir, e))?;
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<IpAddr>().ok())
            else {
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if let Some(content) = Self::read_opt(&entry.path())? {
                out.push((ip, Owner::parse(&content)));
            }
        }
        out.sort_by_key(|(ip, _)| *ip);
        Ok(out)
    }

    fn written_at(&mut self, ip: IpAddr) -> Result<Option<SystemTime>, IpamError> {
        let path = self.ip_path(ip);
        match fs::metadata(&path).and_then(|m| m.modified()) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IpamError::io("stat", &path, e)),
        }
    }

    /// Entries whose content does not parse are listed with no IPs.
    fn index_entries(&mut self) -> Result<Vec<IndexEntry>, IpamError> {
        let dir = self.index_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(IpamError::io("read directory", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| IpamError::io("read directory", &dir, e))?;
            let name = entry.file_name();
            let Some((id, ifname)) = name.to_str().and_then(|n| n.split_once(':')) else {
                continue;
            };
            if self.index_path(id, ifname).is_err() {
                continue; // not ours to touch
            }
            let path = entry.path();
            let ips = Self::read_opt(&path)?
                .and_then(|c| parse_index(&path, &c).ok())
                .unwrap_or_default();
            out.push(IndexEntry {
                container_id: id.to_owned(),
                ifname: ifname.to_owned(),
                ips,
            });
        }
        Ok(out)
    }

    /// Create the directory if missing, then create and remove a file in it.
    fn probe_writable(&mut self) -> Result<(), IpamError> {
        self.mkdirs(&self.dir)?;
        let probe = self.dir.join(PROBE);
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true).mode(FILE_MODE);
        opts.open(&probe)
            .map_err(|e| IpamError::io("create probe file", &probe, e))?;
        fs::remove_file(&probe).map_err(|e| IpamError::io("remove probe file", &probe, e))
    }
}
