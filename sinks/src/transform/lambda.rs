//! The Lambda processor: Firehose's data-transformation contract over HTTP.
//!
//! One invocation per chunk of the batch (see [`chunks`]); each is a synchronous
//! (`RequestResponse`) call with the event
//!
//! ```text
//! {"invocationId": "<uuid>", "deliveryStreamArn": "arn:aws:firehose:...", "region": "us-east-1",
//!  "records": [{"recordId": "<lsn:020><sub:010>", "approximateArrivalTimestamp": <ms>,
//!               "data": "<base64>"}, ...]}
//! ```
//!
//! From a Kinesis stream (`KinesisStreamAsSource`) the event also carries
//! `"sourceKinesisStreamArn"` and each record its `"kinesisRecordMetadata"`
//! ([`super::source`]), and a record's `approximateArrivalTimestamp` is Kinesis's. From a Kafka
//! topic (`MSKAsSource`) the event carries `"sourceMSKArn"`, each record its
//! `"mskRecordMetadata"` and its value as `"kafkaRecordValue"` (not `"data"`), and the reply
//! gives a record's new value as `"kafkaRecordValue"` (`"data"` is accepted too).
//!
//! and the reply `{"records": [{"recordId", "result": "Ok|Dropped|ProcessingFailed", "data"}]}`.
//!
//! # Determinism
//! A record's id is its `(lsn, sub)`, and an invocation's id a digest of the batch identity, the
//! function, the chunk's index and the attempt: a batch processed again after a crash sends the
//! same ids in the same chunks, so a function can deduplicate.
//!
//! # Failures (error codes as Firehose writes them)
//! - The call fails (network, timeout, throttling, a 5xx, a function error): retried
//!   `NumberOfRetries` times with a short backoff, then every record of the chunk is
//!   processing-failed with the last code: `Lambda.FunctionError` (the function raised),
//!   `Lambda.FunctionTimedOut`, `Lambda.InvokeLimitExceeded` (429), `Lambda.ConnectionFailed`
//!   (hydrant's: the endpoint could not be reached), `Lambda.<ErrorType>` for other Lambda
//!   service errors. Errors a retry cannot fix (`Lambda.ResourceNotFound`,
//!   `Lambda.InvokeAccessDenied`, another 4xx) are not retried.
//! - The reply breaks the contract: `Lambda.JsonProcessingException` (not JSON, a bad `result`,
//!   `Ok` without `data`, bad base64), `Lambda.DuplicatedRecordId`, `Lambda.MissingRecordId`.
//!   The whole chunk is processing-failed at once: error objects captured from the service show
//!   `attemptsMade: 1` for these.
//! - A record the function marks `ProcessingFailed`: `Lambda.ProcessingFailedStatus`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use aws_credential_types::Credentials;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::source::{KinesisRecordMetadata, MskRecordMetadata, SourceRecords};
use crate::{uuid_from_digest, BatchIdentity, Record};

/// Lambda's synchronous invocation payload cap, request and response alike: 6 MB.
pub(crate) const PAYLOAD_BYTES_MAX: u64 = 6 << 20;

/// Room kept free in a request for the envelope (invocation id, stream ARN, region).
const ENVELOPE_BYTES: u64 = 16 << 10;

/// An upper bound on the JSON around one record's base64 data in the event.
const RECORD_OVERHEAD_BYTES: u64 = 160;

/// Invocations in flight at once for one batch.
pub(crate) const CONCURRENT_INVOCATIONS_MAX: usize = 4;

/// The first retry's backoff; it doubles up to [`RETRY_BACKOFF_MAX`].
const RETRY_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(2);

const MESSAGE_FUNCTION_ERROR: &str =
    "The Lambda function was successfully invoked but it returned an error result.";
const MESSAGE_TIMED_OUT: &str =
    "The Lambda function invocation timed out. Increase the Timeout setting in the Lambda function.";
const MESSAGE_JSON: &str = "There was an error parsing returned records from the Lambda \
     function. Ensure that the returned records follow the status model required by Firehose.";
const MESSAGE_DUPLICATED: &str = "Multiple records were returned with the same record Id. \
     Ensure that the Lambda function returns a unique record Id for each record.";
const MESSAGE_MISSING: &str = "One or more record Ids were not returned. Ensure that the Lambda \
     function returns all received record Ids.";
