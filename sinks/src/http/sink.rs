//! [`HttpEndpointSink`]: the [`Sink`] that sends a batch's requests in order, resumes a retry at
//! the part that failed, and files what the endpoint did not accept in the error output.

use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};

use super::config::{ContentEncoding, HttpEndpointConfig};
use super::failure::HttpFailure;
use super::request::{ascii_json, encode_body, plan_requests};
use super::response::{check_response, RESPONSE_BODY_BYTES_MAX};
use crate::{
    now_ms, Batch, BatchIdentity, BoxFuture, Compression, Delivered, FailedRecord, FailureDetail,
    GiveUp, Record, Sink, SinkError,
};

/// How long establishing a connection may take at most (less when the request timeout is
/// shorter).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("x-amz-firehose-protocol-version");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-amz-firehose-request-id");
const SOURCE_ARN: HeaderName = HeaderName::from_static("x-amz-firehose-source-arn");
const ACCESS_KEY: HeaderName = HeaderName::from_static("x-amz-firehose-access-key");
const COMMON_ATTRIBUTES: HeaderName = HeaderName::from_static("x-amz-firehose-common-attributes");

/// How many parts of which batch were accepted: lets a retry in the same process resume at the
/// part that failed. One slot: a sink delivers one batch at a time.
#[derive(Debug)]
struct Progress {
    identity: BatchIdentity,
    records: usize,
    parts_done: usize,
}

/// The HTTP endpoint destination (see the module documentation).
pub struct HttpEndpointSink {
    config: HttpEndpointConfig,
    url: reqwest::Url,
    /// `Name`, else `scheme://host:port`: for locations and messages (the full URL may hold a
    /// token, so it is never logged).
    label: String,
    client: reqwest::Client,
    access_key: Option<HeaderValue>,
    common_attributes: Option<HeaderValue>,
    source_arn: HeaderValue,
    progress: Mutex<Option<Progress>>,
}

