//! What the operator's CLI `hydrant` shares with the benchmarks' binary `hydrant-bench`
//! (tools/bench): nothing of either command set, only the pieces both print or send with.
//!
//! - [`error`]: [`error::CliError`], the one error type of both binaries' commands; `main`
//!   turns it into a message and an exit status;
//! - [`firehose`]: the Firehose JSON 1.1 client (`hydrant put`, `hydrant-bench put` and
//!   `deliver`), with optional SigV4 signing;
//! - [`render`]: log contents and figures as text (RFC 3339 times, base64, thousands).
//!
//! The binary `hydrant` (src/main.rs) adds `wal`, `put` and `replay`, and forwards `bench` to
//! `hydrant-bench`; neither binary of this package links the test fixtures (hydrant-tests).

pub mod error;
pub mod firehose;
pub mod render;
