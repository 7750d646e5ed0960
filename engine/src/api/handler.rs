//! The HTTP handler: routing, body limits, SigV4, dispatch to the engine.
//!
//! A request on its way in, in order (nothing unauthenticated can hold more than its share):
//! 1. With access keys configured, the signature's headers are checked (key known, date within
//!    5 minutes, scope, `host` signed) before a byte of the body is read; a refusal answers at
//!    once and closes the connection.
//! 2. A `Content-Length` over [`BODY_BYTES_MAX`] is refused.
//! 3. The body's bytes are reserved from the daemon-wide body memory
//!    (`limits.body_memory_max_bytes`): all of a declared length at once, a chunked body in
//!    steps as it arrives. With no room the request waits, up to its deadline, then answers
//!    ServiceUnavailableException (503): held body memory never grows past the limit.
//! 4. The body is gathered into one buffer of its declared length as it arrives, before its
//!    deadline: `limits.body_timeout_secs` plus its length at `limits.body_min_bytes_per_sec`.
//!    Past it: RequestTimeoutException (408) and the connection is closed.
//! 5. With keys, the signature over the whole request; then decoding and dispatch. The
//!    reservation is given back when the reply is ready.
//!
//! `/metrics` wants `Authorization: Bearer <limits.metrics_token>` when a token is configured,
//! else a SigV4 signature when keys are, else a loopback peer (or `limits.metrics_public`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request as HttpRequest, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::decode::{self, Operation, Request, BODY_BYTES_MAX};
use super::errors::{ApiError, ErrorCode};
use super::CONTENT_TYPE;
use crate::auth::{SignedRequest, Verifier};
use crate::config::LimitsConfig;
use crate::metrics::{Metrics, OperationLabel, RequestLabel};
use crate::streams::Engine;

/// What the HTTP handler shares.
#[derive(Debug)]
pub struct AppState {
    /// Set once recovery finished.
    pub engine: OnceLock<Arc<Engine>>,
    /// Metrics (exist before the engine).
    pub metrics: Arc<Metrics>,
    /// SigV4 verifier; `None` when no keys are configured.
    pub verifier: Option<Verifier>,
    /// Set when shutdown began: readiness turns 503.
    pub stopping: AtomicBool,
    /// Request body bytes that may be held at once; a body reserves its bytes before they are
    /// read (one permit per byte).
    body_memory: Semaphore,
    /// The fixed part of a body's deadline.
    body_timeout: Duration,
    /// The slowest accepted average body rate, bytes per second (at least 1).
    body_min_rate: u64,
    /// `/metrics` bearer token.
    metrics_token: Option<String>,
    /// `/metrics` open to non-loopback peers without keys or token.
    metrics_public: bool,
    /// The console, unless `[console] enabled = false`.
    pub console: OnceLock<Arc<crate::console::Console>>,
    /// Per operation, in [`Operation::ALL`] order: its `code="ok"` request counter and its
    /// duration histogram (handles into `metrics`, resolved once).
    ok_metrics: OnceLock<Vec<(Counter, Histogram)>>,
}

impl AppState {
    /// State before recovery.
    #[must_use]
    pub fn new(
        metrics: Arc<Metrics>,
        verifier: Option<Verifier>,
        limits: &LimitsConfig,
    ) -> AppState {
        let body_memory = usize::try_from(limits.body_memory_max_bytes)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        debug_assert!(
            body_memory > BODY_BYTES_MAX,
            "config validation keeps room for one body"
        );
        AppState {
            engine: OnceLock::new(),
            metrics,
            verifier,
            stopping: AtomicBool::new(false),
            body_memory: Semaphore::new(body_memory),
            body_timeout: Duration::from_secs(limits.body_timeout_secs),
            body_min_rate: limits.body_min_bytes_per_sec.max(1),
            metrics_token: limits.metrics_token.clone(),
            metrics_public: limits.metrics_public,
            ok_metrics: OnceLock::new(),
            console: OnceLock::new(),
        }
    }

