//! Auth callout (nats-server 2.10, ADR-26) end to end. The callout service here is written
//! the way a service for nats-server 2.10 is: an ordinary NATS client, logged in as one of
//! `auth_users`, subscribed to `$SYS.REQ.USER.AUTH`; it reads the server-signed request
//! (opening it first when the exchange is sealed with xkeys), decides by the CONNECT's user
//! and password, and answers with an authorization response JWT signed by the issuer account
//! key. Its JWTs are made with `natrium_tests::{callout, jwt}`, not with natrium's code.
//!
//! The reference nats-server installed here (2.9) has no auth callout: natrium only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use async_nats::{ConnectErrorKind, ConnectOptions};
use futures::StreamExt;
use natrium_tests::callout::{self, Answer, Responder};
use natrium_tests::jwt::{creds, sign};
use natrium_tests::{
    assert_no_msg, connect_with, is_nats_server, next_msg, sync, within, RawConn, TestServer,
};
use nkeys::{KeyPair, XKey};
use serde_json::{json, Value};

/// What the service does with one request.
enum Decision {
    Answer(Answer<'static>),
    /// Never answer.
    Silent,
    /// Admit, but sign with a key that is not the configured issuer.
    Forge,
}

/// The service's policy: by CONNECT user and password.
fn decide(user: &str, pass: &str) -> Decision {
    let grant = |account, publish| {
        Decision::Answer(Answer::Grant {
            account,
            name: "granted",
            publish,
            subscribe: &[],
        })
    };
    match (user, pass) {
        // _INBOX.> for the tests' round trips (`sync`).
        ("bob", "b") => grant("B", &["b.>", "_INBOX.>"]),
        ("carol", "c") => grant("A", &[]),
        ("insider", "i") => grant("AUTH", &[]),
        ("silent", _) => Decision::Silent,
        ("forger", _) => Decision::Forge,
        _ => Decision::Answer(Answer::Deny("no such user")),
    }
}

/// The callout service: its keys and what it has seen.
struct Service {
    keys: Responder,
    /// Every request's claims, in arrival order.
    seen: Mutex<Vec<Value>>,
    /// Whether each request came sealed, with the `Nats-Server-Xkey` header.
    sealed: Mutex<Vec<bool>>,
}

impl Service {
    fn new(encrypted: bool) -> Arc<Self> {
        Arc::new(Service {
            keys: Responder {
                issuer: KeyPair::new_account(),
                xkey: encrypted.then(XKey::new),
            },
            seen: Mutex::new(Vec::new()),
            sealed: Mutex::new(Vec::new()),
        })
    }

    /// A server configuration: account AUTH holds the service's user, A and B are where
    /// the service places clients; `alice` is configured but, not being an auth user, is
    /// decided by the callout too.
    fn config(&self) -> String {
        let xkey = self
            .keys
            .xkey
            .as_ref()
            .map(|x| format!(", xkey: {}", x.public_key()))
            .unwrap_or_default();
        format!(
            "accounts {{\n\
               AUTH {{ users: [ {{user: auth, password: pwd}} ] }}\n\
               A {{ users: [ {{user: alice, password: a}} ] }}\n\
               B {{}}\n\
             }}\n\
             authorization {{\n\
               timeout: 1\n\
               auth_callout {{ issuer: {}, auth_users: [auth], account: AUTH{xkey} }}\n\
             }}\n",
            self.keys.issuer.public_key()
        )
    }

    /// Connects as the auth user and answers requests until the connection ends.
    async fn start(self: &Arc<Self>, url: &str) -> Result<async_nats::Client> {
        let opts = ConnectOptions::with_user_and_password("auth".into(), "pwd".into());
        let client = connect_with(url, opts).await?;
        let mut requests = client.subscribe(callout::SUBJECT).await?;
        sync(&client).await?;
        let (service, nc) = (self.clone(), client.clone());
        tokio::spawn(async move {
            while let Some(msg) = requests.next().await {
                let Some(reply) = msg.reply.clone() else {
                    continue;
                };
                match service.answer(&msg) {
                    Ok(Some(answer)) => {
                        let _ = nc.publish(reply, answer.into()).await;
                        let _ = nc.flush().await;
                    }
                    Ok(None) => {}
                    Err(e) => eprintln!("callout service: {e:#}"),
                }
            }
        });
        Ok(client)
    }

