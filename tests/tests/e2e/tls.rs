//! TLS and mutual TLS with the committed test PKI (tests/certs/).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use async_nats::ConnectOptions;
use bytes::Bytes;
use natrium_tests::{cert, certs_dir, connect_with, next_msg, sync, within, RawConn, TestServer};

fn ca() -> PathBuf {
    certs_dir().join("ca.pem")
}

fn tls_args() -> Vec<String> {
    vec![
        "--tls".into(),
        "--tlscert".into(),
        cert("server-cert.pem"),
        "--tlskey".into(),
        cert("server-key.pem"),
    ]
}

fn mtls_args() -> Vec<String> {
    vec![
        "--tlsverify".into(),
        "--tlscert".into(),
        cert("server-cert.pem"),
        "--tlskey".into(),
        cert("server-key.pem"),
        "--tlscacert".into(),
        cert("ca.pem"),
    ]
}

fn start(args: &[String]) -> Result<TestServer> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    TestServer::start(&refs)
}

async fn roundtrip(client: &async_nats::Client) -> Result<()> {
    let mut sub = client.subscribe("tls.check").await?;
    sync(client).await?;
    client.publish("tls.check", "secret".into()).await?;
    let m = next_msg(&mut sub, "message over TLS").await?;
    assert_eq!(m.payload, Bytes::from("secret"));
    Ok(())
}

async fn expect_connect_failure(url: &str, opts: ConnectOptions, what: &str) -> Result<()> {
    let opts = opts.connection_timeout(Duration::from_secs(5));
    match within(Duration::from_secs(10), what, opts.connect(url)).await? {
        Ok(c) => {
            // With TLS 1.3 a rejected client certificate can surface only on
            // the first round trip; the connection must not be usable.
            let flushed = within(Duration::from_secs(3), "flush", c.flush()).await;
            if matches!(flushed, Ok(Ok(()))) {
                bail!("{what}: connection unexpectedly succeeded");
            }
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

#[tokio::test]
async fn tls_server_with_trusted_ca() -> Result<()> {
    let server = start(&tls_args())?;

    // INFO is sent in plaintext and announces TLS.
    let raw = RawConn::connect(server.port()).await?;
    let info = raw.info()?;
    assert_eq!(
        info["tls_required"],
        serde_json::json!(true),
        "INFO: {}",
        raw.info_line
    );
    assert!(
        info.get("tls_verify").is_none(),
        "no tls_verify without --tlsverify: {}",
        raw.info_line
    );

    let opts = ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(ca());
    let client = connect_with(&server.url(), opts).await?;
    assert!(client.server_info().tls_required);
    roundtrip(&client).await?;

    // Connecting with the IP address in the URL also verifies (IP SAN), and
    // `tls://` works as well.
    let opts = ConnectOptions::new().add_root_certificates(ca());
    let client2 = connect_with(&format!("tls://127.0.0.1:{}", server.port()), opts).await?;
    roundtrip(&client2).await?;

    // A client that does not trust the CA fails the handshake.
    expect_connect_failure(
        &server.url(),
        ConnectOptions::new().require_tls(true),
        "TLS without the test CA",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() -> Result<()> {
    let server = start(&mtls_args())?;
    let raw = RawConn::connect(server.port()).await?;
    let info = raw.info()?;
    assert_eq!(
        info["tls_required"],
        serde_json::json!(true),
        "INFO: {}",
        raw.info_line
    );
    assert_eq!(
        info["tls_verify"],
        serde_json::json!(true),
        "INFO: {}",
        raw.info_line
    );

    let opts = ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(ca())
        .add_client_certificate(
            certs_dir().join("client-cert.pem"),
            certs_dir().join("client-key.pem"),
        );
    let client = connect_with(&server.url(), opts).await?;
    roundtrip(&client).await?;

    expect_connect_failure(
        &server.url(),
        ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(ca()),
        "mTLS without a client certificate",
    )
    .await?;
    server
        .wait_for_log("TLS handshake error", Duration::from_secs(5))
        .await?;
    Ok(())
}
