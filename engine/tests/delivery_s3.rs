//! Delivery to a real S3 server (s3s-fs 0.14.1, SigV4-checking, objects as plain files), the
//! daemon as a process: every codec exactly once; the server down and back (puts keep being
//! acknowledged, everything arrives once); the retry window ending in the error output
//! (failed-record JSON, `s3-failed`); the disk budget reached while the sink is down, intake
//! resuming once delivery and retention free the log; kill -9 of the daemon while it delivers,
//! at random moments and at its crash points, multipart uploads included.
//!
//! The s3s-fs binary comes from `$HYDRANT_S3S_FS`, else `<workspace>/target/tools/bin/s3s-fs`;
//! a missing binary fails the tests (install: `cargo install --locked s3s-fs@0.14.1 --features
//! binary --root target/tools`).
#![allow(clippy::unwrap_used)]

mod common;

use common::objects::{check_exactly_once, object_records, wait_delivered};
use common::s3s::{S3sFs, KEY, SECRET};
use common::{b64, call, Daemon};
use hydrant_sinks::Compression;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn config_file(dir: &Path, endpoint: &str, extra: &str) -> PathBuf {
    let p = dir.join("hydrant.toml");
    std::fs::write(
        &p,
        format!(
            "streams = []\n\n[s3]\nendpoint = \"{endpoint}\"\nforce_path_style = true\n\
             access_key_id = \"{KEY}\"\nsecret_access_key = \"{SECRET}\"\nmax_attempts = 1\n\
             attempt_timeout_secs = 5\nconnect_timeout_ms = 500\n\n[delivery]\n\
             backoff_initial_ms = 50\nbackoff_max_ms = 300\n{extra}"
        ),
    )
    .unwrap();
    p
}

/// A daemon in `dir/data` whose S3 endpoint has nothing listening (every attempt fails at
/// connect), with `extra` in its `[delivery]` section; the daemon, its data directory and its
/// configuration file.
fn dead_s3_daemon(dir: &Path, extra: &str) -> (Daemon, PathBuf, PathBuf) {
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let cfg = config_file(dir, &dead, extra);
    let data = dir.join("data");
    let d = Daemon::start(&data, &["--config", cfg.to_str().unwrap()]);
    (d, data, cfg)
}

/// Creates `name` into `bucket` with `codec`, buffers of 1 MiB and 0 s, and the members of
/// `extra` (an object) on top.
fn create(addr: SocketAddr, name: &str, bucket: &str, codec: &str, extra: serde_json::Value) {
    let mut config = common::s3_config(bucket, codec, 0);
    if let (Some(c), serde_json::Value::Object(extra)) = (config.as_object_mut(), extra) {
        c.extend(extra);
    }
    common::create_extended_s3(addr, name, &config);
}

