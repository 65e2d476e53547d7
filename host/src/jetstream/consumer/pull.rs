//! Pull requests (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`): the queue of waiting
//! requests, their limits (batch, max_bytes, expiry, no_wait) and heartbeats, and the
//! statuses that end them (404/408/409).

use bytes::Bytes;
use serde::Deserialize;

use super::{Consumer, Delivery, State};

/// One waiting pull request.
pub(super) struct Waiting {
    pub(super) reply: String,
    /// The same, to deliver to (shared by every message rather than copied).
    pub(super) to: Bytes,
    /// Messages still wanted.
    pub(super) batch: u64,
    /// Bytes still allowed (0: no limit).
    pub(super) max_bytes: u64,
    /// Whether the request set `max_bytes`.
    pub(super) bytes_limited: bool,
    pub(super) delivered: u64,
    /// Unix ns; 0: none.
    pub(super) expires: i64,
    pub(super) no_wait: bool,
    pub(super) heartbeat: i64,
    pub(super) next_heartbeat: i64,
}

/// A pull request body: an integer (the batch) or JSON.
#[derive(Deserialize, Default, Debug, PartialEq)]
pub(super) struct PullRequest {
    #[serde(default)]
    pub(super) batch: i64,
    #[serde(default)]
    pub(super) expires: i64,
    #[serde(default)]
    pub(super) max_bytes: i64,
    #[serde(default)]
    pub(super) no_wait: bool,
    #[serde(default)]
    pub(super) idle_heartbeat: i64,
}

pub(super) fn parse_pull(body: &[u8]) -> Result<PullRequest, String> {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?.trim();
    if text.is_empty() {
        return Ok(PullRequest {
            batch: 1,
            ..PullRequest::default()
        });
    }
    if let Ok(n) = text.parse::<i64>() {
        return Ok(PullRequest {
            batch: n,
            ..PullRequest::default()
        });
    }
    let r: PullRequest = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if r.idle_heartbeat > 0 && r.expires > 0 && r.idle_heartbeat * 2 > r.expires {
        return Err("heartbeat value too large".into());
    }
    Ok(r)
}

impl Consumer {
    /// A pull request on `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` answered on `reply`.
    /// `interest` tells whether someone still listens on a reply subject.
    pub fn pull(
        &self,
        reply: &str,
        body: &[u8],
        now: i64,
        interest: &dyn Fn(&str) -> bool,
    ) -> Vec<Delivery> {
        let mut out = Vec::new();
        let mut s = self.state.lock();
        if self.is_closed() {
            return out;
        }
        s.last_activity = now;
        if s.push.is_some() {
            out.push(Delivery::status(reply, "409 Consumer is push based", None));
            return out;
        }
        let req = match parse_pull(body) {
            Ok(r) => r,
            Err(why) => {
                out.push(Delivery::status(
                    reply,
                    &format!("400 Bad Request - {why}"),
                    None,
                ));
                return out;
            }
        };
        let cfg = &s.config;
        let batch = req.batch.max(1);
        if cfg.max_batch > 0 && batch > cfg.max_batch {
            let text = format!("409 Exceeded MaxRequestBatch of {}", cfg.max_batch);
            out.push(Delivery::status(reply, &text, None));
            return out;
        }
        if req.expires > 0 && cfg.max_expires > 0 && req.expires > cfg.max_expires {
            let text = format!(
                "409 Exceeded MaxRequestExpires of {}",
                crate::timefmt::go_duration(std::time::Duration::from_nanos(
                    cfg.max_expires as u64
                ))
            );
            out.push(Delivery::status(reply, &text, None));
            return out;
        }
        if req.max_bytes > 0 && cfg.max_bytes > 0 && req.max_bytes > cfg.max_bytes {
            let text = format!("409 Exceeded MaxRequestMaxBytes of {}", cfg.max_bytes);
            out.push(Delivery::status(reply, &text, None));
            return out;
        }
        let max_waiting = cfg.max_waiting.max(1) as usize;
        if s.waiting.len() >= max_waiting {
            self.expire_waiting(&mut s, now, interest, &mut out);
        }
        if req.no_wait {
            // The count is cached until the consumer's task hears of new messages, which may
            // be after this request: a client that publishes (and got its PubAck) and then
            // fetches must find its message, so a cached zero is counted again.
            if s.num_pending == Some(0) {
                s.num_pending = None;
            }
            let available = self.num_pending(&mut s) + s.redeliver.len() as u64;
            if available == 0 && req.expires <= 0 {
                out.push(Delivery::status(reply, "404 No Messages", None));
                return out;
            }
        }
        if s.waiting.len() >= max_waiting {
            out.push(Delivery::status(reply, "409 Exceeded MaxWaiting", None));
            return out;
        }
        let heartbeat = req.idle_heartbeat.max(0);
        s.waiting.push_back(Waiting {
            reply: reply.to_owned(),
            to: Bytes::copy_from_slice(reply.as_bytes()),
            batch: batch as u64,
            max_bytes: req.max_bytes.max(0) as u64,
            bytes_limited: req.max_bytes > 0,
            delivered: 0,
            expires: if req.expires > 0 {
                now.saturating_add(req.expires)
            } else {
                0
            },
            no_wait: req.no_wait,
            heartbeat,
            next_heartbeat: if heartbeat > 0 { now + heartbeat } else { 0 },
        });
        self.step(&mut s, now, interest, &mut out);
        out
    }

