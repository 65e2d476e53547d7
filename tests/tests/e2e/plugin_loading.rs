//! Loading plugins safely: the compiled-plugin cache cannot be poisoned (issue 11, item 8),
//! `natrium -t` loads and checks every plugin (item 6), and a second authorizer is a clear
//! error at start-up, under `-t` and on reload (item 5), and a plugin's `init` refuses its
//! configuration at load, not at the first call (item 6).
//!
//! Natrium-only: skipped when the server under test is nats-server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use async_nats::ConnectOptions;
use natrium_tests::{connect, connect_with, next_msg, sync, TestServer};

use super::plugins::{cache_dir, expect_auth_violation, jwt_conf, run_conf, skip, token, wasm};
use super::reload::{rewrite_and_hup, RELOAD_FAILED};

fn quoted(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// The compiled artifacts in `dir`.
fn artifacts(dir: &Path) -> Result<BTreeSet<PathBuf>> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("cwasm"))
        .collect())
}

/// The JWT authorizer's configuration with its cache in `cache` and an account `A` (where the
/// `authz` test guest puts alice).
fn jwt_conf_in(cache: &Path) -> Result<String> {
    Ok(jwt_conf()?
        .replace(&cache_dir(), &quoted(cache))
        .replace("GLOBEX: {}", "GLOBEX: {}\n  A: {}"))
}

/// The same configuration with the binding pointing at the `authz` guest (alice/secret only):
/// a server whose cache held the JWT authorizer's code under `authz`'s name would run it with
/// this very configuration.
fn authz_conf_in(cache: &Path) -> Result<String> {
    Ok(jwt_conf_in(cache)?.replace(&wasm("jwt-authorizer")?, &wasm("authz")?))
}

pub(super) async fn alice_admitted(server: &TestServer, what: &str) -> Result<()> {
    let c = connect_with(
        &server.url(),
        ConnectOptions::with_user_and_password("alice".into(), "secret".into()),
    )
    .await
    .with_context(|| format!("{what}: alice/secret must be admitted by the authz plugin"))?;
    // alice may only publish to orders.>, so a PING round trip rather than `sync`.
    c.flush()
        .await
        .with_context(|| format!("{what}: alice's connection must stay up"))?;
    Ok(())
}

async fn attacker_refused(server: &TestServer, what: &str) -> Result<()> {
    expect_auth_violation(
        server,
        ConnectOptions::with_token(token("acme", "mallory", 3600)?),
        &format!("{what}: a JWT (valid for the JWT authorizer) must be refused by authz"),
    )
    .await
}

// ---- item 8: the cache ----------------------------------------------------------------------

#[tokio::test]
async fn a_swapped_or_forged_cache_artifact_is_never_loaded() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let cache = d.path().join("cache");

    // authz compiled and cached.
    let mut server = TestServer::with_config(&authz_conf_in(&cache)?)?;
    alice_admitted(&server, "first start").await?;
    attacker_refused(&server, "first start").await?;
    let authz_files = artifacts(&cache)?;
    ensure!(authz_files.len() == 1, "one artifact: {authz_files:?}");
    let authz_art = authz_files
        .iter()
        .next()
        .cloned()
        .context("authz artifact")?;

    // The JWT authorizer compiled into the same cache; it admits the token.
    {
        let jwt = TestServer::with_config(&jwt_conf_in(&cache)?)?;
        let c = connect_with(
            &jwt.url(),
            ConnectOptions::with_token(token("acme", "mallory", 3600)?),
        )
        .await
        .context("the JWT authorizer admits its token")?;
        sync(&c).await?;
    }
    let all = artifacts(&cache)?;
    let jwt_art = all
        .difference(&authz_files)
        .next()
        .cloned()
        .context("the JWT authorizer's artifact")?;

    // Swap: the JWT authorizer's compiled code under authz's name. The restarted server must
    // notice, recompile authz, and decide as authz.
    std::fs::copy(&jwt_art, &authz_art)?;
    let mark = server.log_mark();
    server.restart()?;
    alice_admitted(&server, "after the swap").await?;
    attacker_refused(&server, "after the swap").await?;
    let logs = server.logs();
    let after = logs.get(mark..).unwrap_or_default();
    ensure!(
        after.contains("ignoring cached component"),
        "the swapped artifact must be reported; logs:\n{after}"
    );

    // Forged: the JWT authorizer's artifact with a made-up tag (no key).
    let mut forged = std::fs::read(&jwt_art)?;
    let n = forged.len();
    for b in forged.iter_mut().skip(n.saturating_sub(32)) {
        *b ^= 0x5a;
    }
    std::fs::write(&authz_art, &forged)?;
    server.restart()?;
    alice_admitted(&server, "after the forgery").await?;
    attacker_refused(&server, "after the forgery").await?;

    // Recompiled over: the next start uses the cache again, silently.
    let mark = server.log_mark();
    server.restart()?;
    alice_admitted(&server, "from the repaired cache").await?;
    let logs = server.logs();
    let after = logs.get(mark..).unwrap_or_default();
    ensure!(
        !after.contains("ignoring cached component"),
        "the rewritten artifact must verify; logs:\n{after}"
    );
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn a_cache_directory_others_can_write_is_not_used() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let cache = d.path().join("cache");
    // Pre-created, world-writable: as another user would leave it in a shared temp dir.
    std::fs::create_dir(&cache)?;
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777))?;
    let server = TestServer::with_config(&authz_conf_in(&cache)?)?;
    alice_admitted(&server, "with a refused cache").await?;
    attacker_refused(&server, "with a refused cache").await?;
    let logs = server.logs();
    ensure!(
        logs.contains("not using the plugin cache") && logs.contains("writable by group or others"),
        "the refusal must be logged; logs:\n{logs}"
    );
    ensure!(
        artifacts(&cache)?.is_empty(),
        "nothing may be written to a refused cache"
    );
    Ok(())
}

