//! A retired segment renamed for reuse, whose directory `fsync` then fails, must never be reused:
//! the rename may or may not survive a power loss, and if the file's old name came back holding
//! a new header and new frames, recovery would end the log there and discard every later
//! segment. The log is poisoned instead, so nothing proceeds as if the directory were in order.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use hydrant_wal::sim::SimDisk;
use hydrant_wal::{Error, Wal};

#[test]
fn a_failed_directory_fsync_after_recycling_poisons_the_log() {
    let disk = SimDisk::new();
    let options = common::small_segments(8192);
    let (wal, _) = Wal::open_with(disk.storage(), Path::new("/wal"), options).unwrap();
    // Frames of about 3 KiB: one segment each.
    while wal.segments().len() < 3 {
        wal.append(&[vec![7u8; 3000]]).unwrap().wait().unwrap();
    }
    let cut = wal.segments()[1].base_lsn;
    disk.set_fail_syncs(true);
    assert!(wal.truncate_before(cut).is_err());
    disk.set_fail_syncs(false);
    // The next appends would rotate into the retired file if it were taken for reuse.
    let refused = wal.append(&[vec![8u8; 3000]]);
    assert!(
        matches!(refused, Err(Error::Poisoned { .. })),
        "appends go on after a failed directory fsync: {refused:?}"
    );
}
