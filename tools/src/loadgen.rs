//! An HTTP load generator for the Firehose API: `connections` keep-alive HTTP/1.1 connections
//! (hyper's connection API, one connection per task, no pool in the way), each sending its next
//! request as soon as the previous one is answered, on a tokio multi-thread runtime. Every
//! request's latency (send to full reply) is recorded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hydrant_engine::api::decode::TARGET_PREFIX;
use hydrant_engine::api::CONTENT_TYPE;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

/// What driving load can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A connection could not be made or broke.
    #[error("connection to {addr}: {message}")]
    Connection {
        /// The server.
        addr: SocketAddr,
        /// The cause.
        message: String,
    },
    /// A load task panicked.
    #[error("a load task failed: {0}")]
    Task(String),
}

/// One request of a workload.
#[derive(Debug, Clone)]
pub struct Req {
    /// The operation (`PutRecordBatch`).
    pub operation: &'static str,
    /// The JSON body.
    pub body: Bytes,
    /// Records it carries.
    pub records: u64,
    /// Record bytes it carries (decoded).
    pub bytes: u64,
    /// The workload's own tag (a batch id), handed back on acknowledgement.
    pub tag: u64,
}

/// What to send.
pub trait Workload: Send + Sync + 'static {
    /// The `seq`-th request of connection `conn`.
    fn next(&self, conn: usize, seq: u64) -> Req;
    /// Called when `req` was acknowledged in full, at `at`.
    fn acked(&self, _req: &Req, _at: Instant) {}
}

/// The shape of the load.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Concurrent connections.
    pub connections: usize,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time before it (connections warm, the daemon's buffers grown).
    pub warmup: Duration,
    /// `None`: each connection sends as fast as it is answered (saturation). `Some(p)`: each
    /// connection starts a request every `p` (a fixed offered rate, for latency figures that
    /// are not queueing figures).
    pub pace: Option<Duration>,
}

/// Figures of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadResult {
    /// Measured seconds.
    pub seconds: f64,
    /// Connections.
    pub connections: usize,
    /// Requests acknowledged in full during the measured time.
    pub requests: u64,
    /// Requests answered otherwise (an error, a partial failure).
    pub failed_requests: u64,
    /// Records acknowledged.
    pub records: u64,
    /// Record bytes acknowledged.
    pub bytes: u64,
    /// Acknowledged requests per second.
    pub requests_per_sec: f64,
    /// Acknowledged records per second.
    pub records_per_sec: f64,
    /// Acknowledged record MB/s (10^6 bytes).
    pub mb_per_sec: f64,
    /// Latency quantiles, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

#[derive(Default)]
struct ConnTally {
    requests: u64,
    failed: u64,
    records: u64,
    bytes: u64,
    latencies_us: Vec<u64>,
}

/// The `q` quantile (nearest rank) of sorted microseconds, in ms.
pub fn quantile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

/// True when a reply acknowledges every record: PutRecordBatch's compact
/// `"FailedPutCount":0` (what Fluent Bit checks too), or any 200 for PutRecord.
fn all_acked(operation: &str, body: &[u8]) -> bool {
    if operation != "PutRecordBatch" {
        return true;
    }
    let needle = b"\"FailedPutCount\":0";
    body.windows(needle.len()).any(|w| w == needle)
}

async fn connection(
    addr: SocketAddr,
    conn: usize,
    workload: Arc<dyn Workload>,
    measure_from: Instant,
    end: Instant,
    pace: Option<Duration>,
) -> Result<ConnTally, LoadError> {
    let broke = |message: String| LoadError::Connection { addr, message };
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| broke(e.to_string()))?;
    stream.set_nodelay(true).map_err(|e| broke(e.to_string()))?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| broke(e.to_string()))?;
    tokio::spawn(driver);
    // Header values built once per connection, not per request.
    let host = http::HeaderValue::from_str(&addr.to_string()).map_err(|e| broke(e.to_string()))?;
    let content_type = http::HeaderValue::from_static(CONTENT_TYPE);
    let mut target: Option<(&'static str, http::HeaderValue)> = None;
    let mut tally = ConnTally::default();
    let mut seq = 0u64;
    let mut next_start = Instant::now();
    while Instant::now() < end {
        if let Some(pace) = pace {
            tokio::time::sleep_until(next_start.into()).await;
            next_start += pace;
        }
        let req = workload.next(conn, seq);
        seq += 1;
        let target_value = match &target {
            Some((op, v)) if *op == req.operation => v.clone(),
            _ => {
                let v = http::HeaderValue::from_str(&format!("{TARGET_PREFIX}{}", req.operation))
                    .map_err(|e| broke(e.to_string()))?;
                target = Some((req.operation, v.clone()));
                v
            }
        };
        let mut request = Request::new(Full::new(req.body.clone()));
        *request.method_mut() = http::Method::POST;
        let headers = request.headers_mut();
        headers.insert(http::header::HOST, host.clone());
        headers.insert(http::header::CONTENT_TYPE, content_type.clone());
        headers.insert("x-amz-target", target_value);
        let sent = Instant::now();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| broke(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| broke(e.to_string()))?
            .to_bytes();
        let done = Instant::now();
        let ok = status == http::StatusCode::OK && all_acked(req.operation, &body);
        if ok {
            workload.acked(&req, done);
        }
        if sent >= measure_from {
            if ok {
                tally.requests += 1;
                tally.records += req.records;
                tally.bytes += req.bytes;
                tally
                    .latencies_us
                    .push(done.duration_since(sent).as_micros() as u64);
            } else {
                tally.failed += 1;
            }
        }
    }
    Ok(tally)
}

/// Drives `workload` against `addr` as `load` says.
///
/// # Errors
/// [`LoadError`] when a connection fails.
pub async fn drive(
    addr: SocketAddr,
    load: Load,
    workload: Arc<dyn Workload>,
) -> Result<LoadResult, LoadError> {
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for conn in 0..load.connections {
        tasks.spawn(connection(
            addr,
            conn,
            workload.clone(),
            measure_from,
            end,
            load.pace,
        ));
    }
    let mut all = ConnTally::default();
    while let Some(joined) = tasks.join_next().await {
        let t = joined.map_err(|e| LoadError::Task(e.to_string()))??;
        all.requests += t.requests;
        all.failed += t.failed;
        all.records += t.records;
        all.bytes += t.bytes;
        all.latencies_us.extend(t.latencies_us);
    }
    // The measured window ends when the last request started in it was answered.
    let seconds = Instant::now()
        .duration_since(measure_from)
        .as_secs_f64()
        .max(1e-9);
    all.latencies_us.sort_unstable();
    Ok(LoadResult {
        seconds,
        connections: load.connections,
        requests: all.requests,
        failed_requests: all.failed,
        records: all.records,
        bytes: all.bytes,
        requests_per_sec: all.requests as f64 / seconds,
        records_per_sec: all.records as f64 / seconds,
        mb_per_sec: all.bytes as f64 / seconds / 1e6,
        p50_ms: quantile_ms(&all.latencies_us, 0.5),
        p99_ms: quantile_ms(&all.latencies_us, 0.99),
        max_ms: quantile_ms(&all.latencies_us, 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_acks() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), 50.0);
        assert_eq!(quantile_ms(&v, 0.99), 99.0);
        assert_eq!(quantile_ms(&v, 1.0), 100.0);
        assert!(all_acked(
            "PutRecordBatch",
            br#"{"FailedPutCount":0,"Encrypted":false}"#
        ));
        assert!(!all_acked("PutRecordBatch", br#"{"FailedPutCount":10}"#));
        assert!(all_acked("PutRecord", b"{}"));
    }
}
