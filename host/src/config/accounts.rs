//! `accounts {}`, `authorization { users [...] }` and permission blocks, as nats-server reads
//! them, into [`UserSpec`]s, exports, imports, mappings and limits. Keys nats-server documents
//! that natrium does not act on (latency tracking, connection types, cluster-only mapping
//! destinations, ...) are recorded in `Options::unsupported`; unknown keys are errors.

use super::value::{Entry, Kind, Map, Value};
use super::ConfigError;
use crate::auth::permissions::{PermissionSpec, ResponsePermission, SubjectPermission};
use crate::options::{
    AccountLimits, ExportSpec, ImportSpec, LinkKind, MappingSpec, Options, ResponseType, UserSpec,
};

fn invalid(key: &str, v: &Value, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        pos: v.pos.clone(),
        key: key.to_string(),
        msg: msg.into(),
    }
}

fn unknown(e: &Entry) -> ConfigError {
    ConfigError::UnknownField {
        pos: e.key_pos.clone(),
        key: e.key.clone(),
    }
}

fn map<'v>(key: &str, v: &'v Value) -> Result<&'v Map, ConfigError> {
    v.as_map().ok_or_else(|| {
        invalid(
            key,
            v,
            format!("expected a map, got {}", v.kind.type_name()),
        )
    })
}

fn string(key: &str, v: &Value) -> Result<String, ConfigError> {
    v.as_str().map(str::to_string).ok_or_else(|| {
        invalid(
            key,
            v,
            format!("expected a string, got {}", v.kind.type_name()),
        )
    })
}

fn strings(key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    match &v.kind {
        Kind::String(s) => Ok(vec![s.clone()]),
        Kind::Array(items) => items.iter().map(|i| string(key, i)).collect(),
        _ => Err(invalid(key, v, "expected a string or an array of strings")),
    }
}

fn unsupported(opts: &mut Options, key: &str, e: &Entry) {
    note(&mut opts.unsupported, key, e);
}

/// Records `path` (the key of `e` with the blocks it is in) as read but not supported.
fn note(unsupported: &mut Vec<String>, path: &str, e: &Entry) {
    unsupported.push(format!(
        "{path} ({}:{})",
        e.key_pos.file.display(),
        e.key_pos.line
    ));
}

/// `path` inside the block of `account`: `accounts.A.path`, or `outside.path` for users of
/// `authorization {}` and mappings of the global account.
fn scoped(account: &str, outside: &str, path: &str) -> String {
    if account.is_empty() || account == crate::options::GLOBAL_ACCOUNT {
        format!("{outside}{path}")
    } else {
        format!("accounts.{account}.{path}")
    }
}

/// `accounts { NAME: { users: [...] , exports, imports, ... } }`.
pub(super) fn accounts(e: &Entry, opts: &mut Options) -> Result<(), ConfigError> {
    for acc in map(&e.key, &e.value)? {
        let name = acc.key.clone();
        opts.accounts.names.push(name.clone());
        let Some(body) = acc.value.as_map() else {
            // `accounts { A {} }` and `A: {}` are maps; anything else is an error.
            return Err(invalid(&acc.key, &acc.value, "an account must be a map"));
        };
        for field in body {
            let key = field.key.to_ascii_lowercase();
            match key.as_str() {
                "users" => {
                    let users = users(&field.key, &field.value, &name, &mut opts.unsupported)?;
                    opts.auth.users.extend(users);
                }
                "exports" => {
                    let list = exports(&field.key, &field.value, &name, &mut opts.unsupported)?;
                    opts.accounts.exports.extend(list);
                }
                "imports" => {
                    let list = imports(&field.key, &field.value, &name, &mut opts.unsupported)?;
                    opts.accounts.imports.extend(list);
                }
                "limits" => {
                    let l = limits(&field.key, &field.value)?;
                    set_limits(opts, &name, l);
                }
                // Not accepted by nats-server v2.9.10 (only inside `limits {}`); taken as
                // limits here so a config written for either form works.
                "max_connections" | "max_conn" | "max_subscriptions" | "max_subs"
                | "max_payload" | "max_pay" | "max_data" => {
                    let mut l = opts
                        .accounts
                        .limits
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, l)| *l)
                        .unwrap_or_default();
                    limit_field(&mut l, field)?;
                    set_limits(opts, &name, l);
                }
                "mappings" | "maps" => {
                    let list = mappings(&field.key, &field.value, &name, &mut opts.unsupported)?;
                    opts.accounts.mappings.extend(list);
                }
                "jetstream" => {
                    if let Some(l) = account_jetstream(&field.key, &field.value)? {
                        opts.jetstream.account_limits.push((name.clone(), l));
                    }
                }
                "default_permissions" | "nkey" => {
                    unsupported(opts, &format!("accounts.{name}.{}", field.key), field)
                }
                _ => return Err(unknown(field)),
            }
        }
    }
    Ok(())
}

