//! Object keys as Firehose makes them.
//!
//! A delivered object's key is `<evaluated prefix><suffix>` with
//!
//! ```text
//!   suffix = <stream>-<version>-YYYY-MM-DD-HH-MM-SS-<object id><extension>
//!   e.g.     orders-1-2018-08-27-10-30-07-3b1f0c9e-5a1d-8c44-9f3e-2b7d81c0a6e4.gz
//! ```
//!
//! where the time is the arrival time of the batch's oldest record (always UTC, whatever the
//! `CustomTimeZone`: the suffix names the object, and an object's name must not depend on a
//! setting an UpdateDestination can change) and the object id is a
//! pure function of the [`BatchIdentity`] (Firehose puts a random UUID there; hydrant must not,
//! or a re-sent batch would be stored twice).
//!
//! # Templates
//!
//! `Prefix` and `ErrorOutputPrefix` are templates with `!{namespace:value}` expressions:
//!
//! - `!{timestamp:<pattern>}`: the oldest record's arrival time in the destination's
//!   `CustomTimeZone` (UTC by default; [`S3Prefixes::with_time_zone`], daylight-saving time as the
//!   bundled IANA database says: an hour skipped in spring has no objects, the repeated hour in
//!   autumn holds both hours' batches), formatted with a Java
//!   `DateTimeFormatter` pattern. Supported letters: `y u` (year; `yy` is two digits), `M L`
//!   (month: `M`, `MM`, `MMM` = `Aug`, `MMMM` = `August`, `MMMMM` = `A`), `d`, `D` (day of
//!   year), `H k K h` (hours), `m`, `s`, `S` (fraction), `a` (AM/PM), `E` (day of week). Text
//!   in single quotes is literal (`''` is a quote), `[` `]` (optional sections) are accepted and
//!   always printed, as Java prints them when every field is available. Other letters are
//!   refused rather than printed wrong. Every occurrence in a template is the same instant.
//! - `!{firehose:random-string}`: 11 lowercase hex characters. Firehose draws them at random;
//!   hydrant derives them from the batch identity, the template (Prefix or ErrorOutputPrefix) and
//!   the occurrence's index, so each occurrence differs yet a re-sent batch gets the same key.
//! - `!{firehose:error-output-type}`: `processing-failed`, `http-endpoint-failed`, ... (only in
//!   ErrorOutputPrefix).
//! - `!{partitionKeyFromQuery:name}`, `!{partitionKeyFromLambda:name}`: dynamic partitioning
//!   ([`crate::partition`]), only in the Prefix of a destination that has it enabled
//!   ([`S3Prefixes::partitioned`]; elsewhere [`KeyError::PartitioningNotEnabled`]). The record's
//!   key value, escaped ([`crate::partition::escape_value`]). A partitioned Prefix gets no
//!   timestamp appended (rule 1 does not apply), as Firehose's partitioned keys show
//!   (`customer_id=1234567890/.../hour=20/my-delivery-stream-2019-08-09-23-55-09-...`); it must
//!   be set, ErrorOutputPrefix too, every key it uses must be produced by a processor, and it
//!   may use at most [`crate::partition::PARTITION_KEYS_MAX`] keys.
//!
//! # Validation rules (Firehose developer guide, "Custom prefixes for Amazon S3 objects")
//!
//! 1. A Prefix without a `timestamp` expression gets `!{timestamp:yyyy/MM/dd/HH/}` appended
//!    (an unset Prefix is the empty one: `YYYY/MM/dd/HH/`, in the `CustomTimeZone` too). No slash is inserted: the guide's rule
//!    text reads `<specified-prefix>YYYY/MM/DD/HH/`, and "if a prefix ends with a slash, it
//!    appears as a folder", so `logs` gives `logs2018/08/27/10/`.
//! 2. `!{` may only start an expression ([`KeyError::StrayExpressionStart`]); unknown namespaces
//!    and values are refused.
//! 3. If Prefix contains expressions, ErrorOutputPrefix must be set
//!    ([`KeyError::ErrorOutputPrefixRequired`]); a set ErrorOutputPrefix must contain
//!    `!{firehose:error-output-type}` at least once ([`KeyError::ErrorOutputTypeMissing`]).
//! 4. Prefix must not contain `!{firehose:error-output-type}` ([`KeyError::ErrorOutputTypeInPrefix`]).
//! 5. A Prefix without expressions and no ErrorOutputPrefix: failed records go to
//!    `<prefix><error-output-type>/yyyy/MM/dd/HH/`.
//! 6. Redshift ([`S3Prefixes::for_redshift`]): Prefix without expressions, ErrorOutputPrefix unset.
//! 7. (The console's default ErrorOutputPrefix `!{firehose:error-output-type}/` is a console
//!    convenience, not an API rule: the engine's config layer may offer it.)
//!
//! Both templates are at most [`TEMPLATE_CHARS_MAX`] characters, and each may evaluate to at most
//! [`EVALUATED_PREFIX_CHARS_MAX`] characters, not counting the timestamp appended by rule 1
//! (Firehose accepts a literal 512-character prefix). The bound is checked when the templates are
//! validated, with the widest value of every expression, so a valid template cannot fail at
//! delivery time. An empty ErrorOutputPrefix is treated as unset.
//!
//! All validation errors are [`KeyError`]s; the engine maps them to `InvalidArgumentException`.

use std::fmt::{self, Write as _};

use crate::calendar::{CivilTime, UnknownTimeZone, Zone};
use crate::compress::Compression;
use crate::partition::{escape_value, KeySource, KeysProduced, PartitionKeys, PrefixError};
use crate::{hex_lower, BatchIdentity};

/// The longest Prefix or ErrorOutputPrefix template accepted (characters), as the API model says.
pub const TEMPLATE_CHARS_MAX: usize = 1024;
/// The longest an evaluated Prefix or ErrorOutputPrefix may be (characters), excluding the
/// timestamp that rule 1 appends.
pub const EVALUATED_PREFIX_CHARS_MAX: usize = 512;
/// The length of `!{firehose:random-string}`.
pub const RANDOM_STRING_CHARS: usize = 11;
/// The longest `FileExtension` (characters).
pub const FILE_EXTENSION_CHARS_MAX: usize = 128;
/// The timestamp pattern rule 1 appends to a Prefix without one.
pub const DEFAULT_TIMESTAMP_PATTERN: &str = "yyyy/MM/dd/HH/";
/// The longest `BucketARN` (characters), as the API model says.
pub const BUCKET_ARN_CHARS_MAX: usize = 2048;

/// Which template a [`KeyError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrefixField {
    /// `Prefix`.
    Prefix,
    /// `ErrorOutputPrefix`.
    ErrorOutputPrefix,
}

impl PrefixField {
    /// The API field name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrefixField::Prefix => "Prefix",
            PrefixField::ErrorOutputPrefix => "ErrorOutputPrefix",
        }
    }
}

impl fmt::Display for PrefixField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value of `!{firehose:error-output-type}`: why records went to the error output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorOutputType {
    /// The Lambda transform failed for the record (or for its whole batch).
    ProcessingFailed,
    /// The HTTP endpoint destination did not accept the record within the retry duration.
    HttpEndpointFailed,
    /// The OpenSearch destination did not index the record.
    AmazonOpenSearchServiceFailed,
    /// The legacy Elasticsearch destination did not index the record.
    ElasticsearchFailed,
    /// The Splunk destination did not accept the record.
    SplunkFailed,
    /// Record format conversion failed.
    FormatConversionFailed,
    /// Source decompression (CloudWatch Logs) failed.
    DecompressionFailed,
    /// hydrant's own: the S3 (or local object store) destination did not take the batch within
    /// its retry window. Firehose drops such data after 24 hours; hydrant never drops, it files
    /// the records here (`s3-failed`).
    S3DeliveryFailed,
    /// hydrant's own: rows a Redshift / PostgreSQL load skipped under `MAXERROR` (Firehose leaves
    /// them in the cluster's `stl_load_errors`; hydrant files their records here,
    /// `redshift-failed`).
    RedshiftFailed,
    /// Dynamic partitioning found no partition for the record (`partitioning-failed`).
    PartitioningFailed,
    /// The record's partition was over the active-partition limit (`activePartitionExceeded`,
    /// the error prefix Firehose's buffering guide names).
    ActivePartitionExceeded,
}

impl ErrorOutputType {
    /// Every type, for tests and for the validation bound.
    pub const ALL: [ErrorOutputType; 11] = [
        ErrorOutputType::ProcessingFailed,
        ErrorOutputType::HttpEndpointFailed,
        ErrorOutputType::AmazonOpenSearchServiceFailed,
        ErrorOutputType::ElasticsearchFailed,
        ErrorOutputType::SplunkFailed,
        ErrorOutputType::FormatConversionFailed,
        ErrorOutputType::DecompressionFailed,
        ErrorOutputType::S3DeliveryFailed,
        ErrorOutputType::RedshiftFailed,
        ErrorOutputType::PartitioningFailed,
        ErrorOutputType::ActivePartitionExceeded,
    ];

