//! JetStream retention policies and consumer state across restarts.
//!
//! An `interest` stream keeps a message until every consumer whose filter matches it has
//! acknowledged it; a `workqueue` stream drops a message once one consumer acknowledged it,
//! and refuses consumers that would see the same message (exact nats-server API errors); a
//! durable consumer's acknowledgements survive a restart of the server on the same store.
//!
//! Validated against nats-server 2.9.10.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use async_nats::jetstream::{
    self,
    consumer::{pull, push, AckPolicy, Consumer},
    stream::RetentionPolicy,
};
use futures::StreamExt;

use crate::jetstream::{state, stream_config, Js, API_TIMEOUT};
use crate::js_push::{ack, consumer, consumer_info, consumer_rejected, numbered, publish_numbered};
use natrium_tests::within;

/// Creates the file stream `name` on `subjects` with `retention`.
async fn retention_stream(
    js: &jetstream::Context,
    name: &str,
    subjects: &[&str],
    retention: RetentionPolicy,
) -> Result<jetstream::stream::Stream> {
    within(
        API_TIMEOUT,
        "create stream",
        js.create_stream(jetstream::stream::Config {
            retention,
            ..stream_config(name, subjects)
        }),
    )
    .await?
    .with_context(|| format!("creating stream {name}"))
}

/// A durable pull consumer config named `name` with explicit acks, filtered on `filter` (or
/// unfiltered if empty).
fn durable_pull(name: &str, filter: &str) -> pull::Config {
    pull::Config {
        durable_name: Some(name.to_string()),
        filter_subject: filter.to_string(),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    }
}

/// Pulls up to `n` messages, waiting at most 2 s for the batch to fill.
async fn pull_batch(c: &Consumer<pull::Config>, n: usize) -> Result<Vec<jetstream::Message>> {
    let mut batch = within(
        API_TIMEOUT,
        "pull request",
        c.batch()
            .max_messages(n)
            .expires(Duration::from_secs(2))
            .messages(),
    )
    .await?
    .map_err(|e| anyhow::anyhow!("pull request: {e}"))?;
    let mut out = Vec::new();
    while out.len() < n {
        match within(Duration::from_secs(5), "pulled message", batch.next()).await? {
            Some(m) => out.push(m.map_err(|e| anyhow::anyhow!("pulled message: {e}"))?),
            None => break,
        }
    }
    Ok(out)
}

/// The payloads of `msgs`.
fn payloads(msgs: &[jetstream::Message]) -> Vec<String> {
    msgs.iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect()
}

/// The number of messages stream `name` holds.
async fn count(js: &jetstream::Context, name: &str) -> Result<u64> {
    Ok(state(js, name).await?.messages)
}

/// An interest stream without consumers keeps nothing; with consumers, it keeps a message
/// until every consumer whose filter matches has acknowledged it. A consumer whose filter
/// does not match holds nothing back.
#[tokio::test]
async fn interest_stream_drops_messages_acked_by_every_consumer() -> Result<()> {
    let env = Js::start().await?;
    let stream = retention_stream(&env.js, "I", &["i.>"], RetentionPolicy::Interest).await?;
    publish_numbered(&env.js, "i.x", "early", 2).await?;
    let st = state(&env.js, "I").await?;
    ensure!(
        st.messages == 0 && st.last_sequence == 2,
        "no consumer, no interest: {st:?}"
    );

    let a = consumer(&stream, durable_pull("A", "")).await?;
    let b = consumer(&stream, durable_pull("B", "")).await?;
    let _other = consumer(&stream, durable_pull("O", "i.other")).await?;
    publish_numbered(&env.js, "i.x", "m", 3).await?;
    ensure!(count(&env.js, "I").await? == 3);

    let got_a = pull_batch(&a, 3).await?;
    ensure!(
        payloads(&got_a) == numbered("m", 3),
        "A got {:?}",
        payloads(&got_a)
    );
    for m in &got_a {
        ack(m).await?;
    }
    ensure!(
        count(&env.js, "I").await? == 3,
        "B has not acked yet: the messages stay"
    );

    let got_b = pull_batch(&b, 3).await?;
    ensure!(
        payloads(&got_b) == numbered("m", 3),
        "B got {:?}",
        payloads(&got_b)
    );
    ack(&got_b[0]).await?;
    ack(&got_b[1]).await?;
    ensure!(count(&env.js, "I").await? == 1, "m1, m2 acked by both");
    ack(&got_b[2]).await?;
    let st = state(&env.js, "I").await?;
    ensure!(
        st.messages == 0 && st.first_sequence == 6 && st.last_sequence == 5,
        "all acked by both: {st:?}"
    );

    // A message only A and B see is dropped once both ack it, though O is still there.
    publish_numbered(&env.js, "i.y", "y", 1).await?;
    for c in [&a, &b] {
        let got = pull_batch(c, 1).await?;
        ensure!(payloads(&got) == ["y1"], "{:?}", payloads(&got));
        ack(&got[0]).await?;
    }
    ensure!(count(&env.js, "I").await? == 0);
    Ok(())
}

