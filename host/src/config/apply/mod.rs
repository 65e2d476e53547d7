//! Maps a parsed configuration tree onto [`Options`], key by key, as nats-server's
//! `processConfigFileLine` does: keys are case-insensitive, unknown keys are errors (unless
//! they were only used as `$variables`), keys for features natrium lacks are recorded in
//! `Options::unsupported`.
//!
//! This file holds the top-level dispatch, the cross-field checks and the typed readers the
//! sections share; each block with keys of its own (`authorization`, `operator`/`resolver`,
//! `tls`, `jetstream`, `cluster`, `plugins`) has its own file.

mod auth;
mod cluster;
mod jetstream;
mod operator;
mod plugins;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use self::auth::authorization;
use self::cluster::cluster;
use self::jetstream::jetstream;
use self::operator::{operators, resolver, resolver_preload};
use self::plugins::plugins;
use self::tls::tls;
use super::value::{Entry, Kind, Map, Pos, Value};
use super::ConfigError;
use crate::options::{LimitOptions, Options, RANDOM_PORT};

/// Top-level keys nats-server accepts that name features natrium does not have yet.
const UNSUPPORTED_TOP: &[&str] = &[
    "disable_sublist_cache",
    "no_sublist_cache",
    "gateway",
    "leaf",
    "leafnodes",
    "websocket",
    "ws",
    "mqtt",
    "log_size_limit",
    "logfile_size_limit",
    "logfile_max_num",
    "logtime_utc",
    "syslog",
    "remote_syslog",
    "syslog_name",
    "prof_port",
    "max_traced_msg_len",
    "max_subscriptions",
    "max_subs",
    "max_sub_tokens",
    "max_subscription_tokens",
    "resolver_tls",
    "resolver_pinned_accounts",
    "system",
    "no_system_account",
    "no_system",
    "no_sys_acc",
    "no_header_support",
    "trusted",
    "trusted_keys",
    "default_js_domain",
    "connect_error_reports",
    "reconnect_error_reports",
    "ocsp",
    "ocsp_cache",
    "https",
    "https_port",
    "http_base_path",
];

/// Applies every key of `map` to `opts`. Stops at the first error.
pub fn apply(map: &Map, opts: &mut Options) -> Result<(), ConfigError> {
    for entry in map {
        top_level(entry, opts)?;
    }
    Ok(())
}

/// Cross-field checks nats-server makes before starting, to run once flags are merged in.
pub fn validate(opts: &Options) -> Result<(), ConfigError> {
    super::links::check(opts)?;
    auth::check_callout(opts)?;
    if let Err(names) = opts.plugins.one_authorizer() {
        return Err(ConfigError::MultipleAuthorizers { names });
    }
    if u64::from(opts.limits.max_payload) > opts.limits.max_pending {
        return Err(ConfigError::Conflict(format!(
            "max_payload ({}) cannot be higher than max_pending ({})",
            opts.limits.max_payload, opts.limits.max_pending
        )));
    }
    if opts.server_name.contains(' ') {
        return Err(ConfigError::Conflict(
            "server name cannot contain spaces".into(),
        ));
    }
    if (opts.auth.username.is_some() || opts.auth.password.is_some()) && opts.auth.token.is_some() {
        return Err(ConfigError::Conflict(
            "Cannot have a user/pass and token".into(),
        ));
    }
    if !opts.operator.jwts.is_empty() {
        if opts.operator.resolver.is_none() {
            return Err(ConfigError::Conflict(
                "operators require an account resolver to be configured".into(),
            ));
        }
        if !opts.accounts.names.is_empty() {
            return Err(ConfigError::Conflict(
                "operators do not allow Accounts to be configured directly".into(),
            ));
        }
        if !opts.auth.users.is_empty() {
            return Err(ConfigError::Conflict(
                "operators do not allow users to be configured directly".into(),
            ));
        }
        if opts.accounts.system_account != crate::options::SYSTEM_ACCOUNT
            && !crate::auth::nkeys::is_valid_public_key(
                &opts.accounts.system_account,
                crate::auth::nkeys::KeyKind::Account,
            )
        {
            return Err(ConfigError::Conflict(format!(
                "system_account {:?} is not a valid public account nkey",
                opts.accounts.system_account
            )));
        }
    } else if !opts.operator.preload.is_empty() && opts.operator.resolver.is_none() {
        return Err(ConfigError::Conflict(
            "resolver_preload requires a resolver (and an operator)".into(),
        ));
    }
    Ok(())
}