    /// The string Firehose writes.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorOutputType::ProcessingFailed => "processing-failed",
            ErrorOutputType::HttpEndpointFailed => "http-endpoint-failed",
            ErrorOutputType::AmazonOpenSearchServiceFailed => "AmazonOpenSearchService-failed",
            ErrorOutputType::ElasticsearchFailed => "elasticsearch-failed",
            ErrorOutputType::SplunkFailed => "splunk-failed",
            ErrorOutputType::FormatConversionFailed => "format-conversion-failed",
            ErrorOutputType::DecompressionFailed => "decompression-failed",
            ErrorOutputType::S3DeliveryFailed => "s3-failed",
            ErrorOutputType::RedshiftFailed => "redshift-failed",
            ErrorOutputType::PartitioningFailed => "partitioning-failed",
            ErrorOutputType::ActivePartitionExceeded => "activePartitionExceeded",
        }
    }
}

impl fmt::Display for ErrorOutputType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Prefix / ErrorOutputPrefix / FileExtension / BucketARN that Firehose would refuse. The engine
/// answers all of them with `InvalidArgumentException` and the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The template is longer than [`TEMPLATE_CHARS_MAX`].
    #[error("{field} is {chars} characters long; at most {max} are allowed")]
    TooLong {
        /// Which template.
        field: PrefixField,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// `!{` that does not start a complete `!{namespace:value}` expression (rule 2).
    #[error("{field}: the sequence !{{ at character {offset} must start a !{{namespace:value}} expression")]
    StrayExpressionStart {
        /// Which template.
        field: PrefixField,
        /// Character offset of the `!{`.
        offset: usize,
    },
    /// An expression with an unknown namespace or value.
    #[error("{field}: unknown expression !{{{expression}}}")]
    UnknownExpression {
        /// Which template.
        field: PrefixField,
        /// The text between `!{` and `}`.
        expression: String,
    },
    /// `partitionKeyFromQuery` / `partitionKeyFromLambda` in a template of a destination without
    /// dynamic partitioning, or in ErrorOutputPrefix.
    #[error(
        "{field}: !{{{expression}}} is only allowed in the Prefix of a destination with \
         DynamicPartitioningConfiguration Enabled"
    )]
    PartitioningNotEnabled {
        /// Which template.
        field: PrefixField,
        /// The text between `!{` and `}`.
        expression: String,
    },
    /// A partition key the processors do not produce (no such key in the
    /// `MetadataExtractionQuery`, or no Lambda processor).
    #[error("Prefix: !{{{expression}}} names a partition key that no processor produces ({why})")]
    UnknownPartitionKey {
        /// The text between `!{` and `}`.
        expression: String,
        /// What is missing.
        why: &'static str,
    },
    /// More distinct partition keys than allowed.
    #[error("Prefix uses {0} partition keys; at most {max} are allowed", max = crate::partition::PARTITION_KEYS_MAX)]
    TooManyPartitionKeys(usize),
    /// Dynamic partitioning without a Prefix.
    #[error("Prefix is required when dynamic partitioning is enabled")]
    PartitioningNeedsPrefix,
    /// Dynamic partitioning without an ErrorOutputPrefix.
    #[error("ErrorOutputPrefix is required when dynamic partitioning is enabled")]
    PartitioningNeedsErrorOutputPrefix,
    /// A `!{timestamp:...}` pattern that is not a (supported) Java `DateTimeFormatter` pattern.
    #[error("{field}: invalid timestamp pattern {pattern:?}: {reason}")]
    InvalidTimestampPattern {
        /// Which template.
        field: PrefixField,
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Prefix has expressions but ErrorOutputPrefix is unset (rule 3).
    #[error("ErrorOutputPrefix can't be null when Prefix contains expressions")]
    ErrorOutputPrefixRequired,
    /// ErrorOutputPrefix lacks `!{firehose:error-output-type}` (rule 3).
    #[error("ErrorOutputPrefix must contain !{{firehose:error-output-type}} at least once")]
    ErrorOutputTypeMissing,
    /// Prefix contains `!{firehose:error-output-type}` (rule 4).
    #[error("Prefix can't contain !{{firehose:error-output-type}}")]
    ErrorOutputTypeInPrefix,
    /// A Redshift destination's Prefix contains expressions (rule 6).
    #[error("Prefix must not contain expressions when the destination is Amazon Redshift")]
    RedshiftPrefixExpressions,
    /// A Redshift destination has an ErrorOutputPrefix (rule 6).
    #[error("ErrorOutputPrefix must be null when the destination is Amazon Redshift")]
    RedshiftErrorOutputPrefix,
    /// The template makes keys no store of hydrant's can write ([`key_problem`]): records would
    /// be acknowledged and then never delivered.
    #[error("{field} makes keys that cannot be written: {reason} (for example {key:?})")]
    Unwritable {
        /// Which template.
        field: PrefixField,
        /// A key it makes.
        key: String,
        /// The rule the key breaks.
        reason: &'static str,
    },
    /// The template can evaluate to more than [`EVALUATED_PREFIX_CHARS_MAX`] characters.
    #[error("{field} can evaluate to {chars} characters; at most {max} are allowed")]
    EvaluatedTooLong {
        /// Which template.
        field: PrefixField,
        /// The (widest) evaluated length.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// A FileExtension that does not match `^$|\.[0-9a-z!\-_.*'()]+` or is too long.
    #[error("invalid FileExtension {0:?}: must start with '.', use only 0-9 a-z ! - _ . * ' ( ) and be at most 128 characters")]
    InvalidFileExtension(String),
    /// A BucketARN that does not match `arn:.*:s3:::[\w.-]{1,255}`.
    #[error("invalid BucketARN {0:?}: expected arn:<partition>:s3:::<bucket>")]
    InvalidBucketArn(String),
    /// A `CustomTimeZone` that names no zone of the bundled IANA database.
    #[error(transparent)]
    UnknownTimeZone(#[from] UnknownTimeZone),
}

/// One field of a timestamp pattern: a pattern letter and how many times it was repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TimestampField {
    letter: u8,
    count: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TimestampItem {
    Literal(String),
    Field(TimestampField),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Timestamp(Vec<TimestampItem>),
    RandomString,
    ErrorOutputType,
    PartitionKey { source: KeySource, name: String },
}

/// A parsed template: the parts to evaluate, plus the facts the validation rules need.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Template {
    field: PrefixField,
    parts: Vec<Part>,
}

impl Template {
    fn parse(field: PrefixField, source: &str) -> Result<Template, KeyError> {
        let chars = source.chars().count();
        if chars > TEMPLATE_CHARS_MAX {
            return Err(KeyError::TooLong {
                field,
                chars,
                max: TEMPLATE_CHARS_MAX,
            });
        }
        let mut parts = Vec::new();
        let mut rest = source;
        let mut consumed_chars = 0;
        while let Some(start) = rest.find("!{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let offset = consumed_chars + rest[..start].chars().count();
            let body_start = start + 2;
            let Some(body_len) = rest[body_start..].find('}') else {
                return Err(KeyError::StrayExpressionStart { field, offset });
            };
            let body = &rest[body_start..body_start + body_len];
            if body.contains("!{") {
                return Err(KeyError::StrayExpressionStart { field, offset });
            }
            parts.push(parse_expression(field, body)?);
            let end = body_start + body_len + 1;
            consumed_chars += rest[..end].chars().count();
            rest = &rest[end..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { field, parts })
    }

    fn has_expressions(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Literal(_)))
    }

    fn has_timestamp(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Timestamp(_)))
    }

    fn has_error_output_type(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::ErrorOutputType))
    }

    /// The longest this template can evaluate to, in characters.
    fn evaluated_chars_max(&self) -> usize {
        let error_type_max = ErrorOutputType::ALL
            .iter()
            .map(|t| t.as_str().len())
            .max()
            .unwrap_or(0);
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.chars().count(),
                Part::Timestamp(items) => items.iter().map(timestamp_item_chars_max).sum(),
                Part::RandomString => RANDOM_STRING_CHARS,
                Part::ErrorOutputType => error_type_max,
                // Values are known only at delivery, where the evaluated key is checked.
                Part::PartitionKey { .. } => 1,
            })
            .sum()
    }

    fn evaluate(
        &self,
        out: &mut String,
        identity: &BatchIdentity,
        time: &CivilTime,
        error_type: Option<ErrorOutputType>,
        keys: Option<&PartitionKeys>,
    ) -> Result<(), PrefixError> {
        let mut random_index = 0usize;
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Timestamp(items) => format_timestamp(out, items, time),
                Part::RandomString => {
                    out.push_str(&random_string(identity, self.field, random_index));
                    random_index += 1;
                }
                Part::ErrorOutputType => {
                    // Only error templates contain this part (rule 4 keeps it out of Prefix), and
                    // they are only evaluated with an error type.
                    debug_assert!(error_type.is_some());
                    if let Some(error_type) = error_type {
                        out.push_str(error_type.as_str());
                    }
                }
                Part::PartitionKey { source, name } => {
                    match keys.and_then(|k| k.get(*source, name)) {
                        Some(value) => out.push_str(&escape_value(value)),
                        None => {
                            return Err(PrefixError::MissingKey {
                                from: *source,
                                name: name.clone(),
                            })
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn partition_keys(&self) -> impl Iterator<Item = (KeySource, &str)> {
        self.parts.iter().filter_map(|p| match p {
            Part::PartitionKey { source, name } => Some((*source, name.as_str())),
            _ => None,
        })
    }
}

/// The n-th `!{firehose:random-string}` of a template, for a batch: 11 hex characters of a digest
/// of the identity, the template and n.
fn random_string(identity: &BatchIdentity, field: PrefixField, index: usize) -> String {
    let digest = identity.digest(&format!("random-string/{}/{index}", field.as_str()));
    let mut hex = hex_lower(&digest[..RANDOM_STRING_CHARS.div_ceil(2)]);
    hex.truncate(RANDOM_STRING_CHARS);
    hex
}

fn parse_expression(field: PrefixField, body: &str) -> Result<Part, KeyError> {
    let unknown = || KeyError::UnknownExpression {
        field,
        expression: body.to_string(),
    };
    let Some((namespace, value)) = body.split_once(':') else {
        return Err(unknown());
    };
    match namespace {
        "timestamp" => Ok(Part::Timestamp(parse_timestamp_pattern(field, value)?)),
        "firehose" => match value {
            "random-string" => Ok(Part::RandomString),
            "error-output-type" => Ok(Part::ErrorOutputType),
            _ => Err(unknown()),
        },
        "partitionKeyFromQuery" | "partitionKeyFromLambda" if !value.is_empty() => {
            let source = if namespace == "partitionKeyFromQuery" {
                KeySource::Query
            } else {
                KeySource::Lambda
            };
            Ok(Part::PartitionKey {
                source,
                name: value.to_string(),
            })
        }
        _ => Err(unknown()),
    }
}

/// The most times each supported letter may repeat, as Java's `DateTimeFormatterBuilder` allows.
fn pattern_letter_count_max(letter: u8) -> Option<usize> {
    match letter {
        b'y' | b'u' => Some(19),
        b'M' | b'L' | b'E' => Some(5),
        b'D' => Some(3),
        b'd' | b'H' | b'h' | b'K' | b'k' | b'm' | b's' => Some(2),
        b'S' => Some(9),
        b'a' => Some(1),
        _ => None,
    }
}

fn parse_timestamp_pattern(
    field: PrefixField,
    pattern: &str,
) -> Result<Vec<TimestampItem>, KeyError> {
    let invalid = |reason: String| KeyError::InvalidTimestampPattern {
        field,
        pattern: pattern.to_string(),
        reason,
    };
    let mut items = Vec::new();
    let mut literal = String::new();
    let mut optional_depth = 0usize;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            'A'..='Z' | 'a'..='z' => {
                let mut count = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    count += 1;
                }
                // Pattern letters are ASCII, so the cast is exact.
                let letter = c as u8;
                let Some(max) = pattern_letter_count_max(letter) else {
                    return Err(invalid(format!("pattern letter '{c}' is not supported")));
                };
                if count > max {
                    return Err(invalid(format!("too many pattern letters: '{c}' x{count}")));
                }
                if !literal.is_empty() {
                    items.push(TimestampItem::Literal(std::mem::take(&mut literal)));
                }
                items.push(TimestampItem::Field(TimestampField { letter, count }));
            }
            '\'' => {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    literal.push('\'');
                    continue;
                }
                loop {
                    match chars.next() {
                        None => {
                            return Err(invalid("incomplete quoted literal".to_string()));
                        }
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            literal.push('\'');
                        }
                        Some('\'') => break,
                        Some(other) => literal.push(other),
                    }
                }
            }
            // Optional sections print whenever their fields are available, and an instant in a
            // zone has every field: so they are transparent here.
            '[' => optional_depth += 1,
            ']' => {
                if optional_depth == 0 {
                    return Err(invalid("']' without a previous '['".to_string()));
                }
                optional_depth -= 1;
            }
            '{' | '}' | '#' => {
                return Err(invalid(format!("'{c}' is reserved")));
            }
            other => literal.push(other),
        }
    }
    if !literal.is_empty() {
        items.push(TimestampItem::Literal(literal));
    }
    Ok(items)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// The widest output of one timestamp item, for years up to 9999.
