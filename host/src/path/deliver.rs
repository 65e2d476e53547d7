//! Delivery: the last stage. A message is appended to each receiving client's outbound
//! buffer (or handed to an internal client's handler); what a read batch touched is settled
//! once at its end (writers woken, spent subscriptions removed, slow consumers closed).

use crate::client::{Client, Commit, Effects, Queued, Subscription};
use crate::proto::MsgRef;
use std::sync::Arc;

/// What one read batch (or one internal publish) accumulates and settles at its end.
#[derive(Default)]
pub struct Batch {
    /// Clients with newly queued bytes: their writers are woken once, after the batch.
    pub flush: Vec<Arc<Client>>,
    /// Subscriptions that reached their auto-unsubscribe maximum.
    pub expired: Vec<Arc<Subscription>>,
    pub slow: Vec<Arc<Client>>,
    /// What internal handlers asked for during the current delivery (see `route`).
    pub effects: Effects,
    /// Group commit: buffered writes and the replies held until they are durable, with the
    /// account each reply is published in.
    pub commits: Vec<(Arc<crate::account::Account>, Commit)>,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    rng: u64,
}

impl Batch {
    pub fn new(seed: u64) -> Self {
        Batch {
            rng: seed | 1,
            ..Batch::default()
        }
    }

    /// xorshift64: queue-member choice and mapping weights need spread, not secrecy.
    pub fn next_rand(&mut self) -> u64 {
        let mut x = self.rng | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Delivers `msg` to one subscription; false when it did not take it (filtered, closed,
    /// spent, or a slow consumer), so that a queue group tries another member.
    #[inline]
    pub fn deliver(
        &mut self,
        sub: &Arc<Subscription>,
        msg: &MsgRef<'_>,
        from: Option<&Client>,
        max_pending: usize,
    ) -> bool {
        if let Some(p) = &sub.deny_filter {
            if p.deny_delivery(msg.subject) {
                return false;
            }
        }
        if let Some(handler) = sub.client.internal() {
            return handler.deliver(sub, msg, from, &mut self.effects);
        }
        let mut expired = false;
        match sub.client.queue_msg(sub, msg, max_pending, &mut expired) {
            Queued::Yes { first } => {
                if first {
                    self.flush.push(sub.client.clone());
                }
                if expired {
                    self.expired.push(sub.clone());
                }
                self.out_msgs += 1;
                self.out_bytes += msg.size() as u64;
                true
            }
            Queued::Closed => false,
            Queued::SlowConsumer => {
                self.slow.push(sub.client.clone());
                false
            }
        }
    }
}
