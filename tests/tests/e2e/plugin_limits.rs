//! What plugins may hold at once: a flood of CONNECTs to an authorizer that uses its whole
//! deadline gets no more instances than `max_instances`, so the broker's memory stays put;
//! the calls that find no instance fail closed, and the flood's end leaves the plugin usable.
//! And what they may hand back: no replacement over the publisher's max_payload is delivered,
//! and a reason of megabytes becomes a short `-ERR` and bounded log lines.
//! Natrium-only (nats-server has no plugins).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use natrium_tests::{
    assert_no_msg, connect, find, http_get, is_nats_server, metric_value, next_msg, plugin_path,
    rss_kib, sync, RawConn, TestServer,
};

use super::plugins::{cache_dir, raw_login, raw_pub_ok, raw_pub_rejected, skip, wasm};

/// A CONNECT as `user`; returns what the server answered before closing (or the PONG).
async fn connect_as(port: u16, user: &str) -> Result<Vec<u8>> {
    let mut c = RawConn::connect(port).await?;
    c.send(format!(
        "CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"secret\"}}\r\nPING\r\n"
    ))
    .await?;
    Ok(c.read_until(b"\r\n", Duration::from_secs(10))
        .await
        .unwrap_or_default())
}

/// Floods a server running the test authorizer (with `limits` in its binding and `extra`
/// at the top level) with 300 concurrent CONNECTs of a user whose authorization holds 8 MiB
/// of plugin memory until its deadline. Returns how much the broker's RSS grew at the peak.
async fn flood_growth_kib(limits: &str, extra: &str) -> Result<u64> {
    let conf = format!(
        "{extra}\nplugins {{ authz: {{ path: {:?}, role: authorizer, deadline: \"300ms\", memory: 16MB, {limits} }} }}\naccounts {{ A: {{}} }}\n",
        plugin_path("authz")?.display().to_string()
    );
    let server = TestServer::with_config_and_args(&conf, &["-m", "-1"])?;
    let pid = server.pid().context("pid")?;
    let mport = server.monitor_port().context("monitor port")?;
    let port = server.port();
    let before = rss_kib(pid)?;

    let flood: Vec<_> = (0..300)
        .map(|_| tokio::spawn(async move { connect_as(port, "hog").await }))
        .collect();
    let mut peak = before;
    let started = Instant::now();
    while flood.iter().any(|t| !t.is_finished()) && started.elapsed() < Duration::from_secs(30) {
        peak = peak.max(rss_kib(pid)?);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut refused = 0;
    for t in flood {
        if find(&t.await??, b"Authorization Violation").is_some() {
            refused += 1;
        }
    }
    ensure!(
        refused == 300,
        "every hogging authorization fails closed ({refused} of 300)"
    );

    let text = http_get(mport, "/metrics").await?.body;
    let busy = text
        .lines()
        .find(|l| l.contains("natrium_plugin_errors_total") && l.contains("kind=\"busy\""))
        .with_context(|| format!("no busy counter in /metrics:\n{text}"))?;
    ensure!(
        !busy.ends_with(" 0"),
        "calls beyond the cap are counted as busy: {busy}"
    );

    // The plugin still serves once the flood is over.
    let answer = connect_as(port, "alice").await?;
    ensure!(
        answer == b"PONG\r\n",
        "alice after the flood: {:?}",
        String::from_utf8_lossy(&answer)
    );
    let grown = peak.saturating_sub(before);
    println!("broker RSS {before} KiB before the flood, peak {peak} KiB (+{grown} KiB)");
    Ok(grown)
}

#[tokio::test]
async fn a_connect_flood_gets_no_more_authorizer_instances_than_max_instances() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let grown = flood_growth_kib("max_instances: 2", "").await?;
    ensure!(
        grown < 48 * 1024,
        "the flood grew the broker by {grown} KiB (cap: 2 instances of 8 MiB)"
    );
    Ok(())
}