fn timestamp_item_chars_max(item: &TimestampItem) -> usize {
    match item {
        TimestampItem::Literal(text) => text.chars().count(),
        TimestampItem::Field(TimestampField { letter, count }) => match (letter, count) {
            (b'y' | b'u', 2) => 2,
            (b'y' | b'u', n) => (*n).max(4),
            (b'M' | b'L', 4) => 9,
            (b'E', 4) => 9,
            (b'M' | b'L' | b'E', 3) => 3,
            (b'M' | b'L' | b'E', 5) => 1,
            (b'D', _) => 3,
            (b'S', n) => *n,
            (b'E', _) => 3,
            (_, _) => 2,
        },
    }
}

fn push_padded(out: &mut String, value: i64, width: usize) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{value:0width$}");
}

fn format_timestamp(out: &mut String, items: &[TimestampItem], t: &CivilTime) {
    for item in items {
        let TimestampItem::Field(TimestampField { letter, count }) = item else {
            if let TimestampItem::Literal(text) = item {
                out.push_str(text);
            }
            continue;
        };
        let count = *count;
        let month_name = MONTHS[(t.month as usize).saturating_sub(1) % 12];
        let weekday_name = WEEKDAYS[(t.weekday as usize).saturating_sub(1) % 7];
        match (letter, count) {
            (b'y' | b'u', 2) => push_padded(out, t.year.rem_euclid(100), 2),
            (b'y' | b'u', n) => push_padded(out, t.year, n),
            (b'M' | b'L', 1 | 2) => push_padded(out, i64::from(t.month), count),
            (b'M' | b'L', 3) => out.push_str(&month_name[..3]),
            (b'M' | b'L', 4) => out.push_str(month_name),
            (b'M' | b'L', _) => out.push_str(&month_name[..1]),
            (b'E', 4) => out.push_str(weekday_name),
            (b'E', 5) => out.push_str(&weekday_name[..1]),
            (b'E', _) => out.push_str(&weekday_name[..3]),
            (b'd', _) => push_padded(out, i64::from(t.day), count),
            (b'D', _) => push_padded(out, i64::from(t.day_of_year), count),
            (b'H', _) => push_padded(out, i64::from(t.hour), count),
            (b'k', _) => {
                let hour = if t.hour == 0 { 24 } else { t.hour };
                push_padded(out, i64::from(hour), count);
            }
            (b'K', _) => push_padded(out, i64::from(t.hour % 12), count),
            (b'h', _) => {
                let hour = match t.hour % 12 {
                    0 => 12,
                    hour => hour,
                };
                push_padded(out, i64::from(hour), count);
            }
            (b'm', _) => push_padded(out, i64::from(t.minute), count),
            (b's', _) => push_padded(out, i64::from(t.second), count),
            (b'S', n) => {
                // Nanoseconds of the second, truncated to n digits; arrival times are in ms.
                let nanos = format!("{:09}", u64::from(t.millis) * 1_000_000);
                out.push_str(&nanos[..n.min(9)]);
            }
            (b'a', _) => out.push_str(if t.hour < 12 { "AM" } else { "PM" }),
            // The parser admits no other letter.
            _ => debug_assert!(false, "unsupported pattern letter {letter}"),
        }
    }
}

/// A validated pair of Prefix and ErrorOutputPrefix templates: the key naming of one S3 (or
/// local) destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Prefixes {
    /// Prefix with rule 1 applied (a timestamp appended if it had none).
    prefix: Template,
    /// ErrorOutputPrefix as given, or the rule-5 default.
    error_prefix: Template,
    /// The zone `!{timestamp:...}` (and rule 1's default timestamp) are printed in.
    zone: Zone,
    /// Whether the destination partitions dynamically ([`S3Prefixes::partitioned`]): then the
    /// Prefix may hold partition keys and is evaluated per partition.
    partitioned: bool,
}

