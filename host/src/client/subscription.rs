//! One SUB of one client (or of an internal client), as the account sublists index it.

use super::Client;
use crate::subject::Entry;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct Subscription {
    pub client: Arc<Client>,
    /// The name of the account whose sublist holds this subscription (by name, so that this
    /// layer needs nothing from `account`).
    pub account: Arc<str>,
    /// Set when the subscription's subject is allowed but some subjects it matches are
    /// denied to this client: those messages are not delivered.
    pub(crate) deny_filter: Option<Arc<crate::auth::permissions::Permissions>>,
    pub subject: Bytes,
    pub queue: Option<Bytes>,
    pub sid: Bytes,
    /// Auto-unsubscribe after this many deliveries; 0 = never.
    pub(crate) max: AtomicU64,
    pub(crate) delivered: AtomicU64,
}

impl Subscription {
    pub fn new(
        client: Arc<Client>,
        account: Arc<str>,
        subject: Bytes,
        queue: Option<Bytes>,
        sid: Bytes,
    ) -> Subscription {
        Subscription {
            client,
            account,
            deny_filter: None,
            subject,
            queue,
            sid,
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        }
    }

    /// The same subscription with another delivery filter (permissions changed); counters
    /// carried over.
    pub(crate) fn refiltered(
        &self,
        filter: Option<Arc<crate::auth::permissions::Permissions>>,
    ) -> Subscription {
        Subscription {
            client: self.client.clone(),
            account: self.account.clone(),
            deny_filter: filter,
            subject: self.subject.clone(),
            queue: self.queue.clone(),
            sid: self.sid.clone(),
            max: AtomicU64::new(self.max()),
            delivered: AtomicU64::new(self.delivered()),
        }
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

impl Entry for Subscription {
    fn subject(&self) -> &[u8] {
        &self.subject
    }
    fn queue(&self) -> Option<&[u8]> {
        self.queue.as_deref()
    }
}
