//! The fast path's kernel objects: the program and its two maps, pinned
//! in one directory on a bpf file system so that the plugin (a separate,
//! short-lived process) can attach the same program to each new pod.
//!
//! Pins in `dir`: `prog` (replaced on every load, by rename), and the maps
//! `cidrs_v1` and `cidrs6_v1` (LPM tries of the cluster's pod CIDRs and
//! of the addresses excluded from the fast path, told apart by the value:
//! see `cidrs`), `pods_v1` (the ifindexes of pods' host veths),
//! `stats_v2` (per-CPU counters), `tunnel_v1` and `vteps_v1` (VXLAN: see
//! `tunnel`). Maps outlive program reloads, so a restarted agent keeps the
//! counters, the CIDRs and the exclusions. A new map layout takes a new
//! name (`stats_v1` had three counters; [`unpin`] removes it too).

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::cidrs::{self, CidrMaps};

use crate::error::EbpfError;
use crate::map::{Map, MapShape, MAP_TYPE_HASH, MAP_TYPE_PERCPU_ARRAY};
use crate::pinned::prog_name;
use crate::program::{self, Refs, STATS};
use crate::tunnel::{self, TunnelMaps, VxlanTunnel};
use crate::{kfuncs, sys};

pub(crate) const PROG_TYPE_SCHED_CLS: u32 = 3;

/// The pinned program's file name in the pin directory.
pub const PROG_PIN: &str = "prog";
pub(crate) const PODS_PIN: &str = "pods_v1";
/// ifindex → 1.
pub(crate) const PODS: MapShape = MapShape {
    map_type: MAP_TYPE_HASH,
    key_size: 4,
    value_size: 4,
};
/// Counter index → per-CPU u64.
pub(crate) const STATS_SHAPE: MapShape = MapShape {
    map_type: MAP_TYPE_PERCPU_ARRAY,
    key_size: 4,
    value_size: 8,
};
/// Pods per node the map holds at most (kubelet's default limit is 110).
const MAX_PODS: u32 = 65536;
pub(crate) const STATS_PIN: &str = "stats_v2";
/// The counters' map before the VXLAN ones (removed by [`unpin`]).
const OLD_STATS_PIN: &str = "stats_v1";
/// The name of the tc filters running the program (`tc filter show`).
/// The program's own name in the kernel (`bpftool prog`) is this build's
/// identity: [`crate::prog_name`].
pub const PROG_NAME: &str = "ferry_fast";

/// Counters since the maps were made, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub forwarded: u64,
    pub tracked: u64,
    pub no_fib: u64,
    /// Of the forwarded: put into VXLAN by the program.
    pub encapsulated: u64,
    /// Of the forwarded: taken out of VXLAN by the program.
    pub decapsulated: u64,
}

/// The loaded program and its maps.
#[derive(Debug)]
pub struct FastPath {
    pub(crate) prog: OwnedFd,
    pub(crate) cidrs: CidrMaps,
    pub(crate) pods: PodIfaces,
    pub(crate) stats: Map,
    pub(crate) tunnel: TunnelMaps,
}

/// The map of pods' host veths: the plugin adds each new one, removes it
/// at DEL; ferryd's resync drops entries of interfaces that are gone.
#[derive(Debug)]
pub struct PodIfaces(pub(crate) Map);

impl PodIfaces {
    /// Opens the pinned map in `dir`; `Ok(None)` when there is none, and
    /// [`EbpfError::MapMismatch`] when what is pinned there is not this
    /// map (see [`EbpfError::is_map_mismatch`]).
    pub fn open(dir: &Path) -> Result<Option<PodIfaces>, EbpfError> {
        Ok(Map::open(&dir.join(PODS_PIN), PODS)?.map(PodIfaces))
    }

    pub fn insert(&self, ifindex: u32) -> Result<(), EbpfError> {
        self.0.update(&ifindex.to_ne_bytes(), &1u32.to_ne_bytes())
    }

    /// `Ok(false)` when it was not there.
    pub fn remove(&self, ifindex: u32) -> Result<bool, EbpfError> {
        self.0.delete(&ifindex.to_ne_bytes())
    }

