//! Key-value buckets: the parts that need consumers (history, keys, watch), expiry, and the
//! direct gets clients send; through async-nats here, and through nats-py
//! (tests/py/test_kv.py, in `python.rs`) and nats.js (tests/js/kv.mjs, in `javascript.rs`).
//!
//! A bucket B is the stream `KV_B` on `$KV.B.>`; history, keys and watches are ordered
//! push consumers on it (`last_per_subject` for keys and watches, `all` for history), and
//! a watcher knows it has caught up when a delivery says 0 pending.
//!
//! Validated against nats-server 2.9.10.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use async_nats::jetstream::{
    self,
    kv::{self, Operation},
    stream::{Config, DiscardPolicy, StorageType},
};
use futures::{StreamExt, TryStreamExt};
use natrium_tests::{connect, next_msg, sync, within};

use crate::jetstream::{state, Js, API_TIMEOUT};
use crate::js_push::DELIVERY_TIMEOUT;

/// Opens a new bucket `bucket` keeping `history` values per key for `max_age` (zero: for
/// ever). async-nats 0.51's `create_key_value` first asks for the account info, whose
/// `reserved_memory`/`reserved_storage` nats-server 2.9.10 does not send; against it, the
/// bucket's stream is created the way `create_key_value` would and then opened.
pub(crate) async fn kv_bucket(
    js: &jetstream::Context,
    bucket: &str,
    history: i64,
    max_age: Duration,
) -> Result<kv::Store> {
    if !natrium_tests::is_nats_server() {
        return within(
            API_TIMEOUT,
            "create kv",
            js.create_key_value(kv::Config {
                bucket: bucket.to_string(),
                history,
                max_age,
                ..Default::default()
            }),
        )
        .await?
        .context("create_key_value");
    }
    let window = Duration::from_secs(120);
    let cfg = Config {
        name: format!("KV_{bucket}"),
        description: Some(String::new()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history,
        max_age,
        duplicate_window: if max_age.is_zero() {
            window
        } else {
            max_age.min(window)
        },
        storage: StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    };
    within(API_TIMEOUT, "create kv stream", js.create_stream(cfg))
        .await?
        .context("creating the bucket's stream")?;
    within(API_TIMEOUT, "get kv", js.get_key_value(bucket))
        .await?
        .context("opening the bucket")
}

/// `(key, revision, operation, value)` of an entry, for comparisons.
fn brief(e: &kv::Entry) -> (String, u64, Operation, String) {
    (
        e.key.clone(),
        e.revision,
        e.operation,
        String::from_utf8_lossy(&e.value).into_owned(),
    )
}

/// `(key, revision, operation, value)` built from literals.
fn want(items: &[(&str, u64, Operation, &str)]) -> Vec<(String, u64, Operation, String)> {
    items
        .iter()
        .map(|(k, r, o, v)| (k.to_string(), *r, *o, v.to_string()))
        .collect()
}

/// The next `n` entries of a watch.
async fn next_entries(
    w: &mut kv::Watch,
    n: usize,
) -> Result<Vec<(String, u64, Operation, String)>> {
    let mut out = Vec::new();
    for i in 0..n {
        match within(
            DELIVERY_TIMEOUT,
            &format!("watch entry {}", i + 1),
            w.next(),
        )
        .await?
        {
            Some(Ok(e)) => out.push(brief(&e)),
            Some(Err(e)) => bail!("watch failed after {out:?}: {e}"),
            None => bail!("watch ended after {out:?}"),
        }
    }
    Ok(out)
}

/// `history` keeps the last N values of a key, delete and purge markers included; `keys`
/// lists the keys whose last entry is a value; purge leaves only its marker.
#[tokio::test]
async fn kv_history_keys_and_markers() -> Result<()> {
    use Operation::{Delete, Purge, Put};
    let env = Js::start().await?;
    let kv = kv_bucket(&env.js, "hist", 3, Duration::ZERO).await?;
    for v in ["1", "2", "3", "4"] {
        within(API_TIMEOUT, "put a", kv.put("a", v.into())).await??;
    }
    within(API_TIMEOUT, "put b", kv.put("b", "x".into())).await??;
    within(API_TIMEOUT, "put c", kv.put("c.d", "y".into())).await??;
    within(API_TIMEOUT, "delete b", kv.delete("b")).await??;

    let history = |key: &'static str| {
        let kv = kv.clone();
        async move {
            let h = within(API_TIMEOUT, "history", kv.history(key)).await??;
            let entries: Vec<kv::Entry> = within(API_TIMEOUT, "history entries", h.try_collect())
                .await?
                .map_err(|e| anyhow::anyhow!("history of {key}: {e}"))?;
            anyhow::Ok(entries.iter().map(brief).collect::<Vec<_>>())
        }
    };
    ensure!(
        history("a").await? == want(&[("a", 2, Put, "2"), ("a", 3, Put, "3"), ("a", 4, Put, "4")]),
        "history of a (3 kept): {:?}",
        history("a").await?
    );
    ensure!(
        history("b").await? == want(&[("b", 5, Put, "x"), ("b", 7, Delete, "")]),
        "history of b: {:?}",
        history("b").await?
    );
    let keys = |kv: kv::Store| async move {
        let k = within(API_TIMEOUT, "keys", kv.keys()).await??;
        let mut keys: Vec<String> = within(API_TIMEOUT, "keys list", k.try_collect())
            .await?
            .map_err(|e| anyhow::anyhow!("keys: {e}"))?;
        keys.sort();
        anyhow::Ok(keys)
    };
    ensure!(
        keys(kv.clone()).await? == ["a", "c.d"],
        "deleted b is not a key"
    );

    within(API_TIMEOUT, "purge a", kv.purge("a")).await??;
    ensure!(
        history("a").await? == want(&[("a", 8, Purge, "")]),
        "history after purge: {:?}",
        history("a").await?
    );
    ensure!(keys(kv.clone()).await? == ["c.d"]);
    let st = state(&env.js, "KV_hist").await?;
    ensure!(
        st.messages == 4 && st.last_sequence == 8,
        "b: put + delete, c.d: put, a: purge marker: {st:?}"
    );
    Ok(())
}

