//! The active-partition limit, end to end: hydrantd (a process) runs with
//! `[delivery] max_active_partitions = 3`; a partitioned stream (jq key `k`, 2 s buffers) gets
//! one PutRecordBatch of 60 records over 6 partitions, round robin. Partitions p0, p1 and p2
//! become active with their first records; while they are, every record of p3, p4 and p5 goes to
//! the error output as `activePartitionExceeded` (Firehose's failed-record JSON with
//! `DynamicPartitioning.ActivePartitionExceeded`). Once their objects are delivered the
//! partitions stop being active, so a second batch, of p3 records, is delivered to p3's object.
//! Every record sent is found exactly once: in its partition's object or in the error output.
#![allow(clippy::unwrap_used)]

mod common;

use common::objects::object_files;
use common::Daemon;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const STREAM: &str = "plimit";
const LIMIT: usize = 3;
const PARTITIONS: usize = 6;

fn record(k: usize, n: usize) -> Vec<u8> {
    format!("{}\n", json!({"k": format!("p{k}"), "n": n})).into_bytes()
}

/// Waits until the destination's backlog is 0 (every record delivered or in the error output).
fn drained(d: &Daemon) {
    common::wait_drained(d.addr, STREAM, Duration::from_secs(30));
}

#[test]
fn records_of_partitions_past_the_active_limit_go_to_the_error_output() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = Daemon::with_config(
        &data,
        &format!("[delivery]\nmax_active_partitions = {LIMIT}\n"),
    );
    common::create_extended_s3(d.addr, STREAM, &common::partitioned_by_k("lbucket", 2));

    let first: Vec<Vec<u8>> = (0..60).map(|n| record(n % PARTITIONS, n)).collect();
    let reply = common::try_put_batch(d.addr, STREAM, &first).expect("PutRecordBatch");
    assert_eq!(reply["FailedPutCount"], 0, "{reply}");
    drained(&d);
    // The partitions of the first batch are delivered, so no longer active: p3 is taken now.
    let second: Vec<Vec<u8>> = (60..70).map(|n| record(3, n)).collect();
    let reply = common::try_put_batch(d.addr, STREAM, &second).expect("PutRecordBatch");
    assert_eq!(reply["FailedPutCount"], 0, "{reply}");
    drained(&d);
    let (_, metrics) = common::get(d.addr, "/metrics").unwrap();
    assert!(
        metrics.contains(&format!(
            "hydrant_partition_count_exceeded_total{{stream=\"{STREAM}\",destination=\"destinationId-000000000001\"}} 30"
        )),
        "{metrics}"
    );

    // Where each record went: its partition's object, or the error output (by error type).
    let root = data.join("objects/lbucket");
    let mut found: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    let mut put = |record: Vec<u8>, place: String| {
        if let Some(other) = found.insert(record.clone(), place.clone()) {
            panic!(
                "record {} found twice: {other} and {place}",
                String::from_utf8_lossy(&record)
            );
        }
    };
    for (key, path) in object_files(&root, &format!("{STREAM}-")) {
        let body = std::fs::read(&path).unwrap();
        if let Some(rest) = key.strip_prefix("errors/") {
            let error_type = rest.split('/').next().unwrap().to_owned();
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v: Value = serde_json::from_slice(line).unwrap();
                assert_eq!(
                    v["errorCode"], "DynamicPartitioning.ActivePartitionExceeded",
                    "{key}: {v}"
                );
                let raw = common::objects::raw_data(&v);
                put(raw, format!("error:{error_type}"));
            }
        } else {
            let partition = key.split('/').next().unwrap().trim_start_matches("k=");
            for r in body.split_inclusive(|b| *b == b'\n') {
                let v: Value = serde_json::from_slice(r).unwrap();
                assert_eq!(v["k"], partition, "{key}: record of another partition");
                put(r.to_vec(), format!("partition:{partition}"));
            }
        }
    }
    for (n, r) in first.iter().enumerate() {
        let k = n % PARTITIONS;
        let want = if k < LIMIT {
            format!("partition:p{k}")
        } else {
            "error:activePartitionExceeded".to_owned()
        };
        assert_eq!(
            found.get(r),
            Some(&want),
            "record {}",
            String::from_utf8_lossy(r)
        );
    }
    for r in &second {
        assert_eq!(found.get(r).map(String::as_str), Some("partition:p3"));
    }
    assert_eq!(found.len(), first.len() + second.len(), "records not sent");
}
