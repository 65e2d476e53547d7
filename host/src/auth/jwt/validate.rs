//! Validation of the operator → account → user chain. Decoding has checked each token's
//! signature against its own `iss`; here the issuer must be *trusted*, and for a connecting
//! user the times, revocations, source networks, connection types, time windows and the
//! nonce signature are checked, and the user's permissions and limits resolved (scoped
//! signing-key templates, account default permissions) the way nats-server 2.9 does.

use std::net::IpAddr;

use super::{process_template, JwtError, NO_LIMIT};
use super::{AccountClaims, OperatorClaims, SigningKey, UserClaims, UserLimits};
use crate::auth::nkeys::{self as nk, KeyKind};
use crate::auth::permissions::PermissionSpec;

/// Connection types accepted in `allowed_connection_types`.
pub mod connection_type {
    pub const STANDARD: &str = "STANDARD";
    pub const WEBSOCKET: &str = "WEBSOCKET";
    pub const LEAFNODE: &str = "LEAFNODE";
    pub const LEAFNODE_WS: &str = "LEAFNODE_WS";
    pub const MQTT: &str = "MQTT";
    pub const MQTT_WS: &str = "MQTT_WS";
    pub const IN_PROCESS: &str = "IN_PROCESS";
    pub const ALL: [&str; 7] = [
        STANDARD,
        WEBSOCKET,
        LEAFNODE,
        LEAFNODE_WS,
        MQTT,
        MQTT_WS,
        IN_PROCESS,
    ];
}

/// Checks an operator JWT (already decoded, so its signature is good): it
/// must be self-signed (or signed by one of its own signing keys) and
/// within its validity period.
pub fn validate_operator(op: &OperatorClaims, now: i64) -> Result<(), JwtError> {
    if !op.is_signer(&op.claims.iss) {
        return Err(JwtError::UntrustedIssuer(op.claims.iss.clone()));
    }
    op.claims.validate_time(now)
}

/// Checks an account JWT against the trusted operators: issued by an
/// operator's identity key or one of its signing keys (only signing keys
/// when the operator sets `strict_signing_key_usage`), and within its
/// validity period.
pub fn validate_account(
    operators: &[OperatorClaims],
    account: &AccountClaims,
    now: i64,
) -> Result<(), JwtError> {
    let iss = &account.claims.iss;
    let op = operators
        .iter()
        .find(|o| o.is_signer(iss))
        .ok_or_else(|| JwtError::UntrustedIssuer(iss.clone()))?;
    if op.nats.strict_signing_key_usage && *iss == op.claims.sub {
        return Err(JwtError::StrictSigningKey);
    }
    account.claims.validate_time(now)
}

/// Like [`validate_account`] with bare trusted keys (`trusted_keys` option).
pub fn validate_account_with_keys(
    trusted: &[&str],
    account: &AccountClaims,
    now: i64,
) -> Result<(), JwtError> {
    if !trusted.contains(&account.claims.iss.as_str()) {
        return Err(JwtError::UntrustedIssuer(account.claims.iss.clone()));
    }
    account.claims.validate_time(now)
}

/// What the server knows about the connecting client.
#[derive(Debug, Clone)]
pub struct ClientInfo<'a> {
    /// Client address (for `src`).
    pub ip: Option<IpAddr>,
    /// One of [`connection_type`]'s values.
    pub connection_type: &'a str,
    /// Unix time, seconds.
    pub now: i64,
    /// Server's local UTC offset in seconds, for `times` without
    /// `times_location` (nats-server uses its local zone).
    pub local_utc_offset: i32,
    /// The nonce sent in INFO.
    pub nonce: Option<&'a str>,
    /// CONNECT `sig`.
    pub sig: Option<&'a str>,
}

impl<'a> ClientInfo<'a> {
    pub fn new(now: i64) -> Self {
        Self {
            ip: None,
            connection_type: connection_type::STANDARD,
            now,
            local_utc_offset: 0,
            nonce: None,
            sig: None,
        }
    }
}

