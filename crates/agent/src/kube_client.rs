//! The Kubernetes API client: `--kubeconfig`, else in-cluster config
//! (service-account token and CA, `KUBERNETES_SERVICE_HOST`/`_PORT`).
//! TLS is always verified: a kubeconfig asking to skip verification is
//! refused.

use std::path::Path;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::AgentError;

/// Installs rustls' ring provider as the process default (kube's rustls
/// client panics without one). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The client configuration from `kubeconfig`, or in-cluster.
pub async fn config(kubeconfig: Option<&Path>) -> Result<Config, AgentError> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| AgentError::Kube(format!("kubeconfig {}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| AgentError::Kube(format!("kubeconfig {}: {e}", path.display())))?
        }
        None => Config::incluster().map_err(|e| {
            AgentError::Kube(format!(
                "in-cluster config ({e}); outside a pod, pass --kubeconfig"
            ))
        })?,
    };
    if config.accept_invalid_certs {
        return Err(AgentError::Kube(
            "the kubeconfig disables TLS verification (insecure-skip-tls-verify); ferryd always verifies"
                .into(),
        ));
    }
    // Fail over quickly during an outage; the watch retries with backoff.
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(330));
    Ok(config)
}

/// A client for `kubeconfig`, or in-cluster.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, AgentError> {
    install_crypto_provider();
    let config = config(kubeconfig).await?;
    Client::try_from(config).map_err(|e| AgentError::Kube(format!("client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(insecure: bool) -> String {
        format!(
            r#"apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: {insecure}
contexts:
- name: c
  context: {{cluster: c, user: u}}
current-context: c
users:
- name: u
  user: {{token: abc}}
"#
        )
    }

    #[tokio::test]
    async fn insecure_kubeconfigs_are_refused() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        std::fs::write(&p, kubeconfig(true)).unwrap();
        let e = config(Some(&p)).await.unwrap_err().to_string();
        assert!(e.contains("always verifies"), "{e}");
        std::fs::write(&p, kubeconfig(false)).unwrap();
        let c = config(Some(&p)).await.unwrap();
        assert_eq!(c.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert!(!c.accept_invalid_certs);
        let e = config(Some(&dir.path().join("missing"))).await.unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
