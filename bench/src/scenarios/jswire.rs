//! Pure parsing of the JetStream shapes the consumer and KV scenarios check: ack subjects
//! (delivery metadata) and header blocks (status lines such as `100 FlowControl Request`, and
//! the `Nats-*` headers of heartbeats and direct gets). No I/O.
//!
//! ```text
//! ack subject v1:  $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>
//! ack subject v2:  $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<same five>[.<token>]
//! header block:    NATS/1.0[ <code>[ <text>]]\r\n(<Name>: <value>\r\n)*\r\n
//! ```

use crate::conn::parse_usize;

/// The delivery metadata in a consumed message's ack (reply) subject.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct AckMeta<'a> {
    pub(super) stream: &'a [u8],
    pub(super) consumer: &'a [u8],
    /// How many times this message has been delivered (1 = first delivery).
    pub(super) delivered: u64,
    pub(super) stream_seq: u64,
    pub(super) consumer_seq: u64,
}

impl<'a> AckMeta<'a> {
    /// Parses a v1 (9 tokens) or v2 (11 or 12 tokens) ack subject; `None` for anything else.
    pub(super) fn parse(ack: &'a [u8]) -> Option<Self> {
        let mut tokens = [&b""[..]; 12];
        let mut n = 0;
        for t in ack.split(|&b| b == b'.') {
            *tokens.get_mut(n)? = t;
            n += 1;
        }
        if tokens[0] != b"$JS" || tokens[1] != b"ACK" {
            return None;
        }
        // Where <stream> is: v1 has it right after `$JS.ACK`, v2 after domain and account.
        let at = match n {
            9 => 2,
            11 | 12 => 4,
            _ => return None,
        };
        let num = |t: &[u8]| parse_usize(t).map(|v| v as u64);
        Some(AckMeta {
            stream: tokens[at],
            consumer: tokens[at + 1],
            delivered: num(tokens[at + 2])?,
            stream_seq: num(tokens[at + 3])?,
            consumer_seq: num(tokens[at + 4])?,
        })
    }
}

/// A parsed header block: the status on the `NATS/1.0` line (if any) and the headers.
#[derive(Debug)]
pub(super) struct HeaderBlock<'a> {
    /// `Some((code, text))` for a status message, e.g. `(100, "Idle Heartbeat")`.
    pub(super) status: Option<(u16, &'a str)>,
    lines: &'a str,
}

impl<'a> HeaderBlock<'a> {
    /// `None` if the block does not start with `NATS/1.0` or is not UTF-8.
    pub(super) fn parse(block: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(block).ok()?;
        let (first, lines) = text.split_once("\r\n").unwrap_or((text, ""));
        let rest = first.strip_prefix("NATS/1.0")?;
        let status = match rest.trim() {
            "" => None,
            s => {
                let (code, text) = s.split_once(' ').unwrap_or((s, ""));
                Some((code.parse().ok()?, text.trim()))
            }
        };
        Some(HeaderBlock { status, lines })
    }

    /// The first value of header `name` (case-insensitive), trimmed.
    pub(super) fn get(&self, name: &str) -> Option<&'a str> {
        self.lines.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// Header `name` as a non-negative integer.
    pub(super) fn get_u64(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v1_and_v2_ack_subjects() {
        let want = AckMeta {
            stream: b"S",
            consumer: b"C",
            delivered: 1,
            stream_seq: 42,
            consumer_seq: 7,
        };
        assert_eq!(
            AckMeta::parse(b"$JS.ACK.S.C.1.42.7.1700000000.3"),
            Some(want)
        );
        let v2 = AckMeta::parse(b"$JS.ACK._.ACCHASH.S.C.2.42.7.1700000000.0")
            .map(|m| (m.stream, m.consumer, m.delivered, m.stream_seq));
        assert_eq!(v2, Some((&b"S"[..], &b"C"[..], 2, 42)));
        assert!(AckMeta::parse(b"$JS.ACK._.H.S.C.1.42.7.1700000000.0.tok").is_some());
        for bad in [
            &b"$JS.ACK.S.C.1.42"[..],
            b"_INBOX.x.1.42.7.1.3.4.5",
            b"$JS.ACK.S.C.1.x.7.1700000000.3",
            b"$JS.ACK.S.C.1.42.7.1700000000.3.a.b.c.d",
            b"",
        ] {
            assert_eq!(
                AckMeta::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn reads_status_lines_and_headers() {
        let fc = HeaderBlock::parse(b"NATS/1.0 100 FlowControl Request\r\n\r\n");
        assert_eq!(
            fc.map(|h| h.status),
            Some(Some((100, "FlowControl Request")))
        );

        let hb = HeaderBlock::parse(
            b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 12\r\nnats-last-stream: 40\r\n\r\n",
        );
        let hb = hb.map(|h| {
            (
                h.status,
                h.get_u64("Nats-Last-Consumer"),
                h.get_u64("Nats-Last-Stream"),
                h.get("Nats-Consumer-Stalled"),
            )
        });
        assert_eq!(
            hb,
            Some((Some((100, "Idle Heartbeat")), Some(12), Some(40), None))
        );

        let plain =
            HeaderBlock::parse(b"NATS/1.0\r\nNats-Sequence: 9\r\nNats-Subject: $KV.B.k1\r\n\r\n");
        let plain = plain.map(|h| (h.status, h.get_u64("nats-sequence"), h.get("Nats-Subject")));
        assert_eq!(plain, Some((None, Some(9), Some("$KV.B.k1"))));

        let nf = HeaderBlock::parse(b"NATS/1.0 404 Message Not Found\r\n\r\n");
        assert_eq!(nf.map(|h| h.status), Some(Some((404, "Message Not Found"))));
        let bare = HeaderBlock::parse(b"NATS/1.0 503\r\n\r\n");
        assert_eq!(bare.map(|h| h.status), Some(Some((503, ""))));

        assert!(HeaderBlock::parse(b"HTTP/1.1 200 OK\r\n\r\n").is_none());
        assert!(HeaderBlock::parse(b"NATS/1.0 abc\r\n\r\n").is_none());
    }
}
