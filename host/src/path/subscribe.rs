//! SUB and UNSUB: subject and queue validation, subscribe permissions, the account's
//! per-client subscription limit, and auto-unsubscribe after N messages.

use super::session::Session;
use crate::client::Subscription;
use crate::proto::ServerError;
use crate::subject;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Session {
    pub(super) fn on_sub(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
        if !subject::is_valid_subject(subject) || queue.is_some_and(|q| !subject::is_valid_queue(q))
        {
            self.fail(ServerError::InvalidSubject);
            return;
        }
        let Ok(deny_filter) = self.permit_subscribe(subject, queue) else {
            return;
        };
        let sub = {
            let mut subs = self.client.subs.lock();
            if subs.contains_key(sid) {
                None
            } else if self.max_subs.is_some_and(|max| subs.len() >= max) {
                drop(subs);
                tracing::debug!("{} - maximum subscriptions exceeded", self.client.label());
                self.fail(ServerError::MaxSubscriptionsExceeded);
                return;
            } else {
                let mut sub = Subscription::new(
                    self.client.clone(),
                    self.account.name.clone(),
                    Bytes::copy_from_slice(subject),
                    queue.map(Bytes::copy_from_slice),
                    Bytes::copy_from_slice(sid),
                );
                sub.deny_filter = deny_filter;
                let sub = Arc::new(sub);
                subs.insert(sub.sid.clone(), sub.clone());
                Some(sub)
            }
        };
        if let Some(sub) = sub {
            self.account.sublist.insert(sub);
            self.account.notify_interest(subject);
        }
        self.ok();
    }

    pub(super) fn on_unsub(&mut self, sid: &[u8], max: Option<u64>) {
        let sub = self.client.subs.lock().get(sid).cloned();
        if let Some(sub) = sub {
            let keep = {
                // Deliveries update `delivered` under the outbound lock; decide under it too.
                let _out = self.client.out.lock();
                match max {
                    Some(m) if m > 0 && sub.delivered() < m => {
                        sub.max.store(m, Ordering::Relaxed);
                        true
                    }
                    _ => false,
                }
            };
            if !keep {
                self.core.accounts.remove_sub(&sub);
            }
        }
        self.ok();
    }
}
