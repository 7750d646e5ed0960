//! `hydrant put` and the HTTP benchmarks against a real `hydrantd` started by the test.
//!
//! hydrantd is another package's binary, so `CARGO_BIN_EXE_hydrantd` does not exist here: the
//! test takes `$HYDRANT_HYDRANTD`, or `hydrantd` beside the `hydrant` binary in the same target
//! directory, building it there with cargo when missing. If that fails the test fails and says so.
//! `hydrant bench` runs `hydrant-bench`, found (or built) beside `hydrant` the same way.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{hydrant, ok};
use hydrant_wal::{Lsn, WalView};

fn hydrant_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_hydrant"))
}

/// The hydrantd binary, built once per test process if missing.
fn hydrantd() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| beside_hydrant("HYDRANT_HYDRANTD", "hydrant-engine", "hydrantd"))
        .clone()
}

/// The hydrant-bench binary `hydrant bench` runs, built beside `hydrant` once per test process
/// if missing.
fn ensure_hydrant_bench() {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| beside_hydrant("", "hydrant-bench", "hydrant-bench"));
}

/// Another package's binary: `$env_var` when set (and `env_var` not empty), else `bin` beside
/// the `hydrant` binary in the same target directory, built there with cargo when missing.
fn beside_hydrant(env_var: &str, package: &str, bin: &str) -> PathBuf {
    if let Some(p) = (!env_var.is_empty())
        .then(|| std::env::var_os(env_var))
        .flatten()
    {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{env_var}={} is not a file", p.display());
        return p;
    }
    let profile_dir = hydrant_bin().parent().unwrap();
    let path = profile_dir.join(bin);
    if !path.is_file() {
        let target_dir = profile_dir.parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", package, "--bin", bin])
            .env("CARGO_TARGET_DIR", target_dir);
        if profile_dir.file_name().unwrap() == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().unwrap();
        assert!(
            status.success() && path.is_file(),
            "{bin} is missing at {} and `cargo build -p {package} --bin {bin}` failed; build it{}",
            path.display(),
            if env_var.is_empty() {
                String::new()
            } else {
                format!(" or set {env_var}")
            }
        );
    }
    path
}

struct Daemon {
    child: Child,
    addr: SocketAddr,
    data: PathBuf,
}

