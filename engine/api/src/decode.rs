//! Request decoding: headers and body bytes in, a typed, validated [`Request`] or the Firehose
//! error to answer with out. Pure (no I/O, no state), so the fuzz target
//! `fuzz/fuzz_targets/api_request.rs` calls it directly.
//!
//! The order of checks fixes which error a bad request gets:
//! 1. `X-Amz-Target` missing or not `Firehose_20150804.<Operation>`: UnknownOperationException.
//! 2. `Content-Type` present and not JSON: SerializationException.
//! 3. Body larger than [`BODY_BYTES_MAX`], not JSON, or a member of the wrong JSON type:
//!    SerializationException. A `Data` blob that is not base64: SerializationException.
//! 4. Missing required members, bad names, limits (records per batch, bytes per record and
//!    batch, tags), bad enum values: InvalidArgumentException (LimitExceededException for more
//!    than 50 tags).
//!
//! State-dependent checks (does the stream exist, version ids) are the operations' business.

use std::borrow::Cow;

use serde::Deserialize;

use crate::destination::{Destination, DestinationUpdate};
use crate::errors::{ApiError, ErrorCode};
use crate::fastpath::Scanned;
use crate::model::{
    CreateDeliveryStreamInput, DeleteDeliveryStreamInput, DescribeDeliveryStreamInput,
    EncryptionOpInput, ListDeliveryStreamsInput, ListTagsForDeliveryStreamInput, Tag,
    TagDeliveryStreamInput, UntagDeliveryStreamInput, UpdateDestinationInput,
};
use crate::validate;

pub use crate::limits::{
    BATCH_BYTES_MAX, BATCH_RECORDS_MAX, BODY_BYTES_MAX, RECORD_BYTES_MAX, TAGS_MAX,
};
pub use crate::operation::{Operation, TARGET_PREFIX};

/// CreateDeliveryStream, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateRequest {
    /// Stream name.
    pub name: String,
    /// The destination (validated, as given: defaults are filled in on describe).
    pub destination: Destination,
    /// Tags, in request order.
    pub tags: Vec<(String, String)>,
    /// The Kinesis stream read, for `KinesisStreamAsSource` (None: DirectPut).
    pub kinesis_source: Option<crate::source::KinesisStreamSource>,
    /// The Kafka topic read, for `MSKAsSource` (None: not).
    pub msk_source: Option<crate::msk::MskSource>,
}

/// UpdateDestination, validated as far as it can be without the current configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateRequest {
    /// Stream name.
    pub name: String,
    /// The version the caller read.
    pub current_version: String,
    /// The destination to update.
    pub destination_id: String,
    /// What to change.
    pub update: DestinationUpdate,
}

/// A decoded, validated request.
#[derive(Clone, Debug, PartialEq)]
// One value per request, moved once from decoding to dispatch.
#[allow(clippy::large_enum_variant)]
pub enum Request {
    /// CreateDeliveryStream.
    Create(CreateRequest),
    /// DescribeDeliveryStream.
    Describe {
        /// Stream name.
        name: String,
        /// Destinations to return.
        limit: usize,
        /// Start after this destination id.
        exclusive_start: Option<String>,
    },
    /// ListDeliveryStreams.
    List {
        /// Names to return.
        limit: usize,
        /// Only this type (DirectPut, KinesisStreamAsSource or MSKAsSource).
        stream_type: Option<String>,
        /// Start after this name.
        exclusive_start: Option<String>,
    },
    /// DeleteDeliveryStream.
    Delete {
        /// Stream name.
        name: String,
    },
    /// UpdateDestination.
    Update(UpdateRequest),
    /// PutRecord.
    PutRecord {
        /// Stream name.
        name: String,
        /// The record's bytes.
        data: Vec<u8>,
    },
    /// PutRecordBatch.
    PutRecordBatch {
        /// Stream name.
        name: String,
        /// The records' bytes, in order.
        records: Records,
    },
    /// TagDeliveryStream.
    Tag {
        /// Stream name.
        name: String,
        /// Tags to add or replace.
        tags: Vec<(String, String)>,
    },
    /// UntagDeliveryStream.
    Untag {
        /// Stream name.
        name: String,
        /// Keys to remove.
        keys: Vec<String>,
    },
    /// ListTagsForDeliveryStream.
    ListTags {
        /// Stream name.
        name: String,
        /// Start after this key.
        exclusive_start: Option<String>,
        /// Tags to return.
        limit: usize,
    },
    /// Start/StopDeliveryStreamEncryption: refused after the stream is found.
    Encryption {
        /// Which of the two.
        op: Operation,
        /// Stream name.
        name: String,
    },
}

