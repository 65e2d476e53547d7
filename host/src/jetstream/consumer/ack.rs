//! Acknowledgements published to `$JS.ACK.<stream>.<consumer>.…` (`+ACK`, `-NAK`, `+WPI`,
//! `+TERM`, `+NXT`) and the ack floor they move.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::config::AckPolicy;
use super::{Consumer, Delivery, SeqPair, State};

/// Where a message ended with `+TERM` is announced (`io.nats.jetstream.advisory.v1.terminated`).
const TERMINATED_ADVISORY: &str = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED";

/// The tokens of a v1 ack subject that the engine uses.
#[derive(Clone, Copy)]
pub(super) struct AckMeta {
    pub(super) sseq: u64,
    pub(super) cseq: u64,
}

impl AckMeta {
    /// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`.
    pub(super) fn parse(subject: &str) -> Option<AckMeta> {
        let t: Vec<&str> = subject.split('.').collect();
        if t.len() != 9 || t[0] != "$JS" || t[1] != "ACK" {
            return None;
        }
        Some(AckMeta {
            sseq: t[5].parse().ok()?,
            cseq: t[6].parse().ok()?,
        })
    }
}

impl Consumer {
    /// An acknowledgement published to `subject` (`$JS.ACK.…`), with its reply subject.
    pub fn ack(
        &self,
        subject: &str,
        reply: Option<&str>,
        body: &[u8],
        now: i64,
        interest: &dyn Fn(&str) -> bool,
    ) -> Vec<Delivery> {
        let mut out = Vec::new();
        let Some(meta) = AckMeta::parse(subject) else {
            return out;
        };
        let mut s = self.state.lock();
        if self.is_closed() {
            return out;
        }
        let held_back = s.acks_hold_back();
        s.last_activity = now;
        let body_str = std::str::from_utf8(body).unwrap_or("");
        let trimmed = body_str.trim_start();
        let (kind, rest) = match trimmed.find(|c: char| c.is_whitespace() || c == '{') {
            Some(i) => (&trimmed[..i], trimmed[i..].trim()),
            None => (trimmed, ""),
        };
        let mut synchronous = reply.is_some();
        match kind {
            "" | "+ACK" => self.acked(&mut s, meta, now),
            "+NXT" => {
                self.acked(&mut s, meta, now);
                synchronous = false;
                if let Some(r) = reply {
                    drop(s);
                    let mut more = self.pull(r, rest.as_bytes(), now, interest);
                    s = self.state.lock();
                    out.append(&mut more);
                }
            }
            "-NAK" => {
                let delay = serde_json::from_str::<Value>(rest)
                    .ok()
                    .and_then(|v| v.get("delay").and_then(Value::as_i64))
                    .unwrap_or(0);
                if let Some(p) = s.pending.get_mut(&meta.sseq) {
                    if delay > 0 {
                        p.deadline = now.saturating_add(delay);
                        let d = p.deadline;
                        s.deadline_floor = s.deadline_floor.min(d);
                    } else {
                        p.deadline = i64::MAX;
                        s.redeliver.push_back(meta.sseq);
                    }
                }
            }
            "+WPI" => {
                let dc = s.redelivered.get(&meta.sseq).copied().unwrap_or(1);
                let wait = s.config.ack_wait_for(dc);
                if let Some(p) = s.pending.get_mut(&meta.sseq) {
                    if p.deadline != i64::MAX {
                        p.deadline = now.saturating_add(wait);
                    }
                }
                synchronous = false;
            }
            "+TERM" => {
                if s.pending.remove(&meta.sseq).is_some() {
                    let deliveries = s.redelivered.remove(&meta.sseq).unwrap_or(1);
                    out.push(Delivery::event(
                        format!("{TERMINATED_ADVISORY}.{}.{}", self.stream.name, self.name),
                        json!({
                            "type": "io.nats.jetstream.advisory.v1.terminated",
                            "id": crate::util::event_id(),
                            "timestamp": crate::timefmt::rfc3339(SystemTime::now()),
                            "stream": self.stream.name,
                            "consumer": self.name,
                            "consumer_seq": meta.cseq,
                            "stream_seq": meta.sseq,
                            "deliveries": deliveries,
                            "reason": rest,
                        }),
                    ));
                    s.done(meta.sseq);
                    s.last_ack = now;
                    self.update_floor(&mut s);
                    s.dirty = true;
                }
            }
            _ => {
                tracing::debug!(
                    "JetStream: unknown ack '{kind}' for consumer '{}'",
                    self.name
                );
                synchronous = false;
            }
        }
        if s.push.is_none() {
            self.step(&mut s, now, interest, &mut out);
        } else if held_back && !s.acks_hold_back() {
            // A push consumer delivers from its task only (so its messages keep their order):
            // wake it, now that acks made room.
            self.signal.notify_one();
        }
        drop(s);
        if synchronous {
            // A double ack: the state is on disk before the confirmation goes out.
            self.persist(now, true);
            if let Some(r) = reply {
                let to = bytes::Bytes::copy_from_slice(r.as_bytes());
                out.push(Delivery {
                    subject: to.clone(),
                    to,
                    reply: None,
                    headers: None,
                    payload: bytes::Bytes::new(),
                });
            }
        }
        out
    }

    pub(super) fn acked(&self, s: &mut State, meta: AckMeta, now: i64) {
        match s.config.ack_policy {
            AckPolicy::None => return,
            AckPolicy::Explicit => {
                if s.pending.remove(&meta.sseq).is_none() {
                    return;
                }
                s.redelivered.remove(&meta.sseq);
                s.done(meta.sseq);
            }
            AckPolicy::All => {
                let keep = s.pending.split_off(&(meta.sseq + 1));
                let gone = std::mem::replace(&mut s.pending, keep);
                if gone.is_empty() {
                    return;
                }
                for seq in gone.keys() {
                    s.redelivered.remove(seq);
                    s.done(*seq);
                }
            }
        }
        s.last_ack = now;
        s.dirty = true;
        self.update_floor(s);
    }

    pub(super) fn update_floor(&self, s: &mut State) {
        s.ack_floor = match s.pending.first_key_value() {
            None => s.delivered,
            Some((seq, p)) => SeqPair {
                consumer_seq: p.cseq.saturating_sub(1).max(s.ack_floor.consumer_seq),
                stream_seq: (seq - 1).max(s.ack_floor.stream_seq),
            },
        };
        s.redeliver.retain(|seq| s.pending.contains_key(seq));
    }
}
