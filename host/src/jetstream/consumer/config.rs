//! Consumer configuration: the JSON shape of nats-server 2.10's `ConsumerConfig`, its defaults
//! (`setConsumerConfigDefaults`) and its validation (`checkConsumerCfg`), with nats-server's
//! error codes. Fields natrium does not interpret are kept and echoed back.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::super::config::{subjects_overlap, StreamConfig};
use super::super::errors::ApiError;

/// `ack_wait` when an acknowledging consumer sets none: 30 s.
pub const DEFAULT_ACK_WAIT_NS: i64 = 30_000_000_000;
/// `max_ack_pending` when an acknowledging consumer sets none.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// `max_waiting` of a pull consumer that sets none.
pub const DEFAULT_MAX_WAITING: i64 = 512;
/// How long an ephemeral consumer lives without activity when it sets no `inactive_threshold`.
pub const DEFAULT_INACTIVE_THRESHOLD_NS: i64 = 5_000_000_000;
/// nats-server's `JSMaxDescriptionLen` and `JSMaxNameLen`.
const MAX_DESCRIPTION_LEN: usize = 4096;
const MAX_NAME_LEN: usize = 255;
/// The shortest `idle_heartbeat` a push consumer may ask for (100 ms).
const MIN_HEARTBEAT_NS: i64 = 100_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    #[default]
    All,
    Last,
    New,
    ByStartSequence,
    ByStartTime,
    LastPerSubject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AckPolicy {
    /// Go's zero value: what a request without `ack_policy` gets.
    #[default]
    None,
    All,
    Explicit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReplayPolicy {
    #[default]
    Instant,
    Original,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u(v: &u64) -> bool {
    *v == 0
}

fn no(v: &bool) -> bool {
    !*v
}

/// A consumer's configuration, as sent in `CONSUMER.CREATE` and echoed in ConsumerInfo.
/// Durations are nanoseconds; zero means "unset" (omitted, as Go's `omitempty` does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConsumerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub durable_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub deliver_policy: DeliverPolicy,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub opt_start_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    #[serde(default)]
    pub ack_policy: AckPolicy,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ack_wait: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_deliver: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_subjects: Vec<String>,
    #[serde(default)]
    pub replay_policy: ReplayPolicy,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub rate_limit_bps: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_waiting: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_ack_pending: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub idle_heartbeat: i64,
    #[serde(default, skip_serializing_if = "no")]
    pub flow_control: bool,
    #[serde(default, skip_serializing_if = "no")]
    pub headers_only: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_batch: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_expires: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_bytes: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deliver_subject: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deliver_group: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inactive_threshold: i64,
    #[serde(default)]
    pub num_replicas: i64,
    #[serde(default, skip_serializing_if = "no")]
    pub mem_storage: bool,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// Delivery is paused until this time (RFC 3339; nats-server 2.11's consumer pause).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<String>,
    /// Everything else the client sent, echoed back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ConsumerConfig {
    /// When a pause ends (Unix ns); 0 when not paused (or the time does not parse).
    pub fn paused_until(&self) -> i64 {
        self.pause_until
            .as_deref()
            .and_then(crate::timefmt::parse_rfc3339)
            .unwrap_or(0)
    }
}

/// A consumer name: one subject token that is also safe as a directory name.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if name.contains(['/', '\\']) {
        return Err(ApiError::consumer_name_path_separators());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ApiError::consumer_name_too_long(MAX_NAME_LEN));
    }
    if name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == b'.' || b == b'*' || b == b'>' || b.is_ascii_whitespace() || b < 0x20)
    {
        return Err(ApiError::consumer_bad_durable_name());
    }
    Ok(())
}

fn invalid_policy(text: String) -> ApiError {
    ApiError::consumer_invalid_policy(text)
}

impl ConsumerConfig {
    /// Durable: it has a durable name (a named consumer without one is ephemeral).
    pub fn is_durable(&self) -> bool {
        !self.durable_name.is_empty()
    }

    /// Push consumers deliver to `deliver_subject`; pull consumers wait for requests.
    pub fn is_push(&self) -> bool {
        !self.deliver_subject.is_empty()
    }

    /// The subject filters in effect (empty: every message of the stream).
    pub fn filters(&self) -> Vec<String> {
        if !self.filter_subject.is_empty() {
            return vec![self.filter_subject.clone()];
        }
        self.filter_subjects.clone()
    }

    /// `opt_start_time` in Unix nanoseconds (0 when unset or unreadable).
    pub fn start_time_ns(&self) -> i64 {
        self.opt_start_time
            .as_deref()
            .and_then(crate::timefmt::parse_rfc3339)
            .unwrap_or(0)
    }

