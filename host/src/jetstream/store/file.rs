//! The file store: per stream a directory of append-only segment files.
//!
//! Segments are named `<id, 20 digits>.seg` and hold length-framed, CRC-checked records (the
//! format is drawn in `file/record.rs`). Nothing but the segments is persisted: on open every
//! segment is scanned in order to rebuild the sequence index (seq → segment, offset, length)
//! and the per-subject index.
//!
//! **Damage.** A record that fails its length or checksum check is skipped, with the rest of
//! its damaged region, and the scan picks up at the next good record (`record::Scan`), in
//! whichever segment it is: one bad byte costs the records it touches, not the segment. The
//! messages lost are logged and reported by [`FileStore::lost`] (stream info's `state.lost`,
//! as in nats-server); the stream opens all the same and new messages follow the highest
//! sequence seen. A damaged region at the very end of the newest segment (a torn write) is cut
//! off; elsewhere damaged bytes stay until compaction rewrites the segment.
//!
//! **Commits.** Changes are grouped into commits. Without a write buffer every operation is
//! its own; with one, [`StreamStore::flush`] commits everything since the last flush (the
//! caller acknowledges a batch after it). A commit writes the buffered records, fsyncs as the
//! [`SyncPolicy`] asks, and only then deletes the segments a purge emptied. If any write or
//! fsync fails, the store returns to its last commit — the index changes are undone, the
//! segment files are cut back, segments created since are deleted — so an operation is either
//! stored and reported done, or reported failed and gone (its sequence is used again).
//! [`StreamStore::write_mark`] and [`StreamStore::is_durable`] tell a caller which of the two
//! happened to an operation of a batch, whoever's flush decided it.
//!
//! Full purges and limit removals append a purge marker; segments whose every record is at or
//! below the marker are then deleted whole (at the commit, after the marker is fsynced).

mod record;

use bytes::Bytes;
use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::ops::RangeInclusive;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::index::{Entry, Index};
use super::{
    file_msg_size, LostData, StoreError, StoredMsg, StreamState, StreamStore, SubjectState,
};
use record::{decode, encode, Item, Kind, Scan, FLAG_PURGE, FLAG_TOMBSTONE, SEQ_MASK};

const SEGMENT_EXT: &str = "seg";
/// A segment being rewritten by compaction; a leftover one (crash mid-rewrite) is discarded.
const COMPACT_EXT: &str = "compact";
/// How many rolled-back ranges of write marks are remembered for [`StreamStore::is_durable`]
/// (a caller asks within the batch that wrote, a few commits later at most).
const DISCARDED_KEPT: usize = 1024;
/// Lost sequences named in the log line, at most.
const LOST_LOGGED: usize = 32;

/// When appended records are fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync before a commit completes: safe against power loss.
    Always,
    /// fsync at a commit when at least this long has passed since the last one.
    /// Every record is still written with write(2) before the commit, so kill -9 loses nothing.
    Interval(Duration),
}

/// File store settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStoreConfig {
    /// A segment rolls over once the next record would take it past this size.
    pub segment_size: u64,
    /// fsync policy.
    pub sync: SyncPolicy,
    /// 0: every operation is written (and committed) before the call returns. Otherwise
    /// records collect in memory (readable at once) until [`StreamStore::flush`] commits them,
    /// or are written early once this many bytes are pending (still uncommitted).
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
    /// Bytes of records (and of damage kept in place); the next record is written here.
    size: u64,
    /// Highest sequence any record in the segment refers to.
    max_seq: u64,
}

/// An index change since the last commit, undone by a rollback.
enum Undo {
    Inserted(u64),
    Removed(u64, Entry<Loc>),
}

/// The store as of the last commit; a failed write returns it here.
#[derive(Clone, Copy)]
struct Checkpoint {
    /// Number of segments (later ones were created since).
    segments: usize,
    /// Size and highest sequence of the last of them.
    size: u64,
    max_seq: u64,
    last_seq: u64,
}

/// What the scan of all segments gathers on open.
#[derive(Default)]
struct Recovery {
    /// Highest message sequence, and highest sequence of any record, seen so far.
    last_msg: u64,
    top: u64,
    /// The highest purge marker's sequence.
    floor: u64,
    /// Sequences deleted by tombstones.
    tombstones: HashSet<u64>,
    /// Bytes of damaged regions, and message sequences read from their headers.
    damaged: u64,
    readable: Vec<u64>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.{SEGMENT_EXT}"))
}

