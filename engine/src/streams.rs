//! The engine: the streams, their WALs (`DIR/streams/<name>/wal`, one per stream), the
//! registry, and the operations on them.
//!
//! # Control plane
//!
//! Create, delete, update and tag changes run one at a time (a mutex), on a blocking thread
//! (sled and directory syncs block). Each persists its registry change durably before it answers.
//!
//! Crash safety of the lifecycle, step by step:
//! - Create: 1. the record is written with status CREATING; 2. the reply goes out; 3. the WAL
//!   is opened (created); 4. the record becomes ACTIVE. A crash after 1 leaves a CREATING record:
//!   start-up opens the WAL and makes it ACTIVE. Nothing can have been acknowledged before 4.
//! - Delete: 1. the record becomes DELETING (puts stop: they answer ResourceNotFoundException);
//!   2. the WAL is closed, its directory removed and the parent directory synced; 3. the record
//!   is removed. A crash after 1 or 2 leaves a DELETING record: start-up finishes the deletion.
//! - A stream directory without a record can only be left by something outside hydrant: start-up
//!   removes it when its WAL holds no records, and otherwise moves it to `DIR/orphaned/` and logs
//!   a warning (records are never deleted on a guess).
//! - A record without a directory (the directory was removed by hand) gets a new, empty WAL and
//!   a warning.
//!
//! # Start-up: ready before delivery
//!
//! [`Engine::open_for_intake`] opens the registry and recovers every stream's WAL; hydrantd
//! then reports ready (`/health/ready` 200, intake open): every WAL is open for appends, and an
//! append it acknowledges is durable, whatever delivery is doing. [`Engine::start_delivery`]
//! then starts each ACTIVE stream's delivery worker (its checkpoint read, its sinks set up) and
//! Kinesis source, off the ready path, each under the control lock. Until a stream's worker
//! has started, its delivery state is [`crate::delivery::STATE_STARTING`] (the console says
//! DELIVERY STARTING, `hydrant_destination_state` 4); a worker that cannot start says so
//! (`STATE_NOT_STARTED` or `STATE_STOPPED_LOG`). Nothing is lost by the order: records taken
//! before a worker starts wait in the WAL like any backlog.
//!
//! # Data plane
//!
//! A put decodes and validates everything first (see [`crate::api::decode`]), then makes ONE
//! `append_at` of all the batch's records (one frame), awaits the [`hydrant_wal::Ticket`] (the
//! stream's durability mode: `sync` means after `fdatasync`), and only then answers with record
//! ids. A budget refusal ([`hydrant_wal::Error::Full`] / `NoSpace`) writes nothing and answers
//! ServiceUnavailableException for the whole request: a batch is one frame, so it is all or
//! nothing, and failing the whole request is the honest answer (Fluent Bit and the SDKs retry
//! either way).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use hydrant_wal::{Lsn, Wal, WalOptions};
use serde_json::{json, Value};

use crate::api::decode::{CreateRequest, Records, UpdateRequest, TAGS_MAX};
use crate::api::destination::{Destination, DESTINATION_ID};
use crate::api::errors::{ApiError, ErrorCode};
use crate::api::model::{PutRecordBatchEntry, PutRecordBatchOutput, PutRecordOutput};
use crate::config::Config;
use crate::delivery::{
    build_spec, DeliveryStats, DeliveryWorker, STATE_NOT_STARTED, STATE_STARTING,
};
use crate::metrics::{DeliveryLabel, Metrics, StreamLabel};
use crate::record_id;
use crate::registry::{Origin, Registry, RegistryError, StreamRecord, StreamStatus};
use crate::source::kafka::{KafkaSource, SourceSpec as KafkaSpec};
use crate::source::kinesis::{KinesisSource, SourceSpec};
use crate::source::state::SourceState;

/// A running reader of a stream's outside source.
#[derive(Debug)]
enum RunningSource {
    /// `KinesisStreamAsSource`.
    Kinesis(KinesisSource),
    /// `MSKAsSource`.
    Kafka(KafkaSource),
}

impl RunningSource {
    fn state(&self) -> Arc<SourceState> {
        match self {
            RunningSource::Kinesis(s) => s.state(),
            RunningSource::Kafka(s) => s.state(),
        }
    }

    fn stop(self) {
        match self {
            RunningSource::Kinesis(s) => s.stop(),
            RunningSource::Kafka(s) => s.stop(),
        }
    }
}
use prometheus_client::metrics::counter::Counter;

/// A start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A stream's WAL could not be opened.
    #[error("stream {stream}: {source}")]
    Wal {
        /// The stream.
        stream: String,
        /// The WAL's error.
        #[source]
        source: hydrant_wal::Error,
    },
    /// The engine was opened outside a tokio runtime (delivery workers need its handle).
    #[error("the engine must be opened inside a tokio runtime (delivery needs one)")]
    NoRuntime,
    /// A directory operation failed.
    #[error(transparent)]
    Io(#[from] hydrant_wal::IoError),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
    hydrant_wal::IoError::of(op, path)
}

/// A stream whose WAL is open.
#[derive(Debug)]
pub struct OpenStream {
    /// The name.
    pub name: String,
    /// The incarnation (in record ids).
    pub incarnation: u64,
    /// The log, shared with the stream's delivery worker.
    pub wal: Arc<Wal>,
    label: StreamLabel,
    /// Handles of the stream's intake counters (records, bytes, put requests), resolved once
    /// rather than looked up by label on every request.
    incoming: [Counter; 3],
    /// Set once the WAL is closed (deletion, shutdown): an append that slipped in just before
    /// the close must not wait for a sync that will never run.
    closed: tokio::sync::watch::Sender<bool>,
}

impl OpenStream {
    fn new(name: &str, incarnation: u64, wal: Wal, metrics: &Metrics) -> OpenStream {
        let label = StreamLabel {
            stream: name.to_string(),
        };
        let incoming = [
            &metrics.incoming_records,
            &metrics.incoming_bytes,
            &metrics.incoming_put_requests,
        ]
        .map(|family| family.get_or_create(&label).clone());
        OpenStream {
            name: name.to_string(),
            incarnation,
            wal: Arc::new(wal),
            label,
            incoming,
            closed: tokio::sync::watch::Sender::new(false),
        }
    }

    fn close(&self) -> Result<(), hydrant_wal::Error> {
        let r = self.wal.close();
        self.closed.send_replace(true);
        r
    }
}

#[derive(Debug)]
struct Slot {
    record: StreamRecord,
    open: Option<Arc<OpenStream>>,
    /// The destination's delivery worker, while the stream is ACTIVE.
    worker: Option<DeliveryWorker>,
    /// The destination's counters, kept across worker restarts (UpdateDestination).
    stats: Arc<DeliveryStats>,
    /// The reader of a `KinesisStreamAsSource` or `MSKAsSource` stream, while the stream is
    /// ACTIVE.
    source: Option<RunningSource>,
}