fn top_level(e: &Entry, opts: &mut Options) -> Result<(), ConfigError> {
    let key = e.key.to_ascii_lowercase();
    let v = &e.value;
    match key.as_str() {
        "listen" => {
            let (host, port) = host_port(&key, v)?;
            if let Some(h) = host {
                opts.listen.host = h;
            }
            opts.listen.port = port;
        }
        "port" => opts.listen.port = port(&key, v)?,
        "host" | "net" => opts.listen.host = string(&key, v)?,
        "client_advertise" => opts.listen.client_advertise = Some(string(&key, v)?),
        "server_name" => opts.server_name = string(&key, v)?,
        "server_tags" => opts.server_tags = strings(&key, v)?,
        "debug" => opts.logging.debug = boolean(&key, v)?,
        "trace" => opts.logging.trace = boolean(&key, v)?,
        "trace_verbose" => {
            opts.logging.trace = boolean(&key, v)?;
            if opts.logging.trace {
                unsupported(opts, &e.key, &e.key_pos);
            }
        }
        "logtime" => opts.logging.logtime = boolean(&key, v)?,
        "http" => {
            let (host, port) = host_port(&key, v)?;
            if let Some(h) = host {
                opts.listen.http_host = h;
            }
            opts.listen.http_port = Some(port);
        }
        "http_port" | "monitor_port" => opts.listen.http_port = Some(port(&key, v)?),
        "max_payload" => {
            opts.limits.max_payload =
                size_i32(&key, v)?.unwrap_or(LimitOptions::default().max_payload);
        }
        "max_control_line" => {
            opts.limits.max_control_line =
                size_i32(&key, v)?.unwrap_or(LimitOptions::default().max_control_line);
        }
        "max_pending" => {
            let n = non_negative(&key, v)?;
            opts.limits.max_pending = if n == 0 {
                LimitOptions::default().max_pending
            } else {
                n
            };
        }
        "max_connections" | "max_conn" => {
            let n = int(&key, v)?;
            opts.limits.max_connections = match n {
                // nats-server: 0 means the default, a negative value no limit.
                0 => LimitOptions::default().max_connections,
                n if n < 0 => u32::MAX,
                n => u32::try_from(n).unwrap_or(u32::MAX),
            };
        }
        "ping_max" => {
            let n = non_negative(&key, v)?;
            opts.limits.max_pings_out = match n {
                0 => LimitOptions::default().max_pings_out,
                n => u32::try_from(n).map_err(|_| invalid(&key, v, "value is too big"))?,
            };
        }
        "ping_interval" => {
            opts.limits.ping_interval = or_default(
                duration_or_secs(&key, v, opts)?,
                LimitOptions::default().ping_interval,
            );
        }
        "write_deadline" => {
            opts.limits.write_deadline = or_default(
                duration_or_secs(&key, v, opts)?,
                LimitOptions::default().write_deadline,
            );
        }
        "lame_duck_duration" => {
            let d = duration_str(&key, v)?;
            if d < Duration::from_secs(30) {
                return Err(invalid(
                    &key,
                    v,
                    format!("invalid lame_duck_duration of {d:?}, minimum is 30 seconds"),
                ));
            }
            opts.limits.lame_duck_duration = d;
        }
        "lame_duck_grace_period" => opts.limits.lame_duck_grace_period = duration_str(&key, v)?,
        "logfile" | "log_file" => opts.logging.file = Some(path(&key, v)?),
        "pidfile" | "pid_file" => opts.files.pid_file = Some(path(&key, v)?),
        "ports_file_dir" => opts.files.ports_file_dir = Some(path(&key, v)?),
        "store_dir" | "storedir" => opts.jetstream.store_dir = Some(path(&key, v)?),
        "authorization" => authorization(e, opts)?,
        "accounts" => super::accounts::accounts(e, opts)?,
        "mappings" | "maps" => {
            let list = super::accounts::mappings(
                &e.key,
                v,
                crate::options::GLOBAL_ACCOUNT,
                &mut opts.unsupported,
            )?;
            opts.accounts.mappings.extend(list);
        }
        "no_auth_user" => opts.auth.no_auth_user = Some(string(&key, v)?),
        "system_account" | "system" => opts.accounts.system_account = string(&key, v)?,
        "tls" => opts.tls = Some(tls(e, opts)?),
        "allow_non_tls" => opts.allow_non_tls = boolean(&key, v)?,
        "jetstream" => jetstream(e, opts)?,
        "cluster" => cluster(e, opts)?,
        "plugins" => opts.plugins.specs = plugins(e)?,
        "operator" | "operators" | "root" | "roots" | "root_operator" | "root_operators" => {
            opts.operator.jwts = operators(&key, v)?;
        }
        "resolver" | "account_resolver" | "accounts_resolver" => {
            opts.operator.resolver = Some(resolver(&key, v, &mut opts.unsupported)?);
        }
        "resolver_preload" => opts.operator.preload = resolver_preload(&key, v)?,
        "plugin_cache_dir" => opts.plugins.cache_dir = Some(relative_path(&key, v)?),
        "plugin_memory_budget" => {
            let n = non_negative(&key, v)?;
            opts.plugins.memory_budget = usize::try_from(n)
                .map_err(|_| invalid(&key, v, "plugin_memory_budget is too big"))?;
        }
        k if UNSUPPORTED_TOP.contains(&k) => unsupported(opts, &e.key, &e.key_pos),
        _ if e.used_as_variable => {}
        _ => return Err(unknown(e)),
    }
    Ok(())
}

