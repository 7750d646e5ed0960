//! `hydrant replay`: disaster recovery. Reads a stream's WAL read-only (whether or not a
//! `hydrantd` has it open) and delivers a range of it again, to a destination given on the
//! command line or to the stream's own.
//!
//! # Exactly once, again
//!
//! Replay cuts the range into batches deterministically: a batch starts at the replay's start
//! LSN (or where the previous batch ended) and takes records in LSN order until the next record
//! would take it past `--batch-mib` of data (a single larger record is a batch of its own). Each
//! batch is named by a [`BatchIdentity`] whose destination id is `replay-<hash of the
//! destination>`, so its object key (a pure function of the identity and the oldest record's
//! arrival time, see hydrant-sinks) never collides with a key of live delivery, and a second run
//! over the same range writes the same keys with the same bytes: it overwrites, it does not
//! duplicate.
//!
//! After each delivered batch, the next LSN to replay goes into a checkpoint file (the WAL
//! crate's two-slot [`CheckpointFile`], fsynced). An interrupted replay run again resumes there;
//! since that LSN is a batch boundary of the interrupted run, the resumed run cuts the same
//! batches the uninterrupted one would have. `--restart` ignores the checkpoint.
//!
//! # Dynamic partitioning
//!
//! When the destination is the stream's own and its `DynamicPartitioningConfiguration` is
//! enabled, replay runs the stream's `ProcessingConfiguration` on each batch as live delivery
//! does (MetadataExtraction's jq; a Lambda processor only when reachable, which replay's
//! settings never make it: such a stream is refused) and writes one object per partition of each
//! batch, named as live delivery names a partition's object: the Prefix evaluated on the
//! partition's keys, then the suffix of the identity of the object's own records (replay
//! destination id, their first and last LSN) and of their oldest arrival
//! ([`hydrant_sinks::partition::buffer::split_batch`], the code live delivery's buffers use).
//! Live delivery keeps partitions open across batches, so its objects may group records of
//! several of replay's batches; replay flushes every partition at its batch's end. Records without
//! a partition, or of partitions past 500 active in one batch, go to the error output under the
//! ErrorOutputPrefix.
//!
//! # Durable records only
//!
//! Replay reads the log up to the durable end its daemon published (the WAL's durable mark,
//! written after every sync), never the written but unsynced tail: those records may not
//! survive a power loss. Every record acknowledged under `sync` durability is below the mark.
//!
//! # Speed
//!
//! Replay is meant to go through its log at about the rate the disk reads it (`hydrant bench
//! replay` measures it against reading and copying the segment files). The log is read on a
//! thread of its own, a couple of batches ahead of delivery (compression and writes), so the two
//! overlap; the WAL's reader asks the kernel to read 16 MiB ahead of it and lets the pages it
//! has passed leave the process's memory; each frame's records are copied out once, into a
//! buffer they share, and a dry run copies nothing.
//!
//! # Time bounds
//!
//! `--from-time` / `--to-time` map to LSNs through the frames' arrival times: segments whose
//! footer says every frame arrived before the instant are skipped whole; then frames are read
//! until the first that arrived at or after it. Arrival times are the daemon's clock, so they
//! rise with LSN in practice; the search assumes so.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hydrant_api::destination::default_local_store_dir;
use hydrant_sinks::{
    Batch, BatchIdentity, LocalStore, ObjectSink, ObjectSinkConfig, ObjectStore, Record, S3Config,
    S3Credentials, S3Store, Sink, SinkError,
};
use hydrant_wal::{CheckpointFile, Lsn, StdStorage, WalView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::progress;

/// Everything `hydrant replay` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading the log failed (missing, damaged where it had to be read, an I/O error).
    #[error(transparent)]
    Wal(#[from] hydrant_wal::Error),
    /// The destination refused a batch (after the retries, for retryable errors), or could not
    /// be set up.
    #[error("destination: {0}")]
    Sink(#[from] SinkError),
    /// A file operation of replay itself failed.
    #[error(transparent)]
    Io(#[from] hydrant_wal::IoError),
    /// An argument is outside what replay accepts.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No destination flag, and the stream has no definition file to take its own from.
    #[error(
        "no destination: give --to-dir DIR or --to-s3-bucket BUCKET (the stream's own \
         destination is read from {}, which does not exist)",
        .0.display()
    )]
    NoDestination(PathBuf),
    /// The stream's definition file is not what replay expects.
    #[error("stream definition {}: {reason}", path.display())]
    StreamDefinition {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint file holds something replay did not write.
    #[error("replay checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The range starts before the log does: retention removed those records.
    #[error(
        "LSN {requested} is no longer in the log (retention removed it); the log starts at LSN \
         {first}"
    )]
    Retained {
        /// The LSN asked for.
        requested: u64,
        /// The first LSN the log holds.
        first: u64,
    },
    /// Writing the summary failed.
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
    /// Encoding the summary as JSON failed.
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ReplayError {
    hydrant_wal::IoError::of(op, path)
}

/// Arguments of `hydrant replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The daemon's data directory (the stream's WAL is DIR/streams/NAME/wal).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The delivery stream to replay.
    #[arg(long, value_name = "NAME")]
    pub stream: String,
    /// First LSN to replay (default: the first the log retains).
    #[arg(long, value_name = "LSN", conflicts_with = "from_time")]
    pub from_lsn: Option<u64>,
    /// Stop before this LSN (exclusive; default: the end of the log as replay opens it).
    #[arg(long, value_name = "LSN", conflicts_with = "to_time")]
    pub to_lsn: Option<u64>,
    /// Start at the first record that arrived at or after this time (RFC 3339, such as
    /// 2026-08-01T10:00:00Z, or Unix epoch milliseconds).
    #[arg(long, value_name = "TIME")]
    pub from_time: Option<String>,
    /// Stop after the last record that arrived at or before this time (RFC 3339 or epoch ms).
    #[arg(long, value_name = "TIME")]
    pub to_time: Option<String>,

    /// The daemon's local object store, where the stream's own destination is delivered
    /// without --s3-endpoint (hydrantd's --objects-dir; default DATA_DIR/objects).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["to_dir", "to_s3_bucket", "s3_endpoint"])]
    pub objects_dir: Option<PathBuf>,
    /// Deliver into this local directory (objects as files, keys as paths).
    #[arg(long, value_name = "DIR", conflicts_with = "to_s3_bucket")]
    pub to_dir: Option<PathBuf>,
    /// Deliver into this bucket of an S3-compatible service.
    #[arg(long, value_name = "BUCKET")]
    pub to_s3_bucket: Option<String>,
    /// The S3 endpoint URL (default: AWS's own for --s3-region). With the stream's own
    /// destination, deliver to its bucket there instead of the local object store.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The S3 signing region.
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// Path-style addressing (endpoint/bucket/key), which most self-hosted servers need.
    #[arg(long)]
    pub s3_path_style: bool,
    /// S3 access key id (default: AWS_ACCESS_KEY_ID from the environment).
    #[arg(long, value_name = "ID", requires = "s3_secret_key")]
    pub s3_access_key: Option<String>,
    /// S3 secret access key (default: AWS_SECRET_ACCESS_KEY from the environment).
    #[arg(long, value_name = "KEY", requires = "s3_access_key")]
    pub s3_secret_key: Option<String>,

    /// CompressionFormat: UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY or ZSTD (default: the
    /// stream's own for its own destination, GZIP otherwise).
    #[arg(long, value_name = "FORMAT")]
    pub compression: Option<String>,
    /// Prefix template, as Firehose's (default: the stream's own, or YYYY/MM/dd/HH/).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// ErrorOutputPrefix template (default: the stream's own, or Firehose's rule-5 default).
    #[arg(long, value_name = "PREFIX")]
    pub error_output_prefix: Option<String>,
    /// FileExtension (default: the stream's own, or the codec's).
    #[arg(long, value_name = "EXT")]
    pub file_extension: Option<String>,
    /// Stream incarnation in the batch identity (default: the stream's own, or "replay").
    #[arg(long, value_name = "ID")]
    pub incarnation: Option<String>,
    /// Stream version in object keys (default: the stream's own, or 1).
    #[arg(long, value_name = "N")]
    pub stream_version: Option<u64>,

    /// Cut batches at this many MiB of record data (each batch is one object).
    #[arg(long, value_name = "MIB", default_value_t = 5.0)]
    pub batch_mib: f64,
    /// Where the progress checkpoint lives (default DIR/replay/STREAM-DESTINATIONHASH.ckpt).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Ignore the checkpoint: replay the whole range again (writes the same keys).
    #[arg(long)]
    pub restart: bool,
    /// Count records, bytes and batches; write nothing (no objects, no checkpoint).
    #[arg(long)]
    pub dry_run: bool,
    /// Attempts per batch for retryable destination errors.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub max_attempts: u32,
    /// Print the summary as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Testing: stop (successfully, checkpoint written) after this many delivered batches, as
    /// an interrupted run would.
    #[arg(long, value_name = "N", hide = true)]
    pub stop_after_batches: Option<u64>,
}

