//! Prometheus metrics, named after Firehose's CloudWatch metrics (namespace `AWS/Firehose`,
//! dimension `DeliveryStreamName` becomes the label `stream`):
//!
//! | metric | CloudWatch |
//! | --- | --- |
//! | `hydrant_incoming_records_total{stream}` | IncomingRecords |
//! | `hydrant_incoming_bytes_total{stream}` | IncomingBytes |
//! | `hydrant_incoming_put_requests_total{stream}` | IncomingPutRequests |
//! | `hydrant_throttled_records_total{stream}` | ThrottledRecords (here: refused by the disk budget) |
//! | `hydrant_api_requests_total{operation,code}` | `<Operation>.Requests` (code = `ok` or the error type) |
//! | `hydrant_api_request_duration_seconds{operation}` | `<Operation>.Latency` |
//! | `hydrant_wal_append_duration_seconds{stream}` | (the locked part of one append) |
//! | `hydrant_wal_sync_duration_seconds{stream}` | (one group-commit sync) |
//! | `hydrant_wal_synced_bytes_total{stream}` | |
//! | `hydrant_wal_disk_bytes{stream}` | bytes of segment files, spare included |
//! | `hydrant_wal_durable_lsn{stream}` / `hydrant_wal_next_lsn{stream}` | |
//! | `hydrant_wal_segments{stream}` | |
//! | `hydrant_wal_budget_bytes{stream}` | the stream's disk budget (absent when it has none) |
//! | `hydrant_streams` / `hydrant_ready` | ResourceCount / |
//! | `hydrant_delivery_to_s3_records_total{stream,destination}` | DeliveryToS3.Records |
//! | `hydrant_delivery_to_s3_bytes_total{stream,destination}` | DeliveryToS3.Bytes (before compression) |
//! | `hydrant_delivery_to_s3_objects_total{stream,destination}` | (objects written) |
//! | `hydrant_delivery_to_s3_success{stream,destination}` | DeliveryToS3.Success (successful attempts / attempts, since start; 1 before any) |
//! | `hydrant_delivery_to_s3_attempts_total{stream,destination,result}` | (result `ok` or `failed`) |
//! | `hydrant_delivery_to_s3_data_freshness_seconds{stream,destination}` | DeliveryToS3.DataFreshness (age of the oldest undelivered record; 0 when caught up) |
//! | `hydrant_delivery_retries_total{stream,destination}` | (failed attempts, each followed by a retry or the error output) |
//! | `hydrant_delivery_error_output_records_total{stream,destination}` | records written to the error output |
//! | `hydrant_delivery_backlog_records{stream,destination}` | durable LSN - cursor |
//! | `hydrant_delivery_cursor_lsn{stream,destination}` | every LSN below is delivered |
//! | `hydrant_delivery_buffering_interval_seconds{stream,destination}` | the destination's buffering interval |
//! | `hydrant_partition_count{stream,destination}` | PartitionCount (partitions active: buffering records, not yet delivered) |
//! | `hydrant_partition_count_exceeded_total{stream,destination}` | PartitionCountExceeded (records sent to `activePartitionExceeded`) |
//! | `hydrant_jq_processing_seconds{stream,destination}` | JQProcessing.Duration (seconds the last batch's jq extraction took) |
//! | `hydrant_destination_state{stream,destination}` | 0 delivering; stopped: 1 the WAL or checkpoint failed, 2 the destination is past the log's end, 3 the destination lost commits the WAL no longer holds; 4 starting (the daemon is ready and its workers are being started), 5 not started (the sinks could not be set up) |
//!
//! The Kinesis source's `hydrant_kinesis_*` metrics are listed in [`crate::source::kinesis::metrics`],
//! the Kafka source's `hydrant_kafka_*` in [`crate::source::kafka::metrics`].
//!
//! Counters only count requests that got past decoding to a stream; gauges are refreshed from
//! the WALs at every scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::delivery::DeliveryStats;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label set `{stream}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabel {
    /// Stream name.
    pub stream: String,
}

