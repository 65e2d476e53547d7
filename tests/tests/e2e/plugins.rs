//! Wasm plugins end to end: the real example plugins (`plugins/build.sh` →
//! `target/plugins/*.wasm`) and the hostile test guests (`tests/guests/build.sh` →
//! `target/test-guests/*.wasm`) loaded by a real broker from its configuration, exercised with
//! async-nats and, where exact bytes matter, with raw protocol connections.
//!
//! Natrium-only: every test here is skipped when the server under test is nats-server.
//! A missing component is an error ([`plugin_path`]), never a skip.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use async_nats::{ConnectErrorKind, ConnectOptions, HeaderMap};
use bytes::Bytes;
use futures::StreamExt;
use natrium_tests::{
    assert_no_msg, connect, connect_with, find, http_get, is_nats_server, next_msg, plugin_path,
    run_bin, sync, within, workspace_root, RawConn, TestServer, IO_TIMEOUT,
};

/// How long a server that compiles the ~18 MB Python component gets to become ready. The
/// compiled artifact is cached in [`cache_dir`], so only the first run on a machine (or after
/// a wasmtime upgrade) pays for the compilation.
pub(super) const SLOW_STARTUP: Duration = Duration::from_secs(120);

/// A generous per-call deadline for the functional tests: they test what the plugins do, not
/// the deadline (the hostile test does), and must not flake on a loaded 2-core machine.
pub(super) const RELAXED_DEADLINE: &str = "500ms";

pub(super) fn skip() -> bool {
    if is_nats_server() {
        println!("note: Wasm plugins are natrium-only; skipped because the server under test is nats-server");
        return true;
    }
    false
}

/// A component's absolute path, quoted for the configuration file.
pub(super) fn wasm(name: &str) -> Result<String> {
    let p = plugin_path(name)?;
    Ok(format!("{:?}", p.display().to_string()))
}

/// A compiled-artifact cache shared by every test and kept across runs.
pub(super) fn cache_dir() -> String {
    let d = workspace_root().join("target").join("e2e-plugin-cache");
    format!("{:?}", d.display().to_string())
}

fn header<'m>(m: &'m async_nats::Message, name: &str) -> Option<&'m str> {
    m.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str())
}

fn header_names(m: &async_nats::Message) -> Vec<String> {
    m.headers
        .as_ref()
        .map(|h| h.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default()
}

/// Logs in over a raw connection with a CONNECT `extra` (JSON members, may be empty) and
/// checks the server answers the PING.
pub(super) async fn raw_login(server: &TestServer, extra: &str) -> Result<RawConn> {
    let mut c = RawConn::connect(server.port()).await?;
    let sep = if extra.is_empty() { "" } else { "," };
    c.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true{sep}{extra}}}\r\nPING\r\n"
    ))
    .await?;
    c.expect("PONG\r\n").await.context("login PONG")?;
    Ok(c)
}

/// Sends `cmds` followed by a PING and returns everything up to and including the PONG.
async fn raw_round(c: &mut RawConn, cmds: &str) -> Result<String> {
    c.send(format!("{cmds}PING\r\n")).await?;
    let got = c.read_until(b"PONG\r\n", IO_TIMEOUT).await?;
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// Publishes `payload` to `subject` on a raw connection and expects exactly `PONG` back
/// (no error).
pub(super) async fn raw_pub_ok(c: &mut RawConn, subject: &str, payload: &str) -> Result<()> {
    let got = raw_round(
        c,
        &format!("PUB {subject} {}\r\n{payload}\r\n", payload.len()),
    )
    .await?;
    ensure!(
        got == "PONG\r\n",
        "PUB {subject} {payload:?}: expected only PONG, got {got:?}"
    );
    Ok(())
}

/// Publishes and expects an `-ERR` containing "Message Rejected" before the PONG; the
/// connection must stay open. Returns the error line.
pub(super) async fn raw_pub_rejected(
    c: &mut RawConn,
    subject: &str,
    payload: &str,
) -> Result<String> {
    let got = raw_round(
        c,
        &format!("PUB {subject} {}\r\n{payload}\r\n", payload.len()),
    )
    .await?;
    if !got.contains("-ERR") || !got.contains("Message Rejected") {
        // Distinguish "after the PONG" from "never".
        let late = c.read_for(Duration::from_millis(500)).await?;
        bail!(
            "PUB {subject} {payload:?}: expected `-ERR '...Message Rejected...'` before PONG, got \
             {got:?}; afterwards within 500ms: {:?} (closed: {})",
            String::from_utf8_lossy(&late),
            c.is_closed()
        );
    }
    ensure!(
        got.ends_with("PONG\r\n") && !c.is_closed(),
        "the connection must stay up after a rejection; got {got:?}"
    );
    let line = got
        .lines()
        .find(|l| l.starts_with("-ERR"))
        .unwrap_or_default()
        .to_string();
    ensure!(
        got == format!("{line}\r\nPONG\r\n"),
        "expected one -ERR line then PONG, got {got:?}"
    );
    Ok(line)
}

// ---- pii-redactor -------------------------------------------------------------------------

#[tokio::test]
async fn pii_redactor_redacts_on_its_subjects_only() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let conf = format!(
        r#"
plugin_cache_dir: {cache}
plugins {{
  redact: {{
    path: {path}
    role: transformer
    subjects: ["pii.>"]
    on_failure: reject
    deadline: "{RELAXED_DEADLINE}"
  }}
}}
"#,
        cache = cache_dir(),
        path = wasm("pii-redactor")?,
    );
    let server = TestServer::with_config(&conf)?;

    let sub_client = connect(&server.url()).await?;
    let mut pii = sub_client.subscribe("pii.>").await?;
    sync(&sub_client).await?;
    // Raw subscribers for the byte-exact checks.
    let mut raw_sub = raw_login(&server, "").await?;
    let r = raw_round(&mut raw_sub, "SUB pii.plain 1\r\nSUB public.card 2\r\n").await?;
    ensure!(r == "PONG\r\n", "raw SUBs: {r:?}");

    let publisher = connect(&server.url()).await?;

    // 1. JSON with an e-mail and a Luhn-valid Visa number: redacted in place, header stamped.
    let input = r#"{"user":"ann@example.com","card":"4111 1111 1111 1111","amount":42}"#;
    let expected = r#"{"user":"[REDACTED:email]","card":"[REDACTED:card]","amount":42}"#;
    publisher.publish("pii.signup", input.into()).await?;
    let m = next_msg(&mut pii, "the redacted JSON message").await?;
    ensure!(m.subject.as_str() == "pii.signup", "subject {}", m.subject);
    ensure!(
        m.payload == expected,
        "payload not redacted as expected:\n  sent {input}\n  want {expected}\n   got {}",
        String::from_utf8_lossy(&m.payload)
    );
    ensure!(
        header(&m, "Natrium-Redacted") == Some("email=1,card=1"),
        "Natrium-Redacted header: {:?} (headers {:?})",
        header(&m, "Natrium-Redacted"),
        header_names(&m)
    );

    // 2. Text payload with the publisher's own header: the header is kept, ours is added.
    let mut hdrs = HeaderMap::new();
    hdrs.insert("Trace-Id", "t-1");
    publisher
        .publish_with_headers(
            "pii.note",
            hdrs,
            "write to bob@example.org or pay with 5500 0000 0000 0004 and 4111111111111112".into(),
        )
        .await?;
    let m = next_msg(&mut pii, "the redacted text message").await?;
    ensure!(
        m.payload == "write to [REDACTED:email] or pay with [REDACTED:card] and 4111111111111112",
        "text payload: {:?}",
        String::from_utf8_lossy(&m.payload)
    );
    ensure!(
        header(&m, "Trace-Id") == Some("t-1"),
        "publisher header lost: {:?}",
        header_names(&m)
    );
    ensure!(
        header(&m, "Natrium-Redacted") == Some("email=1,card=1"),
        "Natrium-Redacted: {:?}",
        header(&m, "Natrium-Redacted")
    );

    // 3. A request on a redacted subject: the responder sees the redacted request and the
    // reply subject survives the replacement.
    let responder = connect(&server.url()).await?;
    let mut svc = responder.subscribe("pii.svc").await?;
    sync(&responder).await?;
    let resp_task = tokio::spawn({
        let responder = responder.clone();
        async move {
            let m = within(IO_TIMEOUT, "request at the responder", svc.next())
                .await?
                .context("responder subscription ended")?;
            let reply = m
                .reply
                .clone()
                .context("request arrived without a reply subject")?;
            responder
                .publish(
                    reply,
                    Bytes::from(format!("seen:{}", String::from_utf8_lossy(&m.payload))),
                )
                .await?;
            anyhow::Ok(())
        }
    });
    let answer = within(
        IO_TIMEOUT,
        "reply to a request on pii.svc",
        publisher.request("pii.svc", "from carol@example.net".into()),
    )
    .await??;
    resp_task.await??;
    ensure!(
        answer.payload == "seen:from [REDACTED:email]",
        "responder saw {:?}",
        String::from_utf8_lossy(&answer.payload)
    );
    // The request also reached the pii.> subscriber, redacted; drain it.
    let m = next_msg(&mut pii, "the request on pii.svc").await?;
    ensure!(m.payload == "from [REDACTED:email]", "{:?}", m.payload);

    // 4. Another subject: the very same PII passes untouched, byte for byte, no header.
    let mut raw_pub = raw_login(&server, "").await?;
    raw_pub_ok(&mut raw_pub, "public.card", input).await?;
    raw_sub
        .expect(format!("MSG public.card 2 {}\r\n{input}\r\n", input.len()))
        .await
        .context("a message outside pii.> must arrive untouched")?;

    // 5. Nothing to redact on a redacted subject: byte-identical, no header (so MSG, not HMSG).
    // The numbers are not cards (a timestamp, too short, fails Luhn).
    let plain = r#"{"note":"nothing to see","ts":1732608000000,"n":12345,"id":"4111111111111112"}"#;
    raw_pub_ok(&mut raw_pub, "pii.plain", plain).await?;
    raw_sub
        .expect(format!("MSG pii.plain 1 {}\r\n{plain}\r\n", plain.len()))
        .await
        .context("a message with nothing to redact must arrive byte-identical")?;
    let m = next_msg(&mut pii, "pii.plain at the async subscriber").await?;
    ensure!(m.payload == plain && m.headers.is_none(), "{m:?}");

    assert_no_msg(
        &mut pii,
        Duration::from_millis(200),
        "pii.> after the last message",
    )
    .await?;
    let extra = raw_sub.read_for(Duration::from_millis(200)).await?;
    ensure!(
        extra.is_empty(),
        "raw subscriber got more: {:?}",
        String::from_utf8_lossy(&extra)
    );
    Ok(())
}