/// async-nats's `watch` and `watch_all` deliver only changes made after they start
/// (`deliver_policy: new`), deletes and purges included; `watch_with_history` first delivers
/// the current entry of each matching key (`last_per_subject`), then the changes.
#[tokio::test]
async fn kv_watch_sees_current_values_then_updates() -> Result<()> {
    use Operation::{Delete, Purge, Put};
    let env = Js::start().await?;
    let kv = kv_bucket(&env.js, "w", 5, Duration::ZERO).await?;
    within(API_TIMEOUT, "put", kv.put("x.1", "a".into())).await??;
    within(API_TIMEOUT, "put", kv.put("x.2", "b".into())).await??;
    within(API_TIMEOUT, "put", kv.put("x.1", "c".into())).await??;
    within(API_TIMEOUT, "put", kv.put("y", "d".into())).await??;

    let mut w = within(API_TIMEOUT, "watch", kv.watch("x.*")).await??;
    let mut all = within(API_TIMEOUT, "watch all", kv.watch_all()).await??;
    let mut current = within(API_TIMEOUT, "watch history", kv.watch_with_history("x.*")).await??;
    ensure!(
        next_entries(&mut current, 2).await? == want(&[("x.2", 2, Put, "b"), ("x.1", 3, Put, "c")])
    );

    within(API_TIMEOUT, "put", kv.put("x.1", "e".into())).await??;
    within(API_TIMEOUT, "put", kv.put("z", "f".into())).await??;
    within(API_TIMEOUT, "delete", kv.delete("x.2")).await??;
    within(API_TIMEOUT, "purge", kv.purge("x.1")).await??;
    let changes = want(&[
        ("x.1", 5, Put, "e"),
        ("x.2", 7, Delete, ""),
        ("x.1", 8, Purge, ""),
    ]);
    ensure!(next_entries(&mut w, 3).await? == changes);
    ensure!(next_entries(&mut current, 3).await? == changes);
    ensure!(
        next_entries(&mut all, 4).await?
            == want(&[
                ("x.1", 5, Put, "e"),
                ("z", 6, Put, "f"),
                ("x.2", 7, Delete, ""),
                ("x.1", 8, Purge, "")
            ])
    );
    // Nothing else: z is not x.*.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(500), w.next()).await {
        bail!("unexpected watch entry {extra:?}");
    }
    Ok(())
}

