//! Carrying out a recovery plan when the log is opened for appending.
//!
//! Recovery ([`crate::recovery`]) plans; opening carries the plan out: it seals segments that
//! were complete but whose seal never became durable, and before the first append zeroes and
//! syncs everything after the recovered end of the tail segment: a torn write, a recycled
//! file's earlier frames, or frames of the last run that a power loss kept behind a dropped one.
//! Whatever a later power loss keeps of this run's writes, no frame from before the open can
//! then follow one written after it.
//!
//! # Reopening the tail
//!
//! The range is cleared with [`StorageFile::zero_range`]: on the real file system
//! `fallocate(FALLOC_FL_ZERO_RANGE)`, which marks the range's blocks unwritten instead of
//! writing up to a segment of zeros (64 MiB of writes and their sync were most of a restart
//! after a crash with a recycled tail segment). It is as durable as written zeros: the extents'
//! new state is metadata the file's data cannot be read correctly without, which is what
//! `fdatasync` commits (the same argument as for new segments' unwritten extents,
//! [`crate::SegmentFill::Unwritten`]), and the sync that follows returns before the first
//! append. Until it does, a power loss leaves the range either as it was (the next open clears
//! it again) or zeroed; either way no append was acknowledged yet. A file system without
//! `ZERO_RANGE` gets written zeros, as before. The simulated disk ([`crate::sim`]) models the
//! default, written zeros, so the power-loss model checks the ordering (cleared and synced
//! before the first append), not the kernel call.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{encode_index, Footer, Geometry, DATA_START, FORMAT_VERSION};
use crate::recovery::TailSegment;
use crate::storage::{OpenMode, Storage, StorageFile};
use crate::writer::{Active, SegmentMeta};

/// Reopens the recovered tail segment for appending: zeroes everything that follows the last
/// valid frame, torn writes and a recycled file's earlier contents alike, and syncs, before the
/// first append (see recovery's case I: no frame from before this open may ever follow one
/// written after it).
pub(crate) fn reopen_tail(storage: &dyn Storage, t: &TailSegment) -> Result<Active> {
    let file = storage
        .open(&t.path, OpenMode::ReadWrite)
        .map_err(|e| Error::io("open", &t.path, e))?;
    debug_assert!(t.stale_end >= t.dirty_end);
    if t.stale_end > t.scan.data_end {
        zero_range(file.as_ref(), &t.path, t.scan.data_end, t.stale_end)?;
        file.sync_data()
            .map_err(|e| Error::io("fdatasync", &t.path, e))?;
    }
    let map = file.map().map_err(|e| Error::io("mmap", &t.path, e))?;
    let next_index_at = t.scan.index.last().map_or(DATA_START, |e| {
        e.offset + u64::from(t.header.index_interval)
    });
    Ok(Active {
        base: t.header.base_lsn,
        path: t.path.clone(),
        geometry: Geometry {
            segment_bytes: t.header.segment_bytes,
            index_interval: t.header.index_interval,
        },
        file,
        map,
        write_offset: t.scan.data_end,
        index: t.scan.index.clone(),
        next_index_at,
        frame_count: t.scan.frame_count,
        first_arrival_ms: t.scan.first_arrival_ms,
        last_arrival_ms: t.scan.last_arrival_ms,
        hold: Arc::new(()),
    })
}

fn zero_range(file: &dyn StorageFile, path: &Path, from: u64, to: u64) -> Result<()> {
    file.zero_range(from, to)
        .map_err(|e| Error::io("zero", path, e))
}

/// Seals, during recovery, a segment that was complete but whose seal never became durable
/// (case G): zero anything after its frames and sync, write the index and sync, write the footer
/// and sync (the same order as a live seal).
pub(crate) fn seal_now(storage: &dyn Storage, t: &TailSegment) -> Result<SegmentMeta> {
    let file = storage
        .open(&t.path, OpenMode::ReadWrite)
        .map_err(|e| Error::io("open", &t.path, e))?;
    if t.dirty_end > t.scan.data_end {
        zero_range(file.as_ref(), &t.path, t.scan.data_end, t.dirty_end)?;
    }
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &t.path, e))?;
    let geometry = Geometry {
        segment_bytes: t.header.segment_bytes,
        index_interval: t.header.index_interval,
    };
    let footer = Footer {
        base_lsn: t.header.base_lsn,
        end_lsn: t.scan.end_lsn,
        frame_count: t.scan.frame_count,
        data_end: t.scan.data_end,
        index_count: u32::try_from(t.scan.index.len()).expect("bounded by the geometry"),
        first_arrival_ms: t.scan.first_arrival_ms,
        last_arrival_ms: t.scan.last_arrival_ms,
    };
    file.write_at(&encode_index(&t.scan.index), t.scan.data_end)
        .map_err(|e| Error::io("write", &t.path, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &t.path, e))?;
    file.write_at(&footer.encode(), geometry.footer_offset())
        .map_err(|e| Error::io("write", &t.path, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &t.path, e))?;
    debug_assert_eq!(FORMAT_VERSION, 1);
    Ok(SegmentMeta {
        base: t.header.base_lsn,
        end: t.scan.end_lsn,
        path: t.path.clone(),
        file_bytes: t.header.segment_bytes,
        data_end: t.scan.data_end,
        index_count: footer.index_count,
        frame_count: t.scan.frame_count,
        first_arrival_ms: t.scan.first_arrival_ms,
        last_arrival_ms: t.scan.last_arrival_ms,
        seal_durable: true,
        hold: Arc::new(()),
    })
}
