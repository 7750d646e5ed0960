//! Whole-system tests for hydrant: the processes run as they run in production and are killed
//! with SIGKILL at random moments. Shared helpers for the test files live here, with the real
//! or stand-in servers they talk to:
//!
//! - [`pg`]: a throwaway PostgreSQL cluster (initdb + pg_ctl on a free port).
//! - [`bulk`]: an OpenSearch / Elasticsearch `_bulk` receiver (a stand-in: no OpenSearch installs
//!   on these machines).
//! - [`http_receiver`]: a Firehose HTTP endpoint receiver.
//! - [`lambda`]: Lambda functions served through the Invoke API and as plain URLs.
//! - [`powercut`]: the record identity of the power-cut test (`tests/powercut/`).
//! - [`process`]: running an outside program (Python, the aws cli, promtool) that must succeed.
//! - [`recording_proxy`]: a loopback HTTP proxy that records request headers (S3 encryption).
//! - [`s3s`]: where the s3s-fs binary (the S3 server of the S3 tests) is.
//! - `serve` (private): the accept loop the stand-in servers share.
//!
//! How data flows: a test (in `engine/tests`, `sinks/tests`, `tools/tests`) starts a server
//! from here, points hydrantd or a sink at its port, and reads back what arrived through the
//! server's own record of it ([`http_receiver::HttpReceiver::requests`], the `_bulk` documents,
//! the Lambda invocations) or through an independent reader (psql, DuckDB, boto3).
//!
//! Binaries (`src/bin/`), run by the kill and power-cut tests as separate processes:
//! `hydrant-wal-load` (wal_load.rs: appends and prints what was acknowledged),
//! `powercut_load.rs` (the producer inside the power-cut guest) and `powercut_check.rs` (the
//! checker of what was delivered against what was acknowledged).

pub mod bulk;
pub mod http_receiver;
pub mod lambda;
pub mod pg;
pub mod powercut;
pub mod process;
pub mod recording_proxy;
pub mod s3s;
mod serve;

/// The bytes the WAL load generator appends as record `index` of batch `seq` of thread `thread`.
/// The kill test recomputes them to check every acknowledged record byte for byte.
#[must_use]
pub fn load_record(thread: u64, seq: u64, index: u64) -> Vec<u8> {
    let len = 16 + (thread * 31 + seq * 17 + index * 7) % 300;
    let mut v = format!("t{thread}-s{seq}-i{index}:").into_bytes();
    let seed = (thread << 40) ^ (seq << 8) ^ index ^ 0x5DEE_CE66_D1CE_4E5B;
    let fill = (len as usize).saturating_sub(v.len());
    v.extend(xorshift(seed).take(fill).map(|x| b'a' + (x % 26) as u8));
    v
}

/// Marsaglia's xorshift64 (13, 7, 17) from `seed`, the state after each step: cheap
/// pseudo-random test data that is the same on every run. A zero seed stays zero.
pub fn xorshift(seed: u64) -> impl Iterator<Item = u64> {
    std::iter::successors(Some(seed), |&x| {
        let x = x ^ (x << 13);
        let x = x ^ (x >> 7);
        Some(x ^ (x << 17))
    })
    .skip(1)
}
