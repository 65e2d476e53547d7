//! rustls server configuration from `tls {}` / `--tls*` options. TLS 1.2 and 1.3 only.

use crate::options::TlsOptions;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

pub mod identity;
pub use identity::CertIdentity;

/// Why the TLS configuration cannot be used; names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS is enabled but no certificate file (tlscert / cert_file) is set")]
    NoCertFile,
    #[error("TLS is enabled but no key file (tlskey / key_file) is set")]
    NoKeyFile,
    #[error("tls verify requires a CA file (tlscacert / ca_file)")]
    NoCaFile,
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing certificates in {}: {source}", path.display())]
    ParseCertificates {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no PEM certificate found in {}", path.display())]
    NoCertificate { path: PathBuf },
    #[error("parsing private key in {}: {source}", path.display())]
    ParseKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no PEM private key found in {}", path.display())]
    NoKey { path: PathBuf },
    #[error("TLS protocol versions: {0}")]
    ProtocolVersions(#[source] rustls::Error),
    #[error("adding CA certificate from {}: {source}", path.display())]
    AddCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("building client certificate verifier: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error("certificate {} does not match key {}: {source}", cert.display(), key.display())]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read(path)?;
    let certs = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::ParseCertificates {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = read(path)?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|source| TlsError::ParseKey {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: path.to_path_buf(),
        })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the acceptor; every file problem is reported with the file's name.
pub fn acceptor(opts: &TlsOptions) -> Result<TlsAcceptor, TlsError> {
    let cert_file = opts.cert_file.as_deref().ok_or(TlsError::NoCertFile)?;
    let key_file = opts.key_file.as_deref().ok_or(TlsError::NoKeyFile)?;
    let certs = load_certs(cert_file)?;
    let key = load_key(key_file)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::ProtocolVersions)?;
    let builder = if opts.verify {
        let ca_file = opts.ca_file.as_deref().ok_or(TlsError::NoCaFile)?;
        let mut roots = rustls::RootCertStore::empty();
        for c in load_certs(ca_file)? {
            roots.add(c).map_err(|source| TlsError::AddCa {
                path: ca_file.to_path_buf(),
                source,
            })?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(TlsError::Verifier)?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|source| TlsError::KeyMismatch {
            cert: cert_file.to_path_buf(),
            key: key_file.to_path_buf(),
            source,
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
