//! The plugin stage: the loaded plugins and how a published message passes through them —
//! mappers first, then transformers, each filtered by its binding's accounts and subjects.
//! With a transformer loaded, a read's publishes are held from the first covered one on
//! (so that this publisher's order is kept) and go through the plugins together.

use super::session::Session;
use crate::options::Options;
use crate::plugin::KvSource;
use crate::plugin::{
    Authorizer, EngineConfig, FailurePolicy, HeadersRef, Mapper, Message, MessageRef, Outcome,
    OutcomeKind, PluginEngine, PluginError, PluginLoadError, PluginStats, Role, Transformer,
};
use crate::proto::{ClientOp, MsgRef};
use bytes::{Bytes, BytesMut};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One generation of loaded plugins; swapped whole on reload.
#[derive(Default)]
pub(crate) struct PluginSet {
    pub authorizers: Vec<Authorizer>,
    pub mappers: Vec<Mapper>,
    pub transformers: Vec<Transformer>,
    /// Unix nanoseconds until which publish-path plugin work runs off the worker thread
    /// (set whenever a call was slow; see [`PluginSet::run`]).
    slow_until: std::sync::atomic::AtomicU64,
}

impl PluginSet {
    /// Compiles and links every configured plugin; any failure stops start-up (or a reload).
    /// `kv` answers the lookups of bindings granted a bucket (JetStream, when it is on).
    pub fn load(
        opts: &Options,
        engine: &mut Option<PluginEngine>,
        kv: Option<Arc<dyn KvSource>>,
    ) -> Result<PluginSet, PluginLoadError> {
        let mut set = PluginSet::default();
        if opts.plugins.specs.is_empty() {
            return Ok(set);
        }
        // Also checked with the configuration; here for options built in code.
        opts.plugins
            .one_authorizer()
            .map_err(|names| PluginLoadError::MultipleAuthorizers { names })?;
        if engine.is_none() {
            let cache_dir = opts.plugins.cache_dir.clone().unwrap_or_else(|| {
                EngineConfig::default_cache_dir(opts.jetstream.store_dir.as_deref())
            });
            *engine = Some(
                PluginEngine::new(EngineConfig {
                    cache_dir: Some(cache_dir),
                })
                .map_err(PluginLoadError::Engine)?,
            );
        }
        let Some(engine) = engine.as_ref() else {
            return Ok(set);
        };
        engine.set_memory_budget(opts.plugins.memory_budget);
        engine.set_kv_source(kv);
        for spec in &opts.plugins.specs {
            let failed = |source| PluginLoadError::Plugin {
                name: spec.name.clone(),
                path: spec.path.clone(),
                source,
            };
            // A signed binding loads the bytes whose signature verified: their hash is pinned.
            let (signed, signer) = match verify_signature(opts, spec) {
                Ok(Some((s, signer))) => (Some(s), Some(signer)),
                Ok(None) => (None, None),
                Err(msg) => {
                    return Err(failed(PluginError::Load(format!(
                        "plugin '{}' ({}): {msg}",
                        spec.name,
                        spec.path.display()
                    ))))
                }
            };
            let spec = signed.as_ref().unwrap_or(spec);
            // The digest of the bytes compiled tells which build is live (on every start
            // and reload).
            let sha256 = match spec.role {
                Role::Authorizer => {
                    let p = engine.load_authorizer(spec).map_err(failed)?;
                    let sha = p.sha256().to_string();
                    set.authorizers.push(p);
                    sha
                }
                Role::Mapper => {
                    let p = engine.load_mapper(spec).map_err(failed)?;
                    let sha = p.sha256().to_string();
                    set.mappers.push(p);
                    sha
                }
                Role::Transformer => {
                    let p = engine.load_transformer(spec).map_err(failed)?;
                    let sha = p.sha256().to_string();
                    set.transformers.push(p);
                    sha
                }
            };
            tracing::info!(
                "Loaded plugin '{}' ({}) from {}, sha256 {sha256}{}",
                spec.name,
                spec.role,
                spec.path.display(),
                match (&signer, &spec.sha256) {
                    (Some(key), _) => format!(" (signed by {key})"),
                    (None, Some(_)) => " (pinned)".to_string(),
                    (None, None) => String::new(),
                }
            );
        }
        Ok(set)
    }

