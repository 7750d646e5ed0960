//! `DynamicPartitioningConfiguration.RetryOptions.DurationInSeconds` is the retry window of a
//! partitioned stream's objects: hydrantd (a process) delivers to an S3 endpoint where nothing
//! listens; with a 2 s window the partition's records are filed in the error output (the bucket
//! is down too, so in the local store, as `s3-failed`) well before the daemon's own 24 h window
//! or the structure's default of 300 s would end.
#![allow(clippy::unwrap_used)]

mod common;

use common::objects::object_files;
use common::{wait_for, Daemon};
use serde_json::{json, Value};
use std::time::Instant;

const STREAM: &str = "pretry";

#[test]
fn the_retry_window_of_a_partitioned_stream_is_its_duration_in_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dead = common::free_port();
    let d = Daemon::with_config(
        &data,
        &format!(
            "[s3]\nendpoint = \"http://127.0.0.1:{dead}\"\nforce_path_style = true\n\
             access_key_id = \"AKIDRETRY\"\nsecret_access_key = \"retry-secret\"\n\
             max_attempts = 1\nconnect_timeout_ms = 200\n\n[delivery]\n\
             backoff_initial_ms = 50\nbackoff_max_ms = 300\n"
        ),
    );
    let mut config = common::partitioned_by_k("rbucket", 1);
    config["DynamicPartitioningConfiguration"]["RetryOptions"] = json!({"DurationInSeconds": 2});
    common::create_extended_s3(d.addr, STREAM, &config);
    let records: Vec<Vec<u8>> = (0..6)
        .map(|n| format!("{}\n", json!({"k": format!("p{}", n % 2), "n": n})).into_bytes())
        .collect();
    let started = Instant::now();
    let reply = common::try_put_batch(d.addr, STREAM, &records).expect("PutRecordBatch");
    assert_eq!(reply["FailedPutCount"], 0, "{reply}");

    let root = data.join("objects/rbucket");
    let filed = || -> Vec<Vec<u8>> {
        object_files(&root, &format!("{STREAM}-"))
            .iter()
            .filter(|(key, _)| key.starts_with("errors/s3-failed/"))
            .flat_map(|(_, path)| {
                let body = std::fs::read(path).unwrap();
                body.split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let v: Value = serde_json::from_slice(l).unwrap();
                        common::objects::raw_data(&v)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    wait_for("the partitions' records in the error output", &d, || {
        filed().len() == records.len()
    });
    let mut got = filed();
    got.sort();
    let mut want = records.clone();
    want.sort();
    assert_eq!(got, want);
    // Interval (1 s) plus the window (2 s) plus backoff; far below the 300 s default.
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    // Nothing reached a data object.
    assert!(object_files(&root, &format!("{STREAM}-"))
        .iter()
        .all(|(key, _)| key.starts_with("errors/")));
}
