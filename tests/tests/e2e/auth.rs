//! Authentication: user/password and token, from flags and config files.

use std::time::Duration;

use anyhow::{bail, Result};
use async_nats::{ConnectErrorKind, ConnectOptions};
use bytes::Bytes;
use natrium_tests::{connect_with, next_msg, sync, within, RawConn, TestServer, IO_TIMEOUT};

/// Tries to connect and expects an authorization violation.
async fn expect_auth_violation(url: &str, opts: ConnectOptions, what: &str) -> Result<()> {
    let opts = opts.connection_timeout(Duration::from_secs(5));
    match within(Duration::from_secs(10), what, opts.connect(url)).await? {
        Ok(_) => bail!("{what}: connection unexpectedly succeeded"),
        Err(e) => {
            if e.kind() != ConnectErrorKind::AuthorizationViolation {
                bail!(
                    "{what}: expected an authorization violation, got {:?}: {e}",
                    e.kind()
                );
            }
        }
    }
    Ok(())
}

/// A connected client can actually exchange messages.
async fn roundtrip(client: &async_nats::Client) -> Result<()> {
    let mut sub = client.subscribe("auth.check").await?;
    sync(client).await?;
    client.publish("auth.check", "ok".into()).await?;
    let m = next_msg(&mut sub, "message on an authenticated connection").await?;
    assert_eq!(m.payload, Bytes::from("ok"));
    Ok(())
}

/// Raw protocol: the server announces auth_required and answers bad
/// credentials with `-ERR 'Authorization Violation'` and a close.
async fn raw_rejects(server: &TestServer, connect_line: &str) -> Result<()> {
    let mut c = RawConn::connect(server.port()).await?;
    let info = c.info()?;
    assert_eq!(
        info["auth_required"],
        serde_json::json!(true),
        "INFO: {}",
        c.info_line
    );
    if connect_line.is_empty() {
        c.send("PING\r\n").await?;
    } else {
        c.send(format!("{connect_line}\r\nPING\r\n")).await?;
    }
    let (got, closed) = c.read_to_close(IO_TIMEOUT).await?;
    assert_eq!(
        String::from_utf8_lossy(&got),
        "-ERR 'Authorization Violation'\r\n"
    );
    assert!(
        closed,
        "server must close the connection after an authorization violation"
    );
    Ok(())
}

async fn raw_accepts(server: &TestServer, connect_line: &str) -> Result<()> {
    let mut c = RawConn::connect(server.port()).await?;
    c.send(format!("{connect_line}\r\nPING\r\n")).await?;
    c.expect("PONG\r\n").await
}

#[tokio::test]
async fn user_password_from_flags() -> Result<()> {
    let server = TestServer::start(&["--user", "alice", "--pass", "s3cret"])?;
    let good = ConnectOptions::new().user_and_password("alice".into(), "s3cret".into());
    let client = connect_with(&server.url(), good).await?;
    roundtrip(&client).await?;

    let wrong_pass = ConnectOptions::new().user_and_password("alice".into(), "nope".into());
    expect_auth_violation(&server.url(), wrong_pass, "wrong password").await?;
    let wrong_user = ConnectOptions::new().user_and_password("bob".into(), "s3cret".into());
    expect_auth_violation(&server.url(), wrong_user, "wrong user").await?;
    expect_auth_violation(&server.url(), ConnectOptions::new(), "no credentials").await?;

    raw_rejects(
        &server,
        r#"CONNECT {"verbose":false,"user":"alice","pass":"bad"}"#,
    )
    .await?;
    // A PING before CONNECT on an auth-required server is also a violation.
    raw_rejects(&server, "").await?;
    raw_accepts(
        &server,
        r#"CONNECT {"verbose":false,"user":"alice","pass":"s3cret"}"#,
    )
    .await?;
    server
        .wait_for_log("authentication error", IO_TIMEOUT)
        .await?;
    Ok(())
}

#[tokio::test]
async fn token_from_flags() -> Result<()> {
    let server = TestServer::start(&["--auth", "t0k3n"])?;
    let client = connect_with(&server.url(), ConnectOptions::new().token("t0k3n".into())).await?;
    roundtrip(&client).await?;
    expect_auth_violation(
        &server.url(),
        ConnectOptions::new().token("wrong".into()),
        "wrong token",
    )
    .await?;
    expect_auth_violation(&server.url(), ConnectOptions::new(), "no token").await?;
    raw_rejects(&server, r#"CONNECT {"verbose":false,"auth_token":"wrong"}"#).await?;
    raw_accepts(&server, r#"CONNECT {"verbose":false,"auth_token":"t0k3n"}"#).await?;
    Ok(())
}

#[tokio::test]
async fn user_password_from_config_file() -> Result<()> {
    let server = TestServer::with_config("authorization { user: a, password: b }\n")?;
    let client = connect_with(
        &server.url(),
        ConnectOptions::new().user_and_password("a".into(), "b".into()),
    )
    .await?;
    roundtrip(&client).await?;
    expect_auth_violation(
        &server.url(),
        ConnectOptions::new().user_and_password("a".into(), "x".into()),
        "wrong password (config)",
    )
    .await?;
    raw_rejects(
        &server,
        r#"CONNECT {"verbose":false,"user":"a","pass":"x"}"#,
    )
    .await?;
    raw_accepts(
        &server,
        r#"CONNECT {"verbose":false,"user":"a","pass":"b"}"#,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn token_from_config_file() -> Result<()> {
    let server = TestServer::with_config("authorization {\n  token: \"cfg-token\"\n}\n")?;
    let client = connect_with(
        &server.url(),
        ConnectOptions::new().token("cfg-token".into()),
    )
    .await?;
    roundtrip(&client).await?;
    expect_auth_violation(
        &server.url(),
        ConnectOptions::new().token("x".into()),
        "wrong token (config)",
    )
    .await?;
    Ok(())
}