impl Slot {
    /// Describe's `FailureDescription.Details`: a failed create, else its source's failure (a
    /// Kinesis stream that cannot be read). A method of the slot, read under the caller's guard:
    /// taking the streams lock again while holding it deadlocks when a writer is waiting between
    /// the two reads (std's `RwLock` queues the second read behind the writer).
    fn failure_details(&self) -> Option<String> {
        if self.record.status == StreamStatus::CreatingFailed {
            return Some("opening the stream's WAL failed; see the daemon's log".to_owned());
        }
        self.source.as_ref().and_then(|s| s.state().failure())
    }

    fn new(record: StreamRecord, open: Option<Arc<OpenStream>>) -> Slot {
        Slot {
            record,
            open,
            worker: None,
            stats: Arc::new(DeliveryStats::default()),
            source: None,
        }
    }
}

/// Everything the API operates on.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    registry: Registry,
    metrics: Arc<Metrics>,
    control: Mutex<()>,
    streams: RwLock<BTreeMap<String, Slot>>,
    closing: AtomicBool,
    /// Where delivery workers run their sinks' futures.
    runtime: tokio::runtime::Handle,
}

fn now_ms() -> u64 {
    hydrant_wal::now_ms()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InternalFailure, e.to_string())
}

impl Engine {
    /// Opens the registry and every stream's WAL, reconciling the two (see the module docs), and
    /// starts a delivery worker per ACTIVE stream. Blocking: run it off the async runtime, but
    /// inside it (`spawn_blocking`): the workers use the runtime's handle.
    ///
    /// # Errors
    /// Any [`EngineError`]; the daemon does not start.
    pub fn open(config: Config, metrics: Arc<Metrics>) -> Result<Engine, EngineError> {
        let engine = Engine::open_for_intake(config, metrics)?;
        engine.start_delivery();
        Ok(engine)
    }

