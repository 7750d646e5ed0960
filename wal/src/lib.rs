//! # hydrant-wal: the segmented write-ahead log under every hydrant stream
//!
//! One log per delivery stream. Producers' batches are appended as frames; an append is
//! acknowledged only once its frame is durable; delivery reads frames back through memory maps,
//! never past the durable end; retention deletes whole segments behind every cursor.
//!
//! ## Guarantees
//!
//! 1. **Acknowledged means durable** (mode [`Durability::Sync`], the default): a [`Ticket`]
//!    completes only after `fdatasync` covered the frame (and, after a rotation, the directory
//!    `fsync` covered the segment's name). After a power loss every acknowledged record is there
//!    with its exact bytes. [`Durability::Interval`] and [`Durability::None`] acknowledge after
//!    the write and are not durable; their loss windows are documented on the variants.
//! 2. **All or nothing per append.** One append is one frame under one CRC: after a crash a frame is
//!    there whole or not at all. A rejected append ([`Error::Full`], [`Error::FrameTooLarge`], ...)
//!    writes nothing.
//! 3. **A prefix.** The recovered log is a prefix of what was appended, with dense LSNs: no holes,
//!    no reordering, no LSN reused for different bytes after it was read.
//! 4. **Damage is reported, not repaired away.** A torn tail in the active segment (writes never
//!    acknowledged) is cut and zeroed; so is everything else after the recovered end (a recycled
//!    file's earlier contents, frames a power loss kept behind a dropped one), durably, before
//!    the first append, so that no frame from before an open can ever follow one written after
//!    it. Bad bytes in a sealed segment, a missing segment or a bad header are typed errors
//!    naming the segment and offset.
//! 5. **Bounded resources.** Memory holds O(segments) metadata plus the active segment's sparse
//!    index (at most one entry per `index_interval_bytes`); it does not grow with record count.
//!    Disk use is bounded by [`WalOptions::budget_bytes`]; past it appends fail with
//!    [`Error::Full`], and nothing is dropped.
//!
//! ## Design constraints
//!
//! - A segment is a preallocated file of `segment_bytes` (default 64 MiB, at least 8 KiB).
//! - A frame never spans segments, so the largest append is [`Wal::batch_bytes_max`] (a little
//!   under the segment size; the API's 4 MiB batches fit easily).
//! - Records are at most 4 GiB - 1 each (u32 length); the API limits them to 1,000 KiB.
//! - One process opens a log at a time (a `LOCK` file); read-only tools take the `READERS` lock
//!   shared, which keeps the log from recycling (overwriting) a segment while they read.
//!
//! ## On-disk layout
//!
//! ```text
//! streams/<name>/wal/
//!   LOCK
//!   READERS                       shared-locked by read-only tools (no recycling under them)
//!   DURABLE                       the published durable end (see [`durable_mark`])
//!   00000000000000000000.seg      sealed: frames, index block, footer
//!   00000000000000731022.seg      active: frames, then zeros
//!   spare.tmp                     the next segment, preallocated and zero-filled
//!
//! segment (S bytes):
//!   0      segment header (64 B, then zeros to 4096)
//!            { magic "HYDRSEG\0" | version u16 | - | index_interval u32 | - u64 |
//!              segment_bytes u64 | created_ms u64 | - | crc32 }
//!   4096   frame, frame, ...               each 8-byte aligned
//!            { len u32 | crc32 u32 | magic u16 "HW" | version u8 | flags u8 | record_count u32 |
//!              first_lsn u64 | arrival_ms u64 } { record_len u32 | bytes }* zero padding
//!   data_end  index block (sealed only)   { magic "HYDRIDX\0" | count u32 | crc32 }
//!                                          { lsn u64 | offset u64 }*
//!   S-128  footer (sealed only)
//!            { magic "HYDRFTR\0" | version u16 | - | index_count u32 | base_lsn u64 | end_lsn u64 |
//!              frame_count u64 | data_end u64 | first_arrival_ms u64 | last_arrival_ms u64 | - |
//!              crc32 }
//! ```
//!
//! All integers little-endian. Every CRC is CRC32 (IEEE, crc32fast). A frame's CRC covers its
//! length word, the rest of its header and all its records; a zero length word marks the end of
//! the written log (the rest is preallocated zeros). See [`format`] for the encoders.
//!
//! ## Naming
//!
//! Segments are named by the first LSN they hold, in 20 zero-padded digits, so name order is log
//! order: the segment holding LSNs 731022 to 1462011 is `00000000000000731022.seg`.
//!
//! ## Lifecycle
//!
//! append (frame written with `pwrite` into the active segment) → group commit (`fdatasync`;
//! tickets complete) → the segment fills → rotation (the spare gets a header and is renamed in) →
//! seal (sync the frames, write index and footer, sync again) → readers deliver → retention
//! ([`Wal::truncate_before`]) deletes whole segments behind every cursor, or renames them for
//! reuse as a later spare (only once the directory `fsync` made that rename durable).
//!
//! ## Recovery
//!
//! Opening reads each sealed segment's footer only, then scans the tail (the first segment
//! without a footer onwards) frame by frame; start-up cost grows with the tail, not the backlog.
//! The decision table is in [`recovery`]. The append path and group commit are described in
//! [`writer`].

#![warn(missing_docs)]

pub mod checkpoint;
pub mod durable_mark;
pub mod error;
pub mod format;
pub mod ids;
pub mod inspect;
pub mod reader;
pub mod recovery;
pub mod segment;
pub mod sim;
pub mod storage;
pub mod writer;

pub use checkpoint::CheckpointFile;
pub use error::{Error, Result};
pub use ids::{Lsn, LsnRange};
pub use inspect::{verify, Problem, SegmentInfo, Severity, VerifyReport, WalView};
pub use reader::{Frame, ReadLimit, Reader};
pub use recovery::RecoveryReport;
pub use storage::{StdStorage, Storage};
pub use writer::{now_ms, Durability, Observer, Ticket, Wal, WalOptions, WalStats};
