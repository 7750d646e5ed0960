//! [`SinkError`]: every way a delivery can fail, with its retry class and Firehose-style code.

use std::borrow::Cow;
use std::io;
use std::path::PathBuf;

use crate::compress::CodecError;
use crate::convert::ConversionFailure;
use crate::http::HttpFailure;
use crate::keys::KeyError;
use crate::opensearch::OpenSearchFailure;
use crate::postgres::RedshiftFailure;

/// Whether trying the same delivery again can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The failure is transient (network, 5xx, throttling, a full disk that may drain): retry with
    /// backoff until the destination's retry duration is spent.
    Retryable,
    /// The same request will fail the same way until an operator changes something (a missing
    /// bucket, denied access, a bad key). The engine may still retry on its own schedule (Firehose
    /// retries S3 for 24 hours whatever the error), but should alert and not spin.
    Permanent,
}

/// The local-store step that failed, for error messages and codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LocalStep {
    /// Creating a directory on the way to the object.
    CreateDir,
    /// Creating or writing the temporary file.
    Write,
    /// fsync of the temporary file.
    SyncFile,
    /// Renaming the temporary file over the final name.
    Rename,
    /// fsync of a directory (the object's, or the parent of a new directory).
    SyncDir,
    /// Reading an object back.
    Read,
    /// Listing objects.
    List,
}

impl LocalStep {
    fn as_str(self) -> &'static str {
        match self {
            LocalStep::CreateDir => "create directory",
            LocalStep::Write => "write",
            LocalStep::SyncFile => "fsync file",
            LocalStep::Rename => "rename",
            LocalStep::SyncDir => "fsync directory",
            LocalStep::Read => "read",
            LocalStep::List => "list",
        }
    }
}

impl std::fmt::Display for LocalStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sink's failure kind: its Firehose error code (users see it in the error output's
/// `errorCode` and in the metrics: it must not change) and whether it is retried. Each kind keeps
/// both in one table, [`Failure::code_and_retry`].
pub trait Failure: Copy {
    /// The error code and whether the failure is retried: one row per failure.
    fn code_and_retry(self) -> (&'static str, bool);

    /// Firehose's error code.
    fn code(self) -> &'static str {
        self.code_and_retry().0
    }

    /// Whether the same request may succeed later.
    fn is_retryable(self) -> bool {
        self.code_and_retry().1
    }
}

/// Which destination failed, and how: what [`SinkError::Destination`] carries. Each sink's
/// failures are an enum of their own, with their Firehose error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DestinationFailure {
    /// An HTTP endpoint request.
    HttpEndpoint(HttpFailure),
    /// An OpenSearch / Elasticsearch request.
    OpenSearch(OpenSearchFailure),
    /// A PostgreSQL / Redshift statement or connection.
    Redshift(RedshiftFailure),
    /// Record format conversion of a whole batch.
    Conversion(ConversionFailure),
}

impl DestinationFailure {
    /// Firehose's error code for the failure.
    pub fn code(self) -> &'static str {
        match self {
            DestinationFailure::HttpEndpoint(f) => f.code(),
            DestinationFailure::OpenSearch(f) => f.code(),
            DestinationFailure::Redshift(f) => f.code(),
            DestinationFailure::Conversion(f) => f.code(),
        }
    }

    /// Whether the same delivery may succeed later.
    pub fn is_retryable(self) -> bool {
        match self {
            DestinationFailure::HttpEndpoint(f) => f.is_retryable(),
            DestinationFailure::OpenSearch(f) => f.is_retryable(),
            DestinationFailure::Redshift(f) => f.is_retryable(),
            DestinationFailure::Conversion(f) => f.is_retryable(),
        }
    }
}

