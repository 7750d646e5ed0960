//! Reading the log: frames straight out of the segments' memory maps, from any LSN.
//!
//! A reader finds the segment holding its LSN by base LSN (segments are sorted by it), then the
//! frame by the segment's sparse index (in the footer's index block for sealed segments, in memory
//! for the active one), then walks frames forward. It never reads past its limit: the durable end
//! by default, so a record a crash could still erase never leaves the log. A reader keeps its
//! current segment's map, and with it the file's pages, even after retention deleted the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{
    decode_frame, decode_index, FrameDecode, FrameFault, FrameHeader, IndexEntry, RecordIter,
    DATA_START, FRAME_HEADER_LEN,
};
use crate::ids::Lsn;
use crate::storage::{Mapping, OpenMode, Storage};

/// How far a reader of a live log may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadLimit {
    /// Up to the durable end: only records that survive a power loss (delivery uses this, in
    /// every durability mode).
    Durable,
    /// Up to the written end: also records a power loss could still erase (diagnostics only).
    Written,
}

/// A segment as a reader needs it.
#[derive(Debug)]
pub(crate) enum SourceSegment {
    /// A sealed segment: complete, its frames end at `data_end`.
    Sealed {
        /// Keeps the live log from recycling the file while this reader may read it.
        hold: Arc<()>,
        base: Lsn,
        path: PathBuf,
        data_end: u64,
        /// Entries in the footer's index block, when the footer is known to be durable.
        index_count: Option<u32>,
    },
    /// A segment still being written (or whose limit lies inside it).
    Open {
        /// As for `Sealed`.
        hold: Arc<()>,
        base: Lsn,
        path: PathBuf,
        map: Arc<dyn Mapping>,
        index: Vec<IndexEntry>,
        limit_offset: u64,
    },
}

/// Where a reader gets its segments: the live log, or a read-only view of a directory.
pub(crate) trait SegmentSource: Send + Sync + fmt::Debug {
    fn storage(&self) -> &dyn Storage;
    /// The segment holding `lsn`, `None` when `lsn` is at the limit.
    fn locate(&self, lsn: Lsn) -> Result<Option<SourceSegment>>;
    /// The current limit inside the segment based at `base`: (limit LSN, limit offset, complete).
    /// `None` when the segment is no longer in the log.
    fn refresh(&self, base: Lsn) -> Result<Option<(Lsn, u64, bool)>>;
}

/// How far ahead of a reader's position the kernel is asked to read ([`Mapping::will_need`]):
/// a reader walks a segment front to back, and without the hint a cold segment comes in a
/// page fault's readahead at a time (`hydrant replay` read at 0.78 of `cat`'s rate).
const READ_AHEAD: u64 = 16 << 20;
/// A reader lets the pages behind it go a window at a time (see `Cursor::release_behind`).
const RELEASE_WINDOW: u64 = 4 << 20;

struct Cursor {
    _hold: Arc<()>,
    base: Lsn,
    path: PathBuf,
    map: Arc<dyn Mapping>,
    offset: u64,
    limit_offset: u64,
    complete: bool,
    /// The kernel was asked to read ahead up to here.
    ahead: u64,
    /// Pages below here left this process's resident set ([`Mapping::release`]).
    released: u64,
}

impl Cursor {
    /// Keeps between half of [`READ_AHEAD`] and all of it asked for ahead of the position,
    /// below the limit.
    fn read_ahead(&mut self) {
        if self.ahead >= self.limit_offset || self.ahead >= self.offset + READ_AHEAD / 2 {
            return;
        }
        let from = self.ahead.max(self.offset);
        let to = (self.offset + READ_AHEAD).min(self.limit_offset);
        if to > from {
            self.map.will_need(from as usize, (to - from) as usize);
        }
        self.ahead = to;
    }

    /// Lets the pages this reader has gone past leave the process's resident set, a window at
    /// a time: a reader of a backlog walks through whole segments of 64 MiB, whose pages would
    /// otherwise stay counted in the daemon's RSS for as long as each segment is mapped (the
    /// active segment's map lives until rotation). Called with no frame borrowed (`next_frame`
    /// takes the reader mutably), for bytes before `self.offset` only.
    fn release_behind(&mut self) {
        if self.offset < self.released + RELEASE_WINDOW {
            return;
        }
        self.map.release(
            self.released as usize,
            (self.offset - self.released) as usize,
        );
        self.released = self.offset;
    }
}

