//! Trust and capabilities of plugins (issue 14): a binding grants read-only lookups in a
//! JetStream key-value bucket of the call's own account (`kv: { bucket }`), shown with the
//! json-validator reading its schemas from a bucket; and, in operator mode, a binding may require
//! that the component is signed by the account's or the operator's NKey (`signed_by`).
//!
//! Natrium-only: skipped when the server under test is nats-server.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use async_nats::jetstream::{self, kv};
use async_nats::ConnectOptions;
use natrium_tests::{assert_no_msg, connect_with, next_msg, sync, within, TestServer};

use super::operator::{connect_creds, World};
use super::plugins::{cache_dir, run_conf, skip, wasm};
use super::reload::{rewrite_and_hup, RELOAD_FAILED};

const RELOADED: &str = "Reloaded server configuration";
const API_TIMEOUT: Duration = Duration::from_secs(10);

// ---- kv: schemas from a bucket ----------------------------------------------------------

/// Accounts A, B (JetStream, one user each) and C (no bucket); `plugins` is appended as is.
fn kv_conf(store: &Path, plugins: &str) -> String {
    format!(
        "jetstream {{ store_dir: {:?} }}\nplugin_cache_dir: {}\naccounts {{\n  \
         A: {{ jetstream: enabled, users: [{{user: a, password: a}}] }}\n  \
         B: {{ jetstream: enabled, users: [{{user: b, password: b}}] }}\n  \
         C: {{ jetstream: enabled, users: [{{user: c, password: c}}] }}\n}}\n{plugins}",
        store.display().to_string(),
        cache_dir()
    )
}

/// The json-validator built with KV lookups, bound to `orders.>` in `accounts`, reading its
/// schemas from `bucket` (`kv` omitted when `None`).
fn validator(accounts: &str, bucket: Option<&str>) -> Result<String> {
    let grant = bucket.map_or(String::new(), |b| format!(", kv: {{ bucket: {b} }}"));
    Ok(format!(
        "plugins {{ v: {{ path: {}, role: transformer, accounts: [{accounts}], \
         subjects: [\"orders.>\"], on_failure: drop{grant}, \
         config: {{ schemas_from_kv: true }} }} }}\n",
        wasm("json-validator-kv")?
    ))
}

async fn user(server: &TestServer, name: &str) -> Result<async_nats::Client> {
    connect_with(
        &server.url(),
        ConnectOptions::with_user_and_password(name.into(), name.into()),
    )
    .await
    .with_context(|| format!("connecting as {name}"))
}

async fn bucket(client: &async_nats::Client, name: &str) -> Result<kv::Store> {
    let js = jetstream::new(client.clone());
    within(
        API_TIMEOUT,
        "create kv",
        js.create_key_value(kv::Config {
            bucket: name.to_string(),
            ..Default::default()
        }),
    )
    .await?
    .context("create_key_value")
}

async fn put(store: &kv::Store, key: &str, value: &str) -> Result<()> {
    within(
        API_TIMEOUT,
        "kv put",
        store.put(key, value.to_string().into()),
    )
    .await?
    .context("kv put")?;
    Ok(())
}

/// Publishes `rejected` then `accepted` on `subject` and checks that only `accepted` arrives.
async fn decides(
    client: &async_nats::Client,
    sub: &mut async_nats::Subscriber,
    subject: &str,
    rejected: &str,
    accepted: &str,
    what: &str,
) -> Result<()> {
    client
        .publish(subject.to_string(), rejected.to_string().into())
        .await?;
    client
        .publish(subject.to_string(), accepted.to_string().into())
        .await?;
    let m = next_msg(sub, what).await?;
    ensure!(
        m.payload.as_ref() == accepted.as_bytes(),
        "{what}: expected {accepted} to pass and {rejected} to be dropped, got {:?}",
        String::from_utf8_lossy(&m.payload)
    );
    Ok(())
}

