//! `hydrant bench wal`: the WAL's throughput and acknowledgement latency, each shape beside the
//! disk's own baseline measured in the same run, on the same disk.
//!
//! # Method
//!
//! For each shape, two phases of `--seconds` each, one after the other, in a fresh temporary
//! directory on the disk under test (removed afterwards):
//!
//! 1. **hydrant**: a [`Wal`] with default options (durability `sync`, 64 MiB segments, spare
//!    segment prepared in the background). Appender threads loop: `append` one batch, then
//!    `Ticket::wait` for it to be durable. Latency is the time from the `append` call to the
//!    return of `wait`: what a producer waits for its acknowledgement.
//! 2. **disk**: one thread writes the same bytes per commit as one append's frame, with `pwrite`
//!    then `fdatasync`, into a file that was zero-filled with `write` and synced beforehand,
//!    cycling over it. This is the fastest durable append this kind of disk offers (test-env.md:
//!    writing into already-written blocks is up to 5x faster than allocating), so the ratios say
//!    how much of the disk the WAL leaves on the table, independent of how noisy the disk is today.
//! 3. **disk-new** (S4 only): the same loop into new blocks, a `fallocate`d file per segment's
//!    length filled front to back and then the next one, never wrapping; every `fdatasync` then
//!    also commits the journal (the blocks turn from unwritten to written). This is what a log
//!    that only grows cannot avoid on this file system: it is printed beside S4 (hydrant's ratios
//!    to it, and its own ratio to the disk over written blocks), while S4's goal stays set
//!    against the written-blocks baseline.
//!
//! Throughout, one `SCHED_IDLE` busy thread per CPU keeps idle vCPUs from halting (see
//! [`crate::host::IdleSpinners`]): on this project's VMs a halted vCPU wakes about 4 ms late
//! for an I/O completion, which would otherwise dominate the single-threaded phases.
//!
//! MB/s counts frame bytes (header, length prefixes, records, padding) for both phases, i.e.
//! the bytes each commit makes durable. Goals are printed beside the figures, not asserted:
//! S1 at least 0.9x the disk's MB/s; S2 at least 90,000 acknowledged records/s (okaywal, the best
//! library peer measured on this kind of machine, makes 60,000); S3 p99 at most 2x the disk's;
//! S4 (S1 while the log only grows, as when the destination is down: every new segment is a
//! fresh file, none recycled) at least 0.5x the disk's MB/s with p99 at most 5x the disk's. The
//! WAL phase also reports the spare segments' supply: how many the prepare thread made and in
//! how long, and how often and how long rotations waited for one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use hydrant_wal::format::{align_up, frame_len_for, DATA_START};
use hydrant_wal::{Observer, SegmentFill, Wal, WalOptions};
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::host::{self, Machine};
use crate::render::thousands;

/// Arguments of `hydrant bench wal`.
#[derive(Debug, clap::Args)]
pub struct BenchWalArgs {
    /// Directory to benchmark in: a fresh temporary directory is made inside it and removed
    /// afterwards. Put it on the disk that holds the data directory.
    #[arg(long, value_name = "DIR", default_value = "hydrant-data/bench-tmp")]
    dir: PathBuf,
    /// Seconds per phase (each shape runs the WAL, then the disk baseline).
    #[arg(long, value_name = "N", default_value_t = 5.0)]
    seconds: f64,
    /// Which shape to run.
    #[arg(long, value_enum, ignore_case = true, default_value_t = ShapeArg::All)]
    shape: ShapeArg,
    /// Segment size of the WAL, and the size of the baseline's file, in MiB.
    #[arg(long, value_name = "N", default_value_t = 64)]
    segment_mib: u64,
    /// Print the results as one JSON document (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// Busy SCHED_IDLE threads that keep idle CPUs from halting during the run (default: one
    /// per CPU; 0: none). On virtual machines a halted vCPU wakes ~4 ms late for an fsync's
    /// completion, which would swamp the single-threaded figures. They yield to every other
    /// thread at once.
    #[arg(long, value_name = "N")]
    idle_spinners: Option<usize>,
    /// Analysis: run each shape with this many appender threads instead of its own.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Analysis: wait this long after opening the WAL before measuring (lets the background
    /// thread finish preparing the spare segment; the steady state includes that work).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    warmup_seconds: f64,
    /// What deletes segments behind the writer during the run. `follow` (the default) plays a
    /// delivery that keeps up: every 10 ms it releases every durable, sealed segment, as the
    /// daemon's retention does behind its cursors, so retired segments are recycled as spares
    /// (the steady state of a running hydrantd). `none`: the log only grows, and every new
    /// segment is a fresh file, preallocated and zero-filled.
    #[arg(long, value_enum, default_value_t = RetentionArg::Follow)]
    retention: RetentionArg,
    /// Analysis: how the WAL gives new segment files their blocks (S4 and `--retention none`
    /// make every segment a new file). `unwritten` (the default) is the WAL's default.
    #[arg(long, value_enum, default_value_t = FillArg::Unwritten)]
    fill: FillArg,
}

