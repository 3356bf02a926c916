//! `ferry-bench plugin`: ADD and DEL whole-process latency of `ferry`
//! against the reference `ptp` + `host-local`, alternating in one run with a
//! fresh pod netns each time, beside the floors nobody can beat: starting a
//! process (VERSION), and the kernel's cost of creating and deleting one
//! veth pair. Then ADD with 0 versus 1000 existing reservations. A third
//! subject is ferry with ferryd's eBPF fast path pinned (`fastPath`), whose
//! ADD also attaches the program to the new host veth.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use ferry_ipam::{DiskStore, IpamConfig, Request};
use ferry_netlink::{Handle, VethSpec};
use ferry_netns::NetNs;
use ferry_testkit::{plugin, unique, Call, Node, REFERENCE_DIR};
use serde_json::{json, Value};

use crate::stats::{ms, summarize, Summary};

struct Subject {
    label: &'static str,
    binary: String,
    conf: String,
}

/// IPAM state for both plugins lives on tmpfs, as `/run` is on a node
/// (this machine's `/run` and `/tmp` are on disk). Removed on drop.
struct StateDir(PathBuf);

impl StateDir {
    fn new() -> StateDir {
        StateDir(Path::new("/dev/shm").join(unique("bench-ipam")))
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ferry_conf(state: &StateDir, network: &str, subnet: &str) -> String {
    json!({
        "cniVersion": "1.0.0", "name": network, "type": "ferry", "mtu": 1500,
        "ipam": {"type": "ferry-ipam", "ranges": [[{"subnet": subnet}]], "dataDir": state.0}
    })
    .to_string()
}

/// The fast path loaded and pinned as ferryd does; unpinned on drop.
struct Pinned(PathBuf);

impl Pinned {
    fn load() -> Result<(Pinned, ferry_ebpf::FastPath)> {
        let root = Path::new("/sys/fs/bpf");
        ferry_ebpf::ensure_bpffs(root)?;
        let dir = Pinned(root.join(unique("bench-fast")));
        let fp = ferry_ebpf::FastPath::load(&dir.0)?;
        Ok((dir, fp))
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = ferry_ebpf::unpin(&self.0);
    }
}

fn ptp_conf(state: &StateDir) -> String {
    json!({
        "cniVersion": "1.0.0", "name": "bench-ptp", "type": "ptp", "mtu": 1500, "ipMasq": false,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.245.0.0/16"}]], "dataDir": state.0}
    })
    .to_string()
}

/// One ADD then DEL of `s` into a fresh pod netns; (add, del) times.
fn add_del(node: &Node, s: &Subject, id: &str) -> Result<(Duration, Duration)> {
    let pod = node.pod(id);
    let netns = Node::pod_path(&pod);
    let (add, t_add) = node.run_timed(&s.binary, &Call::new("ADD", id, &netns, &s.conf));
    ensure!(add.ok, "{} ADD failed: {}", s.label, add.raw);
    let (del, t_del) = node.run_timed(&s.binary, &Call::new("DEL", id, &netns, &s.conf));
    ensure!(del.ok, "{} DEL failed: {}", s.label, del.raw);
    node.drop_pod(&pod);
    Ok((t_add, t_del))
}

fn row(what: &str, s: Summary) {
    println!(
        "  {what:<48} {:>8.2} ms {:>8.2} ms",
        ms(s.median),
        ms(s.p95)
    );
}

pub fn run(runs: usize) -> Result<()> {
    ensure!(runs >= 5, "at least 5 runs");
    let node = Node::new("bp");
    let state = StateDir::new();
    let (pinned, _fast) = Pinned::load().context("loading the fast path")?;
    let mut with_fast: Value =
        serde_json::from_str(&ferry_conf(&state, "bench-fast", "10.246.0.0/16"))?;
    with_fast["fastPath"] = json!(pinned.0);
    let subjects = [
        Subject {
            label: "ferry (built-in ferry-ipam)",
            binary: plugin("ferry"),
            conf: ferry_conf(&state, "bench-ferry", "10.244.0.0/16"),
        },
        Subject {
            label: "ptp + host-local (reference 1.1.1)",
            binary: format!("{REFERENCE_DIR}/ptp"),
            conf: ptp_conf(&state),
        },
        Subject {
            label: "ferry with the fast path pinned",
            binary: plugin("ferry"),
            conf: with_fast.to_string(),
        },
    ];
    // Warm the page cache and the kernel's slabs for both.
    for (i, s) in subjects.iter().enumerate() {
        for w in 0..3 {
            add_del(&node, s, &format!("warm{i}x{w}"))?;
        }
    }
    let mut add = [Vec::new(), Vec::new(), Vec::new()];
    let mut del = [Vec::new(), Vec::new(), Vec::new()];
    for r in 0..runs {
        for (i, s) in subjects.iter().enumerate() {
            let (a, d) = add_del(&node, s, &format!("run{r}s{i}"))?;
            add[i].push(a);
            del[i].push(d);
        }
    }
    let version = version_floor(&node, &subjects[..2], runs)?;
    let (create, delete, delete_pod_side) = veth_floor(&node, runs)?;
    let (empty, full) = fill_levels(&node, &state, runs)?;

    let (fa, pa) = (summarize(&add[0]), summarize(&add[1]));
    let (fd, pd) = (summarize(&del[0]), summarize(&del[1]));
    let (xa, xd) = (summarize(&add[2]), summarize(&del[2]));
    println!("ferry plugin bench: {runs} runs each, ferry and ptp alternating, a fresh pod netns per run,");
    println!(
        "IPAM state of both on tmpfs ({}), as /run is on a node",
        state.0.display()
    );
    println!("  {:<48} {:>11} {:>11}", "", "median", "p95");
    println!("ADD");
    row(subjects[0].label, fa);
    row(subjects[1].label, pa);
    println!(
        "  ratio ferry / ptp (median)                   {:>8.2}",
        ms(fa.median) / ms(pa.median)
    );
    row(subjects[2].label, xa);
    println!(
        "  ratio ferry with fast path / ptp (median)    {:>8.2}",
        ms(xa.median) / ms(pa.median)
    );
    println!("DEL");
    row(subjects[0].label, fd);
    row(subjects[1].label, pd);
    println!(
        "  ratio ferry / ptp (median)                   {:>8.2}",
        ms(fd.median) / ms(pd.median)
    );
    row(subjects[2].label, xd);
    println!("floors (same run)");
    row("process start: ferry VERSION", version[0]);
    row("process start: ptp VERSION", version[1]);
    row("kernel: create a veth pair into a netns", create);
    row("kernel: delete a veth pair (by its host end)", delete);
    row(
        "kernel: delete a veth pair (pod end, in the pod)",
        delete_pod_side,
    );
    println!("derived (medians)");
    println!(
        "  {:<48} {:>8.2} ms   (target <= 2 ms)",
        "ferry ADD minus its start-up",
        ms(fa.median) - ms(version[0].median)
    );
    println!(
        "  {:<48} {:>8.2} ms   (target <= 2 ms)",
        "ferry DEL minus the veth deletion floor",
        ms(fd.median) - ms(delete.median)
    );
    println!("ADD as the node fills");
    row("ferry ADD, 0 reservations in the range", empty);
    row("ferry ADD, 1000 reservations in the range", full);
    println!(
        "  ratio 1000 / 0 (median)                      {:>8.2}   (target <= 1.2)",
        ms(full.median) / ms(empty.median)
    );
    Ok(())
}

fn version_floor(node: &Node, subjects: &[Subject], runs: usize) -> Result<[Summary; 2]> {
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (i, s) in subjects.iter().enumerate() {
            let (r, t) = node.run_timed(
                &s.binary,
                &Call::new("VERSION", "", "", r#"{"cniVersion":"1.0.0"}"#),
            );
            ensure!(r.ok, "VERSION failed: {}", r.raw);
            times[i].push(t);
        }
    }
    Ok([summarize(&times[0]), summarize(&times[1])])
}

/// The kernel's own cost: one RTM_NEWLINK creating a veth pair with its
/// peer in a fresh netns, and one RTM_DELLINK removing it.
fn veth_floor(node: &Node, runs: usize) -> Result<(Summary, Summary, Summary)> {
    let node_ns = NetNs::open(&node.path)?;
    let mut create = Vec::new();
    let mut delete = [Vec::new(), Vec::new()];
    for r in 0..runs * 2 {
        let pod = node.pod(&format!("floor{r}"));
        let pod_ns = NetNs::open(Path::new(&Node::pod_path(&pod)))?;
        let name = format!("fbf{r}");
        let c = node_ns.run(|| -> Result<Duration> {
            let mut nl = Handle::new()?;
            let spec = VethSpec::new(&name, "eth0", pod_ns.as_fd()).mtu(1500);
            let t = Instant::now();
            nl.create_veth(&spec)?;
            Ok(t.elapsed())
        })??;
        // Alternate: delete by the host end, or by the pod end from inside
        // the pod's netns (as ptp does).
        let (ns, end) = if r % 2 == 0 {
            (&node_ns, name.as_str())
        } else {
            (&pod_ns, "eth0")
        };
        let d = ns.run(|| -> Result<Duration> {
            let mut nl = Handle::new()?;
            let t = Instant::now();
            ensure!(nl.delete_link_by_name(end)?, "veth vanished");
            Ok(t.elapsed())
        })??;
        create.push(c);
        delete[r % 2].push(d);
        node.drop_pod(&pod);
    }
    Ok((
        summarize(&create),
        summarize(&delete[0]),
        summarize(&delete[1]),
    ))
}

/// ferry ADD into an empty range and into one holding 1000 reservations,
/// alternating.
fn fill_levels(node: &Node, state: &StateDir, runs: usize) -> Result<(Summary, Summary)> {
    let ferry = plugin("ferry");
    let empty = ferry_conf(state, "bench-empty", "10.246.0.0/16");
    let full = ferry_conf(state, "bench-full", "10.247.0.0/16");
    let conf: Value = serde_json::from_str(&full)?;
    let cfg = IpamConfig::from_value(&conf["ipam"], "bench-full").context("ipam config")?;
    let mut store = DiskStore::for_config(&cfg)?;
    for i in 0..1000 {
        let req = Request {
            container_id: format!("filler{i}"),
            ifname: "eth0".into(),
            requested: vec![],
        };
        ferry_ipam::allocate(&mut store, &cfg, &req)?;
    }
    let mut times = [Vec::new(), Vec::new()];
    for r in 0..runs {
        for (i, c) in [&empty, &full].into_iter().enumerate() {
            let id = unique(&format!("fill{r}x{i}"));
            let s = Subject {
                label: "ferry",
                binary: ferry.clone(),
                conf: c.clone(),
            };
            times[i].push(add_del(node, &s, &id)?.0);
        }
    }
    Ok((summarize(&times[0]), summarize(&times[1])))
}
