//! The server's own CA (kept in the state dir) and its serving certificate.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::ServerError;
use crate::util::write_atomic;

pub(crate) const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const CA_CN: &str = "ferry-apiserver-ca";

/// The CA and a TLS config serving a certificate it signed.
pub(crate) struct Tls {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_CN);
    dn.push(DnType::OrganizationName, "ferry");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Load the CA from `dir` (creating it the first time) and issue a fresh
/// serving certificate for `sans` + 127.0.0.1 + localhost.
pub(crate) fn setup(dir: &Path, sans: &[String]) -> Result<Tls, ServerError> {
    let cert_path = dir.join(CA_CERT);
    let key_path = dir.join(CA_KEY);
    let io = |context, path: &Path| {
        let path = path.to_path_buf();
        move |source| ServerError::Io {
            context,
            path,
            source,
        }
    };
    let (ca_pem, ca_key) = if cert_path.exists() && key_path.exists() {
        let pem = std::fs::read_to_string(&cert_path).map_err(io("cannot read", &cert_path))?;
        let key_pem = std::fs::read_to_string(&key_path).map_err(io("cannot read", &key_path))?;
        (pem, KeyPair::from_pem(&key_pem)?)
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)
            .map_err(io("cannot write", &key_path))?;
        write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)
            .map_err(io("cannot write", &cert_path))?;
        (cert.pem(), key)
    };
    let ca_der = first_pem_der(&ca_pem).ok_or_else(|| ServerError::State {
        path: cert_path.clone(),
        message: "no certificate in PEM".into(),
    })?;
    let issuer = Issuer::new(ca_params(), ca_key);

    let mut names: Vec<String> = sans.iter().map(|s| s.trim().to_string()).collect();
    for default in ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default"] {
        names.push(default.to_string());
    }
    names.retain(|n| !n.is_empty());
    names.sort();
    names.dedup();
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), CertificateDer::from(ca_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        ca_pem,
        config: Arc::new(config),
    })
}

/// DER of the first PEM block.
fn first_pem_der(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = pem[start..].find("-----END CERTIFICATE-----")? + start;
    let b64: String = pem[start..end].split_whitespace().collect();
    crate::util::base64_decode(&b64)
}
