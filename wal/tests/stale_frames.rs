//! Frames of an earlier run must never come back after a recycled end.
//!
//! A group commit writes three frames F1 F2 F3 into a recycled segment file (whose earlier life
//! left frames at the same offsets, with older LSNs), and the power fails before the sync
//! completes: the disk keeps F1 and F3 but not F2. Recovery ends the log after F1, at the old
//! frame where F2 should be. The next run appends G, a frame of F2's shape, into F2's place and
//! has it acknowledged. If F3 were still on disk behind G, its LSNs would follow G's exactly and
//! the next open would accept it: records never acknowledged, with the bytes of another run,
//! delivered as if appended after G. The log must hold exactly what was acknowledged.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use hydrant_wal::format::DATA_START;
use hydrant_wal::segment::ScanStop;
use hydrant_wal::sim::SimDisk;
use hydrant_wal::{Lsn, Wal, WalOptions};

const DIR: &str = "/streams/s/wal";

/// One record that makes a frame of exactly 1 KiB: two whole sectors.
const FRAME: u64 = 1024;
const RECORD_LEN: usize = 1024 - 36;

/// 8 KiB segments hold three 1 KiB frames.
fn options() -> WalOptions {
    common::small_segments(8192)
}

/// A uniform record for `lsn` written by run `run`.
fn record(run: u8, lsn: u64) -> Vec<u8> {
    let mut r = format!("run {run} lsn {lsn} ").into_bytes();
    r.resize(RECORD_LEN, b'a' + run);
    r
}

fn open(disk: &SimDisk) -> (Wal, hydrant_wal::RecoveryReport) {
    Wal::open_with(disk.storage(), Path::new(DIR), options()).unwrap()
}

/// Every record from the first retained LSN to the end, in order.
fn contents(wal: &Wal) -> Vec<(u64, Vec<u8>)> {
    let mut r = wal.reader(wal.first_lsn()).unwrap();
    let mut out = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        out.extend(f.records().map(|(lsn, b)| (lsn.0, b.to_vec())));
    }
    out
}

/// Appends `record(run, lsn)`, waits for it, and notes it as acknowledged.
fn append_acked(acked: &mut Vec<(u64, Vec<u8>)>, wal: &Wal, run: u8, lsn: u64) {
    let range = wal.append(&[record(run, lsn)]).unwrap().wait().unwrap();
    assert_eq!(range.start, Lsn(lsn));
    acked.push((lsn, record(run, lsn)));
}

#[test]
fn a_kept_frame_behind_a_lost_one_never_follows_a_new_append() {
    let disk = SimDisk::new();
    let (wal, _) = open(&disk);
    let mut acked: Vec<(u64, Vec<u8>)> = Vec::new();
    // Segment 0 holds LSNs 0, 1, 2 at 4096, 5120, 6144; segment 3 holds 3, 4, 5.
    for lsn in 0..6 {
        append_acked(&mut acked, &wal, 1, lsn);
    }
    assert_eq!(wal.segments().len(), 2);
    // Retire segment 0: it is kept for reuse, and the next rotation reuses it.
    assert_eq!(wal.truncate_before(Lsn(3)).unwrap(), 1);
    acked.retain(|(lsn, _)| *lsn >= 3);
    append_acked(&mut acked, &wal, 1, 6); // F1: rotates into the recycled file, at 4096
    let segments = wal.segments();
    let active = segments.last().unwrap();
    assert_eq!(active.base_lsn, Lsn(6));
    let path = active.path.clone();
    // F2 and F3 at 5120 and 6144, written by one group commit whose sync never completes.
    let f2 = wal.append(&[record(1, 7)]).unwrap();
    let f3 = wal.append(&[record(1, 8)]).unwrap();
    disk.set_fail_syncs(true);
    assert!(wal.sync().is_err());
    assert!(f2.wait().is_err() && f3.wait().is_err());
    // The power fails: the disk kept F3's sectors but not F2's.
    let f2_at = DATA_START + FRAME;
    disk.crash_dropping(&path, f2_at..f2_at + FRAME);
    disk.set_fail_syncs(false);
    drop(wal);
    let image = disk.read_file(&path).unwrap();
    assert_eq!(
        &image[(f2_at + FRAME + 36) as usize..][..RECORD_LEN],
        &record(1, 8)[..],
        "the disk kept F3"
    );

    // The next run: the log ends after F1, at the recycled file's old frame (LSN 1).
    let (wal, report) = open(&disk);
    assert_eq!(report.tail_stop, Some(ScanStop::Recycled), "{report:?}");
    assert_eq!(wal.next_lsn(), Lsn(7));
    assert_eq!(contents(&wal), acked);
    // G: F2's shape, in F2's place, acknowledged.
    append_acked(&mut acked, &wal, 2, 7);
    wal.close().unwrap();
    drop(wal);

    let (wal, _) = open(&disk);
    assert_eq!(
        wal.next_lsn(),
        Lsn(8),
        "LSN 8 was never acknowledged, yet the log holds it"
    );
    assert_eq!(contents(&wal), acked);
}
