//! The claims schema: the JSON of operator, account and user JWTs as serde types.
//!
//! The same conventions on every struct: `#[serde(default)]` makes a missing field its
//! default, and `deserialize_with = "null_default"` on each non-`Option` field does the
//! same for an explicit `null`, as Go's encoding/json does (`Option` reads `null` as `None`
//! by itself). `skip_serializing_if = "is_default"` marks the fields nats-io/jwt leaves out
//! when empty, and fields keep nats-io/jwt's order, so the JSON written here, and the `jti`
//! hash over it, is byte for byte the Go library's.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::JwtError;
use crate::auth::nkeys::KeyKind;
use crate::auth::permissions::{PermissionSpec, ResponsePermission, SubjectPermission};

/// "No limit" in JWT limits.
pub const NO_LIMIT: i64 = -1;
/// Revocation-list key that revokes every user issued at or before its time.
pub const ALL_USERS: &str = "*";

/// Treats JSON `null` as the default value.
pub(super) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `skip_serializing_if` of the fields left out when empty (nats-io/jwt's `omitempty`):
/// empty strings, lists and maps, 0, `false` and `None`.
pub(super) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The JWT header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Header {
    #[serde(deserialize_with = "null_default")]
    pub typ: String,
    #[serde(deserialize_with = "null_default")]
    pub alg: String,
}

/// Registered claims shared by every claim type (field order as nats-io/jwt,
/// so the `jti` hash is computed over the same JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClaimsData {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub aud: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub exp: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub jti: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub iat: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub iss: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub nbf: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub sub: String,
}

impl ClaimsData {
    /// Expiry / not-before check at unix time `now` (seconds), as
    /// `ClaimsData.Validate` in nats-io/jwt.
    pub fn validate_time(&self, now: i64) -> Result<(), JwtError> {
        if self.exp > 0 && now > self.exp {
            return Err(JwtError::Expired);
        }
        if self.nbf > 0 && self.nbf > now {
            return Err(JwtError::NotYetValid);
        }
        Ok(())
    }
}

/// `nats.type`, `nats.version`, `nats.tags`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenericFields {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub tags: Vec<String>,
    #[serde(rename = "type")]
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub claim_type: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub version: i64,
}

/// allow/deny lists of a JWT permission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Permission {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub allow: Vec<String>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub deny: Vec<String>,
}

impl Permission {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// `resp`: `max` messages, `ttl` in nanoseconds (Go `time.Duration`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResponsePermissionJwt {
    #[serde(deserialize_with = "null_default")]
    pub max: i64,
    #[serde(deserialize_with = "null_default")]
    pub ttl: i64,
}

/// `pub`, `sub`, `resp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JwtPermissions {
    #[serde(rename = "pub", deserialize_with = "null_default")]
    pub publish: Permission,
    #[serde(rename = "sub", deserialize_with = "null_default")]
    pub subscribe: Permission,
    #[serde(skip_serializing_if = "is_default")]
    pub resp: Option<ResponsePermissionJwt>,
}

impl JwtPermissions {
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && self.subscribe.is_empty() && self.resp.is_none()
    }

    /// As nats-server's `buildInternalNkeyUser`: `None` when nothing is set.
    pub fn to_spec(&self) -> Option<PermissionSpec> {
        if self.is_empty() {
            return None;
        }
        let conv = |p: &Permission| {
            (!p.is_empty()).then(|| SubjectPermission {
                allow: (!p.allow.is_empty()).then(|| p.allow.clone()),
                deny: (!p.deny.is_empty()).then(|| p.deny.clone()),
            })
        };
        let mut spec = PermissionSpec {
            publish: conv(&self.publish),
            subscribe: conv(&self.subscribe),
            response: self.resp.map(|r| ResponsePermission {
                max_msgs: r.max,
                expires: std::time::Duration::from_nanos(u64::try_from(r.ttl).unwrap_or(0)),
            }),
        };
        spec.normalize();
        Some(spec)
    }
}

