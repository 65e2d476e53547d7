//! Token encoding: decode and verify, encode and sign.
//!
//! A token is `base64url(header) "." base64url(claims) "." base64url(sig)`
//! (all base64url without padding). The header is
//! `{"typ":"JWT","alg":"ed25519-nkey"}`; the signature is the ed25519
//! signature by the claims' `iss` key over `header "." claims` (the encoded
//! text). Version-1 claims (a top-level `type`, header alg `ed25519`) were
//! signed over the claims part only; both are accepted when decoding, as the
//! Go library does. Only v2 tokens are written.
//!
//! Decoding ([`decode`]) checks the format, the signature (against the token's
//! own `iss`), the claim type and the key roles of `iss`/`sub`. Whether the
//! issuer is *trusted* is decided by [`validate_account`](super::validate_account)
//! and [`validate_user`](super::validate_user).

use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use serde::Deserialize;
use sha2::{Digest, Sha512_256};

use super::claims::null_default;
use super::{AccountClaims, AnyClaims, Claims, ClaimsData, Header, JwtError};
use super::{OperatorClaims, UserClaims};
use crate::auth::nkeys::{self as nk, KeyPair};

/// Header `alg` of v2 tokens.
pub const ALGORITHM_NKEY: &str = "ed25519-nkey";
/// Header `alg` of v1 tokens.
pub const ALGORITHM_NKEY_OLD: &str = "ed25519";
/// Header `typ`.
pub const TOKEN_TYPE_JWT: &str = "JWT";
/// The `nats.version` this module writes.
pub const LIB_VERSION: i64 = 2;

fn json_err(part: &'static str) -> impl Fn(serde_json::Error) -> JwtError {
    move |e| JwtError::Json {
        part,
        msg: e.to_string(),
    }
}

/// Minimal view to find the type and version, as jwt's `identifier`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Identifier {
    #[serde(rename = "type", deserialize_with = "null_default")]
    v1_type: String,
    nats: Option<IdentifierNats>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IdentifierNats {
    #[serde(rename = "type")]
    claim_type: Option<String>,
    version: Option<i64>,
}

struct Parts<'a> {
    header: Header,
    payload: Vec<u8>,
    version: i64,
    kind: String,
    signed_v2: &'a str,
    signed_v1: &'a str,
    sig: Vec<u8>,
}

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    let token = token.trim();
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(JwtError::Malformed);
    };
    let hb = BASE64URL_NOPAD
        .decode(h.as_bytes())
        .map_err(|_| JwtError::Base64("header"))?;
    let header: Header = serde_json::from_slice(&hb).map_err(json_err("header"))?;
    if !header.typ.eq_ignore_ascii_case(TOKEN_TYPE_JWT) {
        return Err(JwtError::UnsupportedType(header.typ));
    }
    let alg = header.alg.to_ascii_lowercase();
    if alg != ALGORITHM_NKEY && alg != ALGORITHM_NKEY_OLD {
        return Err(JwtError::UnsupportedAlgorithm(header.alg));
    }
    let payload = BASE64URL_NOPAD
        .decode(p.as_bytes())
        .map_err(|_| JwtError::Base64("claims"))?;
    let sig = BASE64URL_NOPAD
        .decode(s.as_bytes())
        .map_err(|_| JwtError::Base64("signature"))?;
    let id: Identifier = serde_json::from_slice(&payload).map_err(json_err("claims"))?;
    let nats = id.nats.unwrap_or_default();
    let (version, kind) = if !id.v1_type.is_empty() {
        (1, id.v1_type)
    } else {
        (
            nats.version.unwrap_or(0),
            nats.claim_type.unwrap_or_default(),
        )
    };
    if version > LIB_VERSION {
        return Err(JwtError::NewerVersion);
    }
    Ok(Parts {
        header,
        payload,
        version,
        kind,
        signed_v2: &token[..h.len() + 1 + p.len()],
        signed_v1: p,
        sig,
    })
}

