//! `hydrant bench deliver`: end to end, ingestion through the API to delivered objects, per
//! codec, against a `hydrantd` this command starts.
//!
//! For each codec, a stream with `BufferingHints {SizeInMBs: 5, IntervalInSeconds: 0}`
//! delivering to the daemon's local object store (`DATA/objects/<bucket>/`). Connections send
//! PutRecordBatch requests of 500 JSON-lines records of about 1 KiB, each record naming its
//! batch. A poller lists the bucket's directory every few milliseconds and reads, decompresses
//! and attributes every new object. Two phases per codec:
//! 1. **Throughput**: `--connections` send as fast as they are answered for `--seconds`;
//!    throughput is acknowledged record bytes per second from the start of the load until the
//!    last of them appeared in an object.
//! 2. **Freshness**: one connection offers a batch every 250 ms (2 MB/s, under every codec's
//!    speed, so the figure is delivery latency rather than a queue); a record's freshness is the
//!    time from its batch's acknowledgement to the object holding it appearing.
//!
//! The codec's **own speed** is a single-thread `Compression::compress` of the same kind of bytes in this
//! process, measured in the same run. Goals (printed, not asserted): throughput at least 0.8x
//! the codec's speed; freshness p99 at most 250 ms to the local store (and at most 1 s to an
//! S3 server: with `--s3s-fs` or `$HYDRANT_S3S_FS`, GZIP is also measured through a real s3s-fs
//! started by the run; otherwise it prints "not measured").
//!
//! The poller's reading and decompressing competes for the same CPUs as the daemon; on a small
//! machine that lowers the throughput figure somewhat (it is part of the stated method).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use hydrant_api::destination::default_local_store_dir;
use hydrant_sinks::Compression;
use serde::Serialize;
use serde_json::json;

use crate::daemon::{self, Daemon};
use crate::firehose::FirehoseClient;
use crate::loadgen::{self, quantile_ms, Load, Req, Workload};
use crate::put::{check_seconds, endpoint_addr, BenchHttpError};

/// Arguments of `hydrant bench deliver`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchDeliverArgs {
    /// The hydrantd binary to start (default: $HYDRANT_HYDRANTD, or hydrantd next to
    /// hydrant-bench).
    #[arg(long, value_name = "PATH")]
    pub hydrantd: Option<PathBuf>,
    /// Directory for the daemon's temporary data directory (the disk under test).
    #[arg(long, value_name = "DIR", default_value = "hydrant-data/bench-tmp")]
    pub dir: PathBuf,
    /// Seconds of load per codec.
    #[arg(long, value_name = "N", default_value_t = 5.0)]
    pub seconds: f64,
    /// Codecs (CompressionFormat values), comma-separated.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "UNCOMPRESSED,GZIP,ZIP,Snappy,HADOOP_SNAPPY,ZSTD"
    )]
    pub codecs: Vec<String>,
    /// Concurrent connections sending PutRecordBatch.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub connections: usize,
    /// Seconds to wait, after the load, for every acknowledged record to be delivered.
    #[arg(long, value_name = "N", default_value_t = 60.0)]
    pub drain_seconds: f64,
    /// An s3s-fs binary: start it on a free port and measure GZIP freshness to it too, through a
    /// second hydrantd configured with it as its S3 endpoint (objects watched in its data dir).
    /// Default: $HYDRANT_S3S_FS when set; otherwise S3 freshness is not measured.
    #[arg(long, value_name = "PATH")]
    pub s3s_fs: Option<PathBuf>,
    /// Print the results as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// The destination: `local` (the object store through a started hydrantd, per codec) or
    /// `postgres` (rows/s through the PostgreSQL sink beside a plain COPY, same server and run).
    #[arg(long, value_enum, ignore_case = true, default_value_t = DeliverDest::Local)]
    pub dest: DeliverDest,
    /// With `--dest postgres`: the server (`postgres://user[:password]@host:port/db`); default:
    /// a throwaway cluster started by the run.
    #[arg(long, value_name = "URL")]
    pub pg_url: Option<String>,
    /// With `--dest postgres`: rows to load per pass.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub rows: u64,
    /// Dynamic partitioning instead: partitioned against unpartitioned delivery of the same
    /// batches, in process, for each partition count given (e.g. `1,20,500`; see
    /// `partition.rs`).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub partitions: Vec<usize>,
    /// With `--partitions`: megabytes of records per partition count.
    #[arg(long, value_name = "MB", default_value_t = 200)]
    pub partition_mb: usize,
    /// Record format conversion instead: `parquet` (SNAPPY, GZIP) or `orc` (SNAPPY, ZLIB)
    /// against the JSON paths (UNCOMPRESSED, GZIP) of the same batches, in process (see
    /// `format.rs`).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// With `--format`: megabytes of records.
    #[arg(long, value_name = "MB", default_value_t = 256)]
    pub format_mb: usize,
    /// With `--format`: megabytes per batch (128: the `SizeInMBs` Firehose applies when
    /// conversion is on and no hint is given; a hint below 64 is refused with conversion).
    #[arg(long, value_name = "MB", default_value_t = 128)]
    pub format_batch_mb: usize,
}

