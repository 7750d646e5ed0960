//! Lambda functions for the data-transformation tests, served by a real HTTP server on
//! `127.0.0.1` in two ways:
//!
//! - the Lambda **Invoke API**: `POST /2015-03-31/functions/<name or ARN>/invocations`, as
//!   hydrant calls it when a Lambda endpoint is configured. The request must carry an
//!   `Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/lambda/aws4_request, ...`
//!   header (the signature itself is not verified: this is a stand-in, not Lambda). Answers are
//!   shaped as Lambda's: the function's JSON with 200; a function error as 200 with
//!   `X-Amz-Function-Error: Unhandled` and `{"errorMessage","errorType"}`; an unknown function as
//!   404 with `x-amzn-ErrorType: ResourceNotFoundException`; throttling as 429
//!   `TooManyRequestsException`.
//! - **plain URLs**: `POST /url/<name>`, no authentication, the same answers.
//!
//! Functions are Rust closures registered by name ([`LambdaServer::register`]); a few ready-made
//! ones are registered by [`LambdaServer::start`] (see [`functions`]). Every invocation is
//! recorded (function, route, event, headers) for the tests to inspect.
//!
//! The server runs on its own Tokio runtime thread, so synchronous tests can use it as well as
//! async ones; it stops when the [`LambdaServer`] is dropped.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::serve::ServerThread;

/// The account id in the ARNs [`LambdaServer::arn`] makes.
pub const ACCOUNT_ID: &str = "123456789012";

/// The region in the ARNs [`LambdaServer::arn`] makes.
pub const REGION: &str = "us-east-1";

/// The largest request body the server reads (Lambda's own cap is 6 MB; a little more so that a
/// client that oversteps is seen doing so rather than cut off).
const REQUEST_BYTES_MAX: usize = 8 << 20;

/// What a function answers.
#[derive(Clone, Debug)]
pub enum FunctionReply {
    /// Success: this JSON is the response body (HTTP 200).
    Json(Value),
    /// Success with a body that is sent as is, valid JSON or not (HTTP 200).
    Raw(Vec<u8>),
    /// The function failed: HTTP 200, `X-Amz-Function-Error: Unhandled`, body
    /// `{"errorMessage": ..., "errorType": ...}`, as Lambda answers for an uncaught exception.
    FunctionError {
        /// `errorType` (`"Exception"`, `"Sandbox.Timedout"`, ...).
        error_type: String,
        /// `errorMessage`.
        error_message: String,
    },
    /// Lambda refused the call: the HTTP status, `x-amzn-ErrorType: <error_type>` and body
    /// `{"Type": "User", "message": ...}` (429 `TooManyRequestsException` is throttling).
    ServiceError {
        /// The HTTP status.
        status: u16,
        /// The error type (`TooManyRequestsException`, `ServiceException`, ...).
        error_type: String,
        /// The message.
        message: String,
    },
    /// Answer `reply` after waiting `delay` (without blocking the server).
    Delayed(Duration, Box<FunctionReply>),
}

impl FunctionReply {
    /// A success whose body is `{"records": records}`.
    #[must_use]
    pub fn records(records: Vec<Value>) -> FunctionReply {
        FunctionReply::Json(json!({ "records": records }))
    }

    /// Lambda's throttling answer: 429 `TooManyRequestsException`.
    #[must_use]
    pub fn throttled() -> FunctionReply {
        FunctionReply::ServiceError {
            status: 429,
            error_type: "TooManyRequestsException".into(),
            message: "Rate Exceeded.".into(),
        }
    }
}

/// A registered function: the event in, the reply out.
pub type Function = Arc<dyn Fn(Value) -> FunctionReply + Send + Sync>;

/// How a function was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /2015-03-31/functions/<name>/invocations`.
    InvokeApi,
    /// `POST /url/<name>`.
    Url,
}

/// One recorded invocation.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The function name (taken out of an ARN when the path carried one).
    pub function: String,
    /// How it was reached.
    pub route: Route,
    /// The request body, parsed.
    pub event: Value,
    /// The request headers, names lower-case, in the order received.
    pub headers: Vec<(String, String)>,
}

impl Invocation {
    /// The first value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::serve::header(&self.headers, name)
    }

    /// The event's records: `(recordId, decoded data)` in order.
    #[must_use]
    pub fn records(&self) -> Vec<(String, Vec<u8>)> {
        event_records(&self.event)
            .into_iter()
            .map(|r| (r.record_id, r.data))
            .collect()
    }
}

