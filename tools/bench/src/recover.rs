//! `hydrant bench recover`: restart after a crash with a large backlog (issue 20, part 2).
//!
//! How a run goes:
//! 1. A daemon is started ([`crate::daemon`]) whose S3 endpoint is [`crate::refuse`]'s server,
//!    which refuses every write: nothing is delivered, the WAL only grows. One stream, a disk
//!    budget of the backlog and 4 GiB, retention following delivery as in `bench
//!    put` (nothing is delivered, so nothing is retired).
//! 2. Baseline, same run: the daemon is killed with SIGKILL while its log is still empty, the
//!    page cache is dropped, and it is started again; the time to `/health/ready` 200 is the
//!    floor a restart cannot go under (process start, runtime, listener, registry, one empty
//!    log).
//! 3. `bench put`'s P1 load (PutRecordBatch 500 x 1 KiB, 8 connections) fills the log until its
//!    segment files hold `--gib` GiB (`hydrant_wal_disk_bytes` in `/metrics`).
//! 4. Each of `--runs` runs: P1's load for a second, SIGKILL in the middle of it (the tail
//!    segment holds frames written and not yet synced), `sync` and the page cache dropped
//!    (`/proc/sys/vm/drop_caches`; without the right to, `posix_fadvise(DONTNEED)` on every file
//!    of the data directory, and the report says so), the daemon started again; `/health/ready`
//!    polled every 2 ms; then one PutRecordBatch of 500 x 1 KiB sent, its acknowledgement timed.
//!    The daemon's own phase timings (it logs them at info level: `startup timings`, `ready`)
//!    are read from its log.
//!
//! Goal printed beside the figures (not asserted): ready within 0.25 s of the start.
//! The memory of the restarted daemon (`/proc/PID/status`) is printed too.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::daemon::{self, Daemon, Memory};
use crate::firehose::FirehoseClient;
use crate::loadgen::{self, Load};
use crate::put::{self, BenchHttpError};
use crate::refuse::Refuser;

/// The goal: ready within this many seconds of the start.
const GOAL_READY_S: f64 = 0.25;

/// Arguments of `hydrant bench recover`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchRecoverArgs {
    /// The hydrantd binary to start (default: $HYDRANT_HYDRANTD, or hydrantd next to
    /// hydrant-bench).
    #[arg(long, value_name = "PATH")]
    pub hydrantd: Option<std::path::PathBuf>,
    /// Directory for the daemon's temporary data directory: put it on the disk under test.
    /// Removed afterwards.
    #[arg(long, value_name = "DIR", default_value = "hydrant-data/bench-tmp")]
    pub dir: std::path::PathBuf,
    /// Backlog to build before the restarts, GiB of segment files.
    #[arg(long, value_name = "GIB", default_value_t = 10.0)]
    pub gib: f64,
    /// Restarts measured (each after a SIGKILL under load).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub runs: usize,
    /// Print the results as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// How the page cache was emptied before a start.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub enum CacheDrop {
    /// `sync`, then `3` written to `/proc/sys/vm/drop_caches`: every clean page of the machine.
    DropCaches,
    /// `sync`, then `posix_fadvise(POSIX_FADV_DONTNEED)` on every file of the data directory
    /// (no right to drop the machine's caches): the daemon's binary and libraries stay cached.
    Fadvise,
}

/// The daemon's own account of a start, read from its log (ms; `None` when a line is missing).
#[derive(Clone, Copy, Debug, Default, Serialize)]
struct Phases {
    /// From `main` to the listener bound.
    listening_ms: Option<f64>,
    /// Opening the registry.
    registry_ms: Option<f64>,
    /// Opening (recovering) every stream's WAL.
    wals_ms: Option<f64>,
    /// Of `wals_ms` (the last stream's): reading the sealed segments' headers and footers.
    footers_ms: Option<f64>,
    /// Of `wals_ms` (the last stream's): scanning the tail segment.
    tail_ms: Option<f64>,
    /// Starting the delivery workers and sources: after ready, not part of `ready_ms`.
    delivery_ms: Option<f64>,
    /// From `main` to ready.
    ready_ms: Option<f64>,
}