    /// Drops requests that expired (408) or whose requester went away.
    pub(super) fn expire_waiting(
        &self,
        s: &mut State,
        now: i64,
        interest: &dyn Fn(&str) -> bool,
        out: &mut Vec<Delivery>,
    ) {
        s.waiting.retain_mut(|w| {
            if w.expires > 0 && now >= w.expires {
                out.push(Delivery::status(
                    &w.reply,
                    "408 Request Timeout",
                    Some((w.batch, w.max_bytes)),
                ));
                return false;
            }
            if !interest(&w.reply) {
                return false;
            }
            if w.next_heartbeat > 0 && now >= w.next_heartbeat {
                out.push(Delivery::heartbeat(&w.reply, s.delivered, None));
                w.next_heartbeat = now + w.heartbeat;
            }
            true
        });
    }

    /// Tells waiting requests the consumer is gone (`409 Consumer Deleted`).
    pub fn drain_deleted(&self) -> Vec<Delivery> {
        let mut s = self.state.lock();
        s.waiting
            .drain(..)
            .map(|w| Delivery::status(&w.reply, "409 Consumer Deleted", None))
            .collect()
    }
}

/// The first waiting request that can take a message of `size` bytes (a request whose
/// `max_bytes` it exceeds ends with a 409).
pub(super) fn target(s: &mut State, size: u64, out: &mut Vec<Delivery>) -> Option<Bytes> {
    while let Some(w) = s.waiting.front() {
        if w.bytes_limited && size > w.max_bytes {
            out.push(Delivery::status(
                &w.reply,
                "409 Message Size Exceeds MaxBytes",
                Some((w.batch, w.max_bytes)),
            ));
            s.waiting.pop_front();
            continue;
        }
        return Some(w.to.clone());
    }
    None
}

/// Counts a delivery of `size` bytes against the first waiting request.
pub(super) fn taken(s: &mut State, size: u64, now: i64) {
    if let Some(w) = s.waiting.front_mut() {
        w.batch -= 1;
        w.delivered += 1;
        if w.bytes_limited {
            w.max_bytes -= size;
        }
        if w.heartbeat > 0 {
            w.next_heartbeat = now + w.heartbeat;
        }
        if w.batch == 0 || (w.bytes_limited && w.max_bytes == 0) {
            s.waiting.pop_front();
        }
    }
}

/// At the end of the stream, one-shot (`no_wait`) requests end: 408 after some messages,
/// 404 without any.
pub(super) fn end_of_stream(s: &mut State, out: &mut Vec<Delivery>) {
    s.waiting.retain(|w| {
        if !w.no_wait {
            return true;
        }
        if w.delivered > 0 {
            out.push(Delivery::status(
                &w.reply,
                "408 Request Timeout",
                Some((w.batch, w.max_bytes)),
            ));
            false
        } else if w.expires == 0 {
            out.push(Delivery::status(&w.reply, "404 No Messages", None));
            false
        } else {
            true
        }
    });
}
