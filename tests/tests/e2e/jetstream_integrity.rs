//! JetStream file store integrity: a publish refused for lack of space is not stored, and
//! damage on disk costs only the damaged messages.
//!
//! A full disk is simulated with `RLIMIT_FSIZE` (and `SIGXFSZ` ignored): writes past the
//! limit fail with `EFBIG`, as they would with `ENOSPC`, without root or a special filesystem.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context as _, Result};
use bytes::Bytes;
use futures::StreamExt;
use natrium_tests::{connect, within, TestServer};
use serde_json::{json, Value};

use crate::jetstream::{api, js_context, stream_config, API_TIMEOUT};

/// Every segment file under `dir`, sorted.
fn segment_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(segment_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "seg") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The payload stored at `seq` of stream `name`, or `None`.
async fn stored_payload(
    client: &async_nats::Client,
    name: &str,
    seq: u64,
) -> Result<Option<Bytes>> {
    let stream = within(
        API_TIMEOUT,
        "get stream",
        js_context(client).get_stream(name),
    )
    .await??;
    Ok(
        within(API_TIMEOUT, "get message", stream.get_raw_message(seq))
            .await?
            .ok()
            .map(|m| m.payload),
    )
}

fn payload_of(i: u64) -> String {
    format!("{i:06}-{}", "x".repeat(500))
}

