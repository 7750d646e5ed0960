//! The Kinesis source's metrics, named as Firehose's CloudWatch metrics are:
//!
//! | metric | CloudWatch |
//! | --- | --- |
//! | `hydrant_kinesis_data_read_records_total{stream}` | DataReadFromKinesisStream.Records |
//! | `hydrant_kinesis_data_read_bytes_total{stream}` | DataReadFromKinesisStream.Bytes |
//! | `hydrant_kinesis_millis_behind_latest{stream,shard}` | KinesisMillisBehindLatest (per shard) |
//! | `hydrant_kinesis_throttled_get_records_total{stream}` | ThrottledGetRecords |
//! | `hydrant_kinesis_throttled_get_shard_iterator_total{stream}` | ThrottledGetShardIterator |
//! | `hydrant_kinesis_throttled_describe_stream_total{stream}` | ThrottledDescribeStream (here ListShards) |
//! | `hydrant_kinesis_budget_pauses_total{stream}` | (appends the disk budget paused) |
//! | `hydrant_kinesis_trimmed_total{stream}` | (resumes that found records trimmed unread: each a lost range, logged) |
//! | `hydrant_kinesis_deaggregated_records_total{stream}` | (user records taken out of KPL aggregates) |
//! | `hydrant_kinesis_source_failed{stream}` | 1 while the Kinesis stream cannot be read (FailureDescription) |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::metrics::StreamLabel;

/// Label set `{stream, shard}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabel {
    /// Delivery stream name.
    pub stream: String,
    /// Kinesis shard id.
    pub shard: String,
}

/// The families (see the module docs).
#[derive(Debug, Default)]
pub struct KinesisMetrics {
    /// DataReadFromKinesisStream.Records.
    pub read_records: Family<StreamLabel, Counter>,
    /// DataReadFromKinesisStream.Bytes.
    pub read_bytes: Family<StreamLabel, Counter>,
    /// KinesisMillisBehindLatest.
    pub millis_behind: Family<ShardLabel, Gauge>,
    /// ThrottledGetRecords.
    pub throttled_get_records: Family<StreamLabel, Counter>,
    /// ThrottledGetShardIterator.
    pub throttled_get_shard_iterator: Family<StreamLabel, Counter>,
    /// ThrottledDescribeStream.
    pub throttled_describe_stream: Family<StreamLabel, Counter>,
    /// Appends paused by the disk budget.
    pub budget_pauses: Family<StreamLabel, Counter>,
    /// Resumes that found the records after the position trimmed (each a lost range).
    pub trimmed: Family<StreamLabel, Counter>,
    /// User records taken out of KPL aggregates.
    pub deaggregated_records: Family<StreamLabel, Counter>,
    /// 1 while the source is failed.
    pub source_failed: Family<StreamLabel, Gauge>,
}

impl KinesisMetrics {
    /// Registers every family under `kinesis_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("kinesis");
        r.register(
            "data_read_records",
            "Records read from the Kinesis stream (DataReadFromKinesisStream.Records)",
            self.read_records.clone(),
        );
        r.register(
            "data_read_bytes",
            "Bytes read from the Kinesis stream (DataReadFromKinesisStream.Bytes)",
            self.read_bytes.clone(),
        );
        r.register(
            "millis_behind_latest",
            "How far the shard's reader is behind its tip, ms (KinesisMillisBehindLatest)",
            self.millis_behind.clone(),
        );
        r.register(
            "throttled_get_records",
            "GetRecords calls throttled (ThrottledGetRecords)",
            self.throttled_get_records.clone(),
        );
        r.register(
            "throttled_get_shard_iterator",
            "GetShardIterator calls throttled (ThrottledGetShardIterator)",
            self.throttled_get_shard_iterator.clone(),
        );
        r.register(
            "throttled_describe_stream",
            "ListShards calls throttled (ThrottledDescribeStream)",
            self.throttled_describe_stream.clone(),
        );
        r.register(
            "budget_pauses",
            "Appends of Kinesis records paused by the WAL's disk budget",
            self.budget_pauses.clone(),
        );
        r.register(
            "trimmed",
            "Resumes of a shard that found records trimmed by retention before they were read \
             (each a lost range, logged)",
            self.trimmed.clone(),
        );
        r.register(
            "deaggregated_records",
            "User records taken out of KPL aggregated Kinesis records",
            self.deaggregated_records.clone(),
        );
        r.register(
            "source_failed",
            "1 while the Kinesis stream cannot be read",
            self.source_failed.clone(),
        );
    }
}
