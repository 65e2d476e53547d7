//! The memory store: the shared index holding the messages themselves.

use super::index::Index;
use super::{memory_msg_size, StoreError, StoredMsg, StreamState, StreamStore, SubjectState};
use bytes::Bytes;

/// A stream kept in memory only (`storage: memory`).
#[derive(Default)]
pub struct MemoryStore {
    index: Index<StoredMsg>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl StreamStore for MemoryStore {
    fn msg_size(&self, subject: &str, headers: &[u8], payload: &[u8]) -> u64 {
        memory_msg_size(subject, headers, payload)
    }

    fn append(
        &mut self,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        timestamp_ns: i64,
    ) -> Result<u64, StoreError> {
        let seq = self.index.last_seq() + 1;
        let msg = StoredMsg {
            seq,
            subject: subject.to_owned(),
            headers: Bytes::copy_from_slice(headers),
            payload: Bytes::copy_from_slice(payload),
            timestamp_ns,
        };
        self.index.insert(
            seq,
            subject,
            memory_msg_size(subject, headers, payload),
            msg,
        );
        Ok(seq)
    }

    fn contains(&self, seq: u64) -> bool {
        self.index.contains(seq)
    }

    fn get(&self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        Ok(self.index.get(seq).cloned())
    }

    fn last_for_subject(&self, subject: &str) -> Result<Option<StoredMsg>, StoreError> {
        let Some(seq) = self.index.last_for_subject(subject) else {
            return Ok(None);
        };
        self.get(seq)
    }

    fn delete(&mut self, seq: u64) -> Result<bool, StoreError> {
        Ok(self.index.remove(seq).is_some())
    }

    fn purge(&mut self) -> Result<u64, StoreError> {
        let last = self.index.last_seq();
        Ok(self.index.remove_through(last))
    }

    fn purge_subject(&mut self, filter: &str) -> Result<u64, StoreError> {
        let seqs = self.index.matching(filter);
        for s in &seqs {
            self.index.remove(*s);
        }
        Ok(seqs.len() as u64)
    }

    fn state(&self) -> StreamState {
        self.index.state()
    }

    fn subject_state(&self, subject: &str) -> SubjectState {
        self.index.subject_state(subject)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
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
        Ok(self.index.remove_through(seq.saturating_sub(1)))
    }

    fn remove_first(&mut self) -> Result<Option<u64>, StoreError> {
        let Some(first) = self.index.first_seq() else {
            return Ok(None);
        };
        self.index.remove(first);
        Ok(Some(first))
    }
}
