//! `jwt-authorizer`: a Natrium authorizer that admits clients holding a JWT from the tenant's
//! identity provider and places them in the tenant's account with the tenant's permissions.
//!
//! ```text
//! CONNECT {"auth_token":"eyJhbGciOi..."}        (or "jwt", or "pass"; "Bearer " is stripped)
//!    |
//!    v  split header.claims.signature, base64url-decode
//!    v  alg HS256 (HMAC-SHA256, shared secret) or EdDSA (Ed25519 public key) -- nothing else,
//!    |  and only an algorithm whose key is configured ("none" and alg confusion are refused)
//!    v  exp / nbf (with leeway), iss, aud
//!    v  tenant = claims[tenant_claim]  ->  tenants[tenant] (or tenants["*"])
//!    v
//! allow: account, user = claims[user_claim], publish/subscribe permissions, limits,
//!        expires_at = exp (the broker disconnects the client then)
//! ```
//!
//! Configuration:
//!
//! ```json
//! {
//!   "issuer": "https://idp.example.com/",
//!   "audience": "natrium",
//!   "hs256_secret": "a shared secret of 32 bytes or more",
//!   "ed25519_public_key": "base64, base64url or hex of the 32-byte key",
//!   "tenant_claim": "tenant",
//!   "user_claim": "sub",
//!   "leeway_secs": 60,
//!   "require_exp": true,
//!   "tenants": {
//!     "acme": {
//!       "account": "ACME",
//!       "publish":   { "allow": ["acme.>"], "deny": ["acme.admin.>"] },
//!       "subscribe": { "allow": ["acme.>", "_INBOX.>"] },
//!       "allow_responses": { "max_msgs": 1, "expires_ms": 0 },
//!       "max_subscriptions": 1000,
//!       "max_payload": 1048576
//!     },
//!     "*": { "account": "T_{tenant}", "publish": { "allow": ["{tenant}.{user}.>"] } }
//!   }
//! }
//! ```
//! At least one of `hs256_secret` (or `hs256_secret_base64`) and `ed25519_public_key` is
//! required; `issuer` and `audience` are checked when given. The `"*"` tenant, if present,
//! applies to tenants not listed. In `account` and permission subjects, `{tenant}` and `{user}`
//! are replaced by the claim values, which must then be plain subject tokens (no `.`, `*`, `>`
//! or spaces) or the client is denied — a claim can never widen a permission. Permissions left
//! out allow everything within the account. Every refusal is a `deny` with a reason for the
//! broker's log; a configuration that does not load denies everyone (fail closed).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine as _};
use hmac::{Hmac, Mac};
use natrium_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use std::collections::BTreeMap;

const INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const B64URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, INDIFFERENT);
const B64STD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, INDIFFERENT);

/// The longest token accepted (a guard against absurd inputs).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The configuration as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    hs256_secret: Option<String>,
    #[serde(default)]
    hs256_secret_base64: Option<String>,
    #[serde(default)]
    ed25519_public_key: Option<String>,
    #[serde(default = "default_tenant_claim")]
    tenant_claim: String,
    #[serde(default = "default_user_claim")]
    user_claim: String,
    #[serde(default = "default_leeway")]
    leeway_secs: u64,
    #[serde(default = "default_true")]
    require_exp: bool,
    tenants: BTreeMap<String, Tenant>,
}

fn default_tenant_claim() -> String {
    "tenant".into()
}
fn default_user_claim() -> String {
    "sub".into()
}
fn default_leeway() -> u64 {
    60
}
fn default_true() -> bool {
    true
}

/// What a tenant gets.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// The account (may contain `{tenant}` / `{user}`).
    pub account: String,
    /// Publish permission (default: everything).
    #[serde(default)]
    pub publish: PermissionConfig,
    /// Subscribe permission (default: everything).
    #[serde(default)]
    pub subscribe: PermissionConfig,
    /// Permission to answer requests.
    #[serde(default)]
    pub allow_responses: Option<ResponsesConfig>,
    /// Most subscriptions.
    #[serde(default)]
    pub max_subscriptions: Option<u32>,
    /// Largest payload.
    #[serde(default)]
    pub max_payload: Option<u32>,
}

/// Allow and deny lists.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PermissionConfig {
    /// Allowed subjects (empty: all not denied).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Denied subjects.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// `allow_responses`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResponsesConfig {
    /// Responses per request (0 = 1).
    #[serde(default)]
    pub max_msgs: u32,
    /// Window in milliseconds (0 = none).
    #[serde(default)]
    pub expires_ms: u64,
}

