//! A Firehose HTTP endpoint receiver: the receiving side of the HTTP endpoint delivery protocol
//! (request and response format 1.0), strict about what Firehose sends, with failure injection.
//!
//! [`HttpReceiver::start`] serves real HTTP/1.1 on `127.0.0.1:<free port>` from its own thread
//! and tokio runtime, so synchronous tests and `#[tokio::test]`s can both use it. It is stopped
//! when dropped.
//!
//! # What a request must look like
//!
//! ```text
//! POST <any path>
//! X-Amz-Firehose-Protocol-Version: 1.0
//! X-Amz-Firehose-Request-Id: <id>                      (equal to the body's requestId)
//! X-Amz-Firehose-Source-Arn: arn:...
//! X-Amz-Firehose-Access-Key: <key>                     (required when the receiver has one)
//! X-Amz-Firehose-Common-Attributes: {"commonAttributes":{"k":"v",...}}      (optional)
//! Content-Type: application/json
//! Content-Encoding: gzip                               (optional; no other encoding)
//!
//! {"requestId":"<id>","timestamp":<ms>,"records":[{"data":"<base64>"},...]}   (1..=10000 records)
//! ```
//!
//! Unknown body fields are refused, `data` must be padded standard base64 of at most 1,024,000
//! bytes. A request that breaks a rule is answered 400 with an `errorMessage` saying which (401
//! for a missing or wrong access key, 405 for another method, 413 for a body over
//! [`ReceiverOptions::max_body_bytes`]), and is recorded with that reason in
//! [`ReceivedRequest::rejection`].
//!
//! # What it answers
//!
//! `200`, `Content-Type: application/json`, `{"requestId":"<id>","timestamp":<ms>}`; failures add
//! `"errorMessage"`. The replies can be scripted per request ([`HttpReceiver::fail_next`],
//! [`HttpReceiver::accept_then_fail_next`], [`HttpReceiver::raw_next`],
//! [`HttpReceiver::drop_next`], [`HttpReceiver::delay_next`]): scripted replies are used in
//! order, one per request, then the receiver accepts again.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::serve::ServerThread;

/// The largest record Firehose accepts (1,000 KiB), and so the largest `data` a request carries.
pub const RECORD_BYTES_MAX: usize = 1_024_000;

/// Records per request, at most (Firehose's limit).
pub const RECORDS_PER_REQUEST_MAX: usize = 10_000;

/// What the receiver checks beyond the protocol itself.
#[derive(Clone, Debug)]
pub struct ReceiverOptions {
    /// When set, every request must carry `X-Amz-Firehose-Access-Key` with exactly this value;
    /// other requests are answered 401.
    pub access_key: Option<String>,
    /// The largest body accepted, counted both as sent and after gunzip: larger bodies are
    /// answered 413 (the client may see the connection close instead, as the rest of the body is
    /// not read). Default 160 MiB: a 64 MiB buffer of data, base64-encoded, with room to spare.
    pub max_body_bytes: usize,
}

impl Default for ReceiverOptions {
    fn default() -> ReceiverOptions {
        ReceiverOptions {
            access_key: None,
            max_body_bytes: 160 << 20,
        }
    }
}

/// A scripted answer for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Check the request; answer 200 if it conforms (the default when nothing is scripted).
    Accept,
    /// Check the request, then answer `status` with `{"requestId","timestamp","errorMessage"}`
    /// without keeping the records (the endpoint refused them).
    Fail {
        /// The HTTP status to answer.
        status: u16,
        /// The `errorMessage` to send.
        message: String,
    },
    /// Check and keep the request's records (the endpoint processed them), then answer 500 with
    /// an `errorMessage`: the sender retries and the endpoint sees the same records twice.
    AcceptThenFail {
        /// The `errorMessage` to send.
        message: String,
    },
    /// Answer exactly this, whatever the request (a non-conforming endpoint).
    Raw(RawReply),
    /// Read the request, then close the connection without answering.
    Drop,
}

/// A response sent verbatim by [`Reply::Raw`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawReply {
    /// The HTTP status.
    pub status: u16,
    /// Headers to send (name, value), `Content-Type` included when wanted.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RawReply {
    /// A raw reply with a `Content-Type: application/json` header.
    #[must_use]
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> RawReply {
        RawReply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }
}