/// What the replay delivers to, resolved from the flags or the stream's definition.
#[derive(Debug)]
struct Target {
    /// `dir:/abs/path`, `s3:<endpoint>/<bucket>`, `local-bucket:<bucket>`.
    location: String,
    store: StoreSpec,
    config: ObjectSinkConfig,
    /// Prefix and ErrorOutputPrefix as given (the destination id hashes these, not a rendering
    /// of the parsed templates, so it stays stable across versions).
    prefix: Option<String>,
    error_prefix: Option<String>,
    incarnation: String,
    stream_version: u64,
    /// True when taken from the stream's definition file.
    own: bool,
    /// The partitioning pipeline of the stream's own partitioned destination.
    pipeline: Option<hydrant_sinks::transform::Pipeline>,
}

#[derive(Debug)]
enum StoreSpec {
    Dir(PathBuf),
    S3 {
        config: Box<S3Config>,
        bucket: String,
    },
}

impl Target {
    /// `replay-` and 16 hex digits of a digest of everything that decides where and how objects
    /// are written: replay keys never collide with live delivery's (`destinationId-...`), and
    /// two replays to different places keep separate checkpoints.
    fn destination_id(&self) -> String {
        let mut h = Sha256::new();
        for field in [
            self.location.as_str(),
            self.prefix.as_deref().unwrap_or(""),
            self.error_prefix.as_deref().unwrap_or(""),
            self.config.compression.firehose_name(),
            &self.config.extension,
        ] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field.as_bytes());
        }
        let digest = h.finalize();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("replay-{hex}")
    }

    fn open_store(&self) -> Result<Arc<dyn ObjectStore>, ReplayError> {
        Ok(match &self.store {
            StoreSpec::Dir(dir) => Arc::new(LocalStore::new(dir.clone())?),
            StoreSpec::S3 { config, bucket } => Arc::new(S3Store::new(config, bucket)?),
        })
    }
}

