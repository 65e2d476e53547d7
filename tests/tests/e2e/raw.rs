//! Byte-exact protocol tests over a plain TCP connection. The expected
//! bytes are what nats-server v2.9.10 sends.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use natrium_tests::{normalized_frames, RawConn, TestServer, IO_TIMEOUT};
use serde_json::json;

const QUIET: Duration = Duration::from_millis(250);
const QUIET_CONNECT: &str = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";

async fn conn(server: &TestServer) -> Result<RawConn> {
    RawConn::connect(server.port()).await
}

/// Sends `script`, expects exactly `expected`, and then that the server
/// closes the connection.
async fn expect_err_and_close(server: &TestServer, script: &[u8], expected: &str) -> Result<()> {
    let mut c = conn(server).await?;
    c.send(script).await?;
    let (got, closed) = c.read_to_close(IO_TIMEOUT).await?;
    assert_eq!(
        String::from_utf8_lossy(&got),
        expected,
        "response to {:?}",
        String::from_utf8_lossy(&script[..script.len().min(80)])
    );
    assert!(
        closed,
        "server must close the connection after {expected:?}"
    );
    Ok(())
}

#[tokio::test]
async fn info_has_the_expected_fields() -> Result<()> {
    let server = TestServer::start(&[])?;
    let c = conn(&server).await?;
    let line = &c.info_line;
    assert!(line.starts_with("INFO {"), "{line}");
    // nats-server terminates the INFO JSON with a space before CRLF.
    assert!(
        line.ends_with("} \r\n"),
        "INFO must end with `}} \\r\\n`: {line:?}"
    );
    assert_eq!(line.matches("\r\n").count(), 1);
    let info = c.info()?;
    let s = |k: &str| {
        info.get(k)
            .and_then(|v| v.as_str())
            .with_context(|| format!("INFO.{k} missing or not a string: {line}"))
    };
    ensure!(!s("server_id")?.is_empty(), "empty server_id");
    ensure!(!s("server_name")?.is_empty(), "empty server_name");
    ensure!(
        s("version")?.split('.').count() == 3,
        "version must be x.y.z: {line}"
    );
    assert_eq!(info["proto"], json!(1), "{line}");
    assert_eq!(info["headers"], json!(true), "{line}");
    assert_eq!(info["max_payload"], json!(1_048_576), "{line}");
    assert_eq!(info["host"], json!("127.0.0.1"), "{line}");
    assert_eq!(info["port"], json!(server.port()), "{line}");
    assert_eq!(info["client_ip"], json!("127.0.0.1"), "{line}");
    ensure!(
        info["client_id"].as_u64().is_some(),
        "client_id must be a number: {line}"
    );
    ensure!(
        info.get("auth_required").is_none(),
        "no auth_required without auth: {line}"
    );
    ensure!(
        info.get("tls_required").is_none(),
        "no tls_required without TLS: {line}"
    );

    // client_id differs between connections, server_id does not.
    let c2 = conn(&server).await?;
    let info2 = c2.info()?;
    assert_ne!(info["client_id"], info2["client_id"]);
    assert_eq!(info["server_id"], info2["server_id"]);
    Ok(())
}

#[tokio::test]
async fn info_reflects_configured_max_payload() -> Result<()> {
    let server = TestServer::with_config("max_payload: 1KB\n")?;
    let c = conn(&server).await?;
    assert_eq!(c.info()?["max_payload"], json!(1024), "{}", c.info_line);
    Ok(())
}

#[tokio::test]
async fn verbose_mode_acks_with_ok() -> Result<()> {
    let server = TestServer::start(&[])?;
    let mut c = conn(&server).await?;
    c.send("CONNECT {\"verbose\":true}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\nPUB foo 2\r\nhi\r\nPING\r\n")
        .await?;
    // +OK for a PUB comes before the message it delivers.
    c.expect("+OK\r\n+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\n+OK\r\n+OK\r\nPONG\r\n")
        .await?;
    assert!(c.read_for(QUIET).await?.is_empty());

    // Without any CONNECT (and with `CONNECT {}`) verbose defaults to true.
    let mut c = conn(&server).await?;
    c.send("SUB foo 1\r\nPING\r\n").await?;
    c.expect("+OK\r\nPONG\r\n").await?;
    let mut c = conn(&server).await?;
    c.send("CONNECT {}\r\nPING\r\n").await?;
    c.expect("+OK\r\nPONG\r\n").await?;

    // verbose:false is silent.
    let mut c = conn(&server).await?;
    c.send("CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nUNSUB 1\r\nPING\r\n")
        .await?;
    c.expect("PONG\r\n").await?;
    Ok(())
}