/// One request as the receiver saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// The HTTP method.
    pub method: String,
    /// The path and query of the request target, verbatim.
    pub path_and_query: String,
    /// Every header (names lowercase, values as sent), in arrival order.
    pub headers: Vec<(String, String)>,
    /// The `X-Amz-Firehose-Request-Id` header, if any.
    pub request_id: Option<String>,
    /// The body's `timestamp`, if the body parsed.
    pub timestamp: Option<u64>,
    /// The decoded records, if the body parsed.
    pub records: Vec<Vec<u8>>,
    /// The parsed `X-Amz-Firehose-Common-Attributes`, if the header was sent.
    pub common_attributes: Option<BTreeMap<String, String>>,
    /// Body bytes as sent (compressed when `Content-Encoding: gzip`).
    pub wire_bytes: usize,
    /// The body after gunzip (the JSON text), when it decoded.
    pub body: Option<Vec<u8>>,
    /// The status answered (0 when the connection was dropped without an answer).
    pub status: u16,
    /// Whether the receiver kept the records (a 200, or [`Reply::AcceptThenFail`]).
    pub processed: bool,
    /// Why a request was refused as not conforming to the protocol, if it was.
    pub rejection: Option<String>,
}

impl ReceivedRequest {
    /// The first value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One scripted reply with the delay before it is sent.
#[derive(Clone, Debug)]
struct Scripted {
    reply: Reply,
    delay: Duration,
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Scripted>,
    requests: Vec<ReceivedRequest>,
}

#[derive(Debug)]
struct Shared {
    options: ReceiverOptions,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test thread that panicked while holding the lock leaves the data usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running receiver (see the module documentation). Stops when dropped.
#[derive(Debug)]
pub struct HttpReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Stops the server when dropped.
    _server: ServerThread,
}

/// The receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// Binding the listening socket or building the runtime failed.
    #[error("http receiver: {0}")]
    Io(#[from] std::io::Error),
}

impl HttpReceiver {
    /// Starts a receiver with `options` on a free port of 127.0.0.1.
    ///
    /// # Errors
    /// [`ReceiverError::Io`] when the socket cannot be bound or the runtime cannot be built.
    pub fn start(options: ReceiverOptions) -> Result<HttpReceiver, ReceiverError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("http-receiver")
            .build()?;
        let shared = Arc::new(Shared {
            options,
            state: Mutex::new(State::default()),
        });
        let serving = Arc::clone(&shared);
        let server = ServerThread::spawn("http-receiver".into(), runtime, move |stop| {
            serve(listener, serving, stop)
        })?;
        Ok(HttpReceiver {
            addr,
            shared,
            _server: server,
        })
    }

    /// Starts a receiver with the default options (no access key).
    ///
    /// # Errors
    /// As [`HttpReceiver::start`].
    pub fn start_default() -> Result<HttpReceiver, ReceiverError> {
        HttpReceiver::start(ReceiverOptions::default())
    }

    /// The base URL, `http://127.0.0.1:<port>/`; any path may be appended.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The listening address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers the next `n` requests with `status` and an `errorMessage` of `message`, without
    /// keeping their records.
    pub fn fail_next(&self, n: usize, status: u16, message: &str) {
        self.script(
            n,
            Reply::Fail {
                status,
                message: message.into(),
            },
        );
    }

    /// Keeps the records of the next `n` conforming requests, then answers them 500.
    pub fn accept_then_fail_next(&self, n: usize, message: &str) {
        self.script(
            n,
            Reply::AcceptThenFail {
                message: message.into(),
            },
        );
    }

    /// Answers the next `n` requests with `raw`, whatever they are.
    pub fn raw_next(&self, n: usize, raw: &RawReply) {
        self.script(n, Reply::Raw(raw.clone()));
    }

    /// Reads the next `n` requests, then closes their connections without answering.
    pub fn drop_next(&self, n: usize) {
        self.script(n, Reply::Drop);
    }

