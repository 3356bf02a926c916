//! FRR per node, as /work/shared/notes/frr-in-netns.md found works: one
//! pathspace per node (`-N NAME`: /etc/frr/NAME, /var/run/frr/NAME), the
//! daemons started inside the node netns with `-d -A 127.0.0.1`, stopped
//! by their pid files. ferryd then renders and reloads the config.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::procs::{read_pid_file, stop_all, Proc};
use crate::sh;
use crate::topo::Routing;

pub const FRR_BIN: &str = "/usr/lib/frr";
pub const FRR_CONF_ROOT: &str = "/etc/frr";
pub const FRR_RUN_ROOT: &str = "/var/run/frr";
/// Files ospfd and ospf6d write outside their pathspace, shared by all
/// instances: (daemon, path).
pub const SHARED_FILES: [(&str, &str); 3] = [
    ("ospfd", "/var/run/frr/ospfd-gr.json"),
    ("ospf6d", "/var/run/frr/ospf6d-gr.json"),
    ("ospf6d", "/var/run/frr/ospf6d-at-seq-no.dat"),
];

pub fn conf_dir(pathspace: &str) -> PathBuf {
    Path::new(FRR_CONF_ROOT).join(pathspace)
}

pub fn run_dir(pathspace: &str) -> PathBuf {
    Path::new(FRR_RUN_ROOT).join(pathspace)
}

/// The daemons a node runs for `routing` (zebra first).
pub fn daemons(routing: Routing, dual_stack: bool) -> Vec<&'static str> {
    let mut d = vec!["zebra", "staticd"];
    match routing {
        Routing::Direct => return Vec::new(),
        Routing::Ospf => {
            d.push("ospfd");
            if dual_stack {
                d.push("ospf6d");
            }
        }
        Routing::Bgp => d.push("bgpd"),
    }
    d
}

fn frr_ids() -> Result<(u32, u32)> {
    let user = nix::unistd::User::from_name("frr")
        .ok()
        .flatten()
        .ok_or_else(|| {
            LabError::Invalid("no user frr: apt-get install frr frr-pythontools".into())
        })?;
    Ok((user.uid.as_raw(), user.gid.as_raw()))
}

/// Writes a file FRR reads (mode 0640, owned by frr), atomically.
fn write_frr_file(path: &Path, text: &str, ids: (u32, u32)) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| LabError::io(&tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o640))
        .map_err(|e| LabError::io(&tmp, e))?;
    std::os::unix::fs::chown(&tmp, Some(ids.0), Some(ids.1)).map_err(|e| LabError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LabError::io(path, e))
}

/// Prepares the pathspace (dirs owned by frr, `daemons`, `vtysh.conf`
/// naming `hostname`, and a `frr.conf` with only the hostname unless one
/// is there already) and starts `daemons` in `netns`.
pub fn start(netns: &str, pathspace: &str, hostname: &str, daemons: &[&str]) -> Result<()> {
    let ids = frr_ids()?;
    let (conf, run) = (conf_dir(pathspace), run_dir(pathspace));
    for dir in [&conf, &run] {
        std::fs::create_dir_all(dir).map_err(|e| LabError::io(dir, e))?;
        std::os::unix::fs::chown(dir, Some(ids.0), Some(ids.1))
            .map_err(|e| LabError::io(dir, e))?;
    }
    let list: String = daemons.iter().map(|d| format!("{d}=yes\n")).collect();
    write_frr_file(&conf.join("daemons"), &list, ids)?;
    write_frr_file(
        &conf.join("vtysh.conf"),
        &format!("service integrated-vtysh-config\nhostname {hostname}\n"),
        ids,
    )?;
    let frr_conf = conf.join("frr.conf");
    if !frr_conf.exists() {
        write_frr_file(&frr_conf, &format!("hostname {hostname}\n"), ids)?;
    }
    for d in daemons {
        start_daemon(netns, pathspace, d)?;
    }
    Ok(())
}

fn start_daemon(netns: &str, pathspace: &str, daemon: &str) -> Result<()> {
    let run = run_dir(pathspace);
    let log = run.join(format!("{daemon}.log"));
    let conf = conf_dir(pathspace).join("frr.conf");
    let bin = format!("{FRR_BIN}/{daemon}");
    let (conf, log) = (
        conf.display().to_string(),
        format!("file:{}", log.display()),
    );
    let mut args = vec![
        "netns",
        "exec",
        netns,
        &bin,
        "-d",
        "-N",
        pathspace,
        "-A",
        "127.0.0.1",
        "-f",
        &conf,
        "--log",
        &log,
    ];
    if daemon == "zebra" {
        // As the manifests start it: routes outlive an FRR restart.
        args.extend(ferry_frr::ZEBRA_OPTIONS);
    }
    sh::run(std::process::Command::new("ip").args(&args))?;
    let pid = run.join(format!("{daemon}.pid"));
    let vty = run.join(format!("{daemon}.vty"));
    sh::wait_for(
        Duration::from_secs(20),
        Duration::from_millis(10),
        &format!("{daemon} of {pathspace} to come up"),
        || (pid.exists() && vty.exists()).then_some(()),
    )
}

/// Pids from the pathspace's pid files.
pub fn pids(pathspace: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(run_dir(pathspace)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pid"))
        .filter_map(|e| read_pid_file(&e.path()))
        .collect()
}

/// Stops the pathspace's daemons (by pid file); keeps its files.
pub fn stop(pathspace: &str) -> usize {
    stop_all(&pids(pathspace), Duration::from_secs(5))
}

/// Kills the pathspace's daemons with SIGKILL, as the end of FRR's
/// container does (watchfrr, not they, gets the SIGTERM): no BGP
/// NOTIFICATION goes out, so the peers see a restart, not a shutdown, and
/// graceful restart applies. Keeps its files.
pub fn kill(pathspace: &str) -> usize {
    let procs: Vec<Proc> = pids(pathspace).into_iter().filter_map(Proc::of).collect();
    for p in &procs {
        p.crash();
    }
    procs.len()
}

/// Stops the daemons and removes the pathspace's dirs.
pub fn remove(pathspace: &str) -> Result<()> {
    stop(pathspace);
    for dir in [conf_dir(pathspace), run_dir(pathspace)] {
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LabError::io(dir, e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Pathspaces under /etc/frr and /var/run/frr starting with `prefix`.
pub fn pathspaces_with_prefix(prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = [FRR_CONF_ROOT, FRR_RUN_ROOT]
        .iter()
        .flat_map(|root| std::fs::read_dir(root).into_iter().flatten().flatten())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `vtysh -N pathspace -c command`.
pub fn vtysh(pathspace: &str, command: &str) -> Result<String> {
    sh::run(std::process::Command::new("vtysh").args(["-N", pathspace, "-c", command]))
}
