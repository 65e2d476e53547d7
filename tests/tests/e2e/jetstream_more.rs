//! JetStream, part 2: what a stream does beyond storing its own subjects (no consumers).
//!
//! Sources and mirrors copying between streams, republishing stored messages to core
//! subscribers, subject transforms, sealed and delete/purge-denying streams, memory storage,
//! server and account limits, account isolation, the `/jsz` monitoring endpoint, and a
//! key-value smoke test with the async-nats KV API (the parts that need no consumers).
//!
//! Like part 1, every case is validated against nats-server 2.9.10; the few 2.10-only
//! features are gated with `natrium_tests::is_nats_server()` and say why.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use async_nats::jetstream::{
    self,
    context::PublishError,
    kv::{self, Operation},
    message::PublishMessage,
    stream::{Config, Republish, Source, StorageType, SubjectTransform},
};
use bytes::Bytes;
use futures::TryStreamExt;
use natrium_tests::{connect_with, http_get, next_msg, sync, within, TestServer};
use serde_json::{json, Value};

use crate::jetstream::{
    api, ensure_api_error, js_context, publish, publish_api_error, publish_msg, publish_rejected,
    state, stream_config, Js, API_TIMEOUT,
};

/// How long a mirror or source gets to catch up with its origin.
const COPY_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until stream `name` holds at least `n` messages, then checks it holds exactly `n`.
async fn wait_for_messages(
    js: &jetstream::Context,
    name: &str,
    n: u64,
) -> Result<jetstream::stream::State> {
    let deadline = Instant::now() + COPY_TIMEOUT;
    loop {
        let st = state(js, name).await?;
        if st.messages >= n {
            ensure!(
                st.messages == n,
                "stream {name}: expected {n} messages, got {st:?}"
            );
            return Ok(st);
        }
        if Instant::now() >= deadline {
            bail!("stream {name} did not reach {n} messages within {COPY_TIMEOUT:?}: {st:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(subject, payload)` of every message of stream `name` from its first to its last
/// sequence, in stream order.
async fn contents(js: &jetstream::Context, name: &str) -> Result<Vec<(String, String)>> {
    let st = state(js, name).await?;
    let stream = within(API_TIMEOUT, "get stream", js.get_stream(name)).await??;
    let mut out = Vec::new();
    for seq in st.first_sequence..=st.last_sequence {
        let m = within(API_TIMEOUT, "get message", stream.get_raw_message(seq))
            .await?
            .with_context(|| format!("getting message {seq} of {name}"))?;
        out.push((
            m.subject.to_string(),
            String::from_utf8_lossy(&m.payload).into_owned(),
        ));
    }
    Ok(out)
}

/// `[(subject, payload)]` from string pairs, for comparisons.
fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(s, p)| (s.to_string(), p.to_string()))
        .collect()
}

/// Creates stream `cfg`, failing with context on error.
async fn create(js: &jetstream::Context, cfg: Config) -> Result<()> {
    let name = cfg.name.clone();
    within(API_TIMEOUT, "create stream", js.create_stream(cfg))
        .await?
        .with_context(|| format!("creating stream {name}"))?;
    Ok(())
}

/// A source stream copies the existing and new messages of its origins, with their
/// subjects; a source's `filter_subject` copies only the matching ones, and `opt_start_seq`
/// starts the copy at that sequence of the origin.
#[tokio::test]
async fn sources_copy_existing_and_new_messages() -> Result<()> {
    let Js { js, .. } = &Js::start().await?;
    create(js, stream_config("A", &["a.>"])).await?;
    create(js, stream_config("B", &["b.>"])).await?;
    publish(js, "a.1", "a1").await?;
    publish(js, "a.2", "a2").await?;
    publish(js, "b.x", "bx1").await?;
    publish(js, "b.y", "by1").await?;

    let agg = Config {
        name: "AGG".to_string(),
        storage: StorageType::File,
        sources: Some(vec![
            Source {
                name: "A".to_string(),
                ..Default::default()
            },
            Source {
                name: "B".to_string(),
                filter_subject: Some("b.x".to_string()),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    create(js, agg).await?;
    wait_for_messages(js, "AGG", 3).await?;

    publish(js, "b.y", "by2").await?;
    publish(js, "a.3", "a3").await?;
    publish(js, "b.x", "bx2").await?;
    wait_for_messages(js, "AGG", 5).await?;
    // Give a wrongly copied b.y time to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = contents(js, "AGG").await?;
    ensure!(got.len() == 5, "AGG: {got:?}");
    // Each origin's messages keep their order; the two origins interleave in any order.
    let from_a: Vec<_> = got
        .iter()
        .filter(|(s, _)| s.starts_with("a."))
        .cloned()
        .collect();
    let from_b: Vec<_> = got
        .iter()
        .filter(|(s, _)| s.starts_with("b."))
        .cloned()
        .collect();
    ensure!(
        from_a == pairs(&[("a.1", "a1"), ("a.2", "a2"), ("a.3", "a3")]),
        "messages of A in AGG: {got:?}"
    );
    ensure!(
        from_b == pairs(&[("b.x", "bx1"), ("b.x", "bx2")]),
        "messages of B (filtered to b.x) in AGG: {got:?}"
    );
    // The origins are untouched.
    ensure!(state(js, "A").await?.messages == 3);
    ensure!(state(js, "B").await?.messages == 4);

    // opt_start_seq: copy A from its sequence 3 on.
    let late = Config {
        name: "LATE".to_string(),
        storage: StorageType::File,
        sources: Some(vec![Source {
            name: "A".to_string(),
            start_sequence: Some(3),
            ..Default::default()
        }]),
        ..Default::default()
    };
    create(js, late).await?;
    wait_for_messages(js, "LATE", 1).await?;
    publish(js, "a.4", "a4").await?;
    wait_for_messages(js, "LATE", 2).await?;
    let got = contents(js, "LATE").await?;
    ensure!(
        got == pairs(&[("a.3", "a3"), ("a.4", "a4")]),
        "LATE must start at A's sequence 3: {got:?}"
    );
    let info = within(API_TIMEOUT, "info", js.get_stream("LATE")).await??;
    let sources = &info.cached_info().sources;
    ensure!(
        sources.len() == 1 && sources[0].name == "A",
        "LATE's source info: {sources:?}"
    );
    Ok(())
}

/// A mirror holds its origin's messages with the same subjects, payloads and sequences, and
/// follows new ones; a mirror cannot also have subjects (`400 / 10034`).
#[tokio::test]
async fn mirror_follows_its_origin() -> Result<()> {
    let Js { js, client, .. } = &Js::start().await?;
    create(js, stream_config("A", &["a.>"])).await?;
    publish(js, "a.one", "1").await?;
    publish(js, "a.two", "2").await?;
    publish(js, "a.three", "3").await?;

    let mirror = Config {
        name: "M".to_string(),
        storage: StorageType::File,
        mirror: Some(Source {
            name: "A".to_string(),
            ..Default::default()
        }),
        ..Default::default()
    };
    create(js, mirror).await?;
    let st = wait_for_messages(js, "M", 3).await?;
    ensure!(
        st.first_sequence == 1 && st.last_sequence == 3,
        "a mirror keeps the origin's sequences: {st:?}"
    );
    let want = pairs(&[("a.one", "1"), ("a.two", "2"), ("a.three", "3")]);
    ensure!(contents(js, "M").await? == want, "mirror M");

    publish(js, "a.four", "4").await?;
    let st = wait_for_messages(js, "M", 4).await?;
    ensure!(st.last_sequence == 4, "{st:?}");
    let got = contents(js, "M").await?;
    ensure!(
        got.last() == Some(&("a.four".to_string(), "4".to_string())),
        "{got:?}"
    );
    let info = within(API_TIMEOUT, "info", js.get_stream("M")).await??;
    let m = info.cached_info();
    ensure!(
        m.config.mirror.as_ref().is_some_and(|s| s.name == "A") && m.config.subjects.is_empty(),
        "{:?}",
        m.config
    );
    ensure!(
        m.mirror.as_ref().is_some_and(|s| s.name == "A"),
        "mirror info: {:?}",
        m.mirror
    );

    let bad = api(
        client,
        "STREAM.CREATE.BAD",
        json!({"name": "BAD", "subjects": ["bad"], "storage": "file", "mirror": {"name": "A"}}),
    )
    .await?;
    ensure!(
        bad["error"]
            == json!({"code": 400, "err_code": 10034,
                      "description": "stream mirrors can not contain subjects"}),
        "{bad}"
    );
    Ok(())
}

/// With `republish`, every stored message is also published to the mapped subject for core
/// subscribers, with its own headers plus `Nats-Stream`, `Nats-Subject`, `Nats-Sequence` and
/// `Nats-Last-Sequence` (the previous sequence on that subject); with `headers_only` the body
/// is empty and `Nats-Msg-Size` gives its size.
#[tokio::test]
async fn republish_sends_stored_messages_to_core_subscribers() -> Result<()> {
    let Js { js, client, .. } = &Js::start().await?;
    let mut cfg = stream_config("ORD", &["orders.>"]);
    cfg.republish = Some(Republish {
        source: "orders.>".to_string(),
        destination: "repub.>".to_string(),
        headers_only: false,
    });
    create(js, cfg).await?;
    let mut sub = client.subscribe("repub.>").await?;
    sync(client).await?;

    let msg = PublishMessage::build()
        .payload(Bytes::from_static(b"o1"))
        .header("X-Custom", "yes");
    publish_msg(js, "orders.new", msg).await??;
    publish(js, "orders.old", "o2").await?;
    publish(js, "orders.new", "o3").await?;

    let header = |m: &async_nats::Message, name: &str| -> Option<String> {
        m.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    let m = next_msg(&mut sub, "first republished message").await?;
    ensure!(m.subject.as_str() == "repub.new", "{m:?}");
    ensure!(m.payload.as_ref() == b"o1", "{m:?}");
    ensure!(header(&m, "X-Custom").as_deref() == Some("yes"), "{m:?}");
    ensure!(header(&m, "Nats-Stream").as_deref() == Some("ORD"), "{m:?}");
    ensure!(
        header(&m, "Nats-Subject").as_deref() == Some("orders.new"),
        "{m:?}"
    );
    ensure!(header(&m, "Nats-Sequence").as_deref() == Some("1"), "{m:?}");
    ensure!(
        header(&m, "Nats-Last-Sequence").as_deref() == Some("0"),
        "{m:?}"
    );
    let m = next_msg(&mut sub, "second republished message").await?;
    ensure!(m.subject.as_str() == "repub.old", "{m:?}");
    ensure!(m.payload.as_ref() == b"o2", "{m:?}");
    ensure!(header(&m, "Nats-Sequence").as_deref() == Some("2"), "{m:?}");
    // Nats-Last-Sequence is the previous sequence on the same subject (0 if none).
    ensure!(
        header(&m, "Nats-Last-Sequence").as_deref() == Some("0"),
        "{m:?}"
    );
    ensure!(header(&m, "Nats-Msg-Size").is_none(), "{m:?}");
    let m = next_msg(&mut sub, "third republished message").await?;
    ensure!(m.subject.as_str() == "repub.new", "{m:?}");
    ensure!(m.payload.as_ref() == b"o3", "{m:?}");
    ensure!(header(&m, "Nats-Sequence").as_deref() == Some("3"), "{m:?}");
    ensure!(
        header(&m, "Nats-Last-Sequence").as_deref() == Some("1"),
        "{m:?}"
    );

    let mut cfg = stream_config("HO", &["ho.>"]);
    cfg.republish = Some(Republish {
        source: "ho.>".to_string(),
        destination: "rho.>".to_string(),
        headers_only: true,
    });
    create(js, cfg).await?;
    let mut sub = client.subscribe("rho.>").await?;
    sync(client).await?;
    publish(js, "ho.x", "hello").await?;
    let m = next_msg(&mut sub, "headers-only republished message").await?;
    ensure!(m.subject.as_str() == "rho.x", "{m:?}");
    ensure!(m.payload.is_empty(), "headers_only sends no body: {m:?}");
    ensure!(header(&m, "Nats-Msg-Size").as_deref() == Some("5"), "{m:?}");
    ensure!(header(&m, "Nats-Stream").as_deref() == Some("HO"), "{m:?}");
    ensure!(header(&m, "Nats-Sequence").as_deref() == Some("1"), "{m:?}");
    // The stream itself stores the full message.
    let stream = within(API_TIMEOUT, "get stream", js.get_stream("HO")).await??;
    let stored = within(API_TIMEOUT, "get", stream.get_raw_message(1)).await??;
    ensure!(stored.payload.as_ref() == b"hello", "{stored:?}");
    Ok(())
}

/// `subject_transform` rewrites the subject a message is stored under: a publish on `in.a`
/// is stored as `stored.a`.
#[tokio::test]
async fn subject_transform_rewrites_stored_subjects() -> Result<()> {
    // Stream subject transforms are a nats-server 2.10 feature; 2.9.10 ignores the field.
    if natrium_tests::is_nats_server() {
        println!("note: nats-server 2.9 has no stream subject transforms, skipping");
        return Ok(());
    }
    let Js { js, .. } = &Js::start().await?;
    let mut cfg = stream_config("T", &["in.>"]);
    cfg.subject_transform = Some(SubjectTransform {
        source: "in.>".to_string(),
        destination: "stored.>".to_string(),
    });
    create(js, cfg).await?;
    let ack = publish(js, "in.a", "payload").await?;
    ensure!(ack.stream == "T" && ack.sequence == 1, "{ack:?}");
    let got = contents(js, "T").await?;
    ensure!(got == pairs(&[("stored.a", "payload")]), "{got:?}");
    let stream = within(API_TIMEOUT, "get stream", js.get_stream("T")).await??;
    let last = within(
        API_TIMEOUT,
        "last by subject",
        stream.get_last_raw_message_by_subject("stored.a"),
    )
    .await??;
    ensure!(last.sequence == 1, "{last:?}");
    Ok(())
}

/// A sealed stream takes no more messages (`400 / 10109`) and its messages can be neither
/// deleted nor purged; `deny_delete` forbids `MSG.DELETE` (`500 / 10057`) and `deny_purge`
/// forbids purges (`500 / 10110`).
#[tokio::test]
async fn sealed_deny_delete_and_deny_purge() -> Result<()> {
    let Js { js, client, .. } = &Js::start().await?;
    let mut cfg = stream_config("S", &["s.>"]);
    create(js, cfg.clone()).await?;
    publish(js, "s.a", "1").await?;
    publish(js, "s.b", "2").await?;
    cfg.sealed = true;
    let info = within(API_TIMEOUT, "seal", js.update_stream(&cfg))
        .await?
        .context("sealing a stream")?;
    ensure!(info.config.sealed, "{:?}", info.config);
    let sealed = "invalid operation on sealed stream";
    publish_rejected(
        js,
        "s.c",
        PublishMessage::build().payload(Bytes::from_static(b"3")),
        400,
        10109,
        sealed,
    )
    .await?;
    let del = api(client, "STREAM.MSG.DELETE.S", json!({"seq": 1})).await?;
    ensure!(
        del["error"] == json!({"code": 400, "err_code": 10109, "description": sealed}),
        "{del}"
    );
    let purge = api(client, "STREAM.PURGE.S", json!({})).await?;
    ensure!(
        purge["error"] == json!({"code": 400, "err_code": 10109, "description": sealed}),
        "{purge}"
    );
    let st = state(js, "S").await?;
    ensure!(st.messages == 2 && st.last_sequence == 2, "{st:?}");

    let mut cfg = stream_config("DD", &["dd"]);
    cfg.deny_delete = true;
    create(js, cfg).await?;
    publish(js, "dd", "1").await?;
    let del = api(client, "STREAM.MSG.DELETE.DD", json!({"seq": 1})).await?;
    ensure!(
        del["error"]
            == json!({"code": 500, "err_code": 10057,
                      "description": "message delete not permitted"}),
        "{del}"
    );
    // Purging is still allowed.
    let purge = api(client, "STREAM.PURGE.DD", json!({})).await?;
    ensure!(purge["success"] == true && purge["purged"] == 1, "{purge}");

    let mut cfg = stream_config("DP", &["dp"]);
    cfg.deny_purge = true;
    create(js, cfg).await?;
    publish(js, "dp", "1").await?;
    publish(js, "dp", "2").await?;
    let purge = api(client, "STREAM.PURGE.DP", json!({})).await?;
    ensure!(
        purge["error"]
            == json!({"code": 500, "err_code": 10110,
                      "description": "stream purge not permitted"}),
        "{purge}"
    );
    // Deleting single messages is still allowed.
    let del = api(client, "STREAM.MSG.DELETE.DP", json!({"seq": 1})).await?;
    ensure!(del["success"] == true, "{del}");
    ensure!(state(js, "DP").await?.messages == 1);
    Ok(())
}

/// A memory stream stores, serves (by sequence, last by subject and direct get) and deletes
/// messages like a file stream, is counted under `memory` (not `storage`) in
/// `$JS.API.INFO`, and does not survive a restart.
#[tokio::test]
async fn memory_stream_works_and_counts_as_memory() -> Result<()> {
    let mut s = Js::start().await?;
    let mut cfg = stream_config("MEM", &["mem.*"]);
    cfg.storage = StorageType::Memory;
    cfg.allow_direct = true;
    create(&s.js, cfg).await?;
    for (subject, payload) in [("mem.a", "a1"), ("mem.b", "b1"), ("mem.a", "a2")] {
        publish(&s.js, subject, payload).await?;
    }
    let mut stream = within(API_TIMEOUT, "get stream", s.js.get_stream("MEM")).await??;
    let info = within(API_TIMEOUT, "info", stream.info()).await??.clone();
    ensure!(
        info.config.storage == StorageType::Memory,
        "{:?}",
        info.config
    );
    ensure!(
        info.state.messages == 3 && info.state.bytes > 0,
        "{:?}",
        info.state
    );
    ensure!(
        contents(&s.js, "MEM").await?
            == pairs(&[("mem.a", "a1"), ("mem.b", "b1"), ("mem.a", "a2")])
    );
    let last = within(
        API_TIMEOUT,
        "last by subject",
        stream.get_last_raw_message_by_subject("mem.a"),
    )
    .await??;
    ensure!(
        last.sequence == 3 && last.payload.as_ref() == b"a2",
        "{last:?}"
    );
    let direct = within(API_TIMEOUT, "direct get", stream.direct_get(2)).await??;
    ensure!(direct.payload.as_ref() == b"b1", "{direct:?}");
    within(API_TIMEOUT, "delete", stream.delete_message(1)).await??;

    let acct = api(&s.client, "INFO", json!({})).await?;
    let st = state(&s.js, "MEM").await?;
    ensure!(st.messages == 2, "{st:?}");
    ensure!(
        acct["memory"] == st.bytes && acct["storage"] == 0,
        "a memory stream counts as memory: {acct} vs {st:?}"
    );

    s.restart().await?;
    let names: Vec<String> =
        within(API_TIMEOUT, "names", s.js.stream_names().try_collect()).await??;
    ensure!(
        names.is_empty(),
        "a memory stream does not survive a restart: {names:?}"
    );
    Ok(())
}

/// Publishes 1000-byte messages to `subject` until one is rejected (at most twice `limit`
/// bytes' worth); returns how many were stored and the rejection.
async fn fill_until_rejected(
    js: &jetstream::Context,
    subject: &str,
    limit: u64,
) -> Result<(u64, PublishError)> {
    let payload = Bytes::from("x".repeat(1000));
    let mut stored = 0u64;
    for _ in 0..(2 * limit / 1000) {
        let msg = PublishMessage::build().payload(payload.clone());
        match publish_msg(js, subject, msg).await? {
            Ok(_) => stored += 1,
            Err(e) => return Ok((stored, e)),
        }
    }
    bail!("{stored} publishes of 1000 bytes to {subject} all went past the limit of {limit} bytes")
}

/// With the server's `jetstream { max_file_store }`, a publish that would go past it is
/// rejected with nats-server's `503 / 10023 "insufficient resources"` and nothing more is
/// stored.
#[tokio::test]
async fn server_max_file_store_rejects_publishes_past_it() -> Result<()> {
    const LIMIT: u64 = 100_000;
    let store = tempfile::tempdir()?;
    let conf = format!(
        "jetstream {{\n  store_dir: \"{}\"\n  max_file_store: {LIMIT}\n}}\n",
        store.path().display()
    );
    let server = TestServer::with_config(&conf)?;
    let client = natrium_tests::connect(&server.url()).await?;
    let js = &js_context(&client);
    create(js, stream_config("BIG", &["big"])).await?;

    let (stored, err) = fill_until_rejected(js, "big", LIMIT).await?;
    // nats-server 2.9.10 checks the server-wide limit on every publish and answers
    // `NewJSInsufficientResourcesError` (10023); 10047 "insufficient storage resources
    // available" is what it answers when a stream's max_bytes cannot be reserved at create.
    ensure_api_error(
        publish_api_error(&err)?,
        503,
        10023,
        "insufficient resources",
    )?;
    ensure!(stored > 10, "only {stored} messages fit into {LIMIT} bytes");
    let st = state(js, "BIG").await?;
    ensure!(st.messages == stored, "{st:?}");
    ensure!(st.bytes <= LIMIT + 2000, "{st:?}");
    // It stays full.
    publish_rejected(
        js,
        "big",
        PublishMessage::build().payload(Bytes::from("x".repeat(1000))),
        503,
        10023,
        "insufficient resources",
    )
    .await?;
    Ok(())
}

/// A JetStream server whose only account `A` (user `a`, password `a`) has
/// `jetstream { <js> }`, and a client of `A`. Keep the store and the server alive.
async fn account_a(js: &str) -> Result<(tempfile::TempDir, TestServer, async_nats::Client)> {
    let store = tempfile::tempdir()?;
    let conf = format!(
        "jetstream {{ store_dir: \"{}\" }}\n\
         accounts {{\n  A {{\n    users [{{user: a, password: a}}]\n    jetstream {{ {js} }}\n  }}\n}}\n",
        store.path().display()
    );
    let server = TestServer::with_config(&conf)?;
    let client = connect_with(
        &server.url(),
        async_nats::ConnectOptions::with_user_and_password("a".into(), "a".into()),
    )
    .await?;
    Ok((store, server, client))
}

/// An account's `jetstream { max_file }` is checked on every publish: past it, a publish is
/// rejected with `400 / 10002 "resource limits exceeded for account"`.
#[tokio::test]
async fn account_max_file_rejects_publishes_past_it() -> Result<()> {
    const LIMIT: u64 = 50_000;
    let (_store, _server, client) = account_a(&format!("max_file: {LIMIT}")).await?;
    let js = &js_context(&client);
    let info = api(&client, "INFO", json!({})).await?;
    ensure!(info["limits"]["max_storage"] == LIMIT, "{info}");
    create(js, stream_config("BIG", &["big"])).await?;
    let (stored, err) = fill_until_rejected(js, "big", LIMIT).await?;
    ensure_api_error(
        publish_api_error(&err)?,
        400,
        10002,
        "resource limits exceeded for account",
    )?;
    ensure!(stored > 10, "only {stored} messages fit into {LIMIT} bytes");
    let st = state(js, "BIG").await?;
    ensure!(st.messages == stored && st.bytes <= LIMIT + 2000, "{st:?}");
    Ok(())
}

/// An account's `jetstream { max_stream_bytes: true }` is nats-server's boolean "max bytes
/// required": the server starts, a stream without `max_bytes` is `400 / 10113`, and one above
/// `disk_max_stream_bytes`/`mem_max_stream_bytes` is `400 / 10122`, on create and update.
/// Account info reports the limits.
#[tokio::test]
async fn account_max_stream_bytes_limits() -> Result<()> {
    const MEM: i64 = 1 << 20;
    const DISK: i64 = 2 << 20;
    let (_store, _server, client) = account_a(&format!(
        "max_stream_bytes: true, mem_max_stream_bytes: {MEM}, \
         disk_max_stream_bytes: {DISK}, max_ack_pending: 100"
    ))
    .await?;
    let info = api(&client, "INFO", json!({})).await?;
    let limits = &info["limits"];
    ensure!(
        limits["max_bytes_required"] == true
            && limits["memory_max_stream_bytes"] == MEM
            && limits["storage_max_stream_bytes"] == DISK
            && limits["max_ack_pending"] == 100,
        "{info}"
    );
    let required = json!({"code": 400, "err_code": 10113,
        "description": "account requires a stream config to have max bytes set"});
    let exceeded = json!({"code": 400, "err_code": 10122,
        "description": "stream max bytes exceeds account limit max stream bytes"});
    let request = |verb: &str, storage: &str, max_bytes: Option<i64>| {
        let mut cfg = json!({"name": "S", "subjects": ["s"], "storage": storage});
        if let Some(n) = max_bytes {
            cfg["max_bytes"] = json!(n);
        }
        let subject = format!("STREAM.{verb}.S");
        let client = client.clone();
        async move { api(&client, &subject, cfg).await }
    };
    for (storage, limit) in [("memory", MEM), ("file", DISK)] {
        let r = request("CREATE", storage, None).await?;
        ensure!(r["error"] == required, "{storage}: {r}");
        let r = request("CREATE", storage, Some(-1)).await?;
        ensure!(r["error"] == required, "{storage}: {r}");
        let r = request("CREATE", storage, Some(limit + 1)).await?;
        ensure!(r["error"] == exceeded, "{storage}: {r}");
        let r = request("CREATE", storage, Some(limit)).await?;
        ensure!(r["error"].is_null(), "{storage}: {r}");
        let r = request("UPDATE", storage, Some(limit + 1)).await?;
        ensure!(r["error"] == exceeded, "{storage}: {r}");
        let r = request("UPDATE", storage, None).await?;
        ensure!(r["error"] == required, "{storage}: {r}");
        let r = api(&client, "STREAM.DELETE.S", json!({})).await?;
        ensure!(r["success"] == true, "{r}");
    }
    Ok(())
}

/// An account's `jetstream { max_streams: 1 }` lets it create one stream; the second is
/// `400 / 10027 "maximum number of streams reached"`.
#[tokio::test]
async fn account_max_streams_limits_stream_creation() -> Result<()> {
    let (_store, _server, client) = account_a("max_streams: 1").await?;
    let js = &js_context(&client);
    let info = api(&client, "INFO", json!({})).await?;
    ensure!(info["limits"]["max_streams"] == 1, "{info}");
    create(js, stream_config("ONE", &["one"])).await?;
    let two = api(
        &client,
        "STREAM.CREATE.TWO",
        json!({"name": "TWO", "subjects": ["two"], "storage": "file"}),
    )
    .await?;
    ensure!(
        two["error"]
            == json!({"code": 400, "err_code": 10027,
                      "description": "maximum number of streams reached"}),
        "{two}"
    );
    // Deleting the first makes room again.
    within(API_TIMEOUT, "delete", js.delete_stream("ONE")).await??;
    create(js, stream_config("TWO", &["two"])).await?;
    Ok(())
}

/// Two accounts with JetStream each see only their own streams, may both use the same
/// stream name and subjects, and a publish in one account is stored only there.
#[tokio::test]
async fn accounts_have_separate_streams() -> Result<()> {
    let store = tempfile::tempdir()?;
    let conf = format!(
        "jetstream {{ store_dir: \"{}\" }}\n\
         accounts {{\n  A {{ users [{{user: a, password: a}}], jetstream: enabled }}\n  \
         B {{ users [{{user: b, password: b}}], jetstream: enabled }}\n}}\n",
        store.path().display()
    );
    let server = TestServer::with_config(&conf)?;
    let url = server.url();
    let connect_as = |user: &str| {
        connect_with(
            &url,
            async_nats::ConnectOptions::with_user_and_password(user.into(), user.into()),
        )
    };
    let a = connect_as("a").await?;
    let b = connect_as("b").await?;
    let (ja, jb) = (js_context(&a), js_context(&b));
    create(&ja, stream_config("S", &["s.>"])).await?;
    create(&ja, stream_config("ONLY_A", &["only.a"])).await?;
    create(&jb, stream_config("S", &["s.>"])).await?;

    let names_a = api(&a, "STREAM.NAMES", json!({})).await?;
    ensure!(names_a["streams"] == json!(["ONLY_A", "S"]), "{names_a}");
    let names_b = api(&b, "STREAM.NAMES", json!({})).await?;
    ensure!(names_b["streams"] == json!(["S"]), "{names_b}");

    publish(&ja, "s.x", "from a").await?;
    publish(&ja, "s.x", "from a again").await?;
    let ack = publish(&jb, "s.x", "from b").await?;
    ensure!(
        ack.sequence == 1,
        "B's stream has its own sequence: {ack:?}"
    );
    ensure!(state(&ja, "S").await?.messages == 2);
    ensure!(state(&jb, "S").await?.messages == 1);
    ensure!(contents(&jb, "S").await? == pairs(&[("s.x", "from b")]));

    let info_b = api(&b, "STREAM.INFO.ONLY_A", json!({})).await?;
    ensure!(info_b["error"]["err_code"] == 10059, "{info_b}");
    let acct_a = api(&a, "INFO", json!({})).await?;
    let acct_b = api(&b, "INFO", json!({})).await?;
    ensure!(
        acct_a["streams"] == 2 && acct_b["streams"] == 1,
        "{acct_a} {acct_b}"
    );

    within(API_TIMEOUT, "delete", jb.delete_stream("S")).await??;
    ensure!(state(&ja, "S").await?.messages == 2, "A's S outlives B's");
    Ok(())
}

/// `/jsz` reports the server's JetStream totals (streams, messages, bytes, storage);
/// `/jsz?streams=true` adds `account_details` with each account's `stream_detail`, and
/// `?consumers=true` each stream's `consumer_detail`.
#[tokio::test]
async fn jsz_reports_streams_messages_and_bytes() -> Result<()> {
    let store = tempfile::tempdir()?;
    let sd = store.path().display().to_string();
    let server = TestServer::start(&["-js", "-sd", &sd, "-m", "-1"])?;
    let mport = server.monitor_port().context("no monitoring port logged")?;
    let client = natrium_tests::connect(&server.url()).await?;
    let js = &js_context(&client);

    let empty = http_get(mport, "/jsz").await?;
    ensure!(empty.status == 200, "{}", empty.status_line);
    let v = empty.json()?;
    for key in ["server_id", "now", "config", "memory", "storage", "api"] {
        ensure!(v.get(key).is_some(), "/jsz misses {key:?}: {v:#}");
    }
    ensure!(v["config"]["store_dir"].is_string(), "{v:#}");

    create(js, stream_config("J1", &["j1"])).await?;
    create(js, stream_config("J2", &["j2"])).await?;
    for i in 0..3 {
        publish(js, "j1", &format!("m{i}")).await?;
    }
    publish(js, "j2", "x").await?;
    let bytes = state(js, "J1").await?.bytes + state(js, "J2").await?.bytes;

    let v = http_get(mport, "/jsz").await?.json()?;
    ensure!(v["streams"] == 2, "{v:#}");
    ensure!(v["messages"] == 4, "{v:#}");
    ensure!(v["bytes"] == bytes, "bytes {bytes}: {v:#}");
    ensure!(v["storage"] == bytes && v["memory"] == 0, "{v:#}");
    ensure!(v["accounts"] == 1, "{v:#}");
    ensure!(v.get("account_details").is_none(), "{v:#}");

    let v = http_get(mport, "/jsz?streams=true").await?.json()?;
    let details = v["account_details"]
        .as_array()
        .with_context(|| format!("no account_details: {v:#}"))?;
    ensure!(details.len() == 1, "{v:#}");
    let acct = &details[0];
    ensure!(acct["name"] == "$G", "{acct:#}");
    let streams = acct["stream_detail"]
        .as_array()
        .with_context(|| format!("no stream_detail: {acct:#}"))?;
    let mut summary: Vec<(String, u64)> = streams
        .iter()
        .map(|s: &Value| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s["state"]["messages"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    summary.sort();
    ensure!(
        summary == [("J1".to_string(), 3), ("J2".to_string(), 1)],
        "{acct:#}"
    );

    // `consumers=true` adds each stream's consumers (and implies the stream details).
    js.get_stream("J1")
        .await?
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("C1".into()),
            ..Default::default()
        })
        .await?;
    let v = http_get(mport, "/jsz?consumers=true").await?.json()?;
    let j1 = v["account_details"][0]["stream_detail"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "J1"))
        .with_context(|| format!("no J1 detail: {v:#}"))?;
    let consumers = j1["consumer_detail"]
        .as_array()
        .with_context(|| format!("no consumer_detail: {j1:#}"))?;
    ensure!(
        consumers.len() == 1 && consumers[0]["name"] == "C1" && consumers[0]["num_pending"] == 3,
        "{consumers:#?}"
    );
    Ok(())
}

/// The key-value API on a bucket (a `KV_<bucket>` stream read with direct gets): put and
/// get, create only if absent, update only at the current revision, delete and purge
/// markers, and reading older revisions. Watch, keys and history need consumers, which
/// natrium does not have yet, so they are left out.
#[tokio::test]
async fn key_value_smoke() -> Result<()> {
    let Js { js, .. } = &Js::start().await?;
    let kv = crate::js_kv::kv_bucket(js, "cfg", 5, Duration::ZERO).await?;
    let status = within(API_TIMEOUT, "status", kv.status()).await??;
    ensure!(
        status.history() == 5 && status.bucket() == "cfg",
        "{status:?}"
    );
    let info = state(js, "KV_cfg").await?;
    ensure!(info.messages == 0, "{info:?}");

    let r1 = within(API_TIMEOUT, "put", kv.put("k1", "v1".into())).await??;
    ensure!(r1 == 1, "first revision {r1}");
    let got = within(API_TIMEOUT, "get", kv.get("k1")).await??;
    ensure!(got.as_deref() == Some(&b"v1"[..]), "{got:?}");
    let r2 = within(API_TIMEOUT, "put", kv.put("k1", "v2".into())).await??;
    ensure!(r2 == 2, "{r2}");
    let e = within(API_TIMEOUT, "entry", kv.entry("k1"))
        .await??
        .context("entry of k1")?;
    ensure!(
        e.revision == 2 && e.value.as_ref() == b"v2" && e.operation == Operation::Put,
        "{e:?}"
    );
    ensure!(e.key == "k1" && e.bucket == "cfg", "{e:?}");
    let missing = within(API_TIMEOUT, "get missing", kv.get("nope")).await??;
    ensure!(missing.is_none(), "{missing:?}");

    // create: only when the key has no value.
    let r3 = within(API_TIMEOUT, "create", kv.create("k2", "a".into())).await??;
    ensure!(r3 == 3, "{r3}");
    match within(API_TIMEOUT, "create again", kv.create("k2", "b".into())).await? {
        Ok(r) => bail!("creating an existing key succeeded with revision {r}"),
        Err(e) => ensure!(e.kind() == kv::CreateErrorKind::AlreadyExists, "{e:?}"),
    }

    // update: only at the key's current revision.
    let r4 = within(API_TIMEOUT, "update", kv.update("k2", "c".into(), r3)).await??;
    ensure!(r4 == 4, "{r4}");
    match within(API_TIMEOUT, "stale update", kv.update("k2", "d".into(), r3)).await? {
        Ok(r) => bail!("an update at stale revision {r3} succeeded with revision {r}"),
        Err(e) => ensure!(e.kind() == kv::UpdateErrorKind::WrongLastRevision, "{e:?}"),
    }
    let got = within(API_TIMEOUT, "get", kv.get("k2")).await??;
    ensure!(got.as_deref() == Some(&b"c"[..]), "{got:?}");

    // delete leaves a marker: get says None, entry shows the delete, create works again.
    within(API_TIMEOUT, "delete", kv.delete("k2")).await??;
    let got = within(API_TIMEOUT, "get deleted", kv.get("k2")).await??;
    ensure!(got.is_none(), "{got:?}");
    let e = within(API_TIMEOUT, "entry deleted", kv.entry("k2"))
        .await??
        .context("a deleted key has a delete entry")?;
    ensure!(e.operation == Operation::Delete && e.revision == 5, "{e:?}");
    let r6 = within(
        API_TIMEOUT,
        "create after delete",
        kv.create("k2", "e".into()),
    )
    .await??;
    ensure!(r6 == 6, "{r6}");

    // Older revisions stay readable (history 5).
    let old = within(API_TIMEOUT, "entry rev 3", kv.entry_for_revision("k2", 3))
        .await??
        .context("revision 3 of k2")?;
    ensure!(old.value.as_ref() == b"a" && old.revision == 3, "{old:?}");
    let other = within(
        API_TIMEOUT,
        "entry of other key",
        kv.entry_for_revision("k2", 1),
    )
    .await??;
    ensure!(other.is_none(), "revision 1 belongs to k1: {other:?}");

    // purge drops the key's history, leaving one purge marker.
    within(API_TIMEOUT, "purge", kv.purge("k1")).await??;
    let got = within(API_TIMEOUT, "get purged", kv.get("k1")).await??;
    ensure!(got.is_none(), "{got:?}");
    let e = within(API_TIMEOUT, "entry purged", kv.entry("k1"))
        .await??
        .context("a purged key has a purge entry")?;
    ensure!(e.operation == Operation::Purge && e.revision == 7, "{e:?}");
    let gone = within(
        API_TIMEOUT,
        "purged revision",
        kv.entry_for_revision("k1", 1),
    )
    .await??;
    ensure!(gone.is_none(), "revision 1 was purged: {gone:?}");
    let st = state(js, "KV_cfg").await?;
    ensure!(
        st.messages == 5 && st.first_sequence == 3 && st.last_sequence == 7,
        "k2's revisions 3-6 and k1's purge marker remain: {st:?}"
    );
    Ok(())
}

/// Once `accounts {}` are configured, only the accounts that enable JetStream have it; the
/// others get 503/10039 "JetStream not enabled for account" from the API.
#[tokio::test]
async fn jetstream_is_per_account_when_accounts_are_configured() -> Result<()> {
    let store = tempfile::tempdir()?;
    let conf = format!(
        "jetstream {{ store_dir: \"{}\" }}\n\
         accounts {{\n  A {{ users [{{user: a, password: a}}], jetstream: enabled }}\n  \
         B {{ users [{{user: b, password: b}}] }}\n}}\n",
        store.path().display()
    );
    let server = TestServer::with_config(&conf)?;
    let url = server.url();
    let connect_as = |user: &str| {
        connect_with(
            &url,
            async_nats::ConnectOptions::with_user_and_password(user.into(), user.into()),
        )
    };
    let a = connect_as("a").await?;
    let b = connect_as("b").await?;
    let info_a = api(&a, "INFO", json!({})).await?;
    ensure!(info_a.get("error").is_none(), "{info_a}");
    let info_b = api(&b, "INFO", json!({})).await?;
    ensure!(
        info_b["error"]
            == json!({"code": 503, "err_code": 10039, "description": "JetStream not enabled for account"}),
        "{info_b}"
    );
    let create_b = api(
        &b,
        "STREAM.CREATE.S",
        json!({"name": "S", "subjects": ["s"]}),
    )
    .await?;
    ensure!(create_b["error"]["err_code"] == 10039, "{create_b}");
    Ok(())
}

/// `jetstream { domain: hub, sync_interval: always }`: the API also answers on
/// `$JS.hub.API.>`, PubAcks carry the domain, and every acknowledged message is fsynced
/// (here: it is there after a restart). nats-server 2.9.10 predates `sync_interval`.
#[tokio::test]
async fn domain_and_sync_always() -> Result<()> {
    if natrium_tests::is_nats_server() {
        return Ok(());
    }
    let store = tempfile::tempdir()?;
    let conf = format!(
        "jetstream {{ store_dir: \"{}\", domain: hub, sync_interval: always }}\n",
        store.path().display()
    );
    let mut server = TestServer::with_config(&conf)?;
    let client = natrium_tests::connect(&server.url()).await?;
    let js = async_nats::jetstream::with_domain(client.clone(), "hub");
    create(&js, stream_config("D", &["d.>"])).await?;
    let ack = js.publish("d.1", "one".into()).await?.await?;
    ensure!(ack.domain == "hub", "{ack:?}");
    let info = within(
        API_TIMEOUT,
        "domain INFO",
        client.request("$JS.hub.API.INFO", Bytes::new()),
    )
    .await??;
    let info: serde_json::Value = serde_json::from_slice(&info.payload)?;
    ensure!(info["domain"] == "hub", "{info}");
    // Consumers answer pull requests addressed by domain too.
    let consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream("D")
        .await?
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await?;
    let mut msgs = consumer.fetch().max_messages(1).messages().await?;
    let m = within(
        API_TIMEOUT,
        "a fetch by domain",
        futures::StreamExt::next(&mut msgs),
    )
    .await?
    .context("no message")?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(m.payload.as_ref() == b"one");
    drop(client);
    server.restart()?;
    let client = natrium_tests::connect(&server.url()).await?;
    let js = async_nats::jetstream::with_domain(client, "hub");
    ensure!(contents(&js, "D").await? == pairs(&[("d.1", "one")]));
    Ok(())
}

/// Eight clients publishing to one stream at once, each with 64 acks in flight: every
/// message is acknowledged once, the sequences are exactly 1..=N with no gap or repeat, and
/// each client's own messages are stored in the order it sent them.
#[tokio::test]
async fn concurrent_publishers_get_unique_contiguous_sequences() -> Result<()> {
    let Js { server, js, .. } = &Js::start().await?;
    create(js, stream_config("MANY", &["many.>"])).await?;
    let (clients, per_client) = (8usize, 500usize);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = natrium_tests::connect(&server.url()).await?;
        tasks.push(tokio::spawn(async move {
            let js = js_context(&client);
            let mut seqs = Vec::with_capacity(per_client);
            for chunk in (0..per_client).collect::<Vec<_>>().chunks(64) {
                let mut acks = Vec::new();
                for i in chunk {
                    let subject = format!("many.c{c}");
                    acks.push(js.publish(subject, format!("{c}:{i}").into()).await?);
                }
                for ack in acks {
                    seqs.push(ack.await?.sequence);
                }
            }
            anyhow::Ok(seqs)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seqs = within(Duration::from_secs(30), "publisher", t).await???;
        ensure!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one client's messages stored out of order"
        );
        all.extend(seqs);
    }
    all.sort_unstable();
    let n = (clients * per_client) as u64;
    ensure!(
        all == (1..=n).collect::<Vec<_>>(),
        "sequences are not exactly 1..={n}"
    );
    ensure!(state(js, "MANY").await?.messages == n);
    Ok(())
}
