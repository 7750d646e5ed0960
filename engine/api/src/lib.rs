//! # hydrant-api: the Firehose JSON 1.1 API, without a server
//!
//! What a request is and whether it is valid, for everyone who builds or reads one: the daemon
//! (hydrant-engine, which adds routing, state and the operations), the tools (`hydrant put`,
//! `hydrant replay`, hydrant-bench) and the fuzz targets. Pure: no I/O, no state, no runtime.
//!
//! Files, and how a request flows through them:
//! - [`decode`]: headers and body bytes -> [`Operation`] -> [`Request`] (typed, validated) or
//!   the [`ApiError`] to answer with; PutRecord and PutRecordBatch bodies first go through
//! - [`fastpath`]: a scanner of the shape every producer sends; it only says "these are the
//!   stream name and the base64 strings" or "not mine", and [`decode`] builds the request from
//!   what it found (or decodes with serde when it declines);
//! - [`operation`] and [`limits`]: the operations by name, and Firehose's limits (shared by
//!   [`decode`] and [`fastpath`], which depend on each other in one direction only);
//! - [`model`]: the JSON shapes (botocore's member names), for decoding and for producers;
//! - [`destination`]: the destination configurations: validation at create and update (with
//!   the object sinks' own rules, from hydrant-sinks), merging on UpdateDestination, the
//!   descriptions DescribeDeliveryStream returns;
//! - [`non_s3`]: the shapes and rules of the Redshift, OpenSearch/Elasticsearch and HTTP
//!   endpoint destinations;
//! - [`conversion`]: `DataFormatConversionConfiguration` (record format conversion to
//!   Parquet): the create-time rules, over the sinks crate's own settings parser;
//! - [`partitioning`]: `DynamicPartitioningConfiguration` and the `MetadataExtraction`
//!   processor: the rules checked at create and update, the retry window;
//! - [`source`]: `DeliveryStreamType` and `KinesisStreamSourceConfiguration` (a stream read
//!   from a Kinesis data stream);
//! - [`msk`]: `MSKSourceConfiguration` (a stream read from a Kafka topic, `MSKAsSource`);
//! - [`unsupported`]: the members hydrant does not apply, refused by name;
//! - [`validate`]: Firehose's value constraints (names, tags, ARNs) written out;
//! - [`errors`]: [`ErrorCode`] and [`ApiError`], Firehose's error replies;
//! - [`record_id`]: record ids (stream incarnation + LSN).
//!
//! The daemon's own create-time checks that need its configuration (which Lambda endpoints,
//! the S3 client) stay in hydrant-engine (`delivery::check_destination`).

#![warn(missing_docs)]

pub mod conversion;
pub mod decode;
pub mod destination;
pub mod errors;
pub mod fastpath;
pub mod limits;
pub mod model;
pub mod msk;
pub mod non_s3;
pub mod operation;
pub mod partitioning;
pub mod record_id;
pub mod source;
pub mod unsupported;
pub mod validate;

pub use decode::{decode_request, Operation, Request};
pub use errors::{ApiError, ErrorCode};

/// Content type of every Firehose reply.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