// ---- item 6: natrium -t ---------------------------------------------------------------------

/// Runs `natrium -t -c <conf>` in `dir`; returns (success, stdout + stderr).
fn check_config(dir: &Path, conf: &str) -> Result<(bool, String)> {
    run_conf(dir, conf, &["-t"])
}

fn one_plugin(name: &str, path: &str, role: &str) -> String {
    format!(
        "plugin_cache_dir: {}\nplugins {{ {name}: {{ path: {path}, role: {role} }} }}\n",
        cache_dir()
    )
}

#[tokio::test]
async fn check_mode_loads_and_checks_every_plugin() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;

    let (ok, text) = check_config(d.path(), &one_plugin("good", &wasm("authz")?, "authorizer"))?;
    ensure!(ok, "a good plugin passes -t:\n{text}");
    ensure!(text.contains("is valid"), "{text}");

    let missing = quoted(&d.path().join("nope.wasm"));
    let (ok, text) = check_config(d.path(), &one_plugin("gone", &missing, "transformer"))?;
    ensure!(!ok, "a missing plugin file must fail -t:\n{text}");
    ensure!(
        text.contains("'gone'") && text.contains("cannot read") && !text.contains("is valid"),
        "the error must name the plugin and say why:\n{text}"
    );

    let junk = d.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm this is not a component")?;
    let (ok, text) = check_config(d.path(), &one_plugin("junk", &quoted(&junk), "mapper"))?;
    ensure!(!ok, "a file that is not a component must fail -t:\n{text}");
    ensure!(
        text.contains("'junk'") && text.contains("not a valid component"),
        "{text}"
    );

    let (ok, text) = check_config(
        d.path(),
        &one_plugin("wrongworld", &wasm("wrong-world")?, "transformer"),
    )?;
    ensure!(!ok, "a component of the wrong world must fail -t:\n{text}");
    ensure!(
        text.contains("'wrongworld'") && text.contains("missing export"),
        "{text}"
    );

    // Only regular files: a FIFO would hang start-up, /dev/zero would be read forever.
    let fifo = d.path().join("fifo.wasm");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    ensure!(made.success(), "mkfifo failed");
    for (name, path) in [
        ("fifo", quoted(&fifo)),
        ("zero", "\"/dev/zero\"".to_string()),
    ] {
        let started = std::time::Instant::now();
        let (ok, text) = check_config(d.path(), &one_plugin(name, &path, "transformer"))?;
        ensure!(
            !ok && text.contains("not a regular file") && started.elapsed().as_secs() < 10,
            "{name}: a plugin path that is not a regular file must fail at once:\n{text}"
        );
    }
    Ok(())
}

