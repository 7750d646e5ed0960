//! The log: its shared state, opening, appends, rotation, retention and budget.
//!
//! # The append path, and why it is `pwrite`
//!
//! An append encodes its frame outside any lock (into a per-thread buffer reused across appends,
//! with the records' CRC computed while copying), then, under the log's mutex, takes the next LSNs,
//! fills in the 32-byte header, combines the header CRC with the payload CRC, and writes the frame
//! with one `pwrite` into the active segment, whose blocks are allocated ahead (a recycled file's
//! written blocks, overwritten in place; a new file's unwritten extents, converted by the sync:
//! see "New segments" in the crate doc), so the write never allocates. The segment is also
//! mapped, and readers read frames through that map without copying.
//!
//! We measured writing through the map instead (copy into a shared writable mapping, then `msync`):
//! on this project's machines it is 1.7 to 3.6 times slower than `pwrite` + `fdatasync` (test-env.md:
//! 2.0k against 7.3k commits/s at 100 B; 1.0 GB/s against 1.9 GB/s at 500 KiB), because the page
//! cache writes back whole large folios (2 MiB for a 100 B change) and first touches of a mapping
//! fault. `hydrant bench wal` keeps measuring the pwrite path against the disk's own
//! pwrite + fdatasync baseline.
//!
//! # Rotation and sealing
//!
//! When a frame does not fit in the active segment, the log switches to the spare (see
//! [`crate::spares`]: prepared ahead, so rotation costs a rename). The finished segment is sealed
//! by the next sync (see [`crate::commit`]): `fdatasync` its frames, then write its sparse index
//! and footer, then `fdatasync` again. Because the footer is written only once the frames are
//! durable, a valid footer vouches for the whole segment, and opening the log reads footers
//! instead of frames.
//!
//! # Where the rest is
//!
//! Group commit (tickets, the sync plan, the committer): [`crate::commit`]. Spares, segment
//! sizes and recycling of retired segments: [`crate::spares`]. Carrying out the recovery plan
//! when opening: [`crate::reopen`]. Reading the live log: [`crate::live_reader`]. The options:
//! [`crate::options`].

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::commit::{Commit, PendingSeal, Ticket};
use crate::dirs::create_dir_all_durable;
use crate::durable_mark::DurableMark;
use crate::error::{Error, Result};
use crate::format::{
    encode_index, Footer, FrameBuf, Geometry, IndexEntry, DATA_START, RECORD_BYTES_MAX,
    SEGMENT_BYTES_MIN,
};
use crate::ids::{Lsn, LsnRange};
use crate::live_reader::LiveSource;
use crate::options::{Durability, WalOptions};
use crate::reader::{ReadLimit, Reader};
use crate::recovery::{self, RecoveryReport};
use crate::reopen::{reopen_tail, seal_now};
use crate::segment::{LOCK_NAME, READERS_NAME, SPARE_NAME};
use crate::spares::{install_spare, prepare_spare, recycle_name, RecycleSlots, Spare};
use crate::storage::{Mapping, OpenMode, StdStorage, Storage, StorageFile};

/// Frames up to this size are gathered for the next sync's single `pwrite` (under `sync`
/// durability); larger ones are written at once.
const COALESCE_FRAME_MAX: usize = 16 << 10;
/// Frames gathered past this many bytes are written at once, whatever their size.
const TAIL_BYTES_MAX: usize = 1 << 20;

/// A position in the log: an LSN and where its frame boundary is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub lsn: Lsn,
    /// Base LSN of the segment holding the boundary.
    pub segment: Lsn,
    /// Offset of the boundary in that segment.
    pub offset: u64,
}

/// A sealed segment as the live log knows it.
#[derive(Clone, Debug)]
pub(crate) struct SegmentMeta {
    pub base: Lsn,
    pub end: Lsn,
    pub path: PathBuf,
    /// The file's length (its header's `segment_bytes`).
    pub file_bytes: u64,
    pub data_end: u64,
    pub index_count: u32,
    pub frame_count: u64,
    pub first_arrival_ms: u64,
    pub last_arrival_ms: u64,
    /// The footer is durable (the seal's syncs completed).
    pub seal_durable: bool,
    /// Cloned by every reader of the segment: a count of 1 means no reader in this process, so
    /// retention may recycle the file instead of deleting it.
    pub hold: Arc<()>,
}

