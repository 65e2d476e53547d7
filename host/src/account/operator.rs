//! Operator mode (decentralized JWT auth): the trusted operators, the account resolver, and
//! the authentication of users that present a user JWT signed (via its account) by a trusted
//! operator.
//!
//! A client lands in the account named by the account's public key. Account JWTs come from
//! the resolver: `MEMORY` (from `resolver_preload`, plus live updates kept in memory) or a
//! directory (`<dir>/<ACCOUNT_KEY>.jwt`, as nats-server's full resolver stores them).

use super::users::{AuthError, AuthOutcome, ClientLimits, Credentials};
use crate::auth::callout::Policy;
use crate::auth::jwt::{
    self, AccountClaims, ClientInfo, JwtError, OperatorClaims, SigningKey, UserScope,
};
use crate::auth::nkeys::{self, KeyKind};
use crate::auth::permissions::{PermissionSpec, Permissions};
use crate::options::{Options, ResolverSpec};
use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use crate::auth::identity::JwtIdentity;

/// What an account update means for one live connection of that account.
#[derive(Debug, PartialEq)]
pub enum Reevaluation {
    /// The user is revoked or its issuer is no longer one of the account's keys.
    Revoked,
    /// The user JWT no longer validates against the account (e.g. its signing key's scope
    /// changed): the connection is closed.
    Invalid(String),
    /// Still valid with the same permissions.
    Unchanged,
    /// Still valid with new permissions (`None`: unrestricted).
    Permissions(Option<PermissionSpec>),
}

/// Re-checks a live connection's user against its account's updated claims.
pub fn reevaluate(claims: &AccountClaims, id: &JwtIdentity) -> Reevaluation {
    if identity_revoked(claims, id) {
        return Reevaluation::Revoked;
    }
    if scope_of(claims, &id.issuer) != id.scope {
        return Reevaluation::Invalid("signing key scope changed".into());
    }
    let mut info = ClientInfo::new(jwt::now_unix());
    info.ip = id.ip;
    info.nonce = id.nonce.as_deref();
    info.sig = id.sig.as_deref();
    match jwt::validate_user(claims, &id.claims, &info) {
        Err(e) => Reevaluation::Invalid(e.to_string()),
        Ok(authorized) => {
            let perms = authorized.permissions.filter(|p| !p.is_empty());
            if perms == id.permissions {
                Reevaluation::Unchanged
            } else {
                Reevaluation::Permissions(perms)
            }
        }
    }
}

/// The scope of `issuer` when it is one of the account's scoped signing keys.
fn scope_of(claims: &AccountClaims, issuer: &str) -> Option<UserScope> {
    match claims.signing_key(issuer) {
        Some(SigningKey::Scoped(scope)) => Some((**scope).clone()),
        _ => None,
    }
}

/// Where account JWTs live.
enum Store {
    Memory(RwLock<FxHashMap<String, String>>),
    Dir {
        dir: PathBuf,
        allow_delete: bool,
        /// Serializes writers (readers only see whole files: writes go through a rename).
        write: parking_lot::Mutex<()>,
    },
}

/// Why operator mode cannot start from the options (start-up or reload stops).
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("operator JWT: {0}")]
    Decode(#[source] JwtError),
    /// The operator JWT (subject `operator`) does not validate.
    #[error("operator {operator}: {source}")]
    Invalid {
        operator: String,
        #[source]
        source: JwtError,
    },
    #[error("operators require an account resolver to be configured")]
    NoResolver,
    #[error("resolver dir {}: {source}", dir.display())]
    ResolverDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("preload account error for {account:?}: {source}")]
    Preload {
        account: String,
        #[source]
        source: JwtStoreError,
    },
}

/// Why the JWT of an account could not be looked up, or did not validate.
#[derive(Debug, thiserror::Error)]
pub enum AccountClaimsError {
    #[error("account {0} not found")]
    NotFound(String),
    #[error("account JWT: {source}")]
    Decode {
        account: String,
        #[source]
        source: JwtError,
    },
    /// The JWT stored under `account` has another subject.
    #[error("account JWT stored for {account} is for {subject}")]
    Mismatch { account: String, subject: String },
    #[error("account {account}: {source}")]
    Invalid {
        account: String,
        #[source]
        source: JwtError,
    },
}

