//! The non-S3 destinations under kill -9. For each of PostgreSQL (the Redshift destination), the
//! OpenSearch `_bulk` stand-in and an HTTP endpoint receiver: clients put JSON records while the
//! daemon delivers them (interval 0, small buffers) and is killed, at random moments and at the
//! named crash points `delivery::after_intent` (intent recorded, nothing sent) and
//! `delivery::after_send` (the destination took the batch, the cursor did not move),
//! `HYDRANT_DEST_KILL_CYCLES` times (default 12, at least 10). Then a clean daemon drains the log
//! and:
//!
//! - PostgreSQL holds every acknowledged record exactly once (exactly-once through the
//!   `hydrant_offsets` row committed with the rows);
//! - OpenSearch holds every acknowledged record as exactly one document (deterministic `_id`s
//!   make a resend an overwrite);
//! - the HTTP receiver saw every acknowledged record at least once, and every request id always
//!   with the same records (a retry, even after a crash, resends the same batch under the same
//!   id, so the receiver can deduplicate).
//!
//! Records the daemon made durable but whose acknowledgement the kill cut off may be delivered
//! too; they are not counted as acknowledged, and never duplicated either where the destination
//! is exactly-once.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::try_put_batch;
use rand::{Rng, SeedableRng};

const CLIENTS: usize = 2;

/// Acknowledged records: key -> the exact bytes.
type Acked = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

fn client(
    addr: SocketAddr,
    stream: &str,
    id: usize,
    cycle: usize,
    stop: Arc<AtomicBool>,
    acked: Acked,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64((cycle * 100 + id) as u64);
    let mut batch_no = 0;
    while !stop.load(Ordering::SeqCst) {
        let count = rng.gen_range(1..=30);
        let records: Vec<(String, Vec<u8>)> = (0..count)
            .map(|i| {
                let k = format!("c{cycle}-k{id}-b{batch_no}-r{i}");
                let pad = "z".repeat(rng.gen_range(0..120));
                let data = format!(r#"{{"k":"{k}","pad":"{pad}"}}"#).into_bytes();
                (k, data)
            })
            .collect();
        batch_no += 1;
        let Some(v) = try_put_batch(addr, stream, records.iter().map(|(_, r)| r)) else {
            continue;
        };
        assert_eq!(v["FailedPutCount"], 0, "{v}");
        let mut acked = acked.lock().unwrap();
        for (k, r) in records {
            assert!(acked.insert(k, r).is_none(), "key acknowledged twice");
        }
        drop(acked);
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..20)));
    }
}

struct Run {
    data: PathBuf,
    cfg: PathBuf,
    stream: &'static str,
    create: String,
}

