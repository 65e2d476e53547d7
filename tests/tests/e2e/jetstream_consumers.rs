//! JetStream, part 2: pull consumers. The official client's consumer API against the
//! broker: create (durable, ephemeral, create/update actions), fetch/batch/messages,
//! acks of every kind, redelivery, the pull statuses, the consumer API errors, and a
//! durable consumer's state surviving `kill -9`. Every case runs against nats-server 2.9.10
//! too (2.10-only behaviour is gated with a comment).

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use async_nats::jetstream::{
    consumer::{pull, AckPolicy, PullConsumer},
    AckKind,
};
use futures::StreamExt;
use natrium_tests::{is_nats_server, next_msg, within};
use serde_json::{json, Value};

use crate::jetstream::{api, publish, stream_config, Js, API_TIMEOUT};

async fn stream_with(js: &Js, n: usize) -> Result<async_nats::jetstream::stream::Stream> {
    let stream = js
        .js
        .create_stream(stream_config("S", &["s.>"]))
        .await
        .context("creating stream S")?;
    for i in 1..=n {
        publish(&js.js, &format!("s.{}", i % 3), &format!("m{i}")).await?;
    }
    Ok(stream)
}

fn durable(name: &str) -> pull::Config {
    pull::Config {
        durable_name: Some(name.to_string()),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    }
}

