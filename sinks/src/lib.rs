//! hydrant-sinks: the places a delivery stream delivers to.
//!
//! This crate knows nothing of the write-ahead log or of the engine. The engine's delivery worker hands
//! a [`Sink`] one [`Batch`] at a time; the sink writes it and answers with a [`Delivered`] receipt or a
//! [`SinkError`] that says whether trying again can help ([`SinkError::is_retryable`]) and which
//! Firehose-style error code to log and count ([`SinkError::error_code`]).
//!
//! # Exactly-once by idempotent writes
//!
//! Every batch carries a deterministic [`BatchIdentity`]: (stream, stream incarnation, destination id,
//! first LSN, last LSN). A sink derives everything it writes from that identity and from the oldest
//! record's arrival time, never from the clock or a random source, so a batch re-sent after a crash
//! lands on the very same object key (or document ids, or request id) and overwrites instead of
//! duplicating:
//!
//! ```text
//!   object key = evaluated Prefix (arrival time, random-strings derived from the identity)
//!              + <stream>-<version>-YYYY-MM-DD-HH-MM-SS-<object id><extension>
//!                                   (arrival time)       (hash of the identity)
//! ```
//!
//! The engine records the key ([`Sink::target`]) in its intent before it calls [`Sink::deliver`].
//!
//! # These ids are a format
//!
//! Object keys (with their random-strings), object ids, error object ids, OpenSearch document ids
//! and HTTP request ids must come out the same for the same batch in every version: a batch resent
//! after an upgrade (its intent written by the old version) must overwrite what the old version
//! wrote. Golden tests pin fixed values for each (`golden_*` in [`keys`], this module,
//! [`opensearch`] and [`http`]); changing one of those values is a format change, made only
//! with a new domain tag (`hydrant.batch-identity.v2`, ...) and a reader story for batches in
//! flight, never silently.
//!
//! # Modules, and how a batch flows through them
//!
//! The engine builds a [`Batch`] from the log; a transform may change it first; a [`Sink`]
//! delivers it; what the destination refused, or what outlived its retry window, becomes
//! Firehose's failed-record JSON in the error output (an object sink):
//!
//! ```text
//!   Batch ─▶ transform (Lambda, de-aggregation, MetadataExtraction: partition keys)
//!         ─▶ Sink: object (S3/ExtendedS3) | postgres (Redshift) | opensearch | http
//!         ─▶ Delivered { failed } / SinkError ─▶ failed ─▶ object sink (error output)
//! ```
//!
//! - [`transform`]: the ProcessingConfiguration pipeline (Lambda, KPL de-aggregation, jq
//!   MetadataExtraction), in front of every sink.
//! - [`object`]: object storage. [`ObjectSink`] (the S3 / ExtendedS3 destination: keys + codec
//!   + store) in `object/mod.rs`, and beside it:
//!   - [`keys`] (`object/keys.rs`): Prefix / ErrorOutputPrefix templates (`!{timestamp:...}`,
//!     `!{firehose:...}`), Firehose's validation rules, the object-key suffix;
//!   - [`store`] (`object/store.rs`): the [`ObjectStore`] seam;
//!   - [`local`] (`object/local.rs`): [`LocalStore`], the embedded default: files under the data
//!     directory, temp + fsync + rename + directory fsync;
//!   - [`s3`] (`object/s3.rs`): [`S3Store`], any S3-compatible endpoint through aws-sdk-s3,
//!     multipart above a threshold.
//! - [`partition`]: dynamic partitioning: jq extraction, key escaping, per-partition objects.
//! - [`compress`]: UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY and ZSTD, both ways.
//! - [`calendar`]: the one calendar (jiff, bundled IANA zones): epoch milliseconds to civil fields
//!   in a `CustomTimeZone`.
//! - [`postgres`]: the Redshift destination on PostgreSQL (`COPY` from the intermediate objects'
//!   bytes, the position committed with the rows).
//! - [`opensearch`]: the OpenSearch / Elasticsearch destination (one `_bulk` request per batch).
//! - [`http`]: the HTTP endpoint destination (config, request plan, sink, response, failures).
//! - [`failed`]: Firehose's failed-record JSON for the error output.
//! - [`convert`]: record format conversion (JSON to Parquet) with schemas from a catalog.
//! - [`error`]: the [`SinkError`] type; each non-object sink's failures are a typed enum
//!   ([`DestinationFailure`]).
//! - [`sigv4`]: SigV4 signing of the sinks' own HTTP calls (Lambda, OpenSearch, the Glue API).
//! - [`crash`]: named crash points (`HYDRANT_CRASH_AT`) for kill tests.
//!
//! The paths `hydrant_sinks::keys`, `::store`, `::local` and `::s3` are re-exports of the
//! `object` submodules.

