//! Differential protocol tests: each raw script runs against the server
//! under test and (when installed) the reference nats-server; responses must
//! match each other and the golden bytes recorded from nats-server v2.9.10.
//!
//! Normalisation: the initial INFO line is dropped (it carries ids and
//! ports), and within a run of consecutive MSG/HMSG frames the order is
//! ignored (one connection's several matching subscriptions may be served in
//! any order).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use natrium_tests::{
    normalized_frames, reference_server_available, server_bin, RawConn, TestServer, IO_TIMEOUT,
    REFERENCE_SERVER,
};

const Q: &str = "CONNECT {\"verbose\":false}\r\n";
const QH: &str = "CONNECT {\"verbose\":false,\"headers\":true}\r\n";

struct Script {
    name: &'static str,
    send: String,
    /// Golden response after INFO, as sent by nats-server v2.9.10.
    expect: String,
    /// Whether the server closes the connection afterwards.
    closes: bool,
}

fn s(
    name: &'static str,
    send: impl Into<String>,
    expect: impl Into<String>,
    closes: bool,
) -> Script {
    Script {
        name,
        send: send.into(),
        expect: expect.into(),
        closes,
    }
}

fn scripts() -> Vec<Script> {
    let long = "a".repeat(5000);
    vec![
        s("ping_without_connect", "PING\r\n", "PONG\r\n", false),
        s("connect_verbose", "CONNECT {\"verbose\":true}\r\nPING\r\n", "+OK\r\nPONG\r\n", false),
        s("connect_empty_object_keeps_verbose_default", "CONNECT {}\r\nPING\r\n", "+OK\r\nPONG\r\n", false),
        s(
            "no_connect_defaults_to_verbose",
            "SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n",
            "+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n",
            false,
        ),
        s(
            "verbose_ok_order",
            "CONNECT {\"verbose\":true}\r\nSUB foo 1\r\nUNSUB 1 2\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\nPING\r\n",
            "+OK\r\n+OK\r\n+OK\r\n+OK\r\nMSG foo 1 1\r\na\r\n+OK\r\nMSG foo 1 1\r\nb\r\n+OK\r\nPONG\r\n",
            false,
        ),
        s(
            "lowercase_ops",
            "connect {\"verbose\":false}\r\nsub foo 1\r\npub foo 2\r\nhi\r\nunsub 1\r\npub foo 1\r\nx\r\nping\r\n",
            "MSG foo 1 2\r\nhi\r\nPONG\r\n",
            false,
        ),
        s("client_pong_ignored", format!("{Q}PONG\r\nPING\r\n"), "PONG\r\n", false),
        s(
            "msg_with_reply",
            format!("{Q}SUB foo 1\r\nPUB foo bar 2\r\nhi\r\nPING\r\n"),
            "MSG foo 1 bar 2\r\nhi\r\nPONG\r\n",
            false,
        ),
        s(
            "payload_with_crlf_and_empty_payload",
            format!("{Q}SUB foo 1\r\nPUB foo 6\r\na\r\nb\r\n\r\nPUB foo 0\r\n\r\nPING\r\n"),
            "MSG foo 1 6\r\na\r\nb\r\n\r\nMSG foo 1 0\r\n\r\nPONG\r\n",
            false,
        ),
        s(
            "bare_lf_control_line",
            format!("{Q}SUB foo 1\r\nPUB foo 2\nhi\r\nPING\r\n"),
            "MSG foo 1 2\r\nhi\r\nPONG\r\n",
            false,
        ),
        s(
            "wildcards",
            format!(
                "{Q}SUB a.* 1\r\nSUB b.> 2\r\nSUB c.*.d 3\r\nSUB f* 4\r\n\
                 PUB a.x 1\r\n1\r\nPUB a.x.y 1\r\n2\r\nPUB b.x.y 1\r\n3\r\nPUB b 1\r\n4\r\n\
                 PUB c.x.d 1\r\n5\r\nPUB c.x 1\r\n6\r\nPUB foo 1\r\n7\r\nPING\r\n"
            ),
            "MSG a.x 1 1\r\n1\r\nMSG b.x.y 2 1\r\n3\r\nMSG c.x.d 3 1\r\n5\r\nPONG\r\n",
            false,
        ),
        s(
            "several_subscriptions_one_connection",
            format!("{Q}SUB foo 1\r\nSUB foo 2\r\nSUB > 3\r\nSUB * 4\r\nPUB foo 1\r\nx\r\nPING\r\n"),
            "MSG foo 1 1\r\nx\r\nMSG foo 2 1\r\nx\r\nMSG foo 3 1\r\nx\r\nMSG foo 4 1\r\nx\r\nPONG\r\n",
            false,
        ),
        s(
            "unsub",
            format!("{Q}SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1\r\nPUB foo 1\r\nb\r\nPING\r\n"),
            "MSG foo 1 1\r\na\r\nPONG\r\n",
            false,
        ),
        s(
            "auto_unsub",
            format!("{Q}SUB foo 1\r\nUNSUB 1 2\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\nPING\r\n"),
            "MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n",
            false,
        ),
        s("unsub_unknown_sid", format!("{Q}UNSUB 99\r\nPING\r\n"), "PONG\r\n", false),
        s(
            "unsub_unknown_sid_verbose",
            "CONNECT {\"verbose\":true}\r\nUNSUB 99\r\nPING\r\n",
            "+OK\r\n+OK\r\nPONG\r\n",
            false,
        ),
        s(
            "hpub_hmsg",
            format!("{QH}SUB foo 1\r\nHPUB foo 24 29\r\nNATS/1.0\r\nA: b\r\nC: d\r\n\r\nhello\r\nHPUB foo r 12 12\r\nNATS/1.0\r\n\r\n\r\nPING\r\n"),
            "HMSG foo 1 24 29\r\nNATS/1.0\r\nA: b\r\nC: d\r\n\r\nhello\r\nHMSG foo 1 r 12 12\r\nNATS/1.0\r\n\r\n\r\nPONG\r\n",
            false,
        ),
        s(
            "no_responders",
            "CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB r 9\r\nPUB nobody r 0\r\n\r\nPING\r\n",
            "HMSG r 9 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n",
            false,
        ),
        s(
            "no_responders_needs_reply_subject",
            "CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB r 9\r\nPUB nobody 0\r\n\r\nPING\r\n",
            "PONG\r\n",
            false,
        ),
        s(
            "no_responders_requires_headers",
            "CONNECT {\"verbose\":false,\"headers\":false,\"no_responders\":true}\r\nPING\r\n",
            "-ERR 'no responders requires headers support'\r\n",
            true,
        ),
        s(
            "echo_false",
            "CONNECT {\"verbose\":false,\"echo\":false}\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n",
            "PONG\r\n",
            false,
        ),
        s("invalid_subject", format!("{Q}SUB foo..bar 1\r\nPING\r\n"), "-ERR 'Invalid Subject'\r\nPONG\r\n", false),
        s(
            "invalid_publish_subject_pedantic_default",
            format!("{Q}PUB foo.* 1\r\nx\r\nPING\r\n"),
            "-ERR 'Invalid Publish Subject'\r\nPONG\r\n",
            false,
        ),
        s(
            "wildcard_publish_allowed_when_not_pedantic",
            "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB foo.* 1\r\nPUB foo.* 1\r\nx\r\nPING\r\n",
            "MSG foo.* 1 1\r\nx\r\nPONG\r\n",
            false,
        ),
        s("unknown_op", "FOO\r\n", "-ERR 'Unknown Protocol Operation'\r\n", true),
        s("unknown_op_after_connect", format!("{Q}BOGUS stuff\r\n"), "-ERR 'Unknown Protocol Operation'\r\n", true),
        s("sub_without_args", "SUB\r\n", "-ERR 'Unknown Protocol Operation'\r\n", true),
        s("payload_longer_than_size", "PUB foo 3\r\nabcdef\r\n", "-ERR 'Unknown Protocol Operation'\r\n", true),
        s("payload_missing_crlf", format!("{Q}PUB foo 2\r\nhi\nPING\r\n"), "-ERR 'Unknown Protocol Operation'\r\n", true),
        s("max_payload_violation", "PUB a 2000000\r\n", "-ERR 'Maximum Payload Violation'\r\n", true),
        s(
            "control_line_too_long",
            format!("PUB {long} 1\r\nx\r\n"),
            "-ERR 'maximum control line exceeded'\r\n",
            true,
        ),
        s("pub_missing_size_closes_silently", format!("{Q}PUB foo\r\n"), "", true),
        s("pub_bad_size_closes_silently", format!("{Q}PUB foo x\r\n"), "", true),
        s("bad_connect_json_closes_silently", "CONNECT {bad json}\r\nPING\r\n", "", true),
    ]
}