/// `--retention`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
enum RetentionArg {
    /// Release segments behind the durable end, as delivery does.
    Follow,
    /// Never release segments.
    None,
}

/// `--fill`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
enum FillArg {
    /// `fallocate` only: unwritten extents, written once by the frames (the WAL's default).
    Unwritten,
    /// Zeros written and synced over each new segment before it joins the log.
    Zeros,
}

impl FillArg {
    fn fill(self) -> SegmentFill {
        match self {
            FillArg::Unwritten => SegmentFill::Unwritten,
            FillArg::Zeros => SegmentFill::Zeros,
        }
    }
}

/// `--shape`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ShapeArg {
    /// 500 records of 1 KiB per append, 4 threads (throughput).
    S1,
    /// 1 record of 100 B per append, 64 threads (group commit).
    S2,
    /// 1 record of 100 B per append, 1 thread (latency).
    S3,
    /// S1 with the log only growing (no retention: the destination is down), every new
    /// segment a fresh file.
    S4,
    /// All four.
    All,
}

/// What a shape promises, checked (not asserted) against the figures.
#[derive(Clone, Copy, Debug)]
enum Goal {
    /// The WAL's MB/s at least this multiple of the disk's.
    MbPerSecRatioAtLeast(f64),
    /// At least this many acknowledged records per second.
    RecordsPerSecAtLeast(f64),
    /// The WAL's p99 latency at most this multiple of the disk's.
    P99RatioAtMost(f64),
    /// Both: MB/s at least the first multiple of the disk's, p99 at most the second multiple.
    MbRatioAndP99(f64, f64),
}

/// One workload.
#[derive(Clone, Copy, Debug)]
struct Shape {
    name: &'static str,
    what: &'static str,
    records_per_append: usize,
    record_bytes: usize,
    threads: usize,
    goal: Goal,
    /// The retention this shape runs with, whatever `--retention` says.
    retention: Option<RetentionArg>,
}

const SHAPES: [Shape; 4] = [
    Shape {
        name: "S1",
        what: "throughput: 500 x 1 KiB per append, 4 threads",
        records_per_append: 500,
        record_bytes: 1024,
        threads: 4,
        goal: Goal::MbPerSecRatioAtLeast(0.9),
        retention: None,
    },
    Shape {
        name: "S2",
        what: "group commit: 1 x 100 B per append, 64 threads",
        records_per_append: 1,
        record_bytes: 100,
        threads: 64,
        goal: Goal::RecordsPerSecAtLeast(90_000.0),
        retention: None,
    },
    Shape {
        name: "S3",
        what: "latency: 1 x 100 B per append, 1 thread",
        records_per_append: 1,
        record_bytes: 100,
        threads: 1,
        goal: Goal::P99RatioAtMost(2.0),
        retention: None,
    },
    Shape {
        name: "S4",
        what: "backlog: S1 with the log only growing (no retention)",
        records_per_append: 500,
        record_bytes: 1024,
        threads: 4,
        goal: Goal::MbRatioAndP99(0.5, 5.0),
        retention: Some(RetentionArg::None),
    },
];

impl Shape {
    /// The bytes one append writes: its frame, padding included.
    fn frame_bytes(&self) -> u64 {
        align_up(frame_len_for(std::iter::repeat_n(
            self.record_bytes,
            self.records_per_append,
        )))
    }