#![warn(missing_docs)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

pub mod calendar;
pub mod compress;
pub mod convert;
pub mod crash;
pub mod error;
pub mod failed;
pub mod http;
pub mod object;
pub mod opensearch;
pub mod partition;
pub mod postgres;
pub mod sigv4;
pub mod transform;

pub use compress::{CodecError, Compression};
pub use error::{DestinationFailure, ErrorClass, Failure, SinkError};
pub use failed::{FailedRecord, FailureDetail};
pub use keys::{ErrorOutputType, KeyError, S3Prefixes};
pub use local::LocalStore;
pub use object::{keys, local, s3, store};
pub use object::{ObjectSink, ObjectSinkConfig};
pub use s3::{S3Config, S3Credentials, S3Store, ServerSideEncryption};
pub use store::{Body, ObjectStore, PutObject};

/// A boxed, sendable future: what the object-safe async methods of [`Sink`] and [`ObjectStore`]
/// return, so the engine can hold them as `Arc<dyn Sink>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`Sink::give_up`] returns: the records to file in the error output.
pub type GiveUp<'a> = BoxFuture<'a, Result<Vec<FailedRecord>, SinkError>>;

/// The deterministic identity of one delivery batch.
///
/// Everything a sink writes for a batch is a pure function of this identity (and the oldest
/// record's arrival time), so re-sending the same batch after a crash overwrites what the first
/// attempt may have written.
///
/// # Invariants
/// `first_lsn <= last_lsn`. The engine builds batches on LSN boundaries that it records in its intent
/// before the first attempt, so a retry always carries the same boundaries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BatchIdentity {
    /// The delivery stream's name (`DeliveryStreamName`).
    pub stream: String,
    /// The stream's incarnation: a random id fixed when the stream was created, so a stream deleted
    /// and created again under the same name never reuses an old object key.
    pub incarnation: String,
    /// The destination's id within the stream (`destinationId-000000000001`). A second output of the
    /// same batch (an S3 backup copy, say) uses a distinct destination id so its keys differ.
    pub destination_id: String,
    /// The LSN of the first record in the batch.
    pub first_lsn: u64,
    /// The LSN of the last record in the batch (inclusive).
    pub last_lsn: u64,
}

#[cfg(test)]
impl BatchIdentity {
    /// A test batch's identity: stream `orders`, incarnation `4f1c`, the first destination,
    /// LSNs `first_lsn..=last_lsn`.
    pub(crate) fn orders(first_lsn: u64, last_lsn: u64) -> Self {
        BatchIdentity {
            stream: "orders".into(),
            incarnation: "4f1c".into(),
            destination_id: "destinationId-000000000001".into(),
            first_lsn,
            last_lsn,
        }
    }
}

impl BatchIdentity {
    /// A digest of the identity, separated by `domain` so different uses of the same identity (the
    /// object id, the n-th random-string, an error object) never collide.
    ///
    /// Every field is length-prefixed, so `("ab", "c")` and `("a", "bc")` hash differently.
    pub(crate) fn digest(&self, domain: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        // Bumping this tag changes every key: only ever do it together with a format version change.
        hasher.update(b"hydrant.batch-identity.v1");
        for field in [
            domain.as_bytes(),
            self.stream.as_bytes(),
            self.incarnation.as_bytes(),
            self.destination_id.as_bytes(),
        ] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field);
        }
        hasher.update(self.first_lsn.to_le_bytes());
        hasher.update(self.last_lsn.to_le_bytes());
        hasher.finalize().into()
    }

    /// The object id that ends a data object's key: a UUID (version 8, "custom", RFC 9562) made from
    /// the identity's digest, shaped like the random UUID Firehose puts there.
    pub fn object_id(&self) -> String {
        uuid_from_digest(&self.digest("object"))
    }

    /// The object id of this batch's error-output object of the given type: differs from
    /// [`BatchIdentity::object_id`] so that a batch split between delivered and failed records keeps
    /// both objects even when Prefix and ErrorOutputPrefix evaluate to the same path.
    pub fn error_object_id(&self, error_type: ErrorOutputType) -> String {
        uuid_from_digest(&self.digest(&format!("error-object/{}", error_type.as_str())))
    }

    /// A request id for sinks without object keys (the HTTP endpoint's
    /// `X-Amz-Firehose-Request-Id`): the same UUID as [`BatchIdentity::object_id`].
    pub fn request_id(&self) -> String {
        self.object_id()
    }
}

