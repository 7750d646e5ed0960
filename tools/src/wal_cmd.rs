//! `hydrant wal verify|stat|dump`: read-only inspection of a log directory.
//!
//! Each command is a thin front end over `hydrant_wal`'s own read-only API ([`hydrant_wal::verify`],
//! [`WalView`], its [`hydrant_wal::Reader`]): the CLI parses nothing on disk itself, so what it
//! reports is what the daemon would see. None of them takes the log's lock or writes, so they can
//! run beside a live `hydrantd` (which may meanwhile append past what they saw).

use std::io::Write;
use std::path::{Path, PathBuf};

use hydrant_wal::{Lsn, Severity, StdStorage, VerifyReport, WalView};
use serde::Serialize;

use crate::error::Result;
use crate::render::{base64, record_for_humans, rfc3339_ms, thousands};

/// What `wal verify` concluded, for the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing worse than warnings (a torn tail, an unsealed segment: what a crash leaves).
    Clean,
    /// At least one error: damage to data the log vouches for.
    Damaged,
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    severity: &'static str,
    segment: &'a Path,
    offset: Option<u64>,
    what: &'a str,
}

#[derive(Serialize)]
struct VerifyJson<'a> {
    dir: &'a Path,
    clean: bool,
    segments: usize,
    frames: u64,
    records: u64,
    problems: Vec<ProblemJson<'a>>,
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// `hydrant wal verify DIR`: checks every frame, index block and footer, and prints each
/// problem with its severity, segment file and offset.
///
/// # Errors
/// [`crate::error::CliError::Wal`] when the directory cannot be listed; output errors.
pub fn verify(dir: &Path, json: bool, out: &mut dyn Write) -> Result<Verdict> {
    let report = hydrant_wal::verify(&StdStorage, dir)?;
    if json {
        print_verify_json(dir, &report, out)?;
    } else {
        print_verify_text(dir, &report, out)?;
    }
    Ok(if report.is_clean() {
        Verdict::Clean
    } else {
        Verdict::Damaged
    })
}

fn print_verify_json(dir: &Path, report: &VerifyReport, out: &mut dyn Write) -> Result<()> {
    let doc = VerifyJson {
        dir,
        clean: report.is_clean(),
        segments: report.segments,
        frames: report.frames,
        records: report.records,
        problems: report
            .problems
            .iter()
            .map(|p| ProblemJson {
                severity: severity_name(p.severity),
                segment: &p.segment,
                offset: p.offset,
                what: &p.what,
            })
            .collect(),
    };
    writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}

fn print_verify_text(dir: &Path, report: &VerifyReport, out: &mut dyn Write) -> Result<()> {
    for p in &report.problems {
        let at = p
            .offset
            .map_or_else(|| "-".to_string(), |o| format!("offset {o}"));
        writeln!(
            out,
            "{:<7}  {}  {at}: {}",
            severity_name(p.severity).to_uppercase(),
            p.segment.display(),
            p.what
        )?;
    }
    let errors = report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = report.problems.len() - errors;
    writeln!(
        out,
        "{}: {} segments, {} frames, {} records checked; {errors} errors, {warnings} warnings: {}",
        dir.display(),
        report.segments,
        thousands(report.frames),
        thousands(report.records),
        if report.is_clean() {
            "clean"
        } else {
            "DAMAGED"
        },
    )?;
    Ok(())
}

/// One segment as `wal stat --json` prints it.
#[derive(Serialize)]
struct SegmentJson {
    file: String,
    base_lsn: u64,
    end_lsn: u64,
    records: u64,
    sealed: bool,
    frames: u64,
    data_bytes: u64,
    file_bytes: u64,
    first_arrival_ms: Option<u64>,
    last_arrival_ms: Option<u64>,
}

