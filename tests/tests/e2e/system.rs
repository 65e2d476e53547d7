//! The system account and account limits: `$SYS.ACCOUNT.<acc>.CONNECT`/`DISCONNECT` events
//! seen only by system-account users, `$SYS.REQ.SERVER.PING` (STATSZ), `$SYS.REQ.USER.INFO`,
//! and per-account `limits { max_connections, max_subscriptions, max_payload }` with
//! nats-server's error texts.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use natrium_tests::{is_nats_server, parse_frames, RawConn, TestServer, IO_TIMEOUT};
use serde_json::Value;

const CONF: &str = r#"
system_account: SYS
accounts {
  SYS: { users: [ { user: sys, password: sys } ] }
  A: { users: [ { user: a, password: pa, permissions: { publish: { allow: ["a.>", "_INBOX.>", "$SYS.REQ.USER.INFO"] } } } ] }
  B: { users: [ { user: b, password: pb } ] }
}
"#;

const LIMITS: &str = r#"
accounts {
  L: {
    users: [ { user: l, password: pl } ]
    limits: { max_connections: 1, max_subscriptions: 2, max_payload: 10 }
  }
  M: {
    users: [ { user: m, password: pm } ]
    limits: { max_conn: 2, max_subs: 1, max_pay: 5 }
  }
}
"#;

async fn login(server: &TestServer, user: &str, pass: &str, name: &str) -> Result<RawConn> {
    let mut c = RawConn::connect(server.port()).await?;
    c.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"user\":\"{user}\",\"pass\":\"{pass}\",\
         \"name\":\"{name}\",\"lang\":\"raw\",\"version\":\"9.9\",\"protocol\":1,\"headers\":true}}\r\nPING\r\n"
    ))
    .await?;
    // An account with a max_payload gets an INFO with it (nats-server sends it after PONG).
    c.read_until(b"PONG\r\n", IO_TIMEOUT).await?;
    c.read_for(Duration::from_millis(150)).await?;
    Ok(c)
}

/// Reads MSG frames until one on `subject` arrives; returns its JSON payload.
async fn next_json_on(c: &mut RawConn, subject: &str) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        if tokio::time::Instant::now() >= deadline {
            bail!("no message on {subject}; saw {seen:?}");
        }
        let data = c.read_for(Duration::from_millis(200)).await?;
        for frame in parse_frames(&data) {
            let Some((head, body)) = frame.split_once("\r\n") else {
                continue;
            };
            let mut parts = head.split(' ');
            if parts.next() != Some("MSG") {
                continue;
            }
            if parts.next() == Some(subject) {
                let body = body.trim_end_matches("\r\n");
                return serde_json::from_str(body)
                    .with_context(|| format!("payload on {subject}: {body:?}"));
            }
            seen.push(head.to_string());
        }
    }
}

fn check_server_object(v: &Value) -> Result<()> {
    let s = &v["server"];
    for k in ["name", "host", "id", "ver", "seq", "time"] {
        ensure!(!s[k].is_null(), "server.{k} missing in {v}");
    }
    Ok(())
}