/// Kill cycles under load, then a clean daemon drains the backlog (returned running, with the
/// acknowledged records).
fn kill_cycles(run: &Run) -> (Child, SocketAddr, BTreeMap<String, Vec<u8>>) {
    let cycles = common::kill_cycles("HYDRANT_DEST_KILL_CYCLES", 12, 10);
    let points = ["delivery::after_intent", "delivery::after_send"];
    let acked: Acked = Arc::new(Mutex::new(BTreeMap::new()));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut kills = common::KillRun {
        data: &run.data,
        cfg: &run.cfg,
        fired: BTreeMap::new(),
    };
    let started = Instant::now();
    let mut created = false;
    for cycle in 0..cycles {
        let crash = (created && cycle % 2 == 1).then(|| {
            let p = points[(cycle / 2) % points.len()];
            (p, format!("{p}:{}", rng.gen_range(1..=3)))
        });
        let delay = Duration::from_millis(rng.gen_range(300..1200));
        let create = |addr| {
            if !created {
                let (st, v) = common::call(addr, "CreateDeliveryStream", &run.create);
                assert_eq!(st, 200, "{v}");
                common::wait_active(addr, run.stream);
                created = true;
            }
        };
        let (acked, stream) = (acked.clone(), run.stream);
        kills.cycle(crash, delay, create, CLIENTS, move |addr, id, stop| {
            client(addr, stream, id, cycle, stop, acked.clone());
        });
    }
    let fired = kills.fired;
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "{}: {cycles} kill cycles in {:?}: {fired:?}, {} records acknowledged",
        run.stream,
        started.elapsed(),
        acked.len()
    );
    common::assert_fired(&fired, &points, 1);
    assert!(acked.len() > 300, "load too light: {}", acked.len());
    let (child, addr) = common::spawn_with_config(&run.data, &run.cfg, None).expect("clean start");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, metrics) = common::get(addr, "/metrics").unwrap();
        let drained = metrics.contains(&format!(
            "hydrant_delivery_backlog_records{{stream=\"{}\",destination=\"destinationId-000000000001\"}} 0",
            run.stream
        ));
        if drained {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backlog not drained; log:\n{}",
            std::fs::read_to_string(run.data.with_extension("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, addr, acked)
}

fn stop(mut child: Child) {
    common::signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
}

fn config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("hydrant.toml");
    std::fs::write(
        &cfg,
        format!(
            "[wal]\nsegment_bytes = 1048576\n\n[delivery]\nbackoff_initial_ms = 50\n\
             backoff_max_ms = 500\nhttp_backoff_initial_ms = 50\nhttp_backoff_max_ms = 500\n\n{extra}\n"
        ),
    )
    .unwrap();
    cfg
}

const ROLE: &str = "arn:aws:iam::123456789012:role/firehose";

fn s3_configuration(bucket: &str) -> serde_json::Value {
    serde_json::json!({
        "RoleARN": ROLE,
        "BucketARN": format!("arn:aws:s3:::{bucket}"),
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
    })
}

fn key_of(doc: &serde_json::Value) -> String {
    doc["k"].as_str().unwrap().to_string()
}

#[test]
fn postgres_kill_9_every_acknowledged_record_exactly_once() {
    let pg = hydrant_tests::pg::TestPostgres::start().unwrap();
    pg.create_database("ci").unwrap();
    pg.psql("ci", "CREATE TABLE kill (k text NOT NULL, pad text)");
    let tmp = tempfile::tempdir().unwrap();
    let create = serde_json::json!({
        "DeliveryStreamName": "pgkill",
        "RedshiftDestinationConfiguration": {
            "RoleARN": ROLE,
            "ClusterJDBCURL": pg.jdbc_url("ci"),
            "CopyCommand": {"DataTableName": "kill", "DataTableColumns": "k,pad",
                            "CopyOptions": "JSON 'auto'"},
            "Username": "postgres",
            "Password": "not-checked",
            "RetryOptions": {"DurationInSeconds": 7200},
            "S3Configuration": s3_configuration("pg-intermediate"),
        }
    });
    let run = Run {
        data: tmp.path().join("data"),
        cfg: config(tmp.path(), ""),
        stream: "pgkill",
        create: create.to_string(),
    };
    let (child, _addr, acked) = kill_cycles(&run);
    stop(child);
    let rows = pg.psql("ci", "SELECT k FROM kill");
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for k in rows.lines() {
        *seen.entry(k).or_default() += 1;
    }
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "rows loaded twice: {doubled:?}");
    let missing: Vec<_> = acked
        .keys()
        .filter(|k| !seen.contains_key(k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let offsets = pg.psql(
        "ci",
        "SELECT stream, next_lsn FROM hydrant_offsets WHERE stream = 'pgkill'",
    );
    eprintln!(
        "PostgreSQL: {} acknowledged records exactly once ({} rows); offsets {offsets}",
        acked.len(),
        seen.len()
    );
}

#[test]
fn opensearch_kill_9_every_acknowledged_record_one_document() {
    let bulk = hydrant_tests::bulk::BulkReceiver::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let create = serde_json::json!({
        "DeliveryStreamName": "oskill",
        "AmazonopensearchserviceDestinationConfiguration": {
            "RoleARN": ROLE,
            "ClusterEndpoint": bulk.url(),
            "IndexName": "kill",
            "IndexRotationPeriod": "NoRotation",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "RetryOptions": {"DurationInSeconds": 7200},
            "S3Configuration": s3_configuration("os-backup"),
        }
    });
    let run = Run {
        data: tmp.path().join("data"),
        cfg: config(tmp.path(), ""),
        stream: "oskill",
        create: create.to_string(),
    };
    let (child, _addr, acked) = kill_cycles(&run);
    stop(child);
    let docs = bulk.documents();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for ((index, _id), doc) in &docs {
        assert_eq!(index, "kill");
        *seen.entry(key_of(doc)).or_default() += 1;
    }
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "records indexed as several documents: {doubled:?}"
    );
    for (k, data) in &acked {
        assert!(seen.contains_key(k), "acknowledged record {k} not indexed");
        let doc = docs.values().find(|d| &key_of(d) == k).unwrap();
        let want: serde_json::Value = serde_json::from_slice(data).unwrap();
        assert_eq!(doc, &want);
    }
    let resent = bulk.stored().values().filter(|d| d.version > 1).count();
    eprintln!(
        "OpenSearch: {} acknowledged records, one document each; {} documents re-indexed by a resend",
        acked.len(),
        resent
    );
}

#[test]
fn http_endpoint_kill_9_at_least_once_with_stable_request_ids() {
    let receiver = hydrant_tests::http_receiver::HttpReceiver::start_default().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let create = serde_json::json!({
        "DeliveryStreamName": "httpkill",
        "HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": receiver.url(), "Name": "receiver"},
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "RequestConfiguration": {"ContentEncoding": "GZIP"},
            "RetryOptions": {"DurationInSeconds": 7200},
            "S3Configuration": s3_configuration("http-backup"),
        }
    });
    let run = Run {
        data: tmp.path().join("data"),
        cfg: config(tmp.path(), ""),
        stream: "httpkill",
        create: create.to_string(),
    };
    let (child, _addr, acked) = kill_cycles(&run);
    stop(child);
    let requests = receiver.requests();
    let mut by_id: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let mut resent = 0;
    for r in &requests {
        let id = r.request_id.clone().unwrap();
        match by_id.get(&id) {
            Some(first) => {
                resent += 1;
                assert_eq!(
                    first, &r.records,
                    "request id {id} carried different records on a resend"
                );
            }
            None => {
                by_id.insert(id, r.records.clone());
            }
        }
    }
    let accepted: BTreeSet<String> = receiver
        .records_accepted()
        .iter()
        .map(|r| key_of(&serde_json::from_slice(r).unwrap()))
        .collect();
    for k in acked.keys() {
        assert!(
            accepted.contains(k),
            "acknowledged record {k} never delivered"
        );
    }
    eprintln!(
        "HTTP endpoint: {} acknowledged records delivered; {} requests, {} distinct ids, {} resends",
        acked.len(),
        requests.len(),
        by_id.len(),
        resent
    );
}
