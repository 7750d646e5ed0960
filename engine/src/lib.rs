//! # hydrant-engine: the daemon `hydrantd`
//!
//! A self-hosted, wire-compatible Amazon Data Firehose: producers send PutRecord and
//! PutRecordBatch (Firehose JSON 1.1 over HTTP or HTTPS, optionally SigV4-signed); each batch
//! becomes one frame in its stream's write-ahead log (`DIR/streams/<name>/wal`, the
//! `hydrant-wal` crate) and is acknowledged only once the log reports it durable.
//!
//! What a request is and whether it is valid (the JSON shapes, decoding, validation, errors,
//! record ids) is the hydrant-api crate's, shared with the tools and the fuzz targets; its
//! modules are re-exported under [`api`] and [`record_id`].
//!
//! Modules, in the order a record meets them:
//! - [`server`]: the HTTP(S) server and graceful shutdown;
//! - [`api`]: routing and the operations' handler (`api/handler.rs`; decoding by hydrant-api's
//!   [`api::decode::decode_request`]);
//! - [`auth`]: SigV4 verification;
//! - [`streams`]: the engine: one WAL per stream, lifecycle, the put path;
//! - [`source`]: the Kinesis Data Streams source (`KinesisStreamAsSource`), appending to the WAL;
//! - [`registry`]: stream definitions, versions, tags and incarnations in sled;
//! - [`delivery`]: per-destination workers: cursor, intent, buffering, retries, error output
//!   (`spec.rs` turns a stream's record into the worker's [`delivery::DeliverySpec`], with the
//!   sinks `build_sinks.rs` builds and `conversion.rs`'s Parquet converter; `worker.rs` runs
//!   the protocol, `worker/partitioned.rs` its partitioned rounds; `state.rs` is its
//!   checkpoint; `recent.rs` the recent failures the console shows);
//! - [`metrics`]: Prometheus metrics named after Firehose's CloudWatch metrics;
//! - [`config`]: defaults, the TOML file, `HYDRANT_*` variables;
//! - [`console`]: the web console at `/console/`.

#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod config;
pub mod console;
pub mod delivery;
pub mod metrics;
pub mod registry;
pub mod server;
pub mod source;
pub mod streams;

pub use config::Config;
pub use hydrant_api::record_id;
pub use hydrant_api::{decode_request, Operation, Request};
pub use hydrant_api::{ApiError, ErrorCode};
pub use streams::{BatchAck, Engine};
