//! JetStream push consumers and ordered consumers, through async-nats.
//!
//! A push consumer delivers to its `deliver_subject` (to one member of its `deliver_group`),
//! with an ack subject `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.
//! <timestamp ns>.<pending>` as the reply; unacked messages come back after `ack_wait`; flow
//! control asks the subscriber to answer `100 FlowControl Request` status messages and idle
//! heartbeats (`100 Idle Heartbeat`) keep an idle subscriber informed; `rate_limit_bps`
//! paces delivery; the deliver policies pick where delivery starts; `headers_only` drops the
//! payloads. Ordered consumers (client-side: ephemeral, flow control, heartbeats, recreated
//! on a gap) deliver every message once, in order, even when the server deletes them.
//!
//! Validated against nats-server 2.9.10; 2.10-only assertions are gated with
//! `natrium_tests::is_nats_server()` and say why.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use async_nats::jetstream::{
    self,
    consumer::{pull, push, AckPolicy, Consumer, DeliverPolicy, FromConsumer, IntoConsumerConfig},
    message::PublishMessage,
    stream::ConsumerErrorKind,
    AckKind,
};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use natrium_tests::{connect, next_msg, sync, within};

use crate::jetstream::{ensure_api_error, publish, publish_msg, stream_config, Js, API_TIMEOUT};

/// How long a test waits for one delivery.
pub(crate) const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the file stream `name` on `subjects` and publishes `payloads` to `subject`.
pub(crate) async fn stream_with(
    js: &jetstream::Context,
    name: &str,
    subjects: &[&str],
    messages: &[(&str, &str)],
) -> Result<jetstream::stream::Stream> {
    let stream = within(
        API_TIMEOUT,
        "create stream",
        js.create_stream(stream_config(name, subjects)),
    )
    .await?
    .with_context(|| format!("creating stream {name}"))?;
    for (subject, payload) in messages {
        publish(js, subject, payload).await?;
    }
    Ok(stream)
}

/// Creates (or binds to) the consumer `config` on `stream`.
pub(crate) async fn consumer<C>(
    stream: &jetstream::stream::Stream,
    config: C,
) -> Result<Consumer<C>>
where
    C: IntoConsumerConfig + FromConsumer,
{
    within(
        API_TIMEOUT,
        "create consumer",
        stream.create_consumer(config),
    )
    .await?
    .context("creating a consumer")
}

/// Tries to create the consumer `config` on `stream`, expecting exactly the API error
/// `{code, err_code, description}`.
pub(crate) async fn consumer_rejected<C>(
    stream: &jetstream::stream::Stream,
    config: C,
    code: usize,
    err_code: u64,
    description: &str,
) -> Result<()>
where
    C: IntoConsumerConfig + FromConsumer,
{
    match within(
        API_TIMEOUT,
        "create consumer",
        stream.create_consumer(config),
    )
    .await?
    {
        Ok(c) => bail!(
            "consumer {:?} was created; expected {description:?}",
            c.cached_info().name
        ),
        Err(e) => match e.kind() {
            ConsumerErrorKind::JetStream(api) => {
                ensure_api_error(&api, code, err_code, description)
            }
            other => bail!("expected API error {description:?}, got {other:?}"),
        },
    }
}

/// The next JetStream message from a consumer's message stream.
pub(crate) async fn next_js<S, E>(messages: &mut S, what: &str) -> Result<jetstream::Message>
where
    S: Stream<Item = std::result::Result<jetstream::Message, E>> + Unpin,
    E: std::fmt::Debug,
{
    match within(DELIVERY_TIMEOUT, what, messages.next()).await? {
        Some(Ok(m)) => Ok(m),
        Some(Err(e)) => bail!("{what}: the consumer stream failed: {e:?}"),
        None => bail!("{what}: the consumer stream ended"),
    }
}

