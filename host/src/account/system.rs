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
//! - `$SYS.REQ.SERVER.PING` (and `$SYS.REQ.SERVER.PING.STATSZ`), from system-account users in
//!   any mode: the reply is the STATSZ message (see `events`).
//! - `$SYS.REQ.USER.INFO`, from any user (nats-server 2.10 imports it into every account): the
//!   reply describes the requesting user (`events::user_info`).
//!
//! Hook: [`handle_request`] is called from the publish path (`Conn::on_pub`) for every
//! message; it returns at once unless the subject starts with `$SYS.` and the publisher is
//! in the system account.

use super::operator::{reevaluate, OperatorMode, Reevaluation, UpdateError};
use super::Account;
use crate::auth::jwt::AccountClaims;
use crate::auth::permissions::Permissions;
use crate::proto::errors;
use crate::server::{Client, CloseReason, Server};
use crate::server::{Queued, Subscription};
use bytes::BytesMut;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const CLAIMS_UPDATE: &str = "$SYS.REQ.CLAIMS.UPDATE";
/// What a revoked connection is told before it is closed (nats-server's text).
const REVOKED_ERR: &[u8] = b"-ERR 'User Authentication Revoked'\r\n";

const USER_INFO: &str = "$SYS.REQ.USER.INFO";
const SERVER_PING: &str = "$SYS.REQ.SERVER.PING";
const SERVER_PING_STATSZ: &str = "$SYS.REQ.SERVER.PING.STATSZ";

/// Who published a request: the client and its permissions (for `$SYS.REQ.USER.INFO`).
pub struct Requester<'a> {
    pub client: &'a Client,
    pub permissions: Option<&'a Permissions>,
}