/// Why an account JWT was not stored.
#[derive(Debug, thiserror::Error)]
pub enum JwtStoreError {
    #[error("{0:?} is not a valid public account nkey")]
    InvalidKey(String),
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why an account JWT update was refused; `message` is nats-server's wording.
#[derive(Debug)]
pub struct UpdateError {
    pub account: String,
    pub message: &'static str,
    pub error: String,
}

pub struct OperatorMode {
    operators: Vec<OperatorClaims>,
    /// The system account's public key, if any.
    system_account: Option<String>,
    store: Store,
}

impl OperatorMode {
    /// `None` unless operators are configured.
    pub fn from_options(opts: &Options) -> Result<Option<Arc<OperatorMode>>, OperatorError> {
        if opts.operator.jwts.is_empty() {
            return Ok(None);
        }
        let now = jwt::now_unix();
        let mut operators = Vec::with_capacity(opts.operator.jwts.len());
        for token in &opts.operator.jwts {
            let op = jwt::decode_operator(token).map_err(OperatorError::Decode)?;
            jwt::validate_operator(&op, now).map_err(|source| OperatorError::Invalid {
                operator: op.claims.sub.clone(),
                source,
            })?;
            operators.push(op);
        }
        let system_account = if opts.accounts.system_account != super::SYSTEM_ACCOUNT {
            Some(opts.accounts.system_account.clone())
        } else {
            operators
                .iter()
                .map(|o| o.nats.system_account.clone())
                .find(|s| !s.is_empty())
        };
        let store = match &opts.operator.resolver {
            None => return Err(OperatorError::NoResolver),
            Some(ResolverSpec::Memory) => Store::Memory(RwLock::new(FxHashMap::default())),
            Some(ResolverSpec::Dir {
                dir, allow_delete, ..
            }) => {
                std::fs::create_dir_all(dir).map_err(|source| OperatorError::ResolverDir {
                    dir: dir.clone(),
                    source,
                })?;
                Store::Dir {
                    dir: dir.clone(),
                    allow_delete: *allow_delete,
                    write: parking_lot::Mutex::new(()),
                }
            }
        };
        let mode = OperatorMode {
            operators,
            system_account,
            store,
        };
        for (key, token) in &opts.operator.preload {
            // A preload never replaces a newer JWT the directory already has.
            mode.save_if_newer(key, token)
                .map_err(|source| OperatorError::Preload {
                    account: key.clone(),
                    source,
                })?;
        }
        Ok(Some(Arc::new(mode)))
    }

    pub fn system_account(&self) -> Option<&str> {
        self.system_account.as_deref()
    }

    pub fn operators(&self) -> &[OperatorClaims] {
        &self.operators
    }

    /// The stored JWT of `account`, as stored.
    pub fn lookup(&self, account: &str) -> Option<String> {
        if !nkeys::is_valid_public_key(account, KeyKind::Account) {
            return None;
        }
        match &self.store {
            Store::Memory(m) => m.read().get(account).cloned(),
            Store::Dir { dir, .. } => std::fs::read_to_string(dir.join(format!("{account}.jwt")))
                .ok()
                .map(|s| s.trim().to_string()),
        }
    }

    /// The account's claims, decoded and checked against the trusted operators.
    pub fn account_claims(&self, account: &str) -> Result<AccountClaims, AccountClaimsError> {
        let token = self
            .lookup(account)
            .ok_or_else(|| AccountClaimsError::NotFound(account.to_string()))?;
        let claims = jwt::decode_account(&token).map_err(|source| AccountClaimsError::Decode {
            account: account.to_string(),
            source,
        })?;
        if claims.claims.sub != account {
            return Err(AccountClaimsError::Mismatch {
                account: account.to_string(),
                subject: claims.claims.sub,
            });
        }
        jwt::validate_account(&self.operators, &claims, jwt::now_unix()).map_err(|source| {
            AccountClaimsError::Invalid {
                account: account.to_string(),
                source,
            }
        })?;
        Ok(claims)
    }