/// Receives exactly `n` messages, then checks nothing more arrives for `quiet`; returns their
/// payloads.
pub(crate) async fn take_exactly<S, E>(
    messages: &mut S,
    n: usize,
    quiet: Duration,
) -> Result<Vec<String>>
where
    S: Stream<Item = std::result::Result<jetstream::Message, E>> + Unpin,
    E: std::fmt::Debug,
{
    let mut got = Vec::with_capacity(n);
    for i in 0..n {
        let m = next_js(messages, &format!("message {} of {n}", i + 1)).await?;
        got.push(String::from_utf8_lossy(&m.payload).into_owned());
    }
    if let Ok(Some(extra)) = tokio::time::timeout(quiet, messages.next()).await {
        bail!("after {got:?}, an unexpected extra delivery: {extra:?}");
    }
    Ok(got)
}

/// Acknowledges `m` and waits for the server to confirm it (the ack is a request: nats-server
/// answers an ack that carries a reply subject with an empty message).
pub(crate) async fn ack(m: &jetstream::Message) -> Result<()> {
    within(API_TIMEOUT, "double ack", m.double_ack())
        .await?
        .map_err(|e| anyhow::anyhow!("ack of {:?}: {e}", m.subject))
}

/// The server's info for consumer `name` of `stream`.
pub(crate) async fn consumer_info(
    stream: &jetstream::stream::Stream,
    name: &str,
) -> Result<jetstream::consumer::Info> {
    within(API_TIMEOUT, "consumer info", stream.consumer_info(name))
        .await?
        .with_context(|| format!("consumer info of {name}"))
}

/// A durable push consumer config delivering to `deliver`.
fn durable_push(name: &str, deliver: String) -> push::Config {
    push::Config {
        durable_name: Some(name.to_string()),
        deliver_subject: deliver,
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    }
}

/// An ephemeral push consumer config without acks, delivering to a fresh inbox of `client`.
fn ack_none_push(client: &async_nats::Client) -> push::Config {
    push::Config {
        deliver_subject: client.new_inbox(),
        ack_policy: AckPolicy::None,
        ..Default::default()
    }
}

/// Creates the push consumer `config` on `stream` and subscribes to its deliveries.
async fn push_messages(
    stream: &jetstream::stream::Stream,
    config: push::Config,
) -> Result<push::Messages> {
    let c = consumer(stream, config).await?;
    within(API_TIMEOUT, "messages", c.messages())
        .await?
        .context("subscribing to the deliver subject")
}

/// The strings `prefix1..=prefixN`.
pub(crate) fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

/// Publishes `prefix1..=prefixN` to `subject`.
pub(crate) async fn publish_numbered(
    js: &jetstream::Context,
    subject: &str,
    prefix: &str,
    n: usize,
) -> Result<()> {
    for p in numbered(prefix, n) {
        publish(js, subject, &p).await?;
    }
    Ok(())
}

/// A durable push consumer delivers every stored message to its deliver subject in order,
/// each with a v1 ack subject (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.
/// <consumer seq>.<ts>.<pending>`, 9 tokens); acknowledged messages move the ack floor.
#[tokio::test]
async fn push_consumer_delivers_in_order_with_ack_metadata() -> Result<()> {
    let env = Js::start().await?;
    let stream = stream_with(&env.js, "P", &["p.>"], &[]).await?;
    publish_numbered(&env.js, "p.a", "m", 5).await?;
    let c = consumer(&stream, durable_push("D", env.client.new_inbox())).await?;
    let info = consumer_info(&stream, "D").await?;
    ensure!(
        info.num_pending == 5 && info.config.deliver_subject.is_some(),
        "{info:?}"
    );
    let mut msgs = within(API_TIMEOUT, "messages", c.messages()).await??;
    for i in 1..=5u64 {
        let m = next_js(&mut msgs, &format!("message {i}")).await?;
        ensure!(m.payload == format!("m{i}").as_bytes(), "{m:?}");
        ensure!(m.subject.as_str() == "p.a", "{m:?}");
        let reply = m.reply.as_ref().context("no ack subject")?.to_string();
        let tokens: Vec<&str> = reply.split('.').collect();
        ensure!(
            tokens.len() == 9 && tokens[..4] == ["$JS", "ACK", "P", "D"],
            "ack subject {reply}"
        );
        let meta = m.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(
            meta.stream == "P"
                && meta.consumer == "D"
                && meta.delivered == 1
                && meta.stream_sequence == i
                && meta.consumer_sequence == i
                && meta.pending == 5 - i,
            "message {i} metadata {meta:?}"
        );
        if i <= 3 {
            ack(&m).await?;
        }
    }
    let info = consumer_info(&stream, "D").await?;
    ensure!(
        info.delivered.stream_sequence == 5
            && info.delivered.consumer_sequence == 5
            && info.ack_floor.stream_sequence == 3
            && info.num_ack_pending == 2
            && info.num_pending == 0
            && info.push_bound,
        "after acking 1..=3 of 5: {info:?}"
    );
    Ok(())
}