/// The part of the stream's definition file (`DIR/streams/<name>/stream.json`) replay reads:
/// Firehose's ExtendedS3DestinationConfiguration plus the stream's incarnation and version.
#[derive(Debug, Deserialize)]
struct StreamDefinition {
    #[serde(rename = "ExtendedS3DestinationConfiguration")]
    extended_s3: Option<hydrant_api::model::ExtendedS3Config>,
    #[serde(default)]
    incarnation: Option<serde_json::Value>,
    #[serde(default)]
    version_id: Option<serde_json::Value>,
}

fn value_to_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn s3_config(args: &ReplayArgs) -> S3Config {
    S3Config {
        endpoint: args.s3_endpoint.clone(),
        region: args.s3_region.clone(),
        force_path_style: args.s3_path_style,
        credentials: match (&args.s3_access_key, &args.s3_secret_key) {
            (Some(id), Some(secret)) => S3Credentials::Static {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: None,
            },
            _ => S3Credentials::Environment,
        },
        ..S3Config::default()
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
}

fn resolve_target(args: &ReplayArgs) -> Result<Target, ReplayError> {
    let definition_path = args
        .data_dir
        .join("streams")
        .join(&args.stream)
        .join("stream.json");
    let explicit = args.to_dir.is_some() || args.to_s3_bucket.is_some();
    let definition = if explicit {
        None
    } else {
        let text = match std::fs::read_to_string(&definition_path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ReplayError::NoDestination(definition_path))
            }
            Err(e) => return Err(io_err("read", &definition_path)(e)),
        };
        let bad = |reason: String| ReplayError::StreamDefinition {
            path: definition_path.clone(),
            reason,
        };
        let def: StreamDefinition = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let s3 = def.extended_s3.ok_or_else(|| {
            bad(
                "no ExtendedS3DestinationConfiguration: replay delivers to S3-style destinations \
                 only; give --to-dir or --to-s3-bucket"
                    .into(),
            )
        })?;
        Some((def.incarnation, def.version_id, s3))
    };
    let own = definition.is_some();
    let (own_inc, own_version, own_s3) = match definition {
        Some((i, v, s3)) => (i, v, Some(s3)),
        None => (None, None, None),
    };
    let pick = |flag: &Option<String>, own: Option<&Option<String>>| -> Option<String> {
        flag.clone().or_else(|| own.and_then(Clone::clone))
    };
    let prefix = pick(&args.prefix, own_s3.as_ref().map(|s| &s.prefix));
    let error_prefix = pick(
        &args.error_output_prefix,
        own_s3.as_ref().map(|s| &s.error_output_prefix),
    );
    let extension = pick(
        &args.file_extension,
        own_s3.as_ref().map(|s| &s.file_extension),
    );
    let compression = match (&args.compression, &own_s3) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(s3)) => s3.compression_format.clone(),
        (None, None) => Some("GZIP".to_string()),
    };
    let partitioned = own_s3
        .as_ref()
        .filter(|s| hydrant_api::partitioning::enabled(s));
    let mut pipeline = None;
    let config = match partitioned {
        None => ObjectSinkConfig::from_firehose(
            prefix.as_deref(),
            error_prefix.as_deref(),
            compression.as_deref(),
            extension.as_deref(),
        )?,
        Some(s3) => {
            let processing = s3.processing_configuration.clone().unwrap_or_default();
            let refused = |e: hydrant_sinks::transform::TransformConfigError| {
                ReplayError::InvalidArgument(format!(
                    "the stream partitions dynamically and its ProcessingConfiguration cannot \
                     run in replay: {e}"
                ))
            };
            let produced =
                hydrant_sinks::transform::Pipeline::keys_produced(&processing).map_err(refused)?;
            pipeline = hydrant_sinks::transform::Pipeline::from_firehose(
                &processing,
                &hydrant_sinks::transform::LambdaSettings::default(),
            )
            .map_err(refused)?
            .map(|p| p.with_partitioning(true));
            ObjectSinkConfig::partitioned(
                prefix.as_deref(),
                error_prefix.as_deref(),
                compression.as_deref(),
                extension.as_deref(),
                &produced,
                hydrant_sinks::partition::Limits::default(),
            )?
        }
    }
    // The stream's own CustomTimeZone, so replayed keys are named as live delivery names them.
    .with_time_zone(own_s3.as_ref().and_then(|s| s.custom_time_zone.as_deref()))?;
    let (location, store) = if let Some(dir) = &args.to_dir {
        let dir = absolute(dir);
        (format!("dir:{}", dir.display()), StoreSpec::Dir(dir))
    } else if let Some(bucket) = &args.to_s3_bucket {
        (
            format!(
                "s3:{}/{bucket}",
                args.s3_endpoint.as_deref().unwrap_or("aws")
            ),
            StoreSpec::S3 {
                config: Box::new(s3_config(args)),
                bucket: bucket.clone(),
            },
        )
    } else {
        let arn = own_s3
            .as_ref()
            .and_then(|s| s.bucket_arn.as_deref())
            .ok_or_else(|| ReplayError::StreamDefinition {
                path: definition_path.clone(),
                reason: "ExtendedS3DestinationConfiguration has no BucketARN".into(),
            })?;
        let bucket = hydrant_sinks::keys::bucket_from_arn(arn)
            .map_err(SinkError::from)?
            .to_string();
        match &args.s3_endpoint {
            Some(endpoint) => (
                format!("s3:{endpoint}/{bucket}"),
                StoreSpec::S3 {
                    config: Box::new(s3_config(args)),
                    bucket,
                },
            ),
            // Without an S3 endpoint the daemon writes S3 destinations to its local object
            // store, <objects dir>/<bucket>; so does replay.
            None => {
                // Another root is another place: its own destination id and checkpoint.
                let (root, location) = match &args.objects_dir {
                    Some(d) => {
                        let root = absolute(d);
                        let location = format!("local-bucket:{}:{bucket}", root.display());
                        (root, location)
                    }
                    None => (
                        default_local_store_dir(&absolute(&args.data_dir)),
                        format!("local-bucket:{bucket}"),
                    ),
                };
                (location, StoreSpec::Dir(root.join(&bucket)))
            }
        }
    };
    let incarnation = args
        .incarnation
        .clone()
        .or_else(|| own_inc.as_ref().map(value_to_string))
        .unwrap_or_else(|| "replay".to_string());
    let stream_version = match (args.stream_version, &own_version) {
        (Some(v), _) => v,
        (None, Some(v)) => {
            value_to_string(v)
                .parse()
                .map_err(|_| ReplayError::StreamDefinition {
                    path: definition_path.clone(),
                    reason: format!("version_id {v} is not a number"),
                })?
        }
        (None, None) => 1,
    };
    Ok(Target {
        location,
        store,
        config,
        prefix,
        error_prefix,
        incarnation,
        stream_version,
        own,
        pipeline,
    })
}

