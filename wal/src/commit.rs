//! Group commit: how an append becomes durable.
//!
//! Durability is one choke point, `Shared::sync_until`. Whoever needs a position durable and finds
//! no sync running becomes the leader: it snapshots the written end, releases the lock, runs the
//! sync plan (seal finished segments, `fdatasync` the active one, `fsync` the directory after a
//! rotation), and publishes the new durable end; everyone who appended meanwhile waits for the
//! next sync, which covers all of them at once. Blocking waiters lead syncs themselves (no thread
//! hop on the latency path); async waiters ([`Ticket`] as a `Future`) are served by the log's sync
//! thread, which also runs the periodic syncs of [`Durability::Interval`].
//!
//! Data flow: an append ([`crate::writer`]) leaves its frame in the file or, when small, in the
//! tail that the next sync writes with one `pwrite`, and returns a [`Ticket`]; waiting on it runs
//! or joins a sync (`SyncPlan`, run by `Shared::sync_until` outside the lock), which moves
//! the durable end and wakes the waiters it covers.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ids::{Lsn, LsnRange};
use crate::options::Durability;
use crate::storage::StorageFile;
use crate::writer::{lock_state, Position, Shared};

pub(crate) struct PendingSeal {
    pub(crate) base: Lsn,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn StorageFile>,
    pub(crate) index_offset: u64,
    pub(crate) index_block: Vec<u8>,
    pub(crate) footer_offset: u64,
    pub(crate) footer: Vec<u8>,
}

/// The claim to an append's LSNs, completed when the log's durability mode is satisfied.
///
/// Wait with [`Ticket::wait`] (blocking: the caller may lead the group's sync itself) or
/// `.await` it from async code (the log's sync thread syncs and wakes the task; no async runtime
/// is needed by the WAL).
#[derive(Debug)]
#[must_use = "a ticket must be waited on before the append counts as acknowledged"]
pub struct Ticket {
    pub(crate) shared: Arc<Shared>,
    pub(crate) range: LsnRange,
}

impl Ticket {
    /// The LSNs of the appended records.
    pub fn range(&self) -> LsnRange {
        self.range
    }

    /// Blocks until the append is complete in the log's durability mode.
    ///
    /// # Errors
    /// [`Error::Poisoned`] when a sync failed: the append's durability is unknown.
    pub fn wait(self) -> Result<LsnRange> {
        if self.shared.options.durability == Durability::Sync {
            self.shared.sync_until(self.range.end)?;
        }
        Ok(self.range)
    }
}

impl Future for Ticket {
    type Output = Result<LsnRange>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.shared.options.durability != Durability::Sync {
            return Poll::Ready(Ok(self.range));
        }
        let mut st = lock_state(&self.shared.state);
        if let Some(cause) = &st.poisoned {
            return Poll::Ready(Err(Error::Poisoned {
                cause: cause.clone(),
            }));
        }
        if st.commit.durable.lsn >= self.range.end {
            return Poll::Ready(Ok(self.range));
        }
        if st.shut {
            // Closing syncs everything written before it marked the log closed, so this is only
            // reached if that final sync failed.
            return Poll::Ready(Err(Error::Closed));
        }
        // Already wanted: the sync thread was woken for it and has not started that sync yet;
        // when it does, it syncs up to the end written then, which covers this frame. Waking
        // it again would cost a futex call per append for nothing.
        let wake = st.commit.wait_async(self.range.end, cx.waker().clone());
        drop(st);
        if wake {
            self.shared.syncer_cv.notify_one();
        }
        Poll::Pending
    }
}

/// One sync: what it takes from the group-commit state, and the active segment's file.
struct SyncPlan {
    batch: Batch,
    active: Arc<dyn StorageFile>,
    active_path: PathBuf,
}

