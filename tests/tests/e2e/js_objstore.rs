//! Object stores through async-nats: an object larger than `max_payload` is stored in
//! 128 KiB chunks on `$O.<bucket>.C.<nuid>` with its info on `$O.<bucket>.M.<base64url name>`
//! (stream `OBJ_<bucket>`), read back whole, listed, watched, linked and deleted.
//! nats-py's object store is driven by tests/py/test_kv.py (in `python.rs`).
//!
//! Validated against nats-server 2.9.10 (default `max_payload` 1 MiB).

use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use async_nats::jetstream::object_store;
use data_encoding::BASE64URL;
use futures::{StreamExt, TryStreamExt};
use natrium_tests::within;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::jetstream::{state, Js, API_TIMEOUT};
use crate::js_push::DELIVERY_TIMEOUT;

/// The next object info from a watch.
async fn next_info(w: &mut object_store::Watch) -> Result<object_store::ObjectInfo> {
    match within(DELIVERY_TIMEOUT, "object watch", w.next()).await? {
        Some(Ok(i)) => Ok(i),
        Some(Err(e)) => bail!("object watch failed: {e}"),
        None => bail!("object watch ended"),
    }
}

/// A 3 MiB object (three times `max_payload`) goes in as 25 chunks and comes back byte for
/// byte with its size and `SHA-256=<base64url>` digest; list and watch see it, a link
/// resolves to it, and a delete purges the chunks and leaves a `deleted` info.
#[tokio::test]
async fn object_store_chunks_lists_watches_links_and_deletes() -> Result<()> {
    let env = Js::start().await?;
    let store = within(
        API_TIMEOUT,
        "create object store",
        env.js.create_object_store(object_store::Config {
            bucket: "files".to_string(),
            ..Default::default()
        }),
    )
    .await?
    .context("create_object_store")?;
    let mut watch = within(API_TIMEOUT, "watch", store.watch()).await??;

    let data: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    let digest = format!("SHA-256={}", BASE64URL.encode(&Sha256::digest(&data)));
    let info = within(
        Duration::from_secs(30),
        "put",
        store.put("big.bin", &mut data.as_slice()),
    )
    .await?
    .context("putting 3 MiB")?;
    ensure!(
        info.size == data.len() && info.chunks == 25 && info.digest.as_deref() == Some(&digest),
        "{info:?}"
    );
    let st = state(&env.js, "OBJ_files").await?;
    ensure!(st.messages == 26, "25 chunks and one info: {st:?}");

    let mut obj = within(API_TIMEOUT, "get", store.get("big.bin")).await??;
    let mut back = Vec::new();
    within(Duration::from_secs(30), "read", obj.read_to_end(&mut back)).await??;
    ensure!(back == data, "read back {} bytes, differing", back.len());

    let seen = next_info(&mut watch).await?;
    ensure!(
        seen.name == "big.bin" && seen.size == data.len(),
        "{seen:?}"
    );

    within(
        API_TIMEOUT,
        "put small",
        store.put("small.txt", &mut &b"hello"[..]),
    )
    .await??;
    let link = within(API_TIMEOUT, "add link", store.add_link("alias", &info))
        .await?
        .context("add_link")?;
    ensure!(link.name == "alias", "{link:?}");
    let mut via_link = within(API_TIMEOUT, "get via link", store.get("alias")).await??;
    let mut linked = Vec::new();
    within(
        Duration::from_secs(30),
        "read link",
        via_link.read_to_end(&mut linked),
    )
    .await??;
    ensure!(linked == data, "a link reads its target");

    let listed = within(API_TIMEOUT, "list", store.list()).await??;
    let mut names: Vec<String> = within(
        API_TIMEOUT,
        "list all",
        listed.map_ok(|i| i.name).try_collect(),
    )
    .await?
    .map_err(|e| anyhow::anyhow!("list: {e}"))?;
    names.sort();
    ensure!(names == ["alias", "big.bin", "small.txt"], "{names:?}");

    within(API_TIMEOUT, "delete", store.delete("big.bin")).await??;
    match within(API_TIMEOUT, "info deleted", store.info("big.bin")).await? {
        Ok(i) => ensure!(i.deleted && i.size == 0, "info after delete: {i:?}"),
        Err(e) => ensure!(
            e.kind() == object_store::InfoErrorKind::NotFound,
            "info after delete: {e:?}"
        ),
    }
    ensure!(
        within(API_TIMEOUT, "get deleted", store.get("big.bin"))
            .await?
            .is_err(),
        "get of a deleted object succeeded"
    );
    let st = state(&env.js, "OBJ_files").await?;
    ensure!(
        st.messages == 4,
        "chunks purged: infos of big.bin, small.txt, alias and small's chunk: {st:?}"
    );
    for want in ["small.txt", "alias", "big.bin"] {
        let i = next_info(&mut watch).await?;
        ensure!(i.name == want, "watch: expected {want}, got {i:?}");
        ensure!(i.deleted == (want == "big.bin"), "{i:?}");
    }
    Ok(())
}