    /// Accepts the next `n` requests, but only after `delay`.
    pub fn delay_next(&self, n: usize, delay: Duration) {
        self.script_delayed(n, Reply::Accept, delay);
    }

    /// Queues `reply` for the next `n` requests (after those already scripted).
    pub fn script(&self, n: usize, reply: Reply) {
        self.script_delayed(n, reply, Duration::ZERO);
    }

    /// Queues `reply`, sent after `delay`, for the next `n` requests.
    pub fn script_delayed(&self, n: usize, reply: Reply, delay: Duration) {
        let mut state = self.shared.lock();
        for _ in 0..n {
            state.script.push_back(Scripted {
                reply: reply.clone(),
                delay,
            });
        }
    }

    /// Drops the replies still scripted: from now on requests are accepted (an endpoint that
    /// comes back).
    pub fn clear_script(&self) {
        self.shared.lock().script.clear();
    }

    /// Every request received so far, in arrival order.
    #[must_use]
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The records of the requests answered 200, in order.
    #[must_use]
    pub fn records_accepted(&self) -> Vec<Vec<u8>> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.status == 200 && r.processed)
            .flat_map(|r| r.records.iter().cloned())
            .collect()
    }

    /// The records the receiver kept (answered 200 or [`Reply::AcceptThenFail`]), in order:
    /// what an endpoint without deduplication would hold, duplicates included.
    #[must_use]
    pub fn records_processed(&self) -> Vec<Vec<u8>> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.processed)
            .flat_map(|r| r.records.iter().cloned())
            .collect()
    }

    /// The distinct `X-Amz-Firehose-Request-Id`s seen, in order of first arrival.
    #[must_use]
    pub fn distinct_request_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for request in &self.shared.lock().requests {
            if let Some(id) = &request.request_id {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        ids
    }

    /// The requests refused as not conforming to the protocol, with the reason.
    #[must_use]
    pub fn rejections(&self) -> Vec<String> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter_map(|r| r.rejection.clone())
            .collect()
    }

    /// Forgets the requests received so far (the script is kept).
    pub fn clear(&self) {
        self.shared.lock().requests.clear();
    }
}

/// Accepts connections until `stop` fires; each connection runs on its own task. Dropping the
/// runtime afterwards ends the connections still open.
async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>, stop: oneshot::Receiver<()>) {
    crate::serve::serve_http(listener, stop, move |request| {
        let shared = Arc::clone(&shared);
        async move { handle(&shared, request).await }
    })
    .await;
}

/// Why a connection is closed without an answer ([`Reply::Drop`]).
#[derive(Debug, thiserror::Error)]
#[error("reply dropped on purpose")]
struct Dropped;

type Answer = Result<Response<Full<Bytes>>, Dropped>;

async fn handle(shared: &Shared, request: Request<Incoming>) -> Answer {
    let scripted = shared.lock().script.pop_front();
    let Scripted { reply, delay } = scripted.unwrap_or(Scripted {
        reply: Reply::Accept,
        delay: Duration::ZERO,
    });

    let mut seen = ReceivedRequest {
        method: request.method().to_string(),
        path_and_query: request
            .uri()
            .path_and_query()
            .map_or_else(String::new, |p| p.as_str().to_owned()),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        request_id: None,
        timestamp: None,
        records: Vec::new(),
        common_attributes: None,
        wire_bytes: 0,
        body: None,
        status: 0,
        processed: false,
        rejection: None,
    };
    let checked = check(&shared.options, request, &mut seen).await;

    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let request_id = seen.request_id.clone().unwrap_or_default();
    let answer = match (reply, checked) {
        (Reply::Drop, _) => {
            seen.status = 0;
            Err(Dropped)
        }
        (Reply::Raw(raw), _) => {
            seen.status = raw.status;
            Ok(raw_response(&raw))
        }
        (_, Err((status, reason))) => {
            seen.status = status.as_u16();
            seen.rejection = Some(reason.clone());
            Ok(json_response(status, &request_id, Some(&reason)))
        }
        (Reply::Accept, Ok(())) => {
            seen.status = 200;
            seen.processed = true;
            Ok(json_response(StatusCode::OK, &request_id, None))
        }
        (Reply::AcceptThenFail { message }, Ok(())) => {
            seen.status = 500;
            seen.processed = true;
            Ok(json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &request_id,
                Some(&message),
            ))
        }
        (Reply::Fail { status, message }, Ok(())) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            seen.status = status.as_u16();
            Ok(json_response(status, &request_id, Some(&message)))
        }
    };
    shared.lock().requests.push(seen);
    answer
}

