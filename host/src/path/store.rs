//! The store stage: JetStream as internal clients of each account, as in nats-server.
//!
//! - The API: an internal subscription on `$JS.API.>` (and `$JS.<domain>.API.>`) in every
//!   account, answering through `jetstream::api`. A client subscribed to the same subjects
//!   sees the requests too, and a request that reaches the account through a service import
//!   is answered like a local one (the reply routes back through the import).
//! - Capture: one internal client per stream, subscribed to the stream's subjects. A
//!   publish that matches is stored (buffered) on the publisher's task; the stream is
//!   flushed once per read batch and only then do its PubAcks go out (group commit, see
//!   `route::Router::settle`).
//!
//! An account that imports `$JS.API.>` from another account gets no API subscription of its
//! own: its requests are meant for the exporter's JetStream.

use super::Core;
use crate::account::Account;
use crate::client::{Client, Commit, Durable, Effects, Internal, Subscription};
use crate::jetstream::errors::ApiError;
use crate::jetstream::stream::{Origin, Stream};
use crate::jetstream::{advisory, api, JetStream, JsAccount};
use crate::proto::{Msg, MsgRef};
use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::{Arc, Weak};

/// JetStream's internal clients in one account.
pub struct Attached {
    pub(super) core: Weak<Core>,
    pub(super) account: Weak<Account>,
    pub(super) js: Arc<JetStream>,
    pub(super) acc: Arc<JsAccount>,
    api: Mutex<Option<Subscriber>>,
    capture: Mutex<Captures>,
    pub(super) consumers: Mutex<super::consumers::ConsumerClients>,
}

#[derive(Default)]
struct Captures {
    /// The JsAccount generation these subscriptions reflect.
    generation: Option<u64>,
    /// Per stream: its internal client and one subscription per subject filter.
    streams: Vec<(Arc<Stream>, Arc<Client>, Subscriptions)>,
}

type Subscriptions = Vec<Arc<Subscription>>;

/// An internal client and its subscriptions.
type Subscriber = (Arc<Client>, Subscriptions);

/// Installs (or brings up to date) JetStream's internal subscriptions in `account`.
pub fn attach(core: &Arc<Core>, account: &Arc<Account>) {
    let Some(js) = core.jetstream.clone() else {
        return;
    };
    // As in nats-server, the system account never has JetStream.
    if *account.name == *core.options().accounts.system_account {
        return;
    }
    let attached = {
        let mut map = core.js_attached.lock();
        map.entry(account.name.clone())
            .or_insert_with(|| {
                Arc::new(Attached {
                    core: Arc::downgrade(core),
                    account: Arc::downgrade(account),
                    acc: js.account(&account.name),
                    js,
                    api: Mutex::new(None),
                    capture: Mutex::new(Captures::default()),
                    consumers: Mutex::new(Default::default()),
                })
            })
            .clone()
    };
    if let Some(operator) = core.user_directory().operator() {
        // Operator mode: the account JWT decides whether and how much JetStream it has.
        if let Ok(claims) = operator.account_claims(&account.name) {
            attached
                .acc
                .configure(crate::account::operator::jwt_jetstream_limits(&claims));
        }
    }
    attached.sync_api(core, account);
    attached.sync_capture();
    // Nobody waits on a consumer at start-up: there is nothing to tell.
    let _ = attached.sync_consumers();
}

impl Attached {
    /// The API subscription exists unless the account imports the API from elsewhere.
    fn sync_api(self: &Arc<Self>, core: &Core, account: &Account) {
        let imported = account
            .links
            .read()
            .services
            .iter()
            .any(|l| crate::subject::matches(&l.local, b"$JS.API.INFO"));
        let mut api = self.api.lock();
        match (&*api, imported) {
            (None, false) => {
                let handler = Arc::new(ApiService {
                    attached: Arc::downgrade(self),
                });
                let client = Arc::new(Client::new_internal(
                    core.next_client_id(),
                    "JetStream API",
                    handler,
                ));
                let mut subs = vec![core.subscribe_internal(account, &client, "$JS.API.>")];
                if let Some(domain) = &self.js.config.domain {
                    let subject = format!("$JS.{domain}.API.>");
                    subs.push(core.subscribe_internal(account, &client, &subject));
                }
                *api = Some((client, subs));
            }
            (Some((_, subs)), true) => {
                for sub in subs {
                    core.unsubscribe_internal(account, sub);
                }
                *api = None;
            }
            _ => {}
        }
    }

    /// Makes the capture subscriptions match the account's streams (after any change).
    fn sync_capture(&self) {
        let (Some(core), Some(account)) = (self.core.upgrade(), self.account.upgrade()) else {
            return;
        };
        let mut state = self.capture.lock();
        let generation = self.acc.generation();
        if state.generation == Some(generation) {
            return;
        }
        state.generation = Some(generation);
        let wanted = self.acc.capture_filters();
        // Streams that are gone, and filters a stream no longer has.
        state.streams.retain_mut(|(stream, _, subs)| {
            subs.retain(|sub| {
                let keep = wanted
                    .iter()
                    .any(|(f, s)| Arc::ptr_eq(s, stream) && f.as_bytes() == &sub.subject[..]);
                if !keep {
                    core.unsubscribe_internal(&account, sub);
                }
                keep
            });
            !subs.is_empty()
        });
        for (filter, stream) in wanted {
            let at = match state
                .streams
                .iter()
                .position(|(s, _, _)| Arc::ptr_eq(s, &stream))
            {
                Some(i) => i,
                None => {
                    let handler = Arc::new(Capture {
                        acc: self.acc.clone(),
                        stream: stream.clone(),
                        domain: self.js.config.domain.clone(),
                    });
                    let client = Arc::new(Client::new_internal(
                        core.next_client_id(),
                        "JetStream stream",
                        handler,
                    ));
                    state.streams.push((stream.clone(), client, Vec::new()));
                    state.streams.len() - 1
                }
            };
            let (_, client, subs) = &mut state.streams[at];
            if !subs.iter().any(|s| s.subject == filter.as_bytes()) {
                subs.push(core.subscribe_internal(&account, client, &filter));
            }
        }
    }
}

