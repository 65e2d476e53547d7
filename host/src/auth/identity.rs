//! Who a JWT-authenticated connection is: kept on the client (`client::ConnMeta`) so that
//! account updates and reloads can re-check it.

use crate::auth::jwt::{UserClaims, UserScope};
use crate::auth::permissions::PermissionSpec;
use std::sync::Arc;

/// Who a JWT-authenticated connection is, kept so that account updates can re-check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    /// User public key (the user JWT's `sub`).
    pub user: String,
    /// Account public key.
    pub account: String,
    /// The key that signed the user JWT (the account or one of its signing keys).
    pub issuer: String,
    /// The user JWT's `iat`, for revocations.
    pub issued_at: i64,
    /// The decoded user JWT, re-validated when the account is updated.
    pub claims: Arc<UserClaims>,
    /// The scope of the signing key that issued the user JWT at connect time (`None`: the
    /// account key or an unscoped signing key). A changed scope ends the connection, as in
    /// nats-server.
    pub scope: Option<UserScope>,
    /// What the connection presented, to re-run `validate_user`.
    pub ip: Option<std::net::IpAddr>,
    pub nonce: Option<String>,
    pub sig: Option<String>,
    /// The effective permissions granted at connect time or by the last update.
    pub permissions: Option<PermissionSpec>,
    /// The account's auth callout, when it has one and this user is not one of its
    /// `auth_users`: the connection is then the callout's to decide.
    pub callout: Option<crate::auth::callout::Policy>,
}
