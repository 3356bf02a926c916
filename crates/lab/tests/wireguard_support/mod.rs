//! What `wireguard.rs` asks of a lab node's WireGuard: its `ferry-wg`
//! processes, its device as the UAPI socket reports it, its key, and a
//! marked ping in the background.

use ferry_lab::agent::NodeDirs;
use ferry_lab::state::Pod;
use ferry_lab::{sh, Lab};
use ferry_wireguard::uapi::UapiDevice;
use ferry_wireguard::DeviceState;

pub const WG: &str = "ferry.wg";
/// ping's payload pattern (16 bytes, repeated).
pub const PATTERN: &str = "f3e77a11c0ffee5a1e5f3e77a11c0ffe";

/// Pings `to` from `from` every 10 ms, `count` times, with the marker
/// pattern, in the background: (sent, received, ping's summary line).
pub fn background_ping(
    from: &Pod,
    to: &str,
    count: u32,
) -> std::thread::JoinHandle<(u64, u64, String)> {
    let (netns, to) = (from.netns.clone(), to.to_string());
    std::thread::spawn(move || {
        let count = count.to_string();
        let o = sh::ns_output(
            &netns,
            "ping",
            &[
                "-n", "-q", "-c", &count, "-i", "0.01", "-W", "1", "-s", "400", "-p", PATTERN, &to,
            ],
        )
        .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_default()
            .to_string();
        let (sent, got) = ferry_cluster::scenarios::parse_ping_totals(&line)
            .unwrap_or_else(|| panic!("no ping totals in {text:?}"));
        (sent, got, line)
    })
}

/// `ferry-wg` processes serving `node` (by their run dir).
pub fn ferry_wg_pids(lab: &Lab, node: &str) -> Vec<String> {
    let dir = NodeDirs::new(&lab.cfg, node).wireguard_run();
    let out = std::process::Command::new("pgrep")
        .args(["-f", &format!("ferry-wg {WG} --run-dir {}", dir.display())])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// SIGKILLs `node`'s `ferry-wg` processes; their pids.
pub fn kill_ferry_wg(lab: &Lab, node: &str) -> Vec<String> {
    let pids = ferry_wg_pids(lab, node);
    for pid in &pids {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
    pids
}

/// `node`'s device as its UAPI socket reports it (`None`: none answers).
pub fn device_state(lab: &Lab, node: &str) -> Option<DeviceState> {
    let dir = NodeDirs::new(&lab.cfg, node).wireguard_run();
    UapiDevice::new(&dir, WG).get().ok()
}

pub fn wg_peer_keys(lab: &Lab, node: &str) -> Vec<String> {
    let st = device_state(lab, node).expect("a device answers");
    let mut keys: Vec<String> = st.peers.keys().map(|k| k.to_string()).collect();
    keys.sort();
    keys
}

pub fn public_key(lab: &Lab, node: &str) -> String {
    let path = NodeDirs::new(&lab.cfg, node).wireguard_key();
    let (key, made) = ferry_wireguard::PrivateKey::load_or_create(&path).unwrap();
    assert!(!made, "{} exists", path.display());
    key.public_key().to_string()
}
