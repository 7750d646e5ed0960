//! The OpenSearch / Elasticsearch destination (`AmazonopensearchserviceDestinationConfiguration`,
//! `ElasticsearchDestinationConfiguration`): one `_bulk` request per batch.
//!
//! # The request
//!
//! ```text
//!   POST <endpoint>/_bulk                     Content-Type: application/x-ndjson
//!   {"index":{"_index":"logs-2024-05-01","_id":"3f9c..-00000000000000000042-0"}}
//!   {"the":"record, newlines removed"}
//!   {"index":{"_index":"logs-2024-05-01","_type":"t","_id":"..."}}     (_type: TypeName set)
//!   ...
//! ```
//!
//! Every action names its index explicitly (the cluster must allow
//! `rest.action.multi.allow_explicit_index`, as Firehose requires): `IndexName` plus the
//! [`IndexRotation`] suffix of the record's own UTC arrival time. Records must be UTF-8 JSON
//! objects; the `\n` and `\r` bytes of a record (which valid JSON can only hold as whitespace
//! between tokens) are dropped so it fits one NDJSON line. A record that is not a JSON object
//! is not sent: it is filed for good with `OS.MalformedData`, and the rest of the batch goes on.
//!
//! # Document ids and exactly-once
//!
//! With [`DocumentIdFormat::FirehoseDefault`] each record's `_id` is
//! `<16 hex digits of SHA-256(stream, incarnation, destination id)>-<LSN, 20 digits>-<sub>`:
//! unique per record and the same on every resend, so a batch delivered again after a crash
//! re-indexes (the cluster answers `"updated"`, the version goes up) and never duplicates.
//! With [`DocumentIdFormat::NoDocumentId`] the cluster makes the ids, so a resend after a crash,
//! or a whole-request retry whose first attempt was applied but not answered, may index a
//! record twice. Firehose documents the same trade-off.
//!
//! # Per-document results and retries
//!
//! The cluster answers per item. `200`/`201` items are done. `429` and `5xx` items are retried:
//! the sink keeps the state of the batch it is delivering (only that one; bounded by its
//! records) and the next [`Sink::deliver`] of the same [`BatchIdentity`] sends only the documents
//! not yet indexed; while any remain it returns a retryable error (`OS.DocumentsNotIndexed`).
//! Other `4xx` items (a mapping conflict, an invalid index name) fail for good and come back in
//! [`Delivered::failed`] once the rest is indexed, with Firehose's fields (`esDocumentId`,
//! `esIndexName`, `esTypeName`); their `errorCode` is the item's HTTP status (`"400"`) and
//! their `errorMessage` the item's `error` object. That is how Firehose's `elasticsearch-failed`
//! objects are remembered to look; no published reference for it was at hand, so treat the
//! shape as hydrant's choice.
//! When the retry window runs out, [`Sink::give_up`] files only the documents not
//! indexed; after a restart (no state) it files the whole batch.
//!
//! # Whole-request failures
//!
//! | failure | code | retryable |
//! |---|---|---|
//! | cannot connect | `OS.ConnectionFailed` | yes |
//! | connection broke, unreadable answer | `OS.ConnectionReset` / `OS.InvalidResponse` | yes |
//! | timed out ([`OpenSearchConfig::request_timeout`]) | `OS.RequestTimeout` | yes |
//! | `429` | `OS.TooManyRequests` | yes |
//! | `5xx` | `OS.ServiceException` | yes |
//! | `401`, `403` | `OS.AccessDenied` | no |
//! | `400` | `OS.MalformedData` | no |
//! | `404` | `OS.ResourceNotFound` | no |
//! | `413` | `OS.RequestEntityTooLarge` | no |
//! | other `3xx`/`4xx` | `OS.InvalidRequest` | no |
//!
//! Firehose's published list of OpenSearch error codes was not at hand when this was written;
//! `OS.MalformedData` (`ES.MalformedData` for the legacy destination's era) is the one code
//! taken from the service's logs, the others follow its naming.
//!
//! # Authentication
//!
//! [`ClusterAuth::Basic`] (fine-grained access control's internal users) or
//! [`ClusterAuth::SigV4`] (IAM: service `es`, the exact body signed, `x-amz-content-sha256`
//! sent). Endpoints are `https` (rustls); plain `http` only to a loopback address unless
//! [`OpenSearchConfig::allow_insecure_http`] says otherwise.

