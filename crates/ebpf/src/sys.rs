//! The `bpf(2)` system call, for the handful of commands ferry uses.
//!
//! This is the crate's only module with `unsafe` code: `bpf(2)` takes a
//! pointer to a command-specific `union bpf_attr`, and neither `std` nor
//! `libc`/`nix` wrap it. Every call builds its attribute block as a
//! `#[repr(C)]` struct laid out as in `<linux/bpf.h>` (zero-filled beyond
//! the fields used, which the kernel requires), and every pointer inside it
//! refers to memory that lives for the duration of the call.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_int = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_int = 4;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_OBJ_PIN: libc::c_int = 6;
const BPF_OBJ_GET: libc::c_int = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_BTF_GET_FD_BY_ID: libc::c_int = 19;
const BPF_BTF_GET_NEXT_ID: libc::c_int = 23;

/// Room for every attribute block used here (the kernel accepts a shorter
/// one than its own `union bpf_attr` as long as the tail it lacks is zero).
const ATTR_LEN: usize = 144;

/// A zeroed `union bpf_attr` (8-byte aligned, as the kernel's is) with
/// typed writers at byte offsets.
#[repr(C, align(8))]
struct Attr([u8; ATTR_LEN]);

impl Attr {
    fn new() -> Attr {
        Attr([0; ATTR_LEN])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().expect("4 bytes"))
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn ptr<T>(&mut self, off: usize, p: *const T) -> &mut Attr {
        self.u64(off, p as usize as u64)
    }
    fn name(&mut self, off: usize, name: &str) -> &mut Attr {
        // BPF_OBJ_NAME_LEN is 16 including the NUL; the kernel accepts
        // [A-Za-z0-9_.] only.
        let n: Vec<u8> = name
            .bytes()
            .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            .take(15)
            .collect();
        self.0[off..off + n.len()].copy_from_slice(&n);
        self
    }
}

fn call(cmd: libc::c_int, attr: &mut Attr) -> io::Result<libc::c_long> {
    loop {
        // SAFETY: `attr` is a valid, writable, ATTR_LEN-byte block that
        // outlives the call; the pointers stored in it (instructions,
        // license, log buffer, fd array, keys, values, paths, info structs
        // and the name or map id buffer an info struct points to) were
        // taken from borrows the caller holds across this call, and every
        // length or count stored beside a buffer is that buffer's own.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr.0.as_mut_ptr(),
                ATTR_LEN as libc::c_uint,
            )
        };
        if ret >= 0 {
            return Ok(ret);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn new_fd(cmd: libc::c_int, attr: &mut Attr) -> io::Result<OwnedFd> {
    let fd = call(cmd, attr)?;
    // SAFETY: on success these commands return a new file descriptor that
    // nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    fd.as_raw_fd() as u32
}

/// `BPF_MAP_CREATE`.
pub fn map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
    name: &str,
) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, map_type)
        .u32(4, key_size)
        .u32(8, value_size)
        .u32(12, max_entries)
        .u32(16, flags)
        .name(28, name);
    new_fd(BPF_MAP_CREATE, &mut a)
}

/// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`.
pub fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut a = Attr::new();
    a.u32(0, fd_u32(map))
        .ptr(8, key.as_ptr())
        .ptr(16, value.as_ptr());
    call(BPF_MAP_UPDATE_ELEM, &mut a).map(drop)
}

