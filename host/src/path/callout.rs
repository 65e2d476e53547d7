//! CONNECT through the auth callout (nats-server 2.10, ADR-26): the out-of-process sibling of
//! the authorizer plugins. A CONNECT that is not from one of `auth_users` is published as an
//! authorization request to `$SYS.REQ.USER.AUTH` in the callout account, with a reply subject
//! an internal subscription of this connection waits on; the answer is checked by
//! [`crate::auth::callout`] and the client admitted with the grant, or refused.
//!
//! Only this connection's task waits (up to the auth timeout), so a slow or silent service
//! never holds a worker or another connection's handshake. The service's answer is delivered
//! on the service's own task, which only hands the bytes over; the signature checks run here.

use super::session::{Flow, Session};
use crate::account::{AuthOutcome, ClientLimits};
use crate::auth::callout::{
    self, Asking, CalloutError, ClientFacts, Grant, Placement, Policy, AUTH_CALLOUT_SUBJECT,
    XKEY_HEADER,
};
use crate::auth::jwt::{self, ClientInformation, ClientTls, ConnectOptions, ServerId};
use crate::auth::permissions::{PermissionSpec, Permissions, SubjectPermission};
use crate::client::{Client, CloseReason, Effects, Internal, Subscription};
use crate::options::AuthCallout;
use crate::proto::headers::HeaderBlock;
use crate::proto::{self, MsgRef};
use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Whether this CONNECT is one of the callout service's own (`auth_users`): those are
/// authenticated as configured. The CONNECT's user is its NKey, else its name, else its
/// token — what nats-server compares with `auth_users`.
pub(super) fn is_auth_user(cfg: &AuthCallout, co: &proto::ConnectOptions) -> bool {
    let id = co
        .nkey
        .as_deref()
        .or(co.user.as_deref())
        .or(co.auth_token.as_deref());
    id.is_some_and(|id| cfg.auth_users.iter().any(|u| u == id))
}

impl Session {
    /// Asks the callout service about this CONNECT and admits or refuses the client.
    pub async fn callout(&mut self, co: proto::ConnectOptions, policy: Policy) -> Flow {
        let opts = self.core.options();
        let account = match &policy.placement {
            Placement::Audience => self.core.accounts.get(&policy.account),
            // Operator-mode accounts are made when first used.
            Placement::IssuerAccount { .. } => {
                Some(self.core.accounts.get_or_create(&policy.account))
            }
        };
        let Some(account) = account else {
            let why = CalloutError::NoCalloutAccount(policy.account.clone());
            return self.refuse(&co, &why.to_string());
        };
        let wait = opts.limits.auth_timeout;
        let request = match callout::request(&self.core.keys, &policy, self.asking(&co, wait)) {
            Ok(r) => r,
            Err(e) => return self.refuse(&co, &e.to_string()),
        };

        let (tx, rx) = oneshot::channel();
        let waiter = Arc::new(Client::new_internal(
            self.core.next_client_id(),
            "auth callout",
            Arc::new(ReplyWaiter(Mutex::new(Some(tx)))),
        ));
        let reply = format!(
            "$SYS._INBOX.{}.{}",
            self.client.id,
            crate::util::random_base32(22, false)
        );
        let sub = ReplySubscription {
            sub: self.core.subscribe_internal(&account, &waiter, &reply),
            core: self.core.clone(),
            account: account.clone(),
        };
        let headers = request
            .xkey_header
            .as_deref()
            .map(|x| HeaderBlock::new(None).add(XKEY_HEADER, x).finish());
        self.core.publish(
            &account,
            &MsgRef {
                subject: AUTH_CALLOUT_SUBJECT.as_bytes(),
                reply: Some(reply.as_bytes()),
                headers: headers.as_deref(),
                payload: &request.payload,
            },
        );
        let client = self.client.clone();
        let answer = tokio::select! {
            biased;
            _ = client.wake_reader.notified() => None,
            answer = tokio::time::timeout(wait, rx) => Some(answer),
        };
        drop(sub);
        let payload = match answer {
            None => {
                // Kicked or shut down while waiting.
                return Flow::Close(client.close_reason().unwrap_or(CloseReason::ServerShutdown));
            }
            Some(Ok(Ok(payload))) => payload,
            Some(_) => return self.refuse(&co, &CalloutError::Timeout.to_string()),
        };
        let facts = ClientFacts {
            ip: Some(self.client.addr.ip()),
            now: jwt::now_unix(),
            local_utc_offset: 0,
        };
        let admitted = request
            .expect
            .check(&self.core.keys, &payload, &facts)
            .and_then(|grant| self.outcome(&policy, grant, &co));
        match admitted {
            Ok(outcome) => {
                tracing::debug!(
                    "{} - admitted by auth callout into account {}",
                    self.client.label(),
                    outcome.account
                );
                self.finish_connect(co, outcome, true)
            }
            Err(e) => self.refuse(&co, &e.to_string()),
        }
    }

