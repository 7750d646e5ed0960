//! `hydrant bench put`: the ingestion API under load, against a running `hydrantd`
//! (`--endpoint`) or one this command starts (a temporary data directory under `--dir`, on the
//! disk under test, and a free loopback port).
//!
//! Shapes (goals printed beside the figures, not asserted):
//! - P1, throughput: PutRecordBatch of 500 x 1 KiB over 8 connections; MB/s of acknowledged
//!   record data and its ratio to `hydrant bench wal` S1 (the WAL alone, 500 x 1 KiB appends)
//!   measured in the same run on the same disk; goal at least 0.6.
//! - P2, small records: PutRecord of 100 B over 64 connections; acknowledged records/s (goal at
//!   least 60,000; AWS's default quota is 2,000 requests/s per stream) and p99 latency (goal at
//!   most 5 ms).
//! - P3, intake while the destination is down: P1's load into a second daemon this command
//!   starts, whose S3 endpoint ([`crate::refuse`]) answers 503 to every request, so nothing is
//!   delivered and its WAL only grows (every new segment a fresh file); MB/s beside P1 of the
//!   same run, goal at least 0.5x. It runs last, after the first daemon is stopped, so that
//!   delivery of P1's records does not share the disk with it. Needs a self-started daemon
//!   (not `--endpoint`). `--shape p3` runs P1 too.
//!
//! Each self-started daemon's peak resident memory (`VmHWM`, since its start) is read after
//! each shape and printed beside the figures.
//!
//! With `--console-refresh`, each shape runs twice in the same run: as above, then again while
//! a reader fetches the stream's console page (`/console/streams/<stream>`, charts and all)
//! once a second, as a browser tab with the page's refresh set to 1 s would; both rows are
//! printed (`P1` and `P1+console`, ...), so the console's cost on intake can be read as their
//! difference. Delivery catches up with P1's records before each following run.
//!
//! The stream delivers UNCOMPRESSED to the daemon's local object store with the largest
//! buffering hints (128 MiB / 900 s), so delivery stays out of the way and the figures are about
//! ingestion: the API, validation, the WAL append and its group commit. A daemon this command
//! starts runs with retention following delivery (`--retain-delivered-seconds 0
//! --retain-delivered-bytes 0`), the set-up of `bench wal` S1 (`--retention follow`): delivered
//! segments are recycled rather than kept for replay, so new segments are not zero-filled files.
//! The header says so. Load generator and daemon share the machine's CPUs; the header says how
//! many there are.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use serde::Serialize;
use serde_json::json;

use crate::daemon::{self, Daemon, DaemonError};
use crate::firehose::{ClientError, FirehoseClient};
use crate::loadgen::{self, Load, LoadError, LoadResult, Req, Workload};

/// Everything the HTTP benchmarks can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BenchHttpError {
    /// Starting or driving the daemon failed.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// A Firehose call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The load generator failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// An argument is outside what the command accepts.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A file or runtime operation failed.
    #[error("{op}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the report failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    /// Encoding the report failed.
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Delivery did not deliver what was acknowledged in time.
    #[error("{0}")]
    Delivery(String),
}

/// Writes `rows` to `out` as pretty JSON and a newline: the report of an in-process benchmark
/// run with `--json`.
///
/// # Errors
/// [`BenchHttpError::Json`] or [`BenchHttpError::Io`] when the report cannot be written.
pub fn write_json_report(
    out: &mut dyn std::io::Write,
    rows: &impl serde::Serialize,
) -> Result<(), BenchHttpError> {
    serde_json::to_writer_pretty(&mut *out, rows)?;
    writeln!(out).map_err(|source| BenchHttpError::Io {
        op: "write",
        source,
    })
}

/// A multi-threaded tokio runtime with `worker_threads` workers, for a benchmark's clients or
/// sinks.
///
/// # Errors
/// [`BenchHttpError::Io`] when the runtime cannot be started.
pub fn runtime(worker_threads: usize) -> Result<tokio::runtime::Runtime, BenchHttpError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .build()
        .map_err(|source| BenchHttpError::Io {
            op: "start the async runtime",
            source,
        })
}

