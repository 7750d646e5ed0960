//! Read-only access to a log directory, whether or not a `hydrantd` has it open: listing
//! (`hydrant wal stat`), reading (`hydrant wal dump`, `hydrant replay`) and full verification
//! (`hydrant wal verify`). Nothing here writes or repairs; the same recovery plan and frame
//! decoder as the live log decide where the log ends. Views and `verify` hold the readers' lock
//! shared, so a live log in another process deletes rather than recycles (overwrites) a segment
//! while they read.
//!
//! [`WalView::open`] shows the log as opening it now would recover it: up to what is *written*.
//! [`WalView::open_durable`] stops at the durable end the live log published (see
//! [`crate::durable_mark`]), for readers that deliver what they read (`hydrant replay`): a
//! written but unsynced record can still be lost to a power loss and its LSN reused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::durable_mark::read_durable_mark;
use crate::error::{Error, IoError, Result};
use crate::format::{decode_frame, decode_index, FrameDecode, Geometry, DATA_START};
use crate::ids::Lsn;
use crate::reader::{Reader, SegmentSource, SourceSegment};
use crate::recovery::{self, is_torn, list_dir, read_header, scan_tail};
use crate::segment::ScanStop;
use crate::storage::{Mapping, OpenMode, StdStorage, Storage};

/// One segment, as `stat` and the live log describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment file.
    pub path: PathBuf,
    /// LSN of its first record.
    pub base_lsn: Lsn,
    /// One past the LSN of its last record.
    pub end_lsn: Lsn,
    /// True when the segment has a valid footer.
    pub sealed: bool,
    /// Number of frames.
    pub frame_count: u64,
    /// Bytes of frames.
    pub data_bytes: u64,
    /// The file's size.
    pub file_bytes: u64,
    /// Arrival time of its first frame (ms since the epoch; 0 when empty).
    pub first_arrival_ms: u64,
    /// Arrival time of its last frame (ms since the epoch; 0 when empty).
    pub last_arrival_ms: u64,
}

#[derive(Debug)]
enum StaticSegment {
    Sealed {
        info: SegmentInfo,
        index_count: u32,
        data_end: u64,
    },
    Tail {
        info: SegmentInfo,
        map: Arc<dyn Mapping>,
        data_end: u64,
    },
}

impl StaticSegment {
    fn info(&self) -> &SegmentInfo {
        match self {
            StaticSegment::Sealed { info, .. } | StaticSegment::Tail { info, .. } => info,
        }
    }
}

#[derive(Debug)]
struct StaticSource {
    storage: Arc<dyn Storage>,
    segments: Vec<StaticSegment>,
    /// The readers' lock, held shared so that a live log in another process does not recycle a
    /// segment this view may read (it deletes it instead; the open map stays valid).
    _readers: Option<Box<dyn std::fmt::Debug + Send + Sync>>,
}

/// A read-only view of a log directory as it would open now.
#[derive(Debug)]
pub struct WalView {
    source: Arc<StaticSource>,
}

impl WalView {
    /// Opens a read-only view of the log in `dir` on the real file system.
    ///
    /// # Errors
    /// The errors opening the log would give ([`Error::SegmentGap`], [`Error::BadSegment`], ...).
    pub fn open(dir: impl AsRef<Path>) -> Result<WalView> {
        WalView::open_with(StdStorage::shared(), dir.as_ref())
    }

    /// Opens a read-only view of the log in `dir` on `storage`.
    ///
    /// # Errors
    /// As [`WalView::open`].
    pub fn open_with(storage: Arc<dyn Storage>, dir: &Path) -> Result<WalView> {
        Ok(WalView {
            source: Arc::new(StaticSource::load(storage, dir)?),
        })
    }

    /// Opens a read-only view of the log in `dir` on the real file system that ends at the
    /// durable end: the mark the live log publishes after every sync, or, without a valid mark
    /// (a log last opened by a version without it, or a mark torn by a power loss), the end of
    /// the last segment whose footer vouches for it. Every record in the view survives a power
    /// loss; every record acknowledged under `sync` durability before the view opened is in it.
    ///
    /// # Errors
    /// As [`WalView::open`].
    pub fn open_durable(dir: impl AsRef<Path>) -> Result<WalView> {
        WalView::open_durable_with(StdStorage::shared(), dir.as_ref())
    }