#[tokio::test]
async fn the_validator_reads_schemas_from_its_own_accounts_bucket_and_follows_changes() -> Result<()>
{
    if skip() {
        return Ok(());
    }
    let store = tempfile::tempdir()?;
    // Buckets are runtime state: create them first, then bind the plugin (a reload).
    let server = TestServer::with_config(&kv_conf(store.path(), ""))?;
    let (a, b) = (user(&server, "a").await?, user(&server, "b").await?);
    let (ka, kb) = (bucket(&a, "schemas").await?, bucket(&b, "schemas").await?);
    put(&ka, "orders.new", r#"{"type":"object","required":["id"]}"#).await?;
    // B's bucket of the same name says something else: A's messages must never see it.
    put(&kb, "orders.new", r#"{"type":"object","required":["sku"]}"#).await?;

    rewrite_and_hup(
        &server,
        &kv_conf(store.path(), &validator("A, B", Some("schemas"))?),
        RELOADED,
    )
    .await?;
    let mut sa = a.subscribe("orders.>").await?;
    let mut sb = b.subscribe("orders.>").await?;
    sync(&a).await?;
    sync(&b).await?;

    decides(
        &a,
        &mut sa,
        "orders.new",
        r#"{"sku":1}"#,
        r#"{"id":1}"#,
        "A's schema",
    )
    .await?;
    decides(
        &b,
        &mut sb,
        "orders.new",
        r#"{"id":1}"#,
        r#"{"sku":1}"#,
        "B's schema",
    )
    .await?;
    // A subject with no key (and no configured rule) passes.
    a.publish("orders.other", "not json".into()).await?;
    let m = next_msg(&mut sa, "orders.other").await?;
    ensure!(m.subject.as_str() == "orders.other");

    // Change A's schema through the KV API: the next message meets the new one, no restart.
    put(&ka, "orders.new", r#"{"type":"object","required":["qty"]}"#).await?;
    decides(
        &a,
        &mut sa,
        "orders.new",
        r#"{"id":1}"#,
        r#"{"qty":1}"#,
        "A's new schema",
    )
    .await?;
    decides(
        &b,
        &mut sb,
        "orders.new",
        r#"{"qty":1}"#,
        r#"{"sku":2}"#,
        "B's, unchanged",
    )
    .await?;

    // Deleted: the key is gone, everything passes again.
    within(API_TIMEOUT, "kv delete", ka.delete("orders.new")).await??;
    a.publish("orders.new", "anything".into()).await?;
    let m = next_msg(&mut sa, "after delete").await?;
    ensure!(m.payload.as_ref() == b"anything");
    // A stored schema that does not compile fails closed.
    put(&ka, "orders.new", r#"{"pattern":"x"}"#).await?;
    a.publish("orders.new", "{}".into()).await?;
    assert_no_msg(
        &mut sa,
        Duration::from_millis(300),
        "a broken stored schema drops",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_missing_bucket_or_a_missing_grant_refuses_the_binding() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let store = tempfile::tempdir()?;
    let server = TestServer::with_config(&kv_conf(store.path(), ""))?;
    let a = user(&server, "a").await?;
    bucket(&a, "schemas").await?;

    // C has no bucket "schemas": the reload is refused and says where it looked.
    let missing = kv_conf(store.path(), &validator("A, C", Some("schemas"))?);
    rewrite_and_hup(&server, &missing, RELOAD_FAILED).await?;
    let logs = server.logs();
    ensure!(
        logs.contains("no key-value bucket \"schemas\" in account \"C\""),
        "the reload error must name the bucket and the account:\n{logs}"
    );
    // A component that imports kv, bound without a grant.
    let ungranted = kv_conf(store.path(), &validator("A", None)?);
    rewrite_and_hup(&server, &ungranted, RELOAD_FAILED).await?;
    let logs = server.logs();
    ensure!(
        logs.contains("imports natrium:plugin/kv@0.1.0 (key-value lookups), which this binding does not grant"),
        "the reload error must say the grant is missing:\n{logs}"
    );

    // At start-up too (the store now holds A's bucket, C still has none).
    drop(a);
    drop(server);
    let d = tempfile::tempdir()?;
    let (ok, text) = run_conf(d.path(), &missing, &["-a", "127.0.0.1", "-p", "-1"])?;
    ensure!(!ok, "start-up must fail:\n{text}");
    ensure!(
        text.contains("no key-value bucket \"schemas\" in account \"C\""),
        "start-up must say why:\n{text}"
    );
    let (ok, text) = run_conf(d.path(), &ungranted, &["-t"])?;
    ensure!(!ok, "-t must refuse a kv import without a grant:\n{text}");
    ensure!(text.contains("does not grant"), "{text}");
    let granted = kv_conf(store.path(), &validator("A", Some("schemas"))?);
    let (ok, text) = run_conf(d.path(), &granted, &["-t"])?;
    ensure!(ok, "-t accepts a granted bucket that exists:\n{text}");
    Ok(())
}

// ---- signed_by: signatures checked at start-up, -t and reload ------------------------------

/// The plain json-validator copied to `dir/name` (a signature sits next to it).
fn component(dir: &Path, name: &str, from: &str) -> Result<String> {
    let src = natrium_tests::plugin_path(from)?;
    let dest = dir.join(name);
    std::fs::copy(&src, &dest).with_context(|| format!("copying {}", src.display()))?;
    Ok(dest.display().to_string())
}

fn seed_file(dir: &Path, name: &str, kp: &nkeys::KeyPair) -> Result<String> {
    let path = dir.join(name);
    let seed = kp.seed().map_err(|e| anyhow::anyhow!("seed: {e}"))?;
    std::fs::write(&path, format!("{seed}\n"))?;
    Ok(path.display().to_string())
}

/// `natrium plugin sign FILE --seed SEED [extra]`; returns its output.
fn sign(dir: &Path, file: &str, seed: &str, extra: &[&str]) -> Result<String> {
    let mut args = vec!["plugin", "sign", file, "--seed", seed];
    args.extend(extra);
    let out = natrium_tests::run_bin(&args, dir, Duration::from_secs(60))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.success(), "natrium plugin sign failed:\n{text}");
    Ok(text)
}

/// Operator mode (`base`: the operator and account JWTs, made once so that a reload keeps
/// them), the json-validator bound to account A's `orders.>`, requiring `signed_by`.
fn signed_conf(base: &str, w: &World, path: &str, signed_by: &str, extra: &str) -> Result<String> {
    Ok(format!(
        "{}plugin_cache_dir: {}\nplugins {{ v: {{ path: {path:?}, role: transformer, \
         accounts: [{}], subjects: [\"orders.>\"], on_failure: drop, signed_by: {signed_by}{extra}, \
         config: {{ schema: {{ type: object, required: [id] }} }} }} }}\n",
        base,
        cache_dir(),
        w.a.public_key()
    ))
}

async fn validates(server: &TestServer, creds: &str, what: &str) -> Result<()> {
    let c = connect_creds(server, creds).await?;
    let mut sub = c.subscribe("orders.>").await?;
    sync(&c).await?;
    decides(
        &c,
        &mut sub,
        "orders.new",
        r#"{"sku":1}"#,
        r#"{"id":1}"#,
        what,
    )
    .await
}

#[tokio::test]
async fn only_a_component_signed_by_the_required_key_loads() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let w = World::new()?;
    let d = tempfile::tempdir()?;
    let dir = d.path();
    let account_seed = seed_file(dir, "a.nk", &w.a)?;
    let operator_seed = seed_file(dir, "op.nk", &w.op)?;
    let stranger_seed = seed_file(dir, "x.nk", &nkeys::KeyPair::new_account())?;
    let base = w.memory_config()?;

    let good = component(dir, "good.wasm", "json-validator")?;
    let text = sign(dir, &good, &account_seed, &[])?;
    ensure!(text.contains(&w.a.public_key()), "{text}");
    let unsigned = component(dir, "unsigned.wasm", "json-validator")?;
    let stranger = component(dir, "stranger.wasm", "json-validator")?;
    sign(dir, &stranger, &stranger_seed, &[])?;
    // Another build under the good build's signature.
    let tampered = component(dir, "tampered.wasm", "json-validator-kv")?;
    std::fs::copy(format!("{good}.sig"), format!("{tampered}.sig"))?;

    let check = |conf: String| run_conf(dir, &conf, &["-t"]);
    let (ok, text) = check(signed_conf(&base, &w, &good, "account", "")?)?;
    ensure!(ok, "a component signed by the account passes -t:\n{text}");
    for (path, why) in [
        (&unsigned, "cannot be read"),
        (&stranger, "does not verify"),
        (&tampered, "does not verify"),
    ] {
        let conf = signed_conf(&base, &w, path, "account", "")?;
        let (ok, text) = check(conf.clone())?;
        ensure!(
            !ok && text.contains(why),
            "-t must refuse {path} ({why}):\n{text}"
        );
        let (ok, text) = run_conf(dir, &conf, &["-a", "127.0.0.1", "-p", "-1"])?;
        ensure!(
            !ok && text.contains(why),
            "start-up must refuse {path}:\n{text}"
        );
    }
    // The operator's key, with the signature file named.
    let op_sig = dir.join("good.op.sig").display().to_string();
    sign(dir, &good, &operator_seed, &["--out", &op_sig])?;
    let by_operator = signed_conf(
        &base,
        &w,
        &good,
        "operator",
        &format!(", signature: {op_sig:?}"),
    )?;
    let (ok, text) = check(by_operator)?;
    ensure!(ok, "a component signed by the operator passes -t:\n{text}");
    let (ok, text) = check(signed_conf(&base, &w, &good, "operator", "")?)?;
    ensure!(
        !ok && text.contains("does not verify"),
        "the account's signature is not the operator's:\n{text}"
    );
    // An explicit key.
    let (ok, text) = check(signed_conf(
        &base,
        &w,
        &good,
        &format!("{:?}", w.a.public_key()),
        "",
    )?)?;
    ensure!(ok, "signed_by: <account key> passes -t:\n{text}");

    // Not in operator mode, `account` cannot be checked.
    let plain = format!(
        "plugin_cache_dir: {}\nplugins {{ v: {{ path: {good:?}, role: transformer, accounts: [A], \
         signed_by: account, config: {{ schema: true }} }} }}\n",
        cache_dir()
    );
    let (ok, text) = check(plain)?;
    ensure!(!ok && text.contains("needs operator mode"), "{text}");

    // Running with the signed build; a reload to a wrongly signed one is refused and the
    // loaded validator keeps deciding.
    let server = TestServer::with_config(&signed_conf(&base, &w, &good, "account", "")?)?;
    let logs = server.logs();
    ensure!(
        logs.contains(&format!("(signed by {})", w.a.public_key())),
        "the load line says who signed:\n{logs}"
    );
    let creds = w.user(&w.a, "alice", |_| {})?;
    validates(&server, &creds, "signed validator").await?;
    rewrite_and_hup(
        &server,
        &signed_conf(&base, &w, &stranger, "account", "")?,
        RELOAD_FAILED,
    )
    .await?;
    ensure!(
        server.logs().contains("does not verify"),
        "{}",
        server.logs()
    );
    validates(&server, &creds, "after the refused reload").await?;
    Ok(())
}