const MESSAGE_NOT_FOUND: &str =
    "The specified Lambda function does not exist. Use a different function that does exist.";
const MESSAGE_ACCESS_DENIED: &str =
    "Access was denied. Ensure that the access policy allows access to the Lambda function.";
const MESSAGE_LIMIT: &str =
    "The Lambda concurrent execution limit is exceeded. Increase the concurrent execution limit.";
/// What Firehose writes for a record the function marked `ProcessingFailed`.
pub(crate) const MESSAGE_PROCESSING_FAILED: &str = "ProcessingFailed status set for record";
/// The code Firehose writes for a record the function marked `ProcessingFailed`.
pub(crate) const CODE_PROCESSING_FAILED: &str = "Lambda.ProcessingFailedStatus";

/// Where the function is called.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// The Invoke API: the full `.../2015-03-31/functions/<ARN>/invocations` URL.
    InvokeApi {
        /// The invocations URL.
        url: String,
        /// Credentials to sign with (SigV4, service `lambda`); unsigned without.
        credentials: Option<Credentials>,
    },
    /// A plain URL that takes the event and answers with the reply.
    Url(String),
}

/// One Lambda processor, ready to call.
#[derive(Clone, Debug)]
pub(crate) struct Invoker {
    pub(crate) arn: String,
    pub(crate) target: Target,
    pub(crate) retries: u32,
    pub(crate) buffer_bytes: u64,
    pub(crate) region: String,
    pub(crate) timeout: Duration,
    pub(crate) client: reqwest::Client,
}

/// What became of one record sent to the function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `Ok`, with the transformed data and the reply's `metadata.partitionKeys` (dynamic
    /// partitioning): `Err` names a key whose value is not a string, number or boolean.
    Ok(Bytes, Result<Vec<(String, String)>, String>),
    /// `Dropped`.
    Dropped,
    /// Processing failed (the function's verdict or the invocation's failure).
    Failed {
        /// The error code.
        code: Cow<'static, str>,
        /// The error message.
        message: String,
        /// Invocations made.
        attempts: u32,
    },
}

/// A failed call.
#[derive(Clone, Debug)]
struct CallFailure {
    code: Cow<'static, str>,
    message: String,
    retryable: bool,
}

fn failure(
    code: impl Into<Cow<'static, str>>,
    message: impl Into<String>,
    retryable: bool,
) -> CallFailure {
    CallFailure {
        code: code.into(),
        message: message.into(),
        retryable,
    }
}

/// The id of record `(lsn, sub)` in an event: 30 decimal digits, like Firehose's numeric ids.
pub(crate) fn record_id(lsn: u64, sub: u32) -> String {
    format!("{lsn:020}{sub:010}")
}

/// The id of an invocation: a UUID from the batch identity, the function, the chunk and the
/// attempt.
pub(crate) fn invocation_id(
    identity: &BatchIdentity,
    arn: &str,
    chunk: usize,
    attempt: u32,
) -> String {
    uuid_from_digest(&identity.digest(&format!("lambda-invocation/{arn}/{chunk}/{attempt}")))
}

/// The base64 length of `n` bytes.
fn base64_len(n: u64) -> u64 {
    n.div_ceil(3) * 4
}

