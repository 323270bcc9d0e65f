//! HTTPS for `gco serve` (rustls): TLS 1.3 preferred, 1.2 the minimum, HTTP/2 and
//! HTTP/1.1 by ALPN. The key file is read once; its bytes and parse errors never
//! reach a log or a message (only the file's path does).

use std::path::Path;
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert {path}: {why}")]
    Cert { path: String, why: String },
    #[error("--tls-key {path}: {why}")]
    Key { path: String, why: String },
    #[error(
        "--tls-key {key} (with --tls-cert {cert}): the key does not go with the certificate, or is of a kind rustls cannot use: {why}"
    )]
    Pair {
        cert: String,
        key: String,
        why: String,
    },
}

/// The server configuration from a PEM certificate chain and a PEM private key.
pub fn load(cert: &Path, key: &Path) -> Result<RustlsConfig, TlsError> {
    let cert_err = |why: String| TlsError::Cert {
        path: cert.display().to_string(),
        why,
    };
    let key_err = |why: &str| TlsError::Key {
        path: key.display().to_string(),
        why: why.to_string(),
    };
    let cert_pem = std::fs::read(cert).map_err(|e| cert_err(format!("cannot read it: {e}")))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(cert_err("holds no CERTIFICATE block".to_string()));
    }
    let key_pem = std::fs::read(key).map_err(|_| key_err("cannot read it"))?;
    // The parse error is not shown: it could quote the key's bytes.
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| key_err("holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"))?;
    let pair_err = |e: rustls::Error| TlsError::Pair {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        why: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(pair_err)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(pair_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}