    /// One batch. The content does not matter to the WAL (it neither compresses nor parses),
    /// but it is not all zeros, so that nothing in the stack can shortcut it.
    fn batch(&self) -> Vec<Vec<u8>> {
        (0..self.records_per_append)
            .map(|i| {
                (0..self.record_bytes)
                    .map(|j| b'a' + ((i + j) % 26) as u8)
                    .collect()
            })
            .collect()
    }
}

/// The figures of one phase.
#[derive(Clone, Debug, Serialize)]
struct Measured {
    seconds: f64,
    threads: usize,
    /// Acknowledged appends (commits, for the baseline).
    appends: u64,
    records: u64,
    /// Frame bytes made durable.
    bytes: u64,
    /// fdatasync rounds: the WAL's sync plans (`Wal::stats().syncs`), the baseline's commits.
    syncs: u64,
    records_per_sec: f64,
    mb_per_sec: f64,
    syncs_per_sec: f64,
    records_per_sync: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    /// Peak resident memory of the process during the phase (`VmHWM`, reset before it).
    peak_rss_kib: Option<u64>,
    /// Mean duration of a sync plan, from the WAL's [`Observer`] (WAL phase only).
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_mean_us: Option<f64>,
    /// Share of the phase during which a sync was running (WAL phase only).
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_busy: Option<f64>,
    /// The spare segment's supply during the phase (WAL phase only).
    #[serde(skip_serializing_if = "Option::is_none")]
    spares: Option<SpareSupply>,
}

/// How new segments were had during a WAL phase: rotations that waited for a spare, and the
/// prepare thread's work.
#[derive(Clone, Copy, Debug, Serialize)]
struct SpareSupply {
    waits: u64,
    wait_ms: f64,
    prepared: u64,
    prepare_ms: f64,
}

/// One shape's results.
#[derive(Clone, Debug, Serialize)]
struct ShapeResult {
    shape: &'static str,
    what: &'static str,
    records_per_append: usize,
    record_bytes: usize,
    frame_bytes: u64,
    hydrant: Measured,
    disk: Measured,
    ratio_records_per_sec: f64,
    ratio_mb_per_sec: f64,
    ratio_p50: f64,
    ratio_p99: f64,
    /// S4 only: the disk appending into new blocks (see [`Baseline::NewBlocks`]), and hydrant's
    /// MB/s and p99 ratios to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    disk_new_blocks: Option<Measured>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_new_blocks_mb_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_new_blocks_p99: Option<f64>,
    goal: String,
    goal_value: String,
    goal_met: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    dir: PathBuf,
    seconds_per_phase: f64,
    warmup_seconds: f64,
    idle_spinners: usize,
    load_average_before: String,
    load_average_after: String,
    segment_bytes: u64,
    retention: RetentionArg,
    fill: FillArg,
    shapes: Vec<ShapeResult>,
}

/// Counts sync plans and their time, to explain group commit figures.
#[derive(Debug, Default)]
struct SyncTally {
    syncs: AtomicU64,
    nanos: AtomicU64,
}

impl Observer for SyncTally {
    fn on_sync(&self, elapsed: Duration, _bytes: u64) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.nanos
            .fetch_add(duration_ns(elapsed), Ordering::Relaxed);
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The `q` quantile (0..=1) of sorted nanoseconds, in microseconds.
fn quantile_us(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted_ns.len() as f64).ceil() as usize;
    sorted_ns[rank.clamp(1, sorted_ns.len()) - 1] as f64 / 1000.0
}

fn measured(
    shape: &Shape,
    threads: usize,
    mut latencies_ns: Vec<u64>,
    elapsed: Duration,
    syncs: u64,
    peak_rss_kib: Option<u64>,
) -> Measured {
    latencies_ns.sort_unstable();
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let appends = latencies_ns.len() as u64;
    let records = appends * shape.records_per_append as u64;
    let bytes = appends * shape.frame_bytes();
    Measured {
        seconds,
        threads,
        appends,
        records,
        bytes,
        syncs,
        records_per_sec: records as f64 / seconds,
        mb_per_sec: bytes as f64 / seconds / 1e6,
        syncs_per_sec: syncs as f64 / seconds,
        records_per_sync: records as f64 / syncs.max(1) as f64,
        p50_us: quantile_us(&latencies_ns, 0.50),
        p99_us: quantile_us(&latencies_ns, 0.99),
        max_us: quantile_us(&latencies_ns, 1.0),
        peak_rss_kib,
        sync_mean_us: None,
        sync_busy: None,
        spares: None,
    }
}

