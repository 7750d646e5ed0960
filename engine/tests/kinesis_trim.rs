//! Trimmed data: the shard's retention passes while hydrantd is down, so records it had not
//! read are gone when it comes back. kinesalite trims by its clock, which the test moves past
//! the stream's 24-hour retention (`Kinesalite::advance_clock`). Checked, with hydrantd as a
//! process and boto3 as the producer:
//! - a restart with nothing trimmed reports nothing (`hydrant_kinesis_trimmed_total` 0) and
//!   loses nothing;
//! - after the clock moved, the records put before it and never read are reported, as the
//!   metric and one log line naming the shard and the lost range (the last sequence number the
//!   log holds, and the first one read after the gap), and the records put after it are
//!   delivered; nothing read before is delivered twice.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::kinesalite::Kinesalite;
use common::Daemon;
use serde_json::{json, Value};

const BUCKET: &str = "ktrim";
const STREAM: &str = "kin-trim";
const KSTREAM: &str = "ktrim";
const ROLE: &str = "arn:aws:iam::123456789012:role/firehose";

fn kinesis(k: &Kinesalite, body: &str) -> Value {
    let script = format!(
        "import boto3, json, time\n\
         ks = boto3.client('kinesis', endpoint_url='{}', region_name='us-east-1', \
         aws_access_key_id='K', aws_secret_access_key='S')\n{body}",
        k.endpoint()
    );
    common::python_json("kinesis call", &script)
}

/// Puts records `{"tag": tag, "i": 0..n}`; their sequence numbers in order.
fn put(k: &Kinesalite, tag: &str, n: usize) -> Vec<String> {
    let v = kinesis(
        k,
        &format!(
            "recs = [{{'Data': json.dumps({{'tag': '{tag}', 'i': i}}) + '\\n', 'PartitionKey': 'p'}} \
             for i in range({n})]\n\
             r = ks.put_records(StreamName='{KSTREAM}', Records=recs)\n\
             assert r['FailedRecordCount'] == 0, r\n\
             print(json.dumps([x['SequenceNumber'] for x in r['Records']]))\n"
        ),
    );
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Delivered records: tag -> how many of each `i`.
fn delivered(data: &Path) -> BTreeMap<String, BTreeMap<u64, usize>> {
    let root = data.join("objects").join(BUCKET);
    let mut out: BTreeMap<String, BTreeMap<u64, usize>> = BTreeMap::new();
    for (_, p) in common::objects::object_files(&root, STREAM) {
        for line in std::fs::read(&p)
            .unwrap()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let v: Value = serde_json::from_slice(line).unwrap();
            *out.entry(v["tag"].as_str().unwrap().to_string())
                .or_default()
                .entry(v["i"].as_u64().unwrap())
                .or_default() += 1;
        }
    }
    out
}

fn wait_delivered(daemon: &Daemon, data: &Path, tag: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(data).get(tag).map_or(0, BTreeMap::len) < n {
        assert!(
            Instant::now() < deadline,
            "{tag}: not delivered; log:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn trimmed(daemon: &Daemon) -> u64 {
    let (_, metrics) = common::get(daemon.addr, "/metrics").unwrap();
    let series = format!("hydrant_kinesis_trimmed_total{{stream=\"{STREAM}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

fn once(n: usize) -> BTreeMap<u64, usize> {
    (0..n as u64).map(|i| (i, 1)).collect()
}

#[test]
fn records_trimmed_while_down_are_reported_with_their_range() {
    let k = Kinesalite::start_with_movable_clock();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = format!(
        "streams = []\n[kinesis]\nendpoint = \"{}\"\naccess_key_id = \"K\"\n\
         secret_access_key = \"S\"\npoll_interval_ms = 200\n",
        k.endpoint()
    );
    let arn = kinesis(
        &k,
        &format!(
            "ks.create_stream(StreamName='{KSTREAM}', ShardCount=1)\n\
             for _ in range(200):\n\
             \x20   d = ks.describe_stream_summary(StreamName='{KSTREAM}')['StreamDescriptionSummary']\n\
             \x20   if d['StreamStatus'] == 'ACTIVE': break\n\
             \x20   time.sleep(0.05)\n\
             print(json.dumps(d['StreamARN']))\n"
        ),
    );
    let mut daemon = Daemon::with_config(&data, &cfg);
    let body = json!({
        "DeliveryStreamName": STREAM,
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {"KinesisStreamARN": arn, "RoleARN": ROLE},
        "ExtendedS3DestinationConfiguration": {"RoleARN": ROLE,
            "BucketARN": format!("arn:aws:s3:::{BUCKET}"),
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}},
    });
    let (st, v) = common::call(daemon.addr, "CreateDeliveryStream", &body.to_string());
    assert_eq!(st, 200, "{v}");
    common::wait_active(daemon.addr, STREAM);

    // Read, then a restart with nothing trimmed: the position's own record is still there.
    put(&k, "a", 10);
    wait_delivered(&daemon, &data, "a", 10);
    assert!(daemon.terminate().success());
    let read = put(&k, "b", 10);
    let mut daemon = Daemon::with_config(&data, &cfg);
    wait_delivered(&daemon, &data, "b", 10);
    assert_eq!(trimmed(&daemon), 0, "log:\n{}", daemon.log_text());

    // Down; records put, then the retention passes; more records put.
    assert!(daemon.terminate().success());
    let lost = put(&k, "lost", 10);
    k.advance_clock();
    let after = put(&k, "c", 10);
    let daemon = Daemon::with_config(&data, &cfg);
    wait_delivered(&daemon, &data, "c", 10);
    std::thread::sleep(Duration::from_secs(2));
    let got = delivered(&data);
    assert_eq!(got.get("a"), Some(&once(10)));
    assert_eq!(got.get("b"), Some(&once(10)));
    assert_eq!(got.get("c"), Some(&once(10)));
    assert!(!got.contains_key("lost"), "trimmed records were delivered");
    let log = daemon.log_text();
    assert_eq!(trimmed(&daemon), 1, "log:\n{log}");
    let line = log
        .lines()
        .find(|l| l.contains("trimmed before they were read"))
        .unwrap_or_else(|| panic!("no trim line; log:\n{log}"));
    assert!(line.contains("shardId-000000000000"), "{line}");
    assert!(line.contains(read.last().unwrap()), "{line}");
    assert!(line.contains(&after[0]), "{line}");
    // The lost range holds the lost records.
    assert!(
        read.last().unwrap() < &lost[0] && lost.last().unwrap() < &after[0],
        "{read:?} {lost:?} {after:?}"
    );
    eprintln!("trim reported: {line}");
}