    /// Authenticates a CONNECT carrying a user JWT (and the nonce signature).
    pub fn authenticate(&self, c: &Credentials<'_>) -> Result<AuthOutcome, AuthError> {
        let Some(token) = c.jwt else {
            return Err(AuthError::Jwt("no user JWT in CONNECT".into()));
        };
        let user = jwt::decode_user(token).map_err(|e| AuthError::Jwt(format!("user JWT: {e}")))?;
        let account_key = user.account().to_string();
        let account = self.account_claims(&account_key)?;
        let mut info = ClientInfo::new(jwt::now_unix());
        info.ip = c.ip;
        info.nonce = c.nonce;
        info.sig = c.sig;
        let authorized = jwt::validate_user(&account, &user, &info)
            .map_err(|e| AuthError::Jwt(format!("user {}: {e}", user.claims.sub)))?;
        let spec = authorized.permissions.clone().filter(|p| !p.is_empty());
        let permissions = match &authorized.permissions {
            Some(spec) if !spec.is_empty() => {
                Some(Arc::new(Permissions::compile(spec).map_err(|e| {
                    AuthError::Jwt(format!("user JWT permissions: {e}"))
                })?))
            }
            _ => None,
        };
        let expires_at = authorized.expires_at.map(|secs| {
            u64::try_from(secs)
                .unwrap_or(0)
                .saturating_mul(1_000_000_000)
        });
        let callout =
            Policy::account(&account).filter(|_| !Policy::is_auth_user(&account, &authorized.user));
        Ok(AuthOutcome {
            account_limits: Some(jwt_account_limits(&account)),
            client_limits: ClientLimits::default(),
            account: authorized.account.clone(),
            user: Some(authorized.user.clone()),
            permissions,
            expires_at,
            jwt_user: Some(JwtIdentity {
                user: authorized.user,
                account: authorized.account,
                issuer: user.claims.iss.clone(),
                issued_at: user.claims.iat,
                scope: scope_of(&account, &user.claims.iss),
                claims: Arc::new(user),
                ip: c.ip,
                nonce: c.nonce.map(str::to_string),
                sig: c.sig.map(str::to_string),
                permissions: spec,
                callout,
            }),
        })
    }

    /// Applies an account JWT pushed by a system-account user. `expected` is the account
    /// named in the subject (`$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE`), if any. Returns the
    /// account's new claims.
    pub fn update(
        &self,
        token: &[u8],
        expected: Option<&str>,
    ) -> Result<AccountClaims, UpdateError> {
        let na = || expected.unwrap_or("n/a").to_string();
        let text = std::str::from_utf8(token)
            .map(str::trim)
            .map_err(|_| UpdateError {
                account: na(),
                message: "jwt update resulted in error",
                error: "JWT is not valid UTF-8".into(),
            })?;
        if text.is_empty() {
            return Err(UpdateError {
                account: na(),
                message: "jwt update error",
                error: "request body is empty".into(),
            });
        }
        let claims = jwt::decode_account(text).map_err(|e| UpdateError {
            account: na(),
            message: "jwt update resulted in error",
            error: e.to_string(),
        })?;
        let key = claims.claims.sub.clone();
        if let Some(want) = expected {
            if want != key {
                return Err(UpdateError {
                    account: want.to_string(),
                    message: "jwt update resulted in error",
                    error: "subject does not match jwt content".into(),
                });
            }
        }
        if let Err(e) = jwt::validate_account(&self.operators, &claims, jwt::now_unix()) {
            let message = match e {
                jwt::JwtError::StrictSigningKey => "jwt update resulted in error",
                _ => "jwt validation failed",
            };
            return Err(UpdateError {
                account: key,
                message,
                error: e.to_string(),
            });
        }
        self.save_if_newer(&key, text).map_err(|e| UpdateError {
            account: key.clone(),
            message: "jwt update resulted in error",
            error: e.to_string(),
        })?;
        Ok(claims)
    }

