//! PostgreSQL (the Redshift destination) across restarts of the daemon, as a process, with a
//! real PostgreSQL:
//!
//! - error output is part of a batch's exactly-once protocol: with `MAXERROR 1` and one bad row
//!   among 20 good ones, the daemon killed at each crash point in turn
//!   (`delivery::after_intent`, `delivery::mid_upload` of the intermediate object and of the
//!   error-output object, `delivery::after_send`, `delivery::after_error_output`) and started
//!   again files exactly one error-output entry for the bad row and loads every good row once;
//! - PostgreSQL behind the checkpoint (rows and their `hydrant_offsets` entry deleted between
//!   two runs, as a restored backup or a failover that lost commits would leave it): the lost
//!   rows are loaded again from the WAL while it holds them, and when it no longer does, the
//!   destination stops with an error and `hydrant_destination_state` 3, loading nothing.
#![allow(clippy::unwrap_used)]

mod common;

use hydrant_tests::pg::TestPostgres;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

const ROLE: &str = "arn:aws:iam::123456789012:role/firehose";
const BUCKET: &str = "pg-restart";
const DEST: &str = "destinationId-000000000001";
const BAD: &str = r#"{"k":"bad","n":"not-a-number"}"#;

fn config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("hydrant.toml");
    std::fs::write(
        &cfg,
        format!(
            "[delivery]\nbackoff_initial_ms = 50\nbackoff_max_ms = 500\n\
             http_backoff_initial_ms = 50\nhttp_backoff_max_ms = 500\n{extra}\n"
        ),
    )
    .unwrap();
    cfg
}

fn create(addr: SocketAddr, pg: &TestPostgres, db: &str, stream: &str, options: &str) {
    create_with(addr, pg, db, stream, options, None);
}

fn create_with(
    addr: SocketAddr,
    pg: &TestPostgres,
    db: &str,
    stream: &str,
    options: &str,
    lambda_arn: Option<&str>,
) {
    let mut body = json!({
        "DeliveryStreamName": stream,
        "RedshiftDestinationConfiguration": {
            "RoleARN": ROLE,
            "ClusterJDBCURL": pg.jdbc_url(db),
            "CopyCommand": {"DataTableName": "t", "DataTableColumns": "k,n,pad",
                            "CopyOptions": options},
            "Username": "postgres",
            "Password": "not-checked",
            "RetryOptions": {"DurationInSeconds": 7200},
            "S3Configuration": {
                "RoleARN": ROLE,
                "BucketARN": format!("arn:aws:s3:::{BUCKET}"),
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            },
        }
    });
    if let Some(arn) = lambda_arn {
        body["RedshiftDestinationConfiguration"]["ProcessingConfiguration"] = json!({
            "Enabled": true,
            "Processors": [{"Type": "Lambda", "Parameters": [
                {"ParameterName": "LambdaArn", "ParameterValue": arn}]}]});
    }
    let (st, v) = common::call(addr, "CreateDeliveryStream", &body.to_string());
    assert_eq!(st, 200, "{v}");
    common::wait_active(addr, stream);
}

/// A database `db` with the table `t` the tests load, and a fresh data directory (in the
/// returned temporary directory).
fn table(pg: &TestPostgres, db: &str) -> (tempfile::TempDir, PathBuf) {
    pg.create_database(db).unwrap();
    pg.psql(db, "CREATE TABLE t (k text NOT NULL, n integer, pad text)");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    (tmp, data)
}

/// Whether `t` in `(pg, db)` holds `n` rows and the stream has nothing left to deliver.
fn loaded((pg, db): (&TestPostgres, &str), addr: SocketAddr, stream: &str, n: usize) -> bool {
    rows(pg, db).len() == n && metric(addr, "hydrant_delivery_backlog_records", stream) == Some(0.0)
}

fn log_of(data: &Path) -> String {
    std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
}

fn start(data: &Path, cfg: &Path, crash: Option<&str>) -> (Child, SocketAddr) {
    common::spawn_with_config(data, cfg, crash)
        .unwrap_or_else(|| panic!("hydrantd died at start; log:\n{}", log_of(data)))
}

