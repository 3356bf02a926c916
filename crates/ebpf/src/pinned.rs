//! Using a program another process loaded and pinned: `ferryd prepare`,
//! privileged, loads the fast path where ferryd cannot (a kernel with
//! `nf_conntrack` as a module hands the module's BTF only to
//! `CAP_SYS_ADMIN`), and ferryd then takes the pinned program, provided
//! it is this build's.
//!
//! A build's program is told by its name in the kernel: `ferry_` and nine
//! hex digits of a hash of the instructions this build generates
//! ([`prog_name`]), which the kernel reports back
//! (`BPF_OBJ_GET_INFO_BY_FD`). The instructions are hashed as generated
//! with every map fd and kfunc reference zero, so the name depends on the
//! code alone, not on the fds or the kernel's BTF ids at load time. And the
//! pinned program must use exactly the maps pinned beside it (their ids,
//! as the kernel reports them), or the counters and the CIDRs ferryd
//! writes would not be the ones the program reads.

use std::path::Path;
use std::sync::OnceLock;

use crate::cidrs::CidrMaps;
use crate::error::EbpfError;
use crate::fastpath::{self, FastPath, PodIfaces};
use crate::map::Map;
use crate::program::{self, Refs};
use crate::sys;
use crate::tunnel::TunnelMaps;

/// What the pin directory holds in place of a program ferryd could use.
#[derive(Debug)]
pub enum Pinned {
    /// This build's program, over the maps pinned beside it.
    Usable(FastPath),
    /// No program is pinned there.
    Missing,
    /// A program is pinned there, but not one this build can use (another
    /// build's, or one over other maps): why.
    Foreign(String),
}

/// The name this build gives its program in the kernel (at most 15
/// characters, as `BPF_OBJ_NAME_LEN` allows): its identity.
pub fn prog_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        name_of(&program::fast_path(&Refs {
            cidrs_map: 0,
            cidrs6_map: 0,
            stats_map: 0,
            pod_ifaces_map: 0,
            tunnel_map: 0,
            vteps_map: 0,
            ct_lookup: (0, 0),
            ct_release: (0, 0),
        }))
    })
}

