//! The HTTP endpoint destination (`HttpEndpointDestinationConfiguration`): batches POSTed to a URL
//! in Firehose's HTTP endpoint delivery format, version 1.0.
//!
//! # The request
//!
//! ```text
//! POST <Url, path and query as configured>
//! X-Amz-Firehose-Protocol-Version: 1.0
//! X-Amz-Firehose-Request-Id: <request id>
//! X-Amz-Firehose-Source-Arn: <the stream's ARN>
//! X-Amz-Firehose-Access-Key: <AccessKey>                      (only when configured)
//! X-Amz-Firehose-Common-Attributes: {"commonAttributes":{..}}  (only when there are some)
//! Content-Type: application/json
//! Content-Encoding: gzip                                      (only with ContentEncoding GZIP)
//!
//! {"requestId":"<request id>","timestamp":<ms>,"records":[{"data":"<base64>"},...]}
//! ```
//!
//! - **Request id**: [`BatchIdentity::request_id`], a pure function of the batch identity, so
//!   every retry of a batch, in this process or after a crash, carries the same id: an endpoint
//!   can deduplicate on it. [`Sink::target`] returns it.
//! - **`timestamp`**: the wall clock when the attempt is sent, as Firehose does (the id, not the
//!   timestamp, is what identifies a request). The records are the same on every attempt.
//! - **Records** are the batch's records in order, each one `data` field in standard padded
//!   base64, no delimiter added.
//!
//! # Requests per batch
//!
//! A request carries at most [`RECORDS_PER_REQUEST_MAX`] (10,000) records and a body of at most
//! [`REQUEST_BODY_BYTES_MAX`] (64 MiB, before compression). A batch over either limit goes out as
//! several requests, cut deterministically by [`plan_requests`]: part 0 carries the batch's
//! request id, part `k > 0` an id derived from the batch identity and `k`. The parts are sent in
//! order and the batch is delivered when every part got its 200. Within one process the sink
//! remembers how many parts of the batch in hand were accepted, so a retry starts at the part
//! that failed; after a crash every part is sent again under the same ids.
//!
//! # The response
//!
//! Only a `200` whose body is a JSON object with the request's `requestId` and a numeric
//! `timestamp` (with `Content-Type: application/json`, parameters such as `charset` allowed,
//! and no `Content-Encoding`) is a success. Redirects are not followed. Error codes:
//!
//! | what happened | code | retried |
//! |---|---|---|
//! | `413` | `HttpEndpoint.DestinationException` | no (see below) |
//! | any other status but 200 (2xx, 3xx, 4xx, 5xx) | `HttpEndpoint.DestinationException` | yes |
//! | a 200 that does not conform | `HttpEndpoint.InvalidResponseFromDestination` | yes |
//! | no complete response within the request timeout (3 min) | `HttpEndpoint.RequestTimeout` | yes |
//! | no connection (refused, DNS, TLS handshake) | `HttpEndpoint.ConnectionFailed` | yes |
//! | the connection broke after it was made | `HttpEndpoint.ConnectionReset` | yes |
//! | a response body over 1 MiB | `HttpEndpoint.ResponseTooLarge` | yes |
//!
//! The error message of a status failure is `Received the following response from the endpoint
//! destination. <status>: <errorMessage>` (the response's `errorMessage`, else its body, at most
//! 8,192 characters), and [`Sink::give_up`] copies the last one into each failed record.
//!
//! **413 differs from Firehose on purpose.** Firehose drops a batch answered 413 without writing
//! it to the error bucket. hydrant never drops data silently: a 413 is final at once (not
//! retried), and `give_up` files the batch's records in the error output under
//! `http-endpoint-failed` like any other failure.
//!
//! # Other differences from Firehose
//!
//! - Firehose allows only `https://` URLs on port 443. hydrant allows any port, and plain
//!   `http://` to a loopback host (or anywhere with [`HttpEndpointConfig::allow_plain_http`]).
//! - The retry backoff (1 s doubling to 2 min, ±15 % jitter) and the retry duration are the
//!   engine's: `deliver` makes one attempt.
//! - No proxy from the environment is used: requests go straight to the endpoint.
//! - `X-Amz-Firehose-Common-Attributes` is sent as ASCII: characters beyond ASCII in names and
//!   values are written as JSON `\uXXXX` escapes (the same JSON value). The access key is sent
//!   verbatim, as UTF-8 bytes.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};

use crate::{
    now_ms, uuid_from_digest, Batch, BatchIdentity, BoxFuture, Compression, Delivered,
    FailedRecord, FailureDetail, Record, Sink, SinkError,
};

/// Records per request, at most (Firehose's limit on `records`).
pub const RECORDS_PER_REQUEST_MAX: usize = 10_000;