/// A delivery failure.
///
/// Each variant says who produced it; [`SinkError::is_retryable`] and [`SinkError::error_code`]
/// classify it for the engine's retry loop, its logs and its metrics.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The prefix templates could not be evaluated for this batch (for example the evaluated prefix
    /// is longer than 512 characters). Permanent: the same batch evaluates the same way.
    #[error(transparent)]
    Key(#[from] KeyError),

    /// The object key cannot be stored by this store: the local store refuses keys that would
    /// leave its directory (`..`, a leading `/`) or that use its reserved temporary names.
    /// Permanent.
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The offending key.
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// Compressing (or decompressing) failed. Permanent: the codec sees the same bytes next time.
    #[error(transparent)]
    Codec(#[from] CodecError),

    /// A local file-system step failed. Retryable unless the error says the request itself is
    /// bad (name too long, not a directory, read-only or permission denied: see
    /// [`SinkError::is_retryable`]).
    #[error("local store: {step} {path}: {source}")]
    LocalIo {
        /// The step that failed.
        step: LocalStep,
        /// The file or directory it was working on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The object does not exist (reading back).
    #[error("no such object: {key}")]
    NotFound {
        /// The key looked up.
        key: String,
    },

    /// S3 answered with an error response.
    #[error("S3 {operation} failed: {code} (HTTP {status}): {message}")]
    S3Service {
        /// The S3 operation (`PutObject`, `UploadPart`, ...).
        operation: &'static str,
        /// S3's error code (`NoSuchBucket`, `AccessDenied`, `SlowDown`, ...), or `Http<status>` when
        /// the response carried none.
        code: String,
        /// The HTTP status.
        status: u16,
        /// S3's message, if any.
        message: String,
        /// The `x-amz-request-id`, if any, for support tickets.
        request_id: Option<String>,
    },

    /// The S3 endpoint could not be reached or the connection broke (refused, reset, DNS, TLS).
    /// Retryable.
    #[error("S3 {operation}: cannot reach the endpoint: {message}")]
    S3Unreachable {
        /// The S3 operation.
        operation: &'static str,
        /// What the HTTP client said.
        message: String,
    },

    /// The S3 request timed out. Retryable.
    #[error("S3 {operation}: timed out: {message}")]
    S3Timeout {
        /// The S3 operation.
        operation: &'static str,
        /// What the SDK said.
        message: String,
    },

    /// The S3 client failed for another reason: a request it could not build, a response it could
    /// not parse. Retryable: a garbled response is usually a proxy or a server having a bad moment.
    #[error("S3 {operation}: {message}")]
    S3Client {
        /// The S3 operation.
        operation: &'static str,
        /// What the SDK said.
        message: String,
    },

    /// The sink is misconfigured (no credentials found, an unparseable endpoint). Permanent.
    #[error("sink configuration: {0}")]
    Config(String),

    /// A blocking task that did the work was cancelled or panicked (the runtime is shutting down).
    /// Retryable: the next process will do it again.
    #[error("sink task failed: {0}")]
    Task(String),

    /// A destination other than the object stores failed: PostgreSQL/Redshift, OpenSearch or an
    /// HTTP endpoint. The [`DestinationFailure`] says which failure it is, and so its Firehose
    /// error code (`Redshift.ConnectionFailed`, `HttpEndpoint.DestinationException`, ...) and
    /// whether a retry can help.
    #[error("{}: {message}", .failure.code())]
    Destination {
        /// Which failure.
        failure: DestinationFailure,
        /// What went wrong, with what the destination said (the error output's `errorMessage`).
        message: String,
    },
}

impl SinkError {
    /// Whether retrying the same delivery can succeed.
    pub fn class(&self) -> ErrorClass {
        if self.is_retryable() {
            ErrorClass::Retryable
        } else {
            ErrorClass::Permanent
        }
    }

    /// Whether retrying the same delivery can succeed: network trouble, timeouts, 5xx, throttling
    /// and transient local I/O are retryable; bad keys, missing buckets, denied access and bad
    /// credentials are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            SinkError::Key(_)
            | SinkError::InvalidKey { .. }
            | SinkError::Codec(_)
            | SinkError::NotFound { .. }
            | SinkError::Config(_) => false,
            SinkError::LocalIo { source, .. } => local_io_is_retryable(source),
            SinkError::S3Service { code, status, .. } => s3_is_retryable(code, *status),
            SinkError::S3Unreachable { .. }
            | SinkError::S3Timeout { .. }
            | SinkError::S3Client { .. }
            | SinkError::Task(_) => true,
            SinkError::Destination { failure, .. } => failure.is_retryable(),
        }
    }

    /// A stable code for logs and metric labels, in Firehose's style (`S3.NoSuchBucket`,
    /// `S3.AccessDenied`, ...). Local-store codes start with `Local.`.
    pub fn error_code(&self) -> Cow<'static, str> {
        match self {
            SinkError::Key(_) => Cow::Borrowed("S3.InvalidPrefix"),
            SinkError::InvalidKey { .. } => Cow::Borrowed("S3.InvalidKey"),
            SinkError::Codec(_) => Cow::Borrowed("S3.CompressionFailed"),
            SinkError::LocalIo { source, .. } => Cow::Borrowed(local_io_code(source)),
            SinkError::NotFound { .. } => Cow::Borrowed("S3.NoSuchKey"),
            SinkError::S3Service { code, status, .. } => s3_error_code(code, *status),
            SinkError::S3Unreachable { .. } => Cow::Borrowed("S3.ConnectionFailed"),
            SinkError::S3Timeout { .. } => Cow::Borrowed("S3.RequestTimeout"),
            SinkError::S3Client { .. } => Cow::Borrowed("S3.ClientError"),
            SinkError::Config(_) => Cow::Borrowed("S3.InvalidConfiguration"),
            SinkError::Task(_) => Cow::Borrowed("Internal.TaskFailed"),
            SinkError::Destination { failure, .. } => Cow::Borrowed(failure.code()),
        }
    }
}

