//! Operator mode (decentralized JWT auth): `operator`, `resolver: MEMORY` with
//! `resolver_preload`, the full directory resolver, `.creds` clients, bad JWTs, claims updates
//! and revocation on live connections. The JWTs are made here (base64url + ed25519 via the
//! `nkeys` crate), independently of natrium's own JWT code.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use async_nats::{ConnectErrorKind, ConnectOptions};
use bytes::Bytes;
use data_encoding::BASE64URL_NOPAD;
use natrium_tests::jwt::{creds, now, sign};
use natrium_tests::{connect_with, next_msg, sync, within, RawConn, TestServer, IO_TIMEOUT};
use nkeys::KeyPair;
use serde_json::{json, Value};

fn operator_jwt(op: &KeyPair, system_account: Option<&str>) -> Result<String> {
    let mut nats = json!({"type": "operator", "version": 2});
    if let Some(s) = system_account {
        nats["system_account"] = json!(s);
    }
    sign(
        op,
        json!({"sub": op.public_key(), "name": "OP", "nats": nats}),
    )
}

fn account_claims(acc: &KeyPair, name: &str) -> Value {
    json!({
        "sub": acc.public_key(),
        "name": name,
        "nats": {
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                       "wildcards": true, "conn": -1, "leaf": -1},
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account",
            "version": 2
        }
    })
}

fn account_jwt(op: &KeyPair, acc: &KeyPair, name: &str) -> Result<String> {
    sign(op, account_claims(acc, name))
}

fn user_claims(user: &KeyPair, name: &str) -> Value {
    json!({
        "sub": user.public_key(),
        "name": name,
        "nats": {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                 "type": "user", "version": 2}
    })
}

/// An operator with a system account and two tenant accounts.
pub(super) struct World {
    pub(super) op: KeyPair,
    sys: KeyPair,
    pub(super) a: KeyPair,
    b: KeyPair,
    dir: tempfile::TempDir,
}

impl World {
    pub(super) fn new() -> Result<Self> {
        Ok(World {
            op: KeyPair::new_operator(),
            sys: KeyPair::new_account(),
            a: KeyPair::new_account(),
            b: KeyPair::new_account(),
            dir: tempfile::tempdir()?,
        })
    }

    fn operator_file(&self) -> Result<String> {
        let path = self.dir.path().join("op.jwt");
        std::fs::write(&path, operator_jwt(&self.op, None)?)?;
        Ok(path.display().to_string())
    }