// ---- json-validator -----------------------------------------------------------------------

#[tokio::test]
async fn json_validator_drops_or_rejects_invalid_messages() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let schema = r#"{
      schema: {
        type: "object"
        required: ["id", "qty"]
        additionalProperties: false
        properties: {
          id: { type: "string", minLength: 1 }
          qty: { type: "integer", minimum: 1 }
        }
      }
    }"#;
    let conf = format!(
        r#"
plugin_cache_dir: {cache}
plugins {{
  validate_drop: {{
    path: {path}
    role: transformer
    subjects: ["d.orders.>"]
    on_failure: drop
    deadline: "{RELAXED_DEADLINE}"
    config: {schema}
  }}
  validate_reject: {{
    path: {path}
    role: transformer
    subjects: ["r.orders.>"]
    on_failure: reject
    deadline: "{RELAXED_DEADLINE}"
    config: {schema}
  }}
}}
"#,
        cache = cache_dir(),
        path = wasm("json-validator")?,
    );
    let server = TestServer::with_config(&conf)?;
    let sub_client = connect(&server.url()).await?;
    let mut orders = sub_client.subscribe("*.orders.>").await?;
    sync(&sub_client).await?;

    let valid = r#"{"id":"o-1","qty":2}"#;
    let bad_qty = r#"{"id":"o-2","qty":0}"#;
    let extra_field = r#"{"id":"o-3","qty":1,"admin":true}"#;
    let not_json = "this is not JSON";

    let mut p = raw_login(&server, "").await?;
    // Binding with on_failure: drop — a drop outcome is silent for the publisher.
    raw_pub_ok(&mut p, "d.orders.1", valid).await?;
    raw_pub_ok(&mut p, "d.orders.2", bad_qty).await?;
    raw_pub_ok(&mut p, "d.orders.3", not_json).await?;
    raw_pub_ok(&mut p, "d.orders.4", extra_field).await?;
    // Binding with on_failure: reject — the publisher is told, the connection stays up.
    raw_pub_ok(&mut p, "r.orders.1", valid).await?;
    let e1 = raw_pub_rejected(&mut p, "r.orders.2", bad_qty).await?;
    let e2 = raw_pub_rejected(&mut p, "r.orders.3", not_json).await?;
    let e3 = raw_pub_rejected(&mut p, "r.orders.4", extra_field).await?;
    println!("rejections seen by the publisher:\n  {e1}\n  {e2}\n  {e3}");
    raw_pub_ok(&mut p, "r.orders.5", valid).await?;

    // Exactly the valid messages arrive, in publish order: an invalid one would show up
    // between them.
    for want in ["d.orders.1", "r.orders.1", "r.orders.5"] {
        let m = next_msg(&mut orders, want).await?;
        ensure!(
            m.subject.as_str() == want && m.payload == valid,
            "expected {want} with the valid payload, got {} {:?}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        );
    }
    assert_no_msg(&mut orders, Duration::from_millis(300), "invalid orders").await?;
    Ok(())
}

// ---- partition-mapper ---------------------------------------------------------------------

/// The partition-mapper's pinned hash (see plugins/partition-mapper): FNV-1a 64, splitmix64
/// finalizer, jump consistent hash.
fn expected_partition(key: &str, partitions: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let mut key = h ^ (h >> 31);
    let buckets = i64::from(partitions.max(1));
    let (mut b, mut j) = (-1i64, 0i64);
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

#[tokio::test]
async fn partition_mapper_routes_by_customer() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let conf = format!(
        r#"
plugin_cache_dir: {cache}
plugins {{
  partitions: {{
    path: {path}
    role: mapper
    subjects: ["orders.>"]
    deadline: "{RELAXED_DEADLINE}"
    config: {{
      rules: [
        {{ subject: "orders.*.created", key_token: 2, partitions: 4,
           template: "orders.{{partition}}.{{2}}.created" }}
      ]
    }}
  }}
}}
"#,
        cache = cache_dir(),
        path = wasm("partition-mapper")?,
    );
    let server = TestServer::with_config(&conf)?;
    let sub_client = connect(&server.url()).await?;
    let mut mapped = sub_client.subscribe("orders.*.*.created").await?;
    let mut original = sub_client.subscribe("orders.*.created").await?;
    let mut updated = sub_client.subscribe("orders.*.updated").await?;
    sync(&sub_client).await?;

    let publisher = connect(&server.url()).await?;
    let customers: Vec<String> = (0..24).map(|i| format!("cust{i}")).collect();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut partitions = BTreeSet::new();
    for round in 0..2 {
        for c in &customers {
            publisher
                .publish(format!("orders.{c}.created"), format!("{round}:{c}").into())
                .await?;
            let m = next_msg(&mut mapped, &format!("orders.{c}.created, mapped")).await?;
            let tokens: Vec<&str> = m.subject.as_str().split('.').collect();
            ensure!(
                tokens.len() == 4
                    && tokens[0] == "orders"
                    && tokens[2] == c.as_str()
                    && tokens[3] == "created",
                "orders.{c}.created was delivered on {} (want orders.<partition>.{c}.created)",
                m.subject
            );
            let want = format!("p{}", expected_partition(c, 4));
            ensure!(
                tokens[1] == want,
                "orders.{c}.created went to partition {} but the pinned hash says {want}",
                tokens[1]
            );
            ensure!(
                m.payload == format!("{round}:{c}"),
                "payload {:?}",
                m.payload
            );
            if let Some(prev) = seen.insert(c.clone(), tokens[1].to_string()) {
                ensure!(
                    prev == tokens[1],
                    "{c} moved from partition {prev} to {}",
                    tokens[1]
                );
            }
            partitions.insert(tokens[1].to_string());
        }
    }
    ensure!(
        partitions.len() >= 2,
        "24 customers all landed in {partitions:?}: no partitioning happened"
    );
    assert_no_msg(
        &mut original,
        Duration::from_millis(200),
        "the unmapped subject orders.*.created",
    )
    .await?;

    // A subject the rule does not match keeps its subject.
    publisher
        .publish("orders.cust1.updated", "u".into())
        .await?;
    let m = next_msg(&mut updated, "orders.cust1.updated (unmapped)").await?;
    ensure!(
        m.subject.as_str() == "orders.cust1.updated",
        "{}",
        m.subject
    );
    assert_no_msg(
        &mut mapped,
        Duration::from_millis(200),
        "mapped after the updated",
    )
    .await?;
    Ok(())
}