// ---- item 5: one authorizer -----------------------------------------------------------------

fn two_authorizers() -> Result<String> {
    Ok(jwt_conf()?.replace(
        "plugins {",
        &format!(
            "plugins {{\n  second: {{ path: {}, role: authorizer }}",
            wasm("authz")?
        ),
    ))
}

fn names_both(text: &str) -> bool {
    text.contains("'jwt'") && text.contains("'second'") && text.contains("one authorizer")
}

#[tokio::test]
async fn a_second_authorizer_is_refused_at_startup_check_and_reload() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let conf = two_authorizers()?;

    let (ok, text) = check_config(d.path(), &conf)?;
    ensure!(!ok, "-t must refuse two authorizers:\n{text}");
    ensure!(names_both(&text), "-t must name both:\n{text}");

    let (ok, text) = run_conf(d.path(), &conf, &["-a", "127.0.0.1", "-p", "-1"])?;
    ensure!(!ok, "start-up must fail:\n{text}");
    ensure!(names_both(&text), "start-up must name both:\n{text}");
    ensure!(!text.contains("Server is ready"), "{text}");

    // Reload into two authorizers: refused, the running one keeps deciding.
    let server = TestServer::with_config(&jwt_conf()?)?;
    rewrite_and_hup(&server, &conf, RELOAD_FAILED).await?;
    let logs = server.logs();
    ensure!(
        names_both(&logs),
        "the reload error must name both:\n{logs}"
    );
    let c = connect_with(
        &server.url(),
        ConnectOptions::with_token(token("acme", "alice", 3600)?),
    )
    .await
    .context("the JWT authorizer still decides after the refused reload")?;
    sync(&c).await?;
    Ok(())
}

// ---- item 6: init(config) -------------------------------------------------------------------

/// The json-validator (which exports `lifecycle.init`) bound to `v.>` with `schema`.
fn validator_conf(schema: &str) -> Result<String> {
    Ok(format!(
        // A generous deadline: init runs under it, and this is about refusals, not time
        // (a loaded machine once took longer than the default to instantiate).
        "plugin_cache_dir: {}\nplugins {{ v: {{ path: {}, role: transformer, subjects: [\"v.>\"], \
         on_failure: drop, deadline: \"2s\", config: {{ schema: {schema} }} }} }}\n",
        cache_dir(),
        wasm("json-validator")?
    ))
}

fn names_the_refusal(text: &str) -> bool {
    text.contains("'v'")
        && text.contains("rejected its configuration")
        && text.contains("unknown type \"nope\"")
}

#[tokio::test]
async fn a_plugin_init_refuses_its_configuration_at_check_startup_and_reload() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let good = validator_conf(r#"{ type: "object", required: ["id"] }"#)?;
    let bad = validator_conf(r#"{ type: "nope" }"#)?;

    let (ok, text) = check_config(d.path(), &good)?;
    ensure!(ok, "a good configuration passes -t:\n{text}");
    let (ok, text) = check_config(d.path(), &bad)?;
    ensure!(!ok, "-t must run the plugin's init:\n{text}");
    ensure!(names_the_refusal(&text), "-t must say why:\n{text}");

    let (ok, text) = run_conf(d.path(), &bad, &["-a", "127.0.0.1", "-p", "-1"])?;
    ensure!(!ok, "start-up must fail:\n{text}");
    ensure!(names_the_refusal(&text), "start-up must say why:\n{text}");
    ensure!(!text.contains("Server is ready"), "{text}");

    // Reload into the bad configuration: refused, the running validator keeps its schema.
    let server = TestServer::with_config(&good)?;
    rewrite_and_hup(&server, &bad, RELOAD_FAILED).await?;
    let logs = server.logs();
    ensure!(
        names_the_refusal(&logs),
        "the reload error must say why:\n{logs}"
    );
    let c = connect(&server.url()).await?;
    let mut sub = c.subscribe("v.>").await?;
    sync(&c).await?;
    c.publish("v.bad", r#"{"no_id":1}"#.into()).await?;
    c.publish("v.good", r#"{"id":1}"#.into()).await?;
    let m = next_msg(&mut sub, "v.good").await?;
    ensure!(
        m.subject.as_str() == "v.good",
        "the old schema must still drop v.bad; got {}",
        m.subject
    );
    Ok(())
}
