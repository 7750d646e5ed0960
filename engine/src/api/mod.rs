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
//! Decoding, validation, the JSON shapes and the errors need none of the daemon's dependencies
//! (feature `daemon`, on by default): producers and the fuzz target use them without it.

pub mod decode;
pub mod destination;
pub mod errors;
pub mod fastpath;
#[cfg(feature = "daemon")]
pub mod handler;
pub mod model;
pub mod others;
pub mod unsupported;
pub mod validate;

/// Content type of every Firehose reply.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

#[cfg(feature = "daemon")]
pub use handler::{dispatch, handle, AppState};