// ---- audit-tagger (Python) ----------------------------------------------------------------

#[tokio::test]
async fn audit_tagger_python_component_stamps_headers() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let conf = format!(
        r#"
plugin_cache_dir: {cache}
accounts {{
  TEAM: {{ users: [ {{ user: t, password: pt }}, {{ user: t2, password: pt2 }} ] }}
  OTHER: {{ users: [ {{ user: o, password: po }} ] }}
}}
plugins {{
  audit: {{
    path: {path}
    role: transformer
    accounts: [TEAM]
    deadline: "{RELAXED_DEADLINE}"
    config: {{ tags: {{ Env: "e2e" }} }}
  }}
}}
"#,
        cache = cache_dir(),
        path = wasm("audit-tagger")?,
    );
    let t0 = Instant::now();
    let mut server = TestServer::with_config_args_and_timeout(&conf, &[], SLOW_STARTUP)?;
    println!(
        "server with the Python component ready in {:?}",
        t0.elapsed()
    );

    for run in 0..2 {
        if run == 1 {
            // Restart: the compiled artifact comes from the cache.
            let t1 = Instant::now();
            server.restart()?;
            println!("restarted (cached artifact) in {:?}", t1.elapsed());
        }
        let user =
            |u: &str, p: &str| ConnectOptions::with_user_and_password(u.to_string(), p.to_string());
        let watcher = connect_with(&server.url(), user("t2", "pt2")).await?;
        let mut audit = watcher.subscribe("audit.>").await?;
        sync(&watcher).await?;
        let other_watcher = connect_with(&server.url(), user("o", "po")).await?;
        let mut other = other_watcher.subscribe("audit.>").await?;
        sync(&other_watcher).await?;

        let team = connect_with(&server.url(), user("t", "pt")).await?;
        let mut ids = BTreeSet::new();
        for i in 0..3 {
            let mut h = HeaderMap::new();
            // A forged stamp must be replaced, never passed on.
            h.insert("Natrium-Account", "FORGED");
            h.insert("Trace-Id", format!("tr-{i}").as_str());
            team.publish_with_headers(format!("audit.e{i}"), h, format!("event {i}").into())
                .await?;
            let m = next_msg(&mut audit, "a tagged message").await?;
            ensure!(m.subject.as_str() == format!("audit.e{i}"), "{}", m.subject);
            ensure!(m.payload == format!("event {i}"), "payload {:?}", m.payload);
            let all_accounts: Vec<&str> = m
                .headers
                .as_ref()
                .map(|h| h.get_all("Natrium-Account").map(|v| v.as_str()).collect())
                .unwrap_or_default();
            ensure!(
                all_accounts == ["TEAM"],
                "Natrium-Account values {all_accounts:?} (headers {:?})",
                header_names(&m)
            );
            ensure!(
                header(&m, "Trace-Id") == Some(format!("tr-{i}").as_str()),
                "Trace-Id lost"
            );
            ensure!(
                header(&m, "Env") == Some("e2e"),
                "static tag: {:?}",
                header(&m, "Env")
            );
            let id = header(&m, "Natrium-Audit-Id")
                .with_context(|| format!("no Natrium-Audit-Id (headers {:?})", header_names(&m)))?;
            // `{now_ns:x}-{counter:x}`: the first part is the broker's clock.
            let (ts, n) = id
                .split_once('-')
                .with_context(|| format!("audit id {id:?}"))?;
            let ts = u64::from_str_radix(ts, 16).with_context(|| format!("audit id {id:?}"))?;
            ensure!(u64::from_str_radix(n, 16).is_ok(), "audit id {id:?}");
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
            ensure!(
                now.abs_diff(ts) < 60_000_000_000,
                "audit id time {ts} is far from now {now}"
            );
            ensure!(ids.insert(id.to_string()), "audit id {id} repeated");
            let at = header(&m, "Natrium-Received-At").context("no Natrium-Received-At")?;
            ensure!(
                at.len() == 30 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
                "Natrium-Received-At {at:?} is not RFC 3339 with nanoseconds"
            );
        }
        assert_no_msg(&mut other, Duration::from_millis(100), "OTHER sees TEAM").await?;

        // The binding is for TEAM only: OTHER's messages are not tagged.
        let o = connect_with(&server.url(), user("o", "po")).await?;
        o.publish("audit.o", "plain".into()).await?;
        let m = next_msg(&mut other, "OTHER's own message").await?;
        ensure!(
            m.payload == "plain" && m.headers.is_none(),
            "a message in OTHER was changed: headers {:?}",
            header_names(&m)
        );
        assert_no_msg(&mut audit, Duration::from_millis(100), "TEAM sees OTHER").await?;
    }
    Ok(())
}

// ---- jwt-authorizer -----------------------------------------------------------------------

pub(super) const JWT_SECRET: &str = "natrium-e2e-shared-secret-0123456789";

/// An HS256 JWT with `claims`, signed with `secret`.
fn mint(secret: &str, claims: &serde_json::Value) -> Result<String> {
    use hmac::{Hmac, Mac};
    let b64 = |b: &[u8]| data_encoding::BASE64URL_NOPAD.encode(b);
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64(serde_json::to_string(claims)?.as_bytes());
    let signing_input = format!("{head}.{body}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| anyhow::anyhow!("hmac key: {e}"))?;
    mac.update(signing_input.as_bytes());
    let sig = mac.finalize().into_bytes();
    Ok(format!("{signing_input}.{}", b64(&sig)))
}

fn now_secs() -> Result<u64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
}

pub(super) fn token(tenant: &str, user: &str, exp_offset: i64) -> Result<String> {
    let now = now_secs()? as i64;
    mint(
        JWT_SECRET,
        &serde_json::json!({
            "sub": user, "tenant": tenant, "iat": now, "nbf": now - 5, "exp": now + exp_offset
        }),
    )
}

pub(super) async fn expect_auth_violation(
    server: &TestServer,
    opts: ConnectOptions,
    what: &str,
) -> Result<()> {
    let opts = opts.connection_timeout(Duration::from_secs(5));
    match within(Duration::from_secs(10), what, opts.connect(server.url())).await? {
        Ok(_) => bail!("{what}: the connection unexpectedly succeeded"),
        Err(e) if e.kind() == ConnectErrorKind::AuthorizationViolation => Ok(()),
        Err(e) => bail!(
            "{what}: expected an authorization violation, got {:?}: {e}",
            e.kind()
        ),
    }
}