/// Unacknowledged messages are redelivered after `ack_wait` with a higher delivery count and
/// a new consumer sequence; `-NAK` redelivers at once; `+TERM` and acks stop redelivery.
#[tokio::test]
async fn push_consumer_redelivers_after_ack_wait() -> Result<()> {
    let env = Js::start().await?;
    let stream = stream_with(&env.js, "R", &["r"], &[]).await?;
    publish_numbered(&env.js, "r", "m", 4).await?;
    let c = consumer(
        &stream,
        push::Config {
            ack_wait: Duration::from_secs(1),
            ..durable_push("D", env.client.new_inbox())
        },
    )
    .await?;
    let mut msgs = within(API_TIMEOUT, "messages", c.messages()).await??;
    let first: Vec<_> = {
        let mut v = Vec::new();
        for i in 1..=4 {
            v.push(next_js(&mut msgs, &format!("first delivery {i}")).await?);
        }
        v
    };
    let started = Instant::now();
    ack(&first[0]).await?; // m1: done
    first[1]
        .ack_with(AckKind::Term)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?; // m2: never again
    first[2]
        .ack_with(AckKind::Nak(None))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?; // m3: again, now
                                               // m4: left unacked: again after ack_wait.
    let m3 = next_js(&mut msgs, "redelivery of the nak'd m3").await?;
    let meta = m3.info().map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        m3.payload.as_ref() == b"m3" && meta.delivered == 2 && meta.stream_sequence == 3,
        "nak redelivery {meta:?}"
    );
    ensure!(
        started.elapsed() < Duration::from_millis(900),
        "a nak'd message was redelivered only after {:?}",
        started.elapsed()
    );
    ack(&m3).await?;
    let m4 = next_js(&mut msgs, "redelivery of the unacked m4").await?;
    let meta = m4.info().map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        m4.payload.as_ref() == b"m4"
            && meta.delivered == 2
            && meta.stream_sequence == 4
            && meta.consumer_sequence == 6,
        "ack_wait redelivery {meta:?}"
    );
    ensure!(
        started.elapsed() >= Duration::from_millis(800),
        "m4 came back after {:?}, before its 1 s ack_wait",
        started.elapsed()
    );
    ack(&m4).await?;
    // Nothing else comes back: m1 acked, m2 terminated, m3 and m4 acked.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(2500), msgs.next()).await {
        bail!("unexpected redelivery {extra:?}");
    }
    let info = consumer_info(&stream, "D").await?;
    ensure!(
        info.num_ack_pending == 0
            && info.num_redelivered == 0
            && info.ack_floor.stream_sequence == 4,
        "{info:?}"
    );
    Ok(())
}

