//! NATS JWTs for tests, made and read independently of natrium's own JWT code: base64url
//! parts and an ed25519 signature by the `iss` NKey (the `nkeys` crate), as nats-io/jwt
//! writes them. Operator-mode tests mint user and account JWTs with it; the auth callout
//! tests' service reads the server's requests and signs its answers with it.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;
use serde_json::{json, Value};

/// Unix time in seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Signs `claims` (which must carry `sub` and `nats`) as `issuer`: sets `iss`, `jti` and,
/// unless given, `iat`.
pub fn sign(issuer: &KeyPair, mut claims: Value) -> Result<String> {
    claims["iss"] = json!(issuer.public_key());
    if claims.get("iat").is_none() {
        claims["iat"] = json!(now());
    }
    // A fresh key's public part is random enough for a jti.
    claims["jti"] = json!(KeyPair::new_user().public_key());
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = BASE64URL_NOPAD.encode(&serde_json::to_vec(&claims)?);
    let signed = format!("{header}.{body}");
    let sig = issuer
        .sign(signed.as_bytes())
        .map_err(|e| anyhow!("signing: {e}"))?;
    Ok(format!("{signed}.{}", BASE64URL_NOPAD.encode(&sig)))
}

/// The claims of `token`, after checking its signature against its own `iss`.
pub fn verified_claims(token: &str) -> Result<Value> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [header, body, sig] = parts[..] else {
        bail!("a JWT has three parts: {token:?}");
    };
    let claims: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(body.as_bytes())?).context("claims JSON")?;
    let iss = claims["iss"].as_str().context("no iss")?;
    let sig = BASE64URL_NOPAD.decode(sig.as_bytes())?;
    KeyPair::from_public_key(iss)
        .map_err(|e| anyhow!("iss {iss}: {e}"))?
        .verify(format!("{header}.{body}").as_bytes(), &sig)
        .map_err(|e| anyhow!("signature of {iss}: {e}"))?;
    Ok(claims)
}

/// A `.creds` file's text: the user JWT and the user's seed.
pub fn creds(jwt: &str, user: &KeyPair) -> Result<String> {
    let seed = user.seed().map_err(|e| anyhow!("seed: {e}"))?;
    Ok(format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    ))
}
