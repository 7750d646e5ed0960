//! `hydrant bench kinesis`: records per second read from a 4-shard Kinesis stream (a kinesalite
//! server started by the run) into the local object store by a `KinesisStreamAsSource`
//! delivery stream, beside a plain GetRecords loop over the same shards in the same run.
//!
//! Method:
//! 1. kinesalite (Node.js, `--kinesalite-dir` or `$HYDRANT_KINESALITE_DIR` or
//!    `target/tools/kinesalite-3.3.3`) on a free port; a 4-shard stream.
//! 2. hydrantd with `[kinesis]` pointing at it; a delivery stream reading the stream into the
//!    local store (`BufferingHints {5 MB, 0 s}`). Then hydrantd is stopped, so the records that
//!    follow wait in the shards (they arrive after the delivery start, so they are all read).
//! 3. `--records` JSON-lines records of about `--record-bytes` over 1,000 partition keys, put
//!    with PutRecords of 500 from 4 tasks.
//! 4. **Baseline**: one task per shard, GetShardIterator `TRIM_HORIZON`, then GetRecords
//!    (limit 10,000) back to back until a call returns nothing with `MillisBehindLatest` 0:
//!    the records over the time all four took. No pacing, no parsing, no disk: what kinesalite
//!    itself serves.
//! 5. **hydrant**: hydrantd started again; the time from its start until every record is in an
//!    object of the local store (a poller counts the objects' lines). The reader paces itself
//!    as it would against Kinesis (5 reads/s and 2 MB/s per shard).
//!
//! Goal (printed, not asserted): hydrant at least 0.8x the baseline.

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use hydrant_api::destination::default_local_store_dir;
use serde::Serialize;
use serde_json::json;

use crate::daemon::{self, Daemon, DaemonError};
use crate::firehose::FirehoseClient;

/// Arguments of `hydrant bench kinesis`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchKinesisArgs {
    /// The hydrantd binary to start (default: $HYDRANT_HYDRANTD, or hydrantd next to
    /// hydrant-bench).
    #[arg(long, value_name = "PATH")]
    pub hydrantd: Option<PathBuf>,
    /// Directory for the daemon's temporary data directory (the disk under test).
    #[arg(long, value_name = "DIR", default_value = "hydrant-data/bench-tmp")]
    pub dir: PathBuf,
    /// Where kinesalite is installed (`npm install kinesalite@3.3.3` there); default
    /// $HYDRANT_KINESALITE_DIR, else target/tools/kinesalite-3.3.3.
    #[arg(long, value_name = "DIR")]
    pub kinesalite_dir: Option<PathBuf>,
    /// Records to put and read.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub records: u64,
    /// Approximate bytes per record.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub record_bytes: usize,
    /// Seconds to wait for hydrant to deliver every record.
    #[arg(long, value_name = "N", default_value_t = 300)]
    pub drain_seconds: u64,
    /// Print the results as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// What the benchmark can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BenchKinesisError {
    /// hydrantd could not be started or driven.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// kinesalite is missing or did not start.
    #[error("kinesalite: {0}")]
    Kinesalite(String),
    /// A Kinesis call failed.
    #[error("Kinesis {what}: {message}")]
    Kinesis {
        /// The call.
        what: &'static str,
        /// What the SDK said.
        message: String,
    },
    /// The Firehose client could not be built or a call failed.
    #[error(transparent)]
    Client(#[from] crate::firehose::ClientError),
    /// hydrant did not deliver every record in time.
    #[error("hydrant delivered {delivered} of {records} records in {secs} s")]
    Undelivered {
        /// Records delivered.
        delivered: u64,
        /// Records put.
        records: u64,
        /// The wait.
        secs: u64,
    },
    /// The runtime or the output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn kinesis_error<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> BenchKinesisError {
    move |e| BenchKinesisError::Kinesis {
        what,
        message: format!("{e:?}").chars().take(400).collect(),
    }
}

/// kinesalite as a child process; killed on drop.
struct Kinesalite {
    child: Child,
    endpoint: String,
}

