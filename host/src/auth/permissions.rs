//! Publish/subscribe permissions, as nats-server applies them.
//!
//! Semantics (nats-server v2.9 `client.go`):
//! - An allow list that is absent (`None`) allows everything; a present but
//!   empty allow list allows nothing. A deny list overrules the allow list.
//! - Publish: the literal subject is matched against the rules; the result is
//!   cached per connection ([`ConnPermissions`]), so the steady state is one
//!   hash lookup. If denied and `allow_responses` is on, a reply subject this
//!   connection received (within `max` messages and `expires`) is allowed; that
//!   path is not cached.
//! - Subscribe: the subscription subject (which may hold wildcards) is matched
//!   as tokens against the rules, so `foo.*` is allowed by `foo.>` or `foo.*`
//!   but not by `foo.bar`.
//! - Queue rules: an entry `"subject queue"` (one space) applies to queue
//!   subscriptions only; the queue part may use wildcards. For a queue
//!   subscription, if any queue rule matches the subject, the queue name
//!   decides; otherwise the plain rules do.
//! - Delivery: when a wildcard subscription overlaps a deny rule, messages on
//!   denied subjects are not delivered ([`ConnPermissions::can_deliver`]).
//!
//! Violation texts are in [`crate::proto::errors`]; [`ConnPermissions`] has
//! helpers that write them.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::proto::errors::{write_publish_violation, write_subscription_violation};
use crate::subject::{is_valid_queue, is_valid_subject, matches};

/// nats-server's `DEFAULT_ALLOW_RESPONSE_MAX_MSGS`.
pub const DEFAULT_ALLOW_RESPONSE_MAX_MSGS: i64 = 1;
/// nats-server's `DEFAULT_ALLOW_RESPONSE_EXPIRATION`.
pub const DEFAULT_ALLOW_RESPONSE_EXPIRATION: Duration = Duration::from_secs(120);
/// Publish-cache size before pruning (nats-server's `maxPermCacheSize`).
pub const MAX_PERM_CACHE_SIZE: usize = 128;
/// How many entries one prune removes (nats-server's `pruneSize`).
pub const PERM_CACHE_PRUNE_SIZE: usize = 32;
/// Tracked reply subjects above which expired ones are swept (`replyPermLimit`).
pub const REPLY_PERM_LIMIT: usize = 4096;

/// Errors from building a permission set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    #[error("invalid permission subject {0:?}")]
    InvalidSubject(String),
    #[error("invalid queue in permission {0:?}")]
    InvalidQueue(String),
    #[error("publish permission {0:?} cannot contain a queue")]
    QueueInPublish(String),
}

/// Allow/deny lists for one direction, as configured (`None` = not set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectPermission {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
}

impl SubjectPermission {
    pub fn is_empty(&self) -> bool {
        self.allow.is_none() && self.deny.is_none()
    }
}

/// `allow_responses`: `max_msgs` replies per request within `expires`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePermission {
    pub max_msgs: i64,
    pub expires: Duration,
}

impl Default for ResponsePermission {
    fn default() -> Self {
        Self {
            max_msgs: DEFAULT_ALLOW_RESPONSE_MAX_MSGS,
            expires: DEFAULT_ALLOW_RESPONSE_EXPIRATION,
        }
    }
}

/// A user's permissions as configured (config file or JWT), before compiling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSpec {
    pub publish: Option<SubjectPermission>,
    pub subscribe: Option<SubjectPermission>,
    pub response: Option<ResponsePermission>,
}

