//! A young log is small: a new log holds one small segment and no spare until it is written to,
//! and its segments double up to `segment_bytes` (a new stream took a full 64 MiB segment and
//! a 64 MiB spare at once: 44 unauthenticated creates held 6.4 GB). Disk use is measured as the
//! file system allocated it (`st_blocks`), not as the log counts it.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use hydrant_wal::sim::SimDisk;
use hydrant_wal::{Lsn, Wal, WalOptions};

const MIB: u64 = 1 << 20;

/// Bytes allocated to the files in `dir`.
fn allocated(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().blocks() * 512)
        .sum()
}

#[test]
fn a_new_log_takes_one_small_segment_until_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    // The daemon's defaults: segments of up to 64 MiB, prepared in the background.
    let (wal, _) = Wal::open(&dir, WalOptions::default()).unwrap();
    wal.wait_background_idle();
    let fresh = allocated(&dir);
    println!("a new log: {fresh} bytes allocated");
    assert!(
        fresh <= MIB + 64 * 1024,
        "a new log holds {fresh} bytes of disk"
    );
    assert_eq!(wal.stats().disk_bytes, MIB);

    // Written to, it prepares the next segment: twice the first.
    wal.append(&[b"first"]).unwrap().wait().unwrap();
    wal.wait_background_idle();
    let written = allocated(&dir);
    println!("after one append: {written} bytes allocated");
    assert!(
        written <= 3 * MIB + 64 * 1024,
        "{written} bytes after one append"
    );
    assert_eq!(wal.stats().disk_bytes, 3 * MIB);
}

fn growing(background: bool) -> WalOptions {
    WalOptions {
        segment_bytes: 256 * 1024,
        first_segment_bytes: 16 * 1024,
        index_interval_bytes: 4096,
        background_prepare: background,
        ..WalOptions::default()
    }
}

fn sizes(wal: &Wal) -> Vec<u64> {
    wal.segments().iter().map(|s| s.file_bytes / 1024).collect()
}

fn read_all(wal: &Wal) -> Vec<(Lsn, Vec<u8>)> {
    let mut r = wal.reader(wal.first_lsn()).unwrap();
    let mut out = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        out.extend(f.records().map(|(l, b)| (l, b.to_vec())));
    }
    out
}

fn record(i: u64, len: usize) -> Vec<u8> {
    let mut v = format!("{i}:").into_bytes();
    v.resize(len, (i % 251) as u8);
    v
}

#[test]
fn segments_double_up_to_segment_bytes_and_survive_reopening() {
    for background in [false, true] {
        let disk = SimDisk::new();
        let dir = Path::new("/wal");
        let (wal, _) = Wal::open_with(disk.storage(), dir, growing(background)).unwrap();
        let mut expect = Vec::new();
        while wal.segments().len() < 7 {
            let i = expect.len() as u64;
            wal.append(&[record(i, 3000)]).unwrap().wait().unwrap();
            expect.push(record(i, 3000));
        }
        assert_eq!(sizes(&wal), [16, 32, 64, 128, 256, 256, 256]);
        wal.close().unwrap();
        drop(wal);
        let (wal, report) = Wal::open_with(disk.storage(), dir, growing(background)).unwrap();
        assert_eq!(report.next_lsn, Lsn(expect.len() as u64));
        assert_eq!(sizes(&wal), [16, 32, 64, 128, 256, 256, 256]);
        let got: Vec<Vec<u8>> = read_all(&wal).into_iter().map(|(_, b)| b).collect();
        assert_eq!(got, expect);
        let report = hydrant_wal::verify(disk.storage().as_ref(), dir).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}

/// A first append larger than the first segment: the empty segment is replaced by one the
/// frame fits in (under the same name: two segments cannot share a base LSN), and a frame
/// larger than the next size skips ahead on the growth path.
#[test]
fn a_large_frame_gets_a_segment_it_fits_in() {
    for background in [false, true] {
        let disk = SimDisk::new();
        let dir = Path::new("/wal");
        let (wal, _) = Wal::open_with(disk.storage(), dir, growing(background)).unwrap();
        let big = record(0, 40 * 1024);
        wal.append(std::slice::from_ref(&big))
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(sizes(&wal), [64], "replaced, not sealed empty");
        let bigger = record(1, 150 * 1024);
        wal.append(std::slice::from_ref(&bigger))
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(sizes(&wal), [64, 256]);
        let largest = record(2, wal.batch_bytes_max() as usize - 4);
        wal.append(std::slice::from_ref(&largest))
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(sizes(&wal), [64, 256, 256]);
        wal.close().unwrap();
        drop(wal);
        let (wal, _) = Wal::open_with(disk.storage(), dir, growing(background)).unwrap();
        let got: Vec<Vec<u8>> = read_all(&wal).into_iter().map(|(_, b)| b).collect();
        assert_eq!(got, vec![big, bigger, largest]);
        let report = hydrant_wal::verify(disk.storage().as_ref(), dir).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}

/// Power loss at every storage operation of a young log's life (the small first segment
/// replaced by a larger one, growing rotations, sealing): every acknowledged record survives,
/// the recovered log is a prefix of what was appended, and `verify` finds nothing wrong.
#[test]
fn a_growing_log_keeps_every_acknowledged_record_through_power_loss() {
    let dir = Path::new("/streams/s/wal");
    let lens = [
        40 * 1024,
        3000,
        3000,
        20 * 1024,
        3000,
        100 * 1024,
        3000,
        60 * 1024,
        3000,
    ];
    let mut op = 0u64;
    loop {
        let disk = SimDisk::new();
        let (wal, _) = Wal::open_with(disk.storage(), dir, growing(false)).unwrap();
        disk.arm_crash(op, op);
        let mut acked = 0u64;
        for (i, len) in lens.iter().enumerate() {
            let done = wal
                .append(&[record(i as u64, *len)])
                .and_then(hydrant_wal::Ticket::wait);
            match done {
                Ok(r) => acked = r.end.0,
                Err(_) => break,
            }
        }
        let crashed = disk.crash_count() > 0;
        if !crashed {
            disk.disarm_crash();
            disk.crash(op);
        }
        drop(wal);
        let (wal, report) = Wal::open_with(disk.storage(), dir, growing(false)).unwrap();
        assert!(
            report.next_lsn.0 >= acked,
            "crash at operation {op}: {acked} acknowledged, {} recovered",
            report.next_lsn.0
        );
        for (lsn, bytes) in read_all(&wal) {
            assert_eq!(bytes, record(lsn.0, lens[lsn.0 as usize]), "operation {op}");
        }
        let v = hydrant_wal::verify(disk.storage().as_ref(), dir).unwrap();
        assert!(v.problems.is_empty(), "operation {op}: {:?}", v.problems);
        if !crashed {
            // The armed crash never fired: every operation of the run was tried.
            assert!(op > 20, "only {op} operations");
            break;
        }
        op += 1;
    }
}
