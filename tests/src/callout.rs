//! The protocol side of an auth callout service (nats-server 2.10, ADR-26), for the end-to-end
//! tests and the `callout-service` example: read a request (opened first when it came sealed,
//! header `Nats-Server-Xkey`), and write the signed (and, when asked, sealed) response. What
//! to decide is the caller's. JWTs come from [`crate::jwt`], not from natrium's code.

use anyhow::{anyhow, Context, Result};
use nkeys::{KeyPair, XKey};
use serde_json::{json, Value};

use crate::jwt::{sign, verified_claims};

/// Subject the server publishes requests on (in the callout account).
pub const SUBJECT: &str = "$SYS.REQ.USER.AUTH";
/// Header naming the server's curve key on a sealed request.
pub const XKEY_HEADER: &str = "Nats-Server-Xkey";

/// One request as read: its claims and, when it came sealed, the server's curve key.
pub struct Request {
    pub claims: Value,
    pub server_xkey: Option<String>,
}

impl Request {
    /// The CONNECT field `name` (`user`, `pass`, `auth_token`, …), empty when absent.
    pub fn connect(&self, name: &str) -> &str {
        self.claims["nats"]["connect_opts"][name]
            .as_str()
            .unwrap_or("")
    }
}

/// What a service answers.
pub enum Answer<'a> {
    /// Admit into `account` under `name`; publish/subscribe allow lists (empty: no limit).
    Grant {
        account: &'a str,
        name: &'a str,
        publish: &'a [&'a str],
        subscribe: &'a [&'a str],
    },
    /// Refuse, with the reason the server logs.
    Deny(&'a str),
}

/// A service's keys: the issuer account key that signs, and the optional curve key.
pub struct Responder {
    pub issuer: KeyPair,
    pub xkey: Option<XKey>,
}

impl Responder {
    /// Reads a request message (verifying the server's signature).
    pub fn read(&self, msg: &async_nats::Message) -> Result<Request> {
        let server_xkey = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(XKEY_HEADER))
            .map(|v| v.as_str().to_string());
        let token = match (&self.xkey, &server_xkey) {
            (Some(mine), Some(theirs)) => {
                let from = XKey::from_public_key(theirs).map_err(|e| anyhow!("{e}"))?;
                let opened = mine.open(&msg.payload, &from).map_err(|e| anyhow!("{e}"))?;
                String::from_utf8(opened)?
            }
            _ => String::from_utf8(msg.payload.to_vec())?,
        };
        let claims = verified_claims(&token).context("authorization request")?;
        Ok(Request {
            claims,
            server_xkey,
        })
    }

    /// The response to `req`, signed by the issuer.
    pub fn respond(&self, req: &Request, answer: &Answer<'_>) -> Result<Vec<u8>> {
        self.respond_as(&self.issuer, &self.issuer, req, answer)
    }

    /// The response to `req` signed by `signer`, a user JWT in it by `user_signer` (operator
    /// mode: the target account's key; tests also sign with wrong keys).
    pub fn respond_as(
        &self,
        signer: &KeyPair,
        user_signer: &KeyPair,
        req: &Request,
        answer: &Answer<'_>,
    ) -> Result<Vec<u8>> {
        let nats = &req.claims["nats"];
        let user_nkey = nats["user_nkey"].as_str().context("user_nkey")?;
        let server_id = nats["server_id"]["id"].as_str().context("server_id.id")?;
        let mut body = match answer {
            Answer::Deny(why) => json!({ "error": why }),
            Answer::Grant {
                account,
                name,
                publish,
                subscribe,
            } => {
                let allow = |l: &[&str]| {
                    if l.is_empty() {
                        json!({})
                    } else {
                        json!({ "allow": l })
                    }
                };
                let user = json!({
                    "sub": user_nkey, "aud": account, "name": name,
                    "nats": {
                        "pub": allow(publish), "sub": allow(subscribe),
                        "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2
                    }
                });
                json!({ "jwt": sign(user_signer, user)? })
            }
        };
        body["type"] = json!("authorization_response");
        body["version"] = json!(2);
        let response = sign(
            signer,
            json!({ "sub": user_nkey, "aud": server_id, "nats": body }),
        )?;
        match (&self.xkey, &req.server_xkey) {
            (Some(mine), Some(theirs)) => {
                let to = XKey::from_public_key(theirs).map_err(|e| anyhow!("{e}"))?;
                mine.seal(response.as_bytes(), &to)
                    .map_err(|e| anyhow!("{e}"))
            }
            _ => Ok(response.into_bytes()),
        }
    }
}
