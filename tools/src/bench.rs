//! `hydrant bench ...`: the benchmarks live in their own binary, `hydrant-bench` (package
//! hydrant-bench, tools/bench), so that this one links no benchmark and no test fixture. The
//! command users know keeps working: this process becomes `hydrant-bench` with the same
//! arguments (`exec`, so its output, exit status and signals are the benchmark's own).
//!
//! The binary is looked for beside the running `hydrant` (where `cargo build` and
//! `cargo install` put both), then on `PATH`.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// The benchmarks' binary.
pub const BENCH_BINARY: &str = "hydrant-bench";

/// Why `hydrant bench` could not start the benchmarks.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Neither beside `hydrant` nor on `PATH`.
    #[error(
        "`hydrant bench` runs `{BENCH_BINARY}`, which is neither beside this executable ({}) \
         nor on PATH: build it with `cargo build --release -p hydrant-bench` (or install it \
         with `cargo install --path tools/bench`)",
        beside.display()
    )]
    NotFound {
        /// Where it was looked for first.
        beside: PathBuf,
    },
    /// It exists but could not be executed.
    #[error("running {}: {source}", path.display())]
    Exec {
        /// The binary that failed to start.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Replaces this process with `hydrant-bench ARGS...`. Returns only when that failed.
pub fn run(args: &[OsString]) -> BenchError {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(BENCH_BINARY)))
        .unwrap_or_else(|| PathBuf::from(BENCH_BINARY));
    let program = if beside.is_file() {
        beside.clone()
    } else {
        // A bare name: Command searches PATH.
        PathBuf::from(BENCH_BINARY)
    };
    let source = Command::new(&program).args(args).exec();
    if source.kind() == std::io::ErrorKind::NotFound {
        BenchError::NotFound { beside }
    } else {
        BenchError::Exec {
            path: program,
            source,
        }
    }
}