impl S3Prefixes {
    /// Validates Prefix and ErrorOutputPrefix as Firehose does for S3 and ExtendedS3 destinations
    /// (rules 1 to 5, the length limits). `None` and `Some("")` both mean unset for
    /// ErrorOutputPrefix; for Prefix they evaluate the same way.
    ///
    /// # Errors
    /// The first rule the pair breaks, as a [`KeyError`].
    pub fn new(
        prefix: Option<&str>,
        error_output_prefix: Option<&str>,
    ) -> Result<S3Prefixes, KeyError> {
        let prefix_source = prefix.unwrap_or("");
        let mut prefix = Template::parse(PrefixField::Prefix, prefix_source)?;
        let error_output_prefix = error_output_prefix.filter(|s| !s.is_empty());
        let error_prefix = match error_output_prefix {
            Some(source) => Some(Template::parse(PrefixField::ErrorOutputPrefix, source)?),
            None => None,
        };
        if prefix.has_error_output_type() {
            return Err(KeyError::ErrorOutputTypeInPrefix);
        }
        for template in std::iter::once(&prefix).chain(error_prefix.as_ref()) {
            if let Some((source, name)) = template.partition_keys().next() {
                return Err(KeyError::PartitioningNotEnabled {
                    field: template.field,
                    expression: format!("{}:{name}", source.namespace()),
                });
            }
        }
        if prefix.has_expressions() && error_prefix.is_none() {
            return Err(KeyError::ErrorOutputPrefixRequired);
        }
        if let Some(error_prefix) = &error_prefix {
            if !error_prefix.has_error_output_type() {
                return Err(KeyError::ErrorOutputTypeMissing);
            }
        }
        // The evaluated-length bound excludes the timestamp rule 1 appends, so check it first.
        check_evaluated_length(&prefix)?;
        if let Some(error_prefix) = &error_prefix {
            check_evaluated_length(error_prefix)?;
        }
        let default_timestamp = || {
            // The default pattern is a constant known to parse.
            parse_timestamp_pattern(PrefixField::Prefix, DEFAULT_TIMESTAMP_PATTERN)
                .map(Part::Timestamp)
        };
        let error_prefix = match error_prefix {
            Some(error_prefix) => error_prefix,
            None => {
                // Rule 5: Prefix has no expressions here (rule 3), only literal text.
                let mut parts = prefix.parts.clone();
                parts.push(Part::ErrorOutputType);
                parts.push(Part::Literal("/".to_string()));
                parts.push(default_timestamp()?);
                Template {
                    field: PrefixField::ErrorOutputPrefix,
                    parts,
                }
            }
        };
        if !prefix.has_timestamp() {
            prefix.parts.push(default_timestamp()?);
        }
        Ok(S3Prefixes {
            prefix,
            error_prefix,
            zone: Zone::utc(),
            partitioned: false,
        })
    }

    /// Validates Prefix and ErrorOutputPrefix of a destination with dynamic partitioning: both
    /// required; partition keys only in Prefix, each produced by a processor (`produced`), at
    /// most [`crate::partition::PARTITION_KEYS_MAX`] distinct ones; no timestamp appended; the
    /// other rules as [`S3Prefixes::new`].
    ///
    /// # Errors
    /// The first rule broken, as a [`KeyError`].
    pub fn partitioned(
        prefix: Option<&str>,
        error_output_prefix: Option<&str>,
        produced: &KeysProduced,
    ) -> Result<S3Prefixes, KeyError> {
        let prefix_source = prefix
            .filter(|p| !p.is_empty())
            .ok_or(KeyError::PartitioningNeedsPrefix)?;
        let error_source = error_output_prefix
            .filter(|p| !p.is_empty())
            .ok_or(KeyError::PartitioningNeedsErrorOutputPrefix)?;
        let prefix = Template::parse(PrefixField::Prefix, prefix_source)?;
        let error_prefix = Template::parse(PrefixField::ErrorOutputPrefix, error_source)?;
        if let Some((source, name)) = error_prefix.partition_keys().next() {
            return Err(KeyError::PartitioningNotEnabled {
                field: PrefixField::ErrorOutputPrefix,
                expression: format!("{}:{name}", source.namespace()),
            });
        }
        if prefix.has_error_output_type() {
            return Err(KeyError::ErrorOutputTypeInPrefix);
        }
        if !error_prefix.has_error_output_type() {
            return Err(KeyError::ErrorOutputTypeMissing);
        }
        let mut distinct: Vec<(KeySource, &str)> = Vec::new();
        for (source, name) in prefix.partition_keys() {
            let expression = || format!("{}:{name}", source.namespace());
            match source {
                KeySource::Query if !produced.query.iter().any(|k| k == name) => {
                    return Err(KeyError::UnknownPartitionKey {
                        expression: expression(),
                        why: "the MetadataExtractionQuery has no such key",
                    })
                }
                KeySource::Lambda if !produced.lambda => {
                    return Err(KeyError::UnknownPartitionKey {
                        expression: expression(),
                        why: "there is no Lambda processor",
                    })
                }
                _ => {}
            }
            if !distinct.contains(&(source, name)) {
                distinct.push((source, name));
            }
        }
        if distinct.len() > crate::partition::PARTITION_KEYS_MAX {
            return Err(KeyError::TooManyPartitionKeys(distinct.len()));
        }
        check_evaluated_length(&prefix)?;
        check_evaluated_length(&error_prefix)?;
        Ok(S3Prefixes {
            prefix,
            error_prefix,
            zone: Zone::utc(),
            partitioned: true,
        })
    }

    /// Whether these are the templates of a partitioned destination.
    pub fn is_partitioned(&self) -> bool {
        self.partitioned
    }

    /// The evaluated Prefix of one partition of a batch, checked: the key it makes (with the
    /// widest suffix) is writable and the evaluated prefix is at most
    /// [`EVALUATED_PREFIX_CHARS_MAX`] characters.
    ///
    /// # Errors
    /// [`PrefixError`]: a key the Prefix uses is missing, or the key would be unwritable.
    pub fn partition_prefix(
        &self,
        identity: &BatchIdentity,
        arrival_ms: u64,
        keys: &PartitionKeys,
    ) -> Result<String, PrefixError> {
        let mut out = String::new();
        self.prefix.evaluate(
            &mut out,
            identity,
            &CivilTime::at(arrival_ms, &self.zone),
            None,
            Some(keys),
        )?;
        let unwritable = |reason| PrefixError::Unwritable {
            prefix: out.chars().take(200).collect(),
            reason,
        };
        if out.chars().count() > EVALUATED_PREFIX_CHARS_MAX {
            return Err(unwritable("longer than 512 characters"));
        }
        let mut probe = out.clone();
        push_suffix(
            &mut probe,
            identity,
            u64::MAX,
            arrival_ms,
            &identity.object_id(),
            "",
        );
        if let Some(reason) = key_problem(&probe) {
            return Err(unwritable(reason));
        }
        Ok(out)
    }

    /// The key of one partition's data object: `prefix` (from [`S3Prefixes::partition_prefix`])
    /// + the batch's suffix.
    pub fn partition_data_key(
        prefix: &str,
        identity: &BatchIdentity,
        stream_version: u64,
        arrival_ms: u64,
        extension: &str,
    ) -> String {
        with_suffix(
            prefix.to_owned(),
            identity,
            stream_version,
            arrival_ms,
            extension,
        )
    }

    /// The same templates evaluated in `zone` (a `CustomTimeZone`) instead of UTC.
    #[must_use]
    pub fn with_time_zone(mut self, zone: Zone) -> S3Prefixes {
        self.zone = zone;
        self
    }

    /// The zone timestamps are printed in.
    pub fn time_zone(&self) -> &Zone {
        &self.zone
    }

    /// Validates the templates of a Redshift destination's intermediate S3 configuration: rule 6
    /// (Prefix without expressions, ErrorOutputPrefix unset), then as [`S3Prefixes::new`].
    ///
    /// # Errors
    /// [`KeyError::RedshiftPrefixExpressions`], [`KeyError::RedshiftErrorOutputPrefix`], or any
    /// error of [`S3Prefixes::new`].
    pub fn for_redshift(
        prefix: Option<&str>,
        error_output_prefix: Option<&str>,
    ) -> Result<S3Prefixes, KeyError> {
        if error_output_prefix.is_some_and(|s| !s.is_empty()) {
            return Err(KeyError::RedshiftErrorOutputPrefix);
        }
        let parsed = Template::parse(PrefixField::Prefix, prefix.unwrap_or(""))?;
        if parsed.has_expressions() {
            return Err(KeyError::RedshiftPrefixExpressions);
        }
        S3Prefixes::new(prefix, None)
    }

    /// The evaluated Prefix for a batch whose oldest record arrived at `arrival_ms`.
    pub fn evaluate_prefix(&self, identity: &BatchIdentity, arrival_ms: u64) -> String {
        let mut out = String::new();
        // Without keys: the Prefix of an unpartitioned destination has no partition key part
        // (S3Prefixes::new refuses them); a partitioned one evaluates per partition.
        let evaluated = self.prefix.evaluate(
            &mut out,
            identity,
            &CivilTime::at(arrival_ms, &self.zone),
            None,
            None,
        );
        debug_assert!(evaluated.is_ok() || self.partitioned);
        out
    }

    /// The evaluated ErrorOutputPrefix for a batch's records of the given error type.
    pub fn evaluate_error_prefix(
        &self,
        identity: &BatchIdentity,
        error_type: ErrorOutputType,
        arrival_ms: u64,
    ) -> String {
        let mut out = String::new();
        let time = CivilTime::at(arrival_ms, &self.zone);
        // The ErrorOutputPrefix never has partition keys (refused by both constructors).
        let evaluated =
            self.error_prefix
                .evaluate(&mut out, identity, &time, Some(error_type), None);
        debug_assert!(evaluated.is_ok());
        out
    }

    /// The key of a batch's data object: evaluated Prefix + suffix.
    pub fn data_key(
        &self,
        identity: &BatchIdentity,
        stream_version: u64,
        arrival_ms: u64,
        extension: &str,
    ) -> String {
        with_suffix(
            self.evaluate_prefix(identity, arrival_ms),
            identity,
            stream_version,
            arrival_ms,
            extension,
        )
    }