impl Shared {
    /// The one durability choke point: returns once every record below `target` is durable,
    /// leading a sync if none is running.
    pub(crate) fn sync_until(&self, target: Lsn) -> Result<()> {
        let mut st = lock_state(&self.state);
        loop {
            if let Some(cause) = &st.poisoned {
                return Err(Error::Poisoned {
                    cause: cause.clone(),
                });
            }
            if st.commit.durable.lsn >= target {
                return Ok(());
            }
            if st.commit.syncing() {
                // Park until the running sync covers us, or hands us the next one. Each waiter
                // is woken alone: waking every blocked appender after every sync (a condvar
                // broadcast) costs more CPU than the sync itself with dozens of them on 2 cores.
                st.commit.block(target, std::thread::current());
                drop(st);
                std::thread::park();
                st = lock_state(&self.state);
                continue;
            }
            let plan = SyncPlan {
                batch: st.commit.begin(),
                active: st.active.file.clone(),
                active_path: st.active.path.clone(),
            };
            drop(st);
            let started = Instant::now();
            let outcome = self.run_sync(&plan);
            let elapsed = started.elapsed();
            if outcome.is_ok() {
                // Before the waiters wake, so that an acknowledged record is below the published
                // mark. Still one sync at a time here, so the mark only moves forward. A failed
                // write leaves the mark behind the durable end, which readers tolerate (they stop
                // earlier): not a reason to poison the log.
                let _ = self.mark.publish(plan.batch.upto.lsn);
            }
            st = lock_state(&self.state);
            st.commit.finish(plan.batch.upto, outcome.is_ok());
            match outcome {
                Ok(()) => {
                    self.syncs.fetch_add(1, Ordering::Relaxed);
                    for seal in &plan.batch.seals {
                        if let Some(m) = st.sealed.iter_mut().find(|m| m.base == seal.base) {
                            m.seal_durable = true;
                        }
                    }
                    if let Some(o) = &self.options.observer {
                        o.on_sync(elapsed, plan.batch.bytes);
                    }
                }
                Err(e) => {
                    if st.poisoned.is_none() {
                        st.poisoned = Some(e.to_string());
                    }
                }
            }
            // Someone not covered leads the next sync (it stays registered until covered).
            let poisoned = st.poisoned.is_some();
            let (ready, unpark) = st.commit.release(poisoned);
            let followers = st.followers > 0;
            drop(st);
            if followers {
                self.durable_cv.notify_all();
            }
            for t in unpark {
                t.unpark();
            }
            for w in ready {
                w.wake();
            }
            st = lock_state(&self.state);
        }
    }

    /// Runs one sync plan. The order is the protocol: sealed segments' frames, index blocks and
    /// footers (each durable before the next), then the active segment, then the directory
    /// (renames into the log).
    fn run_sync(&self, plan: &SyncPlan) -> Result<()> {
        if !plan.batch.tail.is_empty() {
            plan.active
                .write_at(&plan.batch.tail, plan.batch.tail_offset)
                .map_err(|e| Error::io("write", &plan.active_path, e))?;
        }
        for seal in &plan.batch.seals {
            // Frames, then index, then footer, each made durable before the next is written:
            // a valid footer then vouches for both, whatever a power loss tears.
            seal.file
                .sync_data()
                .map_err(|e| Error::io("fdatasync", &seal.path, e))?;
            seal.file
                .write_at(&seal.index_block, seal.index_offset)
                .map_err(|e| Error::io("write", &seal.path, e))?;
            seal.file
                .sync_data()
                .map_err(|e| Error::io("fdatasync", &seal.path, e))?;
            seal.file
                .write_at(&seal.footer, seal.footer_offset)
                .map_err(|e| Error::io("write", &seal.path, e))?;
            seal.file
                .sync_data()
                .map_err(|e| Error::io("fdatasync", &seal.path, e))?;
        }
        plan.active
            .sync_data()
            .map_err(|e| Error::io("fdatasync", &plan.active_path, e))?;
        if plan.batch.dir {
            self.storage
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("fsync directory", &self.dir, e))?;
        }
        Ok(())
    }

    pub(crate) fn wake_all(&self) {
        let (wakers, threads): (Vec<Waker>, Vec<std::thread::Thread>) =
            { lock_state(&self.state).commit.release_all() };
        for t in threads {
            t.unpark();
        }
        self.durable_cv.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    /// Serves async waiters and periodic syncs.
    pub(crate) fn sync_thread(&self) {
        let period = match self.options.durability {
            Durability::Sync => None,
            Durability::Interval { every } => Some(every),
            Durability::None => Some(Duration::from_secs(1)),
        };
        let mut st = lock_state(&self.state);
        loop {
            if st.closed {
                return;
            }
            let due = st.commit.async_wanted
                || (period.is_some() && st.commit.written.lsn > st.commit.durable.lsn);
            if !due || st.poisoned.is_some() {
                st = match period {
                    Some(p) if st.poisoned.is_none() => {
                        self.syncer_cv
                            .wait_timeout(st, p)
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .0
                    }
                    _ => self
                        .syncer_cv
                        .wait(st)
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                };
                if period.is_none() || st.commit.async_wanted || st.closed {
                    continue;
                }
            }
            st.commit.async_wanted = false;
            let target = st.commit.written.lsn;
            drop(st);
            let _ = self.sync_until(target);
            st = lock_state(&self.state);
        }
    }
}