/// `start`/`end` as `HH:MM:SS`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeRange {
    #[serde(deserialize_with = "null_default")]
    pub start: String,
    #[serde(deserialize_with = "null_default")]
    pub end: String,
}

/// Either a JSON array of CIDRs or one comma-separated string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CidrList(pub Vec<String>);

impl<'de> Deserialize<'de> for CidrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<String>),
            One(String),
            Null(()),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::List(l) => CidrList(l),
            Raw::One(s) => CidrList(
                s.split(',')
                    .map(|p| p.trim().to_ascii_lowercase())
                    .filter(|p| !p.is_empty())
                    .collect(),
            ),
            Raw::Null(()) => CidrList::default(),
        })
    }
}

/// `subs`, `data`, `payload` (-1 = no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsLimits {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub subs: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub data: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub payload: i64,
}

impl NatsLimits {
    pub const UNLIMITED: NatsLimits = NatsLimits {
        subs: NO_LIMIT,
        data: NO_LIMIT,
        payload: NO_LIMIT,
    };

    fn is_default_or_unlimited(&self) -> bool {
        [self.subs, self.data, self.payload]
            .iter()
            .all(|&v| v == 0 || v == NO_LIMIT)
    }
}

/// User limits: `src`, `times`, `times_location` and the NATS limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserLimits {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub src: CidrList,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub times: Vec<TimeRange>,
    #[serde(rename = "times_location")]
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub locale: String,
    #[serde(flatten)]
    pub nats: NatsLimits,
}

/// Permissions and limits of a user, also the template of a scoped signing key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserPermissionLimits {
    #[serde(flatten)]
    pub permissions: JwtPermissions,
    #[serde(flatten)]
    pub limits: UserLimits,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub bearer_token: bool,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub allowed_connection_types: Vec<String>,
}

impl UserPermissionLimits {
    /// What a user signed by a scoped key must look like: nothing set (NATS
    /// limits may be 0 or -1).
    pub fn is_empty(&self) -> bool {
        self.permissions.is_empty()
            && self.limits.src.0.is_empty()
            && self.limits.times.is_empty()
            && self.limits.locale.is_empty()
            && self.limits.nats.is_default_or_unlimited()
            && !self.bearer_token
            && self.allowed_connection_types.is_empty()
    }
}

/// `nats` of a user JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    #[serde(flatten)]
    pub limits: UserPermissionLimits,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub issuer_account: String,
    #[serde(flatten)]
    pub generic: GenericFields,
}

/// A user JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserClaims {
    #[serde(flatten)]
    pub claims: ClaimsData,
    #[serde(deserialize_with = "null_default")]
    pub nats: User,
}

/// A scoped signing key (`kind: "user_template"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserScope {
    #[serde(deserialize_with = "null_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_default")]
    pub key: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub role: String,
    #[serde(deserialize_with = "null_default")]
    pub template: UserPermissionLimits,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub description: String,
}

/// An account signing key: a bare public key or a scoped one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SigningKey {
    Plain(String),
    Scoped(Box<UserScope>),
}

impl SigningKey {
    pub fn key(&self) -> &str {
        match self {
            Self::Plain(k) => k,
            Self::Scoped(s) => &s.key,
        }
    }
}

/// Signing keys as an array of strings/scopes (nats-io/jwt), or as an
/// object `{key: null | scope}` (as the PyPI `nats-jwt` package writes them).
fn signing_keys_de<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SigningKey>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<SigningKey>),
        Map(BTreeMap<String, Option<UserScope>>),
        Null(()),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::List(l) => l,
        Raw::Map(m) => m
            .into_iter()
            .map(|(k, v)| match v {
                Some(mut s) => {
                    if s.key.is_empty() {
                        s.key = k;
                    }
                    SigningKey::Scoped(Box::new(s))
                }
                None => SigningKey::Plain(k),
            })
            .collect(),
        Raw::Null(()) => Vec::new(),
    })
}