/// `$JS.API.>` of one account.
struct ApiService {
    attached: Weak<Attached>,
}

impl Internal for ApiService {
    fn deliver(
        &self,
        _sub: &Subscription,
        msg: &MsgRef<'_>,
        from: Option<&Client>,
        fx: &mut Effects,
    ) -> bool {
        let Some(attached) = self.attached.upgrade() else {
            return false;
        };
        let Ok(subject) = std::str::from_utf8(msg.subject) else {
            return false;
        };
        // With a domain, `$JS.<domain>.API.>` reaches the same API.
        let local;
        let subject = match attached.js.config.domain.as_deref().and_then(|d| {
            subject
                .strip_prefix("$JS.")
                .and_then(|r| r.strip_prefix(d))
                .and_then(|r| r.strip_prefix(".API."))
        }) {
            Some(rest) => {
                local = format!("{}{rest}", api::PREFIX);
                local.as_str()
            }
            None => subject,
        };
        let Some(r) = api::handle(&attached.js, &attached.acc, subject, msg.payload) else {
            return false;
        };
        if r.headers.is_none() {
            // DIRECT.GET answers (with headers) are not API responses and are not audited.
            attached.advise(subject, msg.payload, &r.payload, from, fx);
        }
        if let Some(reply) = msg.reply {
            fx.reply(reply, r.headers.map(Bytes::from), r.payload);
        }
        attached.sync_capture();
        let told = attached.sync_consumers();
        super::consumers::push_effects(fx, told);
        true
    }
}

impl Attached {
    /// The advisories an API request causes, published in this account when someone in it
    /// listens (nats-server does not build them otherwise either).
    fn advise(
        &self,
        subject: &str,
        request: &[u8],
        response: &[u8],
        from: Option<&Client>,
        fx: &mut Effects,
    ) {
        let (Some(account), Some(core)) = (self.account.upgrade(), self.core.upgrade()) else {
            return;
        };
        let listens = |s: &str| !account.sublist.matches(s.as_bytes()).is_empty();
        let domain = self.js.config.domain.as_deref();
        let actions = [
            advisory::stream_action(subject, response, domain),
            advisory::consumer_action(subject, response, domain),
            advisory::consumer_pause(subject, response, domain),
        ];
        for (action, body) in actions.into_iter().flatten() {
            if listens(&action) {
                fx.publish
                    .push(Msg::new(Bytes::from(action), Bytes::from(body)));
            }
        }
        if listens(advisory::API_AUDIT) {
            let client = from.map_or(serde_json::Value::Null, |c| c.event_info(None));
            let body = advisory::api_audit(&core.name, client, subject, request, response, domain);
            fx.publish.push(Msg::new(
                Bytes::from_static(advisory::API_AUDIT.as_bytes()),
                Bytes::from(body),
            ));
        }
    }
}

/// One stream's capture of client publishes.
struct Capture {
    acc: Arc<JsAccount>,
    stream: Arc<Stream>,
    domain: Option<String>,
}

impl Internal for Capture {
    fn deliver(
        &self,
        _sub: &Subscription,
        msg: &MsgRef<'_>,
        _from: Option<&Client>,
        fx: &mut Effects,
    ) -> bool {
        let Ok(subject) = std::str::from_utf8(msg.subject) else {
            return false;
        };
        let stored = self.acc.store(
            &self.stream,
            subject,
            msg.headers,
            msg.payload,
            Origin::Client,
        );
        let domain = self.domain.as_deref();
        let mut mark = None;
        let ack = match stored {
            Ok((ack, republished)) => {
                if let Some(r) = republished {
                    fx.publish
                        .push(Msg::new(r.subject, r.payload).with_headers(Some(r.headers)));
                }
                mark = Some(ack.mark);
                api::pub_ack(&self.stream.name, domain, Ok(ack))
            }
            Err(e) => {
                tracing::debug!(
                    "JetStream publish to '{}' refused: {}",
                    self.stream.name,
                    e.description
                );
                api::pub_ack(&self.stream.name, domain, Err(e))
            }
        };
        let reply = msg
            .reply
            .filter(|_| !self.stream.no_ack())
            .map(|r| Msg::new(Bytes::copy_from_slice(r), ack));
        fx.commits.push(Commit {
            unit: self.stream.clone(),
            reply,
            mark,
        });
        true
    }
}

impl Durable for Stream {
    fn flush(&self) -> Result<(), Bytes> {
        Stream::flush(self).map_err(|e| {
            tracing::error!(
                "JetStream: writing stream '{}': {}",
                self.name,
                e.description
            );
            Bytes::from(api::pub_ack(&self.name, None, Err(e)))
        })
    }

    fn durable(&self, mark: u64) -> Result<(), Bytes> {
        if self.is_durable(mark) {
            return Ok(());
        }
        let e = ApiError::insufficient_resources();
        Err(Bytes::from(api::pub_ack(&self.name, None, Err(e))))
    }
}
