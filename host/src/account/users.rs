//! Who may connect, and where they land: the users, NKeys and tokens from the configuration,
//! checked against a client's CONNECT.

use super::operator::{AccountClaimsError, JwtIdentity, OperatorError, OperatorMode};
use super::GLOBAL_ACCOUNT;
use crate::auth::nkeys::{self, KeyKind, NkeyError};
use crate::auth::password::{Password, PasswordError};
use crate::auth::permissions::{PermissionError, Permissions};
use crate::options::{Options, UserSpec};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// What a client presented in CONNECT, plus the nonce this server sent it.
#[derive(Default)]
pub struct Credentials<'a> {
    pub user: Option<&'a str>,
    pub pass: Option<&'a str>,
    pub token: Option<&'a str>,
    pub nkey: Option<&'a str>,
    pub sig: Option<&'a str>,
    pub nonce: Option<&'a str>,
    /// CONNECT `jwt` (operator mode).
    pub jwt: Option<&'a str>,
    /// The client's address (for a user JWT's `src`).
    pub ip: Option<std::net::IpAddr>,
    /// `verify_and_map`: the verified client certificate, which names the user.
    pub tls_map: Option<&'a crate::tls::CertIdentity>,
}

impl Credentials<'_> {
    fn is_empty(&self) -> bool {
        self.user.is_none()
            && self.pass.is_none()
            && self.token.is_none()
            && self.nkey.is_none()
            && self.jwt.is_none()
    }
}

/// A successful authentication.
#[derive(Clone)]
pub struct AuthOutcome {
    pub account: String,
    /// User name (or NKey) for logs and monitoring.
    pub user: Option<String>,
    pub permissions: Option<Arc<Permissions>>,
    /// When the authorization ends (unix nanoseconds): a user JWT's `exp`.
    pub expires_at: Option<u64>,
    /// Set for users authenticated by a user JWT (operator mode).
    pub jwt_user: Option<JwtIdentity>,
    /// Operator mode: the account JWT's limits, applied to the account on admission.
    pub account_limits: Option<crate::options::AccountLimits>,
    /// This connection's own limits (an authorizer plugin's decision), applied on top of the
    /// account's and the server's: the lowest wins.
    pub client_limits: ClientLimits,
}

/// Limits of one connection, `None` = not limited here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientLimits {
    pub max_subscriptions: Option<usize>,
    pub max_payload: Option<usize>,
}

/// Why a client was refused; the client only ever sees 'Authorization Violation'.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials matched")]
    NoMatch,
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("wrong password for user {0:?}")]
    WrongPassword(String),
    #[error("unknown nkey {0}")]
    UnknownNkey(String),
    #[error("nkey signature invalid: {0}")]
    BadSignature(String),
    #[error("{0}")]
    Jwt(String),
    /// The account of a user JWT could not be found or did not validate.
    #[error("{0}")]
    Account(#[from] AccountClaimsError),
}