/// Account limits (`nats.limits`); JetStream fields kept but not interpreted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperatorLimits {
    #[serde(flatten)]
    pub nats: NatsLimits,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub imports: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub exports: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub wildcards: bool,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub disallow_bearer: bool,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub conn: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub leaf: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub mem_storage: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub disk_storage: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub streams: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub consumer: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub tiered_limits: Option<serde_json::Value>,
}

/// Latency tracking of a service export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceLatency {
    #[serde(deserialize_with = "null_default")]
    pub sampling: serde_json::Value,
    #[serde(deserialize_with = "null_default")]
    pub results: String,
}

/// A stream or service export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Export {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub subject: String,
    /// `"stream"` or `"service"`.
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub export_type: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub token_req: bool,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub revocations: BTreeMap<String, i64>,
    /// `"Singleton"`, `"Stream"` or `"Chunked"`.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub response_type: String,
    /// Nanoseconds.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub response_threshold: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub service_latency: Option<ServiceLatency>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub account_token_position: i64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub advertise: bool,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub description: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub info_url: String,
}

/// A stream or service import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Import {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub subject: String,
    #[serde(deserialize_with = "null_default")]
    pub account: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub token: String,
    /// Deprecated in favour of `local_subject`.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub to: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub local_subject: String,
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub import_type: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub share: bool,
}

/// One destination of a subject mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeightedMapping {
    #[serde(deserialize_with = "null_default")]
    pub subject: String,
    #[serde(skip_serializing_if = "is_default")]
    pub weight: Option<u8>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub cluster: String,
}

/// `nats` of an account JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Account {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub imports: Vec<Import>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub exports: Vec<Export>,
    #[serde(deserialize_with = "null_default")]
    pub limits: OperatorLimits,
    #[serde(
        deserialize_with = "signing_keys_de",
        skip_serializing_if = "is_default"
    )]
    pub signing_keys: Vec<SigningKey>,
    /// User public key (or `*`) → unix time; users with `iat` ≤ it are revoked.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub revocations: BTreeMap<String, i64>,
    #[serde(deserialize_with = "null_default")]
    pub default_permissions: JwtPermissions,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub mappings: BTreeMap<String, Vec<WeightedMapping>>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub description: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub info_url: String,
    /// Auth callout for this account's users (nats-server 2.10).
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub authorization: ExternalAuthorization,
    #[serde(flatten)]
    pub generic: GenericFields,
}

/// `nats.authorization` of an account JWT: users of the account other than `auth_users`
/// (user public keys: the callout service's own) are decided by an auth callout service in
/// this account, which may place them in this account or one of `allowed_accounts` (`*`:
/// any). `xkey` seals the exchange. Enabled when `auth_users` is not empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalAuthorization {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub auth_users: Vec<String>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub allowed_accounts: Vec<String>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub xkey: String,
}

impl ExternalAuthorization {
    pub fn is_enabled(&self) -> bool {
        !self.auth_users.is_empty()
    }
}

/// An account JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountClaims {
    #[serde(flatten)]
    pub claims: ClaimsData,
    #[serde(deserialize_with = "null_default")]
    pub nats: Account,
}

impl AccountClaims {
    /// The account's signing key entry for `key`, if any.
    pub fn signing_key(&self, key: &str) -> Option<&SigningKey> {
        self.nats.signing_keys.iter().find(|k| k.key() == key)
    }

    /// True when `iss` may issue users of this account.
    pub fn has_issuer(&self, iss: &str) -> bool {
        iss == self.claims.sub || self.signing_key(iss).is_some()
    }

    /// jwt `RevocationList.IsRevoked`: the `*` entry or the user's entry is
    /// at or after the user JWT's `iat`.
    pub fn is_revoked(&self, user_key: &str, issued_at: i64) -> bool {
        let r = &self.nats.revocations;
        r.get(ALL_USERS).is_some_and(|&t| t >= issued_at)
            || r.get(user_key).is_some_and(|&t| t >= issued_at)
    }
}