/// The group-commit state of a log, kept under the log's mutex: how far the log is written, in
/// its file and durable, the small frames waiting for the next sync's single `pwrite`, what the
/// next sync must also do (seals, the directory), and who waits for it.
///
/// Invariants, checked by [`Commit::check`] in debug builds after every change:
///
/// - `durable.lsn <= flushed.lsn <= written.lsn`: nothing is durable before it is in the
///   segment's file, and nothing is in the file before it was appended.
/// - A non-empty `tail` ends at `written`: `tail_offset + tail.len() == written.offset` (the
///   frames it holds are the last ones appended, in the active segment).
/// - `tail_in_flight` only while `sync_in_progress`: only a running sync writes a taken tail.
/// - One sync at a time: [`Commit::begin`] only when none runs.
pub(crate) struct Commit {
    /// The end of what was appended.
    pub written: Position,
    /// The end of what a completed sync made durable.
    pub durable: Position,
    /// End of what is in the active segment's file (the rest of `written` waits in `tail`).
    pub flushed: Position,
    /// Small frames appended under `sync` durability, not yet written to the file: the next
    /// sync writes them with one `pwrite` before its `fdatasync` (one system call per group
    /// commit instead of one per append). They end at `written` and start at `tail_offset`.
    tail: Vec<u8>,
    tail_offset: u64,
    /// A sync is writing a taken `tail` outside the lock: `flushed` waits for that sync.
    tail_in_flight: bool,
    /// A sync runs (outside the lock); others wait for it.
    sync_in_progress: bool,
    /// Finished segments the next sync seals.
    pending_seals: Vec<PendingSeal>,
    /// A rename into the log since the last sync: the next one syncs the directory too.
    dir_dirty: bool,
    /// Async waiters ([`Ticket`] as a future): (the LSN they need durable, their waker).
    waiters: Vec<(Lsn, Waker)>,
    /// Threads blocked in `sync_until` while another leads a sync: (their target, the thread).
    blocked: Vec<(Lsn, Thread)>,
    /// The sync thread was asked to sync for async waiters and has not started that sync yet.
    pub async_wanted: bool,
    /// Frame bytes appended since the last sync began (for the observer).
    bytes_since_sync: u64,
}

/// What one sync takes from [`Commit::begin`]: everything appended until now.
pub(crate) struct Batch {
    /// Frames to write into the active segment at `tail_offset` before syncing it.
    pub tail: Vec<u8>,
    pub tail_offset: u64,
    pub seals: Vec<PendingSeal>,
    /// Sync the directory after the active segment.
    pub dir: bool,
    /// The written end this sync makes durable.
    pub upto: Position,
    pub bytes: u64,
}