    pub fn on_publish_path(&self) -> bool {
        !self.mappers.is_empty() || !self.transformers.is_empty()
    }

    /// Whether publishes are collected into batches: with any transformer loaded (a
    /// `batch-transformer` gets a read's messages in one call, a per-message one its
    /// `transform-batch`).
    pub fn batches(&self) -> bool {
        !self.transformers.is_empty()
    }

    /// Whether any mapper or transformer binding covers a message published on `subject` in
    /// `account`. When none does, no mapper renames it, so no transformer can apply either.
    pub fn any_applies(&self, account: &str, subject: &[u8]) -> bool {
        let subject = String::from_utf8_lossy(subject);
        self.mappers
            .iter()
            .map(Mapper::spec)
            .chain(self.transformers.iter().map(Transformer::spec))
            .any(|spec| spec.applies_to(account, &subject))
    }

    pub fn stats(&self) -> Vec<PluginStats> {
        let mut v: Vec<PluginStats> = self.authorizers.iter().map(Authorizer::stats).collect();
        v.extend(self.mappers.iter().map(Mapper::stats));
        v.extend(self.transformers.iter().map(Transformer::stats));
        v
    }
}

/// What the plugins decided for one published message.
pub(crate) enum Verdict {
    /// Deliver the original bytes.
    Unchanged,
    /// Deliver this instead (new subject, reply, header block, payload).
    Rewritten(Rewritten),
    /// Do not deliver; nothing is said to the publisher.
    Drop { plugin: String, reason: String },
    /// Do not deliver; the publisher is told why.
    Reject { plugin: String, reason: String },
}

pub(crate) struct Rewritten {
    pub subject: String,
    pub reply: Option<String>,
    /// A whole `NATS/1.0` header block, or `None` for a message without headers.
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

/// Header block → fields (the status line is not a field).
fn parse_headers(block: &[u8]) -> Vec<(String, String)> {
    crate::proto::headers::fields(block)
}

fn encode_headers(fields: &[(String, String)]) -> Bytes {
    Bytes::from(crate::proto::headers::HeaderBlock::from_fields(fields).finish())
}

fn failure(policy: FailurePolicy, name: &str, e: &PluginError) -> Option<Verdict> {
    // The plugin host already logged it (rate-limited) and counted it.
    tracing::debug!(target: "natrium::plugin", "plugin '{name}' failed ({}): {e}", e.kind());
    match policy {
        FailurePolicy::Pass => None,
        FailurePolicy::Drop => Some(Verdict::Drop {
            plugin: name.to_string(),
            reason: format!("plugin failed ({})", e.kind()),
        }),
        FailurePolicy::Reject => Some(Verdict::Reject {
            plugin: name.to_string(),
            reason: format!("plugin {name} failed"),
        }),
    }
}

/// A published message on its way to the plugins (borrowed from the read buffer).
pub(crate) type Publish<'a> = crate::proto::MsgRef<'a>;

/// Publishes held for one plugin batch (see `Session::defer`).
pub(super) const MAX_DEFERRED: usize = 256;

/// A publish waiting for its plugin batch; borrows the read buffer.
pub(crate) struct Deferred<'a> {
    /// The message, with its subject after native mappings.
    pub subject: std::borrow::Cow<'a, [u8]>,
    pub msg: Publish<'a>,
    /// Whether a plugin binding covers it (the rest only keep their place in line).
    pub plugged: bool,
}

