//! A simulated disk for power-loss tests: an in-memory [`Storage`] that remembers which writes
//! and which directory changes were made durable, and on [`SimDisk::crash`] keeps only those plus
//! a seeded random selection of the rest, sector by sector.
//!
//! What it models: a machine that loses power. The page cache vanishes; every write that no
//! completed `sync_data` covered may have reached the platter in part, sector by sector in any
//! order (each 512-byte sector is atomic, a write spanning several may persist any subset of them);
//! a name created, renamed or removed survives only if `sync_dir` ran on its directory afterwards,
//! or by luck (a random prefix of the pending directory changes is kept, in order, as a journaling
//! file system would commit them). Directories made by [`Storage::create_dir_all`] are names in
//! their parents like any other: one whose creation was not made durable (by `sync_dir` of its
//! parent) can vanish, and with it everything under it, synced or not. Directories that no
//! `create_dir_all` made (a test that opens `/d/a` directly) exist from the start and always. Handles opened before the crash fail from then on, like a dead
//! process's would.
//!
//! Which unsynced sectors survive follows one of three patterns, chosen by the crash's seed: each
//! sector by an independent coin flip; per file, its writes in the order they were issued up to a
//! random point (a disk that writes back in order); or everything but one random run of sectors
//! (maybe none) per file (a disk that reorders: later sectors kept while earlier ones are lost,
//! such as the middle frame of a group commit missing between two kept ones).
//! [`SimDisk::crash_dropping`] loses exactly a given range instead, for deterministic tests.
//!
//! A crash can also be armed to strike at the n-th sync from now ([`SimDisk::arm_crash_at_sync`]),
//! when the most writes are in flight.
//!
//! Deterministic: the same seed and the same sequence of operations give the same disk. Threads
//! that touch the disk concurrently make the sequence depend on scheduling; a test makes it
//! deterministic again by running one thread at a time, and can hold a thread before each of its
//! mutating operations with [`SimDisk::gate_thread`] and let it go one operation at a time with
//! [`SimDisk::step_gated`] (how the model test interleaves retention with appends).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;

use crate::storage::{Mapping, OpenMode, Storage, StorageFile};

/// The unit a simulated disk writes atomically.
pub const SECTOR_BYTES: u64 = 512;

struct Inode {
    /// Current contents, as reads see them. Fixed-size (never reallocated) once preallocated, so
    /// that mappings can point into it.
    data: Mutex<InodeData>,
}

struct InodeData {
    bytes: Box<[u8]>,
    len: usize,
    fixed: bool,
    durable: Vec<u8>,
    /// Writes since the last sync, in order: (offset, bytes).
    pending: Vec<(u64, Vec<u8>)>,
}

impl fmt::Debug for Inode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Inode")
    }
}

