//! The delivery worker: a thread per (stream, destination) that batches, records intents,
//! delivers, retries and advances its cursor (see the module docs of [`crate::delivery`]).

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hydrant_sinks::{Batch, BatchIdentity, BoxFuture, FailedRecord, Record, Sink, SinkError};
use hydrant_wal::{create_dir_all_durable, CheckpointFile, Lsn, StdStorage, Wal};

use super::state::{DeliveryState, Intent};

mod partitioned;

/// Size of the shared buffers a batch's records are copied into from the WAL.
const LOAD_CHUNK_BYTES: usize = 4 << 20;
/// Alignment of a batch's one buffer (a page: what `O_DIRECT` asks of buffers).
const ALIGN: usize = 4096;
/// Batches up to this size (record data) are read into one buffer when their size is known:
/// the largest buffering hint, 128 MiB, and then some.
const CONTIGUOUS_MAX: u64 = 256 << 20;

/// Why a worker could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The WAL failed (a read error, damage). The worker stops; the stream's records stay in the
    /// log and delivery resumes after the operator repairs it and restarts.
    #[error("stream {stream}: WAL: {source}")]
    Wal {
        /// The stream.
        stream: String,
        /// The WAL's error.
        #[source]
        source: hydrant_wal::Error,
    },
    /// The checkpoint's directory could not be created (or made durable).
    #[error("stream {stream}: checkpoint directory {}: {source}", path.display())]
    Directory {
        /// The stream.
        stream: String,
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint holds a state this build cannot read.
    #[error("stream {stream}: checkpoint {}: not a delivery state this build reads", path.display())]
    BadCheckpoint {
        /// The stream.
        stream: String,
        /// The checkpoint file.
        path: PathBuf,
    },
    /// The cursor points below the log's first LSN: records this destination never delivered were
    /// deleted (only possible if the checkpoint was lost or replaced by hand).
    #[error("stream {stream}: cursor {cursor} is below the log's first LSN {first}")]
    CursorBehindLog {
        /// The stream.
        stream: String,
        /// The cursor.
        cursor: Lsn,
        /// The log's first LSN.
        first: Lsn,
    },
    /// The worker thread could not be started.
    #[error("stream {stream}: cannot start the delivery thread: {source}")]
    Spawn {
        /// The stream.
        stream: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Where failed records go: those of a batch whose retry window is spent, those a destination
/// refused for good, and those a transform failed.
pub trait ErrorOutput: Send + Sync + fmt::Debug {
    /// Writes `records` (Firehose's failed-record JSON) for `batch`, one object per error-output
    /// type. Idempotent per batch identity, like a sink.
    ///
    /// # Errors
    /// A [`SinkError`]: the worker retries the error output too (nothing is dropped).
    fn put_failed<'a>(
        &'a self,
        batch: &'a Batch,
        records: &'a [FailedRecord],
    ) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// A transform of a batch's records (ProcessingConfiguration), run before the sink.
pub trait Transform: Send + Sync + fmt::Debug {
    /// Transforms `batch`: the result keeps the batch's identity; its records are the
    /// transformed ones, and the records the transform failed come back for the error output.
    ///
    /// # Errors
    /// A [`SinkError`] when the transform could not run at all (the worker retries it).
    fn process<'a>(
        &'a self,
        batch: Batch,
    ) -> BoxFuture<'a, Result<(Batch, Vec<FailedRecord>), SinkError>>;
}

/// Backoff between attempts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// How long a batch is retried, from its first attempt, before it goes to the error output.
    pub window: Duration,
    /// The first backoff.
    pub backoff_initial: Duration,
    /// The largest backoff.
    pub backoff_max: Duration,
    /// Relative jitter of each backoff (0.2: ±20 %; Firehose's HTTP endpoint policy uses 0.15).
    pub jitter: f64,
    /// Whether a non-retryable error ends the retries at once (the batch goes to the error
    /// output). Firehose retries S3, Redshift and OpenSearch for their whole window whatever the
    /// error (an operator may fix a bucket, a table or credentials meanwhile); an HTTP endpoint's
    /// 413 is final at once.
    pub permanent_is_final: bool,
}

impl RetryPolicy {
    /// Firehose's policy for S3: retried for up to 24 hours.
    #[must_use]
    pub fn s3() -> RetryPolicy {
        RetryPolicy {
            window: Duration::from_secs(24 * 3600),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            jitter: 0.2,
            permanent_is_final: false,
        }
    }

    /// The backoff before attempt `attempt + 1`: initial × 2^(attempt-1), capped, with the
    /// policy's relative jitter.
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff_initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let base = exp.min(self.backoff_max);
        let j = self.jitter.clamp(0.0, 0.9);
        let factor = 1.0 - j + 2.0 * j * rand::random::<f64>();
        base.mul_f64(factor)
    }
}

/// How far back delivered records stay in the WAL for `hydrant replay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retain {
    /// Delivered segments younger than this (by their newest record's arrival) are kept.
    pub time: Duration,
    /// At most this many bytes of delivered segments are kept (oldest deleted first).
    pub bytes: u64,
}