impl Request {
    /// The stream the request is about, if any.
    #[must_use]
    pub fn stream_name(&self) -> Option<&str> {
        match self {
            Request::Create(c) => Some(&c.name),
            Request::Update(u) => Some(&u.name),
            Request::List { .. } => None,
            Request::Describe { name, .. }
            | Request::Delete { name }
            | Request::PutRecord { name, .. }
            | Request::PutRecordBatch { name, .. }
            | Request::Tag { name, .. }
            | Request::Untag { name, .. }
            | Request::ListTags { name, .. }
            | Request::Encryption { name, .. } => Some(name),
        }
    }
}

/// Decodes and validates one request.
///
/// # Errors
/// The Firehose error to answer with; see the module documentation for which check gives which.
pub fn decode_request(
    target: Option<&[u8]>,
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<Request, ApiError> {
    let op = Operation::from_target(target)?;
    check_content_type(content_type)?;
    decode_body(op, body)
}

/// Decodes the body of a request for a known operation.
///
/// # Errors
/// As [`decode_request`], steps 3 and 4.
pub fn decode_body(op: Operation, body: &[u8]) -> Result<Request, ApiError> {
    // An oversized body is refused by the general decoder, before any parsing.
    if body.len() <= BODY_BYTES_MAX {
        if let Some(request) = decode_body_fast(op, body) {
            return Ok(request);
        }
    }
    decode_body_general(op, body)
}

/// The request the fast path ([`crate::fastpath`]) decodes `body` to, built from what its scan
/// found with the general decoder's own checks; `None` when the scan declines or a check fails
/// (the general decoder then decides, and gives the error). Public so that the fuzz target can
/// check it against [`decode_body_general`].
#[must_use]
pub fn decode_body_fast(op: Operation, body: &[u8]) -> Option<Request> {
    match crate::fastpath::scan(op, body)? {
        Scanned::PutRecord { name, data } => put_record_of(name, Some(data)).ok(),
        Scanned::PutRecordBatch { name, records } => put_record_batch_of(name, &records).ok(),
    }
}

/// [`decode_body`] without its fast path ([`crate::fastpath`]): serde for every body. Public
/// so that the fuzz target can check the fast path against it.
///
/// # Errors
/// As [`decode_request`], steps 3 and 4.
pub fn decode_body_general(op: Operation, body: &[u8]) -> Result<Request, ApiError> {
    if body.len() > BODY_BYTES_MAX {
        return Err(body_too_large(body.len()));
    }
    // An empty body is `{}` to AWS JSON services (some clients send nothing for no members).
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    match op {
        Operation::CreateDeliveryStream => create(parse(body)?),
        Operation::DescribeDeliveryStream => {
            let i: DescribeDeliveryStreamInput = parse(body)?;
            Ok(Request::Describe {
                name: name(i.delivery_stream_name)?,
                limit: limit(i.limit, 10_000, 10_000, "limit")?,
                exclusive_start: i.exclusive_start_destination_id,
            })
        }
        Operation::ListDeliveryStreams => {
            let i: ListDeliveryStreamsInput = parse(body)?;
            if let Some(t) = &i.delivery_stream_type {
                stream_type_ok(t)?;
            }
            if let Some(s) = &i.exclusive_start_delivery_stream_name {
                if !validate::stream_name_ok(s) {
                    return Err(bad_name("exclusiveStartDeliveryStreamName", s));
                }
            }
            Ok(Request::List {
                limit: limit(i.limit, 10_000, 10, "limit")?,
                stream_type: i.delivery_stream_type,
                exclusive_start: i.exclusive_start_delivery_stream_name,
            })
        }
        Operation::DeleteDeliveryStream => {
            let i: DeleteDeliveryStreamInput = parse(body)?;
            Ok(Request::Delete {
                name: name(i.delivery_stream_name)?,
            })
        }
        Operation::UpdateDestination => update(parse(body)?),
        Operation::PutRecord => {
            let i: PutRecordRef<'_> = parse(body)?;
            let name = name_ref(i.delivery_stream_name)?;
            let record = i.record.ok_or_else(|| missing("record"))?;
            put_record_of(name, record.data.as_deref().map(str::as_bytes))
        }
        Operation::PutRecordBatch => put_record_batch(parse(body)?),
        Operation::TagDeliveryStream => {
            let i: TagDeliveryStreamInput = parse(body)?;
            let name = name(i.delivery_stream_name)?;
            let tags = i.tags.ok_or_else(|| missing("tags"))?;
            if tags.is_empty() {
                return Err(ApiError::invalid(
                    "1 validation error detected: Value at 'tags' failed to satisfy constraint: \
                     Member must have length greater than or equal to 1",
                ));
            }
            Ok(Request::Tag {
                name,
                tags: tags_ok(tags)?,
            })
        }
        Operation::UntagDeliveryStream => {
            let i: UntagDeliveryStreamInput = parse(body)?;
            let name = name(i.delivery_stream_name)?;
            let keys = i.tag_keys.ok_or_else(|| missing("tagKeys"))?;
            if keys.is_empty() || keys.len() > TAGS_MAX {
                return Err(ApiError::invalid(format!(
                    "1 validation error detected: Value at 'tagKeys' failed to satisfy \
                     constraint: Member must have length between 1 and {TAGS_MAX}"
                )));
            }
            if let Some(k) = keys.iter().find(|k| !validate::tag_key_ok(k)) {
                return Err(ApiError::invalid(format!("invalid tag key {k:?}")));
            }
            Ok(Request::Untag { name, keys })
        }
        Operation::ListTagsForDeliveryStream => {
            let i: ListTagsForDeliveryStreamInput = parse(body)?;
            Ok(Request::ListTags {
                name: name(i.delivery_stream_name)?,
                exclusive_start: i.exclusive_start_tag_key,
                limit: limit(i.limit, 50, 50, "limit")?,
            })
        }
        Operation::StartDeliveryStreamEncryption | Operation::StopDeliveryStreamEncryption => {
            let i: EncryptionOpInput = parse(body)?;
            Ok(Request::Encryption {
                op,
                name: name(i.delivery_stream_name)?,
            })
        }
    }
}

/// The error for a body over [`BODY_BYTES_MAX`] (also used by the server before reading it).
#[must_use]
pub fn body_too_large(len: usize) -> ApiError {
    ApiError::invalid(format!(
        "request body of {len} bytes is over the {BODY_BYTES_MAX}-byte limit"
    ))
}

fn check_content_type(content_type: Option<&[u8]>) -> Result<(), ApiError> {
    let Some(ct) = content_type else {
        return Ok(());
    };
    let ct = std::str::from_utf8(ct).unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-amz-json-1.1" | "application/x-amz-json-1.0" | "application/json" => Ok(()),
        _ => Err(ApiError::serialization(format!(
            "unsupported Content-Type {ct:?}: expected application/x-amz-json-1.1"
        ))),
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_data() {
            "a member has the wrong type"
        } else {
            "the body is not valid JSON"
        };
        ApiError::serialization(format!("{what}: {e}"))
    })
}