    /// The ack wait for a message's `delivery`-th delivery (1-based), `backoff` applied.
    pub fn ack_wait_for(&self, delivery: u64) -> i64 {
        if self.backoff.is_empty() {
            return self.ack_wait;
        }
        let i = (delivery.saturating_sub(1) as usize).min(self.backoff.len() - 1);
        self.backoff[i]
    }

    /// nats-server's defaults, then its checks against the stream's configuration.
    /// `max_ack_pending_limit` is the account's limit (-1 or 0: none).
    pub fn normalize(
        mut self,
        stream: &StreamConfig,
        max_ack_pending_limit: i64,
    ) -> Result<ConsumerConfig, ApiError> {
        // Filters (2.10): one of the two forms, no empty or overlapping entries.
        if !self.filter_subject.is_empty() && !self.filter_subjects.is_empty() {
            return Err(ApiError::consumer_duplicate_filter_subjects());
        }
        if self.filter_subjects.iter().any(String::is_empty) {
            return Err(ApiError::consumer_empty_filter());
        }
        for (i, a) in self.filter_subjects.iter().enumerate() {
            if self.filter_subjects[i + 1..]
                .iter()
                .any(|b| subjects_overlap(a, b))
            {
                return Err(ApiError::consumer_overlapping_filters());
            }
        }
        if self.filter_subjects.len() == 1 {
            self.filter_subject = self.filter_subjects.remove(0);
        }
        // setConsumerConfigDefaults.
        let acks = self.ack_policy != AckPolicy::None;
        if !self.is_push() && self.max_waiting == 0 {
            self.max_waiting = DEFAULT_MAX_WAITING;
        }
        if self.ack_wait == 0 && acks {
            self.ack_wait = DEFAULT_ACK_WAIT_NS;
        }
        if self.max_deliver == 0 {
            self.max_deliver = -1;
        }
        if let Some(first) = self.backoff.first() {
            self.ack_wait = *first;
        }
        if acks && self.max_ack_pending == 0 {
            self.max_ack_pending = if max_ack_pending_limit > 0 {
                DEFAULT_MAX_ACK_PENDING.min(max_ack_pending_limit)
            } else {
                DEFAULT_MAX_ACK_PENDING
            };
        }
        if !self.is_durable() && self.inactive_threshold == 0 {
            self.inactive_threshold = DEFAULT_INACTIVE_THRESHOLD_NS;
        }
        // checkConsumerCfg.
        if self.num_replicas < 0 {
            return Err(ApiError::replicas_negative());
        }
        if self.num_replicas > stream.num_replicas.max(1) {
            return Err(ApiError::consumer_replicas_exceed_stream());
        }
        if !self.backoff.is_empty()
            && self.max_deliver != -1
            && self.max_deliver <= self.backoff.len() as i64
        {
            return Err(ApiError::consumer_max_deliver_backoff());
        }
        if self.backoff.iter().any(|b| *b <= 0) {
            return Err(ApiError::consumer_backoff_negative());
        }
        if self.ack_wait < 0 {
            return Err(ApiError::consumer_ack_wait_negative());
        }
        if self.description.len() > MAX_DESCRIPTION_LEN {
            return Err(ApiError::consumer_description_too_long(MAX_DESCRIPTION_LEN));
        }
        if self.is_push() {
            self.check_push(stream)?;
        } else {
            self.check_pull(stream)?;
        }
        if max_ack_pending_limit > 0 && self.max_ack_pending > max_ack_pending_limit {
            return Err(ApiError::consumer_max_pending_ack_excess(
                max_ack_pending_limit,
            ));
        }
        let external = stream.mirror.is_some() || !stream.sources.is_empty();
        if !external {
            let subjects = if stream.subjects.is_empty() {
                vec![stream.name.clone()]
            } else {
                stream.subjects.clone()
            };
            for f in self.filters() {
                if !crate::subject::is_valid_subject(f.as_bytes())
                    || !subjects.iter().any(|s| subjects_overlap(s, &f))
                {
                    return Err(ApiError::consumer_filter_not_subset());
                }
            }
        }
        let bad_start = |dp: &str, start: &str| {
            invalid_policy(format!(
                "consumer delivery policy is deliver {dp}, but optional start {start} is also set"
            ))
        };
        let not_set = |dp: &str, what: &str| {
            invalid_policy(format!(
                "consumer delivery policy is deliver {dp}, but optional {what} is not set"
            ))
        };
        let (seq, time) = (self.opt_start_seq > 0, self.opt_start_time.is_some());
        match self.deliver_policy {
            DeliverPolicy::All | DeliverPolicy::Last | DeliverPolicy::New => {
                let dp = match self.deliver_policy {
                    DeliverPolicy::All => "all",
                    DeliverPolicy::Last => "last",
                    _ => "new",
                };
                if seq {
                    return Err(bad_start(dp, "sequence"));
                }
                if time {
                    return Err(bad_start(dp, "time"));
                }
            }
            DeliverPolicy::LastPerSubject => {
                if seq {
                    return Err(bad_start("last per subject", "sequence"));
                }
                if time {
                    return Err(bad_start("last per subject", "time"));
                }
                if self.filters().is_empty() {
                    return Err(not_set("last per subject", "filter subject"));
                }
            }
            DeliverPolicy::ByStartSequence => {
                if !seq {
                    return Err(not_set("by start sequence", "start sequence"));
                }
                if time {
                    return Err(bad_start("by start sequence", "time"));
                }
            }
            DeliverPolicy::ByStartTime => {
                if !time {
                    return Err(not_set("by start time", "start time"));
                }
                if seq {
                    return Err(bad_start("by start time", "start sequence"));
                }
            }
        }
        if !self.durable_name.is_empty() && !self.name.is_empty() && self.name != self.durable_name
        {
            return Err(ApiError::consumer_durable_and_name_mismatch());
        }
        if !self.durable_name.is_empty() {
            check_name(&self.durable_name)?;
        }
        if !self.name.is_empty() {
            check_name(&self.name)?;
        }
        // addConsumer's rule, after checkConsumerCfg's.
        if stream.retention == super::super::config::Retention::WorkQueue
            && self.ack_policy != AckPolicy::Explicit
        {
            return Err(ApiError::consumer_wq_requires_explicit_ack());
        }
        Ok(self)
    }