/// One appender: append, wait for durability, repeat until `duration` has passed. Returns the
/// latency of every acknowledged append, in nanoseconds.
fn appender(wal: &Wal, batch: &[Vec<u8>], duration: Duration) -> hydrant_wal::Result<Vec<u64>> {
    let deadline = Instant::now() + duration;
    let mut latencies = Vec::new();
    loop {
        let started = Instant::now();
        if started >= deadline {
            return Ok(latencies);
        }
        wal.append(batch)?.wait()?;
        latencies.push(duration_ns(started.elapsed()));
    }
}

fn run_wal(
    shape: &Shape,
    dir: &Path,
    segment_bytes: u64,
    warmup: Duration,
    duration: Duration,
    retention: RetentionArg,
    fill: FillArg,
) -> Result<Measured> {
    let wal_dir = dir.join(format!("{}-wal", shape.name.to_lowercase()));
    let tally = Arc::new(SyncTally::default());
    let options = WalOptions {
        segment_bytes,
        observer: Some(tally.clone()),
        new_segment_fill: fill.fill(),
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&wal_dir, options)?;
    std::thread::sleep(warmup);
    let batch = shape.batch();
    let barrier = Barrier::new(shape.threads + 1);
    host::reset_peak_rss();
    let stats_before = wal.stats();
    let syncs_before = stats_before.syncs;
    let tally_before = (
        tally.syncs.load(Ordering::Relaxed),
        tally.nanos.load(Ordering::Relaxed),
    );
    let running = std::sync::atomic::AtomicBool::new(true);
    let (results, elapsed) = std::thread::scope(|s| {
        if retention == RetentionArg::Follow {
            s.spawn(|| {
                while running.load(Ordering::Relaxed) {
                    // Errors only delay retention; the appenders report real failures.
                    let _ = wal.truncate_before(wal.durable_lsn());
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
        }
        let handles: Vec<_> = (0..shape.threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    appender(&wal, &batch, duration)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        let elapsed = started.elapsed();
        running.store(false, Ordering::Relaxed);
        (results, elapsed)
    });
    let stats_after = wal.stats();
    let syncs = stats_after.syncs - syncs_before;
    let spares = SpareSupply {
        waits: stats_after.spare_waits - stats_before.spare_waits,
        wait_ms: (stats_after.spare_wait - stats_before.spare_wait).as_secs_f64() * 1000.0,
        prepared: stats_after.spares_prepared - stats_before.spares_prepared,
        prepare_ms: (stats_after.spare_prepare - stats_before.spare_prepare).as_secs_f64() * 1000.0,
    };
    let peak = host::peak_rss_kib();
    let mut latencies = Vec::new();
    for r in results {
        latencies.extend(r.map_err(|_| CliError::ThreadPanicked)??);
    }
    wal.close()?;
    drop(wal);
    // Free the segments now, so that the baseline runs on a disk as idle as the WAL found it.
    std::fs::remove_dir_all(&wal_dir).map_err(|e| CliError::io("remove", &wal_dir, e))?;
    let mut m = measured(shape, shape.threads, latencies, elapsed, syncs, peak);
    let tallied = tally.syncs.load(Ordering::Relaxed) - tally_before.0;
    let nanos = tally.nanos.load(Ordering::Relaxed) - tally_before.1;
    m.sync_mean_us = Some(nanos as f64 / tallied.max(1) as f64 / 1000.0);
    m.sync_busy = Some(nanos as f64 / 1e9 / m.seconds);
    m.spares = Some(spares);
    Ok(m)
}

/// Where the disk baseline writes its commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Baseline {
    /// Over blocks that are allocated and written (zero-filled and synced first), wrapping: the
    /// fastest durable append the disk offers, and the one the goals are set against.
    Written,
    /// Into new blocks only: a file `fallocate`d per segment's length (unwritten extents, as the
    /// WAL's new segments are), filled once front to back, then the next file, never wrapping.
    /// Each `fdatasync` then also commits the file system's journal (the extents written turn
    /// from unwritten to written): the least any log that only grows pays on this file system,
    /// printed beside S4 so that its ratio to [`Baseline::Written`] can be read against the
    /// disk's own.
    NewBlocks,
}

/// Writes `len` zero bytes with plain `write` calls and syncs them, so that the baseline later
/// overwrites blocks that are allocated and written, as the WAL's preallocated segments are.
fn zero_fill(file: &mut File, path: &Path, len: u64) -> Result<()> {
    let zeros = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < len {
        let n = (len - written).min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])
            .map_err(|e| CliError::io("write", path, e))?;
        written += n as u64;
    }
    file.sync_data()
        .map_err(|e| CliError::io("fdatasync", path, e))
}

/// A file of `len` bytes whose blocks are allocated but unwritten (`fallocate` mode 0).
fn fresh_file(dir: &Path, n: u64, shape: &Shape, len: u64) -> Result<(File, PathBuf)> {
    let path = dir.join(format!("{}-disk-new-{n}.dat", shape.name.to_lowercase()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| CliError::io("create", &path, e))?;
    let len_off = libc::off_t::try_from(len)
        .map_err(|_| CliError::InvalidArgument(format!("file length {len} too large")))?;
    // SAFETY: fallocate on a descriptor this function owns; no memory is passed.
    let rc = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, 0, len_off) };
    if rc != 0 {
        return Err(CliError::io(
            "fallocate",
            &path,
            std::io::Error::last_os_error(),
        ));
    }
    file.sync_all()
        .map_err(|e| CliError::io("fsync", &path, e))?;
    Ok((file, path))
}