/// Cuts `records` into invocation chunks: each holds at most `buffer_bytes` of record data
/// (but always at least one record) and its event stays under Lambda's 6 MB payload cap.
pub(crate) fn chunks(records: &[Record], buffer_bytes: u64) -> Vec<std::ops::Range<usize>> {
    let event_max = PAYLOAD_BYTES_MAX - ENVELOPE_BYTES;
    let mut out = Vec::new();
    let mut start = 0;
    let (mut data, mut event) = (0u64, 0u64);
    for (i, record) in records.iter().enumerate() {
        let len = record.data.len() as u64;
        let encoded = base64_len(len) + RECORD_OVERHEAD_BYTES;
        if i > start && (data + len > buffer_bytes || event + encoded > event_max) {
            out.push(start..i);
            start = i;
            data = 0;
            event = 0;
        }
        data += len;
        event += encoded;
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    invocation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_kinesis_stream_arn: Option<&'a str>,
    #[serde(rename = "sourceMSKArn", skip_serializing_if = "Option::is_none")]
    source_msk_arn: Option<&'a str>,
    delivery_stream_arn: &'a str,
    region: &'a str,
    records: &'a [EventRecord],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventRecord {
    record_id: String,
    approximate_arrival_timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_record_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kinesis_record_metadata: Option<KinesisRecordMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    msk_record_metadata: Option<MskRecordMetadata>,
}

#[derive(Deserialize)]
struct Reply {
    records: Vec<ReplyRecord>,
}

#[derive(Deserialize)]
struct ReplyRecord {
    #[serde(rename = "recordId")]
    record_id: String,
    result: String,
    #[serde(default)]
    data: Option<String>,
    /// An MSK source's records come back under this name.
    #[serde(default, rename = "kafkaRecordValue")]
    kafka_record_value: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

/// The `metadata.partitionKeys` of a reply record: `(name, value)` pairs, scalars as text;
/// `Err` with the name of a key whose value is null, an array or an object.
fn partition_keys(metadata: Option<&serde_json::Value>) -> Result<Vec<(String, String)>, String> {
    use serde_json::Value;
    let Some(Value::Object(keys)) = metadata.and_then(|m| m.get("partitionKeys")) else {
        return Ok(Vec::new());
    };
    keys.iter()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name.clone(), s.clone())),
            Value::Number(n) => Ok((name.clone(), n.to_string())),
            Value::Bool(b) => Ok((name.clone(), b.to_string())),
            _ => Err(name.clone()),
        })
        .collect()
}

/// Checks a reply against the ids sent and returns each record's outcome, in the order sent.
fn check_reply(body: &[u8], ids: &[String], attempts: u32) -> Result<Vec<Outcome>, CallFailure> {
    let json_error = |detail: String| {
        failure(
            "Lambda.JsonProcessingException",
            format!("{MESSAGE_JSON} ({detail})"),
            false,
        )
    };
    let reply: Reply =
        serde_json::from_slice(body).map_err(|e| json_error(format!("reply: {e}")))?;
    let positions: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; ids.len()];
    for returned in &reply.records {
        let outcome = match returned.result.as_str() {
            "Ok" => {
                let data = returned
                    .data
                    .as_deref()
                    .or(returned.kafka_record_value.as_deref())
                    .ok_or_else(|| {
                        json_error(format!("record {} is Ok without data", returned.record_id))
                    })?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|e| {
                        json_error(format!(
                            "record {} data is not base64: {e}",
                            returned.record_id
                        ))
                    })?;
                Outcome::Ok(
                    Bytes::from(bytes),
                    partition_keys(returned.metadata.as_ref()),
                )
            }
            "Dropped" => Outcome::Dropped,
            "ProcessingFailed" => Outcome::Failed {
                code: Cow::Borrowed(CODE_PROCESSING_FAILED),
                message: MESSAGE_PROCESSING_FAILED.to_owned(),
                attempts,
            },
            other => {
                return Err(json_error(format!(
                    "record {} has result {other:?}, not Ok, Dropped or ProcessingFailed",
                    returned.record_id
                )))
            }
        };
        let Some(&position) = positions.get(returned.record_id.as_str()) else {
            // An id that was never sent matches no record: nothing to deliver or to file.
            tracing::warn!(record_id = %returned.record_id, "Lambda reply names an unknown record id");
            continue;
        };
        if outcomes[position].replace(outcome).is_some() {
            return Err(failure(
                "Lambda.DuplicatedRecordId",
                format!("{MESSAGE_DUPLICATED} (record id {})", returned.record_id),
                false,
            ));
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    for (outcome, id) in outcomes.into_iter().zip(ids) {
        match outcome {
            Some(outcome) => out.push(outcome),
            None => {
                return Err(failure(
                    "Lambda.MissingRecordId",
                    format!("{MESSAGE_MISSING} (record id {id})"),
                    false,
                ))
            }
        }
    }
    Ok(out)
}

/// The backoff before retry `retry` (0 for the first retry).
fn backoff(retry: u32) -> Duration {
    RETRY_BACKOFF_FIRST
        .saturating_mul(1u32 << retry.min(10))
        .min(RETRY_BACKOFF_MAX)
}

