//! The options of a log: when an append counts as done ([`Durability`]), segment sizes, the
//! budget, and the [`Observer`] that receives timings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// When an append counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// An append completes when its frame is on stable storage (`fdatasync` returned). The only
    /// durable mode. Concurrent appends share syncs (group commit).
    #[default]
    Sync,
    /// An append completes once written to the page cache; a background sync runs every `every`.
    /// A crash of the process loses nothing; a power loss or kernel crash can lose the appends of
    /// the last `every` plus the duration of one sync.
    Interval {
        /// Time between background syncs.
        every: Duration,
    },
    /// An append completes once written to the page cache, and nothing waits for the disk. The log
    /// still syncs in the background once a second so that readers (which only read synced
    /// records) make progress, but it promises nothing: a power loss can lose any of it.
    None,
}

/// How a new segment file gets its blocks (a recycled file already has written ones). See
/// "New segments" in the crate documentation for why both are durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SegmentFill {
    /// `fallocate`: the blocks are reserved as unwritten extents, which read as zeros, and are
    /// written only by the frames (the default). The disk writes each byte of the log once;
    /// the first `fdatasync` over a range also commits the extent conversion in the journal.
    /// Where the file system has no `fallocate`, falls back to [`SegmentFill::Zeros`].
    #[default]
    Unwritten,
    /// Reserve, then write zeros over the whole file and sync them before it joins the log:
    /// later syncs overwrite blocks in place, but the disk writes every byte of the log twice.
    Zeros,
}

/// Receives timings for metrics. Every method has a no-op default.
pub trait Observer: Send + Sync + fmt::Debug {
    /// A sync plan ran: how long it took and how many bytes of frames it made durable.
    fn on_sync(&self, _elapsed: Duration, _bytes: u64) {}
    /// An append wrote its frame: how long the locked part took and the frame's size.
    fn on_append(&self, _elapsed: Duration, _frame_bytes: u64) {}
}

/// Options of a log. `Default` gives segments growing from 1 MiB to 64 MiB, `sync` durability,
/// no budget.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Size of the largest segment file, the size segments grow to. Default 64 MiB; at least
    /// 8 KiB, a multiple of 4 KiB.
    pub segment_bytes: u64,
    /// Size of a new log's first segment (taken as `segment_bytes` when larger). Each later
    /// segment is twice its predecessor, up to `segment_bytes`, or larger when a frame needs it:
    /// a stream that is created and never written costs one small file, not a full segment and
    /// a spare. Default 1 MiB; at least 8 KiB, a multiple of 4 KiB.
    pub first_segment_bytes: u64,
    /// Data bytes between two sparse index entries. Default 64 KiB.
    pub index_interval_bytes: u32,
    /// When appends complete.
    pub durability: Durability,
    /// The most bytes the log's segment files may hold (segments count at their full,
    /// preallocated size, the spare and retired files kept for reuse included). `None`: no
    /// budget.
    pub budget_bytes: Option<u64>,
    /// Prepare the next segment on a background thread (the default). Off, rotation prepares it
    /// inline: deterministic, for simulation tests.
    pub background_prepare: bool,
    /// How a new (not recycled) segment file gets its blocks.
    pub new_segment_fill: SegmentFill,
    /// Receives timings for metrics.
    pub observer: Option<Arc<dyn Observer>>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 << 20,
            first_segment_bytes: 1 << 20,
            index_interval_bytes: 64 << 10,
            durability: Durability::Sync,
            budget_bytes: None,
            background_prepare: true,
            new_segment_fill: SegmentFill::Unwritten,
            observer: None,
        }
    }
}
