//! Facts about the machine and the process, for benchmark reports (CPU count, kernel, the file
//! system under a directory, peak resident memory, read from `/proc`; "unknown" elsewhere), and
//! [`IdleSpinners`], which keep idle CPUs from halting while a benchmark runs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde::Serialize;

/// The machine a benchmark ran on, printed beside its figures so that they can be quoted.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPUs this process may use.
    pub nproc: usize,
    /// The CPU model, from `/proc/cpuinfo`.
    pub cpu: String,
    /// `uname -srv`: kernel name, release and build.
    pub kernel: String,
    /// When the run started, RFC 3339 UTC.
    pub date: String,
    /// The file system type holding the benchmark directory (from `/proc/self/mounts`).
    pub fs_type: String,
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

impl Machine {
    /// Describes this machine, with `dir` the directory the benchmark writes in.
    #[must_use]
    pub fn describe(dir: &Path) -> Machine {
        let nproc = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        // The same three strings `uname -srv` prints.
        let kernel = match (
            read_trimmed("/proc/sys/kernel/ostype"),
            read_trimmed("/proc/sys/kernel/osrelease"),
            read_trimmed("/proc/sys/kernel/version"),
        ) {
            (Some(s), Some(r), Some(v)) => format!("{s} {r} {v}"),
            _ => "unknown".into(),
        };
        Machine {
            nproc,
            cpu,
            kernel,
            date: crate::render::rfc3339_ms(hydrant_wal::now_ms()),
            fs_type: fs_type(dir).unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// The type of the file system mounted at the longest mount point that contains `dir`.
fn fs_type(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, point, kind) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(point)
                .then(|| (point.len(), kind.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, kind)| kind)
}

/// The process's peak resident set size (`VmHWM`) in KiB, when the kernel reports it.
#[must_use]
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets the peak resident set size to the current one, so that each benchmark phase reports
/// its own peak (writing "5" to `clear_refs`, Linux 4.0 and later). Returns false when the
/// kernel refused: the peak then covers the whole process so far.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` prints them. Benchmarks print it
/// because on a machine this small, other processes' CPU use moves every figure (a thread woken
/// by a finished `fdatasync` waits for a CPU, up to a scheduler tick).
#[must_use]
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// Busy threads at the lowest scheduling class (`SCHED_IDLE`), one per CPU, for the duration of
/// a benchmark.
///
/// Why: on the virtual machines this project runs on, a vCPU with nothing to do halts, and a
/// thread woken on it by a finished `fdatasync` runs about one host tick (4 ms) later. Measured
/// here with a plain single-threaded `pwrite` + `fdatasync` loop: 309 commits/s (p50 3,987 us)
/// with idle CPUs, 9,105 commits/s (p50 84 us) with two `SCHED_IDLE` spinners. Without them a
/// single-threaded phase (the disk baseline, S3) measures the hypervisor, while a phase with many
/// threads keeps its CPUs awake by itself, so the ratios would compare unlike things.
/// `SCHED_IDLE` threads run only when no other thread wants the CPU and are preempted at once
/// when one wakes, so they take (almost) nothing from the threads being measured.
#[derive(Debug)]
pub struct IdleSpinners {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// How many spinners did get `SCHED_IDLE` (the others stopped at once).
    pub running: usize,
}

impl IdleSpinners {
    /// Starts `count` spinners. One that cannot switch itself to `SCHED_IDLE` exits at once
    /// rather than compete with the benchmark at normal priority.
    #[must_use]
    pub fn start(count: usize) -> IdleSpinners {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        for i in 0..count {
            let stop = stop.clone();
            let tx = tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("idle-spinner-{i}"))
                .spawn(move || {
                    let ok = set_idle_policy();
                    let _ = tx.send(ok);
                    // Hang up now: `start` counts answers until every sender is gone.
                    drop(tx);
                    if !ok {
                        return;
                    }
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                });
            if let Ok(handle) = spawned {
                threads.push(handle);
            }
        }
        drop(tx);
        let running = rx.iter().filter(|ok| *ok).count();
        IdleSpinners {
            stop,
            threads,
            running,
        }
    }
}

impl Drop for IdleSpinners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Moves the calling thread to `SCHED_IDLE`. False when the kernel refused.
fn set_idle_policy() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param` during the call only; pid 0 is the calling
    // thread on Linux.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &raw const param) };
    rc == 0
}