/// Parses `--from-time` / `--to-time`: Unix epoch milliseconds, or RFC 3339.
///
/// # Errors
/// [`ReplayError::InvalidArgument`] for anything else, or a time before 1970.
pub fn parse_time_ms(s: &str) -> Result<u64, ReplayError> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| ReplayError::InvalidArgument(format!("time {s:?} is out of range")));
    }
    let t: jiff::Timestamp = s.parse().map_err(|e| {
        ReplayError::InvalidArgument(format!(
            "time {s:?} is neither RFC 3339 nor epoch milliseconds: {e}"
        ))
    })?;
    u64::try_from(t.as_millisecond())
        .map_err(|_| ReplayError::InvalidArgument(format!("time {s:?} is before 1970")))
}

/// The LSN of the first record that arrived at or after `t_ms` (the log's end when none did).
///
/// # Errors
/// The WAL's read errors.
pub fn first_lsn_arrived_at_or_after(view: &WalView, t_ms: u64) -> Result<u64, ReplayError> {
    for seg in view.segments() {
        if seg.frame_count == 0 || seg.last_arrival_ms < t_ms {
            continue; // every frame of this segment arrived earlier: skip it unread
        }
        if seg.first_arrival_ms >= t_ms {
            return Ok(seg.base_lsn.get());
        }
        let mut reader = view.reader(seg.base_lsn)?;
        while let Some(frame) = reader.next_frame()? {
            if frame.first_lsn() >= seg.end_lsn {
                break;
            }
            if frame.arrival_ms() >= t_ms {
                return Ok(frame.first_lsn().get());
            }
        }
    }
    Ok(view.next_lsn().get())
}