/// Why the configured users cannot be used (start-up or reload stops); names the user.
#[derive(Debug, thiserror::Error)]
pub enum UserConfigError {
    /// `user` is the user's name or NKey.
    #[error("invalid permissions: {source}")]
    Permissions {
        user: Option<String>,
        #[source]
        source: PermissionError,
    },
    #[error("user {user:?}: {source}")]
    Password {
        user: String,
        #[source]
        source: PasswordError,
    },
    #[error("nkey {nkey}: {source}")]
    Nkey {
        nkey: String,
        #[source]
        source: NkeyError,
    },
    #[error("duplicate nkey {0}")]
    DuplicateNkey(String),
    #[error("a user needs `user` or `nkey`")]
    Unnamed,
    #[error("duplicate user {0:?}")]
    DuplicateUser(String),
    #[error("no_auth_user {0:?} is not a configured user")]
    UnknownNoAuthUser(String),
    #[error(transparent)]
    Operator(#[from] OperatorError),
}

struct Entry {
    password: Option<Password>,
    outcome: AuthOutcome,
}

/// Built once from the options (and again on reload).
#[derive(Default)]
pub struct UserDirectory {
    by_name: FxHashMap<String, Entry>,
    by_nkey: FxHashMap<String, AuthOutcome>,
    token: Option<String>,
    single: Option<(String, Password)>,
    no_auth_user: Option<String>,
    /// Operator mode: users come from JWTs, not from the configuration.
    operator: Option<Arc<OperatorMode>>,
    /// When passwords are bcrypt hashes: a hash of the highest configured cost that nothing
    /// matches, verified for a user name that is not configured, so that refusing an
    /// unknown user takes as long as refusing a wrong password.
    unknown_user_hash: Option<Password>,
}

fn compile(u: &UserSpec) -> Result<Option<Arc<Permissions>>, UserConfigError> {
    match &u.permissions {
        Some(s) if !s.is_empty() => {
            Permissions::compile(s)
                .map(|p| Some(Arc::new(p)))
                .map_err(|source| UserConfigError::Permissions {
                    user: u.user.clone().or_else(|| u.nkey.clone()),
                    source,
                })
        }
        _ => Ok(None),
    }
}

impl UserDirectory {
    /// Checks and compiles every user; an error names the user and stops start-up.
    pub fn from_options(opts: &Options) -> Result<Self, UserConfigError> {
        let mut dir = UserDirectory {
            token: opts.auth.token.clone(),
            no_auth_user: opts.auth.no_auth_user.clone(),
            operator: OperatorMode::from_options(opts)?,
            ..Default::default()
        };
        if let Some(u) = &opts.auth.username {
            let p =
                Password::parse(opts.auth.password.as_deref().unwrap_or("")).map_err(|source| {
                    UserConfigError::Password {
                        user: u.clone(),
                        source,
                    }
                })?;
            dir.single = Some((u.clone(), p));
        }
        for u in &opts.auth.users {
            dir.add(u)?;
        }
        if let Some(n) = &dir.no_auth_user {
            if !dir.by_name.contains_key(n) {
                return Err(UserConfigError::UnknownNoAuthUser(n.clone()));
            }
        }
        let highest_cost = dir
            .by_name
            .values()
            .filter_map(|e| e.password.as_ref())
            .chain(dir.single.as_ref().map(|(_, p)| p))
            .filter_map(Password::bcrypt_cost)
            .max();
        dir.unknown_user_hash = highest_cost.map(Password::unmatchable_bcrypt);
        Ok(dir)
    }