/// Everything a worker needs to know about its destination.
#[derive(Clone, Debug)]
pub struct DeliverySpec {
    /// The stream's name.
    pub stream: String,
    /// The stream's incarnation, as it appears in batch identities.
    pub incarnation: String,
    /// The destination id (`destinationId-000000000001`).
    pub destination_id: String,
    /// The stream's configuration version (`VersionId`).
    pub stream_version: u64,
    /// `BufferingHints.SizeInMBs`, in bytes of record data before compression.
    pub buffer_bytes: u64,
    /// `BufferingHints.IntervalInSeconds`.
    pub buffer_interval: Duration,
    /// Retries and their window.
    pub retry: RetryPolicy,
    /// Where batches go.
    pub sink: Arc<dyn Sink>,
    /// Where batches go once their retry window is spent.
    pub error_output: Option<Arc<dyn ErrorOutput>>,
    /// The transform run on each batch before the sink (ProcessingConfiguration).
    pub transform: Option<Arc<dyn Transform>>,
    /// A copy of every source record (before any transform) to S3: `S3BackupMode` Enabled /
    /// AllData / AllDocuments. Delivered before the destination; its batch identities carry the
    /// destination id with `-backup` appended, so its objects never collide with the error
    /// output's or the intermediate objects'.
    pub backup: Option<Arc<dyn Sink>>,
    /// The destination's checkpoint file.
    pub checkpoint_path: PathBuf,
    /// Replay window of delivered records.
    pub retain: Retain,
    /// The counters this worker feeds (kept by the engine across restarts of the worker, so the
    /// exported counters stay monotonic).
    pub stats: Arc<DeliveryStats>,
    /// Dynamic partitioning: how partitions buffer across rounds (`None`: the destination does
    /// not partition). The sink is then an object sink with the same partitioned Prefix.
    pub partitioning: Option<PartitioningSpec>,
    /// The span the worker thread runs in: the destination's `CloudWatchLoggingOptions` as
    /// fields (`log_group`, `log_stream`, ...) on every event of its delivery, errors included;
    /// [`tracing::Span::none`] when logging is not enabled.
    pub log_span: tracing::Span,
}

/// The partition buffers' settings of a destination with dynamic partitioning.
#[derive(Clone, Debug)]
pub struct PartitioningSpec {
    /// The partitioned Prefix (the sink's): names the partitions.
    pub prefixes: hydrant_sinks::S3Prefixes,
    /// Size, interval, active limit and memory bound of the buffers.
    pub rules: hydrant_sinks::partition::BufferRules,
    /// The counters the buffers feed (`hydrant_partition_count`,
    /// `hydrant_partition_count_exceeded_total`).
    pub stats: Arc<hydrant_sinks::object::PartitionStats>,
}

/// A worker's counters, read by the metrics endpoint. Names follow Firehose's CloudWatch metrics
/// (`DeliveryToS3.Records`, `.Bytes`, `.Success`, `.DataFreshness`).
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Records delivered.
    pub records: AtomicU64,
    /// Bytes of record data delivered (before compression).
    pub bytes: AtomicU64,
    /// Batches (objects) delivered.
    pub batches: AtomicU64,
    /// Successful attempts.
    pub attempts_ok: AtomicU64,
    /// Failed attempts (each followed by a retry or by the error output): Firehose's retries.
    pub attempts_failed: AtomicU64,
    /// Batches written to the error output.
    pub error_output_batches: AtomicU64,
    /// Records written to the error output.
    pub error_output_records: AtomicU64,
    /// The cursor: every LSN below it is delivered.
    pub cursor: AtomicU64,
    /// Arrival time (ms) of the oldest record not yet delivered, 0 when caught up.
    pub oldest_undelivered_ms: AtomicU64,
    /// Whether the worker delivers, or why it stopped: one of the `STATE_*` constants
    /// (exported as `hydrant_destination_state`).
    pub state: AtomicU64,
    /// The destination's buffering interval in ms (its `BufferingHints.IntervalInSeconds`),
    /// exported so that an alert can compare data freshness with it.
    pub buffer_interval_ms: AtomicU64,
    /// Dynamic partitioning's counters (the object sink's and the transform's), when the
    /// destination partitions: read at scrape time.
    pub partitioning: std::sync::Mutex<Option<PartitioningStats>>,
    /// Sum over the batches cut of their buffering time (the oldest record's age when the batch
    /// was cut), ms; with `batches_cut`, the console's "buffering time".
    pub buffering_ms_total: AtomicU64,
    /// Batches cut (intents recorded by this process).
    pub batches_cut: AtomicU64,
    /// The latest failures, for the console.
    pub recent: std::sync::Mutex<super::recent::RecentFailures>,
}

