//! Spares and recycling: where the next segment comes from.
//!
//! Rotation switches to a spare segment prepared ahead (by the log's prepare thread, or inline
//! when background preparation is off): created, allocated (unwritten extents by default, or
//! written zeros: [`SegmentFill`], and "New segments" in the crate doc for why both are
//! durable), its header written and synced, so that rotation costs a rename. A young log prepares none until it is
//! written to, and its segments grow (see "Segment sizes" in the crate doc): the spare's size is
//! the next on the growth path.
//!
//! # Retention and recycling
//!
//! [`Wal::truncate_before`] retires whole sealed segments, oldest first, each removal or rename
//! made durable by a directory `fsync` before the next. A retired segment that nothing reads is
//! renamed to a recycling slot (`recycle.tmp`, `recycle.1.tmp`, ...) instead of deleted, and the
//! prepare step later rewrites its header and makes it the spare. The slot becomes ready for the
//! prepare step only after the directory `fsync` covering that rename returned: before it, a
//! power loss can give the file back its old name, and a rewritten header and new frames under
//! that name would end the log there (recovery would discard every later segment). A failed
//! directory `fsync` after such a rename poisons the log: the file is never reused.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::{Geometry, SegmentHeader, DATA_START, SEGMENT_BYTES_MIN};
use crate::ids::Lsn;
use crate::options::SegmentFill;
use crate::segment::{segment_path, READERS_NAME, RECYCLE_NAME, SPARE_NAME};
use crate::storage::{OpenMode, Storage, StorageFile};
use crate::writer::{lock_state, now_ms, Active, Shared, State, Wal};

/// How many retired segments are kept for reuse. A delivery batch of 128 MiB retires two 64 MiB
/// segments at once: with a single slot the second was deleted and its replacement zero-filled
/// (under `hydrant bench put` P1, the segment-preparation thread then took 18 % of the daemon's
/// CPU at steady state).
pub(crate) const RECYCLE_SLOTS: usize = 4;

/// The state of one recycling slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecycleSlot {
    /// Its name is free.
    Free,
    /// A retired segment is being renamed to it, or was and the directory `fsync` that makes
    /// the rename durable has not completed: the file must not be reused yet (a power loss could
    /// still give it back its old name, and a rewritten header and new frames under that name
    /// would cut the log there).
    Renaming,
    /// A retired segment waits under its name, the rename durable.
    Ready,
    /// The prepare step is turning its file into the spare.
    Preparing,
}

/// The recycling slots of a log: retired segments kept for reuse as spares, one per name
/// [`recycle_name`]`(slot)`. A slot's name is spoken for from the moment retention picks a
/// segment for it until the prepare step has renamed that file to the spare: nothing else may
/// be renamed onto it meanwhile, or the spare's handle and its name would be different files.
///
/// Invariant, checked with `debug_assert!` at every transition: a slot goes
/// `Free -> Renaming -> Ready -> Preparing -> Free`, or from `Renaming` back to `Free` when the
/// rename or its directory `fsync` failed. Only [`RecycleSlots::renamed`], called once the
/// directory `fsync` after the rename returned, makes a slot `Ready`, and the prepare step takes
/// only `Ready` slots: a retired file is reused only after its rename is durable.
#[derive(Debug)]
pub(crate) struct RecycleSlots([RecycleSlot; RECYCLE_SLOTS]);

impl RecycleSlots {
    /// Every slot free.
    pub fn new() -> RecycleSlots {
        RecycleSlots([RecycleSlot::Free; RECYCLE_SLOTS])
    }

    fn set(&mut self, slot: usize, from: RecycleSlot, to: RecycleSlot) {
        debug_assert_eq!(self.0[slot], from, "recycling slot {slot} to {to:?}");
        self.0[slot] = to;
    }

    /// Claims a free slot for a segment about to be renamed to it.
    pub fn claim(&mut self) -> Option<usize> {
        let slot = self.0.iter().position(|s| *s == RecycleSlot::Free)?;
        self.set(slot, RecycleSlot::Free, RecycleSlot::Renaming);
        Some(slot)
    }

    /// The rename to `slot` is durable: its file may be reused.
    pub fn renamed(&mut self, slot: usize) {
        self.set(slot, RecycleSlot::Renaming, RecycleSlot::Ready);
    }

    /// The rename to `slot`, or its directory `fsync`, failed: the file is never reused.
    pub fn abandon(&mut self, slot: usize) {
        self.set(slot, RecycleSlot::Renaming, RecycleSlot::Free);
    }