pub(crate) struct Active {
    pub base: Lsn,
    pub path: PathBuf,
    /// This segment's own geometry (segments differ in size: see [`WalOptions::first_segment_bytes`]).
    pub geometry: Geometry,
    pub file: Arc<dyn StorageFile>,
    pub map: Arc<dyn Mapping>,
    pub write_offset: u64,
    pub index: Vec<IndexEntry>,
    pub next_index_at: u64,
    pub frame_count: u64,
    pub first_arrival_ms: u64,
    pub last_arrival_ms: u64,
    /// As [`SegmentMeta::hold`].
    pub hold: Arc<()>,
}

pub(crate) struct State {
    pub(crate) sealed: VecDeque<SegmentMeta>,
    pub(crate) active: Active,
    pub(crate) spare: Option<Spare>,
    /// The smallest spare the next rotation can use: set by a rotation whose frame did not fit
    /// the spare's size, cleared by the next rotation. 0 when nothing is asked for.
    pub(crate) spare_need: u64,
    /// Length of the spare the prepare thread is preparing (counted in the disk use).
    pub(crate) preparing_bytes: u64,
    /// Retired segments kept for reuse as spares (see [`RecycleSlots`] for its invariant).
    pub(crate) recycle: RecycleSlots,
    pub(crate) preparing: bool,
    pub(crate) prepare_failure: Option<String>,
    /// Written, flushed and durable ends, and the group commit's waiters (see [`Commit`] for
    /// its invariants).
    pub(crate) commit: Commit,
    pub(crate) poisoned: Option<String>,
    /// No more appends: `close` has begun.
    pub(crate) closed: bool,
    /// `close` has run its final sync: a ticket not durable by now never will be.
    pub(crate) shut: bool,
    /// Threads in `wait_durable_past` (log followers): a sync wakes them only if there are any.
    pub(crate) followers: usize,
}

impl State {
    /// Bytes of the segment files in the log: the sealed ones and the active one.
    pub(crate) fn log_bytes(&self) -> u64 {
        self.sealed.iter().map(|s| s.file_bytes).sum::<u64>() + self.active.geometry.segment_bytes
    }
}

pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) geometry: Geometry,
    pub(crate) options: WalOptions,
    pub(crate) state: Mutex<State>,
    /// Signalled when a sync completes (blocking waiters and readers waiting for data).
    pub(crate) durable_cv: Condvar,
    /// Wakes the sync thread.
    pub(crate) syncer_cv: Condvar,
    /// Wakes the preparer thread, and rotations waiting for a spare.
    pub(crate) spare_cv: Condvar,
    pub(crate) syncs: AtomicU64,
    /// Where rotation's time goes: waits for a spare, spare preparation.
    pub(crate) timings: SpareTimings,
    /// The durable end, published for readers in other processes after every sync.
    pub(crate) mark: DurableMark,
    pub(crate) _lock: Box<dyn fmt::Debug + Send + Sync>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// An open log. Cheap to share: clone the [`Arc`] you keep it in; every method takes `&self`.
pub struct Wal {
    pub(crate) shared: Arc<Shared>,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

/// A snapshot of the log's extent and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalStats {
    /// The first LSN still retained.
    pub first_lsn: Lsn,
    /// One past the last LSN written.
    pub next_lsn: Lsn,
    /// One past the last LSN known durable.
    pub durable_lsn: Lsn,
    /// Segment files in the log, the active one included.
    pub segments: usize,
    /// Bytes held by segment files, the spare included.
    pub disk_bytes: u64,
    /// Syncs run since open.
    pub syncs: u64,
    /// Times an append found no spare ready at a rotation and waited for one, since open.
    pub spare_waits: u64,
    /// Time appends spent in those waits, since open.
    pub spare_wait: Duration,
    /// Spares prepared (new or recycled files) by the prepare thread, since open.
    pub spares_prepared: u64,
    /// Time the prepare thread spent preparing them, since open.
    pub spare_prepare: Duration,
}

/// Counters of the spare segment's supply: how often and how long appends waited for a spare
/// at a rotation, and how long preparing spares took. For [`WalStats`] and the benchmarks.
#[derive(Debug, Default)]
pub(crate) struct SpareTimings {
    waits: AtomicU64,
    wait_nanos: AtomicU64,
    prepared: AtomicU64,
    prepare_nanos: AtomicU64,
}