/// Raw: CONNECT with `connect_json` members → exactly `-ERR 'Authorization Violation'` and a
/// close.
async fn raw_denied(server: &TestServer, members: &str, what: &str) -> Result<()> {
    let mut c = RawConn::connect(server.port()).await?;
    ensure!(
        c.info()?["auth_required"] == serde_json::json!(true),
        "INFO must announce auth_required: {}",
        c.info_line
    );
    let sep = if members.is_empty() { "" } else { "," };
    c.send(format!(
        "CONNECT {{\"verbose\":false{sep}{members}}}\r\nPING\r\n"
    ))
    .await?;
    let (got, closed) = c.read_to_close(IO_TIMEOUT).await?;
    ensure!(
        String::from_utf8_lossy(&got) == "-ERR 'Authorization Violation'\r\n" && closed,
        "{what}: expected exactly -ERR 'Authorization Violation' and a close, got {:?} (closed: {closed})",
        String::from_utf8_lossy(&got)
    );
    Ok(())
}

/// `opts` with an event callback that sends each event, as text, into the returned channel.
fn with_events(
    opts: ConnectOptions,
) -> (ConnectOptions, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let opts = opts.event_callback(move |ev| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(ev.to_string());
        }
    });
    (opts, rx)
}

/// The next event other than "connected".
async fn next_event(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    what: &str,
) -> Result<String> {
    loop {
        let ev = within(IO_TIMEOUT, what, events.recv())
            .await?
            .context("event channel closed")?;
        if ev != "connected" {
            return Ok(ev);
        }
    }
}

pub(super) fn jwt_conf() -> Result<String> {
    Ok(format!(
        r#"
plugin_cache_dir: {cache}
accounts {{
  ACME: {{}}
  GLOBEX: {{}}
  SMALL: {{}}
  OPS: {{ users: [ {{ user: admin, password: "adm1n-pw" }} ] }}
}}
plugins {{
  jwt: {{
    path: {path}
    role: authorizer
    deadline: "2s"
    config: {{
      hs256_secret: "{JWT_SECRET}"
      tenant_claim: "tenant"
      user_claim: "sub"
      tenants: {{
        acme: {{
          account: "ACME"
          publish: {{ allow: ["acme.>", "_INBOX.>"], deny: ["acme.admin.>"] }}
          subscribe: {{ allow: ["acme.>", "_INBOX.>"] }}
        }}
        globex: {{ account: "GLOBEX" }}
        small: {{ account: "SMALL", max_subscriptions: 2, max_payload: 64 }}
      }}
    }}
  }}
}}
"#,
        cache = cache_dir(),
        path = wasm("jwt-authorizer")?,
    ))
}

#[tokio::test]
async fn jwt_authorizer_admits_valid_tokens_into_their_tenant() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let server = TestServer::with_config(&jwt_conf()?)?;
    let acme_tok = token("acme", "alice", 3600)?;
    let globex_tok = token("globex", "gus", 3600)?;

    // A valid token connects (async-nats sends it as `auth_token`) and works in its account.
    let acme1 = connect_with(&server.url(), ConnectOptions::with_token(acme_tok.clone()))
        .await
        .context("a client with a valid acme token must connect")?;
    let acme2 = connect_with(&server.url(), ConnectOptions::with_token(acme_tok.clone())).await?;
    let mut acme_orders = acme2.subscribe("acme.orders").await?;
    sync(&acme2).await?;
    acme1.publish("acme.orders", "o1".into()).await?;
    sync(&acme1).await?;
    let m = next_msg(&mut acme_orders, "acme.orders inside ACME").await?;
    ensure!(m.payload == "o1");

    // Its permissions are the tenant's, with nats-server's exact violations.
    let mut raw = raw_login(&server, &format!("\"auth_token\":\"{acme_tok}\"")).await?;
    let got = raw_round(&mut raw, "PUB other.x 2\r\nhi\r\n").await?;
    ensure!(
        got == "-ERR 'Permissions Violation for Publish to \"other.x\"'\r\nPONG\r\n",
        "publish outside acme.>: {got:?}"
    );
    let got = raw_round(&mut raw, "PUB acme.admin.reset 2\r\nhi\r\n").await?;
    ensure!(
        got == "-ERR 'Permissions Violation for Publish to \"acme.admin.reset\"'\r\nPONG\r\n",
        "publish to the denied acme.admin.>: {got:?}"
    );
    let got = raw_round(&mut raw, "SUB other.> 9\r\n").await?;
    ensure!(
        got == "-ERR 'Permissions Violation for Subscription to \"other.>\"'\r\nPONG\r\n",
        "subscribe outside acme.>: {got:?}"
    );
    let got = raw_round(&mut raw, "SUB acme.> 1\r\nPUB acme.ok 2\r\nok\r\n").await?;
    ensure!(
        got == "MSG acme.ok 1 2\r\nok\r\nPONG\r\n",
        "allowed publish and subscribe: {got:?}"
    );
    ensure!(
        !raw.is_closed(),
        "permission violations must not close the connection"
    );

    // Tenants are isolated: GLOBEX's `>` sees nothing of ACME, ACME sees nothing of GLOBEX
    // even on the same subject.
    let mut globex_all = raw_login(&server, &format!("\"auth_token\":\"{globex_tok}\"")).await?;
    let got = raw_round(&mut globex_all, "SUB > 1\r\n").await?;
    ensure!(got == "PONG\r\n", "globex SUB >: {got:?}");
    acme1.publish("acme.orders", "o2".into()).await?;
    sync(&acme1).await?;
    let m = next_msg(&mut acme_orders, "acme.orders o2 inside ACME").await?;
    ensure!(m.payload == "o2");
    let got = raw_round(&mut raw, "").await?; // raw acme conn gets its own copy on acme.>
    ensure!(
        got == "MSG acme.orders 1 2\r\no2\r\nPONG\r\n",
        "acme raw: {got:?}"
    );
    let leaked = globex_all.read_for(Duration::from_millis(300)).await?;
    ensure!(
        leaked.is_empty(),
        "GLOBEX saw ACME's traffic: {:?}",
        String::from_utf8_lossy(&leaked)
    );
    let globex = connect_with(&server.url(), ConnectOptions::with_token(globex_tok)).await?;
    globex.publish("acme.orders", "from globex".into()).await?;
    sync(&globex).await?;
    let got = String::from_utf8_lossy(
        &globex_all
            .read_until(b"from globex\r\n", IO_TIMEOUT)
            .await?,
    )
    .into_owned();
    ensure!(
        got == "MSG acme.orders 1 11\r\nfrom globex\r\n",
        "globex own: {got:?}"
    );
    assert_no_msg(
        &mut acme_orders,
        Duration::from_millis(300),
        "ACME sees GLOBEX",
    )
    .await?;

    // A configured password user is tried first and still works.
    let admin = connect_with(
        &server.url(),
        ConnectOptions::with_user_and_password("admin".into(), "adm1n-pw".into()),
    )
    .await
    .context("the configured password user must still connect")?;
    let mut ops = admin.subscribe("ops.>").await?;
    sync(&admin).await?;
    admin.publish("ops.ping", "p".into()).await?;
    let m = next_msg(&mut ops, "ops.ping in OPS").await?;
    ensure!(m.payload == "p");
    Ok(())
}