/// Handles a message published in `account` on `subject` if it is a request to the server;
/// returns true when it was one (the response, if any, has been delivered to `reply` in the
/// publisher's account). The caller then must not route the message further (so that no
/// "no responders" status is sent for it).
pub fn handle_request(
    server: &Server,
    account: &Account,
    requester: Requester<'_>,
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
    if subject == USER_INFO {
        if let Some(reply) = reply {
            let resp = super::events::user_info(server, requester.client, requester.permissions);
            deliver(server, account, reply, &resp);
        }
        return true;
    }
    if subject == SERVER_PING || subject == SERVER_PING_STATSZ {
        if account.name != server.system_account_name() {
            return false;
        }
        if let Some(reply) = reply {
            deliver(server, account, reply, &super::events::statsz(server));
        }
        return true;
    }
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

/// Applies an account update to the account's live connections: revoked users, and users
/// whose JWT no longer validates against the new claims, are disconnected; the others get
/// their re-evaluated permissions (see [`reevaluate`]).
pub fn apply_to_connections(server: &Server, claims: &AccountClaims) {
    let key = &claims.claims.sub;
    if let Some(account) = server.accounts.get(key) {
        account.set_limits(&super::operator::jwt_account_limits(claims));
    }
    for client in server.clients() {
        let verdict = {
            let meta = client.meta.lock();
            match meta.jwt_user.as_ref() {
                Some(id) if id.account == *key => reevaluate(claims, id),
                _ => continue,
            }
        };
        match verdict {
            Reevaluation::Unchanged => {}
            Reevaluation::Revoked => {
                tracing::info!(
                    "{} - cid:{} - User Authentication Revoked",
                    client.addr,
                    client.id
                );
                client.queue_raw(REVOKED_ERR);
                client.mark_closed(CloseReason::AuthenticationViolation);
            }
            Reevaluation::Invalid(why) => {
                tracing::info!(
                    "{} - cid:{} - user no longer valid after account update: {why}",
                    client.addr,
                    client.id
                );
                client.mark_closed(CloseReason::AuthenticationViolation);
            }
            Reevaluation::Permissions(spec) => {
                let compiled = match spec.as_ref().map(Permissions::compile).transpose() {
                    Ok(p) => p.map(Arc::new),
                    Err(e) => {
                        tracing::warn!(
                            "{} - cid:{} - account update: invalid permissions: {e}",
                            client.addr,
                            client.id
                        );
                        client.mark_closed(CloseReason::AuthenticationViolation);
                        continue;
                    }
                };
                tracing::debug!(
                    "{} - cid:{} - permissions updated by an account update",
                    client.addr,
                    client.id
                );
                if let Some(id) = client.meta.lock().jwt_user.as_mut() {
                    id.permissions = spec;
                }
                apply_permissions(&client, compiled);
            }
        }
    }
}

/// Gives a live client new permissions: its reader task picks them up before its next
/// read batch; here its subscriptions are brought in line at once. As nats-server does on a
/// permissions change, subscriptions no longer allowed are removed and the client is told
/// `-ERR 'Permissions Violation for Subscription to "<subject>" (sid "<sid>")'`; those
/// still allowed get a delivery filter for the new rules' denied subjects.
fn apply_permissions(client: &Arc<Client>, perms: Option<Arc<Permissions>>) {
    let tracks = perms.as_ref().is_some_and(|p| p.response().is_some());
    client.tracks_replies.store(tracks, Ordering::Relaxed);
    client.set_permissions(perms.clone());
    let mut notices = BytesMut::new();
    for sub in client.subscriptions() {
        let (allowed, filter) = match &perms {
            None => (true, None),
            Some(p) => (
                p.subscribe_allowed(&sub.subject, sub.queue.as_deref()),
                p.needs_delivery_filter(&sub.subject).then(|| p.clone()),
            ),
        };
        if !allowed {
            remove_sub(&sub);
            notices.extend_from_slice(b"-ERR '");
            notices.extend_from_slice(errors::PERMISSIONS_VIOLATION_SUBSCRIPTION_PREFIX.as_bytes());
            errors::write_go_quoted(&mut notices, &sub.subject);
            notices.extend_from_slice(b" (sid ");
            errors::write_go_quoted(&mut notices, &sub.sid);
            notices.extend_from_slice(b")'\r\n");
            tracing::info!(
                "{} - cid:{} - Removed sub {:?} (sid {:?}) - not authorized",
                client.addr,
                client.id,
                String::from_utf8_lossy(&sub.subject),
                String::from_utf8_lossy(&sub.sid)
            );
            continue;
        }
        let same_filter = match (&sub.deny_filter, &filter) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same_filter {
            // The filter is fixed per subscription: swap in a copy with the new one.
            let fresh = Arc::new(Subscription {
                client: sub.client.clone(),
                account: sub.account.clone(),
                deny_filter: filter,
                subject: sub.subject.clone(),
                queue: sub.queue.clone(),
                sid: sub.sid.clone(),
                max: AtomicU64::new(sub.max()),
                delivered: AtomicU64::new(sub.delivered()),
            });
            {
                let mut subs = client.subs.lock();
                match subs.get(&sub.sid) {
                    Some(s) if Arc::ptr_eq(s, &sub) => {
                        subs.insert(fresh.sid.clone(), fresh.clone());
                    }
                    // Unsubscribed meanwhile.
                    _ => continue,
                }
            }
            sub.account.sublist.remove(&sub);
            sub.account.sublist.insert(fresh);
        }
    }
    if !notices.is_empty() {
        if let Queued::Yes { .. } = client.queue_raw(&notices) {
            client.wake_writer.notify_one();
        }
    }
}

/// Removes one subscription of a client (as `Server::remove_sub` does).
fn remove_sub(sub: &Arc<Subscription>) {
    {
        let mut subs = sub.client.subs.lock();
        if subs.get(&sub.sid).is_some_and(|s| Arc::ptr_eq(s, sub)) {
            subs.remove(&sub.sid);
        }
    }
    sub.account.sublist.remove(sub);
}

fn server_info(server: &Server) -> serde_json::Value {
    super::events::server_info(server)
}

/// Delivers a server response on `reply` in `account`, as if published there.
fn deliver(server: &Server, account: &Account, reply: &[u8], payload: &[u8]) {
    server.deliver_internal(account, reply, payload);
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
