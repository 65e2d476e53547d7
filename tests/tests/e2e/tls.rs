//! TLS and mutual TLS with the committed test PKI (tests/certs/).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use async_nats::ConnectOptions;
use bytes::Bytes;
use natrium_tests::{
    cert, certs_dir, connect_with, is_nats_server, next_msg, plugin_path, sync, within,
    workspace_root, RawConn, TestServer,
};

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

/// `tls { verify_and_map: true }` with the given `authorization { users }` entries.
fn verify_and_map_config(users: &str) -> String {
    format!(
        r#"
tls {{
  cert_file: "{}"
  key_file: "{}"
  ca_file: "{}"
  verify_and_map: true
}}
authorization {{
  users = [
{users}
  ]
}}
"#,
        cert("server-cert.pem"),
        cert("server-key.pem"),
        cert("ca.pem"),
    )
}

fn with_client_cert(name: &str) -> ConnectOptions {
    ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(ca())
        .add_client_certificate(
            certs_dir().join(format!("{name}-cert.pem")),
            certs_dir().join(format!("{name}-key.pem")),
        )
}

#[tokio::test]
async fn verify_and_map_uses_the_certificate_user_and_its_permissions() -> Result<()> {
    // mapped-cert.pem: subject O=Natrium/CN=mapped-client, SAN email:alice@natrium.test.
    let server = TestServer::with_config(&verify_and_map_config(
        r#"    {user: "alice@natrium.test", permissions: {publish: {allow: ["allowed.>", "tls.check", "_INBOX.>"]}}}
    {user: "bob", password: "bobpass"}"#,
    ))?;
    let raw = RawConn::connect(server.port()).await?;
    let info = raw.info()?;
    assert_eq!(
        info["tls_verify"],
        serde_json::json!(true),
        "INFO: {}",
        raw.info_line
    );

    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<async_nats::Event>();
    // No user or password in CONNECT: the certificate names the user.
    let opts = with_client_cert("mapped").event_callback(move |e| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e);
        }
    });
    let client = connect_with(&server.url(), opts).await?;
    let mut sub = client.subscribe("*.x").await?;
    sync(&client).await?;
    client.publish("denied.x", "no".into()).await?;
    client.publish("allowed.x", "yes".into()).await?;
    let m = next_msg(&mut sub, "allowed publish").await?;
    assert_eq!(m.subject.as_str(), "allowed.x");
    // The denied publish got the standard -ERR and the connection stayed up.
    let err = within(Duration::from_secs(5), "permissions violation", async {
        while let Some(e) = events.recv().await {
            if let async_nats::Event::ServerError(e) = e {
                return Some(e.to_string());
            }
        }
        None
    })
    .await?;
    let err = err.unwrap_or_default().to_lowercase();
    assert!(
        err.contains("permissions violation for publish to \"denied.x\""),
        "server error: {err}"
    );
    roundtrip(&client).await?;

    // As nats-server: a CONNECT password is compared with the mapped user's (none here), so
    // the certificate user cannot be combined with another user's credentials.
    expect_connect_failure(
        &server.url(),
        with_client_cert("mapped").user_and_password("bob".into(), "bobpass".into()),
        "verify_and_map with another user's password",
    )
    .await?;

    // A verified certificate naming no configured user is refused.
    expect_connect_failure(
        &server.url(),
        with_client_cert("client").user_and_password("bob".into(), "bobpass".into()),
        "verify_and_map with an unmapped certificate",
    )
    .await?;
    server
        .wait_for_log("authentication error", Duration::from_secs(5))
        .await?;
    Ok(())
}

#[tokio::test]
async fn verify_and_map_matches_the_subject_dn() -> Result<()> {
    // client-cert.pem: subject CN=natrium-test-client, SAN DNS:localhost (no such user).
    let server = TestServer::with_config(&verify_and_map_config(
        r#"    {user: "CN=natrium-test-client", permissions: {subscribe: {deny: ["secret.>"]}}}"#,
    ))?;
    let client = connect_with(&server.url(), with_client_cert("client")).await?;
    roundtrip(&client).await?;
    expect_connect_failure(
        &server.url(),
        with_client_cert("mapped"),
        "verify_and_map: certificate of another subject",
    )
    .await?;
    Ok(())
}

/// A server running the test authorizer (tests/guests/authz), with or without mTLS.
fn authz_config(verify: bool) -> Result<String> {
    Ok(format!(
        r#"
plugin_cache_dir: {cache:?}
accounts {{ A: {{}} }}
plugins {{ authz: {{ path: {path:?}, role: authorizer, deadline: "2s" }} }}
tls {{
  cert_file: "{cert}"
  key_file: "{key}"
  ca_file: "{ca}"
  verify: {verify}
}}
"#,
        cache = workspace_root()
            .join("target")
            .join("e2e-plugin-cache")
            .display()
            .to_string(),
        path = plugin_path("authz")?.display().to_string(),
        cert = cert("server-cert.pem"),
        key = cert("server-key.pem"),
        ca = cert("ca.pem"),
    ))
}

