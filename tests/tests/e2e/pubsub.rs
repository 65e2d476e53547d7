//! Core messaging through the async-nats client.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use natrium_tests::{assert_no_msg, connect, next_msg, sync, within, TestServer, IO_TIMEOUT};

const QUIET: Duration = Duration::from_millis(200);

/// (group, member index) -> payload indices received.
type Received = BTreeMap<(String, usize), Vec<usize>>;

#[tokio::test]
async fn pub_sub_between_two_clients() -> Result<()> {
    let server = TestServer::start(&[])?;
    let sub_client = connect(&server.url()).await?;
    let pub_client = connect(&server.url()).await?;
    let mut sub = sub_client.subscribe("greet.basic").await?;
    sync(&sub_client).await?;

    for i in 0..5 {
        pub_client
            .publish("greet.basic", Bytes::from(format!("hello {i}")))
            .await?;
    }
    pub_client.publish("greet.other", "nope".into()).await?;
    sync(&pub_client).await?;

    for i in 0..5 {
        let m = next_msg(&mut sub, "greet.basic message").await?;
        assert_eq!(m.subject.as_str(), "greet.basic");
        assert_eq!(
            m.payload,
            Bytes::from(format!("hello {i}")),
            "messages arrive in order"
        );
        assert!(m.reply.is_none(), "plain publish has no reply subject");
    }
    assert_no_msg(&mut sub, QUIET, "greet.basic after 5 messages").await?;

    // Empty payloads are delivered too.
    pub_client.publish("greet.basic", Bytes::new()).await?;
    let m = next_msg(&mut sub, "empty payload").await?;
    assert!(m.payload.is_empty());
    Ok(())
}