/// The largest request body before compression (64 MiB, Firehose's limit).
pub const REQUEST_BODY_BYTES_MAX: usize = 64 << 20;

/// The largest response body read (1 MiB); a larger one fails the attempt.
pub const RESPONSE_BODY_BYTES_MAX: usize = 1 << 20;

/// How long an endpoint has to answer, by default (Firehose's 3 minutes).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

/// How long establishing a connection may take at most (less when the request timeout is
/// shorter).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest error message kept from a response (Firehose's `errorMessage` limit).
pub const ERROR_MESSAGE_CHARS_MAX: usize = 8192;

/// `HttpEndpointUrl`: length 1 to 1000, pattern `https://.*`.
pub const URL_CHARS_MAX: usize = 1000;
/// `HttpEndpointName`: length 1 to 256, pattern `^(?!\s*$).+`.
pub const NAME_CHARS_MAX: usize = 256;
/// `HttpEndpointAccessKey`: length 0 to 4096, pattern `.*`.
pub const ACCESS_KEY_CHARS_MAX: usize = 4096;
/// `HttpEndpointCommonAttributesList`: 0 to 50 attributes.
pub const COMMON_ATTRIBUTES_MAX: usize = 50;
/// `HttpEndpointAttributeName`: length 1 to 256, pattern `^(?!\s*$).+`.
pub const ATTRIBUTE_NAME_CHARS_MAX: usize = 256;
/// `HttpEndpointAttributeValue`: length 0 to 1024, pattern `.*`.
pub const ATTRIBUTE_VALUE_CHARS_MAX: usize = 1024;

/// The error codes this sink reports.
pub mod codes {
    /// The endpoint answered with a status other than 200.
    pub const DESTINATION_EXCEPTION: &str = "HttpEndpoint.DestinationException";
    /// The endpoint answered 200 with a body that does not conform.
    pub const INVALID_RESPONSE: &str = "HttpEndpoint.InvalidResponseFromDestination";
    /// No complete response within the request timeout.
    pub const REQUEST_TIMEOUT: &str = "HttpEndpoint.RequestTimeout";
    /// No connection could be made.
    pub const CONNECTION_FAILED: &str = "HttpEndpoint.ConnectionFailed";
    /// The connection broke after it was made.
    pub const CONNECTION_RESET: &str = "HttpEndpoint.ConnectionReset";
    /// The response body was over 1 MiB.
    pub const RESPONSE_TOO_LARGE: &str = "HttpEndpoint.ResponseTooLarge";
}

const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("x-amz-firehose-protocol-version");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-amz-firehose-request-id");
const SOURCE_ARN: HeaderName = HeaderName::from_static("x-amz-firehose-source-arn");
const ACCESS_KEY: HeaderName = HeaderName::from_static("x-amz-firehose-access-key");
const COMMON_ATTRIBUTES: HeaderName = HeaderName::from_static("x-amz-firehose-common-attributes");

/// `ContentEncoding` of the request configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContentEncoding {
    /// `NONE` (the default): the body is sent as is, without a `Content-Encoding` header.
    #[default]
    None,
    /// `GZIP`: the body is gzipped and sent with `Content-Encoding: gzip`.
    Gzip,
}

impl ContentEncoding {
    /// The API value: `NONE` or `GZIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentEncoding::None => "NONE",
            ContentEncoding::Gzip => "GZIP",
        }
    }

    /// Parses the API value (`NONE` or `GZIP`, exactly).
    pub fn from_api(value: &str) -> Option<ContentEncoding> {
        match value {
            "NONE" => Some(ContentEncoding::None),
            "GZIP" => Some(ContentEncoding::Gzip),
            _ => None,
        }
    }
}

/// The configuration of one HTTP endpoint destination.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpEndpointConfig {
    /// `EndpointConfiguration.Url`: where the batches are POSTed, path and query verbatim.
    pub url: String,
    /// `EndpointConfiguration.Name`: a label for logs.
    pub name: Option<String>,
    /// `EndpointConfiguration.AccessKey`: sent as `X-Amz-Firehose-Access-Key`.
    pub access_key: Option<String>,
    /// `RequestConfiguration.CommonAttributes` (name, value), in order: sent as
    /// `X-Amz-Firehose-Common-Attributes` when not empty.
    pub common_attributes: Vec<(String, String)>,
    /// `RequestConfiguration.ContentEncoding`.
    pub content_encoding: ContentEncoding,
    /// The stream's ARN, sent as `X-Amz-Firehose-Source-Arn`.
    pub source_arn: String,
    /// How long the endpoint has to answer one request ([`DEFAULT_REQUEST_TIMEOUT`]).
    pub request_timeout: Duration,
    /// hydrant's own switch: allow plain `http://` to hosts that are not loopback. Off by default,
    /// since the access key and the data would cross the network in clear.
    pub allow_plain_http: bool,
}