/// Local I/O errors that an operator must fix before a retry can succeed.
fn local_io_is_retryable(error: &io::Error) -> bool {
    if error.raw_os_error() == Some(libc::ENAMETOOLONG) {
        return false;
    }
    !matches!(
        error.kind(),
        io::ErrorKind::InvalidInput
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::ReadOnlyFilesystem
    )
}

fn local_io_code(error: &io::Error) -> &'static str {
    if error.raw_os_error() == Some(libc::ENAMETOOLONG) {
        return "Local.InvalidPath";
    }
    match error.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => "Local.DiskFull",
        io::ErrorKind::PermissionDenied => "Local.AccessDenied",
        io::ErrorKind::ReadOnlyFilesystem => "Local.ReadOnly",
        io::ErrorKind::InvalidInput
        | io::ErrorKind::NotADirectory
        | io::ErrorKind::IsADirectory => "Local.InvalidPath",
        io::ErrorKind::NotFound => "Local.NotFound",
        _ => "Local.IoError",
    }
}

/// S3 error codes we know, their class and their label. A code that is not here is classified by
/// its HTTP status (5xx, 429 and 408 transient, other 4xx permanent).
const S3_KNOWN_CODES: &[(&str, ErrorClass, &str)] = &[
    ("NoSuchBucket", ErrorClass::Permanent, "S3.NoSuchBucket"),
    ("AccessDenied", ErrorClass::Permanent, "S3.AccessDenied"),
    (
        "AllAccessDisabled",
        ErrorClass::Permanent,
        "S3.AllAccessDisabled",
    ),
    ("AccountProblem", ErrorClass::Permanent, "S3.AccountProblem"),
    (
        "InvalidAccessKeyId",
        ErrorClass::Permanent,
        "S3.InvalidAccessKeyId",
    ),
    (
        "SignatureDoesNotMatch",
        ErrorClass::Permanent,
        "S3.SignatureDoesNotMatch",
    ),
    (
        "InvalidBucketName",
        ErrorClass::Permanent,
        "S3.InvalidBucketName",
    ),
    (
        "InvalidBucketState",
        ErrorClass::Permanent,
        "S3.InvalidBucketState",
    ),
    (
        "InvalidObjectState",
        ErrorClass::Permanent,
        "S3.InvalidObjectState",
    ),
    ("InvalidPayer", ErrorClass::Permanent, "S3.InvalidPayer"),
    ("NotSignedUp", ErrorClass::Permanent, "S3.NotSignedUp"),
    (
        "KMS.DisabledException",
        ErrorClass::Permanent,
        "S3.KMS.DisabledException",
    ),
    (
        "KMS.NotFoundException",
        ErrorClass::Permanent,
        "S3.KMS.NotFoundException",
    ),
    (
        "KMS.InvalidStateException",
        ErrorClass::Permanent,
        "S3.KMS.InvalidStateException",
    ),
    (
        "KeyTooLongError",
        ErrorClass::Permanent,
        "S3.KeyTooLongError",
    ),
    ("EntityTooLarge", ErrorClass::Permanent, "S3.EntityTooLarge"),
    (
        "MethodNotAllowed",
        ErrorClass::Permanent,
        "S3.MethodNotAllowed",
    ),
    ("NoSuchKey", ErrorClass::Permanent, "S3.NoSuchKey"),
    // S3 sends some transient conditions as 400s: these codes win over the status.
    ("SlowDown", ErrorClass::Retryable, "S3.SlowDown"),
    ("Throttling", ErrorClass::Retryable, "S3.Throttling"),
    (
        "ThrottlingException",
        ErrorClass::Retryable,
        "S3.Throttling",
    ),
    ("TooManyRequests", ErrorClass::Retryable, "S3.Throttling"),
    ("RequestTimeout", ErrorClass::Retryable, "S3.RequestTimeout"),
    (
        "RequestTimeTooSkewed",
        ErrorClass::Retryable,
        "S3.RequestTimeTooSkewed",
    ),
    ("InternalError", ErrorClass::Retryable, "S3.InternalError"),
    (
        "ServiceUnavailable",
        ErrorClass::Retryable,
        "S3.ServiceUnavailable",
    ),
    (
        "OperationAborted",
        ErrorClass::Retryable,
        "S3.OperationAborted",
    ),
    // Temporary credentials run out; a refreshed set (or the environment's next value) fixes it.
    ("ExpiredToken", ErrorClass::Retryable, "S3.ExpiredToken"),
    (
        "TokenRefreshRequired",
        ErrorClass::Retryable,
        "S3.ExpiredToken",
    ),
    // A multipart upload aborted under us (a lifecycle rule, say): the next attempt starts afresh.
    ("NoSuchUpload", ErrorClass::Retryable, "S3.NoSuchUpload"),
];

