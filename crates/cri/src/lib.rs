//! A gRPC [`Channel`] to a container runtime's CRI unix socket (e.g.
//! containerd's `/run/containerd/containerd.sock`), for the `k8s-cri`
//! clients: ferryd's IPAM GC (`ListPodSandbox`) and the runtime tests.

use std::path::Path;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint, Uri};

/// Connect to the CRI socket at `socket`, giving up after `timeout`.
pub async fn channel(socket: &Path, timeout: Duration) -> Result<Channel, tonic::transport::Error> {
    let path = socket.to_path_buf();
    // tonic wants a URI; the connector dials the socket whatever it says.
    Endpoint::from_static("http://localhost")
        .connect_timeout(timeout)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
}