    /// What the request says about this connection.
    fn asking(&self, co: &proto::ConnectOptions, timeout: std::time::Duration) -> Asking {
        let opts = self.core.options();
        let info = self.core.info_base();
        let version = info.get("version").and_then(|v| v.as_str()).unwrap_or("");
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let tls = self
            .client
            .meta
            .lock()
            .tls_version
            .clone()
            .map(|version| ClientTls {
                version,
                ..Default::default()
            });
        Asking {
            server: ServerId {
                name: self.core.name.clone(),
                host: opts.listen.host.clone(),
                id: String::new(), // the request fills in the signing key's
                version: version.to_string(),
                tags: opts.server_tags.clone(),
                ..Default::default()
            },
            client: ClientInformation {
                host: self.client.addr.ip().to_string(),
                id: self.client.id,
                user: co
                    .nkey
                    .clone()
                    .or_else(|| co.user.clone())
                    .unwrap_or_default(),
                name: s(&co.name),
                kind: "Client".into(),
                client_type: "nats".into(),
                nonce: if co.sig.is_some() {
                    self.nonce.clone().unwrap_or_default()
                } else {
                    String::new()
                },
                ..Default::default()
            },
            connect: ConnectOptions {
                jwt: s(&co.jwt),
                nkey: s(&co.nkey),
                sig: s(&co.sig),
                auth_token: s(&co.auth_token),
                user: s(&co.user),
                pass: s(&co.pass),
                name: s(&co.name),
                lang: s(&co.lang),
                version: s(&co.version),
                protocol: co.protocol,
            },
            tls,
            timeout,
            now: jwt::now_unix(),
        }
    }

    /// The grant in the directory's terms. The target account must exist (operator mode: its
    /// JWT must validate and accept the grant); a client placed in the callout account may
    /// not publish authorization requests itself (as nats-server: it could otherwise ask the
    /// service in the server's name). The user shown in logs and monitoring is the user JWT's
    /// `name`, else the CONNECT's user (as nats-server).
    fn outcome(
        &self,
        policy: &Policy,
        grant: Grant,
        co: &proto::ConnectOptions,
    ) -> Result<AuthOutcome, CalloutError> {
        let (grant, account_limits) = match &policy.placement {
            Placement::Audience => {
                if self.core.accounts.get(&grant.account).is_none() {
                    return Err(CalloutError::UnknownAccount(grant.account));
                }
                (grant, None)
            }
            Placement::IssuerAccount { .. } => {
                let directory = self.core.user_directory();
                let claims = directory
                    .operator()
                    .ok_or_else(|| CalloutError::UnknownAccount(grant.account.clone()))?
                    .account_claims(&grant.account)
                    .map_err(|e| CalloutError::UnknownAccount(format!("{}: {e}", grant.account)))?;
                let limits = crate::account::operator::jwt_account_limits(&claims);
                (grant.in_account(&claims)?, Some(limits))
            }
        };
        let mut spec = grant.permissions.unwrap_or_default();
        if grant.account == policy.account {
            deny_publish(&mut spec, AUTH_CALLOUT_SUBJECT);
        }
        let permissions = if spec.is_empty() {
            None
        } else {
            let compiled = Permissions::compile(&spec)
                .map_err(|e| CalloutError::Permissions(e.to_string()))?;
            Some(Arc::new(compiled))
        };
        let expires_at = grant
            .expires_at
            .map(|s| u64::try_from(s).unwrap_or(0).saturating_mul(1_000_000_000));
        Ok(AuthOutcome {
            account: grant.account,
            user: if grant.name.is_empty() {
                co.user.clone()
            } else {
                Some(grant.name)
            },
            permissions,
            expires_at,
            jwt_user: None,
            account_limits,
            client_limits: ClientLimits {
                max_subscriptions: grant.max_subscriptions,
                max_payload: grant.max_payload,
            },
        })
    }
}

/// Adds `subject` to the publish deny list.
fn deny_publish(spec: &mut PermissionSpec, subject: &str) {
    let publish = spec.publish.get_or_insert_with(SubjectPermission::default);
    publish
        .deny
        .get_or_insert_with(Vec::new)
        .push(subject.to_string());
}

/// The reply subject's subscription, ended however the wait ends (also when the connection
/// task is dropped at shutdown).
struct ReplySubscription {
    sub: Arc<Subscription>,
    core: Arc<super::Core>,
    account: Arc<crate::account::Account>,
}

impl Drop for ReplySubscription {
    fn drop(&mut self) {
        self.core.unsubscribe_internal(&self.account, &self.sub);
    }
}

/// The internal subscriber of one request's reply subject: hands the first answer to the
/// waiting connection.
struct ReplyWaiter(Mutex<Option<oneshot::Sender<Bytes>>>);

impl Internal for ReplyWaiter {
    fn deliver(
        &self,
        _sub: &Subscription,
        msg: &MsgRef<'_>,
        _from: Option<&Client>,
        _fx: &mut Effects,
    ) -> bool {
        match self.0.lock().take() {
            Some(tx) => {
                // The waiter may have timed out; then nobody needs the answer.
                let _ = tx.send(Bytes::copy_from_slice(msg.payload));
                true
            }
            None => false,
        }
    }
}