#[tokio::test]
async fn wildcards_match_and_do_not_match() -> Result<()> {
    let server = TestServer::start(&[])?;
    let client = connect(&server.url()).await?;
    let patterns = ["a.*", "a.>", "a.*.c", "*.b", ">", "a.b"];
    let mut subs = Vec::new();
    for p in patterns {
        subs.push((p, client.subscribe(p).await?));
    }
    // SUBs and PUBs share one connection, so the server sees them in order
    // (no sync round trip here: its inbox message would match `>`).
    let published = [
        "a", "a.b", "a.b.c", "a.x.c", "a.b.d", "x.b", "b.a", "a.b.c.d",
    ];
    for s in published {
        client.publish(s, Bytes::from(s)).await?;
    }
    client.flush().await?;

    let expected: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("a.*", vec!["a.b"]),
        ("a.>", vec!["a.b", "a.b.c", "a.x.c", "a.b.d", "a.b.c.d"]),
        ("a.*.c", vec!["a.b.c", "a.x.c"]),
        ("*.b", vec!["a.b", "x.b"]),
        (">", published.to_vec()),
        ("a.b", vec!["a.b"]),
    ]);
    for (pattern, sub) in subs.iter_mut() {
        let want = &expected[pattern];
        for w in want {
            let m = next_msg(sub, &format!("{w} on {pattern}")).await?;
            assert_eq!(m.subject.as_str(), *w, "subscription {pattern}");
            assert_eq!(m.payload, Bytes::from(w.to_string()));
        }
        assert_no_msg(
            sub,
            QUIET,
            &format!("subscription {pattern} after {want:?}"),
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn queue_groups_deliver_once_per_group_and_fairly() -> Result<()> {
    const N: usize = 1000;
    let server = TestServer::start(&[])?;
    let client = connect(&server.url()).await?;
    let publisher = connect(&server.url()).await?;

    // (group, member) -> received payload indices
    let received: Arc<Mutex<Received>> = Arc::default();
    let mut tasks = Vec::new();
    let mut spawn_member = |group: &str, idx: usize, sub: async_nats::Subscriber| {
        let received = received.clone();
        let key = (group.to_string(), idx);
        received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), Vec::new());
        tasks.push(tokio::spawn(async move {
            let mut sub = sub;
            while let Some(m) = sub.next().await {
                let i: usize = String::from_utf8_lossy(&m.payload)
                    .parse()
                    .unwrap_or(usize::MAX);
                if let Some(v) = received
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(&key)
                {
                    v.push(i);
                }
            }
        }));
    };
    for i in 0..4 {
        spawn_member(
            "workers",
            i,
            client.queue_subscribe("jobs", "workers".into()).await?,
        );
    }
    for i in 0..2 {
        spawn_member(
            "audit",
            i,
            client.queue_subscribe("jobs", "audit".into()).await?,
        );
    }
    spawn_member("plain", 0, client.subscribe("jobs").await?);
    sync(&client).await?;

    for i in 0..N {
        publisher
            .publish("jobs", Bytes::from(i.to_string()))
            .await?;
    }
    sync(&publisher).await?;

    let totals = |r: &Received, g: &str| -> usize {
        r.iter()
            .filter(|((grp, _), _)| grp == g)
            .map(|(_, v)| v.len())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done = {
            let r = received.lock().unwrap_or_else(|p| p.into_inner());
            totals(&r, "workers") >= N && totals(&r, "audit") >= N && totals(&r, "plain") >= N
        };
        if done {
            break;
        }
        if Instant::now() > deadline {
            let r = received.lock().unwrap_or_else(|p| p.into_inner());
            bail!(
                "not all messages arrived: workers={} audit={} plain={}",
                totals(&r, "workers"),
                totals(&r, "audit"),
                totals(&r, "plain")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let any duplicates show up before checking exact counts.
    tokio::time::sleep(QUIET).await;
    let r = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for group in ["workers", "audit", "plain"] {
        let mut all: Vec<usize> = r
            .iter()
            .filter(|((g, _), _)| g == group)
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        all.sort_unstable();
        ensure!(
            all == (0..N).collect::<Vec<_>>(),
            "group {group} must see every message exactly once (got {} messages)",
            all.len()
        );
    }
    for i in 0..4 {
        let n = r[&("workers".to_string(), i)].len();
        // Expected ~250 each; 150 is > 7 standard deviations away.
        ensure!(
            n >= 150,
            "unfair queue distribution: worker {i} got {n} of {N}: {:?}",
            (0..4)
                .map(|j| r[&("workers".to_string(), j)].len())
                .collect::<Vec<_>>()
        );
    }
    for i in 0..2 {
        let n = r[&("audit".to_string(), i)].len();
        ensure!(
            n >= 350,
            "unfair queue distribution: audit member {i} got {n} of {N}"
        );
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}

#[tokio::test]
async fn request_reply() -> Result<()> {
    let server = TestServer::start(&[])?;
    let responder = connect(&server.url()).await?;
    let requester = connect(&server.url()).await?;
    let mut svc = responder.subscribe("svc.upper").await?;
    sync(&responder).await?;
    let r2 = responder.clone();
    let task = tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            if let Some(reply) = m.reply {
                let up = String::from_utf8_lossy(&m.payload).to_uppercase();
                let _ = r2.publish(reply, Bytes::from(up)).await;
            }
        }
    });
    for i in 0..10 {
        let resp = within(
            IO_TIMEOUT,
            "request",
            requester.request("svc.upper", Bytes::from(format!("ping {i}"))),
        )
        .await?
        .context("request failed")?;
        assert_eq!(resp.payload, Bytes::from(format!("PING {i}")));
        assert!(
            resp.subject.as_str().starts_with("_INBOX."),
            "reply comes on the inbox: {}",
            resp.subject
        );
    }

    // Manual request/reply with an explicit reply subject.
    let mut inbox = requester.subscribe("my.reply.box").await?;
    sync(&requester).await?;
    requester
        .publish_with_reply("svc.upper", "my.reply.box", "manual".into())
        .await?;
    let m = next_msg(&mut inbox, "manual reply").await?;
    assert_eq!(m.payload, Bytes::from("MANUAL"));
    task.abort();
    Ok(())
}

#[tokio::test]
async fn headers_round_trip_including_multi_value() -> Result<()> {
    let server = TestServer::start(&[])?;
    let client = connect(&server.url()).await?;
    assert!(
        client.server_info().headers,
        "server must announce headers support in INFO"
    );
    let mut sub = client.subscribe("hdr.test").await?;
    sync(&client).await?;

    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Single", "one");
    headers.append("X-Multi", "a");
    headers.append("X-Multi", "b");
    headers.append("X-Multi", "c");
    headers.insert("Nats-Msg-Id", "id-42");
    client
        .publish_with_headers("hdr.test", headers, "payload".into())
        .await?;
    let m = next_msg(&mut sub, "message with headers").await?;
    assert_eq!(m.payload, Bytes::from("payload"));
    let h = m.headers.context("headers missing on delivered message")?;
    assert_eq!(h.get("X-Single").map(|v| v.as_str()), Some("one"));
    assert_eq!(h.get("Nats-Msg-Id").map(|v| v.as_str()), Some("id-42"));
    let multi: Vec<&str> = h.get_all("X-Multi").map(|v| v.as_str()).collect();
    assert_eq!(
        multi,
        vec!["a", "b", "c"],
        "multi-value header keeps all values in order"
    );
    assert!(m.status.is_none(), "a normal message has no status");

    // Headers with an empty payload.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("K", "v");
    client
        .publish_with_headers("hdr.test", headers, Bytes::new())
        .await?;
    let m = next_msg(&mut sub, "headers-only message").await?;
    assert!(m.payload.is_empty());
    let h = m.headers.context("headers missing")?;
    assert_eq!(h.get("K").map(|v| v.as_str()), Some("v"));

    // Headers survive a request/reply round trip in both directions.
    let mut svc = client.subscribe("hdr.echo").await?;
    sync(&client).await?;
    let c2 = client.clone();
    let task = tokio::spawn(async move {
        if let Some(m) = svc.next().await {
            let mut out = async_nats::HeaderMap::new();
            if let Some(h) = &m.headers {
                for v in h.get_all("Req") {
                    out.append("Echo", v.as_str());
                }
            }
            if let Some(reply) = m.reply {
                let _ = c2.publish_with_headers(reply, out, m.payload).await;
            }
        }
    });
    let mut req_headers = async_nats::HeaderMap::new();
    req_headers.append("Req", "x");
    req_headers.append("Req", "y");
    let resp = within(
        IO_TIMEOUT,
        "request with headers",
        client.request_with_headers("hdr.echo", req_headers, "body".into()),
    )
    .await??;
    let h = resp.headers.context("reply headers missing")?;
    let echo: Vec<&str> = h.get_all("Echo").map(|v| v.as_str()).collect();
    assert_eq!(echo, vec!["x", "y"]);
    assert_eq!(resp.payload, Bytes::from("body"));
    task.abort();
    Ok(())
}

#[tokio::test]
async fn request_without_responders_fails_fast_with_no_responders() -> Result<()> {
    let server = TestServer::start(&[])?;
    let client = connect(&server.url()).await?;
    let start = Instant::now();
    let res = within(
        Duration::from_secs(8),
        "request to a subject nobody listens on",
        client.request("nobody.home", "anyone?".into()),
    )
    .await?;
    let elapsed = start.elapsed();
    match res {
        Ok(m) => bail!("expected NoResponders, got a reply {m:?}"),
        Err(e) => assert_eq!(
            e.kind(),
            async_nats::client::RequestErrorKind::NoResponders,
            "error was {e}"
        ),
    }
    assert!(
        elapsed < Duration::from_secs(2),
        "no-responders took {elapsed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn unsubscribe_after_max_messages() -> Result<()> {
    let server = TestServer::start(&[])?;
    let client = connect(&server.url()).await?;
    let publisher = connect(&server.url()).await?;
    let mut sub = client.subscribe("auto.unsub").await?;
    sub.unsubscribe_after(3).await?;
    sync(&client).await?;
    for i in 0..10 {
        publisher
            .publish("auto.unsub", Bytes::from(i.to_string()))
            .await?;
    }
    sync(&publisher).await?;
    for i in 0..3 {
        let m = next_msg(&mut sub, "message before the max").await?;
        assert_eq!(m.payload, Bytes::from(i.to_string()));
    }
    let end = within(IO_TIMEOUT, "end of auto-unsubscribed stream", sub.next()).await?;
    if let Some(m) = end {
        bail!(
            "got a 4th message after unsubscribe_after(3): {:?}",
            m.payload
        );
    }
    Ok(())
}

#[tokio::test]
async fn subscriber_drain_delivers_in_flight_then_closes() -> Result<()> {
    const N: usize = 200;
    let server = TestServer::start(&[])?;
    let client = connect(&server.url()).await?;
    let publisher = connect(&server.url()).await?;
    let mut sub = client.subscribe("drain.me").await?;
    sync(&client).await?;
    for i in 0..N {
        publisher
            .publish("drain.me", Bytes::from(i.to_string()))
            .await?;
    }
    sync(&publisher).await?;
    sub.drain().await?;
    let mut got = Vec::new();
    let collected = within(Duration::from_secs(10), "drained stream to end", async {
        while let Some(m) = sub.next().await {
            got.push(String::from_utf8_lossy(&m.payload).to_string());
        }
    })
    .await;
    collected
        .with_context(|| format!("drain did not end the stream; got {} messages", got.len()))?;
    let want: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    assert_eq!(
        got, want,
        "drain must deliver every in-flight message, in order"
    );

    // The subscription is gone on the server: a fresh subscriber still works
    // and the client connection is healthy.
    let mut again = client.subscribe("drain.me").await?;
    sync(&client).await?;
    publisher.publish("drain.me", "after".into()).await?;
    let m = next_msg(&mut again, "message after drain").await?;
    assert_eq!(m.payload, Bytes::from("after"));
    Ok(())
}
