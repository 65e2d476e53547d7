//! Auth callout (nats-server 2.10, ADR-26), the part without I/O: building the signed (and
//! optionally encrypted) authorization request for one CONNECT, and checking the service's
//! answer into a [`Grant`] or a refusal. The message path (`path/callout.rs`) sends the
//! request and waits for the answer.
//!
//! ```text
//!  server                                           callout service (in `account`)
//!    │  PUB $SYS.REQ.USER.AUTH  reply=$SYS._INBOX.…      │
//!    │  [Nats-Server-Xkey: X…]                            │
//!    │  request JWT (signed by the server's NKey),        │
//!    │  or xkv1-sealed to the service's xkey ───────────▶ │ decides
//!    │ ◀─────────── response JWT (signed by `issuer`),    │
//!    │              or xkv1-sealed to the server's xkey   │
//! ```
//!
//! Every check fails closed, as nats-server's: the response must be signed by the configured
//! issuer, be for this server (`aud` = server id) and for this request (`sub` = the fresh
//! `user_nkey`), be in its validity period, and carry either an error or a user JWT — itself
//! signed by the issuer, for the same `user_nkey`, naming the target account in `aud`.

use std::net::IpAddr;
use std::time::Duration;

use ::nkeys::XKey;

use super::jwt::{
    self, check_connection_type, check_src, check_times, connection_type, process_template,
    AccountClaims, AuthorizationRequestClaims, AuthorizationResponseClaims, ClientInformation,
    ClientTls, ConnectOptions, JwtError, ServerId, SigningKey, UserClaims, UserPermissionLimits,
};
use super::nkeys::KeyPair;
use super::permissions::PermissionSpec;
use crate::options::AuthCallout;

/// Where authorization requests are published, in the callout account.
pub const AUTH_CALLOUT_SUBJECT: &str = "$SYS.REQ.USER.AUTH";
/// The `aud` of every request.
pub const REQUEST_AUDIENCE: &str = "nats-authorization-request";
/// Header naming the server's curve key on an encrypted request.
pub const XKEY_HEADER: &str = "Nats-Server-Xkey";
/// A plain (not sealed) response is a JWT, whose header always encodes to this.
const JWT_PREFIX: &[u8] = b"eyJ";

/// Why a callout did not admit a client. The client sees only 'Authorization Violation';
/// these texts go to the log.
#[derive(Debug, thiserror::Error)]
pub enum CalloutError {
    #[error("cannot sign the authorization request: {0}")]
    Sign(JwtError),
    #[error("cannot encrypt the authorization request: {0}")]
    Encrypt(String),
    #[error("auth callout service gave no reason")]
    NoReason,
    #[error("cannot decrypt the auth callout response: {0}")]
    Decrypt(String),
    #[error("invalid auth callout response: {0}")]
    Response(JwtError),
    #[error("auth callout response is for user {got:?}, not {expected:?}")]
    WrongUser { expected: String, got: String },
    #[error("auth callout response is for server {got:?}, not this one ({expected:?})")]
    WrongServer { expected: String, got: String },
    #[error("auth callout response signed by {got:?}, not the issuer {expected:?}")]
    WrongResponseIssuer { expected: String, got: String },
    #[error("auth callout response must carry either a user JWT or an error")]
    NeitherJwtNorError,
    #[error("auth callout response carries both a user JWT and an error")]
    BothJwtAndError,
    #[error("auth callout service returned an error: {0}")]
    Denied(String),
    #[error("invalid user JWT in auth callout response: {0}")]
    UserJwt(JwtError),
    #[error("user JWT has issuer_account {0:?}, not allowed outside operator mode")]
    IssuerAccount(String),
    #[error("wrong issuer for the user JWT: expected {expected:?}, got {got:?}")]
    WrongIssuer { expected: String, got: String },
    #[error("user JWT names no account (aud)")]
    NoAccount,
    #[error("no valid account {0:?} for auth callout response")]
    UnknownAccount(String),
    #[error("invalid permissions in user JWT: {0}")]
    Permissions(String),
    #[error("authorization callout response not received in time")]
    Timeout,
    #[error("auth callout account {0:?} does not exist")]
    NoCalloutAccount(String),
    #[error("account {0:?} not permitted as valid account option for auth callout")]
    NotAllowedAccount(String),
    #[error("user JWT issuer {0:?} is not known to its account")]
    UnknownUserIssuer(String),
    #[error("user JWT has been revoked")]
    Revoked,
    #[error("user JWT issued by a scoped signing key: {0}")]
    Scope(JwtError),
}

