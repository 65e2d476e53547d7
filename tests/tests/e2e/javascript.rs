//! JetStream through the official JavaScript client (nats.js v3: `@nats-io/transport-node`,
//! `@nats-io/jetstream`, `@nats-io/kv`, `@nats-io/obj`), driven by tests/js/jetstream.mjs:
//! streams, acks with de-duplication and expected sequences, message get/delete, purge, and
//! key-value put/get/create/delete; tests/js/kv.mjs and tests/js/consumers.mjs: key-value
//! watchers and the consumer API (pull, ordered, push); tests/js/obj.mjs: the object store;
//! and tests/js/plugin_reject.mjs: a publish a plugin rejects keeps nats.js connected and
//! tells it why.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use natrium_tests::TestServer;

const SETUP_HINT: &str = "run the project's test script (.ci/run), which installs the client \
     with `npm ci --prefix tests/js`, or set NATRIUM_SKIP_JS=1 to skip this test";

fn js_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Runs `script` (in tests/js) with node against `server`; it must print OK.
fn run_node(script: &str, server: &TestServer) -> Result<()> {
    let mut child = Command::new("node")
        .arg(js_dir().join(script))
        .arg(format!("127.0.0.1:{}", server.port()))
        .current_dir(js_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running node (is Node.js installed?); {SETUP_HINT}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stdout.contains("OK") {
        bail!(
            "{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
            out.status,
            server.logs()
        );
    }
    Ok(())
}

/// Whether the JavaScript client tests run here (or why not).
fn js_available() -> Result<bool> {
    if std::env::var("NATRIUM_SKIP_JS").is_ok_and(|v| v == "1") {
        println!("note: NATRIUM_SKIP_JS=1, skipping the JavaScript client test");
        return Ok(false);
    }
    if !js_dir().join("node_modules/@nats-io/jetstream").is_dir() {
        bail!("the JavaScript client is not installed in tests/js; {SETUP_HINT}");
    }
    Ok(true)
}

#[test]
fn nats_js_jetstream_compat() -> Result<()> {
    if !js_available()? {
        return Ok(());
    }
    let store = tempfile::tempdir()?;
    let sd = store.path().display().to_string();
    let server = TestServer::start(&["-js", "-sd", &sd])?;
    run_node("jetstream.mjs", &server)
}

/// A publish a plugin rejects, through nats.js: still connected, told why, fast.
#[test]
fn nats_js_plugin_rejections() -> Result<()> {
    if natrium_tests::is_nats_server() || !js_available()? {
        return Ok(());
    }
    let store = tempfile::tempdir()?;
    let server = TestServer::with_config(&crate::plugins::reject_conf(store.path())?)?;
    run_node("plugin_reject.mjs", &server)
}

/// nats.js key-value history, keys and watchers (current values, then updates; updates-only),
/// revisions, create/update errors, markers and bucket TTL (tests/js/kv.mjs).
#[test]
fn nats_js_kv_watch_history_keys() -> Result<()> {
    if !js_available()? {
        return Ok(());
    }
    let store = tempfile::tempdir()?;
    let sd = store.path().display().to_string();
    let server = TestServer::start(&["-js", "-sd", &sd])?;
    run_node("kv.mjs", &server)
}

/// nats.js consumers: a durable pull consumer's fetch/next/consume with ack, nak and term,
/// an ordered consumer and a durable push consumer (tests/js/consumers.mjs).
#[test]
fn nats_js_consumers() -> Result<()> {
    if !js_available()? {
        return Ok(());
    }
    let store = tempfile::tempdir()?;
    let sd = store.path().display().to_string();
    let server = TestServer::start(&["-js", "-sd", &sd])?;
    run_node("consumers.mjs", &server)
}

/// nats.js object store: a chunked object over max_payload, info, list, a link, a watcher and
/// delete (tests/js/obj.mjs).
#[test]
fn nats_js_object_store() -> Result<()> {
    if !js_available()? {
        return Ok(());
    }
    let store = tempfile::tempdir()?;
    let sd = store.path().display().to_string();
    let server = TestServer::start(&["-js", "-sd", &sd])?;
    run_node("obj.mjs", &server)
}
