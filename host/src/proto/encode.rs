//! Server → client encoders, writing into a [`BytesMut`]. Each reserves the
//! exact size first, so the only allocation is buffer growth.

use bytes::BytesMut;

pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";
pub const OK: &[u8] = b"+OK\r\n";

/// Appends the decimal digits of `n`.
#[inline]
pub fn write_usize(out: &mut BytesMut, n: usize) {
    let mut tmp = [0u8; 20]; // u64::MAX has 20 digits
    let mut i = tmp.len();
    let mut n = n as u64;
    loop {
        i -= 1;
        if let Some(slot) = tmp.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(tmp.get(i..).unwrap_or_default());
}

#[inline]
const fn digits(n: usize) -> usize {
    let mut d = 1;
    let mut n = n / 10;
    while n > 0 {
        d += 1;
        n /= 10;
    }
    d
}

/// `MSG <subject> <sid> [reply] <len>\r\n`
#[inline]
pub fn write_msg_header(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    payload_len: usize,
) {
    out.reserve(
        4 + subject.len()
            + 1
            + sid.len()
            + 1
            + reply.map_or(0, |r| r.len() + 1)
            + digits(payload_len)
            + 2,
    );
    out.extend_from_slice(b"MSG ");
    out.extend_from_slice(subject);
    out.extend_from_slice(b" ");
    out.extend_from_slice(sid);
    out.extend_from_slice(b" ");
    if let Some(r) = reply {
        out.extend_from_slice(r);
        out.extend_from_slice(b" ");
    }
    write_usize(out, payload_len);
    out.extend_from_slice(b"\r\n");
}

/// `HMSG <subject> <sid> [reply] <hdr_len> <total_len>\r\n`
#[inline]
pub fn write_hmsg_header(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    hdr_len: usize,
    total_len: usize,
) {
    out.reserve(
        5 + subject.len()
            + 1
            + sid.len()
            + 1
            + reply.map_or(0, |r| r.len() + 1)
            + digits(hdr_len)
            + 1
            + digits(total_len)
            + 2,
    );
    out.extend_from_slice(b"HMSG ");
    out.extend_from_slice(subject);
    out.extend_from_slice(b" ");
    out.extend_from_slice(sid);
    out.extend_from_slice(b" ");
    if let Some(r) = reply {
        out.extend_from_slice(r);
        out.extend_from_slice(b" ");
    }
    write_usize(out, hdr_len);
    out.extend_from_slice(b" ");
    write_usize(out, total_len);
    out.extend_from_slice(b"\r\n");
}

/// A whole `MSG`: header line, payload, `\r\n`.
#[inline]
pub fn write_msg(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    payload: &[u8],
) {
    out.reserve(payload.len() + 2);
    write_msg_header(out, subject, sid, reply, payload.len());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// A whole `HMSG`: header line, headers, payload, `\r\n`.
#[inline]
pub fn write_hmsg(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    headers: &[u8],
    payload: &[u8],
) {
    let total = headers.len() + payload.len();
    out.reserve(total + 2);
    write_hmsg_header(out, subject, sid, reply, headers.len(), total);
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// `-ERR '<text>'\r\n` — use the texts of [`super::errors`].
#[inline]
pub fn write_err(out: &mut BytesMut, text: &str) {
    out.reserve(text.len() + 9);
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"'\r\n");
}

/// `INFO <json> \r\n` — note the space before `\r\n`: nats-server v2.9.10
/// builds the line with `bytes.Join({"INFO", json, "\r\n"}, " ")`, and this
/// was verified on the wire (`..."client_ip":"127.0.0.1"} \r\n`).
#[inline]
pub fn write_info(out: &mut BytesMut, json: &[u8]) {
    out.reserve(json.len() + 8);
    out.extend_from_slice(b"INFO ");
    out.extend_from_slice(json);
    out.extend_from_slice(b" \r\n");
}