    /// Stores `token` for `key` unless the stored JWT is the same or newer (by `iat`), as
    /// nats-server's directory store does.
    fn save_if_newer(&self, key: &str, token: &str) -> Result<(), JwtStoreError> {
        if !nkeys::is_valid_public_key(key, KeyKind::Account) {
            return Err(JwtStoreError::InvalidKey(key.to_string()));
        }
        let new = jwt::decode_account(token)?;
        let keep_existing = |old: Option<String>| {
            old.and_then(|o| jwt::decode_account(&o).ok())
                .is_some_and(|o| o.claims.jti == new.claims.jti || o.claims.iat > new.claims.iat)
        };
        match &self.store {
            Store::Memory(m) => {
                let mut m = m.write();
                if !keep_existing(m.get(key).cloned()) {
                    m.insert(key.to_string(), token.to_string());
                }
                Ok(())
            }
            Store::Dir { dir, write, .. } => {
                let _guard = write.lock();
                if keep_existing(self.lookup(key)) {
                    return Ok(());
                }
                let path = dir.join(format!("{key}.jwt"));
                let tmp = dir.join(format!(".{key}.jwt.tmp"));
                std::fs::write(&tmp, token)
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(|source| JwtStoreError::Write { path, source })
            }
        }
    }

    /// `allow_delete` of a directory resolver.
    pub fn allows_delete(&self) -> bool {
        matches!(
            self.store,
            Store::Dir {
                allow_delete: true,
                ..
            }
        )
    }
}

/// True when an account update ends a live connection of this identity: the user is revoked
/// or its issuer is no longer one of the account's keys.
pub fn identity_revoked(claims: &AccountClaims, id: &JwtIdentity) -> bool {
    claims.is_revoked(&id.user, id.issued_at) || !claims.has_issuer(&id.issuer)
}

/// An account JWT's `conn`, `subs` and `payload` limits (-1, and 0 as natrium reads it: none).
pub fn jwt_account_limits(claims: &AccountClaims) -> crate::options::AccountLimits {
    let l = &claims.nats.limits;
    let v = |n: i64| (n > 0).then_some(n);
    crate::options::AccountLimits {
        max_connections: v(l.conn),
        max_subscriptions: v(l.nats.subs),
        max_payload: v(l.nats.payload),
        max_data: v(l.nats.data),
    }
}

/// What an account JWT grants of JetStream: `None` when nothing (nats-server enables JetStream
/// for an operator-mode account only when its JWT sets storage limits), else the limits and
/// whether they came from `tiered_limits` (its `R1` tier, the only one a single server has).
pub fn jwt_jetstream_limits(
    claims: &AccountClaims,
) -> Option<(crate::options::JetStreamLimits, bool)> {
    let l = &claims.nats.limits;
    let num = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_i64);
    // Counts: absent, 0 or -1 mean no limit; storage: 0 means none at all.
    let count = |v: &serde_json::Value, k: &str| num(v, k).filter(|n| *n > 0).unwrap_or(-1);
    let from = |v: &serde_json::Value| crate::options::JetStreamLimits {
        max_memory: num(v, "mem_storage").unwrap_or(0),
        max_storage: num(v, "disk_storage").unwrap_or(0),
        max_streams: count(v, "streams"),
        max_consumers: count(v, "consumer"),
        max_ack_pending: count(v, "max_ack_pending"),
        memory_max_stream_bytes: count(v, "mem_max_stream_bytes"),
        storage_max_stream_bytes: count(v, "disk_max_stream_bytes"),
        max_bytes_required: v
            .get("max_bytes_required")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
    };
    if let Some(tier) = l.tiered_limits.as_ref().and_then(|t| t.get("R1")) {
        let limits = from(tier);
        return (limits.max_memory != 0 || limits.max_storage != 0).then_some((limits, true));
    }
    let flat = serde_json::to_value(l).ok()?;
    let limits = from(&flat);
    (limits.max_memory != 0 || limits.max_storage != 0).then_some((limits, false))
}

