//! A log opened in a directory that does not exist yet (a new stream's `wal/`, and the stream's
//! own directory above it) must make those directories durable before it acknowledges anything:
//! a directory's name lives in its parent, and a power loss that drops the unsynced name of
//! `wal/` takes every segment under it along, synced or not.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use hydrant_wal::sim::SimDisk;
use hydrant_wal::{Lsn, Wal, WalOptions};

fn options() -> WalOptions {
    common::small_segments(8192)
}

#[test]
fn acknowledged_records_survive_power_loss_in_a_new_directory() {
    let dir = Path::new("/data/streams/s1/wal");
    // Each seed keeps a different prefix of the directory changes no sync covered (the
    // creations of `/data`, `streams`, `s1` and `wal` among them).
    let mut lost = Vec::new();
    for seed in 0..64 {
        let disk = SimDisk::new();
        let (wal, _) = Wal::open_with(disk.storage(), dir, options()).unwrap();
        let mut acked = 0u64;
        for i in 0..20u64 {
            let range = wal
                .append(&[format!("record {i}").into_bytes()])
                .unwrap()
                .wait()
                .unwrap();
            acked = range.end.0;
        }
        disk.crash(seed);
        drop(wal);
        let (wal, report) = Wal::open_with(disk.storage(), dir, options()).unwrap();
        if report.next_lsn < Lsn(acked) {
            lost.push((seed, report.next_lsn.0));
            continue;
        }
        let mut r = wal.reader(Lsn(0)).unwrap();
        let mut n = 0u64;
        while let Some(f) = r.next_frame().unwrap() {
            for (lsn, bytes) in f.records() {
                assert_eq!(bytes, format!("record {}", lsn.0).as_bytes());
                n += 1;
            }
        }
        assert!(
            n >= acked,
            "seed {seed}: {n} records read, {acked} acknowledged"
        );
    }
    assert!(
        lost.is_empty(),
        "acknowledged records lost with the directory (seed, records recovered): {lost:?}"
    );
}