/// The body as Firehose sends it; anything else is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Body {
    request_id: String,
    timestamp: u64,
    records: Vec<BodyRecord>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyRecord {
    data: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CommonAttributes {
    common_attributes: BTreeMap<String, String>,
}

type Refusal = (StatusCode, String);

fn refuse<T>(status: StatusCode, reason: impl Into<String>) -> Result<T, Refusal> {
    Err((status, reason.into()))
}

/// Checks `request` against the protocol, filling `seen` as far as it gets.
async fn check(
    options: &ReceiverOptions,
    request: Request<Incoming>,
    seen: &mut ReceivedRequest,
) -> Result<(), Refusal> {
    let (parts, body) = request.into_parts();
    let header = |name: &str| -> Result<Option<&str>, Refusal> {
        let mut values = parts.headers.get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            return refuse(StatusCode::BAD_REQUEST, format!("{name} sent twice"));
        }
        match first.map(HeaderValue::to_str) {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(_)) => refuse(StatusCode::BAD_REQUEST, format!("{name} is not ASCII")),
        }
    };
    seen.request_id = header("x-amz-firehose-request-id")?.map(str::to_owned);

    // Read the body first (bounded), so that every refusal below reaches the client.
    let raw = match Limited::new(body, options.max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "body not read (over {} bytes?): {e}",
                    options.max_body_bytes
                ),
            )
        }
    };
    seen.wire_bytes = raw.len();

    if parts.method != Method::POST {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "only POST is accepted");
    }
    if header("x-amz-firehose-protocol-version")? != Some("1.0") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "X-Amz-Firehose-Protocol-Version must be 1.0",
        );
    }
    let Some(request_id) = seen.request_id.clone().filter(|id| !id.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, "X-Amz-Firehose-Request-Id missing");
    };
    match header("x-amz-firehose-source-arn")? {
        Some(arn) if arn.starts_with("arn:") => {}
        _ => return refuse(StatusCode::BAD_REQUEST, "X-Amz-Firehose-Source-Arn missing"),
    }
    if header(CONTENT_TYPE.as_str())? != Some("application/json") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/json",
        );
    }
    if let Some(expected) = &options.access_key {
        let sent = parts.headers.get("x-amz-firehose-access-key");
        if sent.map(HeaderValue::as_bytes) != Some(expected.as_bytes()) {
            return refuse(StatusCode::UNAUTHORIZED, "missing or wrong access key");
        }
    }
    if let Some(attributes) = header("x-amz-firehose-common-attributes")? {
        match serde_json::from_str::<CommonAttributes>(attributes) {
            Ok(parsed) => seen.common_attributes = Some(parsed.common_attributes),
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("X-Amz-Firehose-Common-Attributes: {e}"),
                )
            }
        }
    }

    let text = match header(CONTENT_ENCODING.as_str())? {
        None => raw.to_vec(),
        Some("gzip") => gunzip(&raw, options.max_body_bytes)?,
        Some(other) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("Content-Encoding {other:?} is not gzip"),
            )
        }
    };
    let parsed: Result<Body, _> = serde_json::from_slice(&text);
    seen.body = Some(text);
    let body = match parsed {
        Ok(body) => body,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    seen.timestamp = Some(body.timestamp);
    if body.request_id != request_id {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "body requestId {:?} differs from the header's {request_id:?}",
                body.request_id
            ),
        );
    }
    if body.records.is_empty() || body.records.len() > RECORDS_PER_REQUEST_MAX {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("{} records: 1 to 10000 allowed", body.records.len()),
        );
    }
    let mut records = Vec::with_capacity(body.records.len());
    for (i, record) in body.records.iter().enumerate() {
        match base64::engine::general_purpose::STANDARD.decode(&record.data) {
            Ok(data) if data.len() <= RECORD_BYTES_MAX => records.push(data),
            Ok(data) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("record {i}: {} bytes, over {RECORD_BYTES_MAX}", data.len()),
                )
            }
            Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("record {i}: base64: {e}")),
        }
    }
    seen.records = records;
    Ok(())
}

