//! Connection limits and liveness: max connections, stale connections, the authentication
//! timeout. Each is the exact `-ERR` nats-server sends, followed by the close.

use std::time::Duration;

use anyhow::{ensure, Result};
use natrium_tests::{RawConn, TestServer};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn connections_over_max_connections_are_refused() -> Result<()> {
    let server = TestServer::with_config("max_connections: 1\n")?;
    let mut first = RawConn::connect(server.port()).await?;
    first
        .send("CONNECT {\"verbose\":false}\r\nPING\r\n")
        .await?;
    first.expect("PONG\r\n").await?;

    let mut second = RawConn::connect(server.port()).await?;
    let (got, closed) = second.read_to_close(Duration::from_secs(5)).await?;
    ensure!(
        text(&got).contains("-ERR 'maximum connections exceeded'\r\n"),
        "got {:?}",
        text(&got)
    );
    ensure!(closed, "the extra connection must be closed");

    // The first connection is unaffected.
    first.send("PING\r\n").await?;
    first.expect("PONG\r\n").await?;
    Ok(())
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_stale() -> Result<()> {
    let server = TestServer::with_config("ping_interval: \"100ms\"\nping_max: 2\n")?;
    let mut c = RawConn::connect(server.port()).await?;
    c.send("CONNECT {\"verbose\":false}\r\n").await?;
    let (got, closed) = c.read_to_close(Duration::from_secs(5)).await?;
    let got = text(&got);
    ensure!(got.starts_with("PING\r\nPING\r\n"), "got {got:?}");
    ensure!(got.ends_with("-ERR 'Stale Connection'\r\n"), "got {got:?}");
    ensure!(closed, "a stale connection must be closed");
    Ok(())
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected() -> Result<()> {
    let server = TestServer::with_config("ping_interval: \"100ms\"\nping_max: 2\n")?;
    let mut c = RawConn::connect(server.port()).await?;
    c.send("CONNECT {\"verbose\":false}\r\n").await?;
    for _ in 0..5 {
        c.expect("PING\r\n").await?;
        c.send("PONG\r\n").await?;
    }
    c.send("PING\r\n").await?;
    c.expect("PONG\r\n").await?;
    ensure!(!c.is_closed(), "connection must stay up");
    Ok(())
}

#[tokio::test]
async fn authentication_must_happen_within_the_timeout() -> Result<()> {
    let server = TestServer::with_config("authorization { user: a, password: b, timeout: 0.5 }\n")?;
    let mut c = RawConn::connect(server.port()).await?;
    let (got, closed) = c.read_to_close(Duration::from_secs(5)).await?;
    ensure!(
        text(&got) == "-ERR 'Authentication Timeout'\r\n",
        "got {:?}",
        text(&got)
    );
    ensure!(closed, "the connection must be closed");
    Ok(())
}