    /// Every ifindex in the map, sorted.
    pub fn list(&self) -> Result<Vec<u32>, EbpfError> {
        let mut out: Vec<u32> = (self.0.keys()?.iter())
            .filter_map(|k| Some(u32::from_ne_bytes(k.as_slice().try_into().ok()?)))
            .collect();
        out.sort_unstable();
        Ok(out)
    }
}

impl FastPath {
    /// Loads the program (reusing the maps pinned in `dir`, or making and
    /// pinning new ones) and pins it as `dir/prog`, replacing an older one
    /// atomically. `dir` must be on a bpf file system; it is created. The
    /// program is named [`crate::prog_name`] (this build's identity, which
    /// [`FastPath::open_pinned`] checks).
    pub fn load(dir: &Path) -> Result<FastPath, EbpfError> {
        // The module BTF fds in `_module_btfs` stay open until the load.
        let (kfuncs, fd_array, _module_btfs) = kfuncs::resolve()?;
        std::fs::create_dir_all(dir).map_err(EbpfError::pin("create", dir.to_path_buf()))?;
        let cidrs = CidrMaps::open_or_create(dir)?;
        let pods = Map::open_or_create(dir, PODS_PIN, PODS, MAX_PODS, 0, "ferry_pods")?;
        let stats = Map::open_or_create(dir, STATS_PIN, STATS_SHAPE, STATS, 0, "ferry_stats")?;
        let tunnel = TunnelMaps::open_or_create(dir)?;
        let insns = program::fast_path(&Refs {
            cidrs_map: cidrs.fds().0,
            cidrs6_map: cidrs.fds().1,
            stats_map: stats.raw_fd(),
            pod_ifaces_map: pods.raw_fd(),
            tunnel_map: tunnel.config.raw_fd(),
            vteps_map: tunnel.vteps.raw_fd(),
            ct_lookup: kfuncs[0],
            ct_release: kfuncs[1],
        });
        let prog = sys::prog_load(PROG_TYPE_SCHED_CLS, &insns, "GPL", prog_name(), &fd_array)
            .map_err(|(source, log)| EbpfError::Load {
                source,
                log: tail(&log, 20),
            })?;
        let tmp = dir.join(format!("{PROG_PIN}_new_{}", std::process::id())); // bpffs refuses dots
        let _ = std::fs::remove_file(&tmp);
        sys::obj_pin(prog.as_fd(), &tmp).map_err(EbpfError::pin("pin", tmp.clone()))?;
        let path = dir.join(PROG_PIN);
        std::fs::rename(&tmp, &path).map_err(EbpfError::pin("rename to", path))?;
        Ok(FastPath {
            prog,
            cidrs,
            pods: PodIfaces(pods),
            stats,
            tunnel,
        })
    }

    /// The program, to attach.
    pub fn prog(&self) -> BorrowedFd<'_> {
        self.prog.as_fd()
    }

    /// The program's kernel id (what `tc filter show` reports).
    pub fn prog_id(&self) -> Result<u32, EbpfError> {
        Ok(sys::prog_info(self.prog.as_fd())
            .map_err(EbpfError::sys("BPF_OBJ_GET_INFO_BY_FD"))?
            .0)
    }

    /// The pods' host veths map.
    pub fn pod_ifaces(&self) -> &PodIfaces {
        &self.pods
    }

    /// Makes the CIDR maps hold exactly `want` (both families); returns
    /// whether they changed.
    pub fn set_cidrs(&self, want: &[IpNet]) -> Result<bool, EbpfError> {
        self.cidrs.set(want)
    }

    /// The CIDRs the maps hold, sorted.
    pub fn cidrs(&self) -> Result<Vec<IpNet>, EbpfError> {
        self.cidrs.list()
    }

    /// Makes the excluded addresses exactly `addrs` (both families): the
    /// program leaves every packet from or to one of them to the stack
    /// (and so to netfilter). Adds and removes; the CIDRs stay. Returns
    /// whether the maps changed. The exclusions are pinned with the maps:
    /// a restarted agent finds them in force until it sets them anew.
    pub fn set_excluded(&self, addrs: &BTreeSet<IpAddr>) -> Result<bool, EbpfError> {
        self.cidrs.set_excluded(addrs)
    }

    /// The excluded addresses the maps hold.
    pub fn excluded(&self) -> Result<BTreeSet<IpAddr>, EbpfError> {
        self.cidrs.excluded()
    }

    /// The counters, summed over CPUs.
    pub fn stats(&self) -> Result<Stats, EbpfError> {
        read_stats(&self.stats)
    }

    /// Makes the program encapsulate to and decapsulate from `want`'s
    /// peers itself (`None`: it leaves VXLAN to the device); returns
    /// whether the maps changed.
    pub fn set_tunnel(&self, want: Option<&VxlanTunnel>) -> Result<bool, EbpfError> {
        self.tunnel.set(want)
    }

    /// What the tunnel maps hold.
    pub fn tunnel(&self) -> Result<Option<VxlanTunnel>, EbpfError> {
        self.tunnel.get()
    }
}

