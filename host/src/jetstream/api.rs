//! The `$JS.API.>` requests of one account, answered in nats-server's JSON shapes
//! (`io.nats.jetstream.api.v1.*`), and `DIRECT.GET` answered with the stored message itself.
//!
//! [`handle`] is pure with respect to the network: it takes the request and returns the reply
//! (or `None` for a subject this server does not serve, which then routes like any message).

use std::sync::atomic::Ordering;

use data_encoding::BASE64;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::config::StreamConfig;
use super::consumer::api::{self as consumer, CreateSubject};
use super::errors::ApiError;
use super::store::StoredMsg;
use super::stream::Stream;
use super::{JetStream, JsAccount};
use crate::proto::headers::HeaderBlock;

pub const PREFIX: &str = "$JS.API.";
/// nats-server's page sizes for STREAM.NAMES and STREAM.LIST.
const NAMES_LIMIT: usize = 1024;
const LIST_LIMIT: usize = 256;
/// The JetStream API level this server implements (nats-server 2.9 is at 0; 2.10 at 1).
const API_LEVEL: u32 = 0;

/// What to send back to the requester's reply subject.
pub struct Reply {
    pub headers: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

impl Reply {
    fn json(v: &Value) -> Reply {
        Reply {
            headers: None,
            payload: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    fn status(status: &str) -> Reply {
        Reply {
            headers: Some(HeaderBlock::new(Some(status)).finish()),
            payload: Vec::new(),
        }
    }
}

fn typed(kind: &str, result: Result<Value, ApiError>, acc: &JsAccount) -> Reply {
    let ty = format!("io.nats.jetstream.api.v1.{kind}");
    let v = match result {
        Ok(mut v) => {
            if let Value::Object(m) = &mut v {
                m.insert("type".into(), json!(ty));
            }
            v
        }
        Err(e) => {
            acc.api_errors.fetch_add(1, Ordering::Relaxed);
            json!({"type": ty, "error": e.to_json()})
        }
    };
    Reply::json(&v)
}

fn parse<'a, T: Deserialize<'a> + Default>(payload: &'a [u8]) -> Result<T, ApiError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    // async-nats sends `null` for "no options".
    serde_json::from_slice::<Option<T>>(payload)
        .map(Option::unwrap_or_default)
        .map_err(ApiError::invalid_json)
}

fn stream_of(acc: &JsAccount, name: &str) -> Result<std::sync::Arc<Stream>, ApiError> {
    acc.stream(name).ok_or_else(ApiError::stream_not_found)
}

/// The PubAck for a publish a stream took: `{"stream","seq"[,"domain"][,"duplicate"]}`, or
/// `{"error":{..},"stream","seq":0}` when it refused the message.
pub fn pub_ack(
    stream: &str,
    domain: Option<&str>,
    result: Result<super::stream::PubAck, ApiError>,
) -> Vec<u8> {
    let plain = |s: &str| !s.contains(['"', '\\']) && !s.contains(char::is_control);
    match result {
        // Written by hand: this is on every acknowledged publish.
        Ok(ack) if plain(stream) && domain.is_none_or(plain) => {
            use std::fmt::Write;
            let mut s = String::with_capacity(48 + stream.len());
            let _ = write!(s, "{{\"stream\":\"{stream}\",");
            if let Some(d) = domain {
                let _ = write!(s, "\"domain\":\"{d}\",");
            }
            let _ = write!(s, "\"seq\":{}", ack.seq);
            if ack.duplicate {
                s.push_str(",\"duplicate\":true");
            }
            s.push('}');
            s.into_bytes()
        }
        Ok(ack) => {
            let mut v = json!({"stream": stream, "seq": ack.seq});
            if let Some(d) = domain {
                v["domain"] = json!(d);
            }
            if ack.duplicate {
                v["duplicate"] = json!(true);
            }
            v.to_string().into_bytes()
        }
        Err(e) => json!({"error": e.to_json(), "stream": stream, "seq": 0})
            .to_string()
            .into_bytes(),
    }
}

/// Answers a request on `subject` (which starts with `$JS.API.`).
pub fn handle(js: &JetStream, acc: &JsAccount, subject: &str, payload: &[u8]) -> Option<Reply> {
    let rest = subject.strip_prefix(PREFIX)?;
    if !acc.enabled() {
        let v = json!({
            "type": "io.nats.jetstream.api.v1.api_response",
            "error": ApiError::not_enabled_for_account().to_json(),
        });
        return Some(Reply::json(&v));
    }
    let tokens: Vec<&str> = rest.split('.').collect();
    let reply = match tokens.as_slice() {
        ["INFO"] => typed("account_info_response", Ok(account_info(js, acc)), acc),
        ["STREAM", "CREATE", name] => {
            typed("stream_create_response", create(acc, name, payload), acc)
        }
        ["STREAM", "UPDATE", name] => {
            typed("stream_update_response", update(acc, name, payload), acc)
        }
        ["STREAM", "INFO", name] => typed("stream_info_response", info(acc, name, payload), acc),
        ["STREAM", "DELETE", name] => typed(
            "stream_delete_response",
            acc.delete_stream(name).map(|()| json!({"success": true})),
            acc,
        ),
        ["STREAM", "PURGE", name] => typed("stream_purge_response", purge(acc, name, payload), acc),
        ["STREAM", "NAMES"] => typed("stream_names_response", names(acc, payload), acc),
        ["STREAM", "LIST"] => typed("stream_list_response", list(acc, payload), acc),
        ["STREAM", "MSG", "GET", name] => {
            typed("stream_msg_get_response", msg_get(acc, name, payload), acc)
        }
        ["STREAM", "MSG", "DELETE", name] => typed(
            "stream_msg_delete_response",
            msg_delete(acc, name, payload),
            acc,
        ),
        ["DIRECT", "GET", name] => direct_get(acc, name, None, payload)?,
        ["DIRECT", "GET", name, ..] => {
            let prefix = format!("{PREFIX}DIRECT.GET.{name}.");
            let last_by = subject.strip_prefix(&prefix)?;
            direct_get(acc, name, Some(last_by), payload)?
        }
        ["CONSUMER", "CREATE", stream] => typed(
            "consumer_create_response",
            consumer::create(acc, stream, CreateSubject::Ephemeral, payload),
            acc,
        ),
        ["CONSUMER", "CREATE", stream, name, filter @ ..] => {
            let filter = (!filter.is_empty()).then(|| {
                let prefix = format!("{PREFIX}CONSUMER.CREATE.{stream}.{name}.");
                subject.strip_prefix(&prefix).unwrap_or_default()
            });
            let on = CreateSubject::Named(name, filter);
            typed(
                "consumer_create_response",
                consumer::create(acc, stream, on, payload),
                acc,
            )
        }
        ["CONSUMER", "DURABLE", "CREATE", stream, name] => typed(
            "consumer_create_response",
            consumer::create(acc, stream, CreateSubject::Durable(name), payload),
            acc,
        ),
        ["CONSUMER", "INFO", stream, name] => typed(
            "consumer_info_response",
            consumer::info(acc, stream, name),
            acc,
        ),
        ["CONSUMER", "DELETE", stream, name] => typed(
            "consumer_delete_response",
            consumer::delete(acc, stream, name),
            acc,
        ),
        ["CONSUMER", "PAUSE", stream, name] => typed(
            "consumer_pause_response",
            consumer::pause(acc, stream, name, payload),
            acc,
        ),
        ["CONSUMER", "NAMES", stream] => typed(
            "consumer_names_response",
            consumer::names(acc, stream, payload),
            acc,
        ),
        ["CONSUMER", "LIST", stream] => typed(
            "consumer_list_response",
            consumer::list(acc, stream, payload),
            acc,
        ),
        _ => return None,
    };
    // Counted once answered: a subject this server does not serve routes like any message.
    acc.api_total.fetch_add(1, Ordering::Relaxed);
    Some(reply)
}

fn account_info(js: &JetStream, acc: &JsAccount) -> Value {
    let l = acc.limits();
    let mut v = json!({
        "memory": acc.memory_used(),
        "storage": acc.storage_used(),
        "streams": acc.streams().len(),
        "consumers": acc.num_consumers(),
        "reserved_memory": 0,
        "reserved_storage": 0,
        "limits": {
            "max_memory": l.max_memory,
            "max_storage": l.max_storage,
            "max_streams": l.max_streams,
            "max_consumers": l.max_consumers,
            "max_ack_pending": l.max_ack_pending,
            "memory_max_stream_bytes": l.memory_max_stream_bytes,
            "storage_max_stream_bytes": l.storage_max_stream_bytes,
            "max_bytes_required": l.max_bytes_required,
        },
        "api": {
            "level": API_LEVEL,
            "total": acc.api_total.load(Ordering::Relaxed),
            "errors": acc.api_errors.load(Ordering::Relaxed),
        },
    });
    if acc.tiered() {
        // The JWT's limits are per replication tier; a single server has only R1.
        v["tiers"] = json!({"R1": {
            "memory": v["memory"],
            "storage": v["storage"],
            "streams": v["streams"],
            "consumers": v["consumers"],
            "limits": v["limits"],
        }});
    }
    if let Some(d) = &js.config.domain {
        v["domain"] = json!(d);
    }
    v
}

fn config_from(name: &str, payload: &[u8]) -> Result<StreamConfig, ApiError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request());
    }
    let mut cfg: StreamConfig = serde_json::from_slice(payload).map_err(ApiError::invalid_json)?;
    if cfg.name.is_empty() {
        cfg.name = name.to_owned();
    } else if cfg.name != name {
        return Err(ApiError::stream_mismatch());
    }
    cfg.normalize()
}