impl fmt::Debug for HttpEndpointConfig {
    // The URL, access key and attributes are sensitive in Firehose's model: not printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpEndpointConfig")
            .field("name", &self.name)
            .field(
                "access_key",
                &self.access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("common_attributes", &self.common_attributes.len())
            .field("content_encoding", &self.content_encoding)
            .field("source_arn", &self.source_arn)
            .field("request_timeout", &self.request_timeout)
            .field("allow_plain_http", &self.allow_plain_http)
            .finish_non_exhaustive()
    }
}

impl HttpEndpointConfig {
    /// A configuration for `url` with the defaults: no name, access key or common attributes,
    /// no content encoding, a 3-minute request timeout, https (or loopback http) only.
    pub fn new(url: impl Into<String>, source_arn: impl Into<String>) -> HttpEndpointConfig {
        HttpEndpointConfig {
            url: url.into(),
            name: None,
            access_key: None,
            common_attributes: Vec::new(),
            content_encoding: ContentEncoding::None,
            source_arn: source_arn.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            allow_plain_http: false,
        }
    }

    /// Checks the configuration against Firehose's rules (the botocore model's `HttpEndpointUrl`,
    /// `HttpEndpointName`, `HttpEndpointAccessKey`, `HttpEndpointCommonAttributesList`,
    /// `HttpEndpointAttributeName` and `HttpEndpointAttributeValue`) and hydrant's: what
    /// `CreateDeliveryStream` and `UpdateDestination` run before accepting it.
    ///
    /// Lengths count characters. `.` in the model's patterns matches any character but a line
    /// terminator, so none may contain one. On top of the model: the URL must parse and have a
    /// host; `http://` is accepted for loopback hosts, or any host with
    /// [`HttpEndpointConfig::allow_plain_http`]; attribute names are unique (they become the
    /// keys of one JSON object); the access key and the source ARN must be sendable as header
    /// values; the request timeout is above zero.
    ///
    /// # Errors
    /// The first rule broken, as an [`HttpConfigError`].
    pub fn validate(&self) -> Result<(), HttpConfigError> {
        self.checked_url().map(|_| ())
    }

    /// [`HttpEndpointConfig::validate`], returning the parsed URL.
    fn checked_url(&self) -> Result<reqwest::Url, HttpConfigError> {
        let url = validate_url(&self.url, self.allow_plain_http)?;
        if let Some(name) = &self.name {
            check_text(name, 1, NAME_CHARS_MAX, true)
                .map_err(|reason| HttpConfigError::Name { reason })?;
        }
        if let Some(key) = &self.access_key {
            check_text(key, 0, ACCESS_KEY_CHARS_MAX, false)
                .map_err(|reason| HttpConfigError::AccessKey { reason })?;
            if HeaderValue::from_bytes(key.as_bytes()).is_err() {
                return Err(HttpConfigError::AccessKey {
                    reason: "must not contain control characters",
                });
            }
        }
        validate_common_attributes(&self.common_attributes)?;
        if self.source_arn.is_empty() || HeaderValue::from_str(&self.source_arn).is_err() {
            return Err(HttpConfigError::SourceArn);
        }
        if self.request_timeout.is_zero() {
            return Err(HttpConfigError::RequestTimeout);
        }
        Ok(url)
    }
}

/// A rule of [`HttpEndpointConfig::validate`] that the configuration breaks. The messages name
/// the API member and never echo the (sensitive) values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpConfigError {
    /// `Url` breaks the length or pattern rule, or is not a URL with a host.
    #[error("EndpointConfiguration.Url: {reason}")]
    Url {
        /// The rule broken.
        reason: Cow<'static, str>,
    },
    /// `Url` is plain `http://` to a host that is not loopback, and plain http is not allowed.
    #[error(
        "EndpointConfiguration.Url: plain http to a host that is not loopback is refused: \
         use https:// (or allow plain http)"
    )]
    PlainHttp,
    /// `Name` breaks its length or pattern rule.
    #[error("EndpointConfiguration.Name: {reason}")]
    Name {
        /// The rule broken.
        reason: &'static str,
    },
    /// `AccessKey` breaks its length or pattern rule, or cannot be sent as a header value.
    #[error("EndpointConfiguration.AccessKey: {reason}")]
    AccessKey {
        /// The rule broken.
        reason: &'static str,
    },
    /// More than 50 common attributes.
    #[error("RequestConfiguration.CommonAttributes: {count} attributes, at most 50 allowed")]
    TooManyAttributes {
        /// How many were given.
        count: usize,
    },
    /// An `AttributeName` breaks its length or pattern rule.
    #[error("RequestConfiguration.CommonAttributes[{index}].AttributeName: {reason}")]
    AttributeName {
        /// The attribute's position (from 0).
        index: usize,
        /// The rule broken.
        reason: &'static str,
    },
    /// An `AttributeValue` breaks its length or pattern rule.
    #[error("RequestConfiguration.CommonAttributes[{index}].AttributeValue: {reason}")]
    AttributeValue {
        /// The attribute's position (from 0).
        index: usize,
        /// The rule broken.
        reason: &'static str,
    },
    /// Two attributes have the same name.
    #[error(
        "RequestConfiguration.CommonAttributes[{index}].AttributeName: the same name appears \
         earlier in the list"
    )]
    DuplicateAttribute {
        /// The position (from 0) of the second one.
        index: usize,
    },
    /// The stream ARN is empty or cannot be sent as a header value.
    #[error("source ARN: must be a non-empty ASCII string")]
    SourceArn,
    /// The request timeout is zero.
    #[error("request timeout must be above zero")]
    RequestTimeout,
}