impl PermissionSpec {
    /// nats-server's `validateResponsePermissions`: with `allow_responses`,
    /// publishing is denied unless allowed explicitly, and zero values take
    /// the defaults. Called by [`Permissions::compile`].
    pub fn normalize(&mut self) {
        if let Some(resp) = &mut self.response {
            let publish = self.publish.get_or_insert_with(SubjectPermission::default);
            if publish.allow.is_none() {
                publish.allow = Some(Vec::new());
            }
            if resp.max_msgs == 0 {
                resp.max_msgs = DEFAULT_ALLOW_RESPONSE_MAX_MSGS;
            }
            if resp.expires.is_zero() {
                resp.expires = DEFAULT_ALLOW_RESPONSE_EXPIRATION;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.publish
            .as_ref()
            .is_none_or(SubjectPermission::is_empty)
            && self
                .subscribe
                .as_ref()
                .is_none_or(SubjectPermission::is_empty)
            && self.response.is_none()
    }
}

/// `(subject filter, queue filter)`.
type QueueRule = (Box<[u8]>, Box<[u8]>);

/// A compiled list of subject rules: literal subjects in a hash set, wildcard
/// ones scanned; plus queue rules (`subject queue`).
#[derive(Debug, Clone, Default)]
struct RuleSet {
    literal: FxHashSet<Box<[u8]>>,
    wild: Vec<Box<[u8]>>,
    queue: Vec<QueueRule>,
}

fn has_wildcard(s: &[u8]) -> bool {
    s.split(|&b| b == b'.').any(|t| t == b"*" || t == b">")
}

impl RuleSet {
    fn compile(rules: &[String], allow_queue: bool) -> Result<Self, PermissionError> {
        let mut set = RuleSet::default();
        for rule in rules {
            let r = rule.trim();
            let mut parts = r.split_whitespace();
            let subj = parts.next().unwrap_or("");
            let queue = parts.next();
            if parts.next().is_some() || !is_valid_subject(subj.as_bytes()) {
                return Err(PermissionError::InvalidSubject(rule.clone()));
            }
            match queue {
                Some(q) => {
                    if !allow_queue {
                        return Err(PermissionError::QueueInPublish(rule.clone()));
                    }
                    if !is_valid_queue(q.as_bytes()) {
                        return Err(PermissionError::InvalidQueue(rule.clone()));
                    }
                    set.queue
                        .push((subj.as_bytes().into(), q.as_bytes().into()));
                }
                None if has_wildcard(subj.as_bytes()) => set.wild.push(subj.as_bytes().into()),
                None => {
                    set.literal.insert(subj.as_bytes().into());
                }
            }
        }
        Ok(set)
    }

    /// A plain (non-queue) rule matches `subject` (tokens of `subject` taken
    /// literally, so a wildcard in it only matches a wildcard rule or `*`/`>`).
    fn matches_plain(&self, subject: &[u8]) -> bool {
        self.literal.contains(subject) || self.wild.iter().any(|f| matches(f, subject))
    }

    /// Queue rules whose subject part matches `subject`.
    fn queue_rules<'a>(&'a self, subject: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.queue
            .iter()
            .filter(move |(f, _)| matches(f, subject))
            .map(|(_, q)| &**q)
    }

    /// Any rule (plain or queue subject part) that lies inside `sub`, i.e.
    /// `sub` can receive messages some rule covers.
    fn any_subset_of(&self, sub: &[u8]) -> bool {
        self.literal
            .iter()
            .chain(self.wild.iter())
            .chain(self.queue.iter().map(|(s, _)| s))
            .any(|r| is_subset_match(r, sub))
    }
}

/// nats-server's `queueMatches`: the queue equals a rule's queue, or a
/// wildcard rule queue covers it.
fn queue_matches<'a>(queue: &[u8], mut rules: impl Iterator<Item = &'a [u8]>) -> bool {
    rules.any(|q| q == queue || (has_wildcard(q) && is_subset_match(queue, q)))
}

/// nats-server's `subjectIsSubsetMatch(subject, test)`: every subject matched
/// by `subject` is also matched by `test`.
pub fn is_subset_match(subject: &[u8], test: &[u8]) -> bool {
    let tokens: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
    let test_tokens: Vec<&[u8]> = test.split(|&b| b == b'.').collect();
    for (i, t2) in test_tokens.iter().enumerate() {
        let Some(t1) = tokens.get(i) else {
            return false;
        };
        if t2.is_empty() {
            return false;
        }
        if *t2 == b">" {
            return true;
        }
        if t1.is_empty() || *t1 == b">" {
            return false;
        }
        if *t1 == b"*" {
            if *t2 != b"*" {
                return false;
            }
            continue;
        }
        if *t2 != b"*" && t1 != t2 {
            return false;
        }
    }
    tokens.len() == test_tokens.len()
}

/// Compiled, immutable permissions; share one per user with `Arc`.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    pub_allow: Option<RuleSet>,
    pub_deny: Option<RuleSet>,
    sub_allow: Option<RuleSet>,
    sub_deny: Option<RuleSet>,
    response: Option<ResponsePermission>,
    /// The normalized spec this was compiled from (reported by `$SYS.REQ.USER.INFO`).
    spec: PermissionSpec,
}