/// Label set `{stream, destination}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabel {
    /// Stream name.
    pub stream: String,
    /// Destination id.
    pub destination: String,
}

/// Label set `{stream, destination, result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabel {
    /// Stream name.
    pub stream: String,
    /// Destination id.
    pub destination: String,
    /// `ok` or `failed`.
    pub result: String,
}

/// Label set `{operation, code}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    /// Operation name, or `unknown`.
    pub operation: String,
    /// `ok` or the error type.
    pub code: String,
}

/// Label set `{operation}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    /// Operation name, or `unknown`.
    pub operation: String,
}

fn latency_histogram() -> Histogram {
    // 20 µs to ~5 s.
    Histogram::new(exponential_buckets(0.000_02, 2.0, 18))
}

/// Every metric hydrantd exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// IncomingRecords.
    pub incoming_records: Family<StreamLabel, Counter>,
    /// IncomingBytes.
    pub incoming_bytes: Family<StreamLabel, Counter>,
    /// IncomingPutRequests.
    pub incoming_put_requests: Family<StreamLabel, Counter>,
    /// ThrottledRecords.
    pub throttled_records: Family<StreamLabel, Counter>,
    /// API requests by operation and result.
    pub api_requests: Family<RequestLabel, Counter>,
    /// API latency by operation.
    pub api_duration: Family<OperationLabel, Histogram, fn() -> Histogram>,
    /// WAL append latency.
    pub wal_append: Family<StreamLabel, Histogram, fn() -> Histogram>,
    /// WAL sync latency.
    pub wal_sync: Family<StreamLabel, Histogram, fn() -> Histogram>,
    /// Bytes made durable by syncs.
    pub wal_synced_bytes: Family<StreamLabel, Counter>,
    /// Segment bytes on disk.
    pub wal_disk_bytes: Family<StreamLabel, Gauge>,
    /// Durable LSN.
    pub wal_durable_lsn: Family<StreamLabel, Gauge>,
    /// Next LSN.
    pub wal_next_lsn: Family<StreamLabel, Gauge>,
    /// Segment files.
    pub wal_segments: Family<StreamLabel, Gauge>,
    /// The stream's disk budget.
    pub wal_budget_bytes: Family<StreamLabel, Gauge>,
    /// Streams known.
    pub streams: Gauge,
    /// 1 once recovery finished.
    pub ready: Gauge,
    /// DeliveryToS3.Records.
    pub delivery_records: Family<DeliveryLabel, Counter>,
    /// DeliveryToS3.Bytes.
    pub delivery_bytes: Family<DeliveryLabel, Counter>,
    /// Objects written.
    pub delivery_objects: Family<DeliveryLabel, Counter>,
    /// DeliveryToS3.Success.
    pub delivery_success: Family<DeliveryLabel, Gauge<f64, AtomicU64>>,
    /// Attempts by result.
    pub delivery_attempts: Family<AttemptLabel, Counter>,
    /// DeliveryToS3.DataFreshness.
    pub delivery_freshness: Family<DeliveryLabel, Gauge<f64, AtomicU64>>,
    /// Retries.
    pub delivery_retries: Family<DeliveryLabel, Counter>,
    /// Records in the error output.
    pub delivery_error_records: Family<DeliveryLabel, Counter>,
    /// Durable records not yet delivered.
    pub delivery_backlog: Family<DeliveryLabel, Gauge>,
    /// The cursor.
    pub delivery_cursor: Family<DeliveryLabel, Gauge>,
    /// The destination's buffering interval.
    pub delivery_buffering_interval: Family<DeliveryLabel, Gauge<f64, AtomicU64>>,
    /// `hydrant_destination_state`: [`crate::delivery::STATE_DELIVERING`] or why it stopped.
    pub destination_state: Family<DeliveryLabel, Gauge>,
    /// PartitionCount.
    pub partition_count: Family<DeliveryLabel, Gauge>,
    /// PartitionCountExceeded.
    pub partition_exceeded: Family<DeliveryLabel, Counter>,
    /// JQProcessing.Duration.
    pub jq_seconds: Family<DeliveryLabel, Gauge<f64, AtomicU64>>,
    /// Serializes the copy of worker counters into the exported counters.
    delivery_sync: std::sync::Mutex<()>,
    /// The Kinesis source's metrics (`hydrant_kinesis_*`).
    pub kinesis: crate::source::kinesis::KinesisMetrics,
    /// The Kafka (MSK) source's metrics (`hydrant_kafka_*`).
    pub kafka: crate::source::kafka::KafkaMetrics,
    /// Per stream, the WAL sync latencies again as counts the console can read (the
    /// Prometheus histogram cannot be read back): its WAL sync p99 chart.
    sync_latency: std::sync::Mutex<std::collections::HashMap<String, Arc<LatencyCounts>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    #[must_use]
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hydrant");
        let m = Metrics {
            registry: Registry::default(),
            incoming_records: Family::default(),
            incoming_bytes: Family::default(),
            incoming_put_requests: Family::default(),
            throttled_records: Family::default(),
            api_requests: Family::default(),
            api_duration: Family::new_with_constructor(latency_histogram),
            wal_append: Family::new_with_constructor(latency_histogram),
            wal_sync: Family::new_with_constructor(latency_histogram),
            wal_synced_bytes: Family::default(),
            wal_disk_bytes: Family::default(),
            wal_durable_lsn: Family::default(),
            wal_next_lsn: Family::default(),
            wal_segments: Family::default(),
            wal_budget_bytes: Family::default(),
            streams: Gauge::default(),
            ready: Gauge::default(),
            delivery_records: Family::default(),
            delivery_bytes: Family::default(),
            delivery_objects: Family::default(),
            delivery_success: Family::default(),
            delivery_attempts: Family::default(),
            delivery_freshness: Family::default(),
            delivery_retries: Family::default(),
            delivery_error_records: Family::default(),
            delivery_backlog: Family::default(),
            delivery_cursor: Family::default(),
            delivery_buffering_interval: Family::default(),
            destination_state: Family::default(),
            partition_count: Family::default(),
            partition_exceeded: Family::default(),
            jq_seconds: Family::default(),
            kinesis: crate::source::kinesis::KinesisMetrics::default(),
            kafka: crate::source::kafka::KafkaMetrics::default(),
            delivery_sync: std::sync::Mutex::new(()),
            sync_latency: std::sync::Mutex::new(std::collections::HashMap::new()),
        };
        m.kinesis.register(&mut registry);
        m.kafka.register(&mut registry);
        registry.register(
            "incoming_records",
            "Records accepted (IncomingRecords)",
            m.incoming_records.clone(),
        );
        registry.register(
            "incoming_bytes",
            "Record bytes accepted (IncomingBytes)",
            m.incoming_bytes.clone(),
        );
        registry.register(
            "incoming_put_requests",
            "PutRecord and PutRecordBatch requests accepted (IncomingPutRequests)",
            m.incoming_put_requests.clone(),
        );
        registry.register(
            "throttled_records",
            "Records refused because a disk budget is reached (ThrottledRecords)",
            m.throttled_records.clone(),
        );
        registry.register(
            "api_requests",
            "API requests by operation and result code",
            m.api_requests.clone(),
        );
        registry.register(
            "api_request_duration_seconds",
            "API request latency by operation",
            m.api_duration.clone(),
        );
        registry.register(
            "wal_append_duration_seconds",
            "Time of the locked part of one WAL append",
            m.wal_append.clone(),
        );
        registry.register(
            "wal_sync_duration_seconds",
            "Time of one WAL group-commit sync",
            m.wal_sync.clone(),
        );
        registry.register(
            "wal_synced_bytes",
            "Frame bytes made durable by WAL syncs",
            m.wal_synced_bytes.clone(),
        );
        registry.register(
            "wal_disk_bytes",
            "Bytes held by the stream's WAL segment files (spare included)",
            m.wal_disk_bytes.clone(),
        );
        registry.register(
            "wal_durable_lsn",
            "One past the last durable LSN of the stream",
            m.wal_durable_lsn.clone(),
        );
        registry.register(
            "wal_next_lsn",
            "One past the last written LSN of the stream",
            m.wal_next_lsn.clone(),
        );
        registry.register(
            "wal_segments",
            "Segment files of the stream's WAL",
            m.wal_segments.clone(),
        );
        registry.register(
            "wal_budget_bytes",
            "The stream's disk budget (wal.stream_budget_bytes or its own budget_bytes)",
            m.wal_budget_bytes.clone(),
        );
        registry.register("streams", "Delivery streams known", m.streams.clone());
        registry.register(
            "ready",
            "1 once start-up recovery finished",
            m.ready.clone(),
        );
        registry.register(
            "delivery_to_s3_records",
            "Records delivered (DeliveryToS3.Records)",
            m.delivery_records.clone(),
        );
        registry.register(
            "delivery_to_s3_bytes",
            "Record bytes delivered, before compression (DeliveryToS3.Bytes)",
            m.delivery_bytes.clone(),
        );
        registry.register(
            "delivery_to_s3_objects",
            "Objects (batches) delivered",
            m.delivery_objects.clone(),
        );
        registry.register(
            "delivery_to_s3_success",
            "Successful delivery attempts / attempts since start (DeliveryToS3.Success)",
            m.delivery_success.clone(),
        );
        registry.register(
            "delivery_to_s3_attempts",
            "Delivery attempts by result",
            m.delivery_attempts.clone(),
        );
        registry.register(
            "delivery_to_s3_data_freshness_seconds",
            "Age of the oldest record not yet delivered (DeliveryToS3.DataFreshness)",
            m.delivery_freshness.clone(),
        );
        registry.register(
            "delivery_retries",
            "Failed delivery attempts, each followed by a retry or the error output",
            m.delivery_retries.clone(),
        );
        registry.register(
            "delivery_error_output_records",
            "Records written to the error output after the retry window",
            m.delivery_error_records.clone(),
        );
        registry.register(
            "delivery_backlog_records",
            "Durable records not yet delivered (durable LSN - cursor)",
            m.delivery_backlog.clone(),
        );
        registry.register(
            "delivery_cursor_lsn",
            "The destination's cursor: every LSN below it is delivered",
            m.delivery_cursor.clone(),
        );
        registry.register(
            "delivery_buffering_interval_seconds",
            "The destination's buffering interval (BufferingHints.IntervalInSeconds)",
            m.delivery_buffering_interval.clone(),
        );
        registry.register(
            "destination_state",
            "0: delivering; stopped: 1 the WAL or checkpoint failed, 2 the destination holds \
             records past the log's end, 3 the destination lost commits the WAL no longer holds; \
             4: starting (just after a start, intake open); 5: not started (sinks not set up)",
            m.destination_state.clone(),
        );
        registry.register(
            "partition_count",
            "Partitions (objects) of the last dynamically partitioned batch (PartitionCount)",
            m.partition_count.clone(),
        );
        registry.register(
            "partition_count_exceeded",
            "Records sent to the error output because the active-partition limit was reached \
             (PartitionCountExceeded)",
            m.partition_exceeded.clone(),
        );
        registry.register(
            "jq_processing_seconds",
            "Seconds the last batch's MetadataExtraction (jq) took (JQProcessing.Duration)",
            m.jq_seconds.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Copies a delivery worker's counters into the exported series (at scrape time).
    pub fn observe_delivery(
        &self,
        l: &DeliveryLabel,
        stats: &DeliveryStats,
        durable_lsn: u64,
        now_ms: u64,
    ) {
        let _g = self
            .delivery_sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let catch_up = |c: &Counter, v: u64| {
            c.inc_by(v.saturating_sub(c.get()));
        };
        catch_up(
            &self.delivery_records.get_or_create(l),
            load(&stats.records),
        );
        catch_up(&self.delivery_bytes.get_or_create(l), load(&stats.bytes));
        catch_up(
            &self.delivery_objects.get_or_create(l),
            load(&stats.batches),
        );
        let ok = load(&stats.attempts_ok);
        let failed = load(&stats.attempts_failed);
        for (result, v) in [("ok", ok), ("failed", failed)] {
            let a = AttemptLabel {
                stream: l.stream.clone(),
                destination: l.destination.clone(),
                result: result.to_string(),
            };
            catch_up(&self.delivery_attempts.get_or_create(&a), v);
        }
        let success = if ok + failed == 0 {
            1.0
        } else {
            ok as f64 / (ok + failed) as f64
        };
        self.delivery_success.get_or_create(l).set(success);
        catch_up(&self.delivery_retries.get_or_create(l), failed);
        catch_up(
            &self.delivery_error_records.get_or_create(l),
            load(&stats.error_output_records),
        );
        let oldest = load(&stats.oldest_undelivered_ms);
        let freshness = if oldest == 0 {
            0.0
        } else {
            now_ms.saturating_sub(oldest) as f64 / 1000.0
        };
        self.delivery_freshness.get_or_create(l).set(freshness);
        self.delivery_buffering_interval
            .get_or_create(l)
            .set(load(&stats.buffer_interval_ms) as f64 / 1000.0);
        let cursor = load(&stats.cursor);
        self.delivery_cursor
            .get_or_create(l)
            .set(i64::try_from(cursor).unwrap_or(i64::MAX));
        self.delivery_backlog
            .get_or_create(l)
            .set(i64::try_from(durable_lsn.saturating_sub(cursor)).unwrap_or(i64::MAX));
        self.destination_state
            .get_or_create(l)
            .set(i64::try_from(load(&stats.state)).unwrap_or(i64::MAX));
        let partitioning = stats
            .partitioning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some((partitions, pipeline)) = partitioning {
            self.partition_count
                .get_or_create(l)
                .set(i64::try_from(load(&partitions.partition_count)).unwrap_or(i64::MAX));
            catch_up(
                &self.partition_exceeded.get_or_create(l),
                load(&partitions.exceeded_records),
            );
            if let Some(p) = pipeline {
                self.jq_seconds
                    .get_or_create(l)
                    .set(load(&p.jq_last_nanos) as f64 / 1e9);
            }
        }
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Removes a deleted stream's series.
    pub fn forget_stream(&self, stream: &str) {
        let l = StreamLabel {
            stream: stream.to_string(),
        };
        for f in [
            &self.incoming_records,
            &self.incoming_bytes,
            &self.incoming_put_requests,
            &self.throttled_records,
            &self.wal_synced_bytes,
        ] {
            f.remove(&l);
        }
        for f in [&self.wal_append, &self.wal_sync] {
            f.remove(&l);
        }
        for f in [
            &self.wal_disk_bytes,
            &self.wal_durable_lsn,
            &self.wal_next_lsn,
            &self.wal_segments,
            &self.wal_budget_bytes,
        ] {
            f.remove(&l);
        }
        let d = DeliveryLabel {
            stream: stream.to_string(),
            destination: crate::api::destination::DESTINATION_ID.to_string(),
        };
        for f in [
            &self.delivery_records,
            &self.delivery_bytes,
            &self.delivery_objects,
            &self.delivery_retries,
            &self.delivery_error_records,
            &self.partition_exceeded,
        ] {
            f.remove(&d);
        }
        for f in [
            &self.delivery_success,
            &self.delivery_freshness,
            &self.delivery_buffering_interval,
            &self.jq_seconds,
        ] {
            f.remove(&d);
        }
        for f in [
            &self.delivery_backlog,
            &self.delivery_cursor,
            &self.destination_state,
            &self.partition_count,
        ] {
            f.remove(&d);
        }
        self.sync_latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(stream);
        for result in ["ok", "failed"] {
            self.delivery_attempts.remove(&AttemptLabel {
                stream: stream.to_string(),
                destination: d.destination.clone(),
                result: result.to_string(),
            });
        }
    }

    /// A WAL observer feeding this stream's histograms.
    #[must_use]
    pub fn wal_observer(&self, stream: &str) -> Arc<WalObserver> {
        let l = StreamLabel {
            stream: stream.to_string(),
        };
        Arc::new(WalObserver {
            append: self.wal_append.get_or_create(&l).clone(),
            sync: self.wal_sync.get_or_create(&l).clone(),
            synced_bytes: self.wal_synced_bytes.get_or_create(&l).clone(),
            sync_counts: self.sync_latency(stream),
        })
    }

    /// The stream's WAL sync latency counts (created on first use).
    #[must_use]
    pub fn sync_latency(&self, stream: &str) -> Arc<LatencyCounts> {
        self.sync_latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(stream.to_string())
            .or_default()
            .clone()
    }
}

/// Latencies counted in power-of-two buckets of microseconds: bucket `i` holds those below
/// 2^i µs (the last, everything longer). Monotonic: a reader takes differences of two reads.
#[derive(Debug, Default)]
pub struct LatencyCounts {
    buckets: [AtomicU64; LatencyCounts::BUCKETS],
}

impl LatencyCounts {
    /// Buckets: up to 2^23 µs (8.4 s), then one for longer.
    pub const BUCKETS: usize = 24;

    /// Counts one latency.
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = (64 - us.leading_zeros() as usize).min(Self::BUCKETS - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    #[must_use]
    pub fn read(&self) -> [u64; LatencyCounts::BUCKETS] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }

    /// The `q` quantile (0..=1) of the latencies counted between two reads, as the upper bound
    /// of its bucket in seconds; `None` when there were none.
    #[must_use]
    pub fn quantile(
        before: &[u64; LatencyCounts::BUCKETS],
        after: &[u64; LatencyCounts::BUCKETS],
        q: f64,
    ) -> Option<f64> {
        let diff: Vec<u64> = after
            .iter()
            .zip(before)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let total: u64 = diff.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in diff.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some((1u64 << i) as f64 / 1e6);
            }
        }
        None
    }
}

