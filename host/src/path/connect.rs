//! CONNECT: protocol options, authentication (the auth callout for all but its own users,
//! configured users and operator JWTs, then authorizer plugins), admission into the account (its connection limit and its payload and
//! subscription limits), and the connect/disconnect events.

use super::session::{Flow, Session};
use crate::account::{AuthError, AuthOutcome, ClientLimits, Credentials};
use crate::auth::backoff::Admission;
use crate::auth::permissions::{
    ConnPermissions, PermissionSpec, Permissions, ResponsePermission, SubjectPermission,
};
use crate::client::CloseReason;
use crate::plugin::{ConnectRequest, Decision, OutcomeKind};
use crate::proto::{self, ServerError};
use crate::util::unix_nanos;
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Session {
    pub(super) fn on_connect(&mut self, json: &[u8]) -> Flow {
        let co = match proto::ConnectOptions::parse(json) {
            Ok(co) => co,
            Err(e) => {
                tracing::error!("{} - invalid CONNECT: {e}", self.client.label());
                return Flow::Close(CloseReason::ProtocolViolation);
            }
        };
        if co.protocol > 1 {
            return self.fail(ServerError::InvalidClientProtocol);
        }
        if co.no_responders && !co.headers {
            return self.fail(ServerError::NoRespondersRequiresHeaders);
        }
        if let Some(cfg) = self.core.options().auth.failure_backoff {
            let ip = self.client.addr.ip();
            match self.core.auth_backoff.admit(ip, &cfg, Instant::now()) {
                Admission::Now => {}
                Admission::At(at) => return Flow::Backoff(Box::new((co, at.into()))),
                Admission::Refuse => {
                    return self.refuse(
                        &co,
                        "too many authentication failures from this address \
                         (failure_backoff), refused without checking",
                    )
                }
            }
        }
        self.check_credentials(co)
    }

    /// Authenticates a parsed CONNECT: the auth callout when configured (`Flow::Callout`),
    /// else configured users and operator JWTs first, then the authorizer plugins. With bcrypt passwords configured the check is left to
    /// [`Session::check_credentials_off_worker`] (`Flow::Verify`).
    pub fn check_credentials(&mut self, co: proto::ConnectOptions) -> Flow {
        if let Some(cfg) = &self.core.options().auth.callout {
            // As nats-server: the callout decides for everyone but its own service users,
            // whatever the directory would say.
            if !super::callout::is_auth_user(cfg, &co) {
                let policy = crate::auth::callout::Policy::configured(cfg);
                return Flow::Callout(Box::new((co, policy)));
            }
        }
        let directory = self.core.user_directory();
        if !self.asks_directory(&directory) {
            return self.after_check(co, Err(AuthError::NoMatch));
        }
        if directory.verification_is_slow() {
            return Flow::Verify(Box::new(co));
        }
        let tls_map = self.tls_map();
        let checked = directory.authenticate(&credentials(
            &co,
            self.nonce.as_deref(),
            tls_map.as_deref(),
            self.client.addr.ip(),
        ));
        self.after_check(co, checked)
    }

    /// The same check on the blocking pool, at most one per core at a time: a bcrypt
    /// verification holds a thread for tens of milliseconds, and password guessing (unknown
    /// users cost one too) must not occupy the workers that move everyone's messages. A CONNECT
    /// that finds no free slot within the auth timeout is refused.
    pub async fn check_credentials_off_worker(&mut self, co: proto::ConnectOptions) -> Flow {
        let wait = self.core.options().limits.auth_timeout;
        let slots = self.core.slow_auth.clone();
        let Ok(Ok(permit)) = tokio::time::timeout(wait, slots.acquire_owned()).await else {
            return self.refuse(&co, "too many password verifications in progress");
        };
        let directory = self.core.user_directory();
        let (nonce, tls_map, ip) = (self.nonce.clone(), self.tls_map(), self.client.addr.ip());
        let checked = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let checked =
                directory.authenticate(&credentials(&co, nonce.as_deref(), tls_map.as_deref(), ip));
            (co, checked)
        })
        .await;
        match checked {
            Ok((co, checked)) => self.after_check(co, checked),
            Err(e) => {
                tracing::error!(
                    "{} - password verification failed: {e}",
                    self.client.label()
                );
                Flow::Close(CloseReason::ServerShutdown)
            }
        }
    }

    /// With no users configured the directory admits everyone; an authorizer plugin must
    /// still decide then, so the directory is not asked.
    fn asks_directory(&self, directory: &crate::account::UserDirectory) -> bool {
        directory.auth_required() || self.plugins.authorizers.is_empty()
    }

    /// The verified client certificate, when `verify_and_map` makes it name the user.
    fn tls_map(&self) -> Option<Arc<crate::tls::CertIdentity>> {
        let mapped = self
            .core
            .options()
            .tls
            .as_ref()
            .is_some_and(|t| t.verify_and_map);
        if mapped {
            self.client.meta.lock().tls_identity.clone()
        } else {
            None
        }
    }

    /// What follows the directory's answer: admission, the authorizer plugin, or refusal.
    fn after_check(
        &mut self,
        co: proto::ConnectOptions,
        checked: Result<AuthOutcome, AuthError>,
    ) -> Flow {
        match checked {
            Ok(outcome) => match outcome.jwt_user.as_ref().and_then(|id| id.callout.clone()) {
                // Operator mode: the account hands its users to its callout service.
                Some(policy) => Flow::Callout(Box::new((co, policy))),
                None => self.finish_connect(co, outcome, false),
            },
            // Configured users come first; anyone else is the authorizer plugin's to decide.
            Err(_) if !self.plugins.authorizers.is_empty() => {
                let tls_identity = self.client.meta.lock().tls_identity.clone();
                let request = self.connect_request(&co, tls_identity.as_deref());
                Flow::Authorize(Box::new((co, request)))
            }
            Err(e) => self.refuse(&co, &e.to_string()),
        }
    }

    /// What an authorizer plugin is asked.
    fn connect_request(
        &self,
        co: &proto::ConnectOptions,
        tls: Option<&crate::tls::CertIdentity>,
    ) -> ConnectRequest {
        let nkey_verified = match (&co.nkey, &co.sig, &self.nonce) {
            (Some(k), Some(sig), Some(n)) => {
                crate::auth::nkeys::verify_nonce(k, crate::auth::nkeys::KeyKind::User, n, sig)
                    .is_ok()
            }
            _ => false,
        };
        ConnectRequest {
            user: co.user.clone(),
            pass: co.pass.clone(),
            auth_token: co.auth_token.clone(),
            jwt: co.jwt.clone(),
            nkey: co.nkey.clone(),
            nkey_verified,
            name: co.name.clone(),
            lang: co.lang.clone(),
            version: co.version.clone(),
            client_ip: self.client.addr.ip().to_string(),
            client_port: self.client.addr.port(),
            server_name: self.core.name.clone(),
            server_id: self.core.id.clone(),
            tls: tls.map(|t| t.to_plugin()),
        }
    }

    /// An authentication failure: counted (`auth_failures`), remembered for
    /// `failure_backoff`, logged (a few lines a second, then a count), refused.
    pub(super) fn refuse(&mut self, co: &proto::ConnectOptions, why: &str) -> Flow {
        self.core
            .stats
            .auth_failures
            .fetch_add(1, Ordering::Relaxed);
        if let Some(cfg) = self.core.options().auth.failure_backoff {
            self.core
                .auth_backoff
                .failed(self.client.addr.ip(), &cfg, Instant::now());
        }
        let (log, suppressed) = self.core.auth_failure_log.admit();
        if suppressed > 0 {
            tracing::error!(
                "{suppressed} more authentication failures not logged (a few a second are; \
                 all are counted in /varz auth_failures)"
            );
        }
        if log {
            tracing::error!(
                "{} - \"{}:{}:{}\" - authentication error: {why}",
                self.client.label(),
                co.version.as_deref().unwrap_or(""),
                co.lang.as_deref().unwrap_or(""),
                co.name.as_deref().unwrap_or("")
            );
        }
        self.fail(ServerError::AuthorizationViolation)
    }

    /// Asks the authorizer plugins in order; the first decision counts, any failure denies.
    pub async fn authorize(&mut self, co: proto::ConnectOptions, request: ConnectRequest) -> Flow {
        let Some(authorizer) = self.plugins.authorizers.first().cloned() else {
            return self.refuse(&co, "no authorizer");
        };
        match authorizer.authorize(request).await {
            Ok(Decision::Allow(allowed)) => {
                authorizer.count_outcome(OutcomeKind::Allow);
                let spec = plugin_permissions(&allowed);
                let permissions = if spec.is_empty() {
                    None
                } else {
                    match Permissions::compile(&spec) {
                        Ok(p) => Some(Arc::new(p)),
                        Err(e) => {
                            let why = format!(
                                "plugin '{}' returned bad permissions: {e}",
                                authorizer.name()
                            );
                            return self.refuse(&co, &why);
                        }
                    }
                };
                let mut expires_at = None;
                if let Some(at) = allowed.expires_at {
                    if at <= unix_nanos() {
                        return self.refuse(&co, "authorization already expired");
                    }
                    expires_at = Some(at);
                }
                let outcome = AuthOutcome {
                    account: allowed.account.clone(),
                    user: Some(allowed.user.clone()),
                    permissions,
                    expires_at,
                    jwt_user: None,
                    account_limits: None,
                    client_limits: ClientLimits {
                        max_subscriptions: allowed
                            .limits
                            .max_subscriptions
                            .and_then(|n| usize::try_from(n).ok()),
                        max_payload: allowed
                            .limits
                            .max_payload
                            .and_then(|n| usize::try_from(n).ok()),
                    },
                };
                self.finish_connect(co, outcome, true)
            }
            Ok(Decision::Deny(reason)) => {
                authorizer.count_outcome(OutcomeKind::Deny);
                self.audit(
                    authorizer.name(),
                    "authorizer",
                    OutcomeKind::Deny,
                    b"",
                    &reason,
                );
                let why = format!("denied by plugin '{}': {reason}", authorizer.name());
                self.refuse(&co, &why)
            }
            Err(e) => {
                // Authorizers fail closed: a failure is a deny.
                authorizer.count_outcome(OutcomeKind::Deny);
                let why = format!("plugin '{}' failed ({}): {e}", authorizer.name(), e.kind());
                self.audit(
                    authorizer.name(),
                    "authorizer",
                    OutcomeKind::Deny,
                    b"",
                    &why,
                );
                self.refuse(&co, &why)
            }
        }
    }

    pub(super) fn finish_connect(
        &mut self,
        co: proto::ConnectOptions,
        outcome: AuthOutcome,
        by_plugin: bool,
    ) -> Flow {
        if self.core.options().auth.failure_backoff.is_some() {
            self.core.auth_backoff.succeeded(self.client.addr.ip());
        }
        if let Some(at) = outcome.expires_at {
            let left = Duration::from_nanos(at.saturating_sub(unix_nanos()));
            self.expires = Some(tokio::time::Instant::now() + left);
        }
        self.enter_account(&outcome.account);
        if let Some(l) = &outcome.account_limits {
            self.account.set_limits(l);
        }
        if let Err(flow) = self.admit(co.protocol, outcome.client_limits) {
            return flow;
        }
        *self.client.granted.lock() = outcome.permissions.clone();
        self.perms = outcome.permissions.map(ConnPermissions::new);
        let tracks = self
            .perms
            .as_ref()
            .is_some_and(|p| p.permissions().response().is_some());
        self.client.tracks_replies.store(tracks, Ordering::Relaxed);
        self.handshake = None;
        self.connected = true;
        self.verbose = co.verbose;
        self.pedantic = co.pedantic;
        self.echo = co.echo;
        self.no_responders = co.no_responders;
        self.client.headers.store(co.headers, Ordering::Relaxed);
        {
            let mut meta = self.client.meta.lock();
            meta.name = co.name.unwrap_or_default();
            meta.lang = co.lang.unwrap_or_default();
            meta.version = co.version.unwrap_or_default();
            meta.user = outcome.user;
            meta.account = self.account.name.to_string();
            meta.jwt_user = outcome.jwt_user;
            // Kept so that a reload can check them against the new configuration.
            meta.creds = Some(Arc::new(crate::client::ConnectCreds {
                user: co.user,
                pass: co.pass,
                token: co.auth_token,
                nkey: co.nkey,
                sig: co.sig,
                jwt: co.jwt,
                nonce: self.nonce.clone(),
                by_plugin,
            }));
        }
        if let Some(events) = self.core.events() {
            events.connected(&self.core, &self.client, &self.account.name);
        }
        self.ok();
        Flow::Continue
    }

    /// Admits the client into its account: enforces the account's connection limit and
    /// takes the lowest of the server's, the account's and the client's own (an authorizer's
    /// decision) subscription and payload limits. A lower max_payload makes the parser refuse
    /// bigger PUBs with 'Maximum Payload Violation', as nats-server does, and is announced in
    /// an INFO to clients that understand async INFO (protocol 1), so that they check it
    /// before sending.
    fn admit(&mut self, protocol: i64, own: ClientLimits) -> Result<(), Flow> {
        if !self.account.try_add_connection() {
            tracing::error!(
                "{} - Maximum account active connections exceeded for account {}",
                self.client.label(),
                self.account.name
            );
            return Err(self.fail(ServerError::MaxAccountConnectionsExceeded));
        }
        self.admitted = true;
        self.max_subs = lowest(self.account.max_subscriptions(), own.max_subscriptions);
        let max_payload = lowest(self.account.max_payload(), own.max_payload);
        if let Some(max) = max_payload.filter(|&m| m < self.limits.max_payload) {
            tracing::debug!(
                "{} - max_payload {max} (server {})",
                self.client.label(),
                self.limits.max_payload
            );
            self.limits.max_payload = max;
            if protocol >= 1 {
                self.send_max_payload_info(max);
            }
        }
        Ok(())
    }

    fn send_max_payload_info(&mut self, max: usize) {
        let mut info = (*self.core.info_base()).clone();
        info.insert("client_id".into(), serde_json::json!(self.client.id));
        info.insert("max_payload".into(), serde_json::json!(max));
        let Ok(info) = serde_json::to_vec(&info) else {
            return;
        };
        let mut b = BytesMut::new();
        proto::write_info(&mut b, &info);
        self.send(&b);
    }

    /// Undoes `admit` when the connection ends, and tells the system account.
    pub(super) fn release(&mut self, reason: CloseReason) {
        if !std::mem::take(&mut self.admitted) {
            return;
        }
        self.account.remove_connection();
        let reason = self.client.close_reason().unwrap_or(reason);
        if let Some(events) = self.core.events() {
            events.disconnected(&self.core, &self.client, &self.account.name, reason);
        }
    }
}

