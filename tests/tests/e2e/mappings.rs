//! Native subject mappings, as nats-server's `mappings {}` (top level for `$G`, or per account).

use std::time::Duration;

use anyhow::{ensure, Result};
use natrium_tests::{RawConn, TestServer};

async fn login(server: &TestServer, creds: &str) -> Result<RawConn> {
    let mut c = RawConn::connect(server.port()).await?;
    c.send(format!("CONNECT {{\"verbose\":false{creds}}}\r\nPING\r\n"))
        .await?;
    c.expect("PONG\r\n").await?;
    Ok(c)
}

#[tokio::test]
async fn literal_and_wildcard_mappings_rewrite_the_subject() -> Result<()> {
    let server = TestServer::with_config(
        r#"
        mappings {
          "old.orders": "orders"
          "orders.*.*": "orders.{{wildcard(2)}}.{{wildcard(1)}}"
          "legacy.*.*": "modern.$2.$1"
        }
        "#,
    )?;
    let mut sub = login(&server, "").await?;
    sub.send("SUB orders 1\r\nSUB orders.*.* 2\r\nSUB modern.> 3\r\nSUB old.orders 4\r\nPING\r\n")
        .await?;
    sub.expect("PONG\r\n").await?;
    let mut publ = login(&server, "").await?;
    publ.send(
        "PUB old.orders 1\r\na\r\nPUB orders.eu.42 1\r\nb\r\nPUB legacy.x.y 1\r\nc\r\nPING\r\n",
    )
    .await?;
    publ.expect("PONG\r\n").await?;
    sub.send("PING\r\n").await?;
    sub.expect(
        "MSG orders 1 1\r\na\r\nMSG orders.42.eu 2 1\r\nb\r\nMSG modern.y.x 3 1\r\nc\r\nPONG\r\n",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn weighted_mappings_split_traffic() -> Result<()> {
    let server = TestServer::with_config(
        r#"
        mappings {
          "canary": [ { destination: "canary.v1", weight: 80% }, { destination: "canary.v2", weight: 20% } ]
        }
        "#,
    )?;
    let mut sub = login(&server, "").await?;
    sub.send("SUB canary.v1 1\r\nSUB canary.v2 2\r\nPING\r\n")
        .await?;
    sub.expect("PONG\r\n").await?;
    let mut publ = login(&server, "").await?;
    let n = 1000;
    let mut batch = String::new();
    for _ in 0..n {
        batch.push_str("PUB canary 1\r\nx\r\n");
    }
    batch.push_str("PING\r\n");
    publ.send(batch).await?;
    publ.expect("PONG\r\n").await?;
    sub.send("PING\r\n").await?;
    let got = sub.read_until(b"PONG\r\n", Duration::from_secs(5)).await?;
    let text = String::from_utf8_lossy(&got);
    let v1 = text.matches("MSG canary.v1 ").count();
    let v2 = text.matches("MSG canary.v2 ").count();
    ensure!(
        v1 + v2 == n,
        "every message goes to one destination: {v1} + {v2}"
    );
    ensure!((700..=900).contains(&v1), "about 80% to v1, got {v1}");
    Ok(())
}

#[tokio::test]
async fn account_mappings_apply_only_inside_their_account() -> Result<()> {
    let server = TestServer::with_config(
        r#"
        accounts {
          A: { users: [ { user: a, password: pa } ], mappings: { "in": "out" } }
          B: { users: [ { user: b, password: pb } ] }
        }
        "#,
    )?;
    let mut a_sub = login(&server, ",\"user\":\"a\",\"pass\":\"pa\"").await?;
    let mut b_sub = login(&server, ",\"user\":\"b\",\"pass\":\"pb\"").await?;
    for c in [&mut a_sub, &mut b_sub] {
        c.send("SUB in 1\r\nSUB out 2\r\nPING\r\n").await?;
        c.expect("PONG\r\n").await?;
    }
    let mut a_pub = login(&server, ",\"user\":\"a\",\"pass\":\"pa\"").await?;
    let mut b_pub = login(&server, ",\"user\":\"b\",\"pass\":\"pb\"").await?;
    a_pub.send("PUB in 1\r\na\r\nPING\r\n").await?;
    a_pub.expect("PONG\r\n").await?;
    b_pub.send("PUB in 1\r\nb\r\nPING\r\n").await?;
    b_pub.expect("PONG\r\n").await?;
    a_sub.send("PING\r\n").await?;
    a_sub.expect("MSG out 2 1\r\na\r\nPONG\r\n").await?;
    b_sub.send("PING\r\n").await?;
    b_sub.expect("MSG in 1 1\r\nb\r\nPONG\r\n").await?;
    Ok(())
}