/// The limits in an authorizer's decision are the client's own: the `small` tenant's
/// `max_subscriptions: 2` refuses a third SUB with nats-server's non-fatal `-ERR 'maximum
/// subscriptions exceeded'`, and its `max_payload: 64` is announced in an INFO after CONNECT
/// (to protocol-1 clients) and enforced with `-ERR 'Maximum Payload Violation'` and a close.
/// A tenant without limits gets neither.
#[tokio::test]
async fn jwt_authorizer_limits_are_enforced() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let server = TestServer::with_config(&jwt_conf()?)?;
    let small = token("small", "sam", 3600)?;
    let globex = token("globex", "gus", 3600)?;

    // The INFO after CONNECT carries the client's own max_payload (protocol 1 only).
    let login = |tok: &str, protocol: u8| {
        format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":{protocol},\
             \"auth_token\":\"{tok}\"}}\r\nPING\r\n"
        )
    };
    let mut c = RawConn::connect(server.port()).await?;
    ensure!(c.info()?["max_payload"] == serde_json::json!(1048576));
    c.send(login(&small, 1)).await?;
    let got = String::from_utf8_lossy(&c.read_until(b"PONG\r\n", IO_TIMEOUT).await?).into_owned();
    let info = got
        .strip_prefix("INFO ")
        .and_then(|r| r.strip_suffix("\r\nPONG\r\n"))
        .with_context(|| format!("expected INFO then PONG after CONNECT, got {got:?}"))?;
    let info: serde_json::Value = serde_json::from_str(info)?;
    ensure!(info["max_payload"] == serde_json::json!(64), "INFO {info}");
    let mut old = RawConn::connect(server.port()).await?;
    old.send(login(&small, 0)).await?;
    old.expect("PONG\r\n")
        .await
        .context("protocol 0: no INFO")?;

    // max_subscriptions: the third SUB is refused, the connection stays; after an UNSUB
    // there is room again.
    let got = raw_round(&mut c, "SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n").await?;
    ensure!(
        got == "-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n",
        "third SUB: {got:?}"
    );
    let got = raw_round(&mut c, "UNSUB 1\r\nSUB c 3\r\nPUB c 2\r\nhi\r\n").await?;
    ensure!(got == "MSG c 3 2\r\nhi\r\nPONG\r\n", "after UNSUB: {got:?}");

    // max_payload: 64 bytes pass, 65 are a violation that closes, as in nats-server.
    let at_limit = "x".repeat(64);
    raw_pub_ok(&mut c, "none", &at_limit).await?;
    c.send(format!("PUB none 65\r\n{at_limit}x\r\n")).await?;
    let (got, closed) = c.read_to_close(IO_TIMEOUT).await?;
    ensure!(
        String::from_utf8_lossy(&got) == "-ERR 'Maximum Payload Violation'\r\n" && closed,
        "65 bytes: {:?} (closed: {closed})",
        String::from_utf8_lossy(&got)
    );

    // A tenant without limits: no INFO, three SUBs, 65 bytes.
    let mut g = RawConn::connect(server.port()).await?;
    g.send(login(&globex, 1)).await?;
    g.expect("PONG\r\n").await.context("no limits: no INFO")?;
    let got = raw_round(&mut g, "SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n").await?;
    ensure!(got == "PONG\r\n", "globex SUBs: {got:?}");
    raw_pub_ok(&mut g, "none", &format!("{at_limit}x")).await?;

    // async-nats: the refused subscription is reported as an error event; still connected.
    let (opts, mut events) = with_events(ConnectOptions::with_token(small));
    let client = connect_with(&server.url(), opts).await?;
    let _s1 = client.subscribe("s.1").await?;
    let _s2 = client.subscribe("s.2").await?;
    let _s3 = client.subscribe("s.3").await?;
    client.flush().await?;
    let ev = next_event(&mut events, "the subscription limit event").await?;
    ensure!(
        ev == "server error: nats: maximum subscriptions exceeded",
        "event: {ev}"
    );
    ensure!(
        client.connection_state() == async_nats::connection::State::Connected,
        "async-nats must stay connected"
    );
    Ok(())
}

#[tokio::test]
async fn jwt_authorizer_refuses_bad_tokens() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let server = TestServer::with_config(&jwt_conf()?)?;
    let now = now_secs()? as i64;

    let expired = mint(
        JWT_SECRET,
        &serde_json::json!({"sub": "alice", "tenant": "acme", "iat": now - 7200, "exp": now - 3600}),
    )?;
    let bad_sig = mint(
        "some-other-secret-of-enough-length",
        &serde_json::json!({"sub": "alice", "tenant": "acme", "exp": now + 3600}),
    )?;
    let unknown_tenant = token("initech", "bob", 3600)?;
    let cases: Vec<(&str, ConnectOptions, String)> = vec![
        (
            "expired token",
            ConnectOptions::with_token(expired.clone()),
            format!("\"auth_token\":\"{expired}\""),
        ),
        (
            "bad signature",
            ConnectOptions::with_token(bad_sig.clone()),
            format!("\"auth_token\":\"{bad_sig}\""),
        ),
        (
            "unknown tenant",
            ConnectOptions::with_token(unknown_tenant.clone()),
            format!("\"auth_token\":\"{unknown_tenant}\""),
        ),
        ("missing token", ConnectOptions::new(), String::new()),
        (
            "not a JWT",
            ConnectOptions::with_token("garbage".into()),
            "\"auth_token\":\"garbage\"".into(),
        ),
        (
            "wrong password of a configured user",
            ConnectOptions::with_user_and_password("admin".into(), "wrong".into()),
            "\"user\":\"admin\",\"pass\":\"wrong\"".into(),
        ),
    ];
    for (what, opts, members) in cases {
        expect_auth_violation(&server, opts, what).await?;
        raw_denied(&server, &members, what).await?;
    }
    // The deny reasons are logged.
    server.wait_for_log("token expired", IO_TIMEOUT).await?;
    server
        .wait_for_log("bad token signature", IO_TIMEOUT)
        .await?;

    // And a good token still gets in after all that.
    let ok = connect_with(
        &server.url(),
        ConnectOptions::with_token(token("acme", "al", 600)?),
    )
    .await
    .context("a valid token after the refusals")?;
    let mut s = ok.subscribe("acme.x").await?;
    sync(&ok).await?;
    ok.publish("acme.x", "y".into()).await?;
    next_msg(&mut s, "acme.x").await?;
    Ok(())
}

#[tokio::test]
async fn jwt_authorization_ends_when_the_token_expires() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let server = TestServer::with_config(&jwt_conf()?)?;
    // `exp` becomes the authorization's expiry: the broker disconnects the client then, with
    // nats-server's text for an expired user.
    let tok = token("acme", "shortlived", 2)?;
    let mut c = raw_login(&server, &format!("\"auth_token\":\"{tok}\"")).await?;
    let connected = Instant::now();
    let got = raw_round(&mut c, "SUB acme.t 1\r\nPUB acme.t 1\r\nx\r\n").await?;
    ensure!(
        got == "MSG acme.t 1 1\r\nx\r\nPONG\r\n",
        "before expiry: {got:?}"
    );
    let (rest, closed) = c.read_to_close(Duration::from_secs(8)).await?;
    let waited = connected.elapsed();
    let rest = String::from_utf8_lossy(&rest).into_owned();
    ensure!(
        closed && rest.ends_with("-ERR 'User Authentication Expired'\r\n"),
        "expected `-ERR 'User Authentication Expired'` and a close about 2s after connecting; \
         after {waited:?} got {rest:?} (closed: {closed})"
    );
    ensure!(
        waited >= Duration::from_millis(500) && waited <= Duration::from_secs(4),
        "disconnected {waited:?} after connecting with a token expiring in 1-2s"
    );
    Ok(())
}

// ---- hostile plugins ----------------------------------------------------------------------