/// Receives a WAL's timings.
#[derive(Debug)]
pub struct WalObserver {
    append: Histogram,
    sync: Histogram,
    synced_bytes: Counter,
    sync_counts: Arc<LatencyCounts>,
}

impl hydrant_wal::Observer for WalObserver {
    fn on_sync(&self, elapsed: Duration, bytes: u64) {
        self.sync.observe(elapsed.as_secs_f64());
        self.sync_counts.observe(elapsed);
        self.synced_bytes.inc_by(bytes);
    }

    fn on_append(&self, elapsed: Duration, _frame_bytes: u64) {
        self.append.observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles_come_from_the_counts_between_two_reads() {
        let c = LatencyCounts::default();
        let before = c.read();
        for _ in 0..98 {
            c.observe(Duration::from_micros(100));
        }
        c.observe(Duration::from_millis(50));
        c.observe(Duration::from_millis(50));
        let after = c.read();
        let p50 = LatencyCounts::quantile(&before, &after, 0.5).unwrap();
        let p99 = LatencyCounts::quantile(&before, &after, 0.99).unwrap();
        assert!((100e-6..=256e-6).contains(&p50), "{p50}");
        assert!((50e-3..=0.1).contains(&p99), "{p99}");
        assert_eq!(LatencyCounts::quantile(&after, &after, 0.99), None);
    }

    #[test]
    fn names_follow_firehose() {
        let m = Metrics::new();
        let l = StreamLabel { stream: "s".into() };
        m.incoming_records.get_or_create(&l).inc_by(3);
        let _ = m.wal_observer("s");
        let text = m.encode();
        assert!(
            text.contains("hydrant_incoming_records_total{stream=\"s\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("hydrant_wal_sync_duration_seconds_bucket"),
            "{text}"
        );
    }
}