    /// The key of a batch's error-output object of the given type: evaluated ErrorOutputPrefix +
    /// suffix (with the error object id, so it never collides with the data object). When that
    /// key cannot be written ([`key_problem`]; a stream created before such prefixes were
    /// refused), the key is under Firehose's fixed error prefix instead,
    /// `<error-output-type>/yyyy/MM/dd/HH/` in the prefixes' time zone, which is always
    /// writable (its parts are the error type, digits, the stream name and the object id), so
    /// failed records always land somewhere.
    pub fn error_key(
        &self,
        identity: &BatchIdentity,
        error_type: ErrorOutputType,
        stream_version: u64,
        arrival_ms: u64,
        extension: &str,
    ) -> String {
        let key =
            self.configured_error_key(identity, error_type, stream_version, arrival_ms, extension);
        let Some(reason) = key_problem(&key) else {
            return key;
        };
        let t = CivilTime::at(arrival_ms, &self.zone);
        let mut fixed = format!(
            "{}/{:04}/{:02}/{:02}/{:02}/",
            error_type.as_str(),
            t.year,
            t.month,
            t.day,
            t.hour
        );
        push_error_suffix(
            &mut fixed,
            identity,
            error_type,
            stream_version,
            arrival_ms,
            extension,
        );
        tracing::warn!(%identity, key, reason, fixed,
            "the ErrorOutputPrefix makes an unwritable key; using the fixed error prefix");
        debug_assert!(key_problem(&fixed).is_none(), "{fixed}");
        fixed
    }

    /// The error key as ErrorOutputPrefix makes it, writable or not ([`S3Prefixes::error_key`]
    /// without its fallback).
    fn configured_error_key(
        &self,
        identity: &BatchIdentity,
        error_type: ErrorOutputType,
        stream_version: u64,
        arrival_ms: u64,
        extension: &str,
    ) -> String {
        let mut key = self.evaluate_error_prefix(identity, error_type, arrival_ms);
        push_error_suffix(
            &mut key,
            identity,
            error_type,
            stream_version,
            arrival_ms,
            extension,
        );
        key
    }
}

/// The longest path segment (a file or directory name) of a key, in bytes: `NAME_MAX` of Linux
/// file systems, where the local object store writes.
pub const KEY_SEGMENT_BYTES_MAX: usize = 255;

/// Why the local object store can never write `key`, or `None` when it can. The rules: not
/// empty, no leading or trailing `/`, no NUL, no `.` or `..` segment (it would leave the
/// store's directory), no segment starting with [`crate::local::TEMP_FILE_PREFIX`] (reserved for
/// objects being written), no segment longer than [`KEY_SEGMENT_BYTES_MAX`] bytes. Keys are
/// held to them whatever the store, so that a stream's keys stay valid when its destination
/// moves between S3 and the local store.
#[must_use]
pub fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("an empty key");
    }
    if key.starts_with('/') {
        return Some("a key must not start with '/'");
    }
    if key.ends_with('/') {
        return Some("a key must not end with '/'");
    }
    if key.contains('\0') {
        return Some("a key must not contain NUL");
    }
    for segment in key.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Some("'.' and '..' segments would leave the store's directory");
        }
        if segment.starts_with(crate::local::TEMP_FILE_PREFIX) {
            return Some("names starting with .hydrant-tmp. are reserved");
        }
        if segment.len() > KEY_SEGMENT_BYTES_MAX {
            return Some("a path segment is longer than 255 bytes");
        }
    }
    None
}

/// A stream name of the widest kind (Firehose allows 64 characters), for [`S3Prefixes::check_writable`].
const WIDEST_STREAM: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
/// 2000-09-27T23:59:59.999Z, a Wednesday in September: the widest month and day names and
/// two-digit fields everywhere.
const WIDEST_ARRIVAL_MS: u64 = 970_099_199_999;

impl S3Prefixes {
    /// Checks that every key these templates can make is writable ([`key_problem`]): the data
    /// key and the error key of every error type, evaluated for the widest stream name, stream
    /// version and time, with `extension`.
    ///
    /// # Errors
    /// [`KeyError::Unwritable`] naming the template.
    pub fn check_writable(&self, extension: &str) -> Result<(), KeyError> {
        let identity = BatchIdentity {
            stream: WIDEST_STREAM.to_string(),
            incarnation: u64::MAX.to_string(),
            destination_id: "destinationId-000000000001".to_string(),
            first_lsn: u64::MAX,
            last_lsn: u64::MAX,
        };
        let unwritable = |field, key: String| match key_problem(&key) {
            Some(reason) => Err(KeyError::Unwritable { field, key, reason }),
            None => Ok(()),
        };
        if self.partitioned {
            // Partition values are checked per record at delivery; here every key is "x".
            let mut sample = PartitionKeys::default();
            for (source, name) in self.prefix.partition_keys() {
                let list = match source {
                    KeySource::Query => &mut sample.query,
                    KeySource::Lambda => &mut sample.lambda,
                };
                list.push((name.to_owned(), "x".to_owned()));
            }
            let mut key = String::new();
            let time = CivilTime::at(WIDEST_ARRIVAL_MS, &self.zone);
            let _ = self
                .prefix
                .evaluate(&mut key, &identity, &time, None, Some(&sample));
            push_suffix(
                &mut key,
                &identity,
                u64::MAX,
                WIDEST_ARRIVAL_MS,
                &identity.object_id(),
                extension,
            );
            unwritable(PrefixField::Prefix, key)?;
        } else {
            unwritable(
                PrefixField::Prefix,
                self.data_key(&identity, u64::MAX, WIDEST_ARRIVAL_MS, extension),
            )?;
        }
        for t in ErrorOutputType::ALL {
            unwritable(
                PrefixField::ErrorOutputPrefix,
                self.configured_error_key(&identity, t, u64::MAX, WIDEST_ARRIVAL_MS, extension),
            )?;
        }
        Ok(())
    }
}

fn check_evaluated_length(template: &Template) -> Result<(), KeyError> {
    let chars = template.evaluated_chars_max();
    if chars > EVALUATED_PREFIX_CHARS_MAX {
        return Err(KeyError::EvaluatedTooLong {
            field: template.field,
            chars,
            max: EVALUATED_PREFIX_CHARS_MAX,
        });
    }
    Ok(())
}

/// Appends the suffix of an error-output object: [`push_suffix`] with the error object id.
fn push_error_suffix(
    key: &mut String,
    identity: &BatchIdentity,
    error_type: ErrorOutputType,
    stream_version: u64,
    arrival_ms: u64,
    extension: &str,
) {
    let id = identity.error_object_id(error_type);
    push_suffix(key, identity, stream_version, arrival_ms, &id, extension);
}

/// `key` (an evaluated prefix) with the suffix of a batch's data object appended.
fn with_suffix(
    mut key: String,
    identity: &BatchIdentity,
    stream_version: u64,
    arrival_ms: u64,
    extension: &str,
) -> String {
    push_suffix(
        &mut key,
        identity,
        stream_version,
        arrival_ms,
        &identity.object_id(),
        extension,
    );
    key
}

/// Appends `<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<id><extension>`.
fn push_suffix(
    key: &mut String,
    identity: &BatchIdentity,
    stream_version: u64,
    arrival_ms: u64,
    id: &str,
    extension: &str,
) {
    let t = CivilTime::utc(arrival_ms);
    // Writing into a String cannot fail.
    let _ = write!(
        key,
        "{}-{}-{:04}-{:02}-{:02}-{:02}-{:02}-{:02}-{}{}",
        identity.stream,
        stream_version,
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        id,
        extension
    );
}

/// Checks a `FileExtension` against Firehose's pattern `^$|\.[0-9a-z!\-_.*'()]+` and its
/// 128-character limit.
///
/// # Errors
/// [`KeyError::InvalidFileExtension`].
pub fn validate_file_extension(extension: &str) -> Result<(), KeyError> {
    if extension.is_empty() {
        return Ok(());
    }
    let allowed = |c: char| c.is_ascii_digit() || c.is_ascii_lowercase() || "!-_.*'()".contains(c);
    let valid = extension.len() >= 2
        && extension.len() <= FILE_EXTENSION_CHARS_MAX
        && extension.starts_with('.')
        && extension[1..].chars().all(allowed);
    if valid {
        Ok(())
    } else {
        Err(KeyError::InvalidFileExtension(extension.to_string()))
    }
}

/// The extension an object gets: `FileExtension` when set and not empty (an explicit empty one
/// restores the default, as Firehose does), else the codec's.
///
/// # Errors
/// [`KeyError::InvalidFileExtension`] for an extension Firehose would refuse.
pub fn resolve_extension(
    file_extension: Option<&str>,
    compression: Compression,
) -> Result<String, KeyError> {
    match file_extension.filter(|e| !e.is_empty()) {
        Some(extension) => {
            validate_file_extension(extension)?;
            Ok(extension.to_string())
        }
        None => Ok(compression.default_extension().to_string()),
    }
}