/// Percent-encodes a path segment (everything but RFC 3986 unreserved characters).
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() * 3);
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The Invoke API URL of function `arn` under `endpoint`.
pub(crate) fn invoke_url(endpoint: &str, arn: &str) -> String {
    format!(
        "{}/2015-03-31/functions/{}/invocations",
        endpoint.trim_end_matches('/'),
        encode_segment(arn)
    )
}

/// Maps a Lambda service error (non-2xx answer) to a Firehose code and whether to retry.
fn service_failure(status: u16, error_type: &str, body: &[u8]) -> CallFailure {
    let detail = String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned();
    let error_type = error_type.split(':').next().unwrap_or_default().trim();
    match (status, error_type) {
        (404, _) | (_, "ResourceNotFoundException") => failure(
            "Lambda.ResourceNotFound",
            format!("{MESSAGE_NOT_FOUND} (HTTP {status}: {detail})"),
            false,
        ),
        (429, _) | (_, "TooManyRequestsException") => failure(
            "Lambda.InvokeLimitExceeded",
            format!("{MESSAGE_LIMIT} (HTTP {status}: {detail})"),
            true,
        ),
        (401 | 403, _) | (_, "AccessDeniedException") => failure(
            "Lambda.InvokeAccessDenied",
            format!("{MESSAGE_ACCESS_DENIED} (HTTP {status}: {detail})"),
            false,
        ),
        _ => {
            let code = match error_type.strip_suffix("Exception").unwrap_or(error_type) {
                "" => format!("Lambda.Http{status}"),
                name if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') => {
                    format!("Lambda.{name}")
                }
                _ => format!("Lambda.Http{status}"),
            };
            let retryable = status >= 500 || status == 408;
            failure(
                code,
                format!("Lambda answered HTTP {status}: {detail}"),
                retryable,
            )
        }
    }
}

/// The function's error payload: `{"errorMessage", "errorType"}`.
fn function_failure(kind: &str, body: &[u8]) -> CallFailure {
    let payload: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let error_type = payload
        .get("errorType")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let error_message = payload
        .get("errorMessage")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if error_type == "Sandbox.Timedout" {
        return failure("Lambda.FunctionTimedOut", MESSAGE_TIMED_OUT, true);
    }
    failure(
        "Lambda.FunctionError",
        format!("{MESSAGE_FUNCTION_ERROR} ({kind}: {error_type}: {error_message})"),
        true,
    )
}