/// The checkpoint's payload: where to resume, and for which destination.
#[derive(Debug, Serialize, Deserialize)]
struct CheckpointState {
    destination_id: String,
    next_lsn: u64,
}

/// What a replay did (or, with `--dry-run`, would do).
#[derive(Debug, Serialize)]
pub struct ReplaySummary {
    /// The stream.
    pub stream: String,
    /// The WAL directory read.
    pub wal_dir: PathBuf,
    /// Where objects went (`dir:...`, `s3:...`, `local-bucket:...`).
    pub destination: String,
    /// True when the destination is the stream's own (from its definition file).
    pub own_destination: bool,
    /// The destination id in every batch identity (`replay-...`).
    pub destination_id: String,
    /// The codec.
    pub compression: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// The range asked for: first LSN.
    pub range_start_lsn: u64,
    /// The range asked for: one past the last LSN.
    pub range_end_lsn: u64,
    /// Where this run started (differs from `range_start_lsn` when resuming).
    pub start_lsn: u64,
    /// True when this run resumed from a checkpoint.
    pub resumed: bool,
    /// One past the last LSN this run delivered (or counted).
    pub next_lsn: u64,
    /// Records delivered (or counted).
    pub records: u64,
    /// Record bytes delivered (or counted), before compression.
    pub bytes: u64,
    /// Bytes written after compression (0 in a dry run).
    pub wire_bytes: u64,
    /// Batches, i.e. objects.
    pub batches: u64,
    /// The range is done (false when stopped early).
    pub complete: bool,
    /// The checkpoint file (none in a dry run without one).
    pub checkpoint: Option<PathBuf>,
    /// Seconds taken.
    pub seconds: f64,
}

