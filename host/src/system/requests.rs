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
//! - `$SYS.REQ.SERVER.<id>.RELOAD`, from system-account users: reloads the configuration (as
//!   nats-server 2.10); the reply says whether it worked.
//!
//! Each is an internal client subscribed in the right account ([`attach_system`] for the
//! system account, [`attach_account`] for every account), so these requests reach the server
//! however they reach the account, and a `>` subscriber sees them as in nats-server.

use crate::account::operator::{reevaluate, OperatorMode, Reevaluation, UpdateError};
use crate::account::Account;
use crate::auth::jwt::AccountClaims;
use crate::auth::permissions::Permissions;
use crate::client::{Client, CloseReason, Effects, Internal, Subscription};
use crate::path::Core;
use crate::proto::MsgRef;
use crate::server::Server;
use serde_json::json;
use std::sync::{Arc, Weak};

const CLAIMS_UPDATE: &str = "$SYS.REQ.CLAIMS.UPDATE";
/// What a revoked connection is told before it is closed (nats-server's text).
const REVOKED_ERR: &[u8] = b"-ERR 'User Authentication Revoked'\r\n";

const USER_INFO: &str = "$SYS.REQ.USER.INFO";
const SERVER_PING: &str = "$SYS.REQ.SERVER.PING";
const SERVER_PING_STATSZ: &str = "$SYS.REQ.SERVER.PING.STATSZ";

/// Which service an internal subscription is.
#[derive(Clone, Copy)]
enum Service {
    UserInfo,
    Statsz,
    Reload,
    Claims,
}

struct SysService {
    server: Weak<Server>,
    service: Service,
}

impl Internal for SysService {
    fn deliver(
        &self,
        _sub: &Subscription,
        msg: &MsgRef<'_>,
        from: Option<&Client>,
        fx: &mut Effects,
    ) -> bool {
        let Some(server) = self.server.upgrade() else {
            return false;
        };
        let response = match self.service {
            Service::UserInfo => {
                let Some(client) = from else { return false };
                let perms = client.granted_permissions();
                Some(super::events::user_info(&server, client, perms.as_deref()))
            }
            Service::Statsz => Some(super::events::statsz(&server)),
            Service::Reload => Some(reload(&server)),
            Service::Claims => {
                let Ok(subject) = std::str::from_utf8(msg.subject) else {
                    return false;
                };
                let directory = server.user_directory();
                let (Some(op), Some(request)) = (directory.operator(), parse(subject)) else {
                    return false;
                };
                match request {
                    Request::Update(expected) => Some(update(&server, op, expected, msg.payload)),
                    Request::Lookup(key) => op.lookup(key).map(String::into_bytes),
                }
            }
        };
        if let (Some(reply), Some(resp)) = (msg.reply, response) {
            fx.reply(reply, None, resp);
        }
        true
    }
}

fn subscribe(server: &Arc<Server>, account: &Account, service: Service, subjects: &[&str]) {
    let handler = Arc::new(SysService {
        server: Arc::downgrade(server),
        service,
    });
    let client = Arc::new(Client::new_internal(
        server.next_client_id(),
        "$SYS",
        handler,
    ));
    for subject in subjects {
        server.subscribe_internal(account, &client, subject);
    }
}

/// The services every account has: `$SYS.REQ.USER.INFO`.
pub fn attach_account(server: &Arc<Server>, account: &Account) {
    subscribe(server, account, Service::UserInfo, &[USER_INFO]);
}

/// The system account's services.
pub fn attach_system(server: &Arc<Server>) {
    let account = server.accounts.get_or_create(&server.system_account_name());
    subscribe(
        server,
        &account,
        Service::Statsz,
        &[SERVER_PING, SERVER_PING_STATSZ],
    );
    let reload = format!("$SYS.REQ.SERVER.{}.RELOAD", server.id);
    subscribe(server, &account, Service::Reload, &[&reload]);
    if server.user_directory().operator().is_some() {
        subscribe(
            server,
            &account,
            Service::Claims,
            &[
                CLAIMS_UPDATE,
                "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE",
                "$SYS.ACCOUNT.*.CLAIMS.UPDATE",
                "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP",
            ],
        );
    }
}

/// `$SYS.REQ.SERVER.<id>.RELOAD`: nats-server 2.10's reply shape, `data` on success and
/// `error` (code 500) when the new configuration was refused.
fn reload(server: &Server) -> Vec<u8> {
    let body = match server.reload_from_sources() {
        Ok(()) => json!({"server": server_info(server), "data": {}}),
        Err(e) => json!({
            "server": server_info(server),
            "error": {"code": 500, "description": e.to_string()},
        }),
    };
    serde_json::to_vec(&body).unwrap_or_default()
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

fn update(server: &Core, op: &OperatorMode, expected: Option<&str>, jwt: &[u8]) -> Vec<u8> {
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
pub fn apply_to_connections(server: &Core, claims: &AccountClaims) {
    let key = &claims.claims.sub;
    if let Some(account) = server.accounts.get(key) {
        account.set_limits(&crate::account::operator::jwt_account_limits(claims));
    }
    if let Some(js) = &server.jetstream {
        if let Some(acc) = js.accounts().into_iter().find(|a| a.name == *key) {
            acc.configure(crate::account::operator::jwt_jetstream_limits(claims));
        }
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
                crate::path::apply_permissions(server, &client, compiled);
            }
        }
    }
}

fn server_info(server: &Core) -> serde_json::Value {
    super::events::server_info(server)
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
