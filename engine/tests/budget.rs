//! Disk budget reached: ServiceUnavailableException (HTTP 503), nothing written by the refused
//! request, nothing acknowledged lost, and intake resumes when space returns: (a) the daemon as a
//! process, restarted with a larger budget; (b) the engine in-process, where retention's own call
//! (`Wal::truncate_before`) frees segments and the next put succeeds without a restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{b64, call, Daemon};
use hydrant_engine::config::{Config, StreamConfig};
use hydrant_engine::metrics::Metrics;
use hydrant_engine::{Engine, ErrorCode};

const SEGMENT: u64 = 64 * 1024;

fn batch_body(stream: &str, i: usize) -> String {
    let recs: Vec<String> = (0..10)
        .map(|j| {
            format!(
                r#"{{"Data":"{}"}}"#,
                b64(format!("{i}-{j}-{}", "p".repeat(1000)).as_bytes())
            )
        })
        .collect();
    format!(
        r#"{{"DeliveryStreamName":"{stream}","Records":[{}]}}"#,
        recs.join(",")
    )
}

#[test]
fn budget_reached_answers_503_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let small = [
        "--segment-bytes",
        "65536",
        "--stream-budget-bytes",
        "262144",
    ];
    let mut d = Daemon::start(&data, &small);
    let mut acked = 0usize;
    let mut refused = None;
    for i in 0..500 {
        let (st, v) = call(d.addr, "PutRecordBatch", &batch_body("default", i));
        if st == 200 {
            assert_eq!(v["FailedPutCount"], 0);
            acked += 10;
        } else {
            refused = Some((st, v));
            break;
        }
    }
    let (st, v) = refused.expect("the budget was never reached");
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["__type"], "ServiceUnavailableException");
    assert!(acked > 0);
    // Still refused on retry, and counted as throttled.
    let (st, _) = call(d.addr, "PutRecordBatch", &batch_body("default", 9999));
    assert_eq!(st, 503);
    let (_, metrics) = common::get(d.addr, "/metrics").unwrap();
    assert!(
        metrics.contains("hydrant_throttled_records_total{stream=\"default\"} 20"),
        "{metrics}"
    );
    assert!(d.terminate().success());
    let recs = common::wal_records(&data, "default");
    assert_eq!(
        recs.len(),
        acked,
        "every acknowledged record, nothing of the refused batches"
    );
    for (n, (lsn, bytes)) in recs.iter().enumerate() {
        assert_eq!(*lsn, n as u64);
        let want = format!("{}-{}-{}", n / 10, n % 10, "p".repeat(1000));
        assert_eq!(bytes, want.as_bytes());
    }

    // Space returns (here: the operator raises the budget): intake resumes.
    let d = Daemon::start(
        &data,
        &["--segment-bytes", "65536", "--stream-budget-bytes", "0"],
    );
    let (st, v) = call(d.addr, "PutRecordBatch", &batch_body("default", 1000));
    assert_eq!(st, 200, "{v}");
    drop(d);
    assert_eq!(common::wal_records(&data, "default").len(), acked + 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_resumes_after_retention_frees_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: tmp.path().join("data"),
        streams: vec![StreamConfig {
            budget_bytes: Some(4 * SEGMENT),
            ..StreamConfig::embedded_default()
        }],
        ..Config::default()
    };
    config.wal.segment_bytes = SEGMENT;
    let engine = Arc::new(
        tokio::task::spawn_blocking(move || Engine::open(config, Arc::new(Metrics::new())))
            .await
            .unwrap()
            .unwrap(),
    );
    let record = vec![b'x'; 4000];
    let batch: Vec<Vec<u8>> = vec![record; 4];
    let mut acked = 0u64;
    let err = loop {
        match engine
            .put_record_batch("default", batch.iter().collect())
            .await
        {
            Ok(out) => {
                assert_eq!(out.first.0, acked, "the batch's first LSN");
                assert_eq!(out.count, 4);
                acked += 4;
            }
            Err(e) => break e,
        }
        assert!(acked < 100_000, "never full");
    };
    assert_eq!(err.code, ErrorCode::ServiceUnavailable, "{err}");
    let stream = engine.stream("default").unwrap();
    assert_eq!(
        stream.wal.durable_lsn().0,
        acked,
        "nothing of the refused batch was written"
    );
    // Retention (delivery's cursors have passed everything) frees whole sealed segments.
    let freed = stream
        .wal
        .truncate_before(stream.wal.durable_lsn())
        .unwrap();
    assert!(freed > 0);
    let out = engine
        .put_record_batch("default", batch.iter().collect())
        .await
        .unwrap();
    assert_eq!((out.first.0, out.count), (acked, 4));
    let e = engine.clone();
    tokio::task::spawn_blocking(move || e.close())
        .await
        .unwrap();
}