/// An account's `jetstream`: `enabled`/`disabled`/a boolean, or a map of limits, with
/// nats-server's spellings (`parseJetStreamForAccount`). `Some` = enabled (with these
/// limits). As in nats-server, once `accounts {}` are configured only the accounts that say
/// so get JetStream.
fn account_jetstream(
    key: &str,
    v: &Value,
) -> Result<Option<crate::options::JetStreamLimits>, ConfigError> {
    let on = crate::options::JetStreamLimits::default();
    let Some(m) = v.as_map() else {
        return match (&v.kind, v.as_str().map(str::to_ascii_lowercase).as_deref()) {
            (Kind::Bool(true), _) | (_, Some("enabled" | "enable" | "true")) => Ok(Some(on)),
            (Kind::Bool(false), _) | (_, Some("disabled" | "disable" | "false")) => Ok(None),
            _ => Err(invalid(
                key,
                v,
                "expected 'enabled', 'disabled' or a map of limits",
            )),
        };
    };
    let mut l = on;
    for f in m {
        let name = format!("{key}.{}", f.key);
        let size = || {
            f.value.as_int().ok_or_else(|| {
                invalid(
                    &name,
                    &f.value,
                    format!("expected an integer, got {}", f.value.kind.type_name()),
                )
            })
        };
        match f.key.to_ascii_lowercase().as_str() {
            "max_memory" | "max_mem" | "mem" | "memory" | "max_memory_store" => {
                l.max_memory = size()?
            }
            "max_store" | "max_file" | "max_disk" | "store" | "disk" | "max_file_store"
            | "max_storage" => l.max_storage = size()?,
            "max_streams" | "streams" => l.max_streams = size()?,
            "max_consumers" | "consumers" => l.max_consumers = size()?,
            "max_ack_pending" => l.max_ack_pending = size()?,
            "mem_max_stream_bytes" | "memory_max_stream_bytes" => {
                l.memory_max_stream_bytes = size()?
            }
            "disk_max_stream_bytes" | "store_max_stream_bytes" | "storage_max_stream_bytes" => {
                l.storage_max_stream_bytes = size()?
            }
            // nats-server: a boolean, "max bytes required".
            "max_bytes_required" => {
                l.max_bytes_required = f.value.as_bool().ok_or_else(|| {
                    invalid(
                        &name,
                        &f.value,
                        format!("expected a boolean, got {}", f.value.kind.type_name()),
                    )
                })?
            }
            // nats-server takes only a boolean here (= `max_bytes_required`); a size is
            // also taken, as the per-stream limit for both storage types, since that is
            // what the name says (nats-server refuses it: "Expected a parseable bool").
            "max_stream_bytes" | "max_bytes" => match &f.value.kind {
                Kind::Bool(b) => l.max_bytes_required = *b,
                Kind::Integer(n) => {
                    l.memory_max_stream_bytes = *n;
                    l.storage_max_stream_bytes = *n;
                }
                other => {
                    return Err(invalid(
                        &name,
                        &f.value,
                        format!("expected a boolean or a size, got {}", other.type_name()),
                    ))
                }
            },
            _ if f.used_as_variable => {}
            _ => return Err(unknown(f)),
        }
    }
    Ok(Some(l))
}

fn set_limits(opts: &mut Options, account: &str, l: AccountLimits) {
    match opts.accounts.limits.iter_mut().find(|(n, _)| n == account) {
        Some((_, cur)) => *cur = l,
        None => opts.accounts.limits.push((account.to_string(), l)),
    }
}

