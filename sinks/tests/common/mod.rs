//! What the sinks' integration tests share: building the batches they deliver.
#![allow(dead_code)]

use bytes::Bytes;
use hydrant_sinks::{Batch, BatchIdentity, Record};

/// A batch with `identity` whose records hold `data`, at LSNs `identity.first_lsn`, `+ 1`, ...
/// and arriving at `first_arrival_ms`, `+ 1`, ... (stream version 1, not partitioned).
pub fn batch(
    identity: BatchIdentity,
    oldest_arrival_ms: u64,
    first_arrival_ms: u64,
    data: impl IntoIterator<Item = Bytes>,
) -> Batch {
    let records = data
        .into_iter()
        .zip(0..)
        .map(|(data, i)| Record {
            lsn: identity.first_lsn + i,
            sub: 0,
            arrival_ms: first_arrival_ms + i,
            data,
        })
        .collect();
    Batch {
        identity,
        stream_version: 1,
        contiguous: None,
        partition_keys: Vec::new(),
        oldest_arrival_ms,
        records,
    }
}