fn s3_known(code: &str) -> Option<&'static (&'static str, ErrorClass, &'static str)> {
    S3_KNOWN_CODES.iter().find(|(known, _, _)| *known == code)
}

/// Classifies an S3 error response: known codes first, then the status.
pub(crate) fn s3_is_retryable(code: &str, status: u16) -> bool {
    match s3_known(code) {
        Some((_, class, _)) => *class == ErrorClass::Retryable,
        None => status >= 500 || status == 429 || status == 408,
    }
}

fn s3_error_code(code: &str, status: u16) -> Cow<'static, str> {
    if let Some((_, _, label)) = s3_known(code) {
        return Cow::Borrowed(label);
    }
    if code.is_empty() || code.starts_with("Http") {
        return Cow::Owned(format!("S3.Http{status}"));
    }
    Cow::Owned(format!("S3.{code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, status: u16) -> SinkError {
        SinkError::S3Service {
            operation: "PutObject",
            code: code.into(),
            status,
            message: String::new(),
            request_id: None,
        }
    }

    #[test]
    fn s3_classification() {
        assert!(!service("NoSuchBucket", 404).is_retryable());
        assert!(!service("AccessDenied", 403).is_retryable());
        assert!(!service("SignatureDoesNotMatch", 403).is_retryable());
        assert!(!service("InvalidAccessKeyId", 403).is_retryable());
        assert!(service("SlowDown", 503).is_retryable());
        assert!(service("InternalError", 500).is_retryable());
        assert!(service("RequestTimeout", 400).is_retryable());
        assert!(service("Whatever", 502).is_retryable());
        assert!(service("Whatever", 429).is_retryable());
        assert!(!service("Whatever", 400).is_retryable());
        assert_eq!(service("NoSuchBucket", 404).error_code(), "S3.NoSuchBucket");
        assert_eq!(service("AccessDenied", 403).error_code(), "S3.AccessDenied");
        assert_eq!(service("", 502).error_code(), "S3.Http502");
        assert_eq!(service("Odd", 400).error_code(), "S3.Odd");
        assert_eq!(service("NoSuchBucket", 404).class(), ErrorClass::Permanent);
    }

    #[test]
    fn transport_errors_are_retryable() {
        let e = SinkError::S3Unreachable {
            operation: "PutObject",
            message: "refused".into(),
        };
        assert!(e.is_retryable());
        assert_eq!(e.error_code(), "S3.ConnectionFailed");
        let e = SinkError::S3Timeout {
            operation: "PutObject",
            message: "slow".into(),
        };
        assert!(e.is_retryable());
    }

    #[test]
    fn local_classification() {
        let io = |kind| SinkError::LocalIo {
            step: LocalStep::Write,
            path: PathBuf::from("/x"),
            source: io::Error::from(kind),
        };
        assert!(io(io::ErrorKind::StorageFull).is_retryable());
        assert_eq!(
            io(io::ErrorKind::StorageFull).error_code(),
            "Local.DiskFull"
        );
        assert!(io(io::ErrorKind::Other).is_retryable());
        assert!(!io(io::ErrorKind::NotADirectory).is_retryable());
        assert!(!io(io::ErrorKind::PermissionDenied).is_retryable());
        let e = SinkError::InvalidKey {
            key: "../x".into(),
            reason: "parent",
        };
        assert!(!e.is_retryable());
    }
}
