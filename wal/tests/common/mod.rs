//! What the WAL's integration tests share.

use hydrant_wal::WalOptions;

/// Options for a test log of small segments (`segment_bytes`), a sparse-index entry every
/// 4 KiB, and no background preparation of spares (so that what lands on disk, and when, is the
/// test's doing alone).
pub fn small_segments(segment_bytes: u64) -> WalOptions {
    WalOptions {
        segment_bytes,
        index_interval_bytes: 4096,
        background_prepare: false,
        ..WalOptions::default()
    }
}
