//! HTTP monitoring endpoints (`-m -1`).

use anyhow::{ensure, Context, Result};
use natrium_tests::{connect_with, http_get, is_nats_server, sync, RawConn, TestServer};
use serde_json::Value;

fn has(v: &Value, keys: &[&str]) -> Result<()> {
    for k in keys {
        ensure!(v.get(k).is_some(), "missing field {k:?} in {v:#}");
    }
    Ok(())
}

#[tokio::test]
async fn varz_connz_subsz_healthz() -> Result<()> {
    let server = TestServer::start(&["-m", "-1"])?;
    let mport = server.monitor_port().context("no monitoring port logged")?;
    let raw = RawConn::connect(server.port()).await?;
    let server_id = raw.info()?["server_id"].clone();
    drop(raw);

    let client = connect_with(
        &server.url(),
        async_nats::ConnectOptions::new().name("monitor-test"),
    )
    .await?;
    let _sub = client.subscribe("mon.sub").await?;
    client.publish("mon.sub", "x".into()).await?;
    sync(&client).await?;

    let varz = http_get(mport, "/varz").await?;
    assert_eq!(varz.status, 200, "{}", varz.status_line);
    assert!(
        varz.status_line.starts_with("HTTP/1."),
        "{}",
        varz.status_line
    );
    assert_eq!(varz.header("Content-Type"), Some("application/json"));
    let v = varz.json()?;
    has(
        &v,
        &[
            "server_id",
            "server_name",
            "version",
            "proto",
            "host",
            "port",
            "max_connections",
            "ping_interval",
            "ping_max",
            "http_host",
            "http_port",
            "auth_timeout",
            "max_control_line",
            "max_payload",
            "max_pending",
            "tls_timeout",
            "write_deadline",
            "start",
            "now",
            "uptime",
            "mem",
            "cores",
            "cpu",
            "connections",
            "total_connections",
            "routes",
            "remotes",
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
            "slow_consumers",
            "subscriptions",
            "http_req_stats",
            "config_load_time",
        ],
    )?;
    assert_eq!(v["server_id"], server_id, "varz server_id matches INFO");
    assert_eq!(v["port"], serde_json::json!(server.port()));
    assert_eq!(v["max_payload"], serde_json::json!(1_048_576));
    assert_eq!(v["max_control_line"], serde_json::json!(4096));
    assert_eq!(v["proto"], serde_json::json!(1));
    ensure!(
        v["connections"].as_u64() == Some(1),
        "one client connected: {}",
        v["connections"]
    );
    ensure!(
        v["in_msgs"].as_u64().unwrap_or(0) >= 1,
        "in_msgs counts the publish: {}",
        v["in_msgs"]
    );
    ensure!(
        v["out_msgs"].as_u64().unwrap_or(0) >= 1,
        "out_msgs counts the delivery"
    );
    ensure!(v["subscriptions"].as_u64().unwrap_or(0) >= 1);

    let connz = http_get(mport, "/connz").await?;
    assert_eq!(connz.status, 200);
    let c = connz.json()?;
    has(
        &c,
        &[
            "server_id",
            "now",
            "num_connections",
            "total",
            "offset",
            "limit",
            "connections",
        ],
    )?;
    assert_eq!(c["server_id"], server_id);
    assert_eq!(c["num_connections"], serde_json::json!(1));
    let conns = c["connections"]
        .as_array()
        .context("connections is an array")?;
    assert_eq!(conns.len(), 1);
    let conn = &conns[0];
    has(
        conn,
        &[
            "cid",
            "ip",
            "port",
            "start",
            "last_activity",
            "uptime",
            "idle",
            "pending_bytes",
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
            "subscriptions",
            "name",
            "lang",
            "version",
        ],
    )?;
    assert_eq!(conn["ip"], serde_json::json!("127.0.0.1"));
    assert_eq!(conn["name"], serde_json::json!("monitor-test"));
    assert_eq!(conn["lang"], serde_json::json!("rust"));
    assert_eq!(conn["subscriptions"], serde_json::json!(1));

    let connz_subs = http_get(mport, "/connz?subs=1").await?.json()?;
    assert_eq!(
        connz_subs["connections"][0]["subscriptions_list"],
        serde_json::json!(["mon.sub"])
    );

    let subsz = http_get(mport, "/subsz").await?;
    assert_eq!(subsz.status, 200);
    let s = subsz.json()?;
    has(
        &s,
        &[
            "num_subscriptions",
            "num_cache",
            "num_inserts",
            "num_removes",
            "num_matches",
            "cache_hit_rate",
            "max_fanout",
            "avg_fanout",
        ],
    )?;
    ensure!(s["num_subscriptions"].as_u64().unwrap_or(0) >= 1, "{s}");

    let health = http_get(mport, "/healthz").await?;
    assert_eq!(health.status, 200);
    assert_eq!(health.header("Content-Type"), Some("application/json"));
    assert_eq!(health.json()?, serde_json::json!({"status": "ok"}));

    let missing = http_get(mport, "/definitely-not-here").await?;
    assert_eq!(missing.status, 404, "{}", missing.status_line);

    // http_req_stats counts requests per endpoint.
    let v2 = http_get(mport, "/varz").await?.json()?;
    ensure!(
        v2["http_req_stats"]["/varz"].as_u64().unwrap_or(0) >= 2,
        "http_req_stats: {}",
        v2["http_req_stats"]
    );
    Ok(())
}

#[tokio::test]
async fn metrics_endpoint_prometheus_text() -> Result<()> {
    if is_nats_server() {
        println!(
            "note: /metrics is natrium-only; skipped because the server under test is nats-server"
        );
        return Ok(());
    }
    let server = TestServer::start(&["-m", "-1"])?;
    let mport = server.monitor_port().context("no monitoring port logged")?;
    let client = natrium_tests::connect(&server.url()).await?;
    client.publish("metrics.x", "x".into()).await?;
    sync(&client).await?;
    let m = http_get(mport, "/metrics").await?;
    assert_eq!(m.status, 200, "{}", m.status_line);
    let ct = m.header("Content-Type").unwrap_or_default();
    ensure!(
        ct.starts_with("text/plain"),
        "Prometheus text content type, got {ct:?}"
    );
    ensure!(
        m.body.contains("# TYPE "),
        "Prometheus exposition format expected:\n{}",
        m.body
    );
    // Every non-comment line is `name{labels} value` with a numeric value.
    let mut samples = 0;
    for line in m
        .body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap_or_default();
        ensure!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
        samples += 1;
    }
    ensure!(samples > 0, "no samples in /metrics");
    Ok(())
}
