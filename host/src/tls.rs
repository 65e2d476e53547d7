//! rustls server configuration from `tls {}` / `--tls*` options. TLS 1.2 and 1.3 only.

use crate::options::TlsOptions;
use anyhow::{anyhow, Context};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

pub mod identity;
pub use identity::CertIdentity;

fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificates in {}", path.display()))?;
    if certs.is_empty() {
        return Err(anyhow!("no PEM certificate found in {}", path.display()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .with_context(|| format!("parsing private key in {}", path.display()))?
        .ok_or_else(|| anyhow!("no PEM private key found in {}", path.display()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the acceptor; every file problem is reported with the file's name.
pub fn acceptor(opts: &TlsOptions) -> anyhow::Result<TlsAcceptor> {
    let cert_file = opts.cert_file.as_deref().ok_or_else(|| {
        anyhow!("TLS is enabled but no certificate file (tlscert / cert_file) is set")
    })?;
    let key_file = opts
        .key_file
        .as_deref()
        .ok_or_else(|| anyhow!("TLS is enabled but no key file (tlskey / key_file) is set"))?;
    let certs = load_certs(cert_file)?;
    let key = load_key(key_file)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?;
    let builder = if opts.verify {
        let ca_file = opts
            .ca_file
            .as_deref()
            .ok_or_else(|| anyhow!("tls verify requires a CA file (tlscacert / ca_file)"))?;
        let mut roots = rustls::RootCertStore::empty();
        for c in load_certs(ca_file)? {
            roots
                .add(c)
                .with_context(|| format!("adding CA certificate from {}", ca_file.display()))?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .context("building client certificate verifier")?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(certs, key).with_context(|| {
        format!(
            "certificate {} does not match key {}",
            cert_file.display(),
            key_file.display()
        )
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
