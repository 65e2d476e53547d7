//! Stream storage: the [`StreamStore`] trait and its two implementations,
//! [`MemoryStore`] and [`FileStore`].
//!
//! The store is pure and synchronous (no tokio): it assigns sequences, keeps the
//! sequence index and the per-subject index (message count and last sequence per subject,
//! needed for KV and `max_msgs_per_subject`), and answers lookups. Limits (max_msgs, max_age)
//! are enforced by the caller through [`StreamStore::remove_first`] and the helpers built on it.
//!
//! One contract test suite (`contract_tests!` below) runs against both implementations.

mod file;
mod index;
mod memory;

use bytes::Bytes;
use std::path::PathBuf;

pub use file::{FileStore, FileStoreConfig, SyncPolicy};
pub use memory::MemoryStore;

/// A message as stored in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMsg {
    /// Stream sequence, assigned by the store, starting at 1.
    pub seq: u64,
    /// The subject the message was published on.
    pub subject: String,
    /// Raw header block (`NATS/1.0\r\n…`), empty when the message has none.
    pub headers: Bytes,
    /// The message body. (`Bytes`: messages read together share one buffer.)
    pub payload: Bytes,
    /// Publish time, nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
}

/// Accounted size of a message in a memory store, as nats-server's memstore counts it
/// (subject + headers + payload + 16 bytes of sequence and timestamp).
pub fn memory_msg_size(subject: &str, headers: &[u8], payload: &[u8]) -> u64 {
    (subject.len() + headers.len() + payload.len() + 16) as u64
}

/// Accounted size of a message in a file store, as nats-server's filestore counts its record:
/// length (4) + sequence (8) + timestamp (8) + subject length (2) + subject, the header block
/// with its length (4) when there is one, the payload, and the hash (8). Clients compare
/// `state.bytes` with what nats-server reports, so this is its arithmetic, not our layout's.
pub fn file_msg_size(subject: &str, headers: &[u8], payload: &[u8]) -> u64 {
    let headers = if headers.is_empty() {
        0
    } else {
        4 + headers.len()
    };
    (22 + subject.len() + headers + payload.len() + 8) as u64
}

/// Totals of a stream, in the shape of nats-server's `StreamState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamState {
    /// Live messages.
    pub msgs: u64,
    /// Sum of [`StreamStore::msg_size`] over live messages.
    pub bytes: u64,
    /// First live sequence; `last_seq + 1` when the stream is empty.
    pub first_seq: u64,
    /// Highest sequence ever assigned (survives purge and deletes).
    pub last_seq: u64,
    /// Sequences between `first_seq` and `last_seq` that are gone (interior deletes).
    pub num_deleted: u64,
}

/// Per-subject totals: live message count and last live sequence (0 when none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubjectState {
    /// Live messages on the subject.
    pub msgs: u64,
    /// Last live sequence on the subject, 0 when there is none.
    pub last_seq: u64,
}

/// Messages a store found damaged and could not recover, in the shape of nats-server's
/// `LostStreamData` (`state.lost` in stream info).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LostData {
    /// Sequences of the lost messages, ascending.
    pub msgs: Vec<u64>,
    /// Bytes of the damaged regions they were in.
    pub bytes: u64,
}

/// Errors of the storage layer, with the file and sequence they concern.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O call failed.
    #[error("store I/O on {path}: {source}")]
    Io {
        /// The file or directory being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record the index points at failed its length or checksum check (damage that
    /// appeared after the store was opened).
    #[error("corrupt record in {path} at offset {offset} (seq {seq:?}): {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record in the segment.
        offset: u64,
        /// The sequence involved, when known.
        seq: Option<u64>,
        /// What was wrong.
        reason: &'static str,
    },
    /// A field does not fit the record format.
    #[error("message too large for the store: {what} is {len} bytes")]
    TooLarge {
        /// Which field overflowed (`subject`, `headers`, `record`).
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// The sequence space is exhausted (sequences must stay below 2^61).
    #[error("stream sequence space exhausted at seq {seq}")]
    SeqOverflow {
        /// The last sequence.
        seq: u64,
    },
}

/// Storage of one stream's messages.
///
/// Mutations take `&mut self`: the caller (the stream) owns its store and serializes access.
pub trait StreamStore {
    /// How this store accounts a message in `bytes` (and so against `max_bytes`).
    fn msg_size(&self, subject: &str, headers: &[u8], payload: &[u8]) -> u64;

    /// Appends a message and returns its sequence (last sequence + 1). With the file store the
    /// record has been written (and fsynced under [`SyncPolicy::Always`]) when this returns.
    fn append(
        &mut self,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        timestamp_ns: i64,
    ) -> Result<u64, StoreError>;