/// Arguments of `hydrant bench put`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchPutArgs {
    /// Benchmark a running hydrantd here (http://HOST:PORT) instead of starting one. The
    /// stream (--stream) is created if missing; the WAL S1 comparison then runs under --dir.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The stream to put into with --endpoint.
    #[arg(long, value_name = "NAME", default_value = "hydrant-bench-put")]
    pub stream: String,
    /// The hydrantd binary to start (default: $HYDRANT_HYDRANTD, or hydrantd next to
    /// hydrant-bench).
    #[arg(long, value_name = "PATH")]
    pub hydrantd: Option<PathBuf>,
    /// Directory for the started daemon's temporary data directory and the WAL benchmark:
    /// put it on the disk under test. Removed afterwards.
    #[arg(long, value_name = "DIR", default_value = "hydrant-data/bench-tmp")]
    pub dir: PathBuf,
    /// The started daemon's local object store (its --objects-dir): where P1's delivered
    /// objects are written. Default: inside its data directory, on the disk under test, which
    /// then takes every record twice (WAL and object). Give a directory on another disk to
    /// measure ingestion with delivery off the WAL's disk, as with S3 in production.
    #[arg(long, value_name = "DIR", conflicts_with = "endpoint")]
    pub objects_dir: Option<PathBuf>,
    /// Measured seconds per shape.
    #[arg(long, value_name = "N", default_value_t = 5.0)]
    pub seconds: f64,
    /// Which shape to run.
    #[arg(long, value_enum, ignore_case = true, default_value_t = PutShapeArg::All)]
    pub shape: PutShapeArg,
    /// Do not measure `bench wal` S1 (P1's ratio is then not computed).
    #[arg(long)]
    pub no_wal: bool,
    /// Threads of the load generator. One by default: on a machine this small the load
    /// generator shares the CPUs with the daemon. Measured on 2 vCPUs under P2 (2026-11-26):
    /// with hyper's client a second thread cost more than it gave (10.8 against 9.4 us of
    /// load-generator CPU per PutRecord, 51,201 against 56,359 records/s); with the lean client
    /// of `loadgen` two threads gave 74,859 and 75,614 records/s against 71,896 and 72,264.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub client_threads: usize,
    /// Run each shape a second time while the stream's console page is fetched every second
    /// (the console's cost on intake; see the module documentation).
    #[arg(long)]
    pub console_refresh: bool,
    /// Print the results as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// `--shape` of `bench put`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PutShapeArg {
    /// PutRecordBatch 500 x 1 KiB over 8 connections (throughput).
    P1,
    /// PutRecord 100 B over 64 connections (records/s, latency).
    P2,
    /// P1 into a stream whose destination refuses every write, beside P1 (which it also runs).
    P3,
    /// All three.
    All,
}

/// Sends the same pre-encoded request again and again: the daemon accepts duplicates, and the
/// load generator spends its CPU on HTTP, not on JSON.
pub(crate) struct Fixed {
    req: Req,
}

impl Fixed {
    /// A workload that sends `req` again and again.
    pub(crate) fn new(req: Req) -> Fixed {
        Fixed { req }
    }

    /// The request's body.
    pub(crate) fn body(&self) -> Bytes {
        self.req.body.clone()
    }
}

impl Workload for Fixed {
    fn next(&self, _conn: usize, _seq: u64) -> Req {
        self.req.clone()
    }
}

/// The stream's buffering size hint (MiB): Firehose's largest.
const BENCH_BUFFER_MIB: u64 = 128;
/// P1's record size.
const P1_RECORD_BYTES: usize = 1024;

/// The longest `bench put` waits for delivery to finish P1's records before P2.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

