#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use bytes::BytesMut;

const L: Limits = Limits {
    max_control_line: 4096,
    max_payload: 1024 * 1024,
};

fn op(buf: &[u8]) -> (ClientOp<'_>, usize) {
    match parse(buf, &L) {
        Ok(Parsed::Op { op, consumed }) => (op, consumed),
        other => panic!(
            "{:?}: expected an op, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn err(buf: &[u8], limits: &Limits) -> ProtoError {
    match parse(buf, limits) {
        Err(e) => e,
        other => panic!(
            "{:?}: expected an error, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

/// Valid frames and what they parse to.
fn valid_frames() -> Vec<(&'static [u8], ClientOp<'static>)> {
    vec![
        (b"PING\r\n", ClientOp::Ping),
        (b"ping\n", ClientOp::Ping),
        (b"PiNg\r\n", ClientOp::Ping),
        (b"PINGX\r\n", ClientOp::Ping),
        (b"PING foo\r\n", ClientOp::Ping),
        (b"PONG\r\n", ClientOp::Pong),
        (b"pong\n", ClientOp::Pong),
        (b"+OK\r\n", ClientOp::Ok),
        (b"+ok\r\n", ClientOp::Ok),
        (b"+OKAY\r\n", ClientOp::Ok),
        (b"-ERR 'Unknown'\r\n", ClientOp::Err(b"'Unknown'")),
        (b"-err  \tx y\r\n", ClientOp::Err(b"x y")),
        (b"-ERR \r\n", ClientOp::Err(b"")),
        (
            b"CONNECT {\"verbose\":false}\r\n",
            ClientOp::Connect(b"{\"verbose\":false}"),
        ),
        (b"connect{}\r\n", ClientOp::Connect(b"{}")),
        (b"CoNnEcT\t {}\n", ClientOp::Connect(b"{}")),
        (b"CONNECT\r\n", ClientOp::Connect(b"")),
        (b"INFO {\"a\":1}\r\n", ClientOp::Info(b"{\"a\":1}")),
        (b"INFOx\r\n", ClientOp::Info(b"x")),
        (
            b"SUB foo 1\r\n",
            ClientOp::Sub {
                subject: b"foo",
                queue: None,
                sid: b"1",
            },
        ),
        (
            b"sub foo q 1\r\n",
            ClientOp::Sub {
                subject: b"foo",
                queue: Some(b"q"),
                sid: b"1",
            },
        ),
        (
            b"SUB\tfoo\t1\n",
            ClientOp::Sub {
                subject: b"foo",
                queue: None,
                sid: b"1",
            },
        ),
        (
            b"SUB  foo   bar  22  \r\n",
            ClientOp::Sub {
                subject: b"foo",
                queue: Some(b"bar"),
                sid: b"22",
            },
        ),
        // nats-server's splitArg splits SUB args on CR too.
        (
            b"SUB foo\r1\r\n",
            ClientOp::Sub {
                subject: b"foo",
                queue: None,
                sid: b"1",
            },
        ),
        (
            b"UNSUB 1\r\n",
            ClientOp::Unsub {
                sid: b"1",
                max: None,
            },
        ),
        (
            b"unsub 1 5\r\n",
            ClientOp::Unsub {
                sid: b"1",
                max: Some(5),
            },
        ),
        (
            b"UNSUB 1 x\r\n",
            ClientOp::Unsub {
                sid: b"1",
                max: None,
            },
        ),
        (
            b"UNSUB 1 -1\r\n",
            ClientOp::Unsub {
                sid: b"1",
                max: None,
            },
        ),
        (
            b"UNSUB 1 0\r\n",
            ClientOp::Unsub {
                sid: b"1",
                max: None,
            },
        ),
        (
            b"UNSUB 1 9999999999\r\n",
            ClientOp::Unsub {
                sid: b"1",
                max: None,
            },
        ),
        (
            b"UNSUB 1 999999999\r\n",
            ClientOp::Unsub {
                sid: b"1",
                max: Some(999_999_999),
            },
        ),
        (
            b"PUB foo 5\r\nhello\r\n",
            ClientOp::Pub {
                subject: b"foo",
                reply: None,
                payload: b"hello",
            },
        ),
        (
            b"pub foo bar 2\r\nhi\r\n",
            ClientOp::Pub {
                subject: b"foo",
                reply: Some(b"bar"),
                payload: b"hi",
            },
        ),
        (
            b"PuB  foo \t 2 \r\nhi\r\n",
            ClientOp::Pub {
                subject: b"foo",
                reply: None,
                payload: b"hi",
            },
        ),
        (
            b"PUB\tfoo 0\r\n\r\n",
            ClientOp::Pub {
                subject: b"foo",
                reply: None,
                payload: b"",
            },
        ),
        (
            b"PUB foo 5\nhello\r\n",
            ClientOp::Pub {
                subject: b"foo",
                reply: None,
                payload: b"hello",
            },
        ),
        (
            b"PUB foo 000000005\r\nhe\r\no\r\n",
            ClientOp::Pub {
                subject: b"foo",
                reply: None,
                payload: b"he\r\no",
            },
        ),
        (
            b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
            ClientOp::Hpub {
                subject: b"foo",
                reply: None,
                headers: b"NATS/1.0\r\n\r\n",
                payload: b"hi",
            },
        ),
        (
            b"hpub foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n",
            ClientOp::Hpub {
                subject: b"foo",
                reply: Some(b"r"),
                headers: b"NATS/1.0\r\n\r\n",
                payload: b"",
            },
        ),
        // Header content is not validated, like nats-server.
        (
            b"HPUB foo 2 2\r\nhi\r\n",
            ClientOp::Hpub {
                subject: b"foo",
                reply: None,
                headers: b"hi",
                payload: b"",
            },
        ),
        (
            b"HPUB foo 0 2\r\nhi\r\n",
            ClientOp::Hpub {
                subject: b"foo",
                reply: None,
                headers: b"",
                payload: b"hi",
            },
        ),
    ]
}

#[test]
fn every_op_whole() {
    for (frame, want) in valid_frames() {
        let (got, consumed) = op(frame);
        assert_eq!(got, want, "{:?}", String::from_utf8_lossy(frame));
        assert_eq!(
            consumed,
            frame.len(),
            "{:?}",
            String::from_utf8_lossy(frame)
        );
        // Trailing bytes of the next frame do not change the result.
        let mut more = frame.to_vec();
        more.extend_from_slice(b"PING\r\n");
        let (got2, consumed2) = op(&more);
        assert_eq!(got2, want);
        assert_eq!(consumed2, frame.len());
    }
}

#[test]
fn every_op_byte_by_byte_and_every_prefix() {
    for (frame, want) in valid_frames() {
        let mut buf = Vec::new();
        for (i, &b) in frame.iter().enumerate() {
            buf.push(b);
            let r = parse(&buf, &L).unwrap();
            if i + 1 < frame.len() {
                match r {
                    Parsed::Incomplete { need } => {
                        if let Some(n) = need {
                            assert_eq!(n, frame.len(), "{:?}", String::from_utf8_lossy(&buf));
                        }
                    }
                    other => panic!("prefix {:?} gave {other:?}", String::from_utf8_lossy(&buf)),
                }
            } else {
                assert_eq!(
                    r,
                    Parsed::Op {
                        op: want,
                        consumed: frame.len()
                    }
                );
            }
        }
    }
}

#[test]
fn need_is_known_once_the_control_line_is() {
    let frame = b"PUB foo 5\r\nhello\r\n";
    assert_eq!(
        parse(&frame[..10], &L),
        Ok(Parsed::Incomplete { need: None })
    );
    for k in 11..frame.len() {
        assert_eq!(
            parse(&frame[..k], &L),
            Ok(Parsed::Incomplete { need: Some(18) })
        );
    }
    assert_eq!(parse(b"", &L), Ok(Parsed::Incomplete { need: None }));
}

/// Feeds `chunks` as successive reads, parsing like a connection would.
/// Returns the ops, the error if any, and the bytes consumed by ops.
fn stream(chunks: &[&[u8]], limits: &Limits) -> (Vec<String>, Option<ProtoError>, usize) {
    let mut pending: Vec<u8> = Vec::new();
    let mut ops = Vec::new();
    let mut total = 0;
    for chunk in chunks {
        pending.extend_from_slice(chunk);
        loop {
            match parse(&pending, limits) {
                Ok(Parsed::Op { op, consumed }) => {
                    assert!(consumed > 0 && consumed <= pending.len());
                    ops.push(format!("{op:?}"));
                    total += consumed;
                    pending.drain(..consumed);
                }
                Ok(Parsed::Incomplete { need }) => {
                    if let Some(n) = need {
                        assert!(n > pending.len());
                    }
                    break;
                }
                Err(e) => return (ops, Some(e), total),
            }
        }
    }
    (ops, None, total)
}

#[test]
fn multiple_ops_in_one_buffer() {
    let input: &[u8] = b"CONNECT {}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nUNSUB 1\r\nPING\r\nPONG\r\n+OK\r\nPUB x";
    let (ops, e, left) = stream(&[input], &L);
    assert_eq!(e, None);
    assert_eq!(ops.len(), 8);
    assert_eq!(input.len() - left, 5);
    let mut rest = input;
    let mut n = 0;
    while let Ok(Parsed::Op { consumed, .. }) = parse(rest, &L) {
        rest = &rest[consumed..];
        n += 1;
    }
    assert_eq!(n, 8);
    assert_eq!(rest, b"PUB x");
}

#[test]
fn split_payloads_agree_with_whole() {
    let input: &[u8] =
        b"PUB foo 11\r\nhello world\r\nHPUB a r 12 17\r\nNATS/1.0\r\n\r\nhello\r\nsub a 1\r\n";
    let whole = stream(&[input], &L);
    assert_eq!(whole.0.len(), 3);
    for a in 0..=input.len() {
        for b in a..=input.len() {
            let got = stream(&[&input[..a], &input[a..b], &input[b..]], &L);
            assert_eq!(got, whole, "split at {a},{b}");
        }
    }
}

#[test]
fn errors_and_their_client_texts() {
    use ProtoError::*;
    let unknown = Some("Unknown Protocol Operation");
    let cases: &[(&[u8], ProtoError, Option<&str>)] = &[
        (b"FOO\r\n", UnknownOp, unknown),
        (b"\r\n", UnknownOp, unknown),
        (b"\n", UnknownOp, unknown),
        (b" PING\r\n", UnknownOp, unknown),
        (b"\tPING\r\n", UnknownOp, unknown),
        (b"PI NG\r\n", UnknownOp, unknown),
        (b"PIN\r\n", UnknownOp, unknown),
        (b"PUBX foo 2\r\n", UnknownOp, unknown),
        (b"PUB\r\n", UnknownOp, unknown),
        (b"SUB\r\n", UnknownOp, unknown),
        (b"UNSUB\r\n", UnknownOp, unknown),
        (b"HPUB\r\n", UnknownOp, unknown),
        (b"-ERR\r\n", UnknownOp, unknown),
        (b"+O\r\n", UnknownOp, unknown),
        (b"MSG foo 1 2\r\nhi\r\n", UnknownOp, unknown),
        (b"HMSG foo 1 2 2\r\nhi\r\n", UnknownOp, unknown),
        (b"RS+ foo 1\r\n", UnknownOp, unknown),
        (b"LS+ foo\r\n", UnknownOp, unknown),
        (b"A+ foo\r\n", UnknownOp, unknown),
        (b"PUB foo 5\r\nhelloX\r\n", PayloadTerminator, unknown),
        (b"PUB foo 5\nhello\n", PayloadTerminator, unknown),
        (b"PUB foo 2\r\nhi\n\r", PayloadTerminator, unknown),
        (b"PUB foo 2\r\nhi\rX", PayloadTerminator, unknown),
        (
            b"PUB foo 1048577\r\n",
            MaxPayload {
                size: 1048577,
                max: 1048576,
            },
            Some("Maximum Payload Violation"),
        ),
        (
            b"HPUB foo 1 1048577\r\n",
            MaxPayload {
                size: 1048577,
                max: 1048576,
            },
            Some("Maximum Payload Violation"),
        ),
        (
            b"PUB foo 999999999\r\n",
            MaxPayload {
                size: 999999999,
                max: 1048576,
            },
            Some("Maximum Payload Violation"),
        ),
        (b"PUB foo\r\n", PubArgs, None),
        (b"PUB \r\n", PubArgs, None),
        (b"PUB foo bar baz 5\r\n", PubArgs, None),
        (b"PUB foo -1\r\n", PubSize, None),
        (b"PUB foo x\r\n", PubSize, None),
        (b"PUB foo 5x\r\n", PubSize, None),
        (b"PUB foo +5\r\n", PubSize, None),
        (b"PUB foo 0000000005\r\n", PubSize, None),
        (b"PUB foo 99999999999999999999\r\n", PubSize, None),
        (b"PUB foo\r5\r\n", PubArgs, None), // PUB does not split on CR
        (b"HPUB foo 2\r\n", HpubArgs, None),
        (b"HPUB foo x 2\r\n", HpubSize, None),
        (b"HPUB foo 2 x\r\n", HpubSize, None),
        (b"HPUB foo a b 12 14\r\n", HpubArgs, None),
        (b"HPUB foo 3 2\r\n", HpubHeaderTooLarge, None),
        (b"SUB foo\r\n", SubArgs, None),
        (b"SUB \r\n", SubArgs, None),
        (b"SUB foo q 1 x\r\n", SubArgs, None),
        (b"UNSUB \r\n", UnsubArgs, None),
        (b"UNSUB 1 2 3\r\n", UnsubArgs, None),
    ];
    for (input, want, text) in cases {
        let got = err(input, &L);
        assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(input));
        assert_eq!(
            got.client_error(),
            *text,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        // The error shows up as soon as the offending byte is there, and no
        // prefix parses to something else.
        for k in 0..input.len() {
            match parse(&input[..k], &L) {
                Ok(Parsed::Incomplete { .. }) => {}
                Err(e) => assert_eq!(
                    &e,
                    want,
                    "prefix {:?}",
                    String::from_utf8_lossy(&input[..k])
                ),
                other => panic!(
                    "prefix {:?} gave {other:?}",
                    String::from_utf8_lossy(&input[..k])
                ),
            }
        }
    }
    assert_eq!(
        ProtoError::MaxControlLine { max: 1 }.client_error(),
        Some("maximum control line exceeded")
    );
}

#[test]
fn errors_are_immediate() {
    assert_eq!(parse(b"X", &L), Err(ProtoError::UnknownOp));
    assert_eq!(parse(b"PX", &L), Err(ProtoError::UnknownOp));
    assert_eq!(parse(b"PUBX", &L), Err(ProtoError::UnknownOp));
    assert_eq!(
        parse(b"PUB foo 2\r\nhiX", &L),
        Err(ProtoError::PayloadTerminator)
    );
    assert_eq!(
        parse(b"PUB foo 2\r\nhi", &L),
        Ok(Parsed::Incomplete { need: Some(15) })
    );
}

#[test]
fn control_line_limit_enforced_before_buffering() {
    let lim = Limits {
        max_control_line: 64,
        max_payload: 16,
    };
    // Exactly at the limit: 64 argument bytes pass (like nats-server).
    let mut ok = b"SUB ".to_vec();
    ok.extend(std::iter::repeat_n(b'a', 62));
    ok.extend_from_slice(b" 1\r\n");
    assert!(matches!(parse(&ok, &lim), Ok(Parsed::Op { .. })));
    // 65 fail, whether the line is whole...
    let mut bad = b"SUB ".to_vec();
    bad.extend(std::iter::repeat_n(b'a', 63));
    bad.extend_from_slice(b" 1\r\n");
    assert_eq!(
        parse(&bad, &lim),
        Err(ProtoError::MaxControlLine { max: 64 })
    );
    // ...or has no line end yet: error once no line end can fit any more.
    let mut open = b"PUB ".to_vec();
    open.extend(std::iter::repeat_n(b'a', 65));
    assert_eq!(
        parse(&open[..4 + 65], &lim),
        Ok(Parsed::Incomplete { need: None })
    );
    open.push(b'a');
    assert_eq!(
        parse(&open, &lim),
        Err(ProtoError::MaxControlLine { max: 64 })
    );
    // With a CR the 64-byte argument is still fine.
    let mut cr = b"CONNECT ".to_vec();
    cr.extend(std::iter::repeat_n(b'x', 64));
    cr.extend_from_slice(b"\r\n");
    assert!(matches!(parse(&cr, &lim), Ok(Parsed::Op { .. })));
    // Junk after PING and endless blanks are bounded too.
    let mut ping = b"PING".to_vec();
    ping.extend(std::iter::repeat_n(b'x', 100));
    assert_eq!(
        parse(&ping, &lim),
        Err(ProtoError::MaxControlLine { max: 64 })
    );
    let mut blanks = b"SUB".to_vec();
    blanks.extend(std::iter::repeat_n(b' ', 100));
    assert_eq!(
        parse(&blanks, &lim),
        Err(ProtoError::MaxControlLine { max: 64 })
    );
    let mut blanks2 = b"SUB".to_vec();
    blanks2.extend(std::iter::repeat_n(b' ', 30));
    blanks2.extend_from_slice(b"foo 1\r\n");
    assert!(matches!(parse(&blanks2, &lim), Ok(Parsed::Op { .. })));
}

#[test]
fn payload_limit_enforced_before_payload() {
    let lim = Limits {
        max_control_line: 64,
        max_payload: 16,
    };
    assert_eq!(
        parse(b"PUB a 17\r\n", &lim),
        Err(ProtoError::MaxPayload { size: 17, max: 16 })
    );
    assert_eq!(
        parse(b"HPUB a 2 17\n", &lim),
        Err(ProtoError::MaxPayload { size: 17, max: 16 })
    );
    assert_eq!(
        parse(b"PUB a 16\r\n", &lim),
        Ok(Parsed::Incomplete { need: Some(28) })
    );
    let frame = b"PUB a 16\r\n0123456789abcdef\r\n";
    assert!(matches!(
        parse(frame, &lim),
        Ok(Parsed::Op { consumed: 28, .. })
    ));
}

#[test]
fn bare_lf_with_inner_cr_drops_last_byte_like_nats() {
    // nats-server: arg = "foo 1\r" → splitArg → [foo, 1]
    assert_eq!(
        op(b"SUB foo 1\rx\n").0,
        ClientOp::Sub {
            subject: b"foo",
            queue: None,
            sid: b"1"
        }
    );
}

/// Deterministic mini-fuzz: random frames over a protocol-ish alphabet,
/// split at every point, must agree with the whole parse.
#[test]
fn random_split_consistency() {
    let pieces: &[&[u8]] = &[
        b"PUB ",
        b"HPUB ",
        b"SUB ",
        b"UNSUB ",
        b"PING",
        b"PONG",
        b"+OK",
        b"-ERR ",
        b"CONNECT ",
        b"INFO ",
        b"foo",
        b" ",
        b"\t",
        b"\r",
        b"\n",
        b"\r\n",
        b"0",
        b"1",
        b"2",
        b"5",
        b"12",
        b"x",
        b"NATS/1.0\r\n\r\n",
        b"hi",
        b"pub",
        b"Ping",
    ];
    let mut seed: u64 = 0x1234_5678_9abc_def0;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let n = (next() % 12) as usize;
        let mut input = Vec::new();
        for _ in 0..n {
            input.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
        }
        let lim = Limits {
            max_control_line: 1 + (next() % 20) as usize,
            max_payload: (next() % 20) as usize,
        };
        let whole = stream(&[&input], &lim);
        for k in 0..=input.len() {
            assert_eq!(
                stream(&[&input[..k], &input[k..]], &lim),
                whole,
                "{input:?} at {k}"
            );
        }
    }
}

#[test]
fn encoders_golden() {
    let mut b = BytesMut::new();
    write_msg_header(&mut b, b"foo.bar", b"7", None, 0);
    write_msg_header(&mut b, b"foo", b"12", Some(b"_INBOX.x"), 1048576);
    write_hmsg_header(&mut b, b"a", b"1", None, 12, 14);
    write_hmsg_header(&mut b, b"a", b"1", Some(b"r"), 0, 9);
    write_msg(&mut b, b"s", b"2", None, b"hello");
    write_hmsg(&mut b, b"s", b"2", Some(b"r"), b"NATS/1.0\r\n\r\n", b"hi");
    b.extend_from_slice(PING);
    b.extend_from_slice(PONG);
    b.extend_from_slice(OK);
    write_err(&mut b, errors::UNKNOWN_PROTOCOL_OPERATION);
    write_info(&mut b, b"{\"server_id\":\"X\"}");
    assert_eq!(
        &b[..],
        &b"MSG foo.bar 7 0\r\n\
MSG foo 12 _INBOX.x 1048576\r\n\
HMSG a 1 12 14\r\n\
HMSG a 1 r 0 9\r\n\
MSG s 2 5\r\nhello\r\n\
HMSG s 2 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n\
PING\r\nPONG\r\n+OK\r\n\
-ERR 'Unknown Protocol Operation'\r\n\
INFO {\"server_id\":\"X\"} \r\n"[..]
    );
    let mut n = BytesMut::new();
    encode::write_usize(&mut n, usize::MAX);
    assert_eq!(n, usize::MAX.to_string().as_bytes());
}

#[test]
fn error_texts_golden() {
    let mut b = BytesMut::new();
    errors::write_publish_violation(&mut b, b"nope");
    errors::write_subscription_violation(&mut b, b"nope", None);
    errors::write_subscription_violation(&mut b, b"nope", Some(b"Q"));
    errors::write_publish_violation(&mut b, b"a\"b\\c\x01\xff\xc3\xa9");
    assert_eq!(
        &b[..],
        &b"-ERR 'Permissions Violation for Publish to \"nope\"'\r\n\
-ERR 'Permissions Violation for Subscription to \"nope\"'\r\n\
-ERR 'Permissions Violation for Subscription to \"nope\" using queue \"Q\"'\r\n\
-ERR 'Permissions Violation for Publish to \"a\\\"b\\\\c\\x01\\xff\xc3\xa9\"'\r\n"[..]
    );
    let table = [
        (
            ServerError::UnknownProtocolOperation,
            "Unknown Protocol Operation",
            true,
        ),
        (
            ServerError::MaxControlLineExceeded,
            "maximum control line exceeded",
            true,
        ),
        (
            ServerError::MaxPayloadViolation,
            "Maximum Payload Violation",
            true,
        ),
        (
            ServerError::AuthorizationViolation,
            "Authorization Violation",
            true,
        ),
        (
            ServerError::AuthenticationTimeout,
            "Authentication Timeout",
            true,
        ),
        (ServerError::StaleConnection, "Stale Connection", true),
        (
            ServerError::MaxConnectionsExceeded,
            "maximum connections exceeded",
            true,
        ),
        (ServerError::InvalidSubject, "Invalid Subject", false),
        (
            ServerError::InvalidPublishSubject,
            "Invalid Publish Subject",
            false,
        ),
        (
            ServerError::MaxSubscriptionsExceeded,
            "maximum subscriptions exceeded",
            false,
        ),
        (
            ServerError::SecureConnectionTlsRequired,
            "Secure Connection - TLS Required",
            true,
        ),
        (
            ServerError::InvalidClientProtocol,
            "invalid client protocol",
            true,
        ),
        (
            ServerError::NoRespondersRequiresHeaders,
            "no responders requires headers support",
            true,
        ),
    ];
    for (e, text, closes) in table {
        assert_eq!(e.text(), text);
        assert_eq!(e.closes_connection(), closes, "{text}");
        assert!(e.sent_to_client());
    }
    assert!(!ServerError::SlowConsumer.sent_to_client());
}

#[test]
fn connect_options() {
    let d = ConnectOptions::parse(b"{}").unwrap();
    assert!(d.verbose && d.pedantic && d.echo);
    assert!(!d.headers && !d.no_responders && !d.tls_required);
    assert_eq!(d, ConnectOptions::default());
    assert_eq!(
        ConnectOptions::parse(b"null").unwrap(),
        ConnectOptions::default()
    );
    let o = ConnectOptions::parse(
        br#"{"verbose":false,"pedantic":false,"tls_required":false,"name":"n","lang":"go","version":"1.2","protocol":1,"echo":false,"headers":true,"no_responders":true,"user":"u","pass":"p","auth_token":"t","jwt":"j","nkey":"k","sig":"s","unknown":[1,2]}"#,
    )
    .unwrap();
    assert!(!o.verbose && !o.pedantic && !o.echo && o.headers && o.no_responders);
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    assert_eq!(
        (s(&o.name), s(&o.lang), s(&o.version)),
        ("n".into(), "go".into(), "1.2".into())
    );
    assert_eq!(o.protocol, 1);
    assert_eq!(
        (s(&o.user), s(&o.pass), s(&o.auth_token)),
        ("u".into(), "p".into(), "t".into())
    );
    assert_eq!(
        (s(&o.jwt), s(&o.nkey), s(&o.sig)),
        ("j".into(), "k".into(), "s".into())
    );
    assert_eq!(d.name, None);
    // Go's encoding/json: case-insensitive keys, null keeps the default.
    let c = ConnectOptions::parse(br#"{"VERBOSE":false,"Echo":null}"#).unwrap();
    assert!(!c.verbose && c.echo);
    let c = ConnectOptions::parse(br#"{"Verbose":true,"verbose":false}"#).unwrap();
    assert!(!c.verbose);
    for bad in [
        &b""[..],
        b"x",
        b"{",
        br#"{"verbose":"x"}"#,
        b"[]",
        b"1",
        br#"{"protocol":1.5}"#,
    ] {
        assert!(
            ConnectOptions::parse(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}