impl fmt::Display for BatchIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}#{}/{}[{}..={}]",
            self.stream, self.incarnation, self.destination_id, self.first_lsn, self.last_lsn
        )
    }
}

/// Formats the first 16 bytes of a digest as a version-8 UUID (`xxxxxxxx-xxxx-8xxx-yxxx-xxxxxxxxxxxx`).
fn uuid_from_digest(digest: &[u8; 32]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10: RFC 9562
    let hex = hex_lower(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// One record as the sink receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record's LSN in its stream's log (document ids of the OpenSearch sink derive from it).
    pub lsn: u64,
    /// The record's index among the records a transform made of the source record at `lsn`
    /// (a de-aggregated KPL record yields several): 0 without a transform. `(lsn, sub)` is
    /// unique within a batch and the same on every resend of it.
    pub sub: u32,
    /// When the record arrived (Unix epoch milliseconds), as stamped on its WAL frame.
    pub arrival_ms: u64,
    /// The record's bytes, exactly as the producer sent them (or as the transform returned them).
    /// Firehose adds no delimiter between records, and neither does hydrant.
    pub data: Bytes,
}

/// One batch to deliver.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The batch's deterministic identity.
    pub identity: BatchIdentity,
    /// The stream's configuration version (`VersionId`, starts at 1): part of an object key's suffix.
    pub stream_version: u64,
    /// The arrival time (Unix epoch milliseconds) of the oldest record in the batch. Firehose
    /// evaluates `!{timestamp:...}` and the key suffix at this instant, which makes the key a pure
    /// function of the batch, unlike the wall clock.
    pub oldest_arrival_ms: u64,
    /// The records, in LSN order.
    pub records: Vec<Record>,
    /// The records' data back to back in one buffer, when whoever built the batch has it so
    /// (the delivery loader reads a batch out of the log into one buffer): an object is then
    /// made from it without copying the records together first. It is trusted only where it
    /// provably holds the records ([`Batch::contiguous_data`]), so `None` is always correct and
    /// a change to `records` can never deliver stale bytes.
    pub contiguous: Option<Bytes>,
    /// Dynamic partitioning: each record's partition keys, as the transform found them.
    ///
    /// # Invariant
    /// Empty (no partitioning, or not yet processed) or exactly one entry per record, in the
    /// same order; whoever changes `records` after keys were set keeps them in step.
    pub partition_keys: Vec<partition::SharedKeys>,
}

impl Batch {
    /// [`Batch::contiguous`], when every record's data lies at its own place in it, in order,
    /// and together they fill it: then it is the records' concatenation, without a copy. `None`
    /// when there is no buffer or the records are no longer its slices (a transform changed
    /// them).
    pub fn contiguous_data(&self) -> Option<Bytes> {
        let whole = self.contiguous.as_ref()?;
        let start = whole.as_ptr() as usize;
        let mut at = start;
        for r in self.records.iter().filter(|r| !r.data.is_empty()) {
            // The buffer is alive and immutable, so data at an address inside it is its bytes.
            if r.data.as_ptr() as usize != at {
                return None;
            }
            at += r.data.len();
        }
        (at == start + whole.len()).then(|| whole.clone())
    }

    /// The total size of the records' data in bytes (before any encoding or compression).
    pub fn data_bytes(&self) -> u64 {
        self.records.iter().map(|r| r.data.len() as u64).sum()
    }
}

/// What a successful delivery reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// Where the batch went: the object key for object sinks, the request id for request sinks.
    /// Equal to [`Sink::target`] for the same batch.
    pub target: String,
    /// A human-readable location for logs (`s3://bucket/key`, a file path).
    pub location: String,
    /// Records delivered.
    pub records: u64,
    /// Bytes of record data delivered (before encoding and compression): Firehose's
    /// `DeliveryToS3.Bytes` counts these.
    pub data_bytes: u64,
    /// Bytes actually written or sent (after encoding and compression).
    pub wire_bytes: u64,
    /// Records the destination refused for good while taking the rest (a document the cluster
    /// rejected with a mapping error, a row a Redshift `MAXERROR` let the load skip): the engine
    /// writes them to the error output before it moves its cursor past the batch. Empty for
    /// sinks that take a batch whole or not at all.
    pub failed: Vec<FailedRecord>,
}