    /// Whether `/metrics` may be served to this request (see the module documentation): `Ok`,
    /// or the refusal to answer with.
    fn metrics_allowed<B>(&self, peer: SocketAddr, req: &HttpRequest<B>) -> Result<(), Box<Reply>> {
        if let Some(token) = &self.metrics_token {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
                .unwrap_or_default();
            if bool::from(given.ct_eq(token.as_bytes())) {
                return Ok(());
            }
            let mut r = reply(
                StatusCode::UNAUTHORIZED,
                "text/plain",
                "/metrics needs Authorization: Bearer <metrics_token>\n",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return Err(Box::new(r));
        }
        if let Some(v) = &self.verifier {
            let headers = header_pairs(req.headers());
            let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
            return v
                .verify(
                    &SignedRequest {
                        method: req.method().as_str(),
                        path_and_query,
                        headers,
                        body: b"",
                    },
                    SystemTime::now(),
                )
                .map_err(|e| {
                    let mut r = error_reply(&e);
                    *r.status_mut() = StatusCode::FORBIDDEN;
                    Box::new(r)
                });
        }
        if self.metrics_public || peer.ip().is_loopback() {
            Ok(())
        } else {
            Err(Box::new(reply(
                StatusCode::FORBIDDEN,
                "text/plain",
                "/metrics answers loopback peers only (limits.metrics_public, metrics_token)\n",
            )))
        }
    }

    /// The `ok` request counter and the duration histogram of `op`.
    fn ok_metrics(&self, op: Operation) -> (&Counter, &Histogram) {
        let all = self.ok_metrics.get_or_init(|| {
            Operation::ALL
                .iter()
                .map(|o| {
                    let requests = self
                        .metrics
                        .api_requests
                        .get_or_create(&RequestLabel {
                            operation: o.name().to_string(),
                            code: "ok".to_string(),
                        })
                        .clone();
                    let duration = self
                        .metrics
                        .api_duration
                        .get_or_create(&OperationLabel {
                            operation: o.name().to_string(),
                        })
                        .clone();
                    (requests, duration)
                })
                .collect()
        });
        let i = Operation::ALL.iter().position(|o| *o == op).unwrap_or(0);
        let (c, h) = &all[i];
        (c, h)
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A fresh request id, `8-4-4-4-12` lowercase hex like AWS's (built without formatting).
fn request_id() -> Option<HeaderValue> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b: [u8; 16] = rand::random();
    let mut out = [0u8; 36];
    let mut j = 0;
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[j] = b'-';
            j += 1;
        }
        out[j] = HEX[usize::from(x >> 4)];
        out[j + 1] = HEX[usize::from(x & 15)];
        j += 2;
    }
    HeaderValue::from_bytes(&out).ok()
}

fn error_reply(e: &ApiError) -> Reply {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    reply(status, CONTENT_TYPE, e.body())
}

/// Handles one HTTP request. Never fails: every problem is a Firehose error reply.
pub async fn handle<B>(
    state: Arc<AppState>,
    peer: SocketAddr,
    req: HttpRequest<B>,
) -> Result<Reply, std::convert::Infallible>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let rid = request_id();
    let mut resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/health/live") => reply(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/health/ready") => {
            if state.engine.get().is_some() && !state.stopping.load(Ordering::SeqCst) {
                reply(StatusCode::OK, "text/plain", "ready\n")
            } else {
                reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n")
            }
        }
        (&Method::GET, "/metrics") => match state.metrics_allowed(peer, &req) {
            Ok(()) => {
                if let Some(e) = state.engine.get() {
                    e.update_gauges();
                }
                reply(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    state.metrics.encode(),
                )
            }
            Err(r) => *r,
        },
        (&Method::POST, "/") => api(&state, req).await,
        (_, p) if p == "/console" || p.starts_with("/console/") => match state.console.get() {
            Some(c) => c.handle(state.engine.get(), peer, req).await,
            None => reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                "the console is off ([console] enabled = false)\n",
            ),
        },
        _ => error_reply(&ApiError::new(
            ErrorCode::UnknownOperation,
            "hydrant serves Firehose JSON 1.1 at POST / and /health/live, /health/ready, /metrics",
        )),
    };
    if let Some(v) = rid {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
    Ok(resp)
}

