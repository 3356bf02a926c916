//! Kubeconfig files: one cluster, one user (a client certificate), one
//! context, paths to the PEM files rather than embedded data so they stay
//! readable.

use std::path::Path;

use crate::error::Result;
use crate::pki::CertFiles;
use crate::util::write_file;

/// The text of a kubeconfig for `server` as the user of `client`.
pub fn render(server: &str, ca: &Path, client: &CertFiles, user: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: ferry-lab
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: {user}@ferry-lab
  context:
    cluster: ferry-lab
    user: {user}
current-context: {user}@ferry-lab
",
        ca = ca.display(),
        cert = client.cert.display(),
        key = client.key.display(),
    )
}

/// Writes [`render`]'s text to `path` (0600: it names a private key).
pub fn write(path: &Path, server: &str, ca: &Path, client: &CertFiles, user: &str) -> Result<()> {
    write_file(path, render(server, ca, client, user).as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn names_server_and_files() {
        let c = CertFiles {
            cert: PathBuf::from("/p/admin.crt"),
            key: PathBuf::from("/p/admin.key"),
        };
        let t = render(
            "https://127.0.0.1:1234",
            Path::new("/p/ca.crt"),
            &c,
            "admin",
        );
        assert!(t.contains("server: https://127.0.0.1:1234\n"));
        assert!(t.contains("certificate-authority: /p/ca.crt\n"));
        assert!(t.contains("client-key: /p/admin.key\n"));
        assert!(t.contains("current-context: admin@ferry-lab\n"));
    }
}