#[tokio::test]
async fn system_user_sees_connect_and_disconnect_events_of_other_accounts() -> Result<()> {
    let server = TestServer::with_config(CONF)?;
    let mut sys = login(&server, "sys", "sys", "watcher").await?;
    sys.send("SUB $SYS.ACCOUNT.> 1\r\nPING\r\n").await?;
    sys.expect("PONG\r\n").await?;
    // A tenant subscribed to everything in its own account sees no events.
    let mut nosy = login(&server, "b", "pb", "nosy").await?;
    nosy.send("SUB $SYS.> 1\r\nSUB > 2\r\nPING\r\n").await?;
    nosy.expect("PONG\r\n").await?;

    let mut a = login(&server, "a", "pa", "tenant-a").await?;
    let ev = next_json_on(&mut sys, "$SYS.ACCOUNT.A.CONNECT").await?;
    ensure!(
        ev["type"] == "io.nats.server.advisory.v1.client_connect",
        "{ev}"
    );
    ensure!(ev["id"].is_string() && ev["timestamp"].is_string(), "{ev}");
    check_server_object(&ev)?;
    let c = &ev["client"];
    ensure!(c["acc"] == "A" && c["user"] == "a", "{ev}");
    ensure!(
        c["name"] == "tenant-a" && c["lang"] == "raw" && c["ver"] == "9.9",
        "{ev}"
    );
    ensure!(
        c["host"] == "127.0.0.1" && c["id"].is_u64() && c["start"].is_string(),
        "{ev}"
    );

    a.send("PUB a.x 2\r\nhi\r\nPING\r\n").await?;
    a.expect("PONG\r\n").await?;
    drop(a);
    let ev = next_json_on(&mut sys, "$SYS.ACCOUNT.A.DISCONNECT").await?;
    ensure!(
        ev["type"] == "io.nats.server.advisory.v1.client_disconnect",
        "{ev}"
    );
    check_server_object(&ev)?;
    ensure!(
        ev["client"]["acc"] == "A" && ev["client"]["user"] == "a",
        "{ev}"
    );
    ensure!(ev["client"]["stop"].is_string(), "{ev}");
    ensure!(ev["reason"] == "Client Closed", "{ev}");
    ensure!(ev["sent"]["msgs"] == 1 && ev["sent"]["bytes"] == 2, "{ev}");
    ensure!(ev["received"]["msgs"].is_u64(), "{ev}");

    let got = nosy.read_for(Duration::from_millis(500)).await?;
    ensure!(
        got.is_empty(),
        "a non-system user saw {:?}",
        String::from_utf8_lossy(&got)
    );
    Ok(())
}

#[tokio::test]
async fn server_ping_replies_with_statsz() -> Result<()> {
    let server = TestServer::with_config(CONF)?;
    let mut sys = login(&server, "sys", "sys", "sys").await?;
    sys.send("SUB _INBOX.ping 1\r\nPUB $SYS.REQ.SERVER.PING _INBOX.ping 0\r\n\r\n")
        .await?;
    let v = next_json_on(&mut sys, "_INBOX.ping").await?;
    check_server_object(&v)?;
    let s = &v["statsz"];
    for k in [
        "start",
        "mem",
        "cores",
        "cpu",
        "connections",
        "total_connections",
        "active_accounts",
        "subscriptions",
        "slow_consumers",
    ] {
        ensure!(!s[k].is_null(), "statsz.{k} missing in {v}");
    }
    for k in ["sent", "received"] {
        ensure!(s[k]["msgs"].is_u64() && s[k]["bytes"].is_u64(), "{v}");
    }
    ensure!(s["connections"].as_u64() >= Some(1), "{v}");
    Ok(())
}

#[tokio::test]
async fn server_ping_from_a_tenant_gets_no_statsz() -> Result<()> {
    let server = TestServer::with_config(CONF)?;
    let mut b = login(&server, "b", "pb", "b").await?;
    b.send("SUB _INBOX.ping 1\r\nPUB $SYS.REQ.SERVER.PING _INBOX.ping 0\r\n\r\nPING\r\n")
        .await?;
    b.expect("PONG\r\n").await?;
    let got = b.read_for(Duration::from_millis(500)).await?;
    ensure!(
        !String::from_utf8_lossy(&got).contains("statsz"),
        "tenant got {:?}",
        String::from_utf8_lossy(&got)
    );
    Ok(())
}

#[tokio::test]
async fn user_info_describes_the_requester() -> Result<()> {
    if is_nats_server() {
        // $SYS.REQ.USER.INFO arrived in nats-server 2.10; the reference here is 2.9.
        return Ok(());
    }
    let server = TestServer::with_config(CONF)?;
    let mut a = login(&server, "a", "pa", "a").await?;
    a.send("SUB _INBOX.me 1\r\nPUB $SYS.REQ.USER.INFO _INBOX.me 0\r\n\r\n")
        .await?;
    let v = next_json_on(&mut a, "_INBOX.me").await?;
    check_server_object(&v)?;
    let d = &v["data"];
    ensure!(d["user"] == "a" && d["account"] == "A", "{v}");
    let allow = &d["permissions"]["publish"]["allow"];
    ensure!(
        allow
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s == "a.>")),
        "{v}"
    );
    let mut b = login(&server, "b", "pb", "b").await?;
    b.send("SUB _INBOX.me 1\r\nPUB $SYS.REQ.USER.INFO _INBOX.me 0\r\n\r\n")
        .await?;
    let v = next_json_on(&mut b, "_INBOX.me").await?;
    ensure!(
        v["data"]["user"] == "b" && v["data"]["account"] == "B",
        "{v}"
    );
    ensure!(v["data"]["permissions"].is_null(), "{v}");
    Ok(())
}

