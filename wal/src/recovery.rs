//! Opening a log directory: which segments are sealed, where the log ends, and what must be
//! repaired. Planning reads only; [`crate::Wal::open`] then carries the plan out, while
//! read-only users (`hydrant wal`, replay) use the plan as it is.
//!
//! # Decision table
//!
//! Segments are visited in LSN order. "Sealed" means a valid footer; the sealing protocol writes
//! the footer only after the segment's frames are durable, so a valid footer vouches for the data.
//!
//! | case | what is found                                              | decision                    |
//! |------|------------------------------------------------------------|-----------------------------|
//! | A    | valid header and footer, starts where the previous ended   | sealed: trust the footer    |
//! | B    | valid header and footer, starts elsewhere                  | error `SegmentGap`          |
//! | C    | header zeros or damaged (it is synced before the segment is named into the log) | error `BadSegment` |
//! | D    | footer present but naming another base LSN                 | error `BadSegment`          |
//! | E    | header or footer of a newer format version                 | error `UnsupportedVersion`  |
//! | F    | no valid footer: the tail begins here                      | scan its frames from the start |
//! | G    | tail scanned to LSN e, next segment starts at e            | the tail segment was complete: seal it now, scan the next |
//! | H    | tail scanned to LSN e, next segment starts elsewhere       | discard the later segments: no sync covering them completed |
//! | I    | scan stops at a zero length word, the data limit, or a frame from before the segment's base (a recycled file's old contents) | clean end; the rest of the segment is zeroed (and synced) before the first append |
//! | J    | scan stops at a torn frame, bad CRC, or an out-of-sequence LSN | the log ends before it: the frame was never acknowledged (acknowledged frames were synced whole); the rest of the segment is zeroed (and synced) before the first append |
//! | K    | every segment sealed                                       | a new active segment starts at the last end |
//!
//! Why the rest of the tail segment is zeroed even after a clean end (case I): a power loss can
//! keep a later frame of a group commit while dropping an earlier one. In a new file (unwritten
//! extents or written zeros) the hole reads as zeros and the scan ends there; in a recycled file it can read as an old frame
//! of the file's earlier life, and the scan ends there too, but the kept frame behind it is
//! still on disk. If the next run then appended a frame of the hole's size, a later scan would
//! walk through it into the kept frame, whose LSNs fit: records never acknowledged would come
//! back. Zeroing everything after the recovered end before the first append means that, after
//! any later crash, the segment holds past its recovered end only frames written since the
//! open, in order.
//!
//! # What opening reads, and why skipping the rest is safe
//!
//! A restart after a crash with a large backlog must be quick (hydrantd is not ready until
//! every log is open), so planning reads as little as the decisions need:
//!
//! - **Headers and footers, several at once.** Each sealed segment costs two small random reads;
//!   `prefetch` issues them from a few threads, and the decisions above are then taken in LSN
//!   order on the results exactly as if each had been read when reached (a result past the
//!   point where the plan stops, an error included, is dropped unread).
//! - **The tail's frames, whole.** Every frame of the tail is checked against its CRC as
//!   before; the kernel is asked to read the file's data ranges ahead, so a cold tail comes in
//!   large reads.
//! - **After the last frame, only where the file holds data.** Cases I and J need the last
//!   non-zero byte after the recovered end (what must be zeroed, and what counts as
//!   discarded). It is looked for only inside the ranges the file system reports as data
//!   (`SEEK_DATA`/`SEEK_HOLE`, [`StorageFile::data_ranges`]). That a range outside them reads as
//!   zeros is exactly what the file system promises for holes and unwritten extents; the
//!   zeroing that follows (cases I and J) only has to cover non-zero bytes, so it covers all of
//!   them, as before. Written blocks (a recycled file, frames of the last run, damage) are
//!   data and are read as before. A file system without `SEEK_DATA` reports the whole range,
//!   and the simulated disk does too: the power-loss model is unchanged by this.
//!
//! Case J cannot tell a torn tail from damage to synced frames in the active segment; it counts
//! the discarded bytes in the [`RecoveryReport`] so that damage shows. Damage in sealed segments is
//! never truncated: readers and `hydrant wal verify` report it with segment and offset.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::{
    Footer, FrameFault, Geometry, HeaderFault, SegmentHeader, FOOTER_LEN, FORMAT_VERSION,
    SEGMENT_HEADER_LEN,
};
use crate::ids::Lsn;
use crate::segment::{parse_segment_name, scan_frames, Scan, ScanStop, SEGMENT_SUFFIX};
use crate::storage::{Mapping, OpenMode, Storage, StorageFile};

