//! The WAL's one error type.

use std::io;
use std::path::{Path, PathBuf};

use crate::format::{FrameFault, HeaderFault};
use crate::ids::Lsn;

/// A file operation that failed: which operation, on what, and the operating system's error.
///
/// The one shape of an I/O failure across hydrant's crates (the log's [`Error::Io`], and the
/// engine's, the tools' and the benchmarks' errors wrap it too), so that every such message
/// reads `<op> <path>: <error>`.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct IoError {
    /// The operation that failed ("open", "write", "fdatasync", ...).
    pub op: &'static str,
    /// The file or directory it failed on.
    pub path: PathBuf,
    /// The operating system's error.
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// A `map_err` adapter: the [`IoError`] of `op` on `path`, converted into `E`.
    pub fn of<E: From<IoError>>(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> E {
        let path = path.to_path_buf();
        move |source| E::from(IoError { op, path, source })
    }
}

/// Everything that can go wrong in the WAL. Every variant says what happened on disk and who is
/// expected to handle it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed. `op` names the operation ("open", "write", "fdatasync", ...) and
    /// `path` the file. A failed write or sync also poisons the log (see [`Error::Poisoned`]);
    /// other I/O errors are returned to the caller with nothing changed.
    #[error(transparent)]
    Io(IoError),

    /// The log's disk budget is spent: a new segment would take the log past `budget_bytes`.
    /// Nothing of the append was written. The daemon answers ServiceUnavailableException and the
    /// producer retries; space returns when delivery lets retention delete segments.
    #[error("WAL disk budget reached: {used_bytes} bytes in segments, budget {budget_bytes}")]
    Full {
        /// Bytes held by segment files now.
        used_bytes: u64,
        /// The configured budget.
        budget_bytes: u64,
    },

    /// The file system had no room for a new segment (ENOSPC while preallocating). Nothing of
    /// the append was written; handled like [`Error::Full`]. Preallocation is why a full disk is
    /// seen here, as an error, and never later as a failed write through a mapping.
    #[error("no space for a new WAL segment in {}: {source}", dir.display())]
    NoSpace {
        /// The WAL directory.
        dir: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// An append with no records. Nothing was written.
    #[error("an append needs at least one record")]
    EmptyAppend,

    /// The batch does not fit in one segment. Nothing was written. The caller's limits (the API's
    /// 4 MiB batch limit) must be below `frame_bytes_max`; the segment size is configured too small.
    #[error(
        "a frame of {frame_bytes} bytes does not fit in a segment (at most {frame_bytes_max})"
    )]
    FrameTooLarge {
        /// The encoded frame size.
        frame_bytes: u64,
        /// The largest frame a segment of this size holds.
        frame_bytes_max: u64,
    },

    /// Bytes that should hold a valid frame do not: a sealed segment, or the part of the active
    /// segment below the recovered tail, is damaged. Never repaired silently; `hydrant wal verify`
    /// reports the same. The operator restores from a replica or accepts the loss explicitly.
    #[error("corrupt frame in {} at offset {offset}: {fault:?}", segment.display())]
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// The frame's offset in it.
        offset: u64,
        /// What is wrong with it.
        fault: FrameFault,
    },

    /// A segment's header, index block or footer is damaged in a way recovery cannot explain by a
    /// crash (for example a sealed segment in the middle of the log with a bad header).
    #[error("bad {what} in {}: {fault:?}", segment.display())]
    BadSegment {
        /// The segment file.
        segment: PathBuf,
        /// Which structure ("header", "footer", "index", "file length", "name").
        what: &'static str,
        /// What is wrong with it.
        fault: HeaderFault,
    },

    /// Two consecutive segments do not join: the first ends at `expected` but the next starts at
    /// `found`. A segment is missing or was tampered with. Never repaired silently.
    #[error("gap in the log before {}: expected LSN {expected}, found {found}", segment.display())]
    SegmentGap {
        /// The segment that does not start where the previous one ended.
        segment: PathBuf,
        /// Where the previous segment ended.
        expected: Lsn,
        /// Where this one starts.
        found: Lsn,
    },

    /// A structure is intact but written by a format version this build does not read (a newer
    /// hydrant wrote it). Upgrade, or replay with the newer binary.
    #[error("{} uses WAL format version {version}; this build reads version {}", segment.display(), crate::format::FORMAT_VERSION)]
    UnsupportedVersion {
        /// The segment file.
        segment: PathBuf,
        /// The version found.
        version: u16,
    },

    /// A write or a sync failed earlier, so the state of unsynced data is unknown (after a failed
    /// fsync the kernel may have dropped dirty pages). The log refuses every further append and
    /// every waiting append fails with this error; reopening the log (which recovers from what is
    /// on disk) is the only way on. Nothing acknowledged before the failure is affected.
    #[error("the WAL is poisoned by an earlier failure: {cause}")]
    Poisoned {
        /// The first failure.
        cause: String,
    },

    /// The log was closed.
    #[error("the WAL is closed")]
    Closed,

    /// Another process holds the log directory's lock.
    #[error("the WAL in {} is in use by another process", dir.display())]
    Locked {
        /// The WAL directory.
        dir: PathBuf,
    },

    /// A reader asked for an LSN that retention has already deleted.
    #[error("LSN {requested} is no longer retained (the log starts at {first})")]
    Truncated {
        /// The LSN asked for.
        requested: Lsn,
        /// The first LSN still in the log.
        first: Lsn,
    },

    /// A reader asked for an LSN past the end of the log.
    #[error("LSN {requested} is past the end of the log ({end})")]
    BeyondEnd {
        /// The LSN asked for.
        requested: Lsn,
        /// One past the last LSN written.
        end: Lsn,
    },

    /// The options are invalid (a segment size below the minimum, ...).
    #[error("invalid WAL options: {0}")]
    InvalidOptions(&'static str),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io(IoError {
            op,
            path: path.into(),
            source,
        })
    }

    /// True when retrying the same operation later may succeed without operator action: the log
    /// is full for now.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Full { .. } | Error::NoSpace { .. })
    }

    /// A stable, short label for metrics and logs.
    #[must_use]
    pub fn error_code(&self) -> &'static str {
        match self {
            Error::Io(_) => "io",
            Error::Full { .. } => "budget_full",
            Error::NoSpace { .. } => "no_space",
            Error::EmptyAppend => "empty_append",
            Error::FrameTooLarge { .. } => "frame_too_large",
            Error::Corrupt { .. } => "corrupt_frame",
            Error::BadSegment { .. } => "bad_segment",
            Error::SegmentGap { .. } => "segment_gap",
            Error::UnsupportedVersion { .. } => "unsupported_version",
            Error::Poisoned { .. } => "poisoned",
            Error::Closed => "closed",
            Error::Locked { .. } => "locked",
            Error::Truncated { .. } => "truncated",
            Error::BeyondEnd { .. } => "beyond_end",
            Error::InvalidOptions(_) => "invalid_options",
        }
    }
}

/// The WAL's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