/// The loaded configuration: keys decoded, everything checked.
pub struct Authorizer {
    issuer: Option<String>,
    audience: Option<String>,
    hs256: Option<Vec<u8>>,
    ed25519: Option<ed25519_dalek::VerifyingKey>,
    tenant_claim: String,
    user_claim: String,
    leeway: u64,
    require_exp: bool,
    tenants: BTreeMap<String, Tenant>,
}

impl Authorizer {
    /// Loads a JSON configuration.
    pub fn from_json(json: &str) -> Result<Authorizer, String> {
        let raw: RawConfig =
            serde_json::from_str(json).map_err(|e| format!("invalid configuration: {e}"))?;
        let hs256 = match (raw.hs256_secret, raw.hs256_secret_base64) {
            (Some(_), Some(_)) => {
                return Err("give hs256_secret or hs256_secret_base64, not both".into())
            }
            (Some(s), None) => Some(s.into_bytes()),
            (None, Some(b)) => Some(
                B64STD
                    .decode(b.trim())
                    .or_else(|_| B64URL.decode(b.trim()))
                    .map_err(|e| format!("hs256_secret_base64: {e}"))?,
            ),
            (None, None) => None,
        };
        if hs256.as_ref().is_some_and(|k| k.len() < 16) {
            return Err("the HS256 secret is shorter than 16 bytes".into());
        }
        let ed25519 = raw
            .ed25519_public_key
            .as_deref()
            .map(decode_ed25519_key)
            .transpose()?;
        if hs256.is_none() && ed25519.is_none() {
            return Err("configure hs256_secret and/or ed25519_public_key".into());
        }
        if raw.tenants.is_empty() {
            return Err("tenants is empty: nobody could connect".into());
        }
        for (name, t) in &raw.tenants {
            if t.account.is_empty() {
                return Err(format!("tenants.{name}.account is empty"));
            }
        }
        Ok(Authorizer {
            issuer: raw.issuer,
            audience: raw.audience,
            hs256,
            ed25519,
            tenant_claim: raw.tenant_claim,
            user_claim: raw.user_claim,
            leeway: raw.leeway_secs,
            require_exp: raw.require_exp,
            tenants: raw.tenants,
        })
    }