    /// As [`WalView::open_durable`], on `storage`.
    ///
    /// # Errors
    /// As [`WalView::open`].
    pub fn open_durable_with(storage: Arc<dyn Storage>, dir: &Path) -> Result<WalView> {
        let mut source = StaticSource::load(storage.clone(), dir)?;
        let mark = read_durable_mark(storage.as_ref(), dir)?;
        // A sealed segment's footer is written only after its frames are durable.
        let vouched = source
            .segments
            .iter()
            .filter(|s| matches!(s, StaticSegment::Sealed { .. }))
            .map(|s| s.info().end_lsn)
            .max();
        let bound = match (mark, vouched) {
            (Some(m), Some(v)) => m.max(v),
            (Some(m), None) => m,
            (None, Some(v)) => v,
            (None, None) => source
                .segments
                .first()
                .map_or(Lsn::ZERO, |s| s.info().base_lsn),
        };
        source.clip(bound);
        Ok(WalView {
            source: Arc::new(source),
        })
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> impl Iterator<Item = &SegmentInfo> {
        self.source.segments.iter().map(StaticSegment::info)
    }

    /// The first LSN in the log.
    #[must_use]
    pub fn first_lsn(&self) -> Lsn {
        self.source
            .segments
            .first()
            .map_or(Lsn::ZERO, |s| s.info().base_lsn)
    }

    /// One past the last LSN in the log.
    #[must_use]
    pub fn next_lsn(&self) -> Lsn {
        self.source
            .segments
            .last()
            .map_or(Lsn::ZERO, |s| s.info().end_lsn)
    }

    /// A reader from `from` to the end of the log.
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::BeyondEnd`] when `from` is outside the log.
    pub fn reader(&self, from: Lsn) -> Result<Reader> {
        Reader::new(self.source.clone(), from)
    }
}

impl StaticSource {
    /// Plans the log in `dir` as opening it would, holding the readers' lock shared.
    fn load(storage: Arc<dyn Storage>, dir: &Path) -> Result<StaticSource> {
        let readers = storage
            .lock_shared(&dir.join(crate::segment::READERS_NAME))
            .ok();
        let plan = recovery::plan(storage.as_ref(), dir)?;
        let mut segments = Vec::new();
        for s in &plan.sealed {
            segments.push(StaticSegment::Sealed {
                info: SegmentInfo {
                    path: s.path.clone(),
                    base_lsn: s.header.base_lsn,
                    end_lsn: s.footer.end_lsn,
                    sealed: true,
                    frame_count: s.footer.frame_count,
                    data_bytes: s.footer.data_end - DATA_START,
                    file_bytes: s.header.segment_bytes,
                    first_arrival_ms: s.footer.first_arrival_ms,
                    last_arrival_ms: s.footer.last_arrival_ms,
                },
                index_count: s.footer.index_count,
                data_end: s.footer.data_end,
            });
        }
        for t in plan.seal_on_open.iter().chain(plan.tail.iter()) {
            let file = storage
                .open(&t.path, OpenMode::Read)
                .map_err(|e| Error::io("open", &t.path, e))?;
            let map = file.map().map_err(|e| Error::io("mmap", &t.path, e))?;
            segments.push(StaticSegment::Tail {
                info: SegmentInfo {
                    path: t.path.clone(),
                    base_lsn: t.header.base_lsn,
                    end_lsn: t.scan.end_lsn,
                    sealed: false,
                    frame_count: t.scan.frame_count,
                    data_bytes: t.scan.data_end - DATA_START,
                    file_bytes: t.header.segment_bytes,
                    first_arrival_ms: t.scan.first_arrival_ms,
                    last_arrival_ms: t.scan.last_arrival_ms,
                },
                map,
                data_end: t.scan.data_end,
            });
        }
        Ok(StaticSource {
            storage,
            segments,
            _readers: readers,
        })
    }

    /// Cuts the view at `bound` (or at the last frame boundary below it): segments that start
    /// at or after it go (the first one stays, empty), the segment holding it ends there.
    fn clip(&mut self, bound: Lsn) {
        let mut keep = 0;
        for (i, seg) in self.segments.iter_mut().enumerate() {
            let info = seg.info();
            if info.base_lsn >= bound && i > 0 {
                break;
            }
            keep = i + 1;
            if info.end_lsn <= bound {
                continue;
            }
            let StaticSegment::Tail {
                info,
                map,
                data_end,
            } = seg
            else {
                // Sealed segments end at or below the bound (their ends are part of it).
                debug_assert!(false, "a sealed segment past the durable bound");
                continue;
            };
            let bytes = map.bytes(0, map.len());
            let limit = (*data_end as usize).min(bytes.len());
            let mut at = DATA_START;
            let (mut lsn, mut frames, mut last_arrival) = (info.base_lsn, 0u64, 0u64);
            while at < *data_end {
                match decode_frame(&bytes[..limit], at as usize) {
                    FrameDecode::Frame(fr) if fr.header.end_lsn() <= bound => {
                        lsn = fr.header.end_lsn();
                        last_arrival = fr.header.arrival_ms;
                        frames += 1;
                        at += fr.header.padded_len();
                    }
                    _ => break,
                }
            }
            info.end_lsn = lsn;
            info.frame_count = frames;
            info.data_bytes = at - DATA_START;
            info.last_arrival_ms = last_arrival;
            if frames == 0 {
                info.first_arrival_ms = 0;
            }
            *data_end = at;
        }
        self.segments.truncate(keep);
        // Past a cut segment nothing else may follow.
        if let Some(i) = self
            .segments
            .windows(2)
            .position(|w| w[0].info().end_lsn != w[1].info().base_lsn)
        {
            self.segments.truncate(i + 1);
        }
    }
}

impl SegmentSource for StaticSource {
    fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    fn locate(&self, lsn: Lsn) -> Result<Option<SourceSegment>> {
        let first = self
            .segments
            .first()
            .map_or(Lsn::ZERO, |s| s.info().base_lsn);
        let end = self.segments.last().map_or(Lsn::ZERO, |s| s.info().end_lsn);
        if lsn < first {
            return Err(Error::Truncated {
                requested: lsn,
                first,
            });
        }
        if lsn > end {
            return Err(Error::BeyondEnd {
                requested: lsn,
                end,
            });
        }
        if lsn == end {
            return Ok(None);
        }
        let i = self
            .segments
            .partition_point(|s| s.info().base_lsn <= lsn)
            .saturating_sub(1);
        Ok(Some(match &self.segments[i] {
            StaticSegment::Sealed {
                info,
                index_count,
                data_end,
            } => SourceSegment::Sealed {
                hold: Arc::new(()),
                base: info.base_lsn,
                path: info.path.clone(),
                data_end: *data_end,
                index_count: Some(*index_count),
            },
            StaticSegment::Tail {
                info,
                map,
                data_end,
            } => SourceSegment::Open {
                hold: Arc::new(()),
                base: info.base_lsn,
                path: info.path.clone(),
                map: map.clone(),
                index: Vec::new(),
                limit_offset: *data_end,
            },
        }))
    }

    fn refresh(&self, base: Lsn) -> Result<Option<(Lsn, u64, bool)>> {
        Ok(self
            .segments
            .iter()
            .find(|s| s.info().base_lsn == base)
            .map(|s| match s {
                StaticSegment::Sealed { info, data_end, .. }
                | StaticSegment::Tail { info, data_end, .. } => (info.end_lsn, *data_end, true),
            }))
    }
}

/// How bad a finding of [`verify`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Expected after a crash and repaired by the next open (a torn tail, an unsealed segment).
    Warning,
    /// Damage to data the log vouches for. Opening the log or reading it will fail.
    Error,
}

/// One finding of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// How bad it is.
    pub severity: Severity,
    /// The segment file.
    pub segment: PathBuf,
    /// The byte offset in it, when the finding has one.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

/// What [`verify`] checked and found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: usize,
    /// Frames checked (every byte of each under its CRC).
    pub frames: u64,
    /// Records in those frames.
    pub records: u64,
    /// Findings, in log order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing worse than a warning was found.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.problems.iter().all(|p| p.severity < Severity::Error)
    }
}

/// Verifies every frame, index block and footer of the log in `dir`, read-only, reporting every
/// problem with its segment and offset rather than stopping at the first.
///
/// Safe beside a live log in another process: it holds the readers' lock shared for the whole
/// scan, so no segment is recycled (renamed away and overwritten) under it; a segment that
/// retention deletes after the listing is skipped when every segment listed before it is gone
/// too (retention deletes oldest first), and reported as missing otherwise.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be listed or the readers' lock not taken.
pub fn verify(storage: &dyn Storage, dir: &Path) -> Result<VerifyReport> {
    let readers_path = dir.join(crate::segment::READERS_NAME);
    let _readers = match storage.lock_shared(&readers_path) {
        Ok(guard) => Some(guard),
        // No log of this version was ever opened here: nothing live to keep out.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("lock", &readers_path, e)),
    };
    let (segments, _) = list_dir(storage, dir)?;
    let mut report = VerifyReport::default();
    let mut expected: Option<Lsn> = None;
    let n = segments.len();
    for (i, (base, path)) in segments.iter().enumerate() {
        let is_last = i + 1 == n;
        let problem = |severity, offset, what: String| Problem {
            severity,
            segment: path.clone(),
            offset,
            what,
        };
        let opened = match read_header(storage, path, OpenMode::Read, *base) {
            Ok(o) => o,
            Err(Error::Io(IoError { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound
                    && segments[..i]
                        .iter()
                        .all(|(_, p)| matches!(storage.open(p, OpenMode::Read), Err(e) if e.kind() == std::io::ErrorKind::NotFound)) =>
            {
                // Deleted by retention after the listing.
                expected = None;
                continue;
            }
            Err(e) => {
                report.segments += 1;
                report
                    .problems
                    .push(problem(Severity::Error, Some(0), e.to_string()));
                expected = None;
                continue;
            }
        };
        report.segments += 1;
        let h = opened.header;
        if let Some(e) = expected {
            if e != h.base_lsn {
                report.problems.push(problem(
                    Severity::Error,
                    None,
                    format!(
                        "gap: the previous segment ends at LSN {e}, this one starts at {}",
                        h.base_lsn
                    ),
                ));
            }
        }
        let map = match opened.file.map() {
            Ok(m) => m,
            Err(e) => {
                report
                    .problems
                    .push(problem(Severity::Error, None, format!("mmap: {e}")));
                expected = None;
                continue;
            }
        };
        let geometry = Geometry {
            segment_bytes: h.segment_bytes,
            index_interval: h.index_interval,
        };
        let bytes = map.bytes(0, map.len());
        let footer =
            crate::format::Footer::decode(&bytes[geometry.footer_offset() as usize..]).ok();
        match footer {
            Some(f) => {
                // Sealed: every frame up to data_end must be valid and continuous.
                let mut at = DATA_START;
                let mut lsn = h.base_lsn;
                let mut frames = 0u64;
                let mut offsets = Vec::new();
                let data_end = f.data_end.min(geometry.data_limit());
                while at < data_end {
                    match decode_frame(&bytes[..data_end as usize], at as usize) {
                        FrameDecode::Frame(fr) if fr.header.first_lsn == lsn => {
                            offsets.push((lsn, at));
                            frames += 1;
                            report.records += u64::from(fr.header.record_count);
                            lsn = fr.header.end_lsn();
                            at += fr.header.padded_len();
                        }
                        FrameDecode::Frame(fr) => {
                            report.problems.push(problem(
                                Severity::Error,
                                Some(at),
                                format!(
                                    "frame starts at LSN {}, expected {lsn}",
                                    fr.header.first_lsn
                                ),
                            ));
                            break;
                        }
                        FrameDecode::End => {
                            report.problems.push(problem(
                                Severity::Error,
                                Some(at),
                                "zeros where the footer says frames are".into(),
                            ));
                            break;
                        }
                        FrameDecode::Fault(fault) => {
                            report.problems.push(problem(
                                Severity::Error,
                                Some(at),
                                format!("damaged frame: {fault:?}"),
                            ));
                            break;
                        }
                    }
                }
                report.frames += frames;
                if at == data_end && (lsn != f.end_lsn || frames != f.frame_count) {
                    report.problems.push(problem(Severity::Error, Some(geometry.footer_offset()), format!("footer says LSNs up to {} in {} frames; the frames hold {lsn} in {frames}", f.end_lsn, f.frame_count)));
                }
                match decode_index(&bytes[f.data_end as usize..], f.index_count) {
                    Ok(entries) => {
                        for e in entries {
                            if !offsets.contains(&(e.lsn, e.offset)) {
                                report.problems.push(problem(
                                    Severity::Error,
                                    Some(f.data_end),
                                    format!(
                                        "index entry LSN {} at offset {} matches no frame",
                                        e.lsn, e.offset
                                    ),
                                ));
                                break;
                            }
                        }
                    }
                    Err(fault) => report.problems.push(problem(
                        Severity::Error,
                        Some(f.data_end),
                        format!("damaged index block: {fault:?}"),
                    )),
                }
                expected = Some(f.end_lsn);
            }
            None => {
                let t = match scan_tail(opened.file.as_ref(), map.as_ref(), path, h) {
                    Ok(t) => t,
                    Err(e) => {
                        report.problems.push(problem(
                            Severity::Error,
                            None,
                            format!("cannot read the segment: {e}"),
                        ));
                        expected = None;
                        continue;
                    }
                };
                report.frames += t.scan.frame_count;
                report.records += t.scan.end_lsn.0 - h.base_lsn.0;
                if !is_last {
                    report.problems.push(problem(Severity::Warning, None, "not sealed although later segments exist (a crash during rotation); sealed or discarded on open".into()));
                }
                if is_torn(t.scan.stop) || t.dirty_end > t.scan.data_end {
                    let what = match t.scan.stop {
                        ScanStop::Fault(f) => format!("{f:?}"),
                        ScanStop::LsnMismatch { found } => format!(
                            "frame with LSN {found} where {} was expected",
                            t.scan.end_lsn
                        ),
                        ScanStop::Zero | ScanStop::Full | ScanStop::Recycled => {
                            "non-zero bytes".into()
                        }
                    };
                    report.problems.push(problem(Severity::Warning, Some(t.scan.data_end), format!("the log ends here: {what}; {} bytes after it are discarded on open (a torn write, or damage to unsynced data)", t.dirty_end - t.scan.data_end)));
                }
                expected = Some(t.scan.end_lsn);
            }
        }
    }
    Ok(report)
}