impl fmt::Debug for HttpEndpointSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpEndpointSink")
            .field("endpoint", &self.label)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpEndpointSink {
    /// Validates `config` and builds the sink's HTTP client (rustls, no redirects, no proxy,
    /// `config.request_timeout` per request).
    ///
    /// # Errors
    /// [`SinkError::Config`] when the configuration is invalid ([`HttpEndpointConfig::validate`])
    /// or the client cannot be built.
    pub fn new(config: HttpEndpointConfig) -> Result<HttpEndpointSink, SinkError> {
        let url = config
            .checked_url()
            .map_err(|e| SinkError::Config(e.to_string()))?;
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(CONNECT_TIMEOUT))
            .no_proxy()
            .user_agent(concat!("hydrant/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SinkError::Config(format!("HTTP endpoint client: {e}")))?;
        let header = |value: &[u8], what: &str| {
            HeaderValue::from_bytes(value)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| SinkError::Config(format!("{what} cannot be sent as a header")))
        };
        let access_key = match &config.access_key {
            Some(key) => Some(header(key.as_bytes(), "the access key")?),
            None => None,
        };
        let common_attributes = if config.common_attributes.is_empty() {
            None
        } else {
            let map: serde_json::Map<String, serde_json::Value> = config
                .common_attributes
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                .collect();
            let json = serde_json::json!({ "commonAttributes": map }).to_string();
            Some(header(
                ascii_json(&json).as_bytes(),
                "the common attributes",
            )?)
        };
        let source_arn = header(config.source_arn.as_bytes(), "the source ARN")?;
        let label = match &config.name {
            Some(name) => name.clone(),
            None => format!(
                "{}://{}{}",
                url.scheme(),
                url.host_str().unwrap_or_default(),
                url.port().map_or_else(String::new, |p| format!(":{p}"))
            ),
        };
        Ok(HttpEndpointSink {
            config,
            url,
            label,
            client,
            access_key,
            common_attributes,
            source_arn,
            progress: Mutex::new(None),
        })
    }

    /// The configuration the sink was built with.
    pub fn config(&self) -> &HttpEndpointConfig {
        &self.config
    }

    fn progress(&self) -> MutexGuard<'_, Option<Progress>> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parts of `batch` already accepted in this process.
    fn parts_done(&self, batch: &Batch) -> usize {
        match &*self.progress() {
            Some(p) if p.identity == batch.identity && p.records == batch.records.len() => {
                p.parts_done
            }
            _ => 0,
        }
    }

    fn set_parts_done(&self, batch: &Batch, parts_done: usize) {
        *self.progress() = Some(Progress {
            identity: batch.identity.clone(),
            records: batch.records.len(),
            parts_done,
        });
    }

    fn forget_progress(&self, batch: &Batch) {
        let mut progress = self.progress();
        if progress
            .as_ref()
            .is_some_and(|p| p.identity == batch.identity)
        {
            *progress = None;
        }
    }

    async fn deliver_batch(&self, batch: &Batch) -> Result<Delivered, SinkError> {
        let plan = plan_requests(batch);
        let mut wire_bytes = 0;
        for (part, request) in plan.iter().enumerate().skip(self.parts_done(batch)) {
            let records = &batch.records[request.records.clone()];
            wire_bytes += self.send(&request.request_id, records).await?;
            self.set_parts_done(batch, part + 1);
        }
        self.forget_progress(batch);
        let request_id = batch.identity.request_id();
        Ok(Delivered {
            location: format!("{} request {request_id}", self.label),
            target: request_id,
            records: batch.records.len() as u64,
            data_bytes: batch.data_bytes(),
            wire_bytes,
            failed: Vec::new(),
        })
    }

    /// Sends one request and checks its response: the body bytes sent on success.
    async fn send(&self, request_id: &str, records: &[Record]) -> Result<u64, SinkError> {
        let data: Vec<Bytes> = records.iter().map(|r| r.data.clone()).collect();
        let id = request_id.to_owned();
        let gzip = self.config.content_encoding == ContentEncoding::Gzip;
        let timestamp_ms = now_ms();
        // Base64 and gzip of up to 64 MiB: off the async worker threads.
        let body = tokio::task::spawn_blocking(move || {
            let body = encode_body(&id, timestamp_ms, &data);
            if gzip {
                Compression::Gzip.compress(&body)
            } else {
                Ok(body)
            }
        })
        .await
        .map_err(|e| SinkError::Task(e.to_string()))??;
        let wire_bytes = body.len() as u64;

        let mut request = self
            .client
            .post(self.url.clone())
            .header(PROTOCOL_VERSION, HeaderValue::from_static("1.0"))
            .header(REQUEST_ID, request_id)
            .header(SOURCE_ARN, self.source_arn.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &self.access_key {
            request = request.header(ACCESS_KEY, key.clone());
        }
        if let Some(attributes) = &self.common_attributes {
            request = request.header(COMMON_ATTRIBUTES, attributes.clone());
        }
        if gzip {
            request = request.header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = self.read_bounded(response).await?;
        check_response(status, &headers, &body, request_id)?;
        Ok(wire_bytes)
    }

    /// Reads a response body of at most [`RESPONSE_BODY_BYTES_MAX`] bytes.
    async fn read_bounded(&self, mut response: reqwest::Response) -> Result<Vec<u8>, SinkError> {
        let too_large = || SinkError::Destination {
            failure: HttpFailure::ResponseTooLarge.into(),
            message: format!(
                "The response from {} is larger than {RESPONSE_BODY_BYTES_MAX} bytes.",
                self.label
            ),
        };
        if response
            .content_length()
            .is_some_and(|n| n > RESPONSE_BODY_BYTES_MAX as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if body.len() + chunk.len() > RESPONSE_BODY_BYTES_MAX {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Classifies a failure of the HTTP client.
    fn transport_error(&self, error: reqwest::Error) -> SinkError {
        let error = error.without_url();
        let (failure, message) = if error.is_builder() {
            return SinkError::Config(format!("HTTP endpoint request: {}", error_chain(&error)));
        } else if error.is_connect() {
            (
                HttpFailure::ConnectionFailed,
                format!(
                    "Could not connect to {}: {}",
                    self.label,
                    error_chain(&error)
                ),
            )
        } else if error.is_timeout() {
            (
                HttpFailure::RequestTimeout,
                format!(
                    "{} did not answer within {} s.",
                    self.label,
                    self.config.request_timeout.as_secs_f64()
                ),
            )
        } else {
            (
                HttpFailure::ConnectionReset,
                format!(
                    "The connection to {} broke: {}",
                    self.label,
                    error_chain(&error)
                ),
            )
        };
        SinkError::Destination {
            failure: failure.into(),
            message,
        }
    }
}

/// An error and its sources, joined by `: `.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Sink for HttpEndpointSink {
    fn kind(&self) -> &'static str {
        "http_endpoint"
    }

    fn target(&self, batch: &Batch) -> Result<String, SinkError> {
        Ok(batch.identity.request_id())
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<Delivered, SinkError>> {
        Box::pin(self.deliver_batch(batch))
    }

    /// Files the records the endpoint has not accepted: all of them, except the parts of a split
    /// batch that got their 200 in this process. The error message is the last failure's,
    /// without its code (which has its own field), as Firehose writes it.
    fn give_up<'a>(&'a self, batch: &'a Batch, error: &'a SinkError, attempts: u32) -> GiveUp<'a> {
        Box::pin(async move {
            let plan = plan_requests(batch);
            let first = plan
                .get(self.parts_done(batch))
                .map_or(batch.records.len(), |r| r.records.start);
            self.forget_progress(batch);
            let now = now_ms();
            let code = error.error_code().into_owned();
            let message = match error {
                SinkError::Destination { message, .. } => message.clone(),
                other => other.to_string(),
            };
            Ok(batch.records[first..]
                .iter()
                .map(|record| FailedRecord {
                    attempts_made: attempts,
                    arrival_timestamp_ms: record.arrival_ms,
                    error_code: code.clone(),
                    error_message: message.clone(),
                    attempt_ending_timestamp_ms: now,
                    raw_data: record.data.clone(),
                    detail: self.failure_detail(batch, record),
                })
                .collect())
        })
    }

    /// `http-endpoint-failed`: `subsequenceNumber` is the record's `sub`, `dataId` is
    /// `<lsn>.<sub>` (Firehose's is `<sequence number>.<subsequence>`), the same on every resend.
    fn failure_detail(&self, _batch: &Batch, record: &Record) -> FailureDetail {
        FailureDetail::HttpEndpoint {
            subsequence_number: u64::from(record.sub),
            data_id: format!("{}.{}", record.lsn, record.sub),
        }
    }
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::http::testing::{batch, config};

    #[test]
    fn debug_output_hides_secrets() {
        let mut c = config("https://e.com/?token=hidden-token");
        c.access_key = Some("hidden-key".into());
        c.common_attributes = vec![("a".into(), "hidden-value".into())];
        let sink = HttpEndpointSink::new(c.clone()).unwrap();
        for text in [format!("{c:?}"), format!("{sink:?}")] {
            assert!(!text.contains("hidden"), "{text}");
        }
    }

    #[test]
    fn failure_detail_is_stable() {
        let sink = HttpEndpointSink::new(config("https://e.com")).unwrap();
        let b = batch(&[3]);
        let record = Record {
            lsn: 42,
            sub: 3,
            ..b.records[0].clone()
        };
        assert_eq!(
            sink.failure_detail(&b, &record),
            FailureDetail::HttpEndpoint {
                subsequence_number: 3,
                data_id: "42.3".into()
            }
        );
    }
}