/// One record of a transformation event, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// `recordId`.
    pub record_id: String,
    /// `approximateArrivalTimestamp` (ms), 0 when absent.
    pub approximate_arrival_timestamp: u64,
    /// `data`, base64-decoded (empty when absent or not base64).
    pub data: Vec<u8>,
}

/// The records of a Firehose transformation event, decoded; records without a string
/// `recordId` are skipped.
#[must_use]
pub fn event_records(event: &Value) -> Vec<EventRecord> {
    let Some(records) = event.get("records").and_then(Value::as_array) else {
        return Vec::new();
    };
    records
        .iter()
        .filter_map(|r| {
            Some(EventRecord {
                record_id: r.get("recordId")?.as_str()?.to_owned(),
                approximate_arrival_timestamp: r
                    .get("approximateArrivalTimestamp")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                data: r
                    .get("data")
                    .and_then(Value::as_str)
                    .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A reply record: `{"recordId", "result", "data"}` with `data` base64-encoded.
#[must_use]
pub fn reply_record(record_id: &str, result: &str, data: &[u8]) -> Value {
    json!({
        "recordId": record_id,
        "result": result,
        "data": base64::engine::general_purpose::STANDARD.encode(data),
    })
}

/// Ready-made functions. [`LambdaServer::start`] registers each of them under its own name
/// (all but [`functions::flaky`], which takes an argument).
pub mod functions {
    use super::{event_records, reply_record, FunctionReply};
    use serde_json::Value;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Every record `Ok`, its data upper-cased (ASCII).
    pub fn uppercase(event: Value) -> FunctionReply {
        FunctionReply::records(
            event_records(&event)
                .iter()
                .map(|r| reply_record(&r.record_id, "Ok", &r.data.to_ascii_uppercase()))
                .collect(),
        )
    }

    /// Records at even positions (0, 2, ...) of the event `Dropped`, the others `Ok` unchanged.
    pub fn drop_even(event: Value) -> FunctionReply {
        FunctionReply::records(
            event_records(&event)
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let result = if i % 2 == 0 { "Dropped" } else { "Ok" };
                    reply_record(&r.record_id, result, &r.data)
                })
                .collect(),
        )
    }

    /// Records whose data contains `FAIL` are `ProcessingFailed`, the others `Ok` unchanged.
    pub fn fail_marked(event: Value) -> FunctionReply {
        FunctionReply::records(
            event_records(&event)
                .iter()
                .map(|r| {
                    let failed = r.data.windows(4).any(|w| w == b"FAIL");
                    let result = if failed { "ProcessingFailed" } else { "Ok" };
                    reply_record(&r.record_id, result, &r.data)
                })
                .collect(),
        )
    }

    /// Every record `Ok` but the last one, which is left out of the reply.
    pub fn missing_id(event: Value) -> FunctionReply {
        let records = event_records(&event);
        let keep = records.len().saturating_sub(1);
        FunctionReply::records(
            records[..keep]
                .iter()
                .map(|r| reply_record(&r.record_id, "Ok", &r.data))
                .collect(),
        )
    }

    /// Every record `Ok`, and the first one a second time.
    pub fn duplicate_id(event: Value) -> FunctionReply {
        let records = event_records(&event);
        let mut reply: Vec<Value> = records
            .iter()
            .map(|r| reply_record(&r.record_id, "Ok", &r.data))
            .collect();
        if let Some(first) = records.first() {
            reply.push(reply_record(&first.record_id, "Ok", &first.data));
        }
        FunctionReply::records(reply)
    }

    /// A body that is not JSON.
    pub fn bad_json(_event: Value) -> FunctionReply {
        FunctionReply::Raw(b"{\"records\": [not json".to_vec())
    }

    /// Every record `Ok` with `+lambda` appended to its data.
    pub fn append_suffix(event: Value) -> FunctionReply {
        FunctionReply::records(
            event_records(&event)
                .iter()
                .map(|r| {
                    let mut data = r.data.clone();
                    data.extend_from_slice(b"+lambda");
                    reply_record(&r.record_id, "Ok", &data)
                })
                .collect(),
        )
    }

    /// A function that fails (a function error, `Unhandled`) on its first `n` invocations and
    /// behaves as [`uppercase`] afterwards.
    pub fn flaky(n: usize) -> impl Fn(Value) -> FunctionReply + Send + Sync + 'static {
        let calls = AtomicUsize::new(0);
        move |event| {
            if calls.fetch_add(1, Ordering::SeqCst) < n {
                FunctionReply::FunctionError {
                    error_type: "Exception".into(),
                    error_message: "flaky: not this time".into(),
                }
            } else {
                uppercase(event)
            }
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum LambdaServerError {
    /// Binding the listening socket or building the runtime failed.
    #[error("lambda test server: {0}")]
    Io(#[from] std::io::Error),
}

struct State {
    functions: Mutex<BTreeMap<String, Function>>,
    invocations: Mutex<Vec<Invocation>>,
    requests: AtomicUsize,
}

/// Locks `mutex`, taking the data even if a panicking test thread poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running Lambda stand-in; stopped when dropped.
pub struct LambdaServer {
    addr: SocketAddr,
    state: Arc<State>,
    /// Stops the server when dropped.
    _server: ServerThread,
}

impl std::fmt::Debug for LambdaServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LambdaServer {
    /// Starts the server on a free `127.0.0.1` port, with the ready-made functions registered:
    /// `uppercase`, `drop_even`, `fail_marked`, `missing_id`, `duplicate_id`, `bad_json`,
    /// `append_suffix`.
    ///
    /// # Errors
    /// The socket or the runtime could not be set up.
    pub fn start() -> Result<LambdaServer, LambdaServerError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lambda-test-server")
            .enable_all()
            .build()?;
        let state = Arc::new(State {
            functions: Mutex::new(BTreeMap::new()),
            invocations: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
        });
        let serving = Arc::clone(&state);
        let thread = ServerThread::spawn("lambda-test-server".into(), runtime, move |stop| {
            serve(listener, serving, stop)
        })?;
        let server = LambdaServer {
            addr,
            state,
            _server: thread,
        };
        server.register("uppercase", functions::uppercase);
        server.register("drop_even", functions::drop_even);
        server.register("fail_marked", functions::fail_marked);
        server.register("missing_id", functions::missing_id);
        server.register("duplicate_id", functions::duplicate_id);
        server.register("bad_json", functions::bad_json);
        server.register("append_suffix", functions::append_suffix);
        Ok(server)
    }

    /// Registers (or replaces) function `name`.
    pub fn register(
        &self,
        name: &str,
        function: impl Fn(Value) -> FunctionReply + Send + Sync + 'static,
    ) {
        lock(&self.state.functions).insert(name.to_owned(), Arc::new(function));
    }

    /// The server's address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Invoke API base URL (`http://127.0.0.1:<port>`).
    #[must_use]
    pub fn invoke_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The plain URL of function `name`.
    #[must_use]
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/url/{name}", self.addr)
    }

    /// An ARN for function `name` (`arn:aws:lambda:us-east-1:123456789012:function:<name>`).
    #[must_use]
    pub fn arn(name: &str) -> String {
        format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}")
    }

    /// Every invocation so far, in arrival order.
    #[must_use]
    pub fn invocations(&self) -> Vec<Invocation> {
        lock(&self.state.invocations).clone()
    }

    /// The invocations of function `name`, in arrival order.
    #[must_use]
    pub fn invocations_of(&self, name: &str) -> Vec<Invocation> {
        lock(&self.state.invocations)
            .iter()
            .filter(|i| i.function == name)
            .cloned()
            .collect()
    }

    /// Forgets the recorded invocations.
    pub fn clear_invocations(&self) {
        lock(&self.state.invocations).clear();
    }

    /// HTTP requests received so far, including refused ones (bad path, no signature).
    #[must_use]
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    crate::serve::serve_http(listener, stopped, move |request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(handle(&state, request).await) }
    })
    .await;
}

fn response(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .header("x-amzn-requestid", "00000000-0000-4000-8000-000000000000");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Lambda's error answer: the status, `x-amzn-ErrorType` and `{"Type":"User","message":...}`.
fn service_error(status: u16, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({ "Type": "User", "message": message }).to_string();
    response(
        status,
        &[("x-amzn-errortype", error_type)],
        body.into_bytes(),
    )
}

/// Decodes `%XX` escapes (the function name in an Invoke path is URL-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| char::from(b).to_digit(16);
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                // Two hex digits make at most 0xff.
                out.push(((high << 4) | low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The function name in an Invoke path segment: a name, `name:qualifier`, or an ARN
/// (`arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`).
fn function_name(segment: &str) -> String {
    let decoded = percent_decode(segment);
    let parts: Vec<&str> = decoded.split(':').collect();
    if parts.first() == Some(&"arn") && parts.len() >= 7 {
        return parts[6].to_owned();
    }
    parts.first().copied().unwrap_or_default().to_owned()
}

/// A SigV4 `Authorization` header for service `lambda`: the algorithm, then a credential scope
/// `<key>/<yyyymmdd>/<region>/lambda/aws4_request`, signed headers and a signature.
fn signed_for_lambda(authorization: &str) -> bool {
    let Some(rest) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return false;
    };
    let Some(credential) = rest
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("Credential="))
    else {
        return false;
    };
    let scope: Vec<&str> = credential.split('/').collect();
    scope.len() == 5
        && !scope[0].is_empty()
        && scope[1].len() == 8
        && scope[1].bytes().all(|b| b.is_ascii_digit())
        && !scope[2].is_empty()
        && scope[3] == "lambda"
        && scope[4] == "aws4_request"
        && rest.contains("SignedHeaders=")
        && rest.contains("Signature=")
}

async fn handle(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let path = request.uri().path().to_owned();
    let route = if let Some(rest) = path.strip_prefix("/2015-03-31/functions/") {
        rest.strip_suffix("/invocations")
            .map(|name| (Route::InvokeApi, function_name(name)))
    } else {
        path.strip_prefix("/url/")
            .map(|name| (Route::Url, percent_decode(name)))
    };
    let Some((route, function)) = route else {
        return service_error(404, "UnknownOperationException", "Unknown operation");
    };
    if request.method() != hyper::Method::POST {
        return service_error(405, "MethodNotAllowedException", "POST only");
    }
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if route == Route::InvokeApi {
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if authorization.is_empty() {
            return service_error(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            );
        }
        if !signed_for_lambda(authorization) {
            return service_error(
                403,
                "InvalidSignatureException",
                "The request signature is not a SigV4 signature for service lambda.",
            );
        }
    }
    let body = match Limited::new(request.into_body(), REQUEST_BYTES_MAX)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return service_error(
                413,
                "RequestTooLargeException",
                "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
            )
        }
    };
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return service_error(
            400,
            "InvalidRequestContentException",
            "Could not parse request body into json",
        );
    };
    lock(&state.invocations).push(Invocation {
        function: function.clone(),
        route,
        event: event.clone(),
        headers,
    });
    let registered = lock(&state.functions).get(&function).cloned();
    let Some(registered) = registered else {
        return service_error(
            404,
            "ResourceNotFoundException",
            &format!("Function not found: {}", LambdaServer::arn(&function)),
        );
    };
    let mut reply = registered(event);
    loop {
        match reply {
            FunctionReply::Delayed(delay, next) => {
                tokio::time::sleep(delay).await;
                reply = *next;
            }
            FunctionReply::Json(value) => {
                return response(
                    200,
                    &[("x-amz-executed-version", "$LATEST")],
                    value.to_string().into_bytes(),
                )
            }
            FunctionReply::Raw(body) => {
                return response(200, &[("x-amz-executed-version", "$LATEST")], body)
            }
            FunctionReply::FunctionError {
                error_type,
                error_message,
            } => {
                let body = json!({ "errorMessage": error_message, "errorType": error_type });
                return response(
                    200,
                    &[
                        ("x-amz-executed-version", "$LATEST"),
                        ("x-amz-function-error", "Unhandled"),
                    ],
                    body.to_string().into_bytes(),
                );
            }
            FunctionReply::ServiceError {
                status,
                error_type,
                message,
            } => return service_error(status, &error_type, &message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_paths() {
        assert_eq!(function_name("uppercase"), "uppercase");
        assert_eq!(function_name("uppercase:live"), "uppercase");
        assert_eq!(
            function_name(
                "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aupper%3A%24LATEST"
            ),
            "upper"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:upper"),
            "upper"
        );
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn sigv4_scope_check() {
        assert!(signed_for_lambda(
            "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/lambda/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abcd"
        ));
        assert!(!signed_for_lambda(
            "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/firehose/aws4_request, \
             SignedHeaders=host, Signature=abcd"
        ));
        assert!(!signed_for_lambda("Bearer x"));
    }
}
