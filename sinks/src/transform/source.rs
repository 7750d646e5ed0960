//! What a Lambda transform is told about the source of a batch's records when the delivery
//! stream reads a Kinesis data stream (`KinesisStreamAsSource`): the event's
//! `sourceKinesisStreamArn` and each record's `kinesisRecordMetadata`, as Firehose sends them.
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
