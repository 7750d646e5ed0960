//! Retention racing the background preparation of the next segment.
//!
//! A retired segment is recycled by renaming it to `recycle.tmp`; the prepare thread later
//! rewrites its header and renames it to the spare. Found under `hydrant bench put`: when
//! retention retired a second segment while the prepare thread was still working on the first,
//! the second was renamed over `recycle.tmp`, the prepare thread then renamed *that* file to the
//! spare while holding a handle to the first (unlinked) one, and the next segment's appends went
//! into an unlinked file: the segment under the log's name held old frames, acknowledged records
//! were lost on reopen, and a reader of the sealed segment looped over the stale frames. This
//! test drives appends and aggressive retention together through many rotations and checks the
//! log, live and reopened, frame by frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hydrant_wal::{Lsn, StdStorage, Wal, WalOptions};

fn record(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "y".repeat((i % 91) as usize)).into_bytes()
}

#[test]
fn retention_racing_segment_preparation_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let options = WalOptions {
        segment_bytes: 16 * 1024,
        index_interval_bytes: 4096,
        background_prepare: true,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(dir, options.clone()).unwrap();
    let wal = Arc::new(wal);
    let stop = Arc::new(AtomicBool::new(false));
    // Retention lags a few segments behind and retires one segment per call, as fast as it can:
    // a segment is retired (and recycled) while the prepare thread still works on the one
    // retired before it.
    let retention = {
        let wal = wal.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut retired = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let segments = wal.segments();
                if segments.len() > 6 {
                    retired += wal.truncate_before(segments[1].base_lsn).unwrap();
                } else {
                    std::thread::yield_now();
                }
            }
            retired
        })
    };
    // Frames of 20 records: a rotation every few appends.
    let total = 200_000u64;
    let per_append = 20u64;
    for first in (0..total).step_by(per_append as usize) {
        let batch: Vec<Vec<u8>> = (first..first + per_append).map(record).collect();
        let range = wal.append(&batch).unwrap().wait().unwrap();
        assert_eq!(range.start, Lsn(first));
    }
    stop.store(true, Ordering::Relaxed);
    let retired = retention.join().unwrap();
    assert!(
        retired > 100,
        "only {retired} segments retired: the race was not exercised"
    );

    // Live: everything still in the log reads back with its bytes, in order, no gap.
    assert_eq!(
        read_all(&wal, "live read"),
        Lsn(total),
        "live read ends at the written end"
    );
    wal.close().unwrap();
    drop(wal);

    // On disk: every segment verifies, and a reopened log holds every record it kept.
    let report = hydrant_wal::verify(&StdStorage, dir).unwrap();
    assert!(report.is_clean(), "verify: {:?}", report.problems);
    let (wal, _) = Wal::open(dir, options).unwrap();
    assert_eq!(
        wal.next_lsn(),
        Lsn(total),
        "every acknowledged record survives a reopen"
    );
    assert_eq!(read_all(&wal, "reopened"), Lsn(total));
}

/// Reads the whole log from its first segment, checking that LSNs follow one another and each
/// record holds its bytes; returns the LSN after the last record read.
fn read_all(wal: &Wal, what: &str) -> Lsn {
    let first = wal.segments()[0].base_lsn;
    let mut reader = wal.reader(first).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut next = first;
    while let Some(frame) = reader
        .next_frame()
        .unwrap_or_else(|e| panic!("{what}: {e}"))
    {
        for (lsn, bytes) in frame.records() {
            assert_eq!(lsn, next, "{what}: a gap or a stale frame");
            assert_eq!(bytes, &record(lsn.0)[..], "{what}: bytes of {lsn:?}");
            next = lsn.plus(1);
        }
    }
    next
}