/// A sealed segment as its footer describes it.
#[derive(Clone, Debug)]
pub struct SealedSegment {
    /// The segment file.
    pub path: PathBuf,
    /// Its header.
    pub header: SegmentHeader,
    /// Its footer.
    pub footer: Footer,
}

/// The segment where the log ends, as scanned.
#[derive(Clone, Debug)]
pub struct TailSegment {
    /// The segment file.
    pub path: PathBuf,
    /// Its header.
    pub header: SegmentHeader,
    /// What the scan of its frames found.
    pub scan: Scan,
    /// Offset one past the last non-zero byte after the valid frames that counts as a torn
    /// write or damage (equal to `scan.data_end` when the rest is clean, or when the scan
    /// stopped at a recycled file's earlier contents).
    pub dirty_end: u64,
    /// Offset one past the last non-zero byte after the valid frames, whatever it is: opening
    /// the log for appending zeroes `scan.data_end..stale_end` and syncs before it accepts an
    /// append, so that no frame written before the open (a recycled file's earlier contents,
    /// or frames of the last run that a power loss kept after a dropped one) can ever follow a
    /// frame written after it.
    pub stale_end: u64,
}

/// What opening a log found and did. Returned by [`crate::Wal::open`].
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    /// Sealed segments opened by their footers alone.
    pub sealed_segments: usize,
    /// Segments that were complete but unsealed (a crash between filling one and sealing it),
    /// sealed during recovery (case G).
    pub sealed_on_open: Vec<PathBuf>,
    /// Segments discarded because nothing in them was ever acknowledged (case H).
    pub discarded_segments: Vec<PathBuf>,
    /// Leftover spare or temporary files removed.
    pub removed_temporaries: Vec<PathBuf>,
    /// The segment the log ends in, if any.
    pub tail_segment: Option<PathBuf>,
    /// Frames found in the tail segment.
    pub tail_frames: u64,
    /// Why the tail scan stopped.
    pub tail_stop: Option<ScanStop>,
    /// Bytes after the last valid frame that held something other than zeros and were zeroed:
    /// an unacknowledged torn write, or damage (case J).
    pub discarded_bytes: u64,
    /// The first LSN of the log.
    pub first_lsn: Lsn,
    /// One past the last recovered LSN: the next append starts here.
    pub next_lsn: Lsn,
    /// How long planning took (listing, headers, footers, the tail's scan).
    pub elapsed: Duration,
    /// Of `elapsed`: reading the sealed segments' headers and footers.
    pub footers_elapsed: Duration,
    /// Of `elapsed`: scanning the tail (its frames, and whatever data follows them).
    pub tail_elapsed: Duration,
}

/// The plan: what is on disk and what must change.
#[derive(Debug)]
pub(crate) struct Plan {
    pub sealed: Vec<SealedSegment>,
    pub seal_on_open: Vec<TailSegment>,
    pub tail: Option<TailSegment>,
    pub discard: Vec<PathBuf>,
    pub temporaries: Vec<PathBuf>,
    pub first_lsn: Lsn,
    pub next_lsn: Lsn,
    pub footers_elapsed: Duration,
    pub tail_elapsed: Duration,
}

fn header_fault(segment: &Path, what: &'static str, fault: HeaderFault) -> Error {
    match fault {
        HeaderFault::UnsupportedVersion(version) => Error::UnsupportedVersion {
            segment: segment.to_path_buf(),
            version,
        },
        _ => Error::BadSegment {
            segment: segment.to_path_buf(),
            what,
            fault,
        },
    }
}