/// The server's own keys: its NKey (whose public key is the server id, and which signs
/// requests) and its curve key (which seals requests and opens responses). Made at start,
/// never written anywhere.
pub struct ServerKeys {
    signing: KeyPair,
    xkey: XKey,
}

impl ServerKeys {
    pub fn generate() -> Self {
        ServerKeys {
            signing: KeyPair::new_server(),
            xkey: XKey::new(),
        }
    }

    /// The server id: the public NKey (`N…`), as nats-server's.
    pub fn id(&self) -> String {
        self.signing.public_key()
    }

    /// The curve public key (`X…`), sent in requests and INFO (`xkey`).
    pub fn xkey(&self) -> String {
        self.xkey.public_key()
    }
}

/// Who answers, who may sign, and where a user may be placed: the configuration's
/// `auth_callout`, or (operator mode) an account JWT's `authorization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The account the request is published in (its name, or its public key).
    pub account: String,
    /// The request's `sub`: the configured issuer, or the account's public key.
    pub subject: String,
    /// Keys whose signature on a response is accepted.
    pub signers: Vec<String>,
    /// The service's curve key: the exchange is sealed when set.
    pub xkey: Option<String>,
    pub placement: Placement,
}

/// Where a granted user is placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Configuration mode: the user JWT is signed by the issuer (no `issuer_account`) and
    /// names its account in `aud`.
    Audience,
    /// Operator mode: in the user JWT's account (`issuer_account`, else `iss`), which must be
    /// the callout account itself or one of `allowed` (`*`: any).
    IssuerAccount { allowed: Vec<String> },
}

impl Policy {
    /// Configuration mode.
    pub fn configured(cfg: &AuthCallout) -> Self {
        Policy {
            account: cfg.account.clone(),
            subject: cfg.issuer.clone(),
            signers: vec![cfg.issuer.clone()],
            xkey: cfg.xkey.clone(),
            placement: Placement::Audience,
        }
    }

    /// Operator mode: the account's `authorization`, when enabled.
    pub fn account(claims: &AccountClaims) -> Option<Self> {
        let auth = &claims.nats.authorization;
        if !auth.is_enabled() {
            return None;
        }
        let key = claims.claims.sub.clone();
        let signers = std::iter::once(key.clone())
            .chain(claims.nats.signing_keys.iter().map(|k| k.key().to_string()))
            .collect();
        Some(Policy {
            account: key.clone(),
            subject: key,
            signers,
            xkey: (!auth.xkey.is_empty()).then(|| auth.xkey.clone()),
            placement: Placement::IssuerAccount {
                allowed: auth.allowed_accounts.clone(),
            },
        })
    }

    /// Operator mode: whether `user` (a user public key) is one of the account's auth users.
    pub fn is_auth_user(claims: &AccountClaims, user: &str) -> bool {
        claims
            .nats
            .authorization
            .auth_users
            .iter()
            .any(|u| u == user)
    }
}

/// What the server knows about a CONNECT when it asks.
pub struct Asking {
    pub server: ServerId,
    pub client: ClientInformation,
    pub connect: ConnectOptions,
    pub tls: Option<ClientTls>,
    /// The auth timeout: the request expires after it.
    pub timeout: Duration,
    /// Unix seconds.
    pub now: i64,
}

/// A request ready to publish, and what its answer must match.
pub struct Request {
    pub payload: Vec<u8>,
    /// `Nats-Server-Xkey` when the payload is sealed.
    pub xkey_header: Option<String>,
    pub expect: Expectation,
}

/// What a response must match: the request's user key, this server, the issuer; and the
/// service's curve key when the exchange is encrypted.
pub struct Expectation {
    user_nkey: String,
    server_id: String,
    policy: Policy,
    service_xkey: Option<XKey>,
}

/// What the client is admitted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The target account (configuration mode: the user JWT's `aud`; operator mode: its
    /// issuer account, whose JWT [`Grant::in_account`] checks the grant against).
    pub account: String,
    /// The user JWT's `name` (logs and monitoring show it as the user), may be empty.
    pub name: String,
    pub permissions: Option<PermissionSpec>,
    pub max_subscriptions: Option<usize>,
    pub max_payload: Option<usize>,
    /// Unix seconds: the user JWT's `exp` or the end of its `times` window.
    pub expires_at: Option<i64>,
    /// The user JWT.
    pub user: UserClaims,
}