/// A limit after combining user and account values (`None` = unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolvedLimits {
    pub subs: Option<i64>,
    pub payload: Option<i64>,
    pub data: Option<i64>,
}

fn min_limit(user: i64, account: i64) -> Option<i64> {
    match (user, account) {
        (u, a) if u != NO_LIMIT && a != NO_LIMIT => Some(u.min(a)),
        (u, _) if u != NO_LIMIT => Some(u),
        (_, a) if a != NO_LIMIT => Some(a),
        _ => None,
    }
}

/// The outcome of a successful user validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedUser {
    /// User public key (`sub`).
    pub user: String,
    /// Account public key.
    pub account: String,
    pub name: String,
    /// Set when issued by an account signing key.
    pub signing_key: Option<String>,
    /// Effective permissions (`None` = unrestricted).
    pub permissions: Option<PermissionSpec>,
    pub bearer: bool,
    pub limits: ResolvedLimits,
    /// Unix time (seconds) at which the connection must be closed: the
    /// user's `exp` or the end of the current `times` window, whichever is
    /// first.
    pub expires_at: Option<i64>,
    pub tags: Vec<String>,
}

/// Validates a user JWT against its (already validated) account, as
/// nats-server's `processClientOrLeafAuthentication` does for JWT users.
pub fn validate_user(
    account: &AccountClaims,
    user: &UserClaims,
    client: &ClientInfo<'_>,
) -> Result<AuthorizedUser, JwtError> {
    let uc = &user.claims;
    uc.validate_time(client.now)?;
    account.claims.validate_time(client.now)?;

    // Issuer and account.
    let acc_key = &account.claims.sub;
    if !user.nats.issuer_account.is_empty() {
        if nk::validate_public_key(&user.nats.issuer_account, KeyKind::Account).is_err() {
            return Err(JwtError::InvalidIssuer(user.nats.issuer_account.clone()));
        }
    } else if uc.iss != *acc_key && account.signing_key(&uc.iss).is_some() {
        return Err(JwtError::MissingIssuerAccount);
    }
    if user.account() != acc_key {
        return Err(JwtError::WrongAccount {
            user_account: user.account().to_string(),
            account: acc_key.clone(),
        });
    }
    if !account.has_issuer(&uc.iss) {
        return Err(JwtError::UntrustedIssuer(uc.iss.clone()));
    }
    let signing_key = (uc.iss != *acc_key).then(|| uc.iss.clone());

    // Scoped signing key: the template replaces the user's own settings.
    let mut lim = user.nats.limits.clone();
    if let Some(SigningKey::Scoped(scope)) = account.signing_key(&uc.iss) {
        if !user.nats.limits.is_empty() {
            return Err(JwtError::ScopedUserHasPermissions);
        }
        lim = process_template(&scope.template, user, account)?;
    }

    // Revocation.
    if account.is_revoked(&uc.sub, uc.iat) {
        return Err(JwtError::Revoked);
    }

    // Nonce signature / bearer.
    if lim.bearer_token {
        if account.nats.limits.disallow_bearer {
            return Err(JwtError::BearerNotAllowed);
        }
    } else {
        let (Some(nonce), Some(sig)) = (client.nonce, client.sig) else {
            return Err(JwtError::MissingSignature);
        };
        nk::verify_nonce(&uc.sub, KeyKind::User, nonce, sig)?;
    }

    check_connection_type(&lim.allowed_connection_types, client.connection_type)?;
    check_src(&lim.limits.src.0, client.ip)?;
    let window_end = check_times(&lim.limits, client.now, client.local_utc_offset)?;

    let permissions = lim
        .permissions
        .to_spec()
        .or_else(|| account.nats.default_permissions.to_spec());
    let an = &account.nats.limits.nats;
    let un = &lim.limits.nats;
    let limits = ResolvedLimits {
        subs: min_limit(un.subs, an.subs),
        payload: min_limit(un.payload, an.payload),
        data: min_limit(un.data, an.data),
    };
    let expires_at = match ((uc.exp > 0).then_some(uc.exp), window_end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(AuthorizedUser {
        user: uc.sub.clone(),
        account: acc_key.clone(),
        name: uc.name.clone(),
        signing_key,
        permissions,
        bearer: lim.bearer_token,
        limits,
        expires_at,
        tags: user.nats.generic.tags.clone(),
    })
}

/// `allowed_connection_types`: empty allows all; unknown names are ignored
/// unless no known one is left (then nothing is allowed).
pub fn check_connection_type(allowed: &[String], conn_type: &str) -> Result<(), JwtError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = allowed
        .iter()
        .map(|t| t.to_ascii_uppercase())
        .filter(|t| connection_type::ALL.contains(&t.as_str()))
        .collect();
    if known.is_empty() {
        return Err(JwtError::NoKnownConnectionType);
    }
    if known.iter().any(|t| t == conn_type) {
        Ok(())
    } else {
        Err(JwtError::ConnectionTypeNotAllowed(conn_type.to_string()))
    }
}