/// [`FastPath::set_excluded`] on the maps pinned in `dir`, for a process
/// that does not hold the program (ferryd's policy task): `Ok(None)` when
/// nothing is pinned there (no fast path: the stack sees every packet).
pub fn set_pinned_excluded(
    dir: &Path,
    addrs: &BTreeSet<IpAddr>,
) -> Result<Option<bool>, EbpfError> {
    match CidrMaps::open(dir)? {
        Some(maps) => maps.set_excluded(addrs).map(Some),
        None => Ok(None),
    }
}

/// The excluded addresses in the maps pinned in `dir`; `Ok(None)` when
/// nothing is pinned there.
pub fn pinned_excluded(dir: &Path) -> Result<Option<BTreeSet<IpAddr>>, EbpfError> {
    match CidrMaps::open(dir)? {
        Some(maps) => maps.excluded().map(Some),
        None => Ok(None),
    }
}

/// The counters of the fast path pinned in `dir`; `Ok(None)` without one.
/// [`EbpfError::MapMismatch`] when what is pinned there is not ferry's map.
pub fn pinned_stats(dir: &Path) -> Result<Option<Stats>, EbpfError> {
    match Map::open(&dir.join(STATS_PIN), STATS_SHAPE)? {
        Some(map) => read_stats(&map).map(Some),
        None => Ok(None),
    }
}

fn read_stats(map: &Map) -> Result<Stats, EbpfError> {
    let cpus = possible_cpus().map_err(EbpfError::sys("read /sys/devices/system/cpu/possible"))?;
    let mut sum = [0u64; STATS as usize];
    for (i, total) in sum.iter_mut().enumerate() {
        let value = map
            .lookup(&(i as u32).to_ne_bytes(), cpus)?
            .unwrap_or_default();
        *total = value
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
            .sum();
    }
    Ok(Stats {
        forwarded: sum[program::STAT_FORWARDED as usize],
        tracked: sum[program::STAT_TRACKED as usize],
        no_fib: sum[program::STAT_NO_FIB as usize],
        encapsulated: sum[program::STAT_ENCAPSULATED as usize],
        decapsulated: sum[program::STAT_DECAPSULATED as usize],
    })
}

/// Mounts a bpf file system on `mountpoint` (normally `/sys/fs/bpf`)
/// unless one is there already, as systemd does on most hosts. Returns
/// whether it mounted one.
pub fn ensure_bpffs(mountpoint: &Path) -> Result<bool, EbpfError> {
    use nix::sys::statfs::{statfs, BPF_FS_MAGIC};
    let err =
        |op| move |e: nix::Error| EbpfError::pin(op, mountpoint.to_path_buf())(io::Error::from(e));
    if statfs(mountpoint).map_err(err("statfs"))?.filesystem_type() == BPF_FS_MAGIC {
        return Ok(false);
    }
    nix::mount::mount(
        Some("bpf"),
        mountpoint,
        Some("bpf"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        Some("mode=0700"),
    )
    .map_err(err("mount bpffs on"))?;
    Ok(true)
}

/// Opens the pinned program in `dir` (what the plugin attaches to a new
/// pod's veth). `Ok(None)` when there is none.
pub fn open_prog(dir: &Path) -> Result<Option<OwnedFd>, EbpfError> {
    let path = dir.join(PROG_PIN);
    match sys::obj_get(&path) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EbpfError::pin("open", path)(e)),
    }
}