    /// The live message at `seq`, if any.
    fn get(&self, seq: u64) -> Result<Option<StoredMsg>, StoreError>;

    /// Whether a live message is at `seq` (without reading it).
    fn contains(&self, seq: u64) -> bool;

    /// The live message with the highest sequence on exactly `subject`.
    fn last_for_subject(&self, subject: &str) -> Result<Option<StoredMsg>, StoreError>;

    /// Deletes the message at `seq` (a user delete: a tombstone in the file store).
    /// Returns whether a live message was removed.
    fn delete(&mut self, seq: u64) -> Result<bool, StoreError>;

    /// Removes every message; sequences continue from the last one. Returns how many.
    fn purge(&mut self) -> Result<u64, StoreError>;

    /// Removes every message whose subject matches `filter` (wildcards allowed).
    /// Returns how many.
    fn purge_subject(&mut self, filter: &str) -> Result<u64, StoreError>;

    /// Totals of the stream.
    fn state(&self) -> StreamState;

    /// Totals for exactly `subject`.
    fn subject_state(&self, subject: &str) -> SubjectState;

    /// Live sequences whose subject matches `filter` (wildcards allowed), ascending.
    fn matching(&self, filter: &str) -> Vec<u64>;

    /// The first live sequence ≥ `from` on a subject matching `filter`.
    fn next_matching(&self, from: u64, filter: &str) -> Option<u64>;

    /// The live messages from `from` on whose subject matches `filter`, ascending: at most
    /// `max_msgs`, and no more once `max_bytes` of records are read (the first one always
    /// counts). One read for many messages, where a consumer would otherwise read them one
    /// at a time.
    fn read_from(
        &self,
        from: u64,
        filter: &str,
        max_msgs: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredMsg>, StoreError> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut next = from;
        while out.len() < max_msgs && bytes < max_bytes {
            let Some(seq) = self.next_matching(next, filter) else {
                break;
            };
            if let Some(m) = self.get(seq)? {
                bytes += m.subject.len() + m.headers.len() + m.payload.len();
                out.push(m);
            }
            next = seq + 1;
        }
        Ok(out)
    }

    /// The oldest live sequence on exactly `subject`.
    fn first_for_subject(&self, subject: &str) -> Option<u64>;

    /// Live message counts per subject matching `filter`.
    fn subject_counts(&self, filter: &str) -> Vec<(String, u64)>;

    /// Interior sequences that are gone (for `deleted_details`).
    fn deleted(&self) -> Vec<u64>;

    /// Removes every message below `seq` (a purge up to a sequence).
    /// Returns how many went.
    fn compact(&mut self, seq: u64) -> Result<u64, StoreError>;

    /// Commits buffered changes (see [`FileStoreConfig::write_buffer`]): writes them with
    /// write(2) (and fsyncs as the sync policy asks). After `Ok`, a crash of the process (not
    /// of the machine) loses nothing done before; after `Err`, everything since the last
    /// commit is undone, as if it had never been asked for.
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// A mark for the operations done so far, to ask [`is_durable`](Self::is_durable) about
    /// after a flush.
    fn write_mark(&self) -> u64 {
        0
    }

    /// Whether the operation that returned `mark` (or the last one before it was taken) is
    /// committed — `false` when a failed write undid it, or when it is not committed yet.
    fn is_durable(&self, _mark: u64) -> bool {
        true
    }

    /// Messages found damaged when the store was opened, if any.
    fn lost(&self) -> Option<&LostData> {
        None
    }

    /// Background upkeep (the file store rewrites segments that are mostly dead records).
    fn maintain(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Flushes written records to stable storage (fsync); a no-op for memory.
    fn sync(&mut self) -> Result<(), StoreError>;

    /// Removes the oldest live message (a limit removal) and returns its sequence.
    fn remove_first(&mut self) -> Result<Option<u64>, StoreError>;

    /// Removes the oldest messages until at most `max_msgs` remain. Returns how many went.
    fn truncate_to_max_msgs(&mut self, max_msgs: u64) -> Result<u64, StoreError> {
        let mut removed = 0;
        while self.state().msgs > max_msgs {
            if self.remove_first()?.is_none() {
                break;
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Removes the oldest messages stamped before `cutoff_ns` (max_age). Returns how many went.
    fn remove_older_than(&mut self, cutoff_ns: i64) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let st = self.state();
            if st.msgs == 0 {
                break;
            }
            match self.get(st.first_seq)? {
                Some(m) if m.timestamp_ns < cutoff_ns => {}
                _ => break,
            }
            if self.remove_first()?.is_none() {
                break;
            }
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod contract;
