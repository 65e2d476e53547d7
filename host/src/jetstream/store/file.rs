//! The file store: per stream a directory of append-only segment files.
//!
//! Segments are named `<id, 20 digits>.seg` and hold records, little-endian:
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
//! Nothing but the segments is persisted: on open every segment is scanned in order to rebuild
//! the sequence index (seq → segment, offset, length) and the per-subject index. A bad record
//! (length out of range, truncated, or failing its checksum) in the newest segment is a torn
//! tail from a crash: it and everything after it are cut off with a warning, never served.
//! The same damage in an older segment is an error, since those were fsynced when they rolled.
//!
//! Full purges and limit removals append a purge marker; segments whose every record is at or
//! below the marker are then deleted whole (after the marker is fsynced).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::index::Index;
use super::{file_msg_size, StoreError, StoredMsg, StreamState, StreamStore, SubjectState};

const FLAG_TOMBSTONE: u64 = 1 << 62;
const FLAG_PURGE: u64 = 1 << 61;
const SEQ_MASK: u64 = FLAG_PURGE - 1;
/// len + seq + ts + subj_len + hdr_len.
const FIXED_LEN: usize = 4 + 8 + 8 + 2 + 4;
const CRC_LEN: usize = 4;
const MIN_RECORD: usize = FIXED_LEN + CRC_LEN;
/// Larger lengths are treated as garbage (nats-server's max_payload ceiling is 64 MiB).
const MAX_RECORD: usize = 64 << 20;
const SEGMENT_EXT: &str = "seg";
/// A segment being rewritten by compaction; a leftover one (crash mid-rewrite) is discarded.
const COMPACT_EXT: &str = "compact";

/// When appended records are fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync before `append` (and `delete`, `purge`) returns: safe against power loss.
    Always,
    /// fsync when at least this long has passed since the last one, checked on each write.
    /// Every record is still written with write(2) before returning, so kill -9 loses nothing.
    Interval(Duration),
}

/// File store settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStoreConfig {
    /// A segment rolls over once the next record would take it past this size.
    pub segment_size: u64,
    /// fsync policy.
    pub sync: SyncPolicy,
    /// 0: every record is written with write(2) before the call returns. Otherwise records
    /// collect in memory (readable at once) until [`StreamStore::flush`], or until this many
    /// bytes are pending: the caller then acknowledges a whole batch after one write.
    pub write_buffer: usize,
}

impl Default for FileStoreConfig {
    fn default() -> Self {
        Self {
            segment_size: 8 << 20,
            sync: SyncPolicy::Interval(Duration::from_secs(120)),
            write_buffer: 0,
        }
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush_pending() {
            tracing::error!("stream store: writing buffered records on close: {e}");
        }
    }
}

/// Where a live message's record is.
struct Loc {
    segment: u64,
    offset: u64,
    len: u32,
}

struct Segment {
    id: u64,
    path: PathBuf,
    file: File,
    /// Bytes of valid records; the next record is written here.
    size: u64,
    /// Highest sequence any record in the segment refers to.
    max_seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Msg,
    Tombstone,
    Purge,
}

