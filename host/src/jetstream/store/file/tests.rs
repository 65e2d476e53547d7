//! File-store-only behaviour: recovery, torn and corrupt tails, roll-over, tombstones.

#![allow(clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::super::{StoreError, StreamStore};
use super::{FileStore, FileStoreConfig, SyncPolicy};

fn cfg(segment_size: u64) -> FileStoreConfig {
    FileStoreConfig {
        segment_size,
        sync: SyncPolicy::Always,
        write_buffer: 0,
    }
}

/// With a write buffer, what was flushed survives a crash (simulated by leaking the store
/// so nothing more is written) and what was only buffered is gone, cleanly.
#[test]
fn buffered_writes_survive_a_crash_once_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let buffered = FileStoreConfig {
        segment_size: 1 << 20,
        sync: SyncPolicy::Interval(std::time::Duration::from_secs(3600)),
        write_buffer: 1 << 16,
    };
    let mut s = FileStore::open(dir.path(), buffered).unwrap();
    fill(&mut s, 5);
    assert_eq!(s.get(5).unwrap().unwrap().payload, b"payload-5");
    s.flush().unwrap();
    s.append("late", b"", b"never flushed", 6).unwrap();
    std::mem::forget(s);
    let s = FileStore::open(dir.path(), cfg(1 << 20)).unwrap();
    assert_eq!(s.state().msgs, 5);
    assert_eq!(s.state().last_seq, 5);
    assert_eq!(s.get(3).unwrap().unwrap().payload, b"payload-3");
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn fill(s: &mut FileStore, n: u64) {
    for i in 1..=n {
        let subject = format!("sub.{}", i % 3);
        let payload = format!("payload-{i}");
        assert_eq!(
            s.append(&subject, b"", payload.as_bytes(), i as i64)
                .unwrap(),
            i
        );
    }
}

#[test]
fn reopen_recovers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (state, last) = {
        let mut s = FileStore::open(dir.path(), cfg(1 << 20)).unwrap();
        fill(&mut s, 10);
        s.append("h", b"NATS/1.0\r\nA: b\r\n\r\n", b"with headers", 99)
            .unwrap();
        (s.state(), s.last_for_subject("sub.1").unwrap())
    };
    let s = FileStore::open(dir.path(), cfg(1 << 20)).unwrap();
    assert_eq!(s.state(), state);
    assert_eq!(s.last_for_subject("sub.1").unwrap(), last);
    let m = s.get(11).unwrap().unwrap();
    assert_eq!(
        (m.headers.as_slice(), m.payload.as_slice()),
        (&b"NATS/1.0\r\nA: b\r\n\r\n"[..], &b"with headers"[..])
    );
    assert_eq!(m.timestamp_ns, 99);
    for i in 1..=10 {
        assert_eq!(
            s.get(i).unwrap().unwrap().payload,
            format!("payload-{i}").as_bytes()
        );
    }
}

#[test]
fn torn_tail_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = FileStore::open(dir.path(), cfg(1 << 20)).unwrap();
        fill(&mut s, 5);
    }
    let seg = segments(dir.path()).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    // Cut the last record in the middle.
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let mut s = FileStore::open(dir.path(), cfg(1 << 20)).unwrap();
    let st = s.state();
    assert_eq!((st.msgs, st.last_seq), (4, 4));
    assert!(s.get(5).unwrap().is_none());
    for i in 1..=4 {
        assert!(s.get(i).unwrap().is_some());
    }
    // The torn bytes are gone from disk and new appends follow cleanly.
    assert!(fs::metadata(&seg).unwrap().len() < len - 7);
    assert_eq!(s.append("new", b"", b"after", 6).unwrap(), 5);
    drop(s);
    let s = FileStore::open(dir.path(), cfg(1 << 20)).unwrap();
    assert_eq!(s.get(5).unwrap().unwrap().payload, b"after");
    assert_eq!(s.state().msgs, 5);
}

#[test]
fn corrupt_tail_byte_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = FileStore::open(dir.path(), cfg(1 << 20)).unwrap();
        fill(&mut s, 5);
    }
    let seg = segments(dir.path()).pop().unwrap();
    let mut data = fs::read(&seg).unwrap();
    // Flip a byte inside the last record's payload (just before its 4-byte CRC).
    let at = data.len() - 6;
    data[at] ^= 0x40;
    fs::write(&seg, &data).unwrap();
    let s = FileStore::open(dir.path(), cfg(1 << 20)).unwrap();
    let st = s.state();
    assert_eq!((st.msgs, st.last_seq), (4, 4));
    assert!(s.get(5).unwrap().is_none());
    assert_eq!(s.get(4).unwrap().unwrap().payload, b"payload-4");
}

