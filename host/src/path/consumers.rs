//! JetStream consumers as internal clients of their account, as in nats-server.
//!
//! Each consumer gets one internal client subscribed to its pull subject
//! (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`), its ack subjects
//! (`$JS.ACK.<stream>.<consumer>.>`) and, with flow control, its flow control answers
//! (`$JS.FC.<stream>.<consumer>.*`). A request or an ack is handled on the publisher's
//! task; what the consumer delivers in answer goes out through the handler's effects, routed
//! like any internal publish (to the request's reply subject, keeping the stored subject).
//!
//! One task per consumer ([`drive`]) does the rest: messages newly stored (the stream wakes
//! it after each write), redelivery after `ack_wait`, request expiry and heartbeats,
//! `inactive_threshold` and the periodic state flush. It sleeps until the consumer's next
//! deadline; no timer exists per message or per request. A push consumer without interest
//! on its deliver subject sleeps until the account reports a matching new subscription
//! (`Account::notify_interest`, registered here) or its idle poll comes round.

use super::route::{Origin, Router};
use super::store::Attached;
use super::Core;
use crate::account::Account;
use crate::client::{Client, Effects, Internal, Subscription};
use crate::jetstream::consumer::{Consumer, Delivery};
use crate::jetstream::now_ns;
use crate::proto::{Msg, MsgRef};
use bytes::Bytes;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The longest a consumer's task sleeps without a deadline (it re-checks its state).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// One consumer's internal client, its subscriptions, and whether its task runs.
pub(super) struct Attachment {
    consumer: Arc<Consumer>,
    /// Unsubscribed (and so released) when the consumer goes.
    subs: Vec<Arc<Subscription>>,
    running: bool,
}

/// The consumers' internal clients of one account.
#[derive(Default)]
pub(super) struct ConsumerClients {
    generation: Option<u64>,
    attached: Vec<Attachment>,
}

fn to_msg(d: Delivery) -> (Option<Bytes>, Msg) {
    let to = d.redirected().then(|| d.to.clone());
    let msg = Msg {
        subject: d.subject,
        reply: d.reply,
        headers: d.headers,
        payload: d.payload,
    };
    (to, msg)
}

/// Hands `out` to the message path after an internal delivery.
pub(super) fn push_effects(fx: &mut Effects, out: Vec<Delivery>) {
    // One ordered list: a status must not overtake the messages before it.
    fx.deliveries.extend(out.into_iter().map(to_msg));
}

/// Publishes `out` in `account` from outside any delivery (the consumer's task).
fn publish(core: &Core, account: &Arc<Account>, out: Vec<Delivery>) {
    if out.is_empty() {
        return;
    }
    let max_pending = usize::try_from(core.options().limits.max_pending).unwrap_or(usize::MAX);
    let mut router = Router::new(account.clone(), max_pending, crate::util::unix_nanos());
    for d in out {
        match to_msg(d) {
            (Some(to), m) => router.route_to(core, account, &to, &m.as_ref()),
            (None, m) => router.route(core, account, &m.as_ref(), Origin::SERVER),
        };
    }
    router.settle(core);
}

/// Whether anyone in `account` still listens on a request's reply subject. Replies through a
/// service import (`_R_.…`) are trusted until they expire.
fn interest(account: &Account) -> impl Fn(&str) -> bool + '_ {
    move |reply: &str| {
        reply.starts_with("_R_.") || !account.sublist.matches(reply.as_bytes()).is_empty()
    }
}

/// Pull requests and acks of one consumer.
struct ConsumerClient {
    consumer: Arc<Consumer>,
    account: Weak<Account>,
}

/// Whether an ack body can bring one of the consumer's deadlines forward: `-NAK` (a
/// redelivery) and `+NXT` (a pull request). `+ACK`, `+TERM` and `+WPI` cannot.
fn wakes_the_task(body: &[u8]) -> bool {
    let body = body.trim_ascii_start();
    body.starts_with(b"-NAK") || body.starts_with(b"+NXT")
}

impl Internal for ConsumerClient {
    fn deliver(
        &self,
        _sub: &Subscription,
        msg: &MsgRef<'_>,
        _from: Option<&Client>,
        fx: &mut Effects,
    ) -> bool {
        let (Some(account), Ok(subject)) =
            (self.account.upgrade(), std::str::from_utf8(msg.subject))
        else {
            return false;
        };
        let reply = msg.reply.and_then(|r| std::str::from_utf8(r).ok());
        let now = now_ns();
        let acking = subject.starts_with("$JS.ACK.");
        let out = if acking {
            self.consumer
                .ack(subject, reply, msg.payload, now, &interest(&account))
        } else if subject.starts_with("$JS.FC.") {
            self.consumer.flow_control_answer(subject);
            Vec::new()
        } else {
            let Some(reply) = reply else { return true };
            self.consumer
                .pull(reply, msg.payload, now, &interest(&account))
        };
        push_effects(fx, out);
        self.consumer.retire_done();
        // Its deadlines may have moved earlier (a new request's expiry, a NAK's redelivery):
        // the task recomputes its sleep. A plain ack only removes a deadline, and waking the
        // task for every ack cost it a pass over all pending messages per ack.
        if !acking || wakes_the_task(msg.payload) {
            self.consumer.signal.notify_one();
        }
        true
    }
}