/// A delivery destination.
///
/// Object-safe so the engine can hold `Arc<dyn Sink>`; the async method returns a [`BoxFuture`].
///
/// # Contract
/// - `deliver` is idempotent per [`BatchIdentity`]: delivering the same batch again (same identity,
///   same records, same arrival time and version) writes the same key or ids and replaces what the
///   earlier attempt wrote; it never adds a second copy.
/// - On `Ok`, the batch is durable at the destination (fsynced file, completed S3 PUT).
/// - On `Err`, the destination may hold the batch or not, but never a partial object under the
///   final key.
pub trait Sink: Send + Sync + fmt::Debug {
    /// A short name of the destination kind for logs and metric labels (`"local"`, `"s3"`, ...).
    fn kind(&self) -> &'static str;

    /// Where `batch` will go (the object key, or the request id), without writing anything: the
    /// engine records this in the batch's intent before the first attempt.
    ///
    /// # Errors
    /// [`SinkError::Key`] when the key cannot be evaluated (a permanent error).
    fn target(&self, batch: &Batch) -> Result<String, SinkError>;

    /// Delivers `batch`.
    ///
    /// # Errors
    /// A [`SinkError`]; [`SinkError::is_retryable`] tells whether the same call may succeed later.
    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<Delivered, SinkError>>;

    /// Called once when `batch`'s retry window is spent, `error` being the last attempt's failure:
    /// returns the records to write to the error output (Firehose's failed-record JSON). A sink
    /// may also write artefacts of its own here (the Redshift sink writes the manifest of the
    /// batch's intermediate objects under `errors/` and returns no records, as Firehose does).
    ///
    /// The default files every record of the batch with [`Sink::failure_detail`].
    ///
    /// # Errors
    /// A [`SinkError`] when the sink's own artefact could not be written; the engine retries.
    fn give_up<'a>(&'a self, batch: &'a Batch, error: &'a SinkError, attempts: u32) -> GiveUp<'a> {
        Box::pin(async move {
            Ok(failed_records(batch, error, attempts, |r| {
                self.failure_detail(batch, r)
            }))
        })
    }

    /// The failure kind (and its fields) of `record` of `batch` when it goes to the error output:
    /// what [`Sink::give_up`]'s default files. Default: [`FailureDetail::S3Delivery`].
    fn failure_detail(&self, batch: &Batch, record: &Record) -> FailureDetail {
        let _ = (batch, record);
        FailureDetail::S3Delivery
    }

    /// For sinks that commit their position together with the data (PostgreSQL: the
    /// `hydrant_offsets` row in the same transaction as the rows): the end LSN (one past the last
    /// record delivered) the destination holds for (stream, incarnation, destination id). The
    /// engine reads it when a worker starts and trusts it over its own checkpoint. `None`: the
    /// sink keeps no position of its own.
    ///
    /// # Errors
    /// A [`SinkError`] when the destination cannot be asked; the engine retries.
    fn committed_end<'a>(
        &'a self,
        stream: &'a str,
        incarnation: &'a str,
        destination_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, SinkError>> {
        let _ = (stream, incarnation, destination_id);
        Box::pin(async { Ok(None) })
    }
}

/// Every record of `batch` as a failed record with `error`'s code and message, `attempts` made,
/// and the detail `detail` gives each: the body of [`Sink::give_up`]'s default, and a building
/// block for sinks that file part of a batch.
pub fn failed_records(
    batch: &Batch,
    error: &SinkError,
    attempts: u32,
    mut detail: impl FnMut(&Record) -> FailureDetail,
) -> Vec<FailedRecord> {
    let now = now_ms();
    let code = error.error_code().into_owned();
    let message = error.to_string();
    batch
        .records
        .iter()
        .map(|r| FailedRecord {
            attempts_made: attempts,
            arrival_timestamp_ms: r.arrival_ms,
            error_code: code.clone(),
            error_message: message.clone(),
            attempt_ending_timestamp_ms: now,
            raw_data: r.data.clone(),
            detail: detail(r),
        })
        .collect()
}

