//! JetStream's API is a subscriber like any other: an account that imports another account's
//! `$JS.API.>` as a service uses that account's JetStream through the import (under its own
//! name for it, too, with `to`), and a client subscribed to `$JS.API.>` sees the requests.
//! Validated against nats-server 2.9.10.

use anyhow::{ensure, Context as _, Result};
use async_nats::jetstream;
use async_nats::ConnectOptions;
use futures::StreamExt;
use natrium_tests::{connect_with, next_msg, sync, within, TestServer};

use crate::jetstream::{publish, stream_config, API_TIMEOUT};

/// Account JS has JetStream and exports its API and the `orders.>` subjects its stream
/// stores; account APP imports both, the API under `api_local` (`$JS.API.>` or a rename).
/// The API export streams its responses: a pull request gets a batch of replies (with the
/// default, singleton, only the first passes — on nats-server too).
fn config(store: &std::path::Path, api_local: &str) -> String {
    format!(
        r#"
jetstream {{ store_dir: "{}" }}
accounts {{
  JS {{
    jetstream: enabled
    users: [ {{user: js, password: js}} ]
    exports: [ {{service: "$JS.API.>", response_type: stream}}, {{service: "orders.>"}} ]
  }}
  APP {{
    users: [ {{user: app, password: app}} ]
    imports: [
      {{service: {{account: JS, subject: "$JS.API.>"}}, to: "{api_local}"}}
      {{service: {{account: JS, subject: "orders.>"}}}}
    ]
  }}
}}
"#,
        store.display()
    )
}

async fn user(server: &TestServer, name: &str) -> Result<async_nats::Client> {
    connect_with(
        &server.url(),
        ConnectOptions::with_user_and_password(name.into(), name.into()),
    )
    .await
}

/// Creates a stream, publishes to it and reads it back, all from APP through the imports,
/// then checks from JS's side that it is JS's stream.
async fn use_jetstream_through_imports(api_local: &str, app_prefix: &str) -> Result<()> {
    let store = tempfile::tempdir()?;
    let server = TestServer::with_config(&config(store.path(), api_local))?;
    let app = user(&server, "app").await?;
    let app_js = jetstream::ContextBuilder::new()
        .timeout(API_TIMEOUT)
        .api_prefix(app_prefix)
        .build(app.clone());

    let stream = app_js
        .create_stream(stream_config("ORDERS", &["orders.>"]))
        .await
        .context("creating a stream through the import")?;
    ensure!(
        stream.cached_info().config.name == "ORDERS",
        "created stream: {:?}",
        stream.cached_info()
    );
    let ack = publish(&app_js, "orders.1", "first").await?;
    ensure!(ack.stream == "ORDERS" && ack.sequence == 1, "ack: {ack:?}");
    let mut stream = app_js.get_stream("ORDERS").await?;
    let messages = stream.info().await?.state.messages;
    ensure!(messages == 1, "APP sees {messages} messages in ORDERS");
    let m = stream.get_raw_message(1).await?;
    ensure!(
        m.subject.as_str() == "orders.1" && &m.payload[..] == b"first",
        "stored message: {} {:?}",
        m.subject,
        m.payload
    );

    // A pull consumer through the import: a batch is several replies to one request.
    for i in 2..=6 {
        publish(&app_js, &format!("orders.{i}"), "more").await?;
    }
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("APPC".into()),
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .context("creating a consumer through the import")?;
    let mut batch = consumer
        .batch()
        .max_messages(6)
        .expires(std::time::Duration::from_secs(2))
        .messages()
        .await?;
    let mut got = Vec::new();
    while let Some(m) = within(API_TIMEOUT, "a batch through the import", batch.next()).await? {
        got.push(m.map_err(|e| anyhow::anyhow!("{e}"))?.subject.to_string());
    }
    ensure!(got.len() == 6, "a batch of 6 through the import: {got:?}");

    // It is the exporting account's stream: JS sees it, under its own API.
    let owner = user(&server, "js").await?;
    let owner_js = crate::jetstream::js_context(&owner);
    let mut theirs = owner_js.get_stream("ORDERS").await?;
    let messages = theirs.info().await?.state.messages;
    ensure!(messages == 6, "JS sees {messages} messages in ORDERS");
    Ok(())
}

#[tokio::test]
async fn an_imported_jetstream_api_reaches_the_exporting_accounts_streams() -> Result<()> {
    use_jetstream_through_imports("$JS.API.>", "$JS.API").await
}

#[tokio::test]
async fn an_imported_jetstream_api_can_be_renamed_by_the_importer() -> Result<()> {
    use_jetstream_through_imports("IPA.>", "IPA").await
}

#[tokio::test]
async fn a_subscriber_on_the_api_subjects_sees_the_requests() -> Result<()> {
    let store = tempfile::tempdir()?;
    let sd = store.path().display().to_string();
    let server = TestServer::start(&["-js", "-sd", &sd])?;
    let watcher = natrium_tests::connect(&server.url()).await?;
    let mut sub = watcher.subscribe("$JS.API.>").await?;
    sync(&watcher).await?;

    // A plain request (async-nats's `query_account` expects fields nats-server 2.9 lacks).
    let client = natrium_tests::connect(&server.url()).await?;
    let reply = within(
        API_TIMEOUT,
        "account info",
        client.request("$JS.API.INFO", "".into()),
    )
    .await??;
    let info: serde_json::Value = serde_json::from_slice(&reply.payload)?;
    ensure!(
        info["type"] == "io.nats.jetstream.api.v1.account_info_response" && info["streams"] == 0,
        "the API still answers: {info}"
    );
    let seen = next_msg(&mut sub, "the account info request").await?;
    ensure!(
        seen.subject.as_str() == "$JS.API.INFO" && seen.reply.is_some(),
        "the watcher sees the request itself: {seen:?}"
    );
    Ok(())
}