#[tokio::test]
async fn hostile_plugins_never_stop_the_broker() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let conf = format!(
        r#"
plugin_cache_dir: {cache}
plugins {{
  looper: {{
    path: {looper}
    role: transformer
    subjects: ["slow.>"]
    on_failure: pass
    deadline: "20ms"
  }}
  membomb: {{
    path: {membomb}
    role: transformer
    subjects: ["bomb.>"]
    on_failure: drop
    deadline: "2s"
    memory: 16777216
  }}
  trapper: {{
    path: {trapper}
    role: transformer
    subjects: ["panic", "unreachable"]
    on_failure: reject
  }}
}}
"#,
        cache = cache_dir(),
        looper = wasm("looper")?,
        membomb = wasm("membomb")?,
        trapper = wasm("trapper")?,
    );
    let server = TestServer::with_config_and_args(&conf, &["-m", "-1"])?;
    let mport = server.monitor_port().context("no monitoring port logged")?;

    // An echo service on another subject, for latency while the looper burns its deadlines.
    let svc_client = connect(&server.url()).await?;
    let mut svc = svc_client.subscribe("fast.echo").await?;
    sync(&svc_client).await?;
    let svc_task = tokio::spawn({
        let c = svc_client.clone();
        async move {
            while let Some(m) = svc.next().await {
                if let Some(reply) = m.reply {
                    let _ = c.publish(reply, m.payload).await;
                }
            }
        }
    });

    // 1. The looper: every publish to slow.> times out after 20ms and, on_failure pass, is
    // delivered unchanged. One message at a time, so that each one is a separate call.
    let slow_sub_client = connect(&server.url()).await?;
    let mut slow_sub = slow_sub_client.subscribe("slow.>").await?;
    sync(&slow_sub_client).await?;
    let slow_pub = connect(&server.url()).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let slow_task = tokio::spawn({
        let stop = stop.clone();
        let rounds = rounds.clone();
        async move {
            let mut durations = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) || i < 5 {
                let t = Instant::now();
                slow_pub
                    .publish(format!("slow.{i}"), format!("s{i}").into())
                    .await?;
                let m = next_msg(
                    &mut slow_sub,
                    &format!("slow.{i} (looper, on_failure pass)"),
                )
                .await?;
                ensure!(
                    m.subject.as_str() == format!("slow.{i}") && m.payload == format!("s{i}"),
                    "slow.{i}: got {} {:?}",
                    m.subject,
                    m.payload
                );
                durations.push(t.elapsed());
                rounds.fetch_add(1, Ordering::SeqCst);
                i += 1;
                ensure!(i < 10_000, "runaway slow loop");
            }
            anyhow::Ok(durations)
        }
    });

    // Meanwhile, other clients are served normally.
    let requester = connect(&server.url()).await?;
    let rounds_before = rounds.load(Ordering::SeqCst);
    let mut latencies = Vec::new();
    for i in 0..40 {
        let t = Instant::now();
        let r = within(
            Duration::from_secs(5),
            "request on fast.echo while the looper runs",
            requester.request("fast.echo", format!("r{i}").into()),
        )
        .await?
        .context("request on fast.echo")?;
        latencies.push(t.elapsed());
        ensure!(r.payload == format!("r{i}"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rounds_during = rounds.load(Ordering::SeqCst) - rounds_before;
    stop.store(true, Ordering::SeqCst);
    let durations = within(Duration::from_secs(60), "the slow publisher", slow_task).await???;
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    let min_slow = durations.iter().min().copied().unwrap_or_default();
    println!(
        "looper: {} slow messages ({rounds_during} during the requests), fastest {min_slow:?}; \
         fast.echo latency median {median:?}, max {max:?}",
        durations.len()
    );
    ensure!(
        min_slow >= Duration::from_millis(15),
        "a slow.> message was delivered in {min_slow:?}: the looper (deadline 20ms) did not run"
    );
    ensure!(
        rounds_during >= 3,
        "only {rounds_during} looper calls overlapped the requests: the test proved nothing"
    );
    ensure!(
        median < Duration::from_millis(100) && max < Duration::from_secs(1),
        "requests on another subject were slowed by the looper: median {median:?}, max {max:?}"
    );

    // 2. The memory bomb: out of memory, on_failure drop — not delivered, publisher not told.
    let bomb_client = connect(&server.url()).await?;
    let mut bombs = bomb_client.subscribe("bomb.>").await?;
    sync(&bomb_client).await?;
    let mut p = raw_login(&server, "").await?;
    raw_pub_ok(&mut p, "bomb.a", "boom").await?;
    raw_pub_ok(&mut p, "bomb.b", "boom").await?;
    assert_no_msg(
        &mut bombs,
        Duration::from_millis(300),
        "bomb.> (membomb, on_failure drop)",
    )
    .await?;

    // 3. The trapper: traps, on_failure reject — the publisher gets the error, stays connected.
    let trap_client = connect(&server.url()).await?;
    let mut traps = trap_client.subscribe("panic").await?;
    let mut unreachable = trap_client.subscribe("unreachable").await?;
    let mut fine = trap_client.subscribe("after.trap").await?;
    sync(&trap_client).await?;
    let e1 = raw_pub_rejected(&mut p, "panic", "hi").await?;
    let e2 = raw_pub_rejected(&mut p, "unreachable", "hi").await?;
    let e3 = raw_pub_rejected(&mut p, "panic", "again").await?;
    println!("trapper rejections:\n  {e1}\n  {e2}\n  {e3}");
    raw_pub_ok(&mut p, "after.trap", "still here").await?;
    let m = next_msg(&mut fine, "after.trap on the same publisher connection").await?;
    ensure!(m.payload == "still here");
    assert_no_msg(&mut traps, Duration::from_millis(200), "panic (rejected)").await?;
    assert_no_msg(
        &mut unreachable,
        Duration::from_millis(100),
        "unreachable (rejected)",
    )
    .await?;

    // 4. After all that, a new client is served normally.
    let fresh = connect(&server.url()).await?;
    let r = within(
        IO_TIMEOUT,
        "request from a new client",
        fresh.request("fast.echo", "fresh".into()),
    )
    .await??;
    ensure!(r.payload == "fresh");

    // 5. /varz counts every failure per plugin.
    let varz = http_get(mport, "/varz").await?.json()?;
    let plugins = varz["plugins"]
        .as_array()
        .with_context(|| format!("/varz has no plugins array: {varz}"))?;
    let stats = |name: &str| -> Result<&serde_json::Value> {
        plugins
            .iter()
            .find(|p| p["name"] == name)
            .with_context(|| format!("/varz plugins has no {name}: {plugins:?}"))
    };
    let count = |v: &serde_json::Value, k: &str| v["errors"][k].as_u64().unwrap_or(0);
    let looper = stats("looper")?;
    let membomb = stats("membomb")?;
    let trapper = stats("trapper")?;
    println!("/varz plugins: {}", serde_json::to_string_pretty(plugins)?);
    for (p, name) in [
        (looper, "looper"),
        (membomb, "membomb"),
        (trapper, "trapper"),
    ] {
        ensure!(p["role"] == "transformer", "{name} role: {p}");
        ensure!(p["calls"].as_u64().unwrap_or(0) > 0, "{name} calls: {p}");
    }
    ensure!(
        count(looper, "timeout") >= durations.len() as u64,
        "looper timeouts {} < {} slow messages: {looper}",
        count(looper, "timeout"),
        durations.len()
    );
    ensure!(count(membomb, "out_of_memory") >= 2, "membomb: {membomb}");
    ensure!(count(trapper, "trap") >= 3, "trapper: {trapper}");
    svc_task.abort();
    Ok(())
}

// ---- loading ------------------------------------------------------------------------------

/// Writes `conf` to a file in `dir` and runs `natrium <args> -c <file>` there to completion;
/// returns whether it succeeded and its stdout and stderr.
pub(super) fn run_conf(dir: &Path, conf: &str, args: &[&str]) -> Result<(bool, String)> {
    let path = dir.join("server.conf");
    std::fs::write(&path, conf)?;
    let path = path.display().to_string();
    let mut all = args.to_vec();
    all.extend(["-c", &path]);
    let out = run_bin(&all, dir, Duration::from_secs(60))?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[tokio::test]
async fn a_component_of_the_wrong_world_is_refused_at_startup() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let conf = format!(
        "plugin_cache_dir: {}\nplugins {{ wrongworld: {{ path: {}, role: transformer }} }}\n",
        cache_dir(),
        wasm("wrong-world")?
    );
    let (ok, text) = run_conf(dir.path(), &conf, &["-a", "127.0.0.1", "-p", "-1"])?;
    ensure!(
        !ok,
        "the server must refuse to start with a mapper loaded as a transformer; it said:\n{text}"
    );
    ensure!(
        text.contains("wrongworld")
            && text.contains("missing export")
            && text.contains("transformation"),
        "the error must name the plugin and the missing export; output:\n{text}"
    );
    ensure!(
        find(text.as_bytes(), b"Server is ready").is_none(),
        "it must not have become ready:\n{text}"
    );
    Ok(())
}

#[tokio::test]
async fn an_authorizer_decides_even_when_no_users_are_configured() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let conf = jwt_conf()?.replace(
        r#"OPS: { users: [ { user: admin, password: "adm1n-pw" } ] }"#,
        "",
    );
    ensure!(!conf.contains("adm1n-pw"), "the config must have no users");
    let server = TestServer::with_config(&conf)?;
    let raw = RawConn::connect(server.port()).await?;
    ensure!(
        raw.info()?["auth_required"] == true,
        "INFO must say auth_required"
    );
    expect_auth_violation(&server, ConnectOptions::new(), "anonymous client").await?;
    let ok = connect_with(
        &server.url(),
        ConnectOptions::with_token(token("acme", "alice", 3600)?),
    )
    .await?;
    sync(&ok).await?;
    Ok(())
}

#[tokio::test]
async fn sighup_swaps_plugins_without_dropping_connections() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let with_plugin = format!(
        "plugin_cache_dir: {cache}\nplugins {{ redact: {{ path: {path}, role: transformer, subjects: [\"pii.>\"], deadline: \"{RELAXED_DEADLINE}\" }} }}\n",
        cache = cache_dir(),
        path = wasm("pii-redactor")?,
    );
    let server = TestServer::with_config(&with_plugin)?;
    let client = connect(&server.url()).await?;
    let mut sub = client.subscribe("pii.>").await?;
    sync(&client).await?;
    let input = r#"{"mail":"ann@example.com"}"#;
    client.publish("pii.a", input.into()).await?;
    let m = next_msg(&mut sub, "redacted before reload").await?;
    ensure!(
        m.payload != input,
        "the plugin must redact before the reload"
    );

    // Reload without the plugin: the same connection now sees messages unchanged.
    std::fs::write(
        server.dir().join("server.conf"),
        format!("plugin_cache_dir: {}\n", cache_dir()),
    )?;
    let pid = server.pid().context("server pid")?;
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -HUP failed");
    server
        .wait_for_log("Reloaded server configuration", Duration::from_secs(10))
        .await?;
    client.publish("pii.b", input.into()).await?;
    let m = next_msg(&mut sub, "unchanged after reload").await?;
    ensure!(
        m.payload == input,
        "after the reload the message passes unchanged: {:?}",
        m.payload
    );
    Ok(())
}