/// Parses `a.b.c.d/n`, `x::y/n` or a bare address (a host route).
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let s = s.trim();
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a.parse::<IpAddr>().ok()?, Some(b.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

/// True when `ip` is inside `cidr` (IPv4-mapped IPv6 clients match IPv4 nets).
pub fn cidr_contains(cidr: &str, ip: IpAddr) -> Result<bool, JwtError> {
    let (net, bits) = parse_cidr(cidr).ok_or_else(|| JwtError::InvalidCidr(cidr.to_string()))?;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    Ok(match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    })
}

/// `src`: empty allows all; otherwise the client address must be in one of
/// the networks. An unparsable entry rejects (as nats-server does).
pub fn check_src(src: &[String], ip: Option<IpAddr>) -> Result<(), JwtError> {
    if src.is_empty() {
        return Ok(());
    }
    let ip = ip.ok_or(JwtError::SourceNotAllowed)?;
    for c in src {
        if cidr_contains(c, ip)? {
            return Ok(());
        }
    }
    Err(JwtError::SourceNotAllowed)
}

fn parse_hms(s: &str) -> Option<i64> {
    let mut it = s.trim().split(':');
    let (Some(h), Some(m), Some(sec), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return None;
    };
    let p = |v: &str, max: i64| v.parse::<i64>().ok().filter(|x| (0..max).contains(x));
    Some(p(h, 24)? * 3600 + p(m, 60)? * 60 + p(sec, 60)?)
}

/// `times`: empty allows always; otherwise the current time of day must be
/// within a range (`start` after `end` wraps midnight). Returns the unix time
/// at which the current window ends. `times_location` supports only UTC
/// names; others reject (fail closed) since no zone database is bundled.
pub fn check_times(
    limits: &UserLimits,
    now: i64,
    local_offset: i32,
) -> Result<Option<i64>, JwtError> {
    if limits.times.is_empty() {
        return Ok(None);
    }
    let offset = match limits.locale.as_str() {
        "" | "Local" => i64::from(local_offset),
        "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Zulu" | "Etc/Zulu" | "Universal" => 0,
        other => return Err(JwtError::UnsupportedTimeLocale(other.to_string())),
    };
    let local = now + offset;
    let tod = local.rem_euclid(86_400);
    for r in &limits.times {
        let err = || JwtError::InvalidTimeRange(format!("{}-{}", r.start, r.end));
        let s = parse_hms(&r.start).ok_or_else(err)?;
        let e = parse_hms(&r.end).ok_or_else(err)?;
        let remaining = if s <= e {
            (s <= tod && tod < e).then(|| e - tod)
        } else if tod >= s {
            Some(86_400 - tod + e)
        } else {
            (tod < e).then(|| e - tod)
        };
        if let Some(rem) = remaining {
            return Ok(Some(now + rem));
        }
    }
    Err(JwtError::OutsideTimeWindow)
}