/// `limits { max_connections|max_conn, max_subscriptions|max_subs, max_payload|max_pay,
/// max_leafnodes|max_leafs }` (and `max_data`, accepted and ignored).
fn limits(key: &str, v: &Value) -> Result<AccountLimits, ConfigError> {
    let mut l = AccountLimits::default();
    for f in map(key, v)? {
        limit_field(&mut l, f)?;
    }
    Ok(l)
}

fn limit_field(l: &mut AccountLimits, f: &Entry) -> Result<(), ConfigError> {
    let n = || {
        f.value
            .as_int()
            .ok_or_else(|| invalid(&f.key, &f.value, "expected an integer"))
    };
    match f.key.to_ascii_lowercase().as_str() {
        "max_connections" | "max_conn" => l.max_connections = Some(n()?),
        "max_subscriptions" | "max_subs" => l.max_subscriptions = Some(n()?),
        "max_payload" | "max_pay" => l.max_payload = Some(n()?),
        "max_data" => l.max_data = Some(n()?),
        // Leaf nodes are not supported; the limit has nothing to apply to.
        "max_leafnodes" | "max_leafs" => {
            n()?;
        }
        _ => return Err(unknown(f)),
    }
    Ok(())
}

fn items<'v>(key: &str, v: &'v Value) -> Result<&'v [Value], ConfigError> {
    v.as_array()
        .ok_or_else(|| invalid(key, v, "expected an array"))
}

fn subject(key: &str, v: &Value) -> Result<String, ConfigError> {
    let s = string(key, v)?;
    if !crate::subject::is_valid_subject(s.as_bytes()) {
        return Err(invalid(key, v, format!("invalid subject {s:?}")));
    }
    Ok(s)
}

/// `exports: [ { stream: "x.>", accounts: [..] }, { service: "svc", response_type: stream } ]`.
fn exports(
    key: &str,
    v: &Value,
    account: &str,
    unsupported: &mut Vec<String>,
) -> Result<Vec<ExportSpec>, ConfigError> {
    let mut out = Vec::new();
    for item in items(key, v)? {
        let m = map(key, item)?;
        let mut kind = None;
        let mut subj = String::new();
        let mut accounts = Vec::new();
        let mut response_type = ResponseType::Singleton;
        for f in m {
            match f.key.to_ascii_lowercase().as_str() {
                "stream" => {
                    kind = Some(LinkKind::Stream);
                    subj = subject(&f.key, &f.value)?;
                }
                "service" => {
                    kind = Some(LinkKind::Service);
                    subj = subject(&f.key, &f.value)?;
                }
                "accounts" => accounts = strings(&f.key, &f.value)?,
                "response_type" | "response" => {
                    response_type = match string(&f.key, &f.value)?.to_ascii_lowercase().as_str() {
                        "singleton" | "single" => ResponseType::Singleton,
                        "stream" => ResponseType::Stream,
                        "chunked" | "chunk" => ResponseType::Chunked,
                        other => {
                            return Err(invalid(
                                &f.key,
                                &f.value,
                                format!("unknown response type {other:?}"),
                            ))
                        }
                    }
                }
                // Service latency tracking, response thresholds, message tracing and
                // account-token exports are not implemented.
                "response_threshold"
                | "threshold"
                | "latency"
                | "allow_trace"
                | "account_token_position" => note(
                    unsupported,
                    &format!("accounts.{account}.{key}.{}", f.key),
                    f,
                ),
                _ => return Err(unknown(f)),
            }
        }
        let Some(kind) = kind else {
            return Err(invalid(key, item, "an export needs `stream` or `service`"));
        };
        out.push(ExportSpec {
            account: account.to_string(),
            kind,
            subject: subj,
            accounts,
            response_type,
        });
    }
    Ok(out)
}