/// What the checks of the user JWT need to know about the connection.
pub struct ClientFacts {
    pub ip: Option<IpAddr>,
    /// Unix seconds.
    pub now: i64,
    pub local_utc_offset: i32,
}

/// Builds the request for one CONNECT: fresh user key, claims signed by the server, sealed
/// to the service when `xkey` is configured.
pub fn request(
    keys: &ServerKeys,
    policy: &Policy,
    mut asking: Asking,
) -> Result<Request, CalloutError> {
    let user_nkey = KeyPair::new_user().public_key();
    let service_xkey = match &policy.xkey {
        Some(x) => {
            Some(XKey::from_public_key(x).map_err(|e| CalloutError::Encrypt(e.to_string()))?)
        }
        None => None,
    };
    // The id is the key that signs: a service may verify the one with the other.
    asking.server.id = keys.id();
    if service_xkey.is_some() {
        asking.server.xkey = keys.xkey();
    }
    let mut claims = AuthorizationRequestClaims::default();
    claims.claims.sub = policy.subject.clone();
    claims.claims.aud = REQUEST_AUDIENCE.to_string();
    claims.claims.iat = asking.now;
    let timeout = i64::try_from(asking.timeout.as_secs().max(1)).unwrap_or(i64::MAX);
    claims.claims.exp = asking.now.saturating_add(timeout);
    claims.nats.server = asking.server;
    claims.nats.user_nkey = user_nkey.clone();
    claims.nats.client = asking.client;
    claims.nats.connect = asking.connect;
    claims.nats.tls = asking.tls;
    claims.nats.request_nonce = super::nkeys::generate_nonce();
    let token = jwt::encode(&mut claims, &keys.signing).map_err(CalloutError::Sign)?;
    let (payload, xkey_header) = match &service_xkey {
        Some(to) => (
            keys.xkey
                .seal(token.as_bytes(), to)
                .map_err(|e| CalloutError::Encrypt(e.to_string()))?,
            Some(keys.xkey()),
        ),
        None => (token.into_bytes(), None),
    };
    Ok(Request {
        payload,
        xkey_header,
        expect: Expectation {
            user_nkey,
            server_id: keys.id(),
            policy: policy.clone(),
            service_xkey,
        },
    })
}

impl Expectation {
    /// The user key the answer must be for.
    pub fn user_nkey(&self) -> &str {
        &self.user_nkey
    }

    /// Checks the service's answer (the message payload) into a grant.
    pub fn check(
        &self,
        keys: &ServerKeys,
        payload: &[u8],
        client: &ClientFacts,
    ) -> Result<Grant, CalloutError> {
        if payload.is_empty() {
            return Err(CalloutError::NoReason);
        }
        // An encrypted exchange may still be answered in the clear (nats-server accepts it);
        // only a payload that is not a JWT is opened.
        let opened;
        let token = match &self.service_xkey {
            Some(from) if !payload.starts_with(JWT_PREFIX) => {
                opened = keys
                    .xkey
                    .open(payload, from)
                    .map_err(|e| CalloutError::Decrypt(e.to_string()))?;
                &opened[..]
            }
            _ => payload,
        };
        let token = std::str::from_utf8(token)
            .map_err(|_| CalloutError::Response(JwtError::Base64("token")))?;
        let response: AuthorizationResponseClaims =
            jwt::decode(token).map_err(CalloutError::Response)?;
        self.check_response(&response, client.now)?;
        let user = jwt::decode_user(&response.nats.jwt).map_err(CalloutError::UserJwt)?;
        self.check_user(&user, client)
    }

    fn check_response(
        &self,
        r: &AuthorizationResponseClaims,
        now: i64,
    ) -> Result<(), CalloutError> {
        r.claims
            .validate_time(now)
            .map_err(CalloutError::Response)?;
        if r.claims.sub != self.user_nkey {
            return Err(CalloutError::WrongUser {
                expected: self.user_nkey.clone(),
                got: r.claims.sub.clone(),
            });
        }
        if r.claims.aud != self.server_id {
            return Err(CalloutError::WrongServer {
                expected: self.server_id.clone(),
                got: r.claims.aud.clone(),
            });
        }
        let issuer_account = &r.nats.issuer_account;
        if !self.policy.signers.contains(&r.claims.iss)
            || !(issuer_account.is_empty() || *issuer_account == self.policy.subject)
        {
            return Err(CalloutError::WrongResponseIssuer {
                expected: self.policy.subject.clone(),
                got: r.claims.iss.clone(),
            });
        }
        match (r.nats.jwt.is_empty(), r.nats.error.is_empty()) {
            (false, false) => Err(CalloutError::BothJwtAndError),
            (true, true) => Err(CalloutError::NeitherJwtNorError),
            (true, false) => Err(CalloutError::Denied(r.nats.error.clone())),
            (false, true) => Ok(()),
        }
    }