fn run_baseline(
    shape: &Shape,
    dir: &Path,
    file_bytes: u64,
    duration: Duration,
    baseline: Baseline,
) -> Result<Measured> {
    if baseline == Baseline::NewBlocks {
        return run_baseline_new_blocks(shape, dir, file_bytes, duration);
    }
    let path = dir.join(format!("{}-disk.dat", shape.name.to_lowercase()));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| CliError::io("create", &path, e))?;
    zero_fill(&mut file, &path, file_bytes)?;
    let commit = vec![0x5a_u8; shape.frame_bytes() as usize];
    let commit_bytes = commit.len() as u64;
    host::reset_peak_rss();
    let started = Instant::now();
    let deadline = started + duration;
    let mut latencies = Vec::new();
    // Commits start where the WAL's frames do and wrap like a segment filling up.
    let mut at = DATA_START;
    loop {
        let t0 = Instant::now();
        if t0 >= deadline {
            break;
        }
        if at + commit_bytes > file_bytes {
            at = DATA_START;
        }
        latencies.push(commit_durably(&file, &path, &commit, at)?);
        at += commit_bytes;
    }
    let elapsed = started.elapsed();
    let peak = host::peak_rss_kib();
    drop(file);
    std::fs::remove_file(&path).map_err(|e| CliError::io("remove", &path, e))?;
    let syncs = latencies.len() as u64;
    Ok(measured(shape, 1, latencies, elapsed, syncs, peak))
}

/// One baseline commit: `bytes` written at `at` with `pwrite`, then `fdatasync`; returns how
/// long the two took, in nanoseconds.
fn commit_durably(file: &File, path: &Path, bytes: &[u8], at: u64) -> Result<u64> {
    let t0 = Instant::now();
    file.write_all_at(bytes, at)
        .map_err(|e| CliError::io("pwrite", path, e))?;
    file.sync_data()
        .map_err(|e| CliError::io("fdatasync", path, e))?;
    Ok(duration_ns(t0.elapsed()))
}