    /// A user of `acc` with a `.creds` file; `edit` adjusts the claims before signing.
    pub(super) fn user(
        &self,
        acc: &KeyPair,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Result<String> {
        let kp = KeyPair::new_user();
        let mut c = user_claims(&kp, name);
        edit(&mut c);
        let jwt = sign(acc, c)?;
        let path = self.dir.path().join(format!("{name}.creds"));
        std::fs::write(&path, creds(&jwt, &kp)?)?;
        Ok(path.display().to_string())
    }

    /// User key pair and JWT, for raw-protocol tests.
    fn raw_user(&self, acc: &KeyPair, edit: impl FnOnce(&mut Value)) -> Result<(KeyPair, String)> {
        let kp = KeyPair::new_user();
        let mut c = user_claims(&kp, "raw");
        edit(&mut c);
        let jwt = sign(acc, c)?;
        Ok((kp, jwt))
    }

    pub(super) fn memory_config(&self) -> Result<String> {
        Ok(format!(
            "operator: \"{}\"\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: \"{}\"\n  {}: \"{}\"\n  {}: \"{}\"\n}}\n",
            self.operator_file()?,
            self.sys.public_key(),
            self.sys.public_key(),
            account_jwt(&self.op, &self.sys, "SYS")?,
            self.a.public_key(),
            account_jwt(&self.op, &self.a, "A")?,
            self.b.public_key(),
            account_jwt(&self.op, &self.b, "B")?,
        ))
    }

    /// A full directory resolver pre-filled with the three accounts (`a_claims` for A).
    fn dir_config(&self, a_claims: Value) -> Result<String> {
        let jwts = self.dir.path().join("jwt");
        std::fs::create_dir_all(&jwts)?;
        for (kp, jwt) in [
            (&self.sys, account_jwt(&self.op, &self.sys, "SYS")?),
            (&self.a, sign(&self.op, a_claims)?),
            (&self.b, account_jwt(&self.op, &self.b, "B")?),
        ] {
            std::fs::write(jwts.join(format!("{}.jwt", kp.public_key())), jwt)?;
        }
        Ok(format!(
            "operator: \"{}\"\nsystem_account: {}\nresolver {{\n  type: full\n  dir: \"{}\"\n  allow_delete: false\n}}\n",
            self.operator_file()?,
            self.sys.public_key(),
            jwts.display()
        ))
    }
}

pub(super) async fn connect_creds(server: &TestServer, creds: &str) -> Result<async_nats::Client> {
    let opts = ConnectOptions::with_credentials_file(creds)
        .await
        .with_context(|| format!("reading {creds}"))?;
    connect_with(&server.url(), opts).await
}

async fn expect_refused(server: &TestServer, creds: &str, what: &str) -> Result<()> {
    let opts = ConnectOptions::with_credentials_file(creds)
        .await?
        .connection_timeout(Duration::from_secs(5));
    match within(Duration::from_secs(10), what, opts.connect(server.url())).await? {
        Ok(_) => bail!("{what}: connection unexpectedly succeeded"),
        Err(e) if e.kind() == ConnectErrorKind::AuthorizationViolation => Ok(()),
        Err(e) => bail!(
            "{what}: expected an authorization violation, got {:?}: {e}",
            e.kind()
        ),
    }
}

/// Raw protocol: INFO has a nonce; CONNECT with the JWT and the nonce signed by `kp`.
async fn raw_connect(server: &TestServer, kp: &KeyPair, jwt: &str) -> Result<RawConn> {
    let mut c = RawConn::connect(server.port()).await?;
    let info = c.info()?;
    assert_eq!(info["auth_required"], json!(true), "INFO: {}", c.info_line);
    let nonce = info["nonce"]
        .as_str()
        .context("INFO has no nonce")?
        .to_string();
    let sig = kp
        .sign(nonce.as_bytes())
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
    let connect = json!({
        "verbose": false, "pedantic": false, "jwt": jwt,
        "sig": BASE64URL_NOPAD.encode(&sig), "protocol": 1, "headers": true
    });
    c.send(format!("CONNECT {connect}\r\nPING\r\n")).await?;
    Ok(c)
}

async fn raw_refused(server: &TestServer, kp: &KeyPair, jwt: &str, what: &str) -> Result<()> {
    let mut c = raw_connect(server, kp, jwt).await?;
    let (got, closed) = c.read_to_close(IO_TIMEOUT).await?;
    let got = String::from_utf8_lossy(&got);
    if got != "-ERR 'Authorization Violation'\r\n" || !closed {
        bail!("{what}: expected an authorization violation and a close, got {got:?} (closed: {closed})");
    }
    Ok(())
}

/// Next message on `sub` that is not a `sync` round trip (`_INBOX.` subjects).
async fn next_app_msg(sub: &mut async_nats::Subscriber, what: &str) -> Result<async_nats::Message> {
    loop {
        let m = next_msg(sub, what).await?;
        if !m.subject.starts_with("_INBOX.") {
            return Ok(m);
        }
    }
}

/// Nothing but `sync` round trips arrives on `sub` for `quiet`.
async fn no_app_msg(sub: &mut async_nats::Subscriber, quiet: Duration, what: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        match tokio::time::timeout(left, futures::StreamExt::next(sub)).await {
            Err(_) => return Ok(()),
            Ok(Some(m)) if m.subject.starts_with("_INBOX.") => {}
            Ok(m) => bail!("{what}: unexpected {m:?}"),
        }
    }
}

