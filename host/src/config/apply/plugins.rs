//! `plugins { NAME: { ... } }`: the Wasm plugins to load.

use super::{duration_str, invalid, map, non_negative, relative_path, string, strings, unknown};
use crate::config::value::{Entry, Kind, Value};
use crate::config::ConfigError;
use crate::options::{FailurePolicy, PluginSpec, Role, Signer};

/// `plugins { NAME: { path, role, config, accounts, subjects, on_failure, deadline, memory,
/// max_instances, sha256, kv, signed_by, signature } }`.
/// Relative paths are resolved against the directory of the file that wrote them.
pub(super) fn plugins(e: &Entry) -> Result<Vec<PluginSpec>, ConfigError> {
    let map = map(&e.key, &e.value)?;
    map.iter().map(plugin).collect()
}

fn plugin(e: &Entry) -> Result<PluginSpec, ConfigError> {
    let name = &e.key;
    let block = map(name, &e.value)?;
    let qualified = |k: &str| format!("plugins.{name}.{k}");
    let mut path = None;
    let mut role = None;
    let mut rest = Vec::new();
    for sub in block {
        let key = sub.key.to_ascii_lowercase();
        let v = &sub.value;
        match key.as_str() {
            "path" | "file" | "component" => path = Some(relative_path(&qualified(&key), v)?),
            "role" | "kind" => {
                role = Some(
                    match string(&qualified(&key), v)?.to_ascii_lowercase().as_str() {
                        "authorizer" => Role::Authorizer,
                        "mapper" => Role::Mapper,
                        "transformer" => Role::Transformer,
                        other => {
                            return Err(invalid(
                                &qualified(&key),
                                v,
                                format!(
                            "unknown role \"{other}\" (expected authorizer, mapper or transformer)"
                        ),
                            ))
                        }
                    },
                )
            }
            _ => rest.push(sub),
        }
    }
    let missing = |what: &str| {
        invalid(
            &format!("plugins.{name}"),
            &e.value,
            format!("missing '{what}'"),
        )
    };
    let path = path.ok_or_else(|| missing("path"))?;
    let role = role.ok_or_else(|| missing("role"))?;
    let mut spec = PluginSpec::new(name.clone(), path, role);
    for sub in rest {
        let key = qualified(&sub.key.to_ascii_lowercase());
        let v = &sub.value;
        match sub.key.to_ascii_lowercase().as_str() {
            "config" => {
                let json = to_json(&key, v)?;
                spec.config_json = serde_json::to_string(&json)
                    .map_err(|err| invalid(&key, v, err.to_string()))?;
            }
            "accounts" | "account" => spec.accounts = strings(&key, v)?,
            "subjects" | "subject" => {
                spec.subjects = strings(&key, v)?;
                if let Some(bad) = spec
                    .subjects
                    .iter()
                    .find(|s| !crate::subject::is_valid_subject(s.as_bytes()))
                {
                    return Err(invalid(
                        &key,
                        v,
                        format!("invalid subject filter \"{bad}\""),
                    ));
                }
            }
            "on_failure" | "failure" => {
                spec.on_failure = match string(&key, v)?.to_ascii_lowercase().as_str() {
                    "reject" => FailurePolicy::Reject,
                    "drop" => FailurePolicy::Drop,
                    "pass" => FailurePolicy::Pass,
                    other => {
                        return Err(invalid(
                            &key,
                            v,
                            format!(
                            "unknown failure policy \"{other}\" (expected reject, drop or pass)"
                        ),
                        ))
                    }
                };
                if role == Role::Authorizer && spec.on_failure != FailurePolicy::Reject {
                    return Err(invalid(
                        &key,
                        v,
                        "an authorizer always fails closed: on_failure can only be reject",
                    ));
                }
            }
            "deadline" | "timeout" => {
                let d = duration_str(&key, v)?;
                if d.is_zero() {
                    return Err(invalid(&key, v, "deadline must be greater than zero"));
                }
                spec.deadline = d;
            }
            "memory" | "memory_limit" | "max_memory" => {
                let n = non_negative(&key, v)?;
                // Below one 64 KiB page nothing can run.
                if n < 65536 {
                    return Err(invalid(&key, v, "memory limit must be at least 64KiB"));
                }
                spec.memory_limit =
                    usize::try_from(n).map_err(|_| invalid(&key, v, "memory limit is too big"))?;
            }
            "max_instances" => {
                let n = non_negative(&key, v)?;
                if n == 0 {
                    return Err(invalid(&key, v, "max_instances must be at least 1"));
                }
                spec.max_instances =
                    usize::try_from(n).map_err(|_| invalid(&key, v, "max_instances is too big"))?;
            }
            "sha256" => {
                let hex = string(&key, v)?.to_ascii_lowercase();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        &key,
                        v,
                        "sha256 must be 64 hex digits (`natrium plugin check FILE` prints them)",
                    ));
                }
                spec.sha256 = Some(hex);
            }
            "kv" => {
                // `kv: { bucket: NAME }`, or `kv: NAME` for short.
                let bucket = match &v.kind {
                    Kind::Map(m) => {
                        let mut bucket = None;
                        for b in m {
                            match b.key.to_ascii_lowercase().as_str() {
                                "bucket" => {
                                    bucket = Some(string(&format!("{key}.bucket"), &b.value)?)
                                }
                                _ => return Err(unknown(b)),
                            }
                        }
                        bucket.ok_or_else(|| invalid(&key, v, "missing 'bucket'"))?
                    }
                    _ => string(&key, v)?,
                };
                spec.kv_bucket = Some(kv_bucket(&key, v, bucket)?);
            }
            "kv_bucket" => spec.kv_bucket = Some(kv_bucket(&key, v, string(&key, v)?)?),
            "signed_by" => {
                let s = string(&key, v)?;
                spec.signed_by =
                    Some(match s.to_ascii_lowercase().as_str() {
                        "account" => Signer::Account,
                        "operator" => Signer::Operator,
                        _ if (s.starts_with('A') || s.starts_with('O'))
                            && nkeys::KeyPair::from_public_key(&s).is_ok() =>
                        {
                            Signer::Key(s)
                        }
                        _ => return Err(invalid(
                            &key,
                            v,
                            "signed_by must be account, operator, or an account (A…) or operator \
                             (O…) public NKey",
                        )),
                    });
            }
            "signature" => spec.signature = Some(relative_path(&key, v)?),
            _ => return Err(unknown(sub)),
        }
    }
    let block_err = |msg: &str| invalid(&format!("plugins.{name}"), &e.value, msg);
    if spec.kv_bucket.is_some() {
        // The bucket is read in the account of each call, and checked in each at load.
        if spec.accounts.is_empty() {
            return Err(block_err(
                "kv needs the binding's accounts: the bucket is read in the account of each \
                 call and must exist in each account listed",
            ));
        }
        if role == Role::Authorizer && spec.accounts.len() != 1 {
            return Err(block_err(
                "kv in an authorizer binding needs exactly one account (a CONNECT has no account \
                 yet: the bucket is read in the one the binding names)",
            ));
        }
    }
    if spec.signed_by == Some(Signer::Account) && spec.accounts.len() != 1 {
        return Err(block_err(
            "signed_by: account needs exactly one account in the binding's accounts (whose \
             NKey must have signed the component)",
        ));
    }
    if spec.signature.is_some() && spec.signed_by.is_none() {
        return Err(block_err(
            "signature is checked only with signed_by (account, operator or a public NKey)",
        ));
    }
    Ok(spec)
}

/// A bucket name as JetStream KV allows it: letters, digits, `-` and `_`.
fn kv_bucket(key: &str, v: &Value, bucket: String) -> Result<String, ConfigError> {
    if bucket.is_empty()
        || !bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            key,
            v,
            format!("invalid bucket name \"{bucket}\" (letters, digits, '-' and '_')"),
        ));
    }
    Ok(bucket)
}

/// Any configuration value as JSON (map keys as written, case kept).
fn to_json(key: &str, v: &Value) -> Result<serde_json::Value, ConfigError> {
    use serde_json::Value as J;
    Ok(match &v.kind {
        Kind::String(s) => J::String(s.clone()),
        Kind::Integer(n) => J::from(*n),
        Kind::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or_else(|| invalid(key, v, "not a finite number"))?,
        Kind::Bool(b) => J::Bool(*b),
        Kind::Array(items) => J::Array(
            items
                .iter()
                .map(|i| to_json(key, i))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Map(m) => {
            let mut obj = serde_json::Map::new();
            for sub in m {
                obj.insert(sub.key.clone(), to_json(key, &sub.value)?);
            }
            J::Object(obj)
        }
    })
}