/// What `bench deliver` delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeliverDest {
    /// The daemon's local object store, per codec.
    Local,
    /// A PostgreSQL server through the PostgreSQL / Redshift sink.
    Postgres,
}

const RECORDS_PER_BATCH: usize = 500;
const RECORD_BYTES: usize = 1024;

/// A record of about 1 KiB of JSON text naming its batch: `{"b":7,"i":3,"msg":"..."}\n`. The
/// message is words, so codecs see text that compresses as logs do.
fn record(batch: u64, i: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "GET",
        "/api/v1/orders",
        "200",
        "user",
        "session",
        "latency_ms",
        "region",
        "eu-west-1",
        "cache",
        "miss",
        "upstream",
        "timeout",
        "retry",
        "payload",
        "checksum",
        "ok",
    ];
    let head = format!("{{\"b\":{batch},\"i\":{i},\"msg\":\"");
    let mut out = head.into_bytes();
    let mut x = batch.wrapping_mul(6_364_136_223_846_793_005) ^ (i as u64 + 1);
    while out.len() < RECORD_BYTES - 3 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % 16) as usize].as_bytes());
        out.push(b' ');
    }
    out.truncate(RECORD_BYTES - 3);
    out.extend_from_slice(b"\"}\n");
    out
}

/// The batch a record names.
fn batch_of(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"b\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

struct Tagged {
    stream: String,
    next: AtomicU64,
    acks: Mutex<HashMap<u64, Instant>>,
    acked_records: AtomicU64,
    acked_bytes: AtomicU64,
}

impl Workload for Tagged {
    fn next(&self, _conn: usize, _seq: u64) -> Req {
        let batch = self.next.fetch_add(1, Ordering::Relaxed);
        let b64 = base64::engine::general_purpose::STANDARD;
        let records: Vec<serde_json::Value> = (0..RECORDS_PER_BATCH)
            .map(|i| json!({ "Data": b64.encode(record(batch, i)) }))
            .collect();
        let body = json!({ "DeliveryStreamName": self.stream, "Records": records });
        Req {
            operation: "PutRecordBatch",
            body: Bytes::from(body.to_string()),
            records: RECORDS_PER_BATCH as u64,
            bytes: (RECORDS_PER_BATCH * RECORD_BYTES) as u64,
            tag: batch,
        }
    }

    fn acked(&self, req: &Req, at: Instant) {
        if let Ok(mut acks) = self.acks.lock() {
            acks.insert(req.tag, at);
        }
        self.acked_records.fetch_add(req.records, Ordering::Relaxed);
        self.acked_bytes.fetch_add(req.bytes, Ordering::Relaxed);
    }
}

/// An object seen by the poller.
struct Seen {
    at: Instant,
    /// (batch, records of it in the object).
    batches: Vec<(u64, u64)>,
}

/// Lists `root` recursively and reads each object not in `known` (hidden files, the stores'
/// temporaries, skipped); an object read is added to `known` and handed to `each` with the time
/// it was read. Objects that cannot be read yet are tried again on the next call.
pub(crate) fn read_new_objects(
    root: &Path,
    known: &mut HashSet<PathBuf>,
    mut each: impl FnMut(Instant, Vec<u8>),
) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden || known.contains(&path) {
                continue;
            }
            let at = Instant::now();
            let Ok(body) = std::fs::read(&path) else {
                continue;
            };
            known.insert(path);
            each(at, body);
        }
    }
}