/// A `batch-transformer` binding: a burst of publishes from one client goes through the
/// plugin in batches, each message gets its own decision (rewritten, dropped with
/// `on_failure: reject` → the publisher's -ERR, or passed), subjects outside the binding are
/// untouched, and the subscriber sees everything in the publisher's order.
#[tokio::test]
async fn batch_transformer_keeps_order_and_per_message_decisions() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let conf = format!(
        r#"
plugin_cache_dir: {cache}
plugins {{
  batch: {{
    path: {batch}
    role: transformer
    subjects: ["rewrite", "drop", "pass.>"]
    on_failure: reject
    deadline: "{RELAXED_DEADLINE}"
  }}
}}
"#,
        cache = cache_dir(),
        batch = wasm("batch-pass")?,
    );
    let server = TestServer::with_config_and_args(&conf, &["-m", "-1"])?;
    let mport = server.monitor_port().context("no monitoring port logged")?;
    let sub_client = connect(&server.url()).await?;
    let mut sub = sub_client.subscribe(">").await?;
    sync(&sub_client).await?;

    // One write carrying every publish, so the server sees them in one read.
    let mut raw = raw_login(&server, "").await?;
    let mut burst = String::new();
    let mut expected = Vec::new();
    for i in 0..300 {
        let (subject, payload) = match i % 4 {
            0 => ("pass.a", format!("p{i}")),
            1 => ("rewrite", format!("r{i}")),
            2 => ("drop", format!("d{i}")),
            _ => ("other", format!("o{i}")),
        };
        burst.push_str(&format!("PUB {subject} {}\r\n{payload}\r\n", payload.len()));
        match subject {
            "rewrite" => expected.push(("rewritten".to_string(), payload.to_uppercase())),
            "drop" => {}
            _ => expected.push((subject.to_string(), payload)),
        }
    }
    burst.push_str("PING\r\n");
    raw.send(&burst).await?;
    let out = raw.read_until(b"PONG\r\n", Duration::from_secs(10)).await?;
    let out = String::from_utf8_lossy(&out);
    let rejects = out.matches("\": Message Rejected: dropped ").count();
    ensure!(rejects == 75, "75 drops rejected, got {rejects}: {out}");

    for (i, (subject, payload)) in expected.iter().enumerate() {
        let m = loop {
            let m = within(Duration::from_secs(5), "batched delivery", sub.next())
                .await?
                .context("subscription ended")?;
            if !m.subject.starts_with("_INBOX.") {
                break m;
            }
        };
        ensure!(
            m.subject.as_str() == subject && m.payload == payload.as_bytes(),
            "message {i}: expected {subject} {payload:?}, got {} {:?}",
            m.subject,
            m.payload
        );
    }
    // 225 covered messages, in far fewer calls (one per read that carried some).
    let varz = http_get(mport, "/varz").await?.json()?;
    let calls = varz["plugins"][0]["calls"].as_u64().unwrap_or(0);
    ensure!(
        (1..=50).contains(&calls),
        "{calls} calls for 225 messages: {varz}"
    );
    Ok(())
}

/// `size-gate` (written with the SDK's `#[batch_transformer]`): payloads over the limit of
/// their subject prefix are refused (`on_failure: reject` → the publisher's -ERR with the
/// plugin's reason); the others arrive unchanged and in order.
#[tokio::test]
async fn size_gate_refuses_oversized_payloads() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let conf = format!(
        r#"
plugin_cache_dir: {cache}
plugins {{
  gate: {{
    path: {gate}
    role: transformer
    subjects: ["data.>"]
    on_failure: reject
    deadline: "{RELAXED_DEADLINE}"
    config: {{ max_bytes: 8, prefixes: {{ "data.tiny.": 2 }} }}
  }}
}}
"#,
        cache = cache_dir(),
        gate = wasm("size-gate")?,
    );
    let server = TestServer::with_config(&conf)?;
    let sub_client = connect(&server.url()).await?;
    let mut sub = sub_client.subscribe("data.>").await?;
    sync(&sub_client).await?;
    let mut raw = raw_login(&server, "").await?;
    let out = raw_round(
        &mut raw,
        "PUB data.a 8\r\n12345678\r\nPUB data.a 9\r\n123456789\r\n\
         PUB data.tiny.x 2\r\nok\r\nPUB data.tiny.x 3\r\nbig\r\n",
    )
    .await?;
    ensure!(
        out.contains(
            "-ERR 'Permissions Violation for Publish to \"data.a\": Message Rejected: \
             payload of 9 bytes is over the limit of 8'"
        ) && out.contains(
            "-ERR 'Permissions Violation for Publish to \"data.tiny.x\": Message Rejected: \
             payload of 3 bytes is over the limit of 2'"
        ),
        "{out}"
    );
    for (subject, payload) in [("data.a", "12345678"), ("data.tiny.x", "ok")] {
        let m = next_msg(&mut sub, "a gated message").await?;
        ensure!(
            m.subject.as_str() == subject && m.payload == payload.as_bytes(),
            "expected {subject} {payload}, got {} {:?}",
            m.subject,
            m.payload
        );
    }
    assert_no_msg(&mut sub, Duration::from_millis(200), "an oversized message").await?;
    Ok(())
}

