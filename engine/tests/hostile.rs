//! Hostile clients against the daemon as a process: what a client that never authenticates
//! can hold (memory, descriptors, disk), streams that could never deliver, `/metrics` behind the
//! credentials and the warning of `--allow-public-unauthenticated`.
//!
//! The new limits are set through their `HYDRANT_*` variables, which an older daemon ignores:
//! each test runs unchanged against the code before the fix, where it fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{call, get, Daemon};

const MIB: u64 = 1 << 20;

/// The head of an unsigned PutRecordBatch with `len` bytes of body.
fn put_head(addr: SocketAddr, len: usize) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: Firehose_20150804.PutRecordBatch\r\nContent-Length: {len}\r\n\r\n"
    )
    .into_bytes()
}

/// Whether the server closed `s` (or answered and closed): a read returns EOF, data or a reset
/// before `limit`, rather than timing out.
fn closed_by_server(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A body trickled one byte per write on one connection must not take memory in proportion to
/// the writes (each piece was kept as its own buffer: about 1.7 KB per byte sent), and a body
/// that arrives slower than the minimum rate is cut off at its deadline.
#[test]
fn one_byte_writes_hold_no_memory_and_meet_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_env(
        &tmp.path().join("data"),
        &[],
        &[
            ("HYDRANT_BODY_TIMEOUT_SECS", "20"),
            ("HYDRANT_BODY_MIN_BYTES_PER_SEC", "1000000"),
        ],
    );
    let before = d.rss_bytes();
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&put_head(d.addr, 8_000_000)).unwrap();
    let started = Instant::now();
    let mut sent = 0u64;
    // 200,000 one-byte writes took about 340 MiB before the fix.
    while sent < 200_000 && started.elapsed() < Duration::from_secs(18) {
        if s.write_all(b"[").is_err() {
            break;
        }
        sent += 1;
    }
    let grown = d.rss_bytes().saturating_sub(before);
    println!(
        "{sent} one-byte writes in {:.1} s: RSS grew {:.1} MiB",
        started.elapsed().as_secs_f64(),
        grown as f64 / MIB as f64
    );
    assert!(sent >= 20_000, "only {sent} writes went through");
    assert!(
        grown < 48 * MIB,
        "RSS grew {grown} bytes for {sent} one-byte writes"
    );
    // 8,000,000 bytes at 1 MB/s: 20 s + 8 s. The trickle stops; the daemon must cut it off.
    let deadline_left = Duration::from_secs(28).saturating_sub(started.elapsed());
    assert!(
        closed_by_server(&mut s, deadline_left + Duration::from_secs(5)),
        "a trickled body was still open past its deadline"
    );
}

/// With keys configured an unsigned request is answered from its headers, before its body: a
/// client that sends a large declared body's head and nothing more gets its error at once.
#[test]
fn unsigned_requests_are_refused_before_the_body() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_env(
        &tmp.path().join("data"),
        &["--access-key-id", "AKID", "--secret-access-key", "SECRET"],
        &[],
    );
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.write_all(&put_head(d.addr, 8_000_000)).unwrap();
    s.write_all(&[b'['; 1000]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4096];
    let n = s
        .read(&mut buf)
        .expect("an answer before the body was sent");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains("MissingAuthenticationTokenException"),
        "{text}"
    );
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
}

/// Many connections that each send most of a declared 8 MiB body and stop: the bytes held
/// stay within `limits.body_memory_max_bytes` (2.0 GiB for 200 of them before the fix), and
/// every such connection is closed by its deadline.
#[test]
fn stalled_large_bodies_are_bounded_and_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_env(
        &tmp.path().join("data"),
        &[],
        &[
            ("HYDRANT_BODY_MEMORY_MAX_BYTES", "33554432"),
            ("HYDRANT_BODY_TIMEOUT_SECS", "4"),
            ("HYDRANT_BODY_MIN_BYTES_PER_SEC", "8388608"),
        ],
    );
    let before = d.rss_bytes();
    const CONNECTIONS: usize = 60;
    const DECLARED: usize = 8_388_000;
    let addr = d.addr;
    let started = Instant::now();
    let senders: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                // A refused or waiting body stops being read: give up writing after a while.
                s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
                let _ = s.write_all(&put_head(addr, DECLARED));
                let chunk = vec![b'['; 64 << 10];
                let mut sent = 0;
                while sent + chunk.len() < DECLARED - 1000 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                s
            })
        })
        .collect();
    let mut streams: Vec<TcpStream> = senders.into_iter().map(|h| h.join().unwrap()).collect();
    let grown = d.rss_bytes().saturating_sub(before);
    println!(
        "{CONNECTIONS} stalled bodies after {:.1} s: RSS grew {:.1} MiB",
        started.elapsed().as_secs_f64(),
        grown as f64 / MIB as f64
    );
    assert!(
        grown < 32 * MIB + 48 * MIB,
        "RSS grew {grown} bytes with {CONNECTIONS} stalled bodies and a 32 MiB body limit"
    );
    // The deadline of each body: 4 s + 8,388,000 B at 8 MiB/s, about 5 s from its start.
    for (i, s) in streams.iter_mut().enumerate() {
        let left = Duration::from_secs(12).saturating_sub(started.elapsed());
        assert!(
            closed_by_server(s, left + Duration::from_secs(1)),
            "stalled connection {i} still open {:.1} s after it began",
            started.elapsed().as_secs_f64()
        );
    }
    let after = d.rss_bytes().saturating_sub(before);
    assert!(after < 80 * MIB, "RSS still {after} bytes above the start");
    assert_eq!(get(d.addr, "/health/live").unwrap().0, 200);
}