    /// [`Engine::open`] without starting delivery: every WAL is recovered and open for appends
    /// (intake may open: what it acknowledges is durable), and each ACTIVE stream's delivery
    /// shows [`crate::delivery::STATE_STARTING`] until [`Engine::start_delivery`] has run.
    /// hydrantd reports ready between the two, so that a restart with a backlog does not wait
    /// for the delivery workers' checkpoints and sinks.
    ///
    /// # Errors
    /// Any [`EngineError`]; the daemon does not start.
    pub fn open_for_intake(config: Config, metrics: Arc<Metrics>) -> Result<Engine, EngineError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| EngineError::NoRuntime)?;
        let streams_dir = config.streams_dir();
        std::fs::create_dir_all(&streams_dir).map_err(io_err("create", &streams_dir))?;
        // Before any worker writes: temporary files of writes a crash interrupted.
        match crate::delivery::sweep_local_store(&config) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                removed = n,
                "swept temporary files of the local object store"
            ),
            Err(e) => {
                return Err(EngineError::Io(hydrant_wal::IoError {
                    op: "sweep temporary files of",
                    path: config.local_store_dir(),
                    source: std::io::Error::other(e.to_string()),
                }))
            }
        }
        let t0 = std::time::Instant::now();
        let registry = Registry::open(&config.registry_dir())?;
        let t_registry = t0.elapsed();
        let engine = Engine {
            config,
            registry,
            metrics,
            control: Mutex::new(()),
            streams: RwLock::new(BTreeMap::new()),
            closing: AtomicBool::new(false),
            runtime,
        };
        engine.reconcile()?;
        for slot in engine.read_streams().values() {
            if slot.open.is_some() && slot.record.status == StreamStatus::Active {
                slot.stats.state.store(STATE_STARTING, Ordering::Relaxed);
            }
        }
        engine.update_gauges();
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        tracing::info!(
            registry_ms = ms(t_registry),
            wals_ms = ms(t0.elapsed() - t_registry),
            "startup timings"
        );
        Ok(engine)
    }

    /// Starts the delivery worker and source of every ACTIVE stream that has none yet (after
    /// [`Engine::open_for_intake`]). Blocking. Runs each stream under the control lock, so a
    /// create, update or delete that came first is respected (an updated stream already has its
    /// worker; a deleted one has no slot); after [`Engine::close`] began it starts nothing.
    pub fn start_delivery(&self) {
        let t0 = std::time::Instant::now();
        let names: Vec<String> = self.read_streams().keys().cloned().collect();
        for name in names {
            let _g = self.lock_control();
            if self.closing.load(Ordering::SeqCst) {
                return;
            }
            self.start_worker(&name);
            self.start_source(&name);
        }
        self.update_gauges();
        tracing::info!(
            delivery_ms = t0.elapsed().as_secs_f64() * 1000.0,
            "delivery workers started"
        );
    }

    /// Starts the delivery worker of an ACTIVE stream (none runs yet). A failure is logged: the
    /// stream keeps taking records into its WAL, and delivery starts with the next restart or
    /// UpdateDestination.
    fn start_worker(&self, name: &str) {
        let mut streams = self.write_streams();
        let Some(slot) = streams.get_mut(name) else {
            return;
        };
        let (Some(open), StreamStatus::Active, None) =
            (&slot.open, slot.record.status, &slot.worker)
        else {
            return;
        };
        let stats = slot.stats.clone();
        let spawned = build_spec(&self.config, &slot.record, slot.stats.clone(), &open.wal)
            .map_err(|e| e.to_string())
            .and_then(|spec| {
                DeliveryWorker::spawn(open.wal.clone(), spec, self.runtime.clone())
                    .map_err(|e| e.to_string())
            });
        match spawned {
            Ok(worker) => {
                tracing::info!(stream = %name, version = slot.record.version_id, "delivery started");
                slot.worker = Some(worker);
            }
            Err(e) => {
                if stats.state.load(Ordering::Relaxed) == STATE_STARTING {
                    // The sinks could not be set up: nothing delivers until the next restart or
                    // UpdateDestination.
                    stats.state.store(STATE_NOT_STARTED, Ordering::Relaxed);
                }
                tracing::error!(stream = %name, error = %e, "delivery cannot start; records stay in the WAL");
            }
        }
    }

    /// Starts the reader of an ACTIVE `KinesisStreamAsSource` or `MSKAsSource` stream (none
    /// runs yet).
    fn start_source(&self, name: &str) {
        let mut streams = self.write_streams();
        let Some(slot) = streams.get_mut(name) else {
            return;
        };
        if let (Some(open), StreamStatus::Active, None, Some(msk)) = (
            &slot.open,
            slot.record.status,
            &slot.source,
            &slot.record.msk_source,
        ) {
            let spec = KafkaSpec {
                stream: name.to_string(),
                source: msk.clone(),
                start_ms: msk.start_ms(slot.record.created_ms),
                section: self.config.kafka.clone(),
            };
            match KafkaSource::spawn(
                open.wal.clone(),
                spec,
                self.metrics.clone(),
                self.runtime.clone(),
            ) {
                Ok(s) => slot.source = Some(RunningSource::Kafka(s)),
                Err(e) => {
                    tracing::error!(stream = %name, error = %e, "the Kafka source cannot start")
                }
            }
            return;
        }
        let (Some(open), StreamStatus::Active, None, Some(source)) = (
            &slot.open,
            slot.record.status,
            &slot.source,
            &slot.record.kinesis_source,
        ) else {
            return;
        };
        let spec = SourceSpec {
            stream: name.to_string(),
            source: source.clone(),
            start_ms: slot.record.created_ms,
            section: self.config.kinesis.clone(),
        };
        match KinesisSource::spawn(
            open.wal.clone(),
            spec,
            self.metrics.clone(),
            self.runtime.clone(),
        ) {
            Ok(s) => slot.source = Some(RunningSource::Kinesis(s)),
            Err(e) => {
                tracing::error!(stream = %name, error = %e, "the Kinesis source cannot start")
            }
        }
    }

    /// Stops a stream's source reader, if one runs.
    fn stop_source(&self, name: &str) {
        let source = self
            .write_streams()
            .get_mut(name)
            .and_then(|slot| slot.source.take());
        if let Some(s) = source {
            s.stop();
        }
    }

    /// Stops a stream's delivery worker, if one runs (an attempt in progress finishes first).
    fn stop_worker(&self, name: &str) {
        let worker = self
            .write_streams()
            .get_mut(name)
            .and_then(|slot| slot.worker.take());
        if let Some(w) = worker {
            w.stop();
            tracing::info!(stream = %name, "delivery stopped");
        }
    }

    fn lock_control(&self) -> MutexGuard<'_, ()> {
        self.control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_streams(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Slot>> {
        self.streams
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_streams(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Slot>> {
        self.streams
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The metrics.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn reconcile(&self) -> Result<(), EngineError> {
        let _g = self.lock_control();
        let mut known = std::collections::BTreeSet::new();
        for mut rec in self.registry.list()? {
            known.insert(rec.name.clone());
            if rec.status == StreamStatus::Deleting {
                tracing::info!(stream = %rec.name, "finishing an interrupted deletion");
                self.remove_stream_dir(&rec.name)?;
                self.registry.remove(&rec.name)?;
                continue;
            }
            if !self.config.wal_dir(&rec.name).exists() && rec.status == StreamStatus::Active {
                tracing::warn!(
                    stream = %rec.name,
                    "the stream's WAL directory is missing: starting an empty log"
                );
            }
            let wal = self.open_wal(&rec.name)?;
            if rec.status != StreamStatus::Active {
                rec.status = StreamStatus::Active;
                self.persist(&rec)?;
            }
            self.install(rec, wal);
        }
        for declared in &self.config.streams {
            if known.contains(&declared.name) {
                continue;
            }
            let rec = StreamRecord {
                name: declared.name.clone(),
                incarnation: new_incarnation(),
                version_id: 1,
                status: StreamStatus::Creating,
                created_ms: now_ms(),
                updated_ms: None,
                destination: declared.destination(),
                tags: Vec::new(),
                origin: Origin::Config,
                throughput_hint_mbs: None,
                kinesis_source: None,
                msk_source: None,
            };
            self.persist(&rec)?;
            let wal = self.open_wal(&rec.name)?;
            let rec = StreamRecord {
                status: StreamStatus::Active,
                ..rec
            };
            self.persist(&rec)?;
            tracing::info!(stream = %rec.name, "created declared stream");
            known.insert(rec.name.clone());
            self.install(rec, wal);
        }
        self.adopt_orphans(&known)?;
        Ok(())
    }

    fn adopt_orphans(&self, known: &std::collections::BTreeSet<String>) -> Result<(), EngineError> {
        let dir = self.config.streams_dir();
        let entries = std::fs::read_dir(&dir).map_err(io_err("read directory", &dir))?;
        for e in entries {
            let e = e.map_err(io_err("read directory", &dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if known.contains(&name) {
                continue;
            }
            let path = e.path();
            let empty = hydrant_wal::WalView::open(path.join("wal"))
                .map(|v| v.next_lsn() == v.first_lsn())
                .unwrap_or(false);
            if empty {
                tracing::info!(dir = %path.display(), "removing an empty stream directory with no registry record");
                std::fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
            } else {
                let orphaned = self.config.data_dir.join("orphaned");
                std::fs::create_dir_all(&orphaned).map_err(io_err("create", &orphaned))?;
                let target = orphaned.join(format!("{name}-{}", now_ms()));
                tracing::warn!(
                    dir = %path.display(),
                    to = %target.display(),
                    "a stream directory with records has no registry record: moved aside"
                );
                std::fs::rename(&path, &target).map_err(io_err("rename", &path))?;
                sync_dir(&orphaned)?;
            }
            sync_dir(&dir)?;
        }
        Ok(())
    }

    fn wal_options(&self, name: &str) -> WalOptions {
        WalOptions {
            segment_bytes: self.config.wal.segment_bytes,
            durability: self.config.stream_durability(name),
            budget_bytes: self.config.stream_budget(name),
            observer: Some(self.metrics.wal_observer(name)),
            ..WalOptions::default()
        }
    }

    fn open_wal(&self, name: &str) -> Result<Wal, EngineError> {
        let dir = self.config.wal_dir(name);
        let started = std::time::Instant::now();
        let (wal, report) =
            Wal::open(&dir, self.wal_options(name)).map_err(|source| EngineError::Wal {
                stream: name.to_string(),
                source,
            })?;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        tracing::info!(
            stream = %name,
            footers_ms = ms(report.footers_elapsed),
            tail_ms = ms(report.tail_elapsed),
            open_ms = ms(started.elapsed()),
            report = ?report,
            "opened WAL"
        );
        Ok(wal)
    }

    /// Writes a stream record to the registry (durably), then a copy of its definition to
    /// `DIR/streams/<name>/stream.json`, which `hydrant replay` reads to deliver to the stream's
    /// own destination while the daemon holds the registry. The registry is authoritative: a
    /// failure to write the copy is logged, not fatal.
    fn persist(&self, rec: &StreamRecord) -> Result<(), RegistryError> {
        self.registry.put(rec)?;
        let dir = self.config.streams_dir().join(&rec.name);
        if let Err(e) = write_definition(&dir, rec) {
            tracing::warn!(stream = %rec.name, error = %e, "could not write stream.json");
        }
        Ok(())
    }

    fn install(&self, rec: StreamRecord, wal: Wal) {
        let open = Arc::new(OpenStream::new(
            &rec.name,
            rec.incarnation,
            wal,
            &self.metrics,
        ));
        self.write_streams()
            .insert(rec.name.clone(), Slot::new(rec, Some(open)));
    }

    fn remove_stream_dir(&self, name: &str) -> Result<(), EngineError> {
        let path = self.config.streams_dir().join(name);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &path)(e)),
        }
        sync_dir(&self.config.streams_dir())
    }

    fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:firehose:{}:{}:deliverystream/{name}",
            self.config.region, self.config.account_id
        )
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(name, &self.config.account_id)
    }

    /// Describe's `FailureDescription.Details` of the stream `name` (see [`Slot::failure_details`]).
    fn failure_details(&self, name: &str) -> Option<String> {
        self.read_streams()
            .get(name)
            .and_then(Slot::failure_details)
    }

    fn record(&self, name: &str) -> Result<StreamRecord, ApiError> {
        self.read_streams()
            .get(name)
            .map(|s| s.record.clone())
            .ok_or_else(|| self.not_found(name))
    }

    /// Stops taking records: puts answer ServiceUnavailableException from now on.
    pub fn begin_shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    /// Stops the delivery workers, then syncs and closes every WAL and the registry. Blocking.
    pub fn close(&self) {
        self.begin_shutdown();
        let _g = self.lock_control();
        let names: Vec<String> = self.read_streams().keys().cloned().collect();
        for name in &names {
            self.stop_source(name);
            self.stop_worker(name);
        }
        let streams: Vec<Arc<OpenStream>> = self
            .read_streams()
            .values()
            .filter_map(|s| s.open.clone())
            .collect();
        for s in streams {
            if let Err(e) = s.close() {
                tracing::error!(stream = %s.name, error = %e, "closing the WAL failed");
            }
        }
        if let Err(e) = self.registry.make_durable() {
            tracing::error!(error = %e, "final registry flush failed");
        }
    }

    /// Refreshes the WAL gauges (called before each scrape).
    pub fn update_gauges(&self) {
        let streams = self.read_streams();
        self.metrics.streams.set(streams.len() as i64);
        for slot in streams.values() {
            let Some(s) = &slot.open else { continue };
            let st = s.wal.stats();
            let l = &s.label;
            let m = &self.metrics;
            m.wal_disk_bytes.get_or_create(l).set(clamp(st.disk_bytes));
            m.wal_durable_lsn
                .get_or_create(l)
                .set(clamp(st.durable_lsn.0));
            m.wal_next_lsn.get_or_create(l).set(clamp(st.next_lsn.0));
            m.wal_segments.get_or_create(l).set(st.segments as i64);
            if let Some(budget) = self.config.stream_budget(&s.name) {
                m.wal_budget_bytes.get_or_create(l).set(clamp(budget));
            }
            let d = DeliveryLabel {
                stream: s.name.clone(),
                destination: DESTINATION_ID.to_string(),
            };
            m.observe_delivery(&d, &slot.stats, st.durable_lsn.0, now_ms());
        }
    }

    /// What the console shows of every stream (name order); the failure rings only of
    /// `with_recent` (a stream page's). Reads atomics and the WALs' state locks, no I/O.
    #[must_use]
    pub fn console_snapshot(
        &self,
        with_recent: Option<&str>,
    ) -> Vec<crate::console::StreamSnapshot> {
        use crate::console::{backlog_bytes, DeliverySnapshot, StreamSnapshot};
        let streams = self.read_streams();
        streams
            .values()
            .map(|slot| {
                let rec = &slot.record;
                let delivery =
                    DeliverySnapshot::read(&slot.stats, with_recent == Some(rec.name.as_str()));
                let (incoming_records, incoming_bytes) = slot
                    .open
                    .as_ref()
                    .map_or((0, 0), |s| (s.incoming[0].get(), s.incoming[1].get()));
                let (disk_bytes, durable_lsn, backlog) =
                    slot.open.as_ref().map_or((0, 0, 0), |s| {
                        let st = s.wal.stats();
                        let backlog = backlog_bytes(&s.wal.segments(), delivery.cursor);
                        (st.disk_bytes, st.durable_lsn.0, backlog)
                    });
                let source = match (&rec.kinesis_source, &rec.msk_source) {
                    (Some(k), _) => format!("Kinesis stream {}", k.kinesis_stream_arn),
                    (None, Some(m)) => format!("Kafka topic {} of {}", m.topic, m.cluster_arn),
                    (None, None) => "Direct PUT".to_owned(),
                };
                StreamSnapshot {
                    name: rec.name.clone(),
                    incarnation: rec.incarnation,
                    status: rec.status,
                    source,
                    failure: slot.failure_details(),
                    destination: rec.destination.description(),
                    tags: rec.tags.clone(),
                    version_id: rec.version_id,
                    incoming_records,
                    incoming_bytes,
                    disk_bytes,
                    budget_bytes: self.config.stream_budget(&rec.name),
                    durable_lsn,
                    backlog_bytes: backlog,
                    delivery,
                }
            })
            .collect()
    }

    /// An open stream, for tools and tests that read the WAL in-process.
    #[must_use]
    pub fn stream(&self, name: &str) -> Option<Arc<OpenStream>> {
        self.read_streams().get(name).and_then(|s| s.open.clone())
    }

    // ---- control plane (blocking; run on a blocking thread) ----

    /// CreateDeliveryStream: registers the stream (CREATING) and returns its ARN; the WAL is
    /// opened by [`Engine::activate`], which the caller runs next.
    ///
    /// # Errors
    /// ResourceInUseException, LimitExceededException, InternalFailure.
    pub fn create(&self, req: CreateRequest, hint: Option<u32>) -> Result<(Value, u64), ApiError> {
        crate::delivery::check_destination(&self.config, &req.destination)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let _g = self.lock_control();
        if self.read_streams().contains_key(&req.name) {
            return Err(ApiError::new(
                ErrorCode::ResourceInUse,
                format!(
                    "Firehose {} under accountId {} already exists",
                    req.name, self.config.account_id
                ),
            ));
        }
        if self.read_streams().len() >= self.config.streams_max {
            return Err(ApiError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "You have already consumed your firehose quota of {} hoses. Firehose names: \
                     {:?}",
                    self.config.streams_max,
                    self.read_streams().keys().collect::<Vec<_>>()
                ),
            ));
        }
        self.check_budget_fits(&req.name)?;
        let mut tags: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in req.tags {
            tags.insert(k, v);
        }
        let rec = StreamRecord {
            name: req.name.clone(),
            incarnation: new_incarnation(),
            version_id: 1,
            status: StreamStatus::Creating,
            created_ms: now_ms(),
            updated_ms: None,
            destination: req.destination,
            tags: tags.into_iter().collect(),
            origin: Origin::Api,
            throughput_hint_mbs: hint,
            kinesis_source: req.kinesis_source,
            msk_source: req.msk_source,
        };
        self.persist(&rec).map_err(internal)?;
        let incarnation = rec.incarnation;
        self.write_streams()
            .insert(rec.name.clone(), Slot::new(rec, None));
        Ok((
            json!({ "DeliveryStreamARN": self.arn(&req.name) }),
            incarnation,
        ))
    }

    /// Opens a CREATING stream's WAL and makes it ACTIVE (or CREATING_FAILED).
    pub fn activate(&self, name: &str, incarnation: u64) {
        let wal = self.open_wal(name);
        let _g = self.lock_control();
        let mut streams = self.write_streams();
        let Some(slot) = streams.get_mut(name) else {
            return;
        };
        if slot.record.incarnation != incarnation || slot.record.status != StreamStatus::Creating {
            return;
        }
        match wal {
            Ok(wal) => {
                let mut rec = slot.record.clone();
                rec.status = StreamStatus::Active;
                if let Err(e) = self.persist(&rec) {
                    tracing::error!(stream = %name, error = %e, "registry write failed; stream stays CREATING");
                    return;
                }
                slot.record = rec.clone();
                slot.open = Some(Arc::new(OpenStream::new(
                    &rec.name,
                    rec.incarnation,
                    wal,
                    &self.metrics,
                )));
                tracing::info!(stream = %name, "stream ACTIVE");
                drop(streams);
                self.start_worker(name);
                self.start_source(name);
            }
            Err(e) => {
                tracing::error!(stream = %name, error = %e, "opening the WAL failed");
                slot.record.status = StreamStatus::CreatingFailed;
            }
        }
    }

    /// DeleteDeliveryStream: DELETING, close the WAL, remove the directory, remove the record.
    ///
    /// # Errors
    /// ResourceNotFoundException, ResourceInUseException (while CREATING), InternalFailure.
    pub fn delete(&self, name: &str) -> Result<Value, ApiError> {
        let _g = self.lock_control();
        let mut rec = self.record(name)?;
        if rec.status == StreamStatus::Creating {
            return Err(ApiError::new(
                ErrorCode::ResourceInUse,
                format!("Firehose {name} is in the CREATING state and cannot be deleted yet"),
            ));
        }
        rec.status = StreamStatus::Deleting;
        self.persist(&rec).map_err(internal)?;
        // The worker reads the WAL and the source writes it: both stop before the log is
        // closed and removed.
        self.stop_source(name);
        self.stop_worker(name);
        let open = {
            let mut streams = self.write_streams();
            match streams.get_mut(name) {
                Some(slot) => {
                    slot.record.status = StreamStatus::Deleting;
                    slot.open.take()
                }
                None => None,
            }
        };
        if let Some(s) = open {
            if let Err(e) = s.close() {
                tracing::warn!(stream = %name, error = %e, "closing the WAL of a deleted stream");
            }
        }
        self.remove_stream_dir(name).map_err(internal)?;
        self.registry.remove(name).map_err(internal)?;
        self.write_streams().remove(name);
        self.metrics.forget_stream(name);
        tracing::info!(stream = %name, "stream deleted");
        Ok(json!({}))
    }

    /// UpdateDestination.
    ///
    /// # Errors
    /// ResourceNotFoundException, ResourceInUseException, ConcurrentModificationException,
    /// InvalidArgumentException, InternalFailure.
    pub fn update(&self, req: &UpdateRequest) -> Result<Value, ApiError> {
        let _g = self.lock_control();
        let mut rec = self.record(&req.name)?;
        if rec.status != StreamStatus::Active {
            return Err(ApiError::new(
                ErrorCode::ResourceInUse,
                format!(
                    "Firehose {} is not ACTIVE ({})",
                    req.name,
                    rec.status.as_str()
                ),
            ));
        }
        if req.current_version != rec.version_id.to_string() {
            return Err(ApiError::new(
                ErrorCode::ConcurrentModification,
                format!(
                    "Firehose {} has version id {}, not {}",
                    req.name, rec.version_id, req.current_version
                ),
            ));
        }
        if req.destination_id != DESTINATION_ID {
            return Err(ApiError::invalid(format!(
                "Destination Id {} not found for firehose {}",
                req.destination_id, req.name
            )));
        }
        rec.destination = rec.destination.apply(&req.update)?;
        crate::delivery::check_destination(&self.config, &rec.destination)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        rec.version_id += 1;
        rec.updated_ms = Some(now_ms());
        self.persist(&rec).map_err(internal)?;
        // The new settings take effect with a new worker (the old one finishes an attempt in
        // progress; a pending intent is resent by the new one).
        self.stop_worker(&req.name);
        if let Some(slot) = self.write_streams().get_mut(&req.name) {
            slot.record = rec;
        }
        self.start_worker(&req.name);
        Ok(json!({}))
    }

    /// TagDeliveryStream.
    ///
    /// # Errors
    /// ResourceNotFoundException, LimitExceededException, InternalFailure.
    pub fn tag(&self, name: &str, tags: Vec<(String, String)>) -> Result<Value, ApiError> {
        let _g = self.lock_control();
        let mut rec = self.record(name)?;
        let mut map: BTreeMap<String, String> = rec.tags.iter().cloned().collect();
        for (k, v) in tags {
            map.insert(k, v);
        }
        if map.len() > TAGS_MAX {
            return Err(ApiError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "a stream has at most {TAGS_MAX} tags; this would make {}",
                    map.len()
                ),
            ));
        }
        rec.tags = map.into_iter().collect();
        self.persist(&rec).map_err(internal)?;
        if let Some(slot) = self.write_streams().get_mut(name) {
            slot.record = rec;
        }
        Ok(json!({}))
    }

    /// UntagDeliveryStream (unknown keys are ignored).
    ///
    /// # Errors
    /// ResourceNotFoundException, InternalFailure.
    pub fn untag(&self, name: &str, keys: &[String]) -> Result<Value, ApiError> {
        let _g = self.lock_control();
        let mut rec = self.record(name)?;
        rec.tags.retain(|(k, _)| !keys.contains(k));
        self.persist(&rec).map_err(internal)?;
        if let Some(slot) = self.write_streams().get_mut(name) {
            slot.record = rec;
        }
        Ok(json!({}))
    }

    // ---- reads ----

    /// DescribeDeliveryStream.
    ///
    /// # Errors
    /// ResourceNotFoundException.
    pub fn describe(
        &self,
        name: &str,
        limit: usize,
        exclusive_start: Option<&str>,
    ) -> Result<Value, ApiError> {
        let rec = self.record(name)?;
        let destinations = match exclusive_start {
            Some(s) if s >= DESTINATION_ID => vec![],
            _ if limit == 0 => vec![],
            _ => vec![rec.destination.description()],
        };
        let mut d = json!({
            "DeliveryStreamName": rec.name,
            "DeliveryStreamARN": self.arn(&rec.name),
            "DeliveryStreamStatus": rec.status.as_str(),
            "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"},
            "DeliveryStreamType": stream_type(&rec),
            "VersionId": rec.version_id.to_string(),
            "CreateTimestamp": rec.created_ms as f64 / 1000.0,
            "Destinations": destinations,
            "HasMoreDestinations": false,
        });
        if let Some(obj) = d.as_object_mut() {
            if let Some(u) = rec.updated_ms {
                obj.insert("LastUpdateTimestamp".into(), json!(u as f64 / 1000.0));
            }
            if let Some(h) = rec.throughput_hint_mbs {
                obj.insert(
                    "Source".into(),
                    json!({"DirectPutSourceDescription": {"ThroughputHintInMBs": h}}),
                );
            }
            if let Some(k) = &rec.kinesis_source {
                obj.insert(
                    "Source".into(),
                    json!({"KinesisStreamSourceDescription": {
                        "KinesisStreamARN": k.kinesis_stream_arn,
                        "RoleARN": k.role_arn,
                        "DeliveryStartTimestamp": rec.created_ms as f64 / 1000.0,
                    }}),
                );
            }
            if let Some(m) = &rec.msk_source {
                obj.insert(
                    "Source".into(),
                    json!({"MSKSourceDescription": {
                        "MSKClusterARN": m.cluster_arn,
                        "TopicName": m.topic,
                        "AuthenticationConfiguration": {
                            "RoleARN": m.role_arn,
                            "Connectivity": m.connectivity,
                        },
                        "DeliveryStartTimestamp": rec.created_ms as f64 / 1000.0,
                        "ReadFromTimestamp": m.start_ms(rec.created_ms) as f64 / 1000.0,
                    }}),
                );
            }
            if let Some(details) = self.failure_details(&rec.name) {
                obj.insert(
                    "FailureDescription".into(),
                    json!({"Type": "UNKNOWN_ERROR", "Details": details}),
                );
            }
        }
        Ok(json!({ "DeliveryStreamDescription": d }))
    }

    /// ListDeliveryStreams (name order).
    #[must_use]
    pub fn list(
        &self,
        limit: usize,
        stream_type: Option<&str>,
        exclusive_start: Option<&str>,
    ) -> Value {
        let streams = self.read_streams();
        let names: Vec<&String> = streams
            .iter()
            .filter(|(n, _)| exclusive_start.is_none_or(|s| n.as_str() > s))
            .filter(|(_, slot)| stream_type.is_none_or(|t| t == self::stream_type(&slot.record)))
            .map(|(n, _)| n)
            .collect();
        let has_more = names.len() > limit;
        let names: Vec<&String> = names.into_iter().take(limit).collect();
        json!({"DeliveryStreamNames": names, "HasMoreDeliveryStreams": has_more})
    }

    /// ListTagsForDeliveryStream (key order).
    ///
    /// # Errors
    /// ResourceNotFoundException.
    pub fn list_tags(
        &self,
        name: &str,
        exclusive_start: Option<&str>,
        limit: usize,
    ) -> Result<Value, ApiError> {
        let rec = self.record(name)?;
        let tags: Vec<&(String, String)> = rec
            .tags
            .iter()
            .filter(|(k, _)| exclusive_start.is_none_or(|s| k.as_str() > s))
            .collect();
        let has_more = tags.len() > limit;
        let tags: Vec<Value> = tags
            .into_iter()
            .take(limit)
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        Ok(json!({"Tags": tags, "HasMoreTags": has_more}))
    }

    /// Start/StopDeliveryStreamEncryption: the stream must exist; then refused.
    ///
    /// # Errors
    /// ResourceNotFoundException or InvalidArgumentException.
    pub fn encryption(&self, name: &str, op: &str) -> Result<Value, ApiError> {
        self.record(name)?;
        Err(ApiError::invalid(format!(
            "{op}: server-side encryption is not supported by hydrant"
        )))
    }

    // ---- data plane ----

    fn active_stream(&self, name: &str) -> Result<Arc<OpenStream>, ApiError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                "hydrantd is shutting down; retry",
            ));
        }
        let streams = self.read_streams();
        let slot = streams.get(name).ok_or_else(|| self.not_found(name))?;
        if slot.record.kinesis_source.is_some() {
            return Err(ApiError::invalid(
                hydrant_api::source::PUT_ON_KINESIS_SOURCE,
            ));
        }
        if slot.record.msk_source.is_some() {
            return Err(ApiError::invalid(hydrant_api::msk::PUT_ON_MSK_SOURCE));
        }
        match (&slot.open, slot.record.status) {
            (Some(s), StreamStatus::Active) => Ok(s.clone()),
            (_, status) => Err(ApiError::new(
                ErrorCode::ResourceNotFound,
                format!(
                    "Firehose {name} under account {} is not ACTIVE ({})",
                    self.config.account_id,
                    status.as_str()
                ),
            )),
        }
    }

    /// LimitExceededException unless a new stream `name`'s disk budget fits in the node's
    /// budget beside every existing stream's (a stream without a budget fits in none).
    fn check_budget_fits(&self, name: &str) -> Result<(), ApiError> {
        let node = self.config.wal.node_budget_bytes.unwrap_or(0);
        if node == 0 {
            return Ok(());
        }
        let budgets: Vec<Option<u64>> = self
            .read_streams()
            .keys()
            .map(|n| self.config.stream_budget(n))
            .chain(std::iter::once(self.config.stream_budget(name)))
            .collect();
        let total = budgets
            .iter()
            .try_fold(0u64, |sum, b| b.and_then(|b| sum.checked_add(b)));
        match total {
            Some(t) if t <= node => Ok(()),
            _ => Err(ApiError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "the streams' disk budgets would not fit in the node's disk budget of {node} \
                     bytes ({} streams with {} bytes each at most; wal.node_budget_bytes, \
                     wal.stream_budget_bytes)",
                    budgets.len(),
                    self.config.stream_budget(name).unwrap_or(0)
                ),
            )),
        }
    }

    fn node_budget_reached(&self) -> Option<u64> {
        let budget = self.config.wal.node_budget_bytes.unwrap_or(0);
        if budget == 0 {
            return None;
        }
        let used: u64 = self
            .read_streams()
            .values()
            .filter_map(|s| s.open.as_ref())
            .map(|s| s.wal.stats().disk_bytes)
            .sum();
        (used >= budget).then_some(used)
    }

    /// Appends one batch as one frame: the first half of an append, which copies the records
    /// into the log and needs them no more. [`Engine::append_wait`] waits for the stream's
    /// durability; the caller drops the records in between, so that a request waiting for its
    /// group commit holds none of its bodies' memory (under PutRecordBatch load most requests
    /// are waiting, and their bodies and decoded records were most of the request path's RSS).
    fn append_start<R: AsRef<[u8]>>(
        &self,
        stream: &OpenStream,
        records: &[R],
    ) -> Result<PendingAppend, ApiError> {
        let count = records.len() as u64;
        let bytes: u64 = records.iter().map(|r| r.as_ref().len() as u64).sum();
        if let Some(used) = self.node_budget_reached() {
            return Err(self.throttled(
                stream,
                count,
                format!(
                    "Slow down. The node's disk budget is reached ({used} bytes of WAL segments, \
                     budget {}); nothing was written, retry later",
                    self.config.wal.node_budget_bytes.unwrap_or(0)
                ),
            ));
        }
        match stream.wal.append_at(records, now_ms()) {
            Ok(ticket) => Ok(PendingAppend {
                ticket,
                count,
                bytes,
            }),
            Err(e) => Err(self.append_error(e, stream, |m| self.throttled(stream, count, m))),
        }
    }

    /// The second half of an append ([`Engine::append_start`]): waits for the stream's
    /// durability and counts the records in. Returns the LSN of the first record.
    async fn append_wait(
        &self,
        stream: &OpenStream,
        pending: PendingAppend,
    ) -> Result<Lsn, ApiError> {
        let PendingAppend {
            ticket,
            count,
            bytes,
        } = pending;
        let mut closed = stream.closed.subscribe();
        let waited = tokio::select! {
            biased;
            r = ticket => r,
            _ = closed.wait_for(|c| *c) => Err(hydrant_wal::Error::Closed),
        };
        let range = match waited {
            Ok(r) => r,
            Err(e) => {
                return Err(self.append_error(e, stream, |m| self.throttled(stream, count, m)))
            }
        };
        let [incoming_records, incoming_bytes, incoming_requests] = &stream.incoming;
        incoming_records.inc_by(count);
        incoming_bytes.inc_by(bytes);
        incoming_requests.inc();
        Ok(range.start)
    }

    /// A `ServiceUnavailableException` for `count` records refused by `stream`, counted.
    fn throttled(&self, stream: &OpenStream, count: u64, msg: String) -> ApiError {
        self.metrics
            .throttled_records
            .get_or_create(&stream.label)
            .inc_by(count);
        ApiError::new(ErrorCode::ServiceUnavailable, msg)
    }

    fn append_error(
        &self,
        e: hydrant_wal::Error,
        stream: &OpenStream,
        throttled: impl FnOnce(String) -> ApiError,
    ) -> ApiError {
        use hydrant_wal::Error as W;
        match e {
            W::Full { .. } | W::NoSpace { .. } => {
                throttled(format!("Slow down. {e}; nothing was written, retry later"))
            }
            W::Closed => {
                if self.closing.load(Ordering::SeqCst) {
                    ApiError::new(
                        ErrorCode::ServiceUnavailable,
                        "hydrantd is shutting down; retry",
                    )
                } else {
                    self.not_found(&stream.name)
                }
            }
            W::FrameTooLarge { .. } => ApiError::invalid(format!(
                "{e} (the WAL segment size is configured too small for this batch)"
            )),
            other => {
                tracing::error!(stream = %stream.name, error = %other, "append failed");
                ApiError::new(
                    ErrorCode::InternalFailure,
                    format!("the record could not be made durable: {other}"),
                )
            }
        }
    }

    /// PutRecord.
    ///
    /// # Errors
    /// ResourceNotFoundException, ServiceUnavailableException, InternalFailure.
    pub async fn put_record(&self, name: &str, data: Vec<u8>) -> Result<PutRecordOutput, ApiError> {
        let stream = self.active_stream(name)?;
        let pending = self.append_start(&stream, std::slice::from_ref(&data))?;
        drop(data);
        let first = self.append_wait(&stream, pending).await?;
        Ok(PutRecordOutput {
            record_id: record_id::encode(stream.incarnation, first),
            encrypted: false,
        })
    }

    /// PutRecordBatch: one WAL append for the whole batch.
    ///
    /// # Errors
    /// ResourceNotFoundException, ServiceUnavailableException (whole batch: nothing written),
    /// InternalFailure.
    pub async fn put_record_batch(
        &self,
        name: &str,
        records: Records,
    ) -> Result<BatchAck, ApiError> {
        let stream = self.active_stream(name)?;
        let pending = self.append_start(&stream, &records.slices())?;
        let count = pending.count;
        drop(records);
        let first = self.append_wait(&stream, pending).await?;
        Ok(BatchAck {
            incarnation: stream.incarnation,
            first,
            count,
        })
    }
}

