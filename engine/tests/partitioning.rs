//! Dynamic partitioning end to end: boto3 creates a partitioned ExtendedS3 stream (keys from a
//! jq `MetadataExtractionQuery` with `strftime` on epoch seconds, and from a Lambda function's
//! `metadata.partitionKeys`), puts 10,000 JSON records of 20 customers over 3 hours of
//! `event_time` (and a few records that are not JSON), on two daemons: one delivering to the
//! local object store, one to a real S3 server (s3s-fs). The objects are read back from both:
//! each object's key holds exactly its partition's records, every record is delivered once, the
//! records that are not JSON are in the error output as `partitioning-failed`. DuckDB reads the
//! partitioned output with hive partitioning and its counts per partition match. boto3 also
//! checks the create-time refusals (tests/python/destinations.py).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::objects::object_files;
use common::Daemon;
use hydrant_tests::lambda::{event_records, FunctionReply, LambdaServer};
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::123456789012:role/firehose";
const KEY: &str = "AKIDPARTITION";
const SECRET: &str = "partition-secret";
const STREAM: &str = "lake";
const RECORDS: usize = 10_000;
const CUSTOMERS: usize = 20;
const NOT_JSON: usize = 7;
/// 2023-11-15T00:00:00Z, an hour boundary: the records span exactly 3 hours from here.
const BASE_EPOCH: u64 = 1_700_006_400;

/// s3s-fs (objects as plain files under `data/<bucket>/<key>`), killed on drop.
struct S3sFs {
    child: Child,
    port: u16,
}

