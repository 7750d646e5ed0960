//! `hydrant bench replay`: `hydrant replay` against the disk's own read rate (issue 20, part 3).
//!
//! How a run goes:
//! 1. A log of `--gib` GiB is written straight through [`hydrant_wal::Wal`] (no daemon): batches
//!    of 500 records of 1 KiB, the shape `bench put` P1 sends, into `DIR/streams/bench/wal` of a
//!    temporary data directory, closed (synced, durable mark published).
//! 2. Each of `--runs` rounds measures, with the page cache dropped before each timing (see
//!    [`crate::recover::drop_cache`]):
//!    - (a) `hydrant replay --dry-run` (reads and checks every frame, writes nothing) beside a
//!      plain read loop over the same segment files (1 MiB `read`s, as `cat` does);
//!    - (b) `hydrant replay --to-dir` with `--compression` (default UNCOMPRESSED) beside copying
//!      the segment files into a directory (1 MiB reads and writes, each file fsynced, as
//!      replay's local store fsyncs each object).
//!
//!    Both rates are the segment files' bytes over the time taken, so a ratio of 1 means replay
//!    went through its log as fast as the disk reads (or copies) it. The two timings of a pair
//!    take turns: the baseline goes first in even rounds, replay in odd ones (4 rounds by
//!    default), so that a disk whose rate drifts after writes does not favour either side.
//!
//! Goal printed beside the figures (not asserted): each ratio at least 0.9.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hydrant_wal::{Durability, Wal, WalOptions};
use serde::Serialize;

use crate::host::Machine;
use crate::put::BenchHttpError;
use crate::recover::{drop_cache, CacheDrop};

/// The goal: replay at least this fraction of the baseline's rate.
const GOAL_RATIO: f64 = 0.9;
/// The stream's name in the temporary data directory.
const STREAM: &str = "bench";

/// Arguments of `hydrant bench replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchReplayArgs {
    /// The hydrant CLI to run (default: $HYDRANT_CLI, or hydrant next to hydrant-bench).
    #[arg(long, value_name = "PATH")]
    pub hydrant: Option<PathBuf>,
    /// Directory for the temporary data directory: put it on the disk under test. Removed
    /// afterwards.
    #[arg(long, value_name = "DIR", default_value = "hydrant-data/bench-tmp")]
    pub dir: PathBuf,
    /// Size of the log to replay, GiB of segment files.
    #[arg(long, value_name = "GIB", default_value_t = 3.0)]
    pub gib: f64,
    /// Rounds measured (each: dry run, read loop, replay to a directory, copy).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub runs: usize,
    /// CompressionFormat of the replay with output.
    #[arg(long, value_name = "FORMAT", default_value = "UNCOMPRESSED")]
    pub compression: String,
    /// Print the results as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// One round's timings, s.
#[derive(Clone, Copy, Debug, Serialize)]
struct Round {
    dry_run_s: f64,
    read_s: f64,
    replay_s: f64,
    copy_s: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    cache_drop: CacheDrop,
    /// Bytes of the segment files.
    segment_bytes: u64,
    segments: usize,
    records: u64,
    compression: String,
    build_mb_per_sec: f64,
    rounds: Vec<Round>,
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> BenchHttpError {
    move |source| BenchHttpError::Io { op, source }
}

/// Finds the CLI: `explicit`, else `$HYDRANT_CLI`, else `hydrant` next to the running binary.
fn find_cli(explicit: Option<&Path>) -> Result<PathBuf, BenchHttpError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("HYDRANT_CLI") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(io("find the running binary"))?;
    let cli = exe.with_file_name("hydrant");
    if cli.is_file() {
        Ok(cli)
    } else {
        Err(BenchHttpError::InvalidArgument(format!(
            "no hydrant CLI at {}: give --hydrant or set HYDRANT_CLI",
            cli.display()
        )))
    }
}