/// With a `deliver_group`, each message goes to exactly one member of the queue group.
#[tokio::test]
async fn deliver_group_spreads_messages_over_queue_members() -> Result<()> {
    let env = Js::start().await?;
    let stream = stream_with(&env.js, "Q", &["q"], &[]).await?;
    let cfg = push::Config {
        deliver_group: Some("workers".to_string()),
        ..durable_push("D", "deliver.q".to_string())
    };
    let c = consumer(&stream, cfg).await?;
    let other = connect(&env.server.url()).await?;
    let other_js = crate::jetstream::js_context(&other);
    let c2: Consumer<push::Config> = within(
        API_TIMEOUT,
        "bind",
        other_js.get_consumer_from_stream("D", "Q"),
    )
    .await??;
    let mut a = within(API_TIMEOUT, "messages a", c.messages()).await??;
    let mut b = within(API_TIMEOUT, "messages b", c2.messages()).await??;
    sync(&env.client).await?;
    sync(&other).await?;
    publish_numbered(&env.js, "q", "m", 40).await?;
    let mut seen = BTreeSet::new();
    let (mut na, mut nb) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 40 && Instant::now() < deadline {
        tokio::select! {
            Some(m) = a.next() => {
                let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
                na += 1;
                ensure!(seen.insert(m.payload.clone()), "{m:?} delivered twice");
                ack(&m).await?;
            }
            Some(m) = b.next() => {
                let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
                nb += 1;
                ensure!(seen.insert(m.payload.clone()), "{m:?} delivered twice");
                ack(&m).await?;
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    ensure!(seen.len() == 40, "got {} of 40 ({na} + {nb})", seen.len());
    ensure!(
        na > 0 && nb > 0,
        "both members should get some: {na} and {nb}"
    );
    let info = consumer_info(&stream, "D").await?;
    ensure!(
        info.config.deliver_group.as_deref() == Some("workers") && info.num_ack_pending == 0,
        "{info:?}"
    );
    Ok(())
}

/// Idle heartbeats arrive on the deliver subject as `NATS/1.0 100 Idle Heartbeat` status
/// messages without a reply subject, carrying `Nats-Last-Consumer` and `Nats-Last-Stream`;
/// with flow control, `100 FlowControl Request` messages with a `$JS.FC.` reply subject
/// arrive, and a subscriber that answers them (async-nats does) gets everything.
#[tokio::test]
async fn flow_control_and_idle_heartbeats() -> Result<()> {
    let env = Js::start().await?;
    let stream = stream_with(&env.js, "F", &["f"], &[]).await?;
    let deliver = "deliver.f".to_string();
    // A plain subscriber on the deliver subject sees the status messages the client hides.
    let spy_client = connect(&env.server.url()).await?;
    let mut spy = spy_client.subscribe(deliver.clone()).await?;
    sync(&spy_client).await?;
    let c = consumer(
        &stream,
        push::Config {
            flow_control: true,
            idle_heartbeat: Duration::from_millis(500),
            ..durable_push("D", deliver)
        },
    )
    .await?;
    let mut msgs = within(API_TIMEOUT, "messages", c.messages()).await??;
    sync(&env.client).await?;

    // Idle: a heartbeat with the last sequences (0 so far).
    let hb = next_msg(&mut spy, "an idle heartbeat").await?;
    ensure!(
        hb.status == Some(async_nats::StatusCode::IDLE_HEARTBEAT) && hb.reply.is_none(),
        "{hb:?}"
    );
    let headers = hb.headers.clone().context("heartbeat without headers")?;
    ensure!(
        headers.get("Nats-Last-Consumer").map(|v| v.as_str()) == Some("0")
            && headers.get("Nats-Last-Stream").map(|v| v.as_str()) == Some("0"),
        "{headers:?}"
    );
    ensure!(
        hb.description.as_deref() == Some("Idle Heartbeat"),
        "{hb:?}"
    );

    // Enough bytes to need flow control (nats-server asks once a fraction of the
    // subscriber's pending-bytes budget is in flight).
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let n = 120u64;
    for _ in 0..n {
        publish_msg(&env.js, "f", PublishMessage::build().payload(chunk.clone()))
            .await?
            .context("publish")?;
    }
    let mut got = 0u64;
    let mut fc_requests = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while got < n {
        ensure!(Instant::now() < deadline, "only {got} of {n} delivered");
        tokio::select! {
            m = next_js(&mut msgs, "a flow-controlled delivery") => {
                let m = m?;
                got += 1;
                ensure!(m.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence == got, "out of order");
            }
            s = spy.next() => {
                let s = s.context("spy ended")?;
                if s.status == Some(async_nats::StatusCode::IDLE_HEARTBEAT) {
                    if let Some(reply) = &s.reply {
                        ensure!(reply.starts_with("$JS.FC.F.D."), "flow control reply {reply}");
                        ensure!(s.description.as_deref() == Some("FlowControl Request"), "{s:?}");
                        fc_requests += 1;
                    }
                }
            }
        }
    }
    ensure!(fc_requests > 0, "no flow control request in {n} x 64 KiB");
    // Caught up: the heartbeat now carries the last sequences.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = next_msg(&mut spy, "a heartbeat after the burst").await?;
        if s.status == Some(async_nats::StatusCode::IDLE_HEARTBEAT) && s.reply.is_none() {
            let h = s.headers.context("no headers")?;
            if h.get("Nats-Last-Stream").map(|v| v.as_str()) == Some("120") {
                ensure!(
                    h.get("Nats-Last-Consumer").map(|v| v.as_str()) == Some("120"),
                    "{h:?}"
                );
                break;
            }
        }
        ensure!(Instant::now() < deadline, "no heartbeat with the last seqs");
    }
    Ok(())
}

/// A flow-controlled consumer whose subscriber never answers stalls: it stops delivering
/// well before the end of the stream, and its heartbeats say so with `Nats-Consumer-Stalled`
/// (the flow control reply subject).
#[tokio::test]
async fn unanswered_flow_control_stalls_delivery() -> Result<()> {
    let env = Js::start().await?;
    let stream = stream_with(&env.js, "S", &["s"], &[]).await?;
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    for _ in 0..400 {
        publish_msg(&env.js, "s", PublishMessage::build().payload(chunk.clone()))
            .await?
            .context("publish")?;
    }
    let mut sub = env.client.subscribe("deliver.s").await?;
    sync(&env.client).await?;
    consumer(
        &stream,
        push::Config {
            flow_control: true,
            idle_heartbeat: Duration::from_millis(500),
            ..durable_push("D", "deliver.s".to_string())
        },
    )
    .await?;
    let mut data = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let stalled = loop {
        ensure!(
            Instant::now() < deadline,
            "no stalled heartbeat after {data} msgs"
        );
        let m = next_msg(&mut sub, "a delivery or status").await?;
        match m.status {
            None => data += 1,
            Some(_) if m.reply.is_some() => {} // a flow control request, left unanswered
            Some(_) => {
                if let Some(v) = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Consumer-Stalled"))
                {
                    break v.to_string();
                }
            }
        }
    };
    ensure!(
        stalled.starts_with("$JS.FC.S.D."),
        "stalled header {stalled}"
    );
    ensure!(
        data < 400,
        "all {data} delivered despite no flow control answer"
    );
    Ok(())
}

/// `rate_limit_bps` paces delivery: with the stream's `max_msg_size` at 1 KiB (nats-server
/// takes its burst from it), 40 KiB at 80 kbit/s (10 KB/s) take a few seconds, not
/// milliseconds.
#[tokio::test]
async fn rate_limit_paces_delivery() -> Result<()> {
    let env = Js::start().await?;
    let stream = within(
        API_TIMEOUT,
        "create stream",
        env.js.create_stream(jetstream::stream::Config {
            max_message_size: 1100,
            ..stream_config("RL", &["rl"])
        }),
    )
    .await??;
    let payload = Bytes::from(vec![b'r'; 1000]);
    for _ in 0..40 {
        publish_msg(
            &env.js,
            "rl",
            PublishMessage::build().payload(payload.clone()),
        )
        .await?
        .context("publish")?;
    }
    let c = consumer(
        &stream,
        push::Config {
            rate_limit: 80_000,
            ..durable_push("D", env.client.new_inbox())
        },
    )
    .await?;
    let info = consumer_info(&stream, "D").await?;
    ensure!(info.config.rate_limit == 80_000, "{:?}", info.config);
    let mut msgs = within(API_TIMEOUT, "messages", c.messages()).await??;
    let started = Instant::now();
    for i in 1..=40 {
        let m = within(
            Duration::from_secs(15),
            "a rate-limited delivery",
            msgs.next(),
        )
        .await?
        .with_context(|| format!("ended at {i}"))?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(m.payload.len() == 1000, "{m:?}");
    }
    let took = started.elapsed();
    ensure!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(12),
        "40 KB at 10 KB/s took {took:?}"
    );
    Ok(())
}

/// Where delivery starts: `all`, `last`, `new`, `by_start_sequence` and `last_per_subject`.
#[tokio::test]
async fn deliver_policies_pick_the_start() -> Result<()> {
    let env = Js::start().await?;
    let stream = stream_with(
        &env.js,
        "DP",
        &["dp.>"],
        &[
            ("dp.a", "a1"),
            ("dp.b", "b1"),
            ("dp.a", "a2"),
            ("dp.c", "c1"),
            ("dp.b", "b2"),
        ],
    )
    .await?;
    let quiet = Duration::from_millis(300);
    let config = |deliver_policy: DeliverPolicy| push::Config {
        deliver_policy,
        ..ack_none_push(&env.client)
    };
    let mut all = push_messages(&stream, config(DeliverPolicy::All)).await?;
    ensure!(take_exactly(&mut all, 5, quiet).await? == ["a1", "b1", "a2", "c1", "b2"]);
    let mut last = push_messages(&stream, config(DeliverPolicy::Last)).await?;
    ensure!(take_exactly(&mut last, 1, quiet).await? == ["b2"]);
    let mut from3 = push_messages(
        &stream,
        config(DeliverPolicy::ByStartSequence { start_sequence: 3 }),
    )
    .await?;
    ensure!(take_exactly(&mut from3, 3, quiet).await? == ["a2", "c1", "b2"]);
    // nats-server 2.9 wants a filter subject with last_per_subject (2.10 does not).
    if natrium_tests::is_nats_server() {
        consumer_rejected(
            &stream,
            config(DeliverPolicy::LastPerSubject),
            400,
            10094,
            "consumer delivery policy is deliver last per subject, but optional filter subject is not set",
        )
        .await?;
    }
    let mut per_subject = push_messages(
        &stream,
        push::Config {
            filter_subject: "dp.>".to_string(),
            ..config(DeliverPolicy::LastPerSubject)
        },
    )
    .await?;
    ensure!(take_exactly(&mut per_subject, 3, quiet).await? == ["a2", "c1", "b2"]);
    let mut new = push_messages(&stream, config(DeliverPolicy::New)).await?;
    sync(&env.client).await?;
    ensure!(take_exactly(&mut new, 0, quiet).await?.is_empty());
    publish(&env.js, "dp.c", "c2").await?;
    ensure!(take_exactly(&mut new, 1, quiet).await? == ["c2"]);
    ensure!(take_exactly(&mut all, 1, quiet).await? == ["c2"]);
    Ok(())
}

/// `headers_only` delivers the headers (user headers kept) plus `Nats-Msg-Size` with the
/// payload length, and an empty payload.
#[tokio::test]
async fn headers_only_drops_payloads() -> Result<()> {
    let env = Js::start().await?;
    let stream = stream_with(&env.js, "H", &["h"], &[]).await?;
    let mut headers = HeaderMap::new();
    headers.insert("X-Trace", "t-1");
    publish_msg(
        &env.js,
        "h",
        PublishMessage::build()
            .payload(Bytes::from_static(b"twelve bytes"))
            .headers(headers),
    )
    .await?
    .context("publish")?;
    publish(&env.js, "h", "plain").await?;
    let mut msgs = push_messages(
        &stream,
        push::Config {
            headers_only: true,
            ..ack_none_push(&env.client)
        },
    )
    .await?;
    let m = next_js(&mut msgs, "headers-only 1").await?;
    let h = m.headers.clone().context("no headers")?;
    ensure!(m.payload.is_empty(), "{m:?}");
    ensure!(
        h.get("Nats-Msg-Size").map(|v| v.as_str()) == Some("12")
            && h.get("X-Trace").map(|v| v.as_str()) == Some("t-1"),
        "{h:?}"
    );
    let m = next_js(&mut msgs, "headers-only 2").await?;
    let h = m.headers.clone().context("no headers")?;
    ensure!(
        m.payload.is_empty() && h.get("Nats-Msg-Size").map(|v| v.as_str()) == Some("5"),
        "{m:?}"
    );
    Ok(())
}

/// `filter_subject` delivers only the matching subjects; `filter_subjects` (2.10) several.
#[tokio::test]
async fn filter_subjects_select_messages() -> Result<()> {
    let env = Js::start().await?;
    let stream = stream_with(
        &env.js,
        "FS",
        &["fs.>"],
        &[
            ("fs.a", "a1"),
            ("fs.b", "b1"),
            ("fs.c", "c1"),
            ("fs.a", "a2"),
            ("fs.b.x", "bx"),
        ],
    )
    .await?;
    let quiet = Duration::from_millis(300);
    let mut one = push_messages(
        &stream,
        push::Config {
            filter_subject: "fs.a".to_string(),
            ..ack_none_push(&env.client)
        },
    )
    .await?;
    ensure!(take_exactly(&mut one, 2, quiet).await? == ["a1", "a2"]);
    let info = within(API_TIMEOUT, "info", async {
        let mut s = stream.clone();
        s.info().await.cloned()
    })
    .await??;
    ensure!(info.state.consumer_count == 1, "{:?}", info.state);

    if natrium_tests::is_nats_server() {
        // nats-server 2.9.10 has no `filter_subjects` (2.10): it ignores the field.
        return Ok(());
    }
    let mut many = push_messages(
        &stream,
        push::Config {
            filter_subjects: vec!["fs.a".to_string(), "fs.b.>".to_string()],
            ..ack_none_push(&env.client)
        },
    )
    .await?;
    ensure!(take_exactly(&mut many, 3, quiet).await? == ["a1", "a2", "bx"]);
    Ok(())
}

/// An ordered push consumer delivers every message exactly once, in stream order, with
/// consumer sequences 1, 2, 3, ...
#[tokio::test]
async fn ordered_push_consumer_delivers_everything_once_in_order() -> Result<()> {
    let env = Js::start().await?;
    let stream = stream_with(&env.js, "O", &["o.>"], &[]).await?;
    for i in 1..=50 {
        publish(&env.js, &format!("o.{}", i % 3), &format!("m{i}")).await?;
    }
    let c = consumer(
        &stream,
        push::OrderedConfig {
            deliver_subject: env.client.new_inbox(),
            ..Default::default()
        },
    )
    .await?;
    let info = &c.cached_info().config;
    ensure!(
        info.ack_policy == AckPolicy::None && info.flow_control && info.max_deliver == 1,
        "{info:?}"
    );
    let mut msgs = within(API_TIMEOUT, "messages", c.messages()).await??;
    for i in 1..=50u64 {
        let m = next_js(&mut msgs, &format!("ordered {i}")).await?;
        let meta = m.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(
            m.payload == format!("m{i}").as_bytes()
                && meta.stream_sequence == i
                && meta.consumer_sequence == i,
            "{i}: {meta:?}"
        );
    }
    Ok(())
}

/// When the server deletes an ordered consumer, the client notices the missing heartbeats,
/// creates a new one from the next stream sequence, and delivery continues with nothing
/// lost and nothing repeated.
#[tokio::test]
async fn ordered_push_consumer_survives_server_side_delete() -> Result<()> {
    let env = Js::start().await?;
    let stream = stream_with(&env.js, "OD", &["od"], &[]).await?;
    publish_numbered(&env.js, "od", "m", 10).await?;
    let c = consumer(
        &stream,
        push::OrderedConfig {
            deliver_subject: env.client.new_inbox(),
            ..Default::default()
        },
    )
    .await?;
    let name = c.cached_info().name.clone();
    let mut msgs = within(API_TIMEOUT, "messages", c.messages()).await??;
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(
            next_js(&mut msgs, "before the delete")
                .await?
                .payload
                .clone(),
        );
    }
    within(
        API_TIMEOUT,
        "delete consumer",
        stream.delete_consumer(&name),
    )
    .await?
    .context("deleting the ordered consumer")?;
    publish_numbered(&env.js, "od", "n", 10).await?;
    // The client detects the loss (two missed 5 s heartbeats, or a `409 Consumer Deleted`
    // status for pull) and recreates the consumer.
    finish_after_recreation(&mut msgs, got).await
}