/// `DeliveryStreamType` of a stream.
fn stream_type(rec: &StreamRecord) -> &'static str {
    if rec.kinesis_source.is_some() {
        hydrant_api::source::KINESIS_STREAM_AS_SOURCE
    } else if rec.msk_source.is_some() {
        hydrant_api::msk::MSK_AS_SOURCE
    } else {
        "DirectPut"
    }
}

/// An append written into the log and not yet durable ([`Engine::append_start`]): the ticket to
/// wait on and what to count once it completes.
struct PendingAppend {
    ticket: hydrant_wal::Ticket,
    /// Records appended.
    count: u64,
    /// Bytes of their data.
    bytes: u64,
}

/// A PutRecordBatch written whole: its records have the LSNs `first..first + count` in the
/// stream incarnation `incarnation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchAck {
    /// The stream's incarnation.
    pub incarnation: u64,
    /// The first record's LSN.
    pub first: Lsn,
    /// Records in the batch.
    pub count: u64,
}

impl BatchAck {
    /// The reply as the API model has it.
    #[must_use]
    pub fn output(&self) -> PutRecordBatchOutput {
        let request_responses = (0..self.count)
            .map(|i| PutRecordBatchEntry {
                record_id: Some(record_id::encode(self.incarnation, self.first.plus(i))),
                error_code: None,
                error_message: None,
            })
            .collect();
        PutRecordBatchOutput {
            failed_put_count: 0,
            encrypted: false,
            request_responses,
        }
    }