async fn fetch(c: &PullConsumer, n: usize) -> Result<Vec<async_nats::jetstream::Message>> {
    within(API_TIMEOUT, "fetching", async {
        let mut msgs = c.fetch().max_messages(n).messages().await?;
        let mut out = Vec::new();
        while let Some(m) = msgs.next().await {
            out.push(m.map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        anyhow::Ok(out)
    })
    .await?
}

#[tokio::test]
async fn pull_consumer_fetches_in_order_and_tracks_acks() -> Result<()> {
    let js = Js::start().await?;
    let stream = stream_with(&js, 10).await?;
    let c: PullConsumer = stream.create_consumer(durable("D")).await?;
    let info = c.cached_info();
    ensure!(info.config.max_ack_pending == 1000, "{:?}", info.config);
    ensure!(info.config.ack_wait == Duration::from_secs(30));
    ensure!(
        info.config.max_waiting == 512 && info.num_pending == 10,
        "{info:?}"
    );

    let got = fetch(&c, 4).await?;
    let payloads: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).to_string())
        .collect();
    ensure!(payloads == ["m1", "m2", "m3", "m4"], "{payloads:?}");
    ensure!(
        got[0].subject.as_str() == "s.1",
        "stored subject kept: {}",
        got[0].subject
    );
    let meta = got[3].info().map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(meta.stream_sequence == 4 && meta.consumer_sequence == 4 && meta.delivered == 1);
    ensure!(
        meta.pending == 6 && meta.stream == "S" && meta.consumer == "D",
        "{meta:?}"
    );

    got[0].ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    got[1]
        .double_ack()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut c = c;
    let info = c.info().await?.clone();
    ensure!(info.delivered.stream_sequence == 4 && info.delivered.consumer_sequence == 4);
    ensure!(info.ack_floor.stream_sequence == 2, "{:?}", info.ack_floor);
    ensure!(
        info.num_ack_pending == 2 && info.num_pending == 6,
        "{info:?}"
    );
    for m in &got[2..] {
        m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let info = c.info().await?.clone();
    ensure!(
        info.ack_floor.stream_sequence == 4 && info.num_ack_pending == 0,
        "{info:?}"
    );

    // A batch larger than what is left: the rest, then the request ends.
    let rest = within(API_TIMEOUT, "a batch", async {
        let mut b = c
            .batch()
            .max_messages(20)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        let mut n = Vec::new();
        while let Some(m) = b.next().await {
            let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
            m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            n.push(
                m.info()
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .stream_sequence,
            );
        }
        anyhow::Ok(n)
    })
    .await??;
    ensure!(rest == [5, 6, 7, 8, 9, 10], "{rest:?}");
    Ok(())
}

#[tokio::test]
async fn messages_stream_wakes_on_new_messages_and_filters() -> Result<()> {
    let js = Js::start().await?;
    let stream = stream_with(&js, 0).await?;
    let c: PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("F".into()),
            filter_subject: "s.2".into(),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let mut msgs = c.messages().await?;
    for i in 0..6 {
        publish(&js.js, &format!("s.{}", i % 3), &format!("n{i}")).await?;
    }
    for want in ["n2", "n5"] {
        let m = within(API_TIMEOUT, "a message", msgs.next())
            .await?
            .context("stream ended")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(m.payload == want.as_bytes(), "{:?}", m.payload);
        ensure!(m.subject.as_str() == "s.2");
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

#[tokio::test]
async fn unacknowledged_messages_are_redelivered_nak_term_and_max_deliver() -> Result<()> {
    let js = Js::start().await?;
    let stream = stream_with(&js, 3).await?;
    let mut adv = js
        .client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.R")
        .await?;
    let mut terminated = js
        .client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.R")
        .await?;
    natrium_tests::sync(&js.client).await?;
    let c: PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("R".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_millis(300),
            max_deliver: 2,
            ..Default::default()
        })
        .await?;
    let first = fetch(&c, 3).await?;
    ensure!(first.len() == 3);
    first[1]
        .ack_with(AckKind::Nak(None))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    first[2]
        .ack_with(AckKind::Term)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = next_msg(&mut terminated, "the terminated advisory").await?;
    let body: Value = serde_json::from_slice(&t.payload)?;
    ensure!(
        body["type"] == "io.nats.jetstream.advisory.v1.terminated"
            && body["stream_seq"] == 3
            && body["consumer_seq"] == 3
            && body["deliveries"] == 1,
        "{body}"
    );
    // The NAKed one comes back at once, the other after ack_wait; the terminated never.
    let mut seen = Vec::new();
    within(API_TIMEOUT, "redeliveries", async {
        while seen.len() < 2 {
            for m in fetch(&c, 3).await? {
                let i = m.info().map_err(|e| anyhow::anyhow!("{e}"))?;
                anyhow::ensure!(i.delivered == 2, "{i:?}");
                seen.push(i.stream_sequence);
            }
        }
        anyhow::Ok(())
    })
    .await??;
    seen.sort();
    ensure!(seen == [1, 2], "{seen:?}");
    // Past max_deliver: the next pull finds nothing and the advisory goes out.
    // (A `no_wait` fetch would hang on nats-server 2.9 here: it counts the spent
    // redeliveries as pending; a request with an expiry ends on both.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let none = within(API_TIMEOUT, "a batch past max_deliver", async {
        let mut b = c
            .batch()
            .max_messages(3)
            .expires(Duration::from_millis(300))
            .messages()
            .await?;
        let mut n = 0;
        while let Some(m) = b.next().await {
            m.map_err(|e| anyhow::anyhow!("{e}"))?;
            n += 1;
        }
        anyhow::Ok(n)
    })
    .await??;
    ensure!(none == 0, "{none} messages past max_deliver");
    let a = next_msg(&mut adv, "the max deliveries advisory").await?;
    let body: Value = serde_json::from_slice(&a.payload)?;
    ensure!(
        body["stream"] == "S" && body["consumer"] == "R" && body["deliveries"] == 2,
        "{body}"
    );
    ensure!(
        body["type"] == "io.nats.jetstream.advisory.v1.max_deliver",
        "{body}"
    );
    let mut c = c;
    let info = c.info().await?.clone();
    ensure!(info.num_redelivered == 2, "{info:?}");
    Ok(())
}

/// A raw pull request and the status headers it gets.
async fn pull_status(js: &Js, consumer: &str, body: Value) -> Result<(u16, String)> {
    let subject = format!("$JS.API.CONSUMER.MSG.NEXT.S.{consumer}");
    let r = within(
        API_TIMEOUT,
        "a pull status",
        js.client.request(subject, body.to_string().into()),
    )
    .await?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let status = r.status.map(|s| s.as_u16()).unwrap_or(0);
    let text = r.description.clone().unwrap_or_default();
    Ok((status, text))
}

