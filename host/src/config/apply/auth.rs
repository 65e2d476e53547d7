//! `authorization { user, password, token, timeout, users, failure_backoff }`.

use super::{duration_str, invalid, map, non_negative, seconds, string, unknown, unsupported};
use crate::config::value::Entry;
use crate::config::ConfigError;
use crate::options::{FailureBackoff, Options};

const UNSUPPORTED_AUTH: &[&str] = &[
    "nkeys",
    "permissions",
    "default_permission",
    "default_permissions",
    "auth_callout",
];

pub(super) fn authorization(e: &Entry, opts: &mut Options) -> Result<(), ConfigError> {
    let map = map(&e.key, &e.value)?;
    let (mut user, mut pass, mut token) = (None, None, None);
    for sub in map {
        let key = sub.key.to_ascii_lowercase();
        let v = &sub.value;
        match key.as_str() {
            "user" | "username" => user = Some(string(&key, v)?),
            "pass" | "password" => pass = Some(string(&key, v)?),
            "token" => token = Some(string(&key, v)?),
            "timeout" => opts.limits.auth_timeout = seconds(&key, v)?,
            "users" => {
                let users = crate::config::accounts::users(&sub.key, v, "", &mut opts.unsupported)?;
                opts.auth.users.extend(users);
            }
            "failure_backoff" => opts.auth.failure_backoff = Some(failure_backoff(sub)?),
            k if UNSUPPORTED_AUTH.contains(&k) => {
                unsupported(opts, &format!("{}.{}", e.key, sub.key), &sub.key_pos)
            }
            _ => return Err(unknown(sub)),
        }
    }
    if (user.is_some() || pass.is_some()) && token.is_some() {
        return Err(invalid(
            &e.key,
            &e.value,
            "Cannot have a user/pass and token",
        ));
    }
    // As in nats-server the block replaces all three, including ones it does not set.
    opts.auth.username = user;
    opts.auth.password = pass;
    opts.auth.token = token;
    Ok(())
}

/// `failure_backoff { max_failures: 5, window: "10s", delay: "1s" }`; keys left out keep
/// these defaults. Each must be positive, and `delay` at most `window`.
fn failure_backoff(e: &Entry) -> Result<FailureBackoff, ConfigError> {
    let mut b = FailureBackoff::default();
    for sub in map(&e.key, &e.value)? {
        let key = sub.key.to_ascii_lowercase();
        let v = &sub.value;
        match key.as_str() {
            "max_failures" => {
                b.max_failures = u32::try_from(non_negative(&key, v)?)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid(&key, v, "must be between 1 and 4294967295"))?;
            }
            "window" | "delay" => {
                let d = duration_str(&key, v)?;
                if d.is_zero() {
                    return Err(invalid(&key, v, "must be positive"));
                }
                if key == "window" {
                    b.window = d;
                } else {
                    b.delay = d;
                }
            }
            _ => return Err(unknown(sub)),
        }
    }
    if b.delay > b.window {
        return Err(invalid(
            &e.key,
            &e.value,
            format!(
                "delay ({:?}) must not exceed window ({:?})",
                b.delay, b.window
            ),
        ));
    }
    Ok(b)
}
