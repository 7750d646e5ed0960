//! A loopback HTTP/1.1 proxy that records each request's method, path and headers and forwards
//! the bytes unchanged to an upstream server (an S3 server, for the encryption headers of object
//! writes). Requests are framed by `Content-Length` (the AWS SDK sends one on every request,
//! aws-chunked bodies included); a request without one is recorded and forwarded with no body.
//! Replies are copied back as they come.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// One request as the proxy saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `PUT`, `POST`, ...
    pub method: String,
    /// The request target (`/bucket/key?uploads`).
    pub target: String,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of header `name` (lowercase).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The proxy; it runs until the process ends.
#[derive(Debug, Clone)]
pub struct RecordingProxy {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl RecordingProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    ///
    /// # Errors
    /// The listener's bind error.
    pub fn start(upstream: SocketAddr) -> io::Result<RecordingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = seen.clone();
                thread::spawn(move || {
                    let _ = serve(client, upstream, &seen);
                });
            }
        });
        Ok(RecordingProxy { addr, requests })
    }

    /// `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    seen: &Mutex<Vec<RecordedRequest>>,
) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    // Replies: copied back as they come, on their own thread.
    let mut from_server = server.try_clone()?;
    let mut to_client = client.try_clone()?;
    thread::spawn(move || {
        let _ = io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(std::net::Shutdown::Write);
    });
    let mut reader = BufReader::new(client);
    let mut to_server = server;
    loop {
        let mut head = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            head.push(line.clone());
            if line == "\r\n" {
                break;
            }
        }
        let mut parts = head[0].split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = head[1..head.len() - 1]
            .iter()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let length: u64 = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        if let Ok(mut s) = seen.lock() {
            s.push(RecordedRequest {
                method,
                target,
                headers,
            });
        }
        to_server.write_all(head.concat().as_bytes())?;
        io::copy(&mut (&mut reader).take(length), &mut to_server)?;
    }
}
