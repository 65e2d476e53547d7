//! Permissions on the path: may this client publish to a subject, subscribe to one, and
//! which of a wildcard subscription's matches must it not receive. The decisions themselves
//! (and their per-subject cache) are in `auth::permissions`.

use super::session::Session;
use super::Core;
use crate::auth::permissions::Permissions;
use crate::client::{Client, Queued};
use crate::proto::errors;
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Session {
    /// Whether the client may publish to `subject`; if not, it is told (nats-server's
    /// `Permissions Violation for Publish to …`, connection kept).
    pub(super) fn permit_publish(&mut self, subject: &[u8]) -> bool {
        let Some(perms) = &mut self.perms else {
            return true;
        };
        // The read batch's clock: allow_responses expiry needs no finer grain, and a clock
        // read per message would cost as much as the cached permission check.
        let now = self.batch_time;
        if perms.permissions().response().is_some() {
            let replies = std::mem::take(&mut self.client.out.lock().new_replies);
            for r in replies {
                perms.track_reply(&r, now);
            }
        }
        let mut err = BytesMut::new();
        if perms.check_publish(subject, now, &mut err) {
            return true;
        }
        tracing::debug!(
            "{} - publish permission violation: {}",
            self.client.label(),
            String::from_utf8_lossy(subject)
        );
        self.send(&err);
        false
    }

    /// Whether the client may subscribe; `Ok` carries the delivery filter a wildcard
    /// subscription needs when some of its matches are denied. On `Err` the client was told.
    pub(super) fn permit_subscribe(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
    ) -> Result<Option<Arc<Permissions>>, ()> {
        let Some(perms) = &self.perms else {
            return Ok(None);
        };
        let mut err = BytesMut::new();
        if !perms.check_subscribe(subject, queue, &mut err) {
            self.send(&err);
            return Err(());
        }
        Ok(perms
            .permissions()
            .needs_delivery_filter(subject)
            .then(|| perms.shared()))
    }
}

/// Gives a live client new permissions: its reader task picks them up before its next
/// read batch; here its subscriptions are brought in line at once. As nats-server does on a
/// permissions change, subscriptions no longer allowed are removed and the client is told
/// `-ERR 'Permissions Violation for Subscription to "<subject>" (sid "<sid>")'`; those
/// still allowed get a delivery filter for the new rules' denied subjects.
pub fn apply_permissions(core: &Core, client: &Arc<Client>, perms: Option<Arc<Permissions>>) {
    let tracks = perms.as_ref().is_some_and(|p| p.response().is_some());
    client.tracks_replies.store(tracks, Ordering::Relaxed);
    client.set_permissions(perms.clone());
    let mut notices = BytesMut::new();
    for sub in client.subscriptions() {
        let (allowed, filter) = match &perms {
            None => (true, None),
            Some(p) => (
                p.subscribe_allowed(&sub.subject, sub.queue.as_deref()),
                p.needs_delivery_filter(&sub.subject).then(|| p.clone()),
            ),
        };
        if !allowed {
            core.accounts.remove_sub(&sub);
            notices.extend_from_slice(b"-ERR '");
            notices.extend_from_slice(errors::PERMISSIONS_VIOLATION_SUBSCRIPTION_PREFIX.as_bytes());
            errors::write_go_quoted(&mut notices, &sub.subject);
            notices.extend_from_slice(b" (sid ");
            errors::write_go_quoted(&mut notices, &sub.sid);
            notices.extend_from_slice(b")'\r\n");
            tracing::info!(
                "{} - cid:{} - Removed sub {:?} (sid {:?}) - not authorized",
                client.addr,
                client.id,
                String::from_utf8_lossy(&sub.subject),
                String::from_utf8_lossy(&sub.sid)
            );
            continue;
        }
        let same_filter = match (&sub.deny_filter, &filter) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same_filter {
            // The filter is fixed per subscription: swap in a copy with the new one.
            let fresh = Arc::new(sub.refiltered(filter));
            {
                let mut subs = client.subs.lock();
                match subs.get(&sub.sid) {
                    Some(s) if Arc::ptr_eq(s, &sub) => {
                        subs.insert(fresh.sid.clone(), fresh.clone());
                    }
                    // Unsubscribed meanwhile.
                    _ => continue,
                }
            }
            if let Some(account) = core.accounts.get(&sub.account) {
                account.sublist.remove(&sub);
                account.sublist.insert(fresh);
            }
        }
    }
    if !notices.is_empty() {
        if let Queued::Yes { .. } = client.queue_raw(&notices) {
            client.wake_writer.notify_one();
        }
    }
}