/// A reader of frames, from an LSN on. Not `Clone`: make another with [`crate::Wal::reader`].
pub struct Reader {
    source: Arc<dyn SegmentSource>,
    next: Lsn,
    cur: Option<Cursor>,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// One frame as read: a batch of records with consecutive LSNs, borrowed from the segment map.
#[derive(Clone, Debug)]
pub struct Frame<'a> {
    header: FrameHeader,
    records: &'a [u8],
    annex: &'a [u8],
    skip: u32,
    segment_base: Lsn,
    offset: u64,
}

impl<'a> Frame<'a> {
    /// LSN of the frame's first record (the reader may skip some: see [`Frame::records`]).
    #[must_use]
    pub fn first_lsn(&self) -> Lsn {
        self.header.first_lsn
    }

    /// One past the LSN of the frame's last record.
    #[must_use]
    pub fn end_lsn(&self) -> Lsn {
        self.header.end_lsn()
    }

    /// Arrival time of the batch, ms since the Unix epoch.
    #[must_use]
    pub fn arrival_ms(&self) -> u64 {
        self.header.arrival_ms
    }

    /// The records of the frame at or after the reader's start LSN, with their LSNs.
    pub fn records(&self) -> impl Iterator<Item = (Lsn, &'a [u8])> + 'a {
        let first = self.header.first_lsn;
        let it = RecordIter::new(self.records, self.header.record_count);
        it.enumerate()
            .skip(self.skip as usize)
            .map(move |(i, r)| (first.plus(i as u64), r))
    }

    /// The frame's record area: all its records, each after its length word, in LSN order.
    /// Every slice [`Frame::records`] yields lies inside it, so a caller can copy the area once
    /// and slice the copy instead of copying each record.
    #[must_use]
    pub fn record_area(&self) -> &'a [u8] {
        self.records
    }

    /// The frame's annex (empty when it has none): what its appender passed to
    /// [`crate::Wal::append_with_annex`].
    #[must_use]
    pub fn annex(&self) -> &'a [u8] {
        self.annex
    }

    /// Number of records [`Frame::records`] yields.
    #[must_use]
    pub fn len(&self) -> usize {
        (self.header.record_count - self.skip) as usize
    }

    /// True when the frame yields no record (never, for frames a reader returns).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame's size on disk, padding included.
    #[must_use]
    pub fn disk_bytes(&self) -> u64 {
        self.header.padded_len()
    }

    /// Base LSN of the segment holding the frame, and the frame's offset in it.
    #[must_use]
    pub fn location(&self) -> (Lsn, u64) {
        (self.segment_base, self.offset)
    }
}

impl Reader {
    pub(crate) fn new(source: Arc<dyn SegmentSource>, from: Lsn) -> Result<Reader> {
        // Check `from` now, so that a bad start fails here rather than at the first read.
        drop(source.locate(from)?);
        Ok(Reader {
            source,
            next: from,
            cur: None,
        })
    }

    /// The LSN of the next record this reader yields.
    #[must_use]
    pub fn next_lsn(&self) -> Lsn {
        self.next
    }