mod config;
mod failure;
mod rotation;

use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{
    now_ms, Batch, BatchIdentity, BoxFuture, Delivered, FailedRecord, FailureDetail, GiveUp,
    Record, Sink, SinkError,
};

pub use config::{
    validate_endpoint, validate_index_name, validate_type_name, ClusterAuth, DocumentIdFormat,
    Flavor, OpenSearchConfig, OpenSearchConfigError, ENDPOINT_CHARS_MAX, INDEX_NAME_CHARS_MAX,
    REQUEST_TIMEOUT_DEFAULT, TYPE_NAME_CHARS_MAX,
};
pub use failure::OpenSearchFailure;
pub use rotation::IndexRotation;

/// The longest error-response excerpt kept in an error message (bytes).
const ERROR_EXCERPT_BYTES_MAX: usize = 2048;
/// The largest bulk response read: a fixed allowance plus a per-item one.
const RESPONSE_BYTES_BASE: usize = 1024 * 1024;
const RESPONSE_BYTES_PER_ITEM: usize = 4096;

/// The OpenSearch / Elasticsearch sink (see the module documentation).
pub struct OpenSearchSink {
    config: OpenSearchConfig,
    bulk_url: reqwest::Url,
    client: reqwest::Client,
    /// The batch being delivered, if its state is known. Only one: a worker delivers one batch
    /// at a time, and a different batch replaces it.
    pending: Mutex<Option<Pending>>,
}

impl fmt::Debug for OpenSearchSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenSearchSink")
            .field("bulk_url", &self.bulk_url.as_str())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The delivery state of one batch's documents.
