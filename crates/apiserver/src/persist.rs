//! Keeping the object store in the state dir.
//!
//! `nodes.json` (the name from when it held only nodes) is a `List`
//! snapshot of every object (written atomically, debounced by
//! the server, immediately by admin calls and on shutdown). `rv-reserved`
//! is a high-water mark written *before* any resourceVersion above the
//! previous mark is handed out, so a server restarted after a crash (which
//! may lose the last snapshot) starts above every resourceVersion a
//! client could have seen: old watches get 410 Expired and relist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{ServerError, StoreError};
use crate::kind::Key;
use crate::obj::Obj;
use crate::util::{write_atomic, write_atomic_with};

pub(crate) const SNAPSHOT: &str = "nodes.json";
const RESERVED: &str = "rv-reserved";
const STEP: u64 = 10_000;

pub(crate) struct Persist {
    dir: PathBuf,
    reserved: Mutex<u64>,
    flush_lock: Mutex<()>,
}

impl Persist {
    /// Make sure `rv` is below the persisted high-water mark.
    pub fn reserve(&self, rv: u64) -> Result<(), StoreError> {
        let mut reserved = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        if rv <= *reserved {
            return Ok(());
        }
        let mark = rv + STEP;
        let path = self.dir.join(RESERVED);
        write_atomic(&path, format!("{mark}\n").as_bytes(), 0o644).map_err(|source| {
            StoreError::Persist {
                context: "cannot write",
                path,
                source,
            }
        })?;
        *reserved = mark;
        Ok(())
    }

    /// Write the snapshot if the store changed since the last one:
    /// `take_dirty` says what (and clears the store's dirty flag), and
    /// `mark_dirty` sets it again when the write failed. One flush at a
    /// time.
    pub fn flush(
        &self,
        take_dirty: impl FnOnce() -> Option<(u64, Vec<Arc<Obj>>)>,
        mark_dirty: impl FnOnce(),
    ) -> Result<(), StoreError> {
        let _guard = self.flush_lock.lock().unwrap_or_else(|e| e.into_inner());
        let Some((rv, objs)) = take_dirty() else {
            return Ok(());
        };
        let path = self.dir.join(SNAPSHOT);
        write_atomic_with(&path, 0o644, |w| crate::list::write(w, None, rv, &objs)).map_err(
            |source| {
                mark_dirty();
                StoreError::Persist {
                    context: "cannot write",
                    path,
                    source,
                }
            },
        )
    }
}

/// What a state dir holds: the resourceVersion to go on from, the
/// objects, whether a snapshot was found, and the persister for `dir`.
pub(crate) struct Loaded {
    pub rv: u64,
    pub objects: Objects,
    pub found: bool,
    pub persist: Persist,
}

/// Reads (or creates) the state dir `dir`.
pub(crate) fn load(dir: &Path) -> Result<Loaded, ServerError> {
    let io = |context, path: &Path| {
        let path = path.to_path_buf();
        move |source| ServerError::Io {
            context,
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    let reserved_path = dir.join(RESERVED);
    let mut rv = match std::fs::read_to_string(&reserved_path) {
        Ok(s) => s.trim().parse::<u64>().map_err(|e| ServerError::State {
            path: reserved_path.clone(),
            message: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io("cannot read", &reserved_path)(e)),
    };
    let snap_path = dir.join(SNAPSHOT);
    let (objects, loaded) = match std::fs::read(&snap_path) {
        Ok(data) => {
            let (list_rv, objects) =
                parse_snapshot(&data).map_err(|message| ServerError::State {
                    path: snap_path.clone(),
                    message,
                })?;
            rv = rv.max(list_rv);
            (objects, true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (BTreeMap::new(), false),
        Err(e) => return Err(io("cannot read", &snap_path)(e)),
    };
    if let Some(max) = objects.values().map(|o| o.rv).max() {
        rv = rv.max(max);
    }
    let persist = Persist {
        dir: dir.to_path_buf(),
        reserved: Mutex::new(rv),
        flush_lock: Mutex::new(()),
    };
    if loaded {
        persist.reserve(rv + 1)?;
    }
    Ok(Loaded {
        rv,
        objects,
        found: loaded,
        persist,
    })
}

pub(crate) type Objects = BTreeMap<Key, Arc<Obj>>;

#[derive(serde::Deserialize)]
struct Snapshot<'a> {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(borrow)]
    items: Vec<&'a serde_json::value::RawValue>,
}

#[derive(serde::Deserialize, Default)]
struct ListMeta {
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
}

/// Parse the snapshot without building one big JSON tree: each item is
/// kept as the bytes it was written as.
fn parse_snapshot(data: &[u8]) -> Result<(u64, Objects), String> {
    let snap: Snapshot<'_> = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    let rv = snap.metadata.resource_version.parse().unwrap_or(0);
    let mut objects = BTreeMap::new();
    for item in snap.items {
        let obj = Obj::from_raw(item.get().as_bytes())?;
        objects.insert(obj.key(), Arc::new(obj));
    }
    Ok((rv, objects))
}
