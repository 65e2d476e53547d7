//! The `$JS.API.CONSUMER.>` requests (except `MSG.NEXT`, which each consumer's own
//! subscription takes), in nats-server's shapes and with its checks of subject against body.

use serde::Deserialize;
use serde_json::{json, Value};

use super::config::ConsumerConfig;
use super::registry::Action;
use crate::jetstream::errors::ApiError;
use crate::jetstream::{now_ns, JsAccount};

/// nats-server's page sizes for CONSUMER.NAMES and CONSUMER.LIST.
const NAMES_LIMIT: usize = 1024;
const LIST_LIMIT: usize = 256;

/// Which create subject a request came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateSubject<'a> {
    /// `CONSUMER.CREATE.<stream>`: an unnamed ephemeral.
    Ephemeral,
    /// `CONSUMER.DURABLE.CREATE.<stream>.<name>`.
    Durable(&'a str),
    /// `CONSUMER.CREATE.<stream>.<name>[.<filter>]` (2.9+).
    Named(&'a str, Option<&'a str>),
}

#[derive(Deserialize)]
struct CreateRequest {
    #[serde(default)]
    stream_name: String,
    #[serde(default)]
    config: Option<ConsumerConfig>,
    #[serde(default)]
    action: String,
}

/// `CONSUMER.CREATE` / `CONSUMER.DURABLE.CREATE`: the new (or updated) consumer's info.
pub fn create(
    acc: &JsAccount,
    stream: &str,
    on: CreateSubject<'_>,
    payload: &[u8],
) -> Result<Value, ApiError> {
    let s = acc.stream(stream).ok_or_else(ApiError::stream_not_found)?;
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request());
    }
    let req: CreateRequest = serde_json::from_slice(payload).map_err(ApiError::invalid_json)?;
    if req.stream_name != stream {
        return Err(ApiError::stream_mismatch());
    }
    let mut cfg = req.config.ok_or_else(ApiError::consumer_config_required)?;
    let action = match req.action.as_str() {
        "create" => Action::Create,
        "update" => Action::Update,
        _ => Action::CreateOrUpdate,
    };
    match on {
        CreateSubject::Ephemeral => {
            if cfg.is_durable() {
                return Err(ApiError::consumer_ephemeral_with_durable_name());
            }
        }
        CreateSubject::Durable(name) => {
            super::config::check_name(name)?;
            if cfg.durable_name.is_empty() {
                return Err(ApiError::consumer_durable_name_not_set());
            }
            if cfg.durable_name != name {
                return Err(ApiError::consumer_name_subject_mismatch());
            }
        }
        CreateSubject::Named(name, filter) => {
            super::config::check_name(name)?;
            if !cfg.durable_name.is_empty() && !cfg.name.is_empty() && cfg.durable_name != cfg.name
            {
                return Err(ApiError::consumer_durable_and_name_mismatch());
            }
            if (!cfg.durable_name.is_empty() && cfg.durable_name != name)
                || (!cfg.name.is_empty() && cfg.name != name)
            {
                return Err(ApiError::consumer_name_subject_mismatch());
            }
            if cfg.durable_name.is_empty() && cfg.name.is_empty() {
                cfg.name = name.to_owned();
            }
            if let Some(f) = filter {
                if cfg.filter_subjects.len() > 1 {
                    return Err(ApiError::consumer_multiple_filters_not_allowed());
                }
                let given = cfg.filter_subjects.first().unwrap_or(&cfg.filter_subject);
                if given != f {
                    return Err(ApiError::consumer_filter_subject_mismatch());
                }
            }
        }
    }
    let limit = acc.limits().max_ack_pending;
    let cfg = cfg.normalize(&s.config(), limit)?;
    let now = now_ns();
    let (c, _) = acc.add_consumer(&s, cfg, action, now)?;
    Ok(c.info_json(now))
}

pub fn info(acc: &JsAccount, stream: &str, name: &str) -> Result<Value, ApiError> {
    acc.stream(stream).ok_or_else(ApiError::stream_not_found)?;
    let c = acc
        .consumer(stream, name)
        .ok_or_else(ApiError::consumer_not_found)?;
    Ok(c.info_json(now_ns()))
}

pub fn delete(acc: &JsAccount, stream: &str, name: &str) -> Result<Value, ApiError> {
    acc.stream(stream).ok_or_else(ApiError::stream_not_found)?;
    acc.delete_consumer(stream, name)?;
    Ok(json!({"success": true}))
}

#[derive(Deserialize, Default)]
struct PauseRequest {
    #[serde(default)]
    pause_until: Option<String>,
}

/// `CONSUMER.PAUSE` (nats-server 2.11): `{"pause_until": <RFC 3339>}` pauses delivery until
/// then; no time (or a past one) resumes.
pub fn pause(acc: &JsAccount, stream: &str, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
    acc.stream(stream).ok_or_else(ApiError::stream_not_found)?;
    let c = acc
        .consumer(stream, name)
        .ok_or_else(ApiError::consumer_not_found)?;
    let req: PauseRequest = if payload.iter().all(u8::is_ascii_whitespace) {
        PauseRequest::default()
    } else {
        serde_json::from_slice(payload).map_err(ApiError::invalid_json)?
    };
    if let Some(t) = &req.pause_until {
        if crate::timefmt::parse_rfc3339(t).is_none() {
            return Err(ApiError::bad_request());
        }
    }
    let now = now_ns();
    let until = c.pause(req.pause_until.clone(), now)?;
    Ok(if until > 0 {
        json!({
            "paused": true,
            "pause_until": req.pause_until,
            "pause_remaining": until - now,
        })
    } else {
        // Go's zero time, as nats-server answers a resume.
        json!({"paused": false, "pause_until": "0001-01-01T00:00:00Z"})
    })
}

#[derive(Deserialize, Default)]
struct ListRequest {
    #[serde(default)]
    offset: usize,
}

fn list_request(payload: &[u8]) -> Result<ListRequest, ApiError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(ListRequest::default());
    }
    serde_json::from_slice::<Option<ListRequest>>(payload)
        .map(Option::unwrap_or_default)
        .map_err(ApiError::invalid_json)
}

pub fn names(acc: &JsAccount, stream: &str, payload: &[u8]) -> Result<Value, ApiError> {
    acc.stream(stream).ok_or_else(ApiError::stream_not_found)?;
    let req = list_request(payload)?;
    let all = acc.consumers_of(stream);
    let page: Vec<&str> = all
        .iter()
        .skip(req.offset)
        .take(NAMES_LIMIT)
        .map(|c| c.name.as_str())
        .collect();
    Ok(json!({"total": all.len(), "offset": req.offset, "limit": NAMES_LIMIT, "consumers": page}))
}

pub fn list(acc: &JsAccount, stream: &str, payload: &[u8]) -> Result<Value, ApiError> {
    acc.stream(stream).ok_or_else(ApiError::stream_not_found)?;
    let req = list_request(payload)?;
    let all = acc.consumers_of(stream);
    let now = now_ns();
    let page: Vec<Value> = all
        .iter()
        .skip(req.offset)
        .take(LIST_LIMIT)
        .map(|c| c.info_json(now))
        .collect();
    Ok(json!({"total": all.len(), "offset": req.offset, "limit": LIST_LIMIT, "consumers": page}))
}