fn missing(member: &str) -> ApiError {
    ApiError::invalid(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: \
         Member must not be null"
    ))
}

fn bad_name(member: &str, value: &str) -> ApiError {
    ApiError::invalid(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have \
         length between 1 and 64"
    ))
}

fn name(n: Option<String>) -> Result<String, ApiError> {
    let n = n.ok_or_else(|| missing("deliveryStreamName"))?;
    if validate::stream_name_ok(&n) {
        Ok(n)
    } else {
        Err(bad_name("deliveryStreamName", &n))
    }
}

/// [`name`] for a member borrowed from the body.
fn name_ref(n: Option<Cow<'_, str>>) -> Result<String, ApiError> {
    let n = n.ok_or_else(|| missing("deliveryStreamName"))?;
    if validate::stream_name_ok(&n) {
        Ok(n.into_owned())
    } else {
        Err(bad_name("deliveryStreamName", &n))
    }
}

fn limit(l: Option<i64>, max: i64, default: usize, member: &str) -> Result<usize, ApiError> {
    match l {
        None => Ok(default),
        Some(v) if (1..=max).contains(&v) => Ok(usize::try_from(v).unwrap_or(default)),
        Some(v) => Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{v}' at '{member}' failed to satisfy \
             constraint: Member must have value between 1 and {max}"
        ))),
    }
}

