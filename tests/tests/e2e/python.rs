//! Compatibility with the official Python client (nats-py), driven by
//! tests/py/test_compat.py (core NATS) and tests/py/test_jetstream.py (the JetStream
//! stream API).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use natrium_tests::TestServer;

const SETUP_HINT: &str = "run the project's test script (.ci/run), which installs python3 and \
     nats-py (`pip install nats-py`), or set NATRIUM_SKIP_PY=1 to skip this test";

fn python_ready() -> Result<()> {
    let out = Command::new("python3")
        .args(["-c", "import nats, nats.errors"])
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) => bail!("python3 is not available ({e}); {SETUP_HINT}"),
        Ok(o) if !o.status.success() => bail!(
            "nats-py is not importable by python3 ({}); {SETUP_HINT}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
        ),
        Ok(_) => Ok(()),
    }
}

fn run_script(args: &[&str]) -> Result<std::process::Output> {
    run_named_script("test_compat.py", args)
}

fn run_named_script(name: &str, args: &[&str]) -> Result<std::process::Output> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py").join(name);
    let mut child = Command::new("python3")
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running python3 {}", script.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "python script {name} timed out; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn nats_py_client_compat() -> Result<()> {
    if std::env::var("NATRIUM_SKIP_PY").is_ok_and(|v| v == "1") {
        println!("note: NATRIUM_SKIP_PY=1, skipping the nats-py compatibility test");
        return Ok(());
    }
    python_ready()?;
    let server = TestServer::start(&[])?;
    let out = run_script(&[&server.url()])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "nats-py compat script failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
            out.status,
            server.logs()
        );
    }
    // Guard against a script that silently ran nothing.
    for check in [
        "pub_sub",
        "wildcards",
        "queue_group",
        "request_reply",
        "headers",
        "no_responders",
    ] {
        if !stdout.contains(&format!("ok   {check}")) {
            bail!("check {check} did not report ok:\n{stdout}\n{stderr}");
        }
    }

    // With user/password auth.
    let server = TestServer::start(&["--user", "py", "--pass", "thon"])?;
    let out = run_script(&[&server.url(), "--user", "py", "--password", "thon"])?;
    if !out.status.success() {
        bail!(
            "nats-py compat script with auth failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = run_script(&[&server.url(), "--user", "py", "--password", "wrong"])?;
    if out.status.success() {
        bail!("nats-py connected with a wrong password");
    }
    Ok(())
}

/// nats-py's JetStream stream API against a `-js -sd <dir>` server: add_stream, publish with
/// acks, de-duplication by `Nats-Msg-Id`, get_msg, delete_msg, purge_stream, stream_info,
/// delete_stream and the API errors it maps to exceptions; and the key-value API that needs no
/// consumers (create_key_value, put, get, update, create, delete), plain and with direct gets.
#[test]
fn nats_py_jetstream_compat() -> Result<()> {
    if std::env::var("NATRIUM_SKIP_PY").is_ok_and(|v| v == "1") {
        println!("note: NATRIUM_SKIP_PY=1, skipping the nats-py JetStream test");
        return Ok(());
    }
    python_ready()?;
    let store = tempfile::tempdir().context("creating the JetStream store dir")?;
    let sd = store.path().display().to_string();
    let server = TestServer::start(&["-js", "-sd", &sd])?;
    let out = run_named_script("test_jetstream.py", &[&server.url()])?;
    expect_checks(
        "test_jetstream.py",
        &out,
        &server,
        &[
            "stream_lifecycle",
            "publish_with_ack",
            "dedupe",
            "get_and_delete",
            "purge",
            "errors",
            "delete_stream",
            "kv_put_get",
        ],
    )
}

/// A plugin rejection (`on_failure: reject`) as nats-py sees it, driven by
/// tests/py/test_plugin_reject.py: the publisher stays connected; its error callback gets the
/// reason, a request gets a 403 status reply with it, and `js.publish` raises an APIError
/// with it.
#[test]
fn nats_py_plugin_rejections() -> Result<()> {
    if std::env::var("NATRIUM_SKIP_PY").is_ok_and(|v| v == "1") {
        println!("note: NATRIUM_SKIP_PY=1, skipping the nats-py plugin rejection test");
        return Ok(());
    }
    if natrium_tests::is_nats_server() {
        println!("note: Wasm plugins are natrium-only; skipped");
        return Ok(());
    }
    python_ready()?;
    let store = tempfile::tempdir().context("creating the JetStream store dir")?;
    let server = TestServer::with_config(&crate::plugins::reject_conf(store.path())?)?;
    let out = run_named_script("test_plugin_reject.py", &[&server.url()])?;
    expect_checks(
        "test_plugin_reject.py",
        &out,
        &server,
        &["error_callback", "request_status", "jetstream_error"],
    )
}

/// Fails unless the script succeeded and reported `ok   <check>` for every check (a guard
/// against a script that silently ran nothing).
fn expect_checks(
    name: &str,
    out: &std::process::Output,
    server: &TestServer,
    checks: &[&str],
) -> Result<()> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "nats-py script {name} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
            out.status,
            server.logs()
        );
    }
    for check in checks {
        if !stdout.contains(&format!("ok   {check}")) {
            bail!("check {check} did not report ok:\n{stdout}\n{stderr}");
        }
    }
    Ok(())
}

