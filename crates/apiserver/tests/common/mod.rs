//! Shared test helpers: servers on 127.0.0.1 port 0 in unique temp dirs,
//! kube clients built from the kubeconfig the server writes.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ferry_apiserver::{ApiServer, ServerConfig};
use k8s_openapi::api::core::v1::Node;

pub const TOKEN: &str = "test-token-0123456789";

pub fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&ferry_testkit::unique("apisrv"))
        .tempdir()
        .expect("temp dir")
}

pub fn config(dir: &Path, history: usize) -> ServerConfig {
    ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        token: TOKEN.into(),
        state_dir: dir.to_path_buf(),
        sans: vec![],
        history,
    }
}

pub async fn start(nodes: Vec<Node>, history: usize) -> (tempfile::TempDir, ApiServer) {
    provider();
    let dir = tempdir();
    let server = ApiServer::start(config(dir.path(), history), nodes)
        .await
        .expect("server starts");
    (dir, server)
}

pub async fn kubeconfig_client(path: &Path) -> kube::Client {
    provider();
    let kc = kube::config::Kubeconfig::read_from(path).expect("kubeconfig loads");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client")
}

pub async fn client(server: &ApiServer) -> kube::Client {
    kubeconfig_client(&server.kubeconfig_path()).await
}

/// Poll `f` until it holds; panic after `secs` seconds.
pub async fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn name(n: &Node) -> String {
    n.metadata.name.clone().unwrap_or_default()
}

pub fn rv(n: &Node) -> u64 {
    n.metadata
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .expect("numeric resourceVersion")
}