struct Record<'a> {
    kind: Kind,
    seq: u64,
    ts: i64,
    subject: &'a str,
    headers: &'a [u8],
    payload: &'a [u8],
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn encode(
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

/// Decodes the record at the start of `buf`; returns it and its length.
fn decode(buf: &[u8]) -> Result<(Record<'_>, usize), &'static str> {
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
    let kind = if raw_seq & FLAG_TOMBSTONE != 0 {
        Kind::Tombstone
    } else if raw_seq & FLAG_PURGE != 0 {
        Kind::Purge
    } else {
        Kind::Msg
    };
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

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.{SEGMENT_EXT}"))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// A stream stored in a directory of segment files (`storage: file`).
pub struct FileStore {
    dir: PathBuf,
    cfg: FileStoreConfig,
    /// Ascending by id; the last one is the active segment. Never empty.
    segments: Vec<Segment>,
    index: Index<Loc>,
    last_sync: Instant,
    /// Records appended to the active segment but not yet written (see `write_buffer`);
    /// they belong at offset `flushed` of the active segment.
    pending: Vec<u8>,
    flushed: u64,
    /// Messages were removed since the last look for sparse segments.
    removed: bool,
}

impl FileStore {
    /// Opens (or creates) the store in `dir`, rebuilding the indexes by scanning the segments.
    pub fn open(dir: impl AsRef<Path>, cfg: FileStoreConfig) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = entry.map_err(io_err(&dir))?.path();
            if path.extension().and_then(|e| e.to_str()) == Some(COMPACT_EXT) {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some(SEGMENT_EXT) {
                continue;
            }
            if let Some(id) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut store = Self {
            dir,
            cfg,
            segments: Vec::with_capacity(ids.len().max(1)),
            index: Index::default(),
            last_sync: Instant::now(),
            pending: Vec::new(),
            flushed: 0,
            removed: true,
        };
        let count = ids.len();
        for (i, id) in ids.into_iter().enumerate() {
            store.load_segment(id, i + 1 == count)?;
        }
        if store.segments.is_empty() {
            store.new_segment(1)?;
        }
        store.flushed = store.active().size;
        Ok(store)
    }

    /// The directory holding the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn load_segment(&mut self, id: u64, newest: bool) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let data = fs::read(&path).map_err(io_err(&path))?;
        let mut offset = 0usize;
        let mut max_seq = 0u64;
        while offset < data.len() {
            let (rec, len) = match decode(&data[offset..]) {
                Ok(r) => r,
                Err(reason) => {
                    if !newest {
                        return Err(StoreError::Corrupt {
                            path,
                            offset: offset as u64,
                            seq: None,
                            reason,
                        });
                    }
                    tracing::warn!(
                        path = %path.display(),
                        offset,
                        cut = data.len() - offset,
                        reason,
                        "stream store: torn or corrupt tail record, truncating"
                    );
                    file.set_len(offset as u64).map_err(io_err(&path))?;
                    file.sync_all().map_err(io_err(&path))?;
                    break;
                }
            };
            max_seq = max_seq.max(rec.seq);
            match rec.kind {
                Kind::Msg => {
                    let size = file_msg_size(rec.subject, rec.headers, rec.payload);
                    let loc = Loc {
                        segment: id,
                        offset: offset as u64,
                        len: len as u32,
                    };
                    self.index.insert(rec.seq, rec.subject, size, loc);
                }
                Kind::Tombstone => {
                    self.index.remove(rec.seq);
                    self.index.bump_last_seq(rec.seq);
                }
                Kind::Purge => {
                    self.index.remove_through(rec.seq);
                }
            }
            offset += len;
        }
        self.segments.push(Segment {
            id,
            path,
            file,
            size: offset as u64,
            max_seq,
        });
        Ok(())
    }

    fn new_segment(&mut self, id: u64) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
        self.segments.push(Segment {
            id,
            path,
            file,
            size: 0,
            max_seq: 0,
        });
        Ok(())
    }

    fn active(&self) -> &Segment {
        // `segments` is never empty after `open`.
        &self.segments[self.segments.len() - 1]
    }

    /// Writes one encoded record to the active segment, rolling over first if it would not
    /// fit. Returns the segment id and offset.
    fn write_record(&mut self, rec: &[u8], seq: u64) -> Result<(u64, u64), StoreError> {
        let (size, id) = (self.active().size, self.active().id);
        if size > 0 && size + rec.len() as u64 > self.cfg.segment_size {
            // Older segments are always durable: damage there is an error, not a torn tail.
            self.sync()?;
            self.new_segment(id + 1)?;
            self.flushed = 0;
        }
        let buffered = self.cfg.write_buffer > 0;
        let last = self.segments.len() - 1;
        let seg = &mut self.segments[last];
        if buffered {
            self.pending.extend_from_slice(rec);
        } else {
            // On failure `size` is not advanced, so a partial write is overwritten by the next one.
            seg.file
                .write_all_at(rec, seg.size)
                .map_err(io_err(&seg.path))?;
            self.flushed = seg.size + rec.len() as u64;
        }
        let at = seg.size;
        seg.size += rec.len() as u64;
        seg.max_seq = seg.max_seq.max(seq);
        let out = (seg.id, at);
        if buffered && self.pending.len() >= self.cfg.write_buffer {
            self.flush_pending()?;
        }
        Ok(out)
    }

    /// Writes the buffered records of the active segment with one write(2).
    fn flush_pending(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let last = self.segments.len() - 1;
        let seg = &self.segments[last];
        // On failure nothing advances: the next flush rewrites the whole buffer at `flushed`.
        seg.file
            .write_all_at(&self.pending, self.flushed)
            .map_err(io_err(&seg.path))?;
        self.flushed += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn after_write(&mut self) -> Result<(), StoreError> {
        match self.cfg.sync {
            // Buffered: `flush` writes and fsyncs the whole batch (group commit).
            SyncPolicy::Always if self.cfg.write_buffer > 0 => Ok(()),
            SyncPolicy::Always => self.sync(),
            SyncPolicy::Interval(d) if self.last_sync.elapsed() >= d => self.sync(),
            SyncPolicy::Interval(_) => Ok(()),
        }
    }

    /// Appends a purge marker for `floor`, drops it from the index, then deletes the segments
    /// that hold nothing above it.
    fn purge_through(&mut self, floor: u64) -> Result<u64, StoreError> {
        let rec = encode(FLAG_PURGE | floor, 0, "", &[], &[])?;
        self.write_record(&rec, floor)?;
        let removed = self.index.remove_through(floor);
        self.removed = true;
        let active_id = self.active().id;
        let dead = self
            .segments
            .iter()
            .any(|s| s.id != active_id && s.max_seq <= floor);
        if dead {
            // The marker must be durable before the records it supersedes disappear.
            self.sync()?;
            let mut kept = Vec::with_capacity(self.segments.len());
            for seg in self.segments.drain(..) {
                if seg.id != active_id && seg.max_seq <= floor {
                    fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
                } else {
                    kept.push(seg);
                }
            }
            self.segments = kept;
            sync_dir(&self.dir)?;
        } else {
            self.after_write()?;
        }
        Ok(removed)
    }

    fn read_msg(&self, seq: u64, loc: &Loc) -> Result<StoredMsg, StoreError> {
        let seg = self
            .segments
            .binary_search_by_key(&loc.segment, |s| s.id)
            .ok()
            .and_then(|i| self.segments.get(i))
            .ok_or_else(|| StoreError::Corrupt {
                path: segment_path(&self.dir, loc.segment),
                offset: loc.offset,
                seq: Some(seq),
                reason: "indexed segment is missing",
            })?;
        let mut buf = vec![0u8; loc.len as usize];
        let active = seg.id == self.active().id;
        if active && loc.offset >= self.flushed {
            let at = (loc.offset - self.flushed) as usize;
            let bytes =
                self.pending
                    .get(at..at + buf.len())
                    .ok_or_else(|| StoreError::Corrupt {
                        path: seg.path.clone(),
                        offset: loc.offset,
                        seq: Some(seq),
                        reason: "indexed record is beyond the written data",
                    })?;
            buf.copy_from_slice(bytes);
        } else {
            seg.file
                .read_exact_at(&mut buf, loc.offset)
                .map_err(io_err(&seg.path))?;
        }
        let corrupt = |reason| StoreError::Corrupt {
            path: seg.path.clone(),
            offset: loc.offset,
            seq: Some(seq),
            reason,
        };
        let (rec, _) = decode(&buf).map_err(corrupt)?;
        if rec.kind != Kind::Msg || rec.seq != seq {
            return Err(corrupt("index points at a different record"));
        }
        Ok(StoredMsg {
            seq,
            subject: rec.subject.to_owned(),
            headers: rec.headers.to_vec(),
            payload: rec.payload.to_vec(),
            timestamp_ns: rec.ts,
        })
    }

    /// Rewrites every older segment whose live messages take less than half of it, keeping
    /// its live messages and all its tombstones and purge markers (they may concern messages
    /// in older segments). Each rewrite goes to a temporary file that is fsynced and renamed
    /// over the segment, so a crash leaves either the old or the new segment.
    pub fn compact_sparse(&mut self) -> Result<usize, StoreError> {
        if !std::mem::take(&mut self.removed) {
            return Ok(0);
        }
        let active = self.active().id;
        let mut live: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
        for loc in self.index.values() {
            *live.entry(loc.segment).or_default() += u64::from(loc.len);
        }
        let sparse: Vec<u64> = self
            .segments
            .iter()
            .filter(|s| s.id != active && s.size > 0)
            .filter(|s| live.get(&s.id).copied().unwrap_or(0) * 2 < s.size)
            .map(|s| s.id)
            .collect();
        for &id in &sparse {
            self.rewrite_segment(id)?;
        }
        Ok(sparse.len())
    }

    fn rewrite_segment(&mut self, id: u64) -> Result<(), StoreError> {
        let Ok(i) = self.segments.binary_search_by_key(&id, |s| s.id) else {
            return Ok(());
        };
        let path = self.segments[i].path.clone();
        let data = fs::read(&path).map_err(io_err(&path))?;
        let mut out = Vec::with_capacity(data.len() / 2);
        let mut moves = Vec::new();
        let mut off = 0usize;
        while off < data.len() {
            let (rec, len) = decode(&data[off..]).map_err(|reason| StoreError::Corrupt {
                path: path.clone(),
                offset: off as u64,
                seq: None,
                reason,
            })?;
            let keep = match rec.kind {
                Kind::Msg => self
                    .index
                    .get(rec.seq)
                    .is_some_and(|l| l.segment == id && l.offset == off as u64),
                Kind::Tombstone | Kind::Purge => true,
            };
            if keep {
                if rec.kind == Kind::Msg {
                    moves.push((rec.seq, out.len() as u64));
                }
                out.extend_from_slice(&data[off..off + len]);
            }
            off += len;
        }
        let tmp = path.with_extension(COMPACT_EXT);
        {
            let f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all_at(&out, 0).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let seg = &mut self.segments[i];
        seg.file = file;
        seg.size = out.len() as u64;
        for (seq, offset) in moves {
            if let Some(loc) = self.index.get_mut(seq) {
                loc.offset = offset;
            }
        }
        tracing::debug!(
            path = %path.display(),
            before = data.len(),
            after = out.len(),
            "stream store: compacted a sparse segment"
        );
        Ok(())
    }

    /// Number of segment files (for tests and monitoring).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

impl StreamStore for FileStore {
    fn msg_size(&self, subject: &str, headers: &[u8], payload: &[u8]) -> u64 {
        file_msg_size(subject, headers, payload)
    }

    fn append(
        &mut self,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        timestamp_ns: i64,
    ) -> Result<u64, StoreError> {
        let seq = self.index.last_seq() + 1;
        if seq > SEQ_MASK {
            return Err(StoreError::SeqOverflow { seq: seq - 1 });
        }
        let rec = encode(seq, timestamp_ns, subject, headers, payload)?;
        let (segment, offset) = self.write_record(&rec, seq)?;
        let loc = Loc {
            segment,
            offset,
            len: rec.len() as u32,
        };
        self.index
            .insert(seq, subject, file_msg_size(subject, headers, payload), loc);
        self.after_write()?;
        Ok(seq)
    }

    fn get(&self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        match self.index.get(seq) {
            Some(loc) => self.read_msg(seq, loc).map(Some),
            None => Ok(None),
        }
    }

    fn last_for_subject(&self, subject: &str) -> Result<Option<StoredMsg>, StoreError> {
        match self.index.last_for_subject(subject) {
            Some(seq) => self.get(seq),
            None => Ok(None),
        }
    }

    fn delete(&mut self, seq: u64) -> Result<bool, StoreError> {
        if self.index.get(seq).is_none() {
            return Ok(false);
        }
        let rec = encode(FLAG_TOMBSTONE | seq, 0, "", &[], &[])?;
        self.write_record(&rec, seq)?;
        self.index.remove(seq);
        self.removed = true;
        self.after_write()?;
        Ok(true)
    }

    fn purge(&mut self) -> Result<u64, StoreError> {
        if self.index.first_seq().is_none() {
            return Ok(0);
        }
        let last = self.index.last_seq();
        self.purge_through(last)
    }

    fn purge_subject(&mut self, filter: &str) -> Result<u64, StoreError> {
        let seqs = self.index.matching(filter);
        for &seq in &seqs {
            let rec = encode(FLAG_TOMBSTONE | seq, 0, "", &[], &[])?;
            self.write_record(&rec, seq)?;
            self.index.remove(seq);
        }
        if !seqs.is_empty() {
            self.removed = true;
            self.after_write()?;
        }
        Ok(seqs.len() as u64)
    }

    fn state(&self) -> StreamState {
        self.index.state()
    }

    fn subject_state(&self, subject: &str) -> SubjectState {
        self.index.subject_state(subject)
    }

    fn matching(&self, filter: &str) -> Vec<u64> {
        self.index.matching(filter)
    }

    fn next_matching(&self, from: u64, filter: &str) -> Option<u64> {
        self.index.next_matching(from, filter)
    }

    fn first_for_subject(&self, subject: &str) -> Option<u64> {
        self.index.first_for_subject(subject)
    }

    fn subject_counts(&self, filter: &str) -> Vec<(String, u64)> {
        self.index.subject_counts(filter)
    }

    fn deleted(&self) -> Vec<u64> {
        self.index.deleted()
    }

    fn compact(&mut self, seq: u64) -> Result<u64, StoreError> {
        if seq <= 1 {
            return Ok(0);
        }
        self.purge_through(seq - 1)
    }

    fn maintain(&mut self) -> Result<(), StoreError> {
        self.flush_pending()?;
        self.compact_sparse().map(|_| ())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.cfg.sync == SyncPolicy::Always {
            return self.sync();
        }
        self.flush_pending()
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.flush_pending()?;
        let seg = self.active();
        seg.file.sync_data().map_err(io_err(&seg.path))?;
        self.last_sync = Instant::now();
        Ok(())
    }

    fn remove_first(&mut self) -> Result<Option<u64>, StoreError> {
        let Some(first) = self.index.first_seq() else {
            return Ok(None);
        };
        self.purge_through(first)?;
        Ok(Some(first))
    }
}

#[cfg(test)]
mod tests;
