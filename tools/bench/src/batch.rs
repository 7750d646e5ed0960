//! The delivery batches the in-process benchmarks ([`crate::format`], [`crate::partition`])
//! hand to a sink: records of stream `bench`, all arriving at the same moment.

use bytes::Bytes;
use hydrant_sinks::{Batch, BatchIdentity, Record};

/// When every benchmark record arrived (ms since the epoch).
const ARRIVAL_MS: u64 = 1_700_000_000_000;

/// Record `lsn` holding `data`.
pub fn record(lsn: u64, data: Vec<u8>) -> Record {
    Record {
        lsn,
        sub: 0,
        arrival_ms: ARRIVAL_MS,
        data: Bytes::from(data),
    }
}

/// The batch of `records` (not empty, in LSN order) for the first destination of stream
/// `bench`.
pub fn batch(records: Vec<Record>) -> Batch {
    debug_assert!(records.windows(2).all(|w| w[0].lsn < w[1].lsn));
    let (first_lsn, last_lsn) = match (records.first(), records.last()) {
        (Some(first), Some(last)) => (first.lsn, last.lsn),
        _ => (0, 0),
    };
    Batch {
        identity: BatchIdentity {
            stream: "bench".into(),
            incarnation: "bench".into(),
            destination_id: "destinationId-000000000001".into(),
            first_lsn,
            last_lsn,
        },
        stream_version: 1,
        oldest_arrival_ms: ARRIVAL_MS,
        contiguous: None,
        partition_keys: Vec::new(),
        records,
    }
}