impl S3sFs {
    fn start(data: &Path, bucket: &str) -> S3sFs {
        std::fs::create_dir_all(data.join(bucket)).unwrap();
        let binary = std::env::var_os("HYDRANT_S3S_FS").map_or_else(
            || common::workspace().join("target/tools/bin/s3s-fs"),
            PathBuf::from,
        );
        assert!(binary.is_file(), "s3s-fs not found at {}", binary.display());
        let port = common::free_port();
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", KEY, "--secret-key", SECRET])
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        S3sFs { child, port }
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Lambda function: every record `Ok` unchanged, with `metadata.partitionKeys.customer` the
/// record's `customer_id` (no metadata for a record that is not JSON).
fn customer_keys(event: Value) -> FunctionReply {
    use base64::Engine as _;
    FunctionReply::records(
        event_records(&event)
            .iter()
            .map(|r| {
                let mut reply = json!({
                    "recordId": r.record_id,
                    "result": "Ok",
                    "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                });
                if let Ok(v) = serde_json::from_slice::<Value>(&r.data) {
                    reply["metadata"] = json!({"partitionKeys": {"customer": v["customer_id"]}});
                }
                reply
            })
            .collect(),
    )
}

fn customer(i: usize) -> String {
    format!("c{:02}", i % CUSTOMERS)
}

fn event_time(i: usize) -> u64 {
    BASE_EPOCH + (i as u64 * 3 * 3600) / RECORDS as u64
}

fn hour_of(epoch: u64) -> String {
    let t = jiff::Timestamp::from_second(epoch as i64).unwrap();
    t.strftime("%Y-%m-%d-%H").to_string()
}

fn stream_config() -> Value {
    json!({
        "RoleARN": ROLE,
        "BucketARN": "arn:aws:s3:::lake",
        "Prefix": "cust=!{partitionKeyFromQuery:customer_id}/hr=!{partitionKeyFromQuery:hour}/lcust=!{partitionKeyFromLambda:customer}/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "DynamicPartitioningConfiguration": {"Enabled": true, "RetryOptions": {"DurationInSeconds": 300}},
        "ProcessingConfiguration": {"Enabled": true, "Processors": [
            {"Type": "AppendDelimiterToRecord", "Parameters": []},
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery",
                 "ParameterValue": "{customer_id: .customer_id, hour: .event_time | strftime(\"%Y-%m-%d-%H\")}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
            {"Type": "Lambda", "Parameters": [
                {"ParameterName": "LambdaArn", "ParameterValue": LambdaServer::arn("customer_keys")}]}]},
    })
}

/// Creates that boto3 must see refused with InvalidArgumentException, by reason.
fn refusals() -> Vec<Value> {
    let with =
        |name: &str, change: &dyn Fn(&mut Value)| common::refusal(name, stream_config(), change);
    vec![
        with("unknown-query-key", &|c| {
            c["Prefix"] = json!("x=!{partitionKeyFromQuery:nope}/");
        }),
        with("no-error-prefix", &|c| {
            c.as_object_mut().unwrap().remove("ErrorOutputPrefix");
        }),
        with("zero-buffering", &|c| {
            c["BufferingHints"] = json!({"SizeInMBs": 1, "IntervalInSeconds": 0});
        }),
        with("no-key-source", &|c| {
            c["ProcessingConfiguration"] = json!({"Enabled": true, "Processors": [
                {"Type": "AppendDelimiterToRecord", "Parameters": []}]});
            c["Prefix"] = json!("static/");
        }),
        with("retry-too-long", &|c| {
            c["DynamicPartitioningConfiguration"] =
                json!({"Enabled": true, "RetryOptions": {"DurationInSeconds": 7201}});
        }),
        with("key-in-error-prefix", &|c| {
            c["ErrorOutputPrefix"] =
                json!("e/!{firehose:error-output-type}/!{partitionKeyFromQuery:hour}/");
        }),
        with("query-not-an-object", &|c| {
            c["ProcessingConfiguration"]["Processors"][1]["Parameters"][0]["ParameterValue"] =
                json!(".customer_id");
        }),
        with("metadata-extraction-without-partitioning", &|c| {
            c["DynamicPartitioningConfiguration"] = json!({"Enabled": false});
            c["Prefix"] = json!("plain/");
        }),
    ]
}

fn records() -> Vec<String> {
    let mut out: Vec<String> = (0..RECORDS)
        .map(|i| {
            json!({"id": i, "customer_id": customer(i), "event_time": event_time(i)}).to_string()
        })
        .collect();
    for n in 0..NOT_JSON {
        out.insert(n * 1000 + 17, format!("not json {n}"));
    }
    out
}

/// `name=value` segments of a key, by name.
fn hive_values(key: &str) -> BTreeMap<String, String> {
    key.split('/')
        .filter_map(|s| s.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Reads every data object under `root/cust=*`: checks that each record's values match its
/// key's partition values, returns the ids seen (each once) and the count per partition.
fn check_partitions(root: &Path, what: &str) -> BTreeMap<(String, String, String), usize> {
    let mut seen = BTreeSet::new();
    let mut counts = BTreeMap::new();
    for (key, path) in object_files(root, &format!("{STREAM}-")) {
        if key.starts_with("errors/") {
            continue;
        }
        let parts = hive_values(&key);
        let (cust, hr, lcust) = (&parts["cust"], &parts["hr"], &parts["lcust"]);
        let body = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        for line in body.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let id = v["id"].as_u64().unwrap() as usize;
            assert_eq!(v["customer_id"], cust.as_str(), "{what}: {key}: {line}");
            assert_eq!(lcust, cust, "{what}: {key}");
            assert_eq!(
                &hour_of(v["event_time"].as_u64().unwrap()),
                hr,
                "{what}: {key}: {line}"
            );
            assert!(seen.insert(id), "{what}: record {id} delivered twice");
            *counts
                .entry((cust.clone(), hr.clone(), lcust.clone()))
                .or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), RECORDS, "{what}: records delivered");
    counts
}

fn expected_counts() -> BTreeMap<(String, String, String), usize> {
    let mut counts = BTreeMap::new();
    for i in 0..RECORDS {
        let c = customer(i);
        *counts
            .entry((c.clone(), hour_of(event_time(i)), c))
            .or_insert(0) += 1;
    }
    counts
}

fn lines_under(root: &Path, prefix: &str) -> usize {
    object_files(root, &format!("{STREAM}-"))
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, p)| std::fs::read(p).unwrap_or_default())
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .sum()
}

fn wait_for(what: &str, daemon: &Daemon, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} not delivered in time; log:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// DuckDB's counts per (cust, hr, lcust) of the partitioned output, read with hive partitioning.
fn duckdb_counts(root: &Path) -> BTreeMap<(String, String, String), usize> {
    let script = format!(
        "import duckdb, json\n\
         rows = duckdb.sql(\"select cust, hr, lcust, count(*) from read_json('{}/cust=*/*/*/*', \
         format='newline_delimited', hive_partitioning=true, hive_types_autocast=false) \
         group by all\").fetchall()\n\
         print(json.dumps([[r[0], r[1], r[2], r[3]] for r in rows]))\n",
        root.display()
    );
    let rows: Vec<(String, String, String, usize)> = common::python_json("duckdb", &script);
    rows.into_iter()
        .map(|(a, b, c, n)| ((a, b, c), n))
        .collect()
}

#[test]
fn boto3_partitions_by_jq_and_lambda_keys_to_the_local_store_and_s3() {
    let lambda = LambdaServer::start().unwrap();
    lambda.register("customer_keys", customer_keys);
    let arn = LambdaServer::arn("customer_keys");
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3sFs::start(&tmp.path().join("s3"), "lake");
    let lambda_section = format!(
        "[lambda.functions]\n\"{arn}\" = \"{}\"\n",
        lambda.url("customer_keys")
    );
    let delivery = "[delivery]\nbackoff_initial_ms = 50\nbackoff_max_ms = 500\n\n";
    let local_cfg = tmp.path().join("local.toml");
    std::fs::write(&local_cfg, format!("{delivery}{lambda_section}")).unwrap();
    let s3_cfg = tmp.path().join("s3.toml");
    std::fs::write(
        &s3_cfg,
        format!(
            "[s3]\nendpoint = \"http://127.0.0.1:{}\"\nforce_path_style = true\n\
             access_key_id = \"{KEY}\"\nsecret_access_key = \"{SECRET}\"\n\n{delivery}{lambda_section}",
            s3.port
        ),
    )
    .unwrap();
    let local_data = tmp.path().join("local");
    let s3_data = tmp.path().join("s3-daemon");
    let local = Daemon::start(&local_data, &["--config", local_cfg.to_str().unwrap()]);
    let remote = Daemon::start(&s3_data, &["--config", s3_cfg.to_str().unwrap()]);
    let plan = json!({
        "refuse": refusals(),
        "create": [{"name": STREAM, "member": "ExtendedS3DestinationConfiguration",
                    "config": stream_config()}],
        "put": [{"name": STREAM, "records": records()}],
    });
    let out =
        common::run_destinations_py(&local.endpoint(), &plan, &tmp.path().join("boto3-local"));
    let described =
        &out["described"][STREAM]["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(
        described["DynamicPartitioningConfiguration"],
        json!({"Enabled": true, "RetryOptions": {"DurationInSeconds": 300}})
    );
    assert_eq!(
        described["ProcessingConfiguration"],
        stream_config()["ProcessingConfiguration"]
    );
    common::assert_refused(
        &out,
        refusals().len(),
        &[
            ("unknown-query-key", "partitionKeyFromQuery:nope"),
            ("no-error-prefix", "ErrorOutputPrefix"),
            ("zero-buffering", "zero buffering"),
            ("no-key-source", "MetadataExtraction"),
            ("retry-too-long", "DurationInSeconds"),
            ("key-in-error-prefix", "ErrorOutputPrefix"),
            ("query-not-an-object", "object construction"),
            (
                "metadata-extraction-without-partitioning",
                "MetadataExtraction",
            ),
        ],
    );
    let plan = json!({
        "create": [{"name": STREAM, "member": "ExtendedS3DestinationConfiguration",
                    "config": stream_config()}],
        "put": [{"name": STREAM, "records": records()}],
    });
    common::run_destinations_py(&remote.endpoint(), &plan, &tmp.path().join("boto3-s3"));

    let local_root = local_data.join("objects/lake");
    let s3_root = tmp.path().join("s3/lake");
    // An S3 destination's error output is its own bucket, under ErrorOutputPrefix.
    let remote_errors = s3_root.clone();
    wait_for("local store", &local, || {
        lines_under(&local_root, "cust=") == RECORDS
            && lines_under(&local_root, "errors/partitioning-failed/") == NOT_JSON
    });
    wait_for("s3s-fs", &remote, || {
        lines_under(&s3_root, "cust=") == RECORDS
            && lines_under(&remote_errors, "errors/partitioning-failed/") == NOT_JSON
    });
    let expected = expected_counts();
    assert_eq!(expected.len(), CUSTOMERS * 3, "20 customers over 3 hours");
    for (what, root) in [("local store", &local_root), ("s3s-fs", &s3_root)] {
        assert_eq!(check_partitions(root, what), expected, "{what}");
        assert_eq!(duckdb_counts(root), expected, "{what}: DuckDB");
    }
    // The records that are not JSON, as Firehose's failed-record JSON.
    for root in [&local_root, &remote_errors] {
        for (key, path) in object_files(root, &format!("{STREAM}-")) {
            if !key.starts_with("errors/") {
                continue;
            }
            assert!(key.starts_with("errors/partitioning-failed/"), "{key}");
            for f in common::objects::json_lines(&path) {
                assert_eq!(f["errorCode"], "DynamicPartitioning.NonJsonRecord", "{f}");
                let raw = common::objects::raw_data(&f);
                assert!(raw.starts_with(b"not json "), "{f}");
            }
        }
    }
    let (_, metrics) = common::get(local.addr, "/metrics").unwrap();
    assert!(
        metrics.contains("hydrant_partition_count{"),
        "no partition metric:\n{metrics}"
    );
    assert!(metrics.contains("hydrant_jq_processing_seconds{"));
}