#[tokio::test]
async fn creds_clients_land_in_their_accounts_and_accounts_are_isolated() -> Result<()> {
    let w = World::new()?;
    let server = TestServer::with_config(&w.memory_config()?)?;
    let a1 = connect_creds(&server, &w.user(&w.a, "a1", |_| {})?).await?;
    let a2 = connect_creds(&server, &w.user(&w.a, "a2", |_| {})?).await?;
    let b1 = connect_creds(&server, &w.user(&w.b, "b1", |_| {})?).await?;

    let mut a_all = a2.subscribe(">").await?;
    let mut b_all = b1.subscribe(">").await?;
    sync(&a2).await?;
    sync(&b1).await?;
    b1.publish("orders.new", "from-b".into()).await?;
    a1.publish("orders.new", "from-a".into()).await?;
    sync(&a1).await?;
    sync(&b1).await?;
    let m = next_app_msg(&mut a_all, "message within account A").await?;
    assert_eq!(m.payload, Bytes::from("from-a"));
    let m = next_app_msg(&mut b_all, "message within account B").await?;
    assert_eq!(m.payload, Bytes::from("from-b"));
    no_app_msg(
        &mut a_all,
        Duration::from_millis(300),
        "B message leaking into A",
    )
    .await?;
    no_app_msg(
        &mut b_all,
        Duration::from_millis(300),
        "A message leaking into B",
    )
    .await?;

    // The INFO of an operator-mode server carries a nonce even before any user is known.
    let c = RawConn::connect(server.port()).await?;
    assert!(c.info()?["nonce"].is_string(), "INFO: {}", c.info_line);
    Ok(())
}

#[tokio::test]
async fn user_jwt_permissions_apply() -> Result<()> {
    let w = World::new()?;
    let server = TestServer::with_config(&w.memory_config()?)?;
    let limited = w.user(&w.a, "limited", |c| {
        c["nats"]["pub"] = json!({"allow": ["allowed.>", "_INBOX.>"]});
    })?;
    let client = connect_creds(&server, &limited).await?;
    let watcher = connect_creds(&server, &w.user(&w.a, "watcher", |_| {})?).await?;
    let mut all = watcher.subscribe(">").await?;
    sync(&watcher).await?;
    client.publish("denied.x", "no".into()).await?;
    client.publish("allowed.x", "yes".into()).await?;
    sync(&client).await?;
    let m = next_app_msg(&mut all, "permitted publish").await?;
    assert_eq!(m.subject.as_str(), "allowed.x");
    no_app_msg(&mut all, Duration::from_millis(300), "denied publish").await?;
    Ok(())
}

#[tokio::test]
async fn bad_user_jwts_are_refused() -> Result<()> {
    let w = World::new()?;
    let server = TestServer::with_config(&w.memory_config()?)?;

    let expired = w.user(&w.a, "expired", |c| {
        c["iat"] = json!(now() - 100);
        c["exp"] = json!(now() - 10);
    })?;
    expect_refused(&server, &expired, "expired user JWT").await?;
    let later = w.user(&w.a, "later", |c| c["nbf"] = json!(now() + 3600))?;
    expect_refused(&server, &later, "not-yet-valid user JWT").await?;
    // Signed by an account the resolver does not know.
    let stranger = KeyPair::new_account();
    let unknown = w.user(&stranger, "unknown", |_| {})?;
    expect_refused(&server, &unknown, "user of an unknown account").await?;
    // Claims to belong to A but signed by a key that is not A's.
    let a_key = w.a.public_key();
    let wrong = w.user(&stranger, "wrong", |c| {
        c["nats"]["issuer_account"] = json!(a_key)
    })?;
    expect_refused(&server, &wrong, "user signed by a wrong issuer").await?;

    // Tampered: the claims changed after signing.
    let (kp, jwt) = w.raw_user(&w.a, |_| {})?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&BASE64URL_NOPAD.decode(parts[1].as_bytes())?)?;
    claims["name"] = json!("admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        BASE64URL_NOPAD.encode(&serde_json::to_vec(&claims)?),
        parts[2]
    );
    raw_refused(&server, &kp, &tampered, "tampered user JWT").await?;
    // Right JWT, nonce signed by another key.
    raw_refused(
        &server,
        &KeyPair::new_user(),
        &jwt,
        "nonce signed by another key",
    )
    .await?;
    // Not a JWT at all.
    raw_refused(&server, &kp, "not.a.jwt", "garbage JWT").await?;

    // The good one still works, and the server is unaffected.
    let mut c = raw_connect(&server, &kp, &jwt).await?;
    c.expect("PONG\r\n").await?;
    Ok(())
}