/// A per-message transformer gets a read's messages in one `transform-batch` call; when that
/// call fails (here: the guest answers with one outcome too few when the first subject is
/// `short`), each message is tried alone, so every message still gets its own decision.
#[tokio::test]
async fn per_message_transformers_get_transform_batch() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let conf = format!(
        r#"
plugin_cache_dir: {cache}
plugins {{
  pass: {{
    path: {pass}
    role: transformer
    subjects: ["short", "x.>", "drop"]
    on_failure: reject
    deadline: "{RELAXED_DEADLINE}"
  }}
}}
"#,
        cache = cache_dir(),
        pass = wasm("passthrough")?,
    );
    let server = TestServer::with_config_and_args(&conf, &["-m", "-1"])?;
    let mport = server.monitor_port().context("no monitoring port logged")?;
    let sub_client = connect(&server.url()).await?;
    let mut sub = sub_client.subscribe("x.>").await?;
    sync(&sub_client).await?;
    let mut raw = raw_login(&server, "").await?;
    let plugin_stats = || async {
        let varz = http_get(mport, "/varz").await?.json()?;
        anyhow::Ok(varz["plugins"][0].clone())
    };

    // 1. A burst: 102 covered messages in far fewer calls; the `drop` one alone is rejected.
    let mut burst = String::new();
    for i in 0..100 {
        burst.push_str(&format!("PUB x.{i} 1\r\n{}\r\n", i % 10));
    }
    burst.push_str("PUB drop 1\r\nd\r\nPUB x.last 1\r\nl\r\n");
    let out = raw_round(&mut raw, &burst).await?;
    let rejected = out.matches("-ERR 'Permissions Violation for Publish to \"drop\": Message Rejected: dropped by request'");
    ensure!(rejected.count() == 1, "{out}");
    for i in 0..100 {
        let m = next_msg(&mut sub, "a passed message").await?;
        ensure!(m.subject.as_str() == format!("x.{i}"), "got {}", m.subject);
    }
    let m = next_msg(&mut sub, "the last message").await?;
    ensure!(m.subject.as_str() == "x.last", "got {}", m.subject);
    let p = plugin_stats().await?;
    let calls = p["calls"].as_u64().unwrap_or(0);
    ensure!(
        calls < 102,
        "102 messages in {calls} calls: no batching? {p}"
    );

    // 2. A burst whose batch call fails: every message is still decided on, one by one.
    let mut burst = String::from("PUB short 1\r\ns\r\n");
    for i in 0..20 {
        burst.push_str(&format!("PUB x.again.{i} 1\r\na\r\n"));
    }
    let out = raw_round(&mut raw, &burst).await?;
    ensure!(!out.contains("-ERR"), "{out}");
    for i in 0..20 {
        let m = next_msg(&mut sub, "a message of the failed batch").await?;
        ensure!(
            m.subject.as_str() == format!("x.again.{i}"),
            "got {}",
            m.subject
        );
    }
    let p = plugin_stats().await?;
    ensure!(p["errors"]["malformed"].as_u64() == Some(1), "{p}");
    Ok(())
}

// ---- rejections the official clients understand ---------------------------------------------

/// The size-gate bound with `on_failure: reject` on `data.>`, with JetStream on (the stream
/// is created by the test).
pub(crate) fn reject_conf(store: &std::path::Path) -> Result<String> {
    Ok(format!(
        r#"
plugin_cache_dir: {cache}
jetstream {{ store_dir: {store:?} }}
plugins {{
  gate: {{
    path: {gate}
    role: transformer
    subjects: ["data.>"]
    on_failure: reject
    deadline: "{RELAXED_DEADLINE}"
    config: {{ max_bytes: 8 }}
  }}
}}
"#,
        cache = cache_dir(),
        store = store.display().to_string(),
        gate = wasm("size-gate")?,
    ))
}

/// A rejected publisher stays connected with async-nats and learns why, in each form: its
/// event callback gets the non-fatal `-ERR 'Permissions Violation for Publish to ...:
/// Message Rejected: <reason>'`; a request gets a `403` status reply carrying the reason at
/// once; a JetStream publish gets an API error with the reason, so the ack future fails fast.
#[tokio::test]
async fn rejected_publishers_stay_connected_and_learn_why() -> Result<()> {
    if skip() {
        return Ok(());
    }
    const REASON: &str = "payload of 9 bytes is over the limit of 8";
    let store = tempfile::tempdir()?;
    let server = TestServer::with_config(&reject_conf(store.path())?)?;
    let (opts, mut events) = with_events(ConnectOptions::new());
    let client = connect_with(&server.url(), opts).await?;
    let mut sub = client.subscribe("data.plain").await?;
    sync(&client).await?;

    // 1. A plain publish: the error event, the connection stays up and keeps working.
    client.publish("data.plain", "123456789".into()).await?;
    let ev = next_event(&mut events, "the rejection event").await?;
    ensure!(
        ev == format!(
            "server error: nats: Permissions Violation for Publish to \"data.plain\": \
             Message Rejected: {REASON}"
        ),
        "event: {ev}"
    );
    client.publish("data.plain", "ok".into()).await?;
    let m = next_msg(&mut sub, "a publish after the rejection").await?;
    ensure!(m.payload == "ok", "got {:?}", m.payload);

    // 2. A request: a fast 403 status reply with the reason.
    let started = Instant::now();
    let reply = within(
        IO_TIMEOUT,
        "the rejected request",
        client.request("data.req", "123456789".into()),
    )
    .await?
    .context("a rejected request must get a reply, not an error")?;
    ensure!(
        reply.status.map(u16::from) == Some(403) && reply.description.as_deref() == Some(REASON),
        "reply status {:?} description {:?}",
        reply.status,
        reply.description
    );
    ensure!(
        started.elapsed() < Duration::from_secs(1),
        "the rejection took {:?}",
        started.elapsed()
    );

    // 3. JetStream: the ack future fails with the plugin's reason; a small message is stored.
    let js = async_nats::jetstream::new(client.clone());
    within(
        IO_TIMEOUT,
        "create stream",
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "DATA".into(),
            subjects: vec!["data.js.>".into()],
            ..Default::default()
        }),
    )
    .await??;
    let started = Instant::now();
    let ack = js.publish("data.js.1", "123456789".into()).await?;
    let err = match within(IO_TIMEOUT, "the rejected js publish", async { ack.await }).await? {
        Ok(ack) => bail!("a rejected JetStream publish was acknowledged: {ack:?}"),
        Err(e) => e,
    };
    let text = format!("{err}");
    ensure!(
        text.contains(REASON) && text.contains("10900"),
        "js.publish error: {text}"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(1),
        "the rejection took {:?}",
        started.elapsed()
    );
    let ack = js.publish("data.js.2", "small".into()).await?.await?;
    ensure!(ack.sequence == 1, "ack {ack:?}");
    ensure!(
        client.connection_state() == async_nats::connection::State::Connected,
        "the publisher must still be connected"
    );
    while let Ok(ev) = events.try_recv() {
        ensure!(
            !ev.contains("disconnected"),
            "the client was disconnected: {ev}"
        );
    }
    Ok(())
}
