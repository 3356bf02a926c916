//! A blocking CRI client (runtime/v1 over gRPC on a unix socket), making
//! the calls kubelet makes for a pod: RunPodSandbox, PodSandboxStatus,
//! CreateContainer/StartContainer, StopPodSandbox, RemovePodSandbox.

use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, CreateContainerRequest, ImageSpec, ImageStatusRequest,
    ListPodSandboxRequest, PodSandboxConfig, PodSandboxMetadata, PodSandboxStatusRequest,
    PortMapping, Protocol, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopPodSandboxRequest, VersionRequest,
};
use serde_json::Value;
use tonic::transport::Channel;

use crate::error::{HarnessError, Result};

/// No single CRI call in these tests should take anywhere near this.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Cri {
    rt: tokio::runtime::Runtime,
    channel: Channel,
    client: RuntimeServiceClient<Channel>,
}

/// What PodSandboxStatus (verbose) tells about a sandbox's network.
#[derive(Debug, Clone)]
pub struct PodStatus {
    pub id: String,
    pub ready: bool,
    /// `status.network.ip`: the address kubelet would publish.
    pub ip: Option<IpAddr>,
    /// The sandbox's network namespace (containerd: `/var/run/netns/cni-*`).
    pub netns: Option<PathBuf>,
    /// The pause process.
    pub pid: Option<u32>,
    /// The verbose `info` JSON (containerd puts `cniResult` there).
    pub info: Value,
}

/// A sandbox config as kubelet sends one: metadata with a uid, namespace
/// `default`, hostname = name, cgroupfs (no parent).
pub fn pod_config(name: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.to_string(),
        ..Default::default()
    }
}

/// A TCP `hostPort` → `containerPort` mapping.
pub fn tcp_port(host_port: i32, container_port: i32) -> PortMapping {
    PortMapping {
        protocol: Protocol::Tcp as i32,
        container_port,
        host_port,
        host_ip: String::new(),
    }
}

impl Cri {
    pub fn connect(socket: &Path) -> Result<Cri> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HarnessError::io("starting a tokio runtime for", socket, e))?;
        let channel = rt
            .block_on(ferry_cri::channel(socket, Duration::from_secs(5)))
            .map_err(|source| HarnessError::Connect {
                path: socket.to_path_buf(),
                source,
            })?;
        Ok(Cri {
            rt,
            client: RuntimeServiceClient::new(channel.clone()),
            channel,
        })
    }

    fn block<T>(
        &self,
        call: &'static str,
        fut: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        self.rt.block_on(async {
            match tokio::time::timeout(CALL_TIMEOUT, fut).await {
                Err(_) => Err(HarnessError::Timeout {
                    what: format!("CRI {call}"),
                    secs: CALL_TIMEOUT.as_secs(),
                }),
                Ok(Err(status)) => Err(HarnessError::Cri {
                    call,
                    status: Box::new(status),
                }),
                Ok(Ok(r)) => Ok(r.into_inner()),
            }
        })
    }

    /// `(runtime name, runtime version)`.
    pub fn version(&self) -> Result<(String, String)> {
        let mut c = self.client.clone();
        let v = self.block("Version", async move {
            c.version(VersionRequest {
                version: "v1".into(),
            })
            .await
        })?;
        Ok((v.runtime_name, v.runtime_version))
    }

    /// Whether the CRI image service knows `image`.
    pub fn image_present(&self, image: &str) -> Result<bool> {
        let mut c = ImageServiceClient::new(self.channel.clone());
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            verbose: false,
        };
        let r = self.block("ImageStatus", async move { c.image_status(req).await })?;
        Ok(r.image.is_some())
    }

    /// RunPodSandbox; the sandbox ID.
    pub fn run_pod(&self, config: &PodSandboxConfig) -> Result<String> {
        let mut c = self.client.clone();
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        };
        let r = self.block("RunPodSandbox", async move { c.run_pod_sandbox(req).await })?;
        Ok(r.pod_sandbox_id)
    }

    /// PodSandboxStatus with `verbose`, boiled down to the network facts.
    pub fn pod_status(&self, id: &str) -> Result<PodStatus> {
        let mut c = self.client.clone();
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: true,
        };
        let r = self.block("PodSandboxStatus", async move {
            c.pod_sandbox_status(req).await
        })?;
        let status = r.status.ok_or(HarnessError::Unexpected {
            what: "PodSandboxStatus",
            detail: "no status".into(),
        })?;
        let info: Value = r
            .info
            .get("info")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null);
        let ip = status
            .network
            .as_ref()
            .and_then(|n| n.ip.parse::<IpAddr>().ok());
        let netns = info["runtimeSpec"]["linux"]["namespaces"]
            .as_array()
            .and_then(|a| a.iter().find(|n| n["type"] == "network"))
            .and_then(|n| n["path"].as_str())
            .map(PathBuf::from);
        Ok(PodStatus {
            id: status.id,
            ready: status.state == k8s_cri::v1::PodSandboxState::SandboxReady as i32,
            ip,
            netns,
            pid: info["pid"].as_u64().map(|p| p as u32),
            info,
        })
    }

    pub fn stop_pod(&self, id: &str) -> Result<()> {
        let mut c = self.client.clone();
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.block(
            "StopPodSandbox",
            async move { c.stop_pod_sandbox(req).await },
        )
        .map(drop)
    }

    pub fn remove_pod(&self, id: &str) -> Result<()> {
        let mut c = self.client.clone();
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.block("RemovePodSandbox", async move {
            c.remove_pod_sandbox(req).await
        })
        .map(drop)
    }

    /// IDs of every sandbox this runtime knows.
    pub fn list_pods(&self) -> Result<Vec<String>> {
        let mut c = self.client.clone();
        let r = self.block("ListPodSandbox", async move {
            c.list_pod_sandbox(ListPodSandboxRequest { filter: None })
                .await
        })?;
        Ok(r.items.into_iter().map(|p| p.id).collect())
    }

    /// CreateContainer + StartContainer in sandbox `pod`: `image` running
    /// `command`. The container ID.
    pub fn start_container(
        &self,
        pod: &str,
        pod_config: &PodSandboxConfig,
        name: &str,
        image: &str,
        command: &[&str],
    ) -> Result<String> {
        let mut c = self.client.clone();
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.to_string(),
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: name.to_string(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                command: command.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            sandbox_config: Some(pod_config.clone()),
        };
        let id = self
            .block(
                "CreateContainer",
                async move { c.create_container(req).await },
            )?
            .container_id;
        let mut c = self.client.clone();
        let req = StartContainerRequest {
            container_id: id.clone(),
        };
        self.block(
            "StartContainer",
            async move { c.start_container(req).await },
        )?;
        Ok(id)
    }

    /// Stop and remove every sandbox (with its containers); the first
    /// error, after trying them all.
    pub fn remove_all(&self) -> Result<()> {
        let mut first = None;
        for id in self.list_pods()? {
            if let Err(e) = self.stop_pod(&id).and_then(|()| self.remove_pod(&id)) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}
