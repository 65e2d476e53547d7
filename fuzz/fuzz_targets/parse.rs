//! Feeds arbitrary bytes to `natrium::proto::parse`, whole and split at an
//! arbitrary point, and checks that nothing panics and that the split parse
//! (a connection receiving two reads) agrees with the whole one.
//!
//! Input layout: byte 0 = split point (scaled to the data length), byte 1 =
//! max_control_line (small, to exercise the limit), byte 2 = max_payload;
//! the rest is the protocol stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natrium::proto::{parse, Limits, Parsed, ProtoError};

#[derive(Debug, PartialEq)]
struct Outcome {
    ops: Vec<String>,
    error: Option<ProtoError>,
    consumed: usize,
}

fn stream(chunks: &[&[u8]], limits: &Limits) -> Outcome {
    let mut pending: Vec<u8> = Vec::new();
    let mut out = Outcome { ops: Vec::new(), error: None, consumed: 0 };
    for chunk in chunks {
        pending.extend_from_slice(chunk);
        loop {
            match parse(&pending, limits) {
                Ok(Parsed::Op { op, consumed }) => {
                    assert!(consumed > 0 && consumed <= pending.len(), "bad consumed {consumed}");
                    out.ops.push(format!("{op:?}"));
                    out.consumed += consumed;
                    pending.drain(..consumed);
                }
                Ok(Parsed::Incomplete { need }) => {
                    if let Some(n) = need {
                        assert!(n > pending.len(), "need {n} <= buffered {}", pending.len());
                    }
                    break;
                }
                Err(e) => {
                    // Every error must map to a known client reaction.
                    let _ = e.client_error();
                    out.error = Some(e);
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let (head, data) = input.split_at(input.len().min(3));
    let byte = |i: usize| head.get(i).copied().unwrap_or(0) as usize;
    let split = if data.is_empty() { 0 } else { byte(0) * data.len() / 255 };
    let limits = match byte(1) {
        // Sometimes the real defaults.
        0 => Limits::default(),
        n => Limits { max_control_line: n, max_payload: byte(2) * 4 },
    };
    let whole = stream(&[data], &limits);
    let (a, b) = data.split_at(split.min(data.len()));
    let split_outcome = stream(&[a, b], &limits);
    assert_eq!(whole, split_outcome, "split at {split}");
    // One byte at a time must agree as well.
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(whole, stream(&bytes, &limits), "byte by byte");
});
