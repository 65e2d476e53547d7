//! JetStream, part 1: durable streams on disk and the stream API (no consumers).
//!
//! With `-js -sd <dir>` the official clients' stream APIs work: create, info, update and
//! delete streams; publish with acknowledgements, de-duplication and expectation headers;
//! the stream limits; getting, deleting and purging messages; roll-ups; listing streams;
//! account info; and every acknowledged message survives a restart, even a `kill -9`.
//!
//! Each error case asserts the exact JetStream API error nats-server 2.9.10 returns:
//! `{"code":<HTTP-ish code>,"err_code":<JS error code>,"description":"..."}`.

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use async_nats::jetstream::{
    self,
    context::{CreateStreamErrorKind, GetStreamErrorKind, PublishError, PublishErrorKind},
    message::PublishMessage,
    publish::PublishAck,
    stream::{
        Config, DeleteMessageErrorKind, DirectGetErrorKind, DiscardPolicy, LastRawMessageErrorKind,
        StorageType,
    },
};
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};
use natrium_tests::{connect, within, TestServer};
use serde_json::json;

/// Timeout for a single JetStream API round trip in these tests.
pub(crate) const API_TIMEOUT: Duration = Duration::from_secs(10);

/// A JetStream-enabled server whose store directory outlives restarts, plus a client.
pub(crate) struct Js {
    pub(crate) server: TestServer,
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) store: tempfile::TempDir,
}

impl Js {
    /// Starts a server with `-js -sd <store>` and connects a JetStream client to it.
    pub(crate) async fn start() -> Result<Self> {
        let store = tempfile::tempdir().context("creating the JetStream store dir")?;
        let sd = store.path().display().to_string();
        let server = TestServer::start(&["-js", "-sd", &sd])?;
        let client = connect(&server.url()).await?;
        let js = js_context(&client);
        Ok(Js {
            server,
            client,
            js,
            store,
        })
    }

    /// Restarts the server on the same port and store dir and connects a fresh client.
    pub(crate) async fn restart(&mut self) -> Result<()> {
        self.server.restart()?;
        self.client = connect(&self.server.url()).await?;
        self.js = js_context(&self.client);
        Ok(())
    }
}

/// A JetStream context with a generous API timeout: creating a file stream fsyncs, which
/// can take seconds on a loaded machine.
pub(crate) fn js_context(client: &async_nats::Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(10))
        .build(client.clone())
}

/// A file-backed stream config named `name` capturing `subjects`.
pub(crate) fn stream_config(name: &str, subjects: &[&str]) -> Config {
    Config {
        name: name.to_string(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        storage: StorageType::File,
        ..Default::default()
    }
}

/// Asserts `err` is exactly the JetStream API error `{code, err_code, description}`.
pub(crate) fn ensure_api_error(
    err: &jetstream::Error,
    code: usize,
    err_code: u64,
    description: &str,
) -> Result<()> {
    let got = serde_json::to_value(err)?;
    let want = json!({"code": code, "err_code": err_code, "description": description});
    ensure!(got == want, "expected API error {want}, got {got}");
    Ok(())
}

/// The JetStream API error behind a failed publish acknowledgement.
pub(crate) fn publish_api_error(err: &PublishError) -> Result<&jetstream::Error> {
    std::error::Error::source(err)
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .with_context(|| format!("publish error {err:?} carries no JetStream API error"))
}

/// Publishes `msg` to `subject` and waits for the acknowledgement.
pub(crate) async fn publish_msg(
    js: &jetstream::Context,
    subject: &str,
    msg: PublishMessage,
) -> Result<std::result::Result<PublishAck, PublishError>> {
    within(API_TIMEOUT, &format!("publish ack on {subject}"), async {
        match js.send_publish(subject.to_string(), msg).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        }
    })
    .await
}

/// Publishes `payload` to `subject` and returns the (successful) acknowledgement.
pub(crate) async fn publish(
    js: &jetstream::Context,
    subject: &str,
    payload: &str,
) -> Result<PublishAck> {
    let msg = PublishMessage::build().payload(Bytes::from(payload.to_string()));
    publish_msg(js, subject, msg)
        .await?
        .with_context(|| format!("publishing {payload:?} to {subject}"))
}

/// Publishes `msg`, expecting the server to reject it with exactly the given API error.
pub(crate) async fn publish_rejected(
    js: &jetstream::Context,
    subject: &str,
    msg: PublishMessage,
    code: usize,
    err_code: u64,
    description: &str,
) -> Result<PublishError> {
    match publish_msg(js, subject, msg).await? {
        Ok(ack) => bail!("publish to {subject} was accepted ({ack:?}); expected {description:?}"),
        Err(e) => {
            ensure_api_error(publish_api_error(&e)?, code, err_code, description)
                .with_context(|| format!("publishing to {subject}"))?;
            Ok(e)
        }
    }
}

/// Current state of stream `name`, fetched from the server.
pub(crate) async fn state(js: &jetstream::Context, name: &str) -> Result<jetstream::stream::State> {
    let mut stream = within(API_TIMEOUT, "get stream", js.get_stream(name))
        .await?
        .with_context(|| format!("getting stream {name}"))?;
    let info = within(API_TIMEOUT, "stream info", stream.info())
        .await?
        .with_context(|| format!("stream info of {name}"))?;
    Ok(info.state.clone())
}

/// A raw JetStream API request (`$JS.API.<subject>`), for responses the client hides.
pub(crate) async fn api(
    client: &async_nats::Client,
    subject: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    let subject = format!("$JS.API.{subject}");
    let resp = within(
        API_TIMEOUT,
        &subject,
        client.request(subject.clone(), Bytes::from(body.to_string())),
    )
    .await?
    .with_context(|| format!("request to {subject}"))?;
    serde_json::from_slice(&resp.payload).with_context(|| {
        format!(
            "{subject} response is not JSON: {:?}",
            String::from_utf8_lossy(&resp.payload)
        )
    })
}

/// The payloads of the messages of stream `name` at `seqs`, in order.
pub(crate) async fn payloads(
    js: &jetstream::Context,
    name: &str,
    seqs: &[u64],
) -> Result<Vec<String>> {
    let stream = within(API_TIMEOUT, "get stream", js.get_stream(name)).await??;
    let mut out = Vec::new();
    for &seq in seqs {
        let m = within(API_TIMEOUT, "get message", stream.get_raw_message(seq))
            .await?
            .with_context(|| format!("getting message {seq} of {name}"))?;
        out.push(String::from_utf8_lossy(&m.payload).into_owned());
    }
    Ok(out)
}