/// `imports: [ { stream: { account: A, subject: "x.>" }, prefix: p }, { service: {..}, to: y } ]`.
fn imports(
    key: &str,
    v: &Value,
    account: &str,
    unsupported: &mut Vec<String>,
) -> Result<Vec<ImportSpec>, ConfigError> {
    let mut out = Vec::new();
    for item in items(key, v)? {
        let m = map(key, item)?;
        let mut spec = ImportSpec {
            account: account.to_string(),
            kind: LinkKind::Stream,
            from: String::new(),
            subject: String::new(),
            prefix: None,
            to: None,
        };
        let mut seen = false;
        for f in m {
            match f.key.to_ascii_lowercase().as_str() {
                k @ ("stream" | "service") => {
                    seen = true;
                    spec.kind = if k == "stream" {
                        LinkKind::Stream
                    } else {
                        LinkKind::Service
                    };
                    for g in map(&f.key, &f.value)? {
                        match g.key.to_ascii_lowercase().as_str() {
                            "account" => spec.from = string(&g.key, &g.value)?,
                            "subject" => spec.subject = subject(&g.key, &g.value)?,
                            _ => return Err(unknown(g)),
                        }
                    }
                }
                "prefix" => spec.prefix = Some(string(&f.key, &f.value)?),
                "to" | "local_subject" => spec.to = Some(subject(&f.key, &f.value)?),
                // Sharing latency data and message tracing are not implemented.
                "share" | "allow_trace" => note(
                    unsupported,
                    &format!("accounts.{account}.{key}.{}", f.key),
                    f,
                ),
                _ => return Err(unknown(f)),
            }
        }
        if !seen || spec.from.is_empty() || spec.subject.is_empty() {
            return Err(invalid(
                key,
                item,
                "an import needs `stream` or `service` with `account` and `subject`",
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

/// `mappings { "src": "dst" | [ { destination: "d", weight: 50% } ] }`; checked here so a
/// bad template is reported with its position.
pub(super) fn mappings(
    key: &str,
    v: &Value,
    account: &str,
    unsupported: &mut Vec<String>,
) -> Result<Vec<MappingSpec>, ConfigError> {
    let mut out = Vec::new();
    for f in map(key, v)? {
        let destinations = match &f.value.kind {
            Kind::String(s) => vec![(s.clone(), 100u8)],
            Kind::Array(items) => {
                let mut d = Vec::new();
                for item in items {
                    let mut dest = None;
                    let mut weight = 100u8;
                    for g in map(&f.key, item)? {
                        match g.key.to_ascii_lowercase().as_str() {
                            "destination" | "dest" => dest = Some(string(&g.key, &g.value)?),
                            "weight" => weight = percent(&g.key, &g.value)?,
                            // A destination for one cluster only: natrium has no
                            // clusters, so the destination applies everywhere.
                            "cluster" => note(
                                unsupported,
                                &scoped(account, "", &format!("{key}.{}.{}", f.key, g.key)),
                                g,
                            ),
                            _ => return Err(unknown(g)),
                        }
                    }
                    let dest = dest.ok_or_else(|| {
                        invalid(&f.key, item, "a destination needs `destination`")
                    })?;
                    d.push((dest, weight));
                }
                d
            }
            _ => {
                return Err(invalid(
                    &f.key,
                    &f.value,
                    "expected a subject or a list of destinations",
                ))
            }
        };
        crate::subject::mapping::Mapping::new(&f.key, &destinations)
            .map_err(|e| invalid(&f.key, &f.value, e.to_string()))?;
        out.push(MappingSpec {
            account: account.to_string(),
            source: f.key.clone(),
            destinations,
        });
    }
    Ok(out)
}

/// `50%`, `"50%"` or `50`.
fn percent(key: &str, v: &Value) -> Result<u8, ConfigError> {
    let n = match &v.kind {
        Kind::Integer(n) => *n,
        Kind::String(s) => s
            .trim()
            .trim_end_matches('%')
            .parse::<i64>()
            .map_err(|_| invalid(key, v, "expected a percentage"))?,
        _ => return Err(invalid(key, v, "expected a percentage")),
    };
    u8::try_from(n)
        .ok()
        .filter(|n| *n <= 100)
        .ok_or_else(|| invalid(key, v, "a weight is between 0% and 100%"))
}

/// `users: [ { user, password, permissions } | { nkey, permissions } ]`.
pub(super) fn users(
    key: &str,
    v: &Value,
    account: &str,
    unsupported: &mut Vec<String>,
) -> Result<Vec<UserSpec>, ConfigError> {
    let Some(items) = v.as_array() else {
        return Err(invalid(key, v, "users must be an array"));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let m = map(key, item)?;
        let mut u = UserSpec {
            account: account.to_string(),
            ..Default::default()
        };
        for f in m {
            let k = f.key.to_ascii_lowercase();
            match k.as_str() {
                "user" | "username" => u.user = Some(string(&f.key, &f.value)?),
                "pass" | "password" => u.password = Some(string(&f.key, &f.value)?),
                "nkey" => u.nkey = Some(string(&f.key, &f.value)?),
                "permissions" | "permission" => {
                    u.permissions = Some(permissions(&f.key, &f.value)?)
                }
                "account" => u.account = string(&f.key, &f.value)?,
                // Only plain NATS clients exist here (no websocket, leaf node or MQTT
                // connections), so the restriction is not applied.
                "allowed_connection_types" | "connection_types" | "clients" => note(
                    unsupported,
                    &scoped(account, "authorization.", &format!("{key}.{}", f.key)),
                    f,
                ),
                _ => return Err(unknown(f)),
            }
        }
        if u.user.is_none() && u.nkey.is_none() {
            return Err(invalid(key, item, "a user needs `user` or `nkey`"));
        }
        out.push(u);
    }
    Ok(out)
}

/// `permissions { publish, subscribe, allow_responses }`.
pub(super) fn permissions(key: &str, v: &Value) -> Result<PermissionSpec, ConfigError> {
    let mut spec = PermissionSpec::default();
    for f in map(key, v)? {
        let k = f.key.to_ascii_lowercase();
        match k.as_str() {
            "pub" | "publish" | "import" => {
                spec.publish = Some(subject_permission(&f.key, &f.value)?)
            }
            "sub" | "subscribe" | "export" => {
                spec.subscribe = Some(subject_permission(&f.key, &f.value)?)
            }
            "allow_responses" | "allow_resp" => spec.response = response(&f.key, &f.value)?,
            _ => return Err(unknown(f)),
        }
    }
    Ok(spec)
}

/// A list is the allow list; a map has `allow` and/or `deny`.
fn subject_permission(key: &str, v: &Value) -> Result<SubjectPermission, ConfigError> {
    if let Some(m) = v.as_map() {
        let mut p = SubjectPermission::default();
        for f in m {
            match f.key.to_ascii_lowercase().as_str() {
                "allow" => p.allow = Some(strings(&f.key, &f.value)?),
                "deny" => p.deny = Some(strings(&f.key, &f.value)?),
                _ => return Err(unknown(f)),
            }
        }
        return Ok(p);
    }
    Ok(SubjectPermission {
        allow: Some(strings(key, v)?),
        deny: None,
    })
}

fn response(key: &str, v: &Value) -> Result<Option<ResponsePermission>, ConfigError> {
    if let Some(b) = v.as_bool() {
        return Ok(b.then(ResponsePermission::default));
    }
    let mut r = ResponsePermission {
        max_msgs: 0,
        expires: std::time::Duration::ZERO,
    };
    for f in map(key, v)? {
        match f.key.to_ascii_lowercase().as_str() {
            "max" | "max_msgs" | "max_messages" | "max_responses" => {
                r.max_msgs = f
                    .value
                    .as_int()
                    .ok_or_else(|| invalid(&f.key, &f.value, "expected an integer"))?
            }
            "expires" | "ttl" => {
                let s = string(&f.key, &f.value)?;
                r.expires = super::apply::parse_duration(&s)
                    .map_err(|e| invalid(&f.key, &f.value, e.to_string()))?;
            }
            _ => return Err(unknown(f)),
        }
    }
    Ok(Some(r))
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;
    use std::path::Path;

    #[test]
    fn accounts_users_and_permissions() {
        let o = parse_str(
            r#"
            accounts {
              A: { users: [ { user: a, password: pa, permissions: { publish: "a.>", subscribe: { allow: ["a.>", "_INBOX.>"], deny: "a.secret" } } } ] }
              B { users = [ { user: b, password: pb } ] }
            }
            authorization { users: [ { user: g, password: pg, permissions: { allow_responses: true } } ] }
            no_auth_user: a
            "#,
            Path::new("/tmp/x.conf"),
        )
        .expect("valid config");
        assert_eq!(o.accounts.names, ["A", "B"]);
        assert_eq!(o.auth.no_auth_user.as_deref(), Some("a"));
        let a = o
            .auth
            .users
            .iter()
            .find(|u| u.user.as_deref() == Some("a"))
            .expect("user a");
        assert_eq!(a.account, "A");
        let p = a.permissions.as_ref().expect("permissions");
        assert_eq!(
            p.publish.as_ref().and_then(|p| p.allow.clone()),
            Some(vec!["a.>".to_string()])
        );
        assert_eq!(
            p.subscribe.as_ref().and_then(|p| p.deny.clone()),
            Some(vec!["a.secret".to_string()])
        );
        let g = o
            .auth
            .users
            .iter()
            .find(|u| u.user.as_deref() == Some("g"))
            .expect("user g");
        assert_eq!(g.account, "");
        assert!(g.permissions.as_ref().is_some_and(|p| p.response.is_some()));
        assert!(o.auth_required());
    }

    #[test]
    fn bad_user_blocks_are_errors_with_positions() {
        let e = parse_str(
            "accounts { A: { users: [ { password: x } ] } }\n",
            Path::new("/tmp/y.conf"),
        )
        .expect_err("user without name");
        assert!(e.to_string().starts_with("/tmp/y.conf:1:"), "{e}");
        let e = parse_str(
            "authorization { users: [ { user: a, permissions: { publsh: x } } ] }\n",
            Path::new("/tmp/z.conf"),
        )
        .expect_err("typo in permissions");
        assert!(e.to_string().contains("unknown field \"publsh\""), "{e}");
    }

    #[test]
    fn exports_and_imports() {
        let o = parse_str(
            r#"accounts {
              A: { exports: [ { stream: "a.>", accounts: [B] }, { service: "svc.>", response_type: stream } ] }
              B: { imports: [ { stream: { account: A, subject: "a.>" }, prefix: from_a },
                              { service: { account: A, subject: "svc.>" } } ] }
            }"#,
            Path::new("/tmp/w.conf"),
        )
        .expect("accepted");
        assert_eq!(o.accounts.exports.len(), 2);
        assert_eq!(o.accounts.exports[0].accounts, ["B"]);
        assert_eq!(
            o.accounts.exports[1].response_type,
            crate::options::ResponseType::Stream
        );
        assert_eq!(o.accounts.imports.len(), 2);
        assert_eq!(o.accounts.imports[0].prefix.as_deref(), Some("from_a"));
        assert_eq!(
            o.accounts.imports[1].kind,
            crate::options::LinkKind::Service
        );
        let e = parse_str(
            "accounts { B: { imports: [ { stream: { subject: x } } ] } }\n",
            Path::new("/tmp/v.conf"),
        )
        .expect_err("import without account");
        assert!(e.to_string().starts_with("/tmp/v.conf:1:"), "{e}");
    }

    #[test]
    fn account_limits() {
        let o = parse_str(
            r#"accounts {
              A: { limits: { max_connections: 2, max_subs: 3, max_payload: 1KB, max_leafnodes: 1 } }
              B: { max_conn: 1, max_data: 100 }
            }"#,
            Path::new("/tmp/l.conf"),
        )
        .expect("accepted");
        assert!(o.unsupported.is_empty(), "{:?}", o.unsupported);
        let get = |n: &str| {
            o.accounts
                .limits
                .iter()
                .find(|(a, _)| a == n)
                .map(|(_, l)| *l)
                .expect("limits")
        };
        let a = get("A");
        assert_eq!(a.max_connections, Some(2));
        assert_eq!(a.max_subscriptions, Some(3));
        assert_eq!(a.max_payload, Some(1024));
        let b = get("B");
        assert_eq!(b.max_connections, Some(1));
        assert_eq!(b.max_data, Some(100));
        assert_eq!(b.max_payload, None);
        let e = parse_str(
            "accounts { A: { limits: { max_conns: 1 } } }\n",
            Path::new("/tmp/m.conf"),
        )
        .expect_err("typo in limits");
        assert!(e.to_string().contains("max_conns"), "{e}");
        let e = parse_str(
            "accounts { A: { limits: { max_conn: x } } }\n",
            Path::new("/tmp/n.conf"),
        )
        .expect_err("not a number");
        assert!(e.to_string().starts_with("/tmp/n.conf:1:"), "{e}");
    }
}
