//! JetStream advisories (`$JS.EVENT.ADVISORY.>`) in nats-server's JSON shapes. They are
//! published into the account whose JetStream acted (see `path::store`), and only built when
//! someone there listens.

use serde_json::{json, Value};
use std::time::SystemTime;

/// Where every API request and its response are audited.
pub const API_AUDIT: &str = "$JS.EVENT.ADVISORY.API";

/// `io.nats.jetstream.advisory.v1.api_audit` for one API request.
pub fn api_audit(
    server: &str,
    client: Value,
    subject: &str,
    request: &[u8],
    response: &[u8],
    domain: Option<&str>,
) -> Vec<u8> {
    let mut v = json!({
        "type": "io.nats.jetstream.advisory.v1.api_audit",
        "id": crate::util::event_id(),
        "timestamp": crate::timefmt::rfc3339(SystemTime::now()),
        "server": server,
        "client": client,
        "subject": subject,
        "request": String::from_utf8_lossy(request),
        "response": String::from_utf8_lossy(response),
    });
    if let Some(d) = domain {
        v["domain"] = json!(d);
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The stream lifecycle advisory for an API request that created, updated or deleted a
/// stream (its response carries no error): `(subject, body)`.
pub fn stream_action(
    api_subject: &str,
    response: &[u8],
    domain: Option<&str>,
) -> Option<(String, Vec<u8>)> {
    let rest = api_subject.strip_prefix(super::api::PREFIX)?;
    let (event, action, stream) = match rest.split('.').collect::<Vec<_>>().as_slice() {
        ["STREAM", "CREATE", name] => ("CREATED", "create", *name),
        ["STREAM", "UPDATE", name] => ("UPDATED", "modify", *name),
        ["STREAM", "DELETE", name] => ("DELETED", "delete", *name),
        _ => return None,
    };
    let answer: Value = serde_json::from_slice(response).ok()?;
    if answer.get("error").is_some() {
        return None;
    }
    let mut v = json!({
        "type": "io.nats.jetstream.advisory.v1.stream_action",
        "id": crate::util::event_id(),
        "timestamp": crate::timefmt::rfc3339(SystemTime::now()),
        "stream": stream,
        "action": action,
    });
    if let Some(d) = domain {
        v["domain"] = json!(d);
    }
    Some((
        format!("$JS.EVENT.ADVISORY.STREAM.{event}.{stream}"),
        serde_json::to_vec(&v).unwrap_or_default(),
    ))
}

/// The consumer lifecycle advisory for an API request that created or deleted a consumer
/// (its response carries no error): `(subject, body)`. A create names the consumer in its
/// response (ephemeral consumers get their name there).
pub fn consumer_action(
    api_subject: &str,
    response: &[u8],
    domain: Option<&str>,
) -> Option<(String, Vec<u8>)> {
    let rest = api_subject.strip_prefix(super::api::PREFIX)?;
    let tokens: Vec<&str> = rest.split('.').collect();
    if !matches!(
        tokens.as_slice(),
        ["CONSUMER", "CREATE" | "DURABLE" | "DELETE", ..]
    ) {
        return None;
    }
    let answer: Value = serde_json::from_slice(response).ok()?;
    if answer.get("error").is_some() {
        return None;
    }
    let (created, stream, consumer) = match tokens.as_slice() {
        ["CONSUMER", "CREATE", stream, ..] | ["CONSUMER", "DURABLE", "CREATE", stream, ..] => {
            (true, *stream, answer.get("name")?.as_str()?.to_string())
        }
        ["CONSUMER", "DELETE", stream, name] => (false, *stream, name.to_string()),
        _ => return None,
    };
    Some(consumer_event(created, stream, &consumer, domain))
}

/// The `consumer_action` advisory for `consumer` of `stream` created (else deleted), also
/// when no API request did it (a consumer deleted for inactivity): `(subject, body)`.
pub fn consumer_event(
    created: bool,
    stream: &str,
    consumer: &str,
    domain: Option<&str>,
) -> (String, Vec<u8>) {
    let (event, action) = if created {
        ("CREATED", "create")
    } else {
        ("DELETED", "delete")
    };
    let mut v = json!({
        "type": "io.nats.jetstream.advisory.v1.consumer_action",
        "id": crate::util::event_id(),
        "timestamp": crate::timefmt::rfc3339(SystemTime::now()),
        "stream": stream,
        "consumer": consumer,
        "action": action,
    });
    if let Some(d) = domain {
        v["domain"] = json!(d);
    }
    (
        format!("$JS.EVENT.ADVISORY.CONSUMER.{event}.{stream}.{consumer}"),
        serde_json::to_vec(&v).unwrap_or_default(),
    )
}

/// The advisory for a successful `CONSUMER.PAUSE` (paused or resumed): `(subject, body)`.
pub fn consumer_pause(
    api_subject: &str,
    response: &[u8],
    domain: Option<&str>,
) -> Option<(String, Vec<u8>)> {
    let rest = api_subject.strip_prefix(super::api::PREFIX)?;
    let ["CONSUMER", "PAUSE", stream, consumer] = rest.split('.').collect::<Vec<_>>()[..] else {
        return None;
    };
    let answer: Value = serde_json::from_slice(response).ok()?;
    let paused = answer.get("paused")?.as_bool()?;
    let mut v = json!({
        "type": "io.nats.jetstream.advisory.v1.consumer_pause",
        "id": crate::util::event_id(),
        "timestamp": crate::timefmt::rfc3339(SystemTime::now()),
        "stream": stream,
        "consumer": consumer,
        "paused": paused,
    });
    if paused {
        v["pause_until"] = answer["pause_until"].clone();
    }
    if let Some(d) = domain {
        v["domain"] = json!(d);
    }
    Some((
        format!("$JS.EVENT.ADVISORY.CONSUMER.PAUSED.{stream}.{consumer}"),
        serde_json::to_vec(&v).unwrap_or_default(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_successful_lifecycle_requests_make_stream_actions() {
        let (subject, body) =
            stream_action("$JS.API.STREAM.CREATE.ORDERS", br#"{"config":{}}"#, None).unwrap();
        assert_eq!(subject, "$JS.EVENT.ADVISORY.STREAM.CREATED.ORDERS");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["action"], "create");
        assert_eq!(v["stream"], "ORDERS");
        assert!(stream_action("$JS.API.STREAM.DELETE.X", br#"{"error":{}}"#, None).is_none());
        assert!(stream_action("$JS.API.STREAM.INFO.X", b"{}", None).is_none());
        let (subject, _) = stream_action("$JS.API.STREAM.UPDATE.X", b"{}", Some("hub")).unwrap();
        assert_eq!(subject, "$JS.EVENT.ADVISORY.STREAM.UPDATED.X");
    }

    #[test]
    fn successful_consumer_creates_and_deletes_make_consumer_actions() {
        let created = br#"{"stream_name":"ORDERS","name":"eph1","config":{}}"#;
        for api in [
            "$JS.API.CONSUMER.CREATE.ORDERS",
            "$JS.API.CONSUMER.CREATE.ORDERS.eph1.orders.>",
            "$JS.API.CONSUMER.DURABLE.CREATE.ORDERS.eph1",
        ] {
            let (subject, body) = consumer_action(api, created, None).unwrap();
            assert_eq!(
                subject, "$JS.EVENT.ADVISORY.CONSUMER.CREATED.ORDERS.eph1",
                "{api}"
            );
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.consumer_action");
            assert_eq!(
                (&v["action"], &v["consumer"]),
                (&json!("create"), &json!("eph1"))
            );
        }
        let (subject, body) = consumer_action(
            "$JS.API.CONSUMER.DELETE.ORDERS.d",
            br#"{"success":true}"#,
            Some("hub"),
        )
        .unwrap();
        assert_eq!(subject, "$JS.EVENT.ADVISORY.CONSUMER.DELETED.ORDERS.d");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (&v["action"], &v["domain"]),
            (&json!("delete"), &json!("hub"))
        );
        let refused = br#"{"error":{"code":404,"err_code":10014}}"#;
        assert!(consumer_action("$JS.API.CONSUMER.DELETE.ORDERS.d", refused, None).is_none());
        assert!(consumer_action("$JS.API.CONSUMER.INFO.ORDERS.d", created, None).is_none());
    }

    #[test]
    fn pauses_and_resumes_are_advised() {
        let paused = br#"{"paused":true,"pause_until":"2030-01-01T00:00:00Z","pause_remaining":5}"#;
        let (subject, body) = consumer_pause("$JS.API.CONSUMER.PAUSE.S.C", paused, None).unwrap();
        assert_eq!(subject, "$JS.EVENT.ADVISORY.CONSUMER.PAUSED.S.C");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.consumer_pause");
        assert_eq!(
            (&v["paused"], &v["pause_until"]),
            (&json!(true), &json!("2030-01-01T00:00:00Z"))
        );
        let resumed = br#"{"paused":false,"pause_until":"0001-01-01T00:00:00Z"}"#;
        let (_, body) = consumer_pause("$JS.API.CONSUMER.PAUSE.S.C", resumed, None).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["paused"], false);
        assert!(v.get("pause_until").is_none());
        let refused = br#"{"error":{"code":404}}"#;
        assert!(consumer_pause("$JS.API.CONSUMER.PAUSE.S.C", refused, None).is_none());
    }
}
