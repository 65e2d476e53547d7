//! Routing: which subscriptions a message reaches in its account, across exports and imports,
//! and what internal subscribers asked for in return. One delivery path for every origin —
//! client publishes, server replies, events, JetStream — with one queue-group rule (a random
//! member that takes the message).

use super::deliver::Batch;
use super::Core;
use crate::account::links::RESPONSE_PREFIX;
use crate::account::Account;
use crate::client::{Client, Subscription};
use crate::proto::MsgRef;
use crate::subject::SubResult;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Entries in the match cache before it is reset.
const CACHE_MAX: usize = 512;
/// How deep internal replies may chain (a reply that triggers a reply …) before they stop.
const MAX_DEPTH: u8 = 8;

/// Who publishes: the client (for echo and for internal handlers that answer it), if any.
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    pub client: Option<&'a Arc<Client>>,
    /// `echo: false` in CONNECT: the publisher's own subscriptions are skipped.
    pub echo: bool,
}

impl Origin<'_> {
    /// The server itself (replies, events, stored messages).
    pub const SERVER: Origin<'static> = Origin {
        client: None,
        echo: true,
    };
}

/// The routing state of one publisher: its home account's match cache and the delivery batch.
pub struct Router {
    home: Arc<Account>,
    cache: FxHashMap<Box<[u8]>, Arc<SubResult<Subscription>>>,
    cache_gen: u64,
    depth: u8,
    pub max_pending: usize,
    pub batch: Batch,
}

impl Router {
    pub fn new(home: Arc<Account>, max_pending: usize, seed: u64) -> Self {
        Router {
            home,
            cache: FxHashMap::default(),
            cache_gen: u64::MAX,
            depth: 0,
            max_pending,
            batch: Batch::new(seed),
        }
    }

    pub fn home(&self) -> &Arc<Account> {
        &self.home
    }

    /// Moves the cache to another home account.
    pub fn set_home(&mut self, account: Arc<Account>) {
        if !Arc::ptr_eq(&self.home, &account) {
            self.home = account;
            self.cache.clear();
            self.cache_gen = u64::MAX;
        }
    }

    /// The subscriptions matching `subject` in `account`; cached for the home account while
    /// its sublist is unchanged.
    fn lookup(&mut self, account: &Arc<Account>, subject: &[u8]) -> Arc<SubResult<Subscription>> {
        if !Arc::ptr_eq(account, &self.home) {
            return Arc::new(account.sublist.matches(subject));
        }
        let gen = account.sublist.genid();
        if gen != self.cache_gen {
            self.cache.clear();
            self.cache_gen = gen;
        }
        if let Some(r) = self.cache.get(subject) {
            return r.clone();
        }
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        let r = Arc::new(account.sublist.matches(subject));
        self.cache.insert(subject.into(), r.clone());
        r
    }

    /// Routes `msg` published in `account`: its subscribers, then exports and imports.
    /// Returns how many subscriptions (internal ones included) took it.
    pub fn route(
        &mut self,
        core: &Core,
        account: &Arc<Account>,
        msg: &MsgRef<'_>,
        origin: Origin<'_>,
    ) -> usize {
        // What the server itself publishes is mostly replies (PubAcks, API answers) to unique
        // inbox subjects: caching those would only churn the cache.
        let result = match origin.client {
            Some(_) => self.lookup(account, msg.subject),
            None => Arc::new(account.sublist.matches(msg.subject)),
        };
        let mut delivered = self.deliver_all(core, account, &result, msg, origin);
        if account.is_linked() || msg.subject.starts_with(RESPONSE_PREFIX) {
            delivered += self.route_across(core, account, msg, origin);
        }
        delivered
    }

    /// Every plain subscription and one member of each queue group of `result`.
    fn deliver_all(
        &mut self,
        core: &Core,
        account: &Arc<Account>,
        result: &SubResult<Subscription>,
        msg: &MsgRef<'_>,
        origin: Origin<'_>,
    ) -> usize {
        let me = origin.client.map(|c| c.id);
        let skip = |sub: &Subscription| !origin.echo && Some(sub.client.id) == me;
        let from = origin.client.map(|c| &**c);
        let max_pending = self.max_pending;
        let batch = &mut self.batch;
        let mut delivered = 0usize;
        for sub in &result.psubs {
            if !skip(sub) && batch.deliver(sub, msg, from, max_pending) {
                delivered += 1;
            }
        }
        for group in &result.qsubs {
            let n = group.len();
            let start = (batch.next_rand() % n as u64) as usize;
            for i in 0..n {
                let sub = &group[(start + i) % n];
                if !skip(sub) && batch.deliver(sub, msg, from, max_pending) {
                    delivered += 1;
                    break;
                }
            }
        }
        if !self.batch.effects.is_empty() {
            self.run_effects(core, account);
        }
        delivered
    }

    /// Carries out what internal subscribers of `account` asked for: their messages are
    /// published there (routed like any other), their commits wait for the batch's end.
    fn run_effects(&mut self, core: &Core, account: &Arc<Account>) {
        let effects = std::mem::take(&mut self.batch.effects);
        for commit in effects.commits {
            self.batch.commits.push((account.clone(), commit));
        }
        if self.depth >= MAX_DEPTH {
            tracing::warn!(
                "internal replies in account {} nested more than {MAX_DEPTH} deep; dropped",
                account.name
            );
            return;
        }
        self.depth += 1;
        for m in &effects.publish {
            self.route(core, account, &m.as_ref(), Origin::SERVER);
        }
        for (to, m) in &effects.deliveries {
            match to {
                Some(to) => self.route_to(core, account, to, &m.as_ref()),
                None => self.route(core, account, &m.as_ref(), Origin::SERVER),
            };
        }
        self.depth -= 1;
    }