/// Gunzips `raw`, refusing output over `limit` bytes.
fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(raw).take(limit as u64 + 1);
    if let Err(e) = decoder.read_to_end(&mut out) {
        return refuse(StatusCode::BAD_REQUEST, format!("gzip: {e}"));
    }
    if out.len() > limit {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("gunzipped body over {limit} bytes"),
        );
    }
    Ok(out)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A protocol response: `{"requestId","timestamp"}`, plus `errorMessage` on failure.
fn json_response(
    status: StatusCode,
    request_id: &str,
    error_message: Option<&str>,
) -> Response<Full<Bytes>> {
    let mut body = serde_json::json!({ "requestId": request_id, "timestamp": now_ms() });
    if let Some(message) = error_message {
        body["errorMessage"] = serde_json::Value::from(message);
    }
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn raw_response(raw: &RawReply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(raw.body.clone())));
    *response.status_mut() = StatusCode::from_u16(raw.status).unwrap_or(StatusCode::OK);
    for (name, value) in &raw.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::Write;
    use std::net::TcpStream;

    /// Sends one raw HTTP/1.1 request and returns the status line and body.
    fn send(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = format!(
            "POST /in HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }

    const GOOD: &[(&str, &str)] = &[
        ("x-amz-firehose-protocol-version", "1.0"),
        ("x-amz-firehose-request-id", "r-1"),
        (
            "x-amz-firehose-source-arn",
            "arn:aws:firehose:us-east-1:1:deliverystream/s",
        ),
        ("content-type", "application/json"),
    ];

    #[test]
    fn accepts_a_conforming_request_and_refuses_a_mismatched_id() {
        let receiver = HttpReceiver::start_default().unwrap();
        let body = br#"{"requestId":"r-1","timestamp":5,"records":[{"data":"aGk="}]}"#;
        let (status, answer) = send(receiver.addr(), GOOD, body);
        assert_eq!(status, 200, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["requestId"], "r-1");
        assert!(answer["timestamp"].is_u64());
        assert_eq!(receiver.records_accepted(), vec![b"hi".to_vec()]);

        let body = br#"{"requestId":"r-2","timestamp":5,"records":[{"data":"aGk="}]}"#;
        let (status, _) = send(receiver.addr(), GOOD, body);
        assert_eq!(status, 400);
        assert_eq!(receiver.rejections().len(), 1);
        assert_eq!(receiver.records_accepted().len(), 1);
    }

    #[test]
    fn scripted_failures_come_in_order_then_accept() {
        let receiver = HttpReceiver::start_default().unwrap();
        receiver.fail_next(1, 503, "busy");
        receiver.accept_then_fail_next(1, "oops");
        let body = br#"{"requestId":"r-1","timestamp":5,"records":[{"data":""}]}"#;
        let (first, text) = send(receiver.addr(), GOOD, body);
        assert_eq!(first, 503);
        assert!(text.contains("\"errorMessage\":\"busy\""), "{text}");
        assert_eq!(send(receiver.addr(), GOOD, body).0, 500);
        assert_eq!(send(receiver.addr(), GOOD, body).0, 200);
        assert_eq!(receiver.records_accepted().len(), 1);
        assert_eq!(receiver.records_processed().len(), 2);
        assert_eq!(receiver.distinct_request_ids(), vec!["r-1".to_owned()]);
    }

    #[test]
    fn access_key_is_enforced() {
        let receiver = HttpReceiver::start(ReceiverOptions {
            access_key: Some("k".into()),
            ..ReceiverOptions::default()
        })
        .unwrap();
        let body = br#"{"requestId":"r-1","timestamp":5,"records":[{"data":""}]}"#;
        assert_eq!(send(receiver.addr(), GOOD, body).0, 401);
        let mut with_key = GOOD.to_vec();
        with_key.push(("x-amz-firehose-access-key", "k"));
        assert_eq!(send(receiver.addr(), &with_key, body).0, 200);
    }
}