/// `ferry_` and the low 36 bits of the instructions' FNV-1a hash, in hex:
/// 15 characters of `[a-z0-9_]`, all the kernel keeps of a name.
pub(crate) fn name_of(insns: &[u64]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in insns.iter().flat_map(|i| i.to_le_bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("ferry_{:09x}", h & 0xf_ffff_ffff)
}

impl FastPath {
    /// The program pinned in `dir` with the maps pinned beside it, when it
    /// is this build's ([`Pinned::Usable`]); nothing is loaded or changed.
    /// [`EbpfError::MapMismatch`] when a pinned map is not ferry's (as
    /// [`FastPath::load`] would say).
    pub fn open_pinned(dir: &Path) -> Result<Pinned, EbpfError> {
        let Some(prog) = fastpath::open_prog(dir)? else {
            return Ok(Pinned::Missing);
        };
        let info = sys::prog_info_full(std::os::fd::AsFd::as_fd(&prog))
            .map_err(EbpfError::sys("BPF_OBJ_GET_INFO_BY_FD"))?;
        let want = prog_name();
        if info.name != want {
            return Ok(Pinned::Foreign(format!(
                "the pinned program (id {}) is {:?}, not this build's {want:?}",
                info.id, info.name
            )));
        }
        let (cidrs, pods, stats, tunnel) = (
            CidrMaps::open(dir)?,
            Map::open(&dir.join(fastpath::PODS_PIN), fastpath::PODS)?,
            Map::open(&dir.join(fastpath::STATS_PIN), fastpath::STATS_SHAPE)?,
            TunnelMaps::open(dir)?,
        );
        let (Some(cidrs), Some(pods), Some(stats), Some(tunnel)) = (cidrs, pods, stats, tunnel)
        else {
            return Ok(Pinned::Foreign(format!(
                "the pinned program (id {}) has not all its maps pinned beside it",
                info.id
            )));
        };
        let mut pinned: Vec<u32> = cidrs.ids().into_iter().collect();
        pinned.extend([pods.id(), stats.id()]);
        pinned.extend(tunnel.ids());
        pinned.sort_unstable();
        let mut used = info.map_ids.clone();
        used.sort_unstable();
        if used != pinned {
            return Ok(Pinned::Foreign(format!(
                "the pinned program (id {}) uses maps {used:?}, not the ones pinned beside it \
                 {pinned:?}",
                info.id
            )));
        }
        Ok(Pinned::Usable(FastPath {
            prog,
            cidrs,
            pods: PodIfaces(pods),
            stats,
            tunnel,
        }))
    }
}

/// Test support: pins as `dir/prog` (replacing what is there) a program
/// named `name` that hands every packet to the stack (`TC_ACT_OK`), as a
/// stand-in for another build's program; returns its id.
#[cfg(any(test, feature = "testing"))]
pub fn pin_stand_in(dir: &Path, name: &str) -> Result<u32, EbpfError> {
    // r0 = 0; exit.
    let insns = [0x0000_0000_0000_00b7u64, 0x0000_0000_0000_0095];
    let prog = sys::prog_load(fastpath::PROG_TYPE_SCHED_CLS, &insns, "GPL", name, &[])
        .map_err(|(source, log)| EbpfError::Load { source, log })?;
    std::fs::create_dir_all(dir).map_err(EbpfError::pin("create", dir.to_path_buf()))?;
    let path = dir.join(fastpath::PROG_PIN);
    let _ = std::fs::remove_file(&path);
    sys::obj_pin(std::os::fd::AsFd::as_fd(&prog), &path).map_err(EbpfError::pin("pin", path))?;
    fastpath::prog_id(std::os::fd::AsFd::as_fd(&prog))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_fifteen_characters_the_kernel_accepts() {
        let name = prog_name();
        assert_eq!(name.len(), 15, "{name}");
        assert!(name.starts_with("ferry_"), "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name}"
        );
        assert_eq!(prog_name(), name, "the same every time");
    }

    #[test]
    fn the_name_is_that_of_the_program_with_zero_references() {
        let refs = |fd: i32, btf: u32| Refs {
            cidrs_map: fd,
            cidrs6_map: fd + 1,
            stats_map: fd + 2,
            pod_ifaces_map: fd + 3,
            tunnel_map: fd + 4,
            vteps_map: fd + 5,
            ct_lookup: (btf, 0),
            ct_release: (btf + 1, 0),
        };
        // What load hashes is the program with zero references; loaded
        // with real ones its instructions differ, so the name must come
        // from the zeroed form, not from what was loaded.
        let loaded = program::fast_path(&refs(7, 1000));
        assert_ne!(name_of(&loaded), prog_name());
        assert_ne!(
            name_of(&program::fast_path(&refs(8, 1000))),
            name_of(&loaded)
        );
    }

    #[test]
    fn any_change_to_the_instructions_changes_the_name() {
        let base = vec![0x0000_0000_0000_00b7u64, 0x0000_0000_0000_0095];
        let mut one_bit = base.clone();
        one_bit[0] ^= 1 << 40; // an immediate's bit
        let mut longer = base.clone();
        longer.push(0x95);
        let mut swapped = base.clone();
        swapped.swap(0, 1);
        let names = [&base, &one_bit, &longer, &swapped].map(|i| name_of(i));
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Pinned down: the hash is FNV-1a 64 of the little-endian bytes.
        assert_eq!(name_of(&[]), "ferry_484222325");
        assert_eq!(name_of(&base), name_of(&base.clone()));
    }

    /// A bpf file system of the test's own (the host may have none on
    /// /sys/fs/bpf), with the pins in a directory of it; unmounted and
    /// removed on drop.
    struct Pins {
        mount: std::path::PathBuf,
        dir: std::path::PathBuf,
    }

    impl Pins {
        fn new() -> Pins {
            let mount = Path::new("/run").join(ferry_testkit::unique("ebpfpin"));
            std::fs::create_dir_all(&mount).unwrap();
            assert!(fastpath::ensure_bpffs(&mount).unwrap(), "not mounted");
            let dir = mount.join("pins");
            Pins { mount, dir }
        }
    }

    impl Drop for Pins {
        fn drop(&mut self) {
            let _ = fastpath::unpin(&self.dir);
            let _ = nix::mount::umount2(&self.mount, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&self.mount);
        }
    }

    #[test]
    fn this_builds_pinned_program_is_used_and_another_is_not() {
        // Real bpf(2) on a real bpf file system: needs root.
        let pins = Pins::new();
        assert!(matches!(
            FastPath::open_pinned(&pins.dir),
            Ok(Pinned::Missing)
        ));
        let loaded = FastPath::load(&pins.dir).unwrap();
        let id = loaded.prog_id().unwrap();
        let info = sys::prog_info_full(loaded.prog()).unwrap();
        assert_eq!(info.name, prog_name(), "the kernel reports the identity");
        assert_eq!(info.map_ids.len(), 6, "{info:?}");
        match FastPath::open_pinned(&pins.dir).unwrap() {
            Pinned::Usable(fp) => assert_eq!(fp.prog_id().unwrap(), id),
            other => panic!("this build's pin not used: {other:?}"),
        }
        // Another build's program, over the same maps or none.
        let other = pin_stand_in(&pins.dir, "ferry_000000000").unwrap();
        match FastPath::open_pinned(&pins.dir).unwrap() {
            Pinned::Foreign(why) => assert!(
                why.contains(&format!("id {other}")) && why.contains("ferry_000000000"),
                "{why}"
            ),
            p => panic!("another build's pin used: {p:?}"),
        }
        // This build's name, but not over the maps pinned beside it.
        pin_stand_in(&pins.dir, prog_name()).unwrap();
        match FastPath::open_pinned(&pins.dir).unwrap() {
            Pinned::Foreign(why) => assert!(why.contains("not the ones pinned"), "{why}"),
            p => panic!("a program over other maps used: {p:?}"),
        }
        // A load replaces it, keeping the maps.
        let reloaded = FastPath::load(&pins.dir).unwrap();
        assert!(matches!(
            FastPath::open_pinned(&pins.dir),
            Ok(Pinned::Usable(_))
        ));
        let sorted = |mut v: Vec<u32>| {
            v.sort_unstable();
            v
        };
        assert_eq!(
            sorted(sys::prog_info_full(reloaded.prog()).unwrap().map_ids),
            sorted(info.map_ids)
        );
    }
}