#[tokio::test]
async fn ping_pong() -> Result<()> {
    let server = TestServer::start(&[])?;
    let mut c = conn(&server).await?;
    c.send(QUIET_CONNECT).await?;
    c.send("PING\r\n").await?;
    c.expect("PONG\r\n").await?;
    c.send("PING\r\nPING\r\nPING\r\n").await?;
    c.expect("PONG\r\nPONG\r\nPONG\r\n").await?;
    // A PONG from the client gets no answer.
    c.send("PONG\r\nPING\r\n").await?;
    c.expect("PONG\r\n").await?;
    // PING split across writes.
    c.send("PI").await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send("NG\r\n").await?;
    c.expect("PONG\r\n").await?;
    assert!(c.read_for(QUIET).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn operations_are_case_insensitive() -> Result<()> {
    let server = TestServer::start(&[])?;
    let mut c = conn(&server).await?;
    c.send("connect {\"verbose\":false}\r\nsub foo 1\r\npub foo 2\r\nhi\r\nSub bar 2\r\nPub bar 3\r\nabc\r\nuNsUb 1\r\npub foo 1\r\nx\r\nping\r\nPiNg\r\n")
        .await?;
    c.expect("MSG foo 1 2\r\nhi\r\nMSG bar 2 3\r\nabc\r\nPONG\r\nPONG\r\n")
        .await?;
    assert!(c.read_for(QUIET).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn msg_framing_with_reply_and_multiple_sids() -> Result<()> {
    let server = TestServer::start(&[])?;
    let mut c = conn(&server).await?;
    c.send(QUIET_CONNECT).await?;
    c.send("SUB foo 1\r\nSUB foo 2\r\nSUB foo abc\r\nSUB f* 4\r\nPUB foo bar 2\r\nhi\r\nPING\r\n")
        .await?;
    // One copy per matching subscription (the order among them is not
    // specified; nats-server varies it). `f*` is a literal, not a wildcard.
    let got = c.read_until(b"PONG\r\n", IO_TIMEOUT).await?;
    assert_eq!(
        normalized_frames(&got),
        vec![
            "MSG foo 1 bar 2\r\nhi\r\n",
            "MSG foo 2 bar 2\r\nhi\r\n",
            "MSG foo abc bar 2\r\nhi\r\n",
            "PONG\r\n"
        ],
        "raw: {:?}",
        String::from_utf8_lossy(&got)
    );
    // Payload containing CRLF, and a zero-length payload.
    c.send("UNSUB 2\r\nUNSUB abc\r\nPUB foo 6\r\na\r\nb\r\n\r\nPUB foo 0\r\n\r\nPING\r\n")
        .await?;
    c.expect("MSG foo 1 6\r\na\r\nb\r\n\r\nMSG foo 1 0\r\n\r\nPONG\r\n")
        .await?;
    // Extra whitespace / tabs between arguments are accepted.
    c.send("PUB  foo   2\r\nhi\r\nPUB\tfoo\t2\r\nhi\r\nPING\r\n")
        .await?;
    c.expect("MSG foo 1 2\r\nhi\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n")
        .await?;
    Ok(())
}

#[tokio::test]
async fn hmsg_framing_exact_bytes() -> Result<()> {
    let server = TestServer::start(&[])?;
    let mut c = conn(&server).await?;
    c.send("CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB foo 1\r\n")
        .await?;
    let hdr = "NATS/1.0\r\nA: b\r\nC: d\r\n\r\n";
    assert_eq!(hdr.len(), 24);
    c.send(format!("HPUB foo 24 29\r\n{hdr}hello\r\nPING\r\n"))
        .await?;
    c.expect(format!("HMSG foo 1 24 29\r\n{hdr}hello\r\nPONG\r\n"))
        .await?;
    // With a reply subject and an empty body.
    c.send("HPUB foo rep.ly 12 12\r\nNATS/1.0\r\n\r\n\r\nPING\r\n")
        .await?;
    c.expect("HMSG foo 1 rep.ly 12 12\r\nNATS/1.0\r\n\r\n\r\nPONG\r\n")
        .await?;
    // A plain PUB reaches a header-aware subscriber as MSG.
    c.send("PUB foo 2\r\nhi\r\nPING\r\n").await?;
    c.expect("MSG foo 1 2\r\nhi\r\nPONG\r\n").await?;
    Ok(())
}

#[tokio::test]
async fn headers_are_stripped_for_subscribers_without_header_support() -> Result<()> {
    let server = TestServer::start(&[])?;
    let mut plain = conn(&server).await?;
    let mut hdr = conn(&server).await?;
    plain
        .send("CONNECT {\"verbose\":false,\"headers\":false}\r\nSUB foo 1\r\nPING\r\n")
        .await?;
    plain.expect("PONG\r\n").await?;
    hdr.send("CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB foo 7\r\nHPUB foo 18 20\r\nNATS/1.0\r\nX: 1\r\n\r\nhi\r\nPING\r\n")
        .await?;
    hdr.expect("HMSG foo 7 18 20\r\nNATS/1.0\r\nX: 1\r\n\r\nhi\r\nPONG\r\n")
        .await?;
    plain.expect("MSG foo 1 2\r\nhi\r\n").await?;
    Ok(())
}

#[tokio::test]
async fn no_responders_status_message() -> Result<()> {
    let server = TestServer::start(&[])?;
    let mut c = conn(&server).await?;
    c.send("CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB r 9\r\nPUB nobody r 0\r\n\r\nPING\r\n")
        .await?;
    c.expect("HMSG r 9 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n")
        .await?;

    // Without no_responders, nothing comes back.
    let mut c = conn(&server).await?;
    c.send(
        "CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB r 9\r\nPUB nobody r 0\r\n\r\nPING\r\n",
    )
    .await?;
    c.expect("PONG\r\n").await?;
    assert!(c.read_for(QUIET).await?.is_empty());

    // no_responders without headers is refused.
    expect_err_and_close(
        &server,
        b"CONNECT {\"verbose\":false,\"headers\":false,\"no_responders\":true}\r\nPING\r\n",
        "-ERR 'no responders requires headers support'\r\n",
    )
    .await
}

#[tokio::test]
async fn auto_unsubscribe_delivers_exactly_max() -> Result<()> {
    let server = TestServer::start(&[])?;
    let mut c = conn(&server).await?;
    c.send(QUIET_CONNECT).await?;
    c.send("SUB foo 1\r\nUNSUB 1 2\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\nPUB foo 1\r\nd\r\nPING\r\n")
        .await?;
    c.expect("MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n")
        .await?;
    c.send("PUB foo 1\r\ne\r\nPING\r\n").await?;
    c.expect("PONG\r\n").await?;
    assert!(c.read_for(QUIET).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn echo_false_suppresses_own_messages() -> Result<()> {
    let server = TestServer::start(&[])?;
    let mut a = conn(&server).await?;
    let mut b = conn(&server).await?;
    a.send("CONNECT {\"verbose\":false,\"echo\":false}\r\nSUB foo 1\r\nPING\r\n")
        .await?;
    a.expect("PONG\r\n").await?;
    b.send("CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPING\r\n")
        .await?;
    b.expect("PONG\r\n").await?;
    a.send("PUB foo 4\r\nfrom\r\nPING\r\n").await?;
    a.expect("PONG\r\n").await?;
    b.expect("MSG foo 1 4\r\nfrom\r\n").await?;
    b.send("PUB foo 2\r\nhi\r\n").await?;
    a.expect("MSG foo 1 2\r\nhi\r\n").await?;
    Ok(())
}

#[tokio::test]
async fn queue_subscription_gets_one_copy() -> Result<()> {
    let server = TestServer::start(&[])?;
    let mut c = conn(&server).await?;
    c.send(QUIET_CONNECT).await?;
    c.send("SUB foo q 1\r\nSUB foo q 2\r\nSUB foo 3\r\nPUB foo 2\r\nhi\r\nPING\r\n")
        .await?;
    let got = String::from_utf8(c.read_until(b"PONG\r\n", IO_TIMEOUT).await?)?;
    let q1 = "MSG foo 1 2\r\nhi\r\n";
    let q2 = "MSG foo 2 2\r\nhi\r\n";
    let plain = "MSG foo 3 2\r\nhi\r\n";
    assert_eq!(got.matches(plain).count(), 1, "{got:?}");
    assert_eq!(
        got.matches(q1).count() + got.matches(q2).count(),
        1,
        "{got:?}"
    );
    assert_eq!(
        got.len(),
        q1.len() + plain.len() + "PONG\r\n".len(),
        "{got:?}"
    );
    Ok(())
}

#[tokio::test]
async fn invalid_subjects() -> Result<()> {
    let server = TestServer::start(&[])?;
    let mut c = conn(&server).await?;
    c.send("CONNECT {\"verbose\":false}\r\nSUB foo..bar 1\r\nPING\r\n")
        .await?;
    c.expect("-ERR 'Invalid Subject'\r\nPONG\r\n").await?;
    // In pedantic mode (the default) a wildcard publish subject is refused
    // but the connection stays open.
    let mut c = conn(&server).await?;
    c.send("CONNECT {\"verbose\":false,\"pedantic\":true}\r\nPUB foo.* 1\r\nx\r\nPING\r\n")
        .await?;
    c.expect("-ERR 'Invalid Publish Subject'\r\nPONG\r\n")
        .await?;
    assert!(!c.is_closed());
    Ok(())
}

#[tokio::test]
async fn unknown_operation_is_an_error_and_closes() -> Result<()> {
    let server = TestServer::start(&[])?;
    expect_err_and_close(&server, b"FOO\r\n", "-ERR 'Unknown Protocol Operation'\r\n").await?;
    expect_err_and_close(
        &server,
        b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nBOGUS stuff\r\n",
        "-ERR 'Unknown Protocol Operation'\r\n",
    )
    .await?;
    // Payload longer than announced.
    expect_err_and_close(
        &server,
        b"PUB foo 3\r\nabcdef\r\n",
        "-ERR 'Unknown Protocol Operation'\r\n",
    )
    .await?;
    // SUB without arguments.
    expect_err_and_close(&server, b"SUB\r\n", "-ERR 'Unknown Protocol Operation'\r\n").await
}

#[tokio::test]
async fn oversized_publish_is_a_max_payload_violation() -> Result<()> {
    let server = TestServer::start(&[])?;
    expect_err_and_close(
        &server,
        b"PUB a 2000000\r\n",
        "-ERR 'Maximum Payload Violation'\r\n",
    )
    .await?;
    let server = TestServer::with_config("max_payload: 1KB\n")?;
    expect_err_and_close(
        &server,
        b"CONNECT {\"verbose\":false}\r\nPUB a 1025\r\n",
        "-ERR 'Maximum Payload Violation'\r\n",
    )
    .await?;
    // Exactly max_payload is fine.
    let mut c = conn(&server).await?;
    let body = vec![b'x'; 1024];
    let mut script = b"CONNECT {\"verbose\":false}\r\nSUB a 1\r\nPUB a 1024\r\n".to_vec();
    script.extend_from_slice(&body);
    script.extend_from_slice(b"\r\nPING\r\n");
    c.send(&script).await?;
    let mut want = b"MSG a 1 1024\r\n".to_vec();
    want.extend_from_slice(&body);
    want.extend_from_slice(b"\r\nPONG\r\n");
    c.expect(&want).await
}

#[tokio::test]
async fn control_line_too_long() -> Result<()> {
    let server = TestServer::start(&[])?;
    let long_subject = "a".repeat(5000);
    expect_err_and_close(
        &server,
        format!("PUB {long_subject} 1\r\nx\r\n").as_bytes(),
        "-ERR 'maximum control line exceeded'\r\n",
    )
    .await?;
    expect_err_and_close(
        &server,
        format!("CONNECT {{\"verbose\":false}}\r\nSUB {long_subject} 1\r\n").as_bytes(),
        "-ERR 'maximum control line exceeded'\r\n",
    )
    .await
}

#[tokio::test]
async fn bad_pub_arguments_close_silently() -> Result<()> {
    // nats-server closes these without sending -ERR (it only logs
    // `processPub Parse Error` / `processPub Bad or Missing Size`).
    let server = TestServer::start(&[])?;
    expect_err_and_close(&server, b"CONNECT {\"verbose\":false}\r\nPUB foo\r\n", "").await?;
    expect_err_and_close(&server, b"CONNECT {\"verbose\":false}\r\nPUB foo x\r\n", "").await?;
    expect_err_and_close(
        &server,
        b"CONNECT {\"verbose\":false}\r\nPUB foo -1\r\n",
        "",
    )
    .await?;
    // CONNECT with malformed JSON closes without -ERR too.
    expect_err_and_close(&server, b"CONNECT {bad json}\r\nPING\r\n", "").await?;
    // nats-server logs e.g. `[ERR] 127.0.0.1:PORT - cid:N - processPub Bad or
    // Missing Size: "foo x"`; only the `[ERR] <addr> - cid:` prefix is required.
    server.wait_for_log("[ERR] 127.0.0.1:", IO_TIMEOUT).await?;
    let logs = server.logs();
    anyhow::ensure!(
        logs.lines()
            .any(|l| l.contains("[ERR] 127.0.0.1:") && l.contains(" - cid:")),
        "error log lines should look like `[ERR] 127.0.0.1:PORT - cid:N - ...`:\n{logs}"
    );
    Ok(())
}