    /// Decides for a CONNECT at `now_secs` (Unix seconds).
    pub fn decide(&self, req: &ConnectRequest, now_secs: u64) -> Result<Allowed, String> {
        let token = bearer_token(req)?;
        let claims = self.verify(token, now_secs)?;
        let tenant_name = match claims.get(&self.tenant_claim) {
            Some(Value::String(s)) if !s.is_empty() => s.as_str(),
            Some(_) => {
                return Err(format!(
                    "claim {:?} is not a non-empty string",
                    self.tenant_claim
                ))
            }
            None => return Err(format!("token has no {:?} claim", self.tenant_claim)),
        };
        let tenant = self
            .tenants
            .get(tenant_name)
            .or_else(|| self.tenants.get("*"))
            .ok_or_else(|| format!("unknown tenant {tenant_name:?}"))?;
        let user = match claims.get(&self.user_claim) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => {
                return Err(format!(
                    "claim {:?} is not a non-empty string",
                    self.user_claim
                ))
            }
            None => tenant_name.to_owned(),
        };
        let fill = |s: &str| substitute(s, tenant_name, &user);
        let perm = |p: &PermissionConfig| -> Result<Permission, String> {
            Ok(Permission {
                allow: p.allow.iter().map(|s| fill(s)).collect::<Result<_, _>>()?,
                deny: p.deny.iter().map(|s| fill(s)).collect::<Result<_, _>>()?,
            })
        };
        let mut allowed = Allowed::new(fill(&tenant.account)?, user.clone())
            .publish(perm(&tenant.publish)?)
            .subscribe(perm(&tenant.subscribe)?);
        if let Some(r) = &tenant.allow_responses {
            allowed = allowed.allow_responses(r.max_msgs, r.expires_ms);
        }
        if let Some(n) = tenant.max_subscriptions {
            allowed = allowed.max_subscriptions(n);
        }
        if let Some(n) = tenant.max_payload {
            allowed = allowed.max_payload(n);
        }
        if let Some(exp) = claims.get("exp").and_then(Value::as_f64) {
            // Seconds to nanoseconds; `as` saturates for absurd values.
            allowed = allowed.expires_at((exp.floor() * 1e9) as u64);
        }
        Ok(allowed)
    }

    /// Checks the signature and the registered claims; returns the claims.
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Map<String, Value>, String> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(format!("token is longer than {MAX_TOKEN_LEN} bytes"));
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(c64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed token: a JWT has three dot-separated parts".into());
        };
        let header: Map<String, Value> = decode_json(h64, "header")?;
        let signature = B64URL
            .decode(s64)
            .map_err(|e| format!("malformed token signature: {e}"))?;
        let signed = &token[..h64.len() + 1 + c64.len()];
        if header.contains_key("crit") {
            return Err("token header has 'crit' extensions, which are not supported".into());
        }
        match header.get("alg").and_then(Value::as_str) {
            Some("HS256") => {
                let key = self
                    .hs256
                    .as_ref()
                    .ok_or("alg HS256, but no HS256 secret is configured")?;
                let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| e.to_string())?;
                mac.update(signed.as_bytes());
                mac.verify_slice(&signature)
                    .map_err(|_| "bad token signature (HS256)")?;
            }
            Some("EdDSA") | Some("Ed25519") => {
                let key = self
                    .ed25519
                    .as_ref()
                    .ok_or("alg EdDSA, but no Ed25519 key is configured")?;
                let sig = ed25519_dalek::Signature::from_slice(&signature)
                    .map_err(|_| "malformed Ed25519 signature")?;
                key.verify_strict(signed.as_bytes(), &sig)
                    .map_err(|_| "bad token signature (EdDSA)")?;
            }
            Some(other) => return Err(format!("unsupported token alg {other:?} (HS256 or EdDSA)")),
            None => return Err("token header has no alg".into()),
        }
        let claims: Map<String, Value> = decode_json(c64, "claims")?;
        let time = |name: &str| -> Result<Option<u64>, String> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_f64()
                    .filter(|t| *t >= 0.0)
                    .map(|t| Some(t as u64))
                    .ok_or_else(|| format!("claim {name:?} is not a number of seconds")),
            }
        };
        match time("exp")? {
            Some(exp) if now_secs > exp.saturating_add(self.leeway) => {
                return Err(format!("token expired (exp {exp}, now {now_secs})"))
            }
            None if self.require_exp => return Err("token has no exp claim".into()),
            _ => {}
        }
        if let Some(nbf) = time("nbf")? {
            if now_secs.saturating_add(self.leeway) < nbf {
                return Err(format!("token not valid before {nbf} (now {now_secs})"));
            }
        }
        if let Some(iss) = &self.issuer {
            match claims.get("iss").and_then(Value::as_str) {
                Some(got) if got == iss => {}
                Some(got) => return Err(format!("token issuer {got:?} is not {iss:?}")),
                None => return Err("token has no iss claim".into()),
            }
        }
        if let Some(aud) = &self.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(s)) => s == aud,
                Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(aud)),
                _ => false,
            };
            if !ok {
                return Err(format!("token audience does not include {aud:?}"));
            }
        }
        Ok(claims)
    }
}

impl<'de> Deserialize<'de> for Authorizer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Authorizer::from_json(&v.to_string()).map_err(serde::de::Error::custom)
    }
}

fn decode_json(part: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = B64URL
        .decode(part)
        .map_err(|e| format!("malformed token {what}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("malformed token {what}: {e}"))
}

fn decode_ed25519_key(s: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    let s = s.trim();
    let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| format!("ed25519_public_key: {e}"))?
    } else {
        B64STD
            .decode(s)
            .or_else(|_| B64URL.decode(s))
            .map_err(|e| format!("ed25519_public_key: not hex or base64: {e}"))?
    };
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("ed25519_public_key: {} bytes, expected 32", bytes.len()))?;
    ed25519_dalek::VerifyingKey::from_bytes(&arr).map_err(|e| format!("ed25519_public_key: {e}"))
}

/// The token from CONNECT: `auth_token`, else `jwt`, else `pass`, without a `Bearer ` prefix.
fn bearer_token(req: &ConnectRequest) -> Result<&str, String> {
    [&req.auth_token, &req.jwt, &req.pass]
        .into_iter()
        .flatten()
        .map(|t| {
            let t = t.trim();
            t.strip_prefix("Bearer ")
                .or_else(|| t.strip_prefix("bearer "))
                .unwrap_or(t)
                .trim()
        })
        .find(|t| !t.is_empty())
        .ok_or_else(|| "no bearer token in CONNECT (auth_token, jwt or pass)".to_owned())
}

/// Replaces `{tenant}` and `{user}`; the values must be single plain subject tokens.
fn substitute(template: &str, tenant: &str, user: &str) -> Result<String, String> {
    let mut out = template.to_owned();
    for (name, value) in [("{tenant}", tenant), ("{user}", user)] {
        if out.contains(name) {
            if value.is_empty()
                || value.contains(['.', '*', '>'])
                || value.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(format!(
                    "claim value {value:?} cannot be used in {template:?}: not a plain subject token"
                ));
            }
            out = out.replace(name, value);
        }
    }
    Ok(out)
}

