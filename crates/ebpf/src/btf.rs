//! Finding a kernel function's BTF id in the kernel's own type information,
//! which is what a kfunc call names: in vmlinux's BTF
//! (`/sys/kernel/btf/vmlinux`) when the function is built in, else in a
//! module's (`/sys/kernel/btf/<module>`), as on Debian's and Ubuntu's
//! stock kernels where `nf_conntrack` is a module.
//!
//! BTF layout (`Documentation/bpf/btf.rst`): a header, then a type section
//! of variable-length records (ids count from 1), then a string section.
//! A module's BTF is *split* BTF on top of vmlinux's: its type ids continue
//! after vmlinux's last one, and its string offsets after the end of
//! vmlinux's string section, so a module type refers to vmlinux types (and
//! strings) directly.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use crate::sys;

/// `BTF_KIND_FUNC`.
pub const KIND_FUNC: u32 = 12;
const MAGIC: u16 = 0xeb9f;
const SYSFS: &str = "/sys/kernel/btf";

/// Why a BTF blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    #[error("reading {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("bad BTF: {0}")]
    Malformed(&'static str),
}

/// Bytes after a type's 12-byte `struct btf_type` for its kind and `vlen`.
fn trailing(kind: u32, vlen: usize) -> Result<usize, BtfError> {
    Ok(match kind {
        1 => 4,                    // INT
        2 | 7..=12 | 16 | 18 => 0, // PTR FWD TYPEDEF VOLATILE CONST RESTRICT FUNC FLOAT TYPE_TAG
        3 => 12,                   // ARRAY
        4 | 5 => 12 * vlen,        // STRUCT UNION
        6 => 8 * vlen,             // ENUM
        13 => 8 * vlen,            // FUNC_PROTO
        14 | 17 => 4,              // VAR DECL_TAG
        15 => 12 * vlen,           // DATASEC
        19 => 12 * vlen,           // ENUM64
        _ => return Err(BtfError::Malformed("unknown type kind")),
    })
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, BtfError> {
    off.checked_add(4)
        .and_then(|end| b.get(off..end))
        .map(|s| u32::from_ne_bytes(s.try_into().expect("4 bytes")))
        .ok_or(BtfError::Malformed("truncated"))
}

fn section(btf: &[u8], start: usize, off: u32, len: u32) -> Option<&[u8]> {
    let from = start.checked_add(off as usize)?;
    btf.get(from..from.checked_add(len as usize)?)
}

/// One type record: its kind, name, `vlen`, the `size`/`type` word, and
/// the bytes that follow the record (members, params, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Type<'a> {
    pub kind: u32,
    pub name: &'a [u8],
    pub vlen: usize,
    /// `size` for INT, STRUCT, ...; the referenced type id for PTR, FUNC,
    /// TYPEDEF, FUNC_PROTO (its return type), ...
    pub size_or_type: u32,
    pub extra: &'a [u8],
}

/// A parsed BTF blob, whole (vmlinux) or split over a base (a module).
#[derive(Debug)]
pub struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Where each of this blob's own types starts in `types`.
    offsets: Vec<usize>,
    /// The id of this blob's first type: 1, or the base's next id.
    start_id: u32,
    /// The string offset this blob's own strings start at.
    start_str: u32,
    base: Option<&'a Btf<'a>>,
}