    /// Delivers `msg` to the subscribers of `to` rather than of `msg.subject` (nats-server's
    /// deliver subject): a JetStream consumer's message goes to a pull request's reply
    /// subject and keeps its stored subject. A reply subject that came through a service
    /// import (`_R_.…`) is followed back to the importing account.
    pub fn route_to(
        &mut self,
        core: &Core,
        account: &Arc<Account>,
        to: &[u8],
        msg: &MsgRef<'_>,
    ) -> usize {
        let result = account.sublist.matches(to);
        let mut delivered = self.deliver_all(core, account, &result, msg, Origin::SERVER);
        if to.starts_with(RESPONSE_PREFIX) {
            if let Some((importer, local)) = account.responses.resolve(to) {
                let r = importer.sublist.matches(&local);
                delivered += self.deliver_all(core, &importer, &r, msg, Origin::SERVER);
            }
        }
        delivered
    }

    /// Exports and imports: responses to routed service requests, stream exports to
    /// importers, and this account's service imports. Lock order: an account's `links` (read)
    /// is held while delivering, which only takes clients' `out` locks; internal handlers'
    /// effects run after it is released.
    fn route_across(
        &mut self,
        core: &Core,
        account: &Arc<Account>,
        msg: &MsgRef<'_>,
        origin: Origin<'_>,
    ) -> usize {
        let mut delivered = 0;
        if msg.subject.starts_with(RESPONSE_PREFIX) {
            if let Some((importer, to)) = account.responses.resolve(msg.subject) {
                let r = importer.sublist.matches(&to);
                let reply = MsgRef {
                    subject: &to,
                    reply: None,
                    ..*msg
                };
                delivered += self.deliver_all(core, &importer, &r, &reply, origin);
            }
        }
        if !account.is_linked() {
            return delivered;
        }
        // Collect the targets first: delivering may run internal handlers, which may route
        // again and must not find this account's links locked.
        // (account, subject there, reply there: `Some` for a service import).
        type Target = (Arc<Account>, Vec<u8>, Option<Vec<u8>>);
        let targets: Vec<Target> = {
            let links = account.links.read();
            let streams = links
                .streams_out
                .iter()
                .filter(|l| l.matches(msg.subject))
                .map(|l| (l.into.clone(), l.local_subject(msg.subject), None));
            let services = links
                .services
                .iter()
                .filter(|l| l.matches(msg.subject))
                .map(|l| {
                    let routed_reply = msg.reply.map(|r| {
                        l.exporter.responses.register(
                            &l.exporter.response_token,
                            account.clone(),
                            r,
                            l.response_type,
                        )
                    });
                    let remote = l.remote_subject(msg.subject).into_owned();
                    (l.exporter.clone(), remote, Some(routed_reply))
                });
            streams
                .chain(services)
                .map(|(a, s, r)| (a, s, r.map(|r: Option<Vec<u8>>| r.unwrap_or_default())))
                .collect()
        };
        for (into, subject, routed_reply) in targets {
            let r = into.sublist.matches(&subject);
            let reply = match &routed_reply {
                // A service import: the exporter answers on the routed reply, if any.
                Some(rr) => (!rr.is_empty()).then_some(rr.as_slice()),
                None => msg.reply,
            };
            let m = MsgRef {
                subject: &subject,
                reply,
                ..*msg
            };
            delivered += self.deliver_all(core, &into, &r, &m, origin);
        }
        delivered
    }

    /// Settles the batch: commits first (their replies are routed), then wakes writers,
    /// removes spent subscriptions, closes slow consumers and publishes the counters.
    pub fn settle(&mut self, core: &Core) {
        if !self.batch.commits.is_empty() {
            self.settle_commits(core);
        }
        for c in self.batch.flush.drain(..) {
            c.wake_writer.notify_one();
        }
        for sub in std::mem::take(&mut self.batch.expired) {
            core.accounts.remove_sub(&sub);
        }
        for c in std::mem::take(&mut self.batch.slow) {
            core.slow_consumer(&c, crate::client::CloseReason::SlowConsumerPendingBytes);
        }
        let b = &mut self.batch;
        if b.out_msgs != 0 {
            core.stats.add_out(b.out_msgs, b.out_bytes);
            b.out_msgs = 0;
            b.out_bytes = 0;
        }
    }

    /// Group commit: each unit written in this batch is flushed once (one write, one fsync
    /// where configured), then the replies that waited for it go out — or, if its flush
    /// failed, the error it names instead.
    fn settle_commits(&mut self, core: &Core) {
        let commits = std::mem::take(&mut self.batch.commits);
        let mut flushed: Vec<(*const (), Result<(), bytes::Bytes>)> = Vec::new();
        for (account, commit) in commits {
            let key = Arc::as_ptr(&commit.unit) as *const ();
            let result = match flushed.iter().find(|(k, _)| *k == key) {
                Some((_, r)) => r.clone(),
                None => {
                    let r = commit.unit.flush();
                    flushed.push((key, r.clone()));
                    r
                }
            };
            let Some(reply) = commit.reply else { continue };
            let result = match (result, commit.mark) {
                (Ok(()), Some(mark)) => commit.unit.durable(mark),
                (result, _) => result,
            };
            match result {
                Ok(()) => self.route(core, &account, &reply.as_ref(), Origin::SERVER),
                Err(error) => {
                    let m = MsgRef::new(&reply.subject, &error);
                    self.route(core, &account, &m, Origin::SERVER)
                }
            };
        }
        // Replies routed above may have stored messages again (a PubAck captured by a
        // stream): settle those too, in a bounded number of rounds.
        if !self.batch.commits.is_empty() && self.depth < MAX_DEPTH {
            self.depth += 1;
            self.settle_commits(core);
            self.depth -= 1;
        }
    }
}