/// [`Baseline::NewBlocks`]: commits into fresh files, a new one (made outside the timing of
/// any commit, as the WAL's spares are made ahead) whenever the last is full.
fn run_baseline_new_blocks(
    shape: &Shape,
    dir: &Path,
    file_bytes: u64,
    duration: Duration,
) -> Result<Measured> {
    let commit = vec![0x5a_u8; shape.frame_bytes() as usize];
    let commit_bytes = commit.len() as u64;
    let mut n = 0u64;
    let (mut file, mut path) = fresh_file(dir, n, shape, file_bytes)?;
    host::reset_peak_rss();
    let started = Instant::now();
    let deadline = started + duration;
    let mut latencies = Vec::new();
    let mut at = DATA_START;
    let mut preparing = Duration::ZERO;
    loop {
        if at + commit_bytes > file_bytes {
            let t = Instant::now();
            drop(file);
            std::fs::remove_file(&path).map_err(|e| CliError::io("remove", &path, e))?;
            n += 1;
            (file, path) = fresh_file(dir, n, shape, file_bytes)?;
            at = DATA_START;
            preparing += t.elapsed();
        }
        let t0 = Instant::now();
        if t0 >= deadline + preparing {
            break;
        }
        latencies.push(commit_durably(&file, &path, &commit, at)?);
        at += commit_bytes;
    }
    let elapsed = started.elapsed().saturating_sub(preparing);
    let peak = host::peak_rss_kib();
    drop(file);
    std::fs::remove_file(&path).map_err(|e| CliError::io("remove", &path, e))?;
    let syncs = latencies.len() as u64;
    Ok(measured(shape, 1, latencies, elapsed, syncs, peak))
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

fn compare(
    shape: &Shape,
    hydrant: Measured,
    disk: Measured,
    new_blocks: Option<Measured>,
) -> ShapeResult {
    let (goal, goal_value, goal_met) = match shape.goal {
        Goal::MbPerSecRatioAtLeast(x) => {
            let r = ratio(hydrant.mb_per_sec, disk.mb_per_sec);
            (
                format!("MB/s at least {x:.2}x the disk's"),
                format!("{r:.2}x"),
                r >= x,
            )
        }
        Goal::RecordsPerSecAtLeast(x) => (
            format!(
                "at least {} acknowledged records/s (okaywal: 60,000)",
                thousands(x as u64)
            ),
            format!("{} records/s", thousands(hydrant.records_per_sec as u64)),
            hydrant.records_per_sec >= x,
        ),
        Goal::P99RatioAtMost(x) => {
            let r = ratio(hydrant.p99_us, disk.p99_us);
            (
                format!("p99 at most {x:.1}x the disk's"),
                format!("{r:.2}x"),
                r <= x,
            )
        }
        Goal::MbRatioAndP99(mb, p99) => {
            let r = ratio(hydrant.mb_per_sec, disk.mb_per_sec);
            let q = ratio(hydrant.p99_us, disk.p99_us);
            (
                format!("MB/s at least {mb:.2}x the disk's, p99 at most {p99:.1}x the disk's"),
                format!("{r:.2}x, p99 {q:.2}x"),
                r >= mb && q <= p99,
            )
        }
    };
    ShapeResult {
        shape: shape.name,
        what: shape.what,
        records_per_append: shape.records_per_append,
        record_bytes: shape.record_bytes,
        frame_bytes: shape.frame_bytes(),
        ratio_records_per_sec: ratio(hydrant.records_per_sec, disk.records_per_sec),
        ratio_mb_per_sec: ratio(hydrant.mb_per_sec, disk.mb_per_sec),
        ratio_p50: ratio(hydrant.p50_us, disk.p50_us),
        ratio_p99: ratio(hydrant.p99_us, disk.p99_us),
        ratio_new_blocks_mb_per_sec: new_blocks
            .as_ref()
            .map(|d| ratio(hydrant.mb_per_sec, d.mb_per_sec)),
        ratio_new_blocks_p99: new_blocks.as_ref().map(|d| ratio(hydrant.p99_us, d.p99_us)),
        disk_new_blocks: new_blocks,
        hydrant,
        disk,
        goal,
        goal_value,
        goal_met,
    }
}

const TABLE_HEADER: &str = "shape  run      threads    records/s      MB/s   syncs/s  \
                            rec/sync    p50 us    p99 us    max us   peak RSS";

fn row(out: &mut dyn Write, shape: &str, run: &str, m: &Measured) -> Result<()> {
    let rss = m.peak_rss_kib.map_or_else(
        || "?".to_string(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    );
    writeln!(
        out,
        "{shape:<5}  {run:<7}  {:>7}  {:>11}  {:>8.1}  {:>8}  {:>8.1}  {:>8.0}  {:>8.0}  {:>8.0}  {rss:>9}",
        m.threads,
        thousands(m.records_per_sec as u64),
        m.mb_per_sec,
        thousands(m.syncs_per_sec as u64),
        m.records_per_sync,
        m.p50_us,
        m.p99_us,
        m.max_us,
    )?;
    Ok(())
}

fn print_shape(out: &mut dyn Write, r: &ShapeResult) -> Result<()> {
    row(out, r.shape, "hydrant", &r.hydrant)?;
    row(out, r.shape, "disk", &r.disk)?;
    writeln!(
        out,
        "{:<5}  {:<7}  {:>7}  {:>10.2}x  {:>7.2}x  {:>8}  {:>8}  {:>7.2}x  {:>7.2}x",
        r.shape,
        "ratio",
        "",
        r.ratio_records_per_sec,
        r.ratio_mb_per_sec,
        "",
        "",
        r.ratio_p50,
        r.ratio_p99,
    )?;
    if let (Some(d), Some(mb), Some(p99)) = (
        &r.disk_new_blocks,
        r.ratio_new_blocks_mb_per_sec,
        r.ratio_new_blocks_p99,
    ) {
        row(out, r.shape, "disk-new", d)?;
        writeln!(
            out,
            "       against the disk appending into new blocks (fresh fallocated files, each \
             fdatasync also commits the journal): hydrant {mb:.2}x its MB/s, p99 {p99:.2}x; \
             the disk itself {:.2}x its own rate over written blocks",
            ratio(d.mb_per_sec, r.disk.mb_per_sec)
        )?;
    }
    if let (Some(mean), Some(busy)) = (r.hydrant.sync_mean_us, r.hydrant.sync_busy) {
        writeln!(
            out,
            "       hydrant syncs: {:.0} us each on average, running {:.0}% of the time",
            mean,
            busy * 100.0
        )?;
    }
    if let Some(s) = r.hydrant.spares {
        writeln!(
            out,
            "       hydrant spares: {} prepared in {:.0} ms; rotations waited for one {} times, \
             {:.0} ms in all",
            s.prepared, s.prepare_ms, s.waits, s.wait_ms
        )?;
    }
    writeln!(
        out,
        "       goal: {}: {} -> {}",
        r.goal,
        r.goal_value,
        if r.goal_met { "met" } else { "NOT met" }
    )?;
    Ok(())
}

/// Directories `dir` needs created, outermost first, so that they can be removed afterwards.
fn missing_ancestors(dir: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}

/// Runs `hydrant bench wal`.
///
/// # Errors
/// [`CliError::InvalidArgument`] for a non-positive duration or a segment too small for S1's
/// batch; the WAL's errors; I/O errors of the scratch directory and the baseline file.
pub fn run(args: &BenchWalArgs, out: &mut dyn Write) -> Result<()> {
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        return Err(CliError::InvalidArgument(format!(
            "--seconds must be in (0, 3600], got {}",
            args.seconds
        )));
    }
    if !(1..=4096).contains(&args.segment_mib) {
        return Err(CliError::InvalidArgument(format!(
            "--segment-mib must be in 1..=4096, got {}",
            args.segment_mib
        )));
    }
    let segment_bytes = args.segment_mib << 20;
    let duration = Duration::from_secs_f64(args.seconds);
    if args.threads.is_some_and(|t| !(1..=1024).contains(&t)) {
        return Err(CliError::InvalidArgument(
            "--threads must be in 1..=1024".into(),
        ));
    }
    if !(args.warmup_seconds.is_finite() && (0.0..=600.0).contains(&args.warmup_seconds)) {
        return Err(CliError::InvalidArgument(
            "--warmup-seconds must be in [0, 600]".into(),
        ));
    }
    let shapes: Vec<Shape> = SHAPES
        .iter()
        .filter(|s| match args.shape {
            ShapeArg::All => true,
            ShapeArg::S1 => s.name == "S1",
            ShapeArg::S2 => s.name == "S2",
            ShapeArg::S3 => s.name == "S3",
            ShapeArg::S4 => s.name == "S4",
        })
        .map(|s| Shape {
            threads: args.threads.unwrap_or(s.threads),
            ..*s
        })
        .collect();

    let created = missing_ancestors(&args.dir);
    std::fs::create_dir_all(&args.dir).map_err(|e| CliError::io("create", &args.dir, e))?;
    let scratch = tempfile::Builder::new()
        .prefix("bench-")
        .tempdir_in(&args.dir)
        .map_err(|e| CliError::io("create a temporary directory in", &args.dir, e))?;
    let outcome = run_in(args, &shapes, scratch.path(), segment_bytes, duration, out);
    let cleanup = scratch
        .close()
        .map_err(|e| CliError::io("remove", &args.dir, e));
    // Only directories this run created, and only when empty: never someone's data.
    for dir in created.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
    outcome.and(cleanup)
}

fn run_in(
    args: &BenchWalArgs,
    shapes: &[Shape],
    dir: &Path,
    segment_bytes: u64,
    duration: Duration,
    out: &mut dyn Write,
) -> Result<()> {
    let machine = Machine::describe(dir);
    let load_average_before = host::load_average();
    let spinners = host::IdleSpinners::start(args.idle_spinners.unwrap_or(machine.nproc));
    if !args.json {
        writeln!(
            out,
            "hydrant bench wal  {}  {} CPUs ({})  {}",
            machine.date, machine.nproc, machine.cpu, machine.kernel
        )?;
        writeln!(
            out,
            "load average {load_average_before}; {} SCHED_IDLE spinner threads keep idle CPUs awake",
            spinners.running
        )?;
        writeln!(
            out,
            "dir {} ({}); WAL: durability sync, {} MiB segments, background prepare, \
             retention {:?} (S4: none), new segments {:?}; {:.1} s per phase",
            dir.display(),
            machine.fs_type,
            segment_bytes >> 20,
            args.retention,
            args.fill,
            duration.as_secs_f64()
        )?;
        writeln!(
            out,
            "disk = one thread, pwrite + fdatasync of one frame's bytes per commit into a \
             preallocated, zero-filled, synced file; MB/s = frame bytes made durable"
        )?;
        writeln!(out)?;
        writeln!(out, "{TABLE_HEADER}")?;
        out.flush()?;
    }
    let mut results = Vec::new();
    for shape in shapes {
        eprintln!(
            "bench: {} ({}): hydrant {:.1} s, then disk {:.1} s",
            shape.name,
            shape.what,
            duration.as_secs_f64(),
            duration.as_secs_f64()
        );
        let warmup = Duration::from_secs_f64(args.warmup_seconds);
        let retention = shape.retention.unwrap_or(args.retention);
        let hydrant = run_wal(
            shape,
            dir,
            segment_bytes,
            warmup,
            duration,
            retention,
            args.fill,
        )?;
        let disk = run_baseline(shape, dir, segment_bytes, duration, Baseline::Written)?;
        let new_blocks = match shape.retention {
            Some(RetentionArg::None) => Some(run_baseline(
                shape,
                dir,
                segment_bytes,
                duration,
                Baseline::NewBlocks,
            )?),
            _ => None,
        };
        let result = compare(shape, hydrant, disk, new_blocks);
        if !args.json {
            print_shape(out, &result)?;
            out.flush()?;
        }
        results.push(result);
    }
    if !args.json {
        writeln!(out, "load average at the end {}", host::load_average())?;
    }
    if args.json {
        let report = Report {
            machine,
            dir: dir.to_path_buf(),
            seconds_per_phase: duration.as_secs_f64(),
            warmup_seconds: args.warmup_seconds,
            idle_spinners: spinners.running,
            load_average_before,
            load_average_after: host::load_average(),
            segment_bytes,
            retention: args.retention,
            fill: args.fill,
            shapes: results,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_bytes_match_the_wal_format() {
        // 32-byte header, then a 4-byte length prefix per record; padded to 8.
        assert_eq!(SHAPES[0].frame_bytes(), 500 * (1024 + 4) + 32);
        assert_eq!(SHAPES[1].frame_bytes(), 136);
        assert_eq!(SHAPES[2].frame_bytes(), 136);
        assert_eq!(SHAPES[3].frame_bytes(), SHAPES[0].frame_bytes());
    }

    #[test]
    fn quantiles_pick_ranks() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(quantile_us(&v, 0.5), 50.0);
        assert_eq!(quantile_us(&v, 0.99), 99.0);
        assert_eq!(quantile_us(&v, 1.0), 100.0);
        assert_eq!(quantile_us(&[], 0.5), 0.0);
        assert_eq!(quantile_us(&[7000], 0.99), 7.0);
    }
}