/// One restart.
#[derive(Clone, Debug, Serialize)]
struct Restart {
    /// Segment bytes in the log when it was killed.
    backlog_bytes: u64,
    /// From the spawn to `/health/ready` 200, s.
    ready_s: f64,
    /// From the spawn to the first PutRecordBatch acknowledged, s.
    first_put_s: f64,
    phases: Phases,
    memory: Option<Memory>,
}

#[derive(Debug, Serialize)]
struct Report {
    cache_drop: CacheDrop,
    /// Ready time of the same daemon with an empty log, s (the floor).
    baseline_ready_s: f64,
    baseline_phases: Phases,
    build_mb_per_sec: f64,
    runs: Vec<Restart>,
}

/// `sync`, then drops the page cache (see [`CacheDrop`]).
pub fn drop_cache(data_dir: &Path) -> Result<CacheDrop, BenchHttpError> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    if std::fs::write("/proc/sys/vm/drop_caches", b"3").is_ok() {
        return Ok(CacheDrop::DropCaches);
    }
    fadvise_tree(data_dir).map_err(|source| BenchHttpError::Io {
        op: "posix_fadvise(DONTNEED) the data directory",
        source,
    })?;
    Ok(CacheDrop::Fadvise)
}

fn fadvise_tree(dir: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fadvise_tree(&entry.path())?;
        } else if kind.is_file() {
            let f = std::fs::File::open(entry.path())?;
            // SAFETY: an advisory call on a descriptor we own.
            let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(rc));
            }
        }
    }
    Ok(())
}