#[derive(Debug)]
struct Pending {
    identity: BatchIdentity,
    items: Vec<ItemState>,
    /// Bulk requests sent for this batch.
    attempts: u32,
    /// Request-body bytes sent for this batch.
    wire_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ItemState {
    /// Not known to be indexed: never sent, or the request's answer was lost.
    Unsent,
    /// Indexed (`200`/`201`).
    Indexed,
    /// Refused for now (`429`, `5xx`): sent again by the next attempt.
    Retry { code: String, message: String },
    /// Refused for good (other `4xx`, not a JSON object).
    Failed { code: String, message: String },
}

impl ItemState {
    fn needs_sending(&self) -> bool {
        matches!(self, ItemState::Unsent | ItemState::Retry { .. })
    }
}

const MALFORMED_MESSAGE: &str = "One or more records are malformed. Please ensure that each \
     record is single valid JSON object and that it does not contain newlines.";

impl OpenSearchSink {
    /// Builds the sink (no request is made).
    ///
    /// # Errors
    /// [`SinkError::Config`] when [`OpenSearchConfig::validate`] refuses the configuration or
    /// the HTTP client cannot be built.
    pub fn new(config: OpenSearchConfig) -> Result<OpenSearchSink, SinkError> {
        config
            .validate()
            .map_err(|e| SinkError::Config(e.to_string()))?;
        let bulk_url = validate_endpoint(&config.endpoint, config.allow_insecure_http)
            .map_err(|e| SinkError::Config(e.to_string()))?;
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(30)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SinkError::Config(format!("OpenSearch HTTP client: {e}")))?;
        Ok(OpenSearchSink {
            config,
            bulk_url,
            client,
            pending: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OpenSearchConfig {
        &self.config
    }

    /// The URL bulk requests go to.
    pub fn bulk_url(&self) -> &str {
        self.bulk_url.as_str()
    }

    /// The index `record` goes to.
    pub fn index_for(&self, record: &Record) -> String {
        self.config
            .rotation
            .index_name(&self.config.index_name, record.arrival_ms)
    }

    /// The `_id` `record` of `batch` is sent with (`None` with `NO_DOCUMENT_ID`).
    pub fn document_id(&self, batch: &Batch, record: &Record) -> Option<String> {
        match self.config.document_ids {
            DocumentIdFormat::NoDocumentId => None,
            DocumentIdFormat::FirehoseDefault => Some(format_document_id(
                &document_id_prefix(&batch.identity),
                record,
            )),
        }
    }

    fn lock_pending(&self) -> MutexGuard<'_, Option<Pending>> {
        // The state is replaced whole, never left half-updated: a poisoned lock is usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of `batch`: the kept one if it is this batch's, else a fresh one.
    fn take_pending(&self, batch: &Batch) -> Pending {
        let kept = self.lock_pending().take();
        match kept {
            Some(p) if p.identity == batch.identity && p.items.len() == batch.records.len() => p,
            _ => Pending {
                identity: batch.identity.clone(),
                items: batch
                    .records
                    .iter()
                    .map(|r| {
                        if is_json_object(&r.data) {
                            ItemState::Unsent
                        } else {
                            ItemState::Failed {
                                code: "OS.MalformedData".into(),
                                message: MALFORMED_MESSAGE.into(),
                            }
                        }
                    })
                    .collect(),
                attempts: 0,
                wire_bytes: 0,
            },
        }
    }

    fn detail(&self, record: &Record, prefix: &str) -> FailureDetail {
        FailureDetail::OpenSearch {
            document_id: match self.config.document_ids {
                DocumentIdFormat::FirehoseDefault => Some(format_document_id(prefix, record)),
                DocumentIdFormat::NoDocumentId => None,
            },
            index_name: self.index_for(record),
            type_name: self.config.effective_type_name().map(str::to_owned),
            legacy_elasticsearch: self.config.flavor == Flavor::Elasticsearch,
        }
    }

    /// Builds the NDJSON body for the records at `positions`.
    fn bulk_body(&self, batch: &Batch, positions: &[usize], prefix: &str) -> Vec<u8> {
        #[derive(Serialize)]
        struct Meta<'a> {
            #[serde(rename = "_index")]
            index: &'a str,
            #[serde(rename = "_type", skip_serializing_if = "Option::is_none")]
            type_name: Option<&'a str>,
            #[serde(rename = "_id", skip_serializing_if = "Option::is_none")]
            id: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Action<'a> {
            index: Meta<'a>,
        }
        let size: usize = positions
            .iter()
            .map(|&i| batch.records[i].data.len() + 128)
            .sum();
        let mut body = Vec::with_capacity(size);
        for &i in positions {
            let record = &batch.records[i];
            let index = self.index_for(record);
            let id = match self.config.document_ids {
                DocumentIdFormat::FirehoseDefault => Some(format_document_id(prefix, record)),
                DocumentIdFormat::NoDocumentId => None,
            };
            let action = Action {
                index: Meta {
                    index: &index,
                    type_name: self.config.effective_type_name(),
                    id: id.as_deref(),
                },
            };
            // Strings into a Vec: serialization cannot fail.
            let _ = serde_json::to_writer(&mut body, &action);
            body.push(b'\n');
            body.extend(record.data.iter().filter(|b| **b != b'\n' && **b != b'\r'));
            body.push(b'\n');
        }
        body
    }

    /// Sends one bulk request and returns the per-item outcomes (in `positions` order).
    async fn send(&self, body: Vec<u8>, items: usize) -> Result<Vec<BulkItem>, SinkError> {
        let body = Bytes::from(body);
        let mut request = self
            .client
            .post(self.bulk_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson");
        match &self.config.auth {
            ClusterAuth::None => {}
            ClusterAuth::Basic { username, password } => {
                request = request.basic_auth(username, Some(password));
            }
            ClusterAuth::SigV4 { .. } => {
                for (name, value) in self.sigv4_headers(&body)? {
                    request = request.header(name, value);
                }
            }
        }
        let response = request.body(body).send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let limit = RESPONSE_BYTES_BASE + RESPONSE_BYTES_PER_ITEM * items;
        let bytes = read_limited(response, limit).await?;
        if !(200..300).contains(&status) {
            return Err(status_error(status, &bytes));
        }
        let parsed: BulkResponse = serde_json::from_slice(&bytes).map_err(|e| {
            destination(
                OpenSearchFailure::InvalidResponse,
                format!("the bulk response is not valid: {e}: {}", excerpt(&bytes)),
            )
        })?;
        if parsed.items.len() != items {
            return Err(destination(
                OpenSearchFailure::InvalidResponse,
                format!(
                    "the bulk response has {} items for {items} actions",
                    parsed.items.len()
                ),
            ));
        }
        parsed
            .items
            .into_iter()
            .map(|mut item| {
                item.pop_first().map(|(_, v)| v).ok_or_else(|| {
                    destination(
                        OpenSearchFailure::InvalidResponse,
                        "an empty bulk response item".into(),
                    )
                })
            })
            .collect()
    }

    /// The SigV4 headers (service `es`) for a `_bulk` POST of `body`.
    fn sigv4_headers(&self, body: &[u8]) -> Result<Vec<(String, String)>, SinkError> {
        let ClusterAuth::SigV4 {
            region,
            access_key_id,
            secret_access_key,
            session_token,
        } = &self.config.auth
        else {
            return Ok(Vec::new());
        };
        let credentials = aws_credential_types::Credentials::new(
            access_key_id,
            secret_access_key,
            session_token.clone(),
            None,
            "hydrant-opensearch",
        );
        crate::sigv4::sign_post(
            "es",
            region,
            &credentials,
            self.bulk_url.as_str(),
            [("content-type", "application/x-ndjson")].into_iter(),
            body,
            crate::sigv4::PayloadHash::Header,
        )
        .map_err(|e| destination(OpenSearchFailure::SigningFailed, e))
    }

    /// One delivery attempt of `batch` (see the module documentation).
    async fn deliver_batch(&self, batch: &Batch) -> Result<Delivered, SinkError> {
        let mut pending = self.take_pending(batch);
        let prefix = document_id_prefix(&batch.identity);
        let positions: Vec<usize> = pending
            .items
            .iter()
            .enumerate()
            .filter(|(_, s)| s.needs_sending())
            .map(|(i, _)| i)
            .collect();
        if !positions.is_empty() {
            let body = self.bulk_body(batch, &positions, &prefix);
            pending.attempts += 1;
            pending.wire_bytes += body.len() as u64;
            let outcome = self.send(body, positions.len()).await;
            let items = match outcome {
                Ok(items) => items,
                Err(error) => {
                    *self.lock_pending() = Some(pending);
                    return Err(error);
                }
            };
            for (&i, item) in positions.iter().zip(items) {
                pending.items[i] = item.state();
            }
        }
        let retry: Vec<&ItemState> = pending
            .items
            .iter()
            .filter(|s| matches!(s, ItemState::Retry { .. }))
            .collect();
        if let Some(ItemState::Retry { code, message }) = retry.first() {
            let error = destination(
                OpenSearchFailure::DocumentsNotIndexed,
                format!(
                    "{} of {} documents not indexed yet; first: {code}: {message}",
                    retry.len(),
                    pending.items.len()
                ),
            );
            *self.lock_pending() = Some(pending);
            return Err(error);
        }
        Ok(self.receipt(batch, &pending, &prefix))
    }

    fn receipt(&self, batch: &Batch, pending: &Pending, prefix: &str) -> Delivered {
        let now = now_ms();
        let mut records = 0;
        let mut data_bytes = 0;
        let mut failed = Vec::new();
        for (record, state) in batch.records.iter().zip(&pending.items) {
            match state {
                ItemState::Indexed => {
                    records += 1;
                    data_bytes += record.data.len() as u64;
                }
                ItemState::Failed { code, message } => failed.push(FailedRecord {
                    attempts_made: pending.attempts.max(1),
                    arrival_timestamp_ms: record.arrival_ms,
                    error_code: code.clone(),
                    error_message: message.clone(),
                    attempt_ending_timestamp_ms: now,
                    raw_data: record.data.clone(),
                    detail: self.detail(record, prefix),
                }),
                // Every Unsent/Retry item was sent and answered on the way here.
                ItemState::Unsent | ItemState::Retry { .. } => {}
            }
        }
        let first = batch.records.first().map(|r| self.index_for(r));
        let last = batch.records.last().map(|r| self.index_for(r));
        let indexes = match (first, last) {
            (Some(f), Some(l)) if f != l => format!("{f}..{l}"),
            (Some(f), _) => f,
            _ => String::new(),
        };
        Delivered {
            target: self.target_of(batch),
            location: format!("{} [{indexes}]", self.bulk_url),
            records,
            data_bytes,
            wire_bytes: pending.wire_bytes,
            failed,
        }
    }

    fn target_of(&self, batch: &Batch) -> String {
        batch.identity.request_id()
    }
}

impl Sink for OpenSearchSink {
    fn kind(&self) -> &'static str {
        match self.config.flavor {
            Flavor::OpenSearch => "opensearch",
            Flavor::Elasticsearch => "elasticsearch",
        }
    }

    /// The batch's request id (a UUID derived from its identity): documents have ids of their
    /// own, so there is no single key to record.
    fn target(&self, batch: &Batch) -> Result<String, SinkError> {
        Ok(self.target_of(batch))
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<Delivered, SinkError>> {
        Box::pin(self.deliver_batch(batch))
    }

    /// Files the documents of `batch` not indexed: those still refused, those refused for good,
    /// and those whose fate is unknown (with `error`'s code and message). Without state for the
    /// batch (after a restart), every record.
    fn give_up<'a>(&'a self, batch: &'a Batch, error: &'a SinkError, attempts: u32) -> GiveUp<'a> {
        Box::pin(async move {
            let prefix = document_id_prefix(&batch.identity);
            let kept = self.lock_pending().take();
            let pending = kept
                .filter(|p| p.identity == batch.identity && p.items.len() == batch.records.len());
            let now = now_ms();
            let code = error.error_code().into_owned();
            let message = error.to_string();
            let mut out = Vec::new();
            for (i, record) in batch.records.iter().enumerate() {
                let state = match &pending {
                    Some(p) => &p.items[i],
                    None => &ItemState::Unsent,
                };
                let (error_code, error_message) = match state {
                    ItemState::Indexed => continue,
                    ItemState::Unsent => (code.clone(), message.clone()),
                    ItemState::Retry { code, message } | ItemState::Failed { code, message } => {
                        (code.clone(), message.clone())
                    }
                };
                out.push(FailedRecord {
                    attempts_made: attempts,
                    arrival_timestamp_ms: record.arrival_ms,
                    error_code,
                    error_message,
                    attempt_ending_timestamp_ms: now,
                    raw_data: record.data.clone(),
                    detail: self.detail(record, &prefix),
                });
            }
            Ok(out)
        })
    }