fn stop(mut child: Child) {
    common::signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
}

/// The value of `name{stream,destination}`; `None` when the daemon does not export it.
fn metric(addr: SocketAddr, name: &str, stream: &str) -> Option<f64> {
    let (st, text) = common::get(addr, "/metrics").unwrap();
    assert_eq!(st, 200);
    let series = format!("{name}{{stream=\"{stream}\",destination=\"{DEST}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map(|v| v.trim().parse().unwrap())
}

fn wait_until(what: &str, data: &Path, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached in {secs} s; log:\n{}",
            log_of(data)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Rows of `t`: key -> how many times it was loaded.
fn rows(pg: &TestPostgres, db: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for k in pg.psql(db, "SELECT k FROM t").lines() {
        *seen.entry(k.to_string()).or_default() += 1;
    }
    seen
}

/// Every error-output entry (one JSON document per line) of `redshift-failed` objects.
fn error_entries(data: &Path) -> Vec<Value> {
    error_entries_of(data, "redshift-failed")
}

/// Every error-output entry of the objects of error-output type `kind`.
fn error_entries_of(data: &Path, kind: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut stack = vec![data.join("objects").join(BUCKET)];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().contains(&format!("/{kind}/")) {
                let text = std::fs::read_to_string(&path).unwrap();
                entries.extend(
                    text.lines()
                        .map(|l| serde_json::from_str::<Value>(l).unwrap()),
                );
            }
        }
    }
    entries
}

fn good(tag: &str, n: usize, pad: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!(r#"{{"k":"{tag}-{i}","n":{i},"pad":"{}"}}"#, "z".repeat(pad)))
        .collect()
}

fn put(addr: SocketAddr, stream: &str, records: &[String]) {
    let v = common::try_put_batch(addr, stream, records).expect("PutRecordBatch answered");
    assert_eq!(v["FailedPutCount"], 0, "{v}");
}

/// Waits for the daemon to kill itself at `point` (SIGKILL, and the log names the point).
/// Waits for the first daemon of a fresh data directory (`child`, armed at `point`) to die, and
/// checks that it died by SIGKILL at that point: its log holds exactly one crash line, naming it.
/// (Counting the crash lines when this is called would race with a point that fires at once.)
fn wait_killed_at(child: &mut Child, data: &Path, point: &str) {
    let before = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("crash point {point} not reached; log:\n{}", log_of(data));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.signal(), Some(9), "not killed by SIGKILL: {status}");
    let log = log_of(data);
    let fired: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("crash point reached"))
        .collect();
    assert_eq!(fired.len(), before + 1, "log:\n{log}");
    let name = point.split(':').next().unwrap();
    assert!(fired[before].contains(name), "{}", fired[before]);
}

