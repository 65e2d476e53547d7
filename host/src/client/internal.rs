//! Internal clients: server code that subscribes like a connection.
//!
//! Routing delivers to an internal subscription by calling [`Internal::deliver`] on the
//! publisher's task, with the message still borrowed from the publisher's read buffer. The
//! handler must not block; what it wants to happen next it writes into [`Effects`], which
//! the message path carries out once the delivery is over:
//! - `publish`: messages to publish *in the subscription's account* (replies, events,
//!   republished copies) — they are routed like any publish, so imports, queue groups and
//!   other internal subscribers apply to them too;
//! - `commits`: writes that are buffered now and made durable once per read batch (group
//!   commit), each with the reply that may only be sent after it.

use super::{Client, Subscription};
use crate::proto::{Msg, MsgRef};
use bytes::Bytes;
use std::sync::Arc;

pub trait Internal: Send + Sync {
    /// `sub` matched `msg`; `from` is the publishing client, when there is one.
    /// Returns whether it took the message (counts as delivered: no "no responders").
    fn deliver(
        &self,
        sub: &Subscription,
        msg: &MsgRef<'_>,
        from: Option<&Client>,
        fx: &mut Effects,
    ) -> bool;
}

/// Something written in a read batch that must be flushed before its replies go out.
pub trait Durable: Send + Sync {
    /// Makes everything written so far durable; on failure, the payload every waiting
    /// reply gets instead of its own.
    fn flush(&self) -> Result<(), Bytes>;

    /// After a successful flush: whether the write that returned `mark` is stored (a failed
    /// write by someone else's flush may have undone it); if not, the payload its reply gets
    /// instead.
    fn durable(&self, mark: u64) -> Result<(), Bytes>;
}

/// A reply held until `unit` is flushed (`reply` is `None` when nobody waits).
pub struct Commit {
    pub unit: Arc<dyn Durable>,
    pub reply: Option<Msg>,
    /// The write the reply confirms ([`Durable::durable`]); `None` when it confirms none
    /// (the reply reports an error).
    pub mark: Option<u64>,
}

/// What internal handlers ask the message path to do after a delivery.
#[derive(Default)]
pub struct Effects {
    pub publish: Vec<Msg>,
    pub commits: Vec<Commit>,
    /// Messages published in order after `publish`, each routed by `to` when set: then
    /// `(to, msg)` reaches the subscribers of `to` with `msg.subject` in its frame (a
    /// JetStream consumer's delivery to a pull request's reply keeps the stored subject).
    pub deliveries: Vec<(Option<Bytes>, Msg)>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && self.commits.is_empty() && self.deliveries.is_empty()
    }

    /// Publishes `payload` (with optional headers) to `reply` in the subscription's account.
    pub fn reply(&mut self, reply: &[u8], headers: Option<Bytes>, payload: impl Into<Bytes>) {
        self.publish.push(Msg {
            subject: Bytes::copy_from_slice(reply),
            reply: None,
            headers,
            payload: payload.into(),
        });
    }
}