fn objects_under(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                objects_under(&p)
            } else {
                usize::from(!e.file_name().to_string_lossy().starts_with('.'))
            }
        })
        .sum()
}

/// With the process limited to 256 descriptors, 300 idle connections neither starve the
/// delivery of an open stream (it creates its object files) nor the accept loop: the
/// connections past the cap wait in the listen backlog, and the daemon serves again once they
/// go away.
#[test]
fn stalled_connections_leave_descriptors_for_delivery() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = Daemon::start_with(&data, &[], &[("HYDRANT_STREAMS_MAX", "4")], Some(256));
    // The embedded default stream buffers 5 s; the record is delivered while the connections
    // below are held.
    let reply = common::try_put_batch(d.addr, "default", [b"fd-test\n"]).expect("put");
    assert_eq!(reply["FailedPutCount"], 0, "{reply}");
    let held: Vec<TcpStream> = (0..300)
        .map_while(|_| TcpStream::connect(d.addr).ok())
        .collect();
    assert_eq!(held.len(), 300, "the test could not open its connections");
    println!("daemon holds {} descriptors", d.open_fds());
    let objects = data.join("objects").join("hydrant-local");
    let deadline = Instant::now() + Duration::from_secs(20);
    while objects_under(&objects) == 0 {
        assert!(
            Instant::now() < deadline,
            "no object delivered within 20 s while 300 connections were held; log:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        d.open_fds() < 256,
        "the daemon reached its descriptor limit"
    );
    let log = d.log_text();
    assert!(!log.contains("accept failed"), "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok((200, _)) = get(d.addr, "/health/live") {
            break;
        }
        assert!(Instant::now() < deadline, "the daemon serves no more");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn create_with(addr: SocketAddr, name: &str, s3: &str) -> (u16, serde_json::Value) {
    call(
        addr,
        "CreateDeliveryStream",
        &format!(
            r#"{{"DeliveryStreamName":"{name}","ExtendedS3DestinationConfiguration":{{"RoleARN":"arn:aws:iam::123456789012:role/r","BucketARN":"arn:aws:s3:::b"{s3}}}}}"#
        ),
    )
}

/// A Prefix or ErrorOutputPrefix that no store can write is refused at create, naming it.
#[test]
fn unwritable_prefixes_are_refused_at_create() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("data"), &[]);
    let long = "a".repeat(300);
    let cases: Vec<(&str, String, &str)> = vec![
        ("dot-dot", r#","Prefix":"../escape/""#.into(), "Prefix"),
        ("leading slash", r#","Prefix":"/abs/""#.into(), "Prefix"),
        ("NUL", r#","Prefix":"a\u0000b/""#.into(), "Prefix"),
        ("temp name", r#","Prefix":"x/.hydrant-tmp.y/""#.into(), "Prefix"),
        ("long segment", format!(r#","Prefix":"{long}/""#), "Prefix"),
        (
            "error prefix dot-dot",
            r#","Prefix":"p/!{timestamp:yyyy}/","ErrorOutputPrefix":"../!{firehose:error-output-type}/""#.into(),
            "ErrorOutputPrefix",
        ),
        (
            "error prefix leading slash",
            r#","ErrorOutputPrefix":"/!{firehose:error-output-type}/""#.into(),
            "ErrorOutputPrefix",
        ),
    ];
    for (i, (what, s3, member)) in cases.iter().enumerate() {
        let (st, v) = create_with(d.addr, &format!("bad{i}"), s3);
        assert_eq!(st, 400, "{what}: {v}");
        assert_eq!(v["__type"], "InvalidArgumentException", "{what}: {v}");
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(msg.starts_with(member), "{what}: {msg}");
    }
    let (st, v) = create_with(d.addr, "good", r#","Prefix":"a/./b/""#);
    assert_eq!(st, 400, "a '.' segment: {v}");
    let (st, v) = create_with(d.addr, "good", r#","Prefix":"ok/prefix-""#);
    assert_eq!(st, 200, "{v}");
    let (_, v) = call(d.addr, "ListDeliveryStreams", "{}");
    assert_eq!(
        v["DeliveryStreamNames"],
        serde_json::json!(["default", "good"]),
        "{v}"
    );
}

/// A flood of creates stays within the node's disk budget: the streams' budgets must fit in
/// it, or CreateDeliveryStream answers LimitExceededException.
#[test]
fn create_flood_stays_within_the_disk_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let budget = 1u64 << 30;
    let d = Daemon::start_env(
        &data,
        &[],
        &[
            ("HYDRANT_NODE_BUDGET_BYTES", &budget.to_string()),
            ("HYDRANT_STREAM_BUDGET_BYTES", "268435456"),
            ("HYDRANT_SEGMENT_BYTES", "67108864"),
        ],
    );
    let mut created = 0;
    for i in 0..20 {
        let (st, v) = create_with(d.addr, &format!("flood{i}"), "");
        match st {
            200 => created += 1,
            _ => {
                assert_eq!(v["__type"], "LimitExceededException", "{v}");
            }
        }
    }
    // The default stream's 256 MiB and three more.
    assert_eq!(created, 3);
    for i in 0..created {
        common::wait_active(d.addr, &format!("flood{i}"));
    }
    let out = std::process::Command::new("du")
        .args(["-s", "-B1"])
        .arg(&data)
        .output()
        .unwrap();
    let used: u64 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap();
    println!("{created} streams created; data directory {used} bytes");
    assert!(used <= budget, "{used} bytes on disk, budget {budget}");
}

/// Bytes the file system allocated to the files under `dir` (`st_blocks`, as `du` counts).
fn allocated(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        total += m.blocks() * 512;
        if m.is_dir() {
            total += allocated(&e.path());
        }
    }
    total
}

/// A new stream's files are small until it is written to: its log's first segment is 1 MiB and
/// no spare is prepared (each create took a 64 MiB segment and a 64 MiB spare at once: 44
/// unauthenticated creates held 6.4 GB).
#[test]
fn new_streams_take_little_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = Daemon::start_env(
        &data,
        &[],
        &[
            ("HYDRANT_NODE_BUDGET_BYTES", &(64u64 << 30).to_string()),
            ("HYDRANT_STREAM_BUDGET_BYTES", "268435456"),
            ("HYDRANT_SEGMENT_BYTES", "67108864"),
        ],
    );
    let streams = 10u64;
    let before = allocated(&data);
    for i in 0..streams {
        let (st, v) = create_with(d.addr, &format!("young{i}"), "");
        assert_eq!(st, 200, "{v}");
    }
    for i in 0..streams {
        common::wait_active(d.addr, &format!("young{i}"));
    }
    // The prepare threads had their chance to (wrongly) prepare spares.
    std::thread::sleep(Duration::from_millis(500));
    let per_stream = (allocated(&data) - before) / streams;
    println!("{streams} new streams: {per_stream} bytes of disk each");
    assert!(
        per_stream <= MIB + MIB / 2,
        "a new stream takes {per_stream} bytes of disk"
    );
}

/// With keys configured, `/metrics` wants a signature (or the configured token).
#[test]
fn metrics_need_credentials_when_keys_are_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_env(
        &tmp.path().join("data"),
        &["--access-key-id", "AKID", "--secret-access-key", "SECRET"],
        &[],
    );
    let (st, body) = get(d.addr, "/metrics").unwrap();
    assert_eq!(st, 403, "{body}");
    assert!(!body.contains("hydrant_"), "{body}");
    drop(d);
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_env(
        &tmp.path().join("data"),
        &["--access-key-id", "AKID", "--secret-access-key", "SECRET"],
        &[("HYDRANT_METRICS_TOKEN", "tok")],
    );
    let (st, _) = get(d.addr, "/metrics").unwrap();
    assert_eq!(st, 401);
    let (st, body) = common::raw(
        d.addr,
        format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer tok\r\nConnection: close\r\n\r\n",
            d.addr
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(st, 200);
    assert!(body.contains("hydrant_"), "{body}");
}

/// `--allow-public-unauthenticated` is announced in the log at every start.
#[test]
fn allow_public_unauthenticated_logs_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for _ in 0..2 {
        let mut d = Daemon::start(&data, &["--allow-public-unauthenticated"]);
        let log = d.log_text();
        assert!(
            log.contains("WARN") && log.contains("--allow-public-unauthenticated is set"),
            "{log}"
        );
        d.terminate();
    }
}
