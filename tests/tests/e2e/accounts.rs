//! Multi-tenancy: accounts with isolated subject spaces, users placed in them, per-user
//! permissions with nats-server's exact violation texts, NKey users, `no_auth_user`.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use async_nats::ConnectOptions;
use natrium_tests::{assert_no_msg, connect_with, next_msg, sync, RawConn, TestServer};

const TENANTS: &str = r#"
accounts {
  A: { users: [ { user: a, password: pa } ] }
  B: { users: [ { user: b, password: pb } ] }
  R: {
    users: [
      { user: r, password: pr, permissions: {
          publish: { allow: ["r.>", "_INBOX.>"], deny: "r.forbidden" }
          subscribe: { allow: ">", deny: ["r.secret", "other.*"] }
      } }
    ]
  }
}
"#;

async fn user(server: &TestServer, name: &str, pass: &str) -> Result<async_nats::Client> {
    connect_with(
        &server.url(),
        ConnectOptions::with_user_and_password(name.into(), pass.into()),
    )
    .await
}

async fn raw_login(server: &TestServer, name: &str, pass: &str) -> Result<RawConn> {
    let mut c = RawConn::connect(server.port()).await?;
    c.send(format!(
        "CONNECT {{\"verbose\":false,\"user\":\"{name}\",\"pass\":\"{pass}\"}}\r\nPING\r\n"
    ))
    .await?;
    c.expect("PONG\r\n").await?;
    Ok(c)
}

/// A raw connection subscribed to everything (`>`) in the user's account.
async fn watch_all(server: &TestServer, name: &str, pass: &str) -> Result<RawConn> {
    let mut c = raw_login(server, name, pass).await?;
    c.send("SUB > 1\r\nPING\r\n").await?;
    c.expect("PONG\r\n").await?;
    Ok(c)
}

