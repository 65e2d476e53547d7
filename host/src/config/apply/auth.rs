//! `authorization { user, password, token, timeout, users }`.

use super::{invalid, map, seconds, string, unknown, unsupported};
use crate::config::value::Entry;
use crate::config::ConfigError;
use crate::options::Options;

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
