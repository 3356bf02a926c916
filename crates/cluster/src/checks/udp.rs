//! UDP between pods on different nodes, with sockets opened inside the
//! pods' network namespaces (kubectl exec has no UDP client in the
//! toolbox that answers with the source address it saw).

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ferry_netns::NetNs;

use super::{PodView, Report};
use crate::cluster::Cluster;
use crate::error::{ClusterError, Result};

/// The netns file of the pod with `ip` on the node held by `holder`: one
/// of containerd's `/run/netns/cni-*` in the node's mount namespace.
pub fn pod_netns(holder: i32, ip: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(format!("/proc/{holder}/root/run/netns"));
    std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            Command::new("nsenter")
                .arg(format!("--net={}", p.display()))
                .args(["ip", "-o", "addr", "show"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {ip}/")))
        })
}

pub(super) fn udp_probes(c: &Cluster, pods: &[PodView], r: &mut Report) {
    let holder = |node: &str| {
        c.state
            .nodes
            .iter()
            .find(|(n, _)| n.name == node)
            .and_then(|(_, p)| p.map(|p| p.holder.pid))
    };
    for a in pods {
        for b in pods.iter().filter(|b| b.node != a.node) {
            let what = format!("{} ({}) → {} ({})", a.name, a.node, b.ip, b.name);
            let got = (|| {
                let na = NetNs::open(&pod_netns(holder(&a.node)?, &a.ip)?).ok()?;
                let nb = NetNs::open(&pod_netns(holder(&b.node)?, &b.ip)?).ok()?;
                udp_round_trip(&na, &nb, &a.ip, &b.ip).ok()
            })();
            let ok = got.as_deref() == Some(a.ip.as_str());
            r.add(
                "pod→pod udp",
                what,
                ok,
                got.unwrap_or_else(|| "no answer".into()),
            );
        }
    }
}

/// Sends a datagram from `a` to a socket in `b`, which answers with the
/// source address it saw; that answer.
fn udp_round_trip(a: &NetNs, b: &NetNs, a_ip: &str, b_ip: &str) -> Result<String> {
    let err = |e: std::io::Error| ClusterError::Invalid(format!("udp: {e}"));
    let bind_b = format!("{b_ip}:0");
    let server = b
        .run(move || UdpSocket::bind(bind_b))
        .map_err(|e| ClusterError::Invalid(e.to_string()))?
        .map_err(err)?;
    let to = server.local_addr().map_err(err)?;
    let bind_a = format!("{a_ip}:0");
    let client = a
        .run(move || UdpSocket::bind(bind_a))
        .map_err(|e| ClusterError::Invalid(e.to_string()))?
        .map_err(err)?;
    server
        .set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(err)?;
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(err)?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; 64];
        let (_, from) = server.recv_from(&mut buf)?;
        server.send_to(from.ip().to_string().as_bytes(), from)?;
        Ok(())
    });
    client.send_to(b"ferry-lab", to).map_err(err)?;
    let mut buf = [0u8; 64];
    let (n, _) = client.recv_from(&mut buf).map_err(err)?;
    let _ = echo.join();
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
