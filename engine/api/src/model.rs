//! The JSON shapes of the Firehose operations hydrant serves (field names exactly as botocore's
//! `firehose/2015-08-04/service-2.json`).
//!
//! Inputs are deserialized with every member optional, so that a wrong JSON type is a
//! SerializationException (from serde) and a missing required member is an
//! InvalidArgumentException (from validation in [`crate::decode`]). The types derive both
//! `Serialize` and `Deserialize` so producers (`hydrant put`, `hydrant bench put`) can build
//! requests with them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"Key": ..., "Value": ...}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Tag key.
    pub key: Option<String>,
    /// Tag value (optional in Firehose; absent means empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `{"Data": "<base64>"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordInput {
    /// The record's bytes, base64.
    pub data: Option<String>,
}

/// `BufferingHints`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferingHints {
    /// Size threshold, MiB (1 to 128; default 5).
    #[serde(rename = "SizeInMBs", skip_serializing_if = "Option::is_none")]
    pub size_in_mbs: Option<u32>,
    /// Time threshold, seconds (0 to 900; default 300).
    #[serde(rename = "IntervalInSeconds", skip_serializing_if = "Option::is_none")]
    pub interval_in_seconds: Option<u32>,
}

/// `ExtendedS3DestinationConfiguration` and `ExtendedS3DestinationUpdate` (the update has the
/// same members, all optional). `S3DestinationConfiguration` is the subset without the extended
/// members and is stored in this form too. Nested structures hydrant does not interpret yet are
/// kept as JSON values and returned as given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExtendedS3Config {
    /// IAM role (kept for compatibility; hydrant does not assume roles).
    #[serde(rename = "RoleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Destination bucket.
    #[serde(rename = "BucketARN", skip_serializing_if = "Option::is_none")]
    pub bucket_arn: Option<String>,
    /// Object key prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Prefix for failed records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_output_prefix: Option<String>,
    /// Buffering thresholds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    /// UNCOMPRESSED | GZIP | ZIP | Snappy | HADOOP_SNAPPY.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_format: Option<String>,
    /// `{"NoEncryptionConfig": "NoEncryption"}` or `{"KMSEncryptionConfig": {...}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_configuration: Option<Value>,
    /// `{"Enabled": bool, "LogGroupName": ..., "LogStreamName": ...}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<Value>,
    /// Transformation processors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<Value>,
    /// Disabled | Enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_backup_mode: Option<String>,
    /// Backup destination (an S3DestinationConfiguration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_backup_configuration: Option<Value>,
    /// Backup destination update (UpdateDestination only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_backup_update: Option<Value>,
    /// Record format conversion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_format_conversion_configuration: Option<Value>,
    /// Dynamic partitioning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_partitioning_configuration: Option<Value>,
    /// Object file extension override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_extension: Option<String>,
    /// Time zone of timestamp prefixes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_time_zone: Option<String>,
}

/// `DeliveryStreamEncryptionConfigurationInput`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionInput {
    /// KMS key ARN.
    #[serde(rename = "KeyARN", skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,
    /// AWS_OWNED_CMK | CUSTOMER_MANAGED_CMK.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
}

/// CreateDeliveryStream's input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateDeliveryStreamInput {
    /// Required.
    pub delivery_stream_name: Option<String>,
    /// DirectPut (default) | KinesisStreamAsSource | MSKAsSource | DatabaseAsSource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_stream_type: Option<String>,
    /// `{"ThroughputHintInMBs": n}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_put_source_configuration: Option<Value>,
    /// `{"KinesisStreamARN", "RoleARN"}` (see [`crate::source`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis_stream_source_configuration: Option<Value>,
    /// Not supported (no MSK source).
    #[serde(
        rename = "MSKSourceConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub msk_source_configuration: Option<Value>,
    /// Not supported (no database source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_source_configuration: Option<Value>,
    /// Server-side encryption (not supported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_stream_encryption_configuration_input: Option<EncryptionInput>,
    /// The deprecated S3 destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_destination_configuration: Option<ExtendedS3Config>,
    /// The S3 destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_s3_destination_configuration: Option<ExtendedS3Config>,
    /// Redshift (lands with the destinations issue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redshift_destination_configuration: Option<Value>,
    /// Elasticsearch (lands with the destinations issue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elasticsearch_destination_configuration: Option<Value>,
    /// OpenSearch (lands with the destinations issue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amazonopensearchservice_destination_configuration: Option<Value>,
    /// OpenSearch Serverless (not planned).
    #[serde(
        rename = "AmazonOpenSearchServerlessDestinationConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub amazon_open_search_serverless_destination_configuration: Option<Value>,
    /// Splunk (not planned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub splunk_destination_configuration: Option<Value>,
    /// HTTP endpoint (lands with the destinations issue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_endpoint_destination_configuration: Option<Value>,
    /// Snowflake (not planned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snowflake_destination_configuration: Option<Value>,
    /// Iceberg (not planned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iceberg_destination_configuration: Option<Value>,
    /// Tags at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

