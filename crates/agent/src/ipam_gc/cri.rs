//! The one CRI call the collector makes: `ListPodSandbox` over the
//! runtime's unix socket (runtime/v1 over gRPC).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::ListPodSandboxRequest;

use crate::AgentError;

/// Where containerd's socket is on a kubeadm node.
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";

/// Connecting plus the call; a runtime that takes longer is not answering.
const TIMEOUT: Duration = Duration::from_secs(20);

/// `--cri-socket`, else [`DEFAULT_SOCKET`] when it exists.
pub fn socket(flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| Some(PathBuf::from(DEFAULT_SOCKET)).filter(|p| p.exists()))
}

fn cri_err(socket: &Path, what: impl std::fmt::Display) -> AgentError {
    AgentError::Cri(format!("{}: {what}", socket.display()))
}

/// The IDs of every sandbox the runtime knows, whatever its state.
pub async fn sandbox_ids(socket: &Path) -> Result<HashSet<String>, AgentError> {
    let call = async move {
        let channel = ferry_cri::channel(socket, TIMEOUT)
            .await
            .map_err(|e| cri_err(socket, format!("connecting: {e}")))?;
        let reply = RuntimeServiceClient::new(channel)
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await
            .map_err(|s| cri_err(socket, format!("ListPodSandbox: {}", s.message())))?;
        Ok(reply.into_inner().items.into_iter().map(|p| p.id).collect())
    };
    tokio::time::timeout(TIMEOUT, call)
        .await
        .map_err(|_| cri_err(socket, format!("no answer in {TIMEOUT:?}")))?
}
