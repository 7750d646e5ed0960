//! Dynamic partitioning of an S3 / ExtendedS3 destination (`DynamicPartitioningConfiguration`).
//!
//! # Data flow
//!
//! ```text
//!  round (a batch cut from the log by the stream's hints, or when an open partition is due)
//!    │  transform::Pipeline: RecordDeAggregation → Lambda (metadata.partitionKeys)
//!    │                       → MetadataExtraction (jq, [`query`]) → AppendDelimiterToRecord
//!    ▼
//!  Batch { records, partition_keys: one PartitionKeys per record }
//!    │  [`buffer::PartitionBuffers`]: one buffer per partition (the Prefix evaluated on the
//!    │  keys, values escaped by [`escape_value`]), kept across rounds
//!    ▼
//!  a partition flushed (SizeInMBs reached, IntervalInSeconds since its oldest record, or the
//!  memory bound) → one Batch of its records → ObjectSink → one object:
//!  <Prefix evaluated for the partition><stream>-<version>-<time>-<object id><ext>
//! ```
//!
//! Records whose keys cannot be had (not JSON, the query fails or gives null or a non-scalar,
//! a Lambda key missing) or whose prefix does not evaluate to a writable key go to the error
//! output as `partitioning-failed` ([`crate::FailureDetail::Partitioning`]). A record of a new
//! partition while [`Limits::max_active`] partitions are active goes there as
//! `activePartitionExceeded` ([`crate::FailureDetail::ActivePartitionExceeded`]). Nothing is
//! dropped.
//!
//! # Buffering
//!
//! As Firehose documents: each active partition buffers separately by the stream's hints; a
//! partition is active from its first buffered record until its object is delivered; at most
//! [`Limits::max_active`] are active at once (default 500, `[delivery] max_active_partitions`,
//! up to 5,000). Two bounds of hydrant's own: all buffers of a destination hold at most 512 MiB
//! together (past it the largest is written early), and a partition is written at the latest
//! when the delivery worker's checkpoint holds 64 rounds (see below).
//!
//! # Exactly-once
//!
//! An object's key is a pure function of its partition (evaluated Prefix) and its records'
//! identity (stream, incarnation, destination, first and last LSN) and oldest arrival, and which
//! records an object holds is a pure function of the rounds given to the buffers and their cut
//! times ([`buffer`]'s module docs). The delivery worker records every round (boundaries, cut
//! time) durably before processing it and keeps the rounds since the buffers were last empty;
//! its cursor only moves when they are empty. After a crash it processes those rounds again from
//! empty buffers and so writes the same objects under the same keys (an overwrite, not a second
//! copy). The engine's `delivery::worker::partitioned` holds the argument in full; the kill test
//! `engine/tests/partition_kill.rs` crashes between two objects of a round
//! (`delivery::between_partitions`), after a round's objects (`delivery::after_send`) and at
//! random.
//!
//! `hydrant replay` and any other caller of [`crate::ObjectSink`]'s `deliver` with a whole batch
//! get the same key function with every partition flushed at the batch's end
//! ([`buffer::split_batch`]).

use std::sync::Arc;

pub mod buffer;
mod plain_paths;
pub mod query;
pub mod write;

pub use buffer::{BufferRules, PartitionBuffers, RoundOutput};

pub use query::{ExtractError, MetadataQuery, QueryError};

/// The default of the most partitions one stream has active at once (Firehose's default quota).
pub const ACTIVE_PARTITIONS_DEFAULT: usize = 500;
/// The largest value that limit may be configured to.
pub const ACTIVE_PARTITIONS_MAX: usize = 5_000;
/// The most partition keys a Prefix may use.
pub const PARTITION_KEYS_MAX: usize = 50;

/// Where a partition key's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeySource {
    /// `!{partitionKeyFromQuery:name}`: the `MetadataExtraction` processor's jq query.
    Query,
    /// `!{partitionKeyFromLambda:name}`: the Lambda reply's `metadata.partitionKeys`.
    Lambda,
}