/// One message's progress through the pipeline.
struct Progress {
    /// Materialized once a plugin needs (or changes) it.
    msg: Option<Message>,
    changed: bool,
    had_headers: bool,
    /// Dropped or rejected: no later plugin sees it.
    done: Option<Verdict>,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn materialize(p: &Publish<'_>) -> Message {
    Message {
        subject: lossy(p.subject),
        reply: p.reply.map(lossy),
        headers: p.headers.map(parse_headers).unwrap_or_default(),
        payload: Bytes::copy_from_slice(p.payload),
    }
}

impl Progress {
    fn subject<'a>(&'a self, p: &'a Publish<'_>) -> std::borrow::Cow<'a, str> {
        match &self.msg {
            Some(m) => std::borrow::Cow::Borrowed(m.subject.as_str()),
            None => String::from_utf8_lossy(p.subject),
        }
    }

    /// The message as it stands, lent (the original publish, or what a plugin made of it).
    fn lend<'a>(&'a self, p: &'a Publish<'_>) -> MessageRef<'a> {
        match &self.msg {
            Some(m) => m.as_ref(),
            None => MessageRef {
                subject: p.subject,
                reply: p.reply,
                headers: p.headers.map_or(HeadersRef::None, HeadersRef::Block),
                payload: p.payload,
            },
        }
    }

    fn current(&self, p: &Publish<'_>) -> Message {
        self.msg.clone().unwrap_or_else(|| materialize(p))
    }

    /// Applies a transformer's outcome; `Some` when the message is finished (dropped).
    /// A replacement bigger than `max_payload` (the publisher's) is the plugin's failure: it
    /// is never delivered, and the binding's `on_failure` decides about the message.
    fn apply(
        &mut self,
        t: &Transformer,
        outcome: Result<Outcome, PluginError>,
        max_payload: usize,
    ) {
        match outcome {
            Ok(Outcome::Pass) => t.count_outcome(OutcomeKind::Pass),
            Ok(Outcome::Replace(new)) if self.size_of(&new) > max_payload => {
                let why = format!(
                    "replacement of {} bytes exceeds max_payload {max_payload}",
                    self.size_of(&new)
                );
                t.refuse_output(&why);
                let plugin = t.name().to_string();
                let reason = format!("plugin {plugin}: {why}");
                self.done = match t.spec().on_failure {
                    FailurePolicy::Pass => None,
                    FailurePolicy::Drop => Some(Verdict::Drop { plugin, reason }),
                    FailurePolicy::Reject => Some(Verdict::Reject { plugin, reason }),
                };
            }
            Ok(Outcome::Replace(new)) => {
                t.count_outcome(OutcomeKind::Replace);
                self.had_headers |= !new.headers.is_empty();
                self.msg = Some(new);
                self.changed = true;
            }
            Ok(Outcome::Drop(reason)) => {
                tracing::debug!(target: "natrium::plugin", "plugin '{}' dropped a message: {reason}", t.name());
                let plugin = t.name().to_string();
                self.done = Some(match t.spec().on_failure {
                    FailurePolicy::Reject => Verdict::Reject { plugin, reason },
                    _ => Verdict::Drop { plugin, reason },
                });
            }
            Err(e) => self.done = failure(t.spec().on_failure, t.name(), &e),
        }
        match &self.done {
            Some(Verdict::Drop { .. }) => t.count_outcome(OutcomeKind::Drop),
            Some(Verdict::Reject { .. }) => t.count_outcome(OutcomeKind::Reject),
            _ => {}
        }
    }

    /// What `m` weighs against max_payload if delivered: payload plus header block.
    fn size_of(&self, m: &Message) -> usize {
        let headers = if self.had_headers || !m.headers.is_empty() {
            crate::proto::headers::block_len(&m.headers)
        } else {
            0
        };
        m.payload.len() + headers
    }

    fn verdict(self) -> Verdict {
        if let Some(v) = self.done {
            return v;
        }
        match self.msg {
            Some(m) if self.changed => Verdict::Rewritten(Rewritten {
                headers: (self.had_headers || !m.headers.is_empty())
                    .then(|| encode_headers(&m.headers)),
                subject: m.subject,
                reply: m.reply,
                payload: m.payload,
            }),
            _ => Verdict::Unchanged,
        }
    }
}

/// A publish-path plugin call slower than this moves the set's work off the worker threads
/// for [`SLOW_FOR`].
const SLOW_CALL: std::time::Duration = std::time::Duration::from_millis(2);
const SLOW_FOR_NANOS: u64 = 1_000_000_000;

