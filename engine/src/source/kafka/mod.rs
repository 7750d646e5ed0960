//! `MSKAsSource`: a delivery stream fed by a Kafka topic (Amazon MSK or any Kafka cluster),
//! exactly once from partition to WAL.
//!
//! Data flow: [`KafkaSource::spawn`] starts one thread per delivery stream, which owns one
//! librdkafka consumer (`BaseConsumer`, polled on that thread). The reader recovers every
//! partition's position from the WAL's last frame ([`appender::Appender::recover`]), looks the
//! topic's partitions up (metadata, every `discovery_interval_ms`, so partitions added later
//! are read within seconds) and `assign`s each new one (no consumer group subscription: one
//! node reads every partition) at the start [`partition::Partitions`] decides. Each poll's
//! records become one frame (or several, when they do not fit one) whose annex ([`annex`])
//! carries each record's topic, partition, offset, timestamp, key and headers and every
//! partition's position. Delivery reads the WAL as for DirectPut streams; only a Lambda
//! transform reads the annexes back ([`event`]) for its event's `mskRecordMetadata`.
//!
//! Nothing is committed to Kafka: the log is the only position, so a restart, a kill or a lost
//! consumer group cannot make the reader skip or repeat a record (the appender's rules).
//!
//! Failures: a cluster ARN that `[kafka]` does not map, a client the settings cannot build, a
//! topic that does not exist or a cluster that cannot be reached make the source failed: the
//! description's `FailureDescription` says why and `hydrant_kafka_source_failed` is 1. The last
//! two are looked at again every discovery interval, so a topic created later is read from the
//! start.
//!
//! Files: [`config`] (`[kafka]`), [`annex`] (the frame annex format), [`appender`] (WAL appends
//! and position recovery), [`partition`] (the owned partitions: starts and admission),
//! [`event`] (the records' metadata for a Lambda transform's event), [`metrics`].

pub mod annex;
pub mod appender;
pub mod config;
pub mod event;
pub mod metrics;
pub mod partition;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hydrant_api::msk::MskSource;
use hydrant_wal::Wal;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use self::annex::{RecordMeta, TimestampType};
use self::appender::{AppendError, Appender};
use self::partition::{Admit, Partitions, Start};
use crate::metrics::{Metrics, StreamLabel};
use crate::source::state::SourceState;

pub use self::config::KafkaSection as Section;
pub use self::metrics::KafkaMetrics;

/// Records taken from the consumer for one append, at most.
const BATCH_RECORDS_MAX: usize = 10_000;
/// Bytes of record values taken for one append, at most.
const BATCH_BYTES_MAX: usize = 4 << 20;
/// How long one poll waits for a first record.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Timeout of a metadata, watermark or offsets-by-time request.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Between two looks at the partitions' high watermarks (the lag metric).
const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// What a source needs from the engine.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The delivery stream.
    pub stream: String,
    /// The topic to read and its cluster.
    pub source: MskSource,
    /// Where reading starts: `ReadFromTimestamp`, else the delivery stream's creation; ms since
    /// the epoch.
    pub start_ms: u64,
    /// `[kafka]`.
    pub section: config::KafkaSection,
}

/// A running source; [`KafkaSource::stop`] ends it.
#[derive(Debug)]
pub struct KafkaSource {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<SourceState>,
}

impl KafkaSource {
    /// Starts reading `spec.source` into `wal`.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn spawn(
        wal: Arc<Wal>,
        spec: SourceSpec,
        metrics: Arc<Metrics>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<KafkaSource> {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(SourceState::default());
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("kafka-{}", spec.stream))
            .spawn(move || {
                let reader = Reader::new(wal, spec, metrics, st, sp, runtime);
                reader.run();
            })?;
        Ok(KafkaSource {
            stop,
            thread: Some(thread),
            state,
        })
    }

    /// The shared state (failure).
    #[must_use]
    pub fn state(&self) -> Arc<SourceState> {
        self.state.clone()
    }

    /// Stops the reader and waits for it (an append in flight finishes or is abandoned before
    /// it is written; either way the log stays the truth).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The reader thread's state.