    /// The reply's JSON, the bytes `serde_json` writes for [`BatchAck::output`], written
    /// directly: record ids are hex and need no escaping, so a 500-record reply is one buffer
    /// rather than 500 strings and serde's escape scan over each.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        const HEAD: &[u8] = br#"{"FailedPutCount":0,"Encrypted":false,"RequestResponses":["#;
        const ENTRY_OPEN: &[u8] = br#"{"RecordId":""#;
        const ENTRY_CLOSE: &[u8] = br#""}"#;
        let entry = ENTRY_OPEN.len() + record_id::RECORD_ID_LEN + ENTRY_CLOSE.len() + 1;
        let mut out = Vec::with_capacity(HEAD.len() + entry * self.count as usize + 2);
        out.extend_from_slice(HEAD);
        for i in 0..self.count {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(ENTRY_OPEN);
            record_id::encode_into(self.incarnation, self.first.plus(i), &mut out);
            out.extend_from_slice(ENTRY_CLOSE);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn new_incarnation() -> u64 {
    loop {
        let v: u64 = rand::random();
        if v != 0 {
            return v;
        }
    }
}

fn sync_dir(path: &Path) -> Result<(), EngineError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_err("fsync directory", path))
}

/// Writes `stream.json` atomically: temp file, fsync, rename, directory fsync.
fn write_definition(dir: &Path, rec: &StreamRecord) -> std::io::Result<()> {
    use std::io::Write as _;
    // S3 destinations are written as their configuration (hydrant replay delivers to them);
    // the others as their description (no password or access key on disk twice).
    let doc = match &rec.destination {
        Destination::ExtendedS3(s3) => json!({
            "DeliveryStreamName": rec.name,
            "incarnation": format!("{:016x}", rec.incarnation),
            "version_id": rec.version_id,
            "ExtendedS3DestinationConfiguration": s3,
        }),
        other => json!({
            "DeliveryStreamName": rec.name,
            "incarnation": format!("{:016x}", rec.incarnation),
            "version_id": rec.version_id,
            "DestinationType": other.type_name(),
            "DestinationDescription": other.description(),
        }),
    };
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("stream.json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join("stream.json"))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Console snapshots while streams are created and deleted. A snapshot once took the
    /// streams lock again for each stream while holding it (for the stream's failure), and
    /// a create or delete waiting for the write lock between the two reads left both waiting for
    /// ever: hydrantd stopped answering anything (seen in members.rs's walk, with the console's
    /// sampler running). The walk must end within the limit.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn console_snapshots_do_not_deadlock_with_create_and_delete() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let _in_runtime = rt.enter();
        let tmp = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: tmp.path().join("data"),
            streams: vec![crate::config::StreamConfig::embedded_default()],
            ..Config::default()
        };
        let engine = Arc::new(Engine::open(config, Arc::new(Metrics::new())).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let snapshots: Vec<_> = (0..2)
            .map(|_| {
                let (engine, stop) = (engine.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += engine.console_snapshot(None).len() as u64;
                    }
                    n
                })
            })
            .collect();
        let (done, walked) = std::sync::mpsc::channel();
        let walker = {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for i in 0..150 {
                    let body = format!(
                        r#"{{"DeliveryStreamName":"s{i}","ExtendedS3DestinationConfiguration":{{"RoleARN":"arn:aws:iam::123456789012:role/r","BucketARN":"arn:aws:s3:::hydrant-local"}}}}"#
                    );
                    let req = crate::api::decode::decode_request(
                        Some(b"Firehose_20150804.CreateDeliveryStream"),
                        Some(b"application/x-amz-json-1.1"),
                        body.as_bytes(),
                    )
                    .unwrap();
                    let crate::api::decode::Request::Create(req) = req else {
                        panic!("not a create");
                    };
                    let (_, incarnation) = engine.create(req, None).unwrap();
                    engine.activate(&format!("s{i}"), incarnation);
                    if i >= 4 {
                        engine.delete(&format!("s{}", i - 4)).unwrap();
                    }
                }
                done.send(()).unwrap();
            })
        };
        let finished = walked.recv_timeout(std::time::Duration::from_secs(120));
        stop.store(true, Ordering::Relaxed);
        assert!(
            finished.is_ok(),
            "creates and deletes did not finish beside console snapshots: deadlocked"
        );
        walker.join().unwrap();
        let read: u64 = snapshots.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(read > 0, "the snapshots ran");
        engine.close();
    }

    /// Opened for intake, a stream takes records while its delivery says STARTING (not
    /// DELIVERING, which it is not yet); `start_delivery` starts the worker, once.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn delivery_starts_after_intake_and_says_so_meanwhile() {
        use crate::delivery::{STATE_DELIVERING, STATE_STARTING};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let _in_runtime = rt.enter();
        let tmp = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: tmp.path().join("data"),
            streams: vec![crate::config::StreamConfig::embedded_default()],
            ..Config::default()
        };
        let engine = Engine::open_for_intake(config, Arc::new(Metrics::new())).unwrap();
        let state = |engine: &Engine| {
            let streams = engine.read_streams();
            let slot = streams.values().next().unwrap();
            (
                slot.stats.state.load(Ordering::Relaxed),
                slot.worker.is_some(),
            )
        };
        assert_eq!(state(&engine), (STATE_STARTING, false));
        let name = engine.read_streams().keys().next().cloned().unwrap();
        let stream = engine.read_streams()[&name].open.clone().unwrap();
        let pending = engine
            .append_start(&stream, &[b"before delivery".to_vec()])
            .unwrap();
        rt.block_on(engine.append_wait(&stream, pending)).unwrap();
        assert_eq!(
            engine.console_snapshot(None)[0].delivery.state,
            STATE_STARTING,
            "the console reads the state"
        );
        engine.start_delivery();
        assert_eq!(state(&engine), (STATE_DELIVERING, true));
        engine.start_delivery();
        assert_eq!(state(&engine), (STATE_DELIVERING, true));
        engine.close();
    }

    /// The hand-written reply is byte for byte what serde writes for the model.
    #[test]
    fn batch_reply_json_is_the_models() {
        for (incarnation, first, count) in [
            (1, 0, 1),
            (0xdead_beef_0123_4567, 41, 3),
            (u64::MAX, u64::MAX - 600, 500),
        ] {
            let ack = BatchAck {
                incarnation,
                first: Lsn(first),
                count,
            };
            let serde = serde_json::to_vec(&ack.output()).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&ack.to_json()),
                String::from_utf8_lossy(&serde)
            );
            assert!(String::from_utf8_lossy(&serde).contains(r#""FailedPutCount":0"#));
        }
    }
}