// ---- helpers ---------------------------------------------------------------------------

fn unsupported(opts: &mut Options, key: &str, pos: &Pos) {
    note(&mut opts.unsupported, key, pos);
}

/// Records `key` (with the blocks it is in, e.g. `jetstream.cipher`) as read but not
/// supported; start-up logs each one.
fn note(unsupported: &mut Vec<String>, key: &str, pos: &Pos) {
    unsupported.push(format!("{key} ({}:{})", pos.file.display(), pos.line));
}

fn unknown(e: &Entry) -> ConfigError {
    ConfigError::UnknownField {
        pos: e.key_pos.clone(),
        key: e.key.clone(),
    }
}

fn invalid(key: &str, v: &Value, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        pos: v.pos.clone(),
        key: key.to_string(),
        msg: msg.into(),
    }
}

fn wrong_type(key: &str, v: &Value, want: &str) -> ConfigError {
    invalid(
        key,
        v,
        format!("expected {want}, got {}", v.kind.type_name()),
    )
}

fn string(key: &str, v: &Value) -> Result<String, ConfigError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| wrong_type(key, v, "a string"))
}

fn path(key: &str, v: &Value) -> Result<PathBuf, ConfigError> {
    string(key, v).map(PathBuf::from)
}

/// A path; a relative one is taken relative to the directory of the file it was written in.
fn relative_path(key: &str, v: &Value) -> Result<PathBuf, ConfigError> {
    let p = path(key, v)?;
    if p.as_os_str().is_empty() {
        return Err(invalid(key, v, "empty path"));
    }
    if p.is_absolute() {
        return Ok(p);
    }
    Ok(match v.pos.file.parent() {
        Some(dir) => dir.join(p),
        None => p,
    })
}

fn int(key: &str, v: &Value) -> Result<i64, ConfigError> {
    v.as_int().ok_or_else(|| wrong_type(key, v, "an integer"))
}

fn non_negative(key: &str, v: &Value) -> Result<u64, ConfigError> {
    u64::try_from(int(key, v)?).map_err(|_| invalid(key, v, "must not be negative"))
}

fn boolean(key: &str, v: &Value) -> Result<bool, ConfigError> {
    v.as_bool().ok_or_else(|| wrong_type(key, v, "a boolean"))
}

fn map<'v>(key: &str, v: &'v Value) -> Result<&'v Map, ConfigError> {
    v.as_map().ok_or_else(|| wrong_type(key, v, "a map"))
}

/// A single string or an array of strings.
fn strings(key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    match &v.kind {
        Kind::String(s) => Ok(vec![s.clone()]),
        Kind::Array(items) => items.iter().map(|i| string(key, i)).collect(),
        _ => Err(wrong_type(key, v, "a string or an array of strings")),
    }
}

/// A size limited to a positive i32 as in nats-server; `None` for 0 ("use the default").
fn size_i32(key: &str, v: &Value) -> Result<Option<u32>, ConfigError> {
    let n = non_negative(key, v)?;
    if n > i32::MAX as u64 {
        return Err(invalid(key, v, format!("{key} value is too big")));
    }
    Ok(u32::try_from(n).ok().filter(|n| *n != 0))
}

fn port(key: &str, v: &Value) -> Result<i32, ConfigError> {
    let n = int(key, v)?;
    if !(i64::from(RANDOM_PORT)..=65535).contains(&n) {
        return Err(invalid(
            key,
            v,
            format!("port {n} is out of range (-1 to 65535)"),
        ));
    }
    Ok(n as i32)
}