#[tokio::test]
async fn expired_authorization_closes_the_connection() -> Result<()> {
    let w = World::new()?;
    let server = TestServer::with_config(&w.memory_config()?)?;
    let (kp, jwt) = w.raw_user(&w.a, |c| c["exp"] = json!(now() + 2))?;
    let mut c = raw_connect(&server, &kp, &jwt).await?;
    c.expect("PONG\r\n").await?;
    let (got, closed) = c.read_to_close(Duration::from_secs(6)).await?;
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.contains("-ERR 'User Authentication Expired'"),
        "got {got:?}"
    );
    assert!(closed);
    Ok(())
}

/// Sends an account JWT update as a system-account user and returns the JSON reply.
async fn push_update(sys: &async_nats::Client, subject: String, jwt: String) -> Result<Value> {
    let reply = within(
        Duration::from_secs(5),
        "claims update reply",
        sys.request(subject, jwt.into()),
    )
    .await?
    .context("claims update request")?;
    Ok(serde_json::from_slice(&reply.payload)?)
}

#[tokio::test]
async fn dir_resolver_update_revokes_live_connections_and_persists() -> Result<()> {
    let w = World::new()?;
    // One user of A is revoked from the start.
    let revoked_kp = KeyPair::new_user();
    let mut revoked_claims = user_claims(&revoked_kp, "revoked");
    revoked_claims["iat"] = json!(now() - 60);
    let revoked_jwt = sign(&w.a, revoked_claims)?;
    let mut a_claims = account_claims(&w.a, "A");
    a_claims["iat"] = json!(now() - 30);
    a_claims["nats"]["revocations"] = json!({ revoked_kp.public_key(): now() - 30 });
    let mut server = TestServer::with_config(&w.dir_config(a_claims)?)?;

    raw_refused(
        &server,
        &revoked_kp,
        &revoked_jwt,
        "user revoked in the account JWT",
    )
    .await?;

    // A live user of A, then revoked by an update pushed by a system user.
    let (victim, victim_jwt) = w.raw_user(&w.a, |c| c["iat"] = json!(now() - 5))?;
    let mut live = raw_connect(&server, &victim, &victim_jwt).await?;
    live.expect("PONG\r\n").await?;
    let bystander = connect_creds(&server, &w.user(&w.a, "bystander", |_| {})?).await?;
    let sys = connect_creds(&server, &w.user(&w.sys, "sys", |_| {})?).await?;

    let mut updated = account_claims(&w.a, "A");
    updated["nats"]["revocations"] = json!({ victim.public_key(): now() });
    let updated_jwt = sign(&w.op, updated)?;
    let resp = push_update(
        &sys,
        format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", w.a.public_key()),
        updated_jwt.clone(),
    )
    .await?;
    assert_eq!(resp["data"]["code"], json!(200), "reply: {resp}");
    assert_eq!(
        resp["data"]["account"],
        json!(w.a.public_key()),
        "reply: {resp}"
    );
    assert_eq!(
        resp["data"]["message"],
        json!("jwt updated"),
        "reply: {resp}"
    );

    let (got, closed) = live.read_to_close(Duration::from_secs(5)).await?;
    let got = String::from_utf8_lossy(&got);
    assert!(closed, "the revoked connection must be closed; got {got:?}");
    assert!(
        got.contains("-ERR 'User Authentication Revoked'"),
        "got {got:?}"
    );
    // Others stay connected.
    sync(&bystander).await?;
    raw_refused(&server, &victim, &victim_jwt, "revoked user reconnecting").await?;

    // An update not signed by the operator is refused. (nats-server 2.9 stores it anyway and
    // only fails to apply it; natrium refuses to store it.)
    if !natrium_tests::is_nats_server() {
        let forged = sign(&KeyPair::new_operator(), account_claims(&w.a, "A"))?;
        let resp = push_update(&sys, "$SYS.REQ.CLAIMS.UPDATE".into(), forged).await?;
        assert!(resp["error"].is_object(), "reply: {resp}");
        assert!(
            resp.get("data").is_none() || resp["data"].is_null(),
            "reply: {resp}"
        );
    }

    // Lookup returns the stored JWT.
    let reply = within(
        Duration::from_secs(5),
        "claims lookup",
        sys.request(
            format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", w.a.public_key()),
            "".into(),
        ),
    )
    .await??;
    assert_eq!(reply.payload, Bytes::from(updated_jwt.clone()));

    // The directory has the update, and it survives a restart.
    let stored = std::fs::read_to_string(
        w.dir
            .path()
            .join("jwt")
            .join(format!("{}.jwt", w.a.public_key())),
    )?;
    assert_eq!(stored.trim(), updated_jwt);
    drop(bystander);
    drop(sys);
    server.restart()?;
    raw_refused(
        &server,
        &victim,
        &victim_jwt,
        "revoked user after a restart",
    )
    .await?;
    let ok = connect_creds(&server, &w.user(&w.a, "after", |_| {})?).await?;
    sync(&ok).await?;
    Ok(())
}