/// nats-py's key-value and object store APIs that need consumers, driven by
/// tests/py/test_kv.py: bucket config, revisions and their errors, delete/purge markers with
/// history and keys, watchers that report the current values then updates, bucket TTL, and a
/// 3 MiB object (25 chunks of 128 KiB) put, read back, listed, watched and deleted.
#[test]
fn nats_py_kv_and_object_store() -> Result<()> {
    if std::env::var("NATRIUM_SKIP_PY").is_ok_and(|v| v == "1") {
        println!("note: NATRIUM_SKIP_PY=1, skipping the nats-py key-value test");
        return Ok(());
    }
    python_ready()?;
    let store = tempfile::tempdir().context("creating the JetStream store dir")?;
    let sd = store.path().display().to_string();
    let server = TestServer::start(&["-js", "-sd", &sd])?;
    let out = run_named_script("test_kv.py", &[&server.url()])?;
    expect_checks(
        "test_kv.py",
        &out,
        &server,
        &[
            "kv_bucket_config",
            "kv_revisions",
            "kv_markers_history_keys",
            "kv_watch",
            "kv_ttl",
            "object_store",
        ],
    )
}

/// A callout service written in Python (nats-py + nkeys) admits and refuses nats-py clients
/// (natrium only: the reference nats-server 2.9 has no auth callout).
#[test]
fn nats_py_auth_callout_service_and_clients() -> Result<()> {
    if std::env::var("NATRIUM_SKIP_PY").is_ok_and(|v| v == "1") || natrium_tests::is_nats_server() {
        return Ok(());
    }
    python_ready()?;
    let issuer = nkeys::KeyPair::new_account();
    let seed = issuer.seed().map_err(|e| anyhow::anyhow!("{e}"))?;
    let server = TestServer::with_config(&format!(
        "accounts {{ AUTH {{ users: [ {{user: auth, password: pwd}} ] }}, B {{}} }}\n\
         authorization {{ auth_callout {{ issuer: {}, auth_users: [auth], account: AUTH }} }}",
        issuer.public_key()
    ))?;
    let out = run_named_script("test_auth_callout.py", &[&server.url(), &seed])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "nats-py auth callout script failed ({}):\nstdout:\n{stdout}\nstderr:\n{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            server.logs()
        );
    }
    for check in ["admitted", "refused"] {
        if !stdout.contains(&format!("ok   {check}")) {
            bail!("check {check} did not report ok:\n{stdout}");
        }
    }
    Ok(())
}