impl Commit {
    /// The state of a log just opened, everything up to `end` durable.
    pub fn new(end: Position) -> Commit {
        Commit {
            written: end,
            durable: end,
            flushed: end,
            tail: Vec::new(),
            tail_offset: 0,
            tail_in_flight: false,
            sync_in_progress: false,
            pending_seals: Vec::new(),
            dir_dirty: false,
            waiters: Vec::new(),
            blocked: Vec::new(),
            async_wanted: false,
            bytes_since_sync: 0,
        }
    }

    /// Checks the invariants (see the type's doc); a no-op in release builds.
    fn check(&self) {
        debug_assert!(
            self.durable.lsn <= self.flushed.lsn && self.flushed.lsn <= self.written.lsn,
            "durable {:?} <= flushed {:?} <= written {:?}",
            self.durable,
            self.flushed,
            self.written
        );
        debug_assert!(
            self.tail.is_empty()
                || self.tail_offset + self.tail.len() as u64 == self.written.offset,
            "the tail ends at the written end"
        );
        debug_assert!(
            !self.tail_in_flight || self.sync_in_progress,
            "only a running sync writes a taken tail"
        );
    }

    /// Bytes of frames waiting in the tail.
    pub fn tail_len(&self) -> usize {
        self.tail.len()
    }

    /// Keeps a small frame, to start at `offset` of the active segment, for the next sync's
    /// write. [`Commit::appended`] follows.
    pub fn queue(&mut self, offset: u64, frame: &[u8]) {
        if self.tail.is_empty() {
            self.tail_offset = offset;
        }
        self.tail.extend_from_slice(frame);
    }

    /// The frames waiting in the tail and where they go, to be written now.
    pub fn tail(&self) -> Option<(&[u8], u64)> {
        (!self.tail.is_empty()).then_some((&self.tail, self.tail_offset))
    }

    /// The tail was written into the file.
    pub fn tail_written(&mut self) {
        self.tail.clear();
        if !self.tail_in_flight {
            self.flushed = self.written;
        }
        self.check();
    }

    /// A frame of `padded` bytes was appended (queued, or written into the file): the log now
    /// ends at `end`.
    pub fn appended(&mut self, end: Position, padded: u64) {
        debug_assert!(end.lsn > self.written.lsn, "appends move the end forward");
        self.written = end;
        if self.tail.is_empty() && !self.tail_in_flight {
            self.flushed = self.written;
        }
        self.bytes_since_sync += padded;
        self.check();
    }

    /// The log rotated: the finished segment waits for the next sync to seal it, and the log
    /// now ends at `end`, at the start of the new segment.
    pub fn rotated(&mut self, seal: PendingSeal, end: Position) {
        debug_assert!(
            self.tail.is_empty(),
            "the old segment's frames are in its file"
        );
        debug_assert_eq!(end.lsn, self.written.lsn);
        self.pending_seals.push(seal);
        self.dir_dirty = true;
        self.written = end;
        self.check();
    }

    /// A rename into the log (not a rotation) that the next sync must make durable.
    pub fn renamed(&mut self) {
        self.dir_dirty = true;
    }

    /// Whether a sync runs now.
    pub fn syncing(&self) -> bool {
        self.sync_in_progress
    }

    /// Starts a sync of everything appended so far: takes the tail, the pending seals and the
    /// directory flag.
    pub fn begin(&mut self) -> Batch {
        debug_assert!(!self.sync_in_progress, "one sync at a time");
        self.sync_in_progress = true;
        self.tail_in_flight = !self.tail.is_empty();
        let batch = Batch {
            tail: std::mem::take(&mut self.tail),
            tail_offset: self.tail_offset,
            seals: std::mem::take(&mut self.pending_seals),
            dir: std::mem::take(&mut self.dir_dirty),
            upto: self.written,
            bytes: std::mem::take(&mut self.bytes_since_sync),
        };
        self.check();
        batch
    }

