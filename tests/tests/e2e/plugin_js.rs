//! The JavaScript example plugin (`plugins/json-shaper-js`, built with componentize-js at the
//! versions its package-lock.json pins) in a running broker, driven with async-nats; and
//! `natrium plugin check` on it: a transformer that imports nothing but `natrium:plugin`.
//!
//! Natrium-only: skipped when the server under test is nats-server.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use async_nats::ConnectOptions;
use natrium_tests::{
    assert_no_msg, connect_with, next_msg, plugin_path, run_bin, sync, TestServer,
};
use serde_json::{json, Value};

use super::plugins::{cache_dir, skip, wasm, RELAXED_DEADLINE, SLOW_STARTUP};

#[test]
fn plugin_check_accepts_the_javascript_component() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let path = plugin_path("json-shaper")?.display().to_string();
    let d = tempfile::tempdir()?;
    let out = run_bin(
        &["plugin", "check", &path, "--world", "transformer", "--json"],
        d.path(),
        Duration::from_secs(120),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "check refused it: {text}");
    let report: Value = serde_json::from_str(&text).with_context(|| text.to_string())?;
    ensure!(
        report["loadable"] == true && report["worlds"] == json!(["transformer"]),
        "{report}"
    );
    // Every WASI feature of the JavaScript engine is disabled: no wasi:http, no WASI at all.
    let imports: Vec<&str> = report["imports"]
        .as_array()
        .context("imports")?
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    ensure!(
        imports
            .iter()
            .all(|i| i.starts_with("natrium:plugin/") && i.ends_with("@0.1.0")),
        "imports beyond natrium:plugin: {imports:?}"
    );
    Ok(())
}

#[tokio::test]
async fn json_shaper_javascript_component_reshapes_json_by_subject() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let conf = format!(
        r#"
plugin_cache_dir: {cache}
accounts {{
  SHOP: {{ users: [ {{ user: s, password: ps }}, {{ user: w, password: pw }} ] }}
}}
plugins {{
  shaper: {{
    path: {path}
    role: transformer
    subjects: ["orders.>", "metrics.>"]
    deadline: "{RELAXED_DEADLINE}"
    memory: 128MB
    config: {{ rules: [
      {{ subject: "orders.>", pick: [id, total, card], omit: [card], rename: {{ total: amount }},
         set: {{ source: natrium }}, stamp: received_at_ms, account: account, invalid: drop }}
      {{ subject: "metrics.*", omit: [debug] }}
    ] }}
  }}
}}
"#,
        cache = cache_dir(),
        path = wasm("json-shaper")?,
    );
    let t0 = Instant::now();
    let server = TestServer::with_config_args_and_timeout(&conf, &[], SLOW_STARTUP)?;
    println!(
        "server with the JavaScript component ready in {:?}",
        t0.elapsed()
    );
    let user =
        |u: &str, p: &str| ConnectOptions::with_user_and_password(u.to_string(), p.to_string());
    let watcher = connect_with(&server.url(), user("w", "pw")).await?;
    let mut orders = watcher.subscribe("orders.>").await?;
    let mut metrics = watcher.subscribe("metrics.>").await?;
    sync(&watcher).await?;
    let shop = connect_with(&server.url(), user("s", "ps")).await?;

    // An order: picked, the card removed, total renamed, constants, time and account added.
    let before = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    shop.publish(
        "orders.new",
        r#"{"id":7,"total":9.5,"card":"4111111111111111","note":"x"}"#.into(),
    )
    .await?;
    let m = next_msg(&mut orders, "a shaped order").await?;
    let doc: Value = serde_json::from_slice(&m.payload)
        .with_context(|| format!("{:?}", String::from_utf8_lossy(&m.payload)))?;
    let at = doc["received_at_ms"].as_u64().context("received_at_ms")?;
    ensure!(
        at + 1_000 >= before && at <= before + 60_000,
        "received_at_ms {at} is far from {before}"
    );
    ensure!(
        doc == json!({"id": 7, "amount": 9.5, "source": "natrium",
                      "received_at_ms": at, "account": "SHOP"}),
        "{doc}"
    );

    // Not a JSON object on orders.>: dropped (the next order is the next message seen).
    shop.publish("orders.bad", "not json".into()).await?;
    shop.publish("orders.next", r#"{"id":8}"#.into()).await?;
    let m = next_msg(&mut orders, "the order after the dropped one").await?;
    ensure!(m.subject.as_str() == "orders.next", "{}", m.subject);
    assert_no_msg(
        &mut orders,
        Duration::from_millis(100),
        "the dropped message",
    )
    .await?;

    // The second rule; and a payload it cannot parse passes unchanged (its `invalid` is pass).
    shop.publish("metrics.cpu", r#"{"v":0.5,"debug":"trace"}"#.into())
        .await?;
    let m = next_msg(&mut metrics, "a metric").await?;
    ensure!(
        serde_json::from_slice::<Value>(&m.payload)? == json!({"v": 0.5}),
        "{:?}",
        m.payload
    );
    shop.publish("metrics.raw", "cpu=0.5".into()).await?;
    let m = next_msg(&mut metrics, "a raw metric").await?;
    ensure!(m.payload == "cpu=0.5", "{:?}", m.payload);
    Ok(())
}
