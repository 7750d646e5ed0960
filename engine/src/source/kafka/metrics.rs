//! The Kafka (MSK) source's metrics, named after Firehose's metrics for an MSK source:
//!
//! | metric | CloudWatch |
//! | --- | --- |
//! | `hydrant_kafka_data_read_records_total{stream}` | DataReadFromSource.Records |
//! | `hydrant_kafka_data_read_bytes_total{stream}` | DataReadFromSource.Bytes |
//! | `hydrant_kafka_lag_records{stream,partition}` | (offset lag: the partition's high watermark minus the next offset to read) |
//! | `hydrant_kafka_partitions{stream}` | (partitions of the topic being read) |
//! | `hydrant_kafka_skipped_before_start_total{stream}` | (records older than ReadFromTimestamp, not delivered) |
//! | `hydrant_kafka_budget_pauses_total{stream}` | (appends the disk budget paused) |
//! | `hydrant_kafka_source_failed{stream}` | 1 while the topic cannot be read (FailureDescription) |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::metrics::StreamLabel;

/// Label set `{stream, partition}` (the topic is the stream's one topic).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    /// Delivery stream name.
    pub stream: String,
    /// Kafka partition.
    pub partition: String,
}

/// The families (see the module docs).
#[derive(Debug, Default)]
pub struct KafkaMetrics {
    /// DataReadFromSource.Records.
    pub read_records: Family<StreamLabel, Counter>,
    /// DataReadFromSource.Bytes.
    pub read_bytes: Family<StreamLabel, Counter>,
    /// Offset lag per partition.
    pub lag_records: Family<PartitionLabel, Gauge>,
    /// Partitions read.
    pub partitions: Family<StreamLabel, Gauge>,
    /// Records before the start, skipped.
    pub skipped_before_start: Family<StreamLabel, Counter>,
    /// Appends paused by the disk budget.
    pub budget_pauses: Family<StreamLabel, Counter>,
    /// 1 while the source is failed.
    pub source_failed: Family<StreamLabel, Gauge>,
}

impl KafkaMetrics {
    /// Registers every family under `kafka_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("kafka");
        r.register(
            "data_read_records",
            "Records read from the Kafka topic (DataReadFromSource.Records)",
            self.read_records.clone(),
        );
        r.register(
            "data_read_bytes",
            "Bytes of record values read from the Kafka topic (DataReadFromSource.Bytes)",
            self.read_bytes.clone(),
        );
        r.register(
            "lag_records",
            "Records of the partition not yet read (high watermark minus next offset)",
            self.lag_records.clone(),
        );
        r.register(
            "partitions",
            "Partitions of the topic being read",
            self.partitions.clone(),
        );
        r.register(
            "skipped_before_start",
            "Records older than the stream's ReadFromTimestamp (or creation), not delivered",
            self.skipped_before_start.clone(),
        );
        r.register(
            "budget_pauses",
            "Appends of Kafka records paused by the WAL's disk budget",
            self.budget_pauses.clone(),
        );
        r.register(
            "source_failed",
            "1 while the Kafka topic cannot be read",
            self.source_failed.clone(),
        );
    }
}