#[test]
fn bad_length_tail_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = FileStore::open(dir.path(), cfg(1 << 20)).unwrap();
        fill(&mut s, 3);
    }
    let seg = segments(dir.path()).pop().unwrap();
    let mut data = fs::read(&seg).unwrap();
    data.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f, 1, 2, 3]);
    fs::write(&seg, &data).unwrap();
    let s = FileStore::open(dir.path(), cfg(1 << 20)).unwrap();
    assert_eq!(s.state().msgs, 3);
}

#[test]
fn corruption_in_an_older_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = FileStore::open(dir.path(), cfg(100)).unwrap();
        fill(&mut s, 6);
        assert!(s.segment_count() > 1);
    }
    let first = segments(dir.path()).remove(0);
    let mut data = fs::read(&first).unwrap();
    data[10] ^= 1;
    fs::write(&first, &data).unwrap();
    match FileStore::open(dir.path(), cfg(100)) {
        Err(StoreError::Corrupt { path, offset, .. }) => {
            assert_eq!((path, offset), (first, 0));
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened a store with a corrupt older segment"),
    }
}

#[test]
fn rolls_over_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let state = {
        let mut s = FileStore::open(dir.path(), cfg(200)).unwrap();
        fill(&mut s, 20);
        assert!(s.segment_count() >= 5, "{} segments", s.segment_count());
        s.state()
    };
    let files = segments(dir.path());
    assert!(files.len() >= 5);
    for f in &files {
        assert!(fs::metadata(f).unwrap().len() <= 200);
    }
    let s = FileStore::open(dir.path(), cfg(200)).unwrap();
    assert_eq!(s.state(), state);
    for i in 1..=20 {
        assert_eq!(s.get(i).unwrap().unwrap().seq, i);
    }
}

#[test]
fn tombstones_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = FileStore::open(dir.path(), cfg(150)).unwrap();
        fill(&mut s, 8);
        assert!(s.delete(2).unwrap());
        assert!(s.delete(8).unwrap());
        assert_eq!(s.purge_subject("sub.1").unwrap(), 3); // 1, 4 and 7
    }
    let mut s = FileStore::open(dir.path(), cfg(150)).unwrap();
    let st = s.state();
    assert_eq!(
        (st.msgs, st.first_seq, st.last_seq, st.num_deleted),
        (3, 3, 8, 3)
    );
    for gone in [1, 2, 4, 7, 8] {
        assert!(s.get(gone).unwrap().is_none(), "seq {gone}");
    }
    assert_eq!(s.subject_state("sub.1").msgs, 0);
    // last_seq came back from the tombstone of seq 8: no reuse.
    assert_eq!(s.append("x", b"", b"", 0).unwrap(), 9);
}

#[test]
fn purge_and_limit_removals_survive_reopen_and_drop_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = FileStore::open(dir.path(), cfg(150)).unwrap();
        fill(&mut s, 12);
        let before = s.segment_count();
        assert_eq!(s.truncate_to_max_msgs(4).unwrap(), 8);
        assert!(s.segment_count() < before, "dead segments deleted");
    }
    {
        let mut s = FileStore::open(dir.path(), cfg(150)).unwrap();
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq, st.last_seq), (4, 9, 12));
        assert_eq!(s.purge().unwrap(), 4);
        assert_eq!(s.segment_count(), 1);
    }
    let mut s = FileStore::open(dir.path(), cfg(150)).unwrap();
    let st = s.state();
    assert_eq!((st.msgs, st.first_seq, st.last_seq), (0, 13, 12));
    assert_eq!(s.append("again", b"", b"", 0).unwrap(), 13);
}

#[test]
fn interval_policy_appends_are_readable_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let c = FileStoreConfig::default();
    {
        let mut s = FileStore::open(dir.path(), c).unwrap();
        fill(&mut s, 3);
    }
    let s = FileStore::open(dir.path(), c).unwrap();
    assert_eq!(s.state().msgs, 3);
}

/// Deleting most messages of older segments makes them sparse; compaction rewrites them
/// smaller, every live message stays readable, and a reopen sees the same stream.
#[test]
fn sparse_segments_are_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = FileStore::open(dir.path(), cfg(400)).unwrap();
    fill(&mut s, 40);
    let before: u64 = segments(dir.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    for seq in (1..=36).filter(|q| q % 4 != 0) {
        assert!(s.delete(seq).unwrap());
    }
    let state = s.state();
    assert!(s.compact_sparse().unwrap() > 0);
    assert_eq!(s.compact_sparse().unwrap(), 0, "nothing removed since");
    let after: u64 = segments(dir.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert!(after < before, "{after} >= {before}");
    for seq in (4..=36).step_by(4) {
        assert_eq!(
            s.get(seq).unwrap().unwrap().payload,
            format!("payload-{seq}").as_bytes()
        );
    }
    drop(s);
    let s = FileStore::open(dir.path(), cfg(400)).unwrap();
    assert_eq!(s.state(), state);
    assert!(s.get(5).unwrap().is_none());
    assert_eq!(s.get(40).unwrap().unwrap().payload, b"payload-40");
}
