//! Shared helpers of the daemon-as-a-process tests: start `hydrantd` on a free port with a temp
//! data directory, raw HTTP requests, base64.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hydrant_tests::process::run_ok;

pub mod kinesalite;
pub mod objects;
pub mod s3s;
pub mod tansu;

pub const BIN: &str = env!("CARGO_BIN_EXE_hydrantd");

/// The daemon configuration of the HTTP endpoint tests: retries 50 ms apart, at most 200 ms, so
/// a test sees several attempts in well under a second.
pub const FAST_HTTP_RETRIES: &str =
    "[delivery]\nhttp_backoff_initial_ms = 50\nhttp_backoff_max_ms = 200\n";

/// A kill test's cycle count: the environment variable `var` when set (as a number), else
/// `default`; never fewer than `min`, so that every crash point fires.
pub fn kill_cycles(var: &str, default: usize, min: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(min)
}

/// Runs `script` under the test venv's Python and returns what it printed; a failure names
/// `what` and shows Python's stderr.
pub fn python_run(what: &str, script: &str) -> Vec<u8> {
    run_ok(Command::new(python()).arg("-c").arg(script), what).stdout
}

/// [`python_run`] of an outside reader (DuckDB, pyarrow) whose output is JSON, parsed.
pub fn python_json<T: serde::de::DeserializeOwned>(what: &str, script: &str) -> T {
    serde_json::from_slice(&python_run(what, script)).unwrap()
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The Python interpreter of the client tests (boto3, the aws cli): `HYDRANT_PYTHON`, or
/// `<workspace>/.venv/bin/python`. Missing, the test fails with how to create it (never skips).
pub fn python() -> PathBuf {
    let p = std::env::var_os("HYDRANT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "no Python for the client tests at {}: create it with `python3 -m venv .venv && \
         .venv/bin/pip install boto3 awscli pytest` in the workspace, or set HYDRANT_PYTHON",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `done`, polling every 100 ms; fails after 60 s with the daemon's log.
pub fn wait_for(what: &str, daemon: &Daemon, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within 60 s; log:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running daemon. Killed (SIGKILL) on drop.
pub struct Daemon {
    pub child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts hydrantd with `--data-dir data_dir --listen 127.0.0.1:<free>` plus `args`, and waits
    /// until /health/ready answers 200.
    pub fn start(data_dir: &Path, args: &[&str]) -> Daemon {
        Daemon::start_env(data_dir, args, &[])
    }

    pub fn start_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with(data_dir, args, env, None)
    }

    /// As [`Daemon::start_env`], with the process's descriptor limit (soft and hard) set to
    /// `nofile` when given (through the shell's `ulimit -n`).
    pub fn start_with(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Daemon {
        for attempt in 0..5 {
            let port = free_port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let log = data_dir.with_extension(format!("log{attempt}"));
            std::fs::create_dir_all(data_dir).unwrap();
            let logf = std::fs::File::create(&log).unwrap();
            let mut cmd = match nofile {
                None => Command::new(BIN),
                Some(n) => {
                    let mut c = Command::new("sh");
                    c.arg("-c")
                        .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                        .arg(BIN);
                    c
                }
            };
            cmd.arg("--data-dir")
                .arg(data_dir)
                .arg("--listen")
                .arg(addr.to_string())
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(logf);
            clear_hydrant_env(&mut cmd);
            cmd.env("HYDRANT_LOG", "info");
            for (k, v) in env {
                cmd.env(k, v);
            }
            let child = cmd.spawn().unwrap();
            let mut d = Daemon {
                child: Some(child),
                addr,
                data_dir: data_dir.to_path_buf(),
                log,
            };
            let tls = args.contains(&"--tls-cert");
            if d.wait_ready(Duration::from_secs(60), tls) {
                return d;
            }
            let text = std::fs::read_to_string(&d.log).unwrap_or_default();
            d.kill9();
            if !text.contains("Address already in use") {
                panic!("hydrantd did not become ready; log:\n{text}");
            }
        }
        panic!("could not find a free port for hydrantd");
    }

    /// Starts hydrantd as [`Daemon::start`] with `toml` as its configuration file (written
    /// beside the data directory).
    pub fn with_config(data_dir: &Path, toml: &str) -> Daemon {
        let cfg = data_dir.with_extension("toml");
        std::fs::write(&cfg, toml).unwrap();
        Daemon::start(data_dir, &["--config", cfg.to_str().unwrap()])
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits for /health/ready (plain HTTP) or, over TLS, for the log line announcing readiness.
    fn wait_ready(&mut self, limit: Duration, tls: bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    return false;
                }
            }
            if tls {
                if self.log_text().contains("recovery finished; ready") {
                    return true;
                }
            } else if let Ok((200, _)) = get(self.addr, "/health/ready") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = c.id().to_string();
        let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("hydrantd did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's resident memory (VmRSS of /proc/<pid>/status), bytes.
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.child.as_ref().expect("running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kib * 1024
    }

    /// The number of descriptors the daemon holds (/proc/<pid>/fd).
    pub fn open_fds(&self) -> usize {
        let pid = self.child.as_ref().expect("running").id();
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn clear_hydrant_env(cmd: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("HYDRANT_") {
            cmd.env_remove(k);
        }
    }
}

/// A raw HTTP/1.1 exchange (Connection: close). Returns status and body.
pub fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    // A server may answer and close before reading a huge body: ignore write errors, read the
    // answer.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// POST / with an X-Amz-Target and Content-Type (when given) and a body.
pub fn post(
    addr: SocketAddr,
    target: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    try_post(addr, target, content_type, body).unwrap()
}

/// As [`post`], returning I/O errors (the daemon may be dead).
pub fn try_post(
    addr: SocketAddr,
    target: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = target {
        req.push_str(&format!("X-Amz-Target: {t}\r\n"));
    }
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes)
}

/// One PutRecordBatch of `records` into `stream` (a fresh connection): the reply's JSON when the
/// daemon answered 200, else `None`, after a short pause (the daemon may be dead or starting).
pub fn try_put_batch<R: AsRef<[u8]>>(
    addr: SocketAddr,
    stream: &str,
    records: impl IntoIterator<Item = R>,
) -> Option<serde_json::Value> {
    let body = format!(
        r#"{{"DeliveryStreamName":"{stream}","Records":[{}]}}"#,
        records
            .into_iter()
            .map(|r| format!(r#"{{"Data":"{}"}}"#, b64(r.as_ref())))
            .collect::<Vec<_>>()
            .join(",")
    );
    match try_post(
        addr,
        Some("Firehose_20150804.PutRecordBatch"),
        Some("application/x-amz-json-1.1"),
        body.as_bytes(),
    ) {
        Ok((200, text)) => serde_json::from_str(&text).ok(),
        _ => {
            std::thread::sleep(std::time::Duration::from_millis(5));
            None
        }
    }
}

/// The records a kill test's clients saw acknowledged, by LSN.
pub type AckedByLsn = Arc<Mutex<BTreeMap<u64, Vec<u8>>>>;

/// One PutRecordBatch of `records` into `stream` from a kill test's client: the records the
/// daemon acknowledged go into `acked` under their LSN (a per-record failure, or an LSN
/// acknowledged twice, fails the test). Returns how many were acknowledged: 0 when the daemon
/// died mid-request.
pub fn put_recording_acks(
    addr: SocketAddr,
    stream: &str,
    records: Vec<Vec<u8>>,
    acked: &AckedByLsn,
) -> usize {
    let Some(v) = try_put_batch(addr, stream, &records) else {
        return 0;
    };
    assert_eq!(v["FailedPutCount"], 0, "per-record failures: {v}");
    let mut acked = acked.lock().unwrap();
    let mut n = 0;
    for (e, r) in v["RequestResponses"]
        .as_array()
        .unwrap()
        .iter()
        .zip(records)
    {
        let (_, lsn) = hydrant_engine::record_id::decode(e["RecordId"].as_str().unwrap()).unwrap();
        assert!(
            acked.insert(lsn.0, r).is_none(),
            "LSN {lsn} acknowledged twice"
        );
        n += 1;
    }
    n
}

/// Where a kill test's record comes from: its cycle, its client, the client's batch and its
/// index in the batch.
pub struct RecordAt {
    pub cycle: usize,
    pub client: usize,
    pub batch: usize,
    pub index: usize,
}

impl RecordAt {
    /// The record's unique name, `c<cycle>-k<client>-b<batch>-r<index>`.
    pub fn key(&self) -> String {
        format!(
            "c{}-k{}-b{}-r{}",
            self.cycle, self.client, self.batch, self.index
        )
    }
}

/// A kill test's client `client` in cycle `cycle`: until `stop`, puts batches of 1 to 40 records
/// into `stream` ([`put_recording_acks`], so what is acknowledged goes into `acked`), each made by
/// `record`. The random numbers are seeded with the cycle and the client, so a run repeats.
fn kill_client(
    addr: SocketAddr,
    stream: &str,
    (cycle, client): (usize, usize),
    stop: &std::sync::atomic::AtomicBool,
    acked: &AckedByLsn,
    record: &impl Fn(&mut rand::rngs::StdRng, &RecordAt) -> Vec<u8>,
) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64((cycle * 100 + client) as u64);
    let mut batch = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let count = rng.gen_range(1..=40);
        let records: Vec<Vec<u8>> = (0..count)
            .map(|index| {
                let at = RecordAt {
                    cycle,
                    client,
                    batch,
                    index,
                };
                record(&mut rng, &at)
            })
            .collect();
        batch += 1;
        put_recording_acks(addr, stream, records, acked);
    }
}

/// Waits until the daemon at `addr` reports an empty backlog for `stream`'s first destination:
/// every record delivered or in the error output. Fails when the backlog has not shrunk for
/// `limit` (delivery is stuck), not after a fixed total time: a large backlog on a slow machine
/// takes longer, and that is not a failure.
pub fn wait_drained(addr: SocketAddr, stream: &str, limit: Duration) {
    let head = format!(
        "hydrant_delivery_backlog_records{{stream=\"{stream}\",destination=\"destinationId-000000000001\"}} "
    );
    let mut least = f64::INFINITY;
    let mut progress = Instant::now();
    loop {
        let (_, metrics) = get(addr, "/metrics").unwrap();
        let backlog: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&head))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::INFINITY);
        if backlog == 0.0 {
            return;
        }
        if backlog < least {
            least = backlog;
            progress = Instant::now();
        }
        assert!(
            progress.elapsed() < limit,
            "backlog of {stream} stuck at {backlog} records for {limit:?}:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Creates `stream` with the ExtendedS3DestinationConfiguration `config` over the raw API and
/// waits for ACTIVE.
pub fn create_extended_s3(addr: SocketAddr, stream: &str, config: &serde_json::Value) {
    let request = serde_json::json!({
        "DeliveryStreamName": stream,
        "ExtendedS3DestinationConfiguration": config,
    });
    let (st, v) = call(addr, "CreateDeliveryStream", &request.to_string());
    assert_eq!(st, 200, "{v}");
    wait_active(addr, stream);
}

/// One create the Python refusal scripts expect refused: `base` (an
/// ExtendedS3DestinationConfiguration) after `change`, named (and explained) by `name`.
pub fn refusal(
    name: &str,
    mut base: serde_json::Value,
    change: &dyn Fn(&mut serde_json::Value),
) -> serde_json::Value {
    change(&mut base);
    serde_json::json!({
        "name": name,
        "member": "ExtendedS3DestinationConfiguration",
        "config": base,
        "why": name,
    })
}

/// An HTTP endpoint receiver and a daemon with [`FAST_HTTP_RETRIES`] on a fresh data
/// directory (`<tmp>/data`). Bind in this order: the daemon is dropped (stopped) first.
pub fn http_receiver_and_daemon() -> (
    hydrant_tests::http_receiver::HttpReceiver,
    tempfile::TempDir,
    PathBuf,
    Daemon,
) {
    let receiver = hydrant_tests::http_receiver::HttpReceiver::start_default().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::with_config(&data, FAST_HTTP_RETRIES);
    (receiver, tmp, data, daemon)
}

/// Checks the `refused` map of a `run_destinations_py` result: `count` creates refused, and the
/// message of each `(why, needle)` holds its needle.
pub fn assert_refused(out: &serde_json::Value, count: usize, reasons: &[(&str, &str)]) {
    let refused = out["refused"].as_object().unwrap();
    assert_eq!(refused.len(), count, "{refused:?}");
    for (why, needle) in reasons {
        let message = refused[*why].as_str().unwrap();
        assert!(message.contains(needle), "{why}: {message}");
    }
}

/// An ExtendedS3DestinationConfiguration into `bucket` with `codec` (CompressionFormat), 1 MiB
/// buffers and `interval_s` seconds.
pub fn s3_config(bucket: &str, codec: &str, interval_s: u32) -> serde_json::Value {
    serde_json::json!({
        "RoleARN": "arn:aws:iam::123456789012:role/r",
        "BucketARN": format!("arn:aws:s3:::{bucket}"),
        "CompressionFormat": codec,
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval_s},
    })
}

/// The ExtendedS3DestinationConfiguration of the partitioning tests: into `bucket`, one
/// partition per value of the records' `k` (jq), buffers of 1 MiB and `interval_s` seconds.
pub fn partitioned_by_k(bucket: &str, interval_s: u64) -> serde_json::Value {
    serde_json::json!({
        "RoleARN": "arn:aws:iam::123456789012:role/r",
        "BucketARN": format!("arn:aws:s3:::{bucket}"),
        "Prefix": "k=!{partitionKeyFromQuery:k}/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval_s},
        "DynamicPartitioningConfiguration": {"Enabled": true},
        "ProcessingConfiguration": {"Enabled": true, "Processors": [
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{k: .k}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]},
    })
}

/// Runs `tests/python/destinations.py` (boto3) against `endpoint` with `plan` (which streams to
/// create, what to put, what to describe), in `dir`; its JSON result.
pub fn run_destinations_py(
    endpoint: &str,
    plan: &serde_json::Value,
    dir: &Path,
) -> serde_json::Value {
    std::fs::create_dir_all(dir).unwrap();
    let plan_path = dir.join("plan.json");
    let out_path = dir.join("out.json");
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    run_ok(
        Command::new(python())
            .arg(workspace().join("tests/python/destinations.py"))
            .arg(endpoint)
            .arg(&plan_path)
            .arg(&out_path),
        "the boto3 script destinations.py",
    );
    serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap()
}

/// POST a Firehose operation with a JSON body.
pub fn call(addr: SocketAddr, op: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, text) = post(
        addr,
        Some(&format!("Firehose_20150804.{op}")),
        Some("application/x-amz-json-1.1"),
        body.as_bytes(),
    );
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, v)
}

pub fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Creates a stream over the raw API and waits for ACTIVE.
pub fn create_stream(addr: SocketAddr, name: &str) {
    let (st, v) = call(
        addr,
        "CreateDeliveryStream",
        &format!(
            r#"{{"DeliveryStreamName":"{name}","ExtendedS3DestinationConfiguration":{{"RoleARN":"arn:aws:iam::123456789012:role/r","BucketARN":"arn:aws:s3:::b"}}}}"#
        ),
    );
    assert_eq!(st, 200, "{v}");
    wait_active(addr, name);
}

pub fn wait_active(addr: SocketAddr, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, v) = call(
            addr,
            "DescribeDeliveryStream",
            &format!(r#"{{"DeliveryStreamName":"{name}"}}"#),
        );
        if st == 200 && v["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE" {
            return;
        }
        assert!(Instant::now() < deadline, "stream {name} not ACTIVE: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every record of a stream's WAL, read with the wal crate (the daemon must be stopped).
pub fn wal_records(data_dir: &Path, stream: &str) -> Vec<(u64, Vec<u8>)> {
    let dir = data_dir.join("streams").join(stream).join("wal");
    let view = hydrant_wal::WalView::open(&dir).unwrap();
    let mut r = view.reader(view.first_lsn()).unwrap();
    let mut out = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        out.extend(f.records().map(|(l, b)| (l.0, b.to_vec())));
    }
    out
}

/// The log file of each daemon [`spawn_with_config`] started, by pid, with the log's length when
/// it started: a kill cycle reads what that daemon wrote, and only that.
static SPAWNED: Mutex<BTreeMap<u32, (PathBuf, u64)>> = Mutex::new(BTreeMap::new());

/// The crash point a `HYDRANT_CRASH_AT` value names (`<point>[:<n>]`).
fn crash_point_name(crash: &str) -> &str {
    match crash.rsplit_once(':') {
        Some((p, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => crash,
    }
}

/// What a daemon wrote to `log` from `offset` on (empty if the log cannot be read).
fn log_since(log: &Path, offset: u64) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    String::from_utf8_lossy(text.get(offset as usize..).unwrap_or_default()).into_owned()
}

/// Asserts that a daemon died by SIGKILL at the crash point `point`: its exit status says
/// SIGKILL and its log (from `offset`) has the crash point's line naming `point`. Anything else
/// (a panic, an exit, another signal, a kill at another place) fails the cycle.
pub fn assert_killed_at(status: ExitStatus, log: &Path, offset: u64, point: &str) {
    let text = log_since(log, offset);
    assert_eq!(
        status.signal(),
        Some(9),
        "hydrantd ended with {status}, not SIGKILL at {point}; log:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("crash point reached: SIGKILL") && l.contains(point)),
        "hydrantd was killed, but not by the crash point {point}; log:\n{text}"
    );
}

/// Starts hydrantd with `--config cfg` (stderr appended to `<data>.log`, `HYDRANT_CRASH_AT` set
/// to `crash` if given); returns it once ready, or `None` with the child reaped if the crash
/// point killed it first (it can fire during start-up, when the worker resumes a backlog:
/// checked as [`assert_killed_at`]). A daemon without a crash point that dies before it is
/// ready fails the test. For the kill tests, which need the bare child to kill and restart.
pub fn spawn_with_config(
    data: &Path,
    cfg: &Path,
    crash: Option<&str>,
) -> Option<(Child, SocketAddr)> {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = data.with_extension("log");
    let offset = std::fs::metadata(&log).map_or(0, |m| m.len());
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(data)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--config")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap(),
        );
    clear_hydrant_env(&mut cmd);
    cmd.env("HYDRANT_LOG", "info");
    if let Some(c) = crash {
        cmd.env("HYDRANT_CRASH_AT", c);
    }
    let mut child = cmd.spawn().unwrap();
    SPAWNED
        .lock()
        .unwrap()
        .insert(child.id(), (log.clone(), offset));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            match crash {
                Some(c) => assert_killed_at(status, &log, offset, crash_point_name(c)),
                None => panic!(
                    "hydrantd died during start-up ({status}); log:\n{}",
                    log_since(&log, offset)
                ),
            }
            return None;
        }
        if let Ok((200, _)) = get(addr, "/health/ready") {
            return Some((child, addr));
        }
        assert!(
            Instant::now() < deadline,
            "hydrantd not ready; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` (`"TERM"`, `"INT"`, ...) to `child` with kill(1), and fails the test if it
/// could not be sent.
pub fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {}: {sent}", child.id());
}

/// A kill test's daemon and its tally: which crash points fired how often ("random" for a kill
/// at a random moment, "start-up" for a death while starting).
pub struct KillRun<'a> {
    pub data: &'a Path,
    pub cfg: &'a Path,
    pub fired: BTreeMap<&'static str, usize>,
}

impl KillRun<'_> {
    /// One cycle: starts hydrantd with the crash point `crash` armed (its name and its
    /// `HYDRANT_CRASH_AT` value), runs `setup` on its address, runs `clients` client threads
    /// (`client(addr, id, stop)`) until [`end_kill_cycle`] has ended it (at the point, or after
    /// `random_delay`), then stops and joins them. A daemon that died at its crash point while
    /// starting (checked by [`spawn_with_config`]) is counted and runs nothing else.
    pub fn cycle<C>(
        &mut self,
        crash: Option<(&'static str, String)>,
        random_delay: Duration,
        setup: impl FnOnce(SocketAddr),
        clients: usize,
        client: C,
    ) where
        C: Fn(SocketAddr, usize, Arc<std::sync::atomic::AtomicBool>) + Send + Sync + 'static,
    {
        let armed = crash.as_ref().map(|c| c.1.as_str());
        let Some((mut child, addr)) = spawn_with_config(self.data, self.cfg, armed) else {
            *self
                .fired
                .entry(crash.map_or("start-up", |c| c.0))
                .or_default() += 1;
            return;
        };
        setup(addr);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = Arc::new(client);
        let handles: Vec<_> = (0..clients)
            .map(|id| {
                let (stop, client) = (stop.clone(), client.clone());
                std::thread::spawn(move || client(addr, id, stop))
            })
            .collect();
        end_kill_cycle(
            &mut child,
            crash.map(|c| c.0),
            random_delay,
            &mut self.fired,
        );
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for h in handles {
            h.join().unwrap();
        }
    }
}

/// How many clients put records into a kill test's stream ([`KillRun::under_load`]).
pub const KILL_CLIENTS: usize = 3;

/// The configuration of the kill tests of delivery: 1 MiB segments (so that rotations happen
/// under the kills too), retries 50 to 300 ms apart.
pub const KILL_DELIVERY_TOML: &str =
    "[wal]\nsegment_bytes = 1048576\n\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_ms = 300\n";

/// A kill test's directories: a temporary directory holding the data directory (`data`, not
/// created) and the configuration file `hydrant.toml` with `toml` in it.
pub fn kill_dirs(toml: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cfg) = (tmp.path().join("data"), tmp.path().join("hydrant.toml"));
    std::fs::write(&cfg, toml).unwrap();
    (tmp, data, cfg)
}

/// Starts a daemon on `data` and `cfg` without crash point, runs `setup` on its address (create
/// the streams), then kills it.
pub fn set_up_with_daemon(data: &Path, cfg: &Path, setup: impl FnOnce(SocketAddr)) {
    let (mut child, addr) = spawn_with_config(data, cfg, None).expect("setup start");
    setup(addr);
    let _ = child.kill();
    let _ = child.wait();
}

/// After the kills: a clean daemon on `data` and `cfg` drains `stream`'s backlog (failing when
/// it stops shrinking for `limit`) and stops on SIGTERM with success.
pub fn drain_and_stop(data: &Path, cfg: &Path, stream: &str, limit: Duration) {
    let (mut child, addr) = spawn_with_config(data, cfg, None).expect("clean start");
    wait_drained(addr, stream, limit);
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
}

impl<'a> KillRun<'a> {
    /// A run on `data` and `cfg`, nothing fired yet.
    pub fn new(data: &'a Path, cfg: &'a Path) -> Self {
        KillRun {
            data,
            cfg,
            fired: BTreeMap::new(),
        }
    }

    /// `cycles` kill cycles ([`KillRun::cycle`]) under load: [`KILL_CLIENTS`] clients put
    /// records made by `record` (from the client's random numbers and where the record comes
    /// from) into `stream`, in batches of 1 to 40. Cycle `c` arms the crash point `point(c)` at
    /// one of its first three hits, or, when that is `None`, kills at a random moment
    /// `random_ms` after the start; the random numbers come from `seed`. Prints the tally and
    /// returns the records acknowledged, by LSN.
    pub fn under_load<R>(
        &mut self,
        cycles: usize,
        seed: u64,
        random_ms: std::ops::Range<u64>,
        point: impl Fn(usize) -> Option<&'static str>,
        stream: &'static str,
        record: R,
    ) -> BTreeMap<u64, Vec<u8>>
    where
        R: Fn(&mut rand::rngs::StdRng, &RecordAt) -> Vec<u8> + Send + Sync + 'static,
    {
        use rand::{Rng, SeedableRng};
        let acked: AckedByLsn = Arc::new(Mutex::new(BTreeMap::new()));
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let record = Arc::new(record);
        let started = Instant::now();
        for cycle in 0..cycles {
            let crash = point(cycle).map(|p| (p, format!("{p}:{}", rng.gen_range(1..=3))));
            let delay = Duration::from_millis(rng.gen_range(random_ms.clone()));
            let (acked, record) = (acked.clone(), record.clone());
            let client = move |addr, id, stop: Arc<std::sync::atomic::AtomicBool>| {
                kill_client(addr, stream, (cycle, id), &stop, &acked, &*record);
            };
            self.cycle(crash, delay, |_| {}, KILL_CLIENTS, client);
        }
        let acked = acked.lock().unwrap().clone();
        eprintln!(
            "{cycles} kill cycles in {:?}: {:?}, {} records acknowledged",
            started.elapsed(),
            self.fired,
            acked.len()
        );
        acked
    }
}

/// Asserts that each crash point of `points` fired at least `min` times in a kill test's `fired`
/// tally.
pub fn assert_fired(fired: &BTreeMap<&'static str, usize>, points: &[&str], min: usize) {
    for p in points {
        let n = fired.get(p).copied().unwrap_or(0);
        assert!(
            n >= min,
            "crash point {p} fired {n} times, fewer than {min}: {fired:?}"
        );
    }
}

/// Ends one kill-test cycle: with a crash point armed, waits (up to 5 s) for the daemon to kill
/// itself there, checks that it did (SIGKILL, and the crash point's log line naming `point`:
/// [`assert_killed_at`]) and counts it under `point`; a point armed and not reached in time
/// fails the test. Without one, kills it after `random_delay` and counts "random". The child
/// must come from [`spawn_with_config`].
pub fn end_kill_cycle(
    child: &mut Child,
    point: Option<&'static str>,
    random_delay: Duration,
    fired: &mut std::collections::BTreeMap<&'static str, usize>,
) {
    end_kill_cycle_with(child, point, random_delay, fired, None);
}

/// As [`end_kill_cycle`], for a test in which an armed point may legitimately not be reached
/// within the cycle: `unreached_because` says why, and such a cycle is killed and counted under
/// "point-not-reached" instead of failing.
pub fn end_kill_cycle_with(
    child: &mut Child,
    point: Option<&'static str>,
    random_delay: Duration,
    fired: &mut std::collections::BTreeMap<&'static str, usize>,
    unreached_because: Option<&str>,
) {
    let (log, offset) = SPAWNED
        .lock()
        .unwrap()
        .remove(&child.id())
        .expect("the child was started by spawn_with_config");
    match point {
        Some(point) => {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    assert_killed_at(status, &log, offset, point);
                    *fired.entry(point).or_default() += 1;
                    return;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    match unreached_because {
                        Some(_) => *fired.entry("point-not-reached").or_default() += 1,
                        None => panic!(
                            "crash point {point} was armed and not reached within 5 s; log:\n{}",
                            log_since(&log, offset)
                        ),
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        None => {
            std::thread::sleep(random_delay);
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "hydrantd ended by itself ({status}) before the random kill; log:\n{}",
                    log_since(&log, offset)
                );
            }
            let _ = child.kill();
            let _ = child.wait();
            *fired.entry("random").or_default() += 1;
        }
    }
}