fn batch_body(stream: &str, records: &[Vec<u8>]) -> String {
    format!(
        r#"{{"DeliveryStreamName":"{stream}","Records":[{}]}}"#,
        records
            .iter()
            .map(|r| format!(r#"{{"Data":"{}"}}"#, b64(r)))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// One PutRecordBatch; the acknowledged records by LSN, or the HTTP status and body.
fn put(
    addr: SocketAddr,
    stream: &str,
    records: Vec<Vec<u8>>,
) -> Result<BTreeMap<u64, Vec<u8>>, (u16, serde_json::Value)> {
    let (st, v) = call(addr, "PutRecordBatch", &batch_body(stream, &records));
    if st != 200 {
        return Err((st, v));
    }
    assert_eq!(v["FailedPutCount"], 0, "{v}");
    Ok(v["RequestResponses"]
        .as_array()
        .unwrap()
        .iter()
        .zip(records)
        .map(|(e, r)| {
            let (_, lsn) =
                hydrant_engine::record_id::decode(e["RecordId"].as_str().unwrap()).unwrap();
            (lsn.0, r)
        })
        .collect())
}

fn records(tag: &str, b: usize, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{tag}-{b}-{i}\n").into_bytes())
        .collect()
}

/// The value of a destination's metric; a metric missing from `/metrics` (renamed, or never
/// registered) fails the test rather than reading as 0.
/// Waits up to 10 s for `stream`'s backlog to be empty; `what` names the failure.
fn wait_backlog_empty(addr: SocketAddr, stream: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(addr, "hydrant_delivery_backlog_records", stream) > 0.0 {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric(addr: SocketAddr, name: &str, stream: &str) -> f64 {
    let (_, text) = common::get(addr, "/metrics").unwrap();
    let head = format!("{name}{{stream=\"{stream}\",destination=\"destinationId-000000000001\"}} ");
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(&head))
        .unwrap_or_else(|| panic!("metric {head}is missing from /metrics:\n{text}"));
    value
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("metric {head}has value {value:?}: {e}"))
}

#[test]
fn every_codec_to_s3s_fs_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let buckets: Vec<String> = Compression::ALL
        .iter()
        .map(|c| {
            format!(
                "s3-{}",
                c.firehose_name().to_ascii_lowercase().replace('_', "-")
            )
        })
        .collect();
    let bucket_refs: Vec<&str> = buckets.iter().map(String::as_str).collect();
    let s3 = S3sFs::start(&tmp.path().join("s3"), &bucket_refs);
    let cfg = config_file(tmp.path(), &s3.endpoint(), "");
    let data = tmp.path().join("data");
    let d = Daemon::start(&data, &["--config", cfg.to_str().unwrap()]);
    let mut all = Vec::new();
    for (codec, bucket) in Compression::ALL.iter().zip(&buckets) {
        let name = format!("s3-{}", codec.firehose_name());
        create(
            d.addr,
            &name,
            bucket,
            codec.firehose_name(),
            serde_json::json!({}),
        );
        let mut acked = BTreeMap::new();
        for b in 0..6 {
            acked.extend(put(d.addr, &name, records(&name, b, 40)).unwrap());
        }
        all.push((*codec, name, bucket.clone(), acked));
    }
    for (codec, name, bucket, acked) in &all {
        let objects = wait_delivered(
            &s3.data.join(bucket),
            name,
            *codec,
            acked,
            Duration::from_secs(30),
        );
        assert!(objects
            .keys()
            .all(|k| k.ends_with(codec.default_extension())));
        // Nothing went to the local store: S3 was reachable.
        assert!(!data.join("objects").join(bucket).join("s3-failed").exists());
    }
}

#[test]
fn s3_down_and_back_delivers_everything_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s3 = S3sFs::start(&tmp.path().join("s3"), &["downback"]);
    let cfg = config_file(tmp.path(), &s3.endpoint(), "");
    let data = tmp.path().join("data");
    let d = Daemon::start(&data, &["--config", cfg.to_str().unwrap()]);
    create(
        d.addr,
        "downback",
        "downback",
        "GZIP",
        serde_json::json!({}),
    );
    let root = s3.data.join("downback");
    let mut acked = BTreeMap::new();
    acked.extend(put(d.addr, "downback", records("up", 0, 50)).unwrap());
    wait_delivered(
        &root,
        "downback",
        Compression::Gzip,
        &acked,
        Duration::from_secs(20),
    );

    s3.down();
    for b in 0..20 {
        // Intake does not depend on the sink.
        acked.extend(put(d.addr, "downback", records("down", b, 50)).unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(d.addr, "hydrant_delivery_retries_total", "downback") < 2.0 {
        assert!(Instant::now() < deadline, "no failed attempts counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(metric(d.addr, "hydrant_delivery_backlog_records", "downback") > 0.0);
    assert!(metric(d.addr, "hydrant_delivery_to_s3_success", "downback") < 1.0);

    s3.up();
    let objects = wait_delivered(
        &root,
        "downback",
        Compression::Gzip,
        &acked,
        Duration::from_secs(30),
    );
    eprintln!("{} records in {} objects", acked.len(), objects.len());
    wait_backlog_empty(d.addr, "downback", "backlog never drained");
    assert_eq!(
        metric(
            d.addr,
            "hydrant_delivery_error_output_records_total",
            "downback"
        ),
        0.0
    );
}

/// Data freshness counts a batch that a restarted daemon sends again: after kill -9 while S3 is
/// down, the pending batch's record is still the oldest undelivered, and its age is what
/// `DeliveryToS3.DataFreshness` shows (it once read 0 s with the record in the backlog).
#[test]
fn freshness_counts_a_batch_resent_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, data, cfg) = dead_s3_daemon(tmp.path(), "");
    create(
        d.addr,
        "stale",
        "stale",
        "UNCOMPRESSED",
        serde_json::json!({}),
    );
    put(d.addr, "stale", records("old", 0, 1)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(d.addr, "hydrant_delivery_retries_total", "stale") < 1.0 {
        assert!(Instant::now() < deadline, "no failed attempt counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.kill9();
    std::thread::sleep(Duration::from_secs(2));
    let d = Daemon::start(&data, &["--config", cfg.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(d.addr, "hydrant_delivery_retries_total", "stale") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the restarted daemon never sent the batch"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        metric(d.addr, "hydrant_delivery_backlog_records", "stale"),
        1.0
    );
    let freshness = metric(
        d.addr,
        "hydrant_delivery_to_s3_data_freshness_seconds",
        "stale",
    );
    assert!(
        freshness >= 2.0,
        "freshness {freshness} s with a record waiting since before the restart"
    );
}

#[test]
fn retry_window_ends_in_the_error_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, data, _) = dead_s3_daemon(tmp.path(), "retry_seconds = 2\n");
    create(
        d.addr,
        "failing",
        "failing",
        "UNCOMPRESSED",
        serde_json::json!({
            "Prefix": "data/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        }),
    );
    let mut acked = BTreeMap::new();
    for b in 0..3 {
        acked.extend(put(d.addr, "failing", records("lost", b, 30)).unwrap());
    }
    let root = data.join("objects/failing/errors/s3-failed");
    let deadline = Instant::now() + Duration::from_secs(30);
    let found: BTreeMap<u64, Vec<u8>> = loop {
        let mut found = BTreeMap::new();
        for (key, path) in common::objects::object_files(&root, "failing-") {
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(v["attemptsMade"].as_u64().unwrap() >= 1, "{v}");
                assert!(v["arrivalTimestamp"].as_u64().unwrap() > 0, "{v}");
                assert!(v["attemptEndingTimestamp"].as_u64().unwrap() > 0, "{v}");
                assert!(
                    v["errorCode"].as_str().unwrap().starts_with("S3."),
                    "{key}: {v}"
                );
                let raw = common::objects::raw_data(&v);
                let lsn = acked
                    .iter()
                    .find(|(_, r)| **r == raw)
                    .map(|(l, _)| *l)
                    .unwrap_or_else(|| panic!("unknown record in the error output: {v}"));
                assert!(found.insert(lsn, raw).is_none(), "record twice: {v}");
            }
        }
        if found.len() >= acked.len() {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} records in the error output",
            found.len(),
            acked.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(found, acked);
    // The cursor moved on: nothing is waiting.
    wait_backlog_empty(d.addr, "failing", "the cursor did not move on");
    assert_eq!(
        metric(
            d.addr,
            "hydrant_delivery_error_output_records_total",
            "failing"
        ),
        acked.len() as f64
    );
    assert!(
        !data.join("objects/failing/data").exists(),
        "no data object"
    );
}

#[test]
fn disk_budget_reached_while_the_sink_is_down_then_intake_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s3 = S3sFs::start(&tmp.path().join("s3"), &["budget"]);
    s3.down();
    let cfg = config_file(
        tmp.path(),
        &s3.endpoint(),
        "retain_delivered_seconds = 0\nretain_delivered_bytes = 0\n",
    );
    let data = tmp.path().join("data");
    let d = Daemon::start(
        &data,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--segment-bytes",
            "65536",
            "--stream-budget-bytes",
            "262144",
        ],
    );
    create(d.addr, "budget", "budget", "GZIP", serde_json::json!({}));
    let pad = "p".repeat(500);
    let mut acked = BTreeMap::new();
    let mut b = 0;
    let refused = loop {
        let recs: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("budget-{b}-{i}-{pad}\n").into_bytes())
            .collect();
        b += 1;
        match put(d.addr, "budget", recs) {
            Ok(a) => acked.extend(a),
            Err(e) => break e,
        }
        assert!(b < 10_000, "the budget was never reached");
    };
    assert_eq!(refused.0, 503, "{:?}", refused.1);
    assert_eq!(refused.1["__type"], "ServiceUnavailableException");
    assert!(!acked.is_empty());

    // The sink returns: delivery drains the log, retention (window 0) frees the segments, and
    // intake resumes by itself.
    s3.up();
    let root = s3.data.join("budget");
    wait_delivered(
        &root,
        "budget",
        Compression::Gzip,
        &acked,
        Duration::from_secs(60),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let recs: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("budget-{b}-{i}-{pad}\n").into_bytes())
            .collect();
        b += 1;
        match put(d.addr, "budget", recs) {
            Ok(a) => {
                acked.extend(a);
                break;
            }
            Err((st, v)) => {
                assert_eq!(st, 503, "{v}");
                assert!(Instant::now() < deadline, "intake never resumed: {v}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    wait_delivered(
        &root,
        "budget",
        Compression::Gzip,
        &acked,
        Duration::from_secs(30),
    );
}

type Acked = common::AckedByLsn;

/// A client of the S3 kill test: PutRecordBatch of 3 MiB (100 records of 30 KiB) until
/// stopped; every acknowledged record goes into `acked` under its LSN.
fn kill_client(
    addr: SocketAddr,
    id: usize,
    cycle: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    acked: Acked,
) {
    let pad = "z".repeat(30 * 1024);
    let mut batch_no = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let records: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("c{cycle}-k{id}-b{batch_no}-r{i}-{pad}\n").into_bytes())
            .collect();
        batch_no += 1;
        // 0 acknowledged: the daemon died mid-request.
        common::put_recording_acks(addr, "s3kill", records, &acked);
    }
}

/// kill -9 of hydrantd while it delivers to a real S3 server: at random moments and at the
/// crash points `delivery::after_intent` (intent recorded, nothing sent), `delivery::mid_upload`
/// (a multipart upload with its first part in S3, not completed: the 17 MiB buffers make every
/// full batch a multipart upload) and `delivery::after_send` (object in S3, cursor not
/// advanced), `HYDRANT_S3_KILL_CYCLES` times (default 12, at least 9, so that each point fires
/// at least twice). Each crash cycle checks that the daemon died by SIGKILL at its point. Then a
/// clean daemon drains the log and every acknowledged record is in S3 exactly once, each object
/// holding consecutive LSNs, objects not overlapping.
#[test]
fn kill_9_during_s3_delivery_delivers_every_acknowledged_record_once() {
    use std::sync::{Arc, Mutex};

    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3sFs::start(&tmp.path().join("s3"), &["s3kill"]);
    let cfg = config_file(tmp.path(), &s3.endpoint(), "");
    // An attempt may take longer than the other tests' 5 s here: the 17 MiB objects go up as
    // 8 MiB parts while four tests share the machine, and a timeout shorter than the slowest
    // part would abort and resend every upload forever.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace("attempt_timeout_secs = 5", "attempt_timeout_secs = 60");
    assert!(text.contains("attempt_timeout_secs = 60"));
    std::fs::write(&cfg, text).unwrap();
    let data = tmp.path().join("data");
    let cycles = common::kill_cycles("HYDRANT_S3_KILL_CYCLES", 12, 9);
    let points = [
        "delivery::after_intent",
        "delivery::mid_upload",
        "delivery::after_send",
    ];
    let acked: Acked = Arc::new(Mutex::new(BTreeMap::new()));
    let mut run = common::KillRun {
        data: &data,
        cfg: &cfg,
        fired: BTreeMap::new(),
    };
    let started = Instant::now();
    let mut created = false;
    let mut crash_cycles = 0;
    for cycle in 0..cycles {
        // After the cycle that creates the stream, two of every three cycles arm a crash point
        // (rotating), the third kills at a random moment.
        let crash = (created && cycle % 3 != 0).then(|| {
            let p = points[crash_cycles % points.len()];
            crash_cycles += 1;
            (p, format!("{p}:1"))
        });
        let create = |addr| {
            if !created {
                // 17 MiB buffers: a full batch is above the sink's 16 MiB multipart threshold.
                let (st, v) = call(
                    addr,
                    "CreateDeliveryStream",
                    r#"{"DeliveryStreamName":"s3kill","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::123456789012:role/r","BucketARN":"arn:aws:s3:::s3kill","CompressionFormat":"UNCOMPRESSED","BufferingHints":{"SizeInMBs":17,"IntervalInSeconds":1}}}"#,
                );
                assert_eq!(st, 200, "{v}");
                common::wait_active(addr, "s3kill");
                created = true;
            }
        };
        let delay = Duration::from_millis(700 + (cycle as u64 * 397) % 1500);
        let acked = acked.clone();
        run.cycle(crash, delay, create, 3, move |addr, id, stop| {
            kill_client(addr, id, cycle, stop, acked.clone());
        });
    }
    let fired = run.fired;
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "{cycles} kill cycles in {:?}: {fired:?}, {} records acknowledged",
        started.elapsed(),
        acked.len()
    );
    common::assert_fired(&fired, &points, 2);

    // A clean daemon drains the backlog. The wait fails when the backlog stops shrinking for
    // 60 s (delivery is stuck), not after a fixed time: 1.6 GB of backlog on a slow CI disk
    // takes minutes.
    let (mut child, addr) = common::spawn_with_config(&data, &cfg, None).unwrap();
    let drain_started = Instant::now();
    let mut least = f64::INFINITY;
    let mut progress = Instant::now();
    loop {
        let backlog = metric(addr, "hydrant_delivery_backlog_records", "s3kill");
        if backlog == 0.0 {
            break;
        }
        if backlog < least {
            least = backlog;
            progress = Instant::now();
        }
        if progress.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(200).collect();
            let metrics = common::get(addr, "/metrics")
                .map(|(_, m)| m)
                .unwrap_or_default();
            panic!(
                "backlog stuck at {backlog} records for 60 s; metrics:\n{metrics}\nlast 200 log \
                 lines, newest first:\n{}",
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("backlog drained in {:?}", drain_started.elapsed());
    common::signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    let objects = object_records(
        &s3.data.join("s3kill"),
        "s3kill-",
        Compression::Uncompressed,
    );
    let multipart = objects
        .values()
        .filter(|r| r.iter().map(Vec::len).sum::<usize>() > 16 << 20)
        .count();
    assert!(
        multipart >= 2,
        "{multipart} objects went up as multipart uploads"
    );
    let (n, o) = check_exactly_once(&objects, &acked, true);
    eprintln!("{n} acknowledged records exactly once in {o} objects ({multipart} multipart)");
}