    /// Takes a waiting retired segment for the prepare step.
    pub fn take_ready(&mut self) -> Option<usize> {
        let slot = self.0.iter().position(|s| *s == RecycleSlot::Ready)?;
        self.set(slot, RecycleSlot::Ready, RecycleSlot::Preparing);
        Some(slot)
    }

    /// The prepare step is done with `slot`'s file (renamed to the spare, or removed).
    pub fn prepared(&mut self, slot: usize) {
        self.set(slot, RecycleSlot::Preparing, RecycleSlot::Free);
    }

    /// Whether a retired segment waits, ready for reuse.
    pub fn any_ready(&self) -> bool {
        self.0.contains(&RecycleSlot::Ready)
    }

    /// Retired segments kept on disk for reuse (waiting, or being renamed into a slot).
    pub fn kept(&self) -> u64 {
        self.0
            .iter()
            .filter(|s| matches!(s, RecycleSlot::Ready | RecycleSlot::Renaming))
            .count() as u64
    }
}

/// The file name of recycling slot `slot`: `recycle.tmp`, `recycle.1.tmp`, ...
pub(crate) fn recycle_name(slot: usize) -> String {
    if slot == 0 {
        RECYCLE_NAME.to_string()
    } else {
        format!("recycle.{slot}.tmp")
    }
}

/// A prepared spare segment: its file (header written and synced) and its length.
pub(crate) struct Spare {
    pub(crate) file: Arc<dyn StorageFile>,
    pub(crate) bytes: u64,
}

impl Wal {
    /// Keeps a retired segment as the next spare instead of deleting it, when nothing may still
    /// read it: writing into its already-written blocks costs no allocation and no zero-fill,
    /// as PostgreSQL recycles WAL files. Returns the recycling slot the file was renamed to,
    /// still [`RecycleSlot::Renaming`]: the caller marks it ready once the directory `fsync`
    /// made the rename durable. `None` when the file must be deleted instead: also when it is
    /// smaller than the largest segment (a young log's), since spares only grow.
    pub(crate) fn recycle(
        &self,
        path: &Path,
        hold: &Arc<()>,
        file_bytes: u64,
    ) -> Result<Option<usize>> {
        let shared = &self.shared;
        let slot = {
            let mut st = lock_state(&shared.state);
            // A reader in this process still holds the segment.
            if Arc::strong_count(hold) > 1 || file_bytes != shared.geometry.segment_bytes {
                return Ok(None);
            }
            // Kept files stay within the log's budget: the live segments, the spare, the files
            // already kept and this one.
            if let Some(budget) = shared.options.budget_bytes {
                let kept = (st.recycle.kept() + 1) * shared.geometry.segment_bytes;
                if st.log_bytes() + shared.next_segment_bytes(&st) + kept > budget {
                    return Ok(None);
                }
            }
            let Some(slot) = st.recycle.claim() else {
                return Ok(None);
            };
            slot
        };
        let target = shared.dir.join(recycle_name(slot));
        match self.rename_to_recycle(path, &target) {
            Ok(true) => Ok(Some(slot)),
            other => {
                lock_state(&shared.state).recycle.abandon(slot);
                other.map(|_| None)
            }
        }
    }

    fn rename_to_recycle(&self, path: &Path, target: &Path) -> Result<bool> {
        let shared = &self.shared;
        // A reader in another process (`hydrant wal dump`, replay) holds the readers' lock
        // shared; taking it exclusively, for the length of the rename, proves there is none and
        // keeps a new one from opening the file before it leaves the log.
        let Ok(guard) = shared.storage.lock(&shared.dir.join(READERS_NAME)) else {
            return Ok(false);
        };
        shared
            .storage
            .rename(path, target)
            .map_err(|e| Error::io("rename", path, e))?;
        drop(guard);
        Ok(true)
    }

