//! JetStream, the details clients check: how `state.bytes` is counted, configuration rules,
//! where sources start and what they may name, republished copies reaching other streams.
//! Every case is validated against nats-server 2.9.10 unless gated (2.10-only features).

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use natrium_tests::{is_nats_server, within};
use serde_json::{json, Value};

use crate::jetstream::{api, publish, state, Js, API_TIMEOUT};

/// Creates a stream from raw JSON and returns the API's answer.
async fn create(client: &async_nats::Client, config: Value) -> Result<Value> {
    let name = config["name"]
        .as_str()
        .context("config without a name")?
        .to_string();
    api(client, &format!("STREAM.CREATE.{name}"), config).await
}

/// Creates a stream and insists it worked.
async fn created(client: &async_nats::Client, config: Value) -> Result<Value> {
    let r = create(client, config.clone()).await?;
    ensure!(r.get("error").is_none(), "creating {config}: {r}");
    Ok(r)
}

/// Waits until stream `name` holds `n` messages.
async fn wait_for(js: &async_nats::jetstream::Context, name: &str, n: u64) -> Result<()> {
    within(
        Duration::from_secs(10),
        &format!("{name} holding {n}"),
        async {
            loop {
                if state(js, name).await?.messages >= n {
                    return anyhow::Ok(());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await??;
    let got = state(js, name).await?.messages;
    ensure!(got == n, "{name} holds {got} messages, expected {n}");
    Ok(())
}

#[tokio::test]
async fn stream_bytes_are_counted_as_nats_server_counts_them() -> Result<()> {
    let Js { client, js, .. } = &Js::start().await?;
    created(
        client,
        json!({"name": "F", "subjects": ["world"], "storage": "file"}),
    )
    .await?;
    created(
        client,
        json!({"name": "M", "subjects": ["mworld"], "storage": "memory"}),
    )
    .await?;
    publish(js, "world", "hello world!").await?;
    publish(js, "mworld", "hello world!").await?;
    // File store record: 4 length + 8 seq + 8 time + 2 subject length + subject + payload
    // + 8 hash; memory store: subject + payload + 16.
    let file = state(js, "F").await?.bytes;
    let memory = state(js, "M").await?.bytes;
    ensure!(file == 47, "file stream bytes: {file} (nats-server: 47)");
    ensure!(memory == 6 + 12 + 16, "memory stream bytes: {memory}");

    // With headers, the file record adds the header block and its 4-byte length.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("A", "b");
    let ack = js
        .publish_with_headers("world", headers, "hello world!".into())
        .await?
        .await?;
    ensure!(ack.sequence == 2);
    let with_headers = state(js, "F").await?.bytes - file;
    let block = "NATS/1.0\r\nA: b\r\n\r\n".len() as u64;
    ensure!(
        with_headers == 22 + 5 + 4 + block + 12 + 8,
        "a message with headers counts {with_headers} bytes"
    );
    Ok(())
}

#[tokio::test]
async fn mirror_direct_needs_a_mirror() -> Result<()> {
    let Js { client, .. } = &Js::start().await?;
    let r = create(
        client,
        json!({"name": "X", "subjects": ["x"], "mirror_direct": true}),
    )
    .await?;
    ensure!(
        r["error"]
            == json!({"code": 500, "err_code": 10052,
                      "description": "stream has no mirror but does have mirror direct"}),
        "{r}"
    );
    Ok(())
}

#[tokio::test]
async fn a_source_starts_at_its_opt_start_time() -> Result<()> {
    let Js { client, js, .. } = &Js::start().await?;
    created(client, json!({"name": "O", "subjects": ["o.>"]})).await?;
    for i in 1..=3 {
        publish(js, &format!("o.{i}"), &format!("m{i}")).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Start at the time the second message was stored.
    let second = api(client, "STREAM.MSG.GET.O", json!({"seq": 2})).await?;
    let start = second["message"]["time"]
        .as_str()
        .with_context(|| format!("stored time of message 2: {second}"))?
        .to_string();
    created(
        client,
        json!({"name": "C", "sources": [{"name": "O", "opt_start_time": start}]}),
    )
    .await?;
    wait_for(js, "C", 2).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_for(js, "C", 2).await?;
    let first = api(client, "STREAM.MSG.GET.C", json!({"seq": 1})).await?;
    ensure!(
        first["message"]["subject"] == "o.2",
        "the copy starts with the message stored at the start time: {first}"
    );
    Ok(())
}

#[tokio::test]
async fn a_source_may_name_a_stream_that_does_not_exist_yet() -> Result<()> {
    let Js { client, js, .. } = &Js::start().await?;
    created(
        client,
        json!({"name": "AGG", "sources": [{"name": "LATER"}]}),
    )
    .await?;
    created(client, json!({"name": "LATER", "subjects": ["later.>"]})).await?;
    publish(js, "later.1", "one").await?;
    wait_for(js, "AGG", 1).await
}

#[tokio::test]
async fn republished_messages_are_stored_by_a_stream_that_captures_them() -> Result<()> {
    let Js { client, js, .. } = &Js::start().await?;
    created(
        client,
        json!({"name": "A", "subjects": ["a.>"], "republish": {"src": "a.>", "dest": "re.>"}}),
    )
    .await?;
    created(client, json!({"name": "R", "subjects": ["re.>"]})).await?;
    publish(js, "a.1", "one").await?;
    wait_for(js, "R", 1).await?;
    let m = api(client, "STREAM.MSG.GET.R", json!({"seq": 1})).await?;
    ensure!(m["message"]["subject"] == "re.1", "{m}");
    Ok(())
}

#[tokio::test]
async fn compression_is_echoed_in_the_stream_config() -> Result<()> {
    if is_nats_server() {
        // Stream compression arrived in nats-server 2.10.
        return Ok(());
    }
    let Js { client, .. } = &Js::start().await?;
    let r = created(
        client,
        json!({"name": "S", "subjects": ["s"], "compression": "none"}),
    )
    .await?;
    ensure!(r["config"]["compression"] == "none", "{r}");
    let r = created(client, json!({"name": "T", "subjects": ["t"]})).await?;
    ensure!(r["config"]["compression"] == "none", "unset is none: {r}");
    let r = within(API_TIMEOUT, "info", api(client, "STREAM.INFO.T", json!({}))).await??;
    ensure!(r["config"]["compression"] == "none", "{r}");
    Ok(())
}

#[tokio::test]
async fn api_requests_and_stream_lifecycle_are_advised() -> Result<()> {
    let Js { client, .. } = &Js::start().await?;
    let mut advisories = client.subscribe("$JS.EVENT.ADVISORY.>").await?;
    natrium_tests::sync(client).await?;

    created(client, json!({"name": "ADV", "subjects": ["adv"]})).await?;
    api(client, "STREAM.DELETE.ADV", json!({})).await?;

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let m = natrium_tests::next_msg(&mut advisories, "an advisory").await?;
        let body: Value = serde_json::from_slice(&m.payload)?;
        seen.push((m.subject.to_string(), body));
    }
    let find = |subject: &str| seen.iter().find(|(s, _)| s == subject).map(|(_, b)| b);
    let created = find("$JS.EVENT.ADVISORY.STREAM.CREATED.ADV")
        .with_context(|| format!("no created advisory in {seen:?}"))?;
    ensure!(
        created["type"] == "io.nats.jetstream.advisory.v1.stream_action"
            && created["action"] == "create"
            && created["stream"] == "ADV",
        "{created}"
    );
    let deleted = find("$JS.EVENT.ADVISORY.STREAM.DELETED.ADV")
        .with_context(|| format!("no deleted advisory in {seen:?}"))?;
    ensure!(deleted["action"] == "delete", "{deleted}");
    let audits: Vec<_> = seen
        .iter()
        .filter(|(s, _)| s == "$JS.EVENT.ADVISORY.API")
        .map(|(_, b)| b)
        .collect();
    ensure!(audits.len() == 2, "two audited requests: {seen:?}");
    let create_audit = audits
        .iter()
        .find(|a| a["subject"] == "$JS.API.STREAM.CREATE.ADV")
        .with_context(|| format!("create is audited: {audits:?}"))?;
    ensure!(
        create_audit["type"] == "io.nats.jetstream.advisory.v1.api_audit"
            && create_audit["request"]
                .as_str()
                .is_some_and(|r| r.contains("\"adv\""))
            && create_audit["response"]
                .as_str()
                .is_some_and(|r| r.contains("stream_create_response"))
            && create_audit["client"]["acc"] == "$G",
        "{create_audit}"
    );
    Ok(())
}

#[tokio::test]
async fn consumer_lifecycle_is_advised() -> Result<()> {
    let Js { client, .. } = &Js::start().await?;
    created(client, json!({"name": "CADV", "subjects": ["cadv"]})).await?;
    let mut advisories = client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.*.CADV.*")
        .await?;
    natrium_tests::sync(client).await?;
    let r = api(
        client,
        "CONSUMER.DURABLE.CREATE.CADV.dur",
        json!({"stream_name": "CADV", "config": {"durable_name": "dur", "ack_policy": "explicit"}}),
    )
    .await?;
    ensure!(r.get("error").is_none(), "{r}");
    let r = api(
        client,
        "CONSUMER.CREATE.CADV",
        json!({"stream_name": "CADV", "config": {"ack_policy": "none"}}),
    )
    .await?;
    let ephemeral = r["name"].as_str().context("ephemeral name")?.to_string();
    let r = api(client, "CONSUMER.DELETE.CADV.dur", json!({})).await?;
    ensure!(r["success"] == true, "{r}");

    let mut seen = Vec::new();
    for _ in 0..3 {
        let m = natrium_tests::next_msg(&mut advisories, "a consumer advisory").await?;
        let body: Value = serde_json::from_slice(&m.payload)?;
        ensure!(
            body["type"] == "io.nats.jetstream.advisory.v1.consumer_action"
                && body["stream"] == "CADV",
            "{body}"
        );
        seen.push((
            m.subject.to_string(),
            body["action"].clone(),
            body["consumer"].clone(),
        ));
    }
    let expected = [
        (
            "$JS.EVENT.ADVISORY.CONSUMER.CREATED.CADV.dur".to_string(),
            json!("create"),
            json!("dur"),
        ),
        (
            format!("$JS.EVENT.ADVISORY.CONSUMER.CREATED.CADV.{ephemeral}"),
            json!("create"),
            json!(ephemeral),
        ),
        (
            "$JS.EVENT.ADVISORY.CONSUMER.DELETED.CADV.dur".to_string(),
            json!("delete"),
            json!("dur"),
        ),
    ];
    ensure!(seen == expected, "{seen:?}");
    Ok(())
}

#[tokio::test]
async fn stream_info_pages_subject_details() -> Result<()> {
    let Js { client, js, .. } = &Js::start().await?;
    created(client, json!({"name": "P", "subjects": ["p.>"]})).await?;
    for i in 0..5 {
        publish(js, &format!("p.{i}"), "x").await?;
    }
    publish(js, "p.0", "again").await?;
    let all = api(client, "STREAM.INFO.P", json!({"subjects_filter": ">"})).await?;
    ensure!(
        all["total"] == 5 && all["offset"] == 0 && all["limit"] == 100_000,
        "paging fields: {all}"
    );
    ensure!(all["state"]["subjects"]["p.0"] == 2, "{all}");
    ensure!(
        all["state"]["subjects"].as_object().map(|m| m.len()) == Some(5),
        "{all}"
    );
    // From offset 3 (subjects in order): p.3 and p.4.
    let rest = api(
        client,
        "STREAM.INFO.P",
        json!({"subjects_filter": ">", "offset": 3}),
    )
    .await?;
    let keys: Vec<_> = rest["state"]["subjects"]
        .as_object()
        .with_context(|| format!("{rest}"))?
        .keys()
        .cloned()
        .collect();
    ensure!(keys == ["p.3", "p.4"] && rest["offset"] == 3, "{rest}");
    let none = api(client, "STREAM.INFO.P", json!({})).await?;
    ensure!(
        none["state"].get("subjects").is_none() && none["total"] == 0,
        "{none}"
    );
    Ok(())
}

#[tokio::test]
async fn a_stream_starts_at_its_first_seq() -> Result<()> {
    if is_nats_server() {
        // `first_seq` arrived in nats-server 2.10.
        return Ok(());
    }
    let Js { client, js, .. } = &Js::start().await?;
    let r = created(
        client,
        json!({"name": "F", "subjects": ["f"], "first_seq": 100}),
    )
    .await?;
    ensure!(r["config"]["first_seq"] == 100, "{r}");
    let ack = publish(js, "f", "one").await?;
    ensure!(ack.sequence == 100, "first message got {}", ack.sequence);
    let r = create(
        client,
        json!({"name": "MF", "mirror": {"name": "F"}, "first_seq": 5}),
    )
    .await?;
    ensure!(r["error"]["err_code"] == 10143, "{r}");
    Ok(())
}

/// Push consumer configs are checked as nats-server's `checkConsumerCfg` does.
#[tokio::test]
async fn push_consumer_configs_are_checked() -> Result<()> {
    let Js { client, .. } = &Js::start().await?;
    created(client, json!({"name": "S", "subjects": ["s.>"]})).await?;
    for (config, err_code) in [
        (json!({"deliver_subject": "d.*"}), 10079),
        (json!({"deliver_subject": "s.x"}), 10081),
        (json!({"deliver_subject": "d", "max_waiting": 5}), 10080),
        (json!({"deliver_subject": "d", "max_ack_pending": 5}), 10082),
        (
            json!({"deliver_subject": "d", "idle_heartbeat": 50_000_000}),
            10083,
        ),
    ] {
        let r = api(
            client,
            "CONSUMER.CREATE.S",
            json!({"stream_name": "S", "config": config}),
        )
        .await?;
        ensure!(r["error"]["err_code"] == err_code, "{config}: {r}");
    }
    let r = api(
        client,
        "CONSUMER.CREATE.S",
        json!({"stream_name": "S", "config": {"ack_policy": "explicit", "deliver_subject": "d"}}),
    )
    .await?;
    ensure!(r["config"]["deliver_subject"] == "d", "{r}");
    Ok(())
}