/// Runs `hydrant replay` and prints its summary.
///
/// # Errors
/// A [`ReplayError`].
pub fn run(args: &ReplayArgs, out: &mut dyn Write) -> Result<(), ReplayError> {
    let summary = replay(args)?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
        return Ok(());
    }
    let verb = if summary.dry_run {
        "dry run: would replay"
    } else {
        "replayed"
    };
    writeln!(
        out,
        "{verb} {} records ({} bytes) in {} batches, LSN {}..{} of stream {} to {} ({}, {}){}",
        summary.records,
        summary.bytes,
        summary.batches,
        summary.start_lsn,
        summary.next_lsn,
        summary.stream,
        summary.destination,
        summary.compression,
        summary.destination_id,
        if summary.resumed {
            " (resumed from checkpoint)"
        } else {
            ""
        }
    )?;
    if summary.dry_run {
        writeln!(out, "dry run: nothing written")?;
    } else {
        writeln!(
            out,
            "{} bytes written in {:.2} s; range {}..{} {}",
            summary.wire_bytes,
            summary.seconds,
            summary.range_start_lsn,
            summary.range_end_lsn,
            if summary.complete {
                "complete"
            } else {
                "NOT complete: run again to resume"
            }
        )?;
    }
    if let Some(cp) = &summary.checkpoint {
        writeln!(out, "checkpoint {}", cp.display())?;
    }
    Ok(())
}