/// `nats` of an operator JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Operator {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub signing_keys: Vec<String>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub account_server_url: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub operator_service_urls: Vec<String>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub system_account: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub assert_server_version: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub strict_signing_key_usage: bool,
    #[serde(flatten)]
    pub generic: GenericFields,
}

/// An operator JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperatorClaims {
    #[serde(flatten)]
    pub claims: ClaimsData,
    #[serde(deserialize_with = "null_default")]
    pub nats: Operator,
}

impl OperatorClaims {
    /// True when `key` is the operator's identity or one of its signing keys.
    pub fn is_signer(&self, key: &str) -> bool {
        key == self.claims.sub || self.nats.signing_keys.iter().any(|k| k == key)
    }
}

/// Common access to the claim types.
pub trait Claims: Serialize + DeserializeOwned {
    /// `nats.type`.
    const TYPE: &'static str;
    /// Role the issuer key must have.
    const ISSUER: KeyKind;
    /// Role the subject key must have.
    const SUBJECT: KeyKind;
    fn claims(&self) -> &ClaimsData;
    fn claims_mut(&mut self) -> &mut ClaimsData;
    fn generic_mut(&mut self) -> &mut GenericFields;
}

macro_rules! impl_claims {
    ($t:ty, $name:expr, $iss:expr, $sub:expr) => {
        impl Claims for $t {
            const TYPE: &'static str = $name;
            const ISSUER: KeyKind = $iss;
            const SUBJECT: KeyKind = $sub;
            fn claims(&self) -> &ClaimsData {
                &self.claims
            }
            fn claims_mut(&mut self) -> &mut ClaimsData {
                &mut self.claims
            }
            fn generic_mut(&mut self) -> &mut GenericFields {
                &mut self.nats.generic
            }
        }
    };
}
pub(super) use impl_claims;
impl_claims!(UserClaims, "user", KeyKind::Account, KeyKind::User);
impl_claims!(
    AccountClaims,
    "account",
    KeyKind::Operator,
    KeyKind::Account
);
impl_claims!(
    OperatorClaims,
    "operator",
    KeyKind::Operator,
    KeyKind::Operator
);

impl UserClaims {
    /// New user claims for `subject` with unlimited NATS limits (as
    /// `jwt.NewUserClaims`).
    pub fn new(subject: &str) -> Self {
        let mut c = Self::default();
        c.claims.sub = subject.to_string();
        c.nats.limits.limits.nats = NatsLimits::UNLIMITED;
        c
    }

    /// The account the user belongs to: `issuer_account`, else `iss`.
    pub fn account(&self) -> &str {
        if self.nats.issuer_account.is_empty() {
            &self.claims.iss
        } else {
            &self.nats.issuer_account
        }
    }
}

impl AccountClaims {
    /// New account claims with unlimited limits (as `jwt.NewAccountClaims`).
    pub fn new(subject: &str) -> Self {
        let mut c = Self::default();
        c.claims.sub = subject.to_string();
        c.nats.limits.nats = NatsLimits::UNLIMITED;
        c.nats.limits.imports = NO_LIMIT;
        c.nats.limits.exports = NO_LIMIT;
        c.nats.limits.wildcards = true;
        c.nats.limits.conn = NO_LIMIT;
        c.nats.limits.leaf = NO_LIMIT;
        c
    }
}

impl OperatorClaims {
    pub fn new(subject: &str) -> Self {
        let mut c = Self::default();
        c.claims.sub = subject.to_string();
        c
    }
}

/// Any of the three claim types, from [`decode_any`](super::decode_any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyClaims {
    Operator(OperatorClaims),
    /// Boxed: account claims are the largest by far.
    Account(Box<AccountClaims>),
    User(UserClaims),
}