/// `BPF_MAP_DELETE_ELEM`; `Ok(false)` when the key was not there.
pub fn map_delete(map: BorrowedFd<'_>, key: &[u8]) -> io::Result<bool> {
    let mut a = Attr::new();
    a.u32(0, fd_u32(map)).ptr(8, key.as_ptr());
    match call(BPF_MAP_DELETE_ELEM, &mut a) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `BPF_MAP_LOOKUP_ELEM` into `value` (sized by the caller: per-CPU maps
/// return one value per possible CPU); `Ok(false)` when the key is absent.
pub fn map_lookup(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
    let mut a = Attr::new();
    a.u32(0, fd_u32(map))
        .ptr(8, key.as_ptr())
        .ptr(16, value.as_mut_ptr());
    match call(BPF_MAP_LOOKUP_ELEM, &mut a) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (the first with `None`), or
/// `Ok(false)` at the end.
pub fn map_next_key(map: BorrowedFd<'_>, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<bool> {
    let mut a = Attr::new();
    a.u32(0, fd_u32(map))
        .ptr(8, key.map_or(std::ptr::null(), <[u8]>::as_ptr))
        .ptr(16, next.as_mut_ptr());
    match call(BPF_MAP_GET_NEXT_KEY, &mut a) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `BPF_PROG_LOAD`. On failure the verifier's log comes with the error.
/// `fd_array` holds the BTF fds of the modules whose kfuncs the program
/// calls (a call's `off` indexes it; entry 0 is never used, as `off` 0
/// means vmlinux); empty when all kfuncs are in vmlinux.
pub fn prog_load(
    prog_type: u32,
    insns: &[u64],
    license: &str,
    name: &str,
    fd_array: &[i32],
) -> Result<OwnedFd, (io::Error, String)> {
    let license = CString::new(license).map_err(|e| (io::Error::other(e), String::new()))?;
    let mut log = vec![0u8; 1 << 20];
    let mut a = Attr::new();
    a.u32(0, prog_type)
        .u32(4, insns.len() as u32)
        .ptr(8, insns.as_ptr())
        .ptr(16, license.as_ptr())
        .u32(24, 1) // log_level: filled on failure only (ENOSPC otherwise)
        .u32(28, log.len() as u32)
        .ptr(32, log.as_mut_ptr())
        .name(48, name);
    if !fd_array.is_empty() {
        a.ptr(120, fd_array.as_ptr()); // fd_array
    }
    new_fd(BPF_PROG_LOAD, &mut a).map_err(|e| {
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        (e, String::from_utf8_lossy(&log[..end]).into_owned())
    })
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)
}

/// `BPF_OBJ_PIN`: `path` must be on a bpf file system and not exist yet.
pub fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let p = c_path(path)?;
    let mut a = Attr::new();
    a.ptr(0, p.as_ptr()).u32(8, fd_u32(fd));
    call(BPF_OBJ_PIN, &mut a).map(drop)
}

/// `BPF_OBJ_GET`: opens a pinned program or map.
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let p = c_path(path)?;
    let mut a = Attr::new();
    a.ptr(0, p.as_ptr());
    new_fd(BPF_OBJ_GET, &mut a)
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a program: (id, tag).
pub fn prog_info(fd: BorrowedFd<'_>) -> io::Result<(u32, [u8; 8])> {
    // struct bpf_prog_info: type u32 @0, id u32 @4, tag[8] @8; the kernel
    // fills at most `info_len` bytes.
    let mut info = [0u8; 16];
    let mut a = Attr::new();
    a.u32(0, fd_u32(fd))
        .u32(4, info.len() as u32)
        .ptr(8, info.as_mut_ptr());
    call(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    let id = u32::from_ne_bytes(info[4..8].try_into().expect("4 bytes"));
    let tag = info[8..16].try_into().expect("8 bytes");
    Ok((id, tag))
}

/// What the kernel says about a program: its id, its name and the ids of
/// the maps it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgInfo {
    pub id: u32,
    pub name: String,
    pub map_ids: Vec<u32>,
}

/// `struct bpf_prog_info` up to and including `name[16]`.
const PROG_INFO_LEN: usize = 80;

/// `BPF_OBJ_GET_INFO_BY_FD` for a program, twice: once for its name and
/// how many maps it uses, then with a buffer of that many map ids (the
/// kernel writes at most the count it is given, and says how many there
/// are).
pub fn prog_info_full(fd: BorrowedFd<'_>) -> io::Result<ProgInfo> {
    // struct bpf_prog_info: id u32 @4, nr_map_ids u32 @52, map_ids u64
    // @56, name[16] @64.
    let get = |info: &mut [u8; PROG_INFO_LEN]| -> io::Result<()> {
        let mut a = Attr::new();
        a.u32(0, fd_u32(fd))
            .u32(4, PROG_INFO_LEN as u32)
            .ptr(8, info.as_mut_ptr());
        call(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
        let filled = a.get_u32(4) as usize;
        if filled < PROG_INFO_LEN {
            return Err(io::Error::other(format!(
                "the kernel described the program in {filled} bytes"
            )));
        }
        Ok(())
    };
    let at = |info: &[u8; PROG_INFO_LEN], off: usize| {
        u32::from_ne_bytes(info[off..off + 4].try_into().expect("4 bytes"))
    };
    let mut info = [0u8; PROG_INFO_LEN];
    get(&mut info)?;
    let id = at(&info, 4);
    let name = &info[64..80];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let name = String::from_utf8_lossy(&name[..end]).into_owned();
    let mut map_ids = vec![0u32; at(&info, 52) as usize];
    if !map_ids.is_empty() {
        let mut info = [0u8; PROG_INFO_LEN];
        info[52..56].copy_from_slice(&(map_ids.len() as u32).to_ne_bytes());
        info[56..64].copy_from_slice(&(map_ids.as_mut_ptr() as usize as u64).to_ne_bytes());
        get(&mut info)?;
        // A map bound since the first call is not in the buffer; report
        // the ids written, at most as many as there are.
        map_ids.truncate(at(&info, 52) as usize);
    }
    Ok(ProgInfo { id, name, map_ids })
}

/// What the kernel says about a map (the leading fields of
/// `struct bpf_map_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapInfo {
    pub id: u32,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a map. The kernel fills at most the
/// `info_len` given and says how much it filled; fewer bytes than the
/// fields read here is an error rather than a zero read as a size.
pub fn map_info(fd: BorrowedFd<'_>) -> io::Result<MapInfo> {
    // struct bpf_map_info: type @0, id @4, key_size @8, value_size @12,
    // max_entries @16, map_flags @20, name[16] @24.
    let mut info = [0u8; 40];
    let mut a = Attr::new();
    a.u32(0, fd_u32(fd))
        .u32(4, info.len() as u32)
        .ptr(8, info.as_mut_ptr());
    call(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    let filled = a.get_u32(4) as usize;
    if filled < 20 {
        return Err(io::Error::other(format!(
            "the kernel described the map in {filled} bytes"
        )));
    }
    let at = |off: usize| u32::from_ne_bytes(info[off..off + 4].try_into().expect("4 bytes"));
    Ok(MapInfo {
        id: at(4),
        map_type: at(0),
        key_size: at(8),
        value_size: at(12),
        max_entries: at(16),
    })
}

/// `BPF_BTF_GET_NEXT_ID`: the id of the loaded BTF object after `start`
/// (vmlinux's and each module's among them), `Ok(None)` after the last.
pub fn btf_next_id(start: u32) -> io::Result<Option<u32>> {
    let mut a = Attr::new();
    a.u32(0, start);
    match call(BPF_BTF_GET_NEXT_ID, &mut a) {
        Ok(_) => Ok(Some(a.get_u32(4))),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `BPF_BTF_GET_FD_BY_ID`.
pub fn btf_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, id);
    new_fd(BPF_BTF_GET_FD_BY_ID, &mut a)
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a BTF object: its name (a module's name,
/// `vmlinux`, or empty for a program's BTF) and whether it is the kernel's.
pub fn btf_name(fd: BorrowedFd<'_>) -> io::Result<(String, bool)> {
    // struct bpf_btf_info: btf @0, btf_size @8, id @12, name @16,
    // name_len @24, kernel_btf @28. Module names are at most 56 bytes
    // (MODULE_NAME_LEN); the kernel writes at most name_len of them.
    let mut name = [0u8; 64];
    let mut info = [0u8; 32];
    info[16..24].copy_from_slice(&(name.as_mut_ptr() as usize as u64).to_ne_bytes());
    info[24..28].copy_from_slice(&(name.len() as u32).to_ne_bytes());
    let mut a = Attr::new();
    a.u32(0, fd_u32(fd))
        .u32(4, info.len() as u32)
        .ptr(8, info.as_mut_ptr());
    call(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    if (a.get_u32(4) as usize) < 32 {
        return Ok((String::new(), false)); // a kernel without names
    }
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let kernel = u32::from_ne_bytes(info[28..32].try_into().expect("4 bytes")) != 0;
    Ok((String::from_utf8_lossy(&name[..end]).into_owned(), kernel))
}