fn create(acc: &JsAccount, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
    let cfg = config_from(name, payload)?;
    let (s, did_create) = acc.create_stream(cfg)?;
    let mut v = s.info_json(false);
    v["did_create"] = json!(did_create);
    Ok(v)
}

fn update(acc: &JsAccount, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
    let cfg = config_from(name, payload)?;
    Ok(acc.update_stream(cfg)?.info_json(false))
}

#[derive(Deserialize, Default)]
struct InfoRequest {
    #[serde(default)]
    subjects_filter: Option<String>,
    #[serde(default)]
    deleted_details: bool,
    #[serde(default)]
    offset: usize,
}

/// Subjects per stream info reply; a client pages through more with `offset`.
const MAX_SUBJECT_DETAILS: usize = 100_000;

/// `STREAM.INFO`, with nats-server's paging of `subjects_filter` details: `total` subjects
/// match, this reply holds those from `offset` (in subject order), at most `limit` of them.
fn info(acc: &JsAccount, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
    let s = stream_of(acc, name)?;
    let req: InfoRequest = parse(payload)?;
    let mut v = s.info_json(req.deleted_details);
    let (mut total, mut offset, mut limit) = (0, 0, 0);
    if let Some(filter) = req.subjects_filter.as_deref().filter(|f| !f.is_empty()) {
        let counts = s.subject_counts(filter);
        if !counts.is_empty() {
            (total, offset, limit) = (counts.len(), req.offset, MAX_SUBJECT_DETAILS);
            let from = offset.min(total);
            let page: Map<String, Value> = counts[from..(from + limit).min(total)]
                .iter()
                .map(|(subject, n)| (subject.clone(), json!(n)))
                .collect();
            if !page.is_empty() {
                v["state"]["subjects"] = Value::Object(page);
            }
        }
    }
    v["total"] = json!(total);
    v["offset"] = json!(offset);
    v["limit"] = json!(limit);
    Ok(v)
}

