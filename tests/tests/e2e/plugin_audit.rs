//! Auditing plugins: every decision is counted by outcome in `/metrics`, and every refusal
//! (an authorizer's deny, a transformer's drop or reject) is published on
//! `$SYS.PLUGIN.<plugin>.<OUTCOME>` for the system account — who, where and why, never the
//! payload. Natrium-only (nats-server has no plugins).

use anyhow::{ensure, Context as _, Result};
use async_nats::ConnectOptions;
use natrium_tests::{
    connect_with, http_get, is_nats_server, metric_value, next_msg, plugin_path, sync, RawConn,
    TestServer,
};
use serde_json::Value;

#[tokio::test]
async fn authorizer_denials_are_counted_and_published_for_audit() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let conf = format!(
        "accounts {{\n  SYS {{ users: [ {{user: sys, password: sys}} ] }}\n  A {{}}\n}}\nsystem_account: SYS\n\
         plugins {{ authz: {{ path: {:?}, role: authorizer, deadline: \"2s\" }} }}\n",
        plugin_path("authz")?.display().to_string()
    );
    let server = TestServer::with_config_and_args(&conf, &["-m", "-1"])?;
    let sys = connect_with(
        &server.url(),
        ConnectOptions::with_user_and_password("sys".into(), "sys".into()),
    )
    .await?;
    let mut audit = sys.subscribe("$SYS.PLUGIN.>").await?;
    sync(&sys).await?;

    // One allowed, one denied.
    let mut alice = RawConn::connect(server.port()).await?;
    alice
        .send("CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"secret\"}\r\nPING\r\n")
        .await?;
    alice.expect("PONG\r\n").await?;
    let mut mallory = RawConn::connect(server.port()).await?;
    mallory
        .send("CONNECT {\"verbose\":false,\"user\":\"mallory\",\"pass\":\"guess\"}\r\nPING\r\n")
        .await?;
    let (answer, _) = mallory.read_to_close(natrium_tests::IO_TIMEOUT).await?;
    ensure!(
        natrium_tests::find(&answer, b"Authorization Violation").is_some(),
        "mallory is refused: {:?}",
        String::from_utf8_lossy(&answer)
    );

    let event = next_msg(&mut audit, "the deny audit event").await?;
    ensure!(
        event.subject.as_str() == "$SYS.PLUGIN.authz.DENY",
        "{}",
        event.subject
    );
    let body: Value = serde_json::from_slice(&event.payload)?;
    ensure!(
        body["type"] == "io.natrium.plugin.v1.decision"
            && body["plugin"] == "authz"
            && body["role"] == "authorizer"
            && body["outcome"] == "deny"
            && body["reason"]
                .as_str()
                .is_some_and(|r| r.contains("unknown user"))
            && body["client"]["host"] == "127.0.0.1",
        "{body}"
    );
    ensure!(
        !event.payload.windows(5).any(|w| w == b"guess"),
        "the password never appears"
    );

    let metrics = http_get(server.monitor_port().context("monitor port")?, "/metrics")
        .await?
        .body;
    for (outcome, n) in [("allow", 1), ("deny", 1)] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("natrium_plugin_outcomes_total")
                    && l.contains("plugin=\"authz\"")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .with_context(|| format!("no {outcome} counter in /metrics:\n{metrics}"))?;
        ensure!(line.ends_with(&format!(" {n}")), "{line}");
    }

    // Call latency, as a Prometheus histogram.
    let count = metric_value(
        &metrics,
        "natrium_plugin_call_seconds_count",
        &["plugin=\"authz\""],
    )
    .with_context(|| format!("no latency histogram:\n{metrics}"))?;
    ensure!(count >= 2, "both authorizations were timed ({count})");
    ensure!(
        metrics.contains("natrium_plugin_call_seconds_bucket{") && metrics.contains("le=\"+Inf\""),
        "histogram buckets:\n{metrics}"
    );

    // The log says which build of the plugin is live.
    let logs = server.logs();
    let loaded = logs
        .lines()
        .find(|l| l.contains("Loaded plugin 'authz'"))
        .with_context(|| format!("no load line:\n{logs}"))?;
    let digest = loaded.rsplit("sha256 ").next().unwrap_or("");
    ensure!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{loaded}"
    );
    Ok(())
}

#[tokio::test]
async fn a_plugin_failing_on_every_message_does_not_flood_the_log() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let conf = format!(
        "plugins {{ loop: {{ path: {:?}, role: transformer, deadline: \"5ms\", on_failure: drop, subjects: [\"spin\"] }} }}\n",
        plugin_path("looper")?.display().to_string()
    );
    let server = TestServer::with_config_and_args(&conf, &["-m", "-1"])?;
    let mut c = RawConn::connect(server.port()).await?;
    let mut burst = String::from("CONNECT {\"verbose\":false}\r\n");
    for _ in 0..100 {
        burst.push_str("PUB spin 1\r\nx\r\n");
        burst.push_str("PING\r\n"); // one read batch per message: a call per message
    }
    c.send(burst).await?;
    for _ in 0..100 {
        c.read_until(b"PONG\r\n", std::time::Duration::from_secs(30))
            .await?;
    }
    let metrics = http_get(server.monitor_port().context("monitor port")?, "/metrics")
        .await?
        .body;
    let timeouts = metric_value(
        &metrics,
        "natrium_plugin_errors_total",
        &["kind=\"timeout\""],
    )
    .with_context(|| format!("no timeout counter:\n{metrics}"))?;
    ensure!(timeouts >= 50, "every failure is counted ({timeouts})");
    let lines = server
        .logs()
        .lines()
        .filter(|l| l.contains("plugin call failed"))
        .count();
    ensure!(
        lines <= 20,
        "{timeouts} failures logged {lines} lines; a few per second is enough"
    );
    Ok(())
}