/// `text` without terminal colour sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The number after `key=` in `log`'s last line that has it.
fn field(log: &str, key: &str) -> Option<f64> {
    let needle = format!("{key}=");
    log.lines().rev().find_map(|line| {
        let at = line.find(&needle)? + needle.len();
        let rest = &line[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    })
}

fn phases(log: &str) -> Phases {
    let log = strip_ansi(log);
    Phases {
        listening_ms: field(&log, "listening_ms"),
        registry_ms: field(&log, "registry_ms"),
        wals_ms: field(&log, "wals_ms"),
        footers_ms: field(&log, "footers_ms"),
        tail_ms: field(&log, "tail_ms"),
        delivery_ms: field(&log, "delivery_ms"),
        ready_ms: field(&log, "ready_ms"),
    }
}

/// The daemon's WAL segment bytes (all streams), from `/metrics`.
async fn disk_bytes(client: &FirehoseClient) -> Result<u64, BenchHttpError> {
    let page = client.get("/metrics").await?;
    let page = String::from_utf8_lossy(&page);
    Ok(page
        .lines()
        .filter(|l| l.starts_with("hydrant_wal_disk_bytes{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

fn p1_load(duration: Duration) -> Load {
    Load {
        connections: 8,
        duration,
        warmup: Duration::ZERO,
        pace: None,
    }
}

/// P1's load for `before_kill`, SIGKILL in the middle of it.
fn kill_under_load(
    daemon: &mut Daemon,
    runtime: &tokio::runtime::Runtime,
    workload: &Arc<put::Fixed>,
    before_kill: Duration,
) {
    let pid = daemon.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(before_kill);
        // SAFETY: kill(2) on our own child, not reaped yet (reaped by kill_hard below).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    // The load ends with a broken connection: that is the point.
    let _ = runtime.block_on(loadgen::drive(
        daemon.addr,
        p1_load(before_kill * 4),
        workload.clone(),
    ));
    let _ = killer.join();
    daemon.kill_hard();
}

/// Kills, drops the cache, restarts and times one start.
fn restart(
    daemon: &mut Daemon,
    runtime: &tokio::runtime::Runtime,
    client: &FirehoseClient,
    body: &bytes::Bytes,
) -> Result<(f64, f64, Phases, CacheDrop), BenchHttpError> {
    let cache = drop_cache(&daemon.data_dir)?;
    let log_from = daemon.log_len();
    let started = daemon.spawn_again()?;
    let ready = daemon.poll_ready(Duration::from_millis(2), Duration::from_secs(300))?;
    let put_done = runtime.block_on(async {
        loop {
            match client.call_raw("PutRecordBatch", body.clone()).await {
                Ok(reply) if reply.windows(17).any(|w| w == b"\"FailedPutCount\":") => {
                    if reply.windows(18).any(|w| w == b"\"FailedPutCount\":0") {
                        return Ok(Instant::now());
                    }
                }
                Ok(_) => {}
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(BenchHttpError::from(e)),
            }
            if started.elapsed() > Duration::from_secs(300) {
                return Err(BenchHttpError::Delivery(
                    "no PutRecordBatch accepted within 300 s of the start".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })?;
    // The daemon logs `ready` just after it says so on /health/ready, and starts delivery
    // after that.
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(50));
        if daemon.log_since(log_from).contains("delivery_ms") {
            break;
        }
    }
    Ok((
        ready.duration_since(started).as_secs_f64(),
        put_done.duration_since(started).as_secs_f64(),
        phases(&daemon.log_since(log_from)),
        cache,
    ))
}

/// Runs `hydrant bench recover`.
///
/// # Errors
/// A [`BenchHttpError`].
pub fn run(args: &BenchRecoverArgs, out: &mut dyn Write) -> Result<(), BenchHttpError> {
    if !(args.gib.is_finite() && args.gib > 0.0) || args.runs == 0 {
        return Err(BenchHttpError::InvalidArgument(
            "--gib must be positive and --runs at least 1".into(),
        ));
    }
    let refuser = Refuser::start().map_err(|source| BenchHttpError::Io {
        op: "start the refusing S3 endpoint",
        source,
    })?;
    let binary = daemon::find_hydrantd(args.hydrantd.as_deref())?;
    let mut daemon_args = put::bench_daemon_args();
    // A budget the backlog fits in (0, no budget, does not fit in the node's budget).
    let budget = ((args.gib + 4.0) * f64::from(1u32 << 30)) as u64;
    daemon_args.extend(["--stream-budget-bytes".to_string(), budget.to_string()]);
    daemon_args.extend(refuser.daemon_args());
    eprintln!("bench recover: starting {}", binary.display());
    let mut daemon = Daemon::start(&binary, &args.dir, &daemon_args)?;
    let runtime = put::runtime(1)?;
    let stream = "hydrant-bench-recover";
    let client = FirehoseClient::new(&daemon.endpoint, None, 4)?;
    runtime.block_on(put::create_put_stream(&client, stream))?;
    let workload = Arc::new(put::Fixed::new(put::batch_request(stream, 500, 1024)));
    let body = workload.body();

    eprintln!("bench recover: baseline: restart with an empty log");
    daemon.kill_hard();
    let (baseline_ready_s, _, baseline_phases, cache_drop) =
        restart(&mut daemon, &runtime, &client, &body)?;

    let goal = (args.gib * f64::from(1u32 << 30)) as u64;
    let build_started = Instant::now();
    let mut backlog = runtime.block_on(disk_bytes(&client))?;
    while backlog < goal {
        runtime.block_on(loadgen::drive(
            daemon.addr,
            p1_load(Duration::from_secs(5)),
            workload.clone(),
        ))?;
        backlog = runtime.block_on(disk_bytes(&client))?;
        eprintln!(
            "bench recover: backlog {:.2} GiB of {:.2}",
            backlog as f64 / f64::from(1u32 << 30),
            args.gib
        );
    }
    let build_mb_per_sec = backlog as f64 / 1e6 / build_started.elapsed().as_secs_f64();

    let mut runs = Vec::new();
    for i in 0..args.runs {
        backlog = runtime.block_on(disk_bytes(&client))?;
        kill_under_load(&mut daemon, &runtime, &workload, Duration::from_secs(1));
        let (ready_s, first_put_s, phases, _) = restart(&mut daemon, &runtime, &client, &body)?;
        eprintln!(
            "bench recover: run {}: ready after {:.3} s, first PutRecordBatch after {:.3} s",
            i + 1,
            ready_s,
            first_put_s
        );
        runs.push(Restart {
            backlog_bytes: backlog,
            ready_s,
            first_put_s,
            phases,
            memory: daemon.memory(),
        });
    }
    drop(daemon);
    let report = Report {
        cache_drop,
        baseline_ready_s,
        baseline_phases,
        build_mb_per_sec,
        runs,
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    print_report(&report, out)
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"))
}

fn print_report(report: &Report, out: &mut dyn Write) -> Result<(), BenchHttpError> {
    writeln!(
        out,
        "hydrant bench recover  restart after SIGKILL under P1's load, page cache dropped ({}); \
         one stream, its S3 endpoint refusing every write",
        match report.cache_drop {
            CacheDrop::DropCaches => "sync; echo 3 > /proc/sys/vm/drop_caches",
            CacheDrop::Fadvise =>
                "no right to drop_caches: sync and posix_fadvise(DONTNEED) on the data directory",
        }
    )?;
    writeln!(
        out,
        "backlog built at {:.0} MB/s; baseline (same daemon, empty log, same run): ready after \
         {:.3} s (listening {} ms, registry {} ms, WALs {} ms, delivery {} ms)",
        report.build_mb_per_sec,
        report.baseline_ready_s,
        ms(report.baseline_phases.listening_ms),
        ms(report.baseline_phases.registry_ms),
        ms(report.baseline_phases.wals_ms),
        ms(report.baseline_phases.delivery_ms),
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<4} {:>8} {:>8} {:>8} {:>9} {:>7} {:>8} {:>6} {:>7} {:>6} {:>6} {:>8} {:>8} {:>8}  goal",
        "run",
        "backlog",
        "ready s",
        "x base",
        "1st put s",
        "listen",
        "registry",
        "WALs",
        "footers",
        "tail",
        "deliv",
        "RssAnon",
        "RssFile",
        "peak"
    )?;
    writeln!(
        out,
        "{:<4} {:>8} {:>8} {:>8} {:>9} {:>7} {:>8} {:>6} {:>7} {:>6} {:>6} {:>8} {:>8} {:>8}",
        "", "GiB", "", "", "", "ms", "ms", "ms", "ms", "ms", "ms", "MiB", "MiB", "MiB"
    )?;
    let mib = |k: u64| format!("{:.0}", k as f64 / 1024.0);
    for (i, r) in report.runs.iter().enumerate() {
        writeln!(
            out,
            "{:<4} {:>8.2} {:>8.3} {:>8.1} {:>9.3} {:>7} {:>8} {:>6} {:>7} {:>6} {:>6} {:>8} {:>8} {:>8}  \
             ready <= {GOAL_READY_S} s {}",
            i + 1,
            r.backlog_bytes as f64 / f64::from(1u32 << 30),
            r.ready_s,
            r.ready_s / report.baseline_ready_s.max(1e-9),
            r.first_put_s,
            ms(r.phases.listening_ms),
            ms(r.phases.registry_ms),
            ms(r.phases.wals_ms),
            ms(r.phases.footers_ms),
            ms(r.phases.tail_ms),
            ms(r.phases.delivery_ms),
            r.memory.map_or("-".into(), |m| mib(m.rss_anon_kib)),
            r.memory.map_or("-".into(), |m| mib(m.rss_file_kib)),
            r.memory.map_or("-".into(), |m| mib(m.peak_rss_kib)),
            if r.ready_s <= GOAL_READY_S {
                "(met)"
            } else {
                "(NOT met)"
            }
        )?;
    }
    let mut ready: Vec<f64> = report.runs.iter().map(|r| r.ready_s).collect();
    ready.sort_by(f64::total_cmp);
    writeln!(
        out,
        "ready: median {:.3} s, worst {:.3} s (goal {GOAL_READY_S} s); phases are the daemon's \
         own (ms since its main for listening and ready; footers and tail are part of WALs; \
         delivery starts after ready)",
        ready[ready.len() / 2],
        ready[ready.len() - 1]
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_read_from_a_coloured_log() {
        let log = "2026-12-02T16:00:00Z \u{1b}[32m INFO\u{1b}[0m hydrantd: listening \
                   \u{1b}[3mlistening_ms\u{1b}[0m\u{1b}[2m=\u{1b}[0m3.5\n\
                   INFO startup timings registry_ms=1.25 wals_ms=80 delivery_ms=2.0\n\
                   INFO recovery finished; ready ready_ms=95.5\n";
        let p = phases(log);
        assert_eq!(p.listening_ms, Some(3.5));
        assert_eq!(p.registry_ms, Some(1.25));
        assert_eq!(p.wals_ms, Some(80.0));
        assert_eq!(p.delivery_ms, Some(2.0));
        assert_eq!(p.ready_ms, Some(95.5));
        assert_eq!(phases("nothing here").ready_ms, None);
    }
}
