//! Limits and failure handling: max payload, slow consumers, reconnects.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_nats::{ConnectOptions, Event};
use bytes::Bytes;
use futures::StreamExt;
use natrium_tests::{
    connect, connect_with, next_msg, sync, within, RawConn, TestServer, IO_TIMEOUT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn client_rejects_payload_over_server_max_payload() -> Result<()> {
    let server = TestServer::with_config("max_payload: 1KB\n")?;
    let client = connect(&server.url()).await?;
    assert_eq!(
        client.server_info().max_payload,
        1024,
        "INFO max_payload from `max_payload: 1KB`"
    );

    let mut sub = client.subscribe("big").await?;
    sync(&client).await?;

    let err = client
        .publish("big", Bytes::from(vec![b'x'; 2000]))
        .await
        .err()
        .context("publishing 2000 bytes with max_payload 1024 must fail")?;
    assert_eq!(
        err.kind(),
        async_nats::client::PublishErrorKind::MaxPayloadExceeded,
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("Payload size limit of 1024 exceeded by message size of 2000"),
        "client error text: {err}"
    );

    // Headers count towards the limit.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Pad", "y".repeat(100).as_str());
    let err = client
        .publish_with_headers("big", headers, Bytes::from(vec![b'x'; 1000]))
        .await
        .err()
        .context("headers + payload over max_payload must fail")?;
    assert_eq!(
        err.kind(),
        async_nats::client::PublishErrorKind::MaxPayloadExceeded,
        "{err}"
    );

    let err = within(
        IO_TIMEOUT,
        "oversized request",
        client.request("big", Bytes::from(vec![0u8; 4096])),
    )
    .await?
    .err()
    .context("an oversized request must fail")?;
    assert_eq!(
        err.kind(),
        async_nats::client::RequestErrorKind::MaxPayloadExceeded,
        "{err}"
    );

    // The connection is still fine and exactly max_payload goes through.
    client.publish("big", Bytes::from(vec![b'y'; 1024])).await?;
    let m = next_msg(&mut sub, "max-sized message").await?;
    assert_eq!(m.payload.len(), 1024);
    Ok(())
}

#[tokio::test]
async fn slow_consumer_is_disconnected_and_publisher_keeps_working() -> Result<()> {
    // max_payload may not exceed max_pending (nats-server refuses to start:
    // "max_payload (1048576) cannot be higher than max_pending (65536)").
    let server = TestServer::with_config("max_pending: 64KB\nmax_payload: 64KB\n")?;

    // A subscriber with a tiny receive buffer that never reads.
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_recv_buffer_size(4096)?;
    let mut slow = within(
        IO_TIMEOUT,
        "slow consumer connect",
        sock.connect(format!("127.0.0.1:{}", server.port()).parse()?),
    )
    .await??;
    let mut info = vec![0u8; 4096];
    let n = within(IO_TIMEOUT, "INFO", slow.read(&mut info)).await??;
    assert!(info[..n].starts_with(b"INFO "), "expected INFO");
    slow.write_all(b"CONNECT {\"verbose\":false}\r\nSUB blast 1\r\nPING\r\n")
        .await?;
    let mut pong = [0u8; 6];
    within(IO_TIMEOUT, "PONG", slow.read_exact(&mut pong)).await??;
    assert_eq!(&pong, b"PONG\r\n");

    let publisher = connect(&server.url()).await?;
    let payload = Bytes::from(vec![b'x'; 60_000]);
    let blast = async {
        for _ in 0..400 {
            publisher.publish("blast", payload.clone()).await?;
        }
        sync(&publisher).await?;
        anyhow::Ok(())
    };
    within(Duration::from_secs(20), "publishing 24 MB", blast).await??;

    server
        .wait_for_log("Slow Consumer Detected", Duration::from_secs(10))
        .await?;

    // The slow consumer's connection gets closed: reading it dry ends in EOF.
    let mut total = 0usize;
    let mut buf = vec![0u8; 65536];
    let eof = within(Duration::from_secs(10), "EOF on the slow consumer", async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    eof.with_context(|| format!("slow consumer not disconnected (read {total} bytes)"))?;
    assert!(
        total < 24_000_000,
        "the slow consumer must not get everything ({total} bytes)"
    );

    // The publisher is unaffected.
    let checker = connect(&server.url()).await?;
    let mut sub = checker.subscribe("after.slow").await?;
    sync(&checker).await?;
    publisher.publish("after.slow", "still here".into()).await?;
    sync(&publisher).await?;
    let m = next_msg(
        &mut sub,
        "message from the publisher after the slow consumer",
    )
    .await?;
    assert_eq!(m.payload, Bytes::from("still here"));
    Ok(())
}

#[tokio::test]
async fn client_reconnects_after_server_restart() -> Result<()> {
    let mut server = TestServer::start(&[])?;
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let opts = ConnectOptions::new()
        .reconnect_delay_callback(|_| Duration::from_millis(100))
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(e);
            }
        });
    let client = connect_with(&server.url(), opts).await?;
    let mut sub = client.subscribe("survive.restart").await?;
    sync(&client).await?;
    client.publish("survive.restart", "before".into()).await?;
    assert_eq!(
        next_msg(&mut sub, "before restart").await?.payload,
        Bytes::from("before")
    );
    let port = server.port();

    server.restart()?;
    assert_eq!(server.port(), port, "restart keeps the port");

    // Wait for Disconnected then Connected.
    let mut saw_disconnect = false;
    within(Duration::from_secs(15), "reconnect events", async {
        while let Some(e) = events.recv().await {
            match e {
                Event::Disconnected => saw_disconnect = true,
                Event::Connected if saw_disconnect => return,
                _ => {}
            }
        }
    })
    .await
    .context("client did not report Disconnected + Connected")?;

    // A different client publishes; the old subscription (re-sent by the
    // client on reconnect) must get it.
    let other = connect(&server.url()).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        other.publish("survive.restart", "after".into()).await?;
        sync(&other).await?;
        match tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
            Ok(Some(m)) => {
                assert_eq!(m.payload, Bytes::from("after"));
                break;
            }
            Ok(None) => bail!("subscription ended across the restart"),
            Err(_) if Instant::now() < deadline => continue,
            Err(_) => bail!("subscription did not receive messages after the restart"),
        }
    }
    // And the reconnected client itself can publish and request.
    client.publish("survive.restart", "self".into()).await?;
    sync(&client).await?;
    let m = next_msg(&mut sub, "own message after restart").await?;
    // Skip possible duplicates of "after" from the retry loop.
    let mut m = m;
    while m.payload == "after" {
        m = next_msg(&mut sub, "own message after restart").await?;
    }
    assert_eq!(m.payload, Bytes::from("self"));
    assert!(
        server.logs().matches("Server is ready").count() >= 2,
        "two server runs in the log"
    );

    // Raw clients see a fresh server.
    let mut raw = RawConn::connect(server.port()).await?;
    raw.send("PING\r\n").await?;
    raw.expect("PONG\r\n").await?;
    Ok(())
}