impl Permissions {
    /// Compiles (and normalizes, see [`PermissionSpec::normalize`]) a spec.
    pub fn compile(spec: &PermissionSpec) -> Result<Self, PermissionError> {
        let mut spec = spec.clone();
        spec.normalize();
        let list = |l: &Option<Vec<String>>, q: bool| -> Result<Option<RuleSet>, PermissionError> {
            l.as_deref().map(|r| RuleSet::compile(r, q)).transpose()
        };
        let (pub_allow, pub_deny) = match &spec.publish {
            Some(p) => (list(&p.allow, false)?, list(&p.deny, false)?),
            None => (None, None),
        };
        let (sub_allow, sub_deny) = match &spec.subscribe {
            Some(p) => (list(&p.allow, true)?, list(&p.deny, true)?),
            None => (None, None),
        };
        Ok(Self {
            pub_allow,
            pub_deny,
            sub_allow,
            sub_deny,
            response: spec.response,
            spec,
        })
    }

    /// The (normalized) spec these permissions were compiled from.
    pub fn spec(&self) -> &PermissionSpec {
        &self.spec
    }

    /// `allow_responses` settings, if on.
    pub fn response(&self) -> Option<ResponsePermission> {
        self.response
    }

    /// True when publishing is unrestricted (no lists at all).
    pub fn publish_unrestricted(&self) -> bool {
        self.pub_allow.is_none() && self.pub_deny.is_none()
    }

    /// Publish check without cache or response tracking.
    pub fn publish_allowed(&self, subject: &[u8]) -> bool {
        let mut allowed = self
            .pub_allow
            .as_ref()
            .is_none_or(|a| a.matches_plain(subject));
        if allowed {
            if let Some(d) = &self.pub_deny {
                allowed = !d.matches_plain(subject);
            }
        }
        allowed
    }

    /// Subscribe check (nats-server `canSubscribe` / `canQueueSubscribe`).
    pub fn subscribe_allowed(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        match queue {
            None => {
                let allowed = self
                    .sub_allow
                    .as_ref()
                    .is_none_or(|a| a.matches_plain(subject));
                allowed
                    && self
                        .sub_deny
                        .as_ref()
                        .is_none_or(|d| !d.matches_plain(subject))
            }
            Some(q) => {
                let mut allowed = true;
                if let Some(a) = &self.sub_allow {
                    allowed = a.matches_plain(subject);
                    let mut qr = a.queue_rules(subject).peekable();
                    if qr.peek().is_some() {
                        allowed = queue_matches(q, qr);
                    }
                }
                if allowed {
                    if let Some(d) = &self.sub_deny {
                        allowed = !d.matches_plain(subject);
                        let mut qr = d.queue_rules(subject).peekable();
                        if qr.peek().is_some() {
                            allowed = !queue_matches(q, qr);
                        }
                    }
                }
                allowed
            }
        }
    }

    /// Whether a (wildcard) subscription on `subject` overlaps a subscribe
    /// deny rule, so deliveries to it must pass [`Self::deny_delivery`].
    pub fn needs_delivery_filter(&self, subject: &[u8]) -> bool {
        has_wildcard(subject)
            && self
                .sub_deny
                .as_ref()
                .is_some_and(|d| d.any_subset_of(subject))
    }

    /// True when a message on literal `subject` must not be delivered because
    /// a subscribe deny rule covers it.
    pub fn deny_delivery(&self, subject: &[u8]) -> bool {
        self.sub_deny
            .as_ref()
            .is_some_and(|d| d.matches_plain(subject))
    }
}

/// One tracked reply subject for `allow_responses`.
#[derive(Debug, Clone, Copy)]
struct ReplyEntry {
    at: Instant,
    n: i64,
}

/// Per-connection permission state: the shared compiled rules, the publish
/// decision cache and the `allow_responses` bookkeeping. Owned by the
/// connection task, so no locking.
#[derive(Debug)]
pub struct ConnPermissions {
    perms: std::sync::Arc<Permissions>,
    pub_cache: FxHashMap<Box<[u8]>, bool>,
    deliver_cache: FxHashMap<Box<[u8]>, bool>,
    replies: FxHashMap<Box<[u8]>, ReplyEntry>,
}