/// Creating durable pull consumer `name` filtered on `filter` fails: another consumer of the
/// work queue already sees some of those messages.
async fn not_unique(stream: &jetstream::stream::Stream, name: &str, filter: &str) -> Result<()> {
    consumer_rejected(
        stream,
        durable_pull(name, filter),
        400,
        10100,
        "filtered consumer not unique on workqueue stream",
    )
    .await
}

/// A work-queue stream drops a message once one consumer acknowledged it; it takes one
/// unfiltered consumer, or consumers with disjoint filters, and refuses the rest with
/// nats-server's errors.
#[tokio::test]
async fn workqueue_stream_drops_acked_messages_and_refuses_overlaps() -> Result<()> {
    let env = Js::start().await?;
    let stream = retention_stream(&env.js, "W", &["w.>"], RetentionPolicy::WorkQueue).await?;
    publish_numbered(&env.js, "w.a", "m", 3).await?;
    ensure!(
        count(&env.js, "W").await? == 3,
        "a work queue keeps messages until a consumer takes them"
    );

    let a = consumer(&stream, durable_pull("A", "")).await?;
    let got = pull_batch(&a, 3).await?;
    ensure!(payloads(&got) == numbered("m", 3), "{:?}", payloads(&got));
    ack(&got[0]).await?;
    ack(&got[2]).await?;
    let st = state(&env.js, "W").await?;
    ensure!(
        st.messages == 1 && st.first_sequence == 2,
        "only m2 is unacked: {st:?}"
    );

    consumer_rejected(
        &stream,
        durable_pull("B", ""),
        400,
        10099,
        "multiple non-filtered consumers not allowed on workqueue stream",
    )
    .await?;
    // A filtered one overlaps the unfiltered A too (a different error).
    not_unique(&stream, "B", "w.b").await?;
    // A pull consumer without acks is refused for being a pull consumer first (10084
    // "consumer in pull mode requires ack policy"); a push one for the work queue.
    consumer_rejected(
        &stream,
        push::Config {
            deliver_subject: "deliver.w".to_string(),
            filter_subject: "w.n".to_string(),
            ack_policy: AckPolicy::None,
            ..Default::default()
        },
        400,
        10098,
        "workqueue stream requires explicit ack",
    )
    .await?;

    within(API_TIMEOUT, "delete A", stream.delete_consumer("A")).await??;
    let _wa = consumer(&stream, durable_pull("WA", "w.a")).await?;
    let _wb = consumer(&stream, durable_pull("WB", "w.b")).await?;
    for (name, filter) in [("WX", "w.>"), ("WA2", "w.a")] {
        not_unique(&stream, name, filter).await?;
    }
    Ok(())
}

/// A durable consumer's state survives a server restart: acknowledged messages never come
/// back, the delivered-but-unacked one is redelivered after its `ack_wait`, and the ones not
/// yet delivered follow.
#[tokio::test]
async fn durable_consumer_state_survives_restart() -> Result<()> {
    let mut env = Js::start().await?;
    let stream = retention_stream(&env.js, "D", &["d"], RetentionPolicy::Limits).await?;
    publish_numbered(&env.js, "d", "m", 6).await?;
    let c = consumer(
        &stream,
        pull::Config {
            ack_wait: Duration::from_secs(2),
            ..durable_pull("C", "")
        },
    )
    .await?;
    let got = pull_batch(&c, 4).await?;
    ensure!(payloads(&got) == numbered("m", 4), "{:?}", payloads(&got));
    for m in &got[..3] {
        ack(m).await?;
    }
    let before = consumer_info(&stream, "C").await?;
    ensure!(
        before.ack_floor.stream_sequence == 3 && before.delivered.stream_sequence == 4,
        "{before:?}"
    );

    env.restart().await?;
    let stream = within(API_TIMEOUT, "get stream", env.js.get_stream("D")).await??;
    let after = consumer_info(&stream, "C").await?;
    ensure!(
        after.ack_floor.stream_sequence == 3
            && after.delivered.stream_sequence == 4
            && after.num_ack_pending == 1
            && after.num_pending == 2,
        "consumer state after restart: {after:?}"
    );
    let c: Consumer<pull::Config> = within(API_TIMEOUT, "get consumer", stream.get_consumer("C"))
        .await?
        .map_err(|e| anyhow::anyhow!("get consumer: {e}"))?;
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while seen.len() < 3 && std::time::Instant::now() < deadline {
        for m in pull_batch(&c, 3).await? {
            let meta = m.info().map_err(|e| anyhow::anyhow!("{e}"))?;
            let p = String::from_utf8_lossy(&m.payload).into_owned();
            ensure!(
                !["m1", "m2", "m3"].contains(&p.as_str()),
                "acked {p} redelivered after the restart"
            );
            if p == "m4" {
                ensure!(meta.delivered == 2, "m4 is a redelivery: {meta:?}");
            }
            ack(&m).await?;
            seen.push(p);
        }
    }
    seen.sort();
    ensure!(seen == ["m4", "m5", "m6"], "after the restart: {seen:?}");
    let done = consumer_info(&stream, "C").await?;
    ensure!(
        done.ack_floor.stream_sequence == 6 && done.num_ack_pending == 0,
        "{done:?}"
    );
    Ok(())
}