/// An ordered pull consumer delivers in order and, deleted by the server, is recreated.
#[tokio::test]
async fn ordered_pull_consumer_survives_server_side_delete() -> Result<()> {
    let env = Js::start().await?;
    let stream = stream_with(&env.js, "OP", &["op"], &[]).await?;
    publish_numbered(&env.js, "op", "m", 10).await?;
    let c = consumer(&stream, pull::OrderedConfig::default()).await?;
    let name = c.cached_info().name.clone();
    let mut msgs = within(API_TIMEOUT, "messages", c.messages()).await??;
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(
            next_js(&mut msgs, "before the delete")
                .await?
                .payload
                .clone(),
        );
    }
    within(
        API_TIMEOUT,
        "delete consumer",
        stream.delete_consumer(&name),
    )
    .await?
    .context("deleting the ordered consumer")?;
    publish_numbered(&env.js, "op", "n", 10).await?;
    // The client detects the loss (two missed 5 s heartbeats, or a `409 Consumer Deleted`
    // status for pull) and recreates the consumer.
    finish_after_recreation(&mut msgs, got).await
}

/// Reads an ordered consumer's messages after a server-side delete until 20 have arrived in
/// all (skipping the errors the client reports while it recreates the consumer), and checks
/// they are `m1..m10` then `n1..n10`.
async fn finish_after_recreation<S, E>(msgs: &mut S, mut got: Vec<Bytes>) -> Result<()>
where
    S: Stream<Item = std::result::Result<jetstream::Message, E>> + Unpin,
    E: std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(40);
    while got.len() < 20 {
        ensure!(Instant::now() < deadline, "only {} of 20", got.len());
        match within(Duration::from_secs(30), "after the delete", msgs.next()).await? {
            Some(Ok(m)) => got.push(m.payload.clone()),
            Some(Err(e)) => println!("note: ordered consumer error while recreating: {e:?}"),
            None => bail!("the ordered stream ended"),
        }
    }
    let want: Vec<Bytes> = numbered("m", 10)
        .into_iter()
        .chain(numbered("n", 10))
        .map(Bytes::from)
        .collect();
    ensure!(got == want, "{got:?}");
    Ok(())
}