/// The bucket named by a `BucketARN` (`arn:aws:s3:::my-bucket` gives `my-bucket`).
///
/// # Errors
/// [`KeyError::InvalidBucketArn`] when the ARN does not match `arn:.*:s3:::[\w.-]{1,255}`.
pub fn bucket_from_arn(arn: &str) -> Result<&str, KeyError> {
    let invalid = || KeyError::InvalidBucketArn(arn.to_string());
    if arn.len() > BUCKET_ARN_CHARS_MAX || !arn.starts_with("arn:") {
        return Err(invalid());
    }
    // The partition (`.*` in the pattern) may be anything; the bucket follows the last `:s3:::`.
    let Some(at) = arn.rfind(":s3:::") else {
        return Err(invalid());
    };
    let bucket = &arn[at + ":s3:::".len()..];
    let valid = !bucket.is_empty()
        && bucket.len() <= 255
        && bucket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        // `.` and `..` would name the objects directory or its parent in the local store.
        && bucket != "."
        && bucket != "..";
    if valid {
        Ok(bucket)
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error `S3Prefixes::new` refuses the two templates with.
    fn refused(prefix: Option<&str>, error_prefix: Option<&str>) -> KeyError {
        match S3Prefixes::new(prefix, error_prefix) {
            Ok(_) => panic!("{prefix:?} / {error_prefix:?} accepted"),
            Err(e) => e,
        }
    }

    /// 2018-08-27T10:30:07.123Z, the instant of the developer guide's examples.
    const AUG_27_2018_1030: u64 = 1_535_365_807_123;

    fn identity() -> BatchIdentity {
        BatchIdentity {
            stream: "my-delivery-stream".into(),
            incarnation: "00000000000000000000000000000001".into(),
            destination_id: "destinationId-000000000001".into(),
            first_lsn: 1,
            last_lsn: 100,
        }
    }

    fn prefixes(prefix: Option<&str>, error: Option<&str>) -> S3Prefixes {
        match S3Prefixes::new(prefix, error) {
            Ok(p) => p,
            Err(e) => panic!("{prefix:?} / {error:?}: {e}"),
        }
    }

    /// An unwritable ErrorOutputPrefix falls back to the fixed `<type>/yyyy/MM/dd/HH/` prefix
    /// in the stream's time zone, across both daylight-saving transitions of New York in 2021
    /// (the suffix's time stays UTC); in UTC the fallback key is the pinned one.
    #[test]
    fn fallback_error_key_follows_the_time_zone_across_dst() {
        let unwritable = Some("../!{firehose:error-output-type}/");
        let utc = prefixes(Some("p/"), unwritable);
        assert_eq!(
            utc.error_key(
                &identity(),
                ErrorOutputType::S3DeliveryFailed,
                2,
                AUG_27_2018_1030,
                ".gz"
            ),
            format!(
                "s3-failed/2018/08/27/10/my-delivery-stream-2-2018-08-27-10-30-07-{}.gz",
                identity().error_object_id(ErrorOutputType::S3DeliveryFailed)
            )
        );
        let ny = prefixes(Some("p/"), unwritable).with_time_zone(
            Zone::from_firehose(Some("America/New_York")).unwrap_or_else(|e| panic!("{e}")),
        );
        // (UTC instant, hour prefix in New York, UTC suffix time)
        for (ms, hour, suffix) in [
            // 2021-03-14 06:30Z = 01:30 EST; 07:30Z = 03:30 EDT (02:xx does not exist).
            (
                1_615_703_400_000_u64,
                "2021/03/14/01/",
                "2021-03-14-06-30-00",
            ),
            (1_615_707_000_000, "2021/03/14/03/", "2021-03-14-07-30-00"),
            // 2021-11-07 05:30Z = 01:30 EDT; 06:30Z = 01:30 EST (01:xx twice).
            (1_636_263_000_000, "2021/11/07/01/", "2021-11-07-05-30-00"),
            (1_636_266_600_000, "2021/11/07/01/", "2021-11-07-06-30-00"),
            // 2021-11-07 07:30Z = 02:30 EST.
            (1_636_270_200_000, "2021/11/07/02/", "2021-11-07-07-30-00"),
        ] {
            let key = ny.error_key(&identity(), ErrorOutputType::ProcessingFailed, 1, ms, "");
            assert_eq!(
                key,
                format!(
                    "processing-failed/{hour}my-delivery-stream-1-{suffix}-{}",
                    identity().error_object_id(ErrorOutputType::ProcessingFailed)
                )
            );
        }
    }

    fn eval(prefix: Option<&str>, error: Option<&str>) -> (String, String) {
        let p = prefixes(prefix, error);
        (
            p.evaluate_prefix(&identity(), AUG_27_2018_1030),
            p.evaluate_error_prefix(
                &identity(),
                ErrorOutputType::ProcessingFailed,
                AUG_27_2018_1030,
            ),
        )
    }

    /// Golden values: object keys are a pure function of the batch identity and the oldest
    /// arrival time, and must stay so across versions (a batch resent after an upgrade must
    /// overwrite the object the old version wrote). A change here is a format change.
    #[test]
    fn golden_keys_are_pinned() {
        let plain = prefixes(None, None);
        assert_eq!(
            plain.data_key(&identity(), 1, AUG_27_2018_1030, ".gz"),
            "2018/08/27/10/my-delivery-stream-1-2018-08-27-10-30-07-\
             0cf302a5-0a79-8fd4-998c-4c36a82d90e5.gz"
        );
        let random = prefixes(
            Some("logs/!{firehose:random-string}/!{firehose:random-string}/"),
            Some("err/!{firehose:random-string}/!{firehose:error-output-type}/"),
        );
        assert_eq!(
            random.data_key(&identity(), 3, AUG_27_2018_1030, ""),
            "logs/ad2ba07f5bb/dfa67c24b0c/2018/08/27/10/my-delivery-stream-3-2018-08-27-10-30-07-\
             0cf302a5-0a79-8fd4-998c-4c36a82d90e5"
        );
        assert_eq!(
            random.error_key(
                &identity(),
                ErrorOutputType::ProcessingFailed,
                3,
                AUG_27_2018_1030,
                ".gz"
            ),
            "err/c8285970189/processing-failed/my-delivery-stream-3-2018-08-27-10-30-07-\
             c5eb8e7c-c034-80d0-a52e-bc5ab69f2915.gz"
        );
    }

    #[test]
    fn guide_example_unspecified_prefix() {
        let (prefix, error) = eval(
            None,
            Some("myFirehoseFailures/!{firehose:error-output-type}/"),
        );
        assert_eq!(prefix, "2018/08/27/10/");
        assert_eq!(error, "myFirehoseFailures/processing-failed/");
    }

    #[test]
    fn guide_example_expressions_need_an_error_prefix() {
        assert_eq!(
            refused(Some("!{timestamp:yyyy/MM/dd}"), None),
            KeyError::ErrorOutputPrefixRequired
        );
        assert_eq!(
            refused(Some("!{timestamp:yyyy/MM/dd}"), Some("")),
            KeyError::ErrorOutputPrefixRequired
        );
    }

    #[test]
    fn guide_example_random_string_and_anymonth() {
        let (prefix, error) = eval(
            Some("myFirehose/DeliveredYear=!{timestamp:yyyy}/anyMonth/rand=!{firehose:random-string}"),
            Some("myFirehoseFailures/!{firehose:error-output-type}/!{timestamp:yyyy}/anyMonth/!{timestamp:dd}"),
        );
        let random = prefix
            .strip_prefix("myFirehose/DeliveredYear=2018/anyMonth/rand=")
            .unwrap_or("");
        assert_eq!(random.len(), RANDOM_STRING_CHARS, "{prefix}");
        assert!(random
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(
            error,
            "myFirehoseFailures/processing-failed/2018/anyMonth/27"
        );
    }

    #[test]
    fn guide_example_quoted_literals() {
        let (prefix, error) = eval(
            Some("myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"),
            Some("myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/!{firehose:error-output-type}"),
        );
        assert_eq!(prefix, "myPrefix/year=2018/month=08/day=27/hour=10/");
        assert_eq!(
            error,
            "myErrorPrefix/year=2018/month=08/day=27/hour=10/processing-failed"
        );
    }

    #[test]
    fn guide_example_literal_prefix_without_error_prefix() {
        // Rule 5. The guide's table shows a slash after the prefix, its rule text does not; the
        // rule text (and "a prefix ending with a slash appears as a folder") wins.
        let (prefix, error) = eval(Some("myFirehosePrefix"), None);
        assert_eq!(prefix, "myFirehosePrefix2018/08/27/10/");
        assert_eq!(error, "myFirehosePrefixprocessing-failed/2018/08/27/10/");
        let (prefix, error) = eval(Some("myFirehosePrefix/"), None);
        assert_eq!(prefix, "myFirehosePrefix/2018/08/27/10/");
        assert_eq!(error, "myFirehosePrefix/processing-failed/2018/08/27/10/");
        let (prefix, error) = eval(None, None);
        assert_eq!(prefix, "2018/08/27/10/");
        assert_eq!(error, "processing-failed/2018/08/27/10/");
    }

    #[test]
    fn rule_1_appends_a_timestamp_only_when_there_is_none() {
        let (prefix, _) = eval(
            Some("logs/!{firehose:random-string}/"),
            Some("e/!{firehose:error-output-type}/"),
        );
        assert!(prefix.starts_with("logs/"));
        assert!(prefix.ends_with("/2018/08/27/10/"), "{prefix}");
        let (prefix, _) = eval(
            Some("logs/!{timestamp:yyyy}/"),
            Some("e/!{firehose:error-output-type}/"),
        );
        assert_eq!(prefix, "logs/2018/");
        // ErrorOutputPrefix gets nothing appended.
        let (_, error) = eval(Some("logs/"), Some("e/!{firehose:error-output-type}"));
        assert_eq!(error, "e/processing-failed");
    }

    #[test]
    fn rule_2_stray_expression_start() {
        assert_eq!(
            refused(Some("a/!{timestamp:yyyy"), None),
            KeyError::StrayExpressionStart {
                field: PrefixField::Prefix,
                offset: 2
            }
        );
        assert_eq!(
            refused(Some("a/!{firehose:!{x}"), None),
            KeyError::StrayExpressionStart {
                field: PrefixField::Prefix,
                offset: 2
            }
        );
        assert!(matches!(
            S3Prefixes::new(Some("x"), Some("!{firehose:error-output-type}/!{")),
            Err(KeyError::StrayExpressionStart {
                field: PrefixField::ErrorOutputPrefix,
                ..
            })
        ));
        // A lone `{`, `}` or `!` is fine.
        let (prefix, _) = eval(Some("a{b}!c/"), None);
        assert_eq!(prefix, "a{b}!c/2018/08/27/10/");
    }

    #[test]
    fn rule_2_unknown_and_unsupported_expressions() {
        let error = "!{firehose:error-output-type}";
        for bad in ["!{foo:bar}", "!{firehose:uuid}", "!{timestamp}", "!{}"] {
            assert!(
                matches!(
                    S3Prefixes::new(Some(bad), Some(error)),
                    Err(KeyError::UnknownExpression { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            S3Prefixes::new(Some("!{partitionKeyFromQuery:id}/"), Some(error)),
            Err(KeyError::PartitioningNotEnabled { .. })
        ));
        assert!(matches!(
            S3Prefixes::new(Some("!{partitionKeyFromLambda:id}/"), Some(error)),
            Err(KeyError::PartitioningNotEnabled { .. })
        ));
    }

    #[test]
    fn rule_3_error_prefix_must_name_the_error_type() {
        assert_eq!(
            refused(Some("a/!{timestamp:yyyy}/"), Some("errors/")),
            KeyError::ErrorOutputTypeMissing
        );
        assert_eq!(
            refused(Some("a/"), Some("errors/!{timestamp:yyyy}/")),
            KeyError::ErrorOutputTypeMissing
        );
        assert!(S3Prefixes::new(
            Some("a/!{timestamp:yyyy}/"),
            Some("e/!{firehose:error-output-type}")
        )
        .is_ok());
    }

    #[test]
    fn rule_4_prefix_must_not_name_the_error_type() {
        assert_eq!(
            refused(
                Some("a/!{firehose:error-output-type}/"),
                Some("!{firehose:error-output-type}")
            ),
            KeyError::ErrorOutputTypeInPrefix
        );
    }

    #[test]
    fn rule_6_redshift() {
        assert_eq!(
            S3Prefixes::for_redshift(Some("a/!{timestamp:yyyy}/"), None),
            Err(KeyError::RedshiftPrefixExpressions)
        );
        assert_eq!(
            S3Prefixes::for_redshift(Some("a/"), Some("!{firehose:error-output-type}")),
            Err(KeyError::RedshiftErrorOutputPrefix)
        );
        let p = S3Prefixes::for_redshift(Some("copy/"), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.evaluate_prefix(&identity(), AUG_27_2018_1030),
            "copy/2018/08/27/10/"
        );
    }

    #[test]
    fn rule_7_console_default_error_prefix_is_valid() {
        let (_, error) = eval(
            Some("!{timestamp:yyyy}/"),
            Some("!{firehose:error-output-type}/"),
        );
        assert_eq!(error, "processing-failed/");
    }

    #[test]
    fn length_limits() {
        let long = "a".repeat(TEMPLATE_CHARS_MAX + 1);
        assert!(matches!(
            S3Prefixes::new(Some(&long), None),
            Err(KeyError::TooLong { .. })
        ));
        // A literal prefix of exactly 512 characters is accepted even though the appended
        // timestamp makes it longer.
        let literal = "a".repeat(EVALUATED_PREFIX_CHARS_MAX);
        let p = prefixes(Some(&literal), None);
        assert_eq!(
            p.evaluate_prefix(&identity(), 0).len(),
            EVALUATED_PREFIX_CHARS_MAX + 14
        );
        let literal = "a".repeat(EVALUATED_PREFIX_CHARS_MAX + 1);
        assert!(matches!(
            S3Prefixes::new(Some(&literal), None),
            Err(KeyError::EvaluatedTooLong { .. })
        ));
        // Expressions count at their widest: 500 + 11 random characters + a 4-digit year.
        let near = format!(
            "{}!{{firehose:random-string}}!{{timestamp:yyyy}}",
            "a".repeat(500)
        );
        assert!(matches!(
            S3Prefixes::new(Some(&near), Some("!{firehose:error-output-type}")),
            Err(KeyError::EvaluatedTooLong { chars: 515, .. })
        ));
        let fits = format!("{}!{{firehose:random-string}}", "a".repeat(501));
        assert!(S3Prefixes::new(Some(&fits), Some("!{firehose:error-output-type}")).is_ok());
        // The widest error type is AmazonOpenSearchService-failed (30 characters).
        let error = format!("{}!{{firehose:error-output-type}}", "e".repeat(483));
        assert!(matches!(
            S3Prefixes::new(None, Some(&error)),
            Err(KeyError::EvaluatedTooLong { .. })
        ));
    }

    fn format_at(pattern: &str, ms: u64) -> Result<String, KeyError> {
        let items = parse_timestamp_pattern(PrefixField::Prefix, pattern)?;
        let mut out = String::new();
        format_timestamp(&mut out, &items, &CivilTime::utc(ms));
        Ok(out)
    }

    #[test]
    fn java_date_time_formatter_subset() {
        let at = |p: &str| format_at(p, AUG_27_2018_1030).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(at("yyyy/MM/dd/HH/"), "2018/08/27/10/");
        assert_eq!(at("yyyy-MM-dd'T'HH:mm:ss.SSS"), "2018-08-27T10:30:07.123");
        assert_eq!(at("yy y yyy yyyyy uuuu"), "18 2018 2018 02018 2018");
        assert_eq!(at("M MM MMM MMMM MMMMM LLL"), "8 08 Aug August A Aug");
        assert_eq!(at("d dd D DD DDD"), "27 27 239 239 239");
        assert_eq!(at("H HH k K h hh a"), "10 10 10 10 10 10 AM");
        assert_eq!(at("m mm s ss S SS SSSSSS"), "30 30 7 07 1 12 123000");
        assert_eq!(at("E EEE EEEE EEEEE"), "Mon Mon Monday M");
        assert_eq!(at("'year='yyyy"), "year=2018");
        assert_eq!(at("'it''s' ''yyyy''"), "it's '2018'");
        assert_eq!(at("[yyyy][-MM]"), "2018-08");
        assert_eq!(at("yyyy年MM月"), "2018年08月");
        let early = |p: &str| format_at(p, 3_600_000 * 13 + 60_000 * 5).unwrap_or_default();
        assert_eq!(early("H h K k a d D"), "13 1 1 13 PM 1 1");
        assert_eq!(early("DD DDD"), "01 001");
        let midnight = |p: &str| format_at(p, 0).unwrap_or_default();
        assert_eq!(midnight("H k h K a"), "0 24 12 0 AM");
    }

    #[test]
    fn java_pattern_errors() {
        for bad in [
            "ddd",
            "HHH",
            "mmm",
            "MMMMMM",
            "aa",
            "DDDD",
            "SSSSSSSSSS",
            "'open",
            "]",
            "#",
            "{",
        ] {
            assert!(
                matches!(
                    format_at(bad, 0),
                    Err(KeyError::InvalidTimestampPattern { .. })
                ),
                "{bad}"
            );
        }
        for unsupported in [
            "G", "Q", "w", "W", "Y", "z", "Z", "X", "x", "V", "n", "N", "A", "e", "c", "O",
        ] {
            assert!(
                matches!(
                    format_at(unsupported, 0),
                    Err(KeyError::InvalidTimestampPattern { .. })
                ),
                "{unsupported}"
            );
        }
        assert!(matches!(
            S3Prefixes::new(
                Some("!{timestamp:yyyy-ww}"),
                Some("!{firehose:error-output-type}")
            ),
            Err(KeyError::InvalidTimestampPattern {
                field: PrefixField::Prefix,
                ..
            })
        ));
    }

    #[test]
    fn keys_have_firehose_shape_and_are_deterministic() {
        let p = prefixes(None, None);
        let key = p.data_key(&identity(), 3, AUG_27_2018_1030, ".gz");
        let expected_prefix = "2018/08/27/10/my-delivery-stream-3-2018-08-27-10-30-07-";
        assert!(key.starts_with(expected_prefix), "{key}");
        let id = &key[expected_prefix.len()..key.len() - 3];
        assert_eq!(id, identity().object_id());
        assert!(key.ends_with(".gz"));
        assert_eq!(key, p.data_key(&identity(), 3, AUG_27_2018_1030, ".gz"));
        let mut other = identity();
        other.first_lsn = 101;
        other.last_lsn = 200;
        assert_ne!(key, p.data_key(&other, 3, AUG_27_2018_1030, ".gz"));

        let error_key = p.error_key(
            &identity(),
            ErrorOutputType::HttpEndpointFailed,
            3,
            AUG_27_2018_1030,
            "",
        );
        assert!(
            error_key.starts_with(
                "http-endpoint-failed/2018/08/27/10/my-delivery-stream-3-2018-08-27-10-30-07-"
            ),
            "{error_key}"
        );
        assert!(
            error_key.ends_with(&identity().error_object_id(ErrorOutputType::HttpEndpointFailed))
        );
    }

    #[test]
    fn random_strings_differ_per_occurrence_and_repeat_per_batch() {
        let p = prefixes(
            Some("!{firehose:random-string}/!{firehose:random-string}/"),
            Some("!{firehose:random-string}/!{firehose:error-output-type}/"),
        );
        let prefix = p.evaluate_prefix(&identity(), AUG_27_2018_1030);
        let parts: Vec<&str> = prefix.split('/').collect();
        assert_ne!(parts[0], parts[1]);
        assert_eq!(prefix, p.evaluate_prefix(&identity(), AUG_27_2018_1030 + 1));
        let error = p.evaluate_error_prefix(&identity(), ErrorOutputType::ProcessingFailed, 0);
        assert_ne!(error.split('/').next(), Some(parts[0]));
        let mut other = identity();
        other.first_lsn = 2;
        assert_ne!(prefix, p.evaluate_prefix(&other, AUG_27_2018_1030));
    }

    fn produced(query: &[&str], lambda: bool) -> KeysProduced {
        KeysProduced {
            query: query.iter().map(|s| (*s).to_owned()).collect(),
            lambda,
        }
    }

    #[test]
    fn partitioned_prefix_rules() {
        let err = Some("e/!{firehose:error-output-type}/");
        let ok = |p: &str, produced: &KeysProduced| S3Prefixes::partitioned(Some(p), err, produced);
        let q = produced(&["customer_id", "year"], false);
        assert!(ok(
            "c=!{partitionKeyFromQuery:customer_id}/y=!{partitionKeyFromQuery:year}/",
            &q
        )
        .is_ok());
        assert!(matches!(
            ok("c=!{partitionKeyFromQuery:nope}/", &q),
            Err(KeyError::UnknownPartitionKey { .. })
        ));
        assert!(matches!(
            ok("c=!{partitionKeyFromLambda:x}/", &q),
            Err(KeyError::UnknownPartitionKey { .. })
        ));
        assert!(ok("c=!{partitionKeyFromLambda:x}/", &produced(&[], true)).is_ok());
        assert!(matches!(
            S3Prefixes::partitioned(Some("c=!{partitionKeyFromQuery:year}/"), None, &q),
            Err(KeyError::PartitioningNeedsErrorOutputPrefix)
        ));
        assert!(matches!(
            S3Prefixes::partitioned(None, err, &q),
            Err(KeyError::PartitioningNeedsPrefix)
        ));
        assert!(matches!(
            S3Prefixes::partitioned(
                Some("c=!{partitionKeyFromQuery:year}/"),
                Some("e/!{firehose:error-output-type}/!{partitionKeyFromQuery:year}/"),
                &q
            ),
            Err(KeyError::PartitioningNotEnabled {
                field: PrefixField::ErrorOutputPrefix,
                ..
            })
        ));
        assert!(matches!(
            ok("!{partitionKeyFromQuery:}/", &q),
            Err(KeyError::UnknownExpression { .. })
        ));
        let names: Vec<String> = (0..51).map(|i| format!("k{i}")).collect();
        let many = KeysProduced {
            query: names.clone(),
            lambda: false,
        };
        let prefix: String = names
            .iter()
            .map(|n| format!("!{{partitionKeyFromQuery:{n}}}/"))
            .collect();
        // 51 distinct keys do not fit in a 1024-character template: refused either way.
        assert!(matches!(
            ok(&prefix, &many),
            Err(KeyError::TooManyPartitionKeys(51) | KeyError::TooLong { .. })
        ));
        let thirty: String = names[..30]
            .iter()
            .map(|n| format!("!{{partitionKeyFromQuery:{n}}}"))
            .collect();
        assert!(ok(&thirty, &many).is_ok());
    }

    #[test]
    fn partition_prefixes_evaluate_escaped_and_checked() {
        let p = S3Prefixes::partitioned(
            Some("c=!{partitionKeyFromQuery:c}/l=!{partitionKeyFromLambda:l}/!{timestamp:yyyy}/"),
            Some("e/!{firehose:error-output-type}/"),
            &produced(&["c"], true),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let id = identity();
        let keys = |c: &str, l: &str| PartitionKeys {
            query: vec![("c".into(), c.into())],
            lambda: vec![("l".into(), l.into())],
        };
        let got = p.partition_prefix(&id, AUG_27_2018_1030, &keys("c7", "a/b"));
        // No default timestamp appended to a partitioned Prefix; values escaped.
        assert_eq!(got.as_deref(), Ok("c=c7/l=a%2Fb/2018/"));
        let key = S3Prefixes::partition_data_key("c=c7/", &id, 3, AUG_27_2018_1030, ".gz");
        assert!(
            key.starts_with("c=c7/my-delivery-stream-3-2018-08-27-10-30-07-"),
            "{key}"
        );
        assert!(key.ends_with(&format!("{}.gz", id.object_id())));
        assert!(matches!(
            p.partition_prefix(&id, AUG_27_2018_1030, &PartitionKeys::default()),
            Err(PrefixError::MissingKey { .. })
        ));
        let long = "x".repeat(300);
        assert!(matches!(
            p.partition_prefix(&id, AUG_27_2018_1030, &keys(&long, "y")),
            Err(PrefixError::Unwritable { .. })
        ));
        // An empty value at the start of a key makes a leading '/'.
        let lead = S3Prefixes::partitioned(
            Some("!{partitionKeyFromQuery:c}/"),
            Some("e/!{firehose:error-output-type}/"),
            &produced(&["c"], false),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            lead.partition_prefix(&id, AUG_27_2018_1030, &keys("", "y")),
            Err(PrefixError::Unwritable { .. })
        ));
        assert!(p.check_writable(".gz").is_ok());
    }

    #[test]
    fn file_extensions() {
        for good in ["", ".gz", ".json.gz", ".a-b_c.d*e'f(g)h!", ".0"] {
            assert_eq!(validate_file_extension(good), Ok(()), "{good}");
        }
        for bad in [
            ".",
            "gz",
            ".GZ",
            ".a/b",
            ". x",
            &format!(".{}", "a".repeat(128)),
        ] {
            assert!(validate_file_extension(bad).is_err(), "{bad}");
        }
        assert_eq!(
            resolve_extension(None, Compression::Gzip),
            Ok(".gz".to_string())
        );
        assert_eq!(
            resolve_extension(Some(""), Compression::Gzip),
            Ok(".gz".to_string())
        );
        assert_eq!(
            resolve_extension(Some(".json.gz"), Compression::Gzip),
            Ok(".json.gz".to_string())
        );
        assert_eq!(
            resolve_extension(None, Compression::Uncompressed),
            Ok(String::new())
        );
    }

    #[test]
    fn bucket_arns() {
        assert_eq!(bucket_from_arn("arn:aws:s3:::my-bucket"), Ok("my-bucket"));
        assert_eq!(bucket_from_arn("arn:aws-cn:s3:::a.b_c-d"), Ok("a.b_c-d"));
        for bad in [
            "my-bucket",
            "arn:aws:s3:::",
            "arn:aws:s3:::a/b",
            "arn:aws:s3:::..",
            "s3://x",
            "arn:aws:sqs:::x",
        ] {
            assert!(bucket_from_arn(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Validation never panics, and every valid pair evaluates within the advertised bound.
        #[test]
        fn any_template_validates_or_errors(
            prefix in "[a-z/!{}:'=_-]{0,40}(!\\{(timestamp:[yMdHms/'-]{0,12}|firehose:random-string)\\})?[a-z/]{0,10}",
            error in proptest::option::of("[a-z/]{0,20}!\\{firehose:error-output-type\\}[a-z/!{}]{0,20}"),
            ms in 0u64..4_102_444_800_000,
        ) {
            if let Ok(p) = S3Prefixes::new(Some(&prefix), error.as_deref()) {
                let id = identity();
                let evaluated = p.evaluate_prefix(&id, ms);
                proptest::prop_assert!(evaluated.chars().count() <= EVALUATED_PREFIX_CHARS_MAX + 14);
                for t in ErrorOutputType::ALL {
                    let e = p.evaluate_error_prefix(&id, t, ms);
                    proptest::prop_assert!(e.contains(t.as_str()));
                }
                proptest::prop_assert_eq!(p.data_key(&id, 1, ms, ""), p.data_key(&id, 1, ms, ""));
            }
        }
    }
}