fn stream_type_ok(t: &str) -> Result<(), ApiError> {
    match t {
        "DirectPut" | "KinesisStreamAsSource" | "MSKAsSource" => Ok(()),
        "DatabaseAsSource" => Err(ApiError::invalid(
            format!("DeliveryStreamType {t} is not supported by hydrant (only DirectPut, KinesisStreamAsSource and MSKAsSource)"),
        )),
        other => Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{other}' at 'deliveryStreamType' failed to \
             satisfy constraint: Member must satisfy enum value set: [DirectPut, \
             KinesisStreamAsSource, MSKAsSource, DatabaseAsSource]"
        ))),
    }
}

/// The decoded records of one request, back to back in one buffer: one allocation per request,
/// not one per record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    data: Vec<u8>,
    /// End offset of each record in `data`.
    ends: Vec<usize>,
}

impl Records {
    /// Room for `records` records of `bytes` bytes in all.
    #[must_use]
    pub fn with_capacity(records: usize, bytes: usize) -> Records {
        Records {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(records),
        }
    }

    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of all records together.
    #[must_use]
    pub fn total_bytes(&self) -> usize {
        self.data.len()
    }

    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.data[a..b])
    }

    /// The records as slices (what the WAL's append takes).
    #[must_use]
    pub fn slices(&self) -> Vec<&[u8]> {
        self.iter().collect()
    }

    /// Appends one record.
    pub fn push(&mut self, record: &[u8]) {
        self.data.extend_from_slice(record);
        self.ends.push(self.data.len());
    }

    /// Decodes base64 `b64` as the next record. On an error nothing is added.
    fn push_base64(&mut self, b64: &[u8]) -> Result<(), base64_simd::Error> {
        let before = self.data.len();
        let r = base64_engine(b64).decode_append(b64, &mut self.data);
        if r.is_err() {
            self.data.truncate(before);
            return r;
        }
        self.ends.push(self.data.len());
        Ok(())
    }
}

impl<R: AsRef<[u8]>> FromIterator<R> for Records {
    fn from_iter<I: IntoIterator<Item = R>>(iter: I) -> Records {
        let mut out = Records::default();
        for r in iter {
            out.push(r.as_ref());
        }
        out
    }
}

/// Standard alphabet, padding optional (some producers strip it): padded input is a multiple of
/// four characters, unpadded input of another length is decoded without padding. Non-zero
/// trailing bits are refused either way. A SIMD decoder (AVX2/SSE4.1/NEON, chosen at run time):
/// decoding was the largest single cost of PutRecordBatch with the portable one.
fn base64_engine(b64: &[u8]) -> &'static base64_simd::Base64 {
    if b64.len().is_multiple_of(4) {
        &base64_simd::STANDARD
    } else {
        &base64_simd::STANDARD_NO_PAD
    }
}

/// `{"Data": "<base64>"}`, borrowed from the request body: a base64 string without JSON escapes
/// (every real one) is decoded straight from the body, never copied into a `String` first.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordRef<'a> {
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
}