impl HttpConfigError {
    /// The API member the error is about (`EndpointConfiguration.Url`, ...), for an
    /// `InvalidArgumentException` message.
    pub fn member(&self) -> &'static str {
        match self {
            HttpConfigError::Url { .. } | HttpConfigError::PlainHttp => "EndpointConfiguration.Url",
            HttpConfigError::Name { .. } => "EndpointConfiguration.Name",
            HttpConfigError::AccessKey { .. } => "EndpointConfiguration.AccessKey",
            HttpConfigError::TooManyAttributes { .. }
            | HttpConfigError::AttributeName { .. }
            | HttpConfigError::AttributeValue { .. }
            | HttpConfigError::DuplicateAttribute { .. } => "RequestConfiguration.CommonAttributes",
            HttpConfigError::SourceArn => "SourceArn",
            HttpConfigError::RequestTimeout => "RequestTimeout",
        }
    }
}

/// Java's line terminators: what `.` in the model's patterns does not match.
fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Java's `\s`.
fn is_pattern_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// Length (in characters) and pattern (`.*`, or `^(?!\s*$).+` when `not_blank`).
fn check_text(
    value: &str,
    min_chars: usize,
    max_chars: usize,
    not_blank: bool,
) -> Result<(), &'static str> {
    let chars = value.chars().count();
    if chars < min_chars {
        return Err(if min_chars == 1 {
            "must not be empty"
        } else {
            "too short"
        });
    }
    if chars > max_chars {
        return Err(match max_chars {
            NAME_CHARS_MAX => "at most 256 characters",
            ACCESS_KEY_CHARS_MAX => "at most 4096 characters",
            ATTRIBUTE_VALUE_CHARS_MAX => "at most 1024 characters",
            _ => "too long",
        });
    }
    if value.chars().any(is_line_terminator) {
        return Err("must not contain a line break");
    }
    if not_blank && value.chars().all(is_pattern_space) {
        return Err("must not be only whitespace");
    }
    Ok(())
}

/// The URL rules: length 1 to 1000, `https://.*`, or `http://` where allowed; parses, has a host.
fn validate_url(url: &str, allow_plain_http: bool) -> Result<reqwest::Url, HttpConfigError> {
    let invalid = |reason: &'static str| HttpConfigError::Url {
        reason: Cow::Borrowed(reason),
    };
    let chars = url.chars().count();
    if chars == 0 {
        return Err(invalid("must not be empty"));
    }
    if chars > URL_CHARS_MAX {
        return Err(invalid("at most 1000 characters"));
    }
    if url.chars().any(is_line_terminator) {
        return Err(invalid("must not contain a line break"));
    }
    let plain = if url.starts_with("https://") {
        false
    } else if url.starts_with("http://") {
        true
    } else {
        return Err(invalid("must match the pattern https://.*"));
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| HttpConfigError::Url {
        reason: Cow::Owned(format!("not a valid URL: {e}")),
    })?;
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(invalid("has no host"));
    };
    if plain && !allow_plain_http && !is_loopback(host) {
        return Err(HttpConfigError::PlainHttp);
    }
    Ok(parsed)
}

/// A loopback address, `localhost` or a name under `.localhost` (RFC 6761).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

fn validate_common_attributes(attributes: &[(String, String)]) -> Result<(), HttpConfigError> {
    if attributes.len() > COMMON_ATTRIBUTES_MAX {
        return Err(HttpConfigError::TooManyAttributes {
            count: attributes.len(),
        });
    }
    for (index, (name, value)) in attributes.iter().enumerate() {
        check_text(name, 1, ATTRIBUTE_NAME_CHARS_MAX, true)
            .map_err(|reason| HttpConfigError::AttributeName { index, reason })?;
        check_text(value, 0, ATTRIBUTE_VALUE_CHARS_MAX, false)
            .map_err(|reason| HttpConfigError::AttributeValue { index, reason })?;
        if attributes[..index]
            .iter()
            .any(|(earlier, _)| earlier == name)
        {
            return Err(HttpConfigError::DuplicateAttribute { index });
        }
    }
    Ok(())
}

