//! `hydrant-bench`: hydrant's benchmarks, apart from the operator's CLI so that `hydrant` links
//! no test fixture (`hydrant bench ...` runs this binary). Every figure is printed beside a
//! baseline measured in the same run on the same machine; goals are printed, not asserted.
//!
//! Files and how data flows through them:
//! - [`wal`]: `hydrant-bench wal`: appender threads -> a [`hydrant_wal::Wal`] in a temporary
//!   directory, then one thread's `pwrite` + `fdatasync` of the same bytes (the disk's own
//!   baseline); acknowledged MB/s, records/s and latency per shape.
//! - [`put`]: `hydrant-bench put`: [`loadgen`] -> HTTP -> a hydrantd ([`daemon`], self-started
//!   unless `--endpoint`) -> its WAL; PutRecordBatch throughput beside `wal`'s S1 in the same
//!   run, PutRecord records/s and latency.
//!   P3 puts P1's load into a second daemon whose S3 endpoint is [`refuse`]'s server, which
//!   refuses every write (the destination down, the log only growing).
//! - [`recover`]: `hydrant-bench recover`: [`loadgen`] -> a hydrantd whose destination
//!   [`refuse`]s, until its log holds the backlog asked for; then SIGKILL under load, page cache
//!   dropped, restart: time to `/health/ready` and to the first accepted PutRecordBatch, beside
//!   the same daemon's restart with an empty log (same run).
//! - [`replay`]: `hydrant-bench replay`: a log written straight through [`hydrant_wal::Wal`],
//!   then the `hydrant replay` CLI over it (dry run, and into a directory) beside reading and
//!   copying its segment files, page cache dropped before each (same run).
//! - [`deliver`]: `hydrant-bench deliver`: [`loadgen`] -> hydrantd -> objects (the local store,
//!   or s3s-fs), watched until delivered; per codec, beside the codec's own speed. With
//!   `--dest postgres`, [`pg`]: batches -> hydrant-sinks' PostgreSQL sink beside a plain COPY,
//!   against a throwaway cluster (hydrant-tests) or `--pg-url`.
//! - [`partition`]: `hydrant-bench deliver --partitions N`: in process, batches -> the
//!   `MetadataExtraction` pipeline -> an ObjectSink on a LocalStore, one object per partition,
//!   beside unpartitioned delivery of the same batches.
//! - [`format`](mod@format): `hydrant-bench deliver --format parquet|orc`: in process, batches -> record
//!   format conversion -> ObjectSinks on a LocalStore, beside the JSON path of the same batches.
//! - [`batch`]: the delivery batches the in-process benchmarks hand to a sink.
//! - [`kinesis`]: `hydrant-bench kinesis`: a kinesalite 4-shard stream -> a hydrantd's
//!   KinesisStreamAsSource delivery stream -> the local store, beside a plain GetRecords loop
//!   over the same shards (same run).
//! - [`loadgen`]: the open-loop load generator (raw HTTP/1.1 over keep-alive sockets).
//! - [`daemon`]: a hydrantd started for a run: temporary data directory, free port, readiness.
//! - [`host`]: facts about the machine for the reports, and the idle spinners that keep vCPUs
//!   awake during a run.
//!
//! Errors are hydrant-tools' [`CliError`]; exit status 0 on success, 2 when a run could not be
//! made.

mod batch;
mod daemon;
mod deliver;
mod format;
mod host;
mod kinesis;
mod loadgen;
mod partition;
mod pg;
mod put;
mod recover;
mod refuse;
mod replay;
mod wal;

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hydrant_tools::{error, firehose, render};

use crate::error::CliError;

/// hydrantd's allocator (see its main.rs): the in-process benchmarks run the daemon's delivery and
/// WAL code, and its large batch buffers behave differently under glibc's allocator (each one
/// handed back to the kernel on free and page-faulted again).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// hydrant-bench: hydrant's benchmarks (also run as `hydrant bench ...`).
#[derive(Debug, Parser)]
#[command(name = "hydrant-bench", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Measure the WAL (sync durability) in four shapes, each beside the disk's own
    /// pwrite + fdatasync baseline run in the same process on the same disk.
    Wal(wal::BenchWalArgs),
    /// HTTP load against a running or self-started hydrantd: PutRecordBatch throughput beside
    /// the WAL's own (S1, same run), PutRecord records/s and latency.
    Put(put::BenchPutArgs),
    /// End to end per codec: ingest through the API to the local object store; throughput
    /// beside the codec's own speed (same run), freshness with IntervalInSeconds=0. With
    /// `--dest postgres`: rows/s through the PostgreSQL sink beside a plain COPY.
    Deliver(deliver::BenchDeliverArgs),
    /// Records/s from a 4-shard kinesalite stream into the local store through a
    /// KinesisStreamAsSource delivery stream, beside a plain GetRecords loop over the same
    /// shards (same run).
    Kinesis(kinesis::BenchKinesisArgs),
    /// Restart after SIGKILL with a large backlog (destination down), page cache dropped: time
    /// to ready and to the first accepted PutRecordBatch, beside a restart with an empty log.
    Recover(recover::BenchRecoverArgs),
    /// `hydrant replay` of a log of a few GiB, page cache dropped: the dry run beside reading
    /// the segment files, replay into a directory beside copying them (same run).
    Replay(replay::BenchReplayArgs),
}

fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        BenchCommand::Wal(args) => wal::run(&args, out),
        BenchCommand::Deliver(args) => {
            deliver::run(&args, out).map_err(|e| CliError::Command(Box::new(e)))
        }
        BenchCommand::Put(args) => put::run(&args, out).map_err(|e| CliError::Command(Box::new(e))),
        BenchCommand::Kinesis(args) => {
            kinesis::run(&args, out).map_err(|e| CliError::Command(Box::new(e)))
        }
        BenchCommand::Recover(args) => {
            recover::run(&args, out).map_err(|e| CliError::Command(Box::new(e)))
        }
        BenchCommand::Replay(args) => {
            replay::run(&args, out).map_err(|e| CliError::Command(Box::new(e)))
        }
    }
}

fn main() -> ExitCode {
    // As hydrantd does (see its `no_transparent_huge_pages`): the in-process benches run the
    // daemon's code under the daemon's memory settings. Inherited by the daemons it starts.
    // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments only and touches no memory.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = run(cli, &mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped reading (`| head`) got what it wanted.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            eprintln!("hydrant-bench: error: {e}");
            ExitCode::from(2)
        }
    }
}