#[tokio::test]
async fn claims_update_by_non_system_user_is_just_a_message() -> Result<()> {
    let w = World::new()?;
    let server = TestServer::with_config(&w.memory_config()?)?;
    let a = connect_creds(&server, &w.user(&w.a, "a", |_| {})?).await?;
    let mut sub = a.subscribe("$SYS.REQ.CLAIMS.UPDATE").await?;
    sync(&a).await?;
    let mut evil = account_claims(&w.a, "A");
    evil["nats"]["revocations"] = json!({"*": now() + 10});
    a.publish("$SYS.REQ.CLAIMS.UPDATE", sign(&w.op, evil)?.into())
        .await?;
    next_msg(&mut sub, "plain message in account A").await?;
    // Nothing was revoked.
    let again = connect_creds(&server, &w.user(&w.a, "again", |_| {})?).await?;
    sync(&again).await?;
    Ok(())
}

#[test]
fn operator_config_errors() -> Result<()> {
    let w = World::new()?;
    let op = w.operator_file()?;
    let mut failures = Vec::new();
    for (conf, needle) in [
        // nats-server falls back to the operator's (empty) account server URL and fails on it.
        (format!("operator: \"{op}\"\n"), ""),
        (
            format!("operator: \"{op}\"\nresolver: MEMORY\naccounts {{ A {{}} }}\n"),
            "Accounts",
        ),
        (
            "operator: \"/nonexistent/op.jwt\"\nresolver: MEMORY\n".to_string(),
            "operator",
        ),
        (format!("operator: \"{op}\"\nresolver: FOO\n"), "resolver"),
        (
            format!("operator: \"{op}\"\nresolver {{ type: full }}\n"),
            "dir",
        ),
        (
            format!("operator: \"{op}\"\nresolver: MEMORY\nresolver_preload: \"x\"\n"),
            "preload",
        ),
    ] {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bad.conf");
        std::fs::write(&path, &conf)?;
        // nats-server checks some of these only when starting (not with `-t`).
        let out = natrium_tests::run_bin(
            &[
                "-c",
                &path.display().to_string(),
                "-a",
                "127.0.0.1",
                "-p",
                "-1",
            ],
            dir.path(),
            Duration::from_secs(10),
        )?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() || !text.contains(needle) || text.contains("Server is ready") {
            failures.push(format!(
                "config {conf:?}: expected a failure mentioning {needle:?}, got ({}) {text}",
                out.status
            ));
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

#[test]
fn nats_py_connects_with_a_creds_file() -> Result<()> {
    if std::env::var("NATRIUM_SKIP_PY").is_ok_and(|v| v == "1") {
        println!("note: NATRIUM_SKIP_PY=1, skipping the nats-py creds test");
        return Ok(());
    }
    let w = World::new()?;
    let server = TestServer::with_config(&w.memory_config()?)?;
    let creds = w.user(&w.a, "py", |_| {})?;
    let script = r#"
import asyncio, sys
import nats

async def main(url, creds):
    nc = await nats.connect(url, user_credentials=creds, allow_reconnect=False,
                            connect_timeout=5, max_reconnect_attempts=0)
    sub = await nc.subscribe("py.check")
    await nc.publish("py.check", b"hi")
    msg = await sub.next_msg(timeout=5)
    assert msg.data == b"hi"
    await nc.close()
    print("ok creds")

asyncio.run(main(sys.argv[1], sys.argv[2]))
"#;
    let out = run_python(script, &[&server.url(), &creds])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("ok creds") {
        bail!(
            "nats-py with user_credentials failed:\n{stdout}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.logs()
        );
    }
    Ok(())
}

fn run_python(script: &str, args: &[&str]) -> Result<std::process::Output> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("script.py");
    std::fs::write(&path, script)?;
    let child = Command::new("python3")
        .arg(Path::new(&path))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running python3 (nats-py is installed by scripts/test)")?;
    Ok(child.wait_with_output()?)
}

#[tokio::test]
async fn account_jwt_limits_are_enforced() -> Result<()> {
    let w = World::new()?;
    let mut a_claims = account_claims(&w.a, "A");
    a_claims["nats"]["limits"]["conn"] = json!(1);
    a_claims["nats"]["limits"]["subs"] = json!(1);
    a_claims["nats"]["limits"]["payload"] = json!(8);
    let server = TestServer::with_config(&w.dir_config(a_claims)?)?;

    let (kp, jwt) = w.raw_user(&w.a, |_| {})?;
    let mut first = raw_connect(&server, &kp, &jwt).await?;
    // The account's max_payload comes in an INFO (after PONG from nats-server).
    first.read_until(b"PONG\r\n", IO_TIMEOUT).await?;
    let info =
        String::from_utf8_lossy(&first.read_for(Duration::from_millis(200)).await?).into_owned();
    if !info.is_empty() && !info.contains("\"max_payload\":8") {
        bail!("expected an INFO with max_payload 8, got {info:?}");
    }

    // conn: 1
    let mut second = raw_connect(&server, &kp, &jwt).await?;
    let (got, closed) = second.read_to_close(IO_TIMEOUT).await?;
    let got = String::from_utf8_lossy(&got);
    if got != "-ERR 'maximum account active connections exceeded'\r\n" || !closed {
        bail!("second connection: got {got:?} (closed: {closed})");
    }

    // subs: 1 (the connection stays)
    first.send("SUB x 1\r\nSUB y 2\r\nPING\r\n").await?;
    first
        .expect("-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n")
        .await?;

    // payload: 8
    first.send("PUB x 9\r\n123456789\r\nPING\r\n").await?;
    let (got, closed) = first.read_to_close(IO_TIMEOUT).await?;
    let got = String::from_utf8_lossy(&got);
    if got != "-ERR 'Maximum Payload Violation'\r\n" || !closed {
        bail!("big payload: got {got:?} (closed: {closed})");
    }

    // Account B has no limits.
    let (kb, jb) = w.raw_user(&w.b, |_| {})?;
    let mut b1 = raw_connect(&server, &kb, &jb).await?;
    b1.expect("PONG\r\n").await?;
    let mut b2 = raw_connect(&server, &kb, &jb).await?;
    b2.expect("PONG\r\n").await?;
    Ok(())
}

/// An account update re-evaluates the permissions of its live users (natrium applies the
/// account's new `default_permissions` at once; subscriptions no longer allowed are removed
/// with nats-server's config-reload error), and a user whose scoped signing key changed is
/// disconnected, as nats-server does.
#[tokio::test]
async fn account_update_reevaluates_live_permissions() -> Result<()> {
    if natrium_tests::is_nats_server() {
        // nats-server 2.9 keeps a live user's permissions until it reconnects.
        return Ok(());
    }
    let w = World::new()?;
    let server = TestServer::with_config(&w.memory_config()?)?;
    let sys = connect_creds(&server, &w.user(&w.sys, "sys", |_| {})?).await?;
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", w.a.public_key());
    let scoped = KeyPair::new_account();
    let account_with = |iat: i64, pub_allow: &[&str], pub_deny: &[&str], sub_allow: &[&str]| {
        let mut c = account_claims(&w.a, "A");
        c["iat"] = json!(iat);
        c["nats"]["default_permissions"] = json!({
            "pub": {"allow": pub_allow, "deny": pub_deny},
            "sub": {"allow": sub_allow},
        });
        c["nats"]["signing_keys"] = json!([{
            "kind": "user_template", "key": scoped.public_key(), "role": "r",
            "template": {"pub": {"allow": [format!("scoped.{}", iat)]}, "sub": {}},
        }]);
        sign(&w.op, c)
    };

    // Update 1: A's users may publish and subscribe on `a.>` only.
    let resp = push_update(
        &sys,
        subject.clone(),
        account_with(now(), &["a.>"], &[], &["a.>"])?,
    )
    .await?;
    assert_eq!(resp["data"]["code"], json!(200), "reply: {resp}");

    let (kp, jwt) = w.raw_user(&w.a, |_| {})?;
    let mut live = raw_connect(&server, &kp, &jwt).await?;
    live.expect("PONG\r\n").await?;
    // A user of the scoped signing key.
    let scoped_kp = KeyPair::new_user();
    let mut sc = user_claims(&scoped_kp, "scoped");
    sc["nats"] = json!({"issuer_account": w.a.public_key(), "type": "user", "version": 2});
    let scoped_jwt = sign(&scoped, sc)?;
    let mut scoped_live = raw_connect(&server, &scoped_kp, &scoped_jwt).await?;
    scoped_live.expect("PONG\r\n").await?;

    live.send("SUB a.> 1\r\nPUB a.x 2\r\nhi\r\nPUB b.x 2\r\nno\r\nPING\r\n")
        .await?;
    live.expect(
        "MSG a.x 1 2\r\nhi\r\n-ERR 'Permissions Violation for Publish to \"b.x\"'\r\nPONG\r\n",
    )
    .await?;

    // Update 2: `a.>` is denied, `b.>` allowed. The live connection is told its `a.>`
    // subscription is gone, without reconnecting.
    let resp = push_update(
        &sys,
        subject.clone(),
        account_with(now() + 1, &["b.>"], &["a.>"], &["b.>"])?,
    )
    .await?;
    assert_eq!(resp["data"]["code"], json!(200), "reply: {resp}");
    live.expect("-ERR 'Permissions Violation for Subscription to \"a.>\" (sid \"1\")'\r\n")
        .await?;
    live.send("PUB a.x 2\r\nhi\r\nSUB b.> 2\r\nPUB b.y 2\r\nok\r\nPING\r\n")
        .await?;
    live.expect(
        "-ERR 'Permissions Violation for Publish to \"a.x\"'\r\nMSG b.y 2 2\r\nok\r\nPONG\r\n",
    )
    .await?;

    // The scoped signing key's template changed (its `iat`-named subject): nats-server
    // disconnects the users it issued.
    let (_, closed) = scoped_live.read_to_close(Duration::from_secs(5)).await?;
    assert!(
        closed,
        "a user of a changed scoped signing key must be disconnected"
    );

    // Update 3: unrestricted again.
    let mut open = account_claims(&w.a, "A");
    open["iat"] = json!(now() + 2);
    let resp = push_update(&sys, subject, sign(&w.op, open)?).await?;
    assert_eq!(resp["data"]["code"], json!(200), "reply: {resp}");
    live.send("SUB c.> 3\r\nPUB c.z 2\r\nok\r\nPUB a.x 2\r\nhi\r\nPING\r\n")
        .await?;
    live.expect("MSG c.z 3 2\r\nok\r\nPONG\r\n").await?;
    assert!(!live.is_closed());
    Ok(())
}

/// In operator mode an account has JetStream only when its JWT grants storage, with the
/// JWT's limits; `tiered_limits` are reported per tier in account info.
#[tokio::test]
async fn account_jwt_grants_jetstream_and_its_tiered_limits() -> Result<()> {
    let w = World::new()?;
    let mut a_claims = account_claims(&w.a, "A");
    a_claims["nats"]["limits"]["tiered_limits"] = json!({"R1": {
        "mem_storage": 1_048_576, "disk_storage": 10_485_760, "streams": 2, "consumer": -1
    }});
    let store = tempfile::tempdir()?;
    let conf = format!(
        "{}jetstream {{ store_dir: \"{}\" }}\n",
        w.dir_config(a_claims)?,
        store.path().display()
    );
    let server = TestServer::with_config(&conf)?;

    let a = connect_creds(&server, &w.user(&w.a, "ja", |_| {})?).await?;
    let info = js_request(&a, "INFO", "").await?;
    ensure!(
        info["tiers"]["R1"]["limits"]["max_storage"] == 10_485_760
            && info["tiers"]["R1"]["limits"]["max_streams"] == 2,
        "account info reports the R1 tier: {info}"
    );
    for name in ["S1", "S2"] {
        let r = js_request(
            &a,
            &format!("STREAM.CREATE.{name}"),
            &format!(
                r#"{{"name":"{name}","subjects":["{name}"],"max_bytes":1024,"num_replicas":1}}"#
            ),
        )
        .await?;
        ensure!(r.get("error").is_none(), "{name}: {r}");
    }
    let r = js_request(
        &a,
        "STREAM.CREATE.S3",
        r#"{"name":"S3","subjects":["S3"],"max_bytes":1024,"num_replicas":1}"#,
    )
    .await?;
    ensure!(
        r["error"]["err_code"] == 10027,
        "a third stream is over the JWT's streams: {r}"
    );

    // B's JWT grants no JetStream.
    let b = connect_creds(&server, &w.user(&w.b, "jb", |_| {})?).await?;
    let r = js_request(&b, "INFO", "").await?;
    ensure!(
        r["error"]["err_code"] == 10039,
        "JetStream is not enabled for B: {r}"
    );
    Ok(())
}

async fn js_request(client: &async_nats::Client, api: &str, body: &str) -> Result<Value> {
    let reply = natrium_tests::within(
        IO_TIMEOUT,
        api,
        client.request(format!("$JS.API.{api}"), body.to_string().into()),
    )
    .await??;
    Ok(serde_json::from_slice(&reply.payload)?)
}
