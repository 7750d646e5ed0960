//! The Kafka (MSK) source (`MSKAsSource`) against a real Kafka-protocol broker (tansu, memory
//! engine), streams created through boto3 (tests/python/msk_source.py), records produced with
//! rdkafka: the API's shapes and refusals; 20,000 keyed records over 6 partitions delivered to
//! the local object store exactly once, in order per partition, none from before the delivery
//! start; `ReadFromTimestamp` honoured; an unmapped cluster ARN is a failure description.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tansu::{Produce, Tansu};
use common::Daemon;
use serde_json::Value;

const BUCKET: &str = "mbucket";
const ARN: &str = "arn:aws:kafka:us-east-1:123456789012:cluster/local/1";

fn msk_py(daemon: &Daemon, args: &[&str]) -> Value {
    let out = hydrant_tests::process::run_ok_with(
        Command::new(common::python())
            .arg(common::workspace().join("tests/python/msk_source.py"))
            .arg(daemon.endpoint())
            .args(args),
        "the boto3 script msk_source.py",
        || format!("log:\n{}", daemon.log_text()),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn daemon(tmp: &Path, bootstrap: &str) -> Daemon {
    let cfg = format!(
        "streams = []\n[kafka]\ndiscovery_interval_ms = 500\n\
         [kafka.clusters.\"{ARN}\"]\nbootstrap_servers = \"{bootstrap}\"\n"
    );
    Daemon::with_config(&tmp.join("data"), &cfg)
}

fn delivered(tmp: &Path, stream: &str, want: u64, settle: Duration) -> Vec<Value> {
    let root = tmp.join("data").join("objects").join(BUCKET);
    common::objects::json_lines_settled(&root, stream, want, Duration::from_secs(120), settle)
}

fn record(key: usize, i: u64, extra: &str) -> Produce {
    Produce {
        key: format!("k{key}"),
        value: format!("{{\"k\":\"k{key}\",\"i\":{i}{extra}}}\n").into_bytes(),
        timestamp_ms: None,
        headers: vec![("h".into(), format!("{i}"))],
    }
}

/// `records` keyed records over `keys` keys (counter per key from 0).
fn load(records: u64, keys: usize) -> Vec<Produce> {
    let mut next = vec![0u64; keys];
    (0..records)
        .map(|n| {
            let k = (n as usize * 7919) % keys;
            next[k] += 1;
            record(k, next[k] - 1, "")
        })
        .collect()
}

/// Per key, the counters delivered (must be 0, 1, 2, ... exactly).
fn per_key(records: &[Value]) -> BTreeMap<String, Vec<u64>> {
    let mut m: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in records {
        m.entry(r["k"].as_str().unwrap().to_string())
            .or_default()
            .push(r["i"].as_u64().unwrap());
    }
    m
}

fn metric(daemon: &Daemon, prefix: &str) -> Option<f64> {
    let (_, metrics) = common::get(daemon.addr, "/metrics").unwrap();
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn msk_topic_of_six_partitions_is_delivered_once_in_partition_order() {
    let t = Tansu::start();
    t.create_topic("orders", 6);
    let tmp = tempfile::tempdir().unwrap();
    let daemon = daemon(tmp.path(), &t.bootstrap());
    // Records produced before the delivery stream exists are not delivered.
    let before: Vec<Produce> = (0..300)
        .map(|i| record(i % 50, i as u64, ",\"before\":true"))
        .collect();
    t.produce("orders", &before);
    std::thread::sleep(Duration::from_millis(20));
    let d = msk_py(&daemon, &["create", "from-msk", ARN, "orders", BUCKET]);
    assert_eq!(d["DeliveryStreamType"], "MSKAsSource", "{d}");
    msk_py(&daemon, &["check", "from-msk", ARN, "orders"]);
    let records = 20_000u64;
    let started = Instant::now();
    let partitions = t.produce("orders", &load(records, 200));
    let produced = started.elapsed();
    let used: std::collections::BTreeSet<i32> = partitions.iter().copied().collect();
    assert_eq!(
        used.len(),
        6,
        "the keys did not spread over 6 partitions: {used:?}"
    );
    let got = delivered(tmp.path(), "from-msk", records, Duration::from_secs(3));
    let took = started.elapsed();
    assert!(
        got.iter().all(|r| r.get("before").is_none()),
        "a record from before the delivery start was delivered"
    );
    assert_eq!(got.len() as u64, records, "log:\n{}", daemon.log_text());
    let want_per_key = {
        let mut n: BTreeMap<String, u64> = BTreeMap::new();
        for r in load(records, 200) {
            *n.entry(r.key).or_default() += 1;
        }
        n
    };
    let keys = per_key(&got);
    assert_eq!(keys.len(), 200);
    for (key, seq) in &keys {
        let want: Vec<u64> = (0..want_per_key[key]).collect();
        assert_eq!(seq, &want, "key {key}: not each once in order");
    }
    assert_eq!(
        metric(
            &daemon,
            "hydrant_kafka_data_read_records_total{stream=\"from-msk\"}"
        ),
        Some(records as f64)
    );
    assert_eq!(
        metric(&daemon, "hydrant_kafka_partitions{stream=\"from-msk\"}"),
        Some(6.0)
    );
    assert_eq!(
        metric(
            &daemon,
            "hydrant_kafka_skipped_before_start_total{stream=\"from-msk\"}"
        ),
        Some(300.0)
    );
    eprintln!(
        "{records} records over 200 keys and 6 partitions: produced in {produced:?}, all \
         delivered after {took:?}"
    );
}

/// `ReadFromTimestamp` in the past: records whose timestamps are before it are not delivered,
/// those at or after it are, though they were produced before the stream was created.
#[test]
fn read_from_timestamp_is_honoured() {
    let t = Tansu::start();
    t.create_topic("events", 2);
    let tmp = tempfile::tempdir().unwrap();
    let daemon = daemon(tmp.path(), &t.bootstrap());
    let now_ms = hydrant_wal::now_ms() as i64;
    let from_ms = now_ms - 60_000;
    let mut recs = Vec::new();
    for i in 0..100u64 {
        let mut r = record((i % 10) as usize, i, ",\"before\":true");
        r.timestamp_ms = Some(from_ms - 30_000 + i as i64);
        recs.push(r);
    }
    for i in 0..100u64 {
        let mut r = record((i % 10) as usize, i, "");
        r.timestamp_ms = Some(from_ms + i as i64 * 10);
        recs.push(r);
    }
    t.produce("events", &recs);
    let from = format!("{}", from_ms as f64 / 1000.0);
    let d = msk_py(
        &daemon,
        &["create", "from-ts", ARN, "events", BUCKET, &from],
    );
    let read_from = &d["Source"]["MSKSourceDescription"]["ReadFromTimestamp"];
    assert!(read_from.is_string(), "{d}");
    let got = delivered(tmp.path(), "from-ts", 100, Duration::from_secs(2));
    assert!(
        got.iter().all(|r| r.get("before").is_none()),
        "a record before ReadFromTimestamp was delivered"
    );
    assert_eq!(got.len(), 100, "log:\n{}", daemon.log_text());
    for (key, seq) in per_key(&got) {
        assert_eq!(seq.len(), 10, "key {key}: {seq:?}");
    }
}

/// A cluster ARN the configuration does not map: the source is failed, DescribeDeliveryStream
/// says why naming the ARN, and the metric says so; a topic that does not exist likewise.
#[test]
fn an_unmapped_cluster_arn_or_a_missing_topic_is_a_failure_description() {
    let t = Tansu::start();
    let tmp = tempfile::tempdir().unwrap();
    let daemon = daemon(tmp.path(), &t.bootstrap());
    let other = "arn:aws:kafka:us-east-1:123456789012:cluster/elsewhere/2";
    msk_py(&daemon, &["create", "unmapped", other, "orders", BUCKET]);
    msk_py(
        &daemon,
        &["create", "no-topic", ARN, "nothing-here", BUCKET],
    );
    let details = |name: &str| {
        let d = msk_py(&daemon, &["describe", name]);
        d["FailureDescription"]["Details"]
            .as_str()
            .map(str::to_string)
    };
    common::wait_for("both failure descriptions", &daemon, || {
        details("unmapped").is_some() && details("no-topic").is_some()
    });
    let d = details("unmapped").unwrap();
    assert!(d.contains(other) && d.contains("bootstrap_servers"), "{d}");
    let d = details("no-topic").unwrap();
    assert!(d.contains("nothing-here") && d.contains(ARN), "{d}");
    assert_eq!(
        metric(&daemon, "hydrant_kafka_source_failed{stream=\"unmapped\"}"),
        Some(1.0)
    );
    // Created later, the topic is read and the failure clears.
    t.create_topic("nothing-here", 1);
    common::wait_for("the failure to clear", &daemon, || {
        details("no-topic").is_none()
    });
    t.produce("nothing-here", &[record(0, 0, "")]);
    let got = delivered(tmp.path(), "no-topic", 1, Duration::from_millis(500));
    assert_eq!(got.len(), 1);
}

/// A Lambda transform of an MSK stream gets Firehose's event for an MSK source: `sourceMSKArn`,
/// each record's value as `kafkaRecordValue` (no `data`) and its `mskRecordMetadata` (offset,
/// partition, the Kafka timestamp) as the producer's acknowledgements and timestamps say; the
/// reply's `kafkaRecordValue` is what is delivered.
#[test]
fn lambda_events_carry_the_msk_metadata() {
    use base64::Engine as _;
    use hydrant_tests::lambda::{FunctionReply, LambdaServer};
    let t = Tansu::start();
    t.create_topic("lam", 2);
    let lambda = LambdaServer::start().unwrap();
    lambda.register("msk_upper", |event: Value| {
        let b64 = base64::engine::general_purpose::STANDARD;
        let records = event["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let v = b64
                    .decode(r["kafkaRecordValue"].as_str().unwrap_or(""))
                    .unwrap();
                serde_json::json!({"recordId": r["recordId"], "result": "Ok",
                                   "kafkaRecordValue": b64.encode(v.to_ascii_uppercase())})
            })
            .collect();
        FunctionReply::records(records)
    });
    let arn = LambdaServer::arn("msk_upper");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = format!(
        "streams = []\n[kafka]\nbootstrap_servers = \"{}\"\ndiscovery_interval_ms = 500\n\
         [lambda.functions]\n\"{arn}\" = \"{}\"\n",
        t.bootstrap(),
        lambda.url("msk_upper")
    );
    let daemon = Daemon::with_config(&tmp.path().join("data"), &cfg);
    let body = serde_json::json!({
        "DeliveryStreamName": "msk-lambda",
        "DeliveryStreamType": "MSKAsSource",
        "MSKSourceConfiguration": {"MSKClusterARN": ARN, "TopicName": "lam",
            "AuthenticationConfiguration": {"RoleARN": "arn:aws:iam::123456789012:role/r",
                                            "Connectivity": "PUBLIC"}},
        "ExtendedS3DestinationConfiguration": {"RoleARN": "arn:aws:iam::123456789012:role/r",
            "BucketARN": format!("arn:aws:s3:::{BUCKET}"),
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Lambda",
                "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": arn},
                               {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "1"}]}]}}
    });
    let (st, v) = common::call(daemon.addr, "CreateDeliveryStream", &body.to_string());
    assert_eq!(st, 200, "{v}");
    common::wait_active(daemon.addr, "msk-lambda");
    let ts0 = hydrant_wal::now_ms() as i64;
    let recs: Vec<Produce> = (0..40u64)
        .map(|i| {
            let mut r = record((i % 4) as usize, i, "");
            r.timestamp_ms = Some(ts0 + i as i64);
            r
        })
        .collect();
    t.produce("lam", &recs);
    let got = delivered(tmp.path(), "msk-lambda", 40, Duration::from_secs(2));
    assert_eq!(got.len(), 40, "log:\n{}", daemon.log_text());
    assert!(
        got.iter().all(|r| r.get("K").is_some()),
        "not transformed: {got:?}"
    );
    let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
    for inv in lambda.invocations_of("msk_upper") {
        assert_eq!(inv.event["sourceMSKArn"], ARN, "{}", inv.event);
        for r in inv.event["records"].as_array().unwrap() {
            assert!(r.get("data").is_none(), "{r}");
            let v = base64::engine::general_purpose::STANDARD
                .decode(r["kafkaRecordValue"].as_str().unwrap())
                .unwrap();
            let doc: Value = serde_json::from_slice(&v).unwrap();
            let m = &r["mskRecordMetadata"];
            let ts = m["approximateArrivalTimestamp"].as_u64().unwrap();
            assert_eq!(ts, r["approximateArrivalTimestamp"].as_u64().unwrap());
            let i = doc["i"].as_u64().unwrap();
            assert_eq!(ts, (ts0 + i as i64) as u64, "{r}");
            seen.insert(
                (
                    m["partitionId"].as_str().unwrap().to_string(),
                    m["offset"].as_str().unwrap().to_string(),
                ),
                i,
            );
        }
    }
    assert_eq!(seen.len(), 40, "{seen:?}");
}