impl ConnPermissions {
    pub fn new(perms: std::sync::Arc<Permissions>) -> Self {
        Self {
            perms,
            pub_cache: FxHashMap::default(),
            deliver_cache: FxHashMap::default(),
            replies: FxHashMap::default(),
        }
    }

    pub fn permissions(&self) -> &Permissions {
        &self.perms
    }

    /// The shared rules, for checks made outside this connection (delivery filters).
    pub fn shared(&self) -> std::sync::Arc<Permissions> {
        self.perms.clone()
    }

    /// Replaces the rules (e.g. after a JWT update) and clears the caches.
    /// Tracked replies are kept.
    pub fn replace(&mut self, perms: std::sync::Arc<Permissions>) {
        self.perms = perms;
        self.pub_cache.clear();
        self.deliver_cache.clear();
    }

    /// Number of cached publish decisions (for tests and monitoring).
    pub fn cached_len(&self) -> usize {
        self.pub_cache.len()
    }

    /// Full publish check (nats-server `pubAllowedFullCheck`), with the
    /// per-connection cache and reply-subject allowance.
    #[inline]
    pub fn can_publish(&mut self, subject: &[u8], now: Instant) -> bool {
        if self.perms.publish_unrestricted() {
            return true;
        }
        if let Some(&v) = self.pub_cache.get(subject) {
            if v || self.perms.response.is_none() {
                return v;
            }
        }
        self.can_publish_slow(subject, now)
    }

    #[cold]
    fn can_publish_slow(&mut self, subject: &[u8], now: Instant) -> bool {
        let allowed = match self.pub_cache.get(subject) {
            Some(&v) => v,
            None => {
                let v = self.perms.publish_allowed(subject);
                insert_pruned(&mut self.pub_cache, subject, v);
                v
            }
        };
        if allowed {
            return true;
        }
        let Some(resp) = self.perms.response else {
            return false;
        };
        let Some(entry) = self.replies.get_mut(subject) else {
            return false;
        };
        entry.n += 1;
        let too_many = resp.max_msgs > 0 && entry.n > resp.max_msgs;
        let expired = !resp.expires.is_zero() && now.duration_since(entry.at) > resp.expires;
        if too_many || expired {
            self.replies.remove(subject);
            return false;
        }
        true
    }

    /// Records `reply` of a message delivered to this connection, so that
    /// `allow_responses` lets the connection publish to it. No-op unless
    /// `allow_responses` is on.
    pub fn track_reply(&mut self, reply: &[u8], now: Instant) {
        let Some(resp) = self.perms.response else {
            return;
        };
        if reply.is_empty() {
            return;
        }
        if self.replies.len() >= REPLY_PERM_LIMIT {
            self.replies.retain(|_, e| {
                let expired = !resp.expires.is_zero() && now.duration_since(e.at) > resp.expires;
                let used_up = resp.max_msgs > 0 && e.n >= resp.max_msgs;
                !(expired || used_up)
            });
        }
        self.replies
            .insert(reply.into(), ReplyEntry { at: now, n: 0 });
    }

    /// Number of tracked reply subjects.
    pub fn tracked_replies(&self) -> usize {
        self.replies.len()
    }

    /// Subscribe check (not cached: subscriptions are rare).
    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.perms.subscribe_allowed(subject, queue)
    }

    /// Delivery filter for subscriptions for which
    /// [`Permissions::needs_delivery_filter`] was true; cached.
    pub fn can_deliver(&mut self, subject: &[u8]) -> bool {
        if let Some(&v) = self.deliver_cache.get(subject) {
            return v;
        }
        let v = !self.perms.deny_delivery(subject);
        insert_pruned(&mut self.deliver_cache, subject, v);
        v
    }

    /// Publish check that writes the `-ERR 'Permissions Violation for
    /// Publish to "..."'` line into `out` when denied.
    pub fn check_publish(&mut self, subject: &[u8], now: Instant, out: &mut BytesMut) -> bool {
        let ok = self.can_publish(subject, now);
        if !ok {
            write_publish_violation(out, subject);
        }
        ok
    }

    /// Subscribe check that writes the subscription violation when denied.
    pub fn check_subscribe(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        out: &mut BytesMut,
    ) -> bool {
        let ok = self.can_subscribe(subject, queue);
        if !ok {
            write_subscription_violation(out, subject, queue);
        }
        ok
    }
}