/// One request of a batch: its id and the records it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRequest {
    /// The request's `X-Amz-Firehose-Request-Id` (and body `requestId`).
    pub request_id: String,
    /// The indexes of its records in `batch.records`.
    pub records: Range<usize>,
}

/// `{"requestId":"<36>","timestamp":<20 digits at most>,"records":[` ... `]}` with room to spare.
const ENVELOPE_BYTES: usize = 128;

/// The body bytes one record adds: `{"data":"<base64>"},`.
fn record_json_bytes(record: &Record) -> usize {
    record.data.len().div_ceil(3) * 4 + 12
}

/// How `batch` is cut into requests: at most [`RECORDS_PER_REQUEST_MAX`] records and
/// [`REQUEST_BODY_BYTES_MAX`] bytes of body per request (a single record always fits: records
/// are at most 1,000 KiB), in order, with ids that are a pure function of the batch identity.
/// Part 0 carries [`BatchIdentity::request_id`]. Empty for a batch without records.
pub fn plan_requests(batch: &Batch) -> Vec<PlannedRequest> {
    plan_ranges(&batch.records)
        .into_iter()
        .enumerate()
        .map(|(part, records)| PlannedRequest {
            request_id: part_request_id(&batch.identity, part),
            records,
        })
        .collect()
}

fn plan_ranges(records: &[Record]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut body = ENVELOPE_BYTES;
    for (i, record) in records.iter().enumerate() {
        let cost = record_json_bytes(record);
        let full = i - start == RECORDS_PER_REQUEST_MAX || body + cost > REQUEST_BODY_BYTES_MAX;
        if full && i > start {
            ranges.push(start..i);
            start = i;
            body = ENVELOPE_BYTES;
        }
        body += cost;
    }
    if start < records.len() {
        ranges.push(start..records.len());
    }
    ranges
}

/// The request id of part `part` of the batch `identity` names.
fn part_request_id(identity: &BatchIdentity, part: usize) -> String {
    if part == 0 {
        identity.request_id()
    } else {
        uuid_from_digest(&identity.digest(&format!("http-endpoint-request/{part}")))
    }
}

/// The body of one request, before compression.
fn encode_body(request_id: &str, timestamp_ms: u64, records: &[Bytes]) -> Vec<u8> {
    let size = ENVELOPE_BYTES
        + records
            .iter()
            .map(|r| r.len().div_ceil(3) * 4 + 12)
            .sum::<usize>();
    let mut body = String::with_capacity(size);
    body.push_str("{\"requestId\":");
    // A UUID needs no escaping, but the serializer keeps that true of any id.
    body.push_str(&serde_json::Value::from(request_id).to_string());
    body.push_str(",\"timestamp\":");
    body.push_str(&timestamp_ms.to_string());
    body.push_str(",\"records\":[");
    for (i, data) in records.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{\"data\":\"");
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut body);
        body.push_str("\"}");
    }
    body.push_str("]}");
    body.into_bytes()
}

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
            code: Cow::Borrowed(codes::RESPONSE_TOO_LARGE),
            message: format!(
                "The response from {} is larger than {RESPONSE_BODY_BYTES_MAX} bytes.",
                self.label
            ),
            retryable: true,
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
        let (code, message) = if error.is_builder() {
            return SinkError::Config(format!("HTTP endpoint request: {}", error_chain(&error)));
        } else if error.is_connect() {
            (
                codes::CONNECTION_FAILED,
                format!(
                    "Could not connect to {}: {}",
                    self.label,
                    error_chain(&error)
                ),
            )
        } else if error.is_timeout() {
            (
                codes::REQUEST_TIMEOUT,
                format!(
                    "{} did not answer within {} s.",
                    self.label,
                    self.config.request_timeout.as_secs_f64()
                ),
            )
        } else {
            (
                codes::CONNECTION_RESET,
                format!(
                    "The connection to {} broke: {}",
                    self.label,
                    error_chain(&error)
                ),
            )
        };
        SinkError::Destination {
            code: Cow::Borrowed(code),
            message,
            retryable: true,
        }
    }
}

/// `json` with every non-ASCII character written as a `\uXXXX` escape (a surrogate pair above
/// U+FFFF): the same JSON value, in the ASCII a header value should be. Outside strings JSON has
/// only ASCII, so escaping every such character is escaping inside strings.
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
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