    /// Reads one request and makes its answer (`None`: stay silent).
    fn answer(&self, msg: &async_nats::Message) -> Result<Option<Vec<u8>>> {
        let req = self.keys.read(msg)?;
        let lock = || anyhow!("lock poisoned");
        self.sealed
            .lock()
            .map_err(|_| lock())?
            .push(req.server_xkey.is_some());
        self.seen
            .lock()
            .map_err(|_| lock())?
            .push(req.claims.clone());
        match decide(req.connect("user"), req.connect("pass")) {
            Decision::Silent => Ok(None),
            Decision::Answer(a) => self.keys.respond(&req, &a).map(Some),
            Decision::Forge => {
                let grant = Answer::Grant {
                    account: "B",
                    name: "forged",
                    publish: &[],
                    subscribe: &[],
                };
                let forger = KeyPair::new_account();
                self.keys
                    .respond_as(&forger, &forger, &req, &grant)
                    .map(Some)
            }
        }
    }

    fn users_seen(&self) -> Vec<String> {
        self.seen.lock().map_or_else(
            |_| Vec::new(),
            |seen| {
                seen.iter()
                    .map(|r| {
                        r["nats"]["connect_opts"]["user"]
                            .as_str()
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect()
            },
        )
    }
}

fn user(name: &str, pass: &str) -> ConnectOptions {
    ConnectOptions::with_user_and_password(name.into(), pass.into())
}

/// Connecting must fail with an authorization violation.
async fn refused(url: &str, opts: ConnectOptions, what: &str) -> Result<()> {
    let opts = opts.connection_timeout(Duration::from_secs(5));
    match within(Duration::from_secs(10), what, opts.connect(url)).await? {
        Ok(_) => bail!("{what}: connection unexpectedly succeeded"),
        Err(e) if e.kind() == ConnectErrorKind::AuthorizationViolation => Ok(()),
        Err(e) => bail!("{what}: expected an authorization violation, got {e}"),
    }
}

/// A server with the callout configured and its service answering.
async fn setup(encrypted: bool) -> Result<(TestServer, Arc<Service>, async_nats::Client)> {
    let service = Service::new(encrypted);
    let server = TestServer::with_config(&service.config())?;
    let nc = service.start(&server.url()).await?;
    Ok((server, service, nc))
}

#[tokio::test]
async fn admitted_users_land_in_the_granted_account_with_the_granted_permissions() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let (server, service, _svc) = setup(false).await?;
    let bob = connect_with(&server.url(), user("bob", "b")).await?;
    let carol = connect_with(&server.url(), user("carol", "c")).await?;

    // bob (account B) talks to himself on b.>; carol (account A) sees none of it.
    let mut bob_sub = bob.subscribe("b.>").await?;
    let mut carol_sub = carol.subscribe("b.>").await?;
    sync(&bob).await?;
    sync(&carol).await?;
    bob.publish("b.x", "hi".into()).await?;
    let m = next_msg(&mut bob_sub, "bob's own message in account B").await?;
    assert_eq!(&m.payload[..], b"hi");
    assert_no_msg(
        &mut carol_sub,
        Duration::from_millis(300),
        "account B traffic in account A",
    )
    .await?;

    // Who the server says they are: the user JWT's name, in the granted account.
    let info = within(
        Duration::from_secs(5),
        "$SYS.REQ.USER.INFO",
        carol.request("$SYS.REQ.USER.INFO", "".into()),
    )
    .await??;
    let info: Value = serde_json::from_slice(&info.payload)?;
    assert_eq!(info["data"]["account"], "A", "{info}");
    assert_eq!(info["data"]["user"], "granted", "{info}");

    // Outside the granted publish permission: the standard violation, the connection stays.
    let mut raw = RawConn::connect(server.port()).await?;
    raw.send(
        "CONNECT {\"user\":\"bob\",\"pass\":\"b\",\"verbose\":false,\"pedantic\":false,\
         \"protocol\":1}\r\nPUB c.x 2\r\nno\r\nPING\r\n",
    )
    .await?;
    raw.expect("-ERR 'Permissions Violation for Publish to \"c.x\"'\r\nPONG\r\n")
        .await?;

    // The request the service got: signed by the server (its id is the signing key), for
    // this CONNECT, with a fresh user key.
    let info = raw.info()?;
    let seen = service.seen.lock().map_err(|_| anyhow!("lock"))?.clone();
    let req = seen
        .iter()
        .find(|r| r["nats"]["connect_opts"]["user"] == "bob")
        .context("bob's request")?;
    assert_eq!(req["iss"], info["server_id"]);
    assert_eq!(req["nats"]["server_id"]["id"], info["server_id"]);
    assert_eq!(req["aud"], "nats-authorization-request");
    assert_eq!(req["sub"], json!(service.keys.issuer.public_key()));
    assert_eq!(req["nats"]["type"], "authorization_request");
    assert_eq!(req["nats"]["connect_opts"]["pass"], "b");
    assert_eq!(req["nats"]["client_info"]["host"], "127.0.0.1");
    assert!(req["nats"]["user_nkey"]
        .as_str()
        .is_some_and(|k| k.starts_with('U')));
    Ok(())
}

#[tokio::test]
async fn a_refused_user_gets_authorization_violation_and_the_reason_is_logged() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let (server, _service, _svc) = setup(false).await?;
    refused(&server.url(), user("mallory", "m"), "unknown user").await?;
    refused(&server.url(), ConnectOptions::new(), "no credentials").await?;
    // A configured user who is not an auth user is the service's to decide as well.
    refused(
        &server.url(),
        user("alice", "a"),
        "configured, not an auth user",
    )
    .await?;
    server
        .wait_for_log(
            "auth callout service returned an error: no such user",
            Duration::from_secs(5),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn auth_users_authenticate_as_configured_and_bypass_the_callout() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let (server, service, _svc) = setup(false).await?;
    // A second service connection, and a wrong password refused without asking.
    let again = connect_with(&server.url(), user("auth", "pwd")).await?;
    sync(&again).await?;
    refused(
        &server.url(),
        user("auth", "wrong"),
        "auth user, wrong password",
    )
    .await?;
    let seen = service.users_seen();
    assert!(
        !seen.iter().any(|u| u == "auth"),
        "auth users were sent to the callout: {seen:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_client_placed_in_the_callout_account_cannot_send_requests_itself() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let (server, _service, _svc) = setup(false).await?;
    let mut raw = RawConn::connect(server.port()).await?;
    raw.send(
        "CONNECT {\"user\":\"insider\",\"pass\":\"i\",\"verbose\":false,\
         \"pedantic\":false,\"protocol\":1}\r\nPUB $SYS.REQ.USER.AUTH 2\r\nhi\r\n\
         PUB elsewhere 2\r\nok\r\nPING\r\n",
    )
    .await?;
    raw.expect("-ERR 'Permissions Violation for Publish to \"$SYS.REQ.USER.AUTH\"'\r\nPONG\r\n")
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_silent_service_refuses_within_the_auth_timeout_without_delaying_others() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let (server, _service, _svc) = setup(false).await?;
    let url = server.url();
    let started = Instant::now();
    let silent = tokio::spawn(async move {
        let r = refused(&url, user("silent", "s"), "service never answers").await;
        (r, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bob = connect_with(&server.url(), user("bob", "b")).await?;
    sync(&bob).await?;
    let bob_done = started.elapsed();
    let (r, silent_took) = silent.await?;
    r?;
    // Admitted while the silent one still waited: not queued behind it.
    assert!(
        bob_done < silent_took,
        "another client's connect waited for the silent one: done at {bob_done:?}, \
         the silent one refused at {silent_took:?}"
    );
    assert!(
        silent_took >= Duration::from_millis(900) && silent_took < Duration::from_secs(3),
        "refused after {silent_took:?}, auth timeout is 1s"
    );
    server
        .wait_for_log(
            "authorization callout response not received in time",
            Duration::from_secs(5),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_response_signed_by_another_key_is_refused() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let (server, _service, _svc) = setup(false).await?;
    refused(
        &server.url(),
        user("forger", "f"),
        "response by a foreign key",
    )
    .await?;
    server
        .wait_for_log("not the issuer", Duration::from_secs(5))
        .await?;
    // The service still works for everyone else.
    let bob = connect_with(&server.url(), user("bob", "b")).await?;
    sync(&bob).await?;
    Ok(())
}

#[tokio::test]
async fn an_xkey_encrypted_exchange_admits_and_refuses() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let (server, service, _svc) = setup(true).await?;
    let raw = RawConn::connect(server.port()).await?;
    let server_xkey = raw.info()?["xkey"].as_str().map(str::to_string);
    let bob = connect_with(&server.url(), user("bob", "b")).await?;
    let mut sub = bob.subscribe("b.x").await?;
    sync(&bob).await?;
    bob.publish("b.x", "sealed".into()).await?;
    next_msg(
        &mut sub,
        "message of a user admitted through a sealed exchange",
    )
    .await?;
    refused(&server.url(), user("mallory", "m"), "sealed refusal").await?;

    let sealed = service.sealed.lock().map_err(|_| anyhow!("lock"))?.clone();
    assert_eq!(sealed, vec![true, true], "every request came sealed");
    let seen = service.seen.lock().map_err(|_| anyhow!("lock"))?.clone();
    assert_eq!(
        seen.first().map(|r| r["nats"]["server_id"]["xkey"].clone()),
        Some(json!(
            server_xkey.context("INFO announces the server's xkey")?
        ))
    );
    Ok(())
}

#[tokio::test]
async fn a_reload_may_not_remove_the_callout() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let (server, service, _svc) = setup(false).await?;
    // Without the callout, alice's password alone would admit her: refused, as in nats-server.
    let without = service
        .config()
        .lines()
        .filter(|l| !l.contains("auth_callout"))
        .collect::<Vec<_>>()
        .join("\n");
    crate::reload::rewrite_and_hup(
        &server,
        &without,
        "config reload not supported for auth_callout",
    )
    .await?;
    refused(
        &server.url(),
        user("alice", "a"),
        "still decided by the callout",
    )
    .await?;
    let bob = connect_with(&server.url(), user("bob", "b")).await?;
    sync(&bob).await?;
    Ok(())
}

/// Operator mode: keys and JWTs of an operator whose account AUTH hands its users to a
/// callout service, which may place them in AUTH or B (not C).
struct OperatorWorld {
    op: KeyPair,
    auth: KeyPair,
    b: KeyPair,
    c: KeyPair,
    service: KeyPair,
}

impl OperatorWorld {
    fn new() -> Self {
        OperatorWorld {
            op: KeyPair::new_operator(),
            auth: KeyPair::new_account(),
            b: KeyPair::new_account(),
            c: KeyPair::new_account(),
            service: KeyPair::new_user(),
        }
    }

    fn account_jwt(&self, acc: &KeyPair, name: &str, authorization: Value) -> Result<String> {
        sign(
            &self.op,
            json!({
                "sub": acc.public_key(), "name": name,
                "nats": {
                    "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1,
                               "exports": -1, "wildcards": true, "conn": -1, "leaf": -1},
                    "default_permissions": {"pub": {}, "sub": {}},
                    "authorization": authorization,
                    "type": "account", "version": 2
                }
            }),
        )
    }

    fn config(&self) -> Result<String> {
        let sys = KeyPair::new_account();
        let operator = sign(
            &self.op,
            json!({"sub": self.op.public_key(), "name": "OP",
                   "nats": {"type": "operator", "version": 2}}),
        )?;
        let authorization = json!({
            "auth_users": [self.service.public_key()],
            "allowed_accounts": [self.b.public_key()],
        });
        let mut preload = String::new();
        for (kp, name, authz) in [
            (&sys, "SYS", json!({})),
            (&self.auth, "AUTH", authorization),
            (&self.b, "B", json!({})),
            (&self.c, "C", json!({})),
        ] {
            let jwt = self.account_jwt(kp, name, authz)?;
            preload.push_str(&format!("  {}: \"{jwt}\"\n", kp.public_key()));
        }
        Ok(format!(
            "operator: \"{operator}\"\nsystem_account: {}\nresolver: MEMORY\n\
             resolver_preload: {{\n{preload}}}\n",
            sys.public_key()
        ))
    }

    /// Connect options for a user of AUTH: the service's own, or a bearer "sentinel" whose
    /// CONNECT only says who it wants to be by its client name.
    fn auth_user(&self, kp: &KeyPair, name: &str) -> Result<ConnectOptions> {
        let jwt = sign(
            &self.auth,
            json!({"sub": kp.public_key(), "name": name,
                   "nats": {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                            "bearer_token": true, "type": "user", "version": 2}}),
        )?;
        Ok(ConnectOptions::with_credentials(&creds(&jwt, kp)?)?.name(name))
    }
}

#[tokio::test]
async fn operator_mode_an_account_hands_its_users_to_its_callout_service() -> Result<()> {
    if is_nats_server() {
        return Ok(());
    }
    let w = Arc::new(OperatorWorld::new());
    let server = TestServer::with_config(&w.config()?)?;
    // The service: one of AUTH's auth_users, so admitted by its own JWT.
    let nc = connect_with(&server.url(), w.auth_user(&w.service, "service")?).await?;
    let mut requests = nc.subscribe(callout::SUBJECT).await?;
    sync(&nc).await?;
    let responder = Responder {
        issuer: KeyPair::from_seed(&w.auth.seed().map_err(|e| anyhow!("{e}"))?)
            .map_err(|e| anyhow!("{e}"))?,
        xkey: None,
    };
    let (world, svc) = (w.clone(), nc.clone());
    tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            let Some(reply) = msg.reply.clone() else {
                continue;
            };
            let answer = responder.read(&msg).and_then(|req| {
                let grant = |account| Answer::Grant {
                    account,
                    name: "granted",
                    publish: &["b.>", "_INBOX.>"],
                    subscribe: &[],
                };
                let auth = &responder.issuer;
                // In operator mode the user JWT's signer places it: B's key puts it in B.
                match req.connect("name") {
                    "bob" => responder.respond_as(auth, &world.b, &req, &grant("B")),
                    "carol" => responder.respond_as(auth, &world.c, &req, &grant("C")),
                    _ => responder.respond(&req, &Answer::Deny("who are you")),
                }
            });
            match answer {
                Ok(bytes) => {
                    let _ = svc.publish(reply, bytes.into()).await;
                }
                Err(e) => eprintln!("callout service: {e:#}"),
            }
        }
    });

