//! Requests to the server itself, published by system-account users in operator mode:
//!
//! - `$SYS.REQ.CLAIMS.UPDATE` and `$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE` (also the older
//!   `$SYS.ACCOUNT.<key>.CLAIMS.UPDATE`): the payload is an account JWT signed by a trusted
//!   operator (or one of its signing keys); it is stored by the resolver and applied to live
//!   connections (revoked users are disconnected). The reply is nats-server's JSON:
//!   `{"server":{..},"data":{"account":..,"code":200,"message":"jwt updated"}}` or
//!   `{"server":{..},"error":{"account":..,"code":500,"description":..}}`.
//! - `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP`: the reply is the stored account JWT (nothing
//!   when there is none, as in nats-server).
//!
//! Hook: [`handle_request`] is called from the publish path (`Conn::on_pub`) for every
//! message; it returns at once unless the subject starts with `$SYS.` and the publisher is
//! in the system account.

use super::operator::{identity_revoked, OperatorMode, UpdateError};
use super::Account;
use crate::auth::jwt::AccountClaims;
use crate::server::{CloseReason, Server};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const CLAIMS_UPDATE: &str = "$SYS.REQ.CLAIMS.UPDATE";
/// What a revoked connection is told before it is closed (nats-server's text).
const REVOKED_ERR: &[u8] = b"-ERR 'User Authentication Revoked'\r\n";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Handles a message published in `account` on `subject` if it is a request to the server;
/// returns true when it was one (the response, if any, has been delivered to `reply` in the
/// publisher's account). The caller then must not route the message further (so that no
/// "no responders" status is sent for it).
pub fn handle_request(
    server: &Server,
    account: &Account,
    subject: &[u8],
    reply: Option<&[u8]>,
    payload: &[u8],
) -> bool {
    if !subject.starts_with(b"$SYS.") {
        return false;
    }
    let Ok(subject) = std::str::from_utf8(subject) else {
        return false;
    };
    let directory = server.user_directory();
    let Some(op) = directory.operator() else {
        return false;
    };
    if op.system_account() != Some(account.name.as_str()) {
        return false;
    }
    let Some(request) = parse(subject) else {
        return false;
    };
    let response = match request {
        Request::Update(expected) => Some(update(server, op, expected, payload)),
        Request::Lookup(key) => op.lookup(key).map(String::into_bytes),
    };
    if let (Some(reply), Some(resp)) = (reply, response) {
        deliver(server, account, reply, &resp);
    }
    true
}

enum Request<'a> {
    /// Claims update, for the account named in the subject if any.
    Update(Option<&'a str>),
    Lookup(&'a str),
}

fn parse(subject: &str) -> Option<Request<'_>> {
    if subject == CLAIMS_UPDATE {
        return Some(Request::Update(None));
    }
    let t: Vec<&str> = subject.split('.').collect();
    match t.as_slice() {
        ["$SYS", "REQ", "ACCOUNT", key, "CLAIMS", "UPDATE"]
        | ["$SYS", "ACCOUNT", key, "CLAIMS", "UPDATE"] => Some(Request::Update(Some(key))),
        ["$SYS", "REQ", "ACCOUNT", key, "CLAIMS", "LOOKUP"] => Some(Request::Lookup(key)),
        _ => None,
    }
}

fn update(server: &Server, op: &OperatorMode, expected: Option<&str>, jwt: &[u8]) -> Vec<u8> {
    let body = match op.update(jwt, expected) {
        Ok(claims) => {
            let key = claims.claims.sub.clone();
            tracing::info!("jwt updated - {key}");
            apply_to_connections(server, &claims);
            json!({
                "server": server_info(server),
                "data": {"account": key, "code": 200, "message": "jwt updated"},
            })
        }
        Err(UpdateError {
            account,
            message,
            error,
        }) => {
            tracing::error!("{message} - {account}: {error}");
            json!({
                "server": server_info(server),
                "error": {
                    "account": account,
                    "code": 500,
                    "description": format!("{message} - {error}"),
                },
            })
        }
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Disconnects the live connections an account update revokes.
pub fn apply_to_connections(server: &Server, claims: &AccountClaims) {
    let key = &claims.claims.sub;
    for client in server.clients() {
        let revoked = {
            let meta = client.meta.lock();
            meta.jwt_user
                .as_ref()
                .is_some_and(|id| id.account == *key && identity_revoked(claims, id))
        };
        if revoked {
            tracing::info!(
                "{} - cid:{} - User Authentication Revoked",
                client.addr,
                client.id
            );
            client.queue_raw(REVOKED_ERR);
            client.mark_closed(CloseReason::AuthenticationViolation);
        }
    }
}

fn server_info(server: &Server) -> serde_json::Value {
    let opts = server.options();
    json!({
        "name": server.name,
        "host": opts.host,
        "id": server.id,
        "ver": crate::server::PROTOCOL_VERSION,
        "seq": SEQ.fetch_add(1, Ordering::Relaxed) + 1,
        "jetstream": false,
        "time": crate::timefmt::rfc3339(std::time::SystemTime::now()),
    })
}

/// Delivers a server response on `reply` in `account`, as if published there.
fn deliver(server: &Server, account: &Account, reply: &[u8], payload: &[u8]) {
    let max_pending = usize::try_from(server.options().max_pending).unwrap_or(usize::MAX);
    let result = account.sublist.matches(reply);
    let targets = result
        .psubs
        .iter()
        .chain(result.qsubs.iter().filter_map(|g| g.first()));
    for sub in targets {
        let mut expired = false;
        match sub
            .client
            .queue_msg(sub, reply, None, None, payload, max_pending, &mut expired)
        {
            crate::server::Queued::Yes { .. } => sub.client.wake_writer.notify_one(),
            crate::server::Queued::Closed => {}
            crate::server::Queued::SlowConsumer => {
                server.slow_consumer(&sub.client, CloseReason::SlowConsumerPendingBytes);
            }
        }
        if expired {
            remove_sub(sub);
        }
    }
}

fn remove_sub(sub: &Arc<crate::server::Subscription>) {
    {
        let mut subs = sub.client.subs.lock();
        if subs.get(&sub.sid).is_some_and(|s| Arc::ptr_eq(s, sub)) {
            subs.remove(&sub.sid);
        }
    }
    sub.account.sublist.remove(sub);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert!(matches!(parse(CLAIMS_UPDATE), Some(Request::Update(None))));
        assert!(matches!(
            parse("$SYS.REQ.ACCOUNT.AB.CLAIMS.UPDATE"),
            Some(Request::Update(Some("AB")))
        ));
        assert!(matches!(
            parse("$SYS.ACCOUNT.AB.CLAIMS.UPDATE"),
            Some(Request::Update(Some("AB")))
        ));
        assert!(matches!(
            parse("$SYS.REQ.ACCOUNT.AB.CLAIMS.LOOKUP"),
            Some(Request::Lookup("AB"))
        ));
        assert!(parse("$SYS.REQ.SERVER.PING").is_none());
    }
}
