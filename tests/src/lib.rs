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
//! - [`recording_proxy`]: a loopback HTTP proxy that records request headers (S3 encryption).

pub mod bulk;
pub mod http_receiver;
pub mod lambda;
pub mod pg;
pub mod powercut;
pub mod recording_proxy;
mod serve;

/// The bytes the WAL load generator appends as record `index` of batch `seq` of thread `thread`.
/// The kill test recomputes them to check every acknowledged record byte for byte.
#[must_use]
pub fn load_record(thread: u64, seq: u64, index: u64) -> Vec<u8> {
    let len = 16 + (thread * 31 + seq * 17 + index * 7) % 300;
    let mut v = format!("t{thread}-s{seq}-i{index}:").into_bytes();
    let mut x = (thread << 40) ^ (seq << 8) ^ index ^ 0x5DEE_CE66_D1CE_4E5B;
    while (v.len() as u64) < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 26) as u8);
    }
    v
}
