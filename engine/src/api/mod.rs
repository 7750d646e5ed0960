//! The Firehose JSON 1.1 API and the operational endpoints, on one port.
//!
//! - `POST /` with `X-Amz-Target: Firehose_20150804.<Operation>`: the Firehose operations.
//! - `GET /health/live`: 200 while the process serves HTTP.
//! - `GET /health/ready`: 200 once start-up recovery finished, 503 before and while stopping.
//! - `GET /metrics`: Prometheus text format (see [`crate::metrics`]).
//!
//! Replies are compact JSON with `Content-Type: application/x-amz-json-1.1` and an
//! `x-amzn-RequestId` header. A rejected request writes nothing: decoding and validation
//! ([`decode`]) finish before anything reaches the WAL.
//!
//! Files: [`handler`] (this module's routing and the operations). Decoding, validation, the
//! JSON shapes and the errors are the hydrant-api crate's (shared with the tools and the fuzz
//! targets); its modules are re-exported here so that the daemon's paths stay `crate::api::*`.

pub mod handler;

pub use hydrant_api::{
    conversion, decode, destination, errors, fastpath, limits, model, non_s3, operation,
    partitioning, unsupported, validate, CONTENT_TYPE,
};

pub use handler::{dispatch, handle, AppState};