#[tokio::test]
async fn the_plugin_memory_budget_bounds_all_instances_together() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    // Room for three 16 MiB instances, whatever max_instances says.
    let grown = flood_growth_kib("max_instances: 1000", "plugin_memory_budget: 48MB").await?;
    ensure!(
        grown < 64 * 1024,
        "the flood grew the broker by {grown} KiB (budget: 48 MiB)"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_batch_gets_its_failure_policy_once_not_a_retry_per_message() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let conf = format!(
        "plugins {{ loop: {{ path: {:?}, role: transformer, deadline: \"20ms\", on_failure: drop, subjects: [\"spin\"] }} }}\n",
        plugin_path("looper")?.display().to_string()
    );
    let server = TestServer::with_config_and_args(&conf, &["-m", "-1"])?;
    let mut c = RawConn::connect(server.port()).await?;
    c.send("CONNECT {\"verbose\":false}\r\nPING\r\n").await?;
    c.expect("PONG\r\n").await?;
    // 256 messages in one write: they reach the plugin as one or a few batches.
    let burst: String = (0..256).map(|_| "PUB spin 1\r\nx\r\n").collect::<String>() + "PING\r\n";
    let started = Instant::now();
    c.send(burst).await?;
    c.read_until(b"PONG\r\n", Duration::from_secs(30)).await?;
    let took = started.elapsed();
    let metrics = http_get(server.monitor_port().context("monitor port")?, "/metrics")
        .await?
        .body;
    let calls = metric_value(&metrics, "natrium_plugin_calls_total", &["plugin=\"loop\""])
        .with_context(|| format!("no call counter:\n{metrics}"))?;
    ensure!(
        calls <= 16,
        "256 messages cost {calls} calls ({took:?}): a timed-out batch must not be retried per message"
    );
    Ok(())
}

/// One tenant's plugin that burns its whole deadline on every batch must not slow another
/// tenant's request/reply down (issue 11: 0.4 ms → 1.9 s before).
#[tokio::test]
async fn another_accounts_requests_stay_fast_while_a_plugin_is_flooded() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let conf = format!(
        "accounts {{ A: {{ users: [{{user: a, password: a}}] }}\n B: {{ users: [{{user: b, password: b}}] }} }}\n\
         plugins {{ loop: {{ path: {:?}, role: transformer, deadline: \"20ms\", on_failure: drop, accounts: [A], subjects: [\"spin\"] }} }}\n",
        plugin_path("looper")?.display().to_string()
    );
    let server = TestServer::with_config(&conf)?;
    let b = natrium_tests::connect_with(
        &server.url(),
        async_nats::ConnectOptions::with_user_and_password("b".into(), "b".into()),
    )
    .await?;
    let mut svc = b.subscribe("echo").await?;
    let responder = b.clone();
    tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(m) = svc.next().await {
            if let Some(r) = m.reply {
                let _ = responder.publish(r, m.payload).await;
            }
        }
    });
    natrium_tests::sync(&b).await?;
    async fn p99(b: &async_nats::Client, n: usize) -> Result<Duration> {
        let mut t = Vec::with_capacity(n);
        for _ in 0..n {
            let s = Instant::now();
            b.request("echo", "x".into()).await?;
            t.push(s.elapsed());
        }
        t.sort();
        Ok(t[n * 99 / 100])
    }
    let idle = p99(&b, 300).await?;
    let port = server.port();
    let flood = tokio::spawn(async move {
        let mut c = RawConn::connect(port).await?;
        c.send("CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"a\"}\r\n")
            .await?;
        let burst: String = (0..256).map(|_| "PUB spin 1\r\nx\r\n").collect();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            c.send(&burst).await?;
            c.send("PING\r\n").await?;
            c.read_until(b"PONG\r\n", Duration::from_secs(30)).await?;
        }
        anyhow::Ok(())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let busy = p99(&b, 300).await?;
    flood.await??;
    println!("B request/reply p99: idle {idle:?}, while A floods a looping plugin {busy:?}");
    // Measured alone: within 3x idle (0.47 ms idle, 0.34 ms flooded). Alongside the rest of
    // the suite on 2 cores the scheduler adds milliseconds, so the bound here is 3x idle but
    // at least 20 ms — still far below the 52 ms a flood cost with plugin work on the worker
    // threads, and the 1.9 s before failed batches stopped being retried per message.
    let bound = (idle * 3).max(Duration::from_millis(20));
    ensure!(
        busy <= bound,
        "B's p99 {busy:?} while A floods, idle {idle:?}"
    );
    Ok(())
}

