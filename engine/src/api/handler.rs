//! The HTTP handler: routing, body limits, SigV4, dispatch to the engine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request as HttpRequest, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use serde_json::Value;

use super::decode::{self, Operation, Request, BODY_BYTES_MAX};
use super::errors::{ApiError, ErrorCode};
use super::CONTENT_TYPE;
use crate::auth::{SignedRequest, Verifier};
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
    /// Per operation, in [`Operation::ALL`] order: its `code="ok"` request counter and its
    /// duration histogram (handles into `metrics`, resolved once).
    ok_metrics: OnceLock<Vec<(Counter, Histogram)>>,
}

impl AppState {
    /// State before recovery.
    #[must_use]
    pub fn new(metrics: Arc<Metrics>, verifier: Option<Verifier>) -> AppState {
        AppState {
            engine: OnceLock::new(),
            metrics,
            verifier,
            stopping: AtomicBool::new(false),
            ok_metrics: OnceLock::new(),
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
        (&Method::GET, "/metrics") => {
            if let Some(e) = state.engine.get() {
                e.update_gauges();
            }
            reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                state.metrics.encode(),
            )
        }
        (&Method::POST, "/") => api(&state, req).await,
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
    let result = api_inner(state, req).await;
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
            if e.code == ErrorCode::InvalidArgument && e.message.starts_with("request body of") {
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            r
        }
    }
}

async fn api_inner<B>(state: &AppState, req: HttpRequest<B>) -> Result<Vec<u8>, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    if let Some(len) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > BODY_BYTES_MAX as u64 {
            return Err(decode::body_too_large(
                usize::try_from(len).unwrap_or(usize::MAX),
            ));
        }
    }
    let body = Limited::new(body, BODY_BYTES_MAX)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                decode::body_too_large(BODY_BYTES_MAX + 1)
            } else {
                ApiError::serialization(format!("could not read the request body: {e}"))
            }
        })?
        .to_bytes();
    if let Some(v) = &state.verifier {
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
            .collect();
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
        Request::PutRecordBatch { name, records } => Ok(engine
            .put_record_batch(&name, &records.slices())
            .await?
            .to_json()),
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
