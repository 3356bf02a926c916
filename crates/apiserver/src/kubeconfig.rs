//! Kubeconfig files for clients of the server (JSON, which is valid YAML).

use std::net::SocketAddr;

use serde_json::json;

use crate::util::base64_std;

/// The URL clients use for a listen address (`0.0.0.0`/`::` become loopback).
pub fn server_url(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("https://{addr}")
}

/// A kubeconfig (cluster `ferry`, user `ferryd`, context `ferry`) that
/// trusts `ca_pem` and authenticates with `token`.
pub fn render(server: &str, ca_pem: &str, token: &str) -> String {
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "ferry",
            "cluster": {
                "server": server,
                "certificate-authority-data": base64_std(ca_pem.as_bytes()),
            }
        }],
        "users": [{"name": "ferryd", "user": {"token": token}}],
        "contexts": [{
            "name": "ferry",
            "context": {"cluster": "ferry", "user": "ferryd"}
        }],
        "current-context": "ferry",
        "preferences": {},
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("kubeconfig serializes");
    s.push('\n');
    s
}