impl Daemon {
    fn start(data: &Path, extra: &[&str]) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::fs::File::create(data.with_extension("log")).unwrap();
        let child = Command::new(hydrantd())
            .arg("--data-dir")
            .arg(data)
            .arg("--listen")
            .arg(addr.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut d = Daemon {
            child,
            addr,
            data: data.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                d.child.try_wait().unwrap().is_none(),
                "hydrantd exited: {}",
                std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
            );
            if http(addr, "GET", "/health/ready", None, "").0 == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "hydrantd not ready in 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stop(mut self) {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                self.child.kill().unwrap();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-shot HTTP/1.1 request; returns (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    target: Option<&str>,
    body: &str,
) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let target = target
        .map(|t| format!("X-Amz-Target: Firehose_20150804.{t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-amz-json-1.1\r\n{target}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

fn create_stream(d: &Daemon, name: &str) {
    let body = serde_json::json!({
        "DeliveryStreamName": name,
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::123456789012:role/t",
            "BucketARN": "arn:aws:s3:::put-test",
            "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 900}
        }
    });
    let (status, reply) = http(
        d.addr,
        "POST",
        "/",
        Some("CreateDeliveryStream"),
        &body.to_string(),
    );
    assert_eq!(status, 200, "{reply}");
    // Creation is asynchronous (CREATING, then ACTIVE), as Firehose's.
    let deadline = Instant::now() + Duration::from_secs(30);
    let describe = serde_json::json!({ "DeliveryStreamName": name }).to_string();
    loop {
        let (_, reply) = http(
            d.addr,
            "POST",
            "/",
            Some("DescribeDeliveryStream"),
            &describe,
        );
        if reply.contains("\"ACTIVE\"") {
            return;
        }
        assert!(Instant::now() < deadline, "{name} not ACTIVE: {reply}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `hydrant put` of `file` into `stream` at `endpoint`, with `more` arguments.
fn put(stream: &str, file: &Path, endpoint: &str, more: &[&str]) -> Output {
    let mut args = vec![
        "put",
        stream,
        file.to_str().unwrap(),
        "--endpoint",
        endpoint,
    ];
    args.extend(more);
    hydrant(&args)
}

/// The lines of the test file: varied sizes (some large, so batches are cut by the 4 MiB
/// limit before 500 records), an empty line, non-ASCII text, and a last line with no newline.
fn lines() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0..1500u64)
        .map(|i| {
            let len = if i % 3 == 0 {
                45_000
            } else {
                (i * 7919 % 400) as usize
            };
            format!("{i} é {}\n", "z".repeat(len)).into_bytes()
        })
        .collect();
    v.push(b"\n".to_vec());
    v.push(b"last line without newline".to_vec());
    v
}

fn wal_records(data: &Path, stream: &str) -> Vec<Vec<u8>> {
    let view = WalView::open(data.join("streams").join(stream).join("wal")).unwrap();
    let mut reader = view.reader(Lsn::ZERO).unwrap();
    let mut out = Vec::new();
    while let Some(frame) = reader.next_frame().unwrap() {
        for (_, r) in frame.records() {
            out.push(r.to_vec());
        }
    }
    out
}

#[test]
fn put_sends_every_line_once_with_exact_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lines = lines();
    let file = tmp.path().join("lines.txt");
    std::fs::write(&file, lines.concat()).unwrap();

    let d = Daemon::start(&data, &[]);
    let endpoint = d.endpoint();
    create_stream(&d, "lines");
    let o = put("lines", &file, &endpoint, &["--json", "--quiet"]);
    ok(&o);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["records"], lines.len());
    assert_eq!(summary["failed_records"], 0);
    assert!(
        // 500 lines of 45 KB alone are 22.5 MB: at least 6 batches of at most 4 MiB, where
        // the 500-record limit alone would make 4.
        summary["batches"].as_u64().unwrap() >= 6,
        "the 4 MiB limit cut batches: {summary}"
    );

    // A stream that does not exist: a clear error, exit 2.
    let o = put("nope", &file, &endpoint, &["--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ResourceNotFoundException"));
    let data = d.data.clone();
    d.stop();

    assert_eq!(
        wal_records(&data, "lines"),
        lines,
        "every line once, in order, exact bytes"
    );
}

#[test]
fn put_signs_with_sigv4() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Create the stream unsigned first, then restart with keys (the registry keeps it).
    let d = Daemon::start(&data, &[]);
    create_stream(&d, "signed");
    d.stop();
    let d = Daemon::start(
        &data,
        &[
            "--access-key-id",
            "AKIDTEST",
            "--secret-access-key",
            "s3cr3t",
        ],
    );
    let file = tmp.path().join("f.txt");
    std::fs::write(&file, "a\nb\nc\n").unwrap();
    let endpoint = d.endpoint();
    // The access key AKIDTEST with the secret key `secret`.
    let signed = |secret: &str, more: &[&str]| {
        let mut args = vec![
            "--quiet",
            "--access-key",
            "AKIDTEST",
            "--secret-key",
            secret,
        ];
        args.extend(more);
        put("signed", &file, &endpoint, &args)
    };
    ok(&signed("s3cr3t", &["--region", "eu-west-1"]));
    let o = signed("wrong", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Signature"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    d.stop();
    assert_eq!(
        wal_records(&data, "signed"),
        vec![b"a\n".to_vec(), b"b\n".to_vec(), b"c\n".to_vec()]
    );
}

/// `hydrant bench` is `hydrant-bench` with the same arguments: its help, its exit status.
#[test]
fn hydrant_bench_runs_hydrant_bench() {
    ensure_hydrant_bench();
    for args in [&["bench", "--help"][..], &["bench", "wal", "--help"]] {
        let o = hydrant(args);
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {text}");
        assert!(
            text.contains("Usage:") && text.contains("hydrant-bench"),
            "{args:?}: {text}"
        );
    }
    let o = hydrant(&["bench", "wal", "--seconds", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--seconds"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Without `hydrant-bench` beside it or on PATH, `hydrant bench` says where it looked and how
/// to build it (exit status 2), rather than failing obscurely.
#[test]
fn hydrant_bench_without_the_bench_binary_says_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    let alone = tmp.path().join("hydrant");
    std::fs::copy(hydrant_bin(), &alone).unwrap();
    let o = Command::new(&alone)
        .args(["bench", "wal"])
        .env("PATH", tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("hydrant-bench")
            && err.contains(&tmp.path().join("hydrant-bench").display().to_string())
            && err.contains("cargo build --release -p hydrant-bench"),
        "{err}"
    );
}

#[test]
fn bench_put_and_deliver_run_and_print_their_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = hydrantd();
    ensure_hydrant_bench();
    // `hydrant bench <which>` for half a second in the temporary directory, with `more`.
    let bench = |which: &str, more: &[&str]| {
        let dir = tmp.path().to_str().unwrap();
        let mut args = vec!["bench", which, "--seconds", "0.5", "--dir", dir];
        args.extend(["--hydrantd", bin.to_str().unwrap()]);
        args.extend(more);
        ok(&hydrant(&args))
    };
    let text = bench("put", &[]);
    assert!(
        text.contains("P1") && text.contains("P2") && text.contains("WAL S1"),
        "{text}"
    );

    let text = bench("deliver", &["--codecs", "GZIP", "--drain-seconds", "10"]);
    assert!(text.contains("GZIP"), "{text}");
    // With an s3s-fs at hand (tests/run-all.sh sets HYDRANT_S3S_FS) the run also measures
    // freshness to it; without one it says so.
    if std::env::var_os("HYDRANT_S3S_FS").is_some() {
        assert!(text.contains("GZIP through s3s-fs: p50"), "{text}");
    } else {
        assert!(
            text.contains("S3 server freshness") && text.contains("not measured"),
            "{text}"
        );
    }
}