/// A stream can be created, inspected, updated and deleted; once deleted, its info is
/// `404 / 10059 "stream not found"`.
#[tokio::test]
async fn stream_create_info_update_delete() -> Result<()> {
    // Bind the whole server: dropping it stops it.
    let s = Js::start().await?;
    let js = &s.js;
    let mut cfg = stream_config("ORDERS", &["orders.>"]);
    cfg.max_messages = 10;
    let mut stream = within(API_TIMEOUT, "create", js.get_or_create_stream(cfg.clone()))
        .await?
        .context("get_or_create_stream of a new stream")?;
    let info = within(API_TIMEOUT, "info", stream.info()).await??.clone();
    ensure!(info.config.name == "ORDERS", "config {:?}", info.config);
    ensure!(info.config.subjects == ["orders.>"], "{:?}", info.config);
    ensure!(info.config.max_messages == 10, "{:?}", info.config);
    ensure!(
        info.config.storage == StorageType::File,
        "{:?}",
        info.config
    );
    ensure!(
        info.state.messages == 0,
        "fresh stream state {:?}",
        info.state
    );
    ensure!(info.state.last_sequence == 0, "{:?}", info.state);

    publish(js, "orders.new", "o1").await?;
    publish(js, "orders.new", "o2").await?;
    let st = state(js, "ORDERS").await?;
    ensure!(st.messages == 2, "{st:?}");
    ensure!(st.first_sequence == 1 && st.last_sequence == 2, "{st:?}");
    ensure!(st.bytes > 0, "{st:?}");

    // get_or_create on an existing stream returns it (with its messages).
    let again = within(
        API_TIMEOUT,
        "get_or_create",
        js.get_or_create_stream(cfg.clone()),
    )
    .await?
    .context("get_or_create_stream of an existing stream")?;
    ensure!(
        again.cached_info().state.messages == 2,
        "{:?}",
        again.cached_info()
    );

    // Update: the new limit is in force immediately.
    cfg.max_messages = 1;
    let updated = within(API_TIMEOUT, "update", js.update_stream(&cfg))
        .await?
        .context("update_stream")?;
    ensure!(updated.config.max_messages == 1, "{:?}", updated.config);
    let st = state(js, "ORDERS").await?;
    ensure!(st.messages == 1 && st.first_sequence == 2, "{st:?}");

    let deleted = within(API_TIMEOUT, "delete", js.delete_stream("ORDERS")).await??;
    ensure!(deleted.success, "delete must report success");

    let err = match within(API_TIMEOUT, "info of deleted", js.get_stream("ORDERS")).await? {
        Ok(s) => bail!("stream still exists after delete: {:?}", s.cached_info()),
        Err(e) => e,
    };
    match err.kind() {
        GetStreamErrorKind::JetStream(e) => ensure_api_error(&e, 404, 10059, "stream not found")?,
        other => bail!("expected a JetStream API error, got {other:?}"),
    }
    // Deleting it again is the same error.
    match within(API_TIMEOUT, "delete again", js.delete_stream("ORDERS")).await? {
        Ok(_) => bail!("deleting a missing stream succeeded"),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(e) => {
                ensure_api_error(&e, 404, 10059, "stream not found")?
            }
            other => bail!("expected a JetStream API error, got {other:?}"),
        },
    }
    Ok(())
}

/// The raw API responses for a missing stream: `STREAM.INFO`, `STREAM.DELETE` and
/// `STREAM.UPDATE` all answer `404 / 10059 "stream not found"` with their response type.
#[tokio::test]
async fn missing_stream_api_responses() -> Result<()> {
    let Js { client, .. } = &Js::start().await?;
    let info = api(client, "STREAM.INFO.NOPE", json!({})).await?;
    ensure!(
        info["type"] == "io.nats.jetstream.api.v1.stream_info_response",
        "{info}"
    );
    ensure!(
        info["error"] == json!({"code": 404, "err_code": 10059, "description": "stream not found"}),
        "{info}"
    );
    let del = api(client, "STREAM.DELETE.NOPE", json!({})).await?;
    ensure!(
        del["type"] == "io.nats.jetstream.api.v1.stream_delete_response",
        "{del}"
    );
    ensure!(del["error"]["err_code"] == 10059, "{del}");
    let upd = api(
        client,
        "STREAM.UPDATE.NOPE",
        json!({"name": "NOPE", "subjects": ["nope"], "storage": "file"}),
    )
    .await?;
    ensure!(
        upd["type"] == "io.nats.jetstream.api.v1.stream_update_response",
        "{upd}"
    );
    ensure!(upd["error"]["err_code"] == 10059, "{upd}");
    Ok(())
}