static AUTHORIZER: Config<Authorizer> = Config::new();

#[authorizer]
fn authorize(req: ConnectRequest) -> Decision {
    let auth = match AUTHORIZER.get() {
        Ok(a) => a,
        Err(e) => return Decision::deny(format!("jwt-authorizer misconfigured: {e}")),
    };
    match auth.decide(&req, now() / 1_000_000_000) {
        Ok(allowed) => {
            debug!(account = allowed.account.clone(), user = allowed.user.clone(); "client admitted");
            Decision::allow(allowed)
        }
        Err(reason) => Decision::deny(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    fn hs256(claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(br#"{"alg":"HS256","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes())
        );
        let mut mac =
            Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        mac.update(signed.as_bytes());
        format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
    }

    fn eddsa(key: &SigningKey, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(br#"{"alg":"EdDSA"}"#),
            b64(claims.to_string().as_bytes())
        );
        format!("{signed}.{}", b64(&key.sign(signed.as_bytes()).to_bytes()))
    }

    fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn config() -> String {
        let public = signing_key().verifying_key().to_bytes();
        let hex: String = public.iter().map(|b| format!("{b:02x}")).collect();
        json!({
            "issuer": "https://idp.example.com/",
            "audience": "natrium",
            "hs256_secret": SECRET,
            "ed25519_public_key": hex,
            "tenants": {
                "acme": {
                    "account": "ACME",
                    "publish": {"allow": ["acme.>"], "deny": ["acme.admin.>"]},
                    "subscribe": {"allow": ["acme.>", "_INBOX.>"]},
                    "allow_responses": {"max_msgs": 1},
                    "max_payload": 65536
                },
                "*": {"account": "T_{tenant}", "publish": {"allow": ["{tenant}.{user}.>"]}}
            }
        })
        .to_string()
    }

    fn auth() -> Authorizer {
        Authorizer::from_json(&config()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn claims(tenant: &str) -> Value {
        json!({"iss": "https://idp.example.com/", "aud": ["x", "natrium"], "sub": "bob",
               "tenant": tenant, "exp": NOW + 3600, "nbf": NOW - 10})
    }

    fn request(token: Option<String>) -> ConnectRequest {
        ConnectRequest {
            user: None,
            pass: None,
            auth_token: token,
            jwt: None,
            nkey: None,
            nkey_verified: false,
            name: None,
            lang: None,
            version: None,
            client_ip: "127.0.0.1".into(),
            client_port: 4222,
            server_name: "n".into(),
            server_id: "id".into(),
            tls: None,
        }
    }

    fn deny_reason(a: &Authorizer, token: String) -> String {
        match a.decide(&request(Some(token)), NOW) {
            Ok(allowed) => panic!("allowed: {allowed:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn hs256_tenant_gets_its_account() {
        let a = auth();
        let allowed = a
            .decide(
                &request(Some(format!("Bearer {}", hs256(&claims("acme"))))),
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(allowed.account, "ACME");
        assert_eq!(allowed.user, "bob");
        assert_eq!(allowed.publish.allow, vec!["acme.>"]);
        assert_eq!(allowed.publish.deny, vec!["acme.admin.>"]);
        assert_eq!(allowed.subscribe.allow, vec!["acme.>", "_INBOX.>"]);
        assert_eq!(allowed.allow_responses.map(|r| r.max_msgs), Some(1));
        assert_eq!(allowed.limits.max_payload, Some(65536));
        assert_eq!(allowed.expires_at, Some((NOW + 3600) * 1_000_000_000));
    }

    #[test]
    fn eddsa_and_wildcard_tenant() {
        let a = auth();
        let mut req = request(None);
        req.jwt = Some(eddsa(&signing_key(), &claims("globex")));
        let allowed = a.decide(&req, NOW).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(allowed.account, "T_globex");
        assert_eq!(allowed.publish.allow, vec!["globex.bob.>"]);
        assert!(allowed.subscribe.allow.is_empty());
        // Token from `pass` as well.
        let mut req = request(None);
        req.pass = Some(eddsa(&signing_key(), &claims("acme")));
        assert!(a.decide(&req, NOW).is_ok());
    }

    #[test]
    fn refusals_are_explained() {
        let a = auth();
        let with = |k: &str, v: Value| {
            let mut c = claims("acme");
            c[k] = v;
            c
        };
        assert!(deny_reason(&a, hs256(&with("exp", json!(NOW - 61)))).contains("expired"));
        assert!(
            a.decide(&request(Some(hs256(&with("exp", json!(NOW - 59))))), NOW)
                .is_ok(),
            "leeway"
        );
        assert!(deny_reason(&a, hs256(&with("nbf", json!(NOW + 120)))).contains("not valid before"));
        assert!(deny_reason(&a, hs256(&with("iss", json!("https://evil/")))).contains("issuer"));
        assert!(deny_reason(&a, hs256(&with("aud", json!("other")))).contains("audience"));
        assert!(
            deny_reason(&a, hs256(&with("tenant", json!(7)))).contains("not a non-empty string")
        );
        assert!(deny_reason(&a, hs256(&with("exp", json!("soon")))).contains("not a number"));
        let mut no_exp = claims("acme");
        no_exp.as_object_mut().map(|o| o.remove("exp"));
        assert!(deny_reason(&a, hs256(&no_exp)).contains("no exp"));
        // A claim value may not widen a templated permission.
        let mut sneaky = claims("globex");
        sneaky["sub"] = json!("a.>");
        assert!(deny_reason(&a, hs256(&sneaky)).contains("not a plain subject token"));
        assert!(deny_reason(&a, hs256(&claims("evil.>"))).contains("not a plain subject token"));
        // Tampering.
        let good = hs256(&claims("acme"));
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = b64(with("tenant", json!("other")).to_string().as_bytes());
        parts[1] = &forged;
        assert!(deny_reason(&a, parts.join(".")).contains("bad token signature"));
        assert!(deny_reason(&a, "abc".into()).contains("three dot-separated"));
        assert!(deny_reason(&a, "a.b.c".into()).contains("malformed token header"));
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(claims("acme").to_string().as_bytes())
        );
        assert!(deny_reason(&a, none).contains("unsupported token alg \"none\""));
        // Ed25519 signature from another key.
        let other = SigningKey::from_bytes(&[9u8; 32]);
        assert!(
            deny_reason(&a, eddsa(&other, &claims("acme"))).contains("bad token signature (EdDSA)")
        );
        assert!(a
            .decide(&request(None), NOW)
            .is_err_and(|e| e.contains("no bearer token")));
    }

    #[test]
    fn algorithm_must_have_its_key() {
        let only_hs = Authorizer::from_json(
            &json!({"hs256_secret": SECRET, "tenants": {"acme": {"account": "A"}}}).to_string(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            deny_reason(&only_hs, eddsa(&signing_key(), &claims("acme")))
                .contains("no Ed25519 key")
        );
        assert!(
            deny_reason(&only_hs, hs256(&claims("globex"))).contains("unknown tenant \"globex\"")
        );
    }

    #[test]
    fn bad_configurations() {
        for (cfg, needle) in [
            (
                json!({"tenants": {"a": {"account": "A"}}}),
                "hs256_secret and/or",
            ),
            (
                json!({"hs256_secret": "short", "tenants": {"a": {"account": "A"}}}),
                "shorter than 16",
            ),
            (
                json!({"hs256_secret": SECRET, "tenants": {}}),
                "tenants is empty",
            ),
            (
                json!({"ed25519_public_key": "abcd", "tenants": {"a": {"account": "A"}}}),
                "expected 32",
            ),
            (
                json!({"hs256_secret": SECRET, "tenants": {"a": {"account": "A", "publish": {"allov": []}}}}),
                "unknown field",
            ),
            (json!({"hs256_secret": SECRET}), "missing field `tenants`"),
        ] {
            match Authorizer::from_json(&cfg.to_string()) {
                Ok(_) => panic!("accepted {cfg}"),
                Err(e) => assert!(e.contains(needle), "{e:?} should mention {needle:?}"),
            }
        }
        let b64_secret = base64::engine::general_purpose::STANDARD.encode(SECRET);
        assert!(Authorizer::from_json(
            &json!({"hs256_secret_base64": b64_secret, "tenants": {"a": {"account": "A"}}})
                .to_string()
        )
        .is_ok());
    }

    #[test]
    fn the_export_uses_the_host_clock_and_config() {
        natrium_plugin_sdk::testing::set_config(&config());
        natrium_plugin_sdk::testing::set_now(Some(NOW * 1_000_000_000));
        let d = authorize(request(Some(hs256(&claims("acme")))));
        assert!(matches!(d, Decision::Allow(a) if a.account == "ACME"));
        natrium_plugin_sdk::testing::set_now(Some((NOW + 7200) * 1_000_000_000));
        let d = authorize(request(Some(hs256(&claims("acme")))));
        assert!(matches!(d, Decision::Deny(r) if r.contains("expired")));
    }
}