async fn api<B>(state: &AppState, req: HttpRequest<B>) -> Reply
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let op =
        Operation::from_target(req.headers().get("x-amz-target").map(HeaderValue::as_bytes)).ok();
    let op_name = op.map_or("unknown", Operation::name);
    let mut close = false;
    let result = api_inner(state, req, &mut close).await;
    let code = match &result {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    let elapsed = started.elapsed().as_secs_f64();
    match (op, &result) {
        (Some(op), Ok(_)) => {
            // The common case, without building two label sets per request.
            let (requests, duration) = state.ok_metrics(op);
            requests.inc();
            duration.observe(elapsed);
        }
        _ => {
            state
                .metrics
                .api_requests
                .get_or_create(&RequestLabel {
                    operation: op_name.to_string(),
                    code: code.to_string(),
                })
                .inc();
            state
                .metrics
                .api_duration
                .get_or_create(&OperationLabel {
                    operation: op_name.to_string(),
                })
                .observe(elapsed);
        }
    }
    match result {
        Ok(body) => reply(StatusCode::OK, CONTENT_TYPE, body),
        Err(e) => {
            if e.code == ErrorCode::InternalFailure {
                tracing::error!(operation = op_name, error = %e, "request failed");
            } else {
                tracing::debug!(operation = op_name, error = %e, "request refused");
            }
            let mut r = error_reply(&e);
            if close {
                // The body was not read to its end: the connection cannot carry another request.
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            r
        }
    }
}

/// Every header as `(name, value)` text pairs (values that are not text are left out).
fn header_pairs(headers: &http::HeaderMap) -> Vec<(&str, &str)> {
    headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect()
}

/// Reads a request body into one buffer, within its deadline and its share of the daemon's
/// body memory (module documentation, steps 3 and 4). Returns the body and its reservation,
/// which the caller holds until the reply is ready. Sets `close` when the body was not read to
/// its end.
async fn read_body<'s, B>(
    state: &'s AppState,
    declared: Option<usize>,
    body: B,
    close: &mut bool,
) -> Result<(Vec<u8>, Option<SemaphorePermit<'s>>), ApiError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// A chunked body (no Content-Length) reserves its memory in steps of this many bytes.
    const STEP: usize = 256 << 10;
    let started = Instant::now();
    let longest = declared.unwrap_or(BODY_BYTES_MAX) as u64;
    let deadline = tokio::time::Instant::from_std(
        started + state.body_timeout + Duration::from_secs(longest / state.body_min_rate),
    );
    let timed_out = |received: usize| {
        ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive in time ({received} of {} bytes in {:.1} s; \
                 limits.body_timeout_secs and body_min_bytes_per_sec)",
                declared.map_or_else(|| "?".to_string(), |d| d.to_string()),
                started.elapsed().as_secs_f64()
            ),
        )
    };
    let busy = || {
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            "Slow down. The daemon holds its limit of request bodies \
             (limits.body_memory_max_bytes); retry",
        )
    };
    let mut held: Option<SemaphorePermit<'s>> = None;
    let mut reserved = 0usize;
    // Reserves `n` more bytes, waiting for room until the deadline.
    let memory: &'s Semaphore = &state.body_memory;
    let reserve = move |n: usize| {
        let want = u32::try_from(n).unwrap_or(u32::MAX);
        tokio::time::timeout_at(deadline, memory.acquire_many(want))
    };
    let mut buf = Vec::new();
    if let Some(len) = declared {
        if len > 0 {
            let p = reserve(len).await.map_err(|_| {
                *close = true;
                busy()
            })?;
            held = Some(p.map_err(|_| busy())?);
            reserved = len;
            buf.reserve_exact(len);
        }
    }
    let mut body = std::pin::pin!(body);
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                *close = true;
                return Err(timed_out(buf.len()));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                *close = true;
                let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                return Err(ApiError::serialization(format!(
                    "could not read the request body: {e}"
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let len = buf.len() + data.len();
        if len > BODY_BYTES_MAX {
            *close = true;
            return Err(decode::body_too_large(len));
        }
        if len > reserved {
            // Only a chunked body gets here: hyper holds a declared length to its word.
            let step = (len - reserved).max(STEP).min(BODY_BYTES_MAX - reserved);
            let more = reserve(step)
                .await
                .map_err(|_| {
                    *close = true;
                    busy()
                })?
                .map_err(|_| busy())?;
            match &mut held {
                Some(p) => p.merge(more),
                None => held = Some(more),
            }
            reserved += step;
            buf.reserve_exact(reserved - buf.len());
        }
        debug_assert!(len <= reserved && reserved <= BODY_BYTES_MAX);
        buf.extend_from_slice(&data);
    }
    Ok((buf, held))
}

async fn api_inner<B>(
    state: &AppState,
    req: HttpRequest<B>,
    close: &mut bool,
) -> Result<Vec<u8>, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    if let Some(v) = &state.verifier {
        if let Err(e) = v.check_headers(&header_pairs(&parts.headers), SystemTime::now()) {
            *close = true;
            return Err(e);
        }
    }
    let declared = match parts.headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => {
            let len = v
                .to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    *close = true;
                    ApiError::serialization("Content-Length is not a number")
                })?;
            if len > BODY_BYTES_MAX as u64 {
                *close = true;
                return Err(decode::body_too_large(
                    usize::try_from(len).unwrap_or(usize::MAX),
                ));
            }
            usize::try_from(len).ok()
        }
    };
    let (body, _reservation) = read_body(state, declared, body, close).await?;
    if let Some(v) = &state.verifier {
        let headers = header_pairs(&parts.headers);
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        v.verify(
            &SignedRequest {
                method: parts.method.as_str(),
                path_and_query,
                headers,
                body: &body,
            },
            SystemTime::now(),
        )?;
    }
    let request = decode::decode_request(
        parts.headers.get("x-amz-target").map(HeaderValue::as_bytes),
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes),
        &body,
    )?;
    let Some(engine) = state.engine.get() else {
        return Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "hydrantd is still recovering its streams; retry",
        ));
    };
    let hint = throughput_hint(&request, &body);
    // The decoded request holds everything it needs: the body's memory is not kept while the
    // request waits (for a group commit, mostly).
    drop(body);
    dispatch(engine.clone(), request, hint).await
}