/// A bucket's `max_age` expires its values: `get` then finds nothing.
#[tokio::test]
async fn kv_max_age_expires_values() -> Result<()> {
    let env = Js::start().await?;
    let kv = kv_bucket(&env.js, "ttl", 1, Duration::from_secs(1)).await?;
    within(API_TIMEOUT, "put", kv.put("k", "v".into())).await??;
    let got = within(API_TIMEOUT, "get", kv.get("k")).await??;
    ensure!(got.as_deref() == Some(&b"v"[..]), "{got:?}");
    let status = within(API_TIMEOUT, "status", kv.status()).await??;
    ensure!(status.max_age() == Duration::from_secs(1), "{status:?}");
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        if within(API_TIMEOUT, "get", kv.get("k")).await??.is_none() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "k did not expire after its 1 s max age"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(state(&env.js, "KV_ttl").await?.messages == 0);
    Ok(())
}

/// What async-nats sends for KV reads, as seen by a plain subscriber: `get`/`entry` ask
/// `$JS.API.DIRECT.GET.KV_<b>.$KV.<b>.<key>` with an empty body; a read at a revision asks
/// `$JS.API.DIRECT.GET.KV_<b>` with `{"seq":N}`; the replies carry `Nats-Stream`,
/// `Nats-Subject`, `Nats-Sequence` and `Nats-Time-Stamp`.
#[tokio::test]
async fn kv_reads_are_direct_gets() -> Result<()> {
    let env = Js::start().await?;
    let kv = kv_bucket(&env.js, "dg", 5, Duration::ZERO).await?;
    within(API_TIMEOUT, "put", kv.put("k", "v1".into())).await??;
    within(API_TIMEOUT, "put", kv.put("k", "v2".into())).await??;
    let spy_client = connect(&env.server.url()).await?;
    let mut spy = spy_client.subscribe("$JS.API.DIRECT.GET.>").await?;
    sync(&spy_client).await?;

    let e = within(API_TIMEOUT, "entry", kv.entry("k"))
        .await??
        .context("no entry")?;
    ensure!(e.revision == 2 && e.value.as_ref() == b"v2", "{e:?}");
    let req = next_msg(&mut spy, "the direct get of entry").await?;
    ensure!(
        req.subject.as_str() == "$JS.API.DIRECT.GET.KV_dg.$KV.dg.k" && req.payload.is_empty(),
        "{req:?}"
    );
    ensure!(req.reply.is_some(), "a direct get without a reply subject");

    let old = within(API_TIMEOUT, "entry rev 1", kv.entry_for_revision("k", 1))
        .await??
        .context("no revision 1")?;
    ensure!(old.value.as_ref() == b"v1", "{old:?}");
    let req = next_msg(&mut spy, "the direct get by revision").await?;
    let body: serde_json::Value = serde_json::from_slice(&req.payload)?;
    ensure!(
        req.subject.as_str() == "$JS.API.DIRECT.GET.KV_dg" && body == serde_json::json!({"seq": 1}),
        "{req:?}"
    );

    // The same request by hand shows the reply's headers.
    let resp = within(
        API_TIMEOUT,
        "direct get by hand",
        env.client
            .request("$JS.API.DIRECT.GET.KV_dg.$KV.dg.k", "".into()),
    )
    .await??;
    let h = resp.headers.context("direct get reply without headers")?;
    ensure!(resp.payload.as_ref() == b"v2", "{:?}", resp.payload);
    for (name, value) in [
        ("Nats-Stream", Some("KV_dg")),
        ("Nats-Subject", Some("$KV.dg.k")),
        ("Nats-Sequence", Some("2")),
        ("Nats-Time-Stamp", None),
    ] {
        let got = h.get(name).map(|v| v.as_str().to_string());
        match value {
            Some(v) => ensure!(got.as_deref() == Some(v), "{name}: {got:?}"),
            None => ensure!(got.is_some(), "{name} missing: {h:?}"),
        }
    }
    Ok(())
}