impl DeliveryStats {
    /// Counts a successful attempt that delivered one batch (or one partition's object).
    fn count_delivered(&self, delivered: &hydrant_sinks::Delivered) {
        self.attempts_ok.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(delivered.records, Ordering::Relaxed);
        self.bytes
            .fetch_add(delivered.data_bytes, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, super::recent::RecentFailures> {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The counters of a partitioned destination: its object sink's, and its pipeline's (jq).
pub type PartitioningStats = (
    Arc<hydrant_sinks::object::PartitionStats>,
    Option<Arc<hydrant_sinks::transform::PipelineStats>>,
);

/// [`DeliveryStats::state`]: the worker is delivering (or waiting for records or a retry).
pub const STATE_DELIVERING: u64 = 0;
/// [`DeliveryStats::state`]: stopped because the WAL or the checkpoint failed or is damaged.
pub const STATE_STOPPED_LOG: u64 = 1;
/// [`DeliveryStats::state`]: stopped because the destination holds records past the log's
/// durable end (another log, or a lost one).
pub const STATE_STOPPED_DESTINATION_AHEAD: u64 = 2;
/// [`DeliveryStats::state`]: stopped because the destination lost records it had confirmed
/// (a restored backup, a failover that lost commits) and the WAL no longer holds them.
pub const STATE_STOPPED_DESTINATION_BEHIND: u64 = 3;

/// [`DeliveryStats::state`]: the daemon is ready (intake open) and the worker is being started
/// (its checkpoint read, its sinks set up); delivery follows within moments.
pub const STATE_STARTING: u64 = 4;
/// [`DeliveryStats::state`]: the worker could not be started (its sinks could not be set up):
/// records stay in the WAL until the next restart or UpdateDestination.
pub const STATE_NOT_STARTED: u64 = 5;

/// A running delivery worker. Dropping it does not stop it: call [`DeliveryWorker::stop`].
#[derive(Debug)]
pub struct DeliveryWorker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<DeliveryStats>,
}

impl DeliveryWorker {
    /// Opens the destination's checkpoint, recovers its state and starts the worker thread.
    ///
    /// # Errors
    /// [`DeliveryError`] when the checkpoint is unreadable or the cursor lies before the log.
    pub fn spawn(
        wal: Arc<Wal>,
        spec: DeliverySpec,
        runtime: tokio::runtime::Handle,
    ) -> Result<DeliveryWorker, DeliveryError> {
        let stats = spec.stats.clone();
        // Before the thread starts: from then on it records why it stops.
        stats.state.store(STATE_DELIVERING, Ordering::Relaxed);
        let result = Self::start(wal, spec, runtime);
        if result.is_err() {
            stats.state.store(STATE_STOPPED_LOG, Ordering::Relaxed);
        }
        result
    }

    fn start(
        wal: Arc<Wal>,
        spec: DeliverySpec,
        runtime: tokio::runtime::Handle,
    ) -> Result<DeliveryWorker, DeliveryError> {
        let stream = spec.stream.clone();
        if let Some(dir) = spec.checkpoint_path.parent() {
            // Every directory this creates is fsynced with its parent, so the checkpoint's
            // name cannot vanish with a directory a power loss forgets.
            create_dir_all_durable(&StdStorage, dir).map_err(|source| {
                DeliveryError::Directory {
                    stream: stream.clone(),
                    path: dir.to_path_buf(),
                    source,
                }
            })?;
        }
        let (checkpoint, payload) = CheckpointFile::open(&StdStorage, &spec.checkpoint_path)
            .map_err(|source| DeliveryError::Wal {
                stream: stream.clone(),
                source,
            })?;
        let state = match payload {
            Some(p) => DeliveryState::decode(&p).ok_or_else(|| DeliveryError::BadCheckpoint {
                stream: stream.clone(),
                path: spec.checkpoint_path.clone(),
            })?,
            // A new destination starts at the log's first record.
            None => DeliveryState {
                cursor: wal.first_lsn(),
                intent: None,
                held: Vec::new(),
                sink_end: Lsn(0),
                sink_version: 0,
            },
        };
        let mut state = state;
        if spec.partitioning.is_none() && !state.held.is_empty() {
            // Held rounds of a destination that no longer partitions (a checkpoint moved by
            // hand): delivered again from the cursor, at least once.
            state.held.clear();
            state.intent = None;
        }
        if state.cursor < wal.first_lsn() {
            return Err(DeliveryError::CursorBehindLog {
                stream,
                cursor: state.cursor,
                first: wal.first_lsn(),
            });
        }
        let stats = spec.stats.clone();
        stats.cursor.store(state.cursor.0, Ordering::Relaxed);
        stats.oldest_undelivered_ms.store(0, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let mut worker = Worker {
            wal,
            spec,
            runtime,
            checkpoint,
            state,
            stop: stop.clone(),
            stats: stats.clone(),
            last_retain: Instant::now(),
            cut_bytes: None,
            batch_buffers: super::batch_buffer::BatchBuffers::default(),
            buffers: None,
            last_cut_ms: 0,
            ahead: std::collections::VecDeque::new(),
        };
        worker.buffers = worker.spec.partitioning.as_ref().map(|p| {
            hydrant_sinks::partition::PartitionBuffers::new(
                p.rules,
                p.prefixes.clone(),
                Some(p.stats.clone()),
            )
        });
        let thread = std::thread::Builder::new()
            .name(format!("deliver-{stream}"))
            .spawn(move || {
                let span = worker.spec.log_span.clone();
                span.in_scope(|| worker.run());
            })
            .map_err(|source| DeliveryError::Spawn { stream, source })?;
        Ok(DeliveryWorker {
            stop,
            thread: Some(thread),
            stats,
        })
    }

    /// The worker's counters.
    #[must_use]
    pub fn stats(&self) -> &Arc<DeliveryStats> {
        &self.stats
    }

    /// Stops the worker: an attempt in progress finishes (its outcome is checkpointed); a batch
    /// waiting for a retry keeps its intent and is resent on the next start.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    wal: Arc<Wal>,
    spec: DeliverySpec,
    runtime: tokio::runtime::Handle,
    checkpoint: CheckpointFile,
    state: DeliveryState,
    stop: Arc<AtomicBool>,
    stats: Arc<DeliveryStats>,
    /// When retention last ran (it also runs while idle, so the time window is honoured
    /// without new deliveries).
    last_retain: Instant,
    /// Bytes of record data of the batch `next_batch` cut last, `(first, end, bytes)`: lets
    /// `load` read it into one buffer of the right size. Unknown for a batch resent after a
    /// restart, which is then read in chunks.
    cut_bytes: Option<(Lsn, Lsn, u64)>,
    /// The mapping `load` reads a batch of known size into, reused from batch to batch.
    batch_buffers: super::batch_buffer::BatchBuffers,
    /// Dynamic partitioning: the open partitions (`partitioned.rs`). Their records belong to
    /// the held rounds of the checkpoint, which a restart processes again to rebuild them.
    buffers: Option<hydrant_sinks::partition::PartitionBuffers>,
    /// When the last round was cut (ms), to space rounds cut only for due partitions.
    last_cut_ms: u64,
    /// Dynamic partitioning: the next rounds, in order, cut and given to the buffers while the
    /// round before them was written, not yet recorded as the intent (`partitioned.rs`).
    ahead: std::collections::VecDeque<partitioned::Prepared>,
}

/// How often retention runs while the worker has nothing to deliver.
const RETAIN_IDLE_PERIOD: Duration = Duration::from_secs(5);

/// How often a waiting worker looks at its stop flag.
const POLL: Duration = Duration::from_millis(100);

/// While records arrive and the batch is neither full nor due, the worker reads them in steps of
/// this long. A full buffer is noticed this much later at most; a zero buffering interval does
/// not wait at all.
const GATHER: Duration = Duration::from_millis(20);

impl Worker {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn run(&mut self) {
        if !self.reconcile_with_sink() {
            return;
        }
        if self.buffers.is_some() {
            match self.restore_partitions() {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    self.stopped(&e);
                    return;
                }
            }
        }
        loop {
            if self.stopping() {
                return;
            }
            let result = match self.state.intent {
                Some(intent) if self.buffers.is_some() => self.send_round(intent),
                Some(intent) => self.send(intent),
                // A round prepared while the one before it was written: recorded now.
                None => match self.ahead.front().map(|a| a.intent) {
                    Some(intent) => self.record_intent(intent),
                    None => match self.next_batch() {
                        Ok(Some(intent)) => self.record_intent(intent),
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    },
                },
            };
            if let Err(e) = result {
                // The log is damaged or unreadable: stop delivering this stream rather than
                // skip records. Its data stays in the WAL.
                tracing::error!(stream = %self.spec.stream, error = %e, "delivery stopped");
                self.stats.state.store(STATE_STOPPED_LOG, Ordering::Relaxed);
                return;
            }
        }
    }

    /// Asks a sink that commits its position with its data (PostgreSQL) where it stands, and
    /// trusts it over the checkpoint:
    ///
    /// - past the log's durable end: the destination belongs to another log; stop.
    /// - behind the position it confirmed before (under the same stream version): it lost
    ///   commits (a restored backup, a failover). Reload from its position when the WAL still
    ///   holds those records, else stop ([`STATE_STOPPED_DESTINATION_BEHIND`]).
    /// - a pending intent is sent again whatever the destination holds: the sink loads none of
    ///   its records twice, and the resend is what files the batch's failed records (rows a
    ///   `MAXERROR` let the load skip, records a transform failed) under the batch's identity.
    /// - ahead of the cursor with no intent: the cursor moves there.
    ///
    /// Retries until answered; false when stopping or stopped.
    fn reconcile_with_sink(&mut self) -> bool {
        let mut attempt = 0u32;
        let end = loop {
            attempt += 1;
            match self.runtime.block_on(self.spec.sink.committed_end(
                &self.spec.stream,
                &self.spec.incarnation,
                &self.spec.destination_id,
            )) {
                Ok(end) => break end,
                Err(e) => {
                    tracing::warn!(stream = %self.spec.stream, error = %e,
                        "cannot read the destination's committed position; retrying");
                    if !self.sleep(self.spec.retry.backoff(attempt)) {
                        return false;
                    }
                }
            }
        };
        let Some(end) = end.map(Lsn) else {
            return true;
        };
        let durable = self.wal.durable_lsn();
        if end > durable {
            tracing::error!(stream = %self.spec.stream, committed = %end, durable = %durable,
                "the destination holds records past the log's durable end (another log, or a \
                 lost one?): delivery does not start");
            self.stats
                .state
                .store(STATE_STOPPED_DESTINATION_AHEAD, Ordering::Relaxed);
            return false;
        }
        let version = self.version();
        let confirmed = self.state.sink_end;
        if self.state.sink_version != version {
            // Confirmed under another configuration (or by a build that did not record it):
            // the destination may be another database now; its position is the reference.
            let state = DeliveryState {
                sink_end: end.min(self.state.cursor),
                sink_version: version,
                ..self.state.clone()
            };
            if let Err(e) = self.save(state) {
                return self.stopped(&e);
            }
        } else if end < confirmed {
            return self.destination_behind(end, confirmed, version);
        }
        match self.state.intent {
            Some(intent) if end >= intent.end => {
                tracing::info!(stream = %self.spec.stream, batch_first = %intent.first,
                    batch_end = %intent.end, committed = %end,
                    "the destination holds the pending batch: sending it again loads nothing \
                     twice and files its failed records");
            }
            // Pending and not (all) in the destination: sent as after any crash.
            Some(_) => {}
            None if end > self.state.cursor => {
                tracing::info!(stream = %self.spec.stream, from = %self.state.cursor, to = %end,
                    "cursor moved to the destination's committed position");
                if let Err(e) = self.commit(end, true) {
                    return self.stopped(&e);
                }
            }
            None => {}
        }
        true
    }

    /// The destination holds less than it confirmed: records between `end` and `confirmed`
    /// were loaded and lost there. Reloads from `end` when the WAL still holds that record
    /// (every record from there is delivered again: those the destination lost, and those in
    /// between that had gone to the error output); else stops.
    fn destination_behind(&mut self, end: Lsn, confirmed: Lsn, version: u32) -> bool {
        let first = self.wal.first_lsn();
        if end < first {
            tracing::error!(stream = %self.spec.stream, committed = %end,
                confirmed = %confirmed, wal_first = %first,
                "the destination lost records it had committed (restored from a backup? a \
                 failover that lost commits?) and the WAL no longer holds them: delivery to it \
                 stops; reload them from elsewhere, or delete this destination's checkpoint \
                 to deliver from the log's first record");
            self.stats
                .state
                .store(STATE_STOPPED_DESTINATION_BEHIND, Ordering::Relaxed);
            return false;
        }
        tracing::warn!(stream = %self.spec.stream, committed = %end, confirmed = %confirmed,
            cursor = %self.state.cursor,
            "the destination lost records it had committed (restored from a backup? a failover \
             that lost commits?): delivering again from its position, out of the WAL");
        let state = DeliveryState {
            cursor: end,
            intent: None,
            held: Vec::new(),
            sink_end: end,
            sink_version: version,
        };
        if let Err(e) = self.save(state) {
            return self.stopped(&e);
        }
        self.stats.cursor.store(end.0, Ordering::Relaxed);
        self.cut_bytes = None;
        true
    }

    /// Logs why the worker stops on `e` (a checkpoint write) and records it; false.
    fn stopped(&self, e: &DeliveryError) -> bool {
        tracing::error!(stream = %self.spec.stream, error = %e, "delivery stopped");
        self.stats.state.store(STATE_STOPPED_LOG, Ordering::Relaxed);
        false
    }

    /// The stream's version as checkpoints record it.
    fn version(&self) -> u32 {
        u32::try_from(self.spec.stream_version).unwrap_or(0)
    }

    fn wal_err(&self, source: hydrant_wal::Error) -> DeliveryError {
        DeliveryError::Wal {
            stream: self.spec.stream.clone(),
            source,
        }
    }

    fn save(&mut self, state: DeliveryState) -> Result<(), DeliveryError> {
        debug_assert!(state.sink_end <= state.cursor, "sink_end past the cursor");
        debug_assert!(state.intent.is_none_or(|i| i.first == state.read_from()
            && (i.end > i.first || (self.buffers.is_some() && i.end == i.first))));
        debug_assert!(self.buffers.is_some() || state.held.is_empty());
        self.checkpoint
            .write(&state.encode())
            .map_err(|e| self.wal_err(e))?;
        self.state = state;
        Ok(())
    }

    fn record_intent(&mut self, intent: Intent) -> Result<(), DeliveryError> {
        self.save(DeliveryState {
            intent: Some(intent),
            ..self.state.clone()
        })?;
        crash_point("delivery::after_intent");
        Ok(())
    }

    /// Waits for durable records past the cursor and cuts the next batch by size and interval.
    /// `None` when stopping.
    fn next_batch(&mut self) -> Result<Option<Intent>, DeliveryError> {
        self.cut_round(self.state.read_from(), true)
    }

    /// Cuts the next batch from `cursor` (see [`Self::next_batch`]). Without `wait`, only a batch
    /// that is due already (full, or its interval passed) is cut, and `None` comes at once
    /// otherwise (dynamic partitioning's next round, prepared ahead).
    fn cut_round(&mut self, cursor: Lsn, wait: bool) -> Result<Option<Intent>, DeliveryError> {
        // With dynamic partitioning rounds follow the held ones, and a round is also cut (empty
        // when no record came) when an open partition is due.
        let partition_due = self.partition_due_ms();
        if !wait && self.wal.durable_lsn() <= cursor {
            return Ok(None);
        }
        while self.wal.durable_lsn() <= cursor {
            if self.buffers.as_ref().is_none_or(|b| b.is_empty()) {
                self.stats.oldest_undelivered_ms.store(0, Ordering::Relaxed);
            }
            if self.stopping() {
                return Ok(None);
            }
            if partition_due.is_some_and(|due| hydrant_wal::now_ms() >= due) {
                let now = hydrant_wal::now_ms();
                return Ok(Some(self.intent(cursor, cursor, now)));
            }
            if self.last_retain.elapsed() >= RETAIN_IDLE_PERIOD {
                self.retain(cursor);
                // Nothing to deliver for a while: a quiet stream holds no batch buffer.
                self.batch_buffers.release();
            }
            let _ = self.wal.wait_durable_past(cursor, POLL);
        }
        let mut reader = self.wal.reader(cursor).map_err(|e| self.wal_err(e))?;
        let mut bytes = 0u64;
        let mut end = cursor;
        let mut oldest: Option<u64> = None;
        loop {
            while let Some(frame) = reader.next_frame().map_err(|e| self.wal_err(e))? {
                let arrival = frame.arrival_ms();
                for (lsn, record) in frame.records() {
                    let len = record.len() as u64;
                    if end > cursor && bytes + len > self.spec.buffer_bytes {
                        self.cut_bytes = Some((cursor, end, bytes));
                        return Ok(Some(self.intent(cursor, end, oldest.unwrap_or(arrival))));
                    }
                    oldest.get_or_insert(arrival);
                    // Records held in partition buffers are older than any read now.
                    let held = self.state.held.first().map(|h| h.oldest_arrival_ms);
                    self.stats.oldest_undelivered_ms.store(
                        held.unwrap_or(u64::MAX).min(oldest.unwrap_or(0)),
                        Ordering::Relaxed,
                    );
                    bytes += len;
                    end = lsn.plus(1);
                }
            }
            // Caught up with the durable end: deliver when the buffer is full or the oldest
            // record has waited its interval (0 delivers at once), else wait for more records
            // or the interval.
            let oldest_ms = oldest.unwrap_or_else(hydrant_wal::now_ms);
            let due_ms = oldest_ms
                .saturating_add(self.spec.buffer_interval.as_millis() as u64)
                .min(partition_due.unwrap_or(u64::MAX));
            let now = hydrant_wal::now_ms();
            if end > cursor && (now >= due_ms || bytes >= self.spec.buffer_bytes) {
                self.cut_bytes = Some((cursor, end, bytes));
                return Ok(Some(self.intent(cursor, end, oldest_ms)));
            }
            if !wait || self.stopping() {
                return Ok(None);
            }
            let wait = Duration::from_millis(due_ms.saturating_sub(now)).min(POLL);
            // Wait until the record at `end` (the next one to read) is durable.
            let next = end.max(reader.next_lsn());
            let durable = self.wal.wait_durable_past(next, wait);
            if durable > next && !self.spec.buffer_interval.is_zero() {
                // Records are flowing but no batch is due: let them gather instead of waking
                // on every group commit (thousands a second under small PutRecords, each a
                // wake-up and a read of a frame or two).
                let due_in = Duration::from_millis(due_ms.saturating_sub(hydrant_wal::now_ms()));
                std::thread::sleep(due_in.min(GATHER));
            }
        }
    }

    fn intent(&self, first: Lsn, end: Lsn, oldest_arrival_ms: u64) -> Intent {
        let now = hydrant_wal::now_ms();
        self.stats
            .buffering_ms_total
            .fetch_add(now.saturating_sub(oldest_arrival_ms), Ordering::Relaxed);
        self.stats.batches_cut.fetch_add(1, Ordering::Relaxed);
        Intent {
            first,
            end,
            oldest_arrival_ms,
            first_attempt_ms: now,
            attempts: 0,
            stream_version: self.version(),
        }
    }

    /// Reads the intent's records back from the WAL into a batch.
    ///
    /// When the batch's size is known (it was cut by this process) and the destination does not
    /// partition, its records are copied into the worker's one batch buffer (a page-aligned
    /// mapping reused from batch to batch: `batch_buffer.rs`) and the batch carries it as
    /// [`Batch::contiguous`]: an uncompressed object is then written from that buffer as it is
    /// (with `O_DIRECT` by the local store) instead of being copied together again. Otherwise (a
    /// batch resent after a restart, or a round of partitioned records, which partition buffers
    /// keep slices of past the next round) records go into shared chunks on the heap: an
    /// allocation per chunk rather than per record.
    fn load(&self, intent: Intent) -> Result<Batch, DeliveryError> {
        let mut reader = self.wal.reader(intent.first).map_err(|e| self.wal_err(e))?;
        let count = intent.end.0.saturating_sub(intent.first.0);
        let known = self
            .cut_bytes
            .filter(|(first, end, bytes)| {
                (*first, *end) == (intent.first, intent.end) && *bytes <= CONTIGUOUS_MAX
            })
            .map(|(_, _, bytes)| bytes as usize);
        // The exact count when this process cut the batch (its records are in memory next
        // anyway); a guess otherwise, so that a damaged intent cannot ask for a huge index.
        let mut records = Vec::with_capacity(match known {
            Some(_) => count as usize,
            None => count.min(1 << 16) as usize,
        });
        let mut filling = match known {
            Some(bytes) if self.buffers.is_none() => match self.batch_buffers.fill(bytes) {
                Ok(filling) => Some(filling),
                Err(error) => {
                    // A mapping refused (out of memory, or of mappings: vm.max_map_count)
                    // costs the reuse, not the delivery: the batch goes to the heap.
                    tracing::warn!(stream = %self.spec.stream, bytes, %error,
                        "could not map a batch buffer; reading the batch into the heap");
                    None
                }
            },
            _ => None,
        };
        let mut buf = BytesMut::new();
        if let Some(bytes) = known.filter(|_| filling.is_none()) {
            buf.reserve(bytes + ALIGN);
            // Start the records at a page boundary, as O_DIRECT wants of a buffer.
            let pad = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
            buf.resize(pad, 0);
            let _ = buf.split();
        }
        // Records copied into the batch buffer are in `records` already, their data still empty
        // until the buffer is frozen: they come first, back to back in the buffer, so each one's
        // end is all that is kept of them meanwhile (8 bytes a record, allocated once).
        let mut mapped_ends: Vec<usize> = Vec::with_capacity(if filling.is_some() {
            records.capacity()
        } else {
            0
        });
        // Records copied into `buf`, not yet made slices of it: (LSN, arrival, start, end).
        let mut spans = Vec::new();
        let seal =
            |records: &mut Vec<Record>, buf: Bytes, spans: &mut Vec<(u64, u64, usize, usize)>| {
                records.extend(spans.drain(..).map(|(lsn, arrival_ms, a, b)| Record {
                    lsn,
                    sub: 0,
                    arrival_ms,
                    data: buf.slice(a..b),
                }));
            };
        'frames: while let Some(frame) = reader.next_frame().map_err(|e| self.wal_err(e))? {
            let arrival_ms = frame.arrival_ms();
            for (lsn, data) in frame.records() {
                if lsn >= intent.end {
                    break 'frames;
                }
                if let Some(f) = filling.as_mut() {
                    // The size was counted from these very records, so they fit; were it ever
                    // wrong, the rest would go to heap chunks (and the batch lose `contiguous`).
                    if spans.is_empty() {
                        if let Some((_, end)) = f.push(data) {
                            records.push(Record {
                                lsn: lsn.0,
                                sub: 0,
                                arrival_ms,
                                data: Bytes::new(),
                            });
                            mapped_ends.push(end);
                            continue;
                        }
                    }
                }
                // With the size known the buffer holds them all (had the size been wrong, it
                // would grow: still one buffer). Else a full chunk is sealed for the next.
                if known.is_none() && buf.capacity() - buf.len() < data.len() {
                    seal(&mut records, buf.split().freeze(), &mut spans);
                    buf = BytesMut::with_capacity(LOAD_CHUNK_BYTES.max(data.len()));
                }
                let start = buf.len();
                buf.extend_from_slice(data);
                spans.push((lsn.0, arrival_ms, start, buf.len()));
            }
        }
        debug_assert!(
            mapped_ends.is_empty() || records.len() == mapped_ends.len(),
            "with a batch buffer nothing is sealed before it: its records are all of `records`"
        );
        let whole = filling.take().map(|f| {
            let whole = f.freeze();
            let mut start = 0;
            for (r, &end) in records.iter_mut().zip(&mapped_ends) {
                r.data = whole.slice(start..end);
                start = end;
            }
            whole
        });
        drop(mapped_ends);
        let last = buf.freeze();
        let heap_records = !spans.is_empty();
        seal(&mut records, last.clone(), &mut spans);
        let contiguous = match whole {
            Some(whole) => (!heap_records).then_some(whole),
            None => known.map(|_| last),
        };
        if records.len() as u64 != intent.end.0 - intent.first.0 {
            return Err(self.wal_err(hydrant_wal::Error::BeyondEnd {
                requested: intent.end,
                end: Lsn(intent.first.0 + records.len() as u64),
            }));
        }
        Ok(Batch {
            identity: BatchIdentity {
                stream: self.spec.stream.clone(),
                incarnation: self.spec.incarnation.clone(),
                destination_id: self.spec.destination_id.clone(),
                first_lsn: intent.first.0,
                last_lsn: intent.end.0 - 1,
            },
            // The version the batch was first sent under: part of its object key, so a resend
            // after an UpdateDestination still overwrites.
            stream_version: match intent.stream_version {
                0 => self.spec.stream_version,
                v => u64::from(v),
            },
            oldest_arrival_ms: intent.oldest_arrival_ms,
            records,
            contiguous,
            partition_keys: Vec::new(),
        })
    }

    /// Delivers the intent's batch, retrying within the window; then the error output.
    ///
    /// With a transform, the batch is transformed once per series of attempts (a restart runs
    /// it again on the same records, under the same identity); records the transform failed,
    /// and records the destination refused for good, go to the error output before the cursor
    /// moves.
    fn send(&mut self, mut intent: Intent) -> Result<(), DeliveryError> {
        let source = self.load(intent)?;
        // A batch resent after a restart was not read by `next_batch`: its records are the
        // oldest undelivered ones, and data freshness counts from them while it is retried.
        let oldest = self.stats.oldest_undelivered_ms.load(Ordering::Relaxed);
        if oldest == 0 || oldest > intent.oldest_arrival_ms {
            self.stats
                .oldest_undelivered_ms
                .store(intent.oldest_arrival_ms, Ordering::Relaxed);
        }
        let deadline_ms = intent
            .first_attempt_ms
            .saturating_add(self.spec.retry.window.as_millis() as u64);
        // Without a transform the batch sent is the one loaded: borrowed, not copied (its
        // record index is megabytes under a large buffering hint).
        let (batch, mut failed) = match self.spec.transform.clone() {
            None => (Cow::Borrowed(&source), Vec::new()),
            Some(t) => match self.runtime.block_on(t.process(source.clone())) {
                Ok((batch, failed)) => (Cow::Owned(batch), failed),
                Err(e) => {
                    tracing::warn!(stream = %self.spec.stream, batch = %source.identity,
                        error = %e, "transform failed; retrying");
                    intent.attempts += 1;
                    let _ = self.sleep(self.spec.retry.backoff(intent.attempts));
                    return Ok(());
                }
            },
        };
        let mut backed_up = self.spec.backup.is_none();
        loop {
            intent.attempts += 1;
            let result = if !backed_up {
                match self.deliver_backup(&source) {
                    Ok(()) => {
                        // Backup done: on to the destination itself, without waiting.
                        backed_up = true;
                        intent.attempts -= 1;
                        continue;
                    }
                    Err(e) => Err(e),
                }
            } else if batch.records.is_empty() {
                // Everything was dropped or failed by the transform.
                Ok(hydrant_sinks::Delivered {
                    target: String::new(),
                    location: String::new(),
                    records: 0,
                    data_bytes: 0,
                    wire_bytes: 0,
                    failed: Vec::new(),
                })
            } else {
                self.runtime.block_on(self.spec.sink.deliver(&batch))
            };
            match result {
                Ok(delivered) => {
                    crash_point("delivery::after_send");
                    // The sink took the batch (an empty one never reaches it): a sink keeping its
                    // own position now holds the batch's end.
                    let confirmed = !batch.records.is_empty();
                    self.stats.count_delivered(&delivered);
                    self.stats.recent().ok(hydrant_wal::now_ms());
                    tracing::debug!(stream = %self.spec.stream, batch = %batch.identity,
                        location = %delivered.location, "delivered");
                    failed.extend(delivered.failed);
                    if !self.file_failed(&batch, &failed) {
                        return Ok(());
                    }
                    if !failed.is_empty() {
                        crash_point("delivery::after_error_output");
                    }
                    self.commit(intent.end, confirmed)?;
                    return Ok(());
                }
                Err(error) => {
                    self.stats.attempts_failed.fetch_add(1, Ordering::Relaxed);
                    self.stats.recent().push(super::recent::FailureEntry {
                        time_ms: hydrant_wal::now_ms(),
                        kind: super::recent::FailureKind::Attempt,
                        code: error.error_code().to_string(),
                        message: error.to_string(),
                        raw: Vec::new(),
                        records: batch.records.len() as u64,
                    });
                    let final_error = self.spec.retry.permanent_is_final && !error.is_retryable();
                    if final_error || hydrant_wal::now_ms() >= deadline_ms {
                        tracing::warn!(stream = %self.spec.stream, batch = %batch.identity,
                            error = %error, attempts = intent.attempts,
                            "retries over: the batch goes to the error output");
                        return self.give_up(&batch, &error, intent, failed);
                    }
                    tracing::warn!(stream = %self.spec.stream, batch = %batch.identity,
                        error = %error, code = %error.error_code(), attempt = intent.attempts,
                        "delivery failed; retrying");
                    if !self.sleep(self.spec.retry.backoff(intent.attempts)) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Delivers the untransformed records to the backup destination, under the backup's own
    /// destination id.
    fn deliver_backup(&self, source: &Batch) -> Result<(), SinkError> {
        let Some(backup) = &self.spec.backup else {
            return Ok(());
        };
        let mut b = source.clone();
        b.identity.destination_id = format!("{}-backup", b.identity.destination_id);
        self.runtime.block_on(backup.deliver(&b)).map(|_| ())
    }

    /// Writes failed records to the error output, retrying until it succeeds; false when the
    /// worker stops first (the intent stays, and a restart redoes the batch).
    fn file_failed(&mut self, batch: &Batch, records: &[FailedRecord]) -> bool {
        if records.is_empty() {
            return true;
        }
        let Some(output) = self.spec.error_output.clone() else {
            tracing::error!(stream = %self.spec.stream, batch = %batch.identity,
                records = records.len(), "no error output for failed records: the batch stays");
            let _ = self.sleep(self.spec.retry.backoff_max);
            return false;
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.runtime.block_on(output.put_failed(batch, records)) {
                Ok(()) => {
                    self.stats
                        .error_output_records
                        .fetch_add(records.len() as u64, Ordering::Relaxed);
                    self.stats
                        .error_output_batches
                        .fetch_add(1, Ordering::Relaxed);
                    {
                        let mut recent = self.stats.recent();
                        // The newest few: the ring keeps no more anyway.
                        let skip = records.len().saturating_sub(super::recent::RECENT_MAX);
                        for r in &records[skip..] {
                            recent.push(super::recent::FailureEntry {
                                time_ms: r.attempt_ending_timestamp_ms,
                                kind: super::recent::FailureKind::ErrorOutput,
                                code: r.error_code.clone(),
                                message: r.error_message.clone(),
                                raw: r.raw_data
                                    [..r.raw_data.len().min(super::recent::RAW_BYTES_MAX)]
                                    .to_vec(),
                                records: 1,
                            });
                        }
                    }
                    tracing::warn!(stream = %self.spec.stream, batch = %batch.identity,
                        records = records.len(), "records written to the error output");
                    return true;
                }
                Err(e) => {
                    tracing::error!(stream = %self.spec.stream, batch = %batch.identity,
                        error = %e, "the error output failed; retrying");
                    if !self.sleep(self.spec.retry.backoff(attempt)) {
                        return false;
                    }
                }
            }
        }
    }

    /// The retries are over: the sink says what is still undelivered (and may write artefacts
    /// of its own, such as Redshift's manifest); that goes to the error output with the records
    /// the transform failed, then the cursor moves past the batch.
    fn give_up(
        &mut self,
        batch: &Batch,
        error: &SinkError,
        intent: Intent,
        mut failed: Vec<FailedRecord>,
    ) -> Result<(), DeliveryError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self
                .runtime
                .block_on(self.spec.sink.give_up(batch, error, intent.attempts))
            {
                Ok(records) => {
                    failed.extend(records);
                    break;
                }
                Err(e) => {
                    tracing::error!(stream = %self.spec.stream, batch = %batch.identity,
                        error = %e, "the destination's failure output failed; retrying");
                    if !self.sleep(self.spec.retry.backoff(attempt)) {
                        return Ok(());
                    }
                }
            }
        }
        if !self.file_failed(batch, &failed) {
            return Ok(());
        }
        self.commit(intent.end, false)
    }

    /// Advances the cursor past a delivered batch and applies retention; `confirmed`: the
    /// destination itself holds everything up to `end` (not so for a batch given up).
    fn commit(&mut self, end: Lsn, confirmed: bool) -> Result<(), DeliveryError> {
        let (sink_end, sink_version) = if confirmed {
            (end, self.version())
        } else {
            (self.state.sink_end, self.state.sink_version)
        };
        self.save(DeliveryState {
            cursor: end,
            intent: None,
            held: Vec::new(),
            sink_end,
            sink_version,
        })?;
        self.stats.cursor.store(end.0, Ordering::Relaxed);
        if self.wal.durable_lsn() <= end {
            self.stats.oldest_undelivered_ms.store(0, Ordering::Relaxed);
        }
        self.retain(end);
        Ok(())
    }

    /// Deletes delivered segments past the replay window. Failure is logged, not fatal: the
    /// segments are deleted on a later commit.
    ///
    /// One destination per stream: its cursor is the minimum over all cursors. A stream with
    /// several destinations must pass the smallest cursor here.
    fn retain(&mut self, cursor: Lsn) {
        self.last_retain = Instant::now();
        let now = hydrant_wal::now_ms();
        let window_ms = self.spec.retain.time.as_millis() as u64;
        let segments = self.wal.segments();
        // Delivered segments (entirely below the cursor), newest first, kept while within both
        // the time window and the byte budget.
        let mut kept_bytes = 0u64;
        let mut cut: Option<Lsn> = None;
        for s in segments
            .iter()
            .rev()
            .filter(|s| s.sealed && s.end_lsn <= cursor)
        {
            kept_bytes += s.file_bytes;
            let recent = s.last_arrival_ms.saturating_add(window_ms) > now;
            if !(recent && kept_bytes <= self.spec.retain.bytes) {
                cut = Some(s.end_lsn);
                break;
            }
        }
        if let Some(lsn) = cut {
            if let Err(e) = self.wal.truncate_before(lsn) {
                tracing::warn!(stream = %self.spec.stream, error = %e, "retention failed");
            }
        }
    }

    /// Sleeps up to `d`, waking early to stop. False when stopping.
    fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stopping() {
                return false;
            }
            std::thread::sleep((until - Instant::now()).min(POLL));
        }
        !self.stopping()
    }
}

/// Kills the process with SIGKILL when `HYDRANT_CRASH_AT` names this point (see the module docs);
/// the same mechanism as the sinks crate's own points (`delivery::mid_upload`).
pub fn crash_point(name: &str) {
    hydrant_sinks::crash::crash_point(name);
}