    fn failure_detail(&self, batch: &Batch, record: &Record) -> FailureDetail {
        self.detail(record, &document_id_prefix(&batch.identity))
    }
}

/// The bulk response: only what the sink reads.
#[derive(Deserialize)]
struct BulkResponse {
    items: Vec<std::collections::BTreeMap<String, BulkItem>>,
}

/// One item of the bulk response (`{"index":{...}}`'s inner object).
#[derive(Deserialize)]
struct BulkItem {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

impl BulkItem {
    fn state(self) -> ItemState {
        let message = || match &self.error {
            Some(error) => error.to_string(),
            None => format!("HTTP {}", self.status),
        };
        match self.status {
            200..=299 => ItemState::Indexed,
            429 | 500..=599 => ItemState::Retry {
                code: self.status.to_string(),
                message: message(),
            },
            _ => ItemState::Failed {
                code: self.status.to_string(),
                message: message(),
            },
        }
    }
}

/// Whether `data` is one UTF-8 JSON object (surrounding whitespace allowed).
fn is_json_object(data: &[u8]) -> bool {
    if std::str::from_utf8(data).is_err() {
        return false;
    }
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    first == Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok()
}

/// 16 hex digits naming (stream, incarnation, destination): the shared start of its documents'
/// ids.
fn document_id_prefix(identity: &BatchIdentity) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(b"hydrant.opensearch-document-id.v1");
    for field in [
        identity.stream.as_bytes(),
        identity.incarnation.as_bytes(),
        identity.destination_id.as_bytes(),
    ] {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    crate::hex_lower(&digest[..8])
}

fn format_document_id(prefix: &str, record: &Record) -> String {
    format!("{prefix}-{:020}-{}", record.lsn, record.sub)
}

fn destination(failure: OpenSearchFailure, message: String) -> SinkError {
    SinkError::Destination {
        failure: failure.into(),
        message,
    }
}

fn transport_error(error: reqwest::Error) -> SinkError {
    let message = error_chain(&error);
    if error.is_timeout() {
        destination(OpenSearchFailure::RequestTimeout, message)
    } else if error.is_connect() {
        destination(OpenSearchFailure::ConnectionFailed, message)
    } else {
        destination(OpenSearchFailure::ConnectionReset, message)
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn status_error(status: u16, body: &[u8]) -> SinkError {
    destination(
        OpenSearchFailure::from_status(status),
        format!("the cluster answered HTTP {status}: {}", excerpt(body)),
    )
}

fn excerpt(body: &[u8]) -> String {
    let end = body.len().min(ERROR_EXCERPT_BYTES_MAX);
    let mut text = String::from_utf8_lossy(&body[..end]).into_owned();
    if body.len() > end {
        text.push_str("...");
    }
    text
}

/// Reads the response body, refusing more than `limit` bytes.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, SinkError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if out.len() + chunk.len() > limit {
            return Err(destination(
                OpenSearchFailure::InvalidResponse,
                format!("the response is larger than {limit} bytes"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> BatchIdentity {
        BatchIdentity::orders(10, 12)
    }

    #[test]
    fn json_object_check() {
        assert!(is_json_object(br#"{"a":1}"#));
        assert!(is_json_object(b" {\n \"a\" : [1, 2]\n}\n"));
        assert!(!is_json_object(b"[1,2]"));
        assert!(!is_json_object(b"\"text\""));
        assert!(!is_json_object(b"not json"));
        assert!(!is_json_object(br#"{"a":1} {"b":2}"#));
        assert!(!is_json_object(b"{\"a\":\"\xff\"}"));
        assert!(!is_json_object(b""));
    }

    #[test]
    fn document_ids_are_deterministic_and_distinct() {
        let record = |lsn, sub| Record {
            lsn,
            sub,
            arrival_ms: 0,
            data: Bytes::new(),
        };
        let prefix = document_id_prefix(&identity());
        assert_eq!(prefix.len(), 16);
        let id = format_document_id(&prefix, &record(42, 0));
        assert_eq!(id, format!("{prefix}-00000000000000000042-0"));
        // Batch boundaries do not enter the id: the same record in a differently cut batch
        // keeps it.
        let mut other = identity();
        other.first_lsn = 0;
        other.last_lsn = 99;
        assert_eq!(document_id_prefix(&other), prefix);
        let mut moved = identity();
        moved.incarnation.push('x');
        assert_ne!(document_id_prefix(&moved), prefix);
        assert_ne!(
            format_document_id(&prefix, &record(42, 1)),
            format_document_id(&prefix, &record(42, 0))
        );
    }

    /// Golden value: with `FIREHOSE_DEFAULT` a resend overwrites the documents it sent before
    /// only if their `_id`s are the same, across versions too; a change here is a format change.
    #[test]
    fn golden_document_id_is_pinned() {
        let record = Record {
            lsn: 42,
            sub: 0,
            arrival_ms: 0,
            data: Bytes::new(),
        };
        assert_eq!(
            format_document_id(&document_id_prefix(&identity()), &record),
            "3c4fb14e0657d6bf-00000000000000000042-0"
        );
    }
}
