use super::ack::AckMeta;
use super::pull::{parse_pull, PullRequest};
use super::*;

#[test]
fn pull_bodies_are_an_integer_or_json() {
    assert_eq!(parse_pull(b"").map(|r| r.batch), Ok(1));
    assert_eq!(parse_pull(b" 7 ").map(|r| r.batch), Ok(7));
    let r = parse_pull(br#"{"batch":3,"expires":1000,"no_wait":true}"#);
    assert!(matches!(
        r,
        Ok(PullRequest {
            batch: 3,
            expires: 1000,
            no_wait: true,
            ..
        })
    ));
    assert!(parse_pull(b"{").is_err());
    assert_eq!(
        parse_pull(br#"{"batch":1,"expires":1000,"idle_heartbeat":600}"#).err(),
        Some("heartbeat value too large".to_string())
    );
}

#[test]
fn ack_subjects_are_v1_with_nine_tokens() {
    let m = AckMeta::parse("$JS.ACK.S.C.1.42.7.1700000000.3").map(|m| m.sseq);
    assert_eq!(m, Some(42));
    assert!(AckMeta::parse("$JS.ACK.S.C.1.x.7.1.3").is_none());
    assert!(AckMeta::parse("$JS.ACK.S.C.1.2.3").is_none());
}

#[test]
fn statuses_are_header_only_with_pending_counts() {
    let d = Delivery::status("inbox", "408 Request Timeout", Some((2, 10)));
    let h = String::from_utf8(d.headers.clone().unwrap_or_default().to_vec()).unwrap_or_default();
    assert!(h.starts_with("NATS/1.0 408 Request Timeout\r\n"), "{h}");
    assert!(h.contains("Nats-Pending-Messages: 2\r\n") && h.contains("Nats-Pending-Bytes: 10\r\n"));
    assert!(d.payload.is_empty() && !d.redirected());
}

#[test]
fn ack_replies_are_the_v1_subject_in_a_buffer_of_their_size() {
    for (seqs, ts, pending) in [
        ([1, 1, 1], 0, 0),
        ([3, 123_456, 99], 1_700_000_000_123_456_789, 42),
        ([u64::MAX, u64::MAX, u64::MAX], i64::MIN, u64::MAX),
    ] {
        let got = super::ack_reply("ORDERS", "worker", seqs, ts, pending);
        let want = format!(
            "$JS.ACK.ORDERS.worker.{}.{}.{}.{ts}.{pending}",
            seqs[0], seqs[1], seqs[2]
        );
        assert_eq!(got, want.as_bytes());
        assert_eq!(got.len(), want.len());
    }
}