fn finish<C: Claims>(parts: &Parts<'_>) -> Result<C, JwtError> {
    if parts.kind != C::TYPE {
        return Err(JwtError::WrongClaimType {
            expected: C::TYPE,
            got: parts.kind.clone(),
        });
    }
    let claims: C = serde_json::from_slice(&parts.payload).map_err(json_err("claims"))?;
    let cd = claims.claims();
    if nk::validate_public_key(&cd.iss, C::ISSUER).is_err() {
        return Err(JwtError::InvalidIssuer(cd.iss.clone()));
    }
    let signed = if parts.version <= 1 {
        parts.signed_v1
    } else {
        parts.signed_v2
    };
    nk::verify_signature(&cd.iss, signed.as_bytes(), &parts.sig)
        .map_err(|_| JwtError::BadSignature)?;
    if nk::validate_public_key(&cd.sub, C::SUBJECT).is_err() {
        return Err(JwtError::InvalidSubject(cd.sub.clone()));
    }
    Ok(claims)
}

/// Decodes a token of claim type `C`, verifying its signature against its
/// own `iss` and the key roles. Does not check times or trust.
pub fn decode<C: Claims>(token: &str) -> Result<C, JwtError> {
    finish(&split(token)?)
}

/// Decodes and returns the header too.
pub fn decode_with_header<C: Claims>(token: &str) -> Result<(Header, C), JwtError> {
    let parts = split(token)?;
    let c = finish(&parts)?;
    Ok((parts.header, c))
}

pub fn decode_user(token: &str) -> Result<UserClaims, JwtError> {
    decode(token)
}
pub fn decode_account(token: &str) -> Result<AccountClaims, JwtError> {
    decode(token)
}
pub fn decode_operator(token: &str) -> Result<OperatorClaims, JwtError> {
    decode(token)
}

/// Decodes an operator, account or user token.
pub fn decode_any(token: &str) -> Result<AnyClaims, JwtError> {
    let parts = split(token)?;
    match parts.kind.as_str() {
        "operator" => finish(&parts).map(AnyClaims::Operator),
        "account" => finish(&parts).map(|a| AnyClaims::Account(Box::new(a))),
        "user" => finish(&parts).map(AnyClaims::User),
        other => Err(JwtError::WrongClaimType {
            expected: "operator|account|user",
            got: other.into(),
        }),
    }
}

/// Current unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// jti: base32 (no padding) of SHA-512/256 of the claims data JSON with an
/// empty `jti`.
fn claims_hash(cd: &ClaimsData) -> Result<String, JwtError> {
    let mut c = cd.clone();
    c.jti.clear();
    let j = serde_json::to_vec(&c).map_err(|e| JwtError::Signing(e.to_string()))?;
    Ok(BASE32_NOPAD.encode(&Sha512_256::digest(&j)))
}

/// Signs `claims` with `kp` (v2 format): sets `iss`, `iat` (now, unless
/// already set), `nats.type`, `nats.version` and `jti`.
pub fn encode<C: Claims>(claims: &mut C, kp: &KeyPair) -> Result<String, JwtError> {
    let iss = kp.public_key();
    if nk::validate_public_key(&iss, C::ISSUER).is_err() {
        return Err(JwtError::InvalidIssuer(iss));
    }
    if nk::validate_public_key(&claims.claims().sub, C::SUBJECT).is_err() {
        return Err(JwtError::InvalidSubject(claims.claims().sub.clone()));
    }
    {
        let g = claims.generic_mut();
        g.claim_type = C::TYPE.to_string();
        g.version = LIB_VERSION;
    }
    let cd = claims.claims_mut();
    cd.iss = iss;
    if cd.iat == 0 {
        cd.iat = now_unix();
    }
    cd.jti = claims_hash(cd)?;
    let header = Header {
        typ: TOKEN_TYPE_JWT.into(),
        alg: ALGORITHM_NKEY.into(),
    };
    let h = serde_json::to_vec(&header).map_err(|e| JwtError::Signing(e.to_string()))?;
    let p = serde_json::to_vec(&*claims).map_err(|e| JwtError::Signing(e.to_string()))?;
    let to_sign = format!(
        "{}.{}",
        BASE64URL_NOPAD.encode(&h),
        BASE64URL_NOPAD.encode(&p)
    );
    let sig = kp
        .sign(to_sign.as_bytes())
        .map_err(|e| JwtError::Signing(e.to_string()))?;
    Ok(format!("{to_sign}.{}", BASE64URL_NOPAD.encode(&sig)))
}