impl Invoker {
    /// Processes `records` (one chunk) and returns each record's outcome, in order.
    pub(crate) async fn invoke_chunk(
        &self,
        identity: &BatchIdentity,
        delivery_stream_arn: &str,
        chunk: usize,
        records: &[Record],
        source: Option<&SourceRecords>,
    ) -> Vec<Outcome> {
        let ids: Vec<String> = records.iter().map(|r| record_id(r.lsn, r.sub)).collect();
        let event_records: Vec<EventRecord> = records
            .iter()
            .zip(&ids)
            .map(|(r, id)| {
                let value = base64::engine::general_purpose::STANDARD.encode(&r.data);
                match source {
                    Some(SourceRecords::Msk(s)) => {
                        let meta = s.records.get(&r.lsn).cloned();
                        EventRecord {
                            record_id: id.clone(),
                            // From a Kafka topic, the record's Kafka timestamp.
                            approximate_arrival_timestamp: meta
                                .as_ref()
                                .map_or(r.arrival_ms, |m| m.approximate_arrival_timestamp),
                            data: None,
                            kafka_record_value: Some(value),
                            kinesis_record_metadata: None,
                            msk_record_metadata: meta,
                        }
                    }
                    Some(SourceRecords::Kinesis(s)) => {
                        let meta = s.records.get(&r.lsn).cloned();
                        EventRecord {
                            record_id: id.clone(),
                            // From a Kinesis stream, Firehose gives the Kinesis arrival here too.
                            approximate_arrival_timestamp: meta
                                .as_ref()
                                .map_or(r.arrival_ms, |m| m.approximate_arrival_timestamp),
                            data: Some(value),
                            kafka_record_value: None,
                            kinesis_record_metadata: meta,
                            msk_record_metadata: None,
                        }
                    }
                    None => EventRecord {
                        record_id: id.clone(),
                        approximate_arrival_timestamp: r.arrival_ms,
                        data: Some(value),
                        kafka_record_value: None,
                        kinesis_record_metadata: None,
                        msk_record_metadata: None,
                    },
                }
            })
            .collect();
        let mut attempt = 0u32;
        let last = loop {
            let invocation = invocation_id(identity, &self.arn, chunk, attempt);
            let event = Event {
                invocation_id: &invocation,
                source_kinesis_stream_arn: match source {
                    Some(SourceRecords::Kinesis(s)) => Some(s.stream_arn.as_str()),
                    _ => None,
                },
                source_msk_arn: match source {
                    Some(SourceRecords::Msk(s)) => Some(s.cluster_arn.as_str()),
                    _ => None,
                },
                delivery_stream_arn,
                region: &self.region,
                records: &event_records,
            };
            let result = match serde_json::to_vec(&event) {
                Ok(body) => self.call(body).await,
                Err(e) => Err(failure(
                    "Lambda.InternalError",
                    format!("event: {e}"),
                    false,
                )),
            };
            let result = result.and_then(|reply| check_reply(&reply, &ids, attempt + 1));
            match result {
                Ok(outcomes) => return outcomes,
                Err(e) if e.retryable && attempt < self.retries => {
                    tracing::debug!(
                        lambda_arn = %self.arn, chunk, attempt, code = %e.code,
                        "Lambda invocation failed; retrying"
                    );
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => break e,
            }
        };
        tracing::warn!(
            lambda_arn = %self.arn, chunk, attempts = attempt + 1, code = %last.code,
            message = %last.message, "Lambda invocation failed; records processing-failed"
        );
        vec![
            Outcome::Failed {
                code: last.code,
                message: last.message,
                attempts: attempt + 1,
            };
            records.len()
        ]
    }

    /// One HTTP call: the reply body, or why there is none.
    async fn call(&self, body: Vec<u8>) -> Result<Vec<u8>, CallFailure> {
        let (url, credentials, invoke_api) = match &self.target {
            Target::InvokeApi { url, credentials } => (url.as_str(), credentials.as_ref(), true),
            Target::Url(url) => (url.as_str(), None, false),
        };
        let mut headers: Vec<(String, String)> =
            vec![("content-type".into(), "application/json".into())];
        if invoke_api {
            headers.push(("x-amz-invocation-type".into(), "RequestResponse".into()));
        }
        if let Some(credentials) = credentials {
            // SigV4 headers, service `lambda`.
            headers.extend(
                crate::sigv4::sign_json_post(
                    "lambda",
                    &self.region,
                    credentials,
                    url,
                    &headers,
                    &body,
                )
                .map_err(|e| failure("Lambda.SigningFailed", format!("SigV4: {e}"), false))?,
            );
        }
        let mut request = self.client.post(url).timeout(self.timeout).body(body);
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let function_error = header("x-amz-function-error");
        let error_type = header("x-amzn-errortype").unwrap_or_default();
        let body = read_capped(response, PAYLOAD_BYTES_MAX)
            .await
            .map_err(|e| match e {
                Capped::TooLarge => failure(
                    "Lambda.FunctionError",
                    format!(
                        "{MESSAGE_FUNCTION_ERROR} (the response exceeds {PAYLOAD_BYTES_MAX} bytes)"
                    ),
                    true,
                ),
                Capped::Transport(e) => self.transport_failure(&e),
            })?;
        if let Some(kind) = function_error {
            return Err(function_failure(&kind, &body));
        }
        if !(200..300).contains(&status) {
            return Err(service_failure(status, &error_type, &body));
        }
        Ok(body)
    }

    fn transport_failure(&self, error: &reqwest::Error) -> CallFailure {
        if error.is_timeout() {
            failure(
                "Lambda.FunctionTimedOut",
                format!("{MESSAGE_TIMED_OUT} (no answer within {:?})", self.timeout),
                true,
            )
        } else {
            failure(
                "Lambda.ConnectionFailed",
                format!("cannot reach the Lambda function: {error}"),
                true,
            )
        }
    }
}

enum Capped {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads a response body of at most `cap` bytes.
async fn read_capped(mut response: reqwest::Response, cap: u64) -> Result<Vec<u8>, Capped> {
    if response.content_length().is_some_and(|n| n > cap) {
        return Err(Capped::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Capped::Transport)? {
        if (body.len() + chunk.len()) as u64 > cap {
            return Err(Capped::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(lsn: u64, len: usize) -> Record {
        Record {
            lsn,
            sub: 0,
            arrival_ms: 1,
            data: Bytes::from(vec![b'x'; len]),
        }
    }

    #[test]
    fn record_ids_are_fixed_width_and_unique() {
        assert_eq!(record_id(12, 3), "000000000000000000120000000003");
        assert_ne!(record_id(1, 23), record_id(12, 3));
        assert_eq!(record_id(u64::MAX, u32::MAX).len(), 30);
    }

    #[test]
    fn chunking_by_size() {
        let records: Vec<Record> = (0..10).map(|i| record(i, 100)).collect();
        assert_eq!(chunks(&records, 1000), vec![0..10]);
        assert_eq!(chunks(&records, 300), vec![0..3, 3..6, 6..9, 9..10]);
        // A record larger than the buffer still goes, alone.
        let big = vec![record(0, 10), record(1, 5000), record(2, 10)];
        assert_eq!(chunks(&big, 100), vec![0..1, 1..2, 2..3]);
        assert!(chunks(&[], 100).is_empty());
        // Many tiny records: the event's JSON overhead, not the data, decides.
        let tiny: Vec<Record> = (0..60_000).map(|i| record(i, 1)).collect();
        let cut = chunks(&tiny, 3 << 20);
        assert!(cut.len() >= 2, "{}", cut.len());
        for range in cut {
            let len = (range.end - range.start) as u64;
            assert!(len * (RECORD_OVERHEAD_BYTES + 4) <= PAYLOAD_BYTES_MAX);
        }
    }

    fn ids() -> Vec<String> {
        vec![record_id(1, 0), record_id(2, 0), record_id(3, 0)]
    }

    fn reply(records: &[(&str, &str, Option<&str>)]) -> Vec<u8> {
        let records: Vec<serde_json::Value> = records
            .iter()
            .map(|(id, result, data)| match data {
                Some(d) => serde_json::json!({"recordId": id, "result": result, "data": d}),
                None => serde_json::json!({"recordId": id, "result": result}),
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "records": records })).unwrap()
    }

    #[test]
    fn reply_metadata_partition_keys() {
        let ids = vec![record_id(1, 0)];
        let body = serde_json::to_vec(&serde_json::json!({"records": [{"recordId": ids[0],
            "result": "Ok", "data": "aGk=",
            "metadata": {"partitionKeys": {"customer": "c1", "year": 2024, "ok": true}}}]}))
        .unwrap();
        let outcomes = check_reply(&body, &ids, 1).unwrap();
        let Outcome::Ok(_, Ok(keys)) = &outcomes[0] else {
            panic!("{outcomes:?}")
        };
        let mut keys = keys.clone();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                ("customer".to_owned(), "c1".to_owned()),
                ("ok".to_owned(), "true".to_owned()),
                ("year".to_owned(), "2024".to_owned())
            ]
        );
        let body = serde_json::to_vec(&serde_json::json!({"records": [{"recordId": ids[0],
            "result": "Ok", "data": "aGk=", "metadata": {"partitionKeys": {"bad": [1]}}}]}))
        .unwrap();
        let outcomes = check_reply(&body, &ids, 1).unwrap();
        assert_eq!(
            outcomes[0],
            Outcome::Ok(Bytes::from_static(b"hi"), Err("bad".to_owned()))
        );
    }

    /// An MSK source's reply gives the new value as `kafkaRecordValue`; without it or `data` an
    /// Ok record breaks the contract.
    #[test]
    fn reply_kafka_record_value() {
        let ids = vec![record_id(1, 0)];
        let body = serde_json::to_vec(&serde_json::json!({"records": [{"recordId": ids[0],
            "result": "Ok", "kafkaRecordValue": "aGk="}]}))
        .unwrap();
        let outcomes = check_reply(&body, &ids, 1).unwrap();
        assert_eq!(
            outcomes[0],
            Outcome::Ok(Bytes::from_static(b"hi"), Ok(Vec::new()))
        );
        let body = serde_json::to_vec(&serde_json::json!({"records": [{"recordId": ids[0],
            "result": "Ok"}]}))
        .unwrap();
        assert!(check_reply(&body, &ids, 1).is_err());
    }

    #[test]
    fn reply_outcomes_in_sent_order() {
        let ids = ids();
        let body = reply(&[
            (&ids[2], "ProcessingFailed", None),
            (&ids[0], "Ok", Some("aGk=")),
            (&ids[1], "Dropped", None),
            ("stray", "Ok", Some("")),
        ]);
        let outcomes = check_reply(&body, &ids, 2).unwrap();
        assert_eq!(
            outcomes[0],
            Outcome::Ok(Bytes::from_static(b"hi"), Ok(Vec::new()))
        );
        assert_eq!(outcomes[1], Outcome::Dropped);
        assert_eq!(
            outcomes[2],
            Outcome::Failed {
                code: Cow::Borrowed("Lambda.ProcessingFailedStatus"),
                message: MESSAGE_PROCESSING_FAILED.into(),
                attempts: 2
            }
        );
    }

    #[test]
    fn reply_contract_violations() {
        let ids = ids();
        let code = |body: Vec<u8>| check_reply(&body, &ids, 1).unwrap_err().code;
        assert_eq!(code(b"nope".to_vec()), "Lambda.JsonProcessingException");
        assert_eq!(code(b"{}".to_vec()), "Lambda.JsonProcessingException");
        assert_eq!(
            code(reply(&[
                (&ids[0], "Ok", None),
                (&ids[1], "Ok", Some("")),
                (&ids[2], "Ok", Some(""))
            ])),
            "Lambda.JsonProcessingException"
        );
        assert_eq!(
            code(reply(&[
                (&ids[0], "Ok", Some("!!")),
                (&ids[1], "Ok", Some("")),
                (&ids[2], "Ok", Some(""))
            ])),
            "Lambda.JsonProcessingException"
        );
        assert_eq!(
            code(reply(&[
                (&ids[0], "Fine", Some("")),
                (&ids[1], "Ok", Some("")),
                (&ids[2], "Ok", Some(""))
            ])),
            "Lambda.JsonProcessingException"
        );
        assert_eq!(
            code(reply(&[
                (&ids[0], "Ok", Some("")),
                (&ids[1], "Ok", Some(""))
            ])),
            "Lambda.MissingRecordId"
        );
        assert_eq!(
            code(reply(&[
                (&ids[0], "Ok", Some("")),
                (&ids[1], "Ok", Some("")),
                (&ids[2], "Ok", Some("")),
                (&ids[0], "Dropped", None)
            ])),
            "Lambda.DuplicatedRecordId"
        );
    }

    #[test]
    fn service_error_mapping() {
        let f = service_failure(404, "ResourceNotFoundException:", b"{}");
        assert_eq!(
            (f.code.as_ref(), f.retryable),
            ("Lambda.ResourceNotFound", false)
        );
        let f = service_failure(429, "TooManyRequestsException", b"{}");
        assert_eq!(
            (f.code.as_ref(), f.retryable),
            ("Lambda.InvokeLimitExceeded", true)
        );
        let f = service_failure(403, "", b"");
        assert_eq!(
            (f.code.as_ref(), f.retryable),
            ("Lambda.InvokeAccessDenied", false)
        );
        let f = service_failure(500, "ServiceException", b"");
        assert_eq!((f.code.as_ref(), f.retryable), ("Lambda.Service", true));
        let f = service_failure(502, "", b"");
        assert_eq!((f.code.as_ref(), f.retryable), ("Lambda.Http502", true));
        let f = service_failure(413, "RequestTooLargeException", b"");
        assert_eq!(
            (f.code.as_ref(), f.retryable),
            ("Lambda.RequestTooLarge", false)
        );
        let f = function_failure(
            "Unhandled",
            br#"{"errorType":"Sandbox.Timedout","errorMessage":"x"}"#,
        );
        assert_eq!(f.code, "Lambda.FunctionTimedOut");
        let f = function_failure(
            "Unhandled",
            br#"{"errorType":"ValueError","errorMessage":"bad"}"#,
        );
        assert_eq!(f.code, "Lambda.FunctionError");
        assert!(f.message.contains("ValueError: bad"), "{}", f.message);
    }

    #[test]
    fn invoke_urls_encode_the_arn() {
        assert_eq!(
            invoke_url("http://127.0.0.1:9/", "arn:aws:lambda:us-east-1:1:function:f:$LATEST"),
            "http://127.0.0.1:9/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af%3A%24LATEST/invocations"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(30), RETRY_BACKOFF_MAX);
    }
}
