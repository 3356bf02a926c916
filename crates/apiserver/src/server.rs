//! [`ApiServer`]: start, stop (an API outage), restart, and a blocking
//! wrapper for code without a tokio runtime.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::ServerError;
use crate::http::{serve_connection, Shared};
use crate::store::Store;
use crate::util::write_atomic;
use crate::{kubeconfig, persist, tls};

/// File names in the state dir.
pub const KUBECONFIG: &str = "kubeconfig";
pub const TOKEN: &str = "token";

/// How to run a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port (kept on restart).
    pub listen: SocketAddr,
    /// Bearer token clients must send; empty: reuse `state_dir/token` or
    /// generate one.
    pub token: String,
    /// Keeps `ca.crt`/`ca.key`, `token`, `kubeconfig` and the node store.
    pub state_dir: PathBuf,
    /// Extra serving-certificate SANs (IPs or DNS names); the listen IP,
    /// 127.0.0.1 and localhost are always included.
    pub sans: Vec<String>,
    /// Watch events kept for resuming watches (older resourceVersions get
    /// 410 Expired).
    pub history: usize,
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// A running (or stopped) API server. Dropping it stops it.
pub struct ApiServer {
    addr: SocketAddr,
    state_dir: PathBuf,
    ca_pem: String,
    shared: Arc<Shared>,
    running: Option<Running>,
    persister: JoinHandle<()>,
}

impl ApiServer {
    /// Start serving. `nodes` seed the store only when the state dir holds
    /// no store yet; otherwise the stored cluster continues.
    pub async fn start(cfg: ServerConfig, nodes: Vec<Node>) -> Result<ApiServer, ServerError> {
        let dir = cfg.state_dir.clone();
        let io = |context, path: PathBuf| {
            move |source| ServerError::Io {
                context,
                path,
                source,
            }
        };
        let state = persist::load(&dir)?;
        let loaded = state.found;
        let store = Store::build(state.rv, state.objects, cfg.history, Some(state.persist));
        if loaded {
            if !nodes.is_empty() {
                tracing::info!("{} holds a store: seed nodes ignored", dir.display());
            }
        } else {
            for node in nodes {
                store.add_node(node)?;
            }
        }
        store.flush()?;

        let token_path = dir.join(TOKEN);
        let token = if !cfg.token.trim().is_empty() {
            cfg.token.trim().to_string()
        } else {
            match std::fs::read_to_string(&token_path) {
                Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
                _ => {
                    let bytes = crate::util::random_bytes(24)
                        .map_err(io("cannot read", "/dev/urandom".into()))?;
                    bytes.iter().map(|b| format!("{b:02x}")).collect()
                }
            }
        };
        write_atomic(&token_path, format!("{token}\n").as_bytes(), 0o600)
            .map_err(io("cannot write", token_path.clone()))?;

        let mut sans = cfg.sans.clone();
        if !cfg.listen.ip().is_unspecified() {
            sans.push(cfg.listen.ip().to_string());
        }
        let tls = tls::setup(&dir, &sans)?;
        let listener = bind(cfg.listen)?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let kc_path = dir.join(KUBECONFIG);
        let kc = kubeconfig::render(&kubeconfig::server_url(addr), &tls.ca_pem, &token);
        write_atomic(&kc_path, kc.as_bytes(), 0o600).map_err(io("cannot write", kc_path))?;

        let shared = Arc::new(Shared {
            store: store.clone(),
            token,
            tls: tokio_rustls::TlsAcceptor::from(tls.config),
        });
        let persister = tokio::spawn(persist_loop(store));
        let mut server = ApiServer {
            addr,
            state_dir: dir,
            ca_pem: tls.ca_pem,
            shared,
            running: None,
            persister,
        };
        server.serve(listener);
        tracing::info!("serving on https://{addr}");
        Ok(server)
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, self.shared.clone(), stopped));
        self.running = Some(Running { stop, task });
    }

    /// The address actually listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://ADDR:PORT`
    pub fn url(&self) -> String {
        kubeconfig::server_url(self.addr)
    }

    /// The kubeconfig written into the state dir.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.state_dir.join(KUBECONFIG)
    }

    /// A kubeconfig for reaching this server at another URL (e.g. from a
    /// node netns); the URL's host must be one of the SANs.
    pub fn kubeconfig_for(&self, server_url: &str) -> String {
        kubeconfig::render(server_url, &self.ca_pem, &self.shared.token)
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone()
    }

    /// The node store (works while stopped too).
    pub fn store(&self) -> Store {
        self.shared.store.clone()
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stop listening and cut every connection (watches end, clients see
    /// errors). The store is kept; see [`ApiServer::restart`].
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let _ = running.task.await;
        }
        if let Err(e) = self.shared.store.flush() {
            tracing::warn!("{e}");
        }
    }

    /// Listen again on the same address with the same CA, token and store.
    pub async fn restart(&mut self) -> Result<(), ServerError> {
        if self.running.is_some() {
            return Ok(());
        }
        let mut tries = 0;
        let listener = loop {
            match bind(self.addr) {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tracing::debug!("{e}; retrying");
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.serve(listener);
        Ok(())
    }

    /// Run a server on a runtime of its own, for code without one (tests,
    /// lab tools). Must not be called from inside a tokio runtime.
    pub fn spawn_blocking(
        cfg: ServerConfig,
        nodes: Vec<Node>,
    ) -> Result<RunningServer, ServerError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ferry-apiserver")
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let server = rt.block_on(ApiServer::start(cfg, nodes))?;
        Ok(RunningServer {
            server: Some(server),
            rt: Some(rt),
        })
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.task.abort();
        }
        self.persister.abort();
        if let Err(e) = self.shared.store.flush() {
            tracing::warn!("{e}");
        }
    }
}

/// An [`ApiServer`] on its own runtime (see [`ApiServer::spawn_blocking`]).
pub struct RunningServer {
    server: Option<ApiServer>,
    rt: Option<tokio::runtime::Runtime>,
}

impl RunningServer {
    pub fn server(&self) -> &ApiServer {
        self.server.as_ref().expect("server present until drop")
    }

    pub fn addr(&self) -> SocketAddr {
        self.server().addr()
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.server().kubeconfig_path()
    }

    pub fn store(&self) -> Store {
        self.server().store()
    }

    pub fn token(&self) -> String {
        self.server().token().to_string()
    }

    pub fn ca_pem(&self) -> String {
        self.server().ca_pem()
    }

    pub fn stop(&mut self) {
        let (Some(server), Some(rt)) = (self.server.as_mut(), self.rt.as_ref()) else {
            return;
        };
        rt.block_on(server.stop());
    }

    pub fn restart(&mut self) -> Result<(), ServerError> {
        let (Some(server), Some(rt)) = (self.server.as_mut(), self.rt.as_ref()) else {
            return Ok(());
        };
        rt.block_on(server.restart())
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            if let Some(mut server) = self.server.take() {
                rt.block_on(server.stop());
            }
            rt.shutdown_background();
        }
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let err = |source| ServerError::Bind { addr, source };
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    conns.spawn(serve_connection(shared.clone(), tcp));
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}

/// Write the store to disk shortly after it changes.
async fn persist_loop(store: Store) {
    loop {
        store.dirtied().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("{e}"),
            Err(_) => return,
        }
    }
}