    /// checkConsumerCfg's rules for a push consumer (a `deliver_subject`).
    fn check_push(&self, stream: &StreamConfig) -> Result<(), ApiError> {
        let deliver = self.deliver_subject.as_bytes();
        if self
            .deliver_subject
            .split('.')
            .any(|t| t == "*" || t == ">")
        {
            return Err(ApiError::consumer_deliver_to_wildcards());
        }
        if !crate::subject::is_valid_subject(deliver) {
            return Err(ApiError::consumer_invalid_deliver_subject());
        }
        // Delivering into the stream's own subjects would store every delivery again.
        if stream
            .subjects
            .iter()
            .any(|s| subjects_overlap(s, &self.deliver_subject))
        {
            return Err(ApiError::consumer_deliver_cycle());
        }
        if self.max_waiting != 0 {
            return Err(ApiError::consumer_push_max_waiting());
        }
        if self.max_ack_pending > 0 && self.ack_policy == AckPolicy::None {
            return Err(ApiError::consumer_max_pending_requires_ack());
        }
        if self.idle_heartbeat > 0 && self.idle_heartbeat < MIN_HEARTBEAT_NS {
            return Err(ApiError::consumer_small_heartbeat());
        }
        Ok(())
    }

    /// checkConsumerCfg's rules for a pull consumer.
    fn check_pull(&self, stream: &StreamConfig) -> Result<(), ApiError> {
        if self.ack_policy == AckPolicy::None
            && stream.retention == super::super::config::Retention::WorkQueue
        {
            return Err(ApiError::consumer_pull_requires_ack());
        }
        if self.rate_limit_bps > 0 {
            return Err(ApiError::consumer_pull_with_rate_limit());
        }
        if self.max_waiting < 0 {
            return Err(ApiError::consumer_max_waiting_negative());
        }
        if self.idle_heartbeat > 0 {
            return Err(ApiError::consumer_hb_requires_push());
        }
        if self.flow_control {
            return Err(ApiError::consumer_fc_requires_push());
        }
        if self.max_batch < 0 {
            return Err(ApiError::consumer_max_request_batch_negative());
        }
        if self.max_expires != 0 && self.max_expires < 1_000_000 {
            return Err(ApiError::consumer_max_request_expires_too_small());
        }
        Ok(())
    }