/// DescribeDeliveryStream's input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeDeliveryStreamInput {
    /// Required.
    pub delivery_stream_name: Option<String>,
    /// Destinations to return (1 to 10000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Start after this destination id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive_start_destination_id: Option<String>,
}

/// ListDeliveryStreams' input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListDeliveryStreamsInput {
    /// 1 to 10000, default 10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Only streams of this type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_stream_type: Option<String>,
    /// Start after this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive_start_delivery_stream_name: Option<String>,
}

/// DeleteDeliveryStream's input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteDeliveryStreamInput {
    /// Required.
    pub delivery_stream_name: Option<String>,
    /// Accepted and ignored (there is no KMS grant to lose).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_force_delete: Option<bool>,
}

/// UpdateDestination's input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateDestinationInput {
    /// Required.
    pub delivery_stream_name: Option<String>,
    /// Required: the version the caller read.
    pub current_delivery_stream_version_id: Option<String>,
    /// Required: `destinationId-000000000001`.
    pub destination_id: Option<String>,
    /// Deprecated S3 update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_destination_update: Option<ExtendedS3Config>,
    /// S3 update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_s3_destination_update: Option<ExtendedS3Config>,
    /// Redshift.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redshift_destination_update: Option<Value>,
    /// Elasticsearch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elasticsearch_destination_update: Option<Value>,
    /// OpenSearch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amazonopensearchservice_destination_update: Option<Value>,
    /// OpenSearch Serverless.
    #[serde(
        rename = "AmazonOpenSearchServerlessDestinationUpdate",
        skip_serializing_if = "Option::is_none"
    )]
    pub amazon_open_search_serverless_destination_update: Option<Value>,
    /// Splunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub splunk_destination_update: Option<Value>,
    /// HTTP endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_endpoint_destination_update: Option<Value>,
    /// Snowflake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snowflake_destination_update: Option<Value>,
    /// Iceberg.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iceberg_destination_update: Option<Value>,
}

/// PutRecord's input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    /// Required.
    pub delivery_stream_name: Option<String>,
    /// Required.
    pub record: Option<RecordInput>,
}

/// PutRecordBatch's input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchInput {
    /// Required.
    pub delivery_stream_name: Option<String>,
    /// Required, 1 to 500.
    pub records: Option<Vec<RecordInput>>,
}

/// TagDeliveryStream's input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagDeliveryStreamInput {
    /// Required.
    pub delivery_stream_name: Option<String>,
    /// Required, 1 to 50.
    pub tags: Option<Vec<Tag>>,
}

/// UntagDeliveryStream's input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagDeliveryStreamInput {
    /// Required.
    pub delivery_stream_name: Option<String>,
    /// Required, 1 to 50.
    pub tag_keys: Option<Vec<String>>,
}

/// ListTagsForDeliveryStream's input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForDeliveryStreamInput {
    /// Required.
    pub delivery_stream_name: Option<String>,
    /// Start after this key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive_start_tag_key: Option<String>,
    /// 1 to 50, default 50.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// Start/StopDeliveryStreamEncryption's input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionOpInput {
    /// Required.
    pub delivery_stream_name: Option<String>,
    /// Start only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_stream_encryption_configuration_input: Option<EncryptionInput>,
}

/// PutRecord's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    /// The record's id (encodes the stream incarnation and LSN).
    pub record_id: String,
    /// Server-side encryption is on (never, in hydrant).
    pub encrypted: bool,
}

/// One entry of PutRecordBatch's `RequestResponses`. On success only `RecordId` is present
/// (Kinesis Agent treats any `ErrorCode`, even empty, as a failure).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchEntry {
    /// Present on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// Present on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Present on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// PutRecordBatch's output. Field order matters to Fluent Bit only in that the compact text
/// `"FailedPutCount":0` must appear; serde_json writes it compactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchOutput {
    /// Records not written.
    pub failed_put_count: u32,
    /// Server-side encryption is on (never, in hydrant).
    pub encrypted: bool,
    /// One entry per request record, same order.
    pub request_responses: Vec<PutRecordBatchEntry>,
}