/// `listen`/`http`: a port, or `host:port` (`[v6]:port` for IPv6). An empty host means
/// all interfaces.
fn host_port(key: &str, v: &Value) -> Result<(Option<String>, i32), ConfigError> {
    if v.as_int().is_some() {
        return Ok((None, port(key, v)?));
    }
    let s = v
        .as_str()
        .ok_or_else(|| wrong_type(key, v, "a port or \"host:port\""))?;
    let bad = || invalid(key, v, format!("could not parse address string \"{s}\""));
    let (host, port_str) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    let port: i32 = port_str.parse().map_err(|_| bad())?;
    if !(RANDOM_PORT..=65535).contains(&port) {
        return Err(bad());
    }
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok((Some(host.to_string()), port))
}

fn or_default(d: Duration, default: Duration) -> Duration {
    if d.is_zero() {
        default
    } else {
        d
    }
}

/// A Go duration string; nats-server also still takes a plain integer as seconds (with a
/// warning). An unquoted `2m` is refused: the size suffix made it the number 2000000.
fn duration_or_secs(key: &str, v: &Value, opts: &mut Options) -> Result<Duration, ConfigError> {
    match &v.kind {
        Kind::String(s) => parse_duration(s).map_err(|e| invalid(key, v, e.to_string())),
        Kind::Integer(n) => {
            let literal = v.literal.as_deref().unwrap_or("");
            if literal.ends_with(|c: char| c.is_ascii_alphabetic()) {
                return Err(invalid(
                    key,
                    v,
                    format!(
                        "unquoted {literal} reads as the number {n}; quote durations, e.g. \"{literal}\""
                    ),
                ));
            }
            let secs = u64::try_from(*n).map_err(|_| invalid(key, v, "must not be negative"))?;
            opts.config_warnings.push(format!(
                "{}: {key} should be converted to a duration (e.g. \"{secs}s\")",
                v.pos
            ));
            Ok(Duration::from_secs(secs))
        }
        _ => Err(wrong_type(key, v, "a duration such as \"10s\"")),
    }
}

fn duration_str(key: &str, v: &Value) -> Result<Duration, ConfigError> {
    let s = v
        .as_str()
        .ok_or_else(|| wrong_type(key, v, "a duration string such as \"30s\""))?;
    parse_duration(s).map_err(|e| invalid(key, v, e.to_string()))
}

/// Timeouts written in (possibly fractional) seconds, or as a duration string.
fn seconds(key: &str, v: &Value) -> Result<Duration, ConfigError> {
    let secs = match &v.kind {
        Kind::Integer(n) => *n as f64,
        Kind::Float(f) => *f,
        Kind::String(s) => return parse_duration(s).map_err(|e| invalid(key, v, e.to_string())),
        _ => return Err(wrong_type(key, v, "a number of seconds")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| invalid(key, v, "must be a non-negative number"))
}

/// Why a duration string was refused; `input` is the whole string as written. The texts are
/// Go's `time.ParseDuration` errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("time: invalid duration \"{input}\"")]
    Invalid { input: String },
    #[error("negative duration \"{input}\" is not allowed")]
    Negative { input: String },
    #[error("time: missing unit in duration \"{input}\"")]
    MissingUnit { input: String },
    #[error("time: unknown unit \"{unit}\" in duration \"{input}\"")]
    UnknownUnit { input: String, unit: String },
}

/// Parses a Go `time.ParseDuration` string ("1h30m", "500ms", "1.5s"). Negative durations
/// are refused since no setting can use them. Errors read like Go's.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let input = || s.to_string();
    let invalid = || DurationError::Invalid { input: input() };
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        if rest == "-0" {
            return Ok(Duration::ZERO);
        }
        return Err(DurationError::Negative { input: input() });
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_end);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let end = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(end)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let nanos: u128 = match unit {
            "" => return Err(DurationError::MissingUnit { input: input() }),
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(DurationError::UnknownUnit {
                    input: input(),
                    unit: unit.to_string(),
                })
            }
        };
        // Digits beyond what fits are ignored rather than overflowing (Go does the same).
        let int_val: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut frac_nanos: u128 = 0;
        let mut scale: u128 = 1;
        for d in frac_part.chars().take(18) {
            frac_nanos = frac_nanos * 10 + u128::from(d.to_digit(10).unwrap_or(0));
            scale *= 10;
        }
        total = int_val
            .checked_mul(nanos)
            .and_then(|t| t.checked_add(frac_nanos * nanos / scale))
            .and_then(|t| total.checked_add(t))
            .ok_or_else(invalid)?;
        if total > i64::MAX as u128 {
            return Err(invalid());
        }
        rest = after;
    }
    Ok(Duration::from_nanos(total as u64))
}