impl Inode {
    fn new(contents: Vec<u8>) -> Arc<Inode> {
        let len = contents.len();
        Arc::new(Inode {
            data: Mutex::new(InodeData {
                bytes: contents.clone().into_boxed_slice(),
                len,
                fixed: false,
                durable: contents,
                pending: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, InodeData> {
        self.data
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Clone, Debug)]
enum DirOp {
    Link(PathBuf, Arc<Inode>),
    Rename(PathBuf, PathBuf),
    Remove(PathBuf),
    /// A directory created in its parent.
    Mkdir(PathBuf),
}

impl DirOp {
    fn dir(&self) -> Option<&Path> {
        match self {
            DirOp::Link(p, _) | DirOp::Rename(_, p) | DirOp::Remove(p) | DirOp::Mkdir(p) => {
                p.parent()
            }
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, Arc<Inode>>, dirs: &mut BTreeSet<PathBuf>) {
        match self {
            DirOp::Link(p, inode) => {
                names.insert(p.clone(), inode.clone());
            }
            DirOp::Rename(from, to) => {
                if let Some(inode) = names.remove(from) {
                    names.insert(to.clone(), inode);
                }
            }
            DirOp::Remove(p) => {
                names.remove(p);
            }
            DirOp::Mkdir(p) => {
                dirs.insert(p.clone());
            }
        }
    }
}

#[derive(Debug, Default)]
struct Namespace {
    current: BTreeMap<PathBuf, Arc<Inode>>,
    durable: BTreeMap<PathBuf, Arc<Inode>>,
    /// Directories made by `create_dir_all`, as the running machine sees them.
    dirs: BTreeSet<PathBuf>,
    /// Those of them whose creation a `sync_dir` of the parent made durable.
    durable_dirs: BTreeSet<PathBuf>,
    pending: Vec<DirOp>,
}

impl Namespace {
    /// Whether directory `d` exists: the root, one made by `create_dir_all`, or one that
    /// something exists under (an implicit directory, never made).
    fn dir_exists(&self, d: &Path) -> bool {
        d.parent().is_none()
            || d.as_os_str().is_empty()
            || self.dirs.contains(d)
            || self.current.keys().any(|p| p.starts_with(d) && p != d)
            || self.dirs.iter().any(|p| p.starts_with(d))
    }
}

#[derive(Debug)]
struct Shared {
    ns: Mutex<Namespace>,
    epoch: AtomicU64,
    fail_syncs: AtomicBool,
    capacity_bytes: AtomicU64,
    /// Mutating operations left before an armed crash fires; `u64::MAX` when disarmed.
    crash_countdown: AtomicU64,
    /// Syncs left before an armed crash fires; `u64::MAX` when disarmed.
    sync_countdown: AtomicU64,
    crash_seed: AtomicU64,
    crashes: AtomicU64,
    gate: Mutex<Gate>,
    gate_cv: Condvar,
}

/// A thread held before each of its mutating operations (see [`SimDisk::gate_thread`]).
#[derive(Debug, Default)]
struct Gate {
    /// The held thread; `None` when nothing is held.
    thread: Option<ThreadId>,
    /// Operations it may still start without waiting.
    allowed: u64,
    /// It waits at the gate now.
    parked: bool,
}

/// Which unsynced writes a crash keeps (see the module doc).
#[derive(Clone, Debug)]
enum Survival {
    /// Each sector on a coin flip.
    Coin,
    /// Per file, the sector pieces of its writes in the order they were issued, up to a
    /// random point.
    Prefix,
    /// All but one random run of sectors (possibly empty) per file.
    Hole,
    /// All but the sectors of `path` that overlap `range`.
    Dropping(PathBuf, Range<u64>),
}

/// The simulated disk. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct SimDisk {
    shared: Arc<Shared>,
}

impl Default for SimDisk {
    fn default() -> Self {
        SimDisk::new()
    }
}

/// A tiny deterministic PRNG (SplitMix64), so that a crash is a pure function of its seed.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator seeded with `seed`.
    #[must_use]
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }
}

fn crashed() -> io::Error {
    io::Error::other("simulated power loss: handle from before the crash")
}

impl SimDisk {
    /// An empty disk with unlimited capacity.
    #[must_use]
    pub fn new() -> SimDisk {
        SimDisk {
            shared: Arc::new(Shared {
                ns: Mutex::new(Namespace::default()),
                epoch: AtomicU64::new(0),
                fail_syncs: AtomicBool::new(false),
                capacity_bytes: AtomicU64::new(u64::MAX),
                crash_countdown: AtomicU64::new(u64::MAX),
                sync_countdown: AtomicU64::new(u64::MAX),
                crash_seed: AtomicU64::new(0),
                crashes: AtomicU64::new(0),
                gate: Mutex::new(Gate::default()),
                gate_cv: Condvar::new(),
            }),
        }
    }

    /// This disk as a [`Storage`], for the machine as it runs now: after the next crash, this
    /// handle and every file opened through it fail, as a dead machine's would; take a new one
    /// to "boot" again.
    #[must_use]
    pub fn storage(&self) -> Arc<dyn Storage> {
        Arc::new(SimStorage {
            disk: self.clone(),
            epoch: self.shared.epoch.load(Ordering::SeqCst),
        })
    }

    /// Limits the bytes all files together may hold; growing past it fails with `StorageFull`.
    pub fn set_capacity(&self, bytes: u64) {
        self.shared.capacity_bytes.store(bytes, Ordering::SeqCst);
    }

    /// Makes every `sync_data` and `sync_dir` fail with an I/O error (or succeed again).
    pub fn set_fail_syncs(&self, fail: bool) {
        self.shared.fail_syncs.store(fail, Ordering::SeqCst);
    }

    /// Arms a crash: the `after`-th mutating operation from now (write, preallocate, sync, rename,
    /// remove, create; 0 = the next one) does not happen; the disk crashes with `seed` instead and
    /// the operation fails. Models a power loss at any point, including in the middle of a sync
    /// protocol or of recovery.
    pub fn arm_crash(&self, after: u64, seed: u64) {
        self.shared.crash_seed.store(seed, Ordering::SeqCst);
        self.shared.crash_countdown.store(after, Ordering::SeqCst);
    }

    /// Arms a crash at the `after`-th sync (`sync_data` or `sync_dir`) from now (0 = the next
    /// one): the power fails while the disk flushes, with every write issued before it unsynced,
    /// the moment where what a power loss keeps matters most.
    pub fn arm_crash_at_sync(&self, after: u64, seed: u64) {
        self.shared.crash_seed.store(seed, Ordering::SeqCst);
        self.shared.sync_countdown.store(after, Ordering::SeqCst);
    }

    /// Disarms a crash armed by [`SimDisk::arm_crash`] or [`SimDisk::arm_crash_at_sync`] that
    /// has not fired.
    pub fn disarm_crash(&self) {
        self.shared
            .crash_countdown
            .store(u64::MAX, Ordering::SeqCst);
        self.shared.sync_countdown.store(u64::MAX, Ordering::SeqCst);
    }

    /// How many crashes happened so far (armed or explicit).
    #[must_use]
    pub fn crash_count(&self) -> u64 {
        self.shared.crashes.load(Ordering::SeqCst)
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.shared
            .gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds thread `id` before each of its mutating operations from now on, until
    /// [`SimDisk::step_gated`] lets an operation through or [`SimDisk::ungate`] releases it.
    /// One thread at a time.
    pub fn gate_thread(&self, id: ThreadId) {
        let mut g = self.gate();
        *g = Gate {
            thread: Some(id),
            allowed: 0,
            parked: false,
        };
    }

    /// Lets the held thread start `ops` more mutating operations, then waits until it is held
    /// again with none left, or released (`step_gated(0)` only waits). Returns true while a
    /// thread is still held.
    pub fn step_gated(&self, ops: u64) -> bool {
        let mut g = self.gate();
        if g.thread.is_none() {
            return false;
        }
        g.allowed += ops;
        self.shared.gate_cv.notify_all();
        while g.thread.is_some() && !(g.parked && g.allowed == 0) {
            g = self
                .shared
                .gate_cv
                .wait(g)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        g.thread.is_some()
    }

    /// Releases the held thread, if any: its operations run freely again.
    pub fn ungate(&self) {
        let mut g = self.gate();
        *g = Gate::default();
        self.shared.gate_cv.notify_all();
    }

    /// Waits at the gate if the calling thread is held there.
    fn pass_gate(&self) {
        let me = std::thread::current().id();
        let mut g = self.gate();
        if g.thread != Some(me) {
            return;
        }
        while g.thread == Some(me) && g.allowed == 0 {
            g.parked = true;
            self.shared.gate_cv.notify_all();
            g = self
                .shared
                .gate_cv
                .wait(g)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        g.parked = false;
        if g.thread == Some(me) {
            g.allowed -= 1;
        }
        self.shared.gate_cv.notify_all();
    }

    /// Starts one mutating operation of a handle from boot `epoch`: waits at the gate if the
    /// thread is held, fails if the machine crashed meanwhile, and counts the operation against
    /// an armed crash, firing it when due.
    fn tick(&self, epoch: u64) -> io::Result<()> {
        self.pass_gate();
        if self.shared.epoch.load(Ordering::SeqCst) != epoch {
            return Err(crashed());
        }
        self.count_down()
    }

    /// As [`SimDisk::tick`], for a sync (`sync_data`, `sync_dir`), which also counts against
    /// a crash armed by [`SimDisk::arm_crash_at_sync`].
    fn tick_sync(&self, epoch: u64) -> io::Result<()> {
        self.tick(epoch)?;
        let left = self.shared.sync_countdown.load(Ordering::SeqCst);
        if left == u64::MAX {
            return Ok(());
        }
        if left == 0 {
            self.shared.sync_countdown.store(u64::MAX, Ordering::SeqCst);
            self.crash(self.shared.crash_seed.load(Ordering::SeqCst));
            return Err(crashed());
        }
        self.shared.sync_countdown.store(left - 1, Ordering::SeqCst);
        Ok(())
    }

    fn count_down(&self) -> io::Result<()> {
        let left = self.shared.crash_countdown.load(Ordering::SeqCst);
        if left == u64::MAX {
            return Ok(());
        }
        if left == 0 {
            self.shared
                .crash_countdown
                .store(u64::MAX, Ordering::SeqCst);
            self.crash(self.shared.crash_seed.load(Ordering::SeqCst));
            return Err(crashed());
        }
        self.shared
            .crash_countdown
            .store(left - 1, Ordering::SeqCst);
        Ok(())
    }

    fn ns(&self) -> MutexGuard<'_, Namespace> {
        self.shared
            .ns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Total bytes held by the files currently named.
    #[must_use]
    pub fn used_bytes(&self) -> u64 {
        self.ns()
            .current
            .values()
            .map(|i| i.lock().len as u64)
            .sum()
    }

    /// Simulates a power loss: every handle opened before fails from now on, and the disk keeps
    /// what was durable plus a random (seeded) part of what was not. See the module doc.
    pub fn crash(&self, seed: u64) {
        let mut rng = SimRng::new(seed);
        let survival = match rng.next_u64() % 3 {
            0 => Survival::Coin,
            1 => Survival::Prefix,
            _ => Survival::Hole,
        };
        self.crash_with(rng, survival);
    }

    /// Simulates a power loss that keeps every write and directory change made so far, except
    /// the unsynced writes to the file at `path` in the sectors overlapping `lost`: those are
    /// lost, while later sectors survive. For deterministic tests of the reordering a real disk
    /// may do.
    pub fn crash_dropping(&self, path: &Path, lost: Range<u64>) {
        self.crash_with(SimRng::new(0), Survival::Dropping(path.to_path_buf(), lost));
    }

    fn crash_with(&self, mut rng: SimRng, survival: Survival) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.shared.crashes.fetch_add(1, Ordering::SeqCst);
        let mut ns = self.ns();
        let mut names = ns.durable.clone();
        let mut dirs = ns.durable_dirs.clone();
        let keep = if ns.pending.is_empty() {
            0
        } else if matches!(survival, Survival::Dropping(..)) {
            ns.pending.len()
        } else {
            (rng.next_u64() % (ns.pending.len() as u64 + 1)) as usize
        };
        for op in &ns.pending[..keep] {
            op.apply(&mut names, &mut dirs);
        }
        // A made directory whose name was lost takes everything under it along (sorted order:
        // parents come before their children).
        let made: BTreeSet<PathBuf> = ns.dirs.union(&ns.durable_dirs).cloned().collect();
        let lost = |p: &Path, dirs: &BTreeSet<PathBuf>| {
            p.ancestors()
                .skip(1)
                .any(|a| made.contains(a) && !dirs.contains(a))
        };
        let survivors: BTreeSet<PathBuf> =
            dirs.iter().filter(|d| !lost(d, &dirs)).cloned().collect();
        names.retain(|p, _| !lost(p, &survivors));
        let dirs = survivors;
        // Each surviving inode gets a fresh image: durable bytes plus random unsynced sectors.
        let mut rebuilt: Vec<(*const Inode, Arc<Inode>)> = Vec::new();
        let mut out = BTreeMap::new();
        for (path, inode) in names {
            let key = Arc::as_ptr(&inode);
            let fresh = if let Some((_, f)) = rebuilt.iter().find(|(k, _)| *k == key) {
                f.clone()
            } else {
                let old = inode.lock();
                let pieces = pieces(&old);
                let (hole_from, hole_to) = match &survival {
                    Survival::Hole if !pieces.is_empty() => {
                        let lo = pieces.iter().map(|p| p.1 / SECTOR_BYTES).min().unwrap_or(0);
                        let hi = pieces.iter().map(|p| p.1 / SECTOR_BYTES).max().unwrap_or(0) + 1;
                        let a = lo + rng.next_u64() % (hi - lo);
                        let b = a + rng.next_u64() % (hi - a + 1);
                        (a * SECTOR_BYTES, b * SECTOR_BYTES)
                    }
                    Survival::Dropping(p, lost) if *p == path => (
                        lost.start / SECTOR_BYTES * SECTOR_BYTES,
                        lost.end.div_ceil(SECTOR_BYTES) * SECTOR_BYTES,
                    ),
                    _ => (0, 0),
                };
                let mut prefix_left = rng.next_u64() % (pieces.len() as u64 + 1);
                let image = survivor_image(&old, &pieces, |at| match &survival {
                    Survival::Coin => rng.chance(1, 2),
                    Survival::Prefix => {
                        if prefix_left > 0 {
                            prefix_left -= 1;
                            true
                        } else {
                            false
                        }
                    }
                    Survival::Hole | Survival::Dropping(..) => !(hole_from..hole_to).contains(&at),
                });
                // A preallocated file keeps its fixed size (and live mappings) when the
                // preallocation itself survived.
                let fixed = old.fixed && image.len() == old.len;
                drop(old);
                let f = Inode::new(image);
                f.lock().fixed = fixed;
                rebuilt.push((key, f.clone()));
                f
            };
            out.insert(path, fresh);
        }
        ns.current = out.clone();
        ns.durable = out;
        ns.dirs = dirs.clone();
        ns.durable_dirs = dirs;
        ns.pending.clear();
    }

    /// Reads a whole file, for test assertions.
    ///
    /// # Errors
    /// `NotFound` when no such file exists.
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let ns = self.ns();
        let inode = ns
            .current
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let d = inode.lock();
        Ok(d.bytes[..d.len].to_vec())
    }

    /// Overwrites bytes of a file in place and makes them durable at once: a test's way of
    /// corrupting a disk.
    ///
    /// # Errors
    /// `NotFound` when no such file exists.
    pub fn corrupt(&self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let ns = self.ns();
        let inode = ns
            .current
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let mut d = inode.lock();
        let end = offset as usize + bytes.len();
        if end > d.len {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        d.bytes[offset as usize..end].copy_from_slice(bytes);
        if d.durable.len() < end {
            d.durable.resize(end, 0);
        }
        d.durable[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }
}

/// The unsynced writes of a file split at sector boundaries, in the order they were issued:
/// (index of the write, offset of the piece, end of the piece).
fn pieces(d: &InodeData) -> Vec<(usize, u64, u64)> {
    let mut v = Vec::new();
    for (i, (offset, bytes)) in d.pending.iter().enumerate() {
        let mut at = *offset;
        let end = offset + bytes.len() as u64;
        while at < end {
            let piece_end = (((at / SECTOR_BYTES) + 1) * SECTOR_BYTES).min(end);
            v.push((i, at, piece_end));
            at = piece_end;
        }
    }
    v
}

/// The image a power loss leaves of a file: its durable bytes, and the pieces of its unsynced
/// writes for which `keep(offset)` says so, each sector landing or not on its own.
fn survivor_image(
    d: &InodeData,
    pieces: &[(usize, u64, u64)],
    mut keep: impl FnMut(u64) -> bool,
) -> Vec<u8> {
    let mut image = d.durable.clone();
    for &(i, at, piece_end) in pieces {
        if keep(at) {
            let (offset, bytes) = &d.pending[i];
            if image.len() < piece_end as usize {
                image.resize(piece_end as usize, 0);
            }
            let src = &bytes[(at - offset) as usize..(piece_end - offset) as usize];
            image[at as usize..piece_end as usize].copy_from_slice(src);
        }
    }
    image
}

#[derive(Debug)]
struct SimFile {
    disk: SimDisk,
    inode: Arc<Inode>,
    epoch: u64,
    writable: bool,
}

impl SimFile {
    fn check(&self) -> io::Result<()> {
        if self.disk.shared.epoch.load(Ordering::SeqCst) == self.epoch {
            Ok(())
        } else {
            Err(crashed())
        }
    }

    fn check_growth(&self, new_len: u64, d: &InodeData) -> io::Result<()> {
        if new_len <= d.len as u64 {
            return Ok(());
        }
        let others = self.disk.used_bytes_except(&self.inode);
        let cap = self.disk.shared.capacity_bytes.load(Ordering::SeqCst);
        if others.saturating_add(new_len) > cap {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        Ok(())
    }
}

impl SimDisk {
    fn used_bytes_except(&self, skip: &Arc<Inode>) -> u64 {
        self.ns()
            .current
            .values()
            .filter(|i| !Arc::ptr_eq(i, skip))
            .map(|i| i.lock().len as u64)
            .sum()
    }
}

/// A [`SimDisk`] as one boot of a machine sees it (see [`SimDisk::storage`]).
#[derive(Debug)]
struct SimStorage {
    disk: SimDisk,
    epoch: u64,
}

impl SimStorage {
    fn check(&self) -> io::Result<()> {
        if self.disk.shared.epoch.load(Ordering::SeqCst) == self.epoch {
            Ok(())
        } else {
            Err(crashed())
        }
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.check()?;
        // Topmost missing directory first, each a name in its parent.
        let missing: Vec<PathBuf> = {
            let ns = self.disk.ns();
            let mut v: Vec<PathBuf> = dir
                .ancestors()
                .take_while(|d| !ns.dir_exists(d))
                .map(Path::to_path_buf)
                .collect();
            v.reverse();
            v
        };
        for d in missing {
            self.disk.tick(self.epoch)?;
            let mut ns = self.disk.ns();
            self.check()?;
            if ns.current.contains_key(&d) {
                return Err(io::Error::other("simulated disk: a file is in the way"));
            }
            ns.dirs.insert(d.clone());
            ns.pending.push(DirOp::Mkdir(d));
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.check()?;
        let ns = self.disk.ns();
        if !ns.dir_exists(dir) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(ns
            .current
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        self.check()?;
        if matches!(mode, OpenMode::CreateNew | OpenMode::Create) {
            self.disk.tick(self.epoch)?;
        }
        let mut ns = self.disk.ns();
        let existing = ns.current.get(path).cloned();
        let inode = match (mode, existing) {
            (OpenMode::CreateNew, Some(_)) => {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            (OpenMode::Read | OpenMode::ReadWrite, None) => {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            (_, Some(inode)) => inode,
            (OpenMode::CreateNew | OpenMode::Create, None) => {
                let inode = Inode::new(Vec::new());
                ns.current.insert(path.to_path_buf(), inode.clone());
                ns.pending
                    .push(DirOp::Link(path.to_path_buf(), inode.clone()));
                inode
            }
        };
        Ok(Arc::new(SimFile {
            disk: self.disk.clone(),
            inode,
            epoch: self.epoch,
            writable: mode != OpenMode::Read,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check()?;
        self.disk.tick(self.epoch)?;
        let mut ns = self.disk.ns();
        self.check()?;
        let inode = ns
            .current
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        ns.current.insert(to.to_path_buf(), inode);
        ns.pending
            .push(DirOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check()?;
        self.disk.tick(self.epoch)?;
        let mut ns = self.disk.ns();
        self.check()?;
        ns.current
            .remove(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        ns.pending.push(DirOp::Remove(path.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check()?;
        self.disk.tick_sync(self.epoch)?;
        if self.disk.shared.fail_syncs.load(Ordering::SeqCst) {
            return Err(io::Error::other("simulated sync failure"));
        }
        let mut ns = self.disk.ns();
        let pending = std::mem::take(&mut ns.pending);
        let Namespace {
            durable,
            durable_dirs,
            pending: rest,
            ..
        } = &mut *ns;
        for op in pending {
            if op.dir() == Some(dir) {
                op.apply(durable, durable_dirs);
            } else {
                rest.push(op);
            }
        }
        Ok(())
    }

    fn lock(&self, _path: &Path) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        // One process per simulated disk: nothing to exclude.
        self.check()?;
        Ok(Box::new(()))
    }

    fn lock_shared(&self, _path: &Path) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        Ok(Box::new(()))
    }

    fn free_bytes(&self, _dir: &Path) -> Option<u64> {
        let cap = self.disk.shared.capacity_bytes.load(Ordering::SeqCst);
        (cap != u64::MAX).then(|| cap.saturating_sub(self.disk.used_bytes()))
    }
}

impl StorageFile for SimFile {
    fn len(&self) -> io::Result<u64> {
        self.check()?;
        Ok(self.inode.lock().len as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.check()?;
        let d = self.inode.lock();
        let end = offset as usize + buf.len();
        if end > d.len {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        buf.copy_from_slice(&d.bytes[offset as usize..end]);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check()?;
        self.disk.tick(self.epoch)?;
        if !self.writable {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        let mut d = self.inode.lock();
        let end = offset as usize + buf.len();
        if end > d.len {
            self.check_growth(end as u64, &d)?;
            if d.fixed {
                return Err(io::Error::other(
                    "simulated disk: write past a preallocated file",
                ));
            }
            let mut v = std::mem::take(&mut d.bytes).into_vec();
            v.resize(end, 0);
            d.bytes = v.into_boxed_slice();
            d.len = end;
        }
        d.bytes[offset as usize..end].copy_from_slice(buf);
        d.pending.push((offset, buf.to_vec()));
        Ok(())
    }

    fn preallocate(&self, len: u64) -> io::Result<()> {
        self.check()?;
        self.disk.tick(self.epoch)?;
        let mut d = self.inode.lock();
        if d.fixed || (len as usize) < d.len {
            return Err(io::Error::other(
                "simulated disk: preallocate twice or shrink",
            ));
        }
        self.check_growth(len, &d)?;
        let mut v = std::mem::take(&mut d.bytes).into_vec();
        v.resize(len as usize, 0);
        d.bytes = v.into_boxed_slice();
        let old = d.len as u64;
        d.len = len as usize;
        d.fixed = true;
        // The zero-fill is a write like any other: durable only after a sync.
        let zeros = vec![0u8; (len - old) as usize];
        d.pending.push((old, zeros));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.check()?;
        self.disk.tick_sync(self.epoch)?;
        if self.disk.shared.fail_syncs.load(Ordering::SeqCst) {
            return Err(io::Error::other("simulated sync failure"));
        }
        let mut d = self.inode.lock();
        d.durable = d.bytes[..d.len].to_vec();
        d.pending.clear();
        Ok(())
    }

    fn map(&self) -> io::Result<Arc<dyn Mapping>> {
        self.check()?;
        let d = self.inode.lock();
        if d.fixed {
            Ok(Arc::new(SimMapping::Live {
                _owner: self.inode.clone(),
                ptr: d.bytes.as_ptr(),
                len: d.len,
            }))
        } else {
            Ok(Arc::new(SimMapping::Copy(d.bytes[..d.len].to_vec())))
        }
    }
}

/// A simulated mapping: a live view of a preallocated (fixed-size) file, or a copy of a file that
/// may still grow.
#[derive(Debug)]
enum SimMapping {
    Live {
        _owner: Arc<Inode>,
        ptr: *const u8,
        len: usize,
    },
    Copy(Vec<u8>),
}

// SAFETY: the pointer refers into the `bytes` allocation of an inode that the mapping keeps
// alive (`_owner`), and fixed files are never reallocated.
unsafe impl Send for SimMapping {}
// SAFETY: as above; reads of ranges being written concurrently are excluded by the WAL's protocol
// (see `Mapping::bytes`), as with a real shared memory map.
unsafe impl Sync for SimMapping {}

impl Mapping for SimMapping {
    fn len(&self) -> usize {
        match self {
            SimMapping::Live { len, .. } => *len,
            SimMapping::Copy(v) => v.len(),
        }
    }

    fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        match self {
            SimMapping::Live {
                _owner: _,
                ptr,
                len: total,
            } => {
                assert!(
                    offset.checked_add(len).is_some_and(|end| end <= *total),
                    "out of map"
                );
                // SAFETY: in bounds (checked above) of an allocation kept alive by `_owner`, and
                // the range is not being written (the caller's contract).
                unsafe { std::slice::from_raw_parts(ptr.add(offset), len) }
            }
            SimMapping::Copy(v) => &v[offset..offset + len],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_writes_survive_and_unsynced_names_may_not() {
        let disk = SimDisk::new();
        let s = disk.storage();
        let dir = Path::new("/d");
        let f = s.open(&dir.join("a"), OpenMode::CreateNew).expect("create");
        f.write_at(b"durable", 0).expect("write");
        f.sync_data().expect("sync");
        s.sync_dir(dir).expect("sync dir");
        f.write_at(b"XXXXXXX", 0).expect("write");
        let g = s.open(&dir.join("b"), OpenMode::CreateNew).expect("create");
        g.write_at(b"lost?", 0).expect("write");
        disk.crash(1);
        assert!(f.len().is_err(), "old handles are dead");
        let a = disk.read_file(&dir.join("a")).expect("a survives");
        assert!(a == b"durable" || a == b"XXXXXXX");
        // Whatever happened to "b", the disk is consistent: reading either works or NotFound.
        let _ = disk.read_file(&dir.join("b"));
    }

    #[test]
    fn later_sectors_can_survive_earlier_ones() {
        let path = Path::new("/d/a");
        let write_three = |disk: &SimDisk| {
            let s = disk.storage();
            let f = s.open(path, OpenMode::CreateNew).expect("create");
            s.sync_dir(Path::new("/d")).expect("sync dir");
            f.write_at(&[1u8; 512], 0).expect("write");
            f.sync_data().expect("sync");
            // One write of three sectors, never synced.
            let mut three = vec![2u8; 512];
            three.extend([3u8; 512]);
            three.extend([4u8; 512]);
            f.write_at(&three, 512).expect("write");
        };
        let disk = SimDisk::new();
        write_three(&disk);
        disk.crash_dropping(path, 512..1024);
        let a = disk.read_file(path).expect("named");
        assert!(
            a[512..1024].iter().all(|b| *b == 1 || *b == 0),
            "first sector lost"
        );
        assert!(
            a[1024..].iter().all(|b| *b == 3 || *b == 4),
            "later sectors kept"
        );
        // Seeded crashes do it too, for some seeds.
        let hole = (0..256).any(|seed| {
            let disk = SimDisk::new();
            write_three(&disk);
            disk.crash(seed);
            let a = disk.read_file(path).expect("named");
            a.len() == 2048 && a[512] != 2 && a[1024] == 3 && a[1536] == 4
        });
        assert!(
            hole,
            "no seed kept later sectors while dropping an earlier one"
        );
    }

    #[test]
    fn a_directory_whose_name_was_not_synced_takes_its_files_along() {
        let disk = SimDisk::new();
        let s = disk.storage();
        let dir = Path::new("/a/b");
        assert!(s.list(dir).is_err(), "not made yet");
        s.create_dir_all(dir).expect("mkdir");
        assert!(s.list(dir).expect("made").is_empty());
        let f = s.open(&dir.join("f"), OpenMode::CreateNew).expect("create");
        f.write_at(b"synced", 0).expect("write");
        f.sync_data().expect("sync");
        s.sync_dir(dir).expect("sync dir");
        assert_eq!(
            s.list(Path::new("/a")).expect("made").len(),
            0,
            "files only"
        );
        // `b`'s own name (in `/a`) and `/a`'s (in `/`) were never synced: a power loss that
        // keeps none of the pending directory changes loses the file with them.
        let lost = (0..64).any(|seed| {
            let d = SimDisk::new();
            let s = d.storage();
            s.create_dir_all(dir).expect("mkdir");
            let f = s.open(&dir.join("f"), OpenMode::CreateNew).expect("create");
            f.sync_data().expect("sync");
            s.sync_dir(dir).expect("sync dir");
            d.crash(seed);
            d.read_file(&dir.join("f")).is_err() && d.storage().list(dir).is_err()
        });
        assert!(lost, "no seed dropped the unsynced directory");
        // Synced up the chain, it survives every seed.
        for seed in 0..64 {
            let d = SimDisk::new();
            let s = d.storage();
            s.create_dir_all(dir).expect("mkdir");
            let f = s.open(&dir.join("f"), OpenMode::CreateNew).expect("create");
            f.write_at(b"synced", 0).expect("write");
            f.sync_data().expect("sync");
            for p in [dir, Path::new("/a"), Path::new("/")] {
                s.sync_dir(p).expect("sync dir");
            }
            d.crash(seed);
            assert_eq!(d.read_file(&dir.join("f")).expect("kept"), b"synced");
        }
    }

    #[test]
    fn unsynced_writes_are_dropped_by_some_seed() {
        let mut saw_loss = false;
        let mut saw_keep = false;
        for seed in 0..64 {
            let disk = SimDisk::new();
            let s = disk.storage();
            let f = s
                .open(Path::new("/d/a"), OpenMode::CreateNew)
                .expect("create");
            s.sync_dir(Path::new("/d")).expect("sync dir");
            f.write_at(&[7u8; 1024], 0).expect("write");
            disk.crash(seed);
            let a = disk.read_file(Path::new("/d/a")).expect("named");
            if a.len() == 1024 && a.iter().all(|b| *b == 7) {
                saw_keep = true;
            } else {
                saw_loss = true;
            }
        }
        assert!(saw_loss && saw_keep);
    }
}
