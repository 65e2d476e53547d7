//! The contract every [`StreamStore`] honours, run against both implementations.

#![allow(clippy::unwrap_used)]

use super::{FileStore, FileStoreConfig, MemoryStore, StreamState, StreamStore, SubjectState};

fn append_get_and_state(s: &mut dyn StreamStore) {
    assert_eq!(
        s.state(),
        StreamState {
            first_seq: 1,
            ..StreamState::default()
        }
    );
    assert_eq!(s.append("a.1", b"", b"one", 10).unwrap(), 1);
    assert_eq!(
        s.append("a.2", b"NATS/1.0\r\nX: y\r\n\r\n", b"two", 20)
            .unwrap(),
        2
    );
    assert_eq!(s.append("a.1", b"", b"", 30).unwrap(), 3);
    let m = s.get(2).unwrap().unwrap();
    assert_eq!(m.seq, 2);
    assert_eq!(m.subject, "a.2");
    assert_eq!(m.headers, &b"NATS/1.0\r\nX: y\r\n\r\n"[..]);
    assert_eq!(m.payload, &b"two"[..]);
    assert_eq!(m.timestamp_ns, 20);
    assert!(s.get(0).unwrap().is_none());
    assert!(s.get(4).unwrap().is_none());
    let bytes = s.msg_size("a.1", b"", b"one")
        + s.msg_size("a.2", b"NATS/1.0\r\nX: y\r\n\r\n", b"two")
        + s.msg_size("a.1", b"", b"");
    assert_eq!(
        s.state(),
        StreamState {
            msgs: 3,
            bytes,
            first_seq: 1,
            last_seq: 3,
            num_deleted: 0
        }
    );
}

fn last_for_subject_and_subject_state(s: &mut dyn StreamStore) {
    s.append("kv.a", b"", b"1", 1).unwrap();
    s.append("kv.b", b"", b"2", 2).unwrap();
    s.append("kv.a", b"", b"3", 3).unwrap();
    assert_eq!(
        s.last_for_subject("kv.a").unwrap().unwrap().payload,
        &b"3"[..]
    );
    assert_eq!(s.last_for_subject("kv.b").unwrap().unwrap().seq, 2);
    assert!(s.last_for_subject("kv.c").unwrap().is_none());
    assert!(
        s.last_for_subject("kv.*").unwrap().is_none(),
        "exact subject only"
    );
    assert_eq!(
        s.subject_state("kv.a"),
        SubjectState {
            msgs: 2,
            last_seq: 3
        }
    );
    assert_eq!(s.subject_state("kv.c"), SubjectState::default());
    // Deleting the last one falls back to the previous one.
    assert!(s.delete(3).unwrap());
    assert_eq!(s.last_for_subject("kv.a").unwrap().unwrap().seq, 1);
    assert_eq!(
        s.subject_state("kv.a"),
        SubjectState {
            msgs: 1,
            last_seq: 1
        }
    );
}

fn delete_makes_gaps(s: &mut dyn StreamStore) {
    for i in 0..5 {
        s.append("d", b"", b"x", i).unwrap();
    }
    assert!(s.delete(3).unwrap());
    assert!(!s.delete(3).unwrap(), "already deleted");
    assert!(!s.delete(99).unwrap(), "never existed");
    assert!(s.get(3).unwrap().is_none());
    let st = s.state();
    assert_eq!(
        (st.msgs, st.first_seq, st.last_seq, st.num_deleted),
        (4, 1, 5, 1)
    );
    assert!(s.delete(1).unwrap());
    let st = s.state();
    assert_eq!(
        (st.msgs, st.first_seq, st.last_seq, st.num_deleted),
        (3, 2, 5, 1)
    );
    // Deleting the last message keeps last_seq: sequences are never reused.
    assert!(s.delete(5).unwrap());
    assert_eq!(s.state().last_seq, 5);
    assert_eq!(s.append("d", b"", b"x", 9).unwrap(), 6);
}

fn purge_keeps_sequence(s: &mut dyn StreamStore) {
    for i in 0..4 {
        s.append("p", b"", b"x", i).unwrap();
    }
    assert_eq!(s.purge().unwrap(), 4);
    assert_eq!(
        s.state(),
        StreamState {
            msgs: 0,
            bytes: 0,
            first_seq: 5,
            last_seq: 4,
            num_deleted: 0
        }
    );
    assert!(s.get(2).unwrap().is_none());
    assert!(s.last_for_subject("p").unwrap().is_none());
    assert_eq!(s.purge().unwrap(), 0);
    assert_eq!(s.append("p", b"", b"y", 9).unwrap(), 5);
    assert_eq!(s.state().first_seq, 5);
}