/// The wall clock in Unix epoch milliseconds (for `attemptEndingTimestamp` and request
/// timestamps; never for anything a resend must reproduce).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_data_only_when_the_records_are_its_slices() {
        let whole = Bytes::from_static(b"onetwothree");
        let record = |lsn: u64, data: Bytes| Record {
            lsn,
            sub: 0,
            arrival_ms: 0,
            data,
        };
        let mut batch = Batch {
            identity: BatchIdentity {
                stream: "s".into(),
                incarnation: "i".into(),
                destination_id: "d".into(),
                first_lsn: 0,
                last_lsn: 3,
            },
            stream_version: 1,
            oldest_arrival_ms: 0,
            records: vec![
                record(0, whole.slice(0..3)),
                record(1, whole.slice(3..3)),
                record(2, whole.slice(3..6)),
                record(3, whole.slice(6..11)),
            ],
            contiguous: Some(whole.clone()),
            partition_keys: Vec::new(),
        };
        assert_eq!(batch.contiguous_data(), Some(whole.clone()));
        // A record replaced by equal bytes elsewhere: not provably the buffer any more.
        batch.records[2].data = Bytes::copy_from_slice(b"two");
        assert_eq!(batch.contiguous_data(), None);
        batch.records[2].data = whole.slice(3..6);
        // A record dropped, or one too few bytes: the records no longer fill the buffer.
        let last = batch.records.pop();
        assert_eq!(batch.contiguous_data(), None);
        batch.records.extend(last);
        batch.records[3].data = whole.slice(6..10);
        assert_eq!(batch.contiguous_data(), None);
        batch.records[3].data = whole.slice(6..11);
        assert_eq!(batch.contiguous_data(), Some(whole));
        batch.contiguous = None;
        assert_eq!(batch.contiguous_data(), None);
    }

    fn identity() -> BatchIdentity {
        BatchIdentity::orders(10, 19)
    }

    #[test]
    fn object_id_is_a_pure_function_of_the_identity() {
        let a = identity();
        assert_eq!(a.object_id(), identity().object_id());
        let id = a.object_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'8', "version nibble: {id}");
        assert!(
            matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'),
            "variant: {id}"
        );
        for (i, c) in id.char_indices() {
            if [8, 13, 18, 23].contains(&i) {
                assert_eq!(c, '-');
            } else {
                assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
            }
        }
    }

    #[test]
    fn every_identity_field_changes_the_id() {
        let base = identity().object_id();
        let mut v = identity();
        v.stream.push('x');
        assert_ne!(v.object_id(), base);
        let mut v = identity();
        v.incarnation.push('x');
        assert_ne!(v.object_id(), base);
        let mut v = identity();
        v.destination_id.push('x');
        assert_ne!(v.object_id(), base);
        let mut v = identity();
        v.first_lsn += 1;
        assert_ne!(v.object_id(), base);
        let mut v = identity();
        v.last_lsn += 1;
        assert_ne!(v.object_id(), base);
        // Length prefixes keep field boundaries apart.
        let mut a = identity();
        a.stream = "ab".into();
        a.incarnation = "c".into();
        let mut b = identity();
        b.stream = "a".into();
        b.incarnation = "bc".into();
        assert_ne!(a.object_id(), b.object_id());
    }

    /// Golden values: object ids, error object ids and request ids are part of the delivery
    /// format. A batch resent after an upgrade must get the key it got before, or exactly-once
    /// breaks across the upgrade; a change here is a format change (see the crate docs).
    #[test]
    fn golden_ids_are_pinned() {
        let id = identity();
        assert_eq!(id.object_id(), "4ce4c3fe-80c5-8cc7-a478-60472902e15b");
        assert_eq!(id.request_id(), "4ce4c3fe-80c5-8cc7-a478-60472902e15b");
        assert_eq!(
            id.error_object_id(ErrorOutputType::ProcessingFailed),
            "fe7fe4f8-a52f-8b0d-9cf5-34ef6dfe4f5b"
        );
        assert_eq!(
            id.error_object_id(ErrorOutputType::HttpEndpointFailed),
            "1cf42833-56fa-8bfb-a551-ce1e541bce23"
        );
        assert_eq!(
            id.error_object_id(ErrorOutputType::S3DeliveryFailed),
            "5633a030-a3f6-8d27-a0cb-91c861617168"
        );
    }

    #[test]
    fn error_object_ids_differ_from_the_data_object_id_and_by_type() {
        let id = identity();
        let processing = id.error_object_id(ErrorOutputType::ProcessingFailed);
        let http = id.error_object_id(ErrorOutputType::HttpEndpointFailed);
        assert_ne!(processing, id.object_id());
        assert_ne!(processing, http);
        assert_eq!(
            processing,
            identity().error_object_id(ErrorOutputType::ProcessingFailed)
        );
    }
}