/// One sample of `name{stream="<stream>"...}` from a Prometheus text page.
fn metric(page: &str, name: &str, stream: &str) -> Option<u64> {
    let prefix = format!("{name}{{stream=\"{stream}\"");
    page.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Waits until `stream`'s delivery cursor is less than `slack` records behind its durable end
/// (read from `/metrics`); returns how long that took.
async fn wait_delivered(
    client: &FirehoseClient,
    stream: &str,
    slack: u64,
    timeout: Duration,
) -> Result<Duration, BenchHttpError> {
    let started = std::time::Instant::now();
    loop {
        let page = client.get("/metrics").await?;
        let page = String::from_utf8_lossy(&page);
        let durable = metric(&page, "hydrant_wal_durable_lsn", stream);
        let cursor = metric(&page, "hydrant_delivery_cursor_lsn", stream);
        if let (Some(durable), Some(cursor)) = (durable, cursor) {
            if cursor.saturating_add(slack) > durable {
                return Ok(started.elapsed());
            }
        }
        if started.elapsed() >= timeout {
            return Err(BenchHttpError::Delivery(format!(
                "delivery of {stream} did not catch up within {} s (cursor {cursor:?}, durable \
                 end {durable:?})",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Record data that does not compress to nothing (xorshift bytes, printable).
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    hydrant_tests::xorshift(seed | 1)
        .take(len)
        .map(|x| b'a' + (x % 26) as u8)
        .collect()
}

pub(crate) fn batch_request(stream: &str, records: usize, record_bytes: usize) -> Req {
    let b64 = base64::engine::general_purpose::STANDARD;
    let recs: Vec<serde_json::Value> = (0..records)
        .map(|i| json!({ "Data": b64.encode(filler(record_bytes, i as u64 + 1)) }))
        .collect();
    let body = json!({ "DeliveryStreamName": stream, "Records": recs });
    Req {
        operation: "PutRecordBatch",
        body: Bytes::from(body.to_string()),
        records: records as u64,
        bytes: (records * record_bytes) as u64,
        tag: 0,
    }
}

fn record_request(stream: &str, record_bytes: usize) -> Req {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = json!({
        "DeliveryStreamName": stream,
        "Record": { "Data": b64.encode(filler(record_bytes, 7)) }
    });
    Req {
        operation: "PutRecord",
        body: Bytes::from(body.to_string()),
        records: 1,
        bytes: record_bytes as u64,
        tag: 0,
    }
}

/// One shape's result.
#[derive(Debug, Serialize)]
struct ShapeReport {
    shape: &'static str,
    what: &'static str,
    result: LoadResult,
    goal: String,
    goal_met: Option<bool>,
    /// Console pages read during the shape (`--console-refresh`'s second run), and the slowest
    /// read, ms.
    console_pages: Option<(u64, f64)>,
    /// The daemon's memory read right after the shape: its peak resident set since its start
    /// (`VmHWM`) and what is resident now, anonymous and file-backed (mapped segments).
    daemon_memory: Option<crate::daemon::Memory>,
}

/// Fetches `path` once a second until `stop` turns true: the console page a browser tab with a
/// 1 s refresh would load. Returns the pages read and the slowest read (ms); a failed read ends
/// the run with its error.
async fn console_reader(
    client: FirehoseClient,
    path: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(u64, f64), ClientError> {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let (mut pages, mut slowest) = (0u64, 0f64);
    loop {
        tokio::select! {
            _ = every.tick() => {
                let started = std::time::Instant::now();
                client.get(&path).await?;
                slowest = slowest.max(started.elapsed().as_secs_f64() * 1000.0);
                pages += 1;
            }
            _ = stop.changed() => return Ok((pages, slowest)),
        }
    }
}

/// Drives `workload` under `load`, with the console reader running when `console` is set.
async fn drive_shape(
    addr: SocketAddr,
    load: Load,
    workload: Arc<Fixed>,
    console: Option<(&FirehoseClient, &str)>,
) -> Result<(LoadResult, Option<(u64, f64)>), BenchHttpError> {
    let Some((client, stream)) = console else {
        return Ok((loadgen::drive(addr, load, workload).await?, None));
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let reader = tokio::spawn(console_reader(
        client.clone(),
        format!("/console/streams/{stream}"),
        stopped,
    ));
    let result = loadgen::drive(addr, load, workload).await;
    let _ = stop.send(true);
    let pages = reader.await.map_err(|e| BenchHttpError::Io {
        op: "join the console reader",
        source: std::io::Error::other(e.to_string()),
    })??;
    Ok((result?, Some(pages)))
}

#[derive(Debug, Serialize)]
struct Report {
    target: String,
    cpus: usize,
    client_threads: usize,
    seconds_per_shape: f64,
    wal_s1_mb_per_sec: Option<f64>,
    wal_s1_note: String,
    /// Seconds delivery still needed, after P1 ended, for P1's records (P2 starts after).
    delivery_drained_after_p1_s: Option<f64>,
    /// What the disk was asked to write during P1 (from the daemon's `/metrics`).
    p1_disk_writes: Option<DiskWrites>,
    /// Whether the delivered objects went to another directory (`--objects-dir`).
    objects_elsewhere: bool,
    shapes: Vec<ShapeReport>,
}

/// Bytes written to the disk during a shape, per second: the WAL's synced bytes and the
/// delivered objects (uncompressed, so the record data), both on the disk under test.
#[derive(Clone, Copy, Debug, Serialize)]
struct DiskWrites {
    wal_mb_per_sec: f64,
    delivered_mb_per_sec: f64,
}

/// The stream's WAL bytes synced and record bytes delivered so far, read from `/metrics`.
async fn disk_counters(
    client: &FirehoseClient,
    stream: &str,
) -> Result<(u64, u64, std::time::Instant), BenchHttpError> {
    let page = client.get("/metrics").await?;
    let page = String::from_utf8_lossy(&page);
    Ok((
        metric(&page, "hydrant_wal_synced_bytes_total", stream).unwrap_or(0),
        metric(&page, "hydrant_delivery_to_s3_bytes_total", stream).unwrap_or(0),
        std::time::Instant::now(),
    ))
}

/// The write rates between two [`disk_counters`] readings.
fn disk_writes(
    before: (u64, u64, std::time::Instant),
    after: (u64, u64, std::time::Instant),
) -> DiskWrites {
    let secs = after.2.duration_since(before.2).as_secs_f64().max(1e-9);
    DiskWrites {
        wal_mb_per_sec: after.0.saturating_sub(before.0) as f64 / 1e6 / secs,
        delivered_mb_per_sec: after.1.saturating_sub(before.1) as f64 / 1e6 / secs,
    }
}

/// `hydrant bench wal --shape s1 --json`, in process, for the same-run comparison: its
/// acknowledged MB/s (frame bytes), or why it could not be had.
fn wal_s1_mb_per_sec(dir: &std::path::Path, seconds: f64) -> Result<f64, String> {
    #[derive(Parser)]
    struct WalOnly {
        #[command(flatten)]
        args: crate::wal::BenchWalArgs,
    }
    let secs = format!("{seconds}");
    let dir = dir.to_string_lossy().into_owned();
    let parsed = WalOnly::try_parse_from([
        "bench-wal",
        "--shape",
        "s1",
        "--json",
        "--seconds",
        secs.as_str(),
        "--dir",
        dir.as_str(),
    ])
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    crate::wal::run(&parsed.args, &mut buf).map_err(|e| e.to_string())?;
    let report: serde_json::Value = serde_json::from_slice(&buf).map_err(|e| e.to_string())?;
    report["shapes"]
        .as_array()
        .and_then(|shapes| shapes.iter().find(|s| s["shape"] == "S1"))
        .and_then(|s| s["hydrant"]["mb_per_sec"].as_f64())
        .ok_or_else(|| "bench wal's JSON has no S1 hydrant mb_per_sec".to_string())
}

/// What the started daemon is told besides its data directory and port: retention follows
/// delivery (no replay window), as `bench wal` S1's `--retention follow`, so delivered segments
/// are recycled instead of every new segment being zero-filled; the default window (1 h / 1 GiB)
/// keeps them and makes each new segment a fresh, written-through file.
pub fn bench_daemon_args() -> Vec<String> {
    [
        "--retain-delivered-seconds",
        "0",
        "--retain-delivered-bytes",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

/// Creates the stream the P shapes load: UNCOMPRESSED into the bucket `hydrant-bench-put`, with
/// the bench's buffering hint and a 900 s interval (delivery runs behind the load).
pub(crate) async fn create_put_stream(
    client: &FirehoseClient,
    stream: &str,
) -> Result<(), DaemonError> {
    daemon::create_stream(
        client,
        stream,
        "hydrant-bench-put",
        "UNCOMPRESSED",
        BENCH_BUFFER_MIB as u32,
        900,
    )
    .await
}

/// P3: P1's load into a fresh daemon whose S3 endpoint refuses every write.
fn run_p3(
    args: &BenchPutArgs,
    runtime: &tokio::runtime::Runtime,
    duration: Duration,
    p1_mb_per_sec: Option<f64>,
) -> Result<ShapeReport, BenchHttpError> {
    let refuser = crate::refuse::Refuser::start().map_err(|source| BenchHttpError::Io {
        op: "start the refusing S3 endpoint",
        source,
    })?;
    let binary = daemon::find_hydrantd(args.hydrantd.as_deref())?;
    let mut daemon_args = bench_daemon_args();
    daemon_args.extend(refuser.daemon_args());
    eprintln!(
        "bench put: P3: starting {} with its S3 endpoint refusing every write",
        binary.display()
    );
    let daemon = Daemon::start(&binary, &args.dir, &daemon_args)?;
    let stream = args.stream.clone();
    let result = runtime.block_on(async {
        let client = FirehoseClient::new(&daemon.endpoint, None, 4)?;
        create_put_stream(&client, &stream).await?;
        eprintln!("bench put: P3 for {:.1} s", args.seconds);
        let load = Load {
            connections: 8,
            duration,
            warmup: Duration::from_secs_f64((args.seconds / 5.0).min(1.0)),
            pace: None,
        };
        let workload = Arc::new(Fixed {
            req: batch_request(&stream, 500, P1_RECORD_BYTES),
        });
        Ok::<_, BenchHttpError>(loadgen::drive(daemon.addr, load, workload).await?)
    })?;
    let memory = daemon.memory();
    drop(daemon);
    let refused = refuser.refused.load(std::sync::atomic::Ordering::Relaxed);
    let ratio = p1_mb_per_sec.map(|p1| result.mb_per_sec / p1);
    Ok(ShapeReport {
        shape: "P3",
        what: "P1, destination refusing every write",
        goal: match ratio {
            Some(r) => format!("MB/s >= 0.5 x P1: {r:.2} x ({refused} S3 requests refused)"),
            None => "MB/s >= 0.5 x P1: P1 not measured".to_string(),
        },
        goal_met: ratio.map(|r| r >= 0.5),
        result,
        console_pages: None,
        daemon_memory: memory,
    })
}

/// Parses `http://HOST:PORT` into a socket address (the load generator speaks plain HTTP).
pub fn endpoint_addr(endpoint: &str) -> Result<SocketAddr, BenchHttpError> {
    let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
        BenchHttpError::InvalidArgument(format!(
            "the load generator needs an http:// endpoint, got {endpoint:?}"
        ))
    })?;
    let hostport = rest.trim_end_matches('/');
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| BenchHttpError::InvalidArgument(format!("cannot resolve {hostport:?}")))
}

/// Validates a benchmark duration.
pub fn check_seconds(seconds: f64) -> Result<Duration, BenchHttpError> {
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        return Err(BenchHttpError::InvalidArgument(format!(
            "--seconds must be in (0, 3600], got {seconds}"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Runs `hydrant bench put`.
///
/// # Errors
/// A [`BenchHttpError`].
pub fn run(args: &BenchPutArgs, out: &mut dyn Write) -> Result<(), BenchHttpError> {
    let duration = check_seconds(args.seconds)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The WAL alone first, while the disk is quiet.
    let (wal_s1, wal_note) = if args.no_wal || args.shape == PutShapeArg::P2 {
        (None, "not measured".to_string())
    } else {
        eprintln!(
            "bench put: WAL S1 (bench wal --shape s1) for {:.1} s",
            args.seconds
        );
        match wal_s1_mb_per_sec(&args.dir, args.seconds) {
            Ok(v) => (Some(v), format!("{v:.1} MB/s")),
            Err(e) => (None, format!("not measured: {e}")),
        }
    };
    let daemon = match &args.endpoint {
        Some(_) => None,
        None => {
            let binary = daemon::find_hydrantd(args.hydrantd.as_deref())?;
            eprintln!("bench put: starting {}", binary.display());
            let mut daemon_args = bench_daemon_args();
            if let Some(dir) = &args.objects_dir {
                let dir = std::path::absolute(dir).map_err(|source| BenchHttpError::Io {
                    op: "resolve --objects-dir",
                    source,
                })?;
                daemon_args.extend(["--objects-dir".to_string(), dir.display().to_string()]);
            }
            Some(Daemon::start(&binary, &args.dir, &daemon_args)?)
        }
    };
    let endpoint = daemon
        .as_ref()
        .map(|d| d.endpoint.clone())
        .or_else(|| args.endpoint.clone())
        .unwrap_or_default();
    let addr = endpoint_addr(&endpoint)?;
    let runtime = crate::put::runtime(args.client_threads.max(1))?;
    let stream = args.stream.clone();
    let shapes = runtime.block_on(async {
        let client = FirehoseClient::new(&endpoint, None, 4)?;
        match create_put_stream(&client, &stream).await {
            Ok(()) => {}
            // A running daemon may have the stream from an earlier run.
            Err(DaemonError::Api {
                source: ClientError::Api { code, .. },
                ..
            }) if code == "ResourceInUseException" && args.endpoint.is_some() => {}
            Err(e) => return Err(BenchHttpError::from(e)),
        }
        let warmup = Duration::from_secs_f64((args.seconds / 5.0).min(1.0));
        let mut shapes = Vec::new();
        let mut drained_after_p1 = None;
        let mut p1_disk = None;
        let variants: &[bool] = if args.console_refresh {
            &[false, true]
        } else {
            &[false]
        };
        let buffer_records = (BENCH_BUFFER_MIB << 20) / P1_RECORD_BYTES as u64;
        if args.shape != PutShapeArg::P2 {
            for &console in variants {
                if console {
                    wait_delivered(&client, &stream, buffer_records, DRAIN_TIMEOUT).await?;
                }
                eprintln!(
                    "bench put: P1{} for {:.1} s",
                    if console { "+console" } else { "" },
                    args.seconds
                );
                let load = Load {
                    connections: 8,
                    duration,
                    warmup,
                    pace: None,
                };
                let workload = Arc::new(Fixed {
                    req: batch_request(&stream, 500, P1_RECORD_BYTES),
                });
                let before = disk_counters(&client, &stream).await?;
                let (result, console_pages) = drive_shape(
                    addr,
                    load,
                    workload,
                    console.then_some((&client, stream.as_str())),
                )
                .await?;
                if !console {
                    p1_disk = Some(disk_writes(before, disk_counters(&client, &stream).await?));
                }
                let ratio = wal_s1.map(|w| result.mb_per_sec / w);
                shapes.push(ShapeReport {
                    shape: if console { "P1+console" } else { "P1" },
                    what: if console {
                        "P1, the console page read every second"
                    } else {
                        "PutRecordBatch 500 x 1 KiB, 8 connections"
                    },
                    goal: match ratio {
                        Some(r) => format!("MB/s >= 0.6 x WAL S1: {r:.2} x"),
                        None => "MB/s >= 0.6 x WAL S1: WAL S1 not measured".to_string(),
                    },
                    goal_met: ratio.map(|r| r >= 0.6),
                    result,
                    console_pages,
                    daemon_memory: daemon.as_ref().and_then(Daemon::memory),
                });
            }
        }
        if matches!(args.shape, PutShapeArg::P2 | PutShapeArg::All) {
            if args.shape == PutShapeArg::All {
                // P1 leaves gigabytes for delivery: let it finish, or P2 would measure the
                // daemon delivering them as much as taking PutRecords.
                // What stays behind is less than one buffer: it waits for the buffering
                // interval (900 s), not for CPU.
                let waited =
                    wait_delivered(&client, &stream, buffer_records, DRAIN_TIMEOUT).await?;
                eprintln!(
                    "bench put: delivery finished P1's records {:.1} s after P1 ended",
                    waited.as_secs_f64()
                );
                drained_after_p1 = Some(waited.as_secs_f64());
            }
            for &console in variants {
                eprintln!(
                    "bench put: P2{} for {:.1} s",
                    if console { "+console" } else { "" },
                    args.seconds
                );
                let load = Load {
                    connections: 64,
                    duration,
                    warmup,
                    pace: None,
                };
                let workload = Arc::new(Fixed {
                    req: record_request(&stream, 100),
                });
                let (result, console_pages) = drive_shape(
                    addr,
                    load,
                    workload,
                    console.then_some((&client, stream.as_str())),
                )
                .await?;
                let met = result.records_per_sec >= 60_000.0 && result.p99_ms <= 5.0;
                shapes.push(ShapeReport {
                    shape: if console { "P2+console" } else { "P2" },
                    what: if console {
                        "P2, the console page read every second"
                    } else {
                        "PutRecord 100 B, 64 connections"
                    },
                    goal: "records/s >= 60,000 and p99 <= 5 ms (AWS quota: 2,000 req/s)"
                        .to_string(),
                    goal_met: Some(met),
                    result,
                    console_pages,
                    daemon_memory: daemon.as_ref().and_then(Daemon::memory),
                });
            }
        }
        Ok::<_, BenchHttpError>((shapes, drained_after_p1, p1_disk))
    })?;
    let (mut shapes, drained_after_p1, p1_disk_writes) = shapes;
    let target = match &daemon {
        Some(d) => format!(
            "hydrantd started by this run at {} (data {}) with {} (retention follows \
             delivery, as WAL S1's --retention follow: delivered segments are recycled); \
             stream UNCOMPRESSED, buffering 128 MiB / 900 s, to the local object store {}",
            d.endpoint,
            d.data_dir.display(),
            bench_daemon_args().join(" "),
            match &args.objects_dir {
                Some(dir) => format!("in {} (--objects-dir)", dir.display()),
                None => "in the data directory (the disk under test)".to_string(),
            }
        ),
        None => format!("running hydrantd at {endpoint}, stream {stream}"),
    };
    drop(daemon);
    if matches!(args.shape, PutShapeArg::P3 | PutShapeArg::All) {
        if args.endpoint.is_some() {
            eprintln!("bench put: P3 skipped: it needs a daemon this command starts");
        } else {
            let p1 = shapes
                .iter()
                .find(|s| s.shape == "P1")
                .map(|s| s.result.mb_per_sec);
            shapes.push(run_p3(args, &runtime, duration, p1)?);
        }
    }
    let report = Report {
        target,
        cpus,
        client_threads: args.client_threads.max(1),
        seconds_per_shape: args.seconds,
        wal_s1_mb_per_sec: wal_s1,
        wal_s1_note: wal_note,
        delivery_drained_after_p1_s: drained_after_p1,
        p1_disk_writes,
        objects_elsewhere: args.objects_dir.is_some(),
        shapes,
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "hydrant bench put  {} CPUs shared by load generator ({} thread{}) and daemon; {:.1} s \
         per shape",
        report.cpus,
        report.client_threads,
        if report.client_threads == 1 { "" } else { "s" },
        report.seconds_per_shape
    )?;
    writeln!(out, "{}", report.target)?;
    writeln!(
        out,
        "WAL S1 (bench wal, same run, same disk): {}",
        report.wal_s1_note
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<10} {:<44} {:>10} {:>11} {:>8} {:>8} {:>8} {:>8} {:>6}  goal",
        "shape", "what", "requests/s", "records/s", "MB/s", "p50 ms", "p99 ms", "max ms", "failed"
    )?;
    for s in &report.shapes {
        let r = &s.result;
        writeln!(
            out,
            "{:<10} {:<44} {:>10.0} {:>11.0} {:>8.1} {:>8.2} {:>8.2} {:>8.2} {:>6}  {} {}",
            s.shape,
            s.what,
            r.requests_per_sec,
            r.records_per_sec,
            r.mb_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.failed_requests,
            s.goal,
            match s.goal_met {
                Some(true) => "(met)",
                Some(false) => "(NOT met)",
                None => "",
            }
        )?;
    }
    let peaks: Vec<String> = report
        .shapes
        .iter()
        .filter_map(|s| {
            s.daemon_memory.map(|m| {
                format!(
                    "after {} {:.0} MiB (now RssAnon {:.0}, RssFile {:.0}, RssShmem {:.0})",
                    s.shape,
                    m.peak_rss_kib as f64 / 1024.0,
                    m.rss_anon_kib as f64 / 1024.0,
                    m.rss_file_kib as f64 / 1024.0,
                    m.rss_shmem_kib as f64 / 1024.0
                )
            })
        })
        .collect();
    if !peaks.is_empty() {
        writeln!(
            out,
            "Daemon peak RSS (VmHWM since its start; P3's daemon is its own): {} (buffering \
             hint {BENCH_BUFFER_MIB} MiB)",
            peaks.join(", ")
        )?;
    }
    for s in &report.shapes {
        if let Some((pages, slowest)) = s.console_pages {
            writeln!(
                out,
                "{}: {pages} console pages read, the slowest in {slowest:.1} ms",
                s.shape
            )?;
        }
    }
    if let (Some(d), true) = (report.p1_disk_writes, report.objects_elsewhere) {
        writeln!(
            out,
            "During P1 (warm-up included) the WAL wrote {:.0} MB/s and delivery {:.0} MB/s of \
             objects to --objects-dir",
            d.wal_mb_per_sec, d.delivered_mb_per_sec
        )?;
    } else if let Some(d) = report.p1_disk_writes {
        let s1 = report.wal_s1_mb_per_sec.map_or(String::new(), |w| {
            format!("; WAL S1 alone wrote {w:.0} MB/s")
        });
        writeln!(
            out,
            "During P1 (warm-up included) the disk under test took WAL writes of {:.0} MB/s and \
             delivered objects of {:.0} MB/s: {:.0} MB/s in all{s1}",
            d.wal_mb_per_sec,
            d.delivered_mb_per_sec,
            d.wal_mb_per_sec + d.delivered_mb_per_sec
        )?;
    }
    if let Some(s) = report.delivery_drained_after_p1_s {
        writeln!(
            out,
            "P2 started once delivery had caught up with P1 (less than one buffer left), {s:.1} \
             s after P1 ended"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_writes_are_rates_between_readings() {
        let t = std::time::Instant::now();
        let d = disk_writes(
            (1_000_000, 0, t),
            (5_000_000, 2_000_000, t + Duration::from_secs(2)),
        );
        assert!((d.wal_mb_per_sec - 2.0).abs() < 1e-9, "{d:?}");
        assert!((d.delivered_mb_per_sec - 1.0).abs() < 1e-9, "{d:?}");
    }

    #[test]
    fn metric_reads_one_streams_sample() {
        let page = "# HELP x\nhydrant_wal_durable_lsn{stream=\"other\"} 7\n\
                    hydrant_wal_durable_lsn{stream=\"s\"} 1500\n\
                    hydrant_delivery_cursor_lsn{stream=\"s\",destination=\"d-1\"} 1000\n";
        assert_eq!(metric(page, "hydrant_wal_durable_lsn", "s"), Some(1500));
        assert_eq!(metric(page, "hydrant_wal_durable_lsn", "other"), Some(7));
        assert_eq!(metric(page, "hydrant_delivery_cursor_lsn", "s"), Some(1000));
        assert_eq!(metric(page, "hydrant_delivery_cursor_lsn", "nope"), None);
    }
}