#[tokio::test]
async fn account_max_connections_is_enforced() -> Result<()> {
    let server = TestServer::with_config(LIMITS)?;
    let _first = login(&server, "l", "pl", "first").await?;
    let mut second = RawConn::connect(server.port()).await?;
    second
        .send("CONNECT {\"verbose\":false,\"user\":\"l\",\"pass\":\"pl\"}\r\nPING\r\n")
        .await?;
    let (got, closed) = second.read_to_close(IO_TIMEOUT).await?;
    let got = String::from_utf8_lossy(&got);
    ensure!(
        got == "-ERR 'maximum account active connections exceeded'\r\n" && closed,
        "got {got:?} (closed: {closed})"
    );
    // Another account is unaffected; M allows two.
    let _m1 = login(&server, "m", "pm", "m1").await?;
    let _m2 = login(&server, "m", "pm", "m2").await?;
    Ok(())
}

#[tokio::test]
async fn a_freed_account_connection_slot_can_be_reused() -> Result<()> {
    let server = TestServer::with_config(LIMITS)?;
    let first = login(&server, "l", "pl", "first").await?;
    drop(first);
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    loop {
        let mut c = RawConn::connect(server.port()).await?;
        c.send("CONNECT {\"verbose\":false,\"user\":\"l\",\"pass\":\"pl\"}\r\nPING\r\n")
            .await?;
        let got = c.read_until(b"\r\n", IO_TIMEOUT).await?;
        if got.starts_with(b"PONG") {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("slot never freed: {:?}", String::from_utf8_lossy(&got));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn account_max_subscriptions_is_enforced_and_the_connection_stays() -> Result<()> {
    let server = TestServer::with_config(LIMITS)?;
    let mut l = login(&server, "l", "pl", "l").await?;
    l.send("SUB x 1\r\nSUB y 2\r\nSUB z 3\r\nPING\r\n").await?;
    l.expect("-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n")
        .await?;
    // The two allowed subscriptions work; the refused one does not exist.
    l.send("PUB x 1\r\n1\r\nPUB z 1\r\n3\r\nPING\r\n").await?;
    l.expect("MSG x 1 1\r\n1\r\nPONG\r\n").await?;
    let mut m = login(&server, "m", "pm", "m").await?;
    m.send("SUB x 1\r\nSUB y 2\r\nPING\r\n").await?;
    m.expect("-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n")
        .await?;
    Ok(())
}

#[tokio::test]
async fn account_max_payload_is_enforced() -> Result<()> {
    let server = TestServer::with_config(LIMITS)?;
    let mut l = login(&server, "l", "pl", "l").await?;
    l.send("PUB x 10\r\n0123456789\r\nPING\r\n").await?;
    l.expect("PONG\r\n").await?;
    l.send("PUB x 11\r\nhello world\r\nPING\r\n").await?;
    let (got, closed) = l.read_to_close(IO_TIMEOUT).await?;
    let got = String::from_utf8_lossy(&got);
    ensure!(
        got == "-ERR 'Maximum Payload Violation'\r\n" && closed,
        "got {got:?} (closed: {closed})"
    );
    let mut m = login(&server, "m", "pm", "m").await?;
    m.send("PUB x 6\r\n123456\r\nPING\r\n").await?;
    let (got, closed) = m.read_to_close(IO_TIMEOUT).await?;
    ensure!(
        got == b"-ERR 'Maximum Payload Violation'\r\n" && closed,
        "got {:?} (closed: {closed})",
        String::from_utf8_lossy(&got)
    );
    Ok(())
}

#[tokio::test]
async fn limits_with_max_data_are_accepted_by_natrium() -> Result<()> {
    if is_nats_server() {
        // nats-server 2.9 refuses `max_data` in `limits {}`.
        return Ok(());
    }
    let server = TestServer::with_config(
        "accounts { D: { users: [ { user: d, password: pd } ], limits: { max_data: 1000, max_subs: 1 } } }\n",
    )?;
    let mut d = login(&server, "d", "pd", "d").await?;
    d.send("SUB x 1\r\nSUB y 2\r\nPING\r\n").await?;
    d.expect("-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n")
        .await?;
    Ok(())
}
