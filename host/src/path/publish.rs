//! PUB/HPUB: the publish stage strings the others together —
//! count → permit → (pedantic check, +OK) → map → plugins → route — and tells a requester
//! at once when nobody got its request (`no_responders`).

use super::route::Origin;
use super::session::Session;
use crate::proto::{self, MsgRef, ServerError};
use crate::subject;
use bytes::BytesMut;
use std::borrow::Cow;

impl Session {
    pub(super) fn on_pub(&mut self, msg: MsgRef<'_>) {
        let Some(subject) = self.admit_pub(&msg) else {
            return;
        };
        let published = msg.subject;
        let msg = msg.with_subject(&subject);
        if !self.plugins.on_publish_path() || !self.plugins_apply(msg.subject) {
            self.route_pub(&msg);
            return;
        }
        let plugins = self.plugins.clone();
        let max_payload = self.limits.max_payload;
        let verdict = plugins
            .run(|| super::plugins::on_publish(&plugins, &self.account.name, max_payload, &msg));
        self.settle_verdict(verdict, &msg, published);
    }

    /// Everything a publish goes through before plugins and routing: counters,
    /// permissions, the pedantic subject check, +OK and native mappings. Returns the subject
    /// to route on, or `None` when the message was refused here.
    pub(super) fn admit_pub<'a>(&mut self, msg: &MsgRef<'a>) -> Option<Cow<'a, [u8]>> {
        self.router.batch.in_msgs += 1;
        self.router.batch.in_bytes += msg.size() as u64;
        if !self.permit_publish(msg.subject) {
            return None;
        }
        // nats-server reports a wildcard publish in pedantic mode but still delivers it.
        if self.pedantic && !subject::is_valid_literal_subject(msg.subject) {
            self.fail(ServerError::InvalidPublishSubject);
        }
        self.ok();
        Some(self.map_subject(msg.subject))
    }

    /// Routes a publish in this client's account; tells a requester that asked for it when
    /// nobody (no subscriber, no stream, no service) took its request.
    pub(super) fn route_pub(&mut self, msg: &MsgRef<'_>) {
        let origin = Origin {
            client: Some(&self.client),
            echo: self.echo,
        };
        let delivered = self.router.route(&self.core, &self.account, msg, origin);
        if delivered == 0 && self.no_responders {
            if let Some(reply) = msg.reply {
                self.send_no_responders(reply);
            }
        }
    }

    /// `NATS/1.0 503` on the requester's own reply subscription, as nats-server sends to
    /// clients that set `no_responders`.
    fn send_no_responders(&mut self, reply: &[u8]) {
        let sid = {
            let subs = self.client.subs.lock();
            subs.values()
                .find(|s| subject::matches(&s.subject, reply))
                .map(|s| s.sid.clone())
        };
        let Some(sid) = sid else { return };
        let mut frame = BytesMut::with_capacity(64 + reply.len());
        let hdr = b"NATS/1.0 503\r\n\r\n";
        proto::write_hmsg_header(&mut frame, reply, &sid, None, hdr.len(), hdr.len());
        frame.extend_from_slice(hdr);
        frame.extend_from_slice(b"\r\n");
        self.send(&frame);
    }
}
