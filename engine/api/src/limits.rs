//! Firehose's limits on requests, checked while decoding ([`crate::decode`], and the fast path's
//! scan in [`crate::fastpath`]) and used by producers to cut their batches (`hydrant put`).

/// Largest record, before base64 (Firehose: 1,000 KiB).
pub const RECORD_BYTES_MAX: usize = 1_024_000;
/// Most records in one PutRecordBatch.
pub const BATCH_RECORDS_MAX: usize = 500;
/// Most bytes (decoded record data, summed) in one PutRecordBatch: 4 MiB.
pub const BATCH_BYTES_MAX: usize = 4 << 20;
/// Largest request body accepted. A full 4 MiB batch is about 5.6 MB of base64 plus JSON
/// punctuation; anything past 8 MiB cannot be a valid request and is refused unread.
pub const BODY_BYTES_MAX: usize = 8 << 20;
/// Most tags on a stream, and in one Tag/Untag request.
pub const TAGS_MAX: usize = 50;