impl<'a> Btf<'a> {
    /// Parses `btf`, split over `base` when given (a module's BTF over
    /// vmlinux's).
    pub fn parse(btf: &'a [u8], base: Option<&'a Btf<'a>>) -> Result<Btf<'a>, BtfError> {
        let magic = btf
            .get(0..2)
            .map(|s| u16::from_ne_bytes([s[0], s[1]]))
            .ok_or(BtfError::Malformed("truncated"))?;
        if magic != MAGIC {
            return Err(BtfError::Malformed("bad magic"));
        }
        let hdr_len = u32_at(btf, 4)? as usize;
        let types = section(btf, hdr_len, u32_at(btf, 8)?, u32_at(btf, 12)?)
            .ok_or(BtfError::Malformed("type section out of bounds"))?;
        let strings = section(btf, hdr_len, u32_at(btf, 16)?, u32_at(btf, 20)?)
            .ok_or(BtfError::Malformed("string section out of bounds"))?;
        let mut offsets = Vec::new();
        let mut pos = 0usize;
        while pos + 12 <= types.len() {
            let info = u32_at(types, pos + 4)?;
            offsets.push(pos);
            pos += 12 + trailing((info >> 24) & 0x1f, (info & 0xffff) as usize)?;
        }
        if pos != types.len() {
            return Err(BtfError::Malformed("type section does not end on a type"));
        }
        let (start_id, start_str) = match base {
            Some(b) => (b.next_id(), b.str_end()),
            None => (1, 0),
        };
        let overflow = BtfError::Malformed("too many types or strings");
        u32::try_from(offsets.len())
            .ok()
            .and_then(|n| start_id.checked_add(n))
            .ok_or(overflow.clone())?;
        u32::try_from(strings.len())
            .ok()
            .and_then(|n| start_str.checked_add(n))
            .ok_or(overflow)?;
        Ok(Btf {
            types,
            strings,
            offsets,
            start_id,
            start_str,
            base,
        })
    }

    /// The id the first type of a BTF split over this one gets.
    pub fn next_id(&self) -> u32 {
        self.start_id + self.offsets.len() as u32
    }

    fn str_end(&self) -> u32 {
        self.start_str + self.strings.len() as u32
    }

    /// The string at `off` (in the base's strings below this blob's own).
    pub fn name(&self, off: u32) -> &'a [u8] {
        match self.base {
            Some(b) if off < self.start_str => b.name(off),
            _ => {
                let s = (self.strings)
                    .get((off - self.start_str) as usize..)
                    .unwrap_or_default();
                &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
            }
        }
    }

    /// The type with id `id` (the base's, for an id below this blob's own).
    pub fn type_by_id(&self, id: u32) -> Option<Type<'a>> {
        if id < self.start_id {
            return self.base?.type_by_id(id);
        }
        let pos = *self.offsets.get((id - self.start_id) as usize)?;
        let next = (self.offsets)
            .get((id - self.start_id) as usize + 1)
            .copied()
            .unwrap_or(self.types.len());
        let info = u32_at(self.types, pos + 4).ok()?;
        Some(Type {
            kind: (info >> 24) & 0x1f,
            name: self.name(u32_at(self.types, pos).ok()?),
            vlen: (info & 0xffff) as usize,
            size_or_type: u32_at(self.types, pos + 8).ok()?,
            extra: &self.types[pos + 12..next],
        })
    }

    /// The id of this blob's own `BTF_KIND_FUNC` named `name`.
    pub fn func_id(&self, name: &str) -> Option<u32> {
        (self.start_id..self.next_id()).find(|&id| {
            self.type_by_id(id)
                .is_some_and(|t| t.kind == KIND_FUNC && t.name == name.as_bytes())
        })
    }
}

/// The ids of the `BTF_KIND_FUNC` types named in `names`, in that order
/// (`None` for a name not found), from a whole (non-split) BTF blob.
pub fn func_ids(btf: &[u8], names: &[&str]) -> Result<Vec<Option<u32>>, BtfError> {
    let btf = Btf::parse(btf, None)?;
    Ok(names.iter().map(|n| btf.func_id(n)).collect())
}

/// Where a kernel function is: its BTF id, and the module whose BTF holds
/// it (`None`: vmlinux).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kfunc {
    pub btf_id: u32,
    pub module: Option<String>,
}