/// The lower of two optional limits (`None` = unlimited).
fn lowest(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// An authorizer's permissions in the configuration's terms (empty allow = all not denied).
fn plugin_permissions(a: &crate::plugin::Allowed) -> PermissionSpec {
    let side = |p: &crate::plugin::Permission| {
        (!p.allow.is_empty() || !p.deny.is_empty()).then(|| SubjectPermission {
            allow: (!p.allow.is_empty()).then(|| p.allow.clone()),
            deny: (!p.deny.is_empty()).then(|| p.deny.clone()),
        })
    };
    PermissionSpec {
        publish: side(&a.publish),
        subscribe: side(&a.subscribe),
        response: a.allow_responses.as_ref().map(|r| ResponsePermission {
            max_msgs: i64::from(r.max_msgs),
            expires: Duration::from_millis(r.expires_ms),
        }),
    }
}

/// The credentials a CONNECT presents.
fn credentials<'a>(
    co: &'a proto::ConnectOptions,
    nonce: Option<&'a str>,
    tls_map: Option<&'a crate::tls::CertIdentity>,
    ip: std::net::IpAddr,
) -> Credentials<'a> {
    Credentials {
        tls_map,
        user: co.user.as_deref(),
        pass: co.pass.as_deref(),
        token: co.auth_token.as_deref(),
        nkey: co.nkey.as_deref(),
        sig: co.sig.as_deref(),
        nonce,
        jwt: co.jwt.as_deref(),
        ip: Some(ip),
    }
}