/// On a "full disk", every publish either gets its PubAck and is stored (then and after a
/// restart), or gets nats-server's `503 / 10023 "insufficient resources"` and is not stored;
/// refusals use up no sequence, and no error text carries a path.
#[tokio::test]
async fn refused_publishes_on_a_full_disk_are_not_stored() -> Result<()> {
    if natrium_tests::is_nats_server() {
        // nats-server disables JetStream on a write error ("out of resources"): a different
        // contract, not natrium's.
        return Ok(());
    }
    const LIMIT: u64 = 256 * 1024;
    const N: u64 = 1500;
    let store = tempfile::tempdir()?;
    let sd = store.path().display().to_string();
    let mut server = TestServer::start_with_file_size_limit(&["-js", "-sd", &sd], LIMIT)?;
    let client = connect(&server.url()).await?;
    let js = js_context(&client);
    within(
        API_TIMEOUT,
        "create",
        js.create_stream(stream_config("FULL", &["full"])),
    )
    .await??;

    // 64 publishes in flight: refusals land in the middle of group commits.
    let replies: Vec<(u64, Result<Value>)> = futures::stream::iter(1..=N)
        .map(|i| {
            let client = client.clone();
            async move {
                let reply = within(
                    API_TIMEOUT,
                    "publish",
                    client.request("full", Bytes::from(payload_of(i))),
                )
                .await
                .and_then(|r| Ok(r?))
                .and_then(|m| Ok(serde_json::from_slice::<Value>(&m.payload)?));
                (i, reply)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut acked = Vec::new();
    let mut refused = 0u64;
    for (i, reply) in replies {
        let reply = reply.with_context(|| format!("publish {i}"))?;
        match reply.get("error") {
            Some(err) => {
                let want = json!({"code": 503, "err_code": 10023, "description": "insufficient resources"});
                ensure!(err == &want, "publish {i}: {reply}");
                ensure!(!reply.to_string().contains('/'), "a path in {reply}");
                refused += 1;
            }
            None => {
                let seq = reply["seq"].as_u64().with_context(|| format!("{reply}"))?;
                acked.push((seq, i));
            }
        }
    }
    acked.sort_unstable();
    ensure!(refused > 0, "the limit of {LIMIT} bytes was never hit");
    ensure!(acked.len() > 100, "only {} publishes stored", acked.len());
    let seqs: Vec<u64> = acked.iter().map(|a| a.0).collect();
    let want: Vec<u64> = (1..=acked.len() as u64).collect();
    ensure!(
        seqs == want,
        "acked sequences are not 1..={}: {seqs:?}",
        acked.len()
    );
    ensure!(
        server.logs().contains(&sd),
        "the failed write's path is logged server-side"
    );

    let check = |client: async_nats::Client, acked: Vec<(u64, u64)>| async move {
        let info = api(&client, "STREAM.INFO.FULL", json!({})).await?;
        let n = acked.len() as u64;
        ensure!(
            info["state"]["messages"] == n && info["state"]["last_seq"] == n,
            "{n} acked, stream has {}",
            info["state"]
        );
        for (seq, i) in acked {
            let got = stored_payload(&client, "FULL", seq).await?;
            ensure!(
                got.as_deref() == Some(payload_of(i).as_bytes()),
                "seq {seq} should hold publish {i}"
            );
        }
        ensure!(stored_payload(&client, "FULL", n + 1).await?.is_none());
        Ok::<_, anyhow::Error>(())
    };
    check(client.clone(), acked.clone()).await?;

    server.set_file_size_limit(None);
    server.restart()?;
    let client = connect(&server.url()).await?;
    check(client.clone(), acked.clone()).await?;
    let reply = client.request("full", Bytes::from("after")).await?;
    let reply: Value = serde_json::from_slice(&reply.payload)?;
    ensure!(reply["seq"] == acked.len() as u64 + 1, "{reply}");
    Ok(())
}

/// One flipped byte every 64 KiB of a stream's files (the server stopped, then restarted):
/// only the messages whose records were hit are lost, they are reported in `state.lost`, the
/// rest are served, and publishing carries on after the last sequence.
#[tokio::test]
async fn flipped_bytes_on_disk_lose_only_the_hit_messages() -> Result<()> {
    if natrium_tests::is_nats_server() {
        // The damage is placed by parsing natrium's segment format.
        return Ok(());
    }
    const N: u64 = 3000;
    let store = tempfile::tempdir()?;
    let sd = store.path().display().to_string();
    let mut server = TestServer::start(&["-js", "-sd", &sd])?;
    let client = connect(&server.url()).await?;
    let js = js_context(&client);
    let mut cfg = stream_config("DMG", &["dmg.>"]);
    cfg.allow_direct = true;
    within(API_TIMEOUT, "create", js.create_stream(cfg)).await??;
    let acks: Vec<Result<(u64, u64)>> = futures::stream::iter(1..=N)
        .map(|i| {
            let js = js.clone();
            async move {
                let ack = js
                    .publish(format!("dmg.{}", i % 7), Bytes::from(payload_of(i)))
                    .await?;
                let ack = within(API_TIMEOUT, "ack", async { ack.await }).await??;
                Ok((ack.sequence, i))
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    // Which publish each sequence holds.
    let mut publish_at = std::collections::BTreeMap::new();
    for ack in acks {
        let (seq, i) = ack?;
        publish_at.insert(seq, i);
    }
    ensure!(publish_at.len() as u64 == N && publish_at.keys().last() == Some(&N));
    server.stop()?;

    // Damage: one byte every 64 KiB; note which record (= which sequence, in order) it hits.
    let mut hit = BTreeSet::new();
    let mut seq = 0u64;
    for file in segment_files(store.path())? {
        let mut data = std::fs::read(&file)?;
        let mut starts = Vec::new();
        let mut at = 0usize;
        while at + 4 <= data.len() {
            starts.push(at);
            let len = u32::from_le_bytes(data[at..at + 4].try_into()?) as usize;
            at += len;
        }
        for flip in (1000..data.len()).step_by(64 * 1024) {
            let idx = starts.partition_point(|s| *s <= flip) - 1;
            hit.insert(seq + idx as u64 + 1);
            data[flip] ^= 0x5a;
        }
        seq += starts.len() as u64;
        std::fs::write(&file, &data)?;
    }
    ensure!(seq == N, "parsed {seq} records");
    ensure!(hit.len() >= 20, "only {} records hit", hit.len());

    server.restart()?;
    let client = connect(&server.url()).await?;
    let info = api(&client, "STREAM.INFO.DMG", json!({})).await?;
    let st = &info["state"];
    ensure!(st["messages"] == N - hit.len() as u64, "{st}");
    ensure!(st["last_seq"] == N, "{st}");
    let lost: Vec<u64> = serde_json::from_value(st["lost"]["msgs"].clone())
        .with_context(|| format!("state.lost: {st}"))?;
    ensure!(
        lost == hit.iter().copied().collect::<Vec<_>>(),
        "lost {lost:?}, hit {hit:?}"
    );
    ensure!(st["lost"]["bytes"].as_u64() > Some(0), "{st}");
    for seq in 1..=N {
        let r = within(
            API_TIMEOUT,
            "direct get",
            client.request(
                "$JS.API.DIRECT.GET.DMG",
                Bytes::from(json!({"seq": seq}).to_string()),
            ),
        )
        .await??;
        let found = r
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Sequence"))
            .is_some();
        ensure!(found != hit.contains(&seq), "seq {seq}: found {found}");
        if found {
            let want = payload_of(publish_at[&seq]);
            ensure!(r.payload.as_ref() == want.as_bytes(), "seq {seq} payload");
        }
    }
    let js = js_context(&client);
    let ack = within(API_TIMEOUT, "publish", async {
        js.publish("dmg.after", Bytes::from("after")).await?.await
    })
    .await??;
    ensure!(ack.sequence == N + 1, "{ack:?}");
    ensure!(
        server.logs().contains("lost message sequences"),
        "the loss is logged"
    );
    Ok(())
}