#[tokio::test]
async fn authorizer_plugin_sees_the_client_certificate() -> Result<()> {
    if is_nats_server() {
        println!("note: Wasm plugins are natrium-only; skipped with nats-server");
        return Ok(());
    }
    // The test authorizer admits alice/secret, but with an already-past expiry when the
    // request carries a TLS identity: without mTLS she works, with a client certificate the
    // grant is refused, which shows the identity reached the plugin.
    let plain = TestServer::with_config(&authz_config(false)?)?;
    let opts = ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(ca())
        .user_and_password("alice".into(), "secret".into());
    let client = connect_with(&plain.url(), opts).await?;
    client.publish("orders.new", "x".into()).await?;
    client.flush().await?;

    let mtls = TestServer::with_config(&authz_config(true)?)?;
    expect_connect_failure(
        &mtls.url(),
        with_client_cert("client").user_and_password("alice".into(), "secret".into()),
        "authorizer given a TLS identity",
    )
    .await?;
    mtls.wait_for_log("authorization already expired", Duration::from_secs(5))
        .await?;
    Ok(())
}

#[tokio::test]
async fn tls_handshake_first_serves_clients_that_start_with_tls() -> Result<()> {
    if is_nats_server() {
        // handshake_first arrived in nats-server 2.10; the reference here is 2.9.10.
        return Ok(());
    }
    let conf = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", handshake_first: true }}\n",
        cert("server-cert.pem"),
        cert("server-key.pem")
    );
    let server = TestServer::with_config(&conf)?;
    let client = connect_with(
        &server.url(),
        ConnectOptions::new()
            .add_root_certificates(ca())
            .require_tls(true)
            .tls_first(),
    )
    .await?;
    let mut sub = client.subscribe("hs.first").await?;
    sync(&client).await?;
    client
        .publish("hs.first", Bytes::from_static(b"tls first"))
        .await?;
    let msg = next_msg(&mut sub, "message over a TLS-first connection").await?;
    anyhow::ensure!(msg.payload == "tls first");
    Ok(())
}

#[tokio::test]
async fn tls_handshake_first_with_a_window_also_serves_clients_that_wait_for_info() -> Result<()> {
    if is_nats_server() {
        // handshake_first with a fallback window arrived in nats-server 2.10.
        return Ok(());
    }
    let conf = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", handshake_first: 300ms }}\n",
        cert("server-cert.pem"),
        cert("server-key.pem")
    );
    let server = TestServer::with_config(&conf)?;
    let tls_first = connect_with(
        &server.url(),
        ConnectOptions::new()
            .add_root_certificates(ca())
            .require_tls(true)
            .tls_first(),
    )
    .await?;
    roundtrip(&tls_first).await?;
    // A client that waits for INFO gets it after the window, then does TLS as usual.
    let raw = RawConn::connect(server.port()).await?;
    anyhow::ensure!(raw.info()?["tls_required"] == true, "{}", raw.info_line);
    let after_info = connect_with(
        &server.url(),
        ConnectOptions::new()
            .add_root_certificates(ca())
            .require_tls(true),
    )
    .await?;
    roundtrip(&after_info).await?;
    Ok(())
}

#[tokio::test]
async fn allow_non_tls_serves_plain_and_tls_clients_alike() -> Result<()> {
    if is_nats_server() {
        // allow_non_tls arrived in nats-server 2.10.
        return Ok(());
    }
    let conf = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}\nallow_non_tls: true\n",
        cert("server-cert.pem"),
        cert("server-key.pem")
    );
    let server = TestServer::with_config(&conf)?;
    let mut raw = RawConn::connect(server.port()).await?;
    let info = raw.info()?;
    anyhow::ensure!(
        info["tls_available"] == true && info.get("tls_required").is_none(),
        "INFO offers TLS without requiring it: {}",
        raw.info_line
    );
    raw.send("CONNECT {\"verbose\":false}\r\nPING\r\n").await?;
    raw.expect("PONG\r\n").await?;

    let plain = connect_with(&server.url(), ConnectOptions::new()).await?;
    roundtrip(&plain).await?;
    let secure = connect_with(
        &server.url(),
        ConnectOptions::new()
            .add_root_certificates(ca())
            .require_tls(true),
    )
    .await?;
    roundtrip(&secure).await?;
    Ok(())
}

#[test]
fn bad_certificate_files_stop_the_server_with_a_clear_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("nope.pem").display().to_string();
    let out = natrium_tests::run_bin(
        &[
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "--tls",
            "--tlscert",
            &missing,
            "--tlskey",
            &cert("server-key.pem"),
        ],
        dir.path(),
        Duration::from_secs(10),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    anyhow::ensure!(!out.status.success(), "must not start: {stderr}");
    anyhow::ensure!(
        stderr.contains("nope.pem"),
        "the error must name the file: {stderr}"
    );

    // A certificate that does not match its key.
    let out = natrium_tests::run_bin(
        &[
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "--tls",
            "--tlscert",
            &cert("server-cert.pem"),
            "--tlskey",
            &cert("client-key.pem"),
        ],
        dir.path(),
        Duration::from_secs(10),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    anyhow::ensure!(
        !out.status.success(),
        "mismatched key must not start: {stderr}"
    );
    Ok(())
}