/// One run of the MAXERROR scenario, killed at `crash` (if any) and restarted.
fn maxerror_case(pg: &TestPostgres, db: &str, crash: Option<&str>) {
    let (tmp, data) = table(pg, db);
    let cfg = config(tmp.path(), "");
    let stream = "pgerr";
    let (mut child, addr) = start(&data, &cfg, crash);
    create(addr, pg, db, stream, "JSON 'auto' MAXERROR 1");
    let mut records = good("g", 20, 8);
    records.insert(10, BAD.to_string());
    // One PutRecordBatch: one WAL append, one batch. A crash point right behind the cut
    // (`after_intent`) can kill the daemon before its answer leaves: the records are durable
    // by then (a batch is cut from durable records only), and the checks below find every row
    // once or fail. Without a crash point the answer is required.
    match (common::try_put_batch(addr, stream, &records), crash) {
        (Some(v), _) => assert_eq!(v["FailedPutCount"], 0, "{v}"),
        (None, Some(point)) => eprintln!("crash {point}: the daemon died before answering"),
        (None, None) => panic!("PutRecordBatch answered"),
    }
    let (child, addr) = match crash {
        Some(point) => {
            wait_killed_at(&mut child, &data, point);
            start(&data, &cfg, None)
        }
        None => (child, addr),
    };
    wait_until(
        &format!("crash {crash:?}: 20 rows, the error entry, backlog 0"),
        &data,
        30,
        || {
            rows(pg, db).len() == 20
                && !error_entries(&data).is_empty()
                && metric(addr, "hydrant_delivery_backlog_records", stream) == Some(0.0)
        },
    );
    stop(child);

    let seen = rows(pg, db);
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        doubled.is_empty(),
        "crash {crash:?}: rows not loaded once: {doubled:?}"
    );
    let want: BTreeMap<String, usize> = (0..20).map(|i| (format!("g-{i}"), 1)).collect();
    assert_eq!(seen, want, "crash {crash:?}");
    let entries = error_entries(&data);
    assert_eq!(entries.len(), 1, "crash {crash:?}: {entries:?}");
    let raw = common::objects::raw_data(&entries[0]);
    assert_eq!(raw, BAD.as_bytes(), "crash {crash:?}");
    assert_eq!(entries[0]["errorCode"], "Redshift.DataLoadFailed");
    assert_eq!(
        pg.psql(db, "SELECT count(*) FROM hydrant_load_errors"),
        "1",
        "crash {crash:?}"
    );
    eprintln!(
        "crash {crash:?}: 20 rows once, one error entry: {}",
        entries[0]["errorMessage"]
    );
}

#[test]
fn maxerror_rows_reach_the_error_output_exactly_once_across_every_crash_point() {
    let pg = TestPostgres::start().unwrap();
    let cases = [
        None,
        Some("delivery::after_send"),
        Some("delivery::after_intent"),
        // The first local-store write is the intermediate object, the second the error output.
        Some("delivery::mid_upload:1"),
        Some("delivery::mid_upload:2"),
        Some("delivery::after_error_output"),
    ];
    for (i, crash) in cases.into_iter().enumerate() {
        maxerror_case(&pg, &format!("case{i}"), crash);
    }
}

#[test]
fn postgres_behind_the_checkpoint_is_reloaded_from_the_wal() {
    let pg = TestPostgres::start().unwrap();
    let db = "behind";
    let (tmp, data) = table(&pg, db);
    let cfg = config(tmp.path(), "");
    let stream = "pgback";
    let (child, addr) = start(&data, &cfg, None);
    create(addr, &pg, db, stream, "JSON 'auto'");
    let pg_ref = &pg;
    let loaded_n = |n: usize| move || loaded((pg_ref, db), addr, stream, n);
    put(addr, stream, &good("a", 20, 8));
    wait_until("batch a", &data, 30, loaded_n(20));
    put(addr, stream, &good("b", 20, 8));
    wait_until("batch b", &data, 30, loaded_n(40));
    stop(child);

    // A backup taken after batch a, restored: b's rows and position are gone.
    pg.psql(db, "DELETE FROM t WHERE k LIKE 'b-%'");
    pg.psql(db, "UPDATE hydrant_offsets SET next_lsn = 20");
    let (child, addr) = start(&data, &cfg, None);
    wait_until("b reloaded", &data, 30, || {
        loaded((&pg, db), addr, stream, 40)
    });
    assert_eq!(metric(addr, "hydrant_destination_state", stream), Some(0.0));
    stop(child);
    let seen = rows(&pg, db);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    assert_eq!(pg.psql(db, "SELECT next_lsn FROM hydrant_offsets"), "40");

    // Everything lost, the hydrant_offsets row too: reloaded from the log's first record.
    pg.psql(db, "DELETE FROM t");
    pg.psql(db, "DELETE FROM hydrant_offsets");
    let (child, addr) = start(&data, &cfg, None);
    wait_until("everything reloaded", &data, 30, || {
        loaded((&pg, db), addr, stream, 40)
    });
    stop(child);
    let seen = rows(&pg, db);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    let log = log_of(&data);
    assert_eq!(
        log.matches("the destination lost records it had committed")
            .count(),
        2,
        "{log}"
    );
}