    fn add(&mut self, u: &UserSpec) -> Result<(), UserConfigError> {
        let permissions = compile(u)?;
        let account = if u.account.is_empty() {
            GLOBAL_ACCOUNT.to_string()
        } else {
            u.account.clone()
        };
        if let Some(nkey) = &u.nkey {
            nkeys::validate_public_key(nkey, KeyKind::User).map_err(|source| {
                UserConfigError::Nkey {
                    nkey: nkey.clone(),
                    source,
                }
            })?;
            let outcome = AuthOutcome {
                account,
                user: Some(nkey.clone()),
                permissions,
                expires_at: None,
                jwt_user: None,
                account_limits: None,
                client_limits: ClientLimits::default(),
            };
            if self.by_nkey.insert(nkey.clone(), outcome).is_some() {
                return Err(UserConfigError::DuplicateNkey(nkey.clone()));
            }
            return Ok(());
        }
        let Some(name) = &u.user else {
            return Err(UserConfigError::Unnamed);
        };
        let password = match &u.password {
            Some(p) => Some(
                Password::parse(p).map_err(|source| UserConfigError::Password {
                    user: name.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        let entry = Entry {
            password,
            outcome: AuthOutcome {
                account,
                user: Some(name.clone()),
                permissions,
                expires_at: None,
                jwt_user: None,
                account_limits: None,
                client_limits: ClientLimits::default(),
            },
        };
        if self.by_name.insert(name.clone(), entry).is_some() {
            return Err(UserConfigError::DuplicateUser(name.clone()));
        }
        Ok(())
    }

    /// The operator-mode state (trusted operators and account resolver), if configured.
    pub fn operator(&self) -> Option<&Arc<OperatorMode>> {
        self.operator.as_ref()
    }

    /// Whether a check may run a bcrypt verification (tens of milliseconds): true when any
    /// configured password is a bcrypt hash (unknown users then cost one too).
    pub fn verification_is_slow(&self) -> bool {
        self.unknown_user_hash.is_some()
    }

    pub fn auth_required(&self) -> bool {
        self.operator.is_some()
            || self.token.is_some()
            || self.single.is_some()
            || !self.by_name.is_empty()
            || !self.by_nkey.is_empty()
    }

    /// NKey users need a nonce in INFO to sign.
    pub fn needs_nonce(&self) -> bool {
        self.operator.is_some() || !self.by_nkey.is_empty()
    }

    pub fn authenticate(&self, c: &Credentials<'_>) -> Result<AuthOutcome, AuthError> {
        if let Some(op) = &self.operator {
            return op.authenticate(c);
        }
        if !self.auth_required() {
            return Ok(global(None));
        }
        if let Some(nkey) = c.nkey {
            if !self.by_nkey.is_empty() {
                let outcome = self
                    .by_nkey
                    .get(nkey)
                    .ok_or_else(|| AuthError::UnknownNkey(nkey.to_string()))?;
                let nonce = c.nonce.unwrap_or("");
                let sig = c.sig.unwrap_or("");
                nkeys::verify_nonce(nkey, KeyKind::User, nonce, sig)
                    .map_err(|e| AuthError::BadSignature(e.to_string()))?;
                return Ok(outcome.clone());
            }
        }
        if let Some(cert) = c.tls_map {
            if !self.by_name.is_empty() {
                let (name, e) = self.map_certificate(cert)?;
                // As nats-server: a CONNECT password is still compared with the mapped
                // user's (none configured: the client must send none).
                let pass = c.pass.unwrap_or("");
                let ok = match &e.password {
                    Some(p) => p.verify(pass.as_bytes()),
                    None => pass.is_empty(),
                };
                return if ok {
                    Ok(e.outcome.clone())
                } else {
                    Err(AuthError::WrongPassword(name.to_string()))
                };
            }
        }
        if let Some(name) = c.user {
            if let Some(e) = self.by_name.get(name) {
                let ok = match &e.password {
                    Some(p) => p.verify(c.pass.unwrap_or("").as_bytes()),
                    None => true,
                };
                return if ok {
                    Ok(e.outcome.clone())
                } else {
                    Err(AuthError::WrongPassword(name.to_string()))
                };
            }
            if let Some((single, p)) = &self.single {
                // Verified whatever the name: a wrong name costs what a wrong password does.
                let ok = p.verify(c.pass.unwrap_or("").as_bytes());
                return match (single == name, ok) {
                    (true, true) => Ok(global(Some(name))),
                    (true, false) => Err(AuthError::WrongPassword(name.to_string())),
                    (false, _) => Err(AuthError::UnknownUser(name.to_string())),
                };
            }
            if let Some(h) = &self.unknown_user_hash {
                h.verify(c.pass.unwrap_or("").as_bytes());
            }
            if self.token.is_none() {
                return Err(AuthError::UnknownUser(name.to_string()));
            }
        }
        if let (Some(want), Some(got)) = (&self.token, c.token) {
            if Password::Plain(want.clone()).verify(got.as_bytes()) {
                return Ok(global(None));
            }
        }
        if c.is_empty() {
            if let Some(e) = self.no_auth_user.as_ref().and_then(|n| self.by_name.get(n)) {
                return Ok(e.outcome.clone());
            }
        }
        Err(AuthError::NoMatch)
    }
}

impl UserDirectory {
    /// `verify_and_map`, as nats-server matches: the configured user (of `users`) named like
    /// an e-mail SAN, a DNS SAN, a URI SAN or the subject DN (literally, then as a DN in any
    /// RDN order). The CONNECT `user` is ignored: the certificate names the user.
    fn map_certificate(
        &self,
        cert: &crate::tls::CertIdentity,
    ) -> Result<(&String, &Entry), AuthError> {
        for name in cert.map_candidates() {
            if let Some(found) = self.by_name.get_key_value(&name) {
                return Ok(found);
            }
        }
        // Deterministic choice if several configured DNs are equivalent.
        let mut names: Vec<(&String, &Entry)> = self.by_name.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        names
            .into_iter()
            .find(|(name, _)| crate::tls::identity::dn_equal(name, &cert.subject))
            .ok_or_else(|| AuthError::UnknownUser(cert.subject.clone()))
    }
}

fn global(user: Option<&str>) -> AuthOutcome {
    AuthOutcome {
        account: GLOBAL_ACCOUNT.to_string(),
        user: user.map(str::to_string),
        permissions: None,
        expires_at: None,
        jwt_user: None,
        account_limits: None,
        client_limits: ClientLimits::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::AuthOptions;

    fn user(name: &str, pass: &str, account: &str) -> UserSpec {
        UserSpec {
            user: Some(name.into()),
            password: Some(pass.into()),
            account: account.into(),
            ..Default::default()
        }
    }

    fn creds<'a>(user: &'a str, pass: &'a str) -> Credentials<'a> {
        Credentials {
            user: Some(user),
            pass: Some(pass),
            ..Default::default()
        }
    }

    #[test]
    fn verify_and_map_picks_the_certificate_user() {
        let cert = crate::tls::CertIdentity {
            subject: "CN=mapped-client,O=Natrium".into(),
            emails: vec!["alice@natrium.test".into()],
            uris: vec!["spiffe://natrium/alice".into()],
            ..Default::default()
        };
        let mapped = |users: Vec<UserSpec>, pass: Option<&str>| {
            let opts = Options {
                auth: AuthOptions {
                    users,
                    ..Default::default()
                },
                ..Default::default()
            };
            let d = UserDirectory::from_options(&opts).expect("valid users");
            d.authenticate(&Credentials {
                user: Some("other"),
                pass,
                tls_map: Some(&cert),
                ..Default::default()
            })
            .map(|o| (o.user, o.account))
        };
        let named = |n: &str, acc: &str| UserSpec {
            user: Some(n.into()),
            account: acc.into(),
            ..Default::default()
        };
        // E-mail SAN first, whatever CONNECT's user says, and no password needed.
        let users = || {
            vec![
                named("CN=mapped-client,O=Natrium", "B"),
                named("alice@natrium.test", "A"),
                user("other", "p", "C"),
            ]
        };
        assert_eq!(
            mapped(users(), None).ok(),
            Some((Some("alice@natrium.test".into()), "A".into()))
        );
        // As nats-server, a CONNECT password must still match the mapped user's.
        assert!(matches!(
            mapped(users(), Some("p")),
            Err(AuthError::WrongPassword(_))
        ));
        assert_eq!(
            mapped(
                vec![user("alice@natrium.test", "secret", "S")],
                Some("secret")
            )
            .ok()
            .map(|o| o.1),
            Some("S".into())
        );
        assert_eq!(
            mapped(vec![named("spiffe://natrium/alice", "U")], None)
                .ok()
                .map(|o| o.1),
            Some("U".into())
        );
        // The subject DN, literally or in another RDN order.
        assert_eq!(
            mapped(vec![named("O=Natrium, CN=mapped-client", "D")], None)
                .ok()
                .map(|o| o.1),
            Some("D".into())
        );
        // A configured user the certificate does not name is never picked.
        assert!(matches!(
            mapped(vec![user("other", "p", "C")], Some("p")),
            Err(AuthError::UnknownUser(_))
        ));
    }

    #[test]
    fn users_land_in_their_accounts() {
        let opts = Options {
            auth: AuthOptions {
                users: vec![
                    user("a", "pa", "A"),
                    user("b", "pb", "B"),
                    user("g", "pg", ""),
                ],
                ..Default::default()
            },
            ..Default::default()
        };
        let d = UserDirectory::from_options(&opts).expect("valid users");
        assert!(d.auth_required());
        assert_eq!(
            d.authenticate(&creds("a", "pa")).map(|o| o.account).ok(),
            Some("A".into())
        );
        assert_eq!(
            d.authenticate(&creds("b", "pb")).map(|o| o.account).ok(),
            Some("B".into())
        );
        assert_eq!(
            d.authenticate(&creds("g", "pg")).map(|o| o.account).ok(),
            Some("$G".into())
        );
        assert!(matches!(
            d.authenticate(&creds("a", "pb")),
            Err(AuthError::WrongPassword(_))
        ));
        assert!(matches!(
            d.authenticate(&creds("z", "pa")),
            Err(AuthError::UnknownUser(_))
        ));
        assert!(matches!(
            d.authenticate(&Credentials::default()),
            Err(AuthError::NoMatch)
        ));
    }

    #[test]
    fn no_auth_user_applies_only_without_credentials() {
        let opts = Options {
            auth: AuthOptions {
                users: vec![user("a", "pa", "A")],
                no_auth_user: Some("a".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let d = UserDirectory::from_options(&opts).expect("valid users");
        assert_eq!(
            d.authenticate(&Credentials::default())
                .map(|o| o.account)
                .ok(),
            Some("A".into())
        );
        assert!(d.authenticate(&creds("a", "wrong")).is_err());
    }

    #[test]
    fn bad_configuration_is_reported() {
        let opts = Options {
            auth: AuthOptions {
                users: vec![user("a", "pa", "A"), user("a", "pb", "B")],
                ..Default::default()
            },
            ..Default::default()
        };
        let e = UserDirectory::from_options(&opts).err();
        assert!(matches!(&e, Some(UserConfigError::DuplicateUser(n)) if n == "a"));
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("duplicate user \"a\"")
        );
        let opts = Options {
            auth: AuthOptions {
                no_auth_user: Some("ghost".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let e = UserDirectory::from_options(&opts).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("no_auth_user \"ghost\" is not a configured user")
        );
        let opts = Options {
            auth: AuthOptions {
                users: vec![UserSpec {
                    nkey: Some("not-a-key".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(
            UserDirectory::from_options(&opts).err(),
            Some(UserConfigError::Nkey { nkey, .. }) if nkey == "not-a-key"
        ));
    }

    #[test]
    fn nkey_users_sign_the_nonce() {
        let kp = ::nkeys::KeyPair::new_user();
        let public = kp.public_key();
        let opts = Options {
            auth: AuthOptions {
                users: vec![UserSpec {
                    nkey: Some(public.clone()),
                    account: "N".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        };
        let d = UserDirectory::from_options(&opts).expect("valid nkey user");
        assert!(d.needs_nonce());
        let nonce = nkeys::generate_nonce();
        let sig = nkeys::sign_nonce(&kp, &nonce).expect("signing");
        let good = Credentials {
            nkey: Some(&public),
            sig: Some(&sig),
            nonce: Some(&nonce),
            ..Default::default()
        };
        assert_eq!(
            d.authenticate(&good).map(|o| o.account).ok(),
            Some("N".into())
        );
        let other_nonce = nkeys::generate_nonce();
        let replayed = Credentials {
            nonce: Some(&other_nonce),
            ..good
        };
        assert!(matches!(
            d.authenticate(&replayed),
            Err(AuthError::BadSignature(_))
        ));
    }

    #[test]
    fn unknown_users_cost_a_bcrypt_verification_when_passwords_are_bcrypt() {
        let hashed = |cost| bcrypt::hash("right", cost).expect("hash");
        let dir = |users: Vec<UserSpec>, single: Option<(&str, String)>| {
            let opts = Options {
                auth: AuthOptions {
                    users,
                    username: single.as_ref().map(|s| s.0.to_string()),
                    password: single.map(|s| s.1),
                    ..Default::default()
                },
                ..Default::default()
            };
            UserDirectory::from_options(&opts).expect("valid users")
        };
        // Plain passwords: nothing to spend.
        assert!(dir(vec![user("a", "plain", "")], None)
            .unknown_user_hash
            .is_none());
        // The highest configured cost, from `users` or the single user.
        let d = dir(
            vec![user("a", &hashed(5), ""), user("b", &hashed(7), "")],
            None,
        );
        let cost = d.unknown_user_hash.as_ref().and_then(Password::bcrypt_cost);
        assert_eq!(cost, Some(7));
        let single = dir(Vec::new(), Some(("s", hashed(6))));
        assert_eq!(
            single
                .unknown_user_hash
                .as_ref()
                .and_then(Password::bcrypt_cost),
            Some(6)
        );

        // Refusing an unknown user takes about as long as refusing a wrong password.
        let median = |d: &UserDirectory, c: &Credentials<'_>| {
            let mut t: Vec<_> = (0..7)
                .map(|_| {
                    let start = std::time::Instant::now();
                    assert!(d.authenticate(c).is_err());
                    start.elapsed()
                })
                .collect();
            t.sort();
            t[3]
        };
        for d in [&d, &single] {
            let known = d
                .by_name
                .keys()
                .next()
                .or(d.single.as_ref().map(|s| &s.0))
                .expect("a user")
                .clone();
            let wrong = median(d, &creds(&known, "wrong"));
            let unknown = median(d, &creds("nobody", "wrong"));
            assert!(
                unknown * 3 > wrong,
                "unknown user {unknown:?}, wrong password {wrong:?}"
            );
        }
    }
}