/// The DirectPut throughput hint, kept for DescribeDeliveryStream.
fn throughput_hint(request: &Request, body: &[u8]) -> Option<u32> {
    if !matches!(request, Request::Create(_)) {
        return None;
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let h = v
        .get("DirectPutSourceConfiguration")?
        .get("ThroughputHintInMBs")?
        .as_u64()?;
    u32::try_from(h).ok()
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::new(ErrorCode::InternalFailure, e.to_string()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InternalFailure, e.to_string()))?
}

/// Runs a decoded request against the engine.
///
/// # Errors
/// The operation's Firehose error.
pub async fn dispatch(
    engine: Arc<Engine>,
    request: Request,
    hint: Option<u32>,
) -> Result<Vec<u8>, ApiError> {
    match request {
        Request::PutRecordBatch { name, records } => {
            Ok(engine.put_record_batch(&name, records).await?.to_json())
        }
        Request::PutRecord { name, data } => to_json(&engine.put_record(&name, data).await?),
        Request::Create(c) => {
            let e = engine.clone();
            let name = c.name.clone();
            let (out, incarnation) = blocking(move || e.create(c, hint)).await?;
            tokio::task::spawn_blocking(move || engine.activate(&name, incarnation));
            to_json(&out)
        }
        Request::Delete { name } => to_json(&blocking(move || engine.delete(&name)).await?),
        Request::Update(u) => to_json(&blocking(move || engine.update(&u)).await?),
        Request::Tag { name, tags } => to_json(&blocking(move || engine.tag(&name, tags)).await?),
        Request::Untag { name, keys } => {
            to_json(&blocking(move || engine.untag(&name, &keys)).await?)
        }
        Request::Describe {
            name,
            limit,
            exclusive_start,
        } => to_json(&engine.describe(&name, limit, exclusive_start.as_deref())?),
        Request::List {
            limit,
            stream_type,
            exclusive_start,
        } => to_json(&engine.list(limit, stream_type.as_deref(), exclusive_start.as_deref())),
        Request::ListTags {
            name,
            exclusive_start,
            limit,
        } => to_json(&engine.list_tags(&name, exclusive_start.as_deref(), limit)?),
        Request::Encryption { op, name } => to_json(&engine.encryption(&name, op.name())?),
    }
}