    /// Why `new` may not replace `self` on an existing consumer (nats-server's
    /// `checkNewConsumerConfig` texts), if it may not.
    pub fn check_update(&self, new: &ConsumerConfig) -> Result<(), ApiError> {
        let refuse = |what: &str| {
            Err(ApiError::consumer_create(format!(
                "{what} can not be updated"
            )))
        };
        if self.deliver_policy != new.deliver_policy {
            return refuse("deliver policy");
        }
        if self.opt_start_seq != new.opt_start_seq {
            return refuse("start sequence");
        }
        if self.opt_start_time != new.opt_start_time {
            return refuse("start time");
        }
        if self.ack_policy != new.ack_policy {
            return refuse("ack policy");
        }
        if self.replay_policy != new.replay_policy {
            return refuse("replay policy");
        }
        if self.idle_heartbeat != new.idle_heartbeat {
            return refuse("heart beats");
        }
        if self.flow_control != new.flow_control {
            return refuse("flow control");
        }
        if self.max_waiting != new.max_waiting {
            return refuse("max waiting");
        }
        if self.mem_storage != new.mem_storage {
            return refuse("mem storage");
        }
        if self.num_replicas != new.num_replicas {
            return refuse("replicas");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stream() -> StreamConfig {
        serde_json::from_str::<StreamConfig>(r#"{"name":"S","subjects":["a.>"]}"#)
            .unwrap()
            .normalize()
            .unwrap()
    }

    fn cfg(json: &str) -> Result<ConsumerConfig, ApiError> {
        serde_json::from_str::<ConsumerConfig>(json)
            .unwrap()
            .normalize(&stream(), -1)
    }

    #[test]
    fn work_queues_want_explicit_acks() {
        let wq = serde_json::from_str::<StreamConfig>(
            r#"{"name":"W","subjects":["w.>"],"retention":"workqueue"}"#,
        )
        .unwrap()
        .normalize()
        .unwrap();
        let code = |j: &str| {
            serde_json::from_str::<ConsumerConfig>(j)
                .unwrap()
                .normalize(&wq, -1)
                .map_err(|e| e.err_code)
                .err()
        };
        assert_eq!(code(r#"{"durable_name":"P"}"#), Some(10084));
        assert_eq!(code(r#"{"deliver_subject":"d"}"#), Some(10098));
        assert_eq!(
            code(r#"{"durable_name":"P","ack_policy":"all"}"#),
            Some(10098)
        );
        assert_eq!(
            code(r#"{"durable_name":"P","ack_policy":"explicit"}"#),
            None
        );
    }

    #[test]
    fn defaults_match_nats_server() {
        let c = cfg(r#"{"durable_name":"D","ack_policy":"explicit"}"#).unwrap();
        assert_eq!(c.ack_wait, DEFAULT_ACK_WAIT_NS);
        assert_eq!(c.max_ack_pending, 1000);
        assert_eq!(c.max_waiting, 512);
        assert_eq!(c.max_deliver, -1);
        assert_eq!(c.inactive_threshold, 0);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["deliver_policy"], "all");
        assert_eq!(v["replay_policy"], "instant");
        assert!(v.get("filter_subject").is_none());
        let e = cfg(r#"{"name":"E"}"#).unwrap();
        assert_eq!(e.inactive_threshold, DEFAULT_INACTIVE_THRESHOLD_NS);
        assert_eq!(e.ack_wait, 0);
        let b = cfg(
            r#"{"durable_name":"D","ack_policy":"explicit","backoff":[1000,2000],"max_deliver":3}"#,
        )
        .unwrap();
        assert_eq!(b.ack_wait, 1000);
        assert_eq!(b.ack_wait_for(5), 2000);
    }

    #[test]
    fn refusals_carry_nats_server_codes() {
        let code = |j: &str| cfg(j).unwrap_err().err_code;
        assert_eq!(code(r#"{"filter_subject":"b.x"}"#), 10093);
        assert_eq!(code(r#"{"deliver_policy":"by_start_sequence"}"#), 10094);
        assert_eq!(code(r#"{"opt_start_seq":3}"#), 10094);
        assert_eq!(code(r#"{"durable_name":"a","name":"b"}"#), 10132);
        assert_eq!(code(r#"{"durable_name":"a.b"}"#), 10103);
        assert_eq!(code(r#"{"backoff":[1,2],"max_deliver":2}"#), 10116);
        assert_eq!(
            code(r#"{"filter_subject":"a.x","filter_subjects":["a.y"]}"#),
            10136
        );
        assert_eq!(code(r#"{"filter_subjects":["a.>","a.x"]}"#), 10138);
        assert_eq!(code(r#"{"idle_heartbeat":1000}"#), 10088);
        // Push consumers (checkConsumerCfg's push branch).
        assert_eq!(code(r#"{"deliver_subject":"d.*"}"#), 10079);
        assert_eq!(code(r#"{"deliver_subject":"a.b"}"#), 10081);
        assert_eq!(code(r#"{"deliver_subject":"d","max_waiting":1}"#), 10080);
        assert_eq!(
            code(r#"{"deliver_subject":"d","max_ack_pending":1}"#),
            10082
        );
        assert_eq!(
            code(r#"{"deliver_subject":"d","idle_heartbeat":1000}"#),
            10083
        );
        assert_eq!(code(r#"{"flow_control":true}"#), 10089);
        assert!(cfg(r#"{"deliver_subject":"d","flow_control":true}"#).is_ok());
        let one = cfg(r#"{"filter_subjects":["a.x"]}"#).unwrap();
        assert_eq!(one.filter_subject, "a.x");
        assert!(one.filter_subjects.is_empty());
    }
}
