//! `plugins { NAME: { ... } }`: the Wasm plugins to load.

use super::{duration_str, invalid, map, non_negative, relative_path, string, strings, unknown};
use crate::config::value::{Entry, Kind, Value};
use crate::config::ConfigError;
use crate::options::{FailurePolicy, PluginSpec, Role};

/// `plugins { NAME: { path, role, config, accounts, subjects, on_failure, deadline, memory,
/// max_instances, sha256 } }`.
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
            _ => return Err(unknown(sub)),
        }
    }
    Ok(spec)
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
