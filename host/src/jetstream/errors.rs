//! JetStream API errors: nats-server's codes and descriptions (`server/errors.json`), in one
//! table. Clients match on `err_code`, so these numbers are part of the wire contract.

use serde_json::{json, Value};

/// An error as it appears in an API response or a PubAck: `{"code","err_code","description"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP-like status.
    pub code: u16,
    /// JetStream error code.
    pub err_code: u32,
    /// Human-readable text, with nats-server's `{placeholders}` filled in.
    pub description: String,
}

/// The JetStream err_code of a publish refused by a plugin (natrium only).
pub const MESSAGE_REJECTED_ERR_CODE: u32 = 10900;

impl ApiError {
    fn new(code: u16, err_code: u32, description: impl Into<String>) -> Self {
        ApiError {
            code,
            err_code,
            description: description.into(),
        }
    }

    /// The `"error"` object.
    pub fn to_json(&self) -> Value {
        json!({"code": self.code, "err_code": self.err_code, "description": self.description})
    }

    pub fn bad_request() -> Self {
        Self::new(400, 10003, "bad request")
    }
    pub fn invalid_json(err: impl std::fmt::Display) -> Self {
        Self::new(400, 10025, format!("invalid JSON: {err}"))
    }
    pub fn not_enabled_for_account() -> Self {
        Self::new(503, 10039, "JetStream not enabled for account")
    }
    pub fn stream_not_found() -> Self {
        Self::new(404, 10059, "stream not found")
    }
    pub fn stream_name_exists() -> Self {
        Self::new(
            400,
            10058,
            "stream name already in use with a different configuration",
        )
    }
    pub fn subjects_overlap() -> Self {
        Self::new(400, 10065, "subjects overlap with an existing stream")
    }
    pub fn stream_mismatch() -> Self {
        Self::new(400, 10056, "stream name in subject does not match request")
    }
    pub fn invalid_config(err: impl Into<String>) -> Self {
        Self::new(500, 10052, err)
    }
    pub fn update_failed(err: impl Into<String>) -> Self {
        Self::new(500, 10069, err)
    }
    pub fn create_failed(err: impl Into<String>) -> Self {
        Self::new(500, 10049, err)
    }
    pub fn delete_failed(err: impl Into<String>) -> Self {
        Self::new(500, 10050, err)
    }
    pub fn name_has_path_separators() -> Self {
        Self::new(400, 10128, "Stream name can not contain path separators")
    }
    pub fn replicas_not_supported() -> Self {
        Self::new(
            500,
            10074,
            "replicas > 1 not supported in non-clustered mode",
        )
    }
    pub fn max_streams() -> Self {
        Self::new(400, 10027, "maximum number of streams reached")
    }
    /// The account requires `max_bytes` (`max_bytes_required`) and the stream has none.
    pub fn max_bytes_required() -> Self {
        Self::new(
            400,
            10113,
            "account requires a stream config to have max bytes set",
        )
    }
    /// The stream's `max_bytes` is above the account's `*_max_stream_bytes`.
    pub fn max_stream_bytes_exceeded() -> Self {
        Self::new(
            400,
            10122,
            "stream max bytes exceeds account limit max stream bytes",
        )
    }
    /// A publish past the server's `max_file_store`/`max_mem_store`.
    pub fn insufficient_resources() -> Self {
        Self::new(503, 10023, "insufficient resources")
    }
    /// A publish past the account's JetStream limits.
    pub fn account_resources_exceeded() -> Self {
        Self::new(400, 10002, "resource limits exceeded for account")
    }
    pub fn storage_exceeded() -> Self {
        Self::new(500, 10047, "insufficient storage resources available")
    }
    pub fn memory_exceeded() -> Self {
        Self::new(500, 10028, "insufficient memory resources available")
    }
    pub fn no_message_found() -> Self {
        Self::new(404, 10037, "no message found")
    }
    pub fn message_too_big() -> Self {
        Self::new(400, 10054, "message size exceeds maximum allowed")
    }
    pub fn header_too_big() -> Self {
        Self::new(400, 10097, "header size exceeds maximum allowed of 64k")
    }
    pub fn expected_stream() -> Self {
        Self::new(400, 10060, "expected stream does not match")
    }
    pub fn wrong_last_seq(seq: u64) -> Self {
        Self::new(400, 10071, format!("wrong last sequence: {seq}"))
    }
    pub fn wrong_last_msg_id(id: &str) -> Self {
        Self::new(400, 10070, format!("wrong last msg ID: {id}"))
    }
    /// A plugin bound with `on_failure: reject` refused the message (natrium only: the
    /// err_code is natrium's own, outside the range nats-server uses).
    pub fn message_rejected(reason: impl Into<String>) -> Self {
        Self::new(400, MESSAGE_REJECTED_ERR_CODE, reason)
    }
    pub fn store_failed(err: impl Into<String>) -> Self {
        Self::new(503, 10077, err)
    }
    pub fn sealed() -> Self {
        Self::new(400, 10109, "invalid operation on sealed stream")
    }
    pub fn purge_failed(err: impl Into<String>) -> Self {
        Self::new(500, 10110, err)
    }
    pub fn rollup_failed(err: impl Into<String>) -> Self {
        Self::new(500, 10111, err)
    }
    pub fn msg_delete_failed(err: impl Into<String>) -> Self {
        Self::new(500, 10057, err)
    }
    pub fn mirror_with_subjects() -> Self {
        Self::new(400, 10034, "stream mirrors can not contain subjects")
    }
    pub fn mirror_with_first_seq() -> Self {
        Self::new(
            400,
            10143,
            "stream mirrors can not have first sequence configured",
        )
    }
    pub fn mirror_with_sources() -> Self {
        Self::new(
            400,
            10031,
            "stream mirrors can not also contain other sources",
        )
    }
    pub fn mirror_not_updatable() -> Self {
        Self::new(400, 10055, "stream mirror configuration can not be updated")
    }
    pub fn replicas_negative() -> Self {
        Self::new(400, 10133, "replicas count cannot be negative")
    }
    pub fn consumer_config_required() -> Self {
        Self::new(400, 10078, "consumer config required")
    }
    pub fn consumer_not_found() -> Self {
        Self::new(404, 10014, "consumer not found")
    }
    pub fn consumer_create(err: impl Into<String>) -> Self {
        Self::new(500, 10012, err)
    }
    pub fn consumer_already_exists() -> Self {
        Self::new(400, 10148, "consumer already exists")
    }
    pub fn consumer_does_not_exist() -> Self {
        Self::new(400, 10149, "consumer does not exist")
    }
    pub fn max_consumers() -> Self {
        Self::new(400, 10026, "maximum consumers limit reached")
    }
    pub fn consumer_durable_name_not_in_subject() -> Self {
        Self::new(
            400,
            10016,
            "consumer expected to be durable but no durable name set in subject",
        )
    }
    pub fn consumer_name_subject_mismatch() -> Self {
        Self::new(
            400,
            10017,
            "consumer name in subject does not match durable name in request",
        )
    }
    pub fn consumer_durable_name_not_set() -> Self {
        Self::new(
            400,
            10018,
            "consumer expected to be durable but a durable name was not set",
        )
    }
    pub fn consumer_ephemeral_with_durable_name() -> Self {
        Self::new(
            400,
            10020,
            "consumer expected to be ephemeral but a durable name was set in request",
        )
    }
    pub fn consumer_filter_subject_mismatch() -> Self {
        Self::new(
            400,
            10131,
            "Consumer create request did not match filtered subject from create subject",
        )
    }
    pub fn consumer_multiple_filters_not_allowed() -> Self {
        Self::new(
            400,
            10137,
            "consumer with multiple subject filters cannot use subject based API",
        )
    }
    pub fn consumer_durable_and_name_mismatch() -> Self {
        Self::new(
            400,
            10132,
            "Consumer Durable and Name have to be equal if both are provided",
        )
    }
    pub fn consumer_name_path_separators() -> Self {
        Self::new(400, 10127, "Consumer name can not contain path separators")
    }
    pub fn consumer_name_too_long(max: usize) -> Self {
        Self::new(
            400,
            10102,
            format!("consumer name is too long, maximum allowed is {max}"),
        )
    }
    pub fn consumer_bad_durable_name() -> Self {
        Self::new(400, 10103, "durable name can not contain '.', '*', '>'")
    }
    pub fn consumer_description_too_long(max: usize) -> Self {
        Self::new(
            400,
            10107,
            format!("consumer description is too long, maximum allowed is {max}"),
        )
    }
    pub fn consumer_invalid_policy(err: impl Into<String>) -> Self {
        Self::new(400, 10094, err)
    }
    pub fn consumer_max_deliver_backoff() -> Self {
        Self::new(
            400,
            10116,
            "max deliver is required to be > length of backoff values",
        )
    }
    pub fn consumer_backoff_negative() -> Self {
        Self::new(400, 10184, "consumer backoff needs to be positive")
    }
    pub fn consumer_ack_wait_negative() -> Self {
        Self::new(400, 10183, "consumer ack wait needs to be positive")
    }
    pub fn consumer_replicas_exceed_stream() -> Self {
        Self::new(
            400,
            10126,
            "consumer config replica count exceeds parent stream",
        )
    }
    pub fn consumer_pull_requires_ack() -> Self {
        Self::new(
            400,
            10084,
            "consumer in pull mode requires explicit ack policy on workqueue stream",
        )
    }
    pub fn consumer_pull_with_rate_limit() -> Self {
        Self::new(
            400,
            10086,
            "consumer in pull mode can not have rate limit set",
        )
    }
    pub fn consumer_max_waiting_negative() -> Self {
        Self::new(400, 10087, "consumer max waiting needs to be positive")
    }
    pub fn consumer_hb_requires_push() -> Self {
        Self::new(
            400,
            10088,
            "consumer idle heartbeat requires a push based consumer",
        )
    }
    pub fn consumer_fc_requires_push() -> Self {
        Self::new(
            400,
            10089,
            "consumer flow control requires a push based consumer",
        )
    }
    pub fn consumer_max_request_batch_negative() -> Self {
        Self::new(400, 10114, "consumer max request batch needs to be > 0")
    }
    pub fn consumer_max_request_expires_too_small() -> Self {
        Self::new(
            400,
            10115,
            "consumer max request expires needs to be >= 1ms",
        )
    }
    pub fn consumer_max_pending_ack_excess(limit: i64) -> Self {
        Self::new(
            400,
            10121,
            format!("consumer max ack pending exceeds system limit of {limit}"),
        )
    }
    pub fn consumer_filter_not_subset() -> Self {
        Self::new(
            400,
            10093,
            "consumer filter subject is not a valid subset of the interest subjects",
        )
    }
    pub fn consumer_duplicate_filter_subjects() -> Self {
        Self::new(
            400,
            10136,
            "consumer cannot have both FilterSubject and FilterSubjects specified",
        )
    }
    pub fn consumer_empty_filter() -> Self {
        Self::new(
            400,
            10139,
            "consumer filter in FilterSubjects cannot be empty",
        )
    }
    pub fn consumer_overlapping_filters() -> Self {
        Self::new(400, 10138, "consumer subject filters cannot overlap")
    }
    pub fn consumer_deliver_to_wildcards() -> Self {
        Self::new(400, 10079, "consumer deliver subject has wildcards")
    }
    pub fn consumer_invalid_deliver_subject() -> Self {
        Self::new(400, 10112, "invalid push consumer deliver subject")
    }
    pub fn consumer_deliver_cycle() -> Self {
        Self::new(400, 10081, "consumer deliver subject forms a cycle")
    }
    pub fn consumer_push_max_waiting() -> Self {
        Self::new(400, 10080, "consumer in push mode can not set max waiting")
    }
    pub fn consumer_max_pending_requires_ack() -> Self {
        Self::new(
            400,
            10082,
            "consumer requires ack policy for max ack pending",
        )
    }
    pub fn consumer_small_heartbeat() -> Self {
        Self::new(400, 10083, "consumer idle heartbeat needs to be >= 100ms")
    }
    pub fn consumer_wq_multiple_unfiltered() -> Self {
        Self::new(
            400,
            10099,
            "multiple non-filtered consumers not allowed on workqueue stream",
        )
    }
    pub fn consumer_wq_not_unique() -> Self {
        Self::new(
            400,
            10100,
            "filtered consumer not unique on workqueue stream",
        )
    }
    pub fn consumer_wq_not_deliver_all() -> Self {
        Self::new(
            400,
            10101,
            "consumer must be deliver all on workqueue stream",
        )
    }
    pub fn consumer_wq_requires_explicit_ack() -> Self {
        Self::new(400, 10098, "workqueue stream requires explicit ack")
    }
    pub fn consumer_store_failed(err: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            10104,
            format!("error creating store for consumer: {err}"),
        )
    }
}

/// A store failure as a client sees it: nats-server's code and text, never a path or an OS
/// error string; the detail (with the file) goes to the server log.
impl From<crate::jetstream::store::StoreError> for ApiError {
    fn from(e: crate::jetstream::store::StoreError) -> Self {
        use crate::jetstream::store::StoreError;
        match e {
            // A write or read that failed: a full disk, a file size limit, an I/O error.
            StoreError::Io { .. } => {
                tracing::error!("JetStream store error: {e}");
                ApiError::insufficient_resources()
            }
            StoreError::Corrupt { .. } => {
                tracing::error!("JetStream store error: {e}");
                ApiError::store_failed("malformed or corrupt message")
            }
            StoreError::TooLarge { .. } => {
                tracing::debug!("JetStream store refused a message: {e}");
                ApiError::store_failed("message too large")
            }
            StoreError::SeqOverflow { .. } => {
                tracing::error!("JetStream store error: {e}");
                ApiError::store_failed("stream sequence space exhausted")
            }
        }
    }
}