    /// The sync begun at `upto` ended: with `ok`, everything below `upto` is durable (and in
    /// the file).
    pub fn finish(&mut self, upto: Position, ok: bool) {
        debug_assert!(self.sync_in_progress);
        self.sync_in_progress = false;
        self.tail_in_flight = false;
        if ok {
            if upto.lsn >= self.durable.lsn {
                self.durable = upto;
            }
            if upto.lsn > self.flushed.lsn {
                self.flushed = upto;
            }
        }
        self.check();
    }

    /// Registers the calling thread as waiting, while another leads a sync, for `target` to
    /// be durable (once: a thread woken without being covered registers again).
    pub fn block(&mut self, target: Lsn, me: Thread) {
        self.blocked.retain(|(_, t)| t.id() != me.id());
        self.blocked.push((target, me));
    }

    /// Registers an async waiter for `lsn`. Returns true when the sync thread must be woken
    /// for it: false when it was woken already and has not started that sync yet (when it
    /// does, it syncs up to the end written then, which covers this waiter).
    pub fn wait_async(&mut self, lsn: Lsn, waker: Waker) -> bool {
        self.waiters.push((lsn, waker));
        let wake = !self.async_wanted;
        self.async_wanted = true;
        wake
    }

    /// After a sync: the waiters it covered (all of them when the log is `poisoned`), and the
    /// threads to unpark: those covered, and the first one not covered, to lead the next sync
    /// (it stays registered until covered).
    pub fn release(&mut self, poisoned: bool) -> (Vec<Waker>, Vec<Thread>) {
        let durable = self.durable.lsn;
        let mut ready = Vec::new();
        self.waiters.retain(|(lsn, w)| {
            if poisoned || *lsn <= durable {
                ready.push(w.clone());
                false
            } else {
                true
            }
        });
        let mut unpark = Vec::new();
        self.blocked.retain(|(lsn, t)| {
            if poisoned || *lsn <= durable {
                unpark.push(t.clone());
                false
            } else {
                true
            }
        });
        if let Some((_, t)) = self.blocked.first() {
            unpark.push(t.clone());
        }
        (ready, unpark)
    }