/// What a response means: `Ok` only for a conforming 200.
fn check_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Result<(), SinkError> {
    if status != 200 {
        let detail = error_detail(body);
        return Err(SinkError::Destination {
            code: Cow::Borrowed(codes::DESTINATION_EXCEPTION),
            message: format!(
                "Received the following response from the endpoint destination. {status}: \
                 {detail}"
            ),
            // 413: the endpoint will not take this request however often it is sent.
            retryable: status != 413,
        });
    }
    conforming(headers, body, request_id).map_err(|reason| SinkError::Destination {
        code: Cow::Borrowed(codes::INVALID_RESPONSE),
        message: format!(
            "The response received from the endpoint is invalid ({reason}). Contact the owner \
             of the endpoint to resolve the issue."
        ),
        retryable: true,
    })
}

/// Why a 200 response does not conform, if it does not.
fn conforming(headers: &HeaderMap, body: &[u8], request_id: &str) -> Result<(), String> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(format!(
            "Content-Type {:?} is not application/json",
            truncate(content_type, 100)
        ));
    }
    if let Some(encoding) = headers.get(CONTENT_ENCODING) {
        if !encoding.as_bytes().eq_ignore_ascii_case(b"identity") {
            return Err("the response has a Content-Encoding".into());
        }
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Some(object) = value.as_object() else {
        return Err("the body is not a JSON object".into());
    };
    match object.get("requestId").and_then(serde_json::Value::as_str) {
        Some(id) if id == request_id => {}
        Some(id) => {
            return Err(format!(
                "requestId {:?} is not the request's {request_id:?}",
                truncate(id, 100)
            ))
        }
        None => return Err("requestId is missing".into()),
    }
    if !object
        .get("timestamp")
        .is_some_and(serde_json::Value::is_number)
    {
        return Err("timestamp is missing".into());
    }
    Ok(())
}

/// The `errorMessage` of an error response, else its body, at most
/// [`ERROR_MESSAGE_CHARS_MAX`] characters.
fn error_detail(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errorMessage")?.as_str().map(str::to_owned));
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    truncate(&text, ERROR_MESSAGE_CHARS_MAX).to_owned()
}