/// Replays as `args` say.
///
/// # Errors
/// A [`ReplayError`]; batches delivered before the error stay delivered and checkpointed.
pub fn replay(args: &ReplayArgs) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    if !(args.batch_mib.is_finite() && args.batch_mib > 0.0 && args.batch_mib <= 1024.0) {
        return Err(ReplayError::InvalidArgument(format!(
            "--batch-mib must be in (0, 1024], got {}",
            args.batch_mib
        )));
    }
    if args.max_attempts == 0 {
        return Err(ReplayError::InvalidArgument(
            "--max-attempts must be at least 1".into(),
        ));
    }
    let batch_limit = (args.batch_mib * 1024.0 * 1024.0) as u64;
    let target = resolve_target(args)?;
    let destination_id = target.destination_id();
    let wal_dir = args.data_dir.join("streams").join(&args.stream).join("wal");
    if !wal_dir.is_dir() {
        return Err(ReplayError::Io(hydrant_wal::IoError {
            op: "open WAL directory",
            path: wal_dir,
            source: io::Error::from(io::ErrorKind::NotFound),
        }));
    }
    // Only to the durable end: a record written but not yet synced (the live tail under
    // `interval` or `none` durability, or a group commit in progress) can still be lost to a
    // power loss and its LSN given to another record; delivering it would deliver a phantom.
    let view = WalView::open_durable(&wal_dir)?;
    let first = view.first_lsn().get();
    let end_of_log = view.next_lsn().get();

    let range_start = match (args.from_lsn, &args.from_time) {
        (Some(lsn), _) => {
            if lsn < first {
                return Err(ReplayError::Retained {
                    requested: lsn,
                    first,
                });
            }
            lsn.min(end_of_log)
        }
        (None, Some(t)) => first_lsn_arrived_at_or_after(&view, parse_time_ms(t)?)?,
        (None, None) => first,
    };
    let range_end = match (args.to_lsn, &args.to_time) {
        (Some(lsn), _) => lsn.min(end_of_log),
        (None, Some(t)) => {
            first_lsn_arrived_at_or_after(&view, parse_time_ms(t)?.saturating_add(1))?
        }
        (None, None) => end_of_log,
    }
    .max(range_start);

    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| args.data_dir.join("replay"));
    let checkpoint_path = state_dir.join(format!("{}-{destination_id}.ckpt", args.stream));
    // A dry run reads an existing checkpoint (to say where a real run would resume) but creates
    // none.
    let mut checkpoint = if args.dry_run && !checkpoint_path.exists() {
        None
    } else {
        let (file, payload) =
            CheckpointFile::open(StdStorage::shared().as_ref(), &checkpoint_path)?;
        Some((file, payload))
    };
    let mut start = range_start;
    let mut resumed = false;
    if let Some((_, Some(payload))) = &checkpoint {
        let state: CheckpointState =
            serde_json::from_slice(payload).map_err(|e| ReplayError::Checkpoint {
                path: checkpoint_path.clone(),
                reason: e.to_string(),
            })?;
        if state.destination_id != destination_id {
            return Err(ReplayError::Checkpoint {
                path: checkpoint_path.clone(),
                reason: format!(
                    "written for destination {}, not {destination_id}",
                    state.destination_id
                ),
            });
        }
        if !args.restart && state.next_lsn > range_start {
            if state.next_lsn < first {
                return Err(ReplayError::Retained {
                    requested: state.next_lsn,
                    first,
                });
            }
            start = state.next_lsn.min(range_end);
            resumed = true;
        }
    }
    let mut file = checkpoint.take().map(|(f, _)| f);

    let sink = if args.dry_run {
        None
    } else {
        Some(ObjectSink::new(target.open_store()?, target.config.clone()))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io_err("start the async runtime for", &wal_dir))?;

    let bar = progress::records_bar(range_end - start, args.quiet);
    let mut summary = ReplaySummary {
        stream: args.stream.clone(),
        wal_dir: wal_dir.clone(),
        destination: target.location.clone(),
        own_destination: target.own,
        destination_id: destination_id.clone(),
        compression: target.config.compression.firehose_name().to_string(),
        dry_run: args.dry_run,
        range_start_lsn: range_start,
        range_end_lsn: range_end,
        start_lsn: start,
        resumed,
        next_lsn: start,
        records: 0,
        bytes: 0,
        wire_bytes: 0,
        batches: 0,
        complete: true,
        checkpoint: file.as_ref().map(|_| checkpoint_path.clone()),
        seconds: 0.0,
    };

    {
        // One batch out: deliver (with retries), then checkpoint the next LSN.
        let mut flush = |cut: Cut, summary: &mut ReplaySummary| -> Result<bool, ReplayError> {
            let Some(last) = cut.last_lsn else {
                return Ok(true);
            };
            if let Some(sink) = &sink {
                let records = cut.records;
                let batch = Batch {
                    identity: BatchIdentity {
                        stream: args.stream.clone(),
                        incarnation: target.incarnation.clone(),
                        destination_id: destination_id.clone(),
                        first_lsn: records[0].lsn,
                        last_lsn: last,
                    },
                    stream_version: target.stream_version,
                    contiguous: None,
                    partition_keys: Vec::new(),
                    oldest_arrival_ms: records.iter().map(|r| r.arrival_ms).min().unwrap_or(0),
                    records,
                };
                let delivered = runtime.block_on(async {
                    match &target.pipeline {
                        None => deliver_with_retries(sink, &batch, args.max_attempts)
                            .await
                            .map(|d| d.wire_bytes),
                        Some(p) => {
                            let arn = format!("arn:aws:firehose:::deliverystream/{}", args.stream);
                            let processed = p.process(batch.clone(), &arn).await?;
                            let delivered =
                                deliver_with_retries(sink, &processed.batch, args.max_attempts)
                                    .await?;
                            let mut wire = delivered.wire_bytes;
                            // Records without a partition (and those the sink could not place)
                            // go to the error output, as live delivery files them.
                            let mut failed = processed.failed;
                            failed.extend(delivered.failed);
                            for d in sink
                                .put_error_output(
                                    &batch.identity,
                                    batch.stream_version,
                                    batch.oldest_arrival_ms,
                                    &failed,
                                )
                                .await?
                            {
                                wire += d.wire_bytes;
                            }
                            Ok(wire)
                        }
                    }
                })?;
                summary.wire_bytes += delivered;
                if let Some(file) = file.as_mut() {
                    let state = CheckpointState {
                        destination_id: destination_id.clone(),
                        next_lsn: last + 1,
                    };
                    file.write(&serde_json::to_vec(&state)?)?;
                }
            }
            summary.records += cut.count;
            summary.bytes += cut.bytes;
            summary.batches += 1;
            summary.next_lsn = last + 1;
            bar.inc(cut.count);
            bar.set_message(progress::bytes_message(
                summary.bytes,
                started.elapsed().as_secs_f64(),
            ));
            Ok(args.stop_after_batches.is_none_or(|n| summary.batches < n))
        };

        if start < range_end {
            let mut reader = view.reader(Lsn(start))?;
            let keep_records = sink.is_some();
            // The log is read on a thread of its own, a few batches ahead of delivery (which
            // compresses and writes): reading and writing overlap, as `cp` overlaps them
            // through the page cache.
            std::thread::scope(|scope| -> Result<(), ReplayError> {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Cut>(CUTS_AHEAD);
                let cutter = scope.spawn(move || {
                    cut_batches(&mut reader, range_end, batch_limit, keep_records, |cut| {
                        tx.send(cut).is_ok()
                    })
                });
                let mut result = Ok(());
                for cut in rx.iter() {
                    match flush(cut, &mut summary) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                // Dropping the receiver stops the cutter at its next batch.
                drop(rx);
                let cut = cutter
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                result?;
                cut
            })?;
        }
    }
    bar.finish_and_clear();
    summary.complete = summary.next_lsn >= range_end;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Batches read ahead of delivery.
const CUTS_AHEAD: usize = 2;

/// One batch as cut from the log: its records (none in a dry run, which only counts), how many,
/// their bytes and the last LSN.
#[derive(Debug, Default)]
struct Cut {
    records: Vec<Record>,
    count: u64,
    bytes: u64,
    last_lsn: Option<u64>,
}

/// Reads the log from `reader` up to `range_end` and cuts it into batches (see "Exactly once,
/// again"): a batch takes records in LSN order until the next would take it past `limit` bytes
/// of data. Hands each batch to `out`, which returns false to stop. Each frame's records are
/// copied out of the log once, into one buffer they share (not one allocation per record), and
/// not at all when `keep_records` is false (a dry run).
fn cut_batches(
    reader: &mut hydrant_wal::Reader,
    range_end: u64,
    limit: u64,
    keep_records: bool,
    mut out: impl FnMut(Cut) -> bool,
) -> Result<(), ReplayError> {
    let mut cut = Cut::default();
    while let Some(frame) = reader.next_frame()? {
        let arrival_ms = frame.arrival_ms();
        // The frame's records lie in one area of the log: copied at once, sliced per record.
        let area = frame.record_area();
        let shared = keep_records.then(|| (area.as_ptr() as usize, Bytes::copy_from_slice(area)));
        let mut last_in_frame = false;
        for (lsn, data) in frame.records() {
            if lsn.get() >= range_end {
                last_in_frame = true;
                break;
            }
            let len = data.len() as u64;
            if cut.count > 0 && cut.bytes + len > limit && !out(std::mem::take(&mut cut)) {
                return Ok(());
            }
            if let Some((base, buf)) = &shared {
                let at = data.as_ptr() as usize - base;
                cut.records.push(Record {
                    lsn: lsn.get(),
                    sub: 0,
                    arrival_ms,
                    data: buf.slice(at..at + data.len()),
                });
            }
            cut.count += 1;
            cut.bytes += len;
            cut.last_lsn = Some(lsn.get());
        }
        if last_in_frame {
            break;
        }
    }
    if cut.count > 0 {
        out(cut);
    }
    Ok(())
}

/// Delivers `batch`, retrying retryable errors with exponential backoff; returns the bytes
/// written.
async fn deliver_with_retries(
    sink: &ObjectSink,
    batch: &Batch,
    max_attempts: u32,
) -> Result<hydrant_sinks::Delivered, ReplayError> {
    let mut attempt = 1;
    loop {
        match sink.deliver(batch).await {
            Ok(d) => return Ok(d),
            Err(e) if e.is_retryable() && attempt < max_attempts => {
                let wait = Duration::from_millis(200u64 << attempt.min(6));
                eprintln!(
                    "replay: batch {} attempt {attempt} failed ({e}); retrying in {} ms",
                    batch.identity,
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_epoch_ms() {
        assert_eq!(parse_time_ms("1700000000123").ok(), Some(1_700_000_000_123));
        assert_eq!(parse_time_ms("1970-01-01T00:00:01Z").ok(), Some(1000));
        assert_eq!(
            parse_time_ms("1970-01-01T01:00:01.5+01:00").ok(),
            Some(1500)
        );
        assert!(parse_time_ms("yesterday").is_err());
        assert!(parse_time_ms("1969-12-31T23:59:59Z").is_err());
    }
}
