//! An HTTP load generator for the Firehose API: `connections` keep-alive HTTP/1.1 connections,
//! one task each, each sending its next request as soon as the previous one is answered, on a
//! tokio runtime. Every request's latency (send to full reply) is recorded. See [`Conn`] for why
//! the client is its own few lines over `httparse` rather than hyper's.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hydrant_api::decode::TARGET_PREFIX;
use hydrant_api::CONTENT_TYPE;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// The most header lines a reply may carry.
const MAX_REPLY_HEADERS: usize = 32;
/// The largest reply head accepted (status line and headers).
const MAX_REPLY_HEAD: usize = 64 * 1024;

/// One keep-alive HTTP/1.1 connection of the load generator.
///
/// Deliberately lean: a request is its head, formatted into a reused buffer, and the workload's
/// body, written together with vectored writes by the task that then reads the reply (parsed
/// with `httparse`, framed by its `Content-Length`). hyper's client runs each connection as a
/// second task behind channels; measured under P2 on 2 vCPUs (2026-11-26) that cost the load
/// generator 11.6 us of CPU per PutRecord, CPU the daemon under test then did not have.
struct Conn {
    addr: SocketAddr,
    stream: TcpStream,
    /// The request head being sent.
    head: Vec<u8>,
    /// The reply being read (the last one, after `exchange`).
    buf: Vec<u8>,
}

/// A reply: its status and body.
struct Reply {
    status: u16,
    body: std::ops::Range<usize>,
    close: bool,
}

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            addr,
            stream,
            head: Vec::with_capacity(256),
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one request and reads its reply; the reply's body is `self.buf[reply.body]`.
    async fn exchange(&mut self, operation: &str, body: &[u8]) -> std::io::Result<Reply> {
        use std::io::Write as _;
        self.head.clear();
        write!(
            self.head,
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: {CONTENT_TYPE}\r\n\
             x-amz-target: {TARGET_PREFIX}{operation}\r\ncontent-length: {}\r\n\r\n",
            self.addr,
            body.len()
        )?;
        write_two(&mut self.stream, &self.head, body).await?;
        self.read_reply().await
    }

    async fn read_reply(&mut self) -> std::io::Result<Reply> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        self.buf.clear();
        let (status, head_len, content_length, close) = loop {
            if !self.buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_REPLY_HEADERS];
                let mut reply = httparse::Response::new(&mut headers);
                match reply.parse(&self.buf) {
                    Ok(httparse::Status::Complete(head_len)) => {
                        let mut length = None;
                        let mut close = false;
                        for h in reply.headers.iter() {
                            if h.name.eq_ignore_ascii_case("content-length") {
                                length = std::str::from_utf8(h.value)
                                    .ok()
                                    .and_then(|v| v.trim().parse::<usize>().ok());
                            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                                return Err(bad("a chunked reply (not sent by hydrantd)".into()));
                            } else if h.name.eq_ignore_ascii_case("connection") {
                                close = h.value.eq_ignore_ascii_case(b"close");
                            }
                        }
                        let length =
                            length.ok_or_else(|| bad("a reply without Content-Length".into()))?;
                        break (reply.code.unwrap_or(0), head_len, length, close);
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() < MAX_REPLY_HEAD => {}
                    Ok(httparse::Status::Partial) => return Err(bad("reply head too long".into())),
                    Err(e) => return Err(bad(format!("unparsable reply: {e}"))),
                }
            }
            self.fill().await?;
        };
        let end = head_len + content_length;
        while self.buf.len() < end {
            self.fill().await?;
        }
        if self.buf.len() > end {
            return Err(bad(
                "bytes after the reply (no request was pipelined)".into()
            ));
        }
        Ok(Reply {
            status,
            body: head_len..end,
            close,
        })
    }

    /// Reads what the socket has into `buf`; an error at end of stream.
    async fn fill(&mut self) -> std::io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 2048 {
            self.buf.reserve(self.buf.capacity().max(4096));
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// Writes `a` then `b` with as few (vectored) writes as the socket takes.
async fn write_two(stream: &mut TcpStream, a: &[u8], b: &[u8]) -> std::io::Result<()> {
    let mut done = 0usize;
    let total = a.len() + b.len();
    while done < total {
        let n = if done < a.len() {
            let parts = [IoSlice::new(&a[done..]), IoSlice::new(b)];
            stream.write_vectored(&parts).await?
        } else {
            stream.write(&b[done - a.len()..]).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        done += n;
    }
    Ok(())
}

async fn connection(
    addr: SocketAddr,
    conn: usize,
    workload: Arc<dyn Workload>,
    measure_from: Instant,
    end: Instant,
    pace: Option<Duration>,
) -> Result<ConnTally, LoadError> {
    let broke = |e: std::io::Error| LoadError::Connection {
        addr,
        message: e.to_string(),
    };
    let mut c = Conn::open(addr).await.map_err(broke)?;
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
        let sent = Instant::now();
        let reply = c.exchange(req.operation, &req.body).await.map_err(broke)?;
        let done = Instant::now();
        let ok = reply.status == 200 && all_acked(req.operation, &c.buf[reply.body.clone()]);
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
        if reply.close {
            c = Conn::open(addr).await.map_err(broke)?;
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

    /// A server that reads one request head and answers with `reply`, written in pieces.
    async fn answer_once(reply: Vec<&'static [u8]>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut b = [0u8; 1024];
                let n = s.read(&mut b).await.unwrap_or_else(|e| panic!("{e}"));
                assert!(n > 0, "request ended early");
                got.extend_from_slice(&b[..n]);
            }
            for piece in reply {
                s.write_all(piece).await.unwrap_or_else(|e| panic!("{e}"));
                s.flush().await.unwrap_or_else(|e| panic!("{e}"));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_reply_in_pieces_is_framed_by_its_content_length() {
        let addr = answer_once(vec![
            b"HTTP/1.1 200 OK\r\ncontent-le",
            b"ngth: 20\r\nConnection: close\r\n\r\n{\"FailedPut",
            b"Count\":0}",
        ])
        .await;
        let mut c = Conn::open(addr).await.unwrap_or_else(|e| panic!("{e}"));
        let r = c
            .exchange("PutRecordBatch", b"{}")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200);
        assert!(r.close);
        assert_eq!(&c.buf[r.body], br#"{"FailedPutCount":0}"#);
    }

    #[tokio::test]
    async fn replies_it_cannot_frame_are_errors() {
        for reply in [
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\n\r\n{}"[..],
            &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}extra"[..],
            &b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}"[..],
            &b"not http\r\n\r\n"[..],
        ] {
            let addr = answer_once(vec![reply]).await;
            let mut c = Conn::open(addr).await.unwrap_or_else(|e| panic!("{e}"));
            let got = c.exchange("PutRecord", b"{}").await;
            assert!(got.is_err(), "{:?}", String::from_utf8_lossy(reply));
        }
    }
}