/// Writes the log: 500 x 1 KiB batches until its segment files hold `bytes`. Returns the
/// records written.
fn build_log(wal_dir: &Path, bytes: u64) -> Result<u64, BenchHttpError> {
    let options = WalOptions {
        durability: Durability::None,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(wal_dir, options).map_err(|e| BenchHttpError::Io {
        op: "open the WAL",
        source: std::io::Error::other(e.to_string()),
    })?;
    // Varied bytes, so that a compressing replay has work like real records give it.
    let batch: Vec<Vec<u8>> = (0..500u32)
        .map(|i| {
            (0..1024u32)
                .map(|j| (i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8)
                .collect()
        })
        .collect();
    let mut records = 0u64;
    while wal.stats().disk_bytes < bytes {
        // Not waited for: `close` syncs everything at the end.
        let _ticket = wal.append(&batch).map_err(|e| BenchHttpError::Io {
            op: "append to the WAL",
            source: std::io::Error::other(e.to_string()),
        })?;
        records += batch.len() as u64;
    }
    wal.close().map_err(|e| BenchHttpError::Io {
        op: "close the WAL",
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(records)
}

/// The segment files of the log, in name (LSN) order.
fn segment_files(wal_dir: &Path) -> Result<Vec<PathBuf>, BenchHttpError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(wal_dir)
        .map_err(io("list the WAL"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads every file through, 1 MiB at a time; returns the bytes read.
fn read_all(files: &[PathBuf]) -> Result<u64, BenchHttpError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    for path in files {
        let mut f = std::fs::File::open(path).map_err(io("open a segment"))?;
        loop {
            let n = f.read(&mut buf).map_err(io("read a segment"))?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    Ok(total)
}

/// Copies every file into `to`, 1 MiB at a time, each fsynced, then the directory.
fn copy_all(files: &[PathBuf], to: &Path) -> Result<(), BenchHttpError> {
    std::fs::create_dir_all(to).map_err(io("create the copy directory"))?;
    let mut buf = vec![0u8; 1 << 20];
    for path in files {
        let mut from = std::fs::File::open(path).map_err(io("open a segment"))?;
        let name = path.file_name().unwrap_or_default();
        let mut out = std::fs::File::create(to.join(name)).map_err(io("create a copy"))?;
        loop {
            let n = from.read(&mut buf).map_err(io("read a segment"))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(io("write a copy"))?;
        }
        out.sync_all().map_err(io("fsync a copy"))?;
    }
    std::fs::File::open(to)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync the copy directory"))
}

/// Runs the CLI with `args`; fails when it does.
fn run_cli(cli: &Path, args: &[&str]) -> Result<(), BenchHttpError> {
    let output = Command::new(cli)
        .args(args)
        .output()
        .map_err(io("run hydrant replay"))?;
    if !output.status.success() {
        return Err(BenchHttpError::Delivery(format!(
            "hydrant {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

/// Times `f` after dropping the page cache.
fn timed(
    data_dir: &Path,
    f: impl FnOnce() -> Result<(), BenchHttpError>,
) -> Result<(f64, CacheDrop), BenchHttpError> {
    let dropped = drop_cache(data_dir)?;
    let started = Instant::now();
    f()?;
    Ok((started.elapsed().as_secs_f64(), dropped))
}

/// Runs `hydrant bench replay` and prints its report.
///
/// # Errors
/// A [`BenchHttpError`] when a step fails.
pub fn run(args: &BenchReplayArgs, out: &mut dyn Write) -> Result<(), BenchHttpError> {
    if !(args.gib.is_finite() && args.gib > 0.0) || args.runs == 0 {
        return Err(BenchHttpError::InvalidArgument(
            "--gib must be positive and --runs at least 1".into(),
        ));
    }
    let cli = find_cli(args.hydrant.as_deref())?;
    std::fs::create_dir_all(&args.dir).map_err(io("create --dir"))?;
    let tmp = tempfile::Builder::new()
        .prefix("bench-replay-")
        .tempdir_in(&args.dir)
        .map_err(io("create the temporary directory"))?;
    let data_dir = tmp.path().join("data");
    let wal_dir = data_dir.join("streams").join(STREAM).join("wal");
    let target = (args.gib * f64::from(1u32 << 30)) as u64;
    eprintln!("bench replay: writing a {:.1} GiB log", args.gib);
    let started = Instant::now();
    let records = build_log(&wal_dir, target)?;
    let files = segment_files(&wal_dir)?;
    let segment_bytes: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let build_mb_per_sec = segment_bytes as f64 / 1e6 / started.elapsed().as_secs_f64();

    let data = data_dir.to_string_lossy().into_owned();
    let out_dir = tmp.path().join("out");
    let copy_dir = tmp.path().join("copy");
    let state_dir = tmp.path().join("state");
    let out_s = out_dir.to_string_lossy().into_owned();
    let state_s = state_dir.to_string_lossy().into_owned();
    let mut rounds = Vec::new();
    let mut cache_drop = CacheDrop::DropCaches;
    for round in 0..args.runs {
        eprintln!("bench replay: round {} of {}", round + 1, args.runs);
        // The two timings of each pair run in turns, the baseline first in even rounds and
        // replay first in odd ones: on a virtual disk whose rate drifts (the host's writeback of
        // what the step before wrote), a fixed order would charge the drift to one side.
        let baseline_first = round % 2 == 0;
        let dry = [
            "replay",
            "--data-dir",
            &data,
            "--stream",
            STREAM,
            "--to-dir",
            &out_s,
            "--state-dir",
            &state_s,
            "--dry-run",
            "--quiet",
            "--restart",
        ];
        let read = || timed(tmp.path(), || read_all(&files).map(drop));
        let dry_run = || timed(tmp.path(), || run_cli(&cli, &dry));
        let ((read_s, d), (dry_run_s, _)) = if baseline_first {
            let r = read()?;
            (r, dry_run()?)
        } else {
            let d = dry_run()?;
            (read()?, d)
        };
        cache_drop = d;
        let _ = std::fs::remove_dir_all(&out_dir);
        let _ = std::fs::remove_dir_all(&state_dir);
        let real = [
            "replay",
            "--data-dir",
            &data,
            "--stream",
            STREAM,
            "--to-dir",
            &out_s,
            "--state-dir",
            &state_s,
            "--compression",
            &args.compression,
            "--quiet",
            "--restart",
        ];
        let replay = || -> Result<f64, BenchHttpError> {
            let (s, _) = timed(tmp.path(), || run_cli(&cli, &real))?;
            let _ = std::fs::remove_dir_all(&out_dir);
            let _ = std::fs::remove_dir_all(&state_dir);
            Ok(s)
        };
        let copy = || -> Result<f64, BenchHttpError> {
            let (s, _) = timed(tmp.path(), || copy_all(&files, &copy_dir))?;
            let _ = std::fs::remove_dir_all(&copy_dir);
            Ok(s)
        };
        let (replay_s, copy_s) = if baseline_first {
            let c = copy()?;
            (replay()?, c)
        } else {
            let r = replay()?;
            (r, copy()?)
        };
        rounds.push(Round {
            dry_run_s,
            read_s,
            replay_s,
            copy_s,
        });
    }
    let report = Report {
        machine: Machine::describe(&args.dir),
        cache_drop,
        segment_bytes,
        segments: files.len(),
        records,
        compression: args.compression.clone(),
        build_mb_per_sec,
        rounds,
    };
    if args.json {
        return crate::put::write_json_report(out, &report);
    }
    print_report(&report, out)
}

fn print_report(report: &Report, out: &mut dyn Write) -> Result<(), BenchHttpError> {
    let mb = |s: f64| report.segment_bytes as f64 / 1e6 / s.max(1e-9);
    writeln!(
        out,
        "hydrant bench replay: {} segments, {:.2} GiB of segment files, {} records of 1 KiB \
         (written at {:.0} MB/s); cache dropped with {:?} before each timing; {} CPUs, {}, {}",
        report.segments,
        report.segment_bytes as f64 / f64::from(1u32 << 30),
        report.records,
        report.build_mb_per_sec,
        report.cache_drop,
        report.machine.nproc,
        report.machine.fs_type,
        report.machine.kernel
    )?;
    writeln!(
        out,
        "{:<6} {:>12} {:>12} {:>7} {:>14} {:>12} {:>7}",
        "round", "dry run MB/s", "read MB/s", "ratio", "replay MB/s", "copy MB/s", "ratio"
    )?;
    let mut ratios = (Vec::new(), Vec::new());
    for (i, r) in report.rounds.iter().enumerate() {
        let a = r.read_s / r.dry_run_s.max(1e-9);
        let b = r.copy_s / r.replay_s.max(1e-9);
        ratios.0.push(a);
        ratios.1.push(b);
        writeln!(
            out,
            "{:<6} {:>12.0} {:>12.0} {:>7.2} {:>14.0} {:>12.0} {:>7.2}",
            i + 1,
            mb(r.dry_run_s),
            mb(r.read_s),
            a,
            mb(r.replay_s),
            mb(r.copy_s),
            b
        )?;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut ratios.0), median(&mut ratios.1));
    let verdict = |x: f64| if x >= GOAL_RATIO { "met" } else { "NOT met" };
    writeln!(
        out,
        "median ratios: dry run / read {a:.2} (goal >= {GOAL_RATIO}: {}), replay ({}) / copy \
         {b:.2} (goal >= {GOAL_RATIO}: {})",
        verdict(a),
        report.compression,
        verdict(b)
    )?;
    Ok(())
}