#[tokio::test]
async fn pull_requests_get_nats_server_statuses() -> Result<()> {
    let js = Js::start().await?;
    let stream = stream_with(&js, 0).await?;
    stream
        .create_consumer(pull::Config {
            durable_name: Some("P".into()),
            ack_policy: AckPolicy::Explicit,
            max_batch: 5,
            max_waiting: 1,
            ..Default::default()
        })
        .await?;
    let (code, text) = pull_status(&js, "P", json!({"batch": 1, "no_wait": true})).await?;
    ensure!(code == 404 && text == "No Messages", "{code} {text}");
    let (code, text) = pull_status(&js, "P", json!({"batch": 6})).await?;
    ensure!(
        code == 409 && text == "Exceeded MaxRequestBatch of 5",
        "{code} {text}"
    );
    let (code, text) = pull_status(&js, "P", json!({"batch": 2, "expires": 200_000_000})).await?;
    ensure!(code == 408 && text == "Request Timeout", "{code} {text}");

    // One request waits; a second one is over max_waiting.
    let inbox = js.client.new_inbox();
    let mut waiting = js.client.subscribe(inbox.clone()).await?;
    js.client
        .publish_with_reply(
            "$JS.API.CONSUMER.MSG.NEXT.S.P",
            inbox,
            json!({"batch": 1, "expires": 5_000_000_000u64})
                .to_string()
                .into(),
        )
        .await?;
    natrium_tests::sync(&js.client).await?;
    let (code, text) = pull_status(&js, "P", json!({"batch": 1, "expires": 1_000_000_000})).await?;
    ensure!(
        code == 409 && text == "Exceeded MaxWaiting",
        "{code} {text}"
    );
    // A message arriving wakes the waiting request.
    publish(&js.js, "s.1", "late").await?;
    let m = next_msg(&mut waiting, "the waiting request's message").await?;
    ensure!(m.payload == "late" && m.subject.as_str() == "s.1", "{m:?}");
    let reply = m.reply.context("an ack subject")?;
    ensure!(reply.starts_with("$JS.ACK.S.P.1.1.1."), "{reply}");
    Ok(())
}

#[tokio::test]
async fn consumer_api_follows_nats_server_rules() -> Result<()> {
    let js = Js::start().await?;
    let c = &js.client;
    stream_with(&js, 2).await?;
    let create = |subject: &str, config: Value| {
        let subject = subject.to_string();
        async move { api(c, &subject, json!({"stream_name": "S", "config": config})).await }
    };
    let r = create("CONSUMER.DURABLE.CREATE.S.A", json!({"durable_name": "B"})).await?;
    ensure!(r["error"]["err_code"] == 10017, "{r}");
    let r = create(
        "CONSUMER.CREATE.S.A.s.1",
        json!({"name": "A", "filter_subject": "s.2"}),
    )
    .await?;
    ensure!(r["error"]["err_code"] == 10131, "{r}");
    let r = create(
        "CONSUMER.CREATE.S.A",
        json!({"durable_name": "A", "filter_subject": "x"}),
    )
    .await?;
    ensure!(r["error"]["err_code"] == 10093, "{r}");
    let r = create(
        "CONSUMER.CREATE.S.A",
        json!({"durable_name": "A", "deliver_policy": "by_start_sequence"}),
    )
    .await?;
    ensure!(r["error"]["err_code"] == 10094, "{r}");
    ensure!(
        r["error"]["description"]
            == "consumer delivery policy is deliver by start sequence, but optional start sequence is not set",
        "{r}"
    );
    let r = create(
        "CONSUMER.CREATE.S.A",
        json!({"durable_name": "A", "ack_policy": "explicit"}),
    )
    .await?;
    ensure!(
        r["type"] == "io.nats.jetstream.api.v1.consumer_create_response",
        "{r}"
    );
    ensure!(
        r["name"] == "A" && r["num_pending"] == 2 && r["config"]["max_deliver"] == -1,
        "{r}"
    );
    // The same config again is fine; another one is an update.
    let r = create(
        "CONSUMER.CREATE.S.A",
        json!({"durable_name": "A", "ack_policy": "explicit"}),
    )
    .await?;
    ensure!(r.get("error").is_none(), "{r}");
    let r = create(
        "CONSUMER.CREATE.S.A",
        json!({"durable_name": "A", "ack_policy": "explicit", "description": "d"}),
    )
    .await?;
    ensure!(r["config"]["description"] == "d", "{r}");
    let r = create(
        "CONSUMER.CREATE.S.A",
        json!({"durable_name": "A", "ack_policy": "all"}),
    )
    .await?;
    ensure!(r["error"]["err_code"] == 10012, "{r}");
    ensure!(
        r["error"]["description"] == "ack policy can not be updated",
        "{r}"
    );
    if !is_nats_server() {
        // 2.10: create/update actions (2.9 ignores `action`).
        let r = api(
            c,
            "CONSUMER.CREATE.S.A",
            json!({"stream_name": "S", "action": "create",
                   "config": {"durable_name": "A", "ack_policy": "explicit", "description": "x"}}),
        )
        .await?;
        ensure!(r["error"]["err_code"] == 10148, "{r}");
        let r = api(
            c,
            "CONSUMER.CREATE.S.Z",
            json!({"stream_name": "S", "action": "update", "config": {"durable_name": "Z"}}),
        )
        .await?;
        ensure!(r["error"]["err_code"] == 10149, "{r}");
    }
    let r = create("CONSUMER.CREATE.S", json!({"ack_policy": "explicit"})).await?;
    let eph = r["name"].as_str().context("an ephemeral name")?.to_string();
    ensure!(r["config"]["inactive_threshold"] == 5_000_000_000u64, "{r}");

    let r = api(c, "CONSUMER.NAMES.S", json!({})).await?;
    let mut names: Vec<String> = serde_json::from_value(r["consumers"].clone())?;
    names.sort();
    let mut want = vec!["A".to_string(), eph.clone()];
    want.sort();
    ensure!(names == want && r["total"] == 2, "{r}");
    let r = api(c, "CONSUMER.LIST.S", json!({"offset": 1})).await?;
    ensure!(
        r["total"] == 2 && r["offset"] == 1 && r["consumers"].as_array().map(Vec::len) == Some(1),
        "{r}"
    );
    let r = api(c, "STREAM.INFO.S", json!({})).await?;
    ensure!(r["state"]["consumer_count"] == 2, "{r}");
    let r = api(c, "INFO", json!({})).await?;
    ensure!(r["consumers"] == 2, "{r}");
    let r = api(c, "CONSUMER.DELETE.S.A", json!({})).await?;
    ensure!(r["success"] == true, "{r}");
    let r = api(c, "CONSUMER.INFO.S.A", json!({})).await?;
    ensure!(
        r["error"]["err_code"] == 10014 && r["error"]["code"] == 404,
        "{r}"
    );
    let r = api(c, "CONSUMER.INFO.X.A", json!({})).await?;
    ensure!(r["error"]["err_code"] == 10059, "{r}");
    Ok(())
}