impl PluginSet {
    /// Runs publish-path plugin work. Fast plugins run in place (a hand-off per call would
    /// cost more than the call). Once a call was slow — a plugin burning its deadline — the
    /// set's work runs off the worker thread for a while: on the multi-threaded runtime the
    /// worker hands its other tasks (other tenants' connections) to another thread while the
    /// guest runs, so one tenant's slow plugin does not stall the rest.
    pub(super) fn run<R>(&self, work: impl FnOnce() -> R) -> R {
        use std::sync::atomic::Ordering::Relaxed;
        use tokio::runtime::{Handle, RuntimeFlavor};
        let now = crate::util::unix_nanos();
        let offload = self.slow_until.load(Relaxed) > now
            && Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        let started = std::time::Instant::now();
        let r = if offload {
            tokio::task::block_in_place(work)
        } else {
            work()
        };
        if started.elapsed() > SLOW_CALL {
            self.slow_until
                .store(crate::util::unix_nanos() + SLOW_FOR_NANOS, Relaxed);
        }
        r
    }
}

/// Runs the mappers and transformers that apply to (account, subject); no replacement may
/// exceed `max_payload` (the publisher's effective limit).
pub(crate) fn on_publish(
    set: &PluginSet,
    account: &str,
    max_payload: usize,
    msg: &Publish<'_>,
) -> Verdict {
    on_publish_batch(set, account, max_payload, std::slice::from_ref(msg))
        .pop()
        .unwrap_or(Verdict::Unchanged)
}

