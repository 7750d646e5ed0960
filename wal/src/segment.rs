//! Segments: naming, and scanning the frames of one segment.
//!
//! A segment is named by the first LSN it holds, zero-padded to 20 digits so that sorting names
//! sorts the log: `00000000000000000000.seg`, `00000000000001048576.seg`, ... Files that are not
//! yet part of the log end in `.tmp` (the spare segment being prepared) and are deleted on open.

use std::path::{Path, PathBuf};

use crate::format::{decode_frame, FrameDecode, FrameFault, Geometry, IndexEntry, DATA_START};
use crate::ids::Lsn;

/// Suffix of live segment files.
pub const SEGMENT_SUFFIX: &str = ".seg";

/// Name of the spare segment being prepared.
pub const SPARE_NAME: &str = "spare.tmp";

/// Name of the lock file of a log directory (held exclusively by the process appending).
pub const LOCK_NAME: &str = "LOCK";

/// Name of the readers' lock file: read-only users hold it shared, and the log recycles a retired
/// segment only when it can take it exclusively, so no other process is reading a file that is
/// about to be overwritten.
pub const READERS_NAME: &str = "READERS";

/// Name of a retired segment waiting to be reused as the next spare.
pub const RECYCLE_NAME: &str = "recycle.tmp";

/// The file name of the segment whose first LSN is `base`.
#[must_use]
pub fn segment_file_name(base: Lsn) -> String {
    format!("{:020}{SEGMENT_SUFFIX}", base.0)
}

/// The path of the segment whose first LSN is `base` in `dir`.
#[must_use]
pub fn segment_path(dir: &Path, base: Lsn) -> PathBuf {
    dir.join(segment_file_name(base))
}

/// The base LSN a segment file name stands for, if it is one.
#[must_use]
pub fn parse_segment_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Lsn)
}

/// Why a scan of a segment's frames stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanStop {
    /// A zero length word: the rest is preallocated space. The normal end of an active segment.
    Zero,
    /// The data region is full: no further frame can start.
    Full,
    /// The bytes at the stop offset are not a valid frame (torn or corrupt).
    Fault(FrameFault),
    /// A valid frame from before the segment's base LSN: the segment is a recycled file and this
    /// is what it held before. A clean end, like [`ScanStop::Zero`].
    Recycled,
    /// A valid frame whose first LSN is at or after the segment's base but not the expected one:
    /// damage.
    LsnMismatch {
        /// The LSN the frame carries.
        found: Lsn,
    },
}

/// What a scan of a segment's frames found.
#[derive(Clone, Debug)]
pub struct Scan {
    /// One past the last LSN of the valid frames.
    pub end_lsn: Lsn,
    /// Offset one past the last valid frame (its padding included).
    pub data_end: u64,
    /// Number of valid frames.
    pub frame_count: u64,
    /// The sparse index of the valid frames.
    pub index: Vec<IndexEntry>,
    /// Arrival time of the first valid frame, or 0.
    pub first_arrival_ms: u64,
    /// Arrival time of the last valid frame, or 0.
    pub last_arrival_ms: u64,
    /// Why the scan stopped, at `data_end`.
    pub stop: ScanStop,
}

/// Scans the frames of a segment image from [`DATA_START`], expecting the first to start at
/// `base`, until the first zero, invalid or out-of-sequence frame, or `limit` (an offset).
///
/// Reads only `bytes`; never panics on any input.
#[must_use]
pub fn scan_frames(bytes: &[u8], base: Lsn, geometry: Geometry, limit: u64) -> Scan {
    let limit = limit.min(geometry.data_limit()).min(bytes.len() as u64);
    let mut scan = Scan {
        end_lsn: base,
        data_end: DATA_START,
        frame_count: 0,
        index: Vec::new(),
        first_arrival_ms: 0,
        last_arrival_ms: 0,
        stop: ScanStop::Full,
    };
    let mut next_index_at = DATA_START;
    while scan.data_end < limit {
        let at = scan.data_end as usize;
        let window = &bytes[..limit as usize];
        let frame = match decode_frame(window, at) {
            FrameDecode::Frame(f) => f,
            FrameDecode::End => {
                scan.stop = ScanStop::Zero;
                return scan;
            }
            FrameDecode::Fault(fault) => {
                scan.stop = ScanStop::Fault(fault);
                return scan;
            }
        };
        if frame.header.first_lsn < base {
            scan.stop = ScanStop::Recycled;
            return scan;
        }
        if frame.header.first_lsn != scan.end_lsn {
            scan.stop = ScanStop::LsnMismatch {
                found: frame.header.first_lsn,
            };
            return scan;
        }
        if scan.data_end >= next_index_at {
            scan.index.push(IndexEntry {
                lsn: scan.end_lsn,
                offset: scan.data_end,
            });
            next_index_at = scan.data_end + u64::from(geometry.index_interval);
        }
        if scan.frame_count == 0 {
            scan.first_arrival_ms = frame.header.arrival_ms;
        }
        scan.last_arrival_ms = frame.header.arrival_ms;
        scan.frame_count += 1;
        scan.end_lsn = frame.header.end_lsn();
        scan.data_end += frame.header.padded_len();
    }
    scan.stop = ScanStop::Full;
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_lsn_and_round_trip() {
        assert_eq!(segment_file_name(Lsn(42)), "00000000000000000042.seg");
        assert_eq!(
            parse_segment_name("00000000000000000042.seg"),
            Some(Lsn(42))
        );
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_segment_name(SPARE_NAME), None);
        assert!(segment_file_name(Lsn(9)) < segment_file_name(Lsn(10)));
    }
}