struct Reader {
    wal: Arc<Wal>,
    spec: SourceSpec,
    metrics: Arc<Metrics>,
    state: Arc<SourceState>,
    stop: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
    label: StreamLabel,
}

impl Reader {
    fn new(
        wal: Arc<Wal>,
        spec: SourceSpec,
        metrics: Arc<Metrics>,
        state: Arc<SourceState>,
        stop: Arc<AtomicBool>,
        runtime: tokio::runtime::Handle,
    ) -> Reader {
        let label = StreamLabel {
            stream: spec.stream.clone(),
        };
        Reader {
            wal,
            spec,
            metrics,
            state,
            stop,
            runtime,
            label,
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn fail(&self, why: String) {
        if self.state.failure().as_ref() != Some(&why) {
            tracing::error!(stream = %self.spec.stream, error = %why, "the Kafka source cannot read");
        }
        self.metrics
            .kafka
            .source_failed
            .get_or_create(&self.label)
            .set(1);
        self.state.set(Some(why));
    }

    fn healthy(&self) {
        if self.state.failure().is_some() {
            tracing::info!(stream = %self.spec.stream, "the Kafka topic is readable again");
        }
        self.metrics
            .kafka
            .source_failed
            .get_or_create(&self.label)
            .set(0);
        self.state.set(None);
    }

    /// Waits until stopped (a failure no retry can fix: it stays described).
    fn idle(&self) {
        while !self.stopped() {
            std::thread::sleep(POLL_WAIT);
        }
    }

    fn consumer(&self, cluster: &config::KafkaCluster) -> Result<BaseConsumer, String> {
        let mut c = ClientConfig::new();
        c.set("group.id", format!("hydrant-{}", self.spec.stream))
            .set("client.id", format!("hydrant-{}", self.spec.stream))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A position past the retained log (retention removed it unread) restarts at the
            // earliest retained record.
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .set("fetch.wait.max.ms", "100")
            .set("queued.max.messages.kbytes", "16384");
        for (k, v) in cluster.client_settings() {
            c.set(k, v);
        }
        c.create::<BaseConsumer>()
            .map_err(|e| format!("the Kafka client cannot be made: {e}"))
    }

    fn run(self) {
        let arn = self.spec.source.cluster_arn.clone();
        let appender = match Appender::recover(self.wal.clone()) {
            Ok(a) => a,
            Err(e) => {
                self.fail(format!(
                    "recovering the Kafka positions from the WAL failed: {e}"
                ));
                return self.idle();
            }
        };
        tracing::info!(stream = %self.spec.stream, positions = ?appender.positions(), "Kafka source starting");
        let Some(cluster) = self.spec.section.cluster(&arn) else {
            self.fail(format!(
                "MSK cluster {arn} is not mapped to Kafka bootstrap servers: add \
                 [kafka.clusters.\"{arn}\"] bootstrap_servers = \"host:port,...\" (or a default \
                 [kafka] bootstrap_servers) to hydrantd's configuration"
            ));
            return self.idle();
        };
        let consumer = match self.consumer(&cluster) {
            Ok(c) => c,
            Err(e) => {
                self.fail(e);
                return self.idle();
            }
        };
        let mut partitions = Partitions::new(&self.spec.source.topic, self.spec.start_ms);
        let interval = Duration::from_millis(self.spec.section.discovery_interval_ms);
        let mut next_discovery = Instant::now();
        let mut next_lag = Instant::now() + LAG_INTERVAL;
        while !self.stopped() {
            if Instant::now() >= next_discovery {
                self.discover(&consumer, &appender, &mut partitions);
                next_discovery = Instant::now() + interval;
            }
            if Instant::now() >= next_lag {
                self.update_lag(&consumer, &appender, &partitions);
                next_lag = Instant::now() + LAG_INTERVAL;
            }
            if partitions.owned().next().is_none() {
                std::thread::sleep(POLL_WAIT);
                continue;
            }
            let (data, metas, skipped) = self.poll_batch(&consumer, &appender, &mut partitions);
            if skipped > 0 {
                self.metrics
                    .kafka
                    .skipped_before_start
                    .get_or_create(&self.label)
                    .inc_by(skipped);
            }
            if data.is_empty() {
                continue;
            }
            let bytes: u64 = data.iter().map(|d| d.len() as u64).sum();
            let count = data.len() as u64;
            let pauses = self
                .metrics
                .kafka
                .budget_pauses
                .get_or_create(&self.label)
                .clone();
            let stop = self.stop.clone();
            let appended = self.runtime.block_on(appender.append(
                &data,
                metas,
                &|| stop.load(Ordering::SeqCst),
                &|| {
                    pauses.inc();
                },
            ));
            match appended {
                Ok(()) => {
                    let k = &self.metrics.kafka;
                    k.read_records.get_or_create(&self.label).inc_by(count);
                    k.read_bytes.get_or_create(&self.label).inc_by(bytes);
                }
                Err(AppendError::Stopped) => return,
                Err(e) => {
                    self.fail(format!("appending to the stream's WAL failed: {e}"));
                    return self.idle();
                }
            }
        }
    }

    /// Looks the topic's partitions up and starts reading those not owned yet.
    fn discover(&self, consumer: &BaseConsumer, appender: &Appender, partitions: &mut Partitions) {
        let topic = partitions.topic().to_string();
        let arn = &self.spec.source.cluster_arn;
        let listed: Vec<i32> = match consumer.fetch_metadata(Some(&topic), CALL_TIMEOUT) {
            Err(e) => {
                return self.fail(format!(
                    "the Kafka cluster of MSK cluster {arn} cannot be reached: {e}"
                ))
            }
            Ok(md) => match md.topics().iter().find(|t| t.name() == topic) {
                None => {
                    return self.fail(format!(
                        "Kafka topic {topic} was not found in MSK cluster {arn}"
                    ))
                }
                Some(t) => match t.error() {
                    Some(e) => {
                        return self.fail(format!(
                            "Kafka topic {topic} was not found in MSK cluster {arn}: {:?}",
                            rdkafka::error::RDKafkaErrorCode::from(e)
                        ))
                    }
                    None if t.partitions().is_empty() => {
                        return self.fail(format!(
                            "Kafka topic {topic} of MSK cluster {arn} has no partitions"
                        ))
                    }
                    None => t.partitions().iter().map(|p| p.id()).collect(),
                },
            },
        };
        self.healthy();
        let new: Vec<i32> = listed
            .into_iter()
            .filter(|p| !partitions.owns(*p))
            .collect();
        if new.is_empty() {
            return;
        }
        let by_time = self.offsets_by_time(consumer, &topic, &new, appender);
        let mut tpl = TopicPartitionList::new();
        let mut starts = Vec::new();
        for p in &new {
            let start = partitions.own(appender, *p, by_time.get(p).copied());
            let offset = match start {
                Start::At(o) => Offset::Offset(o),
                Start::Beginning => Offset::Beginning,
            };
            if let Err(e) = tpl.add_partition_offset(&topic, *p, offset) {
                tracing::error!(stream = %self.spec.stream, partition = p, error = %e, "a partition cannot be assigned");
                partitions.release(*p);
                continue;
            }
            starts.push((*p, start));
        }
        match consumer.incremental_assign(&tpl) {
            Ok(()) => {
                tracing::info!(stream = %self.spec.stream, topic = %topic, starts = ?starts, "reading partitions");
            }
            Err(e) => {
                for p in &new {
                    partitions.release(*p);
                }
                self.fail(format!(
                    "partitions of Kafka topic {topic} cannot be assigned: {e}"
                ));
            }
        }
        self.metrics
            .kafka
            .partitions
            .get_or_create(&self.label)
            .set(partitions.owned().count() as i64);
    }

    /// The broker's first offset at or after the start, for each partition in `new` that has no
    /// position in the log and for which the broker knows one.
    fn offsets_by_time(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
        new: &[i32],
        appender: &Appender,
    ) -> std::collections::BTreeMap<i32, i64> {
        let mut out = std::collections::BTreeMap::new();
        let mut tpl = TopicPartitionList::new();
        for p in new {
            if appender.position(&(topic.to_string(), *p)).is_some() {
                continue;
            }
            let ts = i64::try_from(self.spec.start_ms).unwrap_or(i64::MAX);
            if tpl
                .add_partition_offset(topic, *p, Offset::Offset(ts))
                .is_err()
            {
                return out;
            }
        }
        if tpl.count() == 0 {
            return out;
        }
        match consumer.offsets_for_times(tpl, CALL_TIMEOUT) {
            Ok(got) => {
                for e in got.elements() {
                    if let (None, Offset::Offset(o)) = (e.error().err(), e.offset()) {
                        out.insert(e.partition(), o);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(stream = %self.spec.stream, error = %e, "offsets by time unknown; reading new partitions from their beginning");
            }
        }
        out
    }

    /// `hydrant_kafka_lag_records` from the partitions' high watermarks (a ListOffsets request
    /// per partition, every [`LAG_INTERVAL`]).
    fn update_lag(&self, consumer: &BaseConsumer, appender: &Appender, partitions: &Partitions) {
        let topic = partitions.topic().to_string();
        for p in partitions.owned() {
            let Ok((_, high)) = consumer.fetch_watermarks(&topic, p, CALL_TIMEOUT) else {
                continue;
            };
            if high < 0 {
                continue;
            }
            let next = appender.position(&(topic.clone(), p)).map_or(0, |o| o + 1);
            self.metrics
                .kafka
                .lag_records
                .get_or_create(&metrics::PartitionLabel {
                    stream: self.spec.stream.clone(),
                    partition: p.to_string(),
                })
                .set((high - next).max(0));
        }
    }

    /// One poll's records: waits up to [`POLL_WAIT`] for a first one, then takes what the
    /// client already holds, up to [`BATCH_RECORDS_MAX`] records or [`BATCH_BYTES_MAX`] bytes.
    /// Returns the admitted records, their metadata, and how many were before the start.
    fn poll_batch(
        &self,
        consumer: &BaseConsumer,
        appender: &Appender,
        partitions: &mut Partitions,
    ) -> (Vec<Vec<u8>>, Vec<RecordMeta>, u64) {
        let mut data = Vec::new();
        let mut metas = Vec::new();
        let mut skipped = 0u64;
        let mut bytes = 0usize;
        let mut wait = POLL_WAIT;
        while data.len() < BATCH_RECORDS_MAX && bytes < BATCH_BYTES_MAX {
            let m = match consumer.poll(wait) {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!(stream = %self.spec.stream, error = %e, "Kafka consumer error");
                    break;
                }
                Some(Ok(m)) => m,
            };
            wait = Duration::ZERO;
            if m.topic() != partitions.topic() || !partitions.owns(m.partition()) {
                continue;
            }
            let (timestamp_ms, timestamp_type) = match m.timestamp() {
                rdkafka::Timestamp::NotAvailable => (-1, TimestampType::NotAvailable),
                rdkafka::Timestamp::CreateTime(t) => (t, TimestampType::CreateTime),
                rdkafka::Timestamp::LogAppendTime(t) => (t, TimestampType::LogAppendTime),
            };
            let ts = (timestamp_type != TimestampType::NotAvailable).then_some(timestamp_ms);
            match partitions.admit(appender, m.partition(), m.offset(), ts) {
                Admit::Yes => {}
                Admit::Duplicate => continue,
                Admit::BeforeStart => {
                    skipped += 1;
                    continue;
                }
            }
            let value = m.payload().map(<[u8]>::to_vec).unwrap_or_default();
            bytes += value.len();
            let headers = m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default();
            metas.push(RecordMeta {
                topic: m.topic().to_string(),
                partition: m.partition(),
                offset: m.offset(),
                timestamp_ms,
                timestamp_type,
                key: m.key().map(<[u8]>::to_vec),
                headers,
            });
            data.push(value);
        }
        (data, metas, skipped)
    }
}