/// Reads and decodes the objects under `root` not in `known`.
fn poll_once(root: &Path, codec: Compression, known: &mut HashSet<PathBuf>, out: &mut Vec<Seen>) {
    read_new_objects(root, known, |at, body| {
        let Ok(data) = codec.decompress(&body) else {
            return;
        };
        let mut counts: HashMap<u64, u64> = HashMap::new();
        for line in data.split_inclusive(|b| *b == b'\n') {
            if let Some(b) = batch_of(line) {
                *counts.entry(b).or_default() += 1;
            }
        }
        out.push(Seen {
            at,
            batches: counts.into_iter().collect(),
        });
    });
}

/// One codec's figures.
#[derive(Debug, Serialize)]
struct CodecReport {
    codec: String,
    acked_records: u64,
    delivered_records: u64,
    objects: usize,
    ingest_mb_per_sec: f64,
    delivered_mb_per_sec: f64,
    codec_mb_per_sec: Option<f64>,
    ratio: Option<f64>,
    freshness_p50_ms: f64,
    freshness_p99_ms: f64,
    freshness_max_ms: f64,
    throughput_goal_met: Option<bool>,
    freshness_goal_met: bool,
    note: String,
}

/// Single-thread compression speed of `codec` on bytes like the benchmark's, MB/s of input.
fn codec_speed(codec: Compression) -> Option<f64> {
    if codec == Compression::Uncompressed {
        return None; // a copy: no codec to compare with
    }
    let data: Vec<u8> = (0..16 * 1024u64)
        .flat_map(|i| record(i / 500, (i % 500) as usize))
        .collect();
    let started = Instant::now();
    let mut rounds = 0u32;
    while rounds < 2 || started.elapsed() < Duration::from_millis(500) {
        codec.compress(&data).ok()?;
        rounds += 1;
    }
    Some(data.len() as f64 * f64::from(rounds) / started.elapsed().as_secs_f64() / 1e6)
}