#[tokio::test]
async fn ephemeral_consumers_go_away_when_inactive_and_with_their_stream() -> Result<()> {
    let js = Js::start().await?;
    let c = &js.client;
    stream_with(&js, 1).await?;
    let mut deleted = c
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.*")
        .await?;
    natrium_tests::sync(c).await?;
    let r = api(
        c,
        "CONSUMER.CREATE.S",
        json!({"stream_name": "S", "config": {"ack_policy": "explicit", "inactive_threshold": 300_000_000}}),
    )
    .await?;
    let name = r["name"].as_str().context("a name")?.to_string();
    let advised = next_msg(
        &mut deleted,
        "the deleted advisory of the inactive consumer",
    )
    .await?;
    ensure!(
        advised.subject.as_str() == format!("$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.{name}"),
        "{}",
        advised.subject
    );
    within(Duration::from_secs(5), "the ephemeral's removal", async {
        loop {
            let r = api(c, &format!("CONSUMER.INFO.S.{name}"), json!({})).await?;
            if r["error"]["err_code"] == 10014 {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await??;
    let r = api(
        c,
        "CONSUMER.CREATE.S.K",
        json!({"stream_name": "S", "config": {"durable_name": "K"}}),
    )
    .await?;
    ensure!(r.get("error").is_none(), "{r}");
    api(c, "STREAM.DELETE.S", json!({})).await?;
    stream_with(&js, 0).await?;
    let r = api(c, "CONSUMER.INFO.S.K", json!({})).await?;
    ensure!(r["error"]["err_code"] == 10014, "{r}");
    Ok(())
}

#[tokio::test]
async fn durable_consumer_state_survives_kill_9() -> Result<()> {
    let mut js = Js::start().await?;
    let stream = stream_with(&js, 10).await?;
    let c: PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("K".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(1),
            ..Default::default()
        })
        .await?;
    let got = fetch(&c, 6).await?;
    for m in &got[..4] {
        m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // 5 and 6 are delivered and not acknowledged.
    js.server.stop_with("KILL")?;
    js.restart().await?;
    let stream = js.js.get_stream("S").await?;
    let mut c: PullConsumer = stream
        .get_consumer("K")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let info = c.info().await?.clone();
    // nats-server 2.9 flushes consumer state asynchronously even for double acks, so a
    // kill -9 right after them may redeliver; natrium writes it before confirming.
    let exact = !is_nats_server();
    ensure!(!exact || info.ack_floor.stream_sequence == 4, "{info:?}");
    ensure!(info.delivered.stream_sequence == 6, "{info:?}");
    let mut seqs = Vec::new();
    within(API_TIMEOUT, "everything not acknowledged", async {
        while !(5..=10).all(|s| seqs.contains(&s)) {
            for m in fetch(&c, 10).await? {
                seqs.push(
                    m.info()
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                        .stream_sequence,
                );
                m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        }
        anyhow::Ok(())
    })
    .await??;
    seqs.sort();
    ensure!(!exact || seqs == [5, 6, 7, 8, 9, 10], "{seqs:?}");
    Ok(())
}

#[tokio::test]
async fn last_per_subject_starts_with_each_subjects_last_message() -> Result<()> {
    let js = Js::start().await?;
    // s.1: m1 m4 m7 m10, s.2: m2 m5 m8, s.0: m3 m6 m9.
    let stream = stream_with(&js, 10).await?;
    let c: PullConsumer = stream
        .create_consumer(pull::Config {
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::LastPerSubject,
            // nats-server 2.9 requires a filter with this policy.
            filter_subject: "s.>".into(),
            ..durable("L")
        })
        .await?;
    ensure!(
        c.cached_info().num_pending == 3,
        "three subjects, three last messages: {:?}",
        c.cached_info()
    );
    let payloads = |got: &[async_nats::jetstream::Message]| -> Vec<String> {
        got.iter()
            .map(|m| String::from_utf8_lossy(&m.payload).to_string())
            .collect()
    };
    let got = fetch(&c, 10).await?;
    ensure!(
        payloads(&got) == ["m8", "m9", "m10"],
        "the last of each subject: {:?}",
        payloads(&got)
    );
    for m in &got {
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // Then everything new, on any subject.
    publish(&js.js, "s.2", "m11").await?;
    publish(&js.js, "s.2", "m12").await?;
    let got = fetch(&c, 10).await?;
    ensure!(
        payloads(&got) == ["m11", "m12"],
        "then the new ones: {:?}",
        payloads(&got)
    );
    Ok(())
}

/// Deleting a consumer of an interest stream drops the messages only it still held back.
#[tokio::test]
async fn deleting_an_interest_consumer_drops_what_only_it_wanted() -> Result<()> {
    let env = Js::start().await?;
    let stream = within(
        API_TIMEOUT,
        "create stream",
        env.js.create_stream(async_nats::jetstream::stream::Config {
            retention: async_nats::jetstream::stream::RetentionPolicy::Interest,
            ..stream_config("IR", &["ir"])
        }),
    )
    .await??;
    let durable = |name: &str| pull::Config {
        durable_name: Some(name.to_string()),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    };
    let a: PullConsumer = within(API_TIMEOUT, "A", stream.create_consumer(durable("A"))).await??;
    let _b: PullConsumer = within(API_TIMEOUT, "B", stream.create_consumer(durable("B"))).await??;
    for p in ["m1", "m2"] {
        publish(&env.js, "ir", p).await?;
    }
    let mut got = within(API_TIMEOUT, "fetch", a.fetch().max_messages(2).messages()).await??;
    for _ in 0..2 {
        let m = within(API_TIMEOUT, "message", got.next())
            .await?
            .context("fetch ended")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        within(API_TIMEOUT, "ack", m.double_ack())
            .await?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let st = crate::jetstream::state(&env.js, "IR").await?;
    ensure!(st.messages == 2, "B still wants both: {st:?}");
    within(API_TIMEOUT, "delete B", stream.delete_consumer("B")).await??;
    let st = crate::jetstream::state(&env.js, "IR").await?;
    ensure!(st.messages == 0, "nobody wants them now: {st:?}");
    Ok(())
}

/// `replay_policy: original` hands out what was stored as far apart as it was published;
/// `instant` all at once.
#[tokio::test]
async fn replay_original_keeps_the_publish_gaps() -> Result<()> {
    let js = Js::start().await?;
    let stream = js
        .js
        .create_stream(stream_config("R", &["r"]))
        .await
        .context("creating stream R")?;
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        publish(&js.js, "r", &format!("m{i}")).await?;
    }
    let arrivals = |policy| {
        let stream = stream.clone();
        async move {
            let c: PullConsumer = stream
                .create_consumer(pull::Config {
                    replay_policy: policy,
                    ack_policy: AckPolicy::None,
                    ..Default::default()
                })
                .await?;
            let started = tokio::time::Instant::now();
            let mut msgs = c
                .batch()
                .max_messages(3)
                .expires(Duration::from_secs(5))
                .messages()
                .await?;
            let mut at = Vec::new();
            while let Some(m) =
                within(Duration::from_secs(6), "a replayed message", msgs.next()).await?
            {
                m.map_err(|e| anyhow::anyhow!("{e}"))?;
                at.push(started.elapsed());
            }
            anyhow::Ok(at)
        }
    };
    use async_nats::jetstream::consumer::ReplayPolicy;
    let original = arrivals(ReplayPolicy::Original).await?;
    ensure!(original.len() == 3, "{original:?}");
    ensure!(
        original[1] - original[0] >= Duration::from_millis(300)
            && original[2] - original[1] >= Duration::from_millis(300),
        "paced like the publishes (400 ms apart): {original:?}"
    );
    let instant = arrivals(ReplayPolicy::Instant).await?;
    ensure!(
        instant.len() == 3 && instant[2] < Duration::from_millis(300),
        "all at once: {instant:?}"
    );
    Ok(())
}

/// nats-server 2.11's consumer pause: nothing is delivered until the pause ends or the
/// consumer is resumed; requests wait meanwhile; info and an advisory say so.
#[tokio::test]
async fn a_paused_consumer_delivers_nothing_until_resumed_or_due() -> Result<()> {
    if is_nats_server() {
        return Ok(()); // 2.9.10 has no CONSUMER.PAUSE
    }
    let js = Js::start().await?;
    let stream = stream_with(&js, 2).await?;
    let _c: PullConsumer = stream.create_consumer(durable("P")).await?;
    let mut advisories = js
        .client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.PAUSED.S.P")
        .await?;
    natrium_tests::sync(&js.client).await?;

    let until = time::OffsetDateTime::now_utc() + time::Duration::seconds(30);
    let r = within(API_TIMEOUT, "pause", stream.pause_consumer("P", until)).await??;
    ensure!(
        r.paused && r.pause_remaining.is_some(),
        "paused, with time remaining"
    );
    let a = next_msg(&mut advisories, "the pause advisory").await?;
    let body: Value = serde_json::from_slice(&a.payload)?;
    ensure!(body["paused"] == true, "{body}");
    let mut c: PullConsumer = stream
        .get_consumer("P")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let info = c.info().await?.clone();
    ensure!(info.paused && info.config.pause_until.is_some(), "{info:?}");

    // A request waits out the pause: nothing within its expiry.
    let mut waiting = c
        .batch()
        .max_messages(2)
        .expires(Duration::from_millis(600))
        .messages()
        .await?;
    ensure!(
        within(Duration::from_secs(3), "the request's end", waiting.next())
            .await?
            .is_none(),
        "nothing is delivered while paused"
    );

    let r = within(API_TIMEOUT, "resume", stream.resume_consumer("P")).await??;
    ensure!(!r.paused, "resumed");
    let got = fetch(&c, 2).await?;
    ensure!(got.len() == 2, "delivered once resumed: {}", got.len());
    for m in &got {
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    // A short pause ends by itself, and a request waiting across it is served.
    publish(&js.js, "s.1", "m3").await?;
    let until = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(700);
    within(API_TIMEOUT, "pause", stream.pause_consumer("P", until)).await??;
    let started = tokio::time::Instant::now();
    let mut msgs = c
        .batch()
        .max_messages(1)
        .expires(Duration::from_secs(5))
        .messages()
        .await?;
    let m = within(
        Duration::from_secs(6),
        "the message after the pause",
        msgs.next(),
    )
    .await?
    .context("request ended")?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(m.payload.as_ref() == b"m3");
    ensure!(
        started.elapsed() >= Duration::from_millis(400),
        "delivered only after the pause: {:?}",
        started.elapsed()
    );
    Ok(())
}