impl KeySource {
    /// The prefix namespace.
    pub fn namespace(self) -> &'static str {
        match self {
            KeySource::Query => "partitionKeyFromQuery",
            KeySource::Lambda => "partitionKeyFromLambda",
        }
    }
}

/// The partition key values of one record: `(name, value)` pairs from each source, values as
/// the prefix prints them before escaping (strings as they are, numbers and booleans as JSON
/// writes them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PartitionKeys {
    /// From the jq query, in the query's order.
    pub query: Vec<(String, String)>,
    /// From the Lambda reply, in the reply's order.
    pub lambda: Vec<(String, String)>,
}

impl PartitionKeys {
    /// The value of key `name` from `source`, if the record has one.
    pub fn get(&self, source: KeySource, name: &str) -> Option<&str> {
        let list = match source {
            KeySource::Query => &self.query,
            KeySource::Lambda => &self.lambda,
        };
        list.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The keys every processor of a destination produces, for create-time checks of the Prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeysProduced {
    /// The names the `MetadataExtractionQuery` object has.
    pub query: Vec<String>,
    /// Whether a Lambda processor runs (its keys are known only from its replies).
    pub lambda: bool,
}

/// The partitioning settings an object sink applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most partitions active at once (default [`ACTIVE_PARTITIONS_DEFAULT`]).
    pub max_active: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_active: ACTIVE_PARTITIONS_DEFAULT,
        }
    }
}

/// A batch's per-record keys, shared: records of one partition share one allocation.
pub type SharedKeys = Arc<PartitionKeys>;

/// Whether `b` is kept as it is in an escaped partition value.
fn kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'!' | b'*' | b'\'' | b'(' | b')')
}

/// A partition key value as it goes into an object key: letters, digits and `- _ . ! * ' ( )`
/// (S3's "safe characters") stay; every other byte of its UTF-8 is percent-encoded (`/` is
/// `%2F`, so a value never adds a path segment), and a value of only dots has its dots encoded
/// (a `.` or `..` segment would leave the local store's directory).
#[must_use]
pub fn escape_value(value: &str) -> String {
    let only_dots = !value.is_empty() && value.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if kept(b) && !(only_dots && b == b'.') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Why a record's prefix could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The record has no value for a key the Prefix uses.
    #[error("the record has no partition key !{{{}:{name}}}", from.namespace())]
    MissingKey {
        /// The key's source.
        from: KeySource,
        /// The key's name.
        name: String,
    },
    /// The evaluated key is not writable ([`crate::keys::key_problem`]) or too long.
    #[error("the evaluated prefix {prefix:?} makes an unwritable key: {reason}")]
    Unwritable {
        /// The evaluated prefix (cut to 200 characters).
        prefix: String,
        /// The rule broken.
        reason: &'static str,
    },
}

impl PrefixError {
    /// Firehose-style error code for the failed-record JSON.
    pub fn error_code(&self) -> &'static str {
        match self {
            PrefixError::MissingKey { .. } => "DynamicPartitioning.MissingPartitionKey",
            PrefixError::Unwritable { .. } => "DynamicPartitioning.InvalidPrefix",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_safe_characters_and_encodes_the_rest() {
        assert_eq!(escape_value("customer_07"), "customer_07");
        assert_eq!(escape_value("a/b"), "a%2Fb");
        assert_eq!(escape_value("x y=z"), "x%20y%3Dz");
        assert_eq!(escape_value(".."), "%2E%2E");
        assert_eq!(escape_value("."), "%2E");
        assert_eq!(escape_value("a.b"), "a.b");
        assert_eq!(escape_value("é"), "%C3%A9");
        assert_eq!(escape_value(""), "");
    }

    #[test]
    fn keys_are_looked_up_by_source() {
        let keys = PartitionKeys {
            query: vec![("a".into(), "1".into())],
            lambda: vec![("a".into(), "2".into())],
        };
        assert_eq!(keys.get(KeySource::Query, "a"), Some("1"));
        assert_eq!(keys.get(KeySource::Lambda, "a"), Some("2"));
        assert_eq!(keys.get(KeySource::Query, "b"), None);
    }
}
