//! The cluster's certificates, as kubeadm would make them: one CA, the
//! API server's serving certificate, a client certificate per component
//! (the names RBAC's default bindings expect), one per node
//! (`system:node:<name>` in `system:nodes`, for the Node authorizer and
//! NodeRestriction), and the service-account signing key.
//!
//! Keys are ECDSA P-256 in PKCS#8 PEM (Go reads them), written 0600.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::error::Result;
use crate::util::write_file;

/// A certificate and key written as `<dir>/<name>.crt` and `.key`.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Who a client certificate names.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub cn: &'a str,
    pub org: Option<&'a str>,
}

/// The CA of one cluster, able to issue.
pub struct Ca {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "ferry-lab-kubernetes-ca");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

impl Ca {
    /// A new CA in `dir` (`ca.crt`, `ca.key`).
    pub fn create(dir: &Path) -> Result<Ca> {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        write_file(&dir.join("ca.crt"), cert.pem().as_bytes(), 0o644)?;
        write_file(&dir.join("ca.key"), key.serialize_pem().as_bytes(), 0o600)?;
        Ok(Ca {
            dir: dir.to_path_buf(),
            issuer: Issuer::new(ca_params(), key),
        })
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A serving certificate for `names` (IP addresses or DNS names).
    pub fn serving(&self, name: &str, cn: &str, names: &[&str]) -> Result<CertFiles> {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*n).try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(name, p)
    }

    /// A client certificate for `who`.
    pub fn client(&self, name: &str, who: Subject<'_>) -> Result<CertFiles> {
        let mut p = CertificateParams::default();
        if let Some(org) = who.org {
            p.distinguished_name.push(DnType::OrganizationName, org);
        }
        p.distinguished_name.push(DnType::CommonName, who.cn);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(name, p)
    }

    fn issue(&self, name: &str, params: CertificateParams) -> Result<CertFiles> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let files = CertFiles {
            cert: self.dir.join(format!("{name}.crt")),
            key: self.dir.join(format!("{name}.key")),
        };
        write_file(&files.cert, cert.pem().as_bytes(), 0o644)?;
        write_file(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
        Ok(files)
    }
}

/// The service-account signing key (`sa.key`) and its public half
/// (`sa.pub`), as kubeadm names them.
pub fn service_account_key(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let key = KeyPair::generate()?;
    let (k, p) = (dir.join("sa.key"), dir.join("sa.pub"));
    write_file(&k, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&p, key.public_key_pem().as_bytes(), 0o644)?;
    Ok((k, p))
}

/// The names the API server answers to: its address, the `kubernetes`
/// Service's ClusterIP and names, and loopback (the host's forwarder).
pub fn apiserver_names(advertise: &str) -> Vec<String> {
    let mut v: Vec<String> = vec![
        advertise.into(),
        crate::paths::KUBERNETES_SERVICE_IP.into(),
        "127.0.0.1".into(),
        "localhost".into(),
    ];
    for n in ["kubernetes", "kubernetes.default", "kubernetes.default.svc"] {
        v.push(n.into());
    }
    v.push("kubernetes.default.svc.cluster.local".into());
    v
}

/// Checks that `pem` holds a certificate (a cheap sanity check for tests).
pub fn is_cert_pem(pem: &str) -> bool {
    pem.contains("-----BEGIN CERTIFICATE-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_a_chain_openssl_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::create(dir.path()).unwrap();
        let names = apiserver_names("172.16.97.1");
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let srv = ca.serving("apiserver", "kube-apiserver", &refs).unwrap();
        let node = ca
            .client(
                "node-a",
                Subject {
                    cn: "system:node:a",
                    org: Some("system:nodes"),
                },
            )
            .unwrap();
        for c in [&srv.cert, &node.cert] {
            let out = std::process::Command::new("openssl")
                .arg("verify")
                .arg("-CAfile")
                .arg(ca.cert_path())
                .arg(c)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&node.cert)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("Subject: CN = system:node:a, O = system:nodes"),
            "{text}"
        );
        let srv_text = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&srv.cert)
            .output()
            .unwrap();
        let srv_text = String::from_utf8_lossy(&srv_text.stdout);
        assert!(srv_text.contains("IP Address:10.96.0.1"), "{srv_text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&node.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(is_cert_pem(&std::fs::read_to_string(&srv.cert).unwrap()));
    }
}
