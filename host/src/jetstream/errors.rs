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
/// natrium's own code for an API natrium does not serve yet (nats-server's 10003 means
/// "bad request", which a client may act on differently).
pub const NOT_SUPPORTED_ERR_CODE: u32 = 10901;

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
    pub fn consumers_unsupported() -> Self {
        Self::new(
            501,
            NOT_SUPPORTED_ERR_CODE,
            "consumers are not supported by this server yet",
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
