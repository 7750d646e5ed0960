//! A destination that refuses every write, for `hydrant bench put` P3 (intake while the
//! destination is down): an HTTP server on a loopback port that reads each request's head and
//! answers `503 Service Unavailable` with S3's `ServiceUnavailable` error, then closes the
//! connection without reading the body. A daemon pointed at it (`--s3-endpoint`) keeps every
//! record in its WAL and retries, so its log only grows.
//!
//! One accept thread, stopped on drop (a flag, then a connection to itself to wake `accept`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n\
Content-Length: 110\r\nConnection: close\r\n\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code>\
<Message>refused</Message></Error>";

/// The refusing server; stops when dropped.
#[derive(Debug)]
pub struct Refuser {
    /// Its address.
    pub addr: SocketAddr,
    /// Requests refused so far.
    pub refused: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Refuser {
    /// Binds a free loopback port and starts refusing.
    ///
    /// # Errors
    /// The bind's or the thread's I/O error.
    pub fn start() -> std::io::Result<Refuser> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicU64::new(0));
        let (s, r) = (stop.clone(), refused.clone());
        let thread = std::thread::Builder::new()
            .name("bench-refuser".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(c) = conn {
                        refuse(c, &r);
                    }
                }
            })?;
        Ok(Refuser {
            addr,
            refused,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// hydrantd's flags that point its S3 destination at this endpoint.
    pub fn daemon_args(&self) -> Vec<String> {
        [
            "--s3-endpoint",
            &self.url(),
            "--s3-force-path-style",
            "--s3-access-key-id",
            "bench",
            "--s3-secret-access-key",
            "bench",
        ]
        .map(String::from)
        .to_vec()
    }
}

/// Reads the request head (up to 64 KiB or a second), counts it in `refused`, answers 503 and
/// closes. The count comes before the answer, so that a client that has read its 503 finds its
/// request counted (it was counted after the close, which a test could read first).
fn refuse(mut c: TcpStream, refused: &AtomicU64) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while head.len() < 64 << 10 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    refused.fetch_add(1, Ordering::SeqCst);
    let _ = c.write_all(RESPONSE);
    let _ = c.shutdown(std::net::Shutdown::Both);
}

impl Drop for Refuser {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept call; it sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_request_gets_503_service_unavailable() {
        let r = Refuser::start().unwrap();
        for _ in 0..2 {
            let mut c = TcpStream::connect(r.addr).unwrap();
            c.write_all(b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
                .unwrap();
            let mut got = String::new();
            c.read_to_string(&mut got).unwrap();
            assert!(got.starts_with("HTTP/1.1 503 "), "{got}");
            let body = got.split("\r\n\r\n").nth(1).unwrap();
            assert_eq!(body.len(), 110, "Content-Length matches the body");
            assert!(body.contains("<Code>ServiceUnavailable</Code>"), "{body}");
        }
        assert_eq!(r.refused.load(Ordering::Relaxed), 2);
    }
}