pub(crate) struct OpenedSegment {
    pub file: Arc<dyn StorageFile>,
    pub header: SegmentHeader,
}

/// Reads and checks the header and length of the segment at `path`, named for `base`.
pub(crate) fn read_header(
    storage: &dyn Storage,
    path: &Path,
    mode: OpenMode,
    base: Lsn,
) -> Result<OpenedSegment> {
    let file = storage
        .open(path, mode)
        .map_err(|e| Error::io("open", path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    let mut buf = [0u8; SEGMENT_HEADER_LEN];
    if len < SEGMENT_HEADER_LEN as u64 {
        return Err(Error::BadSegment {
            segment: path.to_path_buf(),
            what: "file length",
            fault: HeaderFault::BadField("shorter than a header"),
        });
    }
    file.read_at(&mut buf, 0)
        .map_err(|e| Error::io("read", path, e))?;
    let header = SegmentHeader::decode(&buf, base).map_err(|f| header_fault(path, "header", f))?;
    if len != header.segment_bytes {
        return Err(Error::BadSegment {
            segment: path.to_path_buf(),
            what: "file length",
            fault: HeaderFault::BadField("file length differs from the header's segment size"),
        });
    }
    Ok(OpenedSegment { file, header })
}

fn read_footer(
    file: &dyn StorageFile,
    path: &Path,
    header: &SegmentHeader,
) -> Result<Option<Footer>> {
    let mut buf = [0u8; FOOTER_LEN as usize];
    file.read_at(&mut buf, header.segment_bytes - FOOTER_LEN)
        .map_err(|e| Error::io("read", path, e))?;
    match Footer::decode(&buf) {
        Ok(f) if f.base_lsn == header.base_lsn => Ok(Some(f)),
        Ok(_) => Err(Error::BadSegment {
            segment: path.to_path_buf(),
            what: "footer",
            fault: HeaderFault::BadField("footer base LSN differs from the header's"),
        }),
        Err(HeaderFault::UnsupportedVersion(v)) if v != FORMAT_VERSION => {
            Err(Error::UnsupportedVersion {
                segment: path.to_path_buf(),
                version: v,
            })
        }
        Err(_) => Ok(None),
    }
}

/// How much of a tail segment [`scan_tail`] reads, and in what order.
///
/// The frames are read whole (each one's CRC is checked). What follows them is read only where
/// the file may hold data ([`StorageFile::data_ranges`]): a new segment's blocks past the last
/// write are unwritten extents, which read as zeros by the file system's contract and need no
/// read to know it (on a cold page cache, reading the rest of a 64 MiB tail was most of a
/// restart). The data ranges before the scan are also hinted to the kernel
/// ([`Mapping::will_need`]), so that the frames come in large reads rather than a fault at a time.
pub(crate) fn scan_tail(
    file: &dyn StorageFile,
    map: &dyn Mapping,
    path: &Path,
    header: SegmentHeader,
) -> Result<TailSegment> {
    let geometry = Geometry {
        segment_bytes: header.segment_bytes,
        index_interval: header.index_interval,
    };
    let len = map.len() as u64;
    let ranges = file
        .data_ranges(0, len)
        .map_err(|e| Error::io("seek data", path, e))?;
    for &(from, to) in &ranges {
        map.will_need(from as usize, (to - from) as usize);
    }
    let bytes = map.bytes(0, map.len());
    let scan = scan_frames(bytes, header.base_lsn, geometry, geometry.data_limit());
    // Everything after the end is zeroed when the log is opened for appending (cases I and J).
    // After a clean end in a recycled file the rest is mostly the file's earlier contents, which
    // is not a torn write: it is not counted as discarded, though it is cleared all the same,
    // because frames of the last run may hide behind it (see the module doc).
    let stale_end = last_non_zero(bytes, &ranges, scan.data_end).unwrap_or(scan.data_end);
    let dirty_end = if scan.stop == ScanStop::Recycled {
        scan.data_end
    } else {
        stale_end
    };
    Ok(TailSegment {
        path: path.to_path_buf(),
        header,
        scan,
        dirty_end,
        stale_end,
    })
}

/// One past the last non-zero byte of `bytes` at or after `from`, looking only inside
/// `ranges` (sorted, disjoint: outside them the file reads as zeros).
fn last_non_zero(bytes: &[u8], ranges: &[(u64, u64)], from: u64) -> Option<u64> {
    let end = bytes.len() as u64;
    ranges.iter().rev().find_map(|&(a, b)| {
        let (a, b) = (a.max(from), b.min(end));
        if a >= b {
            return None;
        }
        bytes[a as usize..b as usize]
            .iter()
            .rposition(|x| *x != 0)
            .map(|p| a + p as u64 + 1)
    })
}

/// A directory listing: segments (base LSN, path) in LSN order, and temporary files.
pub(crate) type Listing = (Vec<(Lsn, PathBuf)>, Vec<PathBuf>);

/// Lists the segments of a directory in LSN order, and the temporaries.
pub(crate) fn list_dir(storage: &dyn Storage, dir: &Path) -> Result<Listing> {
    let names = storage.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut segments = Vec::new();
    let mut temporaries = Vec::new();
    for name in names {
        if let Some(base) = parse_segment_name(&name) {
            segments.push((base, dir.join(&name)));
        } else if name.ends_with(".tmp") || (name.ends_with(SEGMENT_SUFFIX) && name.len() != 24) {
            temporaries.push(dir.join(&name));
        }
    }
    segments.sort();
    Ok((segments, temporaries))
}

/// What [`prefetch`] read of one segment: its header (and length), and for a good header, its
/// footer.
type Fetched = Result<(OpenedSegment, Result<Option<Footer>>)>;

/// Threads reading headers and footers at once: the reads are small and random, and a disk
/// (an SSD, a virtual disk) serves several in about the time of one.
const PREFETCH_THREADS: usize = 8;

/// Reads every segment's header and footer, several at once (on a cold page cache each is a
/// random read, and opening a log of 160 segments one read at a time waited for 320 of them in
/// turn). Only reads: [`plan`] takes the results in LSN order and decides exactly as if it had
/// read each one when it got there; a result it never gets to (after the tail) is dropped,
/// errors included.
fn prefetch(storage: &dyn Storage, segments: &[(Lsn, PathBuf)]) -> Vec<Fetched> {
    let fetch = |(base, path): &(Lsn, PathBuf)| -> Fetched {
        let opened = read_header(storage, path, OpenMode::Read, *base)?;
        let footer = read_footer(opened.file.as_ref(), path, &opened.header);
        Ok((opened, footer))
    };
    let threads = PREFETCH_THREADS.min(segments.len());
    if threads <= 1 {
        return segments.iter().map(fetch).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut parts: Vec<Vec<(usize, Fetched)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut got = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(segment) = segments.get(i) else {
                            return got;
                        };
                        got.push((i, fetch(segment)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut all: Vec<(usize, Fetched)> = parts.drain(..).flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    debug_assert!(all.iter().enumerate().all(|(k, (i, _))| k == *i));
    all.into_iter().map(|(_, f)| f).collect()
}

/// Plans the opening of the log in `dir`, reading only.
pub(crate) fn plan(storage: &dyn Storage, dir: &Path) -> Result<Plan> {
    let (segments, temporaries) = list_dir(storage, dir)?;
    let started = Instant::now();
    let mut fetched = prefetch(storage, &segments).into_iter();
    let mut plan = Plan {
        sealed: Vec::new(),
        seal_on_open: Vec::new(),
        tail: None,
        discard: Vec::new(),
        temporaries,
        first_lsn: segments.first().map_or(Lsn::ZERO, |s| s.0),
        next_lsn: Lsn::ZERO,
        footers_elapsed: Duration::ZERO,
        tail_elapsed: Duration::ZERO,
    };
    let mut expected: Option<Lsn> = None;
    let mut i = 0;
    // Sealed phase: cases A, B, D, E.
    let mut tail_header = None;
    while i < segments.len() {
        let (base, path) = &segments[i];
        let (opened, footer) = fetched.next().expect("one result per segment")?;
        if let Some(e) = expected {
            if e != *base {
                return Err(Error::SegmentGap {
                    segment: path.clone(),
                    expected: e,
                    found: *base,
                });
            }
        }
        match footer? {
            Some(footer) => {
                expected = Some(footer.end_lsn);
                plan.sealed.push(SealedSegment {
                    path: path.clone(),
                    header: opened.header,
                    footer,
                });
                i += 1;
            }
            None => {
                tail_header = Some(opened);
                break; // case F
            }
        }
    }
    plan.footers_elapsed = started.elapsed();
    // Tail phase: cases F, G, H, I, J.
    while i < segments.len() {
        let path = &segments[i].1;
        // The tail phase reads headers only: a footer read ahead for these is not looked at.
        let opened = match tail_header.take() {
            Some(opened) => opened,
            None => fetched.next().expect("one result per segment")?.0,
        };
        if let Some(e) = expected {
            if e != opened.header.base_lsn {
                // The previous tail segment did not reach this one's base: case H for the rest.
                plan.discard
                    .extend(segments[i..].iter().map(|s| s.1.clone()));
                break;
            }
        }
        let map = opened.file.map().map_err(|e| Error::io("mmap", path, e))?;
        let tail = scan_tail(opened.file.as_ref(), map.as_ref(), path, opened.header)?;
        expected = Some(tail.scan.end_lsn);
        if let Some(prev) = plan.tail.take() {
            plan.seal_on_open.push(prev); // case G
        }
        plan.tail = Some(tail);
        i += 1;
    }
    plan.tail_elapsed = started.elapsed() - plan.footers_elapsed;
    plan.next_lsn = match (&plan.tail, plan.sealed.last()) {
        (Some(t), _) => t.scan.end_lsn,
        (None, Some(s)) => s.footer.end_lsn,
        (None, None) => plan.first_lsn,
    };
    if plan.sealed.is_empty() && plan.seal_on_open.is_empty() {
        plan.first_lsn = plan
            .tail
            .as_ref()
            .map_or(plan.next_lsn, |t| t.header.base_lsn);
    }
    Ok(plan)
}

impl Plan {
    pub(crate) fn report(&self, started: Instant) -> RecoveryReport {
        RecoveryReport {
            sealed_segments: self.sealed.len(),
            sealed_on_open: self.seal_on_open.iter().map(|t| t.path.clone()).collect(),
            discarded_segments: self.discard.clone(),
            removed_temporaries: self.temporaries.clone(),
            tail_segment: self.tail.as_ref().map(|t| t.path.clone()),
            tail_frames: self.tail.as_ref().map_or(0, |t| t.scan.frame_count),
            tail_stop: self.tail.as_ref().map(|t| t.scan.stop),
            discarded_bytes: self
                .tail
                .as_ref()
                .map_or(0, |t| t.dirty_end - t.scan.data_end),
            first_lsn: self.first_lsn,
            next_lsn: self.next_lsn,
            elapsed: started.elapsed(),
            footers_elapsed: self.footers_elapsed,
            tail_elapsed: self.tail_elapsed,
        }
    }
}

/// True for scan stops that mean damage or a torn write rather than a clean end.
#[must_use]
pub fn is_torn(stop: ScanStop) -> bool {
    matches!(stop, ScanStop::Fault(_) | ScanStop::LsnMismatch { .. })
}

/// The fault a scan stop stands for, for error reports.
#[must_use]
pub fn stop_fault(stop: ScanStop) -> Option<FrameFault> {
    match stop {
        ScanStop::Fault(f) => Some(f),
        ScanStop::LsnMismatch { .. } => Some(FrameFault::BadRecords),
        ScanStop::Zero | ScanStop::Full | ScanStop::Recycled => None,
    }
}