impl Kinesalite {
    fn start(dir: Option<&Path>) -> Result<Kinesalite, BenchKinesisError> {
        let dir = dir
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("HYDRANT_KINESALITE_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("target/tools/kinesalite-3.3.3"));
        if !dir.join("node_modules/kinesalite/package.json").exists() {
            return Err(BenchKinesisError::Kinesalite(format!(
                "not installed in {} (`npm install kinesalite@3.3.3` there, or \
                 --kinesalite-dir)",
                dir.display()
            )));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("node")
            .arg("-e")
            .arg(format!(
                "require('kinesalite')({{createStreamMs: 50, shardLimit: 50}}).listen({port}, \
                 '127.0.0.1')"
            ))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let k = Kinesalite {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(BenchKinesisError::Kinesalite(
                    "did not listen in 20 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(k)
    }
}

impl Drop for Kinesalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The figures.
#[derive(Debug, Serialize)]
struct Report {
    records: u64,
    record_bytes: usize,
    shards: usize,
    put_records_per_sec: f64,
    baseline_records_per_sec: f64,
    hydrant_records_per_sec: f64,
    ratio: f64,
    goal: f64,
}

const STREAM: &str = "bench-kinesis";
const KSTREAM: &str = "bench-kinesis-source";
const BUCKET: &str = "bench-kinesis";
const SHARDS: usize = 4;

/// Runs the benchmark and prints its figures.
///
/// # Errors
/// [`BenchKinesisError`].
pub fn run(args: &BenchKinesisArgs, out: &mut dyn Write) -> Result<(), BenchKinesisError> {
    let hydrantd = daemon::find_hydrantd(args.hydrantd.as_deref())?;
    let k = Kinesalite::start(args.kinesalite_dir.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("K", "S", None, None, "bench"))
            .endpoint_url(&k.endpoint)
            .build(),
    );
    let arn = runtime.block_on(create_kinesis_stream(&client))?;

    std::fs::create_dir_all(&args.dir)?;
    let cfg = args.dir.join("bench-kinesis.toml");
    std::fs::write(
        &cfg,
        format!(
            "[kinesis]\nendpoint = \"{}\"\naccess_key_id = \"K\"\nsecret_access_key = \"S\"\n",
            k.endpoint
        ),
    )?;
    let extra = vec!["--config".to_string(), cfg.display().to_string()];
    let mut daemon = Daemon::start(&hydrantd, &args.dir, &extra)?;
    let firehose = FirehoseClient::new(&daemon.endpoint, None, 2)?;
    runtime.block_on(create_delivery_stream(&firehose, &arn))?;
    // Wait for the source to list the shards, then stop: the records wait in the shards.
    std::thread::sleep(Duration::from_secs(2));
    daemon.stop();

    let put_started = Instant::now();
    runtime.block_on(put_all(&client, args.records, args.record_bytes))?;
    let put_secs = put_started.elapsed().as_secs_f64();

    let baseline_started = Instant::now();
    let read = runtime.block_on(read_all(&client))?;
    let baseline_secs = baseline_started.elapsed().as_secs_f64();
    if read != args.records {
        return Err(BenchKinesisError::Kinesis {
            what: "GetRecords loop",
            message: format!("read {read} records, {} were put", args.records),
        });
    }

    let objects = default_local_store_dir(&daemon.data_dir).join(BUCKET);
    let started = Instant::now();
    daemon.restart()?;
    let deadline = started + Duration::from_secs(args.drain_seconds);
    let mut known = HashSet::new();
    let mut delivered = 0u64;
    while delivered < args.records {
        if Instant::now() > deadline {
            return Err(BenchKinesisError::Undelivered {
                delivered,
                records: args.records,
                secs: args.drain_seconds,
            });
        }
        delivered += count_new_lines(&objects, &mut known);
        std::thread::sleep(Duration::from_millis(20));
    }
    let hydrant_secs = started.elapsed().as_secs_f64();

    let per_sec = |secs: f64| args.records as f64 / secs.max(1e-9);
    let report = Report {
        records: args.records,
        record_bytes: args.record_bytes,
        shards: SHARDS,
        put_records_per_sec: per_sec(put_secs),
        baseline_records_per_sec: per_sec(baseline_secs),
        hydrant_records_per_sec: per_sec(hydrant_secs),
        ratio: baseline_secs / hydrant_secs.max(1e-9),
        goal: 0.8,
    };
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        )?;
    } else {
        writeln!(
            out,
            "kinesis: {} records of ~{} B over {} shards (kinesalite)\n  \
             put (PutRecords x4 tasks):        {:>10.0} records/s\n  \
             baseline (GetRecords loop):       {:>10.0} records/s\n  \
             hydrant (shards -> local store):  {:>10.0} records/s\n  \
             ratio {:.2} (goal >= {:.1})",
            report.records,
            report.record_bytes,
            report.shards,
            report.put_records_per_sec,
            report.baseline_records_per_sec,
            report.hydrant_records_per_sec,
            report.ratio,
            report.goal
        )?;
    }
    Ok(())
}

async fn create_kinesis_stream(
    client: &aws_sdk_kinesis::Client,
) -> Result<String, BenchKinesisError> {
    client
        .create_stream()
        .stream_name(KSTREAM)
        .shard_count(SHARDS as i32)
        .send()
        .await
        .map_err(kinesis_error("CreateStream"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = client
            .describe_stream_summary()
            .stream_name(KSTREAM)
            .send()
            .await
            .map_err(kinesis_error("DescribeStreamSummary"))?;
        if let Some(s) = d.stream_description_summary() {
            if s.stream_status().as_str() == "ACTIVE" {
                return Ok(s.stream_arn().to_string());
            }
        }
        if Instant::now() > deadline {
            return Err(BenchKinesisError::Kinesis {
                what: "CreateStream",
                message: "the stream did not become ACTIVE in 20 s".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_delivery_stream(
    firehose: &FirehoseClient,
    kinesis_arn: &str,
) -> Result<(), BenchKinesisError> {
    let role = "arn:aws:iam::123456789012:role/hydrant-bench";
    let input = json!({
        "DeliveryStreamName": STREAM,
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {"KinesisStreamARN": kinesis_arn, "RoleARN": role},
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": role,
            "BucketARN": format!("arn:aws:s3:::{BUCKET}"),
            "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 0}
        }
    });
    let _: serde_json::Value = firehose.call("CreateDeliveryStream", &input).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d: serde_json::Value = firehose
            .call(
                "DescribeDeliveryStream",
                &json!({ "DeliveryStreamName": STREAM }),
            )
            .await?;
        if d["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE" {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchKinesisError::Kinesis {
                what: "CreateDeliveryStream",
                message: "the delivery stream did not become ACTIVE in 30 s".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Puts `n` records from 4 tasks, PutRecords of 500, retrying the failed entries.
async fn put_all(
    client: &aws_sdk_kinesis::Client,
    n: u64,
    bytes: usize,
) -> Result<(), BenchKinesisError> {
    let tasks = 4u64;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let client = client.clone();
        handles.push(tokio::spawn(async move {
            let mut i = t;
            let mut batch = Vec::with_capacity(500);
            while i < n || !batch.is_empty() {
                if i < n && batch.len() < 500 {
                    let head = format!("{{\"i\":{i},\"pad\":\"");
                    let pad = "x".repeat(bytes.saturating_sub(head.len() + 3));
                    let data = format!("{head}{pad}\"}}\n");
                    let entry = PutRecordsRequestEntry::builder()
                        .data(Blob::new(data))
                        .partition_key(format!("k{}", i % 1000))
                        .build()
                        .map_err(kinesis_error("PutRecords entry"))?;
                    batch.push(entry);
                    i += tasks;
                    continue;
                }
                let mut pending = std::mem::take(&mut batch);
                while !pending.is_empty() {
                    let r = client
                        .put_records()
                        .stream_name(KSTREAM)
                        .set_records(Some(pending.clone()))
                        .send()
                        .await
                        .map_err(kinesis_error("PutRecords"))?;
                    pending = pending
                        .into_iter()
                        .zip(r.records())
                        .filter(|(_, res)| res.error_code().is_some())
                        .map(|(e, _)| e)
                        .collect();
                }
            }
            Ok::<(), BenchKinesisError>(())
        }));
    }
    for h in handles {
        h.await
            .map_err(|e| BenchKinesisError::Kinesalite(format!("a producer task: {e}")))??;
    }
    Ok(())
}

/// The baseline: every shard read from its trim horizon to its tip; the records read.
async fn read_all(client: &aws_sdk_kinesis::Client) -> Result<u64, BenchKinesisError> {
    let shards = client
        .list_shards()
        .stream_name(KSTREAM)
        .send()
        .await
        .map_err(kinesis_error("ListShards"))?;
    let mut handles = Vec::new();
    for s in shards.shards() {
        let client = client.clone();
        let shard = s.shard_id().to_string();
        handles.push(tokio::spawn(async move {
            let mut it = client
                .get_shard_iterator()
                .stream_name(KSTREAM)
                .shard_id(&shard)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(kinesis_error("GetShardIterator"))?
                .shard_iterator()
                .map(str::to_string);
            let mut count = 0u64;
            while let Some(iterator) = it {
                let r = client
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(10_000)
                    .send()
                    .await
                    .map_err(kinesis_error("GetRecords"))?;
                count += r.records().len() as u64;
                if r.records().is_empty() && r.millis_behind_latest() == Some(0) {
                    break;
                }
                it = r.next_shard_iterator().map(str::to_string);
            }
            Ok::<u64, BenchKinesisError>(count)
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h
            .await
            .map_err(|e| BenchKinesisError::Kinesalite(format!("a reader task: {e}")))??;
    }
    Ok(total)
}

/// Lines in the objects under `root` not counted before (`known`).
fn count_new_lines(root: &Path, known: &mut HashSet<PathBuf>) -> u64 {
    let mut lines = 0;
    crate::deliver::read_new_objects(root, known, |_, body| {
        lines += body.iter().filter(|b| **b == b'\n').count() as u64;
    });
    lines
}
