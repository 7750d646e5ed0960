//! The CLI's error type. Commands return it; `main` turns it into a message and an exit code,
//! the only place where errors become text.

use std::io;
use std::path::PathBuf;

/// Everything a `hydrant` command can fail with. Damage that a command *finds* (a corrupt frame
/// seen by `wal verify`) is not an error of the command: it is its output, reported with exit
/// status 1. These are the failures to run at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The log could not be opened or read: it is missing, damaged where the command had to
    /// read, or an I/O call failed. The WAL's error names the segment and offset.
    #[error(transparent)]
    Wal(#[from] hydrant_wal::Error),

    /// A file operation of the command itself (not the log's) failed, such as creating the
    /// benchmark's scratch directory.
    #[error(transparent)]
    Io(#[from] hydrant_wal::IoError),

    /// Writing to standard output failed. A closed pipe (`hydrant wal dump | head`) is not
    /// reported: `main` ends quietly with success on it.
    #[error("writing output: {0}")]
    Output(#[source] io::Error),

    /// Serializing a report as JSON failed (never expected: the reports are plain data).
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// A benchmark thread panicked; its message is lost with the thread, the panic hook has
    /// already printed it.
    #[error("a benchmark thread panicked")]
    ThreadPanicked,

    /// An argument is outside what the command accepts.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// `replay`, `put` or an HTTP benchmark failed; the module's own typed error says how.
    #[error(transparent)]
    Command(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl CliError {
    /// An I/O error of the command itself, with the operation and path it failed on.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> CliError {
        CliError::Io(hydrant_wal::IoError {
            op,
            path: path.into(),
            source,
        })
    }
}

impl From<io::Error> for CliError {
    /// Bare I/O errors only arise from writing output: every file operation is wrapped with
    /// [`CliError::io`] at its call site.
    fn from(e: io::Error) -> CliError {
        CliError::Output(e)
    }
}

/// The result of a command.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
