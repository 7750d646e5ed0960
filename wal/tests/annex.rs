//! Frames with an annex (a source's positions and per-record metadata kept beside the records):
//! the annex survives rotation and reopening, is never read as a record, and frames without one
//! stay the version 1 bytes earlier builds read.
#![allow(clippy::unwrap_used)]

use hydrant_wal::{Lsn, Wal, WalOptions};

fn small() -> WalOptions {
    WalOptions {
        segment_bytes: 16 * 1024,
        first_segment_bytes: 16 * 1024,
        index_interval_bytes: 4096,
        ..WalOptions::default()
    }
}

/// Every frame as (first LSN, records, annex).
fn frames(wal: &Wal) -> Vec<(Lsn, Vec<Vec<u8>>, Vec<u8>)> {
    let mut r = wal.reader(wal.first_lsn()).unwrap();
    let mut out = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        out.push((
            f.first_lsn(),
            f.records().map(|(_, b)| b.to_vec()).collect(),
            f.annex().to_vec(),
        ));
    }
    out
}

#[test]
fn annexes_survive_rotation_and_reopen_and_are_never_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Vec::new();
    {
        let (wal, _) = Wal::open(dir.path(), small()).unwrap();
        for i in 0..600u64 {
            let records = vec![format!("r{i}a").into_bytes(), format!("r{i}b").into_bytes()];
            // Every third frame without an annex: both kinds live in one log.
            let annex = if i % 3 == 0 {
                Vec::new()
            } else {
                format!("position-{i}-{}", "p".repeat((i % 50) as usize)).into_bytes()
            };
            let range = wal
                .append_with_annex(&records, 1000 + i, &annex)
                .unwrap()
                .wait()
                .unwrap();
            want.push((range.start, records, annex));
        }
        assert!(wal.stats().segments >= 3, "the test must rotate");
        assert_eq!(frames(&wal), want);
        wal.close().unwrap();
    }
    let (wal, report) = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(report.next_lsn, Lsn(1200));
    assert_eq!(frames(&wal), want);
    // The last frame's annex is found by reading from its last record.
    let mut r = wal.reader(Lsn(1199)).unwrap();
    let last = r.next_frame().unwrap().unwrap();
    assert_eq!(last.annex(), want[599].2.as_slice());
    assert_eq!(last.records().count(), 1);
    wal.close().unwrap();
    drop(wal);
    let report = hydrant_wal::verify(&hydrant_wal::StdStorage, dir.path()).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.records, 1200);
}