#[test]
fn postgres_behind_records_the_wal_no_longer_holds_stops_the_destination() {
    let pg = TestPostgres::start().unwrap();
    let db = "gone";
    let (tmp, data) = table(&pg, db);
    // Small segments, nothing delivered kept: delivered segments are deleted at once.
    let cfg = config(
        tmp.path(),
        "retain_delivered_seconds = 0\nretain_delivered_bytes = 0\n\n[wal]\nsegment_bytes = 8192\n",
    );
    let stream = "pggone";
    let (child, addr) = start(&data, &cfg, None);
    create(addr, &pg, db, stream, "JSON 'auto'");
    for b in 0..8 {
        put(addr, stream, &good(&format!("b{b}"), 5, 600));
        wait_until("batch loaded", &data, 30, || {
            loaded((&pg, db), addr, stream, 5 * (b + 1))
        });
    }
    stop(child);
    let first_kept = common::wal_records(&data, stream)
        .first()
        .map_or(u64::MAX, |r| r.0);
    assert!(first_kept > 0, "retention deleted nothing");

    pg.psql(db, "DELETE FROM t");
    pg.psql(db, "DELETE FROM hydrant_offsets");
    let (child, addr) = start(&data, &cfg, None);
    wait_until("hydrant_destination_state 3", &data, 30, || {
        metric(addr, "hydrant_destination_state", stream) == Some(3.0)
    });
    // Stopped, not skipping: nothing loaded, the cursor where it was, the reason in the log.
    std::thread::sleep(Duration::from_millis(500));
    put(addr, stream, &good("after", 5, 8));
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(rows(&pg, db).len(), 0);
    assert_eq!(
        metric(addr, "hydrant_delivery_backlog_records", stream),
        Some(5.0)
    );
    stop(child);
    let log = log_of(&data);
    assert!(
        log.contains("the WAL no longer holds them: delivery to it stops"),
        "{log}"
    );
    eprintln!("WAL kept from LSN {first_kept}: the destination stopped with state 3");
}

/// The same with a Lambda transform: the record it marks ProcessingFailed reaches the error
/// output exactly once although the daemon was killed after PostgreSQL committed the batch.
#[test]
fn processing_failed_records_are_filed_after_a_crash_past_the_commit() {
    let lambda = hydrant_tests::lambda::LambdaServer::start().unwrap();
    let arn = hydrant_tests::lambda::LambdaServer::arn("fail_marked");
    let pg = TestPostgres::start().unwrap();
    let db = "lambda";
    let (tmp, data) = table(&pg, db);
    let cfg = config(
        tmp.path(),
        &format!(
            "\n[lambda.functions]\n\"{arn}\" = \"{}\"\n",
            lambda.url("fail_marked")
        ),
    );
    let stream = "pglambda";
    let point = "delivery::after_send";
    let (mut child, addr) = start(&data, &cfg, Some(point));
    create_with(addr, &pg, db, stream, "JSON 'auto'", Some(&arn));
    let failing = r#"{"k":"FAIL","n":99,"pad":""}"#;
    let mut records = good("g", 20, 8);
    records.insert(5, failing.to_string());
    put(addr, stream, &records);
    wait_killed_at(&mut child, &data, point);
    let (child, addr) = start(&data, &cfg, None);
    wait_until("20 rows and the processing-failed entry", &data, 30, || {
        rows(&pg, db).len() == 20
            && !error_entries_of(&data, "processing-failed").is_empty()
            && metric(addr, "hydrant_delivery_backlog_records", stream) == Some(0.0)
    });
    stop(child);
    let seen = rows(&pg, db);
    let want: BTreeMap<String, usize> = (0..20).map(|i| (format!("g-{i}"), 1)).collect();
    assert_eq!(seen, want);
    let entries = error_entries_of(&data, "processing-failed");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let raw = common::objects::raw_data(&entries[0]);
    assert_eq!(raw, failing.as_bytes());
    assert_eq!(entries[0]["lambdaARN"], arn.as_str());
}