    /// Every waiter, to be woken to see the log poisoned or closed.
    pub fn release_all(&mut self) -> (Vec<Waker>, Vec<Thread>) {
        (
            self.waiters.drain(..).map(|(_, w)| w).collect(),
            self.blocked.drain(..).map(|(_, t)| t).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::task::Wake;

    use super::*;
    use crate::format::DATA_START;

    fn at(lsn: u64, offset: u64) -> Position {
        Position {
            lsn: Lsn(lsn),
            segment: Lsn(0),
            offset,
        }
    }

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    const START: u64 = DATA_START;

    #[test]
    fn a_sync_takes_the_queued_frames_and_makes_them_durable() {
        let mut c = Commit::new(at(0, START));
        c.queue(START, &[1; 64]);
        c.appended(at(1, START + 64), 64);
        c.queue(START + 64, &[2; 64]);
        c.appended(at(2, START + 128), 64);
        assert_eq!(
            c.flushed,
            at(0, START),
            "queued frames are not in the file yet"
        );
        let batch = c.begin();
        assert_eq!(batch.tail.len(), 128);
        assert_eq!(batch.tail_offset, START);
        assert_eq!(batch.upto, at(2, START + 128));
        assert_eq!(batch.bytes, 128);
        assert!(c.syncing());
        // Appended while the sync runs: waits for the next one.
        c.queue(START + 128, &[3; 64]);
        c.appended(at(3, START + 192), 64);
        c.finish(batch.upto, true);
        assert_eq!(c.durable, at(2, START + 128));
        assert_eq!(c.flushed, at(2, START + 128));
        assert_eq!(c.written, at(3, START + 192));
        let next = c.begin();
        assert_eq!(next.tail_offset, START + 128);
        assert_eq!(next.upto, at(3, START + 192));
        c.finish(next.upto, true);
        assert_eq!(c.durable, c.written);
    }

    #[test]
    fn a_frame_written_during_a_sync_is_flushed_only_when_the_sync_ends() {
        let mut c = Commit::new(at(0, START));
        c.queue(START, &[1; 64]);
        c.appended(at(1, START + 64), 64);
        let batch = c.begin();
        // A large frame goes straight into the file; the taken tail is still being written.
        c.appended(at(2, START + 64 + 8192), 8192);
        assert_eq!(c.flushed, at(0, START));
        c.finish(batch.upto, true);
        assert_eq!(c.flushed, at(1, START + 64));
    }

    #[test]
    fn a_failed_sync_leaves_the_durable_end_behind() {
        let mut c = Commit::new(at(0, START));
        c.queue(START, &[1; 64]);
        c.appended(at(1, START + 64), 64);
        let batch = c.begin();
        c.finish(batch.upto, false);
        assert_eq!(c.durable, at(0, START));
        assert!(!c.syncing());
    }

    #[test]
    fn covered_waiters_are_released_and_the_first_other_leads_the_next_sync() {
        let mut c = Commit::new(at(0, START));
        let me = std::thread::current();
        c.appended(at(10, START + 640), 640);
        let count = Arc::new(Count::default());
        assert!(
            c.wait_async(Lsn(5), Waker::from(count.clone())),
            "wakes the sync thread"
        );
        assert!(
            !c.wait_async(Lsn(20), Waker::from(count.clone())),
            "already woken"
        );
        c.block(Lsn(5), me.clone());
        let batch = c.begin();
        c.finish(batch.upto, true);
        let (ready, unpark) = c.release(false);
        assert_eq!(ready.len(), 1, "the waiter for 20 waits on");
        assert_eq!(unpark.len(), 1);
        // Blocked for more than the durable end: woken to lead the next sync, still registered.
        c.block(Lsn(30), me.clone());
        let (_, unpark) = c.release(false);
        assert_eq!(unpark.len(), 1);
        let (_, unpark) = c.release(false);
        assert_eq!(unpark.len(), 1, "still registered");
        // Poisoned: everyone goes.
        let (ready, unpark) = c.release(true);
        assert_eq!((ready.len(), unpark.len()), (1, 1));
        assert_eq!(c.release_all().0.len() + c.release_all().1.len(), 0);
    }

    #[test]
    fn a_rotation_makes_the_next_sync_seal_and_sync_the_directory() {
        let disk = crate::sim::SimDisk::new();
        let file = disk
            .storage()
            .open(Path::new("/d/0.seg"), crate::storage::OpenMode::CreateNew)
            .unwrap();
        let mut c = Commit::new(at(0, START));
        c.appended(at(4, START + 256), 256);
        let seal = PendingSeal {
            base: Lsn(0),
            path: PathBuf::from("/d/0.seg"),
            file,
            index_offset: START + 256,
            index_block: Vec::new(),
            footer_offset: 8192 - 128,
            footer: Vec::new(),
        };
        let end = Position {
            lsn: Lsn(4),
            segment: Lsn(4),
            offset: START,
        };
        c.rotated(seal, end);
        let batch = c.begin();
        assert_eq!(batch.seals.len(), 1);
        assert!(batch.dir);
        assert_eq!(batch.upto, end);
        c.finish(batch.upto, true);
        let again = c.begin();
        assert!(again.seals.is_empty() && !again.dir, "once");
        c.finish(again.upto, true);
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "one sync at a time")]
    fn two_syncs_at_once_are_caught() {
        let mut c = Commit::new(at(0, START));
        let _ = c.begin();
        let _ = c.begin();
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "durable")]
    fn a_durable_end_past_the_written_end_is_caught() {
        let mut c = Commit::new(at(0, START));
        let _ = c.begin();
        c.finish(at(1, START + 64), true);
    }
}
