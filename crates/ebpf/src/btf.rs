//! Finding a kernel function's BTF id in the kernel's own type information
//! (`/sys/kernel/btf/vmlinux`), which is what a kfunc call names.
//!
//! BTF layout (`Documentation/bpf/btf.rst`): a header, then a type section
//! of variable-length records (ids count from 1), then a string section.

use std::path::Path;

/// `BTF_KIND_FUNC`.
const KIND_FUNC: u32 = 12;
const MAGIC: u16 = 0xeb9f;

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
    b.get(off..off + 4)
        .map(|s| u32::from_ne_bytes(s.try_into().expect("4 bytes")))
        .ok_or(BtfError::Malformed("truncated"))
}

/// The ids of the `BTF_KIND_FUNC` types named in `names`, in that order
/// (`None` for a name not found), from a whole (non-split) BTF blob.
pub fn func_ids(btf: &[u8], names: &[&str]) -> Result<Vec<Option<u32>>, BtfError> {
    let magic = btf
        .get(0..2)
        .map(|s| u16::from_ne_bytes([s[0], s[1]]))
        .ok_or(BtfError::Malformed("truncated"))?;
    if magic != MAGIC {
        return Err(BtfError::Malformed("bad magic"));
    }
    let hdr_len = u32_at(btf, 4)? as usize;
    let (type_off, type_len) = (u32_at(btf, 8)? as usize, u32_at(btf, 12)? as usize);
    let (str_off, str_len) = (u32_at(btf, 16)? as usize, u32_at(btf, 20)? as usize);
    let types = btf
        .get(hdr_len + type_off..hdr_len + type_off + type_len)
        .ok_or(BtfError::Malformed("type section out of bounds"))?;
    let strings = btf
        .get(hdr_len + str_off..hdr_len + str_off + str_len)
        .ok_or(BtfError::Malformed("string section out of bounds"))?;
    let name_at = |off: usize| -> &[u8] {
        let s = strings.get(off..).unwrap_or_default();
        &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
    };

    let mut found: Vec<Option<u32>> = vec![None; names.len()];
    let (mut pos, mut id) = (0usize, 1u32);
    while pos + 12 <= types.len() {
        let name_off = u32_at(types, pos)? as usize;
        let info = u32_at(types, pos + 4)?;
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        if kind == KIND_FUNC {
            let name = name_at(name_off);
            for (slot, want) in found.iter_mut().zip(names) {
                if slot.is_none() && name == want.as_bytes() {
                    *slot = Some(id);
                }
            }
        }
        pos += 12 + trailing(kind, vlen)?;
        id += 1;
    }
    if pos != types.len() {
        return Err(BtfError::Malformed("type section does not end on a type"));
    }
    Ok(found)
}

/// [`func_ids`] of the running kernel (`/sys/kernel/btf/vmlinux`).
pub fn kernel_func_ids(names: &[&str]) -> Result<Vec<Option<u32>>, BtfError> {
    let path = Path::new("/sys/kernel/btf/vmlinux");
    let btf = std::fs::read(path).map_err(|e| BtfError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    func_ids(&btf, names)
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
        let ids = kernel_func_ids(&["bpf_skb_ct_lookup", "bpf_ct_release"]).unwrap();
        assert!(ids.iter().all(Option::is_some), "{ids:?}");
    }
}
