//! Producer of the power-cut test: runs inside the guest beside hydrantd, sends PutRecordBatch
//! from several threads (one HTTP/1.1 connection per request, `Connection: close`) and prints one
//! line per acknowledged batch on stdout (the serial console), only after hydrantd answered 200:
//! `ACK <tag> <thread> <batch> <n>` or `ACKSOME <tag> <thread> <batch> <i>,<j>,...` (see
//! `hydrant_tests::powercut`). A request that fails (hydrantd killed or starting) is not retried:
//! its records count as never acknowledged. Runs until killed.
//!
//! Usage: hydrant-powercut-load ADDR STREAM TAG THREADS

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine as _;
use hydrant_tests::powercut::{record_bytes, RecordKey};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parsed = (args.len() == 5)
        .then(|| {
            let addr: SocketAddr = args[1].parse().ok()?;
            let threads: u32 = args[4].parse().ok()?;
            Some((addr, args[2].clone(), args[3].clone(), threads))
        })
        .flatten();
    let Some((addr, stream, tag, threads)) = parsed else {
        eprintln!("usage: hydrant-powercut-load ADDR STREAM TAG THREADS");
        std::process::exit(2);
    };
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (stream, tag) = (stream.clone(), tag.clone());
            std::thread::spawn(move || produce(addr, &stream, &tag, thread))
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

fn produce(addr: SocketAddr, stream: &str, tag: &str, thread: u32) {
    for batch in 0u64.. {
        let n = 1 + ((batch * 7 + u64::from(thread) * 3) % 60) as u32;
        let keys: Vec<RecordKey> = (0..n)
            .map(|index| RecordKey {
                tag: tag.to_owned(),
                thread,
                batch,
                index,
            })
            .collect();
        let records: Vec<String> = keys
            .iter()
            .map(|k| {
                format!(
                    r#"{{"Data":"{}"}}"#,
                    base64::engine::general_purpose::STANDARD.encode(record_bytes(k))
                )
            })
            .collect();
        let body = format!(
            r#"{{"DeliveryStreamName":"{stream}","Records":[{}]}}"#,
            records.join(",")
        );
        match put(addr, body.as_bytes()).and_then(|reply| accepted(&reply, n)) {
            Ok(acked) => {
                let line = if acked.len() == n as usize {
                    format!("ACK {tag} {thread} {batch} {n}\n")
                } else if acked.is_empty() {
                    continue;
                } else {
                    let list: Vec<String> = acked.iter().map(u32::to_string).collect();
                    format!("ACKSOME {tag} {thread} {batch} {}\n", list.join(","))
                };
                // One write per line: lines of several threads never interleave on the console.
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(line.as_bytes());
                let _ = out.flush();
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One POST of a PutRecordBatch body; the reply's body when the status is 200.
fn put(addr: SocketAddr, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         X-Amz-Target: Firehose_20150804.PutRecordBatch\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of HTTP head"))?;
    if !reply.starts_with(b"HTTP/1.1 200 ") {
        return Err(std::io::Error::other("status is not 200"));
    }
    Ok(reply.split_off(split + 4))
}

/// The indexes of the records the reply accepted (a `RecordId` and no `ErrorCode`).
fn accepted(reply: &[u8], n: u32) -> std::io::Result<Vec<u32>> {
    let v: serde_json::Value = serde_json::from_slice(reply).map_err(std::io::Error::other)?;
    let entries = v["RequestResponses"]
        .as_array()
        .filter(|e| e.len() == n as usize)
        .ok_or_else(|| std::io::Error::other("RequestResponses missing or of the wrong length"))?;
    Ok((0..n)
        .zip(entries)
        .filter(|(_, e)| e["ErrorCode"].is_null() && e["RecordId"].is_string())
        .map(|(i, _)| i)
        .collect())
}
