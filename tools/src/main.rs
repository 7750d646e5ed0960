//! `hydrant`: the operator's command line for hydrant.
//!
//! - `hydrant wal verify|stat|dump DIR`: read-only inspection of a stream's write-ahead log,
//!   through the WAL crate's own reader and verifier (no second parser).
//! - `hydrant replay --data-dir DIR --stream NAME`: disaster recovery; deliver a range of a
//!   stream's WAL again, resumable (checkpoint) and idempotent (deterministic keys).
//! - `hydrant put STREAM FILE`: send a file's lines as records.
//! - `hydrant catalog put|get|list`: the local catalog of table schemas for record format
//!   conversion (module `catalog_cmd`).
//! - `hydrant bench ...`: runs the benchmarks' own binary, `hydrant-bench ...` (tools/bench),
//!   found beside this executable or on `PATH` (module `bench`); this binary links no benchmark
//!   and no test fixture.
//!
//! Files: this one parses the command line and dispatches; `wal_cmd.rs` (`wal`), `replay.rs`,
//! `put.rs`, `catalog_cmd.rs` and `bench.rs` hold one command each, `progress.rs` the progress
//! line `replay` and `put` print. Data flows from the log (hydrant-wal's read-only views) or a
//! file, through the library's [`hydrant_tools::render`] or [`hydrant_tools::firehose`] client, to
//! the terminal, a sink (hydrant-sinks) or a daemon.
//!
//! Exit status: 0 success; 1 `wal verify` found damage; 2 the command could not run (bad
//! arguments, a missing or unreadable log, an I/O error).

mod bench;
mod catalog_cmd;
mod progress;
mod put;
mod replay;
mod wal_cmd;

use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hydrant_tools::{error, firehose, render};

use crate::error::CliError;

/// hydrant: operate a hydrant node's write-ahead logs and measure them.
#[derive(Debug, Parser)]
#[command(name = "hydrant", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect a WAL directory, read-only (safe beside a running hydrantd).
    #[command(subcommand)]
    Wal(WalCommand),
    /// Benchmarks, quoted in the README: runs `hydrant-bench` (installed beside `hydrant`) with
    /// the arguments that follow (`hydrant bench wal|put|deliver|kinesis|recover|replay ...`;
    /// `hydrant bench --help`).
    #[command(disable_help_flag = true)]
    Bench {
        /// The arguments of `hydrant-bench`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
    /// Disaster recovery: deliver a range of a stream's WAL again (read-only on the log,
    /// whether or not hydrantd runs), resumable and idempotent.
    Replay(Box<replay::ReplayArgs>),
    /// Send a file's lines as records (newline kept), in batches of at most 500 records and
    /// 4 MiB, with retries and a progress bar.
    Put(Box<put::PutArgs>),
    /// The local catalog of table schemas that record format conversion reads.
    Catalog(catalog_cmd::CatalogArgs),
}

#[derive(Debug, Subcommand)]
enum WalCommand {
    /// Check every frame, index block and footer; print each problem with its segment and
    /// offset. Exit 0 when clean (warnings, such as a torn tail, allowed), 1 on any error.
    Verify {
        /// The WAL directory (holds the *.seg files).
        dir: PathBuf,
        /// Print the report as one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Show segments (LSN range, sealed, frames, bytes) and totals (records, bytes, oldest and
    /// newest arrival). Reads footers and the tail only; use `verify` to check every frame.
    Stat {
        /// The WAL directory (holds the *.seg files).
        dir: PathBuf,
        /// Print the statistics as one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print records: LSN, arrival time, length and data (text when printable, else base64).
    Dump(DumpArgs),
}

#[derive(Debug, Args)]
struct DumpArgs {
    /// The WAL directory (holds the *.seg files).
    dir: PathBuf,
    /// First LSN to print (default: the first in the log).
    #[arg(long, value_name = "LSN")]
    from: Option<u64>,
    /// Print at most N records.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// One JSON object per line: {"lsn","arrival_ms","len","data_base64"[,"text" when UTF-8]}.
    #[arg(long)]
    json: bool,
    /// Text output only: show at most this many bytes of each record (0: all).
    #[arg(long, value_name = "BYTES", default_value_t = 256)]
    max_data_bytes: usize,
}

fn run(cli: Cli, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Wal(WalCommand::Verify { dir, json }) => match wal_cmd::verify(&dir, json, out)? {
            wal_cmd::Verdict::Clean => Ok(ExitCode::SUCCESS),
            wal_cmd::Verdict::Damaged => Ok(ExitCode::from(1)),
        },
        Command::Wal(WalCommand::Stat { dir, json }) => {
            wal_cmd::stat(&dir, json, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Wal(WalCommand::Dump(a)) => {
            let opts = wal_cmd::DumpOptions {
                from: a.from,
                limit: a.limit,
                json: a.json,
                max_data_bytes: a.max_data_bytes,
            };
            wal_cmd::dump(&a.dir, opts, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { args } => {
            // The benchmarks write to the same standard output: what this process buffered
            // goes first.
            out.flush()?;
            Err(CliError::Command(Box::new(bench::run(&args))))
        }
        Command::Put(args) => {
            put::run(&args, out).map_err(|e| CliError::Command(Box::new(e)))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Catalog(args) => {
            catalog_cmd::run(&args, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay(args) => {
            replay::run(&args, out).map_err(|e| CliError::Command(Box::new(e)))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = run(cli, &mut out).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        // A reader that stopped reading (`| head`) got what it wanted.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            // Records printed before the failure (a dump that met a damaged frame) go out first.
            let _ = out.flush();
            // Every variant's message already includes its cause, so the chain is not walked.
            eprintln!("hydrant: error: {e}");
            ExitCode::from(2)
        }
    }
}
