//! The Kinesis Data Streams source (`KinesisStreamAsSource`) against kinesalite, with boto3 as
//! the producer (tests/python/kinesis_source.py): the API's shapes and refusals, and every
//! record of a 4-shard stream, split and merged during the load, delivered to the local object
//! store exactly once and in order per partition key, none from before the delivery start.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::kinesalite::Kinesalite;
use common::Daemon;
use serde_json::{json, Value};

const BUCKET: &str = "kbucket";

fn run_producer(daemon: &Daemon, k: &Kinesalite, plan: &Value, dir: &Path) -> Value {
    let plan_path = dir.join("plan.json");
    let out_path = dir.join("out.json");
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    hydrant_tests::process::run_ok_with(
        Command::new(common::python())
            .arg(common::workspace().join("tests/python/kinesis_source.py"))
            .arg(daemon.endpoint())
            .arg(k.endpoint())
            .arg(&plan_path)
            .arg(&out_path),
        "the boto3 script kinesis_source.py",
        || format!("log:\n{}", daemon.log_text()),
    );
    serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap()
}

/// Every delivered record, parsed, in delivery order: objects are written one after another by
/// the destination's one worker, so their modification times order them (a key's time part
/// has only second resolution).
fn delivered(data_dir: &Path, want: u64, settle: Duration) -> Vec<Value> {
    let root = data_dir.join("objects").join(BUCKET);
    let limit = Duration::from_secs(180);
    common::objects::json_lines_settled(&root, "from-kinesis", want, limit, settle)
}

/// Per partition key, the sequence of counters delivered (must be 0, 1, 2, ... exactly).
fn per_key(records: &[Value]) -> BTreeMap<String, Vec<u64>> {
    let mut m: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in records {
        if let Some(i) = r["i"].as_u64() {
            m.entry(r["k"].as_str().unwrap().to_string())
                .or_default()
                .push(i);
        }
    }
    m
}

#[test]
fn kinesis_stream_split_and_merged_under_load_is_delivered_once_in_key_order() {
    let k = Kinesalite::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let env = k.env();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let daemon = Daemon::start_env(&data, &[], &env_refs);
    let records = 50_000u64;
    let plan = json!({"stream": "from-kinesis", "kinesis_stream": "src", "records": records,
                      "keys": 200, "reshard": true, "bucket": BUCKET});
    let started = Instant::now();
    let out = run_producer(&daemon, &k, &plan, tmp.path());
    let produced = started.elapsed();
    assert_eq!(out["sent"].as_u64(), Some(records));
    assert_eq!(out["resharded"].as_array().map(Vec::len), Some(2), "{out}");
    // A little longer: anything delivered twice would show up now.
    let got = delivered(&data, records, Duration::from_secs(3));
    let took = started.elapsed();
    assert!(
        got.iter().all(|r| r.get("before").is_none()),
        "a record from before the delivery start was delivered"
    );
    assert_eq!(got.len() as u64, records, "log:\n{}", daemon.log_text());
    let keys = per_key(&got);
    assert_eq!(keys.len(), 200);
    for (key, seq) in &keys {
        let want: Vec<u64> = (0..out["per_key"][key].as_u64().unwrap()).collect();
        assert_eq!(seq, &want, "partition key {key}: not each once in order");
    }
    let (_, metrics) = common::get(daemon.addr, "/metrics").unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("hydrant_kinesis_data_read_records_total{stream=\"from-kinesis\"}"))
        .unwrap_or_default()
        .to_string();
    assert!(line.ends_with(&format!(" {records}")), "{line}");
    eprintln!(
        "{records} records over 200 keys, 4 shards split and merged: produced in {produced:?}, \
         all delivered after {took:?}; shards {}",
        out["shards_after"]
    );
}