fn insert_pruned(cache: &mut FxHashMap<Box<[u8]>, bool>, key: &[u8], v: bool) {
    if cache.len() >= MAX_PERM_CACHE_SIZE {
        let mut n = 0;
        cache.retain(|_, _| {
            n += 1;
            n > PERM_CACHE_PRUNE_SIZE
        });
    }
    cache.insert(key.into(), v);
}

/// Measures a steady-state publish check: `(ns/op unrestricted, ns/op with
/// the given permissions)` over `iters` checks cycling through `subjects`.
/// Used by the unit test below and usable from the bench crate.
pub fn bench_publish_check(perms: &Permissions, subjects: &[&[u8]], iters: u32) -> (f64, f64) {
    let now = Instant::now();
    let run = |cp: &mut ConnPermissions| {
        let start = Instant::now();
        let mut ok = 0u32;
        for i in 0..iters {
            let s = subjects[i as usize % subjects.len()];
            ok = ok.wrapping_add(u32::from(cp.can_publish(std::hint::black_box(s), now)));
        }
        std::hint::black_box(ok);
        start.elapsed().as_nanos() as f64 / f64::from(iters.max(1))
    };
    let mut none = ConnPermissions::new(std::sync::Arc::new(Permissions::default()));
    let mut some = ConnPermissions::new(std::sync::Arc::new(perms.clone()));
    // Warm up the cache.
    for s in subjects {
        some.can_publish(s, now);
    }
    (run(&mut none), run(&mut some))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn sp(allow: Option<&[&str]>, deny: Option<&[&str]>) -> SubjectPermission {
        let v = |l: Option<&[&str]>| l.map(|l| l.iter().map(|s| s.to_string()).collect());
        SubjectPermission {
            allow: v(allow),
            deny: v(deny),
        }
    }

    fn perms(
        publish: Option<SubjectPermission>,
        subscribe: Option<SubjectPermission>,
    ) -> Permissions {
        Permissions::compile(&PermissionSpec {
            publish,
            subscribe,
            response: None,
        })
        .expect("compile")
    }

    #[test]
    fn publish_allow_deny() {
        let p = perms(
            Some(sp(Some(&["foo.>", "bar"]), Some(&["foo.secret.*"]))),
            None,
        );
        assert!(p.publish_allowed(b"foo.a"));
        assert!(p.publish_allowed(b"foo.a.b"));
        assert!(p.publish_allowed(b"bar"));
        assert!(!p.publish_allowed(b"foo"));
        assert!(!p.publish_allowed(b"baz"));
        assert!(!p.publish_allowed(b"foo.secret.x"));
        assert!(p.publish_allowed(b"foo.secret.x.y"));
        // Deny only: everything else allowed.
        let p = perms(Some(sp(None, Some(&["$SYS.>"]))), None);
        assert!(p.publish_allowed(b"anything"));
        assert!(!p.publish_allowed(b"$SYS.REQ.X"));
        // Empty allow list: nothing allowed.
        let p = perms(Some(sp(Some(&[]), None)), None);
        assert!(!p.publish_allowed(b"anything"));
        // No permissions at all.
        let p = Permissions::default();
        assert!(p.publish_allowed(b"x") && p.publish_unrestricted());
    }

    #[test]
    fn subscribe_wildcards_and_queues() {
        let p = perms(
            None,
            Some(sp(
                Some(&["foo.>", "bar.*", "q.sub grp", "w.* v1.*"]),
                Some(&["foo.private"]),
            )),
        );
        assert!(p.subscribe_allowed(b"foo.x", None));
        assert!(p.subscribe_allowed(b"foo.*", None));
        assert!(p.subscribe_allowed(b"foo.>", None));
        assert!(!p.subscribe_allowed(b"foo", None));
        assert!(!p.subscribe_allowed(b"foo.private", None));
        assert!(p.subscribe_allowed(b"bar.*", None));
        // As nats-server 2.9.10 (checked): a `*` rule matches a literal `>`
        // token of the SUB subject, so `bar.>` is allowed by `bar.*`.
        assert!(p.subscribe_allowed(b"bar.>", None));
        assert!(!p.subscribe_allowed(b"*", None));
        assert!(!p.subscribe_allowed(b">", None));
        // Queue rule: only with that queue, not as a plain sub.
        assert!(p.subscribe_allowed(b"q.sub", Some(b"grp")));
        assert!(!p.subscribe_allowed(b"q.sub", Some(b"other")));
        assert!(!p.subscribe_allowed(b"q.sub", None));
        // Plain rule covers queue subs with any queue.
        assert!(p.subscribe_allowed(b"foo.x", Some(b"anyq")));
        // Wildcard queue name.
        assert!(p.subscribe_allowed(b"w.a", Some(b"v1.blue")));
        assert!(p.subscribe_allowed(b"w.a", Some(b"v1.*")));
        assert!(!p.subscribe_allowed(b"w.a", Some(b"v2.blue")));
        // Deny with queue.
        let p = perms(None, Some(sp(None, Some(&["foo bad"]))));
        assert!(p.subscribe_allowed(b"foo", None));
        assert!(p.subscribe_allowed(b"foo", Some(b"good")));
        assert!(!p.subscribe_allowed(b"foo", Some(b"bad")));
    }

    #[test]
    fn delivery_filter_for_wildcard_overlapping_deny() {
        let p = perms(None, Some(sp(None, Some(&["foo.secret"]))));
        assert!(p.subscribe_allowed(b"foo.*", None));
        assert!(p.needs_delivery_filter(b"foo.*"));
        assert!(p.needs_delivery_filter(b">"));
        assert!(!p.needs_delivery_filter(b"bar.*"));
        assert!(!p.needs_delivery_filter(b"foo.public"));
        let mut cp = ConnPermissions::new(Arc::new(p));
        assert!(!cp.can_deliver(b"foo.secret"));
        assert!(cp.can_deliver(b"foo.public"));
        assert!(!cp.can_deliver(b"foo.secret"));
    }

    #[test]
    fn subset_match() {
        assert!(is_subset_match(b"foo.bar", b"foo.*"));
        assert!(is_subset_match(b"foo.bar", b"foo.>"));
        assert!(is_subset_match(b"foo.*", b"foo.>"));
        assert!(is_subset_match(b"foo.*", b"foo.*"));
        assert!(!is_subset_match(b"foo.>", b"foo.*"));
        assert!(!is_subset_match(b"foo.*", b"foo.bar"));
        assert!(!is_subset_match(b"foo", b"foo.>"));
        assert!(is_subset_match(b"a.b.c", b">"));
    }

    #[test]
    fn invalid_rules_rejected() {
        let bad = |p: SubjectPermission, sub: bool| {
            let spec = if sub {
                PermissionSpec {
                    subscribe: Some(p),
                    ..Default::default()
                }
            } else {
                PermissionSpec {
                    publish: Some(p),
                    ..Default::default()
                }
            };
            Permissions::compile(&spec).is_err()
        };
        assert!(bad(sp(Some(&["foo..bar"]), None), false));
        assert!(bad(sp(Some(&[""]), None), false));
        assert!(bad(sp(Some(&["foo q"]), None), false)); // queue in publish
        assert!(bad(sp(None, Some(&["a b c"])), true));
        assert!(bad(sp(Some(&["foo.>.bar"]), None), true));
        assert!(!bad(sp(Some(&["foo q"]), None), true));
    }

    #[test]
    fn allow_responses() {
        let spec = PermissionSpec {
            response: Some(ResponsePermission {
                max_msgs: 2,
                expires: Duration::from_secs(10),
            }),
            ..Default::default()
        };
        let p = Permissions::compile(&spec).expect("compile");
        // Publishing in general is now denied.
        assert!(!p.publish_allowed(b"foo"));
        let mut cp = ConnPermissions::new(Arc::new(p));
        let t0 = Instant::now();
        assert!(!cp.can_publish(b"_INBOX.abc", t0));
        cp.track_reply(b"_INBOX.abc", t0);
        assert!(cp.can_publish(b"_INBOX.abc", t0));
        assert!(cp.can_publish(b"_INBOX.abc", t0));
        assert!(!cp.can_publish(b"_INBOX.abc", t0), "max 2 responses");
        assert_eq!(cp.tracked_replies(), 0);
        // Expiry.
        cp.track_reply(b"_INBOX.def", t0);
        assert!(!cp.can_publish(b"_INBOX.def", t0 + Duration::from_secs(11)));
        // Defaults applied for zero values.
        let spec = PermissionSpec {
            response: Some(ResponsePermission {
                max_msgs: 0,
                expires: Duration::ZERO,
            }),
            publish: Some(sp(Some(&["ok"]), None)),
            ..Default::default()
        };
        let p = Permissions::compile(&spec).expect("compile");
        assert_eq!(p.response(), Some(ResponsePermission::default()));
        assert!(p.publish_allowed(b"ok"));
        let mut cp = ConnPermissions::new(Arc::new(p));
        cp.track_reply(b"r", t0);
        assert!(cp.can_publish(b"r", t0));
        assert!(!cp.can_publish(b"r", t0));
    }

    #[test]
    fn cache_bounded_and_consistent() {
        let p = perms(Some(sp(Some(&["a.*"]), Some(&["a.x"]))), None);
        let mut cp = ConnPermissions::new(Arc::new(p));
        let now = Instant::now();
        for i in 0..1000 {
            let s = format!("a.{i}");
            assert!(cp.can_publish(s.as_bytes(), now));
            assert!(cp.cached_len() <= MAX_PERM_CACHE_SIZE);
        }
        for _ in 0..3 {
            assert!(!cp.can_publish(b"a.x", now));
            assert!(!cp.can_publish(b"b", now));
            assert!(cp.can_publish(b"a.y", now));
        }
        // Replacing the rules clears the cache.
        cp.replace(Arc::new(perms(Some(sp(Some(&["b"]), None)), None)));
        assert!(cp.can_publish(b"b", now));
        assert!(!cp.can_publish(b"a.y", now));
    }

    #[test]
    fn violation_texts() {
        let p = perms(Some(sp(Some(&["ok"]), None)), Some(sp(Some(&["ok"]), None)));
        let mut cp = ConnPermissions::new(Arc::new(p));
        let mut out = BytesMut::new();
        assert!(!cp.check_publish(b"no", Instant::now(), &mut out));
        assert_eq!(
            &out[..],
            b"-ERR 'Permissions Violation for Publish to \"no\"'\r\n"
        );
        out.clear();
        assert!(!cp.check_subscribe(b"no", Some(b"q"), &mut out));
        assert_eq!(
            &out[..],
            b"-ERR 'Permissions Violation for Subscription to \"no\" using queue \"q\"'\r\n"
        );
        out.clear();
        assert!(cp.check_publish(b"ok", Instant::now(), &mut out));
        assert!(out.is_empty());
    }

    /// 100 rules (literals and wildcards) vs none; prints ns/op. The cached
    /// path must be of the same order as the unrestricted one.
    #[test]
    fn bench_100_rules_vs_none() {
        let mut allow: Vec<String> = (0..60).map(|i| format!("svc.{i}.req")).collect();
        allow.extend((0..30).map(|i| format!("events.{i}.*")));
        allow.extend((0..5).map(|i| format!("data.{i}.>")));
        let deny: Vec<String> = (0..5).map(|i| format!("events.{i}.secret")).collect();
        let spec = PermissionSpec {
            publish: Some(SubjectPermission {
                allow: Some(allow),
                deny: Some(deny),
            }),
            ..Default::default()
        };
        let p = Permissions::compile(&spec).expect("compile");
        let subjects: [&[u8]; 8] = [
            b"svc.1.req",
            b"svc.59.req",
            b"events.29.click",
            b"data.4.a.b.c",
            b"events.3.secret",
            b"nope",
            b"events.0.view",
            b"svc.7.req",
        ];
        let iters = 2_000_000;
        let (none, with) = bench_publish_check(&p, &subjects, iters);
        let uncached = {
            let start = Instant::now();
            for i in 0..iters / 10 {
                std::hint::black_box(p.publish_allowed(subjects[i as usize % subjects.len()]));
            }
            start.elapsed().as_nanos() as f64 / f64::from(iters / 10)
        };
        println!(
            "publish permission check: none {none:.1} ns/op, 100 rules cached {with:.1} ns/op, \
             100 rules uncached {uncached:.1} ns/op"
        );
        // Loose bound: the cache is a hash lookup, far below the uncached scan.
        assert!(with < 2000.0, "cached check too slow: {with} ns/op");
    }
}
