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
//! - A segment is a preallocated file of at most `segment_bytes` (default 64 MiB, at least
//!   8 KiB). A young log's segments are smaller: see "Segment sizes" below.
//! - A frame never spans segments, so the largest append is [`Wal::batch_bytes_max`] (a little
//!   under `segment_bytes`; the API's 4 MiB batches fit easily).
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
//!   spare.tmp                     the next segment, allocated (see "New segments") with its
//!                                 header synced (once the log is written to)
//!
//! segment (S bytes):
//!   0      segment header (64 B, then zeros to 4096)
//!            { magic "HYDRSEG\0" | version u16 | - | index_interval u32 | - u64 |
//!              segment_bytes u64 | created_ms u64 | - | crc32 }
//!   4096   frame, frame, ...               each 8-byte aligned
//!            { len u32 | crc32 u32 | magic u16 "HW" | version u8 | flags u8 | record_count u32 |
//!              first_lsn u64 | arrival_ms u64 } { record_len u32 | bytes }* zero padding
//!            version 2 (flags bit 0): { record_len u32 | bytes }* { annex } { annex_len u32 }
//!            before the padding: bytes a source keeps beside the records (never a record)
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
//! the written log (the rest is preallocated zeros). See [`format`](mod@format) for the encoders.
//!
//! ## Segment sizes
//!
//! A new log's first segment is [`WalOptions::first_segment_bytes`] (default 1 MiB), and no spare
//! is prepared until the first append: a stream that is created and never written holds one
//! small file. Each later segment is twice the size of the one before, up to `segment_bytes`, or
//! the smallest size on that path that a larger frame fits in; when the first frame does not fit
//! the empty first segment, a larger empty one replaces it under the same name. Retired segments
//! are kept for reuse only at the full size (spares only grow).
//!
//! Why this is as durable as one size for all: nothing in recovery, the readers or `verify`
//! assumes a common size. Each segment's header carries its own `segment_bytes`, written and
//! synced before the file is renamed into the log, and every position in the segment follows
//! from it (data limit, index reserve, footer at `segment_bytes - 128`); recovery checks the
//! file's length against its header (a mismatch is damage, as before). A recycled file keeps its
//! length and gets a header saying so. The one new step, replacing the empty first segment, is a
//! rename over a file that holds no frame: whichever of the two files a power loss leaves under
//! the name, the log is the same, and no frame is acknowledged before the directory `fsync`
//! after the rename. The segment header's version is 2 ([`format::SEGMENT_HEADER_VERSION`]):
//! its bytes are those of version 1, which is still read, but an older build, whose writer took
//! every segment to be of the configured size, refuses the log instead of appending past the
//! end of a small segment.
//!
//! ## New segments
//!
//! A new segment file (not a recycled one) gets its blocks from `fallocate`
//! ([`SegmentFill::Unwritten`], the default): the file system reserves them as unwritten extents
//! and sets the file's length, and the frames are the only bytes ever written there. Before
//! this, every new segment was first filled with written zeros and synced
//! ([`SegmentFill::Zeros`], still available): the disk then wrote each byte of the log twice,
//! and while the log only grew (the destination down, nothing retired to recycle) intake ran at
//! a third to a half of the disk's rate (`hydrant bench wal --shape s4`, see the README).
//!
//! Why this is as durable as written zeros, on ext4, XFS and btrfs (file systems with unwritten
//! extents; where `fallocate` is unsupported the WAL writes zeros instead):
//!
//! 1. **The file is in place before the log names it.** `fallocate` changes the file's length
//!    and extent map; the spare's header is then written and `fdatasync` runs, which makes every
//!    piece of metadata needed to read the file back durable (its length and block map
//!    included), before the rename into the log and the directory `fsync` that follows. A power
//!    loss therefore finds a segment of the length its header says, as with written zeros.
//! 2. **Unwritten blocks read as zeros.** An unwritten extent reads as zeros whatever the disk
//!    held before: never a deleted file's bytes. A frame written there and made durable by
//!    `fdatasync` reads back as written: the file system writes the data, then commits the
//!    extent's conversion to written in its journal, and `fdatasync` returns only after both
//!    (the conversion is metadata needed to read the data back).
//! 3. **A power loss before the sync returns leaves zeros or the new bytes.** The frames of a
//!    group commit not yet acknowledged may come back whole, in part (a block converted, the next
//!    not), or not at all; the parts not written read as zeros. That is the same set of outcomes
//!    as over written zeros, where each block holds either its zeros or the new bytes; recovery's
//!    tail scan ends at the first zero length word or the first frame whose CRC fails, and
//!    opening the log zeroes what follows (case I and J of [`recovery`]). Nothing acknowledged
//!    depends on an unsynced block.
//!
//! The simulated disk's power-loss model ([`sim`], `tests/model.rs`) is this contract: a
//! preallocated range reads as zeros, a write is durable only after the sync that covers it, and
//! a power loss keeps any subset of the unsynced writes, torn. The real-kernel check is the
//! QEMU power-cut test (`tests/powercut/run.sh`), which runs the daemon on ext4 with this
//! default.
//!
//! The price is in the syncs: the first `fdatasync` over newly written blocks of an unwritten
//! extent commits a journal transaction besides the data, where an overwrite in place commits
//! none. Under `bench wal` S4 that costs less than writing every byte twice (the figures are in
//! the README). Recycled segments keep their written blocks, so the steady state with delivery
//! keeping up (S1) is unchanged.
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
//! ## Files and data flow
//!
//! An append enters through [`writer`] ([`Wal`]: the shared state, opening, appends, rotation,
//! retention and budget, under [`options`]), which encodes its frame ([`format`](mod@format): every on-disk
//! structure) and writes it into the active segment; [`commit`] (group commit: the tickets, the
//! sync plan, the committer and its state machine) makes it durable and publishes the durable
//! end ([`durable_mark`], for readers in other processes). Rotation takes the next segment from
//! [`spares`] (spares, segment sizes, recycling of retired segments). Opening plans with
//! [`recovery`] (over [`segment`]'s naming and frame scan) and carries the plan out with
//! [`reopen`], after [`dirs`] made the directory durable. Readers ([`reader`]) walk frames out of
//! the segments' maps, from the live log through [`live_reader`] or from a directory through
//! [`inspect`] (also `hydrant wal verify`). Delivery keeps its position in a [`checkpoint`]. All
//! I/O goes through [`storage`], whose simulated disk ([`sim`]) the power-loss tests use; [`ids`]
//! holds LSNs and [`error`] the typed errors.
//!
//! ## Recovery
//!
//! Opening reads each sealed segment's header and footer only (several at once), then scans the
//! tail (the first segment without a footer onwards) frame by frame, and after its last frame
//! reads only what the file system reports as data; start-up cost grows with the tail's frames,
//! not the backlog or the segment size (see "What opening reads" in [`recovery`]).
//! The decision table is in [`recovery`]. The append path and group commit are described in
//! [`writer`] and [`commit`].

#![warn(missing_docs)]

pub mod checkpoint;
pub mod commit;
pub mod dirs;
pub mod durable_mark;
pub mod error;
pub mod format;
pub mod ids;
pub mod inspect;
pub mod live_reader;
pub mod options;
pub mod reader;
pub mod recovery;
pub mod reopen;
pub mod segment;
pub mod sim;
pub mod spares;
pub mod storage;
pub mod writer;

pub use checkpoint::CheckpointFile;
pub use commit::Ticket;
pub use dirs::create_dir_all_durable;
pub use error::{Error, IoError, Result};
pub use ids::{Lsn, LsnRange};
pub use inspect::{verify, Problem, SegmentInfo, Severity, VerifyReport, WalView};
pub use options::{Durability, Observer, SegmentFill, WalOptions};
pub use reader::{Frame, ReadLimit, Reader};
pub use recovery::RecoveryReport;
pub use storage::{StdStorage, Storage};
pub use writer::{now_ms, Wal, WalStats};