/// PutRecord's input, borrowed ([`crate::model::PutRecordInput`]'s shape).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordRef<'a> {
    #[serde(borrow)]
    delivery_stream_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    record: Option<RecordRef<'a>>,
}

/// PutRecordBatch's input, borrowed ([`crate::model::PutRecordBatchInput`]'s shape).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordBatchRef<'a> {
    #[serde(borrow)]
    delivery_stream_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    records: Option<Vec<RecordRef<'a>>>,
}

/// Decodes one `Data` member into `into`, checking the record size limit.
fn record_data(b64: Option<&[u8]>, member: &str, into: &mut Records) -> Result<(), ApiError> {
    let b64 = b64.ok_or_else(|| missing(member))?;
    // Refuse before decoding what cannot fit: 1,024,000 bytes is 1,365,336 base64 characters.
    if b64.len() > RECORD_BYTES_MAX.div_ceil(3) * 4 {
        return Err(record_too_large(member, b64.len() / 4 * 3));
    }
    let before = into.total_bytes();
    into.push_base64(b64)
        .map_err(|_| ApiError::serialization(format!("{member} is not valid base64")))?;
    let len = into.total_bytes() - before;
    if len > RECORD_BYTES_MAX {
        return Err(record_too_large(member, len));
    }
    Ok(())
}

fn record_too_large(member: &str, len: usize) -> ApiError {
    ApiError::invalid(format!(
        "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member \
         must have length less than or equal to {RECORD_BYTES_MAX} (got {len} bytes)"
    ))
}

fn put_record_batch(i: PutRecordBatchRef<'_>) -> Result<Request, ApiError> {
    let name = name_ref(i.delivery_stream_name)?;
    let inputs = i.records.ok_or_else(|| missing("records"))?;
    let data: Vec<Option<&[u8]>> = inputs
        .iter()
        .map(|r| r.data.as_deref().map(str::as_bytes))
        .collect();
    put_record_batch_of(name, &data)
}

/// PutRecord of the record whose base64 `Data` is `data` (`None`: the member is missing), into
/// the stream `name` (already validated).
fn put_record_of(name: String, data: Option<&[u8]>) -> Result<Request, ApiError> {
    let mut one = Records::default();
    record_data(data, "record.data", &mut one)?;
    Ok(Request::PutRecord {
        name,
        data: one.data,
    })
}

/// PutRecordBatch of the records whose base64 `Data` members are `inputs` (`None`: missing),
/// into the stream `name` (already validated): the limits, then one buffer of decoded records.
fn put_record_batch_of(name: String, inputs: &[Option<&[u8]>]) -> Result<Request, ApiError> {
    if inputs.is_empty() || inputs.len() > BATCH_RECORDS_MAX {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value at 'records' failed to satisfy constraint: \
             Member must have length between 1 and {BATCH_RECORDS_MAX} (got {})",
            inputs.len()
        )));
    }
    // Decoded sizes are at most three quarters of the base64 text: one allocation.
    let b64_bytes: usize = inputs.iter().map(|r| r.map_or(0, <[u8]>::len)).sum();
    let mut records = Records::with_capacity(inputs.len(), b64_bytes / 4 * 3 + 3);
    for (n, r) in inputs.iter().enumerate() {
        if record_data(*r, "", &mut records).is_err() {
            // The member's name only when it is needed (formatting it costs per record).
            let member = format!("records.{}.member.data", n + 1);
            record_data(*r, &member, &mut records)?;
        }
        if records.total_bytes() > BATCH_BYTES_MAX {
            return Err(ApiError::invalid(format!(
                "Records size exceeds {BATCH_BYTES_MAX} bytes (4 MiB) limit"
            )));
        }
    }
    Ok(Request::PutRecordBatch { name, records })
}