/// The same for a batch of messages of one publisher, with one verdict per message in order.
/// Mappers run per message; a `batch-transformer` gets every message it covers in one call;
/// a per-message transformer gets them in one `transform-batch` call (if that call fails, each
/// message is tried alone so that one bad message decides only for itself).
pub(crate) fn on_publish_batch(
    set: &PluginSet,
    account: &str,
    max_payload: usize,
    batch: &[Publish<'_>],
) -> Vec<Verdict> {
    let mut progress: Vec<Progress> = batch
        .iter()
        .map(|p| Progress {
            msg: None,
            changed: false,
            had_headers: p.headers.is_some(),
            done: None,
        })
        .collect();
    for m in &set.mappers {
        apply_mapper(m, account, batch, &mut progress);
    }
    for t in &set.transformers {
        let covered = covered_by(t, account, batch, &progress);
        if !covered.is_empty() {
            apply_transformer(t, account, max_payload, batch, &mut progress, &covered);
        }
    }
    progress.into_iter().map(Progress::verdict).collect()
}

/// One mapper over the batch: a new subject for each message it covers.
fn apply_mapper(m: &Mapper, account: &str, batch: &[Publish<'_>], progress: &mut [Progress]) {
    for (p, st) in batch.iter().zip(progress.iter_mut()) {
        if st.done.is_some() {
            continue;
        }
        let current = st.subject(p).into_owned();
        if !m.spec().applies_to(account, &current) {
            continue;
        }
        match m.map(account, &current) {
            Ok(Some(new)) if new != current => {
                let mut x = st.current(p);
                x.subject = new;
                st.msg = Some(x);
                st.changed = true;
            }
            Ok(_) => {}
            Err(e) => st.done = failure(m.spec().on_failure, m.name(), &e),
        }
    }
}

/// The messages of the batch (by index) that transformer `t` is bound to and that are
/// still undecided.
fn covered_by(
    t: &Transformer,
    account: &str,
    batch: &[Publish<'_>],
    progress: &[Progress],
) -> Vec<usize> {
    // A burst is usually on one subject: reuse the last binding check.
    let mut last: Option<(&[u8], bool)> = None;
    (0..batch.len())
        .filter(|&i| {
            let st = &progress[i];
            if st.done.is_some() {
                return false;
            }
            if st.msg.is_some() {
                return t.spec().applies_to(account, &st.subject(&batch[i]));
            }
            let subject = batch[i].subject;
            match last {
                Some((s, hit)) if s == subject => hit,
                _ => {
                    let hit = t
                        .spec()
                        .applies_to(account, &String::from_utf8_lossy(subject));
                    last = Some((subject, hit));
                    hit
                }
            }
        })
        .collect()
}

/// One transformer over the messages it covers: one call for a batch transformer, one
/// `transform-batch` call for several messages, else one call per message.
fn apply_transformer(
    t: &Transformer,
    account: &str,
    max_payload: usize,
    batch: &[Publish<'_>],
    progress: &mut [Progress],
    covered: &[usize],
) {
    if t.is_batch() {
        let msgs: Vec<MessageRef<'_>> = covered
            .iter()
            .map(|&i| progress[i].lend(&batch[i]))
            .collect();
        let result = t.transform_pending(account, &msgs);
        drop(msgs);
        match result {
            Ok(outcomes) => {
                for (&i, o) in covered.iter().zip(outcomes) {
                    progress[i].apply(t, Ok(o), max_payload);
                }
            }
            Err(e) => {
                for &i in covered {
                    progress[i].apply(t, Err(e.clone()), max_payload);
                }
            }
        }
    } else if covered.len() > 1 {
        let msgs: Vec<Message> = covered
            .iter()
            .map(|&i| progress[i].current(&batch[i]))
            .collect();
        match t.transform_batch(account, &msgs) {
            Ok(outcomes) => {
                for (&i, o) in covered.iter().zip(outcomes) {
                    progress[i].apply(t, Ok(o), max_payload);
                }
            }
            // A malformed answer may be one message's fault: each alone, once more. A
            // timeout, trap or memory blow-up gets the failure policy for the whole batch —
            // retrying each message would multiply the damage (and the wait) by the batch size.
            Err(PluginError::Malformed(_)) => {
                for (&i, x) in covered.iter().zip(&msgs) {
                    let outcome = t.transform(account, x);
                    progress[i].apply(t, outcome, max_payload);
                }
            }
            Err(e) => {
                for &i in covered {
                    progress[i].apply(t, Err(e.clone()), max_payload);
                }
            }
        }
    } else {
        for &i in covered {
            let x = progress[i].current(&batch[i]);
            let outcome = t.transform(account, &x);
            progress[i].apply(t, outcome, max_payload);
        }
    }
}

// ---- the stage, as a session runs it ---------------------------------------------------

/// Entries in the per-session "does a plugin apply" cache before it is reset.
const HITS_MAX: usize = 512;

impl Session {
    /// Whether any plugin binding covers `subject` here; cached per subject because most
    /// traffic is usually outside the bound subjects.
    pub(super) fn plugins_apply(&mut self, subject: &[u8]) -> bool {
        if let Some(&hit) = self.plugin_hits.get(subject) {
            return hit;
        }
        if self.plugin_hits.len() >= HITS_MAX {
            self.plugin_hits.clear();
        }
        let hit = self.plugins.any_applies(&self.account.name, subject);
        self.plugin_hits.insert(subject.into(), hit);
        hit
    }

    /// With a transformer loaded, publishes are collected (from the first one a plugin covers
    /// on) and go through the plugins together. Any other op is handed back: the caller
    /// settles the batch before it.
    pub(super) fn defer<'a>(
        &mut self,
        deferred: &mut Vec<Deferred<'a>>,
        op: ClientOp<'a>,
    ) -> Result<(), ClientOp<'a>> {
        // An HPUB from a client without headers goes the unbatched way, which refuses it.
        if matches!(op, ClientOp::Hpub { .. }) && !self.client.headers.load(Ordering::Relaxed) {
            return Err(op);
        }
        let msg = op.into_msg()?;
        let Some(subject) = self.admit_pub(&msg) else {
            return Ok(());
        };
        let plugged = self.plugins_apply(&subject);
        if !plugged && deferred.is_empty() {
            self.route_pub(&msg.with_subject(&subject));
            return Ok(());
        }
        deferred.push(Deferred {
            subject,
            msg,
            plugged,
        });
        if deferred.len() >= MAX_DEFERRED {
            self.settle_deferred(deferred);
        }
        Ok(())
    }

    /// Runs the held publishes through the plugins and routes them in order.
    pub(super) fn settle_deferred(&mut self, deferred: &mut Vec<Deferred<'_>>) {
        if deferred.is_empty() {
            return;
        }
        let plugins = self.plugins.clone();
        let max_payload = self.limits.max_payload;
        let batch: Vec<Publish<'_>> = deferred
            .iter()
            .filter(|d| d.plugged)
            .map(|d| d.msg.with_subject(&d.subject))
            .collect();
        let mut verdicts = plugins
            .run(|| on_publish_batch(&plugins, &self.account.name, max_payload, &batch))
            .into_iter();
        drop(batch);
        for d in deferred.drain(..) {
            let verdict = if d.plugged {
                verdicts.next().unwrap_or(Verdict::Unchanged)
            } else {
                Verdict::Unchanged
            };
            self.settle_verdict(verdict, &d.msg.with_subject(&d.subject), d.msg.subject);
        }
    }

    /// Routes a message as its plugins decided. `published` is the subject the client
    /// published on (before any mapping), which a rejection names.
    pub(super) fn settle_verdict(&mut self, verdict: Verdict, msg: &MsgRef<'_>, published: &[u8]) {
        match verdict {
            Verdict::Unchanged => self.route_pub(msg),
            Verdict::Rewritten(m) => self.route_pub(&MsgRef {
                subject: m.subject.as_bytes(),
                reply: m.reply.as_deref().map(str::as_bytes),
                headers: m.headers.as_deref(),
                payload: &m.payload,
            }),
            Verdict::Drop { plugin, reason } => self.audit(
                &plugin,
                "transformer",
                OutcomeKind::Drop,
                published,
                &reason,
            ),
            Verdict::Reject { plugin, reason } => {
                self.reject_publish(msg, published, &reason);
                self.audit(
                    &plugin,
                    "transformer",
                    OutcomeKind::Reject,
                    published,
                    &reason,
                );
            }
        }
    }

    /// Reports a refused message (or connection) on `$SYS.PLUGIN.<plugin>.<outcome>` for
    /// audit: who, where and why — never the payload.
    pub(super) fn audit(
        &self,
        plugin: &str,
        role: &str,
        outcome: OutcomeKind,
        subject: &[u8],
        reason: &str,
    ) {
        if let Some(events) = self.core.events() {
            let user = self.client.meta().user;
            // Before CONNECT is admitted the client has no account yet.
            let account = if self.connected {
                &*self.account.name
            } else {
                ""
            };
            events.plugin_decision(
                &self.core,
                &super::PluginAudit {
                    plugin,
                    role,
                    outcome: outcome.as_str(),
                    account,
                    user: user.as_deref(),
                    client: &self.client,
                    subject: &String::from_utf8_lossy(subject),
                    reason,
                },
            );
        }
    }

    /// Tells a publisher its message was rejected, in the forms the official clients
    /// understand without disconnecting:
    /// - always `-ERR 'Permissions Violation for Publish to "<subject>": Message Rejected:
    ///   <reason>'` (non-fatal in every official client; their error callback gets it);
    /// - with a reply subject on a subject a JetStream stream captures, a PubAck-shaped API
    ///   error `{"error":{"code":400,"err_code":10900,"description":"<reason>"}}`, so that
    ///   `js.publish` fails at once with the reason;
    /// - with any other reply subject (a request), a status reply `NATS/1.0 403 <reason>`
    ///   (not 503, which clients turn into "no responders" and drop the reason).
    fn reject_publish(&mut self, msg: &MsgRef<'_>, published: &[u8], reason: &str) {
        let reason = crate::util::truncate_text(reason, MAX_REASON_BYTES);
        let reason: String = reason
            .chars()
            .map(|c| if c == '\'' || c.is_control() { ' ' } else { c })
            .collect();
        tracing::debug!(
            target: "natrium::plugin",
            "{} - publish to {} rejected: {reason}",
            self.client.label(),
            String::from_utf8_lossy(published)
        );
        let mut err = BytesMut::new();
        crate::proto::errors::write_publish_rejected(&mut err, published, &reason);
        self.send(&err);
        let Some(reply) = msg.reply else {
            return;
        };
        let captured = self
            .core
            .jetstream
            .as_ref()
            .is_some_and(|js| js.captures(&self.account.name, msg.subject));
        let (headers, payload) = if captured {
            let error = crate::jetstream::errors::ApiError::message_rejected(reason);
            match serde_json::to_vec(&serde_json::json!({ "error": error.to_json() })) {
                Ok(body) => (None, body),
                Err(e) => {
                    tracing::error!("encoding a rejection's API error: {e}");
                    return;
                }
            }
        } else {
            let status = format!("NATS/1.0 {REJECTED_STATUS} {reason}\r\n\r\n");
            (Some(status.into_bytes()), Vec::new())
        };
        let account = self.account.clone();
        self.router.route(
            &self.core,
            &account,
            &MsgRef {
                subject: reply,
                reply: None,
                headers: headers.as_deref(),
                payload: &payload,
            },
            super::route::Origin::SERVER,
        );
    }
}

/// The status of the reply a rejected request gets (`NATS/1.0 403 <reason>`).
pub const REJECTED_STATUS: u16 = 403;

/// A rejection's reason is cut to this many bytes on the wire (with "…").
const MAX_REASON_BYTES: usize = 256;

/// Checks the signature `spec.signed_by` requires; returns the spec with the verified hash
/// pinned, and the key that signed (`None`: the binding requires no signature).
fn verify_signature(
    opts: &Options,
    spec: &crate::plugin::PluginSpec,
) -> Result<Option<(crate::plugin::PluginSpec, String)>, String> {
    let Some(signer) = &spec.signed_by else {
        return Ok(None);
    };
    let trusted = crate::account::operator::plugin_signers(opts, signer, &spec.accounts)?;
    let sig = spec
        .signature
        .clone()
        .unwrap_or_else(|| crate::plugin::signature::default_path(&spec.path));
    let verified = crate::plugin::signature::check_file(&spec.path, &sig, &trusted)?;
    let mut pinned = spec.clone();
    if let Some(pin) = &spec.sha256 {
        if !pin.eq_ignore_ascii_case(&verified.sha256) {
            return Err(format!(
                "sha256 mismatch: the binding pins {pin}, the signed file is {}",
                verified.sha256
            ));
        }
    }
    pinned.sha256 = Some(verified.sha256);
    Ok(Some((pinned, verified.signer)))
}

/// `natrium -t`: loads every configured plugin exactly as start-up does (read, compile or
/// load from the cache, check the world, link) and drops them. Returns how many were checked.
pub fn check_configured(opts: &Options) -> Result<usize, PluginLoadError> {
    let mut engine = None;
    let kv = opts.jetstream.enabled.then(|| {
        Arc::new(StoredBuckets(crate::jetstream::kv::store_dir(
            opts.jetstream.store_dir.as_deref(),
        ))) as Arc<dyn KvSource>
    });
    PluginSet::load(opts, &mut engine, kv)?;
    Ok(opts.plugins.specs.len())
}

/// JetStream's key-value buckets as plugins read them (see `jetstream::kv`).
pub(crate) struct JetStreamKv(pub Arc<crate::jetstream::JetStream>);

impl KvSource for JetStreamKv {
    fn check_bucket(&self, account: &str, bucket: &str) -> Result<(), String> {
        self.0
            .kv_bucket(account, bucket)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn get(&self, account: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0
            .kv_get(account, bucket, key)
            .map(|v| v.map(|b| b.to_vec()))
            .map_err(|e| e.to_string())
    }
}

/// `natrium -t` runs no JetStream: a bucket is looked for in the store directory. A memory
/// bucket, or one not created yet, cannot be seen there; start-up and reload check it.
struct StoredBuckets(PathBuf);

impl KvSource for StoredBuckets {
    fn check_bucket(&self, account: &str, bucket: &str) -> Result<(), String> {
        if !crate::jetstream::kv::stored_bucket(&self.0, account, bucket) {
            tracing::warn!(
                "kv bucket \"{bucket}\" of account \"{account}\" is not in {} (a memory \
                 bucket, or not created yet?): start-up and reload refuse the binding unless \
                 it exists then",
                self.0.display()
            );
        }
        Ok(())
    }

    fn get(&self, _: &str, _: &str, _: &str) -> Result<Option<Vec<u8>>, String> {
        Err("no JetStream in `natrium -t`".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_blocks_round_trip() {
        let block = b"NATS/1.0\r\nA: 1\r\nB: two words\r\nA: 3\r\n\r\n";
        let fields = parse_headers(block);
        assert_eq!(
            fields,
            [
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "two words".to_string()),
                ("A".to_string(), "3".to_string())
            ]
        );
        assert_eq!(&encode_headers(&fields)[..], &block[..]);
    }

    /// The per-call cost of a KV lookup: the json-validator-kv component (plugins/build.sh)
    /// validating one message against a schema from its configuration, then against the same
    /// schema read from a JetStream bucket on every call. Prints µs per call.
    /// `cargo test -p natrium --lib -- --ignored --nocapture measure_kv_lookup`
    #[test]
    #[ignore]
    #[allow(clippy::unwrap_used, clippy::print_stdout)]
    fn measure_kv_lookup() {
        use crate::jetstream::{config::StreamConfig, stream::Origin, JetStream, JsConfig};
        use crate::plugin::{Outcome, PluginSpec};
        let component = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/plugins/json-validator-kv.wasm");
        let store = tempfile::tempdir().unwrap();
        let js = JetStream::start(
            JsConfig {
                store_dir: store.path().to_path_buf(),
                max_memory: -1,
                max_storage: -1,
                sync: crate::jetstream::store::SyncPolicy::Always,
                domain: None,
            },
            Default::default(),
            true,
        )
        .unwrap();
        let schema = r#"{"type":"object","required":["id","qty"],"properties":{"id":{"type":"string"},"qty":{"type":"integer","minimum":1}}}"#;
        let config: StreamConfig = serde_json::from_value(serde_json::json!({
            "name": "KV_schemas", "subjects": ["$KV.schemas.>"], "storage": "file",
            "max_msgs_per_subject": 1,
        }))
        .unwrap();
        let account = js.account("A");
        let (stream, _) = account.create_stream(config.normalize().unwrap()).unwrap();
        account
            .store(
                &stream,
                "$KV.schemas.orders.new",
                None,
                schema.as_bytes(),
                Origin::Client,
            )
            .unwrap();
        let engine = PluginEngine::new(EngineConfig::default()).unwrap();
        engine.set_kv_source(Some(Arc::new(JetStreamKv(js.clone()))));
        let msg = Message {
            subject: "orders.new".into(),
            reply: None,
            headers: Vec::new(),
            payload: Bytes::from_static(br#"{"id":"a1","qty":2}"#),
        };
        let n = 20_000;
        // Both with the grant (the component imports kv); only the second reads the bucket.
        let per_call = |config: String| {
            let mut spec = PluginSpec::new("v", &component, Role::Transformer);
            spec.config_json = config;
            spec.accounts = vec!["A".into()];
            spec.deadline = std::time::Duration::from_secs(1);
            spec.kv_bucket = Some("schemas".to_string());
            let t = engine.load_transformer(&spec).unwrap();
            for _ in 0..1000 {
                assert_eq!(t.transform("A", &msg).unwrap(), Outcome::Pass);
            }
            let start = std::time::Instant::now();
            for _ in 0..n {
                t.transform("A", &msg).unwrap();
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        };
        let configured = per_call(format!(r#"{{"schema":{schema}}}"#));
        let from_kv = per_call(r#"{"schemas_from_kv":true}"#.into());
        let start = std::time::Instant::now();
        for _ in 0..n {
            js.kv_get("A", "schemas", "orders.new").unwrap();
        }
        let lookup = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        println!(
            "json-validator, one message: schema from config {configured:.2} µs/call, from KV \
             {from_kv:.2} µs/call (+{:.2} µs); host lookup alone {lookup:.2} µs",
            from_kv - configured
        );
    }

    #[test]
    fn no_plugins_means_unchanged() {
        let set = PluginSet::default();
        assert!(!set.on_publish_path());
        assert!(matches!(
            on_publish(&set, "$G", 1024, &Publish::new(b"a", b"x")),
            Verdict::Unchanged
        ));
    }
}