impl SpareTimings {
    pub(crate) fn waited_for_spare(&self, d: Duration) {
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.wait_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn prepared(&self, d: Duration) {
        self.prepared.fetch_add(1, Ordering::Relaxed);
        self.prepare_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// Milliseconds since the Unix epoch, now.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

thread_local! {
    static FRAME_BUF: RefCell<FrameBuf> = RefCell::new(FrameBuf::default());
}

pub(crate) fn lock_state(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves the state as consistent as the code that panicked
    // (every mutation is completed before fallible calls); the poison flag adds nothing.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Wal {
    /// Opens (creating when missing) the log in `dir` on the real file system, recovering it.
    ///
    /// # Errors
    /// See [`Wal::open_with`].
    pub fn open(dir: impl AsRef<Path>, options: WalOptions) -> Result<(Wal, RecoveryReport)> {
        Wal::open_with(StdStorage::shared(), dir.as_ref(), options)
    }

    /// Opens (creating when missing) the log in `dir` on `storage`, recovering it: the torn tail
    /// is cut and zeroed, complete segments left unsealed by a crash are sealed, segments that
    /// hold nothing acknowledged are removed (see [`crate::recovery`]).
    ///
    /// # Errors
    /// [`Error::Locked`] when another process has the log open; [`Error::Corrupt`],
    /// [`Error::BadSegment`], [`Error::SegmentGap`] or [`Error::UnsupportedVersion`] when the log
    /// is damaged beyond what a crash explains; [`Error::Io`]; [`Error::InvalidOptions`].
    pub fn open_with(
        storage: Arc<dyn Storage>,
        dir: &Path,
        options: WalOptions,
    ) -> Result<(Wal, RecoveryReport)> {
        let started = Instant::now();
        if options.segment_bytes < SEGMENT_BYTES_MIN || !options.segment_bytes.is_multiple_of(4096)
        {
            return Err(Error::InvalidOptions(
                "segment_bytes must be a multiple of 4096, at least 8192",
            ));
        }
        if options.first_segment_bytes < SEGMENT_BYTES_MIN
            || !options.first_segment_bytes.is_multiple_of(4096)
        {
            return Err(Error::InvalidOptions(
                "first_segment_bytes must be a multiple of 4096, at least 8192",
            ));
        }
        if options.index_interval_bytes < 4096 {
            return Err(Error::InvalidOptions(
                "index_interval_bytes must be at least 4096",
            ));
        }
        // A new log's directory, and any parents this adds, durable before anything in it is.
        create_dir_all_durable(storage.as_ref(), dir)
            .map_err(|e| Error::io("create directory", dir, e))?;
        let lock = storage.lock(&dir.join(LOCK_NAME)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked {
                    dir: dir.to_path_buf(),
                }
            } else {
                Error::io("lock", dir.join(LOCK_NAME), e)
            }
        })?;
        let readers = dir.join(READERS_NAME);
        storage
            .open(&readers, OpenMode::Create)
            .map_err(|e| Error::io("create", &readers, e))?;
        let mark = DurableMark::open(storage.as_ref(), dir)?;
        let plan = recovery::plan(storage.as_ref(), dir)?;
        let report = plan.report(started);

        for path in plan.temporaries.iter().chain(&plan.discard) {
            storage
                .remove(path)
                .map_err(|e| Error::io("remove", path, e))?;
        }
        let mut sealed: VecDeque<SegmentMeta> = plan
            .sealed
            .iter()
            .map(|s| SegmentMeta {
                base: s.header.base_lsn,
                end: s.footer.end_lsn,
                path: s.path.clone(),
                file_bytes: s.header.segment_bytes,
                data_end: s.footer.data_end,
                index_count: s.footer.index_count,
                frame_count: s.footer.frame_count,
                first_arrival_ms: s.footer.first_arrival_ms,
                last_arrival_ms: s.footer.last_arrival_ms,
                seal_durable: true,
                hold: Arc::new(()),
            })
            .collect();
        for t in &plan.seal_on_open {
            sealed.push_back(seal_now(storage.as_ref(), t)?);
        }
        let shared_geometry = Geometry {
            segment_bytes: options.segment_bytes,
            index_interval: options.index_interval_bytes,
        };

        let (active, dir_dirty) = match &plan.tail {
            Some(t) => (reopen_tail(storage.as_ref(), t)?, false),
            None => {
                // A new log starts small; after a sealed segment the sizes go on growing.
                let max = options.segment_bytes;
                let first = options.first_segment_bytes.min(max);
                let bytes = sealed
                    .back()
                    .map_or(first, |s| s.file_bytes.saturating_mul(2).clamp(first, max));
                let spare = prepare_spare(
                    storage.as_ref(),
                    dir,
                    bytes,
                    options.index_interval_bytes,
                    options.new_segment_fill,
                    None,
                )?;
                (
                    install_spare(
                        storage.as_ref(),
                        dir,
                        &shared_geometry,
                        spare,
                        plan.next_lsn,
                    )?,
                    true,
                )
            }
        };
        if dir_dirty || !plan.temporaries.is_empty() || !plan.discard.is_empty() {
            storage
                .sync_dir(dir)
                .map_err(|e| Error::io("fsync directory", dir, e))?;
        }
        // From here on the log calls everything recovery kept durable, but after a kill -9 the
        // tail may hold frames that were written and never synced: sync them, and the names,
        // before saying so (to delivery, and to readers in other processes through the mark).
        active
            .file
            .sync_data()
            .map_err(|e| Error::io("fdatasync", &active.path, e))?;
        storage
            .sync_dir(dir)
            .map_err(|e| Error::io("fsync directory", dir, e))?;
        mark.publish(plan.next_lsn)?;
        let end = Position {
            lsn: plan.next_lsn,
            segment: active.base,
            offset: active.write_offset,
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            storage,
            geometry: shared_geometry,
            state: Mutex::new(State {
                sealed,
                active,
                spare: None,
                commit: Commit::new(end),
                spare_need: 0,
                preparing_bytes: 0,
                recycle: RecycleSlots::new(),
                preparing: false,
                prepare_failure: None,
                followers: 0,
                poisoned: None,
                closed: false,
                shut: false,
            }),
            durable_cv: Condvar::new(),
            syncer_cv: Condvar::new(),
            spare_cv: Condvar::new(),
            syncs: AtomicU64::new(0),
            timings: SpareTimings::default(),
            mark,
            _lock: lock,
            options,
        });
        let mut threads = Vec::new();
        let s = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("wal-sync".into())
                .spawn(move || s.sync_thread())
                .map_err(|e| Error::io("spawn sync thread", dir, e))?,
        );
        if shared.options.background_prepare {
            let s = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("wal-prepare".into())
                    .spawn(move || s.prepare_thread())
                    .map_err(|e| Error::io("spawn prepare thread", dir, e))?,
            );
        }
        Ok((
            Wal {
                shared,
                threads: Mutex::new(threads),
            },
            report,
        ))
    }

    /// Appends one batch of records as one frame, arriving now. See [`Wal::append_at`].
    ///
    /// # Errors
    /// See [`Wal::append_at`].
    pub fn append<R: AsRef<[u8]>>(&self, records: &[R]) -> Result<Ticket> {
        self.append_at(records, now_ms())
    }

    /// Appends one batch of records as one frame with the given arrival time (ms since the
    /// epoch). Returns a [`Ticket`] for the records' LSNs; wait on it (blocking or `.await`) for
    /// the durability the log's mode gives. Either the whole frame is in the log or none of it.
    ///
    /// # Errors
    /// [`Error::EmptyAppend`]; [`Error::FrameTooLarge`]; [`Error::Full`] or [`Error::NoSpace`]
    /// (nothing written, retry later); [`Error::Poisoned`] or [`Error::Closed`]; [`Error::Io`]
    /// when the write failed (the log is then poisoned).
    pub fn append_at<R: AsRef<[u8]>>(&self, records: &[R], arrival_ms: u64) -> Result<Ticket> {
        self.append_with_annex(records, arrival_ms, &[])
    }

    /// As [`Wal::append_at`], with an annex: bytes kept in the frame beside the records (never
    /// a record, never delivered), covered by the frame's CRC and durable with it. A source keeps
    /// its read positions there, so that the log itself says how far the source was read. An
    /// empty annex writes the same frame as [`Wal::append_at`].
    ///
    /// # Errors
    /// See [`Wal::append_at`]; the annex counts toward [`Error::FrameTooLarge`].
    pub fn append_with_annex<R: AsRef<[u8]>>(
        &self,
        records: &[R],
        arrival_ms: u64,
        annex: &[u8],
    ) -> Result<Ticket> {
        if records.is_empty() {
            return Err(Error::EmptyAppend);
        }
        FRAME_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.reset();
            let mut frame_len = crate::format::FRAME_HEADER_LEN as u64;
            for r in records {
                let len = r.as_ref().len();
                if len > RECORD_BYTES_MAX {
                    return Err(Error::FrameTooLarge {
                        frame_bytes: len as u64,
                        frame_bytes_max: self.shared.geometry.frame_bytes_max(),
                    });
                }
                frame_len += (crate::format::RECORD_PREFIX_LEN + len) as u64;
            }
            if !annex.is_empty() {
                frame_len += (annex.len() + crate::format::ANNEX_LEN_LEN) as u64;
            }
            let padded = crate::format::align_up(frame_len);
            if padded > self.shared.geometry.frame_bytes_max() || u32::try_from(frame_len).is_err()
            {
                return Err(Error::FrameTooLarge {
                    frame_bytes: padded,
                    frame_bytes_max: self.shared.geometry.frame_bytes_max(),
                });
            }
            buf.reserve(padded as usize);
            for r in records {
                buf.push(r.as_ref());
            }
            buf.push_annex(annex);
            let range = self.shared.write_frame(&mut buf, arrival_ms)?;
            Ok(Ticket {
                shared: self.shared.clone(),
                range,
            })
        })
    }

    /// Makes everything written so far durable and returns the durable end.
    ///
    /// # Errors
    /// [`Error::Poisoned`] when this or an earlier sync failed.
    pub fn sync(&self) -> Result<Lsn> {
        let target = lock_state(&self.shared.state).commit.written.lsn;
        self.shared.sync_until(target)?;
        Ok(self.durable_lsn())
    }

    /// One past the last LSN known durable: every record below it survives a power loss.
    #[must_use]
    pub fn durable_lsn(&self) -> Lsn {
        lock_state(&self.shared.state).commit.durable.lsn
    }

    /// One past the last LSN written (the LSN the next record will get).
    #[must_use]
    pub fn next_lsn(&self) -> Lsn {
        lock_state(&self.shared.state).commit.written.lsn
    }

    /// The first LSN still retained.
    #[must_use]
    pub fn first_lsn(&self) -> Lsn {
        let st = lock_state(&self.shared.state);
        st.sealed.front().map_or(st.active.base, |s| s.base)
    }

    /// Blocks until the durable end passes `lsn` or `timeout` elapses; returns the durable end.
    /// For readers that follow the log.
    #[must_use]
    pub fn wait_durable_past(&self, lsn: Lsn, timeout: Duration) -> Lsn {
        let deadline = Instant::now() + timeout;
        let mut st = lock_state(&self.shared.state);
        while st.commit.durable.lsn <= lsn && !st.closed && st.poisoned.is_none() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st.followers += 1;
            st = self
                .shared
                .durable_cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
            st.followers -= 1;
        }
        st.commit.durable.lsn
    }

    /// A reader from `from` that stops at the durable end (the default for delivery).
    ///
    /// # Errors
    /// [`Error::Truncated`] when `from` was deleted by retention; [`Error::BeyondEnd`].
    pub fn reader(&self, from: Lsn) -> Result<Reader> {
        self.reader_with_limit(from, ReadLimit::Durable)
    }

    /// A reader from `from` with an explicit limit.
    ///
    /// # Errors
    /// As [`Wal::reader`].
    pub fn reader_with_limit(&self, from: Lsn, limit: ReadLimit) -> Result<Reader> {
        Reader::new(
            Arc::new(LiveSource {
                shared: self.shared.clone(),
                limit,
            }),
            from,
        )
    }

    /// Deletes every sealed segment whose records all lie below `lsn` (and below the durable
    /// end). Whole segments only: the active segment is never deleted. Readers that hold a
    /// deleted segment keep reading it. Returns the number of segments deleted.
    ///
    /// # Errors
    /// [`Error::Io`] when a removal, a rename or the directory sync failed (the segment may be
    /// gone or not; a later call retries). A directory sync that fails after a segment was
    /// renamed for reuse also poisons the log (see the module doc): later appends fail with
    /// [`Error::Poisoned`] until the log is reopened.
    pub fn truncate_before(&self, lsn: Lsn) -> Result<usize> {
        let doomed: Vec<(PathBuf, Arc<()>, u64)> = {
            let mut st = lock_state(&self.shared.state);
            let mut v = Vec::new();
            while let Some(front) = st.sealed.front() {
                if front.end <= lsn && front.end <= st.commit.durable.lsn && front.seal_durable {
                    if let Some(m) = st.sealed.pop_front() {
                        v.push((m.path, m.hold, m.file_bytes));
                    }
                } else {
                    break;
                }
            }
            v
        };
        // Oldest first, each removal made durable before the next: a crash can then leave only
        // a shorter prefix of the log deleted, never a gap.
        let dir = &self.shared.dir;
        let storage = &self.shared.storage;
        for (path, hold, file_bytes) in &doomed {
            let slot = self.recycle(path, hold, *file_bytes)?;
            if slot.is_none() {
                storage
                    .remove(path)
                    .map_err(|e| Error::io("remove", path, e))?;
            }
            let synced = storage
                .sync_dir(dir)
                .map_err(|e| Error::io("fsync directory", dir, e));
            let Some(slot) = slot else {
                // A removal whose sync failed is harmless: if it is undone by a power loss, the
                // segment comes back at the head of the log, sealed and contiguous.
                synced?;
                continue;
            };
            let mut st = lock_state(&self.shared.state);
            match synced {
                // Only now may the prepare step take the file: its old name is durably gone.
                Ok(()) => st.recycle.renamed(slot),
                Err(e) => {
                    // The rename may or may not survive a power loss: the file must never be
                    // reused, and nothing else may proceed as if the directory were in order.
                    st.recycle.abandon(slot);
                    if st.poisoned.is_none() {
                        st.poisoned = Some(e.to_string());
                    }
                    drop(st);
                    self.shared.wake_all();
                    return Err(e);
                }
            }
        }
        if !doomed.is_empty() {
            self.shared.spare_cv.notify_all();
        }
        Ok(doomed.len())
    }

    /// The log's extent and size now.
    #[must_use]
    pub fn stats(&self) -> WalStats {
        let st = lock_state(&self.shared.state);
        let segments = st.sealed.len() + 1;
        let spare = match &st.spare {
            Some(s) => s.bytes,
            None if st.preparing => st.preparing_bytes,
            None => 0,
        };
        let disk_bytes =
            st.log_bytes() + spare + st.recycle.kept() * self.shared.geometry.segment_bytes;
        let t = &self.shared.timings;
        WalStats {
            first_lsn: st.sealed.front().map_or(st.active.base, |s| s.base),
            next_lsn: st.commit.written.lsn,
            durable_lsn: st.commit.durable.lsn,
            segments,
            disk_bytes,
            syncs: self.shared.syncs.load(Ordering::Relaxed),
            spare_waits: t.waits.load(Ordering::Relaxed),
            spare_wait: Duration::from_nanos(t.wait_nanos.load(Ordering::Relaxed)),
            spares_prepared: t.prepared.load(Ordering::Relaxed),
            spare_prepare: Duration::from_nanos(t.prepare_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Segment metadata, oldest first, the active segment last (its end is the written end).
    #[must_use]
    pub fn segments(&self) -> Vec<crate::SegmentInfo> {
        let st = lock_state(&self.shared.state);
        let mut v: Vec<crate::SegmentInfo> = st
            .sealed
            .iter()
            .map(|s| crate::SegmentInfo {
                path: s.path.clone(),
                base_lsn: s.base,
                end_lsn: s.end,
                sealed: true,
                frame_count: s.frame_count,
                data_bytes: s.data_end - DATA_START,
                file_bytes: s.file_bytes,
                first_arrival_ms: s.first_arrival_ms,
                last_arrival_ms: s.last_arrival_ms,
            })
            .collect();
        let a = &st.active;
        v.push(crate::SegmentInfo {
            path: a.path.clone(),
            base_lsn: a.base,
            end_lsn: st.commit.written.lsn,
            sealed: false,
            frame_count: a.frame_count,
            data_bytes: a.write_offset - DATA_START,
            file_bytes: a.geometry.segment_bytes,
            first_arrival_ms: a.first_arrival_ms,
            last_arrival_ms: a.last_arrival_ms,
        });
        v
    }

    /// The log's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The geometry of the log's largest segments (`segment_bytes`); a young log's first
    /// segments are smaller.
    #[must_use]
    pub fn geometry(&self) -> Geometry {
        self.shared.geometry
    }

    /// The largest batch (sum of record lengths plus 4 bytes per record) one append accepts.
    #[must_use]
    pub fn batch_bytes_max(&self) -> u64 {
        self.shared.geometry.frame_bytes_max() - crate::format::FRAME_HEADER_LEN as u64 - 8
    }

    /// Syncs what was written, stops the log's threads and closes it. Appends after this fail
    /// with [`Error::Closed`]. Dropping a `Wal` does the same, ignoring errors.
    ///
    /// # Errors
    /// [`Error::Poisoned`] when the final sync failed.
    pub fn close(&self) -> Result<()> {
        // Closed first, so no append slips in after the final sync; then the final sync makes
        // every earlier append durable and completes its ticket.
        let target = {
            let mut st = lock_state(&self.shared.state);
            st.closed = true;
            st.commit.written.lsn
        };
        let result = self.shared.sync_until(target);
        lock_state(&self.shared.state).shut = true;
        self.shared.wake_all();
        self.shared.syncer_cv.notify_all();
        self.shared.spare_cv.notify_all();
        let threads = std::mem::take(
            &mut *self
                .threads
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for t in threads {
            let _ = t.join();
        }
        result
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Shared {
    fn poisoned_error(st: &State) -> Option<Error> {
        if let Some(cause) = &st.poisoned {
            return Some(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        st.closed.then_some(Error::Closed)
    }

    /// Writes a built frame at the end of the log, rotating when it does not fit.
    fn write_frame(&self, buf: &mut FrameBuf, arrival_ms: u64) -> Result<LsnRange> {
        let padded = crate::format::align_up(buf.len() as u64);
        let mut st = lock_state(&self.state);
        loop {
            if let Some(e) = Self::poisoned_error(&st) {
                return Err(e);
            }
            if st.active.write_offset + padded <= st.active.geometry.data_limit() {
                break;
            }
            st = self.rotate(st, padded)?;
        }
        let started = Instant::now();
        let first = st.commit.written.lsn;
        let count = u64::from(buf.record_count());
        let bytes = buf.seal(first, arrival_ms);
        let offset = st.active.write_offset;
        let coalesce = self.options.durability == Durability::Sync
            && bytes.len() <= COALESCE_FRAME_MAX
            && st.commit.tail_len() < TAIL_BYTES_MAX;
        if coalesce {
            st.commit.queue(offset, bytes);
        } else {
            let written = match self.flush_tail(&mut st) {
                Ok(()) => st
                    .active
                    .file
                    .write_at(bytes, offset)
                    .map_err(|e| Error::io("write", &st.active.path, e)),
                Err(e) => Err(e),
            };
            if let Err(err) = written {
                // A part of the frame may be in the file; nothing after it may be written.
                st.poisoned = Some(err.to_string());
                drop(st);
                self.wake_all();
                return Err(err);
            }
        }
        let a = &mut st.active;
        if offset >= a.next_index_at {
            a.index.push(IndexEntry { lsn: first, offset });
            a.next_index_at = offset + u64::from(self.geometry.index_interval);
        }
        if a.frame_count == 0 {
            a.first_arrival_ms = arrival_ms;
        }
        a.last_arrival_ms = arrival_ms;
        a.frame_count += 1;
        a.write_offset = offset + padded;
        let segment = a.base;
        let end = first.plus(count);
        st.commit.appended(
            Position {
                lsn: end,
                segment,
                offset: offset + padded,
            },
            padded,
        );
        // The first frame of a young log's first segment: from now on it wants a spare.
        let wants_spare = offset == DATA_START
            && st.spare.is_none()
            && !st.preparing
            && self.options.background_prepare;
        drop(st);
        if wants_spare {
            self.spare_cv.notify_all();
        }
        if let Some(o) = &self.options.observer {
            o.on_append(started.elapsed(), padded);
        }
        Ok(LsnRange { start: first, end })
    }

    /// Writes the frames waiting in `tail` into the active segment's file, under the lock.
    fn flush_tail(&self, st: &mut State) -> Result<()> {
        let Some((tail, offset)) = st.commit.tail() else {
            return Ok(());
        };
        st.active
            .file
            .write_at(tail, offset)
            .map_err(|e| Error::io("write", &st.active.path, e))?;
        st.commit.tail_written();
        Ok(())
    }

    /// Switches to a new segment with room for a frame of `padded` bytes. Called with the lock
    /// held; may wait for the spare.
    fn rotate<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        padded: u64,
    ) -> Result<MutexGuard<'a, State>> {
        let need = self.segment_bytes_for(padded);
        st.spare_need = st.spare_need.max(need);
        let next = self.next_segment_bytes(&st);
        // An empty active segment too small for the frame (the first of a young log, whose
        // first append is large) is replaced by a larger one under its name instead of sealed:
        // two segments cannot share a base LSN. It holds nothing, so whichever of the two files
        // a power loss leaves under the name, the log is the same; no reader holds it (a reader
        // maps the active segment only once it holds a record below the read limit).
        let replace = st.active.write_offset == DATA_START;
        debug_assert!(!replace || st.active.frame_count == 0);
        if let Some(budget) = self.options.budget_bytes {
            let mut used = st.log_bytes();
            if replace {
                used -= st.active.geometry.segment_bytes;
            }
            if used + next > budget {
                return Err(Error::Full {
                    used_bytes: used,
                    budget_bytes: budget,
                });
            }
        }
        if st.spare.as_ref().is_some_and(|s| s.bytes < need) {
            // Prepared for a smaller frame: replaced by one this frame fits in.
            st.spare = None;
            let path = self.dir.join(SPARE_NAME);
            self.storage
                .remove(&path)
                .map_err(|e| Error::io("remove", &path, e))?;
        }
        let spare = match st.spare.take() {
            Some(spare) => spare,
            None if self.options.background_prepare && !st.closed => {
                if let Some(cause) = st.prepare_failure.take() {
                    return Err(Error::NoSpace {
                        dir: self.dir.clone(),
                        source: std::io::Error::other(cause),
                    });
                }
                // Wake the prepare thread only when it is idle: every appender that finds no
                // spare comes through here, and a broadcast from each of them would wake the
                // others, who would come back and broadcast again (measured under `bench wal`
                // S4 with zero-filled segments: 600,000 wake-ups in 3.5 s, a busy loop taking
                // the CPUs from the prepare thread and the syncs).
                if !st.preparing {
                    self.spare_cv.notify_all();
                }
                let started = Instant::now();
                st = self
                    .spare_cv
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                self.timings.waited_for_spare(started.elapsed());
                // Another appender may have rotated while we waited: the caller re-checks.
                return Ok(st);
            }
            None => {
                let slot = st.recycle.take_ready();
                let recycle = slot.map(|i| self.dir.join(recycle_name(i)));
                let prepared = prepare_spare(
                    self.storage.as_ref(),
                    &self.dir,
                    next,
                    self.geometry.index_interval,
                    self.options.new_segment_fill,
                    recycle,
                );
                if let Some(i) = slot {
                    st.recycle.prepared(i);
                }
                prepared?
            }
        };
        // The old segment's frames go into its file before it is sealed.
        if let Err(e) = self.flush_tail(&mut st) {
            st.poisoned = Some(e.to_string());
            return Err(e);
        }
        let base = st.commit.written.lsn;
        debug_assert!(spare.bytes >= need, "a rotation's segment holds its frame");
        debug_assert!(!replace || base == st.active.base);
        st.spare_need = 0;
        let new_active = match install_spare(
            self.storage.as_ref(),
            &self.dir,
            &self.geometry,
            spare,
            base,
        ) {
            Ok(a) => a,
            Err(e) => {
                // The spare may have been renamed into the log or not: stop here.
                st.poisoned = Some(e.to_string());
                return Err(e);
            }
        };
        if replace {
            // The rename replaced the empty segment; the next sync makes it durable.
            st.active = new_active;
            st.commit.renamed();
            self.spare_cv.notify_all();
            return Ok(st);
        }
        let old = std::mem::replace(&mut st.active, new_active);
        let end = st.commit.written.lsn;
        let footer = Footer {
            base_lsn: old.base,
            end_lsn: end,
            frame_count: old.frame_count,
            data_end: old.write_offset,
            index_count: u32::try_from(old.index.len()).expect("bounded by the geometry"),
            first_arrival_ms: old.first_arrival_ms,
            last_arrival_ms: old.last_arrival_ms,
        };
        let seal = PendingSeal {
            base: old.base,
            path: old.path.clone(),
            file: old.file.clone(),
            index_offset: old.write_offset,
            index_block: encode_index(&old.index),
            footer_offset: old.geometry.footer_offset(),
            footer: footer.encode().to_vec(),
        };
        st.sealed.push_back(SegmentMeta {
            base: old.base,
            end,
            path: old.path,
            file_bytes: old.geometry.segment_bytes,
            data_end: old.write_offset,
            index_count: footer.index_count,
            frame_count: old.frame_count,
            first_arrival_ms: old.first_arrival_ms,
            last_arrival_ms: old.last_arrival_ms,
            seal_durable: false,
            hold: old.hold,
        });
        st.commit.rotated(
            seal,
            Position {
                lsn: end,
                segment: base,
                offset: DATA_START,
            },
        );
        self.spare_cv.notify_all();
        Ok(st)
    }
}