fn read(path: &Path) -> Result<Vec<u8>, BtfError> {
    std::fs::read(path).map_err(|e| BtfError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Finds each of `names` in the running kernel's BTF: vmlinux's first,
/// then every loaded module's (`/sys/kernel/btf/*`, split over vmlinux's).
pub fn kernel_kfuncs(names: &[&str]) -> Result<Vec<Option<Kfunc>>, BtfError> {
    kfuncs_in(Path::new(SYSFS), names)
}

/// [`kernel_kfuncs`] over a directory laid out as `/sys/kernel/btf`:
/// `vmlinux`, and one file per module.
pub fn kfuncs_in(sysfs: &Path, names: &[&str]) -> Result<Vec<Option<Kfunc>>, BtfError> {
    let vmlinux_bytes = read(&sysfs.join("vmlinux"))?;
    let vmlinux = Btf::parse(&vmlinux_bytes, None)?;
    let mut found: Vec<Option<Kfunc>> = names
        .iter()
        .map(|n| {
            vmlinux.func_id(n).map(|btf_id| Kfunc {
                btf_id,
                module: None,
            })
        })
        .collect();
    if found.iter().all(Option::is_some) {
        return Ok(found);
    }
    let mut modules: Vec<String> = std::fs::read_dir(sysfs)
        .map_err(|e| BtfError::Read {
            path: sysfs.display().to_string(),
            reason: e.to_string(),
        })?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|m| m != "vmlinux")
        .collect();
    modules.sort();
    for module in modules {
        // A module whose BTF cannot be read or parsed cannot be called
        // into either; the others still count.
        let Ok(bytes) = read(&sysfs.join(&module)) else {
            continue;
        };
        let Ok(btf) = Btf::parse(&bytes, Some(&vmlinux)) else {
            continue;
        };
        for (slot, name) in found.iter_mut().zip(names) {
            if slot.is_none() {
                *slot = btf.func_id(name).map(|btf_id| Kfunc {
                    btf_id,
                    module: Some(module.clone()),
                });
            }
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    Ok(found)
}

/// A file descriptor for the BTF of the loaded module `module`, which a
/// program calling the module's kfuncs passes in its `fd_array`.
pub fn module_fd(module: &str) -> Result<OwnedFd, std::io::Error> {
    let mut id = 0;
    while let Some(next) = sys::btf_next_id(id)? {
        id = next;
        let fd = match sys::btf_fd_by_id(id) {
            Ok(fd) => fd,
            // Unloaded since it was listed.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        if sys::btf_name(fd.as_fd())? == (module.to_string(), true) {
            return Ok(fd);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("no loaded kernel BTF named {module}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob: INT "int", FUNC_PROTO, FUNC "f", STRUCT with 2 members,
    /// FUNC "g".
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0f\0g\0a\0".to_vec(); // int@1 f@5 g@7 a@9
        let mut types = Vec::new();
        let mut ty = |name: u32, kind: u32, vlen: u32, extra: &[u8]| {
            types.extend(name.to_ne_bytes());
            types.extend(((kind << 24) | vlen).to_ne_bytes());
            types.extend(0u32.to_ne_bytes());
            types.extend(extra);
        };
        ty(1, 1, 0, &[0; 4]); // 1 INT
        ty(0, 13, 1, &[0; 8]); // 2 FUNC_PROTO, 1 param
        ty(5, 12, 0, &[]); // 3 FUNC f
        ty(0, 4, 2, &[0; 24]); // 4 STRUCT, 2 members
        ty(7, 12, 0, &[]); // 5 FUNC g
        assemble(types, strings)
    }

    /// A module's split BTF over [`blob`] (5 types, 11 bytes of strings):
    /// PTR to the base's INT (6), FUNC_PROTO returning it (7), FUNC "m"
    /// (8) of that prototype, FUNC named by a base string, "g" (9).
    fn split() -> Vec<u8> {
        let strings = b"m\0".to_vec(); // m@11 (after the base's 11 bytes)
        let mut types = Vec::new();
        let mut ty = |name: u32, kind: u32, vlen: u32, sz: u32| {
            types.extend(name.to_ne_bytes());
            types.extend(((kind << 24) | vlen).to_ne_bytes());
            types.extend(sz.to_ne_bytes());
        };
        ty(0, 2, 0, 1); // 6 PTR -> 1
        ty(0, 13, 0, 6); // 7 FUNC_PROTO () -> 6
        ty(11, 12, 0, 7); // 8 FUNC m
        ty(7, 12, 0, 7); // 9 FUNC "g" (a base string)
        assemble(types, strings)
    }

    fn assemble(types: Vec<u8>, strings: Vec<u8>) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(MAGIC.to_ne_bytes());
        b.extend([1u8, 0]);
        b.extend(24u32.to_ne_bytes());
        b.extend(0u32.to_ne_bytes());
        b.extend((types.len() as u32).to_ne_bytes());
        b.extend((types.len() as u32).to_ne_bytes());
        b.extend((strings.len() as u32).to_ne_bytes());
        b.extend(types);
        b.extend(strings);
        b
    }

    #[test]
    fn finds_functions_by_name_and_skips_other_kinds() {
        let ids = func_ids(&blob(), &["g", "f", "int", "a", "nope"]).unwrap();
        assert_eq!(ids, vec![Some(5), Some(3), None, None, None]);
    }

    #[test]
    fn split_btf_continues_the_base_ids_and_strings() {
        let base_bytes = blob();
        let base = Btf::parse(&base_bytes, None).unwrap();
        assert_eq!(base.next_id(), 6);
        let split_bytes = split();
        let module = Btf::parse(&split_bytes, Some(&base)).unwrap();
        assert_eq!(module.func_id("m"), Some(8));
        // Only the module's own functions: "f" is the base's.
        assert_eq!(module.func_id("f"), None);
        assert_eq!(module.func_id("g"), Some(9));
        let f = module.type_by_id(8).unwrap();
        let proto = module.type_by_id(f.size_or_type).unwrap();
        let ptr = module.type_by_id(proto.size_or_type).unwrap();
        let int = module.type_by_id(ptr.size_or_type).unwrap();
        assert_eq!((proto.kind, ptr.kind, int.kind), (13, 2, 1));
        assert_eq!(int.name, b"int");
        assert!(module.type_by_id(10).is_none() && module.type_by_id(0).is_none());
        // Read as whole BTF, the same bytes name other strings and ids.
        let alone = Btf::parse(&split_bytes, None).unwrap();
        assert_eq!(alone.func_id("m"), None);
    }

    #[test]
    fn mutated_blobs_never_panic() {
        let (base_bytes, split_bytes) = (blob(), split());
        let base = Btf::parse(&base_bytes, None).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = if x & 1 == 0 { blob() } else { split() };
            for _ in 0..1 + (x >> 8) % 4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x >> 16) as usize % b.len();
                b[i] = (x >> 40) as u8;
            }
            for btf in [Btf::parse(&b, None), Btf::parse(&b, Some(&base))]
                .into_iter()
                .flatten()
            {
                let _ = btf.func_id("m");
                for id in 0..btf.next_id() + 2 {
                    let _ = btf.type_by_id(id).map(|t| btf.name(t.size_or_type));
                }
            }
        }
        assert!(Btf::parse(&split_bytes, Some(&base)).is_ok());
    }

    #[test]
    fn malformed_blobs_are_errors_not_panics() {
        let b = blob();
        assert_eq!(
            func_ids(&b[..10], &["f"]),
            Err(BtfError::Malformed("truncated"))
        );
        let mut bad = b.clone();
        bad[0] = 0;
        assert!(func_ids(&bad, &["f"]).is_err());
        let mut cut = b.clone();
        cut[12..16].copy_from_slice(&13u32.to_ne_bytes()); // type_len not on a type
        assert!(func_ids(&cut, &["f"]).is_err());
    }

    #[test]
    fn the_running_kernel_has_the_conntrack_kfuncs() {
        // ferry's fast path needs them; the CI kernel has them built in.
        let ids = kernel_kfuncs(&["bpf_skb_ct_lookup", "bpf_ct_release"]).unwrap();
        assert!(ids.iter().all(Option::is_some), "{ids:?}");
    }
}
