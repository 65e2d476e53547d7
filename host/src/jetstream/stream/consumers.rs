//! What consumers ask of a stream: messages from a position (read a run at a time), how many
//! are pending, the last of each subject, and retention by interest (who still wants a
//! message, and dropping those nobody does).

use super::Stream;
use crate::jetstream::config::{Retention, StreamConfig};
use crate::jetstream::store::StoredMsg;

/// The most record bytes [`Stream::read_from`] reads at once.
pub const READ_AHEAD_BYTES: usize = 1 << 20;

/// Who still needs a stored message, for interest and work-queue retention: the stream's
/// consumers, registered by the account ([`Stream::set_interest`]).
pub trait Interest: Send + Sync {
    /// Whether it will still deliver message `seq` on `subject`, or wait for its ack.
    /// Called without the stream's lock held.
    fn wants(&self, seq: u64, subject: &str) -> bool;
}

/// Whether `filters` (empty: every subject) take `subject`.
pub fn takes(filters: &[String], subject: &str) -> bool {
    filters.is_empty()
        || filters
            .iter()
            .any(|f| crate::subject::matches(f.as_bytes(), subject.as_bytes()))
}

/// One registered consumer: its filters (empty: every subject) and itself.
pub type InterestHolder = (Vec<String>, std::sync::Weak<dyn Interest>);

impl Stream {
    /// Whether message `seq` is still stored.
    pub fn contains(&self, seq: u64) -> bool {
        self.inner.lock().store.contains(seq)
    }

    /// The first message at or after `from` matching any of `filters` (none: any subject).
    pub fn next_matching(&self, from: u64, filters: &[String]) -> Option<StoredMsg> {
        let inner = self.inner.lock();
        let from = from.max(1);
        let seq = if filters.is_empty() {
            inner.store.next_matching(from, ">")
        } else {
            filters
                .iter()
                .filter_map(|f| inner.store.next_matching(from, f))
                .min()
        }?;
        inner.store.get(seq).ok().flatten()
    }

    /// Up to `max` messages from `from` on that match any of `filters` (none: any subject),
    /// ascending, read together (at most [`READ_AHEAD_BYTES`] of records). Empty when there
    /// are none or the store fails (the failure is logged).
    pub fn read_from(&self, from: u64, filters: &[String], max: usize) -> Vec<StoredMsg> {
        let from = from.max(1);
        let filter = match filters {
            [] => ">",
            [one] => one.as_str(),
            // Several filters: one message at a time (the smallest next sequence of them).
            _ => return self.next_matching(from, filters).into_iter().collect(),
        };
        let read = self
            .inner
            .lock()
            .store
            .read_from(from, filter, max, READ_AHEAD_BYTES);
        read.unwrap_or_else(|e| {
            tracing::error!("stream {}: reading from seq {from}: {e}", self.name);
            Vec::new()
        })
    }

    /// How many messages at or after `from` match any of `filters` (none: any subject).
    pub fn count_from(&self, from: u64, filters: &[String]) -> u64 {
        let inner = self.inner.lock();
        let st = inner.store.state();
        if covers_stream(&inner.config, filters) {
            if st.msgs == 0 || from > st.last_seq {
                return 0;
            }
            if from <= st.first_seq {
                return st.msgs;
            }
            let deleted = if st.num_deleted > 0 {
                inner.store.deleted().iter().filter(|&&d| d >= from).count() as u64
            } else {
                0
            };
            return (st.last_seq + 1 - from).saturating_sub(deleted);
        }
        filters
            .iter()
            .map(|f| {
                let seqs = inner.store.matching(f);
                (seqs.len() - seqs.partition_point(|&s| s < from)) as u64
            })
            .sum()
    }

    /// Replaces the consumers that hold interest in this stream's messages.
    pub fn set_interest(&self, holders: Vec<InterestHolder>) {
        *self.interest.write() = holders;
    }

    /// Whether a consumer's filters take `subject`.
    pub(super) fn interested(&self, subject: &str) -> bool {
        self.interest
            .read()
            .iter()
            .any(|(filters, _)| takes(filters, subject))
    }

    /// Messages a consumer is done with (acknowledged, or delivered without acks): a work
    /// queue drops them; an interest stream drops those no other consumer still wants.
    /// Call without any consumer's state locked.
    pub fn retire(&self, seqs: &[u64]) {
        let retention = self.inner.lock().config.retention;
        for &seq in seqs {
            let gone = match retention {
                Retention::Limits => false,
                Retention::WorkQueue => true,
                Retention::Interest => match self.get(seq) {
                    Ok(Some(m)) => !self.wanted(seq, &m.subject),
                    _ => false,
                },
            };
            if gone {
                self.remove(seq);
            }
        }
    }

    /// After a consumer of an interest stream went away: drops the messages nobody wants now.
    pub fn retire_unwanted(&self) {
        if self.inner.lock().config.retention != Retention::Interest {
            return;
        }
        let mut from = 0;
        while let Some(m) = self.next_matching(from, &[]) {
            if !self.wanted(m.seq, &m.subject) {
                self.remove(m.seq);
            }
            from = m.seq + 1;
        }
    }

    /// Whether some registered consumer whose filters take `subject` still wants `seq`.
    fn wanted(&self, seq: u64, subject: &str) -> bool {
        let holders: Vec<InterestHolder> = self.interest.read().clone();
        holders.iter().any(|(filters, h)| {
            takes(filters, subject) && h.upgrade().is_some_and(|h| h.wants(seq, subject))
        })
    }

    /// Removes a message for retention (not a user delete: `deny_delete` does not apply).
    fn remove(&self, seq: u64) {
        if let Err(e) = self.mutate(|inner| Ok(inner.store.delete(seq)?)) {
            tracing::warn!("JetStream: stream '{}': retiring {seq}: {e:?}", self.name);
        }
    }

    /// The last sequence of every subject matching one of `filters` (every subject when
    /// there is none), ascending, and the stream's last sequence, read together
    /// (`deliver_policy: last_per_subject`).
    pub fn last_per_subject(&self, filters: &[String]) -> (Vec<u64>, u64) {
        let inner = self.inner.lock();
        let all = [">".to_string()];
        let filters = if filters.is_empty() {
            &all[..]
        } else {
            filters
        };
        let mut seqs: Vec<u64> = filters
            .iter()
            .flat_map(|f| inner.store.subject_counts(f))
            .map(|(subject, _)| inner.store.subject_state(&subject).last_seq)
            .filter(|&seq| seq > 0)
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        (seqs, inner.store.state().last_seq)
    }
}

/// Whether `filters` take every message the stream can hold (none, `>`, or a filter over
/// each of its subjects, such as a KV watcher's `$KV.<bucket>.>`): then a count needs no
/// look at subjects. Not for streams that source or mirror others, whose messages keep
/// subjects of their own.
fn covers_stream(config: &StreamConfig, filters: &[String]) -> bool {
    if filters.is_empty() || filters.iter().any(|f| f == ">") {
        return true;
    }
    config.mirror.is_none()
        && config.sources.is_empty()
        && config.subject_transform.is_none()
        && !config.subjects.is_empty()
        && config.subjects.iter().all(|s| {
            filters
                .iter()
                .any(|f| crate::subject::is_subset(s.as_bytes(), f.as_bytes()))
        })
}
