//! Producer of the power-cut test: runs inside the guest beside hydrantd, sends PutRecordBatch
//! to one or more streams, each from its own threads (one HTTP/1.1 connection per request,
//! `Connection: close`), and prints one line per acknowledged batch on stdout (the serial
//! console), only after hydrantd answered 200: `ACK <stream> <tag> <thread> <batch> <n>` or
//! `ACKSOME <stream> <tag> <thread> <batch> <i>,<j>,...` (see `hydrant_tests::powercut`). A
//! request that fails (hydrantd killed or starting) is not retried: its records count as never
//! acknowledged. Runs until killed.
//!
//! A stream given with a JDBC URL is a Redshift-style stream into PostgreSQL (table `t`, one
//! `text` column `r`, one row per record): the producer creates it through the API when
//! DescribeDeliveryStream says it does not exist (so at the first boot, and again if a cut struck
//! before the creation was durable), waits until it is ACTIVE, then produces to it. The
//! intermediate objects go to the local store's bucket `powercut-pg`.
//!
//! Usage: `hydrant-powercut-load ADDR TAG STREAM:THREADS[:JDBC_URL]...`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine as _;
use hydrant_tests::powercut::{record_bytes, RecordKey};
use serde_json::{json, Value};

/// The intermediate bucket of the PostgreSQL streams (a directory of the local object store).
const PG_BUCKET: &str = "powercut-pg";
const ROLE: &str = "arn:aws:iam::123456789012:role/firehose";

/// One `STREAM:THREADS[:JDBC_URL]` argument.
struct StreamSpec {
    name: String,
    threads: u32,
    jdbc_url: Option<String>,
}

fn parse_spec(arg: &str) -> Option<StreamSpec> {
    let mut parts = arg.splitn(3, ':');
    let name = parts.next().filter(|n| !n.is_empty())?.to_owned();
    let threads = parts.next()?.parse().ok()?;
    let jdbc_url = parts.next().map(str::to_owned);
    Some(StreamSpec {
        name,
        threads,
        jdbc_url,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parsed = (args.len() >= 4)
        .then(|| {
            let addr: SocketAddr = args[1].parse().ok()?;
            let specs: Option<Vec<StreamSpec>> = args[3..].iter().map(|a| parse_spec(a)).collect();
            Some((addr, args[2].clone(), specs?))
        })
        .flatten();
    let Some((addr, tag, specs)) = parsed else {
        eprintln!("usage: hydrant-powercut-load ADDR TAG STREAM:THREADS[:JDBC_URL]...");
        std::process::exit(2);
    };
    let mut handles = Vec::new();
    for spec in specs {
        let tag = tag.clone();
        handles.push(std::thread::spawn(move || {
            if let Some(url) = &spec.jdbc_url {
                ensure_pg_stream(addr, &spec.name, url);
            }
            let producers: Vec<_> = (0..spec.threads)
                .map(|thread| {
                    let (stream, tag) = (spec.name.clone(), tag.clone());
                    std::thread::spawn(move || produce(addr, &stream, &tag, thread))
                })
                .collect();
            for h in producers {
                let _ = h.join();
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
}

/// One line on the console (one write: lines of several threads never interleave).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

/// Until `stream` is ACTIVE: describes it, and creates it when hydrantd says it does not exist.
/// Prints `STREAM <name> ACTIVE` once it is.
fn ensure_pg_stream(addr: SocketAddr, stream: &str, jdbc_url: &str) {
    let create = json!({
        "DeliveryStreamName": stream,
        "DeliveryStreamType": "DirectPut",
        "RedshiftDestinationConfiguration": {
            "RoleARN": ROLE,
            "ClusterJDBCURL": jdbc_url,
            "CopyCommand": {"DataTableName": "t", "DataTableColumns": "r"},
            "Username": "postgres",
            "Password": "not-checked",
            "RetryOptions": {"DurationInSeconds": 7200},
            "S3Configuration": {
                "RoleARN": ROLE,
                "BucketARN": format!("arn:aws:s3:::{PG_BUCKET}"),
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            },
        }
    })
    .to_string();
    let describe = json!({ "DeliveryStreamName": stream }).to_string();
    loop {
        match call(addr, "DescribeDeliveryStream", describe.as_bytes()) {
            Ok((200, v)) => {
                let status = &v["DeliveryStreamDescription"]["DeliveryStreamStatus"];
                if status == "ACTIVE" {
                    say(&format!("STREAM {stream} ACTIVE\n"));
                    return;
                }
            }
            Ok((_, v))
                if v["__type"]
                    .as_str()
                    .is_some_and(|t| t.contains("ResourceNotFound")) =>
            {
                match call(addr, "CreateDeliveryStream", create.as_bytes()) {
                    Ok((200, _)) => say(&format!("STREAM {stream} CREATED\n")),
                    // Another attempt (before a kill of hydrantd) may have created it.
                    Ok((_, v)) if v["__type"].as_str().is_some_and(|t| t.contains("InUse")) => {}
                    Ok((status, v)) => {
                        say(&format!(
                            "POWERCUT-ERROR CreateDeliveryStream {status}: {v}\n"
                        ));
                        std::thread::sleep(Duration::from_secs(2));
                    }
                    Err(_) => {}
                }
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(200));
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
        let reply = call(addr, "PutRecordBatch", body.as_bytes());
        match reply.and_then(|(status, v)| accepted(status, &v, n)) {
            Ok(acked) => {
                let line = if acked.len() == n as usize {
                    format!("ACK {stream} {tag} {thread} {batch} {n}\n")
                } else if acked.is_empty() {
                    continue;
                } else {
                    let list: Vec<String> = acked.iter().map(u32::to_string).collect();
                    format!(
                        "ACKSOME {stream} {tag} {thread} {batch} {}\n",
                        list.join(",")
                    )
                };
                say(&line);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One POST of the API operation `op`: the reply's status and JSON body.
fn call(addr: SocketAddr, op: &str, body: &[u8]) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         X-Amz-Target: Firehose_20150804.{op}\r\n\
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
    let status: u16 = std::str::from_utf8(&reply[..split])
        .ok()
        .and_then(|head| head.strip_prefix("HTTP/1.1 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    let v = serde_json::from_slice(&reply[split + 4..]).map_err(std::io::Error::other)?;
    Ok((status, v))
}

/// The indexes of the records a PutRecordBatch reply accepted (a `RecordId` and no
/// `ErrorCode`); an error when the status is not 200.
fn accepted(status: u16, v: &Value, n: u32) -> std::io::Result<Vec<u32>> {
    if status != 200 {
        return Err(std::io::Error::other("status is not 200"));
    }
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