impl Attached {
    /// Makes the consumers' internal clients (and tasks) match the account's consumers.
    /// Returns what the waiting requests of deleted consumers are told.
    pub(crate) fn sync_consumers(self: &Arc<Self>) -> Vec<Delivery> {
        let mut told = Vec::new();
        let (Some(core), Some(account)) = (self.core.upgrade(), self.account.upgrade()) else {
            return told;
        };
        let mut state = self.consumers.lock();
        let generation = self.acc.consumers_generation();
        let all_running = state.attached.iter().all(|a| a.running);
        if state.generation == Some(generation) && all_running {
            return told;
        }
        state.generation = Some(generation);
        let wanted = self.acc.all_consumers();
        state.attached.retain(|a| {
            let keep = wanted.iter().any(|c| Arc::ptr_eq(c, &a.consumer));
            if !keep {
                for sub in &a.subs {
                    core.unsubscribe_internal(&account, sub);
                }
                told.extend(a.consumer.drain_deleted());
            }
            keep
        });
        for c in wanted {
            if !state.attached.iter().any(|a| Arc::ptr_eq(&a.consumer, &c)) {
                let handler = Arc::new(ConsumerClient {
                    consumer: c.clone(),
                    account: Arc::downgrade(&account),
                });
                let client = Arc::new(Client::new_internal(
                    core.next_client_id(),
                    "JetStream consumer",
                    handler,
                ));
                let next = format!("$JS.API.CONSUMER.MSG.NEXT.{}.{}", c.stream.name, c.name);
                let acks = format!("$JS.ACK.{}.{}.>", c.stream.name, c.name);
                let mut subs = vec![
                    core.subscribe_internal(&account, &client, &next),
                    core.subscribe_internal(&account, &client, &acks),
                ];
                if let Some(domain) = &self.js.config.domain {
                    // Clients that address JetStream by domain (`$JS.<domain>.API`) pull there.
                    let next = format!(
                        "$JS.{domain}.API.CONSUMER.MSG.NEXT.{}.{}",
                        c.stream.name, c.name
                    );
                    subs.push(core.subscribe_internal(&account, &client, &next));
                }
                if c.config().flow_control {
                    let fc = format!("$JS.FC.{}.{}.*", c.stream.name, c.name);
                    subs.push(core.subscribe_internal(&account, &client, &fc));
                }
                state.attached.push(Attachment {
                    consumer: c,
                    subs,
                    running: false,
                });
            }
        }
        // Push consumers hear at once when someone subscribes to their deliver subject.
        let watch = state
            .attached
            .iter()
            .filter_map(|a| {
                let cfg = a.consumer.config();
                cfg.is_push()
                    .then(|| (cfg.deliver_subject, a.consumer.signal.clone()))
            })
            .collect();
        account.set_interest_watch(watch);
        // Tasks start once a runtime exists (recovered consumers are attached at start-up).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            for a in state.attached.iter_mut().filter(|a| !a.running) {
                a.running = true;
                rt.spawn(drive(Arc::downgrade(self), a.consumer.clone()));
            }
        }
        told
    }
}

/// One consumer's task: timers, new messages, inactivity, state flushes, and for push
/// consumers heartbeats, rate-limit pacing and watching for interest on the deliver subject.
async fn drive(attached: Weak<Attached>, consumer: Arc<Consumer>) {
    loop {
        let Some(at) = attached.upgrade() else { return };
        let (Some(core), Some(account)) = (at.core.upgrade(), at.account.upgrade()) else {
            return;
        };
        if consumer.is_closed() {
            return;
        }
        let now = now_ns();
        if consumer.inactive(now) {
            tracing::debug!(
                "JetStream: consumer '{} > {}' inactive, deleted",
                consumer.stream.name,
                consumer.name
            );
            let deleted = at
                .acc
                .delete_consumer(&consumer.stream.name, &consumer.name);
            let mut told = at.sync_consumers();
            if deleted.is_ok() {
                let (subject, body) = crate::jetstream::advisory::consumer_event(
                    false,
                    &consumer.stream.name,
                    &consumer.name,
                    at.js.config.domain.as_deref(),
                );
                if !account.sublist.matches(subject.as_bytes()).is_empty() {
                    told.push(Delivery::publish(subject, body));
                }
            }
            publish(&core, &account, told);
            return;
        }
        let (out, next) = consumer.poll(now, &interest(&account));
        consumer.retire_done();
        publish(&core, &account, out);
        drop((core, account, at));
        let c = consumer.clone();
        let _ = tokio::task::spawn_blocking(move || c.persist(now_ns(), false)).await;
        if consumer.has_more() {
            // More to push at once (the step stopped at its size cap): let others run first.
            tokio::task::yield_now().await;
            continue;
        }
        let wait = if next == i64::MAX {
            IDLE_POLL
        } else {
            Duration::from_nanos(next.saturating_sub(now_ns()).max(1_000_000) as u64).min(IDLE_POLL)
        };
        tokio::select! {
            _ = consumer.signal.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Brings every account's consumer clients up to date (the server's JetStream tick).
pub fn sync_all(core: &Core) {
    let all: Vec<Arc<Attached>> = core.js_attached.lock().values().cloned().collect();
    for a in all {
        let told = a.sync_consumers();
        if let Some(account) = a.account.upgrade() {
            publish(core, &account, told);
        }
    }
}