fn purge_subject_with_wildcards(s: &mut dyn StreamStore) {
    s.append("orders.new", b"", b"1", 1).unwrap();
    s.append("orders.old", b"", b"2", 2).unwrap();
    s.append("users.x", b"", b"3", 3).unwrap();
    s.append("orders.new", b"", b"4", 4).unwrap();
    assert_eq!(s.purge_subject("orders.new").unwrap(), 2);
    assert_eq!(s.subject_state("orders.new"), SubjectState::default());
    assert_eq!(s.purge_subject("orders.*").unwrap(), 1);
    assert_eq!(s.purge_subject(">").unwrap(), 1);
    assert_eq!(s.purge_subject(">").unwrap(), 0);
    let st = s.state();
    assert_eq!((st.msgs, st.last_seq, st.first_seq), (0, 4, 5));
}

fn limit_helpers(s: &mut dyn StreamStore) {
    for i in 1..=6 {
        s.append("l", b"", b"x", i * 100).unwrap();
    }
    assert_eq!(s.remove_first().unwrap(), Some(1));
    assert_eq!(s.truncate_to_max_msgs(3).unwrap(), 2);
    assert_eq!(s.state().first_seq, 4);
    // Messages stamped 400 and 500 are older than 550.
    assert_eq!(s.remove_older_than(550).unwrap(), 2);
    let st = s.state();
    assert_eq!((st.msgs, st.first_seq, st.last_seq), (1, 6, 6));
    assert_eq!(s.remove_older_than(i64::MAX).unwrap(), 1);
    assert_eq!(s.remove_first().unwrap(), None);
    assert_eq!(s.state().first_seq, 7);
}

fn sync_is_harmless(s: &mut dyn StreamStore) {
    s.sync().unwrap();
    s.append("s", b"", b"x", 1).unwrap();
    s.sync().unwrap();
    assert_eq!(s.state().msgs, 1);
}

/// `read_from` returns what `next_matching` + `get` would, one message at a time, whatever
/// the segments and the write buffer hold.
fn read_from_reads_what_get_reads(s: &mut dyn StreamStore) {
    for i in 0..40u32 {
        let subject = ["a.1", "a.2", "b"][i as usize % 3];
        let headers: &[u8] = if i % 4 == 0 {
            b"NATS/1.0\r\nK: v\r\n\r\n"
        } else {
            b""
        };
        s.append(subject, headers, format!("m{i}").as_bytes(), i64::from(i))
            .unwrap();
        if i == 20 {
            s.flush().unwrap();
        }
    }
    for seq in [5, 6, 17, 30] {
        assert!(s.delete(seq).unwrap());
    }
    let one_by_one = |s: &dyn StreamStore, from: u64, filter: &str, max: usize| {
        let mut out = Vec::new();
        let mut next = from;
        while out.len() < max {
            let Some(seq) = s.next_matching(next, filter) else {
                break;
            };
            out.push(s.get(seq).unwrap().unwrap());
            next = seq + 1;
        }
        out
    };
    for filter in [">", "a.*", "a.2", "b", "nope"] {
        for from in [1, 4, 18, 39, 41] {
            for max in [1, 3, 100] {
                let got = s.read_from(from, filter, max, usize::MAX).unwrap();
                let want = one_by_one(&*s, from, filter, max);
                assert_eq!(got, want, "filter {filter} from {from} max {max}");
            }
        }
    }
    for seq in 1..=41 {
        let live = s.get(seq).unwrap().is_some();
        assert_eq!(s.contains(seq), live, "contains({seq})");
    }
    let first = s.read_from(1, ">", 100, 1).unwrap();
    assert_eq!(
        first.len(),
        1,
        "the first message counts even over max_bytes"
    );
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $name() { super::$name(&mut super::MemoryStore::new()); })*
        }
        mod file {
            $(#[test] fn $name() {
                let dir = tempfile::tempdir().unwrap();
                // Small segments so the contract also exercises roll-over.
                let cfg = super::FileStoreConfig { segment_size: 128, ..Default::default() };
                super::$name(&mut super::FileStore::open(dir.path().join("s"), cfg).unwrap());
            })*
        }
        mod file_buffered {
            $(#[test] fn $name() {
                let dir = tempfile::tempdir().unwrap();
                // Records stay in memory between flushes; reads must still see them.
                let cfg = super::FileStoreConfig {
                    segment_size: 128,
                    write_buffer: 300,
                    ..Default::default()
                };
                super::$name(&mut super::FileStore::open(dir.path().join("s"), cfg).unwrap());
            })*
        }
    };
}

contract_tests!(
    append_get_and_state,
    last_for_subject_and_subject_state,
    delete_makes_gaps,
    purge_keeps_sequence,
    purge_subject_with_wildcards,
    limit_helpers,
    sync_is_harmless,
    read_from_reads_what_get_reads,
);