/// Waits until the poller has seen every acknowledged record, or `limit` passed; true if so.
fn wait_drained(workload: &Tagged, delivered: &AtomicU64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if delivered.load(Ordering::Acquire) >= workload.acked_records.load(Ordering::Acquire) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Offered rate of the freshness phase: one 500 x 1 KiB batch every 250 ms (2 MB/s), well
/// under every codec's speed, so freshness is delivery latency, not a queue.
const FRESHNESS_PACE: Duration = Duration::from_millis(250);

fn measure_codec(
    daemon: &Daemon,
    runtime: &tokio::runtime::Runtime,
    codec: Compression,
    args: &BenchDeliverArgs,
    duration: Duration,
    objects_of: &dyn Fn(&str) -> PathBuf,
) -> Result<CodecReport, BenchHttpError> {
    let name = codec.firehose_name();
    let slug = name.to_ascii_lowercase().replace('_', "-");
    let stream = format!("bench-deliver-{slug}");
    let bucket = format!("bench-deliver-{slug}");
    let client = FirehoseClient::new(&daemon.endpoint, None, 2)?;
    runtime.block_on(daemon::create_stream(&client, &stream, &bucket, name, 5, 0))?;
    let workload = Arc::new(Tagged {
        stream: stream.clone(),
        next: AtomicU64::new(0),
        acks: Mutex::new(HashMap::new()),
        acked_records: AtomicU64::new(0),
        acked_bytes: AtomicU64::new(0),
    });
    let root = objects_of(&bucket);
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let poller = {
        let (stop, delivered, root) = (stop.clone(), delivered.clone(), root.clone());
        std::thread::spawn(move || {
            let mut known = HashSet::new();
            let mut seen = Vec::new();
            while !stop.load(Ordering::Acquire) {
                poll_once(&root, codec, &mut known, &mut seen);
                let n: u64 = seen
                    .iter()
                    .flat_map(|s| s.batches.iter().map(|b| b.1))
                    .sum();
                delivered.store(n, Ordering::Release);
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        })
    };
    let addr = endpoint_addr(&daemon.endpoint)?;
    let drain = Duration::from_secs_f64(args.drain_seconds);

    // Phase 1, throughput: saturate, then wait until everything acknowledged is delivered.
    let started = Instant::now();
    let saturate = Load {
        connections: args.connections,
        duration,
        warmup: Duration::ZERO,
        pace: None,
    };
    let phase1 = runtime.block_on(loadgen::drive(addr, saturate, workload.clone()));
    let acked1_records = workload.acked_records.load(Ordering::Relaxed);
    let acked1_bytes = workload.acked_bytes.load(Ordering::Relaxed);
    let drained1 = wait_drained(&workload, &delivered, drain);
    let split = workload.next.load(Ordering::Relaxed);

    // Phase 2, freshness: a fixed, moderate rate from one connection.
    let paced = Load {
        connections: 1,
        duration,
        warmup: Duration::ZERO,
        pace: Some(FRESHNESS_PACE),
    };
    let phase2 = if drained1 {
        Some(runtime.block_on(loadgen::drive(addr, paced, workload.clone())))
    } else {
        None
    };
    let drained2 = drained1 && wait_drained(&workload, &delivered, drain);
    stop.store(true, Ordering::Release);
    let seen = poller
        .join()
        .map_err(|_| BenchHttpError::Delivery("the object poller panicked".into()))?;
    let phase1 = phase1?;
    if let Some(p) = phase2 {
        p?;
    }
    let acked_records = workload.acked_records.load(Ordering::Relaxed);
    let acks = workload
        .acks
        .lock()
        .map_err(|_| BenchHttpError::Delivery("ack table poisoned".into()))?;
    let mut freshness_us: Vec<u64> = Vec::new();
    let (mut delivered1, mut delivered_all) = (0u64, 0u64);
    let mut last_seen1 = started;
    for s in &seen {
        for &(batch, n) in &s.batches {
            let Some(acked_at) = acks.get(&batch) else {
                continue; // a batch whose reply was lost or partial: not counted
            };
            delivered_all += n;
            if batch < split {
                delivered1 += n;
                last_seen1 = last_seen1.max(s.at);
            } else {
                let f = s.at.saturating_duration_since(*acked_at).as_micros() as u64;
                freshness_us.extend(std::iter::repeat_n(f, n as usize));
            }
        }
    }
    freshness_us.sort_unstable();
    let delivered_secs = last_seen1.duration_since(started).as_secs_f64().max(1e-9);
    let delivered_mb_per_sec = delivered1 as f64 * RECORD_BYTES as f64 / delivered_secs / 1e6;
    let codec_mb_per_sec = codec_speed(codec);
    let ratio = codec_mb_per_sec.map(|c| delivered_mb_per_sec / c);
    let p99 = quantile_ms(&freshness_us, 0.99);
    let complete1 = drained1 && delivered1 >= acked1_records && acked1_records > 0;
    let complete2 = drained2 && !freshness_us.is_empty();
    let mut notes = Vec::new();
    if !complete1 {
        notes.push(format!(
            "throughput phase: only {delivered1} of {acked1_records} acknowledged records \
             delivered within {} s after the load",
            args.drain_seconds
        ));
    }
    if !complete2 {
        notes.push("freshness phase incomplete or not run".to_string());
    }
    Ok(CodecReport {
        codec: name.to_string(),
        acked_records,
        delivered_records: delivered_all,
        objects: seen.len(),
        ingest_mb_per_sec: acked1_bytes as f64 / phase1.seconds / 1e6,
        delivered_mb_per_sec,
        codec_mb_per_sec,
        ratio,
        freshness_p50_ms: quantile_ms(&freshness_us, 0.5),
        freshness_p99_ms: p99,
        freshness_max_ms: quantile_ms(&freshness_us, 1.0),
        throughput_goal_met: ratio.map(|r| r >= 0.8 && complete1),
        freshness_goal_met: complete2 && p99 <= 250.0,
        note: notes.join("; "),
    })
}

#[derive(Debug, Serialize)]
struct Report {
    target: String,
    cpus: usize,
    seconds_per_codec: f64,
    s3_freshness: String,
    codecs: Vec<CodecReport>,
}

/// An s3s-fs process, killed on drop.
struct S3Server(std::process::Child);

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts s3s-fs on a free port and a hydrantd delivering to it, and measures GZIP there.
fn measure_s3(
    hydrantd: &Path,
    s3s_fs: &Path,
    runtime: &tokio::runtime::Runtime,
    args: &BenchDeliverArgs,
    duration: Duration,
) -> Result<CodecReport, BenchHttpError> {
    let io = |op: &'static str| move |source| BenchHttpError::Io { op, source };
    std::fs::create_dir_all(&args.dir).map_err(io("create the bench directory"))?;
    let scratch = tempfile::Builder::new()
        .prefix("s3s-fs-bench-")
        .tempdir_in(&args.dir)
        .map_err(io("create a directory for s3s-fs"))?;
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&data).map_err(io("create the s3s-fs data directory"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(io("find a free port for s3s-fs"))?
        .port();
    let child = std::process::Command::new(s3s_fs)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "bench", "--secret-key", "bench-secret"])
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(io("start s3s-fs"))?;
    let _server = S3Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(BenchHttpError::InvalidArgument(format!(
                "s3s-fs ({}) did not listen on port {port} within 10 s",
                s3s_fs.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let extra: Vec<String> = [
        "--s3-endpoint",
        &format!("http://127.0.0.1:{port}"),
        "--s3-force-path-style",
        "--s3-access-key-id",
        "bench",
        "--s3-secret-access-key",
        "bench-secret",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    let daemon = Daemon::start(hydrantd, &args.dir, &extra)?;
    let objects = |bucket: &str| data.join(bucket);
    measure_codec(
        &daemon,
        runtime,
        Compression::Gzip,
        args,
        duration,
        &objects,
    )
}

/// Runs `hydrant bench deliver`.
///
/// # Errors
/// A [`BenchHttpError`].
pub fn run(args: &BenchDeliverArgs, out: &mut dyn Write) -> Result<(), BenchHttpError> {
    if args.dest == DeliverDest::Postgres {
        return crate::pg::run(args.pg_url.as_deref(), args.rows, args.json, out);
    }
    if let Some(format) = &args.format {
        return crate::format::run(
            format,
            &args.dir,
            args.format_mb,
            args.format_batch_mb,
            args.json,
            out,
        );
    }
    if !args.partitions.is_empty() {
        return crate::partition::run(
            &args.partitions,
            &args.dir,
            args.partition_mb,
            args.json,
            out,
        );
    }
    let duration = check_seconds(args.seconds)?;
    if !(1..=256).contains(&args.connections) {
        return Err(BenchHttpError::InvalidArgument(
            "--connections must be in 1..=256".into(),
        ));
    }
    if !(args.drain_seconds.is_finite() && args.drain_seconds >= 0.0) {
        return Err(BenchHttpError::InvalidArgument(
            "--drain-seconds must be at least 0".into(),
        ));
    }
    let codecs = args
        .codecs
        .iter()
        .map(|c| {
            Compression::from_firehose(c)
                .map_err(|e| BenchHttpError::InvalidArgument(format!("--codecs: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let binary = daemon::find_hydrantd(args.hydrantd.as_deref())?;
    eprintln!("bench deliver: starting {}", binary.display());
    let daemon = Daemon::start(&binary, &args.dir, &[])?;
    let runtime = crate::put::runtime(cpus.clamp(1, 4))?;
    let mut reports = Vec::new();
    for codec in codecs {
        eprintln!(
            "bench deliver: {} for {:.1} s",
            codec.firehose_name(),
            args.seconds
        );
        let local = |bucket: &str| default_local_store_dir(&daemon.data_dir).join(bucket);
        reports.push(measure_codec(
            &daemon, &runtime, codec, args, duration, &local,
        )?);
    }
    let report = Report {
        target: format!(
            "hydrantd started by this run at {} (data {}); one stream per codec, BufferingHints \
             5 MiB / 0 s, local object store; throughput phase: {} connections x \
             PutRecordBatch 500 x 1 KiB, saturating; freshness phase: 1 connection, one such \
             batch every 250 ms",
            daemon.endpoint,
            daemon.data_dir.display(),
            args.connections
        ),
        cpus,
        seconds_per_codec: args.seconds,
        s3_freshness: match args
            .s3s_fs
            .clone()
            .or_else(|| std::env::var_os("HYDRANT_S3S_FS").map(PathBuf::from))
        {
            None => "not measured (no --s3s-fs, no HYDRANT_S3S_FS)".to_string(),
            Some(s3s) => {
                eprintln!("bench deliver: GZIP to s3s-fs for {:.1} s", args.seconds);
                let c = measure_s3(&binary, &s3s, &runtime, args, duration)?;
                format!(
                    "GZIP through s3s-fs: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({}){}",
                    c.freshness_p50_ms,
                    c.freshness_p99_ms,
                    c.freshness_max_ms,
                    if c.freshness_p99_ms <= 1000.0 {
                        "goal met"
                    } else {
                        "goal NOT met"
                    },
                    if c.note.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", c.note)
                    }
                )
            }
        },
        codecs: reports,
    };
    drop(daemon);
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "hydrant bench deliver  {} CPUs shared by load generator, poller and daemon; {:.1} s \
         per codec",
        report.cpus, report.seconds_per_codec
    )?;
    writeln!(out, "{}", report.target)?;
    writeln!(
        out,
        "out MB/s = acknowledged bytes delivered / (last object seen - load start), \
         throughput phase; p50/p99/max = object appeared - batch acknowledged, freshness phase"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<13} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>6} {:>8} {:>8} {:>8}  goals",
        "codec",
        "acked",
        "delivered",
        "objects",
        "in MB/s",
        "out MB/s",
        "codec MB/s",
        "ratio",
        "p50 ms",
        "p99 ms",
        "max ms"
    )?;
    for c in &report.codecs {
        let met = |m: Option<bool>| match m {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "n/a",
        };
        writeln!(
            out,
            "{:<13} {:>9} {:>9} {:>7} {:>9.1} {:>9.1} {:>9} {:>6} {:>8.1} {:>8.1} {:>8.1}  \
             ratio >= 0.8: {}; p99 <= 250 ms: {}{}",
            c.codec,
            c.acked_records,
            c.delivered_records,
            c.objects,
            c.ingest_mb_per_sec,
            c.delivered_mb_per_sec,
            c.codec_mb_per_sec
                .map_or_else(|| "-".to_string(), |v| format!("{v:.1}")),
            c.ratio
                .map_or_else(|| "-".to_string(), |v| format!("{v:.2}")),
            c.freshness_p50_ms,
            c.freshness_p99_ms,
            c.freshness_max_ms,
            met(c.throughput_goal_met),
            met(Some(c.freshness_goal_met)),
            if c.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.note)
            }
        )?;
    }
    writeln!(
        out,
        "S3 server freshness (goal p99 <= 1 s): {}",
        report.s3_freshness
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_one_kib_lines_naming_their_batch() {
        let r = record(42, 7);
        assert_eq!(r.len(), RECORD_BYTES);
        assert_eq!(r.last(), Some(&b'\n'));
        assert_eq!(batch_of(&r), Some(42));
        assert!(serde_json::from_slice::<serde_json::Value>(&r).is_ok());
    }
}
