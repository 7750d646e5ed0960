//! # hydrant-engine: the daemon `hydrantd`
//!
//! A self-hosted, wire-compatible Amazon Data Firehose: producers send PutRecord and
//! PutRecordBatch (Firehose JSON 1.1 over HTTP or HTTPS, optionally SigV4-signed); each batch
//! becomes one frame in its stream's write-ahead log (`DIR/streams/<name>/wal`, the
//! `hydrant-wal` crate) and is acknowledged only once the log reports it durable.
//!
//! Modules:
//! - [`config`]: defaults, the TOML file, `HYDRANT_*` variables (the types `hydrant put` and
//!   `hydrant bench put` use too);
//! - [`api`]: routing, request decoding ([`api::decode::decode_request`], pure, fuzzed),
//!   destinations, the JSON shapes ([`api::model`]), Firehose errors ([`api::errors`]);
//! - [`auth`]: SigV4 verification;
//! - [`registry`]: stream definitions, versions, tags and incarnations in sled;
//! - [`streams`]: the engine: one WAL per stream, lifecycle, the put path;
//! - [`delivery`]: per-destination workers: cursor, intent, buffering, retries, error output;
//! - [`record_id`]: record ids (incarnation + LSN);
//! - [`metrics`]: Prometheus metrics named after Firehose's CloudWatch metrics;
//! - [`server`]: the HTTP(S) server and graceful shutdown.
//!
//! Feature `daemon` (default) brings everything; without it only [`config`], [`api`] (decoding,
//! shapes, errors, validation, destinations) and [`record_id`] are built, with light dependencies.

#![warn(missing_docs)]

pub mod api;
#[cfg(feature = "daemon")]
pub mod auth;
pub mod config;
#[cfg(feature = "daemon")]
pub mod delivery;
#[cfg(feature = "daemon")]
pub mod metrics;
pub mod record_id;
#[cfg(feature = "daemon")]
pub mod registry;
#[cfg(feature = "daemon")]
pub mod server;
#[cfg(feature = "daemon")]
pub mod streams;

pub use api::decode::{decode_request, Operation, Request};
pub use api::errors::{ApiError, ErrorCode};
pub use config::Config;
#[cfg(feature = "daemon")]
pub use streams::{BatchAck, Engine};