    /// The next frame, or `None` at the limit (a later call may find more in a live log).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when bytes below the limit are not a valid frame; [`Error::Truncated`]
    /// when retention deleted the next segment before the reader reached it; [`Error::Io`].
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>> {
        let (offset, header) = loop {
            let cur = match &mut self.cur {
                Some(c) => c,
                None => match self.source.locate(self.next)? {
                    None => return Ok(None),
                    Some(seg) => match open_cursor(self.source.storage(), seg, self.next) {
                        Ok(c) => self.cur.insert(c),
                        Err(Error::Truncated { .. }) => {
                            // Deleted between locating and opening: ask again for the bounds.
                            drop(self.source.locate(self.next)?);
                            return Err(Error::Truncated {
                                requested: self.next,
                                first: self.next,
                            });
                        }
                        Err(e) => return Err(e),
                    },
                },
            };
            if cur.offset < cur.limit_offset {
                cur.release_behind();
                cur.read_ahead();
                let bytes = cur.map.bytes(0, cur.limit_offset as usize);
                let at = cur.offset;
                let header = match decode_frame(bytes, at as usize) {
                    FrameDecode::Frame(f) => f.header,
                    FrameDecode::End => return Err(corrupt(&cur.path, at, FrameFault::Short)),
                    FrameDecode::Fault(fault) => return Err(corrupt(&cur.path, at, fault)),
                };
                if header.first_lsn > self.next {
                    return Err(corrupt(&cur.path, at, FrameFault::BadRecords));
                }
                cur.offset += header.padded_len();
                if header.end_lsn() <= self.next {
                    continue;
                }
                break (at, header);
            }
            if cur.complete {
                self.cur = None;
                continue;
            }
            match self.source.refresh(cur.base)? {
                Some((_, limit_offset, complete)) => {
                    if limit_offset == cur.limit_offset && !complete {
                        return Ok(None);
                    }
                    cur.limit_offset = limit_offset;
                    cur.complete = complete;
                }
                None => self.cur = None,
            }
        };
        let Some(cur) = &self.cur else {
            unreachable!("the loop breaks only with a cursor");
        };
        let skip =
            u32::try_from(self.next.0 - header.first_lsn.0).expect("below the frame's count");
        let body = cur.map.bytes(
            offset as usize + FRAME_HEADER_LEN,
            header.len as usize - FRAME_HEADER_LEN,
        );
        // `decode_frame` checked that the annex fits in the body.
        let annex_start = body.len() - header.annex_total();
        let records = &body[..annex_start];
        let annex = &body[annex_start..annex_start + header.annex_len as usize];
        self.next = header.end_lsn();
        Ok(Some(Frame {
            header,
            records,
            annex,
            skip,
            segment_base: cur.base,
            offset,
        }))
    }
}

fn corrupt(path: &Path, offset: u64, fault: FrameFault) -> Error {
    Error::Corrupt {
        segment: path.to_path_buf(),
        offset,
        fault,
    }
}

fn start_offset(index: &[IndexEntry], lsn: Lsn) -> u64 {
    let i = index.partition_point(|e| e.lsn <= lsn);
    if i == 0 {
        DATA_START
    } else {
        index[i - 1].offset
    }
}

fn open_cursor(storage: &dyn Storage, seg: SourceSegment, lsn: Lsn) -> Result<Cursor> {
    // A sealed segment is read to its data end and complete; the open one to its limit.
    let (hold, base, path, map, offset, limit_offset, complete) = match seg {
        SourceSegment::Sealed {
            hold,
            base,
            path,
            data_end,
            index_count,
        } => {
            let file = storage.open(&path, OpenMode::Read).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    // The caller re-locates for the log's real first LSN.
                    Error::Truncated {
                        requested: lsn,
                        first: lsn,
                    }
                } else {
                    Error::io("open", &path, e)
                }
            })?;
            let map = file.map().map_err(|e| Error::io("mmap", &path, e))?;
            let offset = match index_count {
                Some(count) if lsn > base && count > 0 => {
                    let len = map.len().saturating_sub(data_end as usize);
                    let entries = decode_index(map.bytes(data_end as usize, len), count).map_err(
                        |fault| Error::BadSegment {
                            segment: path.clone(),
                            what: "index",
                            fault,
                        },
                    )?;
                    start_offset(&entries, lsn)
                }
                _ => DATA_START,
            };
            (hold, base, path, map, offset, data_end, true)
        }
        SourceSegment::Open {
            hold,
            base,
            path,
            map,
            index,
            limit_offset,
        } => {
            let offset = start_offset(&index, lsn);
            (hold, base, path, map, offset, limit_offset, false)
        }
    };
    Ok(Cursor {
        _hold: hold,
        base,
        path,
        map,
        offset,
        limit_offset,
        complete,
        ahead: offset,
        released: offset,
    })
}