/// Runs one script on a fresh connection; returns (response, closed).
async fn run(port: u16, script: &Script) -> Result<(Vec<u8>, bool)> {
    let mut c = RawConn::connect(port).await?;
    c.send(script.send.as_bytes()).await?;
    if script.closes {
        return c.read_to_close(IO_TIMEOUT).await;
    }
    let pongs = script.expect.matches("PONG\r\n").count();
    let mut got = Vec::new();
    for _ in 0..pongs {
        match c.read_until(b"PONG\r\n", IO_TIMEOUT).await {
            Ok(chunk) => got.extend(chunk),
            Err(_) => {
                // Return what we have; the comparison shows the difference.
                let (rest, closed) = c.read_to_close(Duration::from_millis(100)).await?;
                got.extend(rest);
                return Ok((got, closed));
            }
        }
    }
    // Anything extra shortly after is a difference too.
    got.extend(c.read_for(Duration::from_millis(30)).await?);
    Ok((got, c.is_closed()))
}

fn describe(bytes: &[u8], closed: bool) -> String {
    format!(
        "{:?}{}",
        String::from_utf8_lossy(bytes),
        if closed { " + close" } else { "" }
    )
}

async fn run_all(bin: &Path, label: &str) -> Result<Vec<String>> {
    let server = TestServer::start_bin(bin, &[]).with_context(|| format!("starting {label}"))?;
    let mut failures = Vec::new();
    for script in scripts() {
        let (got, closed) = run(server.port(), &script)
            .await
            .with_context(|| format!("{label}: script {}", script.name))?;
        let ok = normalized_frames(&got) == normalized_frames(script.expect.as_bytes())
            && closed == script.closes;
        if !ok {
            failures.push(format!(
                "[{label}] {}:\n    sent     {:?}\n    expected {}\n    got      {}",
                script.name,
                script.send.chars().take(200).collect::<String>(),
                describe(script.expect.as_bytes(), script.closes),
                describe(&got, closed)
            ));
        }
    }
    Ok(failures)
}

#[tokio::test]
async fn raw_scripts_match_nats_server() -> Result<()> {
    let under_test = server_bin()?;
    let mut failures = run_all(&under_test, "server under test").await?;
    if reference_server_available() {
        failures.extend(run_all(Path::new(REFERENCE_SERVER), "reference nats-server").await?);
    } else {
        println!("note: {REFERENCE_SERVER} not installed; skipping the reference half of the differential test");
    }
    if !failures.is_empty() {
        anyhow::bail!(
            "{} differential script(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}
