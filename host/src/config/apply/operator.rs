//! Operator mode: `operator` JWTs, the account `resolver` and `resolver_preload`.

use std::path::PathBuf;

use super::{boolean, duration_str, int, invalid, string, wrong_type};
use crate::config::value::{Kind, Value};
use crate::config::ConfigError;
use crate::options::ResolverSpec;

/// `operator`: one or more operator JWTs, each a file (plain or decorated, as `nsc` writes
/// it) or the JWT itself inline (as in nats-server, a value starting with `eyJ` that is not a
/// readable file). Relative paths are tried from the working directory, then from the
/// directory of the configuration file.
pub(super) fn operators(key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    let items: Vec<&Value> = match &v.kind {
        Kind::String(_) => vec![v],
        Kind::Array(items) => items.iter().collect(),
        _ => return Err(wrong_type(key, v, "a string or an array of strings")),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let s = string(key, item)?;
        let text = match read_beside_config(&s, item) {
            Ok(text) => text,
            Err(_) if s.trim_start().starts_with("eyJ") => s.clone(),
            Err(e) => {
                return Err(invalid(
                    key,
                    item,
                    format!("error parsing operator JWT: open {s}: {e}"),
                ))
            }
        };
        let token = crate::auth::creds::Creds::parse(&text)
            .map(|c| c.jwt)
            .map_err(|e| invalid(key, item, format!("error parsing operator JWT: {e}")))?;
        crate::auth::jwt::decode_operator(&token)
            .map_err(|e| invalid(key, item, format!("error parsing operator JWT: {e}")))?;
        out.push(token);
    }
    Ok(out)
}

fn read_beside_config(name: &str, v: &Value) -> std::io::Result<String> {
    let p = PathBuf::from(name);
    match std::fs::read_to_string(&p) {
        Err(e) if p.is_relative() => match v.pos.file.parent() {
            Some(dir) => std::fs::read_to_string(dir.join(&p)).map_err(|_| e),
            None => Err(e),
        },
        r => r,
    }
}

const RESOLVER_SYNTAX: &str = "error parsing account resolver, should be MEM or \
     URL(\"url\") or a map containing dir and type state=[FULL|CACHE])";

/// `resolver: MEMORY` or `resolver { type: full|cache, dir: ..., allow_delete, limit, ... }`.
/// `resolver`; keys natrium reads but does not act on are added to `unsupported`.
pub(super) fn resolver(
    key: &str,
    v: &Value,
    unsupported: &mut Vec<String>,
) -> Result<ResolverSpec, ConfigError> {
    match &v.kind {
        Kind::String(s) => {
            let t = s.trim().to_ascii_uppercase();
            if t == "MEM" || t == "MEMORY" {
                Ok(ResolverSpec::Memory)
            } else if t.starts_with("URL") {
                Err(invalid(
                    key,
                    v,
                    "the URL account resolver is not supported by natrium; use MEMORY or \
                     a full (directory) resolver",
                ))
            } else {
                Err(invalid(key, v, RESOLVER_SYNTAX))
            }
        }
        Kind::Map(m) => {
            let (mut dir, mut kind, mut allow_delete, mut limit) = (None, None, false, 0);
            for sub in m {
                let k = sub.key.to_ascii_lowercase();
                let sv = &sub.value;
                match k.as_str() {
                    "dir" => dir = Some(string(&k, sv)?),
                    "type" => kind = Some((string(&k, sv)?, sv)),
                    "allow_delete" => allow_delete = boolean(&k, sv)?,
                    // The number of JWTs kept and a cache's expiry are not enforced.
                    "limit" => {
                        limit = int(&k, sv)?;
                        super::note(unsupported, &format!("{key}.{}", sub.key), &sub.key_pos);
                    }
                    "ttl" => {
                        duration_str(&k, sv)?;
                        super::note(unsupported, &format!("{key}.{}", sub.key), &sub.key_pos);
                    }
                    // Syncing with and fetching from other servers: a single server has none.
                    "interval" | "timeout" => {
                        duration_str(&k, sv)?;
                    }
                    // nats-server reads only the keys it knows and ignores the rest.
                    _ => {}
                }
            }
            let dir = match dir {
                Some(d) if !d.is_empty() => PathBuf::from(d),
                _ => {
                    return Err(invalid(
                        key,
                        v,
                        "dir has no value and needs to point to a directory",
                    ))
                }
            };
            if dir.exists() && !dir.is_dir() {
                return Err(invalid(
                    key,
                    v,
                    "dir needs to point to an accessible directory",
                ));
            }
            let cache = match kind.as_ref().map(|(t, _)| t.to_ascii_uppercase()) {
                Some(t) if t == "FULL" => false,
                Some(t) if t == "CACHE" => true,
                Some(_) => {
                    let (_, tv) = kind.as_ref().map_or(("", v), |(t, tv)| (t.as_str(), *tv));
                    return Err(invalid("type", tv, RESOLVER_SYNTAX));
                }
                None => return Err(invalid(key, v, RESOLVER_SYNTAX)),
            };
            Ok(ResolverSpec::Dir {
                dir,
                cache,
                allow_delete,
                limit,
            })
        }
        _ => Err(invalid(key, v, RESOLVER_SYNTAX)),
    }
}

/// `resolver_preload { ACCOUNT_PUBLIC_KEY: "account JWT", ... }`.
pub(super) fn resolver_preload(key: &str, v: &Value) -> Result<Vec<(String, String)>, ConfigError> {
    let m = v.as_map().ok_or_else(|| {
        invalid(
            key,
            v,
            "preload should be a map of account_public_key:account_jwt",
        )
    })?;
    let mut out = Vec::with_capacity(m.len());
    for sub in m {
        let jwt = sub.value.as_str().ok_or_else(|| {
            invalid(
                key,
                &sub.value,
                "preload should be a map of account_public_key:account_jwt",
            )
        })?;
        if !crate::auth::nkeys::is_valid_public_key(&sub.key, crate::auth::nkeys::KeyKind::Account)
        {
            return Err(invalid(
                key,
                &sub.value,
                format!(
                    "preload key {:?} is not a valid public account nkey",
                    sub.key
                ),
            ));
        }
        let claims = crate::auth::jwt::decode_account(jwt.trim()).map_err(|e| {
            invalid(
                key,
                &sub.value,
                format!("preload account error for {:?}: {e}", sub.key),
            )
        })?;
        if claims.claims.sub != sub.key {
            return Err(invalid(
                key,
                &sub.value,
                format!(
                    "preload account error for {:?}: the JWT is for account {}",
                    sub.key, claims.claims.sub
                ),
            ));
        }
        out.push((sub.key.clone(), jwt.trim().to_string()));
    }
    Ok(out)
}