/// Writes `buf` at `offset` of `seg`; past `limit` (tests only) the write fails part-way.
fn write_at(seg: &Segment, buf: &[u8], offset: u64, limit: Option<u64>) -> Result<(), StoreError> {
    if let Some(limit) = limit.filter(|l| offset + buf.len() as u64 > *l) {
        let fits = limit.saturating_sub(offset).min(buf.len() as u64) as usize;
        let efbig = std::io::Error::from_raw_os_error(libc::EFBIG);
        return seg
            .file
            .write_all_at(&buf[..fits], offset)
            .and(Err(efbig))
            .map_err(io_err(&seg.path));
    }
    seg.file
        .write_all_at(buf, offset)
        .map_err(io_err(&seg.path))
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
    /// The last commit, and the index changes since, oldest first.
    checkpoint: Checkpoint,
    undo: Vec<Undo>,
    /// Segments a purge left with nothing live, deleted at the next commit.
    doomed: Vec<u64>,
    /// Something changed since the last commit.
    dirty: bool,
    /// Write marks: operations so far; the last one committed or rolled back; the ranges
    /// rolled back (newest last, at most [`DISCARDED_KEPT`]).
    ops: u64,
    decided: u64,
    discarded: VecDeque<RangeInclusive<u64>>,
    /// Messages found damaged when the store was opened.
    lost: Option<LostData>,
    /// Tests: writes past this offset of a segment fail with EFBIG after writing what fits,
    /// as under `RLIMIT_FSIZE` (a full disk, deterministically).
    file_limit: Option<u64>,
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
            checkpoint: Checkpoint {
                segments: 0,
                size: 0,
                max_seq: 0,
                last_seq: 0,
            },
            undo: Vec::new(),
            doomed: Vec::new(),
            dirty: false,
            ops: 0,
            decided: 0,
            discarded: VecDeque::new(),
            lost: None,
            file_limit: None,
        };
        let count = ids.len();
        let mut recovery = Recovery::default();
        for (i, id) in ids.into_iter().enumerate() {
            store.load_segment(id, i + 1 == count, &mut recovery)?;
        }
        if store.segments.is_empty() {
            store.new_segment(1)?;
        }
        if recovery.damaged > 0 {
            store.account_loss(recovery);
        }
        store.flushed = store.active().size;
        store.checkpoint = store.current();
        Ok(store)
    }

    /// The directory holding the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn load_segment(&mut self, id: u64, newest: bool, rc: &mut Recovery) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let data = fs::read(&path).map_err(io_err(&path))?;
        let mut size = data.len() as u64;
        let mut max_seq = 0u64;
        let mut scan = Scan::new(&data, rc.last_msg, rc.top);
        for item in scan.by_ref() {
            match item {
                Item::Record { offset, len, rec } => {
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
                            rc.tombstones.insert(rec.seq);
                        }
                        Kind::Purge => {
                            self.index.remove_through(rec.seq);
                            rc.floor = rc.floor.max(rec.seq);
                        }
                    }
                }
                Item::Damage {
                    offset,
                    len,
                    reason,
                    seqs,
                } => {
                    rc.damaged += len as u64;
                    let tail = newest && offset + len == data.len();
                    tracing::warn!(
                        path = %path.display(),
                        offset,
                        len,
                        reason,
                        "stream store: skipping a damaged region{}",
                        if tail { " at the end of the newest segment, cutting it off" } else { "" }
                    );
                    if let Some(&top) = seqs.last() {
                        max_seq = max_seq.max(top);
                    }
                    rc.readable.extend(seqs);
                    if tail {
                        file.set_len(offset as u64).map_err(io_err(&path))?;
                        file.sync_all().map_err(io_err(&path))?;
                        size = offset as u64;
                    }
                }
            }
        }
        rc.last_msg = scan.last_msg();
        rc.top = scan.top();
        self.segments.push(Segment {
            id,
            path,
            file,
            size,
            max_seq,
        });
        Ok(())
    }

    /// Works out, after a scan that met damage, which messages are gone: those whose headers
    /// were still readable, and every sequence above the last purge that is neither live nor
    /// deleted by a tombstone (limit removals and purges leave markers, user deletes leave
    /// tombstones, so nothing else makes a gap). New messages follow the highest of them.
    fn account_loss(&mut self, rc: Recovery) {
        if let Some(&top) = rc.readable.iter().max() {
            self.index.bump_last_seq(top);
        }
        let last = self.index.last_seq();
        let mut msgs: Vec<u64> = (rc.floor + 1..=last)
            .filter(|s| !self.index.contains(*s) && !rc.tombstones.contains(s))
            .collect();
        msgs.extend(
            rc.readable
                .iter()
                .filter(|s| **s > rc.floor && !self.index.contains(**s)),
        );
        msgs.sort_unstable();
        msgs.dedup();
        let shown: Vec<u64> = msgs.iter().take(LOST_LOGGED).copied().collect();
        tracing::error!(
            dir = %self.dir.display(),
            lost = msgs.len(),
            bytes = rc.damaged,
            "stream store: damaged records skipped on recovery; lost message sequences {shown:?}{}",
            if msgs.len() > LOST_LOGGED { " …" } else { "" }
        );
        self.lost = Some(LostData {
            msgs,
            bytes: rc.damaged,
        });
    }

    fn current(&self) -> Checkpoint {
        let seg = self.active();
        Checkpoint {
            segments: self.segments.len(),
            size: seg.size,
            max_seq: seg.max_seq,
            last_seq: self.index.last_seq(),
        }
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

    /// Runs one mutating operation: committed at once without a write buffer; on failure
    /// the store returns to its last commit.
    fn transact<T>(
        &mut self,
        op: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.ops += 1;
        self.dirty = true;
        match op(self) {
            Ok(v) if self.cfg.write_buffer == 0 => self.commit().map(|()| v),
            Ok(v) => Ok(v),
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// Makes everything since the last commit durable (as the sync policy asks), then deletes
    /// the segments purges emptied. On failure, rolls back to the last commit.
    fn commit(&mut self) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        let written = self.flush_pending().and_then(|()| {
            let due = match self.cfg.sync {
                SyncPolicy::Always => true,
                SyncPolicy::Interval(d) => self.last_sync.elapsed() >= d,
            };
            // The purge marker must be durable before the records it supersedes disappear.
            if due || !self.doomed.is_empty() {
                self.fsync_active()?;
            }
            Ok(())
        });
        if let Err(e) = written {
            self.rollback();
            return Err(e);
        }
        self.delete_doomed();
        self.undo.clear();
        self.decided = self.ops;
        self.dirty = false;
        self.checkpoint = self.current();
        Ok(())
    }

    /// Returns the store to its last commit: the changes since are undone in memory and on
    /// disk, and their write marks will never be durable.
    fn rollback(&mut self) {
        if !self.dirty {
            return;
        }
        if self.ops > self.decided {
            if self.discarded.len() == DISCARDED_KEPT {
                self.discarded.pop_front();
            }
            self.discarded.push_back(self.decided + 1..=self.ops);
        }
        self.decided = self.ops;
        for undo in std::mem::take(&mut self.undo).into_iter().rev() {
            match undo {
                Undo::Inserted(seq) => {
                    self.index.remove(seq);
                }
                Undo::Removed(seq, entry) => self.index.restore(seq, entry),
            }
        }
        let cp = self.checkpoint;
        self.index.set_last_seq(cp.last_seq);
        self.pending.clear();
        self.doomed.clear();
        while self.segments.len() > cp.segments.max(1) {
            let Some(seg) = self.segments.pop() else {
                break;
            };
            drop(seg.file);
            if let Err(e) = fs::remove_file(&seg.path) {
                tracing::error!(path = %seg.path.display(), "stream store: removing a segment after a failed write: {e}");
            }
        }
        let last = self.segments.len() - 1;
        let seg = &mut self.segments[last];
        seg.size = cp.size;
        seg.max_seq = cp.max_seq;
        // Records written since the commit must not come back on the next open.
        if let Err(e) = seg.file.set_len(cp.size) {
            tracing::error!(path = %seg.path.display(), "stream store: cutting back a segment after a failed write: {e}");
        }
        self.flushed = cp.size;
        self.dirty = false;
        tracing::warn!(dir = %self.dir.display(), last_seq = cp.last_seq, "stream store: a write failed; changes since the last commit were undone");
    }

    fn delete_doomed(&mut self) {
        if self.doomed.is_empty() {
            return;
        }
        let doomed = std::mem::take(&mut self.doomed);
        let active = self.active().id;
        self.segments.retain(|seg| {
            if seg.id == active || !doomed.contains(&seg.id) {
                return true;
            }
            match fs::remove_file(&seg.path) {
                Ok(()) => false,
                Err(e) => {
                    // Harmless: its records are all below a durable purge marker.
                    tracing::error!(path = %seg.path.display(), "stream store: removing a purged segment: {e}");
                    true
                }
            }
        });
        if let Err(e) = sync_dir(&self.dir) {
            tracing::error!("stream store: {e}");
        }
    }

    fn fsync_active(&mut self) -> Result<(), StoreError> {
        let seg = self.active();
        seg.file.sync_data().map_err(io_err(&seg.path))?;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Writes one encoded record to the active segment, rolling over first if it would not
    /// fit. Returns the segment id and offset.
    fn write_record(&mut self, rec: &[u8], seq: u64) -> Result<(u64, u64), StoreError> {
        let (size, id) = (self.active().size, self.active().id);
        if size > 0 && size + rec.len() as u64 > self.cfg.segment_size {
            // Older segments are always written through and fsynced.
            self.flush_pending()?;
            self.fsync_active()?;
            self.new_segment(id + 1)?;
            self.flushed = 0;
        }
        let buffered = self.cfg.write_buffer > 0;
        let last = self.segments.len() - 1;
        let seg = &mut self.segments[last];
        if buffered {
            self.pending.extend_from_slice(rec);
        } else {
            write_at(seg, rec, seg.size, self.file_limit)?;
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
        write_at(seg, &self.pending, self.flushed, self.file_limit)?;
        self.flushed += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Removes `seq` from the index, remembering it for a rollback.
    fn unindex(&mut self, seq: u64) -> bool {
        match self.index.remove(seq) {
            Some(entry) => {
                self.undo.push(Undo::Removed(seq, entry));
                true
            }
            None => false,
        }
    }

    /// Appends a tombstone for `seq` and drops it from the index.
    fn tombstone(&mut self, seq: u64) -> Result<(), StoreError> {
        let rec = encode(FLAG_TOMBSTONE | seq, 0, "", &[], &[])?;
        self.write_record(&rec, seq)?;
        self.unindex(seq);
        self.removed = true;
        Ok(())
    }

    /// Appends a purge marker for `floor`, drops everything up to it from the index, and marks
    /// the segments that hold nothing above it for deletion at the commit.
    fn purge_through(&mut self, floor: u64) -> Result<u64, StoreError> {
        self.transact(|s| {
            let rec = encode(FLAG_PURGE | floor, 0, "", &[], &[])?;
            s.write_record(&rec, floor)?;
            let removed = s.index.drain_through(floor);
            let n = removed.len() as u64;
            s.undo
                .extend(removed.into_iter().map(|(seq, e)| Undo::Removed(seq, e)));
            s.removed = true;
            let active = s.active().id;
            for seg in &s.segments {
                if seg.id != active && seg.max_seq <= floor && !s.doomed.contains(&seg.id) {
                    s.doomed.push(seg.id);
                }
            }
            Ok(n)
        })
    }

    fn read_msg(&self, seq: u64, loc: &Loc) -> Result<StoredMsg, StoreError> {
        let mut buf = Vec::new();
        self.read_span(seq, loc, loc.len as usize, &mut buf)?;
        self.stored(seq, loc, &Bytes::from(buf))
    }

    /// Reads `len` bytes from where `loc` starts (the record of `seq`, and maybe the records
    /// after it) into `buf`: from the file, or from the write buffer if not yet written. The
    /// span must lie on one side of `flushed` (see [`Self::read_from`]).
    fn read_span(
        &self,
        seq: u64,
        loc: &Loc,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
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
        buf.clear();
        buf.resize(len, 0);
        let active = seg.id == self.active().id;
        if active && loc.offset >= self.flushed {
            let at = (loc.offset - self.flushed) as usize;
            let bytes = self
                .pending
                .get(at..at + len)
                .ok_or_else(|| StoreError::Corrupt {
                    path: seg.path.clone(),
                    offset: loc.offset,
                    seq: Some(seq),
                    reason: "indexed record is beyond the written data",
                })?;
            buf.copy_from_slice(bytes);
        } else {
            seg.file
                .read_exact_at(buf, loc.offset)
                .map_err(io_err(&seg.path))?;
        }
        Ok(())
    }

    /// The message of `seq` from its record's bytes (read from `loc`), checked. Headers and
    /// payload are slices of `bytes`, not copies.
    fn stored(&self, seq: u64, loc: &Loc, bytes: &Bytes) -> Result<StoredMsg, StoreError> {
        let corrupt = |reason| StoreError::Corrupt {
            path: segment_path(&self.dir, loc.segment),
            offset: loc.offset,
            seq: Some(seq),
            reason,
        };
        let (rec, used) = decode(bytes).map_err(corrupt)?;
        if rec.kind != Kind::Msg || rec.seq != seq || used != loc.len as usize {
            return Err(corrupt("index points at a different record"));
        }
        Ok(StoredMsg {
            seq,
            subject: rec.subject.to_owned(),
            headers: bytes.slice_ref(rec.headers),
            payload: bytes.slice_ref(rec.payload),
            timestamp_ns: rec.ts,
        })
    }

    /// Rewrites every older segment whose live messages take less than half of it, keeping
    /// its live messages and all its tombstones and purge markers (they may concern messages
    /// in older segments). Each rewrite goes to a temporary file that is fsynced and renamed
    /// over the segment, so a crash leaves either the old or the new segment.
    /// Damaged regions are dropped by the rewrite (their loss was reported on open). Nothing
    /// is rewritten while uncommitted changes exist: a rollback must find the segments as
    /// they were.
    pub fn compact_sparse(&mut self) -> Result<usize, StoreError> {
        if self.dirty || !std::mem::take(&mut self.removed) {
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
        for item in Scan::new(&data, 0, 0) {
            let Item::Record { offset, len, rec } = item else {
                continue;
            };
            let keep = match rec.kind {
                Kind::Msg => self
                    .index
                    .get(rec.seq)
                    .is_some_and(|l| l.segment == id && l.offset == offset as u64),
                Kind::Tombstone | Kind::Purge => true,
            };
            if keep {
                if rec.kind == Kind::Msg {
                    moves.push((rec.seq, out.len() as u64));
                }
                out.extend_from_slice(&data[offset..offset + len]);
            }
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

    /// Tests: makes writes past `limit` bytes of a segment fail (see `file_limit`).
    #[cfg(test)]
    fn limit_file_size(&mut self, limit: Option<u64>) {
        self.file_limit = limit;
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
        let size = file_msg_size(subject, headers, payload);
        self.transact(|s| {
            let (segment, offset) = s.write_record(&rec, seq)?;
            let loc = Loc {
                segment,
                offset,
                len: rec.len() as u32,
            };
            s.index.insert(seq, subject, size, loc);
            s.undo.push(Undo::Inserted(seq));
            Ok(seq)
        })
    }

    fn contains(&self, seq: u64) -> bool {
        self.index.contains(seq)
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
        if !self.index.contains(seq) {
            return Ok(false);
        }
        self.transact(|s| s.tombstone(seq).map(|()| true))
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
        if seqs.is_empty() {
            return Ok(0);
        }
        self.transact(|s| {
            for &seq in &seqs {
                s.tombstone(seq)?;
            }
            Ok(seqs.len() as u64)
        })
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

    /// Reads the records of consecutive messages that lie next to each other in a segment
    /// with one read: a consumer catching up reads its messages a run at a time, not a
    /// system call each.
    fn read_from(
        &self,
        from: u64,
        filter: &str,
        max_msgs: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredMsg>, StoreError> {
        // Runs of (seq, loc) whose records are adjacent on the same side of `flushed`.
        let mut runs: Vec<Vec<(u64, &Loc)>> = Vec::new();
        let mut total = 0;
        let active = self.active().id;
        for (seq, e) in self.index.iter_matching(from, filter).take(max_msgs) {
            if total >= max_bytes {
                break;
            }
            let loc = &e.val;
            total += loc.len as usize;
            let joins = runs.last().and_then(|r| r.last()).is_some_and(|(_, prev)| {
                prev.segment == loc.segment
                    && prev.offset + u64::from(prev.len) == loc.offset
                    && !(loc.segment == active && loc.offset == self.flushed)
            });
            match runs.last_mut() {
                Some(run) if joins => run.push((seq, loc)),
                _ => runs.push(vec![(seq, loc)]),
            }
        }
        let mut out = Vec::with_capacity(runs.iter().map(Vec::len).sum());
        for run in runs {
            let (first_seq, first) = run[0];
            let len = run.iter().map(|(_, l)| l.len as usize).sum();
            let mut buf = Vec::new();
            self.read_span(first_seq, first, len, &mut buf)?;
            // The run's messages share its buffer.
            let buf = Bytes::from(buf);
            let mut at = 0;
            for (seq, loc) in run {
                let end = at + loc.len as usize;
                out.push(self.stored(seq, loc, &buf.slice(at..end))?);
                at = end;
            }
        }
        Ok(out)
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

    fn lost(&self) -> Option<&LostData> {
        self.lost.as_ref()
    }

    fn compact(&mut self, seq: u64) -> Result<u64, StoreError> {
        if seq <= 1 {
            return Ok(0);
        }
        self.purge_through(seq - 1)
    }

    fn maintain(&mut self) -> Result<(), StoreError> {
        self.compact_sparse().map(|_| ())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.commit()
    }

    fn write_mark(&self) -> u64 {
        self.ops
    }

    fn is_durable(&self, mark: u64) -> bool {
        mark <= self.decided && !self.discarded.iter().any(|r| r.contains(&mark))
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        let written = self.flush_pending().and_then(|()| self.fsync_active());
        if written.is_err() {
            self.rollback();
        }
        written
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