/// The first `max` characters of `text`.
fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
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
    fn give_up<'a>(
        &'a self,
        batch: &'a Batch,
        error: &'a SinkError,
        attempts: u32,
    ) -> BoxFuture<'a, Result<Vec<FailedRecord>, SinkError>> {
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

    fn config(url: &str) -> HttpEndpointConfig {
        HttpEndpointConfig::new(
            url,
            "arn:aws:firehose:us-east-1:123456789012:deliverystream/s",
        )
    }

    fn batch(sizes: &[usize]) -> Batch {
        let shared = Bytes::from(vec![b'x'; sizes.iter().copied().max().unwrap_or(0)]);
        Batch {
            identity: BatchIdentity {
                stream: "s".into(),
                incarnation: "i".into(),
                destination_id: "destinationId-000000000001".into(),
                first_lsn: 1,
                last_lsn: sizes.len() as u64,
            },
            stream_version: 1,
            contiguous: None,
            oldest_arrival_ms: 0,
            records: sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| Record {
                    lsn: i as u64 + 1,
                    sub: 0,
                    arrival_ms: 0,
                    data: shared.slice(..n),
                })
                .collect(),
        }
    }

    #[test]
    fn url_rules() {
        assert!(config("https://example.com/ingest?x=1").validate().is_ok());
        assert!(config("https://example.com:8443").validate().is_ok());
        assert!(config("http://127.0.0.1:9/x").validate().is_ok());
        assert!(config("http://[::1]:9/x").validate().is_ok());
        assert!(config("http://localhost:9/x").validate().is_ok());
        assert!(config("http://a.localhost/").validate().is_ok());
        assert_eq!(
            config("http://example.com/").validate(),
            Err(HttpConfigError::PlainHttp)
        );
        assert_eq!(
            config("http://10.0.0.1/").validate(),
            Err(HttpConfigError::PlainHttp)
        );
        let mut allowed = config("http://example.com/");
        allowed.allow_plain_http = true;
        assert!(allowed.validate().is_ok());
        for bad in [
            "",
            "ftp://example.com",
            "HTTPS://example.com",
            "example.com",
            "https://exa\nmple.com",
            "https://",
        ] {
            let err = config(bad).validate().unwrap_err();
            assert!(matches!(err, HttpConfigError::Url { .. }), "{bad:?}: {err}");
            assert_eq!(err.member(), "EndpointConfiguration.Url");
        }
        let long = format!("https://example.com/{}", "a".repeat(URL_CHARS_MAX - 20));
        assert_eq!(long.len(), URL_CHARS_MAX);
        assert!(config(&long).validate().is_ok());
        let err = config(&format!("{long}a")).validate().unwrap_err();
        assert!(err.to_string().contains("1000"), "{err}");
    }

    #[test]
    fn name_and_access_key_rules() {
        let with = |name: Option<&str>, key: Option<&str>| {
            let mut c = config("https://e.com");
            c.name = name.map(str::to_owned);
            c.access_key = key.map(str::to_owned);
            c.validate()
        };
        assert!(with(Some("n"), Some("")).is_ok());
        assert!(with(Some(&"é".repeat(256)), Some(&"k".repeat(4096))).is_ok());
        assert!(matches!(
            with(Some(""), None),
            Err(HttpConfigError::Name { .. })
        ));
        assert!(matches!(
            with(Some(" \t "), None),
            Err(HttpConfigError::Name { .. })
        ));
        assert!(matches!(
            with(Some(&"n".repeat(257)), None),
            Err(HttpConfigError::Name { .. })
        ));
        assert!(matches!(
            with(Some("a\nb"), None),
            Err(HttpConfigError::Name { .. })
        ));
        assert!(matches!(
            with(None, Some(&"k".repeat(4097))),
            Err(HttpConfigError::AccessKey { .. })
        ));
        assert!(matches!(
            with(None, Some("a\rb")),
            Err(HttpConfigError::AccessKey { .. })
        ));
        assert!(matches!(
            with(None, Some("a\u{1}b")),
            Err(HttpConfigError::AccessKey { .. })
        ));
        // The message never echoes the key.
        let err = with(None, Some("secret\n")).unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn common_attribute_rules() {
        let with = |attributes: Vec<(String, String)>| {
            let mut c = config("https://e.com");
            c.common_attributes = attributes;
            c.validate()
        };
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let fifty: Vec<_> = (0..50).map(|i| pair(&format!("k{i}"), "")).collect();
        assert!(with(fifty.clone()).is_ok());
        let mut fifty_one = fifty;
        fifty_one.push(pair("k50", "v"));
        assert_eq!(
            with(fifty_one),
            Err(HttpConfigError::TooManyAttributes { count: 51 })
        );
        assert!(with(vec![pair(&"k".repeat(256), &"v".repeat(1024))]).is_ok());
        assert_eq!(
            with(vec![pair("a", "1"), pair(&"k".repeat(257), "")]),
            Err(HttpConfigError::AttributeName {
                index: 1,
                reason: "at most 256 characters"
            })
        );
        assert!(matches!(
            with(vec![pair("", "v")]),
            Err(HttpConfigError::AttributeName { index: 0, .. })
        ));
        assert!(matches!(
            with(vec![pair("  ", "v")]),
            Err(HttpConfigError::AttributeName { index: 0, .. })
        ));
        assert!(matches!(
            with(vec![pair("k", &"v".repeat(1025))]),
            Err(HttpConfigError::AttributeValue { index: 0, .. })
        ));
        assert!(matches!(
            with(vec![pair("k", "a\u{2028}b")]),
            Err(HttpConfigError::AttributeValue { index: 0, .. })
        ));
        assert_eq!(
            with(vec![pair("k", "1"), pair("j", "2"), pair("k", "3")]),
            Err(HttpConfigError::DuplicateAttribute { index: 2 })
        );
    }

    #[test]
    fn other_rules() {
        let mut c = config("https://e.com");
        c.request_timeout = Duration::ZERO;
        assert_eq!(c.validate(), Err(HttpConfigError::RequestTimeout));
        let mut c = config("https://e.com");
        c.source_arn = String::new();
        assert_eq!(c.validate(), Err(HttpConfigError::SourceArn));
        assert!(matches!(
            HttpEndpointSink::new(config("http://example.com")),
            Err(SinkError::Config(_))
        ));
        assert_eq!(
            ContentEncoding::from_api("GZIP"),
            Some(ContentEncoding::Gzip)
        );
        assert_eq!(ContentEncoding::from_api("gzip"), None);
        assert_eq!(ContentEncoding::None.as_str(), "NONE");
    }

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
    fn plan_cuts_at_ten_thousand_records() {
        let b = batch(&[1; 25_000]);
        let plan = plan_requests(&b);
        let ranges: Vec<_> = plan.iter().map(|p| p.records.clone()).collect();
        assert_eq!(ranges, vec![0..10_000, 10_000..20_000, 20_000..25_000]);
        assert_eq!(plan[0].request_id, b.identity.request_id());
        assert_ne!(plan[1].request_id, plan[0].request_id);
        assert_ne!(plan[2].request_id, plan[1].request_id);
        assert_eq!(plan, plan_requests(&b.clone()));
        assert_eq!(plan_requests(&batch(&[1; 10_000])).len(), 1);
        assert!(plan_requests(&batch(&[])).is_empty());
    }

    #[test]
    fn plan_cuts_at_sixty_four_mebibytes_of_body() {
        // 100 records of 1,000,000 bytes: 1,333,348 body bytes each, so 50 fit in 64 MiB.
        let b = batch(&[1_000_000; 100]);
        let plan = plan_requests(&b);
        let ranges: Vec<_> = plan.iter().map(|p| p.records.clone()).collect();
        assert_eq!(ranges, vec![0..50, 50..100]);
        for request in &plan {
            let records: Vec<Bytes> = b.records[request.records.clone()]
                .iter()
                .map(|r| r.data.clone())
                .collect();
            let body = encode_body(&request.request_id, u64::MAX, &records);
            assert!(body.len() <= REQUEST_BODY_BYTES_MAX, "{}", body.len());
        }
    }

    #[test]
    fn body_shape() {
        let body = encode_body(
            "id-1",
            1_578_090_901_599,
            &[Bytes::from_static(b"hello"), Bytes::new()],
        );
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"requestId":"id-1","timestamp":1578090901599,"records":[{"data":"aGVsbG8="},{"data":""}]}"#
        );
    }

    #[test]
    fn response_classification() {
        let json = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            h
        };
        let ok = br#"{"requestId":"r","timestamp":1}"#;
        assert!(check_response(200, &json("application/json"), ok, "r").is_ok());
        assert!(check_response(200, &json("application/json; charset=utf-8"), ok, "r").is_ok());
        let code = |status, headers: &HeaderMap, body: &[u8]| {
            let e = check_response(status, headers, body, "r").unwrap_err();
            (e.error_code().into_owned(), e.is_retryable())
        };
        let invalid = (codes::INVALID_RESPONSE.to_owned(), true);
        assert_eq!(code(200, &json("text/plain"), ok), invalid);
        assert_eq!(code(200, &HeaderMap::new(), ok), invalid);
        assert_eq!(code(200, &json("application/json"), b"{}"), invalid);
        assert_eq!(
            code(200, &json("application/json"), br#"{"requestId":"r"}"#),
            invalid
        );
        assert_eq!(
            code(
                200,
                &json("application/json"),
                br#"{"requestId":"q","timestamp":1}"#
            ),
            invalid
        );
        let mut gz = json("application/json");
        gz.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(code(200, &gz, ok), invalid);
        let exception = |retryable| (codes::DESTINATION_EXCEPTION.to_owned(), retryable);
        assert_eq!(code(413, &HeaderMap::new(), b""), exception(false));
        for status in [201, 204, 302, 400, 401, 404, 429, 500, 503] {
            assert_eq!(
                code(status, &HeaderMap::new(), b""),
                exception(true),
                "{status}"
            );
        }
        let e = check_response(
            503,
            &HeaderMap::new(),
            br#"{"requestId":"r","timestamp":1,"errorMessage":"slow down"}"#,
            "r",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "HttpEndpoint.DestinationException: Received the following response from the \
             endpoint destination. 503: slow down"
        );
        let long = vec![b'z'; 10_000];
        let e = check_response(500, &HeaderMap::new(), &long, "r").unwrap_err();
        let SinkError::Destination { message, .. } = e else {
            panic!("not a destination error")
        };
        assert!(message.ends_with(&"z".repeat(ERROR_MESSAGE_CHARS_MAX)));
        assert!(!message.ends_with(&"z".repeat(ERROR_MESSAGE_CHARS_MAX + 1)));
    }

    #[test]
    fn common_attributes_header_is_ascii_json() {
        let json = serde_json::json!({"k": "é😀\"", "ü": ""}).to_string();
        let ascii = ascii_json(&json);
        assert!(ascii.is_ascii(), "{ascii}");
        assert!(ascii.contains("\\u00e9\\ud83d\\ude00"), "{ascii}");
        let back: serde_json::Value = serde_json::from_str(&ascii).unwrap();
        assert_eq!(back.to_string(), json);
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

    /// Golden values: `X-Amz-Firehose-Request-Id` is what a receiver deduplicates on, so it
    /// must not change between versions for the same batch; a change here is a format change.
    #[test]
    fn golden_request_ids_are_pinned() {
        let identity = BatchIdentity {
            stream: "orders".into(),
            incarnation: "4f1c".into(),
            destination_id: "destinationId-000000000001".into(),
            first_lsn: 10,
            last_lsn: 19,
        };
        assert_eq!(
            part_request_id(&identity, 0),
            "4ce4c3fe-80c5-8cc7-a478-60472902e15b"
        );
        assert_eq!(
            part_request_id(&identity, 1),
            "25285f78-dec6-81a0-8158-456d4da26866"
        );
    }
}