/// The public NKeys whose signature a plugin binding's `signed_by` accepts: the named key; the
/// trusted operators' identity and signing keys; or the binding's account (its public key, as
/// accounts are named in operator mode) and its signing keys, read from its JWT in
/// `resolver_preload` or the resolver directory and checked against the operators.
pub fn plugin_signers(
    opts: &Options,
    signer: &crate::options::Signer,
    accounts: &[String],
) -> Result<Vec<String>, String> {
    use crate::options::Signer;
    if let Signer::Key(k) = signer {
        return Ok(vec![k.clone()]);
    }
    let which = if *signer == Signer::Operator {
        "operator"
    } else {
        "account"
    };
    if opts.operator.jwts.is_empty() {
        return Err(format!(
            "signed_by: {which} needs operator mode (an operator JWT and account JWTs); \
             name the signer's public key instead to check a signature without it"
        ));
    }
    let now = jwt::now_unix();
    let mut operators = Vec::with_capacity(opts.operator.jwts.len());
    for token in &opts.operator.jwts {
        let op = jwt::decode_operator(token).map_err(|e| format!("operator JWT: {e}"))?;
        jwt::validate_operator(&op, now).map_err(|e| format!("operator {}: {e}", op.claims.sub))?;
        operators.push(op);
    }
    if *signer == Signer::Operator {
        return Ok(operators
            .iter()
            .flat_map(|o| std::iter::once(&o.claims.sub).chain(&o.nats.signing_keys))
            .cloned()
            .collect());
    }
    let [account] = accounts else {
        return Err("signed_by: account needs exactly one account in the binding".into());
    };
    if !nkeys::is_valid_public_key(account, KeyKind::Account) {
        return Err(format!(
            "signed_by: account needs the binding's account as its public NKey (A…), not \
             \"{account}\""
        ));
    }
    let token = opts
        .operator
        .preload
        .iter()
        .find(|(k, _)| k == account)
        .map(|(_, t)| t.clone())
        .or_else(|| match &opts.operator.resolver {
            Some(ResolverSpec::Dir { dir, .. }) => {
                std::fs::read_to_string(dir.join(format!("{account}.jwt")))
                    .ok()
                    .map(|s| s.trim().to_string())
            }
            _ => None,
        })
        .ok_or_else(|| {
            format!(
                "signed_by: account: no JWT for account {account} (in resolver_preload or the \
                 resolver directory)"
            )
        })?;
    let claims = jwt::decode_account(&token).map_err(|e| format!("account {account}: {e}"))?;
    if claims.claims.sub != account.as_str() {
        return Err(format!(
            "account {account}: its JWT is for {}",
            claims.claims.sub
        ));
    }
    jwt::validate_account(&operators, &claims, now)
        .map_err(|e| format!("account {account}: {e}"))?;
    Ok(std::iter::once(account.clone())
        .chain(claims.nats.signing_keys.iter().map(|k| k.key().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::UserClaims;
    use crate::options::OperatorOptions;
    use ::nkeys::KeyPair;

    struct Chain {
        op: KeyPair,
        acc: KeyPair,
        opts: Options,
    }

    fn chain() -> Chain {
        let op = KeyPair::new_operator();
        let acc = KeyPair::new_account();
        let mut oc = OperatorClaims::new(&op.public_key());
        let op_jwt = jwt::encode(&mut oc, &op).expect("operator jwt");
        let mut ac = AccountClaims::new(&acc.public_key());
        let acc_jwt = jwt::encode(&mut ac, &op).expect("account jwt");
        let opts = Options {
            operator: OperatorOptions {
                jwts: vec![op_jwt],
                resolver: Some(ResolverSpec::Memory),
                preload: vec![(acc.public_key(), acc_jwt)],
            },
            ..Default::default()
        };
        Chain { op, acc, opts }
    }

    fn user_jwt(acc: &KeyPair, user: &KeyPair, edit: impl FnOnce(&mut UserClaims)) -> String {
        let mut uc = UserClaims::new(&user.public_key());
        edit(&mut uc);
        jwt::encode(&mut uc, acc).expect("user jwt")
    }

    fn connect(mode: &OperatorMode, token: &str, user: &KeyPair) -> Result<AuthOutcome, AuthError> {
        let nonce = nkeys::generate_nonce();
        let sig = nkeys::sign_nonce(user, &nonce).expect("sign");
        mode.authenticate(&Credentials {
            jwt: Some(token),
            sig: Some(&sig),
            nonce: Some(&nonce),
            ..Default::default()
        })
    }

    #[test]
    fn user_lands_in_its_account_and_revocation_applies() {
        let c = chain();
        let mode = OperatorMode::from_options(&c.opts)
            .expect("valid")
            .expect("operator mode");
        let user = KeyPair::new_user();
        let token = user_jwt(&c.acc, &user, |_| {});
        let out = connect(&mode, &token, &user).expect("authenticated");
        assert_eq!(out.account, c.acc.public_key());
        let id = out.jwt_user.expect("identity");

        // Wrong signature (another user's seed) is refused.
        assert!(connect(&mode, &token, &KeyPair::new_user()).is_err());
        // Expired.
        let expired = user_jwt(&c.acc, &user, |u| u.claims.exp = jwt::now_unix() - 10);
        assert!(connect(&mode, &expired, &user).is_err());

        // A revocation pushed as an update.
        let mut ac = AccountClaims::new(&c.acc.public_key());
        ac.nats
            .revocations
            .insert(user.public_key(), jwt::now_unix() + 5);
        ac.claims.iat = jwt::now_unix() + 1;
        let updated = jwt::encode(&mut ac, &c.op).expect("account jwt");
        let claims = mode
            .update(updated.as_bytes(), Some(&c.acc.public_key()))
            .expect("update applied");
        assert!(identity_revoked(&claims, &id));
        assert!(connect(&mode, &token, &user).is_err());

        // An account JWT signed by a stranger is refused.
        let mut bad = AccountClaims::new(&c.acc.public_key());
        let stranger = jwt::encode(&mut bad, &KeyPair::new_operator()).expect("jwt");
        assert!(mode.update(stranger.as_bytes(), None).is_err());
        assert!(mode
            .update(
                updated.as_bytes(),
                Some(&KeyPair::new_account().public_key())
            )
            .is_err());
    }

    #[test]
    fn reevaluation_follows_default_permissions() {
        let c = chain();
        let mode = OperatorMode::from_options(&c.opts)
            .expect("valid")
            .expect("operator mode");
        let user = KeyPair::new_user();
        let token = user_jwt(&c.acc, &user, |_| {});
        let id = connect(&mode, &token, &user)
            .expect("authenticated")
            .jwt_user
            .expect("identity");
        assert_eq!(id.permissions, None);

        let mut ac = AccountClaims::new(&c.acc.public_key());
        assert_eq!(reevaluate(&ac, &id), Reevaluation::Unchanged);
        ac.nats.default_permissions.publish.allow = vec!["a.>".into()];
        let Reevaluation::Permissions(Some(spec)) = reevaluate(&ac, &id) else {
            panic!("expected new permissions");
        };
        assert_eq!(
            spec.publish.and_then(|p| p.allow),
            Some(vec!["a.>".to_string()])
        );

        // The account expired: the user no longer validates.
        ac.claims.exp = jwt::now_unix() - 10;
        assert!(matches!(reevaluate(&ac, &id), Reevaluation::Invalid(_)));
        // Revoked.
        let mut ac = AccountClaims::new(&c.acc.public_key());
        ac.nats
            .revocations
            .insert(user.public_key(), jwt::now_unix() + 5);
        assert_eq!(reevaluate(&ac, &id), Reevaluation::Revoked);
    }
}