async fn publish_raw(server: &TestServer, name: &str, pass: &str, subject: &str) -> Result<()> {
    let mut p = raw_login(server, name, pass).await?;
    p.send(format!("PUB {subject} 2\r\nhi\r\nPING\r\n")).await?;
    p.expect("PONG\r\n").await?;
    Ok(())
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_messages() -> Result<()> {
    let server = TestServer::with_config(TENANTS)?;
    let mut a_all = watch_all(&server, "a", "pa").await?;
    let mut b_all = watch_all(&server, "b", "pb").await?;

    publish_raw(&server, "b", "pb", "orders.new").await?;
    b_all.expect("MSG orders.new 1 2\r\nhi\r\n").await?;
    let leaked = a_all.read_for(Duration::from_millis(300)).await?;
    ensure!(
        leaked.is_empty(),
        "a saw {:?}",
        String::from_utf8_lossy(&leaked)
    );

    publish_raw(&server, "a", "pa", "orders.new").await?;
    a_all.expect("MSG orders.new 1 2\r\nhi\r\n").await?;
    let leaked = b_all.read_for(Duration::from_millis(300)).await?;
    ensure!(
        leaked.is_empty(),
        "b saw {:?}",
        String::from_utf8_lossy(&leaked)
    );

    // Request-reply works inside an account; a responder in another account is invisible.
    for w in [&mut a_all, &mut b_all] {
        w.send("UNSUB 1\r\nPING\r\n").await?;
        w.expect("PONG\r\n").await?;
    }
    let a = user(&server, "a", "pa").await?;
    let b = user(&server, "b", "pb").await?;
    let mut svc = b.subscribe("svc").await?;
    sync(&b).await?;
    let req = a.request("svc", "ping".into());
    let res = tokio::time::timeout(Duration::from_secs(5), req)
        .await
        .context("request timed out instead of failing")?;
    ensure!(res.is_err(), "a's request must not reach b's responder");
    assert_no_msg(&mut svc, Duration::from_millis(200), "b's responder").await?;
    let mut own = a.subscribe("svc").await?;
    sync(&a).await?;
    let a2 = user(&server, "a", "pa").await?;
    a2.publish("svc", "x".into()).await?;
    sync(&a2).await?;
    let got = next_msg(&mut own, "same-account delivery").await?;
    ensure!(got.payload == "x");
    Ok(())
}

#[tokio::test]
async fn publish_permissions_are_enforced_with_the_exact_error() -> Result<()> {
    let server = TestServer::with_config(TENANTS)?;
    let mut c = raw_login(&server, "r", "pr").await?;
    c.send("SUB r.ok 1\r\nPUB r.ok 2\r\nhi\r\nPING\r\n").await?;
    c.expect("MSG r.ok 1 2\r\nhi\r\nPONG\r\n").await?;
    c.send("PUB elsewhere 2\r\nhi\r\nPING\r\n").await?;
    c.expect("-ERR 'Permissions Violation for Publish to \"elsewhere\"'\r\nPONG\r\n")
        .await?;
    c.send("PUB r.forbidden 2\r\nhi\r\nPING\r\n").await?;
    c.expect("-ERR 'Permissions Violation for Publish to \"r.forbidden\"'\r\nPONG\r\n")
        .await?;
    ensure!(
        !c.is_closed(),
        "a permission violation keeps the connection up"
    );
    Ok(())
}

#[tokio::test]
async fn subscribe_permissions_and_delivery_filtering() -> Result<()> {
    let server = TestServer::with_config(TENANTS)?;
    let mut c = raw_login(&server, "r", "pr").await?;
    c.send("SUB r.secret 1\r\nPING\r\n").await?;
    c.expect("-ERR 'Permissions Violation for Subscription to \"r.secret\"'\r\nPONG\r\n")
        .await?;
    // A wildcard that is allowed still never delivers a denied subject.
    c.send("SUB r.* 2\r\nPING\r\n").await?;
    c.expect("PONG\r\n").await?;
    let mut p = raw_login(&server, "r", "pr").await?;
    p.send("PUB r.secret 1\r\nx\r\nPUB r.open 1\r\ny\r\nPING\r\n")
        .await?;
    p.expect("PONG\r\n").await?;
    c.send("PING\r\n").await?;
    c.expect("MSG r.open 2 1\r\ny\r\nPONG\r\n").await?;
    Ok(())
}

#[tokio::test]
async fn wrong_password_is_an_authorization_violation() -> Result<()> {
    let server = TestServer::with_config(TENANTS)?;
    let mut c = RawConn::connect(server.port()).await?;
    ensure!(
        c.info()?["auth_required"] == true,
        "INFO must say auth_required"
    );
    c.send("CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"pb\"}\r\nPING\r\n")
        .await?;
    let (got, closed) = c.read_to_close(Duration::from_secs(5)).await?;
    ensure!(
        String::from_utf8_lossy(&got) == "-ERR 'Authorization Violation'\r\n",
        "got {:?}",
        String::from_utf8_lossy(&got)
    );
    ensure!(closed, "connection must be closed");
    Ok(())
}

#[tokio::test]
async fn nkey_users_authenticate_by_signing_the_nonce() -> Result<()> {
    let kp = nkeys::KeyPair::new_user();
    let seed = kp.seed().context("user seed")?;
    let conf = format!(
        "accounts {{ K: {{ users: [ {{ nkey: {} }} ] }}, O: {{ users: [ {{ user: o, password: po }} ] }} }}\n",
        kp.public_key()
    );
    let server = TestServer::with_config(&conf)?;
    let raw = RawConn::connect(server.port()).await?;
    let nonce = raw.info()?["nonce"].as_str().map(str::to_string);
    ensure!(
        nonce.is_some_and(|n| n.len() >= 11),
        "INFO must carry a nonce"
    );

    let k = connect_with(&server.url(), ConnectOptions::with_nkey(seed)).await?;
    let mut sub = k.subscribe("k.>").await?;
    sync(&k).await?;
    k.publish("k.1", "signed".into()).await?;
    let got = next_msg(&mut sub, "nkey user's own message").await?;
    ensure!(got.payload == "signed");

    // A different key is refused.
    let stranger = nkeys::KeyPair::new_user().seed().context("seed")?;
    let res = ConnectOptions::with_nkey(stranger)
        .max_reconnects(Some(0))
        .connection_timeout(Duration::from_secs(3))
        .connect(server.url())
        .await;
    ensure!(res.is_err(), "an unknown nkey must be refused");

    // The password user lives in another account and sees nothing of K.
    let mut o_all = watch_all(&server, "o", "po").await?;
    k.publish("k.2", "x".into()).await?;
    sync(&k).await?;
    let got = next_msg(&mut sub, "k.2 in K").await?;
    ensure!(got.subject.as_str() == "k.2");
    let leaked = o_all.read_for(Duration::from_millis(300)).await?;
    ensure!(
        leaked.is_empty(),
        "o saw {:?}",
        String::from_utf8_lossy(&leaked)
    );
    Ok(())
}

#[tokio::test]
async fn no_auth_user_places_anonymous_clients() -> Result<()> {
    let server = TestServer::with_config(&format!("{TENANTS}\nno_auth_user: a\n"))?;
    let anon = natrium_tests::connect(&server.url()).await?;
    let a = user(&server, "a", "pa").await?;
    let mut a_sub = a.subscribe("hello").await?;
    sync(&a).await?;
    anon.publish("hello", "anon".into()).await?;
    sync(&anon).await?;
    let got = next_msg(&mut a_sub, "anonymous client is in account A").await?;
    ensure!(got.payload == "anon");
    Ok(())
}

#[tokio::test]
async fn allow_responses_lets_a_service_answer_only_the_requests_it_received() -> Result<()> {
    let server = TestServer::with_config(
        r#"
        accounts {
          S: { users: [
            { user: svc, password: ps, permissions: { subscribe: "service", allow_responses: true } }
            { user: cli, password: pc }
          ] }
        }
        "#,
    )?;
    let mut svc = raw_login(&server, "svc", "ps").await?;
    svc.send("SUB service 1\r\nPING\r\n").await?;
    svc.expect("PONG\r\n").await?;
    let mut cli = raw_login(&server, "cli", "pc").await?;
    cli.send("SUB reply.1 9\r\nPUB service reply.1 3\r\nreq\r\nPING\r\n")
        .await?;
    cli.expect("PONG\r\n").await?;
    svc.expect("MSG service 1 reply.1 3\r\nreq\r\n").await?;

    // The first response is allowed, a second one is not (max 1), nor any other subject.
    svc.send("PUB reply.1 3\r\nres\r\nPING\r\n").await?;
    svc.expect("PONG\r\n").await?;
    cli.expect("MSG reply.1 9 3\r\nres\r\n").await?;
    svc.send("PUB reply.1 3\r\nres\r\nPING\r\n").await?;
    svc.expect("-ERR 'Permissions Violation for Publish to \"reply.1\"'\r\nPONG\r\n")
        .await?;
    svc.send("PUB elsewhere 1\r\nx\r\nPING\r\n").await?;
    svc.expect("-ERR 'Permissions Violation for Publish to \"elsewhere\"'\r\nPONG\r\n")
        .await?;
    Ok(())
}

const LINKED: &str = r#"
accounts {
  A: {
    users: [ { user: a, password: pa } ]
    exports: [
      { stream: "a.events.>" }
      { stream: "a.private.>", accounts: [B] }
      { service: "a.svc" }
    ]
  }
  B: {
    users: [ { user: b, password: pb } ]
    imports: [
      { stream: { account: A, subject: "a.events.>" }, prefix: from_a }
      { stream: { account: A, subject: "a.private.>" } }
      { service: { account: A, subject: "a.svc" }, to: "svc.a" }
    ]
  }
  C: { users: [ { user: c, password: pc } ] }
}
"#;

#[tokio::test]
async fn stream_exports_reach_only_the_accounts_that_may_import_them() -> Result<()> {
    let server = TestServer::with_config(LINKED)?;
    let mut b = raw_login(&server, "b", "pb").await?;
    b.send("SUB from_a.a.events.> 1\r\nSUB a.events.> 2\r\nSUB a.private.> 3\r\nPING\r\n")
        .await?;
    b.expect("PONG\r\n").await?;
    let mut c = watch_all(&server, "c", "pc").await?;

    publish_raw(&server, "a", "pa", "a.events.x").await?;
    publish_raw(&server, "a", "pa", "a.private.y").await?;
    publish_raw(&server, "a", "pa", "a.other").await?;
    b.send("PING\r\n").await?;
    b.expect("MSG from_a.a.events.x 1 2\r\nhi\r\nMSG a.private.y 3 2\r\nhi\r\nPONG\r\n")
        .await?;
    // C imports nothing: it sees nothing of A.
    let leaked = c.read_for(Duration::from_millis(300)).await?;
    ensure!(
        leaked.is_empty(),
        "c saw {:?}",
        String::from_utf8_lossy(&leaked)
    );
    Ok(())
}

#[test]
fn an_import_the_export_does_not_allow_is_a_configuration_error() -> Result<()> {
    let conf = LINKED.replace(
        "C: { users: [ { user: c, password: pc } ] }",
        "C: { users: [ { user: c, password: pc } ], imports: [ { stream: { account: A, subject: \"a.private.>\" } } ] }",
    );
    let res = TestServer::with_config(&conf);
    let err = match res {
        Ok(_) => anyhow::bail!("the server must refuse an unauthorized import"),
        Err(e) => format!("{e:#}"),
    };
    ensure!(
        err.contains("Error adding stream import \"a.private.>\": stream import not authorized"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn service_imports_route_requests_and_exactly_one_response() -> Result<()> {
    let server = TestServer::with_config(LINKED)?;
    let mut svc = raw_login(&server, "a", "pa").await?;
    svc.send("SUB a.svc 1\r\nPING\r\n").await?;
    svc.expect("PONG\r\n").await?;

    let mut cli = raw_login(&server, "b", "pb").await?;
    cli.send("SUB my.reply 7\r\nPUB svc.a my.reply 3\r\nreq\r\nPING\r\n")
        .await?;
    cli.expect("PONG\r\n").await?;
    let got = svc.read_until(b"req\r\n", Duration::from_secs(5)).await?;
    let line = String::from_utf8_lossy(&got).into_owned();
    let mut parts = line.split_whitespace();
    ensure!(
        parts.next() == Some("MSG") && parts.next() == Some("a.svc"),
        "got {line:?}"
    );
    let _sid = parts.next();
    let routed = parts.next().context("routed reply subject")?.to_string();
    ensure!(
        routed.starts_with("_R_."),
        "reply must be a generated subject: {line:?}"
    );
    ensure!(routed != "my.reply", "the requester's inbox must not leak");

    svc.send(format!("PUB {routed} 3\r\nres\r\nPING\r\n"))
        .await?;
    svc.expect("PONG\r\n").await?;
    cli.expect("MSG my.reply 7 3\r\nres\r\n").await?;
    // A singleton service answers once: a second response goes nowhere.
    svc.send(format!("PUB {routed} 4\r\nres2\r\nPING\r\n"))
        .await?;
    svc.expect("PONG\r\n").await?;
    let more = cli.read_for(Duration::from_millis(300)).await?;
    ensure!(
        more.is_empty(),
        "second response leaked: {:?}",
        String::from_utf8_lossy(&more)
    );

    // Same with the official client's request API.
    let a = user(&server, "a", "pa").await?;
    let mut requests = a.subscribe("a.svc").await?;
    sync(&a).await?;
    let responder = tokio::spawn(async move {
        use futures::StreamExt;
        if let Some(m) = requests.next().await {
            if let Some(r) = m.reply {
                let _ = a.publish(r, "pong".into()).await;
                let _ = a.flush().await;
            }
        }
    });
    let b = user(&server, "b", "pb").await?;
    let answer = tokio::time::timeout(Duration::from_secs(5), b.request("svc.a", "ping".into()))
        .await
        .context("request timed out")??;
    ensure!(answer.payload == "pong", "answer {:?}", answer.payload);
    responder.abort();
    Ok(())
}

/// Keys nats-server documents that natrium reads but does not act on start the server, and
/// natrium names each one in a start-up warning; a key nats-server does not know at all
/// (here inside an account's `jetstream {}`) stops both at start-up with its position.
#[tokio::test]
async fn documented_but_unsupported_keys_are_logged_unknown_keys_refused() -> Result<()> {
    let store = tempfile::tempdir()?;
    let conf = format!(
        r#"jetstream {{ store: "{}" }}
accounts {{
  A: {{
    jetstream: {{ max_stream_bytes: true }}
    users: [ {{ user: a, password: pa, allowed_connection_types: ["STANDARD"] }} ]
    exports: [ {{ service: "svc", response_threshold: "1s" }} ]
  }}
  B: {{
    users: [ {{ user: b, password: pb }} ]
    imports: [ {{ service: {{ account: A, subject: "svc" }}, share: true }} ]
  }}
}}
"#,
        store.path().display()
    );
    let server = TestServer::with_config(&conf)?;
    let a = user(&server, "a", "pa").await?;
    let mut sub = a.subscribe("x").await?;
    sync(&a).await?;
    a.publish("x", "hi".into()).await?;
    let msg = next_msg(&mut sub, "x").await?;
    ensure!(msg.payload.as_ref() == b"hi");
    // nats-server supports these keys, so only natrium has something to say about them.
    if !natrium_tests::is_nats_server() {
        let logs = server.logs();
        for key in [
            "accounts.A.users.allowed_connection_types (",
            "accounts.A.exports.response_threshold (",
            "accounts.B.imports.share (",
        ] {
            ensure!(
                logs.contains(&format!(
                    "[WRN] Configuration key not supported yet, ignored: {key}"
                )),
                "no warning for {key}:\n{logs}"
            );
        }
    }
    let err = match TestServer::with_config("accounts {\n  A: { jetstream: { bogus: 1 } }\n}\n") {
        Ok(_) => anyhow::bail!("a server started with an unknown key"),
        Err(e) => format!("{e:#}"),
    };
    ensure!(
        err.contains(":2:") && err.contains("unknown field \"bogus\""),
        "{err}"
    );
    Ok(())
}