/// Creating an existing stream again with the same config is idempotent; with a different
/// config it is `400 / 10058`; a stream whose subjects overlap another's is `400 / 10065`;
/// a name in the subject that differs from the body is `400 / 10056`.
#[tokio::test]
async fn conflicting_stream_creates_are_rejected() -> Result<()> {
    let Js { js, client, .. } = &Js::start().await?;
    let cfg = stream_config("A", &["a.>"]);
    within(API_TIMEOUT, "create", js.create_stream(cfg.clone())).await??;
    // Same config again: fine.
    within(API_TIMEOUT, "create again", js.create_stream(cfg.clone()))
        .await?
        .context("re-creating a stream with an identical config must succeed")?;

    let mut different = cfg.clone();
    different.max_messages = 5;
    match within(API_TIMEOUT, "create different", js.create_stream(different)).await? {
        Ok(_) => bail!("creating a stream with a different config succeeded"),
        Err(e) => match e.kind() {
            CreateStreamErrorKind::JetStream(e) => ensure_api_error(
                &e,
                400,
                10058,
                "stream name already in use with a different configuration",
            )?,
            other => bail!("expected a JetStream API error, got {other:?}"),
        },
    }

    for subjects in [&["a.b"][..], &["*.b"][..], &["x", "a.>"][..]] {
        let overlap = stream_config("B", subjects);
        match within(API_TIMEOUT, "create overlapping", js.create_stream(overlap)).await? {
            Ok(_) => bail!("a stream on {subjects:?} overlapping a.> was created"),
            Err(e) => match e.kind() {
                CreateStreamErrorKind::JetStream(e) => {
                    ensure_api_error(&e, 400, 10065, "subjects overlap with an existing stream")
                        .with_context(|| format!("subjects {subjects:?}"))?
                }
                other => bail!("expected a JetStream API error, got {other:?}"),
            },
        }
    }
    // A disjoint stream is fine.
    within(
        API_TIMEOUT,
        "create disjoint",
        js.create_stream(stream_config("B", &["b.>"])),
    )
    .await?
    .context("a stream with disjoint subjects must be created")?;

    let mismatch = api(
        client,
        "STREAM.CREATE.C",
        json!({"name": "D", "subjects": ["c"], "storage": "file"}),
    )
    .await?;
    ensure!(
        mismatch["error"]
            == json!({"code": 400, "err_code": 10056,
                      "description": "stream name in subject does not match request"}),
        "{mismatch}"
    );

    let resp = within(
        API_TIMEOUT,
        "create with bad JSON",
        client.request("$JS.API.STREAM.CREATE.X", Bytes::from_static(b"not json")),
    )
    .await??;
    let bad: serde_json::Value = serde_json::from_slice(&resp.payload)?;
    // nats-server 2.9 says "invalid JSON"; later versions (and natrium) append the parser's
    // reason: "invalid JSON: <reason>".
    ensure!(
        bad["error"]["code"] == 400
            && bad["error"]["err_code"] == 10025
            && bad["error"]["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("invalid JSON")),
        "{bad}"
    );
    let replicas = api(
        client,
        "STREAM.CREATE.R3",
        json!({"name": "R3", "subjects": ["r3"], "storage": "file", "num_replicas": 3}),
    )
    .await?;
    ensure!(
        replicas["error"]
            == json!({"code": 500, "err_code": 10074,
                      "description": "replicas > 1 not supported in non-clustered mode"}),
        "{replicas}"
    );
    Ok(())
}

/// Every published message is acknowledged with the stream name and the next sequence;
/// a publish to a subject no stream captures gets no responders.
#[tokio::test]
async fn publish_acks_carry_stream_and_increasing_sequences() -> Result<()> {
    let Js { js, .. } = &Js::start().await?;
    within(
        API_TIMEOUT,
        "create",
        js.create_stream(stream_config("EVENTS", &["events.*"])),
    )
    .await??;
    for i in 1..=20u64 {
        let ack = publish(js, &format!("events.e{}", i % 3), &format!("event {i}")).await?;
        ensure!(ack.stream == "EVENTS", "ack {ack:?}");
        ensure!(ack.sequence == i, "message {i} acked with {ack:?}");
        ensure!(!ack.duplicate, "ack {ack:?}");
    }
    let st = state(js, "EVENTS").await?;
    ensure!(st.messages == 20 && st.last_sequence == 20, "{st:?}");
    ensure!(st.subjects_count == 3, "{st:?}");

    let msg = PublishMessage::build().payload(Bytes::from_static(b"lost"));
    match publish_msg(js, "nowhere.at.all", msg).await? {
        Ok(ack) => bail!("a publish with no stream was acked: {ack:?}"),
        Err(e) => ensure!(
            e.kind() == PublishErrorKind::StreamNotFound,
            "expected no responders (StreamNotFound), got {e:?}"
        ),
    }
    Ok(())
}

/// Two publishes with the same `Nats-Msg-Id` within the duplicate window store one message:
/// the second ack says `duplicate: true` with the first one's sequence.
#[tokio::test]
async fn message_ids_deduplicate() -> Result<()> {
    let Js { js, .. } = &Js::start().await?;
    within(
        API_TIMEOUT,
        "create",
        js.create_stream(stream_config("DEDUPE", &["dedupe"])),
    )
    .await??;
    publish(js, "dedupe", "before").await?;
    let first = publish_msg(
        js,
        "dedupe",
        PublishMessage::build()
            .payload(Bytes::from_static(b"one"))
            .message_id("id-1"),
    )
    .await??;
    ensure!(first.sequence == 2 && !first.duplicate, "{first:?}");
    let second = publish_msg(
        js,
        "dedupe",
        PublishMessage::build()
            .payload(Bytes::from_static(b"one again"))
            .message_id("id-1"),
    )
    .await??;
    ensure!(second.stream == "DEDUPE", "{second:?}");
    ensure!(
        second.duplicate,
        "the second publish must be a duplicate: {second:?}"
    );
    ensure!(
        second.sequence == 2,
        "a duplicate acks the original sequence: {second:?}"
    );

    let other = publish_msg(
        js,
        "dedupe",
        PublishMessage::build()
            .payload(Bytes::from_static(b"two"))
            .message_id("id-2"),
    )
    .await??;
    ensure!(other.sequence == 3 && !other.duplicate, "{other:?}");

    let st = state(js, "DEDUPE").await?;
    ensure!(st.messages == 3, "one message per distinct id: {st:?}");
    ensure!(
        payloads(js, "DEDUPE", &[2, 3]).await? == ["one", "two"],
        "the duplicate must not replace the original"
    );
    Ok(())
}

/// The expectation headers guard a publish: `Nats-Expected-Last-Sequence`,
/// `Nats-Expected-Stream`, `Nats-Expected-Last-Subject-Sequence` and
/// `Nats-Expected-Last-Msg-Id`. A failed expectation stores nothing.
#[tokio::test]
async fn expectation_headers_guard_publishes() -> Result<()> {
    let Js { js, .. } = &Js::start().await?;
    within(
        API_TIMEOUT,
        "create",
        js.create_stream(stream_config("EXPECT", &["ex.*"])),
    )
    .await??;
    publish(js, "ex.a", "1").await?;
    publish(js, "ex.b", "2").await?;

    let body = || PublishMessage::build().payload(Bytes::from_static(b"x"));

    // Last sequence: wrong, then right.
    let e = publish_rejected(
        js,
        "ex.a",
        body().expected_last_sequence(1),
        400,
        10071,
        "wrong last sequence: 2",
    )
    .await?;
    ensure!(e.kind() == PublishErrorKind::WrongLastSequence, "{e:?}");
    let ack = publish_msg(js, "ex.a", body().expected_last_sequence(2)).await??;
    ensure!(ack.sequence == 3, "{ack:?}");

    // Stream name.
    publish_rejected(
        js,
        "ex.a",
        body().expected_stream("OTHER"),
        400,
        10060,
        "expected stream does not match",
    )
    .await?;
    let ack = publish_msg(js, "ex.a", body().expected_stream("EXPECT")).await??;
    ensure!(ack.sequence == 4, "{ack:?}");

    // Last sequence on the subject: ex.b's last is 2. nats-server 2.9.10 reports this
    // with the same code and wording as the stream-wide check ("wrong last sequence: N",
    // N being the subject's last sequence).
    let e = publish_rejected(
        js,
        "ex.b",
        body().expected_last_subject_sequence(1),
        400,
        10071,
        "wrong last sequence: 2",
    )
    .await?;
    ensure!(e.kind() == PublishErrorKind::WrongLastSequence, "{e:?}");
    let ack = publish_msg(js, "ex.b", body().expected_last_subject_sequence(2)).await??;
    ensure!(ack.sequence == 5, "{ack:?}");
    // A subject with no messages yet has last sequence 0.
    let ack = publish_msg(js, "ex.c", body().expected_last_subject_sequence(0)).await??;
    ensure!(ack.sequence == 6, "{ack:?}");

    // Last message id: the id of the stream's last message (m1 here). In nats-server 2.9.10
    // a message published without an id resets it to "" (the error then reads
    // "wrong last msg ID: ").
    let ack = publish_msg(js, "ex.a", body().message_id("m1")).await??;
    ensure!(ack.sequence == 7, "{ack:?}");
    let e = publish_rejected(
        js,
        "ex.a",
        body().expected_last_message_id("nope"),
        400,
        10070,
        "wrong last msg ID: m1",
    )
    .await?;
    ensure!(e.kind() == PublishErrorKind::WrongLastMessageId, "{e:?}");
    let ack = publish_msg(
        js,
        "ex.a",
        body().expected_last_message_id("m1").message_id("m2"),
    )
    .await??;
    ensure!(ack.sequence == 8, "{ack:?}");

    let st = state(js, "EXPECT").await?;
    ensure!(
        st.messages == 8,
        "rejected publishes must store nothing: {st:?}"
    );
    Ok(())
}

/// `max_msgs` with the default discard-old policy keeps the newest N messages.
#[tokio::test]
async fn max_msgs_discard_old_keeps_the_newest() -> Result<()> {
    let Js { js, .. } = &Js::start().await?;
    let mut cfg = stream_config("OLD", &["old"]);
    cfg.max_messages = 3;
    within(API_TIMEOUT, "create", js.create_stream(cfg)).await??;
    for i in 1..=10 {
        let ack = publish(js, "old", &format!("m{i}")).await?;
        ensure!(ack.sequence == i, "{ack:?}");
    }
    let st = state(js, "OLD").await?;
    ensure!(st.messages == 3, "{st:?}");
    ensure!(st.first_sequence == 8 && st.last_sequence == 10, "{st:?}");
    ensure!(payloads(js, "OLD", &[8, 9, 10]).await? == ["m8", "m9", "m10"]);
    Ok(())
}

/// With discard-new, a publish beyond `max_msgs` (or `max_bytes`) is rejected with
/// `503 / 10077` and the stream keeps its first messages.
#[tokio::test]
async fn discard_new_rejects_publishes_over_the_limit() -> Result<()> {
    let Js { js, .. } = &Js::start().await?;
    let mut cfg = stream_config("NEW", &["new"]);
    cfg.max_messages = 2;
    cfg.discard = DiscardPolicy::New;
    within(API_TIMEOUT, "create", js.create_stream(cfg)).await??;
    publish(js, "new", "1").await?;
    publish(js, "new", "2").await?;
    let msg = PublishMessage::build().payload(Bytes::from_static(b"3"));
    publish_rejected(js, "new", msg, 503, 10077, "maximum messages exceeded").await?;
    let st = state(js, "NEW").await?;
    ensure!(st.messages == 2 && st.last_sequence == 2, "{st:?}");
    ensure!(payloads(js, "NEW", &[1, 2]).await? == ["1", "2"]);

    let mut cfg = stream_config("NEWBYTES", &["newbytes"]);
    cfg.max_bytes = 100;
    cfg.discard = DiscardPolicy::New;
    within(API_TIMEOUT, "create", js.create_stream(cfg)).await??;
    let big = "x".repeat(40);
    publish(js, "newbytes", &big).await?;
    let msg = PublishMessage::build().payload(Bytes::from(big.clone()));
    publish_rejected(js, "newbytes", msg, 503, 10077, "maximum bytes exceeded").await?;
    let st = state(js, "NEWBYTES").await?;
    ensure!(st.messages == 1, "{st:?}");
    Ok(())
}

/// `max_msgs_per_subject` keeps the newest N messages of each subject.
#[tokio::test]
async fn max_msgs_per_subject_keeps_the_newest_per_subject() -> Result<()> {
    let Js { js, .. } = &Js::start().await?;
    let mut cfg = stream_config("PERSUBJ", &["ps.*"]);
    cfg.max_messages_per_subject = 2;
    within(API_TIMEOUT, "create", js.create_stream(cfg)).await??;
    for i in 1..=9 {
        publish(js, &format!("ps.{}", i % 3), &format!("m{i}")).await?;
    }
    let st = state(js, "PERSUBJ").await?;
    ensure!(st.messages == 6, "{st:?}");
    ensure!(st.first_sequence == 4 && st.last_sequence == 9, "{st:?}");
    ensure!(st.subjects_count == 3, "{st:?}");
    ensure!(
        payloads(js, "PERSUBJ", &[4, 5, 6, 7, 8, 9]).await? == ["m4", "m5", "m6", "m7", "m8", "m9"]
    );
    Ok(())
}

/// A message larger than `max_msg_size` is rejected with `400 / 10054`.
#[tokio::test]
async fn max_msg_size_rejects_big_messages() -> Result<()> {
    let Js { js, .. } = &Js::start().await?;
    let mut cfg = stream_config("SMALL", &["small"]);
    cfg.max_message_size = 10;
    within(API_TIMEOUT, "create", js.create_stream(cfg)).await??;
    publish(js, "small", "0123456789").await?;
    let msg = PublishMessage::build().payload(Bytes::from_static(b"0123456789A"));
    publish_rejected(
        js,
        "small",
        msg,
        400,
        10054,
        "message size exceeds maximum allowed",
    )
    .await?;
    let st = state(js, "SMALL").await?;
    ensure!(st.messages == 1, "{st:?}");
    Ok(())
}

/// Messages older than `max_age` expire; the sequence carries on afterwards.
#[tokio::test]
async fn max_age_expires_messages() -> Result<()> {
    let Js { js, .. } = &Js::start().await?;
    let mut cfg = stream_config("AGED", &["aged"]);
    cfg.max_age = Duration::from_secs(1);
    within(API_TIMEOUT, "create", js.create_stream(cfg)).await??;
    for i in 0..5 {
        publish(js, "aged", &format!("m{i}")).await?;
    }
    ensure!(state(js, "AGED").await?.messages == 5);
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let st = state(js, "AGED").await?;
        if st.messages == 0 {
            ensure!(st.last_sequence == 5, "{st:?}");
            ensure!(
                st.first_sequence == 6,
                "an empty stream's first seq is last + 1: {st:?}"
            );
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "messages did not expire within 6s of a 1s max_age: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ack = publish(js, "aged", "later").await?;
    ensure!(ack.sequence == 6, "{ack:?}");
    Ok(())
}

/// Messages can be fetched by sequence (`STREAM.MSG.GET`) and as the last on a subject, with
/// their headers; a deleted or missing message is `404 / 10037 "no message found"`; deleting
/// it again is `500 / 10057`.
#[tokio::test]
async fn get_and_delete_messages() -> Result<()> {
    let Js { js, client, .. } = &Js::start().await?;
    let stream = within(
        API_TIMEOUT,
        "create",
        js.create_stream(stream_config("MSGS", &["msgs.*"])),
    )
    .await??;
    publish(js, "msgs.a", "a1").await?;
    publish_msg(
        js,
        "msgs.b",
        PublishMessage::build()
            .payload(Bytes::from_static(b"b1"))
            .header("X-Trace", "t-1"),
    )
    .await??;
    publish(js, "msgs.a", "a2").await?;

    let m = within(API_TIMEOUT, "get 2", stream.get_raw_message(2)).await??;
    ensure!(m.sequence == 2 && m.subject.as_str() == "msgs.b", "{m:?}");
    ensure!(m.payload.as_ref() == b"b1", "{m:?}");
    ensure!(
        m.headers.get("X-Trace").map(|v| v.as_str()) == Some("t-1"),
        "headers must be stored: {m:?}"
    );

    let last = within(
        API_TIMEOUT,
        "last by subject",
        stream.get_last_raw_message_by_subject("msgs.a"),
    )
    .await??;
    ensure!(
        last.sequence == 3 && last.payload.as_ref() == b"a2",
        "{last:?}"
    );

    ensure!(
        within(API_TIMEOUT, "delete 1", stream.delete_message(1)).await??,
        "delete must succeed"
    );
    match within(API_TIMEOUT, "get deleted", stream.get_raw_message(1)).await? {
        Ok(m) => bail!("deleted message still returned: {m:?}"),
        Err(e) => ensure!(
            e.kind() == LastRawMessageErrorKind::NoMessageFound,
            "expected no message found, got {e:?}"
        ),
    }
    let raw = api(client, "STREAM.MSG.GET.MSGS", json!({"seq": 1})).await?;
    ensure!(
        raw["type"] == "io.nats.jetstream.api.v1.stream_msg_get_response",
        "{raw}"
    );
    ensure!(
        raw["error"] == json!({"code": 404, "err_code": 10037, "description": "no message found"}),
        "{raw}"
    );
    let raw = api(client, "STREAM.MSG.GET.MSGS", json!({"seq": 99})).await?;
    ensure!(raw["error"]["err_code"] == 10037, "beyond the last: {raw}");
    let raw = api(
        client,
        "STREAM.MSG.GET.MSGS",
        json!({"last_by_subj": "msgs.zz"}),
    )
    .await?;
    ensure!(raw["error"]["err_code"] == 10037, "unknown subject: {raw}");
    let raw = api(client, "STREAM.MSG.GET.NOPE", json!({"seq": 1})).await?;
    ensure!(raw["error"]["err_code"] == 10059, "missing stream: {raw}");

    match within(API_TIMEOUT, "delete again", stream.delete_message(1)).await? {
        Ok(ok) => bail!("deleting a deleted message answered {ok}"),
        Err(e) => match e.kind() {
            DeleteMessageErrorKind::JetStream(e) => {
                ensure_api_error(&e, 500, 10057, "no message found")?
            }
            other => bail!("expected a JetStream API error, got {other:?}"),
        },
    }

    let st = state(js, "MSGS").await?;
    ensure!(st.messages == 2 && st.first_sequence == 2, "{st:?}");
    Ok(())
}

/// With `allow_direct`, `$JS.API.DIRECT.GET.<stream>` answers with the message itself: its
/// payload, its own headers plus `Nats-Stream`, `Nats-Subject`, `Nats-Sequence` and
/// `Nats-Time-Stamp`; a missing message is a `404 Message Not Found` status.
#[tokio::test]
async fn direct_get_returns_headers_and_payload() -> Result<()> {
    let Js { js, client, .. } = &Js::start().await?;
    let mut cfg = stream_config("DIRECT", &["direct.*"]);
    cfg.allow_direct = true;
    let stream = within(API_TIMEOUT, "create", js.create_stream(cfg)).await??;
    ensure!(
        stream.cached_info().config.allow_direct,
        "{:?}",
        stream.cached_info()
    );
    publish_msg(
        js,
        "direct.a",
        PublishMessage::build()
            .payload(Bytes::from_static(b"d1"))
            .header("X-A", "b"),
    )
    .await??;
    publish(js, "direct.a", "d2").await?;

    let m = within(API_TIMEOUT, "direct get", stream.direct_get(1)).await??;
    ensure!(m.sequence == 1 && m.subject.as_str() == "direct.a", "{m:?}");
    ensure!(m.payload.as_ref() == b"d1", "{m:?}");
    ensure!(
        m.headers.get("X-A").map(|v| v.as_str()) == Some("b"),
        "{m:?}"
    );

    let last = within(
        API_TIMEOUT,
        "direct get last",
        stream.direct_get_last_for_subject("direct.a"),
    )
    .await??;
    ensure!(
        last.sequence == 2 && last.payload.as_ref() == b"d2",
        "{last:?}"
    );

    match within(API_TIMEOUT, "direct get missing", stream.direct_get(9)).await? {
        Ok(m) => bail!("direct get of a missing message returned {m:?}"),
        Err(e) => ensure!(e.kind() == DirectGetErrorKind::NotFound, "{e:?}"),
    }

    // The raw reply: the stored headers plus the stream's.
    let reply = within(
        API_TIMEOUT,
        "raw direct get",
        client.request(
            "$JS.API.DIRECT.GET.DIRECT",
            Bytes::from_static(br#"{"seq":1}"#),
        ),
    )
    .await??;
    let h = reply.headers.context("a direct get reply has headers")?;
    let get = |k: &str| h.get(k).map(|v| v.as_str().to_string());
    ensure!(get("X-A").as_deref() == Some("b"), "{h:?}");
    ensure!(get("Nats-Stream").as_deref() == Some("DIRECT"), "{h:?}");
    ensure!(get("Nats-Subject").as_deref() == Some("direct.a"), "{h:?}");
    ensure!(get("Nats-Sequence").as_deref() == Some("1"), "{h:?}");
    ensure!(get("Nats-Time-Stamp").is_some(), "{h:?}");
    ensure!(reply.payload.as_ref() == b"d1");
    // Last-by-subject in the subject: $JS.API.DIRECT.GET.<stream>.<subject>.
    let reply = within(
        API_TIMEOUT,
        "raw direct get last",
        client.request("$JS.API.DIRECT.GET.DIRECT.direct.a", Bytes::new()),
    )
    .await??;
    ensure!(reply.payload.as_ref() == b"d2", "{reply:?}");
    let reply = within(
        API_TIMEOUT,
        "raw direct get missing",
        client.request(
            "$JS.API.DIRECT.GET.DIRECT",
            Bytes::from_static(br#"{"seq":9}"#),
        ),
    )
    .await??;
    ensure!(
        reply.status == Some(async_nats::StatusCode::NOT_FOUND),
        "{reply:?}"
    );
    ensure!(
        reply.description.as_deref() == Some("Message Not Found"),
        "{reply:?}"
    );
    Ok(())
}

/// Purge removes everything, or only a subject's messages, or all but the newest N of a
/// subject, or everything below a sequence; the sequence carries on afterwards.
#[tokio::test]
async fn purge_all_by_subject_keep_and_sequence() -> Result<()> {
    let Js { js, client, .. } = &Js::start().await?;
    let stream = within(
        API_TIMEOUT,
        "create",
        js.create_stream(stream_config("PURGE", &["p.*"])),
    )
    .await??;
    for i in 1..=10 {
        publish(js, &format!("p.{}", i % 2), &format!("m{i}")).await?;
    }

    // p.0 holds seqs 2,4,6,8,10.
    let r = within(
        API_TIMEOUT,
        "purge p.0",
        stream.purge().filter("p.0").into_future(),
    )
    .await??;
    ensure!(r.success && r.purged == 5, "{r:?}");
    let st = state(js, "PURGE").await?;
    ensure!(st.messages == 5 && st.first_sequence == 1, "{st:?}");
    ensure!(
        st.last_sequence == 10,
        "a purge does not move the last sequence: {st:?}"
    );
    ensure!(st.subjects_count == 1, "{st:?}");

    // p.1 holds 1,3,5,7,9: keep the newest 2.
    let r = within(
        API_TIMEOUT,
        "purge p.1 keep 2",
        stream.purge().filter("p.1").keep(2).into_future(),
    )
    .await??;
    ensure!(r.success && r.purged == 3, "{r:?}");
    let st = state(js, "PURGE").await?;
    ensure!(st.messages == 2 && st.first_sequence == 7, "{st:?}");
    ensure!(payloads(js, "PURGE", &[7, 9]).await? == ["m7", "m9"]);

    // Everything below seq 9.
    let r = within(
        API_TIMEOUT,
        "purge to 9",
        stream.purge().sequence(9).into_future(),
    )
    .await??;
    ensure!(r.success && r.purged == 1, "{r:?}");
    let st = state(js, "PURGE").await?;
    ensure!(st.messages == 1 && st.first_sequence == 9, "{st:?}");

    publish(js, "p.0", "m11").await?;
    let r = within(API_TIMEOUT, "purge all", stream.purge().into_future()).await??;
    ensure!(r.success && r.purged == 2, "{r:?}");
    let st = state(js, "PURGE").await?;
    ensure!(st.messages == 0, "{st:?}");
    ensure!(st.first_sequence == 12 && st.last_sequence == 11, "{st:?}");
    let ack = publish(js, "p.1", "m12").await?;
    ensure!(
        ack.sequence == 12,
        "the sequence carries on after a purge: {ack:?}"
    );

    // `seq` and `keep` together are a bad request.
    let bad = api(client, "STREAM.PURGE.PURGE", json!({"seq": 5, "keep": 1})).await?;
    ensure!(
        bad["type"] == "io.nats.jetstream.api.v1.stream_purge_response",
        "{bad}"
    );
    ensure!(
        bad["error"] == json!({"code": 400, "err_code": 10003, "description": "bad request"}),
        "{bad}"
    );
    Ok(())
}

/// On a stream with `allow_rollup_hdrs`, `Nats-Rollup: sub` leaves only that message on its
/// subject and `Nats-Rollup: all` only it in the stream; without the option a roll-up is
/// `500 / 10111 "rollup not permitted"`.
#[tokio::test]
async fn rollup_headers_replace_history() -> Result<()> {
    let Js { js, .. } = &Js::start().await?;
    let mut cfg = stream_config("ROLL", &["roll.*"]);
    cfg.allow_rollup = true;
    within(API_TIMEOUT, "create", js.create_stream(cfg)).await??;
    for i in 1..=3 {
        publish(js, "roll.a", &format!("a{i}")).await?;
    }
    publish(js, "roll.b", "b1").await?;
    publish(js, "roll.b", "b2").await?;

    let ack = publish_msg(
        js,
        "roll.a",
        PublishMessage::build()
            .payload(Bytes::from_static(b"a-rollup"))
            .header("Nats-Rollup", "sub"),
    )
    .await??;
    ensure!(ack.sequence == 6, "{ack:?}");
    let st = state(js, "ROLL").await?;
    ensure!(
        st.messages == 3,
        "roll.a keeps only the roll-up, roll.b both: {st:?}"
    );
    ensure!(payloads(js, "ROLL", &[4, 5, 6]).await? == ["b1", "b2", "a-rollup"]);

    let ack = publish_msg(
        js,
        "roll.b",
        PublishMessage::build()
            .payload(Bytes::from_static(b"everything"))
            .header("Nats-Rollup", "all"),
    )
    .await??;
    let st = state(js, "ROLL").await?;
    ensure!(
        st.messages == 1 && st.first_sequence == ack.sequence,
        "{st:?}"
    );

    within(
        API_TIMEOUT,
        "create",
        js.create_stream(stream_config("NOROLL", &["noroll"])),
    )
    .await??;
    publish(js, "noroll", "1").await?;
    let msg = PublishMessage::build()
        .payload(Bytes::from_static(b"2"))
        .header("Nats-Rollup", "sub");
    publish_rejected(js, "noroll", msg, 500, 10111, "rollup not permitted").await?;
    ensure!(state(js, "NOROLL").await?.messages == 1);
    Ok(())
}

/// `STREAM.NAMES` and `STREAM.LIST` list every stream (sorted by name in nats-server),
/// with `total`/`offset`/`limit` paging; `STREAM.NAMES` can filter by subject.
#[tokio::test]
async fn stream_names_and_list() -> Result<()> {
    let Js { js, client, .. } = &Js::start().await?;
    for (name, subject) in [("S3", "s3"), ("S1", "s1.*"), ("S2", "s2")] {
        within(
            API_TIMEOUT,
            "create",
            js.create_stream(stream_config(name, &[subject])),
        )
        .await??;
    }
    publish(js, "s1.x", "hello").await?;

    let mut names: Vec<String> =
        within(API_TIMEOUT, "names", js.stream_names().try_collect()).await??;
    names.sort();
    ensure!(names == ["S1", "S2", "S3"], "{names:?}");

    let infos: Vec<jetstream::stream::Info> =
        within(API_TIMEOUT, "list", js.streams().try_collect()).await??;
    let mut listed: Vec<(String, u64)> = infos
        .iter()
        .map(|i| (i.config.name.clone(), i.state.messages))
        .collect();
    listed.sort();
    ensure!(
        listed == [("S1".into(), 1), ("S2".into(), 0), ("S3".into(), 0)],
        "{listed:?}"
    );

    let page = api(client, "STREAM.NAMES", json!({})).await?;
    ensure!(
        page["type"] == "io.nats.jetstream.api.v1.stream_names_response",
        "{page}"
    );
    ensure!(page["total"] == 3 && page["offset"] == 0, "{page}");
    ensure!(
        page["limit"] == 1024,
        "nats-server pages names by 1024: {page}"
    );
    let page = api(client, "STREAM.NAMES", json!({"offset": 1})).await?;
    ensure!(page["total"] == 3 && page["offset"] == 1, "{page}");
    ensure!(page["streams"] == json!(["S2", "S3"]), "{page}");
    let page = api(client, "STREAM.NAMES", json!({"subject": "s1.x"})).await?;
    ensure!(page["streams"] == json!(["S1"]), "{page}");

    let page = api(client, "STREAM.LIST", json!({})).await?;
    ensure!(
        page["type"] == "io.nats.jetstream.api.v1.stream_list_response",
        "{page}"
    );
    ensure!(page["total"] == 3 && page["limit"] == 256, "{page}");
    ensure!(page["streams"][0]["config"]["name"] == "S1", "{page}");
    ensure!(page["streams"][0]["state"]["messages"] == 1, "{page}");
    Ok(())
}

/// A file stream survives a restart: its config, count, first/last sequence, and every
/// message's subject, headers and payload; publishing carries on from the last sequence.
#[tokio::test]
async fn file_stream_survives_restart() -> Result<()> {
    let mut s = Js::start().await?;
    let mut cfg = stream_config("DURABLE", &["durable.*"]);
    cfg.max_messages = 1000;
    within(API_TIMEOUT, "create", s.js.create_stream(cfg)).await??;
    for i in 1..=100u64 {
        let msg = PublishMessage::build()
            .payload(Bytes::from(format!("payload-{i}")))
            .header("X-Index", i.to_string().as_str());
        let ack = publish_msg(&s.js, &format!("durable.{}", i % 4), msg).await??;
        ensure!(ack.sequence == i, "{ack:?}");
    }
    s.restart().await?;
    ensure!(
        s.store.path().join("jetstream").is_dir() || !natrium_tests::is_nats_server(),
        "nats-server keeps its store in <sd>/jetstream"
    );

    let mut stream = within(API_TIMEOUT, "get stream", s.js.get_stream("DURABLE")).await??;
    let info = within(API_TIMEOUT, "info", stream.info()).await??.clone();
    ensure!(info.config.max_messages == 1000, "{:?}", info.config);
    ensure!(info.config.subjects == ["durable.*"], "{:?}", info.config);
    ensure!(info.state.messages == 100, "{:?}", info.state);
    ensure!(
        info.state.first_sequence == 1 && info.state.last_sequence == 100,
        "{:?}",
        info.state
    );
    for i in 1..=100u64 {
        let m = within(API_TIMEOUT, "get", stream.get_raw_message(i)).await??;
        ensure!(m.subject.as_str() == format!("durable.{}", i % 4), "{m:?}");
        ensure!(
            m.payload.as_ref() == format!("payload-{i}").as_bytes(),
            "{m:?}"
        );
        ensure!(
            m.headers.get("X-Index").map(|v| v.as_str().to_string()) == Some(i.to_string()),
            "{m:?}"
        );
    }
    let ack = publish(&s.js, "durable.x", "after restart").await?;
    ensure!(ack.sequence == 101, "{ack:?}");

    // Dedupe state and deletes survive too.
    let stream = within(API_TIMEOUT, "get stream", s.js.get_stream("DURABLE")).await??;
    within(API_TIMEOUT, "delete 50", stream.delete_message(50)).await??;
    s.restart().await?;
    let st = state(&s.js, "DURABLE").await?;
    ensure!(st.messages == 100 && st.last_sequence == 101, "{st:?}");
    let stream = within(API_TIMEOUT, "get stream", s.js.get_stream("DURABLE")).await??;
    ensure!(
        within(API_TIMEOUT, "get deleted", stream.get_raw_message(50))
            .await?
            .is_err(),
        "a deleted message must stay deleted after a restart"
    );
    Ok(())
}

/// A stream deleted before a restart stays deleted; a stream created before it is back.
#[tokio::test]
async fn stream_set_survives_restart() -> Result<()> {
    let mut s = Js::start().await?;
    within(
        API_TIMEOUT,
        "create",
        s.js.create_stream(stream_config("KEEP", &["keep"])),
    )
    .await??;
    within(
        API_TIMEOUT,
        "create",
        s.js.create_stream(stream_config("GONE", &["gone"])),
    )
    .await??;
    publish(&s.js, "gone", "x").await?;
    within(API_TIMEOUT, "delete", s.js.delete_stream("GONE")).await??;
    s.restart().await?;
    let names: Vec<String> =
        within(API_TIMEOUT, "names", s.js.stream_names().try_collect()).await??;
    ensure!(names == ["KEEP"], "{names:?}");
    Ok(())
}

/// Every acknowledged message survives a `kill -9` in the middle of a publish burst: after
/// the restart each acked sequence holds the acked payload, and the stream has no gaps up to
/// the highest acked sequence.
#[tokio::test]
async fn acked_messages_survive_kill_9() -> Result<()> {
    const MAX_MSGS: u64 = 20_000;
    const WINDOW: usize = 256;
    const KILL_AFTER_ACKS: u64 = 3_000;
    const BURST_TIME: Duration = Duration::from_secs(5);

    let mut s = Js::start().await?;
    within(
        API_TIMEOUT,
        "create",
        s.js.create_stream(stream_config("BURST", &["burst"])),
    )
    .await??;
    let pid = s.server.pid().context("server pid")?;

    // Publish acks time out quickly once the server is gone.
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(3))
        .build(s.client.clone());

    let acked_count = Arc::new(AtomicU64::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let killer = {
        let acked_count = acked_count.clone();
        let killed = killed.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            while acked_count.load(Ordering::SeqCst) < KILL_AFTER_ACKS
                && start.elapsed() < BURST_TIME / 2
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let status = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            killed.store(true, Ordering::SeqCst);
            status
        })
    };

    let payload_of = |i: u64| format!("burst-{i:08}-{}", "z".repeat(48));
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new(); // seq -> publish index
    let mut in_flight = FuturesUnordered::new();
    let mut next = 0u64;
    let start = Instant::now();
    let mut failures = 0u64;
    loop {
        let may_send =
            next < MAX_MSGS && start.elapsed() < BURST_TIME && !killed.load(Ordering::SeqCst);
        if may_send && in_flight.len() < WINDOW {
            let i = next;
            next += 1;
            let ack = js
                .send_publish(
                    "burst",
                    PublishMessage::build().payload(Bytes::from(payload_of(i))),
                )
                .await;
            in_flight.push(async move {
                let r = match ack {
                    Ok(f) => f.await,
                    Err(e) => Err(e),
                };
                (i, r)
            });
            continue;
        }
        match within(Duration::from_secs(10), "publish acks", in_flight.next()).await? {
            Some((i, Ok(ack))) => {
                ensure!(ack.stream == "BURST", "{ack:?}");
                if let Some(prev) = acked.insert(ack.sequence, i) {
                    bail!(
                        "sequence {} acked for messages {prev} and {i}",
                        ack.sequence
                    );
                }
                acked_count.fetch_add(1, Ordering::SeqCst);
            }
            Some((_, Err(_))) => failures += 1,
            None if !may_send => break,
            None => {}
        }
    }
    let kill_status = within(API_TIMEOUT, "killer task", killer).await??;
    ensure!(
        kill_status.context("running kill -9")?.success(),
        "kill -9 {pid} failed"
    );
    ensure!(!acked.is_empty(), "no publish was acked before the kill");
    let max_acked = *acked.keys().next_back().context("no acks")?;
    println!(
        "sent {next}, acked {} (highest seq {max_acked}), unacked {failures}",
        acked.len()
    );

    // A single connection's publishes are stored in order.
    let mut by_index: Vec<(u64, u64)> = acked.iter().map(|(&seq, &i)| (i, seq)).collect();
    by_index.sort();
    ensure!(
        by_index.windows(2).all(|w| w[0].1 < w[1].1),
        "acked sequences must increase with the publish order"
    );

    s.restart().await?;
    let st = state(&s.js, "BURST").await?;
    ensure!(st.first_sequence == 1, "{st:?}");
    ensure!(
        st.last_sequence >= max_acked,
        "highest acked seq {max_acked} lost: {st:?}"
    );
    ensure!(
        st.messages == st.last_sequence,
        "the stream must have no gaps: {st:?}"
    );

    let stream = within(API_TIMEOUT, "get stream", s.js.get_stream("BURST")).await??;
    let stream = &stream;
    let checks = futures::stream::iter(acked.iter().map(|(&seq, &i)| async move {
        let m = within(
            API_TIMEOUT,
            "get acked message",
            stream.get_raw_message(seq),
        )
        .await?
        .with_context(|| format!("acked message seq {seq} is missing after kill -9"))?;
        ensure!(
            m.payload.as_ref() == payload_of(i).as_bytes(),
            "seq {seq}: expected payload of message {i}, got {:?}",
            String::from_utf8_lossy(&m.payload)
        );
        anyhow::Ok(())
    }))
    .buffer_unordered(64);
    let results: Vec<Result<()>> =
        within(Duration::from_secs(60), "verifying", checks.collect()).await?;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(())
}

/// Without `-js` there is no JetStream API at all: `$JS.API.INFO` gets no responders.
#[tokio::test]
async fn jetstream_disabled_has_no_api() -> Result<()> {
    let server = TestServer::start(&[])?;
    let client = connect(&server.url()).await?;
    for subject in [
        "$JS.API.INFO",
        "$JS.API.STREAM.NAMES",
        "$JS.API.STREAM.CREATE.X",
    ] {
        match within(API_TIMEOUT, subject, client.request(subject, Bytes::new())).await? {
            Ok(m) => bail!("{subject} answered {m:?} without -js"),
            Err(e) => ensure!(
                e.kind() == async_nats::RequestErrorKind::NoResponders,
                "{subject}: expected no responders, got {e:?}"
            ),
        }
    }
    let js = jetstream::new(client);
    match within(API_TIMEOUT, "account info", js.query_account()).await? {
        Ok(a) => bail!("account info without -js: {a:?}"),
        Err(e) => ensure!(
            e.kind() == jetstream::context::AccountErrorKind::JetStreamUnavailable,
            "{e:?}"
        ),
    }
    Ok(())
}

/// `$JS.API.INFO` reports the account's stream count and memory/file usage (the bytes of
/// its memory and file streams), unlimited limits by default, and API call counts.
#[tokio::test]
async fn account_info_counts_streams_and_usage() -> Result<()> {
    let Js { js, client, .. } = &Js::start().await?;
    let empty = api(client, "INFO", json!({})).await?;
    ensure!(
        empty["type"] == "io.nats.jetstream.api.v1.account_info_response",
        "{empty}"
    );
    ensure!(empty["streams"] == 0 && empty["consumers"] == 0, "{empty}");
    ensure!(empty["memory"] == 0 && empty["storage"] == 0, "{empty}");
    for limit in ["max_memory", "max_storage", "max_streams", "max_consumers"] {
        ensure!(
            empty["limits"][limit] == -1,
            "{limit} is unlimited by default: {empty}"
        );
    }

    within(
        API_TIMEOUT,
        "create",
        js.create_stream(stream_config("F", &["f"])),
    )
    .await??;
    let mut mem = stream_config("M", &["m"]);
    mem.storage = StorageType::Memory;
    within(API_TIMEOUT, "create", js.create_stream(mem)).await??;
    publish(js, "f", "file data").await?;
    publish(js, "m", "memory data").await?;

    let f = state(js, "F").await?;
    let m = state(js, "M").await?;
    let info = api(client, "INFO", json!({})).await?;
    ensure!(info["streams"] == 2 && info["consumers"] == 0, "{info}");
    ensure!(
        m.bytes > 0 && info["memory"] == m.bytes,
        "memory vs stream M {m:?}: {info}"
    );
    ensure!(
        f.bytes > 0 && info["storage"] == f.bytes,
        "storage vs stream F {f:?}: {info}"
    );
    ensure!(info["api"]["total"].as_u64().unwrap_or(0) > 0, "{info}");

    // The client's typed account info. async-nats 0.51 requires `reserved_memory` and
    // `reserved_storage`, which nats-server 2.9.10 does not send (newer servers do), so this
    // part only runs against natrium.
    if !natrium_tests::is_nats_server() {
        let typed = within(API_TIMEOUT, "account info", js.query_account()).await??;
        ensure!(typed.streams == 2 && typed.consumers == 0, "{typed:?}");
        ensure!(
            typed.memory == m.bytes && typed.storage == f.bytes,
            "{typed:?}"
        );
    }

    within(API_TIMEOUT, "delete", js.delete_stream("M")).await??;
    let info = api(client, "INFO", json!({})).await?;
    ensure!(info["streams"] == 1 && info["memory"] == 0, "{info}");
    Ok(())
}
