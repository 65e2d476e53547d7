//! The segment record codec, and the scanner that reads a segment back, stepping over damage.
//!
//! ```text
//! +---------+---------+--------+-------------+-------------+---------+---------+---------+---------+
//! | len u32 | seq u64 | ts i64 | subj_len u16| hdr_len u32 | subject | headers | payload | crc u32 |
//! +---------+---------+--------+-------------+-------------+---------+---------+---------+---------+
//!   len = whole record, len field and crc included; crc = CRC-32 of every byte before it.
//!   seq bit 62 = tombstone (the message `seq & MASK` was deleted by a user),
//!   seq bit 61 = purge marker (every message up to `seq & MASK` is gone).
//! ```
//!
//! The length and checksum frame every record, so a scan that meets a bad one can look for the
//! next good one byte by byte (there is no magic number: the format predates recovery and is
//! kept as it is). A candidate must pass cheap checks first — a length that fits, valid flags,
//! a sequence in a plausible range, field lengths inside the record, a message sequence above
//! the last one seen — and only then its checksum, so a damaged region costs a few compares
//! per byte. Every record in the log was written whole by the store, so a candidate that
//! passes all of that is taken as the real next record.

const FLAG_ERASED: u64 = 1 << 63;
pub(super) const FLAG_TOMBSTONE: u64 = 1 << 62;
pub(super) const FLAG_PURGE: u64 = 1 << 61;
pub(super) const SEQ_MASK: u64 = FLAG_PURGE - 1;
/// len + seq + ts + subj_len + hdr_len.
const FIXED_LEN: usize = 4 + 8 + 8 + 2 + 4;
const CRC_LEN: usize = 4;
pub(super) const MIN_RECORD: usize = FIXED_LEN + CRC_LEN;
/// Larger lengths are treated as garbage (nats-server's max_payload ceiling is 64 MiB).
const MAX_RECORD: usize = 64 << 20;
/// While resynchronising, a sequence more than this far above the highest one seen is taken
/// for garbage (a stream would need 2^40 messages, or a `first_seq` that far out, to trip it).
const MAX_SEQ_JUMP: u64 = 1 << 40;

use super::super::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Msg,
    Tombstone,
    Purge,
}

pub(super) struct Record<'a> {
    pub kind: Kind,
    pub seq: u64,
    pub ts: i64,
    pub subject: &'a str,
    pub headers: &'a [u8],
    pub payload: &'a [u8],
}