#[derive(Deserialize, Default)]
struct PurgeRequest {
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    keep: u64,
}

fn purge(acc: &JsAccount, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
    let s = stream_of(acc, name)?;
    let req: PurgeRequest = parse(payload)?;
    let purged = s.purge(req.filter.as_deref(), req.seq, req.keep)?;
    Ok(json!({"success": true, "purged": purged}))
}

#[derive(Deserialize, Default)]
struct ListRequest {
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    subject: Option<String>,
}

fn listed(acc: &JsAccount, req: &ListRequest) -> Vec<std::sync::Arc<Stream>> {
    let mut streams = acc.streams();
    if let Some(filter) = req.subject.as_deref().filter(|s| !s.is_empty()) {
        streams.retain(|s| {
            s.config()
                .subjects
                .iter()
                .any(|x| super::config::subjects_overlap(x, filter))
        });
    }
    streams
}

fn names(acc: &JsAccount, payload: &[u8]) -> Result<Value, ApiError> {
    let req: ListRequest = parse(payload)?;
    let streams = listed(acc, &req);
    let page: Vec<&str> = streams
        .iter()
        .skip(req.offset)
        .take(NAMES_LIMIT)
        .map(|s| s.name.as_str())
        .collect();
    Ok(json!({"total": streams.len(), "offset": req.offset, "limit": NAMES_LIMIT, "streams": page}))
}

fn list(acc: &JsAccount, payload: &[u8]) -> Result<Value, ApiError> {
    let req: ListRequest = parse(payload)?;
    let streams = listed(acc, &req);
    let page: Vec<Value> = streams
        .iter()
        .skip(req.offset)
        .take(LIST_LIMIT)
        .map(|s| s.info_json(false))
        .collect();
    Ok(
        json!({"total": streams.len(), "offset": req.offset, "limit": LIST_LIMIT, "streams": page, "missing": []}),
    )
}

#[derive(Deserialize, Default)]
struct GetRequest {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    last_by_subj: Option<String>,
    #[serde(default)]
    next_by_subj: Option<String>,
}

