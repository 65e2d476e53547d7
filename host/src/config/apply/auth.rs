//! `authorization { user, password, token, timeout, users, failure_backoff, auth_callout }`.

use super::{
    duration_str, invalid, map, non_negative, seconds, string, strings, unknown, unsupported,
};
use crate::auth::nkeys::{is_valid_public_key, KeyKind};
use crate::config::value::Entry;
use crate::config::ConfigError;
use crate::options::{AuthCallout, FailureBackoff, Options, GLOBAL_ACCOUNT};

const UNSUPPORTED_AUTH: &[&str] = &[
    "nkeys",
    "permissions",
    "default_permission",
    "default_permissions",
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
            "auth_callout" | "callout" => opts.auth.callout = Some(auth_callout(sub)?),
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

/// `auth_callout { issuer: A…, auth_users: [..], account: NAME, xkey: X… }`, with
/// nats-server's aliases (`users`, `key`). The keys' shapes are checked here; whether the
/// users and the account exist is [`check_callout`]'s question, once the whole file is read.
fn auth_callout(e: &Entry) -> Result<AuthCallout, ConfigError> {
    let mut c = AuthCallout {
        issuer: String::new(),
        auth_users: Vec::new(),
        account: GLOBAL_ACCOUNT.to_string(),
        xkey: None,
    };
    for sub in map(&e.key, &e.value)? {
        let key = sub.key.to_ascii_lowercase();
        let v = &sub.value;
        match key.as_str() {
            "issuer" => {
                let issuer = string(&key, v)?;
                if !is_valid_public_key(&issuer, KeyKind::Account) {
                    return Err(invalid(&key, v, "expected an account public NKey (A…)"));
                }
                c.issuer = issuer;
            }
            "auth_users" | "users" => c.auth_users = strings(&key, v)?,
            "account" => c.account = string(&key, v)?,
            "xkey" | "key" => {
                let xkey = string(&key, v)?;
                if ::nkeys::XKey::from_public_key(&xkey).is_err() {
                    return Err(invalid(&key, v, "expected a curve public key (X…)"));
                }
                c.xkey = Some(xkey);
            }
            _ => return Err(unknown(sub)),
        }
    }
    if c.issuer.is_empty() {
        return Err(invalid(&e.key, &e.value, "auth_callout requires an issuer"));
    }
    if c.auth_users.is_empty() {
        return Err(invalid(
            &e.key,
            &e.value,
            "auth_callout requires auth_users",
        ));
    }
    Ok(c)
}

/// With the whole configuration read: each auth user is a configured user of the callout
/// account, the account exists, and this is not operator mode (where each account JWT's
/// `authorization` section configures its callout).
pub(super) fn check_callout(opts: &Options) -> Result<(), ConfigError> {
    let Some(c) = &opts.auth.callout else {
        return Ok(());
    };
    let conflict = |msg: String| Err(ConfigError::Conflict(format!("auth_callout: {msg}")));
    if !opts.operator.jwts.is_empty() {
        return conflict(
            "not used in operator mode: the account JWT's authorization section configures \
             the callout"
                .into(),
        );
    }
    if c.account != GLOBAL_ACCOUNT && !opts.accounts.names.contains(&c.account) {
        return conflict(format!("account {:?} is not configured", c.account));
    }
    for name in &c.auth_users {
        let in_account = |account: &str| {
            let account = if account.is_empty() {
                GLOBAL_ACCOUNT
            } else {
                account
            };
            account == c.account
        };
        let configured = opts.auth.users.iter().any(|u| {
            (u.user.as_deref() == Some(name) || u.nkey.as_deref() == Some(name))
                && in_account(&u.account)
        }) || (opts.auth.username.as_deref() == Some(name) && in_account(""));
        if !configured {
            return conflict(format!(
                "auth user {name:?} is not a user of account {:?}",
                c.account
            ));
        }
    }
    Ok(())
}
