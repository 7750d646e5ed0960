//! What a Lambda transform is told about the source of a batch's records when the delivery
//! stream reads a Kinesis data stream (`KinesisStreamAsSource`): the event's
//! `sourceKinesisStreamArn` and each record's `kinesisRecordMetadata`, as Firehose sends them;
//! or a Kafka topic (`MSKAsSource`): the event's `sourceMSKArn` and each record's
//! `mskRecordMetadata`, its value sent as `kafkaRecordValue` (and read back from the reply under
//! that name) instead of `data`.
//!
//! The engine fills a [`KinesisSourceRecords`] from the WAL frames' annexes (the Kinesis source
//! keeps every record's shard, sequence number, sub-sequence number, partition key and arrival
//! there) and passes it to [`super::Pipeline::process_with_source`]; the Lambda processor looks
//! each record up by its LSN. Records of a DirectPut stream have none, and their events carry
//! neither member.

use std::collections::HashMap;

use serde::Serialize;

/// One record's `kinesisRecordMetadata`.
///
/// ```text
/// {"shardId": "shardId-000000000000", "partitionKey": "k1",
///  "approximateArrivalTimestamp": 1664028820148,
///  "sequenceNumber": "49546986683135544286507457936321625675700192471156785154",
///  "subsequenceNumber": 0}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisRecordMetadata {
    /// The shard the record was read from.
    pub shard_id: String,
    /// The record's partition key (a KPL user record's own key).
    pub partition_key: String,
    /// When Kinesis took the record, ms since the epoch.
    pub approximate_arrival_timestamp: u64,
    /// The Kinesis record's sequence number (shared by the user records of a KPL aggregate).
    pub sequence_number: String,
    /// The user record's index in its KPL aggregate; 0 for a record that is not aggregated.
    pub subsequence_number: u64,
}

/// The Kinesis source of a batch: the stream's ARN and the metadata of its records by LSN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KinesisSourceRecords {
    /// `sourceKinesisStreamArn`.
    pub stream_arn: String,
    /// LSN -> the record's metadata. Invariant: holds every LSN of the batch it was built for
    /// (a record without an entry goes without `kinesisRecordMetadata`).
    pub records: HashMap<u64, KinesisRecordMetadata>,
}

/// One record's `mskRecordMetadata` (as Firehose sends it: offset and partition as strings).
///
/// ```text
/// {"offset": "0", "partitionId": "1", "approximateArrivalTimestamp": 1716369573887}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MskRecordMetadata {
    /// The record's offset in its partition.
    pub offset: String,
    /// The record's partition.
    pub partition_id: String,
    /// The record's Kafka timestamp, ms since the epoch.
    pub approximate_arrival_timestamp: u64,
}

/// The MSK source of a batch: the cluster's ARN and the metadata of its records by LSN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MskSourceRecords {
    /// `sourceMSKArn`.
    pub cluster_arn: String,
    /// LSN -> the record's metadata (same invariant as [`KinesisSourceRecords::records`]).
    pub records: HashMap<u64, MskRecordMetadata>,
}

/// Where a batch's records came from, for the Lambda event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceRecords {
    /// A Kinesis data stream.
    Kinesis(KinesisSourceRecords),
    /// An MSK (Kafka) topic.
    Msk(MskSourceRecords),
}