/// The kernel id of a program (to compare with what a tc filter runs).
pub fn prog_id(prog: BorrowedFd<'_>) -> Result<u32, EbpfError> {
    Ok(sys::prog_info(prog)
        .map_err(EbpfError::sys("BPF_OBJ_GET_INFO_BY_FD"))?
        .0)
}

/// Removes the pins (program and maps) and the directory; the kernel frees
/// them once nothing is attached. Idempotent.
pub fn unpin(dir: &Path) -> Result<(), EbpfError> {
    if !dir.exists() {
        // Nothing pinned (also where /sys is read-only and no bpffs is
        // mounted, and a remove would say EROFS rather than ENOENT).
        return Ok(());
    }
    for name in [
        PROG_PIN,
        cidrs::PINS[0],
        cidrs::PINS[1],
        PODS_PIN,
        STATS_PIN,
        OLD_STATS_PIN,
        tunnel::TUNNEL_PIN,
        tunnel::VTEPS_PIN,
    ] {
        let path: PathBuf = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(EbpfError::pin("remove", path)(e)),
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EbpfError::pin("remove", dir.to_path_buf())(e)),
    }
}

/// Possible CPUs (per-CPU map values come one per possible CPU), from
/// `/sys/devices/system/cpu/possible` ("0-3", "0,2-5", ...).
fn possible_cpus() -> io::Result<usize> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    parse_cpu_list(&s).ok_or_else(|| io::Error::other(format!("bad CPU list {s:?}")))
}

fn parse_cpu_list(s: &str) -> Option<usize> {
    let mut max = None;
    for part in s.trim().split(',') {
        let last = part.rsplit('-').next()?.parse::<usize>().ok()?;
        max = max.max(Some(last));
    }
    max.map(|m| m + 1)
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The program with both kfunc calls naming `fd_array[1]`, loaded
    /// with `fd_array`: the verifier's answer.
    fn load_with_module_calls(fd_array: &[i32]) -> String {
        let (refs, _, _) = kfuncs::resolve().unwrap();
        let map = |t, k, v| sys::map_create(t, k, v, 4, 0, "t").unwrap();
        let lpm = |k| sys::map_create(11, k, 4, 4, 1, "t").unwrap();
        let (v4, v6) = (lpm(8), lpm(20));
        let (pods, stats) = (map(MAP_TYPE_HASH, 4, 4), map(MAP_TYPE_PERCPU_ARRAY, 4, 8));
        let (tunnel, vteps) = (
            map(2, 4, program::vxlan::CONFIG_LEN),
            map(MAP_TYPE_HASH, 8, 4),
        );
        let insns = program::fast_path(&Refs {
            cidrs_map: v4.as_raw_fd(),
            cidrs6_map: v6.as_raw_fd(),
            stats_map: stats.as_raw_fd(),
            pod_ifaces_map: pods.as_raw_fd(),
            tunnel_map: tunnel.as_raw_fd(),
            vteps_map: vteps.as_raw_fd(),
            ct_lookup: (refs[0].0, 1),
            ct_release: (refs[1].0, 1),
        });
        match sys::prog_load(PROG_TYPE_SCHED_CLS, &insns, "GPL", "t", fd_array) {
            Ok(_) => "loaded".into(),
            Err((e, log)) => format!("{e}: {log}"),
        }
    }

    #[test]
    fn module_kfunc_calls_reach_the_kernel_through_fd_array() {
        // No module BTF here (nf_conntrack is built in), but the kernel
        // shows it reads the call's `off` as an index into the fd_array
        // passed: without one it says so; with vmlinux's BTF fd at that
        // index it looks that fd up and refuses it for not being a
        // module's.
        let without = load_with_module_calls(&[]);
        assert!(without.contains("without fd_array"), "{without}");
        let vmlinux = crate::btf::module_fd("vmlinux").unwrap();
        let with = load_with_module_calls(&[0, vmlinux.as_raw_fd()]);
        assert!(with.contains("not a module BTF"), "{with}");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(2));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0,2-5"), Some(6));
        assert_eq!(parse_cpu_list("x"), None);
    }
}