/// A durable push consumer killed (-9) in the middle of consumption resumes after a restart
/// with what was not acknowledged: no double-acked message comes back, none is lost.
#[tokio::test]
async fn a_durable_push_consumer_resumes_after_kill_9() -> Result<()> {
    let mut env = Js::start().await?;
    let stream = stream_with(&env.js, "K9", &["k9"], &[]).await?;
    publish_numbered(&env.js, "k9", "m", 100).await?;
    let config = push::Config {
        ack_wait: Duration::from_secs(1),
        ..durable_push("K", "deliver.k9".to_string())
    };
    let mut msgs = push_messages(&stream, config).await?;
    let seq = |m: &jetstream::Message| -> Result<u64> {
        Ok(m.info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence)
    };
    for i in 1..=60u64 {
        let m = within(DELIVERY_TIMEOUT, "a delivery", msgs.next())
            .await?
            .context("deliveries ended")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(seq(&m)? == i, "in order");
        if i <= 50 {
            m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    // 51..60 delivered and not acknowledged; the rest maybe in flight.
    drop(msgs);
    env.server.stop_with("KILL")?;
    env.restart().await?;

    let stream = env.js.get_stream("K9").await?;
    let c: Consumer<push::Config> = stream
        .get_consumer("K")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut msgs = within(API_TIMEOUT, "messages", c.messages()).await??;
    let mut seen = BTreeSet::new();
    let mut again = Vec::new();
    within(
        Duration::from_secs(20),
        "everything not acknowledged",
        async {
            while !(51..=100).all(|s| seen.contains(&s)) {
                let m = msgs
                    .next()
                    .await
                    .context("deliveries ended")?
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let s = seq(&m)?;
                if s <= 50 {
                    again.push(s);
                }
                seen.insert(s);
                m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            anyhow::Ok(())
        },
    )
    .await??;
    // nats-server 2.9 writes consumer state asynchronously even for double acks.
    ensure!(
        natrium_tests::is_nats_server() || again.is_empty(),
        "acknowledged messages came back: {again:?}"
    );
    Ok(())
}
