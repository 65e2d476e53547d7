//! The two claim types of an auth callout exchange (ADR-26; nats-io/jwt v2
//! `authorization_claims.go`): the request a server signs with its own NKey, and the
//! response the callout service signs with the configured issuer's account key.
//!
//! ```text
//! request  (iss: server N…, sub: issuer A…, aud: "nats-authorization-request")
//!   nats: { server_id: {name, host, id, version, xkey}, user_nkey: U…,
//!           client_info: {host, id, user, name, kind, type, nonce},
//!           connect_opts: {jwt, nkey, sig, auth_token, user, pass, name, lang, version, protocol},
//!           client_tls?: {version, cipher, certs, verified_chains},
//!           request_nonce, type: "authorization_request", version: 2 }
//! response (iss: issuer A…, sub: the request's user_nkey, aud: the server id)
//!   nats: { jwt: <user JWT> | error: "reason", issuer_account?,
//!           type: "authorization_response", version: 2 }
//! ```
//!
//! Same serde conventions as `claims.rs`: Go's `omitempty` fields are skipped when empty,
//! `null` reads as the default, and fields keep nats-io/jwt's order.

use serde::{Deserialize, Serialize};

use super::claims::{impl_claims, is_default, null_default};
use super::{Claims, ClaimsData, GenericFields};
use crate::auth::nkeys::KeyKind;

/// `nats.server_id`: the server asking.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerId {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub host: String,
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub version: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub cluster: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub tags: Vec<String>,
    /// The server's curve public key, when the request is encrypted.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub xkey: String,
}

/// `nats.client_info`: the connection asking to be admitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientInformation {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub host: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub id: u64,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub user: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub name_tag: String,
    /// `Client` for client connections.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub kind: String,
    /// `nats` for plain NATS clients.
    #[serde(rename = "type")]
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub client_type: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub mqtt_id: String,
    /// The INFO nonce, when the client signed it (CONNECT `sig`).
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub nonce: String,
}

/// `nats.connect_opts`: the credentials and identity fields of the client's CONNECT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectOptions {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub jwt: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub nkey: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub sig: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub auth_token: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub user: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub pass: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub lang: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub version: String,
    /// Always written (no `omitempty` in nats-io/jwt).
    #[serde(deserialize_with = "null_default")]
    pub protocol: i64,
}

/// `nats.client_tls`: the TLS session, PEM certificates included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientTls {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub version: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub cipher: String,
    /// Peer certificates that were not verified.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub certs: Vec<String>,
    /// Verified chains, the client's certificate first in each.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub verified_chains: Vec<Vec<String>>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub server_name: String,
}

/// `nats` of an authorization request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthorizationRequest {
    #[serde(rename = "server_id", deserialize_with = "null_default")]
    pub server: ServerId,
    /// The key the response and the user JWT in it must be for (fresh per request).
    #[serde(deserialize_with = "null_default")]
    pub user_nkey: String,
    #[serde(rename = "client_info", deserialize_with = "null_default")]
    pub client: ClientInformation,
    #[serde(rename = "connect_opts", deserialize_with = "null_default")]
    pub connect: ConnectOptions,
    #[serde(rename = "client_tls", skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub request_nonce: String,
    #[serde(flatten)]
    pub generic: GenericFields,
}

/// An authorization request JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthorizationRequestClaims {
    #[serde(flatten)]
    pub claims: ClaimsData,
    #[serde(deserialize_with = "null_default")]
    pub nats: AuthorizationRequest,
}

/// `nats` of an authorization response: a user JWT or an error, never both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthorizationResponse {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub jwt: String,
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub error: String,
    /// Set when the response was signed by a signing key of this account.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_default")]
    pub issuer_account: String,
    #[serde(flatten)]
    pub generic: GenericFields,
}

/// An authorization response JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthorizationResponseClaims {
    #[serde(flatten)]
    pub claims: ClaimsData,
    #[serde(deserialize_with = "null_default")]
    pub nats: AuthorizationResponse,
}

impl_claims!(
    AuthorizationRequestClaims,
    "authorization_request",
    KeyKind::Server,
    KeyKind::Account
);
impl_claims!(
    AuthorizationResponseClaims,
    "authorization_response",
    KeyKind::Account,
    KeyKind::User
);