fn tags_ok(tags: Vec<Tag>) -> Result<Vec<(String, String)>, ApiError> {
    if tags.len() > TAGS_MAX {
        return Err(ApiError::new(
            ErrorCode::LimitExceeded,
            format!(
                "a stream has at most {TAGS_MAX} tags; the request has {}",
                tags.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(tags.len());
    for t in tags {
        let key = t.key.ok_or_else(|| missing("tags.member.key"))?;
        let value = t.value.unwrap_or_default();
        if !validate::tag_key_ok(&key) {
            return Err(ApiError::invalid(format!(
                "invalid tag key {key:?}: 1 to 128 letters, numbers, spaces and _.:/=+-@%, \
                 not starting with aws:"
            )));
        }
        if !validate::tag_value_ok(&value) {
            return Err(ApiError::invalid(format!(
                "invalid value for tag {key:?}: at most 256 letters, numbers, spaces and \
                 _.:/=+-@%"
            )));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn create(i: CreateDeliveryStreamInput) -> Result<Request, ApiError> {
    let name = name(i.delivery_stream_name.clone())?;
    if let Some(t) = &i.delivery_stream_type {
        stream_type_ok(t)?;
    }
    let kinesis_source = crate::source::kinesis_source(
        i.delivery_stream_type.as_deref(),
        i.kinesis_stream_source_configuration.as_ref(),
    )?;
    let msk_source = crate::msk::msk_source(
        i.delivery_stream_type.as_deref(),
        i.msk_source_configuration.as_ref(),
    )?;
    if (kinesis_source.is_some() || msk_source.is_some())
        && i.direct_put_source_configuration.is_some()
    {
        return Err(ApiError::invalid(
            "DirectPutSourceConfiguration is only valid with DeliveryStreamType DirectPut",
        ));
    }
    for (present, what) in [
        (
            i.database_source_configuration.is_some(),
            "DatabaseSourceConfiguration",
        ),
        (
            i.delivery_stream_encryption_configuration_input.is_some(),
            "DeliveryStreamEncryptionConfigurationInput (server-side encryption)",
        ),
    ] {
        if present {
            return Err(ApiError::invalid(format!(
                "{what} is not supported by hydrant"
            )));
        }
    }
    if let Some(d) = &i.direct_put_source_configuration {
        let hint = d
            .get("ThroughputHintInMBs")
            .and_then(serde_json::Value::as_i64);
        if !matches!(hint, Some(1..=100)) {
            return Err(ApiError::invalid(
                "DirectPutSourceConfiguration.ThroughputHintInMBs must be between 1 and 100",
            ));
        }
    }
    let tags = match i.tags.clone() {
        Some(t) => tags_ok(t)?,
        None => Vec::new(),
    };
    let destination = Destination::from_create(&i)?;
    Ok(Request::Create(CreateRequest {
        name,
        destination,
        tags,
        kinesis_source,
        msk_source,
    }))
}

fn update(i: UpdateDestinationInput) -> Result<Request, ApiError> {
    let name = name(i.delivery_stream_name.clone())?;
    let current_version = i
        .current_delivery_stream_version_id
        .clone()
        .ok_or_else(|| missing("currentDeliveryStreamVersionId"))?;
    if current_version.is_empty()
        || current_version.len() > 50
        || !current_version.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{current_version}' at \
             'currentDeliveryStreamVersionId' failed to satisfy constraint: Member must satisfy \
             regular expression pattern: [0-9]+"
        )));
    }
    let destination_id = i
        .destination_id
        .clone()
        .ok_or_else(|| missing("destinationId"))?;
    if destination_id.is_empty()
        || destination_id.len() > 100
        || !destination_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ApiError::invalid(format!(
            "invalid destinationId {destination_id:?}"
        )));
    }
    let update = DestinationUpdate::from_update(&i)?;
    Ok(Request::Update(UpdateRequest {
        name,
        current_version,
        destination_id,
        update,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    const T: &[u8] = b"Firehose_20150804.PutRecordBatch";
    const CT: &[u8] = b"application/x-amz-json-1.1";

    fn code(r: Result<Request, ApiError>) -> ErrorCode {
        match r {
            Ok(r) => panic!("expected an error, got {r:?}"),
            Err(e) => e.code,
        }
    }

    #[test]
    fn batch_decodes() {
        let r = decode_request(
            Some(T),
            Some(CT),
            br#"{"DeliveryStreamName": "s1", "Records": [{"Data": "aGVsbG8K"}, {"Data": "eyJhIjoxfQo="}]}"#,
        )
        .expect("decodes");
        assert_eq!(
            r,
            Request::PutRecordBatch {
                name: "s1".into(),
                records: [&b"hello\n"[..], b"{\"a\":1}\n"].into_iter().collect()
            }
        );
    }

    /// Padded and unpadded base64 decode alike; what is not canonical base64 is refused.
    #[test]
    fn base64_rules() {
        let put = |data: &str| {
            decode_request(
                Some(b"Firehose_20150804.PutRecord"),
                Some(CT),
                format!(r#"{{"DeliveryStreamName": "s", "Record": {{"Data": "{data}"}}}}"#)
                    .as_bytes(),
            )
        };
        for (b64, want) in [
            ("aGk=", &b"hi"[..]),
            ("aGk", b"hi"),
            ("aA==", b"h"),
            ("aA", b"h"),
            ("aGVsbG8h", b"hello!"),
            ("", b""),
        ] {
            match put(b64) {
                Ok(Request::PutRecord { data, .. }) => assert_eq!(data, want, "{b64}"),
                other => panic!("{b64}: {other:?}"),
            }
        }
        // Non-zero trailing bits, a dangling character, padding in the middle, whitespace,
        // the URL-safe alphabet, too much padding.
        for b64 in [
            "aGl=",
            "aB==",
            "aGk=a",
            "aG=k",
            "aGVs bG8h",
            "aGVsbG8-",
            "aA===",
        ] {
            let e = put(b64).expect_err(b64);
            assert_eq!(e.code, ErrorCode::Serialization, "{b64}");
            assert!(
                e.message.contains("not valid base64"),
                "{b64}: {}",
                e.message
            );
        }
        // A batch's records are contiguous and come back in order.
        let r = decode_request(
            Some(T),
            Some(CT),
            br#"{"DeliveryStreamName": "s", "Records": [{"Data": "YQ=="}, {"Data": ""}, {"Data": "YmM"}]}"#,
        )
        .expect("decodes");
        let Request::PutRecordBatch { records, .. } = r else {
            panic!("not a batch")
        };
        assert_eq!(records.slices(), vec![&b"a"[..], b"", b"bc"]);
        assert_eq!(records.total_bytes(), 3);
    }

    #[test]
    fn escaped_base64_decodes_as_plain() {
        // `\/` is JSON for `/`: such a Data member cannot be borrowed and is unescaped first.
        let r = decode_request(
            Some(b"Firehose_20150804.PutRecord"),
            Some(CT),
            br#"{"DeliveryStreamName": "s\u0031", "Record": {"Data": "\/\/8="}}"#,
        )
        .expect("decodes");
        assert_eq!(
            r,
            Request::PutRecord {
                name: "s1".into(),
                data: vec![0xff, 0xff]
            }
        );
        let r = decode_request(
            Some(T),
            Some(CT),
            br#"{"DeliveryStreamName": "s1", "Records": [{"Data": "\/\/8="}, {"Data": "//8"}]}"#,
        )
        .expect("decodes");
        assert_eq!(
            r,
            Request::PutRecordBatch {
                name: "s1".into(),
                records: [[0xff, 0xff], [0xff, 0xff]].into_iter().collect()
            }
        );
        // A bad record deep in a batch is named by its position.
        let e = decode_request(
            Some(T),
            Some(CT),
            br#"{"DeliveryStreamName": "s1", "Records": [{"Data": "AA=="}, {}]}"#,
        )
        .expect_err("refused");
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains("records.2.member.data"), "{}", e.message);
    }

    #[test]
    fn error_table() {
        use ErrorCode::*;
        type Case<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a str, ErrorCode);
        let cases: &[Case<'_>] = &[
            (None, Some(CT), "{}", UnknownOperation),
            (
                Some(b"Firehose_20150804.Nope"),
                Some(CT),
                "{}",
                UnknownOperation,
            ),
            (
                Some(b"Kinesis_20131202.PutRecord"),
                Some(CT),
                "{}",
                UnknownOperation,
            ),
            (Some(T), Some(b"text/plain"), "{}", Serialization),
            (Some(T), Some(CT), "{", Serialization),
            (Some(T), Some(CT), "[]", Serialization),
            (
                Some(T),
                Some(CT),
                r#"{"DeliveryStreamName": 5}"#,
                Serialization,
            ),
            (
                Some(T),
                Some(CT),
                r#"{"DeliveryStreamName": "s", "Records": "x"}"#,
                Serialization,
            ),
            (
                Some(T),
                Some(CT),
                r#"{"DeliveryStreamName": "s", "Records": [{"Data": "!!"}]}"#,
                Serialization,
            ),
            (
                Some(T),
                Some(CT),
                r#"{"DeliveryStreamName": "s", "Records": [{"Data": 1}]}"#,
                Serialization,
            ),
            (
                Some(T),
                Some(CT),
                r#"{"Records": [{"Data": "AA=="}]}"#,
                InvalidArgument,
            ),
            (
                Some(T),
                Some(CT),
                r#"{"DeliveryStreamName": "s"}"#,
                InvalidArgument,
            ),
            (
                Some(T),
                Some(CT),
                r#"{"DeliveryStreamName": "s", "Records": []}"#,
                InvalidArgument,
            ),
            (
                Some(T),
                Some(CT),
                r#"{"DeliveryStreamName": "s", "Records": [{}]}"#,
                InvalidArgument,
            ),
            (
                Some(T),
                Some(CT),
                r#"{"DeliveryStreamName": "a/b", "Records": [{"Data": "AA=="}]}"#,
                InvalidArgument,
            ),
            (
                Some(T),
                Some(CT),
                r#"{"DeliveryStreamName": "", "Records": [{"Data": "AA=="}]}"#,
                InvalidArgument,
            ),
        ];
        for (i, (t, ct, body, want)) in cases.iter().enumerate() {
            let got = code(decode_request(*t, *ct, body.as_bytes()));
            assert_eq!(got, *want, "case {i}: {body}");
        }
    }

    #[test]
    fn batch_limits() {
        let rec = r#"{"Data":"AA=="}"#;
        let body = format!(
            r#"{{"DeliveryStreamName":"s","Records":[{}]}}"#,
            vec![rec; 501].join(",")
        );
        assert_eq!(
            code(decode_request(Some(T), Some(CT), body.as_bytes())),
            ErrorCode::InvalidArgument
        );
        let body = format!(
            r#"{{"DeliveryStreamName":"s","Records":[{}]}}"#,
            vec![rec; 500].join(",")
        );
        assert!(decode_request(Some(T), Some(CT), body.as_bytes()).is_ok());
        let big = BASE64.encode(vec![7u8; RECORD_BYTES_MAX + 1]);
        let body = format!(r#"{{"DeliveryStreamName":"s","Records":[{{"Data":"{big}"}}]}}"#);
        assert_eq!(
            code(decode_request(Some(T), Some(CT), body.as_bytes())),
            ErrorCode::InvalidArgument
        );
        let max = BASE64.encode(vec![7u8; RECORD_BYTES_MAX]);
        let five = vec![format!(r#"{{"Data":"{max}"}}"#); 5].join(",");
        let body = format!(r#"{{"DeliveryStreamName":"s","Records":[{five}]}}"#);
        assert_eq!(
            code(decode_request(Some(T), Some(CT), body.as_bytes())),
            ErrorCode::InvalidArgument
        );
        let four = vec![format!(r#"{{"Data":"{max}"}}"#); 4].join(",");
        let body = format!(r#"{{"DeliveryStreamName":"s","Records":[{four}]}}"#);
        assert!(decode_request(Some(T), Some(CT), body.as_bytes()).is_ok());
    }
}