    /// Blocks until the background prepare thread is idle: a spare is ready, or none can be
    /// prepared now (budget, a failed attempt), or the log is closed. Returns at once without
    /// background preparation. For simulation tests, which use it to make the order of storage
    /// operations a function of the test's actions alone.
    #[doc(hidden)]
    pub fn wait_background_idle(&self) {
        let shared = &self.shared;
        if !shared.options.background_prepare {
            return;
        }
        let mut st = lock_state(&shared.state);
        while !st.closed && (st.preparing || shared.prepare_has_work(&st)) {
            st = shared
                .spare_cv
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

impl Shared {
    /// True when the prepare thread should prepare a spare now: none is ready, the budget has
    /// room for one (a recycled file is already counted in the log's disk use), and the last
    /// attempt did not just fail.
    /// A log that was never written to (a new stream's) prepares none: it holds one small
    /// segment until its first append.
    pub(crate) fn prepare_has_work(&self, st: &State) -> bool {
        let written_to =
            st.active.write_offset > DATA_START || !st.sealed.is_empty() || st.spare_need > 0;
        let within_budget = st.recycle.any_ready()
            || self
                .options
                .budget_bytes
                .is_none_or(|b| st.log_bytes() + self.next_segment_bytes(st) <= b);
        written_to && st.spare.is_none() && within_budget && st.prepare_failure.is_none()
    }

    /// The size of the next segment: twice the active one's, up to `segment_bytes`, and at
    /// least what a waiting frame needs.
    pub(crate) fn next_segment_bytes(&self, st: &State) -> u64 {
        let max = self.geometry.segment_bytes;
        let first = self.options.first_segment_bytes.min(max);
        st.active
            .geometry
            .segment_bytes
            .saturating_mul(2)
            .clamp(first, max)
            .max(st.spare_need)
    }

    /// The smallest segment size on the growth path (first size, doubled, capped at
    /// `segment_bytes`) whose data area holds a frame of `padded` bytes.
    pub(crate) fn segment_bytes_for(&self, padded: u64) -> u64 {
        let max = self.geometry.segment_bytes;
        let mut size = self.options.first_segment_bytes.min(max);
        while size < max {
            let g = Geometry {
                segment_bytes: size,
                index_interval: self.geometry.index_interval,
            };
            if DATA_START + padded <= g.data_limit() {
                break;
            }
            size = size.saturating_mul(2).min(max);
        }
        size
    }

    /// Keeps one spare segment ready.
    pub(crate) fn prepare_thread(&self) {
        let mut st = lock_state(&self.state);
        loop {
            if st.closed {
                return;
            }
            if !self.prepare_has_work(&st) {
                let wait = if st.prepare_failure.is_some() {
                    Duration::from_secs(1)
                } else {
                    Duration::from_secs(3600)
                };
                st = self
                    .spare_cv
                    .wait_timeout(st, wait)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
                if st.prepare_failure.is_some() && st.spare.is_none() {
                    st.prepare_failure = None; // retry after the pause
                }
                continue;
            }
            st.preparing = true;
            let bytes = self.next_segment_bytes(&st);
            st.preparing_bytes = bytes;
            let slot = st.recycle.take_ready();
            let recycle = slot.map(|i| self.dir.join(recycle_name(i)));
            drop(st);
            let started = Instant::now();
            let result = prepare_spare(
                self.storage.as_ref(),
                &self.dir,
                bytes,
                self.geometry.index_interval,
                self.options.new_segment_fill,
                recycle,
            );
            self.timings.prepared(started.elapsed());
            st = lock_state(&self.state);
            st.preparing = false;
            st.preparing_bytes = 0;
            if let Some(i) = slot {
                // The slot's file was renamed to the spare (or removed): free for the next one.
                st.recycle.prepared(i);
            }
            match result {
                Ok(f) => st.spare = Some(f),
                Err(e) => st.prepare_failure = Some(e.to_string()),
            }
            self.spare_cv.notify_all();
        }
    }
}

/// Creates, allocates (as `fill` says), writes the header of, and syncs a spare segment of
/// `segment_bytes`, or turns the retired segment `recycle` (of the largest size, at least
/// `segment_bytes`) into the spare.
pub(crate) fn prepare_spare(
    storage: &dyn Storage,
    dir: &Path,
    segment_bytes: u64,
    index_interval: u32,
    fill: SegmentFill,
    recycle: Option<PathBuf>,
) -> Result<Spare> {
    if let Some(old) = recycle {
        match reuse_retired(storage, dir, segment_bytes, index_interval, &old) {
            Ok(f) => return Ok(f),
            Err(_) => {
                // Fall back to a fresh file; the retired one is only an optimisation.
                let _ = storage.remove(&old);
            }
        }
    }
    let path = dir.join(SPARE_NAME);
    match storage.remove(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove", &path, e)),
    }
    let file = storage
        .open(&path, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", &path, e))?;
    let allocated = match fill {
        SegmentFill::Unwritten => file.allocate(segment_bytes),
        SegmentFill::Zeros => file.preallocate(segment_bytes),
    };
    if let Err(e) = allocated {
        let _ = storage.remove(&path);
        return Err(if e.kind() == std::io::ErrorKind::StorageFull {
            Error::NoSpace {
                dir: dir.to_path_buf(),
                source: e,
            }
        } else {
            Error::io("preallocate", &path, e)
        });
    }
    let header = SegmentHeader {
        base_lsn: Lsn::ZERO, // not stored: the rename into the log names the base
        segment_bytes,
        index_interval,
        created_ms: now_ms(),
    };
    file.write_at(&header.encode(), 0)
        .map_err(|e| Error::io("write", &path, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &path, e))?;
    Ok(Spare {
        file,
        bytes: segment_bytes,
    })
}

/// Turns a retired segment into the spare: a new header, the old footer zeroed (so the file can
/// never pass for a sealed segment), synced, renamed. The old frames stay: every one of them is
/// from before the next base LSN, so recovery and readers stop at them (case I of recovery), and
/// opening the log zeroes whatever follows the recovered end. Called only once the rename that
/// took the file out of the log is durable (see the module doc).
fn reuse_retired(
    storage: &dyn Storage,
    dir: &Path,
    segment_bytes: u64,
    index_interval: u32,
    old: &Path,
) -> Result<Spare> {
    let file = storage
        .open(old, OpenMode::ReadWrite)
        .map_err(|e| Error::io("open", old, e))?;
    let len = file.len().map_err(|e| Error::io("stat", old, e))?;
    if len < segment_bytes || len < SEGMENT_BYTES_MIN || !len.is_multiple_of(4096) {
        return Err(Error::InvalidOptions("retired segment of another size"));
    }
    // The file keeps its length (the largest segment size): its header says so.
    let geometry = Geometry {
        segment_bytes: len,
        index_interval,
    };
    let header = SegmentHeader {
        base_lsn: Lsn::ZERO,
        segment_bytes: len,
        index_interval,
        created_ms: now_ms(),
    };
    file.write_at(&header.encode(), 0)
        .map_err(|e| Error::io("write", old, e))?;
    file.write_at(
        &[0u8; crate::format::FOOTER_LEN as usize],
        geometry.footer_offset(),
    )
    .map_err(|e| Error::io("write", old, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", old, e))?;
    let spare = dir.join(SPARE_NAME);
    storage
        .rename(old, &spare)
        .map_err(|e| Error::io("rename", old, e))?;
    Ok(Spare { file, bytes: len })
}

/// Turns a prepared spare into the active segment starting at `base`: rename, map. The rename is
/// made durable by the next sync (which syncs the directory).
pub(crate) fn install_spare(
    storage: &dyn Storage,
    dir: &Path,
    largest: &Geometry,
    spare: Spare,
    base: Lsn,
) -> Result<Active> {
    let spare_path = dir.join(SPARE_NAME);
    let geometry = Geometry {
        segment_bytes: spare.bytes,
        index_interval: largest.index_interval,
    };
    debug_assert!(geometry.segment_bytes > DATA_START);
    let path = segment_path(dir, base);
    storage
        .rename(&spare_path, &path)
        .map_err(|e| Error::io("rename", &spare_path, e))?;
    let map = spare.file.map().map_err(|e| Error::io("mmap", &path, e))?;
    debug_assert_eq!(map.len() as u64, geometry.segment_bytes);
    Ok(Active {
        base,
        path,
        geometry,
        file: spare.file,
        map,
        write_offset: DATA_START,
        index: Vec::new(),
        next_index_at: DATA_START,
        frame_count: 0,
        first_arrival_ms: 0,
        last_arrival_ms: 0,
        hold: Arc::new(()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_reused_only_after_its_rename_is_durable() {
        let mut s = RecycleSlots::new();
        let a = s.claim().unwrap();
        assert_eq!(s.kept(), 1);
        assert_eq!(s.take_ready(), None, "renaming, not durable yet");
        assert!(!s.any_ready());
        s.renamed(a);
        assert!(s.any_ready());
        assert_eq!(s.take_ready(), Some(a));
        assert_eq!(s.kept(), 0, "preparing: counted as the spare");
        // Its name stays spoken for until the prepare step is done with it.
        let others: Vec<usize> = std::iter::from_fn(|| s.claim()).collect();
        assert_eq!(others.len(), RECYCLE_SLOTS - 1);
        assert!(!others.contains(&a));
        s.prepared(a);
        assert_eq!(s.claim(), Some(a));
    }

    #[test]
    fn an_abandoned_slot_is_free_and_its_file_never_reused() {
        let mut s = RecycleSlots::new();
        let a = s.claim().unwrap();
        s.abandon(a);
        assert_eq!(s.take_ready(), None);
        assert_eq!(s.kept(), 0);
        assert_eq!(s.claim(), Some(a));
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "recycling slot")]
    fn marking_a_free_slot_ready_is_caught() {
        let mut s = RecycleSlots::new();
        s.renamed(0);
    }
}