/// The totals of `wal stat`.
#[derive(Serialize)]
struct StatJson {
    dir: PathBuf,
    segments: usize,
    sealed_segments: usize,
    first_lsn: u64,
    next_lsn: u64,
    records: u64,
    frames: u64,
    data_bytes: u64,
    file_bytes: u64,
    oldest_arrival_ms: Option<u64>,
    oldest_arrival: Option<String>,
    newest_arrival_ms: Option<u64>,
    newest_arrival: Option<String>,
    segment_list: Vec<SegmentJson>,
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// An arrival time of 0 means "no frame" in [`hydrant_wal::SegmentInfo`].
fn arrival(ms: u64) -> Option<u64> {
    (ms != 0).then_some(ms)
}

fn collect_stat(dir: &Path, view: &WalView) -> StatJson {
    let segment_list: Vec<SegmentJson> = view
        .segments()
        .map(|s| SegmentJson {
            file: file_name(&s.path),
            base_lsn: s.base_lsn.get(),
            end_lsn: s.end_lsn.get(),
            records: s.end_lsn.get() - s.base_lsn.get(),
            sealed: s.sealed,
            frames: s.frame_count,
            data_bytes: s.data_bytes,
            file_bytes: s.file_bytes,
            first_arrival_ms: arrival(s.first_arrival_ms),
            last_arrival_ms: arrival(s.last_arrival_ms),
        })
        .collect();
    // Arrival times come from producers' batches and the wall clock, which can step back, so
    // take the extremes over all segments rather than the first and last segment's.
    let oldest = segment_list.iter().filter_map(|s| s.first_arrival_ms).min();
    let newest = segment_list.iter().filter_map(|s| s.last_arrival_ms).max();
    StatJson {
        dir: dir.to_path_buf(),
        segments: segment_list.len(),
        sealed_segments: segment_list.iter().filter(|s| s.sealed).count(),
        first_lsn: view.first_lsn().get(),
        next_lsn: view.next_lsn().get(),
        records: view.next_lsn().get() - view.first_lsn().get(),
        frames: segment_list.iter().map(|s| s.frames).sum(),
        data_bytes: segment_list.iter().map(|s| s.data_bytes).sum(),
        file_bytes: segment_list.iter().map(|s| s.file_bytes).sum(),
        oldest_arrival_ms: oldest,
        oldest_arrival: oldest.map(rfc3339_ms),
        newest_arrival_ms: newest,
        newest_arrival: newest.map(rfc3339_ms),
        segment_list,
    }
}

/// `hydrant wal stat DIR`: the segments and totals of a log, from footers and the tail scan
/// (the same plan opening the log makes; frames of sealed segments are not read: use `verify`).
///
/// # Errors
/// [`crate::error::CliError::Wal`] when the log cannot be opened read-only; output errors.
pub fn stat(dir: &Path, json: bool, out: &mut dyn Write) -> Result<()> {
    let view = WalView::open(dir)?;
    let s = collect_stat(dir, &view);
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
        return Ok(());
    }
    let time = |ms: Option<u64>| {
        ms.map_or_else(
            || "-".to_string(),
            |ms| format!("{} ({ms} ms)", rfc3339_ms(ms)),
        )
    };
    writeln!(out, "log             {}", s.dir.display())?;
    writeln!(
        out,
        "segments        {} ({} sealed)",
        s.segments, s.sealed_segments
    )?;
    writeln!(
        out,
        "LSNs            {} .. {} ({} records)",
        s.first_lsn,
        s.next_lsn,
        thousands(s.records)
    )?;
    writeln!(out, "frames          {}", thousands(s.frames))?;
    writeln!(
        out,
        "bytes           {} in frames, {} in segment files",
        thousands(s.data_bytes),
        thousands(s.file_bytes)
    )?;
    writeln!(out, "oldest arrival  {}", time(s.oldest_arrival_ms))?;
    writeln!(out, "newest arrival  {}", time(s.newest_arrival_ms))?;
    if s.segment_list.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<24}  {:>12}  {:>12}  {:<6}  {:>10}  {:>14}  {:<24}  LAST ARRIVAL",
        "SEGMENT", "BASE LSN", "END LSN", "SEALED", "FRAMES", "DATA BYTES", "FIRST ARRIVAL",
    )?;
    for seg in &s.segment_list {
        let when = |ms: Option<u64>| ms.map_or_else(|| "-".to_string(), rfc3339_ms);
        writeln!(
            out,
            "{:<24}  {:>12}  {:>12}  {:<6}  {:>10}  {:>14}  {:<24}  {}",
            seg.file,
            seg.base_lsn,
            seg.end_lsn,
            if seg.sealed { "yes" } else { "no" },
            thousands(seg.frames),
            thousands(seg.data_bytes),
            when(seg.first_arrival_ms),
            when(seg.last_arrival_ms),
        )?;
    }
    Ok(())
}

/// Options of `hydrant wal dump`.
#[derive(Clone, Copy, Debug)]
pub struct DumpOptions {
    /// The first LSN to print; the log's first when `None`.
    pub from: Option<u64>,
    /// The most records to print.
    pub limit: Option<u64>,
    /// One JSON object per line instead of text.
    pub json: bool,
    /// In text output, the most bytes of each record to show (0: all).
    pub max_data_bytes: usize,
}

/// One record as `wal dump --json` prints it.
#[derive(Serialize)]
struct RecordJson<'a> {
    lsn: u64,
    arrival_ms: u64,
    len: usize,
    data_base64: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// `hydrant wal dump DIR`: prints records from an LSN on, through the log's own reader.
///
/// # Errors
/// [`crate::error::CliError::Wal`]: the log cannot be opened, `from` is outside it
/// ([`hydrant_wal::Error::Truncated`], [`hydrant_wal::Error::BeyondEnd`]), or a frame on the way
/// is damaged ([`hydrant_wal::Error::Corrupt`], after the records before it were printed).
pub fn dump(dir: &Path, opts: DumpOptions, out: &mut dyn Write) -> Result<()> {
    let view = WalView::open(dir)?;
    let from = opts.from.map_or(view.first_lsn(), Lsn);
    let mut reader = view.reader(from)?;
    let mut left = opts.limit.unwrap_or(u64::MAX);
    while left > 0 {
        let Some(frame) = reader.next_frame()? else {
            break;
        };
        let arrival_ms = frame.arrival_ms();
        for (lsn, data) in frame.records() {
            if left == 0 {
                break;
            }
            left -= 1;
            if opts.json {
                let line = RecordJson {
                    lsn: lsn.get(),
                    arrival_ms,
                    len: data.len(),
                    data_base64: base64(data),
                    text: std::str::from_utf8(data).ok(),
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
            } else {
                writeln!(
                    out,
                    "{:>12}  {}  {:>8} B  {}",
                    lsn.get(),
                    rfc3339_ms(arrival_ms),
                    data.len(),
                    record_for_humans(data, opts.max_data_bytes)
                )?;
            }
        }
    }
    Ok(())
}
