//! The in-memory index shared by both stores: sequence → entry, and per subject the set of
//! live sequences (its length is the subject's count, its maximum the subject's last sequence).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{StreamState, SubjectState};

/// One live message in the index; `val` is the message itself (memory) or its location (file).
pub(crate) struct Entry<T> {
    pub subject: String,
    pub size: u64,
    pub val: T,
}

pub(crate) struct Index<T> {
    entries: BTreeMap<u64, Entry<T>>,
    subjects: HashMap<String, BTreeSet<u64>>,
    bytes: u64,
    /// Highest sequence ever assigned; kept across deletes and purges.
    last_seq: u64,
}

impl<T> Default for Index<T> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            subjects: HashMap::new(),
            bytes: 0,
            last_seq: 0,
        }
    }
}

impl<T> Index<T> {
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Raises the last sequence (a purge marker or tombstone seen on recovery).
    pub fn bump_last_seq(&mut self, seq: u64) {
        self.last_seq = self.last_seq.max(seq);
    }

    pub fn insert(&mut self, seq: u64, subject: &str, size: u64, val: T) {
        if let Some(old) = self.entries.insert(
            seq,
            Entry {
                subject: subject.to_owned(),
                size,
                val,
            },
        ) {
            // Only reachable on a malformed log that repeats a sequence: last one wins.
            self.bytes -= old.size;
            self.forget_subject(&old.subject, seq);
        }
        self.bytes += size;
        self.subjects
            .entry(subject.to_owned())
            .or_default()
            .insert(seq);
        self.bump_last_seq(seq);
    }

    fn forget_subject(&mut self, subject: &str, seq: u64) {
        if let Some(set) = self.subjects.get_mut(subject) {
            set.remove(&seq);
            if set.is_empty() {
                self.subjects.remove(subject);
            }
        }
    }

    pub fn remove(&mut self, seq: u64) -> Option<Entry<T>> {
        let e = self.entries.remove(&seq)?;
        self.bytes -= e.size;
        self.forget_subject(&e.subject, seq);
        Some(e)
    }

    /// Removes every entry with a sequence ≤ `floor`; returns how many.
    pub fn remove_through(&mut self, floor: u64) -> u64 {
        self.drain_through(floor).len() as u64
    }

    /// Removes every entry with a sequence ≤ `floor` and returns them, ascending.
    pub fn drain_through(&mut self, floor: u64) -> Vec<(u64, Entry<T>)> {
        let seqs: Vec<u64> = self.entries.range(..=floor).map(|(s, _)| *s).collect();
        let out = seqs
            .into_iter()
            .filter_map(|s| self.remove(s).map(|e| (s, e)))
            .collect();
        self.bump_last_seq(floor);
        out
    }

    /// Puts back an entry [`remove`](Self::remove) returned (undoing a change).
    pub fn restore(&mut self, seq: u64, entry: Entry<T>) {
        let Entry { subject, size, val } = entry;
        self.insert(seq, &subject, size, val);
    }

    /// Sets the last sequence, lower or higher (undoing changes that raised it).
    pub fn set_last_seq(&mut self, seq: u64) {
        self.last_seq = seq;
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.entries.contains_key(&seq)
    }

    pub fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        self.entries.get_mut(&seq).map(|e| &mut e.val)
    }

    /// Every live entry's value, by ascending sequence.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.values().map(|e| &e.val)
    }

    pub fn get(&self, seq: u64) -> Option<&T> {
        self.entries.get(&seq).map(|e| &e.val)
    }

    pub fn first_seq(&self) -> Option<u64> {
        self.entries.keys().next().copied()
    }

    pub fn last_for_subject(&self, subject: &str) -> Option<u64> {
        self.subjects.get(subject)?.last().copied()
    }

    pub fn first_for_subject(&self, subject: &str) -> Option<u64> {
        self.subjects.get(subject)?.first().copied()
    }

    /// Live messages per subject for the subjects matching `filter`.
    pub fn subject_counts(&self, filter: &str) -> Vec<(String, u64)> {
        self.subjects
            .iter()
            .filter(|(s, _)| crate::subject::matches(filter.as_bytes(), s.as_bytes()))
            .map(|(s, set)| (s.clone(), set.len() as u64))
            .collect()
    }

    /// Sequences between the first live one and the last assigned that are gone.
    pub fn deleted(&self) -> Vec<u64> {
        let Some(first) = self.first_seq() else {
            return Vec::new();
        };
        (first..=self.last_seq)
            .filter(|s| !self.entries.contains_key(s))
            .collect()
    }

    /// The first live sequence ≥ `from` whose subject matches `filter`.
    pub fn next_matching(&self, from: u64, filter: &str) -> Option<u64> {
        let literal = !filter.contains(['*', '>']);
        if literal {
            return self.subjects.get(filter)?.range(from..).next().copied();
        }
        self.entries
            .range(from..)
            .find(|(_, e)| crate::subject::matches(filter.as_bytes(), e.subject.as_bytes()))
            .map(|(s, _)| *s)
    }

    /// Live entries from `from` on whose subject matches `filter`, ascending by sequence.
    pub fn iter_matching<'a>(
        &'a self,
        from: u64,
        filter: &'a str,
    ) -> Box<dyn Iterator<Item = (u64, &'a Entry<T>)> + 'a> {
        if !filter.contains(['*', '>']) {
            let Some(seqs) = self.subjects.get(filter) else {
                return Box::new(std::iter::empty());
            };
            return Box::new(
                seqs.range(from..)
                    .filter_map(|seq| self.entries.get(seq).map(|e| (*seq, e))),
            );
        }
        Box::new(
            self.entries
                .range(from..)
                .filter(move |(_, e)| {
                    filter == ">"
                        || crate::subject::matches(filter.as_bytes(), e.subject.as_bytes())
                })
                .map(|(s, e)| (*s, e)),
        )
    }

    /// Live sequences whose subject matches `filter` (NATS wildcards), ascending.
    pub fn matching(&self, filter: &str) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .subjects
            .iter()
            .filter(|(s, _)| crate::subject::matches(filter.as_bytes(), s.as_bytes()))
            .flat_map(|(_, set)| set.iter().copied())
            .collect();
        out.sort_unstable();
        out
    }

    pub fn state(&self) -> StreamState {
        let msgs = self.entries.len() as u64;
        match self.first_seq() {
            Some(first) => StreamState {
                msgs,
                bytes: self.bytes,
                first_seq: first,
                last_seq: self.last_seq,
                num_deleted: (self.last_seq - first + 1) - msgs,
            },
            None => StreamState {
                msgs: 0,
                bytes: 0,
                first_seq: self.last_seq + 1,
                last_seq: self.last_seq,
                num_deleted: 0,
            },
        }
    }

    pub fn subject_state(&self, subject: &str) -> SubjectState {
        match self.subjects.get(subject) {
            Some(set) => SubjectState {
                msgs: set.len() as u64,
                last_seq: set.last().copied().unwrap_or(0),
            },
            None => SubjectState::default(),
        }
    }
}
