//! Maps, opened only after the kernel confirms their shape.
//!
//! The pin directory comes from configuration (ferryd's `--bpf-dir`, the
//! plugin's `fastPath`), and whatever is pinned there decides how many
//! bytes the kernel reads from a key or value pointer and writes into a
//! value buffer: its own key and value sizes, not ferry's. So before a map
//! is touched the kernel is asked for its type, key and value sizes
//! (`BPF_OBJ_GET_INFO_BY_FD`), a map that is not what ferry made is
//! refused ([`EbpfError::MapMismatch`]), and every buffer is then sized
//! from what the kernel said.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::EbpfError;
use crate::sys::{self, MapInfo};

pub(crate) const MAP_TYPE_HASH: u32 = 1;
pub(crate) const MAP_TYPE_ARRAY: u32 = 2;
pub(crate) const MAP_TYPE_PERCPU_ARRAY: u32 = 6;
pub(crate) const MAP_TYPE_LPM_TRIE: u32 = 11;

/// A map's type and key and value sizes: what ferry's code assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapShape {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
}

fn type_name(t: u32) -> String {
    match t {
        MAP_TYPE_HASH => "hash".into(),
        MAP_TYPE_ARRAY => "array".into(),
        MAP_TYPE_PERCPU_ARRAY => "per-CPU array".into(),
        MAP_TYPE_LPM_TRIE => "LPM trie".into(),
        t => format!("type {t}"),
    }
}

impl fmt::Display for MapShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} map with {}-byte keys and {}-byte values",
            type_name(self.map_type),
            self.key_size,
            self.value_size
        )
    }
}

impl From<MapInfo> for MapShape {
    fn from(i: MapInfo) -> MapShape {
        MapShape {
            map_type: i.map_type,
            key_size: i.key_size,
            value_size: i.value_size,
        }
    }
}

/// A map whose shape the kernel confirmed.
#[derive(Debug)]
pub(crate) struct Map {
    fd: OwnedFd,
    info: MapInfo,
}

/// What kind of bpf object `fd` is, from its `/proc/self/fd` link
/// (`anon_inode:bpf-map`, `anon_inode:bpf-prog`, ...); `None` without /proc.
fn object_kind(fd: BorrowedFd<'_>) -> Option<String> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    Some(link.to_string_lossy().into_owned())
}

impl Map {
    /// Checks that `fd` (opened from `path`) is a map shaped as `want`.
    pub(crate) fn check(fd: OwnedFd, path: &Path, want: MapShape) -> Result<Map, EbpfError> {
        let mismatch = |found: String| EbpfError::MapMismatch {
            path: path.to_path_buf(),
            want,
            found,
        };
        if let Some(kind) = object_kind(fd.as_fd()).filter(|k| k != "anon_inode:bpf-map") {
            return Err(mismatch(format!("not a map ({kind})")));
        }
        let info = sys::map_info(fd.as_fd()).map_err(EbpfError::sys("BPF_OBJ_GET_INFO_BY_FD"))?;
        if MapShape::from(info) != want {
            return Err(mismatch(format!("a {}", MapShape::from(info))));
        }
        Ok(Map { fd, info })
    }

    /// Opens the map pinned at `path`; `Ok(None)` when nothing is.
    pub(crate) fn open(path: &Path, want: MapShape) -> Result<Option<Map>, EbpfError> {
        match sys::obj_get(path) {
            Ok(fd) => Map::check(fd, path, want).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EbpfError::pin("open", path.to_path_buf())(e)),
        }
    }

    /// Opens the map pinned as `dir/pin`, or makes one shaped as `want`
    /// (`max_entries`, `flags`, kernel name `name`) and pins it there.
    pub(crate) fn open_or_create(
        dir: &Path,
        pin: &str,
        want: MapShape,
        max_entries: u32,
        flags: u32,
        name: &str,
    ) -> Result<Map, EbpfError> {
        let path: PathBuf = dir.join(pin);
        if let Some(map) = Map::open(&path, want)? {
            return Ok(map);
        }
        let fd = sys::map_create(
            want.map_type,
            want.key_size,
            want.value_size,
            max_entries,
            flags,
            name,
        )
        .map_err(EbpfError::sys("BPF_MAP_CREATE"))?;
        sys::obj_pin(fd.as_fd(), &path).map_err(EbpfError::pin("pin", path.clone()))?;
        Map::check(fd, &path, want)
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The map's kernel id.
    pub(crate) fn id(&self) -> u32 {
        self.info.id
    }

    pub(crate) fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn sized(&self, what: &'static str, got: usize, want: u32) -> Result<(), EbpfError> {
        if got == want as usize {
            return Ok(());
        }
        Err(EbpfError::Sys {
            op: what,
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{got}-byte buffer for a {want}-byte map field"),
            ),
        })
    }

    /// `BPF_MAP_UPDATE_ELEM`; `key` and `value` must have the map's sizes.
    pub(crate) fn update(&self, key: &[u8], value: &[u8]) -> Result<(), EbpfError> {
        self.sized("BPF_MAP_UPDATE_ELEM", key.len(), self.info.key_size)?;
        self.sized("BPF_MAP_UPDATE_ELEM", value.len(), self.info.value_size)?;
        sys::map_update(self.fd(), key, value).map_err(EbpfError::sys("BPF_MAP_UPDATE_ELEM"))
    }

    /// `BPF_MAP_DELETE_ELEM`; `Ok(false)` when the key was not there.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<bool, EbpfError> {
        self.sized("BPF_MAP_DELETE_ELEM", key.len(), self.info.key_size)?;
        sys::map_delete(self.fd(), key).map_err(EbpfError::sys("BPF_MAP_DELETE_ELEM"))
    }

    /// `BPF_MAP_LOOKUP_ELEM` into a buffer of the map's value size, times
    /// the possible CPUs (each value 8-byte aligned) for a per-CPU map.
    pub(crate) fn lookup(&self, key: &[u8], cpus: usize) -> Result<Option<Vec<u8>>, EbpfError> {
        self.sized("BPF_MAP_LOOKUP_ELEM", key.len(), self.info.key_size)?;
        let len = match self.info.map_type {
            MAP_TYPE_PERCPU_ARRAY => (self.info.value_size as usize).next_multiple_of(8) * cpus,
            _ => self.info.value_size as usize,
        };
        let mut value = vec![0u8; len];
        let found = sys::map_lookup(self.fd(), key, &mut value)
            .map_err(EbpfError::sys("BPF_MAP_LOOKUP_ELEM"))?;
        Ok(found.then_some(value))
    }

    /// Every key, in the map's order, each of the map's key size.
    pub(crate) fn keys(&self) -> Result<Vec<Vec<u8>>, EbpfError> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut next = vec![0u8; self.info.key_size as usize];
        while sys::map_next_key(self.fd(), out.last().map(Vec::as_slice), &mut next)
            .map_err(EbpfError::sys("BPF_MAP_GET_NEXT_KEY"))?
        {
            out.push(next.clone());
        }
        Ok(out)
    }
}