fn lookup(s: &Stream, req: &GetRequest) -> Result<Option<StoredMsg>, ApiError> {
    match (&req.last_by_subj, &req.next_by_subj) {
        (Some(subj), _) if !subj.is_empty() => s.last_for_subject(subj),
        (_, Some(subj)) if !subj.is_empty() => s.next_for_subject(req.seq, subj),
        _ if req.seq > 0 => s.get(req.seq),
        _ => Err(ApiError::bad_request()),
    }
}

fn msg_get(acc: &JsAccount, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
    let s = stream_of(acc, name)?;
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request());
    }
    let req: GetRequest = parse(payload)?;
    let m = lookup(&s, &req)?.ok_or_else(ApiError::no_message_found)?;
    let mut message = json!({
        "subject": m.subject,
        "seq": m.seq,
        "data": BASE64.encode(&m.payload),
        "time": super::stream_time(m.timestamp_ns),
    });
    if !m.headers.is_empty() {
        message["hdrs"] = json!(BASE64.encode(&m.headers));
    }
    Ok(json!({"message": message}))
}

#[derive(Deserialize, Default)]
struct DeleteRequest {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    no_erase: bool,
}

fn msg_delete(acc: &JsAccount, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
    let s = stream_of(acc, name)?;
    let req: DeleteRequest = parse(payload)?;
    // Records are dropped from the index either way; `no_erase` only skips overwriting the
    // bytes on disk, which this store does not do (compaction removes them).
    let _ = req.no_erase;
    if req.seq == 0 {
        return Err(ApiError::bad_request());
    }
    if s.delete_msg(req.seq)? {
        Ok(json!({"success": true}))
    } else {
        // nats-server's answer for a sequence that is not (or no longer) there.
        Err(ApiError::msg_delete_failed("no message found"))
    }
}

/// `DIRECT.GET`: the stored message with `Nats-Stream`, `Nats-Subject`, `Nats-Sequence` and
/// `Nats-Time-Stamp` headers added, or a status (`404 Message Not Found`, `408 …`).
fn direct_get(acc: &JsAccount, name: &str, last_by: Option<&str>, payload: &[u8]) -> Option<Reply> {
    let s = acc.stream(name)?;
    if !s.config().allow_direct {
        return None;
    }
    let empty = payload.iter().all(u8::is_ascii_whitespace);
    let req = match last_by {
        Some(subj) => {
            if !empty {
                return Some(Reply::status("408 Bad Request"));
            }
            GetRequest {
                last_by_subj: Some(subj.to_owned()),
                ..GetRequest::default()
            }
        }
        None if empty => return Some(Reply::status("408 Empty Request")),
        None => match serde_json::from_slice::<GetRequest>(payload) {
            Ok(r) => r,
            Err(_) => return Some(Reply::status("408 Malformed Request")),
        },
    };
    let msg = match lookup(&s, &req) {
        Ok(Some(m)) => m,
        Ok(None) => return Some(Reply::status("404 Message Not Found")),
        Err(_) => return Some(Reply::status("408 Bad Request")),
    };
    let headers = HeaderBlock::extend(&msg.headers)
        .add("Nats-Stream", &s.name)
        .add("Nats-Subject", &msg.subject)
        .add("Nats-Sequence", &msg.seq.to_string())
        .add("Nats-Time-Stamp", &super::stream_time(msg.timestamp_ns))
        .finish();
    Some(Reply {
        headers: Some(headers),
        payload: msg.payload.to_vec(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::jetstream::stream::PubAck;

    fn parsed(b: Vec<u8>) -> Value {
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn pub_acks_are_valid_json_whatever_the_names() {
        let ack = PubAck {
            seq: 7,
            duplicate: true,
            mark: 0,
        };
        assert_eq!(
            parsed(pub_ack("S", Some("hub"), Ok(ack))),
            json!({"stream": "S", "domain": "hub", "seq": 7, "duplicate": true})
        );
        let first = PubAck {
            seq: 1,
            duplicate: false,
            mark: 0,
        };
        assert_eq!(
            parsed(pub_ack("S", None, Ok(first))),
            json!({"stream": "S", "seq": 1})
        );
        assert_eq!(
            parsed(pub_ack("a\"b\\c", None, Ok(first))),
            json!({"stream": "a\"b\\c", "seq": 1})
        );
        let err = parsed(pub_ack("S", None, Err(ApiError::wrong_last_seq(3))));
        assert_eq!(err["error"]["err_code"], 10071);
        assert_eq!(err["seq"], 0);
    }
}