pub(super) fn encode(
    raw_seq: u64,
    ts: i64,
    subject: &str,
    headers: &[u8],
    payload: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let subj_len = u16::try_from(subject.len()).map_err(|_| StoreError::TooLarge {
        what: "subject",
        len: subject.len(),
    })?;
    let hdr_len = u32::try_from(headers.len()).map_err(|_| StoreError::TooLarge {
        what: "headers",
        len: headers.len(),
    })?;
    let total = MIN_RECORD + subject.len() + headers.len() + payload.len();
    if total > MAX_RECORD {
        return Err(StoreError::TooLarge {
            what: "record",
            len: total,
        });
    }
    let mut buf = Vec::with_capacity(total);
    buf.extend_from_slice(&(total as u32).to_le_bytes());
    buf.extend_from_slice(&raw_seq.to_le_bytes());
    buf.extend_from_slice(&ts.to_le_bytes());
    buf.extend_from_slice(&subj_len.to_le_bytes());
    buf.extend_from_slice(&hdr_len.to_le_bytes());
    buf.extend_from_slice(subject.as_bytes());
    buf.extend_from_slice(headers);
    buf.extend_from_slice(payload);
    let crc = crc32fast::hash(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn kind_of(raw_seq: u64) -> Option<Kind> {
    let tomb = raw_seq & FLAG_TOMBSTONE != 0;
    let purge = raw_seq & FLAG_PURGE != 0;
    match (raw_seq & FLAG_ERASED != 0, tomb, purge) {
        (false, false, false) => Some(Kind::Msg),
        (false, true, false) => Some(Kind::Tombstone),
        (false, false, true) => Some(Kind::Purge),
        _ => None,
    }
}

/// Decodes the record at the start of `buf`; returns it and its length.
pub(super) fn decode(buf: &[u8]) -> Result<(Record<'_>, usize), &'static str> {
    if buf.len() < 4 {
        return Err("truncated length");
    }
    let len = le_u32(buf, 0) as usize;
    if !(MIN_RECORD..=MAX_RECORD).contains(&len) {
        return Err("bad length");
    }
    if buf.len() < len {
        return Err("truncated record");
    }
    let body = &buf[..len - CRC_LEN];
    if crc32fast::hash(body) != le_u32(buf, len - CRC_LEN) {
        return Err("checksum mismatch");
    }
    let raw_seq = le_u64(body, 4);
    let ts = le_u64(body, 12) as i64;
    let subj_len = le_u16(body, 20) as usize;
    let hdr_len = le_u32(body, 22) as usize;
    if FIXED_LEN + subj_len + hdr_len > body.len() {
        return Err("field lengths overflow the record");
    }
    let subject = std::str::from_utf8(&body[FIXED_LEN..FIXED_LEN + subj_len])
        .map_err(|_| "subject is not UTF-8")?;
    let headers = &body[FIXED_LEN + subj_len..FIXED_LEN + subj_len + hdr_len];
    let payload = &body[FIXED_LEN + subj_len + hdr_len..];
    let kind = kind_of(raw_seq).ok_or("invalid sequence flags")?;
    let rec = Record {
        kind,
        seq: raw_seq & SEQ_MASK,
        ts,
        subject,
        headers,
        payload,
    };
    Ok((rec, len))
}

/// The header at the start of `buf`, if it looks like one a record could start with: its
/// length fits in `buf`, its flags are valid, its fields fit in it, and its sequence is plausible
/// after `last_msg` (the highest message sequence before it) and at most `max_seq`.
/// Returns the kind, sequence and length; the checksum is not looked at.
fn plausible(buf: &[u8], last_msg: u64, max_seq: u64) -> Option<(Kind, u64, usize)> {
    if buf.len() < MIN_RECORD {
        return None;
    }
    let len = le_u32(buf, 0) as usize;
    if !(MIN_RECORD..=MAX_RECORD.min(buf.len())).contains(&len) {
        return None;
    }
    let raw_seq = le_u64(buf, 4);
    let kind = kind_of(raw_seq)?;
    let seq = raw_seq & SEQ_MASK;
    if seq > max_seq || (kind == Kind::Msg && seq <= last_msg) {
        return None;
    }
    let fields = le_u16(buf, 20) as usize + le_u32(buf, 22) as usize;
    if FIXED_LEN + fields > len - CRC_LEN {
        return None;
    }
    Some((kind, seq, len))
}

/// One step of a [`Scan`].
pub(super) enum Item<'a> {
    /// A good record at `offset`, `len` bytes long.
    Record {
        offset: usize,
        len: usize,
        rec: Record<'a>,
    },
    /// `len` bytes at `offset` hold no good record (the next good one, if any, follows).
    Damage {
        offset: usize,
        len: usize,
        reason: &'static str,
        /// Message sequences read from headers in the region that still look sound (a damaged
        /// payload leaves its record's header readable): messages that were there.
        seqs: Vec<u64>,
    },
}

/// Reads the records of one segment in order, reporting damaged regions instead of stopping.
pub(super) struct Scan<'a> {
    data: &'a [u8],
    offset: usize,
    /// Highest message sequence seen so far (message sequences only ever grow in the log).
    last_msg: u64,
    /// Highest sequence of any record seen so far.
    top: u64,
}

impl<'a> Scan<'a> {
    /// Starts at the beginning of `data`; `last_msg` and `top` carry over from the segments
    /// before (0 for the first).
    pub fn new(data: &'a [u8], last_msg: u64, top: u64) -> Self {
        Scan {
            data,
            offset: 0,
            last_msg,
            top,
        }
    }

    /// Highest message sequence seen, including those of earlier segments.
    pub fn last_msg(&self) -> u64 {
        self.last_msg
    }

    /// Highest sequence of any record seen, including those of earlier segments.
    pub fn top(&self) -> u64 {
        self.top
    }

    fn note(&mut self, kind: Kind, seq: u64) {
        if kind == Kind::Msg {
            self.last_msg = self.last_msg.max(seq);
        }
        self.top = self.top.max(seq);
    }

    /// The offset of the next good record at or after `from`, or the end of the data.
    fn resync(&self, from: usize) -> usize {
        let mut at = from;
        let max_seq = self.top.saturating_add(MAX_SEQ_JUMP);
        while at < self.data.len() {
            let rest = &self.data[at..];
            if plausible(rest, self.last_msg, max_seq).is_some() && decode(rest).is_ok() {
                return at;
            }
            at += 1;
        }
        self.data.len()
    }

    /// Message sequences in the headers of `region` that still look sound, walking from its
    /// start for as long as the lengths lead somewhere inside it. Without a checksum to
    /// vouch for them, only sequences that the region could hold are believed: no higher than
    /// one per minimal record after the highest sequence seen.
    fn readable_seqs(&self, region: &[u8]) -> Vec<u64> {
        let mut seqs = Vec::new();
        let max_seq = self.top.max(self.last_msg) + (region.len() / MIN_RECORD) as u64;
        let (mut at, mut last) = (0, self.last_msg);
        while let Some((kind, seq, len)) = plausible(&region[at..], last, max_seq) {
            if kind == Kind::Msg {
                seqs.push(seq);
                last = seq;
            }
            at += len;
        }
        seqs
    }
}

impl<'a> Iterator for Scan<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        let offset = self.offset;
        if offset >= self.data.len() {
            return None;
        }
        match decode(&self.data[offset..]) {
            Ok((rec, len)) => {
                self.offset += len;
                self.note(rec.kind, rec.seq);
                Some(Item::Record { offset, len, rec })
            }
            Err(reason) => {
                let end = self.resync(offset + 1);
                let seqs = self.readable_seqs(&self.data[offset..end]);
                if let Some(&max) = seqs.last() {
                    self.note(Kind::Msg, max);
                }
                self.offset = end;
                Some(Item::Damage {
                    offset,
                    len: end - offset,
                    reason,
                    seqs,
                })
            }
        }
    }
}