    let bob = connect_with(&server.url(), w.auth_user(&KeyPair::new_user(), "bob")?).await?;
    let mut sub = bob.subscribe("b.x").await?;
    sync(&bob).await?;
    bob.publish("b.x", "in B".into()).await?;
    next_msg(&mut sub, "bob's message, placed in B").await?;
    let mut raw = RawConn::connect(server.port()).await?;
    let sentinel = KeyPair::new_user();
    let jwt = sign(
        &w.auth,
        json!({"sub": sentinel.public_key(), "name": "bob",
               "nats": {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                        "bearer_token": true, "type": "user", "version": 2}}),
    )?;
    raw.send(format!(
        "CONNECT {{\"jwt\":\"{jwt}\",\"name\":\"bob\",\"verbose\":false,\"pedantic\":false,\
         \"protocol\":1}}\r\nPUB c.x 2\r\nno\r\nPING\r\n"
    ))
    .await?;
    raw.expect("-ERR 'Permissions Violation for Publish to \"c.x\"'\r\nPONG\r\n")
        .await?;

    let eve = w.auth_user(&KeyPair::new_user(), "eve")?;
    refused(&server.url(), eve, "the service says no").await?;
    let carol = w.auth_user(&KeyPair::new_user(), "carol")?;
    refused(
        &server.url(),
        carol,
        "placed in C, which AUTH may not place in",
    )
    .await?;
    server
        .wait_for_log(
            "not permitted as valid account option",
            Duration::from_secs(5),
        )
        .await?;
    Ok(())
}