#[test]
fn a_missing_kinesis_stream_is_a_failure_description_until_it_exists() {
    let k = Kinesalite::start();
    let tmp = tempfile::tempdir().unwrap();
    let env = k.env();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let daemon = Daemon::start_env(&tmp.path().join("data"), &[], &env_refs);
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/nope";
    let (st, v) = common::call(
        daemon.addr,
        "CreateDeliveryStream",
        &json!({"DeliveryStreamName": "orphan", "DeliveryStreamType": "KinesisStreamAsSource",
                "KinesisStreamSourceConfiguration": {"KinesisStreamARN": arn,
                    "RoleARN": "arn:aws:iam::123456789012:role/r"},
                "ExtendedS3DestinationConfiguration": {"RoleARN": "arn:aws:iam::123456789012:role/r",
                    "BucketARN": "arn:aws:s3:::b"}})
        .to_string(),
    );
    assert_eq!(st, 200, "{v}");
    let describe = || {
        common::call(
            daemon.addr,
            "DescribeDeliveryStream",
            &json!({"DeliveryStreamName": "orphan"}).to_string(),
        )
        .1
    };
    common::wait_for("a FailureDescription", &daemon, || {
        describe()["DeliveryStreamDescription"]
            .get("FailureDescription")
            .is_some()
    });
    let d = describe();
    let f = &d["DeliveryStreamDescription"]["FailureDescription"];
    assert_eq!(f["Type"], "UNKNOWN_ERROR", "{d}");
    assert!(f["Details"].as_str().unwrap().contains(arn), "{d}");
    let (_, metrics) = common::get(daemon.addr, "/metrics").unwrap();
    assert!(
        metrics.contains("hydrant_kinesis_source_failed{stream=\"orphan\"} 1"),
        "{metrics}"
    );
    // The console's streams page names the source and shows the reason beside the status.
    let (_, page) = common::get(daemon.addr, "/console/").unwrap();
    assert!(page.contains(&format!("Kinesis stream {arn}")), "{page}");
    let reason = page
        .split_once("<div class=\"sub failure\">")
        .and_then(|(_, rest)| rest.split_once("</div>"))
        .map(|(reason, _)| reason);
    assert!(reason.is_some_and(|r| r.contains(arn)), "{page}");
    // Created later, the stream is read and the failure clears.
    let st = Command::new(common::python())
        .arg("-c")
        .arg(format!(
            "import boto3; boto3.client('kinesis', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='K', aws_secret_access_key='S').create_stream(StreamName='nope', \
             ShardCount=1)",
            k.endpoint()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    common::wait_for("the failure to clear", &daemon, || {
        describe()["DeliveryStreamDescription"]
            .get("FailureDescription")
            .is_none()
    });
}

/// The WAL's disk budget pauses the reader (small segments, a budget of 8 of them, records of
/// ~1 KiB in GetRecords batches larger than a segment, so batches are also cut into several
/// frames): every record still arrives once, in key order, and the pauses are counted.
#[test]
fn the_disk_budget_pauses_the_reader_and_loses_nothing() {
    let k = Kinesalite::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = format!(
        "streams = []\n[wal]\nsegment_bytes = 65536\nstream_budget_bytes = 524288\n\
         [delivery]\nretain_delivered_seconds = 0\nretain_delivered_bytes = 0\n\
         [kinesis]\nendpoint = \"{}\"\naccess_key_id = \"K\"\nsecret_access_key = \"S\"\n\
         poll_interval_ms = 200\n",
        k.endpoint()
    );
    let daemon = Daemon::with_config(&data, &cfg);
    let records = 6_000u64;
    let plan = json!({"stream": "from-kinesis", "kinesis_stream": "budget", "records": records,
                      "keys": 200, "reshard": false, "bucket": BUCKET, "pad": 1000});
    let out = run_producer(&daemon, &k, &plan, tmp.path());
    assert_eq!(out["sent"].as_u64(), Some(records));
    let got = delivered(&data, records, Duration::from_secs(2));
    assert_eq!(got.len() as u64, records, "log:\n{}", daemon.log_text());
    for (key, seq) in per_key(&got) {
        let want: Vec<u64> = (0..out["per_key"][&key].as_u64().unwrap()).collect();
        assert_eq!(seq, want, "partition key {key}: not each once in order");
    }
    let (_, metrics) = common::get(daemon.addr, "/metrics").unwrap();
    let pauses: u64 = metrics
        .lines()
        .find(|l| l.starts_with("hydrant_kinesis_budget_pauses_total{stream=\"from-kinesis\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(pauses > 0, "the budget never paused the reader: {metrics}");
    eprintln!("{records} records of 1 KiB through a 512 KiB WAL budget: {pauses} pauses");
}