#[tokio::test]
async fn oversized_replacements_and_huge_reasons_are_held_to_limits() -> Result<()> {
    if skip() {
        return Ok(());
    }
    // The trapper replaces `big.*` with 8 MiB and drops `longreason.*` with a 4 MiB reason;
    // bound once with on_failure reject and once with drop (deadlines long enough to build
    // 8 MiB in a debug build: the output is what is refused here, not the time).
    let conf = format!(
        r#"
max_payload: 1MB
plugin_cache_dir: {cache}
plugins {{
  tr_reject: {{ path: {trapper}, role: transformer, on_failure: reject, deadline: "5s",
                subjects: ["big.reject", "longreason.reject"] }}
  tr_drop: {{ path: {trapper}, role: transformer, on_failure: drop, deadline: "5s",
              subjects: ["big.drop", "longreason.drop"] }}
}}
"#,
        cache = cache_dir(),
        trapper = wasm("trapper")?,
    );
    // With debug logging: the drop reasons are logged there.
    let server = TestServer::with_config_and_args(&conf, &["-m", "-1", "-D"])?;
    let mport = server.monitor_port().context("monitor port")?;
    let sub_client = connect(&server.url()).await?;
    let mut big = sub_client.subscribe("big.>").await?;
    let mut long = sub_client.subscribe("longreason.>").await?;
    let mut fine = sub_client.subscribe("fine").await?;
    sync(&sub_client).await?;

    let mut p = raw_login(&server, "").await?;
    let too_big = raw_pub_rejected(&mut p, "big.reject", "hi").await?;
    ensure!(
        too_big.contains("replacement of 8388608 bytes exceeds max_payload 1048576"),
        "{too_big}"
    );
    let long_reason = raw_pub_rejected(&mut p, "longreason.reject", "hi").await?;
    ensure!(
        long_reason.len() < 400 && long_reason.contains("why why") && long_reason.contains('…'),
        "a 4 MiB reason must become a short -ERR, got {} bytes: {}",
        long_reason.len(),
        &long_reason[..long_reason.len().min(500)]
    );
    raw_pub_ok(&mut p, "big.drop", "hi").await?;
    raw_pub_ok(&mut p, "longreason.drop", "hi").await?;
    raw_pub_ok(&mut p, "fine", "still here").await?;

    // The subscriber got none of them, and its connection works.
    let m = next_msg(&mut fine, "fine, after the refused outputs").await?;
    ensure!(m.payload == "still here");
    assert_no_msg(
        &mut big,
        Duration::from_millis(300),
        "big.> (8 MiB replacements)",
    )
    .await?;
    assert_no_msg(
        &mut long,
        Duration::from_millis(100),
        "longreason.> (dropped)",
    )
    .await?;

    // Each oversized replacement counts as a malformed result of its binding.
    let metrics = http_get(mport, "/metrics").await?.body;
    for plugin in ["tr_reject", "tr_drop"] {
        let malformed = metric_value(
            &metrics,
            "natrium_plugin_errors_total",
            &[&format!("plugin=\"{plugin}\""), "kind=\"malformed\""],
        );
        ensure!(
            malformed == Some(1),
            "{plugin}: malformed {malformed:?}\n{metrics}"
        );
    }
    // No log line carries the megabytes.
    let logs = server.logs();
    let longest = logs.lines().map(str::len).max().unwrap_or(0);
    ensure!(longest < 8192, "a log line of {longest} bytes");
    Ok(())
}