    fn check_user(&self, user: &UserClaims, client: &ClientFacts) -> Result<Grant, CalloutError> {
        let uc = &user.claims;
        uc.validate_time(client.now)
            .map_err(CalloutError::UserJwt)?;
        if uc.sub != self.user_nkey {
            return Err(CalloutError::WrongUser {
                expected: self.user_nkey.clone(),
                got: uc.sub.clone(),
            });
        }
        let account = match &self.policy.placement {
            // Configuration mode has no signing keys: the issuer itself signs every user.
            Placement::Audience => {
                if !user.nats.issuer_account.is_empty() {
                    return Err(CalloutError::IssuerAccount(
                        user.nats.issuer_account.clone(),
                    ));
                }
                if uc.iss != self.policy.subject {
                    return Err(CalloutError::WrongIssuer {
                        expected: self.policy.subject.clone(),
                        got: uc.iss.clone(),
                    });
                }
                if uc.aud.is_empty() {
                    return Err(CalloutError::NoAccount);
                }
                uc.aud.clone()
            }
            Placement::IssuerAccount { allowed } => {
                let account = user.account().to_string();
                let permitted = account == self.policy.subject
                    || allowed.iter().any(|a| a == "*" || *a == account);
                if !permitted {
                    return Err(CalloutError::NotAllowedAccount(account));
                }
                account
            }
        };
        let lim = &user.nats.limits;
        check_connection_type(&lim.allowed_connection_types, connection_type::STANDARD)
            .map_err(CalloutError::UserJwt)?;
        check_src(&lim.limits.src.0, client.ip).map_err(CalloutError::UserJwt)?;
        let window_end = check_times(&lim.limits, client.now, client.local_utc_offset)
            .map_err(CalloutError::UserJwt)?;
        let expires_at = match ((uc.exp > 0).then_some(uc.exp), window_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // A limit is set by a positive value: -1 is jwt's "no limit", and 0 is what a
        // service that never mentions limits sends.
        let limit = |v: i64| usize::try_from(v).ok().filter(|&n| n > 0);
        Ok(Grant {
            account,
            name: uc.name.clone(),
            permissions: lim.permissions.to_spec(),
            max_subscriptions: limit(lim.limits.nats.subs),
            max_payload: limit(lim.limits.nats.payload),
            expires_at,
            user: user.clone(),
        })
    }
}

impl Grant {
    /// Operator mode: checks the grant against its account's JWT, as for any user JWT — the
    /// issuer must be the account or one of its signing keys, the user not revoked; a scoped
    /// signing key's template replaces the user's permissions and limits; without
    /// permissions of its own the user gets the account's default permissions.
    pub fn in_account(mut self, claims: &AccountClaims) -> Result<Grant, CalloutError> {
        let uc = &self.user.claims;
        if !claims.has_issuer(&uc.iss) {
            return Err(CalloutError::UnknownUserIssuer(uc.iss.clone()));
        }
        if claims.is_revoked(&uc.sub, uc.iat) {
            return Err(CalloutError::Revoked);
        }
        let lim: UserPermissionLimits = match claims.signing_key(&uc.iss) {
            Some(SigningKey::Scoped(scope)) => {
                if !self.user.nats.limits.is_empty() {
                    return Err(CalloutError::Scope(JwtError::ScopedUserHasPermissions));
                }
                process_template(&scope.template, &self.user, claims)
                    .map_err(CalloutError::Scope)?
            }
            _ => self.user.nats.limits.clone(),
        };
        self.permissions = lim
            .permissions
            .to_spec()
            .or_else(|| claims.nats.default_permissions.to_spec());
        let limit = |v: i64| usize::try_from(v).ok().filter(|&n| n > 0);
        self.max_subscriptions = limit(lim.limits.nats.subs);
        self.max_payload = limit(lim.limits.nats.payload);
        Ok(self)
    }
}

#[cfg(test)]
mod tests;
